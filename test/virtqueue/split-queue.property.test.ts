// Property tests of the split virtqueue (VIRTIO 1.2 §2.7) against random rings: random sequences of
// driver operations (well-formed chains, arbitrary raw descriptors and indirect tables, avail index
// jumps) interleaved with device operations (pop, push with random writes, unpop, publish,
// notification changes). The oracle:
// - every queue call returns a typed result and never throws;
// - work is bounded: each pop asks guest memory a bounded number of questions and returns;
// - pop, available and unpop write nothing; push, publish and setNotifications write only inside
//   the used ring and the writable regions of the chain being pushed;
// - while the queue is not broken, the used ring holds exactly the pushed (head, len) pairs in push
//   order, and at the end every popped head (not unpopped) reached the used ring exactly once.

import { expect } from 'chai';
import fc from 'fast-check';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import { QUEUE_EMPTY, SplitQueue } from '../../virtqueue/split-queue.js';
import type { QueueFeatures } from '../../virtqueue/split-queue.js';
import { QUEUE_ERROR_SECTIONS } from '../../virtqueue/queue-errors.js';
import { DriverRing } from '../support/driver-ring.js';
import type { RawDescriptor } from '../support/driver-ring.js';

const MEMORY_SIZE = 0x8000;
/** Bytes the device writes into pushed chains. */
const PATTERN = Uint8Array.from({ length: 512 }, (_, i) => (i * 37 + 11) & 0xff);

/** Counts the questions the queue asks guest memory (the descriptor table itself is a cached view). */
class CountingMemory extends GuestMemory {
  calls = 0;
  override contains(address: number, length: number): boolean {
    this.calls++;
    return super.contains(address, length);
  }
  override view(address: number, length: number): Uint8Array | undefined {
    this.calls++;
    return super.view(address, length);
  }
  override read(address: number, dest: Uint8Array): void {
    this.calls++;
    super.read(address, dest);
  }
  override readU32(address: number): number {
    this.calls++;
    return super.readU32(address);
  }
  override readU16(address: number): number {
    this.calls++;
    return super.readU16(address);
  }
}

/** Memory questions one pop may ask: per descriptor a memory check, per indirect entry also its
 *  four field reads (or one copy), plus one for the table, plus the report of the used.idx write
 *  a pop that finds a violation makes (it publishes what was pushed before). Linear in the queue
 *  size. */
const popCallBound = (size: number): number => 6 * size + 9;

type DriverOp =
  | { t: 'chain'; bufs: { len: number; write: boolean }[]; indirect: boolean }
  | { t: 'raw'; descs: RawSpec[]; table: RawSpec[] | null; head: number | null }
  | { t: 'bump'; n: number };
type DeviceOp =
  | { t: 'pop' }
  | { t: 'available' }
  | { t: 'push'; pick: number; /** percent of the writable length to write */ fill: number }
  | { t: 'unpop'; n: number }
  | { t: 'publish' }
  | { t: 'notify'; on: boolean };
type Op = DriverOp | DeviceOp;

interface RawSpec {
  addr: 'fresh' | 'end' | 'huge' | 'ring' | 'zero';
  len: number;
  flags: number;
  next: number | null;
  index: number | null;
}

const rawSpec = fc.record({
  addr: fc.constantFrom('fresh', 'fresh', 'fresh', 'end', 'huge', 'ring', 'zero'),
  len: fc.oneof(fc.constantFrom(0, 1, 7, 16, 32, 48, 0xffff_ffff), fc.integer({ min: 1, max: 300 })),
  flags: fc.integer({ min: 0, max: 7 }),
  next: fc.option(fc.integer({ min: 0, max: 20 }), { nil: null }),
  index: fc.option(fc.integer({ min: 0, max: 16 }), { nil: null }),
}) as fc.Arbitrary<RawSpec>;

/**
 * Chains from `addChain`: with a well-behaved driver (`hostile` false) readable buffers come first,
 * there are at most `size` of them (§2.7.5.3.1) and indirect tables only when negotiated; a hostile
 * driver breaks each of those now and then.
 */
function chainArb(size: number, indirectDesc: boolean, hostile: boolean): fc.Arbitrary<Op> {
  const slip = (p: number) => (hostile ? fc.oneof({ weight: 10 - p, arbitrary: fc.constant(false) }, { weight: p, arbitrary: fc.constant(true) }) : fc.constant(false));
  return fc
    .record({
      bufs: fc.array(fc.record({ len: fc.integer({ min: 0, max: 200 }), write: fc.boolean() }), { minLength: 1, maxLength: 5 }),
      indirect: fc.boolean(),
      unordered: slip(1),
      tooLong: slip(1),
    })
    .map(({ bufs, indirect, unordered, tooLong }) => ({
      t: 'chain' as const,
      bufs: (unordered ? bufs : [...bufs].sort((a, b) => Number(a.write) - Number(b.write))).slice(0, tooLong ? 5 : size),
      indirect: indirect && (indirectDesc || hostile),
    }));
}

const rawOp = fc.record({
  t: fc.constant('raw' as const),
  descs: fc.array(rawSpec, { minLength: 0, maxLength: 4 }),
  table: fc.option(fc.array(rawSpec, { minLength: 0, maxLength: 5 }), { nil: null }),
  head: fc.option(fc.integer({ min: 0, max: 17 }), { nil: null }),
});
const bumpOp = fc.record({ t: fc.constant('bump' as const), n: fc.oneof(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 3, max: 40 })) });

/** Operations; a hostile driver also writes raw descriptors and moves avail.idx by hand. */
function opArb(size: number, indirectDesc: boolean, hostile: boolean): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 8, arbitrary: chainArb(size, indirectDesc, hostile) },
    { weight: hostile ? 2 : 0, arbitrary: rawOp },
    { weight: hostile ? 1 : 0, arbitrary: bumpOp },
    { weight: 8, arbitrary: fc.constant({ t: 'pop' as const }) },
    { weight: 1, arbitrary: fc.constant({ t: 'available' as const }) },
    { weight: 7, arbitrary: fc.record({ t: fc.constant('push' as const), pick: fc.nat(), fill: fc.integer({ min: 0, max: 100 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('unpop' as const), n: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 4, arbitrary: fc.constant({ t: 'publish' as const }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('notify' as const), on: fc.boolean() }) },
  );
}

/** A queue size, its features and a list of operations, from a hostile driver or a well-behaved one. */
function scenarioArb(hostile: boolean) {
  return fc
    .record({
      size: fc.constantFrom(1, 2, 4, 8, 16),
      features: fc.record({ indirectDesc: fc.boolean(), eventIdx: fc.boolean() }) as fc.Arbitrary<QueueFeatures>,
    })
    .chain(({ size, features }) =>
      fc.record({
        size: fc.constant(size),
        features: fc.constant(features),
        ops: fc.array(opArb(size, features.indirectDesc, hostile), { maxLength: 100, size: 'max' }),
      }),
    );
}

interface Popped {
  chain: DescriptorChain;
  head: number;
  writable: { addr: number; len: number }[];
  inFlight: boolean;
}

/** Runs one scenario under the oracle; returns the queue for further checks. */
function run({ size, features, ops }: { size: number; features: QueueFeatures; ops: Op[] }): SplitQueue {
  const memory = new CountingMemory(MEMORY_SIZE);
  const ring = new DriverRing(memory, { size });
  const activated = SplitQueue.activate(memory, ring.queueConfig(), features, 0);
  if (!(activated instanceof SplitQueue)) throw new Error('activation failed');
  const q = activated;
  const popLog: Popped[] = []; // every pop not unpopped, in pop order
  let pendingUsed: { id: number; len: number }[] = []; // pushed, not yet seen by the driver
  /** Heads the driver took from the used ring (what the ring said, not what the test pushed). */
  const seenHeads: number[] = [];

  /** Runs a device call; checks it threw nothing and wrote only inside `allowed`. */
  const device = <T>(allowed: { addr: number; len: number }[], call: () => T): T => {
    const before = memory.bytes(0, MEMORY_SIZE).slice();
    const result = call();
    const after = memory.bytes(0, MEMORY_SIZE);
    for (let a = 0; a < MEMORY_SIZE; a++) {
      if (before[a] !== after[a] && !allowed.some((r) => a >= r.addr && a < r.addr + r.len)) {
        throw new Error(`device wrote 0x${a.toString(16)} outside the used ring and the chain's writable buffers`);
      }
    }
    return result;
  };
  const usedRange = { addr: ring.usedRing, len: 6 + 8 * size };
  /** The queue just broke: chains completed before the violation are published, nothing after. */
  /**
   * The guest may hand its own used ring out as a writable buffer (addr 'ring'): what the device
   * then writes there is the guest's doing, and the used ring no longer says what was pushed.
   */
  let usedAliased = false;
  const expectUsed = (): void => {
    const got = ring.takeUsed();
    if (usedAliased) return;
    expect(got).to.deep.equal(pendingUsed);
    for (const e of got) seenHeads.push(e.id);
  };
  const flushOnViolation = (): void => {
    expectUsed();
    pendingUsed = [];
  };
  const rawAddr = (r: RawSpec): number | bigint | undefined =>
    ({ fresh: undefined, end: MEMORY_SIZE - 8, huge: 0xffff_ffff_ffff_0000n, ring: ring.descTable, zero: 0 })[r.addr];
  const toRaw = (r: RawSpec): RawDescriptor => {
    const addr = rawAddr(r);
    const len = r.addr === 'fresh' ? Math.min(r.len, 256) : r.len;
    const d: RawDescriptor = { len, flags: r.flags };
    if (addr !== undefined) d.addr = addr;
    if (r.next !== null) d.next = r.next;
    if (r.index !== null) d.index = r.index % size;
    return d;
  };

  for (const o of ops) {
    switch (o.t) {
      case 'chain':
      case 'raw':
      case 'bump':
        try {
          if (o.t === 'chain') ring.addChain(o.bufs, { indirect: o.indirect });
          else if (o.t === 'raw') {
            const options: { indirectTable?: RawDescriptor[]; head?: number } = {};
            if (o.table !== null) options.indirectTable = o.table.map(toRaw);
            if (o.head !== null) options.head = o.head;
            ring.addRaw(o.descs.map(toRaw), options);
          } else ring.bumpAvailIdx(o.n);
        } catch (e) {
          // The driver helper ran out of descriptors or heap: the driver simply does not add it.
          if (!(e instanceof Error) || !/full|exhausted|at least one buffer/.test(e.message)) throw e;
        }
        break;
      case 'pop': {
        const callsBefore = memory.calls;
        const wasBroken = q.broken;
        // A pop that finds a violation publishes what was pushed before it (used.idx only).
        const r = device([usedRange], () => q.pop());
        if (!wasBroken && q.broken) flushOnViolation();
        expect(memory.calls - callsBefore).to.be.at.most(popCallBound(size));
        if (r instanceof DescriptorChain) {
          const writable = Array.from({ length: r.writableCount }, (_, i) => ({ addr: r.writableAddr(i), len: r.writableLen(i) }));
          popLog.push({ chain: r, head: r.headIndex, writable, inFlight: true });
        } else if (r.kind === 'violation') {
          expect(QUEUE_ERROR_SECTIONS).to.have.property(r.error.code);
          expect(q.broken).to.equal(true);
        } else {
          expect(r).to.equal(QUEUE_EMPTY);
        }
        break;
      }
      case 'available': {
        const wasBroken = q.broken;
        const r = device([usedRange], () => q.available());
        if (!wasBroken && q.broken) flushOnViolation();
        if (typeof r === 'number') expect(r).to.be.within(0, size);
        else expect(r.kind).to.equal('violation');
        break;
      }
      case 'push': {
        const live = popLog.filter((p) => p.inFlight);
        if (live.length === 0) break;
        const p = live[o.pick % live.length]!;
        const w = p.chain.writer();
        const n = Math.floor((o.fill * p.chain.writableLength) / 100);
        const src = PATTERN.subarray(0, Math.min(n, PATTERN.length));
        const wasBroken = q.broken;
        device([usedRange, ...p.writable], () => {
          expect(w.write(src)).to.equal(src.length);
          q.pushUsed(p.chain, w.written);
        });
        // What was written is in the writable buffers, in order.
        const got = new Uint8Array(src.length);
        let at = 0;
        for (const b of p.writable) {
          const k = Math.min(b.len, src.length - at);
          if (k <= 0) break;
          memory.read(b.addr, got.subarray(at, at + k));
          at += k;
        }
        // (unless the guest made buffers overlap each other or the used ring, which push then writes)
        if (!overlaps([...p.writable, usedRange])) expect(got).to.deep.equal(src);
        if (p.writable.some((b) => b.addr < usedRange.addr + usedRange.len && usedRange.addr < b.addr + b.len)) usedAliased = true;
        p.inFlight = false;
        if (!wasBroken) pendingUsed.push({ id: p.head, len: src.length });
        break;
      }
      case 'unpop': {
        // The most recent pops that are all still in flight can be given back.
        let k = 0;
        while (k < o.n && k < popLog.length && popLog[popLog.length - 1 - k]!.inFlight) k++;
        device([], () => q.unpop(k));
        popLog.length -= k;
        break;
      }
      case 'publish': {
        const wasBroken = q.broken;
        const interrupt = device([usedRange], () => q.publishUsed());
        expect(interrupt).to.be.a('boolean');
        if (!wasBroken) {
          expectUsed();
          pendingUsed = [];
        }
        break;
      }
      case 'notify':
        device([usedRange], () => q.setNotifications(o.on));
        break;
    }
  }

  // Finish: give every chain in flight back and publish.
  const wasBroken = q.broken;
  for (const p of popLog) {
    if (!p.inFlight) continue;
    device([usedRange, ...p.writable], () => q.pushUsed(p.chain, 0));
    p.inFlight = false;
    if (!wasBroken) pendingUsed.push({ id: p.head, len: 0 });
  }
  expect(q.inFlight).to.equal(0);
  device([usedRange], () => q.publishUsed());
  if (!q.broken) {
    expectUsed();
    // Every popped (and not unpopped) head reached the used ring exactly once: the heads the
    // driver read from the ring are the popped ones, as a multiset. (Not judged once the guest
    // handed out its own used ring as a buffer: the ring then says what the device wrote there.)
    const sorted = (a: number[]): number[] => [...a].sort((x, y) => x - y);
    if (!usedAliased) expect(sorted(seenHeads)).to.deep.equal(sorted(popLog.map((p) => p.head)));
  }
  return q;
}

/** True when two of the ranges overlap (a guest may do that; contents then mix). */
function overlaps(rs: { addr: number; len: number }[]): boolean {
  for (let i = 0; i < rs.length; i++) {
    for (let j = i + 1; j < rs.length; j++) {
      const a = rs[i]!;
      const b = rs[j]!;
      if (a.addr < b.addr + b.len && b.addr < a.addr + a.len) return true;
    }
  }
  return false;
}

describe('virtqueue/split-queue properties', () => {
  it('random_rings_from_a_hostile_driver_give_typed_results_bounded_work_and_writes_only_where_allowed', () => {
    fc.assert(
      fc.property(scenarioArb(true), (s) => {
        run(s);
      }),
      { numRuns: 200 },
    );
  });

  it('well_behaved_driver_traffic_keeps_the_oracle_and_never_breaks_the_queue', () => {
    fc.assert(
      fc.property(scenarioArb(false), (s) => {
        const q = run(s);
        expect(q.error).to.equal(null);
      }),
      { numRuns: 200 },
    );
  });
});
