// `npm run bench` entries for the benchmark scripts other parts of the project own (see
// external.ts for how they run): queue (bench/queue.bench.ts, VIRTIO 1.2 §2.7 split queue), ctrl
// (bench/ctrl.bench.ts, §5.1.6.5 control queue) and rx-filter (bench/rx-filter.bench.ts,
// §5.1.6.5.1–§5.1.6.5.3 receive filtering). Their scripts print medians and min..max ranges, not
// each repeat, so `samples` holds [min, median, max] of their repeats (queue: the best of its
// rounds, which is all it prints) and `detail.samplesAre` says so.

import type { Benchmark, BenchContext } from './bench.js';
import type { BenchResult } from './result.js';
import { skipped } from './result.js';
import { ratio, summarize } from './stats.js';
import { cell, num, parseTables, range, runScript } from './external.js';
import type { Table } from './external.js';
import { measureOne } from './timing.js';
import { ctrlReference } from './ctrl-reference.js';

function quickArgs(ctx: BenchContext): string[] {
  return ctx.quick ? ['--quick'] : [];
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** A result from a printed median and min..max (scaled by `scale`) beside a baseline. */
function printed(name: string, unit: string, medianCell: string | undefined, spreadCell: string | undefined, scale: number, baseline: number, baselineSamples: number[], baselineIs: string, source: string, detail: Record<string, string | number | boolean> = {}): BenchResult | null {
  const median = num(medianCell) * scale;
  const r = range(spreadCell);
  if (!Number.isFinite(median) || r === null) return null;
  const samples = [r[0] * scale, median, r[1] * scale];
  return {
    name,
    unit,
    value: median,
    baseline,
    ratio: ratio(median, baseline),
    samples,
    baselineSamples,
    spread: median === 0 ? 0 : (samples[2]! - samples[0]!) / median,
    baselineIs,
    detail: { source, samplesAre: `min, median, max of the repeats ${source} printed`, ...detail },
  };
}

// ---- queue ----

const QUEUE_SOURCE = 'bench/queue.bench.ts';

export const queue: Benchmark = {
  name: 'queue',
  required: [],
  cases: () => 1,
  async run(ctx) {
    ctx.step(`queue (${QUEUE_SOURCE}, own process)`);
    const out = await runScript('queue.bench.ts', quickArgs(ctx));
    const baselineIs = 'raw DataView ring traffic, no validation';
    if (!out.ok) return [skipped('queue', 'pairs/s', out.error, baselineIs)];
    const tables = parseTables(out.stdout);
    const t: Table | undefined = tables.find((x) => x.header.some((h) => h.startsWith('M pairs/s')));
    if (t === undefined) return [skipped('queue', 'pairs/s', `${QUEUE_SOURCE} printed no table with "M pairs/s"`, baselineIs)];
    const vi = t.header.findIndex((h) => h.startsWith('M pairs/s'));
    const bi = t.header.findIndex((h) => h.startsWith('baseline M/s'));
    return t.rows.map((row) => {
      const name = `queue-${slug(row[0]!)}`;
      const value = num(row[vi]) * 1e6;
      const baseline = num(row[bi]) * 1e6;
      if (!Number.isFinite(value) || !Number.isFinite(baseline)) return skipped(name, 'pairs/s', `${QUEUE_SOURCE}: unreadable row "${row.join(' | ')}"`, baselineIs);
      return {
        name,
        unit: 'pairs/s',
        value,
        baseline,
        ratio: ratio(value, baseline),
        samples: [value],
        baselineSamples: [baseline],
        spread: null,
        baselineIs,
        detail: { source: QUEUE_SOURCE, samplesAre: `the best of the rounds ${QUEUE_SOURCE} ran (all it prints)` },
      };
    });
  },
};

// ---- ctrl ----

const CTRL_SOURCE = 'bench/ctrl.bench.ts';
const CTRL_BASELINE_IS = 'same ring traffic, no validation/parsing (lib/ctrl-reference.ts)';

export const ctrl: Benchmark = {
  name: 'ctrl',
  required: ['ctrl'],
  cases: () => 2,
  async run(ctx) {
    ctx.step(`ctrl baseline (ring traffic reference)`);
    const refSamples = measureOne(ctrlReference(), ctx.timing);
    const baseline = summarize(refSamples).median;
    ctx.step(`ctrl (${CTRL_SOURCE}, own process)`);
    const out = await runScript('ctrl.bench.ts', quickArgs(ctx));
    if (!out.ok) return [skipped('ctrl', 'commands/s', out.error, CTRL_BASELINE_IS)];
    const tables = parseTables(out.stdout);
    const others: Record<string, string> = {};
    for (const t of tables) {
      const col = t.header.findIndex((h) => h.startsWith('k cmd/s'));
      if (col >= 0) for (const r of t.rows.slice(1)) others[`k cmd/s ${r[0]}`] = r[col]!;
    }
    const r = printed('ctrl', 'commands/s', cell(tables, 'Linux link-up burst', 'k cmd/s'), cell(tables, 'Linux link-up burst', 'spread'), 1e3, baseline, refSamples, CTRL_BASELINE_IS, CTRL_SOURCE, { case: 'Linux link-up burst: PROMISC, ALLMULTI, TABLE_SET 0+2', ...others });
    return [r ?? skipped('ctrl', 'commands/s', `${CTRL_SOURCE} printed no "Linux link-up burst" row with a median and a spread`, CTRL_BASELINE_IS)];
  },
};

// ---- rx-filter ----

const FILTER_SOURCE = 'bench/rx-filter.bench.ts';
const FILTER_BASELINE_IS = 'linear-scan reference (in the script, same process)';

export const rxFilter: Benchmark = {
  name: 'rx-filter',
  required: ['rx-filter'],
  cases: () => 1,
  async run(ctx) {
    ctx.step(`rx-filter (${FILTER_SOURCE}, own process)`);
    // Only the decisions table is read; the script's second part (datapath allocation, tens of
    // seconds of settling waits) is not, so the script is stopped once the first part is printed.
    const out = await runScript('rx-filter.bench.ts', quickArgs(ctx), /verdict mix: .*\n/);
    if (!out.ok) return [skipped('rx-filter', 'decisions/s', out.error, FILTER_BASELINE_IS)];
    const tables = parseTables(out.stdout);
    const col = 'M decisions/s';
    const base = num(cell(tables, 'linear-scan reference', col)) * 1e6;
    const baseRange = range(cell(tables, 'linear-scan reference', 'spread'));
    if (!Number.isFinite(base) || baseRange === null) return [skipped('rx-filter', 'decisions/s', `${FILTER_SOURCE} printed no "linear-scan reference" row`, FILTER_BASELINE_IS)];
    const mix = /verdict mix: (.*)/.exec(out.stdout)?.[1] ?? '';
    const r = printed('rx-filter', 'decisions/s', cell(tables, 'acceptFrame', col), cell(tables, 'acceptFrame', 'spread'), 1e6, base, [baseRange[0] * 1e6, base, baseRange[1] * 1e6], FILTER_BASELINE_IS, FILTER_SOURCE, {
      medianRatioPerRepeat: cell(tables, 'ratio', col) ?? '',
      verdictMix: mix,
    });
    return [r ?? skipped('rx-filter', 'decisions/s', `${FILTER_SOURCE} printed no "acceptFrame" row with a median and a spread`, FILTER_BASELINE_IS)];
  },
};
