// Frames per second through a real TAP (VIRTIO 1.2 §5.1.6.2 transmission and §5.1.6.4 reception,
// over lib/netdev/tap-netdev.ts): the device on a `TapNetdev` whose interface sits in a throwaway
// network namespace — the peer. Root only; skipped with the reason otherwise.
//
// Baseline, same run, same TAP fd: bench/tap-loop.c, built here with the system compiler, doing the
// bare write()/read() loop — the physical limit of the TAP path. The fd is shared with the C
// program (spawn stdio slot 3), so both go through the same kernel object.
//   tap-tx-64  guest → device → write(2): 64-byte frames with a 12-byte virtio-net header. The
//              frames are addressed to another host, so the namespace's stack drops them cheaply.
//   tap-rx-64  read(2) → device → guest buffers: the peer (tap-loop gen, an AF_PACKET sender in the
//              namespace) first fills the TAP's queue (txqueuelen raised to hold it) while the
//              backend is paused; the clock then runs from resume to the last frame the guest
//              received — so the figure is the read path's, not the sender's. The C loop drains
//              an identically filled queue.
// Subject and baseline alternate per repeat.
//
//   npx tsx bench/tap.bench.ts [--quick]        (as root)

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, BenchContext } from './lib/bench.js';
import { isMain, runStandalone } from './lib/bench.js';
import { NetLoop } from './lib/net-loop.js';
import { frameCorpus, PEER_MAC, BENCH_MAC } from './lib/corpus.js';
import { summarize, ratio } from './lib/stats.js';
import type { BenchResult } from './lib/result.js';
import { fromSamples, skipped } from './lib/result.js';
import { Netns, hostSkipReason, linkName, run as runCmd } from '../test/support/netns.js';
import type { TapNetdev } from '../lib/netdev/tap-netdev.js';
import type { TapIo } from '../lib/netdev/tap-fd.js';

const FRAME_BYTES = 64;
const HDR_LEN = 12;
const BASELINE_IS = 'C write()/read() loop on the same TAP fd';
/** How long a drain may see no new frame before it counts as finished (frames lost on the way). */
const IDLE_MS = 500;

interface Sizes {
  txFrames: number;
  rxFrames: number;
  repeats: number;
}
/** Frames moved before the measured repeats, so the first repeat is not the one that compiles the path. */
const WARM_TX_FRAMES = 20_000;
const WARM_RX_FRAMES = 5_000;
const QUICK_SIZES: Sizes = { txFrames: 40_000, rxFrames: 20_000, repeats: 2 };
const FULL_SIZES: Sizes = { txFrames: 200_000, rxFrames: 50_000, repeats: 5 };

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function child(cmd: string, args: readonly string[], fd?: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', fd] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Frames moved, wall-clock ns, and CPU ns (user + system, all threads) spent moving them. */
interface Run {
  frames: number;
  ns: number;
  cpuNs: number;
}

/** "<frames> <ns> <cpu ns>" from tap-loop. */
async function cLoop(bin: string, args: readonly string[], fd?: number, viaNetns?: string): Promise<Run> {
  const r = viaNetns === undefined ? await child(bin, args, fd) : await child('ip', ['netns', 'exec', viaNetns, bin, ...args]);
  const m = /^(\d+) (\d+) (\d+)\s*$/.exec(r.stdout);
  if (r.code !== 0 || m === null) throw new Error(`tap-loop ${args[0]} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return { frames: Number(m[1]), ns: Number(m[2]), cpuNs: Number(m[3]) };
}

/** This process's CPU time (every thread: the main loop and the poll thread), ns. */
function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface TapEnv {
  ns: Netns;
  tap: TapNetdev;
  loop: NetLoop;
  bin: string;
  dir: string;
}

function buildBaseline(dir: string): string {
  const src = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tap-loop.c');
  const bin = path.join(dir, 'tap-loop');
  try {
    execFileSync('cc', ['-O2', '-o', bin, src], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  } catch (e) {
    throw new Error(`cannot build the C baseline with cc: ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e)}`);
  }
  return bin;
}

async function setup(sizes: Sizes, io: TapIo): Promise<TapEnv> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vnm-bench-'));
  let ns: Netns | null = null;
  let tap: TapNetdev | null = null;
  try {
    const bin = buildBaseline(dir);
    const { TapNetdev } = await import('../lib/netdev/tap-netdev.js');
    ns = new Netns();
    // No IPv6 chatter (router solicitations, DAD) from the namespace into the TAP.
    ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    tap = new TapNetdev({ id: `bench-tap-${io}`, ifname: linkName('b'), io });
    const loop = new NetLoop({ eventIdx: true, mrgRxbuf: true, netdev: tap });
    loop.prepareTx(frameCorpus(FRAME_BYTES, { dst: PEER_MAC, src: BENCH_MAC }), 1);
    loop.prepareRx(1536);
    runCmd('ip', ['link', 'set', tap.ifname, 'netns', ns.name]);
    ns.ip(['link', 'set', tap.ifname, 'txqueuelen', String(sizes.rxFrames + 1000), 'up']);
    loop.start(); // DRIVER_OK: TUNSETVNETHDRSZ 12
    if (tap.vnetHeaderLength !== HDR_LEN) throw new Error(`TAP header length is ${tap.vnetHeaderLength}, expected ${HDR_LEN}`);
    return { ns, tap, loop, bin, dir };
  } catch (e) {
    if (tap !== null) await tap.close();
    ns?.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function teardown(env: TapEnv): Promise<void> {
  await env.tap.close();
  env.ns.destroy();
  rmSync(env.dir, { recursive: true, force: true });
}

/** Device transmit: `frames` frames through TapNetdev.send (one write(2) each). */
function deviceTx(env: TapEnv, frames: number): Run {
  const before = env.tap.stats();
  const c0 = cpuNow();
  const t0 = process.hrtime.bigint();
  let done = 0;
  while (done < frames) done += env.loop.txBatch();
  env.tap.flush(); // io_uring: the last partial batch (inline: nothing queued)
  const ns = Number(process.hrtime.bigint() - t0);
  const cpuNs = cpuNow() - c0;
  const after = env.tap.stats();
  if (after.txErrors !== before.txErrors) throw new Error(`${after.txErrors - before.txErrors} TAP writes failed`);
  return { frames: after.txFrames - before.txFrames, ns, cpuNs };
}

/** Fills the TAP's queue from the namespace while the backend is paused. */
async function fill(env: TapEnv, frames: number): Promise<void> {
  env.tap.pauseReceive();
  await pause(20); // the poller's next turn drops POLLIN
  const g = await cLoop(env.bin, ['gen', env.tap.ifname, String(frames), String(FRAME_BYTES)], undefined, env.ns.name);
  if (g.frames !== frames) throw new Error(`the peer sent ${g.frames} of ${frames} frames`);
}

/** Device receive: resume the backend, recycle buffers on each interrupt, until `frames` arrived or the flow stops. */
function deviceRx(env: TapEnv, frames: number): Promise<Run> {
  const loop = env.loop;
  return new Promise((resolve) => {
    let got = 0;
    let scheduled = false;
    let lastProgress = Date.now();
    let tLast = 0n;
    let cpuLast = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(idle);
      loop.onInterrupt = null;
      resolve({ frames: got, ns: Number(tLast - t0), cpuNs: cpuLast - c0 });
    };
    const service = () => {
      scheduled = false;
      const n = loop.rxRecycle();
      if (n > 0) {
        got += n;
        tLast = process.hrtime.bigint();
        cpuLast = cpuNow();
        lastProgress = Date.now();
      }
      if (got >= frames) finish();
    };
    loop.onInterrupt = () => {
      if (!scheduled) {
        scheduled = true;
        setImmediate(service);
      }
    };
    // A fallback for an interrupt the line's level hid, and the end of a flow that lost frames.
    const idle = setInterval(() => {
      service();
      if (!finished && Date.now() - lastProgress > IDLE_MS) finish();
    }, 5);
    loop.rxRecycle(); // buffers left from a previous repeat
    const c0 = cpuNow();
    const t0 = process.hrtime.bigint();
    env.tap.resumeReceive();
  });
}

/** pps from the runs, with CPU ns per frame beside (steadier than pps when other jobs load the machine). */
function result(name: string, dev: Run[], c: Run[], detail: NonNullable<BenchResult['detail']>): BenchResult {
  const pps = (r: Run) => (r.frames * 1e9) / Math.max(1, r.ns);
  const cpu = (r: Run) => r.cpuNs / Math.max(1, r.frames);
  const devCpu = summarize(dev.map(cpu)).median;
  const cCpu = summarize(c.map(cpu)).median;
  return fromSamples(name, 'pps', dev.map(pps), c.map(pps), BASELINE_IS, {
    perCpuSecond: { value: 1e9 / Math.max(1, devCpu), baseline: 1e9 / Math.max(1, cCpu), ratio: ratio(1e9 / Math.max(1, devCpu), 1e9 / Math.max(1, cCpu)) },
    detail: {
      ...detail,
      cpuNsPerFrame: Math.round(devCpu),
      baselineCpuNsPerFrame: Math.round(cCpu),
      cpuRatio: Math.round((cCpu / Math.max(1, devCpu)) * 1000) / 1000,
    },
  });
}

/** The rows: io_uring batches (the headline) and the inline path, each against the C loop on its own fd. */
const PATHS: readonly { io: TapIo; suffix: string }[] = [
  { io: 'uring', suffix: '' },
  { io: 'inline', suffix: '-inline' },
];
const NAMES = PATHS.flatMap((p) => [`tap-tx-64${p.suffix}`, `tap-rx-64${p.suffix}`]);

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const sizes = ctx.quick ? QUICK_SIZES : FULL_SIZES;
  ctx.step('tap: namespaces, TAPs, C baseline');
  const reason = hostSkipReason();
  if (reason !== null) return NAMES.map((n) => skipped(n, 'pps', reason, BASELINE_IS));
  const envs: TapEnv[] = [];
  try {
    for (const p of PATHS) envs.push(await setup(sizes, p.io));
  } catch (e) {
    for (const env of envs) await teardown(env);
    const why = `setup failed: ${(e as Error).message}`;
    return NAMES.map((n) => skipped(n, 'pps', why, BASELINE_IS));
  }
  const out: BenchResult[] = [];
  try {
    // Each repeat runs every path and its C baseline back to back (A/B pairs in one window of load).
    ctx.step(`tap-tx-64 (${sizes.txFrames} frames x ${sizes.repeats}, ${PATHS.length} paths)`);
    try {
      for (const env of envs) deviceTx(env, WARM_TX_FRAMES); // warm-up (JIT, the slots' first touch)
      const dev: Run[][] = PATHS.map(() => []);
      const c: Run[][] = PATHS.map(() => []);
      for (let i = 0; i < sizes.repeats; i++) {
        for (let k = 0; k < envs.length; k++) {
          const env = envs[k]!;
          c[k]!.push(await cLoop(env.bin, ['tx', '3', String(sizes.txFrames), String(FRAME_BYTES), String(HDR_LEN)], env.tap.fd));
          dev[k]!.push(deviceTx(env, sizes.txFrames));
        }
      }
      PATHS.forEach((p, k) => out.push(result(`tap-tx-64${p.suffix}`, dev[k]!, c[k]!, { io: p.io, frameBytes: FRAME_BYTES, frames: sizes.txFrames, ifname: envs[k]!.tap.ifname })));
    } catch (e) {
      for (const p of PATHS) out.push(skipped(`tap-tx-64${p.suffix}`, 'pps', `failed: ${(e as Error).message}`, BASELINE_IS));
    }
    ctx.step(`tap-rx-64 (${sizes.rxFrames} frames x ${sizes.repeats}, ${PATHS.length} paths)`);
    try {
      const dev: Run[][] = PATHS.map(() => []);
      const c: Run[][] = PATHS.map(() => []);
      const lost = PATHS.map(() => 0);
      for (const env of envs) {
        await fill(env, WARM_RX_FRAMES); // warm-up, not counted
        await deviceRx(env, WARM_RX_FRAMES);
      }
      for (let i = 0; i < sizes.repeats; i++) {
        for (let k = 0; k < envs.length; k++) {
          const env = envs[k]!;
          await fill(env, sizes.rxFrames);
          const cr = await cLoop(env.bin, ['rx', '3', String(sizes.rxFrames)], env.tap.fd);
          c[k]!.push(cr);
          lost[k]! += sizes.rxFrames - cr.frames;
          await fill(env, sizes.rxFrames);
          const d = await deviceRx(env, sizes.rxFrames);
          dev[k]!.push(d);
          lost[k]! += sizes.rxFrames - d.frames;
        }
      }
      PATHS.forEach((p, k) => out.push(result(`tap-rx-64${p.suffix}`, dev[k]!, c[k]!, { io: p.io, frameBytes: FRAME_BYTES, frames: sizes.rxFrames, framesNotArrived: lost[k]!, ifname: envs[k]!.tap.ifname })));
    } catch (e) {
      for (const p of PATHS) out.push(skipped(`tap-rx-64${p.suffix}`, 'pps', `failed: ${(e as Error).message}`, BASELINE_IS));
    }
  } finally {
    for (const env of envs) await teardown(env);
  }
  return out;
}

export const tap: Benchmark = {
  name: 'tap',
  required: NAMES,
  cases: () => 3,
  run,
};

if (isMain(import.meta.url)) await runStandalone(tap);
