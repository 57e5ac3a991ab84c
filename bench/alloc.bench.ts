// Heap bytes allocated per frame in steady state (no spec section: the ARCHITECTURE.md decision
// "the hot path allocates nothing per frame"), over 10^6 frames per path, from V8 heap statistics
// (lib/heap.ts). Paths: transmit 64 B (1 descriptor: the frame goes to the backend as a view of
// guest memory), transmit 1500 B in 2 descriptors (gathered into scratch), receive 1500 B with and
// without MRG_RXBUF. `alloc` reports the worst of these. Baseline, same run, same frame count: the
// copy loops of tx-memory / rx-memory under the same measurement (the harness's own floor).
// `alloc-rx-1500-mrg-3buf` (frames spanning three buffers) and `alloc-rx-rss-1500` (RSS steering,
// baseline: the same frames without RSS) are reported beside, not in `alloc`.
//
//   npx tsx bench/alloc.bench.ts [--quick]

import type { Benchmark, BenchContext } from './lib/bench.js';
import { isMain, runStandalone } from './lib/bench.js';
import { measureAllocation } from './lib/heap.js';
import { calibrate } from './lib/timing.js';
import type { Work } from './lib/timing.js';
import { fromSamples, type BenchResult } from './lib/result.js';
import { TX_CASES, txRig } from './tx-memory.bench.js';
import { RX_CASES, rxRig } from './rx-memory.bench.js';
import { rssRig } from './rx-rss.bench.js';
import type { NetLoop } from './lib/net-loop.js';

/** Frames per measurement (the 10^6). */
export const ALLOC_FRAMES = 1_000_000;

interface AllocPath {
  name: string;
  /** Counted in the headline `alloc`. */
  headline: boolean;
  rig: () => { loop: NetLoop; work: Work; baseline: Work };
}

function txCase(name: string) {
  const c = TX_CASES.find((x) => x.name === name);
  if (c === undefined) throw new Error(`alloc: no tx case ${name}`);
  return () => txRig(c);
}
function rxCase(name: string) {
  const c = RX_CASES.find((x) => x.name === name);
  if (c === undefined) throw new Error(`alloc: no rx case ${name}`);
  return () => rxRig(c);
}

export const ALLOC_PATHS: readonly AllocPath[] = [
  { name: 'alloc-tx-64', headline: true, rig: txCase('tx-memory-64') },
  { name: 'alloc-tx-1500-2desc', headline: true, rig: txCase('tx-memory-1500-2desc') },
  { name: 'alloc-rx-1500', headline: true, rig: rxCase('rx-memory-1500') },
  { name: 'alloc-rx-1500-mrg', headline: true, rig: rxCase('rx-memory-1500-mrg') },
  { name: 'alloc-rx-1500-mrg-3buf', headline: false, rig: rxCase('rx-memory-1500-mrg-3buf') },
  // RSS steering (hash + table lookup per frame), baseline the same frames without RSS.
  { name: 'alloc-rx-rss-1500', headline: false, rig: rssRig },
];

/** Bytes per frame of `work` over `frames` frames, and the GCs V8 ran meanwhile. */
function perFrame(work: Work, frames: number): { bytes: number; gcs: number } {
  let done = 0;
  const a = measureAllocation(() => {
    done = work(frames);
  });
  return { bytes: a.bytes / done, gcs: a.gcs };
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const repeats = ctx.quick ? 1 : 3;
  const out: BenchResult[] = [];
  for (const path of ALLOC_PATHS) {
    ctx.step(`${path.name} (${ALLOC_FRAMES} frames x ${repeats})`);
    const { loop, work, baseline } = path.rig();
    // Steady state first: JIT, chain pool, scratch views, the netdev's buffers.
    calibrate(work, ctx.timing.warmupMs, ctx.timing.repeatMs);
    calibrate(baseline, ctx.timing.warmupMs, ctx.timing.repeatMs);
    const samples: number[] = [];
    const baselineSamples: number[] = [];
    let gcs = 0;
    for (let i = 0; i < repeats; i++) {
      const s = perFrame(work, ALLOC_FRAMES);
      samples.push(s.bytes);
      gcs += s.gcs;
      baselineSamples.push(perFrame(baseline, ALLOC_FRAMES).bytes);
    }
    out.push(
      fromSamples(path.name, 'bytes/frame', samples, baselineSamples, 'the copy loop, same measurement', {
        detail: { frames: ALLOC_FRAMES, gcsDuringDevice: gcs, inHeadline: path.headline },
      }),
    );
    await loop.netdev.close();
  }
  // The headline: the path that allocates most.
  const worst = out.filter((r) => ALLOC_PATHS.find((p) => p.name === r.name)!.headline).reduce((a, b) => (b.value! > a.value! ? b : a));
  out.unshift({ ...worst, name: 'alloc', detail: { ...worst.detail, worstPath: worst.name } });
  return out;
}

export const alloc: Benchmark = {
  name: 'alloc',
  required: ['alloc'],
  cases: () => ALLOC_PATHS.length,
  run,
};

if (isMain(import.meta.url)) await runStandalone(alloc);
