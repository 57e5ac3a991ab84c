// The core's running state as values (VIRTIO 1.2 §2.6 virtqueues, §3.1.1 step 8: DRIVER_OK makes
// the device live): the queue configurations the driver programmed become running queues only
// through `activateQueueUnder`, and each change of the running set is a new frozen `RunState`
// (core-types.ts) — stopped, running with these queues, one queue started or stopped. All of it
// runs at DRIVER_OK, on a queue enabled or disabled afterwards, or on a restored state: none of it
// per notification.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { activateQueue, isVirtqueue } from '../../virtqueue/activate-queue.js';
import type { QueueConfig, Virtqueue } from '../../virtqueue/virtqueue.js';
import type { CoreError, QueueFault } from './core-errors.js';
import type { RunState } from './core-types.js';
import { DIAGNOSTIC_SECTIONS } from './diagnostics.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, featureBit } from './features.js';
import type { QueueRegisters } from './queue-registers.js';

/** A running state: the queues the device processes, index-aligned (null: not enabled). */
export type Running = Extract<RunState, { kind: 'running' }>;

export const STOPPED: RunState = Object.freeze({ kind: 'stopped' });

/** A running state with `queues` (frozen, as is the list). */
export function runningWith(queues: (Virtqueue | null)[]): Running {
  return Object.freeze({ kind: 'running', queues: Object.freeze(queues) });
}

/** `run` with queue `index` replaced by `queue` (null: stopped). */
export function withQueueAt(run: Running, index: number, queue: Virtqueue | null): Running {
  const queues = run.queues.slice();
  queues[index] = queue;
  return runningWith(queues);
}

/** Whether `run` has a running queue at all. */
export function hasRunningQueue(run: RunState): boolean {
  return run.kind === 'running' && run.queues.some((q) => q !== null);
}

/**
 * Configuration → running queue under `features` (the driver's path at DRIVER_OK and a restored
 * state's alike), or why it cannot run: a size above the queue's maximum `max` (recorded under
 * `sizeSection`, the transport's own when it has one) or the ring's activation error, with the
 * queue's index. Changes nothing.
 */
export function activateQueueUnder(
  memory: GuestMemoryAccess,
  index: number,
  config: Readonly<QueueConfig>,
  features: bigint,
  max: number,
  sizeSection: string | undefined,
): Virtqueue | QueueFault | CoreError {
  if (config.size > max) {
    const section = sizeSection ?? DIAGNOSTIC_SECTIONS['queue.size-above-max'];
    return { code: 'queue.size-above-max', section, queue: index, size: config.size, max };
  }
  const ring = {
    indirectDesc: (features & featureBit(VIRTIO_F_INDIRECT_DESC)) !== 0n,
    eventIdx: (features & featureBit(VIRTIO_F_EVENT_IDX)) !== 0n,
    ringPacked: (features & featureBit(VIRTIO_F_RING_PACKED)) !== 0n,
  };
  const result = activateQueue(memory, config, ring, index);
  return isVirtqueue(result) ? result : { ...result, queue: index };
}

/**
 * At DRIVER_OK: every queue the driver enabled, activated through `activate`, in a copy of
 * `none` (the all-null list: null where not enabled), or null as soon as one cannot run
 * (`activate` has stopped the device).
 */
export function activateEnabled(
  regs: QueueRegisters,
  none: readonly (Virtqueue | null)[],
  activate: (index: number, config: QueueConfig) => Virtqueue | null,
): (Virtqueue | null)[] | null {
  const queues = none.slice();
  for (let i = 0; i < regs.count; i++) {
    const config = regs.config(i)!;
    if (!config.ready) continue;
    const q = activate(i, config);
    if (q === null) return null;
    queues[i] = q;
  }
  return queues;
}
