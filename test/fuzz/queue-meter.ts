// Counting the device's ring operations (VIRTIO 1.2 §2.7.13 popping available chains, §2.7.8
// writing used elements): SplitQueue reads and writes its rings through DataViews of guest memory,
// which GuardedMemory's metered accessors never see, so "bounded work per call" counted only in
// memory calls misses a loop over the rings. This wraps SplitQueue's operations once (test
// process only) and reports each to the meter of the world whose device call is running.

import { SplitQueue } from '../../virtqueue/split-queue.js';

/** Who is told about each ring operation (the world running a device call), or null. */
export interface QueueMeter {
  queueOp(q: SplitQueue, op: MeteredOp, advanced: boolean): void;
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

/** Wraps SplitQueue's operations (idempotent). */
export function installQueueMeter(): void {
  if (installed) return;
  installed = true;
  const proto = SplitQueue.prototype as unknown as Record<MeteredOp, (...args: unknown[]) => unknown>;
  for (const name of ['pop', 'unpop', 'pushUsed', 'available', 'enableNotification', 'setNotifications'] as const) {
    const orig = proto[name]!;
    proto[name] = function (this: SplitQueue, ...args: unknown[]): unknown {
      current?.queueOp(this, name, false);
      return orig.apply(this, args);
    };
  }
  // publishUsed: also whether it moved used.idx (the spurious-interrupt oracle needs it).
  const publish = proto.publishUsed!;
  proto.publishUsed = function (this: SplitQueue): unknown {
    const before = (this as unknown as { publishedUsed: number }).publishedUsed;
    const r = publish.apply(this, []);
    current?.queueOp(this, 'publishUsed', (this as unknown as { publishedUsed: number }).publishedUsed !== before);
    return r;
  };
}
