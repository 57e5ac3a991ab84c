// The MTU a frame is held to once VIRTIO_NET_F_MTU is negotiated (VIRTIO 1.2 §5.1.4: `mtu`;
// §5.1.4.1 the device MUST NOT pass received packets above `mtu` "plus low level ethernet header
// length" with gso_type NONE or ECN; §5.1.4.2 the driver MUST NOT transmit such packets).
//
// The limit: `mtu` + 14 (Ethernet header), + 4 more when the frame carries an 802.1Q or 802.1ad
// tag (EtherType 0x8100 / 0x88a8 at offset 12). The tag belongs to the low-level Ethernet header
// (IEEE 802.1Q inserts it there and it carries no payload), a Linux guest with a VLAN interface of
// the same MTU sends exactly such frames, and Linux's receive buffers for an MTU-sized frame
// leave room for one tag. A second stacked tag (QinQ) is not allowed for. GSO frames are not
// limited: the spec limits gso_type NONE (or ECN alone); a GSO frame's segments are bounded by
// its gso_size.

import { ETH_HLEN, ETH_P_8021Q, VnetHdrGso } from './constants.js';

/** 802.1ad (QinQ outer tag) TPID, allowed like 802.1Q's. */
const ETH_P_8021AD = 0x88a8;
/** An 802.1Q / 802.1ad tag (IEEE 802.1Q): 4 bytes. */
const VLAN_TAG_LEN = 4;

/** Whether a frame with this `gso_type` is held to the MTU: NONE, or ECN alone (§5.1.4.1, §5.1.4.2). */
export function mtuApplies(gsoType: number): boolean {
  return (gsoType & ~VnetHdrGso.ECN) === VnetHdrGso.NONE;
}

/**
 * Whether `frame` is longer than `mtu` allows: the Ethernet header, plus one VLAN tag when it
 * carries one. Reads the EtherType (two bytes) only for a frame longer than `mtu + 14`.
 */
export function aboveMtu(frame: Uint8Array, mtu: number): boolean {
  return aboveMtuAt(frame, 0, frame.length, mtu);
}

/** `aboveMtu` for the frame `bytes[offset, offset + len)`. */
export function aboveMtuAt(bytes: Uint8Array, offset: number, len: number, mtu: number): boolean {
  if (len <= mtu + ETH_HLEN) return false;
  if (len > mtu + ETH_HLEN + VLAN_TAG_LEN) return true;
  const tpid = (bytes[offset + 12]! << 8) | bytes[offset + 13]!;
  return tpid !== ETH_P_8021Q && tpid !== ETH_P_8021AD;
}
