// `npm run fuzz -- --ops N --seed S [--max-len L] [--focus F] [--fixtures DIR] [--max-seconds T]`: operation-sequence
// fuzzing of the virtio-net device's guest interface outside CI (test/fuzz/ has the model and the
// oracles). `--focus` leans on one of the new operation kinds (vnet: header-carrying backend and
// offloads; reentry: driver operations from inside callbacks; wrap: long runs across the 16-bit
// index wrap; big-ring: rings up to 32768; packed: every case over packed rings with the packed-ring
// driver mistakes; rss: RSS and HASH_REPORT offered, RSS_CONFIG / HASH_CONFIG and described IP
// frames for the steering and hash-report oracles); default all. Shows a progress bar on stderr; on a
// failure, saves the shrunk sequence under test/fixtures/fuzz/ (or --fixtures DIR; the suite
// replays every fixture there) and exits 1. `--known CODE,...`: cases failing with these codes
// (bugs known to be open) are counted and passed over, so the run can find others. `--max-seconds T`:
// start no new case after T seconds (a loaded machine); the summary then says the run stopped at
// its time limit and how many operations ran. Prints one summary line (ops, cases, seconds, result)
// and then the operations run by kind, one `kind count` per line (test/README.md records them).

import { fuzz, saveFixture, FIXTURE_DIR } from '../test/fuzz/fixtures.js';
import { FOCUSES } from '../test/fuzz/ops.js';
import type { Focus } from '../test/fuzz/ops.js';
import type { FuzzOracles } from '../test/fuzz/world.js';

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nusage: npm run fuzz -- --ops N --seed S [--max-len L] [--focus ${FOCUSES.join('|')}] [--known CODE,...] [--fixtures DIR] [--max-seconds T]\n`);
  process.exit(2);
}

function parse(argv: string[]): { ops: number; seed: number; maxLen: number; focus: Focus; fixtures: string; known: string[]; oracles: FuzzOracles; maxSeconds: number } {
  const out = { ops: 100_000, seed: 1, maxLen: 120, focus: 'all' as Focus, fixtures: FIXTURE_DIR, known: [] as string[], oracles: {} as FuzzOracles, maxSeconds: 0 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    if (key === '--focus') {
      if (!FOCUSES.includes(value as Focus)) usage(`--focus needs one of ${FOCUSES.join(', ')}, got ${String(value)}`);
      out.focus = value as Focus;
      i++;
      continue;
    }
    if (key === '--known') {
      if (value === undefined || value.length === 0) usage('--known needs failure codes, comma-separated');
      out.known = value.split(',');
      i++;
      continue;
    }
    if (key === '--fixtures') {
      if (value === undefined || value.length === 0) usage('--fixtures needs a directory');
      out.fixtures = value;
      i++;
      continue;
    }
    const n = Number(value);
    if (key !== '--ops' && key !== '--seed' && key !== '--max-len' && key !== '--max-seconds') usage(`unknown argument ${String(key)}`);
    if (value === undefined || !Number.isSafeInteger(n) || n < 0) usage(`${key} needs a non-negative integer, got ${String(value)}`);
    if (key === '--ops') out.ops = n;
    else if (key === '--seed') out.seed = n;
    else if (key === '--max-seconds') out.maxSeconds = n;
    else out.maxLen = Math.max(1, n);
    i++;
  }
  return out;
}

const args = parse(process.argv.slice(2));
const started = Date.now();
const tty = process.stderr.isTTY === true;
let lastDraw = 0;

function draw(ops: number, cases: number, force = false): void {
  const now = Date.now();
  if (!force && now - lastDraw < (tty ? 200 : 30_000)) return;
  lastDraw = now;
  const frac = Math.min(1, ops / Math.max(1, args.ops));
  const width = 30;
  const full = Math.round(frac * width);
  const secs = (now - started) / 1000;
  const rate = ops / Math.max(0.001, secs);
  const eta = rate > 0 ? (args.ops - ops) / rate : 0;
  const line = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(1)}% ${ops}/${args.ops} ops ${cases} cases ${rate.toFixed(0)} ops/s eta ${eta.toFixed(0)}s`;
  process.stderr.write(tty ? `\r${line}` : `${line}\n`);
}

const deadline = args.maxSeconds > 0 ? started + args.maxSeconds * 1000 : undefined;
const result = fuzz({ ops: args.ops, seed: args.seed, maxOps: args.maxLen, focus: args.focus, known: args.known, oracles: args.oracles, ...(deadline === undefined ? {} : { deadline }), progress: (o, c) => draw(o, c) });
draw(result.ops, result.cases, true);
if (tty) process.stderr.write('\n');
const secs = ((Date.now() - started) / 1000).toFixed(1);
const focus = args.focus === 'all' ? '' : ` focus ${args.focus}`;

function printCounts(): void {
  const kinds = Object.entries(result.counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [kind, n] of kinds) process.stdout.write(`  ${kind.padEnd(34)} ${n}\n`);
  for (const [code, n] of Object.entries(result.known)) process.stdout.write(`  known open bug ${code}: ${n} case(s) passed over\n`);
}

if (result.failure !== null) {
  const { failure, case: c, seed } = result.failure;
  const file = saveFixture(failure, c, seed, args.oracles, args.fixtures);
  process.stdout.write(`fuzz seed ${args.seed}${focus}: FAILED after ${result.ops} ops, ${result.cases} cases, ${secs} s: ${failure.code} at step ${failure.step}: ${failure.detail}\n`);
  process.stdout.write(`shrunk to ${c.ops.length} ops, saved ${file}\n`);
  printCounts();
  process.exit(1);
}
const limit = result.stoppedByTime ? ` (stopped at the ${args.maxSeconds} s limit, before ${args.ops} ops)` : '';
process.stdout.write(`fuzz seed ${args.seed}${focus}: ${result.ops} ops, ${result.cases} cases, ${secs} s, 0 failures${limit}\n`);
printCounts();
