// `npm run fuzz:filters -- --target colo|rewriter|sockets|all --frames N --seed S [--fixtures DIR]`:
// fuzzing the net filters and COLO outside CI (test/fuzz/filters/ has the generators, the
// reference models and the oracles): hostile frames and well-formed conversations through
// colo-compare, filter-rewriter, and filter-mirror / filter-redirector over real unix sockets.
// Progress on stderr; on stdout one summary line per target (frames, cases, seconds, result), then
// the operations and frames run by kind (`kind count`, one a line; test/README.md records them).
// On a failure the case is shrunk, saved as `<target>-<code>-seed<S>-<n>ops.json` under
// test/fixtures/fuzz-filters/ (or --fixtures DIR; the suite replays every fixture there), exit 1.

import { TARGETS, type Target } from '../test/fuzz/filters/common.js';
import { FILTER_FIXTURE_DIR, fuzzFilters, saveFilterFixture } from '../test/fuzz/filters/run.js';

function usage(message: string): never {
  process.stderr.write(`fuzz:filters: ${message}\nusage: npm run fuzz:filters -- --target ${TARGETS.join('|')}|all --frames N --seed S [--fixtures DIR]\n`);
  process.exit(2);
}

const args = { targets: [...TARGETS] as Target[], frames: 100_000, seed: 1, fixtures: FILTER_FIXTURE_DIR };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i];
  const value = argv[i + 1];
  if (value === undefined) usage(`${String(key)} needs a value`);
  if (key === '--target') {
    if (value === 'all') args.targets = [...TARGETS];
    else if (TARGETS.includes(value as Target)) args.targets = [value as Target];
    else usage(`--target needs one of ${TARGETS.join(', ')}, all; got ${value}`);
  } else if (key === '--fixtures') args.fixtures = value;
  else if (key === '--frames' || key === '--seed') {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) usage(`${key} needs a non-negative integer, got ${value}`);
    if (key === '--frames') args.frames = n;
    else args.seed = n;
  } else usage(`unknown argument ${String(key)}`);
}

let failed = false;
for (const target of args.targets) {
  const started = Date.now();
  let last = 0;
  const r = await fuzzFilters({
    target,
    frames: args.frames,
    seed: args.seed,
    progress: (frames, cases) => {
      const now = Date.now();
      if (now - last < (process.stderr.isTTY ? 500 : 30_000)) return;
      last = now;
      process.stderr.write(`${target}: ${frames}/${args.frames} frames, ${cases} cases, ${((now - started) / 1000).toFixed(0)} s${process.stderr.isTTY ? '\r' : '\n'}`);
    },
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.failure !== null) {
    const { failure, case: c, seed } = r.failure;
    const file = saveFilterFixture(failure, c, seed, args.fixtures);
    process.stdout.write(`fuzz:filters ${target} seed ${args.seed}: FAILED after ${r.frames} frames, ${r.cases} cases, ${secs} s: ${failure.code} at step ${failure.step}: ${failure.detail}\nshrunk to ${c.ops.length} ops, saved ${file}\n`);
    failed = true;
  } else process.stdout.write(`fuzz:filters ${target} seed ${args.seed}: ${r.frames} frames, ${r.cases} cases, ${secs} s, 0 failures\n`);
  for (const [kind, n] of Object.entries(r.counts).sort(([a], [b]) => (a < b ? -1 : 1))) process.stdout.write(`  ${kind.padEnd(28)} ${n}\n`);
}
process.exit(failed ? 1 : 0);
