// Shrunk fuzz counterexamples as fixture files (test/fixtures/fuzz/*.json): what the fuzzer saves
// when an oracle fails, and what the suite replays so a fixed bug stays fixed.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { caseArb } from './ops.js';
import type { Focus, FuzzCase } from './ops.js';
import { runCase } from './oracle.js';
import type { FuzzFailure, FuzzOracles } from './world.js';

/** test/fixtures/fuzz, next to this folder. */
export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'fuzz');

export interface FuzzFixture {
  /** What failed when the case was found (kept for the record; replay expects no failure). */
  found: FuzzFailure & { seed: number; date: string };
  /** A sentence on the bug and its fix. */
  note?: string;
  /** Extra oracles the replay runs with (the one that found it). */
  oracles?: FuzzOracles;
  /** Set while the bug is open (file, expected vs actual); such a case is kept in test/fixtures/fuzz-open/, not replayed. */
  openBug?: string;
  case: FuzzCase;
}

export function loadFixtures(dir = FIXTURE_DIR): { file: string; fixture: FuzzFixture }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((file) => ({ file, fixture: JSON.parse(readFileSync(join(dir, file), 'utf8')) as FuzzFixture }));
}

export function saveFixture(failure: FuzzFailure, c: FuzzCase, seed: number, oracles: FuzzOracles = {}, dir = FIXTURE_DIR): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${failure.code.replace(/[^a-z0-9.-]/gi, '_')}-seed${seed}-${c.ops.length}ops.json`);
  const fixture: FuzzFixture = { found: { ...failure, seed, date: new Date().toISOString() }, ...(Object.keys(oracles).length > 0 ? { oracles } : {}), case: c };
  writeFileSync(file, `${JSON.stringify(fixture, null, 1)}\n`);
  return file;
}

export interface FuzzRunResult {
  ops: number;
  cases: number;
  /** Operations by kind (FuzzOp `t`), re-entrant actions fired (`reentry hook→action`), frames cycled. */
  counts: Record<string, number>;
  /** Cases that failed with a code in `known` (counted, not stopped on), by code. */
  known: Record<string, number>;
  failure: { failure: FuzzFailure; case: FuzzCase; seed: number } | null;
  /** The run stopped at its `deadline` before `ops` operations ran. */
  stoppedByTime: boolean;
}

/**
 * Runs random cases from `seed` until `ops` operations ran or a case fails; a failing case is
 * shrunk by fast-check. `progress` sees the running operation count (not during shrinking).
 */
export function fuzz(options: {
  ops: number;
  seed: number;
  maxOps?: number;
  focus?: Focus;
  oracles?: FuzzOracles;
  /** Failure codes of bugs known to be open: such a case is counted in `known` and the run goes on. */
  known?: readonly string[];
  /** Stop starting new cases at this time (Date.now() milliseconds), even before `ops` ran. */
  deadline?: number;
  progress?: (ops: number, cases: number) => void;
}): FuzzRunResult {
  const knownCodes = new Set(options.known ?? []);
  const known: Record<string, number> = {};
  const oracles = options.oracles ?? {};
  let ops = 0;
  let cases = 0;
  let counting = true;
  const counts: Record<string, number> = {};
  const focus = options.focus ?? 'all';
  const arb = caseArb(options.maxOps ?? 120, focus);
  const deadline = options.deadline;
  let stoppedByTime = false;
  const timeUp = (): boolean => {
    if (deadline !== undefined && !stoppedByTime && Date.now() >= deadline) stoppedByTime = true;
    return stoppedByTime;
  };
  for (let batch = 0; ops < options.ops && !stoppedByTime; batch++) {
    const seed = options.seed * 100_003 + batch;
    const result = fc.check(
      fc.property(arb, (c) => {
        if (counting && (ops >= options.ops || timeUp())) return true;
        const f = runCase(c, counting ? () => void ops++ : undefined, oracles, counting ? counts : undefined);
        if (counting) {
          cases++;
          options.progress?.(ops, cases);
        }
        if (f !== null && knownCodes.has(f.code)) {
          if (counting) known[f.code] = (known[f.code] ?? 0) + 1;
          return true;
        }
        if (f !== null) counting = false;
        return f === null;
      }),
      { seed: focus === 'all' ? seed : seed ^ FOCUS_SEED[focus], numRuns: 200, endOnFailure: false },
    );
    if (result.failed && result.counterexample !== null) {
      const c = result.counterexample[0];
      const failure = runCase(c, undefined, oracles);
      if (failure !== null) return { ops, cases, counts, known, failure: { failure, case: c, seed }, stoppedByTime };
    }
  }
  return { ops, cases, counts, known, failure: null, stoppedByTime };
}

/** A focused run draws other sequences than an everyday one from the same seed. */
const FOCUS_SEED: Record<Focus, number> = { all: 0, vnet: 0x1111, reentry: 0x2222, wrap: 0x3333, 'big-ring': 0x4444, packed: 0x5555, rss: 0x6666 };
