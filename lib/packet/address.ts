// IP address literals to bytes (IPv4 dotted quad, RFC 791; IPv6 text form, RFC 4291 §2.2, incl.
// `::` and an embedded IPv4 tail). Used when management gives an address, never per frame.

import { isIP } from 'node:net';

/** The 4 or 16 bytes of an IP address literal, or undefined when `text` is not one. */
export function parseIpAddress(text: string): Uint8Array | undefined {
  const kind = isIP(text);
  if (kind === 4) return Uint8Array.from(text.split('.').map(Number));
  if (kind !== 6) return undefined;
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const words: number[] = [];
  let tailV4: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) > 0) {
    tailV4 = s.slice(lastColon + 1).split('.').map(Number);
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = s.split('::');
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length > 1 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const fill = 8 - head.length - tail.length;
  for (const w of head) words.push(parseInt(w, 16));
  for (let i = 0; i < fill && halves.length > 1; i++) words.push(0);
  for (const w of tail) words.push(parseInt(w, 16));
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >>> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  if (tailV4.length === 4) out.set(tailV4, 12);
  return out;
}

/** True when `frame[offset..offset+bytes.length)` equals `bytes`. */
export function bytesEqualAt(frame: Uint8Array, offset: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (frame[offset + i] !== bytes[i]) return false;
  return true;
}
