// Receive throughput (VIRTIO 1.2 §5.1.6.3 receive buffers, §5.1.6.4 processing of incoming
// packets): MemoryNetdev → device (rx filter, header, copy into guest buffers) → used ring, with
// and without MRG_RXBUF, EVENT_IDX on. Buffers are 1536 bytes (Linux's size for a 1500-byte MTU
// without big packets); `-mrg-3buf` gives 512-byte buffers so each 1500-byte frame spans three
// (num_buffers = 3). Baseline, measured in the same run: the same copy (header and frame into the
// same guest buffers) in a tight loop. `rx-memory-1500-packed` and `rx-memory-1500-mrg-packed`: the
// same over packed rings (§2.8), in the same run as the split ones.
//
//   npx tsx bench/rx-memory.bench.ts [--quick]

import type { Benchmark, BenchContext } from './lib/bench.js';
import { isMain, runStandalone } from './lib/bench.js';
import { NetLoop } from './lib/net-loop.js';
import { frameCorpus } from './lib/corpus.js';
import { measurePair } from './lib/timing.js';
import type { Work } from './lib/timing.js';
import type { BenchResult } from './lib/result.js';
import { fromPair } from './lib/result.js';
import type { MemoryNetdev } from '../lib/netdev/memory-netdev.js';

export interface RxCase {
  name: string;
  frameBytes: number;
  mrgRxbuf: boolean;
  bufferBytes: number;
  /** Ring layout (default split). */
  ring?: 'split' | 'packed';
}

export const RX_CASES: readonly RxCase[] = [
  { name: 'rx-memory-1500', frameBytes: 1500, mrgRxbuf: false, bufferBytes: 1536 },
  { name: 'rx-memory-1500-mrg', frameBytes: 1500, mrgRxbuf: true, bufferBytes: 1536 },
  { name: 'rx-memory-1500-mrg-3buf', frameBytes: 1500, mrgRxbuf: true, bufferBytes: 512 },
  { name: 'rx-memory-64', frameBytes: 64, mrgRxbuf: false, bufferBytes: 1536 },
  { name: 'rx-memory-1500-packed', frameBytes: 1500, mrgRxbuf: false, bufferBytes: 1536, ring: 'packed' },
  { name: 'rx-memory-1500-mrg-packed', frameBytes: 1500, mrgRxbuf: true, bufferBytes: 1536, ring: 'packed' },
];

/** A started device with every receive buffer posted; `work` delivers n frames (whole batches). */
export function rxRig(c: RxCase): { loop: NetLoop; work: Work; baseline: Work } {
  const loop = new NetLoop({ eventIdx: true, mrgRxbuf: c.mrgRxbuf, ring: c.ring ?? 'split' });
  const netdev = loop.netdev as MemoryNetdev;
  const frames = frameCorpus(c.frameBytes);
  const views = loop.prepareRx(c.bufferBytes);
  loop.start();
  const hdrLen = loop.hdrLen;
  const perFrame = Math.ceil((hdrLen + c.frameBytes) / c.bufferBytes);
  if (perFrame > 1 && !c.mrgRxbuf) throw new Error(`${c.name}: a ${c.frameBytes}-byte frame needs MRG_RXBUF with ${c.bufferBytes}-byte buffers`);
  const batch = Math.floor(views.length / perFrame);
  const expect = batch * perFrame;
  let next = 0;
  const work: Work = (n) => {
    let done = 0;
    while (done < n) {
      for (let i = 0; i < batch; i++) {
        netdev.inject(frames[next]!);
        next = (next + 1) % frames.length;
      }
      const got = loop.rxRecycle();
      if (got !== expect) throw new Error(`${c.name}: the device used ${got} of ${expect} receive buffers`);
      done += batch;
    }
    return done;
  };
  // The same bytes: a zero header and the frame, into the same guest buffers, piece by piece.
  const header = new Uint8Array(hdrLen);
  const pieces: { dest: Uint8Array; src: Uint8Array; at: number }[][] = frames.map((f, k) => {
    const out: { dest: Uint8Array; src: Uint8Array; at: number }[] = [];
    let off = 0;
    for (let b = 0; b < perFrame; b++) {
      const dest = views[(k * perFrame + b) % views.length]!;
      const room = b === 0 ? dest.length - hdrLen : dest.length;
      const src = f.subarray(off, Math.min(f.length, off + room));
      out.push({ dest, src, at: b === 0 ? hdrLen : 0 });
      off += src.length;
    }
    return out;
  });
  let nextB = 0;
  const baseline: Work = (n) => {
    let done = 0;
    while (done < n) {
      for (let i = 0; i < batch; i++) {
        const p = pieces[nextB]!;
        p[0]!.dest.set(header);
        for (let k = 0; k < p.length; k++) p[k]!.dest.set(p[k]!.src, p[k]!.at);
        nextB = (nextB + 1) % pieces.length;
      }
      done += batch;
    }
    return done;
  };
  return { loop, work, baseline };
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const c of RX_CASES) {
    ctx.step(`${c.name} (${c.frameBytes} B frames, ${c.bufferBytes} B buffers, MRG_RXBUF ${c.mrgRxbuf ? 'on' : 'off'}, ${c.ring ?? 'split'} ring)`);
    const { loop, work, baseline } = rxRig(c);
    const p = measurePair(work, baseline, ctx.timing);
    const s = loop.device.stats();
    out.push(
      fromPair(c.name, 'pps', p, 'memcpy of the same bytes', {
        frameBytes: c.frameBytes,
        bufferBytes: c.bufferBytes,
        mrgRxbuf: c.mrgRxbuf,
        ring: c.ring ?? 'split',
        interruptsPerFrame: loop.interrupts / Math.max(1, s.rx.frames),
      }),
    );
    await loop.netdev.close();
  }
  return out;
}

export const rxMemory: Benchmark = {
  name: 'rx-memory',
  required: ['rx-memory-1500', 'rx-memory-1500-mrg'],
  cases: () => RX_CASES.length,
  run,
};

if (isMain(import.meta.url)) await runStandalone(rxMemory);
