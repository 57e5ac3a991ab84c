// What TAP and macvtap share beyond the fd datapath (no VIRTIO section: the host side of the VIRTIO
// 1.2 §5.1.6 header): the virtio-net header length the fd carries (TUNGETVNETHDRSZ /
// TUNSETVNETHDRSZ) and the guest's receive offloads (TUNSETOFFLOAD). Both are set by the device at
// DRIVER_OK (and the offloads again at each GUEST_OFFLOADS_SET); a host failure is a 'host-error' event and a
// false return, never an exception into the device.

import { FdNetdev } from './fd-netdev.js';
import type { OffloadCapable, OffloadFlags, VnetHeaderCapable } from './netdev.js';
import { HostError, closeFd, ioctlInt, ioctlPtr } from '../host/libc.js';
import { TUNGETVNETHDRSZ, TUNSETOFFLOAD, TUNSETVNETHDRSZ, intArg, readIntArg } from '../host/structs.js';
import { TUN_F_USO, tunOffloadBits } from './offload-bits.js';

/** errno EINVAL (asm-generic/errno-base.h): what TUNSETOFFLOAD answers for bits the kernel does not know. */
const EINVAL = 22;

/** TUNGETVNETHDRSZ on a freshly opened fd; closes the fd when the call fails. */
export function readVnetHeaderSize(fd: number): number {
  const sz = intArg(0);
  try {
    ioctlPtr(fd, TUNGETVNETHDRSZ, sz, 4, 'TUNGETVNETHDRSZ');
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return readIntArg(sz);
}

export abstract class VnetFdNetdev extends FdNetdev implements VnetHeaderCapable, OffloadCapable {
  private offloadBits = 0;
  private usoRefusedByKernel = false;

  get vnetHeaderLength(): number {
    return this.headerLength;
  }

  /** TUNSETVNETHDRSZ. Called by the device at DRIVER_OK. */
  setVnetHeaderLength(length: 10 | 12): void {
    if (length !== 10 && length !== 12) throw new RangeError(`${this.id}: vnet header length must be 10 or 12, got ${String(length)}`);
    if (length === this.headerLength) return;
    this.hostCall(() => {
      ioctlPtr(this.fd, TUNSETVNETHDRSZ, intArg(length), 4, 'TUNSETVNETHDRSZ');
      this.headerLength = length;
    });
  }

  /** TUNSETOFFLOAD with the guest's receive offloads. False (a 'host-error' event) when the kernel refused them. */
  setOffloads(flags: OffloadFlags): boolean {
    const bits = tunOffloadBits(flags);
    if ((bits & TUN_F_USO) !== 0 && !this.usoRefusedByKernel) {
      // USO needs Linux 6.2 (TUN_F_USO4/6); an older kernel answers EINVAL to the whole call. Then
      // the offloads go without USO: the kernel segments UDP itself, which a guest that accepts
      // USO frames takes as well (it only gets none), so the call still succeeds.
      try {
        ioctlInt(this.fd, TUNSETOFFLOAD, bits, 'TUNSETOFFLOAD');
        this.offloadBits = bits;
        return true;
      } catch (e) {
        if (!(e instanceof HostError) || e.errno !== EINVAL) return this.hostCall(() => { throw e; });
        this.usoRefusedByKernel = true;
      }
    }
    const withoutUso = this.usoRefusedByKernel ? bits & ~TUN_F_USO : bits;
    return this.hostCall(() => {
      ioctlInt(this.fd, TUNSETOFFLOAD, withoutUso, 'TUNSETOFFLOAD');
      this.offloadBits = withoutUso;
    });
  }

  /** True once the kernel refused TUN_F_USO4/6 (before Linux 6.2): USO is then left out of every TUNSETOFFLOAD. */
  get usoRefused(): boolean {
    return this.usoRefusedByKernel;
  }

  /** The TUN_F_* bits last applied. */
  get offloads(): number {
    return this.offloadBits;
  }

  /** Runs a host call; false (and a 'host-error' event) when it failed. */
  private hostCall(fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (e) {
      if (e instanceof HostError) {
        this.hostError(e);
        return false;
      }
      throw e;
    }
  }
}
