// What every benchmark reports (no spec section: the harness), and the JSON file `--json` writes:
//   { node, cpu, date, quick, results: [{ name, unit, value, baseline, ratio, samples, … }] }
// `value` and `baseline` are medians over repeats measured in the same run; `ratio` = value /
// baseline (null when the baseline is 0). A benchmark that cannot run here is reported with its
// reason in `skipped` and null figures — never with a made-up number.

import os from 'node:os';
import { writeFileSync } from 'node:fs';
import type { PairResult } from './timing.js';
import { median, ratio, summarize } from './stats.js';

export interface BenchResult {
  name: string;
  unit: string;
  /** Median of `samples`; null when skipped. */
  value: number | null;
  /** Median of `baselineSamples`; null when skipped. */
  baseline: number | null;
  /** value / baseline; null when skipped or when the baseline is 0. */
  ratio: number | null;
  /** The subject's repeats, in run order. */
  samples: number[];
  baselineSamples: number[];
  /** (max - min) / median of `samples`. */
  spread: number | null;
  /** What the baseline is, in a few words. */
  baselineIs: string;
  /** Why it did not run. */
  skipped?: string;
  /**
   * The same rates per CPU-second of this process (user + system, every thread) instead of per
   * wall-clock second: close to what an idle core would do when other jobs share the machine.
   */
  perCpuSecond?: { value: number; baseline: number; ratio: number | null };
  /** Case parameters and secondary figures (heap, GCs, counters). */
  detail?: Record<string, string | number | boolean>;
}

export interface BenchReport {
  node: string;
  cpu: string;
  cores: number;
  date: string;
  quick: boolean;
  /** Load average (1 min) when the run started: other jobs share these machines. */
  loadavg: number;
  results: BenchResult[];
}

/** A result from a measured pair. */
export function fromPair(name: string, unit: string, p: PairResult, baselineIs: string, detail?: BenchResult['detail']): BenchResult {
  const cpu = median(p.cpuSamples);
  const cpuBase = median(p.baselineCpuSamples);
  return {
    name,
    unit,
    value: p.value.median,
    baseline: p.baseline.median,
    ratio: ratio(p.value.median, p.baseline.median),
    samples: p.samples,
    baselineSamples: p.baselineSamples,
    spread: p.value.spread,
    baselineIs,
    perCpuSecond: { value: cpu, baseline: cpuBase, ratio: ratio(cpu, cpuBase) },
    ...(detail === undefined ? {} : { detail }),
  };
}

/**
 * A result from repeated samples of the subject and of its baseline (medians, their ratio, the
 * subject's spread); `perCpuSecond` and `detail` as the bench has them.
 */
export function fromSamples(
  name: string,
  unit: string,
  samples: number[],
  baselineSamples: number[],
  baselineIs: string,
  extra: { perCpuSecond?: BenchResult['perCpuSecond']; detail?: BenchResult['detail'] } = {},
): BenchResult {
  const v = summarize(samples);
  const b = summarize(baselineSamples);
  return {
    name,
    unit,
    value: v.median,
    baseline: b.median,
    ratio: ratio(v.median, b.median),
    samples,
    baselineSamples,
    spread: v.spread,
    baselineIs,
    ...(extra.perCpuSecond === undefined ? {} : { perCpuSecond: extra.perCpuSecond }),
    ...(extra.detail === undefined ? {} : { detail: extra.detail }),
  };
}

export function skipped(name: string, unit: string, reason: string, baselineIs: string): BenchResult {
  return { name, unit, value: null, baseline: null, ratio: null, samples: [], baselineSamples: [], spread: null, baselineIs, skipped: reason };
}

export function cpuModel(): string {
  return os.cpus()[0]?.model.trim() ?? 'unknown cpu';
}

export function newReport(quick: boolean): BenchReport {
  return {
    node: process.version,
    cpu: cpuModel(),
    cores: os.cpus().length,
    date: new Date().toISOString(),
    quick,
    loadavg: Math.round(os.loadavg()[0]! * 100) / 100,
    results: [],
  };
}

export function writeReport(path: string, report: BenchReport): void {
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
}
