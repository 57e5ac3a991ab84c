// `npm run bench`: every benchmark of bench/ in one run, each figure beside a baseline measured in
// the same run (see bench/README.md). Progress on stderr, the results table on stdout.
//
//   npm run bench [-- --only NAME[,NAME…]] [--quick] [--json FILE]
//
// --only   runs the benchmarks NAME belongs to and keeps the results whose name starts with NAME
//          (a benchmark name such as `tx-memory`, or a result name such as `tx-memory-64`); the
//          benchmarks run only on request (`guest`: two guest boots, minutes) run only this way
// --quick  short runs (CI: the whole suite in well under a minute); the figures are rougher
// --json   also writes { node, cpu, date, results: [{ name, unit, value, baseline, ratio, samples }] }

import type { Benchmark } from './lib/bench.js';
import { benchContext } from './lib/bench.js';
import { ProgressBar } from './lib/progress.js';
import { newReport, skipped, writeReport } from './lib/result.js';
import type { BenchResult } from './lib/result.js';
import { reportHeader, resultsTable } from './lib/table.js';
import { txMemory } from './tx-memory.bench.js';
import { rxMemory } from './rx-memory.bench.js';
import { rxRss } from './rx-rss.bench.js';
import { alloc } from './alloc.bench.js';
import { tap } from './tap.bench.js';
import { ctrl, queue, rxFilter } from './lib/adapters.js';
import { guestBench } from './guest.bench.js';

/** In run order: the memory datapath first (the least disturbed), TAP last. */
export const BENCHMARKS: readonly Benchmark[] = [txMemory, rxMemory, rxRss, rxFilter, ctrl, queue, alloc, tap];

/**
 * Run only when `--only` names them, never by a plain `npm run bench` (nor by CI's `--quick` run
 * in `npm test`): `guest` boots two Linux guests and measures for minutes.
 */
export const ON_REQUEST: readonly Benchmark[] = [guestBench];

/** Result names the JSON always holds after a full run (the CI test checks them). */
export const REQUIRED = BENCHMARKS.flatMap((b) => b.required);

const ALL: readonly Benchmark[] = [...BENCHMARKS, ...ON_REQUEST];

interface Args {
  only: string[];
  quick: boolean;
  json: string | null;
}

const USAGE = 'usage: npm run bench -- [--only NAME[,NAME...]] [--quick] [--json FILE]';

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { only: [], quick: false, json: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--quick':
        a.quick = true;
        break;
      case '--json':
        a.json = value();
        break;
      case '--only':
        a.only.push(...value().split(',').filter((s) => s !== ''));
        break;
      case '--help':
      case '-h':
        console.log(`${USAGE}\nbenchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}\non request only (--only): ${ON_REQUEST.map((b) => b.name).join(', ')}`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${arg}; allowed: --only NAME, --quick, --json FILE\n${USAGE}`);
    }
  }
  return a;
}

/** The benchmarks `name` selects: its own, or the one whose results it names. */
function select(name: string): Benchmark[] {
  const hits = ALL.filter((b) => b.name === name || name.startsWith(b.name + '-') || b.required.includes(name));
  if (hits.length === 0) {
    throw new Error(`--only ${name}: no such benchmark; allowed: ${ALL.map((b) => b.name).join(', ')} (or a result name such as ${REQUIRED.join(', ')})`);
  }
  return hits;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const chosen = args.only.length === 0 ? [...BENCHMARKS] : ALL.filter((b) => args.only.some((n) => select(n).includes(b)));
  const report = newReport(args.quick);
  const bar = new ProgressBar(chosen.reduce((n, b) => n + b.cases(args.quick), 0));
  const ctx = benchContext(args.quick, bar);
  for (const b of chosen) {
    let results: BenchResult[];
    try {
      results = await b.run(ctx);
    } catch (e) {
      // A benchmark that breaks is reported as such; the others still run.
      const why = `error: ${(e as Error).message.split('\n')[0]}`;
      results = (b.required.length > 0 ? b.required : [b.name]).map((n) => skipped(n, '', why, ''));
    }
    const keep = args.only.length === 0 || args.only.includes(b.name) ? results : results.filter((r) => args.only.some((n) => r.name.startsWith(n)));
    report.results.push(...keep);
  }
  bar.step();
  bar.finish();
  if (args.json !== null) writeReport(args.json, report);
  console.log(reportHeader(report));
  console.log(resultsTable(report));
  if (args.json !== null) console.log(`\nJSON: ${args.json}`);
}

try {
  await main();
} catch (e) {
  console.error((e as Error).message);
  process.exitCode = 2;
}
