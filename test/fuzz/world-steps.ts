// Running a FuzzWorld step by step in the oracle tests (oracles.test.ts, rss-oracles.test.ts):
// the code a step stopped with, a list of operations run one step each, and a world that has run
// a list with every oracle holding.

import { expect } from 'chai';
import { FuzzStop, FuzzWorld } from './world.js';
import type { FuzzOp, FuzzSetup } from './ops.js';

/** Runs `fn`; the code of the FuzzStop it threw, or null when it ran through. */
export function stopCode(fn: () => void): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof FuzzStop) return e.failure.code;
    throw e;
  }
}

/** Runs `ops` one step each (apply + afterStep); the code of the first stop, or null. */
export function steps(w: FuzzWorld, ops: FuzzOp[]): string | null {
  return stopCode(() => {
    for (const op of ops) {
      w.step++;
      w.apply(op);
      w.afterStep();
    }
  });
}

/** A world on `base` with `setup` over it that has run `ops` with every oracle holding. */
export function worldAfter(base: FuzzSetup, ops: FuzzOp[], setup: Partial<FuzzSetup> = {}): FuzzWorld {
  const w = new FuzzWorld({ ...base, ...setup });
  w.step = -1;
  expect(steps(w, ops)).to.equal(null);
  return w;
}
