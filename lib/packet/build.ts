// Building Ethernet/IPv4/IPv6 frames with TCP, UDP or ICMP (RFC 791, RFC 8200, RFC 9293, RFC 768,
// RFC 792): for tests, examples and tools that need well-formed frames with correct checksums.
// Not for the hot path (it allocates the frame it returns).

import { parseIpAddress } from './address.js';
import { ipv4HeaderChecksum, storeTransportChecksum, finishChecksum, onesSum } from './checksum.js';
import { writeBe16, writeBe32 } from '../base/endian.js';
import { macFromText } from '../base/mac.js';
import { newPacketInfo, parsePacket } from './parse.js';

export interface FrameSpec {
  /** "aa:bb:cc:dd:ee:ff"; defaults are locally administered addresses. */
  srcMac?: string;
  dstMac?: string;
  /** IPv4 or IPv6 literal; both must be the same family. */
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp' | 'icmp' | number;
  srcPort?: number;
  dstPort?: number;
  /** TCP fields. */
  seq?: number;
  ack?: number;
  /** TCP flag bits (TCP_FLAG). */
  flags?: number;
  window?: number;
  /** TCP options bytes (length a multiple of 4). */
  tcpOptions?: Uint8Array;
  payload?: Uint8Array;
  /** One 802.1Q tag with this VLAN id. */
  vlan?: number;
  ipId?: number;
  ttl?: number;
}

function mac(text: string | undefined, fallback: number[]): ArrayLike<number> {
  if (text === undefined) return fallback;
  const bytes = macFromText(text);
  if (bytes === undefined) throw new TypeError(`buildFrame: bad MAC ${text}`);
  return bytes;
}

/** A complete frame with IP and transport checksums filled in. */
export function buildFrame(spec: FrameSpec): Uint8Array {
  const src = parseIpAddress(spec.src);
  const dst = parseIpAddress(spec.dst);
  if (src === undefined || dst === undefined || src.length !== dst.length) {
    throw new TypeError(`buildFrame: src and dst must be IP literals of one family, got ${spec.src} / ${spec.dst}`);
  }
  const proto = spec.protocol === 'tcp' ? 6 : spec.protocol === 'udp' ? 17 : spec.protocol === 'icmp' ? (src.length === 4 ? 1 : 58) : spec.protocol;
  const payload = spec.payload ?? new Uint8Array(0);
  const opts = spec.tcpOptions ?? new Uint8Array(0);
  const l4Header = proto === 6 ? 20 + opts.length : proto === 17 ? 8 : proto === 1 || proto === 58 ? 8 : 0;
  const l4Len = l4Header + payload.length;
  const l3Len = src.length === 4 ? 20 : 40;
  const vlanLen = spec.vlan === undefined ? 0 : 4;
  const frame = new Uint8Array(14 + vlanLen + l3Len + l4Len);
  frame.set(mac(spec.dstMac, [0x02, 0, 0, 0, 0, 2]), 0);
  frame.set(mac(spec.srcMac, [0x02, 0, 0, 0, 0, 1]), 6);
  let at = 12;
  if (spec.vlan !== undefined) {
    frame[at] = 0x81;
    frame[at + 1] = 0x00;
    writeBe16(frame, at + 2, spec.vlan & 0x0fff);
    at += 4;
  }
  const l3 = at + 2;
  if (src.length === 4) {
    frame[at] = 0x08;
    frame[at + 1] = 0x00;
    frame[l3] = 0x45;
    const total = 20 + l4Len;
    writeBe16(frame, l3 + 2, total);
    const id = spec.ipId ?? 1;
    writeBe16(frame, l3 + 4, id);
    frame[l3 + 6] = 0x40; // DF
    frame[l3 + 8] = spec.ttl ?? 64;
    frame[l3 + 9] = proto;
    frame.set(src, l3 + 12);
    frame.set(dst, l3 + 16);
  } else {
    frame[at] = 0x86;
    frame[at + 1] = 0xdd;
    frame[l3] = 0x60;
    writeBe16(frame, l3 + 4, l4Len);
    frame[l3 + 6] = proto;
    frame[l3 + 7] = spec.ttl ?? 64;
    frame.set(src, l3 + 8);
    frame.set(dst, l3 + 24);
  }
  const l4 = l3 + l3Len;
  if (proto === 6) {
    writeBe16(frame, l4, spec.srcPort ?? 0);
    writeBe16(frame, l4 + 2, spec.dstPort ?? 0);
    writeBe32(frame, l4 + 4, (spec.seq ?? 0) >>> 0);
    writeBe32(frame, l4 + 8, (spec.ack ?? 0) >>> 0);
    frame[l4 + 12] = ((20 + opts.length) / 4) << 4;
    frame[l4 + 13] = spec.flags ?? 0;
    const win = spec.window ?? 64240;
    writeBe16(frame, l4 + 14, win);
    frame.set(opts, l4 + 20);
  } else if (proto === 17) {
    writeBe16(frame, l4, spec.srcPort ?? 0);
    writeBe16(frame, l4 + 2, spec.dstPort ?? 0);
    writeBe16(frame, l4 + 4, l4Len);
  } else if (proto === 1 || proto === 58) {
    frame[l4] = proto === 1 ? 8 : 128; // echo request
  }
  frame.set(payload, l4 + l4Header);
  const info = newPacketInfo();
  if (parsePacket(frame, info) !== 'ip') throw new Error('buildFrame: built frame does not parse');
  if (src.length === 4) {
    const c = ipv4HeaderChecksum(frame, info);
    writeBe16(frame, l3 + 10, c);
  }
  if (proto === 6 || proto === 17) storeTransportChecksum(frame, info);
  else if (proto === 1) {
    const c = finishChecksum(onesSum(frame, l4, l4 + l4Len));
    writeBe16(frame, l4 + 2, c);
  }
  return frame;
}
