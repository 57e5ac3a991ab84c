// Benchmarks written as standalone scripts by other parts of the project (bench/queue.bench.ts,
// bench/ctrl.bench.ts, bench/rx-filter.bench.ts) run unchanged, each in its own Node process, and
// their printed markdown tables are read back into results. Their measuring logic stays theirs;
// a separate process also keeps their GC observers and forced GCs out of this process's
// allocation measurement. A script that fails, or whose table lacks an expected row, yields a
// skipped result with the reason — never a number that was not printed by the measurement.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** A script that takes longer than this is stopped (its results are skipped). */
const SCRIPT_TIMEOUT_MS = 10 * 60_000;

export interface ScriptOutput {
  ok: boolean;
  stdout: string;
  /** Why it failed (exit status and the end of stderr). */
  error: string;
}

/**
 * Runs `bench/<file>` under tsx with `args`. With `until`, the script is stopped as soon as its
 * output matches (the rest of what it measures is not read here, so there is no point waiting).
 */
export function runScript(file: string, args: readonly string[], until?: RegExp): Promise<ScriptOutput> {
  return new Promise((resolve) => {
    let done = false;
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, file), ...args], {
      cwd: path.dirname(BENCH_DIR),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: SCRIPT_TIMEOUT_MS,
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (until !== undefined && !done && until.test(stdout)) {
        done = true;
        p.kill('SIGTERM');
        resolve({ ok: true, stdout, error: '' });
      }
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => resolve({ ok: false, stdout, error: `${file}: ${e.message}` }));
    p.on('close', (code, signal) => {
      if (done) return;
      done = true;
      const tail = stderr
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('npm warn'))
        .slice(-3)
        .join(' / ');
      resolve({ ok: code === 0, stdout, error: code === 0 ? '' : `${file} exited ${signal ?? code}${tail === '' ? '' : `: ${tail}`}` });
    });
  });
}

/** A markdown table as printed: header cells and rows of cells. */
export interface Table {
  header: string[];
  rows: string[][];
}

/** Every markdown table in `text` (a header line, a rule line, then rows). */
export function parseTables(text: string): Table[] {
  const lines = text.split('\n');
  const tables: Table[] = [];
  const cells = (l: string) =>
    l
      .trim()
      .replace(/^\|/, '')
      .replace(/\|$/, '')
      .split('|')
      .map((c) => c.trim());
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.trim().startsWith('|') || !/^\|[-:| ]+\|$/.test(lines[i + 1]!.trim())) continue;
    const t: Table = { header: cells(lines[i]!), rows: [] };
    let j = i + 2;
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j++) t.rows.push(cells(lines[j]!));
    tables.push(t);
    i = j - 1;
  }
  return tables;
}

/** The cell of the first row whose first cell starts with `rowPrefix`, in the column whose header starts with `column`. */
export function cell(tables: readonly Table[], rowPrefix: string, column: string): string | undefined {
  for (const t of tables) {
    const col = t.header.findIndex((h) => h.startsWith(column));
    if (col < 0) continue;
    const row = t.rows.find((r) => r[0]!.startsWith(rowPrefix));
    if (row !== undefined) return row[col];
  }
  return undefined;
}

/** A number from a cell such as "12.3", "4.5x" or "1,234"; NaN when there is none. */
export function num(s: string | undefined): number {
  if (s === undefined) return NaN;
  const m = /-?\d[\d,]*(\.\d+)?/.exec(s);
  return m === null ? NaN : Number(m[0].replace(/,/g, ''));
}

/** "a..b" → [a, b]. */
export function range(s: string | undefined): [number, number] | null {
  if (s === undefined) return null;
  const m = /(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)/.exec(s);
  return m === null ? null : [Number(m[1]), Number(m[2])];
}
