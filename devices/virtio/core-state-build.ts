// The virtio core's device state taken from and put back into its parts (API.md "Device state";
// VIRTIO 1.2 §2.1 status, §2.2 features, §2.6/§2.7 virtqueues): what `VirtioCore.exportState`,
// `prepareState` and `commitState` do, on the parts the core hands over (its queue registers,
// negotiation, pending notifications and running state). core-state.ts defines the value, checks it
// and encodes it; the core keeps only the fields it owns.

import { SplitQueue } from '../../virtqueue/split-queue.js';
import { PackedQueue } from '../../virtqueue/packed-queue.js';
import type { QueueConfig, Virtqueue } from '../../virtqueue/virtqueue.js';
import { DeviceStateError } from '../../lib/base/state-codec.js';
import type { CoreError, QueueFault } from './core-errors.js';
import type { RunState } from './core-types.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK } from './device-status.js';
import type { DriverInterface } from './device-status.js';
import type { FeatureNegotiation } from './features.js';
import { RING_AREAS } from './queue-registers.js';
import type { QueueRegisters } from './queue-registers.js';
import { activationProblem, checkCoreState, queueConfigOf } from './core-state.js';
import type { CoreQueueState, CoreState, PackedRunRecord, PreparedCoreState } from './core-state.js';

/** The parts of a core its state is made of. */
export interface CoreStateParts {
  readonly deviceType: number;
  readonly features: FeatureNegotiation;
  readonly regs: QueueRegisters;
  /** 1 per queue notified before DRIVER_OK, delivered then. */
  readonly pendingNotify: Uint8Array;
  readonly run: RunState;
  readonly status: number;
  readonly isr: number;
  readonly generation: number;
  readonly driverInterface: DriverInterface;
}

/** Everything the core holds that the driver depends on, as a value. */
export function exportCoreState(p: CoreStateParts): CoreState {
  const { regs, run } = p;
  const queues: CoreQueueState[] = [];
  for (let i = 0; i < regs.count; i++) {
    const c = regs.config(i)!;
    const words: number[] = [];
    for (const area of RING_AREAS) words.push(regs.addressWord(i, area, 0), regs.addressWord(i, area, 1));
    const q = run.kind === 'running' ? (run.queues[i] ?? null) : null;
    queues.push({ size: c.size, ready: c.ready, words, pendingNotify: p.pendingNotify[i] === 1, running: q === null ? null : q instanceof SplitQueue ? q.runState() : packedRunState(q) });
  }
  return {
    identity: { deviceType: p.deviceType, offered: p.features.offered, queueMaxSizes: regs.maxSizes.slice() },
    status: p.status,
    isr: p.isr,
    generation: p.generation,
    driverInterface: p.driverInterface,
    negotiation: p.features.exportState(),
    queues,
  };
}

/**
 * Checks `state` against the core — identity ('state.mismatch'), values ('state.corrupt'), and each
 * running queue through `activate`, the same activation as the driver's (rings inside this memory,
 * else 'state.mismatch') — and builds its running queues. Throws `DeviceStateError`; changes nothing.
 */
export function prepareCoreState(
  state: CoreState,
  p: Pick<CoreStateParts, 'deviceType' | 'features' | 'regs'>,
  noQueues: readonly (Virtqueue | null)[],
  stopped: RunState,
  activate: (index: number, config: Readonly<QueueConfig>, features: bigint) => Virtqueue | QueueFault | CoreError,
): PreparedCoreState {
  checkCoreState(state, { deviceType: p.deviceType, offered: p.features.offered, offeredLegacy: p.features.offeredLegacy, queueMaxSizes: p.regs.maxSizes });
  const running = (state.status & (STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET)) === STATUS_DRIVER_OK;
  const queues: (Virtqueue | null)[] = noQueues.slice();
  if (running) {
    state.queues.forEach((qs, i) => {
      if (qs.running === null) return;
      const q = activate(i, queueConfigOf(qs), state.negotiation.driver);
      if ('code' in q) throw activationProblem(i, q);
      const rs = qs.running;
      let why: string | null;
      if (q instanceof PackedQueue && 'ring' in rs) why = q.restoreRunState(rs);
      else if (q instanceof SplitQueue && !('ring' in rs)) why = q.restoreRunState(rs);
      else why = `the state has a ${'ring' in rs ? 'packed' : 'split'} ring where the negotiated features make a ${q.ring} one`;
      if (why !== null) throw new DeviceStateError('state.corrupt', `queue ${i}: ${why}`);
      queues[i] = q;
    });
  }
  const run: RunState = running ? Object.freeze({ kind: 'running', queues: Object.freeze(queues) }) : stopped;
  return { state, run };
}

/** Puts a prepared state's queue registers, pending notifications and negotiation back (the core sets its own fields). */
export function commitCoreParts(s: CoreState, regs: QueueRegisters, pendingNotify: Uint8Array, features: FeatureNegotiation): void {
  regs.reset();
  s.queues.forEach((q, i) => {
    regs.setSize(i, q.size);
    RING_AREAS.forEach((area, k) => {
      regs.setAddressWord(i, area, 0, q.words[2 * k]!);
      regs.setAddressWord(i, area, 1, q.words[2 * k + 1]!);
    });
    regs.setReady(i, q.ready);
    pendingNotify[i] = q.pendingNotify ? 1 : 0;
  });
  features.importState(s.negotiation);
}

/** A running packed queue's positions for the device state. */
function packedRunState(q: Virtqueue): PackedRunRecord {
  if (!(q instanceof PackedQueue)) throw new Error(`queue ${q.index}: unknown ring format`);
  return { ring: 'packed', ...q.runState() };
}
