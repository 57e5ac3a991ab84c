// Frames the scripted guest sends (no spec section: Ethernet II, ARP (RFC 826), IPv4 (RFC 791)
// and ICMP echo (RFC 792) as a Linux guest would put them on the wire).

import { writeBe16 } from '../base/endian.js';
import { inetChecksum } from '../packet/checksum.js';

export interface GuestAddressing {
  mac: Uint8Array;
  ip: readonly [number, number, number, number];
}

const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;

/** An ARP who-has for `targetIp`, broadcast. */
export function arpRequest(from: GuestAddressing, targetIp: readonly number[]): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6);
  f.set(from.mac, 6);
  writeBe16(f, 12, ETH_P_ARP);
  writeBe16(f, 14, 1); // hardware type: Ethernet
  writeBe16(f, 16, ETH_P_IP);
  f[18] = 6;
  f[19] = 4;
  writeBe16(f, 20, 1); // request
  f.set(from.mac, 22);
  f.set(from.ip, 28);
  f.set(targetIp, 38);
  return f;
}

/** An ICMP echo request from `from` to (`toMac`, `toIp`) with identifier and sequence. */
export function icmpEcho(from: GuestAddressing, toMac: Uint8Array, toIp: readonly number[], id: number, seq: number, payload = 56): Uint8Array {
  const ipLen = 20 + 8 + payload;
  const f = new Uint8Array(14 + ipLen);
  f.set(toMac, 0);
  f.set(from.mac, 6);
  writeBe16(f, 12, ETH_P_IP);
  const ip = 14;
  f[ip] = 0x45;
  writeBe16(f, ip + 2, ipLen);
  writeBe16(f, ip + 4, seq & 0xffff);
  f[ip + 8] = 64; // TTL
  f[ip + 9] = 1; // ICMP
  f.set(from.ip, ip + 12);
  f.set(toIp, ip + 16);
  writeBe16(f, ip + 10, inetChecksum(f, ip, 20));
  const icmp = ip + 20;
  f[icmp] = 8; // echo request
  writeBe16(f, icmp + 4, id);
  writeBe16(f, icmp + 6, seq);
  for (let i = 0; i < payload; i++) f[icmp + 8 + i] = i & 0xff;
  writeBe16(f, icmp + 2, inetChecksum(f, icmp, 8 + payload));
  return f;
}

/**
 * The ARP reply to `request` when it asks for `me.ip` (a who-has from another host), else null.
 * Answered as Linux does: to the asker's hardware address, with our address as the sender.
 */
export function arpReplyFor(me: GuestAddressing, request: Uint8Array): Uint8Array | null {
  if (request.length < 42 || ((request[12]! << 8) | request[13]!) !== ETH_P_ARP || ((request[20]! << 8) | request[21]!) !== 1) return null;
  for (let i = 0; i < 4; i++) if (request[38 + i] !== me.ip[i]) return null;
  const f = new Uint8Array(42);
  f.set(request.subarray(22, 28), 0); // to the asker
  f.set(me.mac, 6);
  writeBe16(f, 12, ETH_P_ARP);
  writeBe16(f, 14, 1);
  writeBe16(f, 16, ETH_P_IP);
  f[18] = 6;
  f[19] = 4;
  writeBe16(f, 20, 2); // reply
  f.set(me.mac, 22);
  f.set(me.ip, 28);
  f.set(request.subarray(22, 32), 32); // target: the asker's MAC and IP
  return f;
}

/**
 * The ICMP echo reply to `request` when it is an echo request to `me` (our MAC and IP), else null:
 * the same identifier, sequence and data, addresses swapped, checksums made again.
 */
export function echoReplyFor(me: GuestAddressing, request: Uint8Array): Uint8Array | null {
  if (request.length < 42 || ((request[12]! << 8) | request[13]!) !== ETH_P_IP || (request[14]! & 0xf0) !== 0x40 || request[23] !== 1) return null;
  for (let i = 0; i < 6; i++) if (request[i] !== me.mac[i]) return null;
  for (let i = 0; i < 4; i++) if (request[30 + i] !== me.ip[i]) return null;
  const ihl = (request[14]! & 0x0f) * 4;
  const ipLen = (request[16]! << 8) | request[17]!;
  const icmp = 14 + ihl;
  if (ihl < 20 || ipLen < ihl + 8 || 14 + ipLen > request.length || request[icmp] !== 8) return null;
  const f = request.slice(0, 14 + ipLen);
  f.set(request.subarray(6, 12), 0);
  f.set(me.mac, 6);
  f.set(request.subarray(30, 34), 14 + 12); // source: us
  f.set(request.subarray(26, 30), 14 + 16); // destination: the asker
  f[14 + 8] = 64; // TTL
  writeBe16(f, 14 + 10, 0);
  writeBe16(f, 14 + 10, inetChecksum(f, 14, ihl));
  f[icmp] = 0; // echo reply
  writeBe16(f, icmp + 2, 0);
  writeBe16(f, icmp + 2, inetChecksum(f, icmp, ipLen - ihl));
  return f;
}

/** What kind of reply a received frame is, for the scripted guest's bookkeeping. */
export function classifyReply(f: Uint8Array): 'arp-reply' | 'echo-reply' | 'other' {
  if (f.length >= 42 && ((f[12]! << 8) | f[13]!) === ETH_P_ARP && ((f[20]! << 8) | f[21]!) === 2) return 'arp-reply';
  if (f.length >= 42 && ((f[12]! << 8) | f[13]!) === ETH_P_IP && f[23] === 1 && f[34] === 0) return 'echo-reply';
  return 'other';
}

/** The sender hardware address of an ARP reply. */
export function arpSenderMac(f: Uint8Array): Uint8Array {
  return f.slice(22, 28);
}
