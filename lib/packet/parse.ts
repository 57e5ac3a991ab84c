// Parsing an Ethernet frame down to its transport header: Ethernet II (IEEE 802.3 §3.2.6),
// 802.1Q / 802.1ad VLAN tags (IEEE 802.1Q §9.6), IPv4 (RFC 791 §3.1), IPv6 and its extension
// headers (RFC 8200 §4), TCP (RFC 9293 §3.1), UDP (RFC 768).
//
// `parsePacket` fills a caller-owned `PacketInfo` (reuse one per filter: nothing is allocated per
// frame) and answers what it found. Every offset it stores is inside the frame; lengths are
// bounded by both the frame and the IP length fields, so a lying length field cannot send a
// reader past the end. Values are read once here; callers use the fields, not the frame again.

import { be16, be32, writeBe32 } from '../base/endian.js';

/** Byte-order helpers the packet code uses, importable from here too (their home is lib/base/endian.ts). */
export { be32, writeBe32 };

/** Ethertypes this parser knows (IEEE registry). */
export const ETHERTYPE = { IPV4: 0x0800, IPV6: 0x86dd, VLAN: 0x8100, QINQ: 0x88a8, ARP: 0x0806 } as const;
/** IP protocol numbers (IANA) used by this project. */
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;
/** TCP flag bits (RFC 9293 §3.1). */
export const TCP_FLAG = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

export const ETH_HEADER_LENGTH = 14;
/** VLAN tags followed: QinQ (two) is the most seen in practice; deeper stacks are treated as not IP. */
export const MAX_VLAN_TAGS = 2;
/** IPv6 extension headers followed before giving up (RFC 8200 §4.1 recommends each at most once). */
export const MAX_IPV6_EXTENSIONS = 8;

/** What `parsePacket` found. */
export type ParseResult =
  /** An IP packet; `info` holds L3 and, unless fragmented, L4 fields. */
  | 'ip'
  /** Not IP (ARP, unknown ethertype, too many VLAN tags): only the Ethernet fields are set. */
  | 'not-ip'
  /** Shorter than its headers say. */
  | 'truncated'
  /** A header field is impossible (IPv4 IHL < 5, version mismatch, TCP data offset < 5). */
  | 'malformed';

/** Parsed fields of one frame. Offsets are absolute in the frame given to `parsePacket`. */
export interface PacketInfo {
  /** Offset of the Ethernet header (where parsing started: after any vnet header). */
  ethOffset: number;
  ethertype: number;
  vlanTags: number;
  l3Offset: number;
  /** 0 when not IP. */
  ipVersion: 0 | 4 | 6;
  /** IPv4 header length incl. options; IPv6: 40 plus extension headers. */
  l3HeaderLength: number;
  /** Transport protocol (after IPv6 extension headers). */
  protocol: number;
  srcOffset: number;
  dstOffset: number;
  /** 4 or 16. */
  addrLength: number;
  /** A fragment (IPv4 MF/offset, IPv6 fragment header): no transport fields. */
  fragment: boolean;
  l4Offset: number;
  /** Transport bytes (header + payload) as the IP length says, within the frame. */
  l4Length: number;
  /** End of the IP packet in the frame (Ethernet padding excluded). */
  ipEnd: number;
  /** TCP/UDP ports, 0 otherwise. */
  srcPort: number;
  dstPort: number;
  /** TCP only (0 otherwise). */
  tcpHeaderLength: number;
  tcpFlags: number;
  tcpSeq: number;
  tcpAck: number;
  /** Transport payload (TCP: after options; UDP: after the 8-byte header; others: after IP). */
  payloadOffset: number;
  payloadLength: number;
}

/** A zeroed PacketInfo to reuse. */
export function newPacketInfo(): PacketInfo {
  return {
    ethOffset: 0, ethertype: 0, vlanTags: 0, l3Offset: 0, ipVersion: 0, l3HeaderLength: 0, protocol: 0,
    srcOffset: 0, dstOffset: 0, addrLength: 0, fragment: false, l4Offset: 0, l4Length: 0, ipEnd: 0,
    srcPort: 0, dstPort: 0, tcpHeaderLength: 0, tcpFlags: 0, tcpSeq: 0, tcpAck: 0, payloadOffset: 0, payloadLength: 0,
  };
}

function reset(info: PacketInfo, offset: number): void {
  info.ethOffset = offset;
  info.ethertype = 0;
  info.vlanTags = 0;
  info.l3Offset = 0;
  info.ipVersion = 0;
  info.l3HeaderLength = 0;
  info.protocol = 0;
  info.srcOffset = 0;
  info.dstOffset = 0;
  info.addrLength = 0;
  info.fragment = false;
  info.l4Offset = 0;
  info.l4Length = 0;
  info.ipEnd = 0;
  info.srcPort = 0;
  info.dstPort = 0;
  info.tcpHeaderLength = 0;
  info.tcpFlags = 0;
  info.tcpSeq = 0;
  info.tcpAck = 0;
  info.payloadOffset = 0;
  info.payloadLength = 0;
}

/** Parses `frame` from `offset` (the start of the Ethernet header) into `info`. */
export function parsePacket(frame: Uint8Array, info: PacketInfo, offset = 0): ParseResult {
  reset(info, offset);
  const len = frame.length;
  if (len - offset < ETH_HEADER_LENGTH) return 'truncated';
  let at = offset + 12;
  let type = be16(frame, at);
  while (type === ETHERTYPE.VLAN || type === ETHERTYPE.QINQ) {
    if (info.vlanTags === MAX_VLAN_TAGS) {
      info.ethertype = type;
      return 'not-ip';
    }
    if (at + 6 > len) return 'truncated';
    at += 4;
    info.vlanTags++;
    type = be16(frame, at);
  }
  info.ethertype = type;
  const l3 = at + 2;
  info.l3Offset = l3;
  if (type === ETHERTYPE.IPV4) return parseIpv4(frame, info, l3);
  if (type === ETHERTYPE.IPV6) return parseIpv6(frame, info, l3);
  return 'not-ip';
}

function parseIpv4(frame: Uint8Array, info: PacketInfo, l3: number): ParseResult {
  if (frame.length - l3 < 20) return 'truncated';
  const vihl = frame[l3]!;
  if (vihl >>> 4 !== 4) return 'malformed';
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20) return 'malformed';
  const total = be16(frame, l3 + 2);
  if (total < ihl) return 'malformed';
  if (l3 + total > frame.length) return 'truncated';
  const frag = be16(frame, l3 + 6);
  info.ipVersion = 4;
  info.l3HeaderLength = ihl;
  info.protocol = frame[l3 + 9]!;
  info.srcOffset = l3 + 12;
  info.dstOffset = l3 + 16;
  info.addrLength = 4;
  info.fragment = (frag & 0x3fff) !== 0; // MF set or a non-zero fragment offset
  info.ipEnd = l3 + total;
  return parseL4(frame, info, l3 + ihl);
}

function parseIpv6(frame: Uint8Array, info: PacketInfo, l3: number): ParseResult {
  if (frame.length - l3 < 40) return 'truncated';
  if (frame[l3]! >>> 4 !== 6) return 'malformed';
  const payload = be16(frame, l3 + 4);
  const end = l3 + 40 + payload;
  if (end > frame.length) return 'truncated';
  info.ipVersion = 6;
  info.srcOffset = l3 + 8;
  info.dstOffset = l3 + 24;
  info.addrLength = 16;
  info.ipEnd = end;
  let next = frame[l3 + 6]!;
  let at = l3 + 40;
  for (let n = 0; ; n++) {
    if (next !== 0 && next !== 43 && next !== 60 && next !== 44 && next !== 51) break;
    if (n === MAX_IPV6_EXTENSIONS) return 'malformed';
    if (at + 8 > end) return 'truncated';
    let extLen: number;
    if (next === 44) {
      extLen = 8;
      if ((be16(frame, at + 2) & 0xfff9) !== 0) info.fragment = true; // offset or M flag
    } else if (next === 51) {
      extLen = (frame[at + 1]! + 2) * 4; // AH: length in 4-octet units minus 2 (RFC 4302 §2.2)
    } else {
      extLen = (frame[at + 1]! + 1) * 8; // RFC 8200 §4.3-4.6
    }
    next = frame[at]!;
    at += extLen;
    if (at > end) return 'truncated';
  }
  info.protocol = next;
  info.l3HeaderLength = at - l3;
  return parseL4(frame, info, at);
}

function parseL4(frame: Uint8Array, info: PacketInfo, l4: number): ParseResult {
  info.l4Offset = l4;
  info.l4Length = info.ipEnd - l4;
  info.payloadOffset = l4;
  info.payloadLength = info.l4Length;
  if (info.fragment) return 'ip';
  if (info.protocol === 6) {
    if (info.l4Length < 20) return 'truncated';
    const dataOffset = (frame[l4 + 12]! >>> 4) * 4;
    if (dataOffset < 20) return 'malformed';
    if (dataOffset > info.l4Length) return 'truncated';
    info.srcPort = be16(frame, l4);
    info.dstPort = be16(frame, l4 + 2);
    info.tcpSeq = be32(frame, l4 + 4);
    info.tcpAck = be32(frame, l4 + 8);
    info.tcpFlags = frame[l4 + 13]!;
    info.tcpHeaderLength = dataOffset;
    info.payloadOffset = l4 + dataOffset;
    info.payloadLength = info.l4Length - dataOffset;
  } else if (info.protocol === 17) {
    if (info.l4Length < 8) return 'truncated';
    info.srcPort = be16(frame, l4);
    info.dstPort = be16(frame, l4 + 2);
    info.payloadOffset = l4 + 8;
    info.payloadLength = info.l4Length - 8;
  }
  return 'ip';
}

/** Wrap-aware TCP sequence comparison (RFC 9293 §3.4): a before b. */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
/** a at or before b. */
export function seqAtOrBefore(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/** Text form of the address at `offset` (4 or 16 bytes): for messages and tests, never per frame. */
export function formatAddress(frame: Uint8Array, offset: number, length: number): string {
  if (length === 4) return `${frame[offset]}.${frame[offset + 1]}.${frame[offset + 2]}.${frame[offset + 3]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(be16(frame, offset + i).toString(16));
  return parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}
