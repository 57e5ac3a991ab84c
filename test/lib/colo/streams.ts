// Guest output streams for colo-compare tests: the primary's and the secondary's packets of the
// same conversations (the secondary's already in the primary's sequence space, as its
// filter-rewriter leaves them), cut into segments independently.

import { buildFrame, TCP_FLAG } from '../../../lib/packet/index.js';

export const GUEST = '192.168.7.2';
export const CLIENT = '192.168.7.100';
const ISN = 0xfffffe00; // the data crosses the 2^32 wrap

/** Payload bytes 0..n-1 of a deterministic stream. */
export function streamBytes(n: number, salt = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, k) => (k * 7 + salt) & 0xff);
}

/** A server's TCP answer: SYN/ACK, then `data` cut at `cuts`, then FIN. */
export function tcpStream(data: Uint8Array, cuts: number[], opts: { isn?: number; ipId?: number; port?: number } = {}): Uint8Array[] {
  const isn = opts.isn ?? ISN;
  const port = opts.port ?? 40000;
  const seg = (seq: number, flags: number, payload?: Uint8Array): Uint8Array =>
    buildFrame({ src: GUEST, dst: CLIENT, protocol: 'tcp', srcPort: 8080, dstPort: port, seq: seq >>> 0, ack: 5001, flags, payload, ipId: opts.ipId });
  const out = [seg(isn, TCP_FLAG.SYN | TCP_FLAG.ACK)];
  let at = 0;
  for (const end of [...cuts, data.length]) {
    out.push(seg(isn + 1 + at, TCP_FLAG.ACK | TCP_FLAG.PSH, data.subarray(at, end)));
    at = end;
  }
  out.push(seg(isn + 1 + data.length, TCP_FLAG.FIN | TCP_FLAG.ACK));
  return out;
}

export function udp(payload: Uint8Array, ipId = 1, port = 53): Uint8Array {
  return buildFrame({ src: GUEST, dst: CLIENT, protocol: 'udp', srcPort: port, dstPort: 33333, payload, ipId });
}

export function icmp(payload: Uint8Array, ipId = 1): Uint8Array {
  return buildFrame({ src: GUEST, dst: CLIENT, protocol: 'icmp', payload, ipId });
}

export function arp(): Uint8Array {
  const f = new Uint8Array(42).fill(0xff, 0, 6);
  f[12] = 0x08;
  f[13] = 0x06;
  return f;
}
