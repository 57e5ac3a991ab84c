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
export const QUICK_TIMING: TimingOptions = { warmupMs: 60, repeatMs: 60, repeats: 3 };

export interface PairResult {
  /** Units per second (wall clock) of each subject repeat, in run order. */
  samples: number[];
  baselineSamples: number[];
  /** Units per CPU-second (this process, all threads) of each repeat: what an idle core would do. */
  cpuSamples: number[];
  baselineCpuSamples: number[];
  value: Summary;
  baseline: Summary;
}

/** This process's CPU time so far (user + system, every thread), ns. */
export function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

function now(): bigint {
  return process.hrtime.bigint();
}

/**
 * Warm-up: runs `work` for at least `ms` and until its rate stops improving (the optimising
 * compiler runs on another thread, which a loaded machine starves: measuring before it delivered
 * would time unoptimised code), at most 10 × `ms`. Returns `n` such that one call takes about
 * `targetMs`.
 */
export function calibrate(work: Work, ms: number, targetMs: number): number {
  let n = 1;
  let lastRate = 0;
  let prevRate = 0;
  const start = now();
  const deadline = start + BigInt(Math.round(ms * 1e6));
  const cap = start + BigInt(Math.round(10 * ms * 1e6));
  for (;;) {
    const t0 = now();
    const done = work(n);
    const t1 = now();
    const dt = Number(t1 - t0) / 1e6;
    if (dt < targetMs / 4) {
      n *= 2;
      continue; // too short a call to judge its rate
    }
    prevRate = lastRate;
    lastRate = done / dt;
    const settled = prevRate > 0 && lastRate < prevRate * 1.1;
    if ((t1 >= deadline && settled) || t1 >= cap) break;
  }
  return Math.max(1, Math.round(lastRate * targetMs));
}

/** Units per second of one call of `work(n)`. */
export function rate(work: Work, n: number): number {
  return timed(work, n).wall;
}

/** Units per wall-clock second and per CPU-second of one call of `work(n)`. */
export function timed(work: Work, n: number): { wall: number; cpu: number } {
  const c0 = cpuNs();
  const t0 = now();
  const done = work(n);
  const ns = Number(now() - t0);
  const cpu = cpuNs() - c0;
  return { wall: (done * 1e9) / Math.max(1, ns), cpu: (done * 1e9) / Math.max(1000, cpu) };
}

/** Subject and baseline, warmed up, calibrated and measured in alternation. */
export function measurePair(subject: Work, baseline: Work, t: TimingOptions): PairResult {
  const n = calibrate(subject, t.warmupMs, t.repeatMs);
  const nb = calibrate(baseline, t.warmupMs, t.repeatMs);
  const samples: number[] = [];
  const baselineSamples: number[] = [];
  const cpuSamples: number[] = [];
  const baselineCpuSamples: number[] = [];
  for (let i = 0; i < t.repeats; i++) {
    const s = timed(subject, n);
    samples.push(s.wall);
    cpuSamples.push(s.cpu);
    const b = timed(baseline, nb);
    baselineSamples.push(b.wall);
    baselineCpuSamples.push(b.cpu);
  }
  return { samples, baselineSamples, cpuSamples, baselineCpuSamples, value: summarize(samples), baseline: summarize(baselineSamples) };
}

/** One side alone (a baseline measured by itself): warmed up, calibrated, `repeats` samples. */
export function measureOne(work: Work, t: TimingOptions): number[] {
  const n = calibrate(work, t.warmupMs, t.repeatMs);
  const samples: number[] = [];
  for (let i = 0; i < t.repeats; i++) samples.push(rate(work, n));
  return samples;
}
