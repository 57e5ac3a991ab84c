// Split virtqueue throughput (VIRTIO 1.2 §2.7): pop + pushUsed pairs per second with 1 and 4
// descriptors per chain (direct, and 4 through an indirect table), with and without EVENT_IDX,
// beside a baseline measured in the same run: a plain loop that reads and writes the same ring
// bytes through DataViews with no validation. Also reports heap bytes allocated per pair and GCs
// during the timed runs (steady state must allocate nothing). Each case runs ROUNDS times; the
// fastest run is kept, since the machine may be shared. Each case also runs over a packed virtqueue
// (§2.8, `…, packed` rows, `queue-*-packed` results) in the same run: the driver side re-offers the
// same lists by writing their descriptors at the next ring positions, and its baseline is the same
// ring traffic (descriptor writes, descriptor reads, used descriptor writes) with no validation.
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
import { PackedQueue } from '../virtqueue/packed-queue.js';
import { PACKED_F_AVAIL, PACKED_F_USED, PackedGuestRing } from '../lib/driver/packed-guest-ring.js';

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

/**
 * A packed ring image of `c`'s lists filling all QUEUE_SIZE positions (addChain places them once),
 * and a writer that makes the whole image available again at the current wrap counter (each list's
 * first descriptor's flags last, §2.8.21). After a full ring the positions repeat and the wrap flips.
 */
function packedImage(c: Case): { memory: GuestMemory; ring: PackedGuestRing; desc: DataView; offer: () => void; lists: number; perChain: number } {
  const memory = new GuestMemory(1 << 20);
  const ring = new PackedGuestRing(memory, { size: QUEUE_SIZE });
  const perChain = c.indirect ? 1 : c.descriptors;
  const lists = Math.floor(QUEUE_SIZE / perChain);
  for (let i = 0; i < lists; i++) {
    ring.addChain(Array.from({ length: c.descriptors }, (_, k) => ({ len: 64, write: k === c.descriptors - 1 })), { indirect: c.indirect });
  }
  const slots = lists * perChain;
  const u = memory.view(ring.descRing, 16 * QUEUE_SIZE)!;
  const desc = new DataView(u.buffer, u.byteOffset, u.byteLength);
  const lo = new Uint32Array(slots);
  const hi = new Uint32Array(slots);
  const len = new Uint32Array(slots);
  const id = new Uint16Array(slots);
  const kind = new Uint16Array(slots);
  for (let k = 0; k < slots; k++) {
    lo[k] = desc.getUint32(16 * k, true);
    hi[k] = desc.getUint32(16 * k + 4, true);
    len[k] = desc.getUint32(16 * k + 8, true);
    id[k] = desc.getUint16(16 * k + 12, true);
    kind[k] = desc.getUint16(16 * k + 14, true) & 7;
  }
  let wrap = 1;
  const offer = (): void => {
    const bits = wrap === 1 ? PACKED_F_AVAIL : PACKED_F_USED;
    for (let l = 0; l < lists; l++) {
      const k0 = l * perChain;
      for (let k = k0; k < k0 + perChain; k++) {
        const o = 16 * k;
        desc.setUint32(o, lo[k]!, true);
        desc.setUint32(o + 4, hi[k]!, true);
        desc.setUint32(o + 8, len[k]!, true);
        desc.setUint16(o + 12, id[k]!, true);
        if (k !== k0) desc.setUint16(o + 14, kind[k]! | bits, true);
      }
      desc.setUint16(16 * k0 + 14, kind[k0]! | bits, true);
    }
    if (slots === QUEUE_SIZE) wrap ^= 1;
  };
  if (slots !== QUEUE_SIZE) throw new Error(`packed bench: ${slots} descriptors do not fill the ring of ${QUEUE_SIZE}`);
  return { memory, ring, desc, offer, lists, perChain };
}

/** The packed queue: the driver re-offers the whole ring image, the device pops and pushes every list, publishes once. */
function packedQueueRig(c: Case): Rig {
  const img = packedImage(c);
  const q = PackedQueue.activate(img.memory, img.ring.queueConfig(), { indirectDesc: c.indirect, eventIdx: c.eventIdx, ringPacked: true }, 0);
  if (!(q instanceof PackedQueue)) throw new Error(`activation failed: ${JSON.stringify(q)}`);
  let interrupts = 0;
  return {
    batch: img.lists,
    run(batches: number): number {
      let pairs = 0;
      for (let b = 0; b < batches; b++) {
        img.offer();
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
      if (interrupts < 0) throw new Error('unreachable');
      return pairs;
    },
  };
}

/** The same packed ring traffic with no validation: the driver's writes, each list's descriptors (and table entries) read, a used descriptor written. */
function packedBaselineRig(c: Case): Rig {
  const img = packedImage(c);
  const desc = img.desc;
  const memView = img.memory.view(0, 1 << 20)!;
  const mem = new DataView(memView.buffer, memView.byteOffset, memView.byteLength);
  const n = c.descriptors;
  let wrap = 1;
  let sink = 0;
  return {
    batch: img.lists,
    run(batches: number): number {
      let pairs = 0;
      for (let b = 0; b < batches; b++) {
        img.offer();
        const used = wrap === 1 ? PACKED_F_AVAIL | PACKED_F_USED : 0;
        for (let l = 0; l < img.lists; l++) {
          const o0 = 16 * l * img.perChain;
          if ((desc.getUint16(o0 + 14, true) & PACKED_F_AVAIL) === 0 && wrap === 1) throw new Error('unreachable');
          for (let k = 0; k < img.perChain; k++) {
            const o = o0 + 16 * k;
            sink += desc.getUint32(o, true) + desc.getUint32(o + 4, true) + desc.getUint32(o + 8, true) + desc.getUint16(o + 12, true) + desc.getUint16(o + 14, true);
          }
          if (c.indirect) {
            const t = desc.getUint32(o0, true);
            for (let k = 0; k < n; k++) sink += mem.getUint32(t + 16 * k, true) + mem.getUint32(t + 16 * k + 8, true) + mem.getUint16(t + 16 * k + 14, true);
          }
          const id = desc.getUint16(o0 + 16 * (img.perChain - 1) + 12, true);
          desc.setUint32(o0 + 8, 0, true);
          desc.setUint16(o0 + 12, id, true);
          desc.setUint16(o0 + 14, used, true);
          pairs++;
        }
        wrap ^= 1;
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
  const row = (name: string, r: Result, base: Result): string[] => [
    name,
    fmt(r.pairsPerSec / 1e6, 2),
    fmt(r.nsPerPair, 1),
    fmt(base.pairsPerSec / 1e6, 2),
    fmt(r.nsPerPair / base.nsPerPair, 2) + 'x',
    fmt(r.bytesPerPair, 2),
    String(r.gcs),
  ];
  for (const c of cases) {
    const base = await best(baselineRig(c));
    const r = await best(queueRig(c));
    rows.push(row(c.name, r, base));
  }
  // Packed (§2.8), same cases, same run.
  for (const c of cases) {
    const base = await best(packedBaselineRig(c));
    const r = await best(packedQueueRig(c));
    rows.push(row(`${c.name}, packed`, r, base));
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
