// TCP options (RFC 9293 §3.2; SACK RFC 2018 §3; timestamps RFC 7323 §3): finding one in a parsed
// segment. Malformed option lists (a length below 2 or past the header) end the walk: nothing
// past them is trusted.

import type { PacketInfo } from './parse.js';

export const TCPOPT = { EOL: 0, NOP: 1, MSS: 2, WSCALE: 3, SACK_PERMITTED: 4, SACK: 5, TIMESTAMP: 8 } as const;
/** Length of the timestamp option (kind, length, TSval, TSecr). */
export const TCPOLEN_TIMESTAMP = 10;

/** Offset in `frame` of the first option of `kind` in the TCP header `info` describes, or -1. */
export function tcpOptionOffset(frame: Uint8Array, info: PacketInfo, kind: number): number {
  const end = info.l4Offset + info.tcpHeaderLength;
  let i = info.l4Offset + 20;
  while (i < end) {
    const k = frame[i]!;
    if (k === TCPOPT.EOL) return -1;
    if (k === TCPOPT.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return -1;
    const len = frame[i + 1]!;
    if (len < 2 || i + len > end) return -1;
    if (k === kind) return i;
    i += len;
  }
  return -1;
}
