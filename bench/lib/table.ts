// The table `npm run bench` prints at the end (markdown, so it pastes into bench/README.md).

import type { BenchReport, BenchResult } from './result.js';

/** 12.3 M, 456 k, 7.89: three significant figures with an SI prefix. */
export function si(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toPrecision(3) + ' G';
  if (abs >= 1e6) return (n / 1e6).toPrecision(3) + ' M';
  if (abs >= 1e3) return (n / 1e3).toPrecision(3) + ' k';
  if (abs === 0) return '0';
  if (abs < 0.01) return n.toExponential(1);
  return n.toPrecision(3);
}

function row(r: BenchResult): string[] {
  if (r.skipped !== undefined) return [r.name, r.unit, '—', '—', '—', '—', `skipped: ${r.skipped}`];
  return [
    r.name,
    r.unit,
    si(r.value!),
    r.spread === null ? '—' : `±${((r.spread * 100) / 2).toFixed(0)} %`,
    si(r.baseline!),
    r.ratio === null ? '—' : r.ratio.toFixed(r.ratio < 10 ? 3 : 1),
    r.baselineIs,
  ];
}

export function markdownTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const numeric = (i: number) => i >= 2 && i <= 5;
  const line = (r: string[]) => '| ' + r.map((c, i) => (numeric(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, i) => (numeric(i) ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n');
}

/** The results table: median, half the spread, baseline median, ratio, what the baseline is. */
export function resultsTable(report: BenchReport): string {
  const head = ['name', 'unit', 'median', 'spread', 'baseline', 'ratio', 'baseline is'];
  return markdownTable([head, ...report.results.map(row)]);
}

export function reportHeader(report: BenchReport): string {
  return `${report.date.slice(0, 10)}, node ${report.node}, ${report.cpu} (${report.cores} cores), load average ${report.loadavg} at start${report.quick ? ', --quick' : ''}`;
}
