// The host-side announcement after a restore (API.md "Device state": "else a gratuitous ARP from
// the host side"; VIRTIO 1.2 §5.1.6.5.4 is the guest-side way, used instead when GUEST_ANNOUNCE is
// negotiated). A broadcast ARP request (RFC 826) from the guest's MAC, so switches and relays on
// the path learn where the MAC now is.
//
// The device does not know the guest's IP address, so sender and target protocol addresses are
// 0.0.0.0 (RFC 5227's probe form): nobody's ARP cache changes, and what the path learns from is
// the Ethernet source address — the same thing QEMU's self-announce achieves with its RARP frames.

import { ETH_ALEN, ETH_HLEN } from './constants.js';

/** EtherType of ARP (IEEE 802 numbers). */
const ETH_P_ARP = 0x0806;
/** ARP hardware type Ethernet, protocol type IPv4, their address lengths (RFC 826). */
const ARP_HTYPE_ETHERNET = 1;
const ARP_PTYPE_IPV4 = 0x0800;
const ARP_PLEN_IPV4 = 4;
/** ARP operation: request (RFC 826). */
const ARP_OP_REQUEST = 1;
/** Shortest Ethernet frame without FCS (IEEE 802.3: 64 with it); the ARP is padded to it. */
const ETH_MIN_FRAME = 60;

/** A 60-byte broadcast gratuitous ARP request from `mac` (6 bytes). */
export function gratuitousArp(mac: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH_MIN_FRAME);
  f.fill(0xff, 0, ETH_ALEN); // broadcast destination
  f.set(mac.subarray(0, ETH_ALEN), ETH_ALEN);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, ETH_P_ARP);
  const a = ETH_HLEN;
  dv.setUint16(a, ARP_HTYPE_ETHERNET);
  dv.setUint16(a + 2, ARP_PTYPE_IPV4);
  f[a + 4] = ETH_ALEN;
  f[a + 5] = ARP_PLEN_IPV4;
  dv.setUint16(a + 6, ARP_OP_REQUEST);
  f.set(mac.subarray(0, ETH_ALEN), a + 8); // sender hardware address; sender IP, target MAC and IP stay 0
  return f;
}
