// Split virtqueue throughput (VIRTIO 1.2 §2.7): pop + pushUsed pairs per second with 1 and 4
// descriptors per chain (direct, and 4 through an indirect table), with and without EVENT_IDX,
// beside a baseline measured in the same run: a plain loop that reads and writes the same ring
// bytes through DataViews with no validation. Also reports heap bytes allocated per pair and GCs
// during the timed runs (steady state must allocate nothing). Each case runs ROUNDS times; the
// fastest run is kept, since the machine may be shared.
//
//   npx tsx bench/queue.bench.ts            (or: npx tsx bench/queue.bench.ts --quick)

import v8 from 'node:v8';
import vm from 'node:vm';
import os from 'node:os';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { GuestMemory } from '../virtqueue/guest-memory.js';
import { DescriptorChain } from '../virtqueue/descriptor-chain.js';
import { SplitQueue } from '../virtqueue/split-queue.js';
import { GuestRing } from '../lib/driver/guest-ring.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const QUEUE_SIZE = 256;
const QUICK = process.argv.includes('--quick');
const TARGET_MS = QUICK ? 150 : 500;
/** Runs per case; the table keeps the fastest (the machine may be shared), the most bytes and all GCs. */
const ROUNDS = QUICK ? 1 : 3;

interface Case {
  name: string;
  descriptors: number;
  indirect: boolean;
  eventIdx: boolean;
}

interface Rig {
  /** Runs `batches` batches: the driver republishes every head, the device pops and pushes them all
   *  and publishes once. Returns pairs done. */
  run(batches: number): number;
  batch: number;
}

/** A queue whose driver side keeps re-offering the same prebuilt chains (no allocation). */
function queueRig(c: Case): Rig {
  const memory = new GuestMemory(1 << 20);
  const ring = new GuestRing(memory, { size: QUEUE_SIZE });
  const perChain = c.indirect ? 1 : c.descriptors;
  const batch = Math.floor(QUEUE_SIZE / perChain);
  const heads: number[] = [];
  for (let i = 0; i < batch; i++) {
    const bufs = Array.from({ length: c.descriptors }, (_, k) => ({ len: 64, write: k === c.descriptors - 1 }));
    heads.push(ring.addChain(bufs, { indirect: c.indirect, publish: false })); // placed, never published: the loop publishes
  }
  const q = SplitQueue.activate(memory, ring.queueConfig(), { indirectDesc: c.indirect, eventIdx: c.eventIdx }, 0);
  if (!(q instanceof SplitQueue)) throw new Error(`activation failed: ${JSON.stringify(q)}`);
  const availView = memory.view(ring.availRing, 6 + 2 * QUEUE_SIZE)!;
  const avail = new DataView(availView.buffer, availView.byteOffset, availView.byteLength);
  const headList = Uint16Array.from(heads);
  const mask = QUEUE_SIZE - 1;
  let availIdx = 0;
  let interrupts = 0;
  return {
    batch,
    run(batches: number): number {
      let pairs = 0;
      for (let b = 0; b < batches; b++) {
        // Driver: offer every chain again (§2.7.13), one idx update.
        for (let i = 0; i < headList.length; i++) avail.setUint16(4 + 2 * ((availIdx + i) & mask), headList[i]!, true);
        availIdx = (availIdx + headList.length) & 0xffff;
        avail.setUint16(2, availIdx, true);
        // Device.
        for (;;) {
          const chain = q.pop();
          if (!(chain instanceof DescriptorChain)) {
            if (chain.kind === 'violation') throw new Error(`violation: ${chain.error.code}`);
            break;
          }
          q.pushUsed(chain, 0);
          pairs++;
        }
        if (q.publishUsed()) interrupts++;
      }
      if (interrupts < 0) throw new Error('unreachable'); // keeps `interrupts` observable
      return pairs;
    },
  };
}

/** The same ring traffic with none of the queue's validation or bookkeeping: raw DataView reads of
 *  the avail entry and `descriptors` descriptors, and a used element write, per pair. */
function baselineRig(c: Case): Rig {
  const memory = new GuestMemory(1 << 20);
  const ring = new GuestRing(memory, { size: QUEUE_SIZE });
  const batch = Math.floor(QUEUE_SIZE / (c.indirect ? 1 : c.descriptors));
  const v = (addr: number, len: number) => {
    const u = memory.view(addr, len)!;
    return new DataView(u.buffer, u.byteOffset, u.byteLength);
  };
  const desc = v(ring.descTable, 16 * QUEUE_SIZE);
  const avail = v(ring.availRing, 6 + 2 * QUEUE_SIZE);
  const used = v(ring.usedRing, 6 + 8 * QUEUE_SIZE);
  const mask = QUEUE_SIZE - 1;
  const n = c.descriptors;
  let availIdx = 0;
  let last = 0;
  let usedIdx = 0;
  let sink = 0;
  return {
    batch,
    run(batches: number): number {
      let pairs = 0;
      for (let b = 0; b < batches; b++) {
        for (let i = 0; i < batch; i++) avail.setUint16(4 + 2 * ((availIdx + i) & mask), i, true);
        availIdx = (availIdx + batch) & 0xffff;
        avail.setUint16(2, availIdx, true);
        const end = avail.getUint16(2, true);
        while (last !== end) {
          const head = avail.getUint16(4 + 2 * (last & mask), true);
          const idx = head * n;
          for (let k = 0; k < n; k++) {
            const o = ((idx + k) & mask) * 16;
            sink += desc.getUint32(o, true) + desc.getUint32(o + 4, true) + desc.getUint32(o + 8, true) + desc.getUint16(o + 12, true) + desc.getUint16(o + 14, true);
          }
          const uo = 4 + 8 * (usedIdx & mask);
          used.setUint32(uo, head, true);
          used.setUint32(uo + 4, 0, true);
          usedIdx = (usedIdx + 1) & 0xffff;
          last = (last + 1) & 0xffff;
          pairs++;
        }
        used.setUint16(2, usedIdx, true);
      }
      if (sink < 0) throw new Error('unreachable');
      return pairs;
    },
  };
}

interface Result {
  pairsPerSec: number;
  nsPerPair: number;
  bytesPerPair: number;
  gcs: number;
}

let gcCount = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const flags = (e as unknown as { detail?: { flags?: number } }).detail?.flags ?? 0;
    if ((flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) === 0) gcCount++; // not our own gc() calls
  }
}).observe({ entryTypes: ['gc'] });

/** Lets the GC observer deliver what happened so far. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 20));
}

async function best(rig: Rig): Promise<Result> {
  let out: Result | null = null;
  for (let i = 0; i < ROUNDS; i++) {
    const r = await measure(rig);
    if (out === null) out = r;
    else {
      out = {
        pairsPerSec: Math.max(out.pairsPerSec, r.pairsPerSec),
        nsPerPair: Math.min(out.nsPerPair, r.nsPerPair),
        bytesPerPair: Math.max(out.bytesPerPair, r.bytesPerPair),
        gcs: out.gcs + r.gcs,
      };
    }
  }
  return out!;
}

async function measure(rig: Rig): Promise<Result> {
  // Warm up (JIT, pool growth), then size the run to about TARGET_MS.
  let batches = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    rig.run(batches);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > TARGET_MS / 10) {
      batches = Math.max(1, Math.round((batches * TARGET_MS) / ms));
      break;
    }
    batches *= 2;
  }
  gc();
  await settle();
  const gcBefore = gcCount;
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  const pairs = rig.run(batches);
  const ns = Number(process.hrtime.bigint() - t0);
  const heapAfter = process.memoryUsage().heapUsed;
  await settle();
  const gcs = gcCount - gcBefore;
  return { pairsPerSec: (pairs * 1e9) / ns, nsPerPair: ns / pairs, bytesPerPair: Math.max(0, heapAfter - heapBefore) / pairs, gcs };
}

const cases: Case[] = [
  { name: '1 desc', descriptors: 1, indirect: false, eventIdx: false },
  { name: '1 desc, EVENT_IDX', descriptors: 1, indirect: false, eventIdx: true },
  { name: '4 desc', descriptors: 4, indirect: false, eventIdx: false },
  { name: '4 desc, EVENT_IDX', descriptors: 4, indirect: false, eventIdx: true },
  { name: '4 desc indirect', descriptors: 4, indirect: true, eventIdx: false },
  { name: '4 desc indirect, EVENT_IDX', descriptors: 4, indirect: true, eventIdx: true },
];

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const c of cases) {
    const base = await best(baselineRig(c));
    const r = await best(queueRig(c));
    rows.push([
      c.name,
      fmt(r.pairsPerSec / 1e6, 2),
      fmt(r.nsPerPair, 1),
      fmt(base.pairsPerSec / 1e6, 2),
      fmt(r.nsPerPair / base.nsPerPair, 2) + 'x',
      fmt(r.bytesPerPair, 2),
      String(r.gcs),
    ]);
  }
  const head = ['case (queue size 256)', 'M pairs/s', 'ns/pair', 'baseline M/s', 'vs baseline', 'heap B/pair', 'GCs'];
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${new Date().toISOString().slice(0, 10)}`);
  console.log(table([head, ...rows]));
}

function fmt(n: number, digits: number): string {
  return n.toFixed(digits);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  return [line(rows[0]!), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}

await main();
