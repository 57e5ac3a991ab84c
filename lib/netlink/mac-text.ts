// MAC address text form "aa:bb:cc:dd:ee:ff" (IEEE 802 canonical, lower case), for netlink
// attributes and ioctls. Parsing throws on anything else (a programmer or caller error).

import { NetlinkError } from './errors.js';

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function parseMacString(mac: string): Uint8Array {
  if (typeof mac !== 'string' || !MAC_RE.test(mac)) throw new NetlinkError('netlink.bad-value', `MAC address must look like "52:54:00:12:34:56", got ${String(mac)}`);
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function formatMacBytes(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (i === 0 ? '' : ':') + b[i]!.toString(16).padStart(2, '0');
  return s;
}

/** True for a group (multicast or broadcast) address: the I/G bit, bit 0 of the first octet. */
export function isGroupMac(b: Uint8Array): boolean {
  return b.length === 6 && (b[0]! & 1) === 1;
}
