// fast-check generators of whole filter-fuzzer cases, per target: a setup (small limits, so caps
// are reached), passthrough entries, and operations interleaving well-formed conversations with
// hostile frames, fragment trains, SYN floods, clock ticks and checkpoints. Each conversation
// keeps its own order; the interleaving is random.

import fc from 'fast-check';
import type { FilterCase, FilterOp, Target } from './common.js';
import {
  CLIENT,
  coloFlowArb,
  coloFlowFrames,
  fragmentTrainArb,
  GUEST,
  hexOf,
  hostileFrameArb,
  rewriterSessionArb,
  sessionNoiseArb,
  synFlood,
  withNoise,
} from './packets.js';

/** Merges streams, each kept in order, following `picks` (then whatever is left, in turn). */
function interleave<T>(streams: T[][], picks: number[]): T[] {
  const live = streams.map((s) => [...s]).filter((s) => s.length > 0);
  const out: T[] = [];
  let k = 0;
  while (live.length > 0) {
    const i = (picks[k++] ?? k) % live.length;
    out.push(live[i]!.shift()!);
    if (live[i]!.length === 0) live.splice(i, 1);
  }
  return out;
}

const passthroughArb = fc.oneof(fc.constant([] as number[]), fc.uniqueArray(fc.nat(5), { maxLength: 4 }));

const tickArb: fc.Arbitrary<FilterOp> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 300 }).map((ms): FilterOp => ({ t: 'tick', ms })) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 8000 }).map((ms): FilterOp => ({ t: 'tick', ms })) },
);

const vnetHdrArb = fc.option(fc.uint8Array({ minLength: 12, maxLength: 12 }).map(hexOf), { nil: undefined, freq: 6 });

// --- colo-compare ------------------------------------------------------------------------------

type Side = 'p' | 's';

const coloStreamsArb: fc.Arbitrary<FilterOp[][]> = fc
  .tuple(
    fc.array(fc.tuple(coloFlowArb, fc.boolean()), { maxLength: 5 }),
    fc.array(fc.tuple(hostileFrameArb, fc.constantFrom<Side>('p', 's'), vnetHdrArb), { maxLength: 25 }),
    fc.array(fc.tuple(fragmentTrainArb, fc.constantFrom<Side>('p', 's')), { maxLength: 2 }),
    fc.option(fc.record({ n: fc.integer({ min: 5, max: 300 }), base: fc.nat(60000), v6: fc.boolean(), both: fc.boolean() }), { freq: 4, nil: undefined }),
    fc.array(fc.oneof({ weight: 5, arbitrary: tickArb }, { weight: 1, arbitrary: fc.constant<FilterOp>({ t: 'checkpoint' }) }), { maxLength: 8 }),
  )
  .map(([flows, hostile, frags, flood, misc]) => {
    const streams: FilterOp[][] = [];
    for (const [flow, secondaryFirst] of flows) {
      const { p, s } = coloFlowFrames(flow);
      // One stream per side: each guest's output stays in order; the two sides interleave freely.
      streams.push(p.map((f): FilterOp => ({ t: 'p', f: hexOf(f) })));
      streams.push(s.map((f): FilterOp => ({ t: 's', f: hexOf(f) })));
      if (secondaryFirst) streams.push(streams.splice(streams.length - 2, 1)[0]!);
    }
    streams.push(hostile.map(([f, t, h]): FilterOp => (h === undefined ? { t, f: hexOf(f) } : { t, f: hexOf(f), h })));
    for (const [train, t] of frags) streams.push(train.map((f): FilterOp => ({ t, f: hexOf(f) })));
    if (flood !== undefined) {
      const syns = synFlood(flood.n, flood.base, { synAck: true, v6: flood.v6, from: GUEST, to: CLIENT });
      streams.push(syns.map((f): FilterOp => ({ t: 'p', f: hexOf(f) })));
      if (flood.both) streams.push(syns.map((f): FilterOp => ({ t: 's', f: hexOf(f) })));
    }
    for (const m of misc) streams.push([m]);
    return streams;
  });

export const coloCaseArb: fc.Arbitrary<FilterCase> = fc
  .record({
    setup: fc.record({
      maxConnections: fc.constantFrom(4, 16, 64),
      maxPendingFlows: fc.constantFrom(2, 4, 32),
      maxQueueSize: fc.constantFrom(4, 16, 1024),
      maxBufferedBytes: fc.constantFrom(2048, 65536, 1 << 22),
      idleTimeout: fc.constantFrom(5000, 120_000),
    }),
    passthrough: passthroughArb,
    streams: coloStreamsArb,
    picks: fc.array(fc.nat(), { maxLength: 400 }),
  })
  .map((r): FilterCase => ({ target: 'colo', setup: r.setup, passthrough: r.passthrough, ops: interleave(r.streams, r.picks) }));

// --- filter-rewriter ---------------------------------------------------------------------------

type Dir = 'c' | 'g';

const rewriterStreamsArb: fc.Arbitrary<FilterOp[][]> = fc
  .tuple(
    fc.array(fc.tuple(rewriterSessionArb, vnetHdrArb, fc.array(sessionNoiseArb, { maxLength: 4 })), { maxLength: 5 }),
    fc.array(fc.tuple(hostileFrameArb, fc.constantFrom<Dir>('c', 'g'), vnetHdrArb), { maxLength: 25 }),
    fc.array(fc.tuple(fragmentTrainArb, fc.constantFrom<Dir>('c', 'g')), { maxLength: 2 }),
    fc.option(fc.record({ n: fc.integer({ min: 5, max: 300 }), base: fc.nat(60000), v6: fc.boolean(), answer: fc.boolean() }), { freq: 4, nil: undefined }),
    fc.array(fc.oneof({ weight: 5, arbitrary: tickArb }, { weight: 1, arbitrary: fc.integer({ min: 100_000, max: 8_000_000 }).map((ms): FilterOp => ({ t: 'tick', ms })) }, { weight: 2, arbitrary: fc.constant<FilterOp>({ t: 'checkpoint' }) }), { maxLength: 8 }),
  )
  .map(([sessions, hostile, frags, flood, misc]) => {
    const streams: FilterOp[][] = [];
    for (const [s, h, noise] of sessions) {
      // A session's packets stay in order (the state machine needs its handshake first); stray
      // segments of the same connection (RSTs in and out of window, early FINs, SYNs again) among them.
      streams.push(withNoise(s, noise).map(({ t, f }): FilterOp => (h === undefined ? { t, f: hexOf(f) } : { t, f: hexOf(f), h })));
    }
    streams.push(hostile.map(([f, t, h]): FilterOp => (h === undefined ? { t, f: hexOf(f) } : { t, f: hexOf(f), h })));
    for (const [train, t] of frags) streams.push(train.map((f): FilterOp => ({ t, f: hexOf(f) })));
    if (flood !== undefined) {
      const syns = synFlood(flood.n, flood.base, { synAck: false, v6: flood.v6, from: CLIENT, to: GUEST });
      streams.push(syns.map((f): FilterOp => ({ t: 'c', f: hexOf(f) })));
      if (flood.answer) {
        const answers = synFlood(flood.n, flood.base, { synAck: true, v6: flood.v6, from: GUEST, to: CLIENT });
        streams.push(answers.map((f): FilterOp => ({ t: 'g', f: hexOf(f) })));
      }
    }
    for (const m of misc) streams.push([m]);
    return streams;
  });

/** Folds a frame into the one before it, going the other way, as its re-entrant frame (`re`), where `fuse` says. */
function fuseReentry(ops: FilterOp[], fuse: number[]): FilterOp[] {
  const marks = new Set(fuse);
  const out: FilterOp[] = [];
  for (let i = 0; i < ops.length; i++) {
    const a = ops[i]!;
    const b = ops[i + 1];
    if (marks.has(i) && b !== undefined && (a.t === 'c' || a.t === 'g') && (b.t === 'c' || b.t === 'g') && a.t !== b.t && b.h === undefined) {
      out.push({ ...a, re: b.f });
      i++;
    } else out.push(a);
  }
  return out;
}

export const rewriterCaseArb: fc.Arbitrary<FilterCase> = fc
  .record({
    setup: fc.record({
      maxConnections: fc.constantFrom(4, 16, 64),
      idleTimeout: fc.constantFrom(10_000, 7_440_000),
      transientIdleTimeout: fc.constantFrom(2000, 120_000),
    }),
    streams: rewriterStreamsArb,
    picks: fc.array(fc.nat(), { maxLength: 400 }),
    fuse: fc.array(fc.nat(400), { maxLength: 30 }),
  })
  .map((r): FilterCase => ({ target: 'rewriter', setup: r.setup, passthrough: [], ops: fuseReentry(interleave(r.streams, r.picks), r.fuse) }));

// --- mirror / redirector over sockets ----------------------------------------------------------

const anyFrameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: hostileFrameArb.filter((f) => f.length > 0) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 65535 + 18 }).map((n) => Uint8Array.from({ length: n }, (_, k) => (k * 31) & 0xff)) },
);

export const socketsCaseArb: fc.Arbitrary<FilterCase> = fc
  .record({
    setup: fc.record({ vnet: fc.boolean() }),
    passthrough: passthroughArb,
    ops: fc.array(
      fc.oneof(
        { weight: 6, arbitrary: fc.tuple(fc.constantFrom<Dir>('c', 'g'), anyFrameArb, vnetHdrArb).map(([t, f, h]): FilterOp => (h === undefined ? { t, f: hexOf(f) } : { t, f: hexOf(f), h })) },
        { weight: 2, arbitrary: fc.record({ fs: fc.array(anyFrameArb.map(hexOf), { minLength: 1, maxLength: 6 }), cut: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 5000 })) }).map(({ fs, cut }): FilterOp => ({ t: 'i', fs, cut })) },
        { weight: 1, arbitrary: fc.constantFrom('00000000', 'ffffffff00', '0000000a0000000c00', '00000010000000070000').map((bytes): FilterOp => ({ t: 'junk', bytes })) },
      ),
      { maxLength: 40 },
    ),
  })
  .map((r): FilterCase => ({ target: 'sockets', setup: r.setup, passthrough: r.passthrough, ops: r.ops }));

export function caseArbFor(target: Target): fc.Arbitrary<FilterCase> {
  return target === 'colo' ? coloCaseArb : target === 'rewriter' ? rewriterCaseArb : socketsCaseArb;
}
