// TapNetdev: a Linux TAP interface as the backend (no VIRTIO section: the host side; the header
// it carries is VIRTIO 1.2 §5.1.6 struct virtio_net_hdr). Opens /dev/net/tun with
// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (creating the interface, or attaching to an existing
// persistent one named `ifname`), sets the header length the device negotiated
// (TUNSETVNETHDRSZ 10 or 12) and the guest's offloads (TUNSETOFFLOAD). The datapath is FdNetdev's.
//
// With `vnetHdr: false` the fd carries bare frames, and the backend does not offer the header or
// offload capabilities (the device then sends and receives without them).

import { VnetFdNetdev, readVnetHeaderSize } from './vnet-fd-netdev.js';
import type { LinkSpeed, LinkSpeedCapable } from './netdev.js';
import { readLinkSpeed } from './link-speed.js';
import { HostError, O_CLOEXEC, O_NONBLOCK, O_RDWR, closeFd, ioctlPtr, openFile } from '../host/libc.js';
import {
  IFF_NO_PI,
  IFF_TAP,
  IFF_VNET_HDR,
  IFREQ_SIZE,
  TUNGETIFF,
  TUNSETIFF,
  ifreq,
  ifreqFlags,
  ifreqName,
  setIfreqFlags,
  validIfname,
} from '../host/structs.js';

export const TUN_DEVICE = '/dev/net/tun';

export interface TapNetdevOptions {
  /** Net client id. */
  id: string;
  /** Interface to create or attach to; default: the kernel picks `tapN`. */
  ifname?: string;
  /** Carry virtio-net headers (IFF_VNET_HDR; default true). */
  vnetHdr?: boolean;
}

/** Opens a TAP fd; returns the fd and the interface name actually used. */
export function openTap(ifname: string | undefined, vnetHdr: boolean): { fd: number; ifname: string } {
  const fd = openFile(TUN_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  try {
    const req = ifreq(ifname ?? 'tap%d');
    setIfreqFlags(req, IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0));
    ioctlPtr(fd, TUNSETIFF, req, IFREQ_SIZE, `TUNSETIFF ${ifname ?? 'tap%d'}`);
    const got = ifreq('x');
    ioctlPtr(fd, TUNGETIFF, got, IFREQ_SIZE, 'TUNGETIFF');
    const flags = ifreqFlags(got);
    if ((flags & IFF_TAP) === 0) throw new HostError('TUNSETIFF', 22, `${ifreqName(got)} is not a TAP interface`);
    return { fd, ifname: ifreqName(got) };
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

export class TapNetdev extends VnetFdNetdev implements LinkSpeedCapable {
  /** The interface actually used. */
  readonly ifname: string;
  readonly vnetHdr: boolean;

  constructor(options: TapNetdevOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('TapNetdev: options must be an object { id, ifname?, vnetHdr? }');
    const { id, ifname, vnetHdr = true } = options;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`TapNetdev: id must be a non-empty string, got ${String(id)}`);
    if (ifname !== undefined) validIfname(ifname);
    if (typeof vnetHdr !== 'boolean') throw new TypeError(`TapNetdev: vnetHdr must be true or false, got ${String(vnetHdr)}`);
    const opened = openTap(ifname, vnetHdr);
    const hdrLen = vnetHdr ? readVnetHeaderSize(opened.fd) : 0;
    super(id, opened.fd, hdrLen);
    this.ifname = opened.ifname;
    this.vnetHdr = vnetHdr;
    // The TAP's own link: down when it is set down or deleted after it was up (host-link.ts says
    // why a TAP that was never up does not count as down).
    this.followHostLink(this.ifname, 'once-up');
    if (!vnetHdr) {
      // Hide the capabilities from the type guards (hasVnetHeader / hasOffloads look for these).
      Object.defineProperty(this, 'setVnetHeaderLength', { value: undefined });
      Object.defineProperty(this, 'setOffloads', { value: undefined });
    }
  }

  /** The TAP's speed and duplex (sysfs; config `speed` / `duplex` with SPEED_DUPLEX). */
  linkSpeed(): LinkSpeed {
    return readLinkSpeed(this.ifname);
  }
}
