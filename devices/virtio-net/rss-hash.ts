// The per-packet hash of RSS and HASH_REPORT (VIRTIO 1.2 §5.1.6.4.3 "Hash calculation for incoming
// packets", §5.1.6.4.4 "Hash reporting"): which fields of a received frame are hashed for the
// enabled hash types, and the report type that says so. The hash function itself is toeplitz.ts.
//
// Parsing, allocation-free and reading each frame byte at most once per field:
// - Ethernet, with up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8) skipped.
// - IPv4 (§5.1.6.4.3.2): version 4, IHL >= 5, the whole header inside the frame. A fragment (MF
//   set or a fragment offset) has no usable transport header: only the address hash applies.
// - IPv6 (§5.1.6.4.3.3, §5.1.6.4.3.4): the extension headers Hop-by-Hop (0), Routing (43),
//   Fragment (44), Destination Options (60), Authentication (51) and Mobility (135) are walked
//   inside the frame. A Destination Options header's Home Address option (type 0xC9, 16 bytes) and
//   a type 2 Routing header's address (RFC 6275) replace the source and destination address for
//   the _EX types. A fragment header makes the packet a fragment (addresses only).
// - TCP counts when its 20-byte header is in the frame, UDP when its 8-byte header is.
//
// Decisions, per the spec's text (QEMU 7.2 differs; devices/virtio-net/README.md): a packet is
// "with extension headers" when its IPv6 header is followed by at least one of the headers above;
// the _EX types apply only to such packets (for one without, only TCPv6/UDPv6/IPv6 do), and when
// none of the _EX types applies to a packet with extension headers the plain IPv6 types do, over
// the plain addresses. QEMU also applies the _EX types to packets without extension headers, and
// reports them as _EX.

import type { Toeplitz } from './toeplitz.js';

/** Enabled/supported hash types (§5.1.6.4.3.1): bit masks. */
export const HashType = {
  IPv4: 1 << 0,
  TCPv4: 1 << 1,
  UDPv4: 1 << 2,
  IPv6: 1 << 3,
  TCPv6: 1 << 4,
  UDPv6: 1 << 5,
  IP_EX: 1 << 6,
  TCP_EX: 1 << 7,
  UDP_EX: 1 << 8,
} as const;

/** Every hash type this device computes: config `supported_hash_types` (QEMU 7.2 offers the same nine). */
export const SUPPORTED_HASH_TYPES = 0x1ff;

/** `hash_report` values (§5.1.6.4.4): HASH_TYPE_X = 1 << (REPORT_X - 1). */
export const HashReport = {
  NONE: 0,
  IPv4: 1,
  TCPv4: 2,
  UDPv4: 3,
  IPv6: 4,
  TCPv6: 5,
  UDPv6: 6,
  IPv6_EX: 7,
  TCPv6_EX: 8,
  UDPv6_EX: 9,
} as const;

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const NEXTHDR_HOP = 0;
const NEXTHDR_ROUTING = 43;
const NEXTHDR_FRAGMENT = 44;
const NEXTHDR_AUTH = 51;
const NEXTHDR_DEST = 60;
const NEXTHDR_MOBILITY = 135;
const IPV6_TLV_HAO = 0xc9;
/** Extension headers walked at most (a chain longer than this is not hashed as a transport packet). */
const IPV6_EXT_MAX = 8;

/**
 * Computes the hash of one frame for the enabled hash types. `value` and `report` hold the result
 * of the last `compute` (report NONE: no hash). One instance per device; never allocates.
 */
export class FrameHash {
  value = 0;
  report: number = HashReport.NONE;
  // Where the hashed fields are in the frame being hashed (set by the parser).
  private src = 0;
  private dst = 0;
  private l4 = -1;
  private l4proto = -1;

  constructor(private readonly toeplitz: Toeplitz) {}

  /** Hashes `frame` for `types` (HashType bits). Returns the report type (NONE when not hashed). */
  compute(frame: Uint8Array, types: number): number {
    this.value = 0;
    this.report = HashReport.NONE;
    if (types === 0) return HashReport.NONE;
    const len = frame.length;
    let at = 12;
    if (len < 14) return HashReport.NONE;
    let type = (frame[at]! << 8) | frame[at + 1]!;
    for (let tags = 0; tags < 2 && (type === ETH_P_8021Q || type === ETH_P_8021AD); tags++) {
      at += 4;
      if (len < at + 2) return HashReport.NONE;
      type = (frame[at]! << 8) | frame[at + 1]!;
    }
    const l3 = at + 2;
    if (type === ETH_P_IP) return this.ipv4(frame, l3, types);
    if (type === ETH_P_IPV6) return this.ipv6(frame, l3, types);
    return HashReport.NONE;
  }

  private ipv4(frame: Uint8Array, ip: number, types: number): number {
    const len = frame.length;
    if (len < ip + 20) return HashReport.NONE;
    const vihl = frame[ip]!;
    const ihl = (vihl & 0x0f) * 4;
    if (vihl >>> 4 !== 4 || ihl < 20 || len < ip + ihl) return HashReport.NONE;
    const fragment = (((frame[ip + 6]! << 8) | frame[ip + 7]!) & 0x3fff) !== 0; // MF or an offset
    const proto = frame[ip + 9]!;
    const l4 = ip + ihl;
    const t = this.toeplitz;
    if (!fragment && proto === IPPROTO_TCP && (types & HashType.TCPv4) !== 0 && len >= l4 + 20) {
      return this.done(t.update(t.update(0, frame, ip + 12, 8, 0), frame, l4, 4, 8), HashReport.TCPv4);
    }
    if (!fragment && proto === IPPROTO_UDP && (types & HashType.UDPv4) !== 0 && len >= l4 + 8) {
      return this.done(t.update(t.update(0, frame, ip + 12, 8, 0), frame, l4, 4, 8), HashReport.UDPv4);
    }
    if ((types & HashType.IPv4) !== 0) return this.done(t.update(0, frame, ip + 12, 8, 0), HashReport.IPv4);
    return HashReport.NONE;
  }

  private ipv6(frame: Uint8Array, ip: number, types: number): number {
    const len = frame.length;
    if (len < ip + 40 || frame[ip]! >>> 4 !== 6) return HashReport.NONE;
    this.src = ip + 8;
    this.dst = ip + 24;
    const plainSrc = this.src;
    const plainDst = this.dst;
    const ext = this.walkExtensions(frame, ip);
    const proto = this.l4proto;
    const l4 = this.l4;
    const tcp = proto === IPPROTO_TCP && len >= l4 + 20;
    const udp = proto === IPPROTO_UDP && len >= l4 + 8;
    if (ext) {
      const src = this.src;
      const dst = this.dst;
      if (tcp && (types & HashType.TCP_EX) !== 0) return this.done(this.v6(frame, src, dst, l4), HashReport.TCPv6_EX);
      if (udp && (types & HashType.UDP_EX) !== 0) return this.done(this.v6(frame, src, dst, l4), HashReport.UDPv6_EX);
      if ((types & HashType.IP_EX) !== 0) return this.done(this.v6(frame, src, dst, -1), HashReport.IPv6_EX);
    }
    if (tcp && (types & HashType.TCPv6) !== 0) return this.done(this.v6(frame, plainSrc, plainDst, l4), HashReport.TCPv6);
    if (udp && (types & HashType.UDPv6) !== 0) return this.done(this.v6(frame, plainSrc, plainDst, l4), HashReport.UDPv6);
    if ((types & HashType.IPv6) !== 0) return this.done(this.v6(frame, plainSrc, plainDst, -1), HashReport.IPv6);
    return HashReport.NONE;
  }

  /** Source, destination (16 bytes each) and, when `l4` >= 0, the two ports. */
  private v6(frame: Uint8Array, src: number, dst: number, l4: number): number {
    const t = this.toeplitz;
    let h = t.update(0, frame, src, 16, 0);
    h = t.update(h, frame, dst, 16, 16);
    if (l4 >= 0) h = t.update(h, frame, l4, 4, 32);
    return h;
  }

  /**
   * Walks the IPv6 extension headers: sets `l4proto` / `l4` (-1: no transport header to hash — a
   * fragment, a truncated or too long chain), and `src` / `dst` to the Home Address option and the
   * type 2 Routing header's address when present. True when at least one extension header exists.
   */
  private walkExtensions(frame: Uint8Array, ip: number): boolean {
    const len = frame.length;
    let next = frame[ip + 6]!;
    let at = ip + 40;
    let ext = false;
    this.l4proto = -1;
    this.l4 = -1;
    for (let n = 0; n < IPV6_EXT_MAX; n++) {
      if (next !== NEXTHDR_HOP && next !== NEXTHDR_ROUTING && next !== NEXTHDR_FRAGMENT && next !== NEXTHDR_DEST && next !== NEXTHDR_AUTH && next !== NEXTHDR_MOBILITY) {
        this.l4proto = next;
        this.l4 = at;
        return ext;
      }
      ext = true;
      if (len < at + 8) return ext;
      const hdrLen = next === NEXTHDR_FRAGMENT ? 8 : next === NEXTHDR_AUTH ? (frame[at + 1]! + 2) * 4 : (frame[at + 1]! + 1) * 8;
      if (len < at + hdrLen) return ext;
      if (next === NEXTHDR_FRAGMENT) return ext; // a fragment: no transport header to hash
      if (next === NEXTHDR_ROUTING && frame[at + 2] === 2 && hdrLen >= 24) this.dst = at + 8;
      if (next === NEXTHDR_DEST) this.homeAddress(frame, at + 2, at + hdrLen);
      next = frame[at]!;
      at += hdrLen;
    }
    return ext;
  }

  /** Destination options TLVs in [from, end): a Home Address option sets `src`. */
  private homeAddress(frame: Uint8Array, from: number, end: number): void {
    let at = from;
    while (at < end) {
      const type = frame[at]!;
      if (type === 0) {
        at++; // Pad1
        continue;
      }
      if (at + 2 > end) return;
      const optLen = frame[at + 1]!;
      if (type === IPV6_TLV_HAO && optLen === 16 && at + 18 <= end) this.src = at + 2;
      at += 2 + optLen;
    }
  }

  private done(h: number, report: number): number {
    this.value = h >>> 0;
    this.report = report;
    return report;
  }
}
