// Internet checksum (RFC 1071) and the TCP/UDP pseudo-header checksums for IPv4 (RFC 793 §3.1,
// RFC 768) and IPv6 (RFC 8200 §8.1). Pure functions over a frame and offsets: no allocation.

import type { PacketInfo } from './parse.js';

/** Adds bytes [start, end) to a ones'-complement accumulator (big-endian 16-bit words; odd tail padded). */
export function onesSum(buf: Uint8Array, start: number, end: number, acc = 0): number {
  let i = start;
  // A 32-bit accumulator cannot overflow before 2^16 words (128 KiB); frames are far smaller.
  for (; i + 1 < end; i += 2) acc += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) acc += buf[i]! << 8;
  return acc;
}

/** Folds an accumulator to 16 bits (end-around carry). */
export function foldSum(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return acc;
}

/** The checksum to store: the complement of the folded sum. */
export function finishChecksum(acc: number): number {
  return ~foldSum(acc) & 0xffff;
}

/** RFC 1071 checksum of `len` bytes at `off` (to store, or 0 when verifying a block that holds one). */
export function inetChecksum(b: Uint8Array, off: number, len: number): number {
  return finishChecksum(onesSum(b, off, off + len));
}

/** IPv4 header checksum (RFC 791 §3.1) of the header at `info.l3Offset`, computed with the field taken as zero. */
export function ipv4HeaderChecksum(frame: Uint8Array, info: PacketInfo): number {
  const start = info.l3Offset;
  const end = start + info.l3HeaderLength;
  let acc = onesSum(frame, start, start + 10);
  acc = onesSum(frame, start + 12, end, acc);
  return finishChecksum(acc);
}

/** Sum of the pseudo header: addresses, protocol, and the transport length (RFC 793 / RFC 8200 §8.1). */
export function pseudoHeaderSum(frame: Uint8Array, info: PacketInfo): number {
  let acc = onesSum(frame, info.srcOffset, info.srcOffset + info.addrLength);
  acc = onesSum(frame, info.dstOffset, info.dstOffset + info.addrLength, acc);
  acc += info.protocol;
  acc += info.l4Length & 0xffff;
  acc += info.l4Length >>> 16;
  return acc;
}

/** Offset of the checksum field inside a TCP (16) or UDP (6) header; -1 for other protocols. */
export function l4ChecksumField(protocol: number): number {
  return protocol === 6 ? 16 : protocol === 17 ? 6 : -1;
}

/**
 * The TCP or UDP checksum of the segment described by `info`, computed with the checksum field
 * taken as zero (so it is the value to store). UDP's "no checksum" 0 is returned as 0xffff (RFC 768).
 */
export function transportChecksum(frame: Uint8Array, info: PacketInfo): number {
  const field = info.l4Offset + l4ChecksumField(info.protocol);
  let acc = pseudoHeaderSum(frame, info);
  acc = onesSum(frame, info.l4Offset, field, acc);
  acc = onesSum(frame, field + 2, info.l4Offset + info.l4Length, acc);
  const sum = finishChecksum(acc);
  return info.protocol === 17 && sum === 0 ? 0xffff : sum;
}

/** Recomputes and stores the TCP/UDP checksum in place. False when the packet has no full TCP/UDP segment. */
export function storeTransportChecksum(frame: Uint8Array, info: PacketInfo): boolean {
  const rel = l4ChecksumField(info.protocol);
  if (rel < 0 || info.fragment || info.l4Length < rel + 2) return false;
  const sum = transportChecksum(frame, info);
  frame[info.l4Offset + rel] = sum >>> 8;
  frame[info.l4Offset + rel + 1] = sum & 0xff;
  return true;
}

/** True when the stored TCP/UDP checksum is right (a UDP checksum of 0 means "none" and passes). */
export function transportChecksumValid(frame: Uint8Array, info: PacketInfo): boolean {
  const rel = l4ChecksumField(info.protocol);
  if (rel < 0 || info.fragment || info.l4Length < rel + 2) return false;
  const at = info.l4Offset + rel;
  const stored = (frame[at]! << 8) | frame[at + 1]!;
  if (info.protocol === 17 && stored === 0 && info.ipVersion === 4) return true;
  return stored === transportChecksum(frame, info);
}
