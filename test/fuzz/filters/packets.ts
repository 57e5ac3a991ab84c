// Frames for the filter fuzzer: a small builder (Ethernet, 0-3 VLAN tags, IPv4 with options and
// fragment fields, IPv6 with extension headers, TCP with options, UDP, ICMP; checksums right
// unless a mutation breaks them) and fast-check generators of
// - hostile frames: random bytes, truncation anywhere, IPv4 options, IPv4 fragments (tiny,
//   overlapping), IPv6 extension-header chains (bogus lengths too), three VLAN tags, bad
//   checksums, random TCP flags / sequence numbers / options (SACK, timestamps, lying lengths),
//   bytes flipped in any header field;
// - well-formed conversations: TCP handshakes, data both ways cut differently on each side, FIN or
//   RST, retransmissions; UDP exchanges; SYN floods over many ports.
// Frames are built from plain JSON values, and a case holds the frames' bytes (hex), so a shrunk
// case is a fixture that replays without this file's generators.

import fc from 'fast-check';
import { refFixL4Checksum, refParse, sum16 } from './ref-packet.js';

/** Addresses shared by every generator, so hostile frames land on the flows the clean ones use. */
export const V4 = ['10.0.0.1', '10.0.0.2', '192.168.7.2', '192.168.7.100'];
export const V6 = ['fd00::1', 'fd00::2', 'fd00::7:2', 'fd00::7:100'];
/** Index of the guest's and the client's address in V4 / V6. */
export const GUEST = 2;
export const CLIENT = 3;

function addrBytes(v6: boolean, i: number): number[] {
  if (!v6) return V4[i]!.split('.').map(Number);
  const out = new Array<number>(16).fill(0);
  out[0] = 0xfd;
  const tail = [[0, 1], [0, 2], [7, 2], [7, 0x100]][i]!;
  out[12] = tail[0]! >> 8;
  out[13] = tail[0]! & 0xff;
  out[14] = tail[1]! >> 8;
  out[15] = tail[1]! & 0xff;
  return out;
}

export interface PktSpec {
  v6?: boolean;
  src: number;
  dst: number;
  /** 6 TCP, 17 UDP, 1/58 ICMP, anything else: raw payload after IP. */
  proto: number;
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  /** TCP options (padded with EOL to a multiple of 4). */
  opts?: number[];
  payload?: number[] | Uint8Array;
  /** 802.1Q tags (0-3; a third is more than the parsers follow). */
  vlans?: number;
  /** IPv4 options (padded to a multiple of 4). */
  ipOpts?: number[];
  /** IPv6 extension headers in order: next-header type and its length byte. */
  ext?: { type: number; len: number }[];
  /** IPv4 fragment offset (8-byte units) and More Fragments. */
  frag?: { off: number; mf: boolean };
}

const pad4 = (a: number[]): number[] => [...a, ...new Array<number>((4 - (a.length % 4)) % 4).fill(0)];

/** A frame from a spec, every checksum right. */
export function mk(s: PktSpec): Uint8Array {
  const v6 = s.v6 === true;
  const payload = Array.from(s.payload ?? []);
  let l4: number[];
  if (s.proto === 6) {
    const opts = pad4(s.opts ?? []);
    const seq = (s.seq ?? 0) >>> 0;
    const ack = (s.ack ?? 0) >>> 0;
    l4 = [
      (s.sport ?? 0) >> 8, (s.sport ?? 0) & 0xff, (s.dport ?? 0) >> 8, (s.dport ?? 0) & 0xff,
      seq >>> 24, (seq >> 16) & 0xff, (seq >> 8) & 0xff, seq & 0xff, ack >>> 24, (ack >> 16) & 0xff, (ack >> 8) & 0xff, ack & 0xff,
      ((20 + opts.length) / 4) << 4, s.flags ?? 0, 0xfa, 0xf0, 0, 0, 0, 0, ...opts, ...payload,
    ];
  } else if (s.proto === 17) {
    const n = 8 + payload.length;
    l4 = [(s.sport ?? 0) >> 8, (s.sport ?? 0) & 0xff, (s.dport ?? 0) >> 8, (s.dport ?? 0) & 0xff, n >> 8, n & 0xff, 0, 0, ...payload];
  } else if (s.proto === 1 || s.proto === 58) {
    l4 = [s.proto === 1 ? 8 : 128, 0, 0, 0, 0, 1, 0, 1, ...payload];
  } else l4 = payload;
  const eth = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
  for (let v = 0; v < (s.vlans ?? 0); v++) eth.push(v === 0 && (s.vlans ?? 0) > 1 ? 0x88 : 0x81, v === 0 && (s.vlans ?? 0) > 1 ? 0xa8 : 0x00, 0, 10 + v);
  let l3: number[];
  if (!v6) {
    const opts = pad4(s.ipOpts ?? []);
    const hl = 20 + opts.length;
    const total = hl + l4.length;
    const fw = s.frag === undefined ? 0x4000 : (s.frag.mf ? 0x2000 : 0) | (s.frag.off & 0x1fff);
    l3 = [0x40 | (hl / 4), 0, total >> 8, total & 0xff, 0x12, 0x34, fw >> 8, fw & 0xff, 64, s.proto, 0, 0, ...addrBytes(false, s.src), ...addrBytes(false, s.dst), ...opts];
    eth.push(0x08, 0x00);
  } else {
    const ext: number[] = [];
    const chain = s.ext ?? [];
    for (let k = 0; k < chain.length; k++) {
      const e = chain[k]!;
      const next = k + 1 < chain.length ? chain[k + 1]!.type : s.proto;
      const size = e.type === 44 ? 8 : e.type === 51 ? 4 * (e.len + 2) : 8 * (e.len + 1);
      const h = new Array<number>(Math.min(size, 64)).fill(0);
      h[0] = next;
      h[1] = e.len;
      if (e.type === 44) h[3] = 1; // offset 0, M set: a first fragment
      ext.push(...h);
    }
    const plen = ext.length + l4.length;
    l3 = [0x60, 0, 0, 0, plen >> 8, plen & 0xff, chain.length > 0 ? chain[0]!.type : s.proto, 64, ...addrBytes(true, s.src), ...addrBytes(true, s.dst), ...ext];
    eth.push(0x86, 0xdd);
  }
  const f = Uint8Array.from([...eth, ...l3, ...l4]);
  const p = refParse(f);
  if (!v6 && p.kind === 'ip') {
    const c = ~sum16(f, p.l3, p.l4) & 0xffff;
    f[p.l3 + 10] = c >> 8;
    f[p.l3 + 11] = c & 0xff;
  }
  if (p.kind === 'ip') refFixL4Checksum(f, p);
  if (p.kind === 'ip' && (s.proto === 1 || s.proto === 58) && !p.fragment && p.ipEnd - p.l4 >= 4 && !v6) {
    const c = ~sum16(f, p.l4, p.ipEnd) & 0xffff;
    f[p.l4 + 2] = c >> 8;
    f[p.l4 + 3] = c & 0xff;
  }
  return f;
}

export const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const bytesOf = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

export const TCP = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32 } as const;

// --- hostile frames ----------------------------------------------------------------------------

/** A mutation applied to a built frame. */
type Mutation =
  | { m: 'cut'; at: number }
  | { m: 'flip'; at: number; x: number }
  | { m: 'bad-sum' }
  | { m: 'append'; n: number };

function mutate(f: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = f;
  for (const m of ms) {
    if (m.m === 'cut') b = b.slice(0, m.at % (b.length + 1));
    else if (m.m === 'flip' && b.length > 0) b[m.at % b.length] = b[m.at % b.length]! ^ m.x;
    else if (m.m === 'bad-sum' && b.length > 40) b[b.length - 1] = b[b.length - 1]! ^ 0x5a;
    else if (m.m === 'append') b = Uint8Array.from([...b, ...new Array<number>(m.n).fill(0xee)]);
  }
  return b;
}

/** Header bytes the flips aim at (Ethernet type, IP version/IHL/length/fragment, TCP offset/flags). */
const HOT = [12, 13, 14, 16, 17, 18, 20, 21, 23, 26, 34, 46, 47, 54, 58, 59];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ m: fc.constant('cut' as const), at: fc.nat(200) }),
  fc.record({ m: fc.constant('flip' as const), at: fc.oneof(fc.constantFrom(...HOT), fc.nat(120)), x: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ m: fc.constant('bad-sum' as const) }),
  fc.record({ m: fc.constant('append' as const), n: fc.integer({ min: 1, max: 40 }) }),
);

const tcpOptsArb: fc.Arbitrary<number[]> = fc.oneof(
  fc.constant<number[]>([]),
  // timestamps (right length, or lying), SACK blocks (whole or cut), MSS, NOPs, a length past the header
  fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => [1, 1, 8, 10, a >>> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, b >>> 24, (b >> 16) & 255, (b >> 8) & 255, b & 255]),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 4 })).map(([a, n]) => [1, 1, 5, 2 + 8 * n, ...new Array<number>(8 * n).fill(0).map((_, k) => (a >> (k % 24)) & 255)]),
  fc.array(fc.nat(255), { maxLength: 40 }),
  fc.constantFrom<number[]>([8, 6, 0, 0, 0, 1], [5, 40, 0, 0], [2, 4, 5, 0xb4, 3, 3, 7], [8, 1], [5, 0]),
);

const seqArb = fc.oneof(fc.constantFrom(0, 1, 1000, 0xfffffe00, 0xffffffff, 5001), fc.nat().map((n) => n >>> 0), fc.integer({ min: 0x7ffffff0, max: 0x80000010 }));

const pktSpecArb: fc.Arbitrary<PktSpec> = fc.record(
  {
    v6: fc.boolean(),
    src: fc.nat(3),
    dst: fc.nat(3),
    proto: fc.oneof(fc.constant(6), fc.constant(6), fc.constant(17), fc.constantFrom(1, 58, 47, 132, 0)),
    sport: fc.oneof(fc.constantFrom(80, 53, 8080, 40000, 5000, 5001), fc.nat(65535)),
    dport: fc.oneof(fc.constantFrom(80, 53, 8080, 40000, 5000, 5001), fc.nat(65535)),
    seq: seqArb,
    ack: seqArb,
    flags: fc.oneof(fc.constantFrom(TCP.SYN, TCP.SYN | TCP.ACK, TCP.ACK, TCP.FIN | TCP.ACK, TCP.RST, TCP.RST | TCP.ACK, TCP.ACK | TCP.PSH), fc.nat(255)),
    opts: tcpOptsArb,
    payload: fc.oneof(fc.constant<number[]>([]), fc.array(fc.nat(255), { maxLength: 64 }), fc.integer({ min: 200, max: 1500 }).map((n) => new Array<number>(n).fill(0x61))),
    vlans: fc.oneof(fc.constant(0), fc.constant(0), fc.nat(3)),
    ipOpts: fc.oneof(fc.constant<number[]>([]), fc.constant<number[]>([]), fc.constantFrom<number[]>([1, 1, 1, 0], [7, 7, 4, 0, 0, 0, 0], [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0x94, 4, 0, 0]), fc.array(fc.nat(255), { maxLength: 40 })),
    ext: fc.oneof(fc.constant<{ type: number; len: number }[]>([]), fc.array(fc.record({ type: fc.constantFrom(0, 43, 60, 44, 51), len: fc.oneof(fc.constantFrom(0, 1, 2), fc.nat(255)) }), { maxLength: 10 })),
    frag: fc.option(fc.record({ off: fc.oneof(fc.constantFrom(0, 1, 2, 3, 185), fc.nat(0x1fff)), mf: fc.boolean() }), { nil: undefined, freq: 4 }),
  },
  { requiredKeys: ['src', 'dst', 'proto'] },
);

/** One hostile frame. */
export const hostileFrameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 120 }) },
  { weight: 2, arbitrary: fc.tuple(fc.uint8Array({ minLength: 14, maxLength: 80 }), fc.constantFrom([0x08, 0x00], [0x86, 0xdd], [0x81, 0x00], [0x88, 0xa8], [0x08, 0x06])).map(([b, t]) => {
    b[12] = t[0]!;
    b[13] = t[1]!;
    return b;
  }) },
  { weight: 8, arbitrary: fc.tuple(pktSpecArb, fc.array(mutationArb, { maxLength: 3 })).map(([s, ms]) => mutate(mk(s), ms)) },
);

// --- IPv4 fragment trains ----------------------------------------------------------------------

/** A datagram cut into fragments that may be tiny, overlapping, repeated or out of order. */
export const fragmentTrainArb: fc.Arbitrary<Uint8Array[]> = fc
  .record({ v6: fc.constant(false), src: fc.nat(3), dst: fc.nat(3), proto: fc.constantFrom(6, 17), cuts: fc.array(fc.record({ off: fc.nat(40), n: fc.integer({ min: 0, max: 64 }), mf: fc.boolean() }), { minLength: 1, maxLength: 6 }) })
  .map((r) => r.cuts.map((c) => mk({ src: r.src, dst: r.dst, proto: r.proto, payload: new Array<number>(c.n).fill(c.off & 0xff), frag: { off: c.off, mf: c.mf } })));

// --- COLO: the two guests' output of the same conversations ------------------------------------

export interface ColoFlow {
  v6: boolean;
  proto: 6 | 17;
  cport: number;
  gport: number;
  isn: number;
  len: number;
  /** Where each side cuts its data (offsets into the data). */
  pcuts: number[];
  scuts: number[];
  /** A byte the secondary sends differently (index into the data), or -1. */
  diff: number;
  /** Index of a primary segment retransmitted right after itself, or -1. */
  retrans: number;
  syn: boolean;
  end: 'fin' | 'rst' | 'none';
}

const data = (len: number, salt: number): number[] => Array.from({ length: len }, (_, k) => (k * 13 + salt) & 0xff);

function segments(f: ColoFlow, cuts: number[], body: number[], side: 'p' | 's'): Uint8Array[] {
  const base = { v6: f.v6, src: GUEST, dst: CLIENT, sport: f.gport, dport: f.cport };
  if (f.proto === 17) {
    // UDP: one datagram per cut piece, the same pieces on both sides (datagram boundaries are content).
    const out: Uint8Array[] = [];
    let at = 0;
    for (const end of [...[...new Set(f.pcuts)].sort((a, b) => a - b).filter((c) => c > 0 && c < f.len), f.len]) {
      out.push(mk({ ...base, proto: 17, payload: body.slice(at, end) }));
      at = end;
    }
    return out;
  }
  const out: Uint8Array[] = [];
  const ack = 5001;
  if (f.syn) out.push(mk({ ...base, proto: 6, seq: f.isn, ack, flags: TCP.SYN | TCP.ACK }));
  let at = 0;
  const ends = [...new Set(cuts)].sort((a, b) => a - b).filter((c) => c > 0 && c < f.len);
  for (const end of [...ends, f.len]) {
    if (end === at) continue;
    const seg = mk({ ...base, proto: 6, seq: (f.isn + 1 + at) >>> 0, ack, flags: TCP.ACK | TCP.PSH, payload: body.slice(at, end) });
    out.push(seg);
    if (side === 'p' && out.length - 1 === f.retrans) out.push(seg.slice());
    at = end;
  }
  const next = (f.isn + 1 + f.len) >>> 0;
  if (f.end === 'fin') out.push(mk({ ...base, proto: 6, seq: next, ack, flags: TCP.FIN | TCP.ACK }));
  if (f.end === 'rst') out.push(mk({ ...base, proto: 6, seq: next, ack, flags: TCP.RST | TCP.ACK }));
  return out;
}

/** The primary's and the secondary's frames of one conversation. */
export function coloFlowFrames(f: ColoFlow): { p: Uint8Array[]; s: Uint8Array[] } {
  const body = data(f.len, f.cport);
  const sbody = body.slice();
  if (f.diff >= 0 && f.diff < f.len) sbody[f.diff] = sbody[f.diff]! ^ 0x20;
  return { p: segments(f, f.pcuts, body, 'p'), s: segments(f, f.scuts, sbody, 's') };
}

export const coloFlowArb: fc.Arbitrary<ColoFlow> = fc.record({
  v6: fc.boolean(),
  proto: fc.oneof(fc.constant(6 as const), fc.constant(6 as const), fc.constant(17 as const)),
  cport: fc.constantFrom(40000, 40001, 40002, 40003, 40004, 40005),
  gport: fc.constantFrom(80, 8080),
  isn: seqArb,
  len: fc.oneof(fc.nat(40), fc.integer({ min: 100, max: 3000 })),
  pcuts: fc.array(fc.nat(3000), { maxLength: 5 }),
  scuts: fc.array(fc.nat(3000), { maxLength: 5 }),
  diff: fc.oneof(fc.constant(-1), fc.constant(-1), fc.constant(-1), fc.nat(3000)),
  retrans: fc.oneof(fc.constant(-1), fc.nat(4)),
  syn: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(false)),
  end: fc.constantFrom('fin' as const, 'fin' as const, 'rst' as const, 'none' as const),
});

// --- filter-rewriter: the secondary's view of whole sessions ------------------------------------

export interface RewriterSession {
  v6: boolean;
  /** The guest is the server (client SYN first) or the client (guest SYN first). */
  guestServer: boolean;
  cport: number;
  gport: number;
  clientIsn: number;
  primaryIsn: number;
  secondaryIsn: number;
  /** TSval of the primary and of the secondary (-1: no timestamps). */
  pts: number;
  sts: number;
  /** Data segment lengths, alternating client, guest. */
  data: number[];
  end: 'fin' | 'rst-client' | 'rst-guest' | 'none';
  /** The last ACK of the close is sent. */
  lastAck: boolean;
}

/**
 * The frames of one session as the secondary's filter-rewriter sees them: 'c' = from the client
 * (direction 'tx', in the primary's space), 'g' = from the secondary guest (direction 'rx', in its
 * own space).
 */
export function rewriterSessionFrames(s: RewriterSession): { t: 'c' | 'g'; f: Uint8Array }[] {
  const out: { t: 'c' | 'g'; f: Uint8Array }[] = [];
  const ts = (val: number, ecr: number): number[] =>
    s.pts < 0 ? [] : [1, 1, 8, 10, val >>> 24, (val >> 16) & 255, (val >> 8) & 255, val & 255, ecr >>> 24, (ecr >> 16) & 255, (ecr >> 8) & 255, ecr & 255];
  let c = s.clientIsn >>> 0; // client's next seq
  let pg = s.primaryIsn >>> 0; // primary guest's next seq (what the client acks)
  let sg = s.secondaryIsn >>> 0; // secondary guest's next seq
  const cl = (flags: number, payload: number[] = []): void => {
    out.push({ t: 'c', f: mk({ v6: s.v6, src: CLIENT, dst: GUEST, proto: 6, sport: s.cport, dport: s.gport, seq: c, ack: pg, flags, opts: ts(1000, s.pts), payload }) });
  };
  const gu = (flags: number, payload: number[] = []): void => {
    out.push({ t: 'g', f: mk({ v6: s.v6, src: GUEST, dst: CLIENT, proto: 6, sport: s.gport, dport: s.cport, seq: sg, ack: c, flags, opts: ts(s.sts, 1000), payload }) });
  };
  if (s.guestServer) {
    out.push({ t: 'c', f: mk({ v6: s.v6, src: CLIENT, dst: GUEST, proto: 6, sport: s.cport, dport: s.gport, seq: c, flags: TCP.SYN, opts: ts(1000, 0) }) });
    c = (c + 1) >>> 0;
    gu(TCP.SYN | TCP.ACK);
    pg = (pg + 1) >>> 0;
    sg = (sg + 1) >>> 0;
    cl(TCP.ACK);
  } else {
    out.push({ t: 'g', f: mk({ v6: s.v6, src: GUEST, dst: CLIENT, proto: 6, sport: s.gport, dport: s.cport, seq: sg, flags: TCP.SYN, opts: ts(s.sts, 0) }) });
    pg = (pg + 1) >>> 0;
    sg = (sg + 1) >>> 0;
    cl(TCP.SYN | TCP.ACK);
    c = (c + 1) >>> 0;
    gu(TCP.ACK);
  }
  s.data.forEach((n, k) => {
    const body = data(n, k);
    if (k % 2 === 0) {
      cl(TCP.ACK | TCP.PSH, body);
      c = (c + n) >>> 0;
      gu(TCP.ACK);
    } else {
      gu(TCP.ACK | TCP.PSH, body);
      pg = (pg + n) >>> 0;
      sg = (sg + n) >>> 0;
      cl(TCP.ACK);
    }
  });
  if (s.end === 'fin') {
    cl(TCP.FIN | TCP.ACK);
    c = (c + 1) >>> 0;
    gu(TCP.FIN | TCP.ACK);
    pg = (pg + 1) >>> 0;
    sg = (sg + 1) >>> 0;
    if (s.lastAck) cl(TCP.ACK);
  } else if (s.end === 'rst-client') cl(TCP.RST | TCP.ACK);
  else if (s.end === 'rst-guest') gu(TCP.RST | TCP.ACK);
  return out;
}

export const rewriterSessionArb: fc.Arbitrary<RewriterSession> = fc.record({
  v6: fc.boolean(),
  guestServer: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(false)),
  cport: fc.constantFrom(40000, 40001, 40002, 40003),
  gport: fc.constantFrom(80, 8080),
  clientIsn: seqArb,
  primaryIsn: seqArb,
  secondaryIsn: seqArb,
  pts: fc.oneof(fc.constant(-1), fc.nat().map((n) => n >>> 0)),
  sts: fc.nat().map((n) => n >>> 0),
  data: fc.array(fc.integer({ min: 1, max: 1400 }), { maxLength: 6 }),
  end: fc.constantFrom('fin' as const, 'fin' as const, 'rst-client' as const, 'rst-guest' as const, 'none' as const),
  lastAck: fc.boolean(),
}).map((s) => (s.pts < 0 ? { ...s, sts: 0 } : s));

/** A stray segment on a session's own connection (flags, sequence numbers near the session's or anywhere). */
export interface SessionNoise {
  fromClient: boolean;
  flags: number;
  /** Sequence number: this many bytes past the sender's ISN (-1: `raw`). */
  seqDelta: number;
  ackDelta: number;
  raw: number;
  len: number;
  /** Where in the session's frames it goes. */
  at: number;
}

export const sessionNoiseArb: fc.Arbitrary<SessionNoise> = fc.record({
  fromClient: fc.boolean(),
  flags: fc.oneof(fc.constantFrom(TCP.RST, TCP.RST | TCP.ACK, TCP.FIN | TCP.ACK, TCP.SYN, TCP.SYN | TCP.ACK, TCP.ACK, TCP.FIN, TCP.ACK | TCP.PSH), fc.nat(63)),
  seqDelta: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.integer({ min: 0, max: 9000 }), fc.constant(65534), fc.constant(70000)),
  ackDelta: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 9000 })),
  raw: fc.nat().map((n) => n >>> 0),
  len: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100 })),
  at: fc.nat(),
});

/** The session's frames with stray segments of its own connection mixed in. */
export function withNoise(s: RewriterSession, noise: SessionNoise[]): { t: 'c' | 'g'; f: Uint8Array }[] {
  const out = rewriterSessionFrames(s);
  for (const n of noise) {
    const myIsn = n.fromClient ? s.clientIsn : s.secondaryIsn;
    const theirIsn = n.fromClient ? s.primaryIsn : s.clientIsn;
    const seq = n.seqDelta < 0 ? n.raw : (myIsn + n.seqDelta) >>> 0;
    const ack = (theirIsn + n.ackDelta) >>> 0;
    const f = n.fromClient
      ? mk({ v6: s.v6, src: CLIENT, dst: GUEST, proto: 6, sport: s.cport, dport: s.gport, seq, ack, flags: n.flags, payload: new Array<number>(n.len).fill(0x6e) })
      : mk({ v6: s.v6, src: GUEST, dst: CLIENT, proto: 6, sport: s.gport, dport: s.cport, seq, ack, flags: n.flags, payload: new Array<number>(n.len).fill(0x6e) });
    out.splice(n.at % (out.length + 1), 0, { t: n.fromClient ? 'c' : 'g', f });
  }
  return out;
}

/** `n` SYNs (or SYN/ACKs) from distinct ports: a flood. */
export function synFlood(n: number, base: number, opts: { synAck: boolean; v6: boolean; from: number; to: number }): Uint8Array[] {
  return Array.from({ length: n }, (_, k) =>
    mk({ v6: opts.v6, src: opts.from, dst: opts.to, proto: 6, sport: opts.synAck ? 80 : (base + k) & 0xffff, dport: opts.synAck ? (base + k) & 0xffff : 80, seq: (k * 7919) >>> 0, ack: opts.synAck ? 77 : 0, flags: opts.synAck ? TCP.SYN | TCP.ACK : TCP.SYN }),
  );
}
