// Frames as a Linux guest puts them on the wire (no spec section: Ethernet II, ARP (RFC 826), IPv4
// (RFC 791) and ICMP echo (RFC 792)), built fresh each call: for the SimPeer tests and tools. The
// scripted guest itself sends from preallocated buffers (lib/driver/guest-stack.ts).

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
