// Summary statistics over benchmark repeats (no spec section: the harness). Every figure the bench
// reports is the median of its repeats, with the spread beside it, because single runs on these
// shared 2-core machines move by tens of percent.

/** Median and spread of one series of samples. */
export interface Summary {
  /** Middle sample (mean of the two middle ones for an even count). */
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: 0.1 means the repeats lie within 10 % of the median's size. 0 for one sample. */
  spread: number;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('median: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(samples: readonly number[]): Summary {
  const m = median(samples);
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  return { median: m, min, max, spread: m === 0 ? 0 : (max - min) / m };
}

/** `value / baseline`, or null when the baseline is 0 (a ratio to nothing means nothing). */
export function ratio(value: number, baseline: number): number | null {
  return baseline === 0 ? null : value / baseline;
}
