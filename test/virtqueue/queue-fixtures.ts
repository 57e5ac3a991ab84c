// Shared set-up for the virtqueue tests: a memory, a driver ring laid out in it, and a queue
// activated on that layout (VIRTIO 1.2 §2.7).

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { SplitQueue } from '../../virtqueue/split-queue.js';
import type { QueueFeatures, QueueViolation } from '../../virtqueue/split-queue.js';
import type { ChainError } from '../../virtqueue/queue-errors.js';
import { DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import { DriverRing } from '../support/driver-ring.js';
import type { DriverRingOptions } from '../support/driver-ring.js';

export const PLAIN: QueueFeatures = Object.freeze({ indirectDesc: false, eventIdx: false });
export const INDIRECT: QueueFeatures = Object.freeze({ indirectDesc: true, eventIdx: false });
export const EVENT_IDX: QueueFeatures = Object.freeze({ indirectDesc: false, eventIdx: true });
export const ALL: QueueFeatures = Object.freeze({ indirectDesc: true, eventIdx: true });

export interface Setup {
  memory: GuestMemory;
  ring: DriverRing;
  q: SplitQueue;
  features: QueueFeatures;
}

/** A 64 KiB memory, a driver ring of `size` and a queue activated on it. */
export function setup(
  size = 8,
  features: QueueFeatures = INDIRECT,
  ringOptions: Partial<DriverRingOptions> = {},
  memory: GuestMemory = new GuestMemory(0x10000),
): Setup {
  const ring = new DriverRing(memory, { size, ...ringOptions });
  const q = activate(memory, ring, features);
  return { memory, ring, q, features };
}

/** Activates a queue on `ring`'s layout, failing the test on an activation error. */
export function activate(memory: GuestMemoryAccess, ring: DriverRing, features: QueueFeatures, index = 0): SplitQueue {
  const q = SplitQueue.activate(memory, ring.queueConfig(), features, index);
  if (!(q instanceof SplitQueue)) throw new Error(`activation failed: ${JSON.stringify(q)}`);
  return q;
}

/** Pops, expecting a chain. */
export function popChain(q: SplitQueue): DescriptorChain {
  const c = q.pop();
  if (!(c instanceof DescriptorChain)) throw new Error(`expected a chain, got ${JSON.stringify(c)}`);
  return c;
}

/** Copies of the used ring bytes, to check nothing reached it. */
export function usedRingBytes(s: Setup): Uint8Array {
  return s.memory.bytes(s.ring.usedRing, 6 + 8 * s.ring.size).slice();
}

/**
 * The checks every malformed-chain test makes: `pop()` reports exactly `error`, nothing reached the
 * used ring, the queue is broken and stays broken, and a queue activated afresh on the same memory
 * (after the driver re-initialised the ring) carries a good chain.
 */
export function expectViolation(s: Setup, error: ChainError, op: 'pop' | 'available' = 'pop'): void {
  const usedBefore = usedRingBytes(s);
  const nextUsed = s.q.nextUsed;
  const r = op === 'pop' ? s.q.pop() : s.q.available();
  expect(r).to.deep.equal({ kind: 'violation', error } satisfies QueueViolation);
  expect(s.q.broken).to.equal(true);
  expect(s.q.error).to.deep.equal(error);
  // Stays broken and refuses work.
  expect(s.q.pop()).to.equal(r);
  expect(s.q.available()).to.equal(r);
  expect(s.q.publishUsed()).to.equal(false);
  s.q.setNotifications(false);
  expect(usedRingBytes(s)).to.deep.equal(usedBefore);
  expect(s.q.nextUsed).to.equal(nextUsed);
  expectFreshQueueWorks(s);
}

/** Re-initialises the ring (as a driver does after reset), activates a new queue, runs one chain. */
export function expectFreshQueueWorks(s: Setup): void {
  s.ring.reset();
  const q = activate(s.memory, s.ring, s.features);
  // A readable and a writable buffer (a size-1 queue holds only one descriptor: writable only).
  const readable = s.ring.size >= 2;
  const head = s.ring.addChain(readable ? [{ len: 4, data: [1, 2, 3, 4] }, { len: 4, write: true }] : [{ len: 4, write: true }]);
  const c = popChain(q);
  expect(c.headIndex).to.equal(head);
  const got = new Uint8Array(4);
  expect(c.reader().read(got)).to.equal(readable ? 4 : 0);
  if (readable) expect([...got]).to.deep.equal([1, 2, 3, 4]);
  expect(c.writer().write(Uint8Array.of(9, 8, 7))).to.equal(3);
  q.pushUsed(c, 3);
  expect(q.publishUsed()).to.equal(true);
  expect(s.ring.takeUsed()).to.deep.equal([{ id: head, len: 3 }]);
  expect([...s.ring.writtenBytes(head, 3)]).to.deep.equal([9, 8, 7]);
  expect(q.broken).to.equal(false);
}

/** A GuestMemoryAccess whose backing buffer the embedder can replace (bumping `generation`). */
export class SwappableMemory implements GuestMemoryAccess {
  private inner: GuestMemory;
  generation = 0;
  constructor(size: number) {
    this.inner = new GuestMemory(size);
  }
  /** New backing memory of `size` bytes with the old contents copied over. */
  swap(size = this.inner.size): void {
    const next = new GuestMemory(size);
    const n = Math.min(size, this.inner.size);
    next.write(0, this.inner.bytes(0, n));
    this.inner = next;
    this.generation++;
  }
  layout(): { guestAddress: number; length: number }[] {
    return this.inner.layout();
  }
  readU8(a: number): number {
    return this.inner.readU8(a);
  }
  readU16(a: number): number {
    return this.inner.readU16(a);
  }
  readU32(a: number): number {
    return this.inner.readU32(a);
  }
  readU64(a: number): bigint {
    return this.inner.readU64(a);
  }
  writeU8(a: number, v: number): void {
    this.inner.writeU8(a, v);
  }
  writeU16(a: number, v: number): void {
    this.inner.writeU16(a, v);
  }
  writeU32(a: number, v: number): void {
    this.inner.writeU32(a, v);
  }
  writeU64(a: number, v: bigint): void {
    this.inner.writeU64(a, v);
  }
  read(a: number, d: Uint8Array): void {
    this.inner.read(a, d);
  }
  write(a: number, s: Uint8Array): void {
    this.inner.write(a, s);
  }
  view(a: number, l: number): Uint8Array | undefined {
    return this.inner.view(a, l);
  }
  contains(a: number, l: number): boolean {
    return this.inner.contains(a, l);
  }
  wrote(a: number, l: number): void {
    this.inner.wrote(a, l);
  }
}
