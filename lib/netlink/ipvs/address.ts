// IP address text ↔ bytes for IPVS (no VIRTIO section: RFC 4291 §2.2 text forms, RFC 5952 for
// the canonical IPv6 text, which is what glibc's inet_ntop and so ipvsadm print). Bad text is a
// caller error: NetlinkError('netlink.bad-value') at once.

import { NetlinkError } from '../errors.js';

export type IpFamily = 'inet' | 'inet6';

const bad = (what: string, text: string): NetlinkError => new NetlinkError('netlink.bad-value', `${what}: ${JSON.stringify(text)} is not an IPv4 or IPv6 address`);

/** The family of an address text: inet6 when it has a colon. */
export function familyOf(text: string): IpFamily {
  return text.includes(':') ? 'inet6' : 'inet';
}

function parseV4(text: string, what: string): number[] {
  const parts = text.split('.');
  if (parts.length !== 4) throw bad(what, text);
  return parts.map((p) => {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) throw bad(what, text);
    return Number(p);
  });
}

/** 4 bytes (inet) or 16 bytes (inet6) in network order. */
export function addressBytes(text: string, what = 'address'): Uint8Array {
  if (typeof text !== 'string') throw bad(what, String(text));
  if (familyOf(text) === 'inet') return Uint8Array.from(parseV4(text, what));
  let head = text;
  const tail: number[] = [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = parseV4(v4[2]!, what);
    head = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
  }
  const groups = (s: string): number[] =>
    s === ''
      ? []
      : s.split(':').map((g) => {
          if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad(what, text);
          return parseInt(g, 16);
        });
  const halves = head.split('::');
  if (halves.length > 2) throw bad(what, text);
  let words: number[];
  if (halves.length === 2) {
    const left = groups(halves[0]!);
    const right = [...groups(halves[1]!), ...tail];
    const fill = 8 - left.length - right.length;
    if (fill < 1) throw bad(what, text);
    words = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    words = [...groups(head), ...tail];
  }
  if (words.length !== 8) throw bad(what, text);
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** The text form: dotted quad, or RFC 5952 (lowercase, the longest run of ≥ 2 zero groups as ::). */
export function addressText(bytes: Uint8Array, family: IpFamily): string {
  if (family === 'inet') return Array.from(bytes.subarray(0, 4)).join('.');
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}
