// The table `npm run bench` prints at the end (markdown, so it pastes into bench/README.md).

import type { BenchReport, BenchResult } from './result.js';

/** 12.3 M, 456 k, 7.89: three significant figures with an SI prefix. */
export function si(n: number): string {
  if (n === 0) return '0';
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs < 0.01) return n.toExponential(1);
  const prefixes: [number, string][] = [
    [1e9, ' G'],
    [1e6, ' M'],
    [1e3, ' k'],
    [1, ''],
  ];
  for (const [scale, prefix] of prefixes) {
    // Round first, so 999.96 k shows as 1.00 M rather than 1.00e+3 k.
    const rounded = Number((abs / scale).toPrecision(3));
    if (rounded >= 1 || scale === 1) {
      if (rounded >= 1000 && scale < 1e9) continue;
      return (n < 0 ? '-' : '') + rounded.toPrecision(3) + prefix;
    }
  }
  return n.toPrecision(3);
}

function fmtRatio(r: number | null): string {
  return r === null ? '—' : r.toFixed(r < 10 ? 3 : 1);
}

function row(r: BenchResult): string[] {
  if (r.skipped !== undefined) return [r.name, r.unit, '—', '—', '—', '—', '—', `skipped: ${r.skipped}`];
  const cpu = r.perCpuSecond;
  return [
    r.name,
    r.unit,
    si(r.value!),
    r.spread === null ? '—' : `±${((r.spread * 100) / 2).toFixed(0)} %`,
    si(r.baseline!),
    fmtRatio(r.ratio),
    cpu === undefined ? '—' : `${si(cpu.value)} (${fmtRatio(cpu.ratio)})`,
    r.baselineIs,
  ];
}

export function markdownTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const numeric = (i: number) => i >= 2 && i <= 6;
  const line = (r: string[]) => '| ' + r.map((c, i) => (numeric(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, i) => (numeric(i) ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n');
}

/** The results table: median, half the spread, baseline median, ratio, per CPU-second, what the baseline is. */
export function resultsTable(report: BenchReport): string {
  const head = ['name', 'unit', 'median', 'spread', 'baseline', 'ratio', 'per CPU-s (ratio)', 'baseline is'];
  return markdownTable([head, ...report.results.map(row)]);
}

export function reportHeader(report: BenchReport): string {
  return `${report.date.slice(0, 10)}, node ${report.node}, ${report.cpu} (${report.cores} cores), load average ${report.loadavg} at start${report.quick ? ', --quick' : ''}`;
}
