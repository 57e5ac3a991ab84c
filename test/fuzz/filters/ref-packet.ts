// The filter fuzzer's own view of a frame: an independent reading of Ethernet (IEEE 802.3),
// 802.1Q/802.1ad tags, IPv4 (RFC 791), IPv6 and its extension headers (RFC 8200 §4, AH RFC 4302
// §2.2), TCP (RFC 9293 §3.1) and UDP (RFC 768), plus RFC 1071 checksums — written apart from
// lib/packet/ so the oracles do not judge the filters with the code under test. It follows the
// choices lib/packet/README.md documents (at most 2 tags, at most 8 extension headers, lengths
// bounded by both the frame and the IP length fields). Not for speed: it allocates.

export type RefKind = 'ip' | 'not-ip' | 'truncated' | 'malformed';

export interface RefPacket {
  kind: RefKind;
  /** The rest only for kind 'ip'. */
  version: 4 | 6;
  proto: number;
  src: Uint8Array;
  dst: Uint8Array;
  fragment: boolean;
  /** Ports and the TCP fields only when not a fragment and the transport header is whole. */
  hasPorts: boolean;
  sport: number;
  dport: number;
  l3: number;
  l4: number;
  ipEnd: number;
  tcpHeaderLength: number;
  flags: number;
  seq: number;
  ack: number;
  payloadOffset: number;
  payloadLength: number;
}

const u16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;
const u32 = (b: Uint8Array, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

function bare(kind: RefKind): RefPacket {
  return {
    kind, version: 4, proto: 0, src: new Uint8Array(0), dst: new Uint8Array(0), fragment: false, hasPorts: false, sport: 0, dport: 0,
    l3: 0, l4: 0, ipEnd: 0, tcpHeaderLength: 0, flags: 0, seq: 0, ack: 0, payloadOffset: 0, payloadLength: 0,
  };
}

export function refParse(f: Uint8Array): RefPacket {
  if (f.length < 14) return bare('truncated');
  let typeAt = 12;
  let tags = 0;
  for (;;) {
    const t = u16(f, typeAt);
    if (t !== 0x8100 && t !== 0x88a8) break;
    if (tags === 2) return bare('not-ip');
    // A tag is 4 bytes (TPID + TCI); the next ethertype must be there too.
    if (typeAt + 6 > f.length) return bare('truncated');
    typeAt += 4;
    tags++;
  }
  const type = u16(f, typeAt);
  const l3 = typeAt + 2;
  if (type === 0x0800) return v4(f, l3);
  if (type === 0x86dd) return v6(f, l3);
  return bare('not-ip');
}

function v4(f: Uint8Array, l3: number): RefPacket {
  if (f.length - l3 < 20) return bare('truncated');
  if (f[l3]! >> 4 !== 4) return bare('malformed');
  const hl = (f[l3]! & 15) << 2;
  if (hl < 20) return bare('malformed');
  const total = u16(f, l3 + 2);
  if (total < hl) return bare('malformed');
  if (l3 + total > f.length) return bare('truncated');
  const p = bare('ip');
  p.version = 4;
  p.proto = f[l3 + 9]!;
  p.src = f.slice(l3 + 12, l3 + 16);
  p.dst = f.slice(l3 + 16, l3 + 20);
  const fragWord = u16(f, l3 + 6);
  p.fragment = (fragWord & 0x2000) !== 0 || (fragWord & 0x1fff) !== 0;
  p.l3 = l3;
  p.ipEnd = l3 + total;
  return transport(f, p, l3 + hl);
}

function v6(f: Uint8Array, l3: number): RefPacket {
  if (f.length - l3 < 40) return bare('truncated');
  if (f[l3]! >> 4 !== 6) return bare('malformed');
  const end = l3 + 40 + u16(f, l3 + 4);
  if (end > f.length) return bare('truncated');
  const p = bare('ip');
  p.version = 6;
  p.src = f.slice(l3 + 8, l3 + 24);
  p.dst = f.slice(l3 + 24, l3 + 40);
  p.l3 = l3;
  p.ipEnd = end;
  const EXT = new Set([0, 43, 44, 51, 60]);
  let next = f[l3 + 6]!;
  let at = l3 + 40;
  let seen = 0;
  while (EXT.has(next)) {
    if (seen === 8) return bare('malformed');
    seen++;
    if (at + 8 > end) return bare('truncated');
    let len: number;
    if (next === 44) {
      len = 8;
      const offFlags = u16(f, at + 2);
      if (offFlags >> 3 !== 0 || (offFlags & 1) !== 0) p.fragment = true;
    } else if (next === 51) len = 4 * (f[at + 1]! + 2);
    else len = 8 * (f[at + 1]! + 1);
    next = f[at]!;
    at += len;
    if (at > end) return bare('truncated');
  }
  p.proto = next;
  return transport(f, p, at);
}

function transport(f: Uint8Array, p: RefPacket, l4: number): RefPacket {
  p.l4 = l4;
  const l4len = p.ipEnd - l4;
  p.payloadOffset = l4;
  p.payloadLength = l4len;
  if (p.fragment) return p;
  if (p.proto === 6) {
    if (l4len < 20) return bare('truncated');
    const doff = (f[l4 + 12]! >> 4) * 4;
    if (doff < 20) return bare('malformed');
    if (doff > l4len) return bare('truncated');
    p.hasPorts = true;
    p.sport = u16(f, l4);
    p.dport = u16(f, l4 + 2);
    p.seq = u32(f, l4 + 4);
    p.ack = u32(f, l4 + 8);
    p.flags = f[l4 + 13]!;
    p.tcpHeaderLength = doff;
    p.payloadOffset = l4 + doff;
    p.payloadLength = l4len - doff;
  } else if (p.proto === 17) {
    if (l4len < 8) return bare('truncated');
    p.hasPorts = true;
    p.sport = u16(f, l4);
    p.dport = u16(f, l4 + 2);
    p.payloadOffset = l4 + 8;
    p.payloadLength = l4len - 8;
  }
  return p;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Direction-independent name of a packet's conversation (fine-grained: protocol, both endpoints, fragment or not). */
export function refFlow(p: RefPacket): string {
  const a = `${hex(p.src)}:${p.sport}`;
  const b = `${hex(p.dst)}:${p.dport}`;
  return `${p.proto}|${a < b ? a : b}|${a < b ? b : a}${p.fragment ? '|frag' : ''}`;
}

/** True when the packet's source endpoint sorts first in refFlow (the same side every time). */
export function refForward(p: RefPacket): boolean {
  return `${hex(p.src)}:${p.sport}` <= `${hex(p.dst)}:${p.dport}`;
}

/** RFC 1071 one's-complement sum of b[from, to). */
export function sum16(b: Uint8Array, from: number, to: number, acc = 0): number {
  for (let i = from; i < to; i += 2) acc += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/** The TCP/UDP checksum the segment of `p` should carry (its own field counted as zero). */
export function refL4Checksum(f: Uint8Array, p: RefPacket): number {
  const len = p.ipEnd - p.l4;
  const field = p.l4 + (p.proto === 6 ? 16 : 6);
  const copy = f.slice(p.l4, p.ipEnd);
  copy[field - p.l4] = 0;
  copy[field - p.l4 + 1] = 0;
  let acc = sum16(p.src, 0, p.src.length);
  acc = sum16(p.dst, 0, p.dst.length, acc);
  acc += p.proto + (len & 0xffff) + Math.floor(len / 0x10000);
  acc = sum16(copy, 0, copy.length, acc);
  const c = ~acc & 0xffff;
  return p.proto === 17 && c === 0 ? 0xffff : c;
}

/** Stores the right TCP/UDP checksum in place (no-op when `p` has no whole transport header). */
export function refFixL4Checksum(f: Uint8Array, p: RefPacket): void {
  if (p.kind !== 'ip' || !p.hasPorts) return;
  const at = p.l4 + (p.proto === 6 ? 16 : 6);
  const c = refL4Checksum(f, p);
  f[at] = c >> 8;
  f[at + 1] = c & 0xff;
}

/** Offset of the first TCP option `kind` (a walk that stops at EOL or at any length that does not fit), or -1. */
export function refTcpOption(f: Uint8Array, p: RefPacket, kind: number): number {
  const end = p.l4 + p.tcpHeaderLength;
  let i = p.l4 + 20;
  while (i < end) {
    const k = f[i]!;
    if (k === 0) break;
    if (k === 1) {
      i += 1;
      continue;
    }
    if (i + 2 > end) break;
    const len = f[i + 1]!;
    if (len < 2 || i + len > end) break;
    if (k === kind) return i;
    i += len;
  }
  return -1;
}

export { u16, u32 };
