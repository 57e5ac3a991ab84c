// Transmit throughput (VIRTIO 1.2 §5.1.6.2 packet transmission, §2.7.10 notification suppression):
// guest → device → MemoryNetdev, frames of 64 and 1500 bytes (Ethernet header included, no FCS),
// chains of 1 descriptor (header and frame together, as Linux sends when it can push the header)
// and 2 (header apart), EVENT_IDX on and off. Baseline, measured in the same run: copying the
// same bytes (each chain's buffers out of guest memory) in a tight loop. `tx-memory-64-packed` and
// `tx-memory-1500-packed`: the headline cases over packed rings (§2.8), in the same run as the split ones.
//
//   npx tsx bench/tx-memory.bench.ts [--quick]

import type { Benchmark, BenchContext } from './lib/bench.js';
import { isMain, runStandalone } from './lib/bench.js';
import { NetLoop } from './lib/net-loop.js';
import { frameCorpus, PEER_MAC, BENCH_MAC } from './lib/corpus.js';
import { measurePair } from './lib/timing.js';
import type { Work } from './lib/timing.js';
import type { BenchResult } from './lib/result.js';
import { fromPair } from './lib/result.js';

export interface TxCase {
  name: string;
  frameBytes: number;
  descriptors: 1 | 2;
  eventIdx: boolean;
  /** Ring layout (default split). */
  ring?: 'split' | 'packed';
}

/** The first case of each size is the headline (`tx-memory-64`, `tx-memory-1500`). */
export const TX_CASES: readonly TxCase[] = [64, 1500].flatMap((frameBytes) => [
  { name: `tx-memory-${frameBytes}`, frameBytes, descriptors: 1 as const, eventIdx: true },
  { name: `tx-memory-${frameBytes}-2desc`, frameBytes, descriptors: 2 as const, eventIdx: true },
  { name: `tx-memory-${frameBytes}-no-event-idx`, frameBytes, descriptors: 1 as const, eventIdx: false },
  { name: `tx-memory-${frameBytes}-2desc-no-event-idx`, frameBytes, descriptors: 2 as const, eventIdx: false },
  { name: `tx-memory-${frameBytes}-packed`, frameBytes, descriptors: 1 as const, eventIdx: true, ring: 'packed' as const },
]);

/** A started device with the case's transmit chains prebuilt; `work` sends n frames (whole batches). */
export function txRig(c: TxCase): { loop: NetLoop; work: Work; baseline: Work } {
  const loop = new NetLoop({ eventIdx: c.eventIdx, mrgRxbuf: true, ring: c.ring ?? 'split' });
  // Frames go out to the peer: destination the peer, source the device.
  const views = loop.prepareTx(frameCorpus(c.frameBytes, { dst: PEER_MAC, src: BENCH_MAC }), c.descriptors);
  loop.start();
  const work: Work = (n) => {
    let done = 0;
    while (done < n) done += loop.txBatch();
    return done;
  };
  // The same bytes copied out of the same guest buffers, chain by chain.
  const scratch = new Uint8Array(4096);
  const flat = views.flat();
  const perChain = c.descriptors;
  const baseline: Work = (n) => {
    let done = 0;
    while (done < n) {
      for (let i = 0; i < flat.length; i++) scratch.set(flat[i]!);
      done += flat.length / perChain;
    }
    return done;
  };
  return { loop, work, baseline };
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const c of TX_CASES) {
    ctx.step(`${c.name} (${c.descriptors} desc, EVENT_IDX ${c.eventIdx ? 'on' : 'off'}, ${c.ring ?? 'split'} ring)`);
    const { loop, work, baseline } = txRig(c);
    const p = measurePair(work, baseline, ctx.timing);
    out.push(
      fromPair(c.name, 'pps', p, 'memcpy of the same bytes', {
        frameBytes: c.frameBytes,
        descriptors: c.descriptors,
        eventIdx: c.eventIdx,
        ring: c.ring ?? 'split',
        interruptsPerFrame: loop.interrupts / Math.max(1, loop.device.stats().tx.frames),
      }),
    );
    await loop.netdev.close();
  }
  return out;
}

export const txMemory: Benchmark = {
  name: 'tx-memory',
  required: ['tx-memory-64', 'tx-memory-1500'],
  cases: () => TX_CASES.length,
  run,
};

if (isMain(import.meta.url)) await runStandalone(txMemory);
