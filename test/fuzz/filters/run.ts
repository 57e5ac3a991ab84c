// Running filter-fuzzer cases: one case (any target), random runs from a seed until a frame
// budget is spent or a case fails, shrinking (fast-check's, then dropping operations one chunk
// at a time while the same code still fails), and the fixture files CI replays
// (test/fixtures/fuzz-filters/*.json; open findings in test/fixtures/fuzz-filters-open/).

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { caseArbFor } from './cases.js';
import { runColo } from './colo-world.js';
import type { Counts, FilterCase, FilterFailure, Target } from './common.js';
import { runRewriter } from './rewriter-world.js';
import { runSockets } from './sockets-world.js';

export const FILTER_FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'fuzz-filters');

/** Runs one case; null when every oracle held. */
export async function runFilterCase(c: FilterCase, counts?: Counts): Promise<FilterFailure | null> {
  if (c.target === 'colo') return runColo(c, counts);
  if (c.target === 'rewriter') return runRewriter(c, counts);
  return runSockets(c, counts);
}

/** Frames a case offers (the run's unit of work). */
export function framesOf(c: FilterCase): number {
  let n = 0;
  for (const op of c.ops) n += op.t === 'i' ? op.fs.length : op.t === 'tick' || op.t === 'checkpoint' || op.t === 'junk' ? 0 : 're' in op && op.re !== undefined ? 2 : 1;
  return n;
}

/** Drops operations (chunks, then single ones) while the case still fails with `code`. */
export async function shrinkOps(c: FilterCase, code: string): Promise<FilterCase> {
  let cur = c;
  for (let chunk = Math.max(1, cur.ops.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let at = 0; at < cur.ops.length; ) {
      const tried: FilterCase = { ...cur, ops: [...cur.ops.slice(0, at), ...cur.ops.slice(at + chunk)] };
      const f = await runFilterCase(tried);
      if (f !== null && f.code === code) cur = tried;
      else at += chunk;
    }
  }
  return cur;
}

export interface FilterRunResult {
  frames: number;
  cases: number;
  counts: Counts;
  failure: { failure: FilterFailure; case: FilterCase; seed: number } | null;
}

/** Random cases of `target` from `seed` until `frames` frames ran or a case fails (then shrunk). */
export async function fuzzFilters(options: { target: Target; frames: number; seed: number; progress?: (frames: number, cases: number) => void }): Promise<FilterRunResult> {
  const arb = caseArbFor(options.target);
  const counts: Counts = {};
  let frames = 0;
  let cases = 0;
  for (let batch = 0; frames < options.frames; batch++) {
    const seed = options.seed * 100_003 + batch;
    const sample = fc.sample(arb, { seed, numRuns: 50 });
    for (const c of sample) {
      if (frames >= options.frames) break;
      const f = await runFilterCase(c, counts);
      frames += framesOf(c);
      cases++;
      options.progress?.(frames, cases);
      if (f !== null) {
        const small = await shrinkOps(c, f.code);
        const failure = (await runFilterCase(small)) ?? f;
        return { frames, cases, counts, failure: { failure, case: small, seed } };
      }
    }
  }
  return { frames, cases, counts, failure: null };
}

export interface FilterFixture {
  found: FilterFailure & { seed: number; date: string };
  /** What it was and how it was fixed. */
  note?: string;
  case: FilterCase;
}

export function loadFilterFixtures(dir = FILTER_FIXTURE_DIR): { file: string; fixture: FilterFixture }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((file) => ({ file, fixture: JSON.parse(readFileSync(join(dir, file), 'utf8')) as FilterFixture }));
}

export function saveFilterFixture(failure: FilterFailure, c: FilterCase, seed: number, dir = FILTER_FIXTURE_DIR): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${c.target}-${failure.code.replace(/[^a-z0-9.-]/gi, '_')}-seed${seed}-${c.ops.length}ops.json`);
  const fixture: FilterFixture = { found: { ...failure, seed, date: new Date().toISOString() }, case: c };
  writeFileSync(file, `${JSON.stringify(fixture, null, 1)}\n`);
  return file;
}
