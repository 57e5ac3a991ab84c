// What TAP and macvtap share beyond the fd datapath (no VIRTIO section: the host side of the VIRTIO
// 1.2 §5.1.6 header): the virtio-net header length the fd carries (TUNGETVNETHDRSZ /
// TUNSETVNETHDRSZ) and the guest's receive offloads (TUNSETOFFLOAD). Both are set by the device at
// DRIVER_OK; a host failure is a 'host-error' event, never an exception into the device.

import { FdNetdev } from './fd-netdev.js';
import type { OffloadCapable, OffloadFlags, VnetHeaderCapable } from './netdev.js';
import { HostError, closeFd, ioctlInt, ioctlPtr } from '../host/libc.js';
import { TUNGETVNETHDRSZ, TUNSETOFFLOAD, TUNSETVNETHDRSZ, intArg, readIntArg } from '../host/structs.js';
import { tunOffloadBits } from './offload-bits.js';

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

  /** TUNSETOFFLOAD with the guest's negotiated receive offloads. */
  setOffloads(flags: OffloadFlags): void {
    const bits = tunOffloadBits(flags);
    this.hostCall(() => {
      ioctlInt(this.fd, TUNSETOFFLOAD, bits, 'TUNSETOFFLOAD');
      this.offloadBits = bits;
    });
  }

  /** The TUN_F_* bits last applied. */
  get offloads(): number {
    return this.offloadBits;
  }

  private hostCall(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof HostError) this.hostError(e);
      else throw e;
    }
  }
}
