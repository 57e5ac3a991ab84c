// Guest offloads → TUNSETOFFLOAD bits (no VIRTIO section of its own: the flags mirror the
// VIRTIO_NET_F_GUEST_* features of VIRTIO 1.2 §5.1.3; include/uapi/linux/if_tun.h). They tell the
// kernel what the reader of the fd (the guest) accepts: without TUN_F_CSUM it completes
// checksums itself, and every segmentation offload needs TUN_F_CSUM too.

import type { OffloadFlags } from './netdev.js';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_UFO, TUN_F_USO4, TUN_F_USO6 } from '../host/structs.js';

/** The USO bits (Linux 6.2+); an older kernel refuses TUNSETOFFLOAD with them (see vnet-fd-netdev.ts). */
export const TUN_F_USO = TUN_F_USO4 | TUN_F_USO6;

export function tunOffloadBits(flags: OffloadFlags): number {
  if (flags === null || typeof flags !== 'object') throw new TypeError('setOffloads needs { csum, tso4, tso6, ecn, ufo, uso4?, uso6? }');
  if (!flags.csum) return 0;
  let bits = TUN_F_CSUM;
  if (flags.tso4) bits |= TUN_F_TSO4;
  if (flags.tso6) bits |= TUN_F_TSO6;
  if (flags.ecn && (flags.tso4 || flags.tso6)) bits |= TUN_F_TSO_ECN;
  if (flags.ufo) bits |= TUN_F_UFO;
  if (flags.uso4 === true) bits |= TUN_F_USO4;
  if (flags.uso6 === true) bits |= TUN_F_USO6;
  return bits;
}
