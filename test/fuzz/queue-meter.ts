// Counting the device's ring operations (VIRTIO 1.2 §2.7.13 popping available chains, §2.7.8
// writing used elements; §2.8 the same on packed rings): SplitQueue and PackedQueue read and write
// their rings through DataViews of guest memory,
// which GuardedMemory's metered accessors never see, so "bounded work per call" counted only in
// memory calls misses a loop over the rings. This wraps both queues' operations once (test
// process only) and reports each to the meter of the world whose device call is running.

import { SplitQueue } from '../../virtqueue/split-queue.js';
import { PackedQueue } from '../../virtqueue/packed-queue.js';

/** Who is told about each ring operation (the world running a device call), or null. */
export interface QueueMeter {
  queueOp(q: SplitQueue | PackedQueue, op: MeteredOp, advanced: boolean): void;
}

export type MeteredOp = 'pop' | 'unpop' | 'pushUsed' | 'publishUsed' | 'available' | 'enableNotification' | 'setNotifications';

let current: QueueMeter | null = null;
let installed = false;

/** Sets the meter for the running call; returns the previous one (calls nest). */
export function setQueueMeter(m: QueueMeter | null): QueueMeter | null {
  const prev = current;
  current = m;
  return prev;
}

/** Wraps SplitQueue's and PackedQueue's operations (idempotent). */
export function installQueueMeter(): void {
  if (installed) return;
  installed = true;
  wrap(SplitQueue.prototype, 'publishedUsed');
  wrap(PackedQueue.prototype, 'publishedPos');
}

/** `published`: the private field holding where the last publish left the used ring. */
function wrap(prototype: object, published: string): void {
  const proto = prototype as unknown as Record<MeteredOp, (...args: unknown[]) => unknown>;
  for (const name of ['pop', 'unpop', 'pushUsed', 'available', 'enableNotification', 'setNotifications'] as const) {
    const orig = proto[name]!;
    proto[name] = function (this: SplitQueue | PackedQueue, ...args: unknown[]): unknown {
      current?.queueOp(this, name, false);
      return orig.apply(this, args);
    };
  }
  // publishUsed: also whether it moved the used ring (the spurious-interrupt oracle needs it).
  const publish = proto.publishUsed!;
  proto.publishUsed = function (this: SplitQueue | PackedQueue): unknown {
    const before = (this as unknown as Record<string, number>)[published];
    const r = publish.apply(this, []);
    current?.queueOp(this, 'publishUsed', (this as unknown as Record<string, number>)[published] !== before);
    return r;
  };
}
