// Shared set-up for the packed virtqueue tests: a memory, a packed driver ring laid out in it, and a
// PackedQueue activated on that layout (VIRTIO 1.2 §2.8).

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { PackedQueue } from '../../virtqueue/packed-queue.js';
import type { QueueFeatures, QueueViolation } from '../../virtqueue/virtqueue.js';
import type { ChainError } from '../../virtqueue/queue-errors.js';
import { DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import { PackedDriverRing } from '../support/packed-driver-ring.js';

export const P_PLAIN: QueueFeatures = Object.freeze({ indirectDesc: false, eventIdx: false, ringPacked: true });
export const P_INDIRECT: QueueFeatures = Object.freeze({ indirectDesc: true, eventIdx: false, ringPacked: true });
export const P_EVENT_IDX: QueueFeatures = Object.freeze({ indirectDesc: false, eventIdx: true, ringPacked: true });

export interface PackedSetup {
  memory: GuestMemory;
  ring: PackedDriverRing;
  q: PackedQueue;
  features: QueueFeatures;
}

export function psetup(size = 8, features: QueueFeatures = P_INDIRECT, memory: GuestMemory = new GuestMemory(0x10000)): PackedSetup {
  const ring = new PackedDriverRing(memory, { size });
  return { memory, ring, q: pactivate(memory, ring, features), features };
}

export function pactivate(memory: GuestMemory, ring: PackedDriverRing, features: QueueFeatures, index = 0): PackedQueue {
  const q = PackedQueue.activate(memory, ring.queueConfig(), features, index);
  if (!(q instanceof PackedQueue)) throw new Error(`activation failed: ${JSON.stringify(q)}`);
  return q;
}

export function ppop(q: PackedQueue): DescriptorChain {
  const c = q.pop();
  if (!(c instanceof DescriptorChain)) throw new Error(`expected a chain, got ${JSON.stringify(c)}`);
  return c;
}

/** The ring and both event structures, to check the device wrote nothing there. */
export function ringBytes(s: PackedSetup): Uint8Array {
  return s.memory.bytes(s.ring.descRing, 16 * s.ring.size + 8).slice();
}

/**
 * The checks every malformed-list test makes: `pop()` reports exactly `error`, the device wrote
 * nothing into the ring or the event structures (no used descriptor), the queue is broken and stays
 * broken, and a queue activated afresh after the driver re-initialised the ring carries a good list.
 */
export function expectPackedViolation(s: PackedSetup, error: ChainError): void {
  const before = ringBytes(s);
  const r = s.q.pop();
  expect(r).to.deep.equal({ kind: 'violation', error } satisfies QueueViolation);
  expect(s.q.broken).to.equal(true);
  expect(s.q.error).to.deep.equal(error);
  expect(s.q.pop()).to.equal(r);
  expect(s.q.available()).to.equal(r);
  expect(s.q.publishUsed()).to.equal(false);
  s.q.setNotifications(true);
  expect(ringBytes(s)).to.deep.equal(before);
  expect(s.ring.takeUsed()).to.deep.equal([]);
  expectFreshPackedQueueWorks(s);
}

/** Re-initialises the ring, activates a new queue, runs one list through it. */
export function expectFreshPackedQueueWorks(s: PackedSetup): void {
  s.ring.reset();
  const q = pactivate(s.memory, s.ring, s.features);
  const readable = s.ring.size >= 2;
  const id = s.ring.addChain(readable ? [{ len: 4, data: [1, 2, 3, 4] }, { len: 4, write: true }] : [{ len: 4, write: true }]);
  const c = ppop(q);
  expect(c.headIndex).to.equal(id);
  const got = new Uint8Array(4);
  expect(c.reader().read(got)).to.equal(readable ? 4 : 0);
  if (readable) expect([...got]).to.deep.equal([1, 2, 3, 4]);
  expect(c.writer().write(Uint8Array.of(9, 8, 7))).to.equal(3);
  q.pushUsed(c, 3);
  expect(q.publishUsed()).to.equal(true);
  expect(s.ring.takeUsed()).to.deep.equal([{ id, len: 3 }]);
  expect([...s.ring.writtenBytes(id, 3)]).to.deep.equal([9, 8, 7]);
  expect(q.broken).to.equal(false);
}
