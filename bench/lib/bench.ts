// The shape of a benchmark module and its standalone runner (no spec section: the harness).
// `bench/run.ts` runs every Benchmark in one process; each `*.bench.ts` also runs alone
// (`npx tsx bench/tx-memory.bench.ts [--quick]`) and prints its own table.

import { pathToFileURL } from 'node:url';
import type { TimingOptions } from './timing.js';
import { FULL_TIMING, QUICK_TIMING } from './timing.js';
import type { BenchResult } from './result.js';
import { newReport } from './result.js';
import { reportHeader, resultsTable } from './table.js';
import { ProgressBar } from './progress.js';

export interface BenchContext {
  quick: boolean;
  timing: TimingOptions;
  /** A case starts (drives the progress bar; one call per case declared in `cases`). */
  step(label: string): void;
}

export interface Benchmark {
  /** What `--only` matches: this name, or the prefix of a result name. */
  name: string;
  /** Result names this benchmark always reports (the CI test checks them). */
  required: readonly string[];
  /** Progress steps `run` announces with `ctx.step`. */
  cases(quick: boolean): number;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}

export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === moduleUrl;
}

/** Context with a progress bar on stderr. */
export function benchContext(quick: boolean, bar: ProgressBar): BenchContext {
  let first = true;
  return {
    quick,
    timing: quick ? QUICK_TIMING : FULL_TIMING,
    step(label: string) {
      if (!first) bar.step();
      first = false;
      bar.start(label);
    },
  };
}

/** `npx tsx bench/x.bench.ts [--quick]`: runs one benchmark and prints its table. */
export async function runStandalone(b: Benchmark): Promise<void> {
  const quick = process.argv.includes('--quick');
  const report = newReport(quick);
  const bar = new ProgressBar(b.cases(quick));
  report.results.push(...(await b.run(benchContext(quick, bar))));
  bar.step();
  bar.finish();
  console.log(reportHeader(report));
  console.log(resultsTable(report));
}
