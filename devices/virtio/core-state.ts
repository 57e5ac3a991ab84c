// The virtio core's part of a device state (API.md "Device state"; VIRTIO 1.2 §2.1 status, §2.2
// features, §2.5 config generation, §2.6/§2.7 virtqueues, §4.1.4.5/§4.2.2 the ISR): the value
// `VirtioCore.exportState()` returns, its checks, and its two sections of the image
// (lib/base/state-codec.ts):
//
//   CORE v2 (required)  identity: device type u32, offered features u64, queue count u32, each
//                       queue's maximum size u16 — then status u8, ISR u8, config generation u32,
//                       driver interface u8 (0 modern, 1 legacy), driver features u64, negotiation
//                       frozen u8, stray select bits u8 — then per queue: size u32, ready u8, the six
//                       32-bit address halves (desc lo/hi, driver lo/hi, device lo/hi), pending
//                       notification u8, kind u8 (0 not running, 1 running split ring, 2 running
//                       packed ring) and, for a split ring, nextAvail, shadowAvail, nextUsed,
//                       publishedUsed (u16 each); for a packed ring nextAvail, nextUsed,
//                       publishedUsed (u16 positions carrying the wrap counter, §2.8.1).
//                       nextAvail is the next entry to pop: the `nextAvail - nextUsed` chains popped
//                       and not yet used are held by the device, which lists them in its own section
//                       and gives them back to the restored queue (Virtqueue.restoreHeld; virtio-net:
//                       NETR in devices/virtio-net/net-state.ts). A restore checks that every one was.
//   TRNS v1 (required)  transport kind (string: 'none', 'mmio', 'pci', 'pci-legacy',
//                       'pci-legacy-only'), then the
//                       transport's own registers as its `TransportStateHooks` write them.
//
// Event-index state: the device's `avail_event` and the driver's `used_event` live in guest memory
// (the rings) and travel with it; the device side keeps only `publishedUsed`, the old index of the
// next used-buffer notification test (§2.7.7.2), saved here.
//
// CORE v1 had the same layout but saved those held chains as not popped yet (nextAvail rewound over
// them): the restored device popped them again, which the saved one never did — its receive path then
// drained its backlog a notification early (issue #14), and a held chain that was not among the most
// recent pops made the rewound index re-pop a chain already used. A v1 image cannot say which chains
// were held, so it is refused with 'state.version' rather than restored into a device that behaves
// differently. (Within v2, the packed record first also rewound nextAvail over the chains in flight;
// v2 was not released then, and no device listed a packed queue's held chains, so such an image
// restores as it did: nothing in flight.)
//
// What is not state: the diagnostics log (a record of the session, not something the guest depends
// on) and the chains' pools (rebuilt on activation).
//
// Checks (`checkCoreState`): another device type, offer or queue layout is 'state.mismatch'; status
// bits, ISR bits, features and queue indices that no run of this core can produce are
// 'state.corrupt'; a running queue is re-activated through the core's own activation — the rings
// are checked like guest values — and rings outside this guest memory are 'state.mismatch' (the
// state is intact but belongs with other memory), any other activation error 'state.corrupt'.

import { DeviceStateError } from '../../lib/base/state-codec.js';
import type { StateImage, StateReader, StateSection, StateWriter } from '../../lib/base/state-codec.js';
import { StateWriter as Writer } from '../../lib/base/state-codec.js';
import type { QueueConfig, SplitQueueRunState } from '../../virtqueue/split-queue.js';
import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import type { PackedQueueRunState } from '../../virtqueue/packed-queue.js';

/** A running packed queue's positions in a device state. */
export type PackedRunRecord = PackedQueueRunState & { readonly ring: 'packed' };
import type { CoreError, QueueFault } from './core-errors.js';
import type { RunState } from './core-types.js';
import {
  STATUS_ACKNOWLEDGE,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER,
  STATUS_DRIVER_OK,
  STATUS_FAILED,
  STATUS_FEATURES_OK,
} from './device-status.js';
import type { DriverInterface } from './device-status.js';
import { VIRTIO_F_VERSION_1, featureBit } from './features.js';
import type { NegotiationState } from './features.js';
import type { VirtioCore } from './virtio-core.js';

/** What must match between the device that saved a state and the one restoring it. */
export interface CoreIdentity {
  readonly deviceType: number;
  readonly offered: bigint;
  readonly queueMaxSizes: readonly number[];
}

export interface CoreQueueState {
  /** As the driver wrote it (unchecked unless the queue runs). */
  readonly size: number;
  readonly ready: boolean;
  /** desc lo, desc hi, driver lo, driver hi, device lo, device hi (what the driver reads back). */
  readonly words: readonly number[];
  /** A notification that came before DRIVER_OK and waits for it. */
  readonly pendingNotify: boolean;
  /** The running indices; null when the queue does not run. */
  readonly running: SplitQueueRunState | PackedRunRecord | null;
}

export interface CoreState {
  readonly identity: CoreIdentity;
  readonly status: number;
  readonly isr: number;
  readonly generation: number;
  readonly driverInterface: DriverInterface;
  readonly negotiation: NegotiationState;
  readonly queues: readonly CoreQueueState[];
}

/** A checked state with its running queues built: what `VirtioCore.commitState` applies. */
export interface PreparedCoreState {
  readonly state: CoreState;
  readonly run: RunState;
}

export const CORE_SECTION = 'CORE';
export const TRANSPORT_SECTION = 'TRNS';
const CORE_VERSION = 2;
const TRANSPORT_VERSION = 1;
/** What `transport kind` says when no transport is attached. */
const NO_TRANSPORT = 'none';
/** Status bits a device can hold (§2.1; 0x10 and 0x20 are never stored). */
const STATUS_BITS = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK | STATUS_FEATURES_OK | STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED;
/** ISR bits (§4.1.4.5): used buffer, configuration change. */
const ISR_BITS = 3;
const QUEUE_NOT_RUNNING = 0;
const QUEUE_SPLIT = 1;
const QUEUE_PACKED = 2;
/** Address halves per queue. */
const QUEUE_WORDS = 6;
/** Most queues a core has (VirtioCore's MAX_QUEUES). */
const MAX_QUEUES = 0x10000;

function corrupt(message: string): DeviceStateError {
  return new DeviceStateError('state.corrupt', message);
}
function mismatch(message: string): DeviceStateError {
  return new DeviceStateError('state.mismatch', message);
}

/** Throws `DeviceStateError` unless `s` can be this core's state (see the file comment). */
export function checkCoreState(s: CoreState, here: CoreIdentity & { readonly offeredLegacy: bigint }): void {
  const id = s.identity;
  if (id.deviceType !== here.deviceType) throw mismatch(`state of a device of type ${id.deviceType}, this one is type ${here.deviceType}`);
  if (id.queueMaxSizes.length !== here.queueMaxSizes.length) {
    throw mismatch(`state of a device with ${id.queueMaxSizes.length} queues, this one has ${here.queueMaxSizes.length} (queue pairs or control queue differ)`);
  }
  id.queueMaxSizes.forEach((m, i) => {
    if (m !== here.queueMaxSizes[i]) throw mismatch(`queue ${i} has maximum size ${m} in the state, ${here.queueMaxSizes[i]} here`);
  });
  if (id.offered !== here.offered) {
    throw mismatch(`offered features differ: 0x${id.offered.toString(16)} in the state, 0x${here.offered.toString(16)} here`);
  }
  if ((s.status & ~STATUS_BITS) !== 0) throw corrupt(`status 0x${s.status.toString(16)} has bits no device sets`);
  if ((s.isr & ~ISR_BITS) !== 0) throw corrupt(`ISR 0x${s.isr.toString(16)} has undefined bits`);
  if (s.queues.length !== here.queueMaxSizes.length) throw corrupt(`${s.queues.length} queue records for ${here.queueMaxSizes.length} queues`);
  const n = s.negotiation;
  const featuresOk = (s.status & STATUS_FEATURES_OK) !== 0;
  const driverOk = (s.status & STATUS_DRIVER_OK) !== 0;
  if (featuresOk && !n.frozen) throw corrupt('FEATURES_OK is set but negotiation is open');
  if (featuresOk && s.driverInterface === 'legacy') throw corrupt('FEATURES_OK is set on the legacy interface');
  if (n.frozen && (n.driver & ~(here.offered | here.offeredLegacy)) !== 0n) throw corrupt(`negotiated features 0x${n.driver.toString(16)} were never offered`);
  if (s.driverInterface === 'modern') {
    if (driverOk && !featuresOk) throw corrupt('DRIVER_OK without FEATURES_OK on the modern interface');
    if (featuresOk && (n.driver & featureBit(VIRTIO_F_VERSION_1)) === 0n) throw corrupt('FEATURES_OK without VERSION_1 on the modern interface');
  }
  const running = driverOk && (s.status & STATUS_DEVICE_NEEDS_RESET) === 0;
  s.queues.forEach((q, i) => {
    if (q.words.length !== QUEUE_WORDS) throw corrupt(`queue ${i}: ${q.words.length} address words`);
    if (q.running !== null && !running) throw corrupt(`queue ${i} runs but the device does not`);
    if (running && q.ready !== (q.running !== null)) throw corrupt(`queue ${i} is ${q.ready ? 'enabled but not running' : 'running but not enabled'}`);
  });
}

/** The queue configuration a saved queue record describes. */
export function queueConfigOf(q: CoreQueueState): QueueConfig {
  const w = q.words;
  const addr = (k: number): number => w[2 * k + 1]! * 2 ** 32 + w[2 * k]!;
  return { size: q.size, descTable: addr(0), availRing: addr(1), usedRing: addr(2), ready: q.ready };
}

/** Why a saved running queue cannot run here, as the state error it is. */
export function activationProblem(index: number, e: QueueFault | CoreError): DeviceStateError {
  const what = `queue ${index} cannot run: ${e.code}${'addr' in e ? ` at 0x${e.addr.toString(16)}` : ''}`;
  // Rings outside this memory: the state is fine, the memory is another (smaller, other layout).
  if (e.code === 'queue.ring-outside-memory' || e.code === 'queue.ring-not-contiguous') return mismatch(`${what} (not in this guest memory)`);
  return corrupt(what);
}

// ---- encoding ----

export function writeCoreState(w: StateWriter, s: CoreState): void {
  const id = s.identity;
  w.u32(id.deviceType).u64(id.offered).u32(id.queueMaxSizes.length);
  for (const m of id.queueMaxSizes) w.u16(m);
  w.u8(s.status).u8(s.isr).u32(s.generation).u8(s.driverInterface === 'legacy' ? 1 : 0);
  w.u64(s.negotiation.driver).bool(s.negotiation.frozen).bool(s.negotiation.straySelectBits);
  for (const q of s.queues) {
    // A size the driver wrote that is not a 32-bit value is impossible (registers are 16/32-bit).
    w.u32(q.size).bool(q.ready);
    for (const word of q.words) w.u32(word);
    w.bool(q.pendingNotify);
    if (q.running === null) {
      w.u8(QUEUE_NOT_RUNNING);
    } else if ('ring' in q.running) {
      const r = q.running;
      w.u8(QUEUE_PACKED).u16(r.nextAvail).u16(r.nextUsed).u16(r.publishedUsed);
    } else {
      const r = q.running;
      w.u8(QUEUE_SPLIT).u16(r.nextAvail).u16(r.shadowAvail).u16(r.nextUsed).u16(r.publishedUsed);
    }
  }
}

export function readCoreState(r: StateReader): CoreState {
  const deviceType = r.u32('device type');
  const offered = r.u64('offered features');
  const count = r.u32('queue count');
  if (count > MAX_QUEUES) throw corrupt(`${count} queues, more than ${MAX_QUEUES}`);
  // Each maximum is 2 bytes: a count larger than the section fails on the first missing one.
  const queueMaxSizes: number[] = [];
  for (let i = 0; i < count; i++) queueMaxSizes.push(r.u16('queue maximum size'));
  const status = r.u8('status');
  const isr = r.u8('ISR');
  const generation = r.u32('config generation');
  const iface = r.u8('driver interface');
  if (iface > 1) throw corrupt(`driver interface ${iface}`);
  const negotiation: NegotiationState = { driver: r.u64('driver features'), frozen: r.bool('frozen'), straySelectBits: r.bool('stray select bits') };
  const queues: CoreQueueState[] = [];
  for (let i = 0; i < count; i++) {
    const size = r.u32('queue size');
    const ready = r.bool('queue ready');
    const words: number[] = [];
    for (let k = 0; k < QUEUE_WORDS; k++) words.push(r.u32('queue address'));
    const pendingNotify = r.bool('pending notification');
    const kind = r.u8('queue kind');
    let running: SplitQueueRunState | PackedRunRecord | null = null;
    if (kind === QUEUE_SPLIT) {
      running = { nextAvail: r.u16('nextAvail'), shadowAvail: r.u16('shadowAvail'), nextUsed: r.u16('nextUsed'), publishedUsed: r.u16('publishedUsed') };
    } else if (kind === QUEUE_PACKED) {
      running = { ring: 'packed', nextAvail: r.u16('nextAvail'), nextUsed: r.u16('nextUsed'), publishedUsed: r.u16('publishedUsed') };
    } else if (kind !== QUEUE_NOT_RUNNING) {
      throw corrupt(`queue ${i}: unknown queue kind ${kind}`);
    }
    queues.push({ size, ready, words, pendingNotify, running });
  }
  r.done();
  return {
    identity: { deviceType, offered, queueMaxSizes },
    status,
    isr,
    generation,
    driverInterface: iface === 1 ? 'legacy' : 'modern',
    negotiation,
    queues,
  };
}

/** The core's and its transport's sections of a device state. */
export function coreSections(core: VirtioCore): StateSection[] {
  const c = new Writer();
  writeCoreState(c, core.exportState());
  const t = new Writer();
  const hooks = core.transportState;
  t.string(hooks?.kind ?? NO_TRANSPORT);
  hooks?.save(t);
  return [
    { tag: CORE_SECTION, version: CORE_VERSION, required: true, payload: c.finish() },
    { tag: TRANSPORT_SECTION, version: TRANSPORT_VERSION, required: true, payload: t.finish() },
  ];
}

/**
 * Reads and checks the core's and transport's sections against `core` (throws `DeviceStateError`,
 * changes nothing) and returns the step that applies both; the caller re-sends the ISR last. The
 * restored running queues (`queues`, not yet the device's) await the chains the device held: the
 * caller gives them back (Virtqueue.restoreHeld) and checks with `checkHeldChains`.
 */
export function loadCoreSections(
  core: VirtioCore,
  image: StateImage,
): { readonly state: CoreState; readonly queues: readonly (Virtqueue | null)[]; readonly commit: () => void } {
  const section = image.need(CORE_SECTION, CORE_VERSION);
  if (section.version < CORE_VERSION) {
    throw new DeviceStateError(
      'state.version',
      `section ${CORE_SECTION} is version ${section.version}, from a device that saved the chains it held as not popped; this device reads version ${CORE_VERSION} only (save the state again with this version)`,
    );
  }
  const state = readCoreState(section.reader);
  const t = image.need(TRANSPORT_SECTION, TRANSPORT_VERSION).reader;
  const kind = t.string('transport kind');
  const hooks = core.transportState;
  const here = hooks?.kind ?? NO_TRANSPORT;
  if (kind !== here) throw mismatch(`state of a device behind transport '${kind}', this one is behind '${here}'`);
  const prepared = core.prepareState(state);
  const commitTransport = hooks?.load(t);
  t.done();
  return {
    state,
    queues: prepared.run.kind === 'running' ? prepared.run.queues : [],
    commit: () => {
      commitTransport?.();
      core.commitState(prepared);
    },
  };
}

/** After the device gave its held chains back: every running queue must have all it had in flight. */
export function checkHeldChains(queues: readonly (Virtqueue | null)[]): void {
  queues.forEach((q, i) => {
    const why = q === null ? null : q.heldMissing();
    if (why !== null) throw corrupt(`queue ${i}: ${why}`);
  });
}
