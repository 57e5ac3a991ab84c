// Timing of one benchmark case beside its baseline (no spec section: the harness).
//
// A case is a function that does `n` units of work (frames, decisions, commands) and returns how
// many it did. `measurePair` warms both sides up (JIT, pools, caches), sizes `n` so one repeat
// lasts about `repeatMs`, then alternates subject and baseline repeats — so drift on a shared
// machine (another job starting) lands on both series rather than on one.

import { summarize } from './stats.js';
import type { Summary } from './stats.js';

/** Does about `n` units of work; returns the units done. Must not allocate per unit. */
export type Work = (n: number) => number;

export interface TimingOptions {
  /** Warm-up time per side before calibration, ms. */
  warmupMs: number;
  /** Target duration of one repeat, ms. */
  repeatMs: number;
  /** Repeats per side. */
  repeats: number;
}

export const FULL_TIMING: TimingOptions = { warmupMs: 200, repeatMs: 300, repeats: 7 };
export const QUICK_TIMING: TimingOptions = { warmupMs: 40, repeatMs: 60, repeats: 3 };

export interface PairResult {
  /** Units per second of each subject repeat, in run order. */
  samples: number[];
  baselineSamples: number[];
  value: Summary;
  baseline: Summary;
}

function now(): bigint {
  return process.hrtime.bigint();
}

/** Runs `work` for about `ms` (whole calls), then returns `n` such that one call takes about `targetMs`. */
export function calibrate(work: Work, ms: number, targetMs: number): number {
  let n = 1;
  let spent = 0;
  let lastRate = 0;
  const deadline = now() + BigInt(Math.round(ms * 1e6));
  for (;;) {
    const t0 = now();
    const done = work(n);
    const dt = Number(now() - t0) / 1e6;
    spent += dt;
    if (dt > 0) lastRate = done / dt;
    if (now() >= deadline && dt > targetMs / 20) break;
    if (dt < targetMs / 4) n *= 2;
  }
  if (spent < 0) throw new Error('unreachable');
  return Math.max(1, Math.round(lastRate * targetMs));
}

/** Units per second of one call of `work(n)`. */
export function rate(work: Work, n: number): number {
  const t0 = now();
  const done = work(n);
  const ns = Number(now() - t0);
  return (done * 1e9) / Math.max(1, ns);
}

/** Subject and baseline, warmed up, calibrated and measured in alternation. */
export function measurePair(subject: Work, baseline: Work, t: TimingOptions): PairResult {
  const n = calibrate(subject, t.warmupMs, t.repeatMs);
  const nb = calibrate(baseline, t.warmupMs, t.repeatMs);
  const samples: number[] = [];
  const baselineSamples: number[] = [];
  for (let i = 0; i < t.repeats; i++) {
    samples.push(rate(subject, n));
    baselineSamples.push(rate(baseline, nb));
  }
  return { samples, baselineSamples, value: summarize(samples), baseline: summarize(baselineSamples) };
}

/** One side alone (a baseline measured by itself): warmed up, calibrated, `repeats` samples. */
export function measureOne(work: Work, t: TimingOptions): number[] {
  const n = calibrate(work, t.warmupMs, t.repeatMs);
  const samples: number[] = [];
  for (let i = 0; i < t.repeats; i++) samples.push(rate(work, n));
  return samples;
}
