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
  const head = s.ring.addChain([{ len: 4, data: [1, 2, 3, 4] }, { len: 4, write: true }]);
  const c = popChain(q);
  expect(c.headIndex).to.equal(head);
  const got = new Uint8Array(4);
  expect(c.reader().read(got)).to.equal(4);
  expect([...got]).to.deep.equal([1, 2, 3, 4]);
  expect(c.writer().write(Uint8Array.of(9, 8, 7))).to.equal(3);
  q.pushUsed(c, 3);
  expect(q.publishUsed()).to.equal(true);
  expect(s.ring.takeUsed()).to.deep.equal([{ id: head, len: 3 }]);
  expect([...s.ring.writtenBytes(head, 3)]).to.deep.equal([9, 8, 7]);
  expect(q.broken).to.equal(false);
}
