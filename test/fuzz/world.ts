// One fuzzed machine (split rings §2.7, or packed rings §2.8 when the setup says so): a VirtioNetDevice on a MemoryNetdev or a header-carrying in-memory netdev
// (vnet-netdev.ts), in guarded guest memory, behind a real transport (virtio-mmio §4.2, virtio-pci
// §4.1, or its legacy interface §4.1.4.10), driven by a model driver (DriverRing +
// driver-transport) that applies FuzzOps (ops.ts, done by driver-ops.ts) one at a time — and, once
// armed, also from inside the device's callbacks (re-entrancy: transmit listener, interrupt,
// rx-filter-changed, needs-reset, the netdev's pause / resume / setOffloads).
//
// Oracles, all on for the whole sequence and checked after every operation (oracle.ts has the
// end-of-sequence ones; where one is narrowed, the comment at the check says to what and why):
// - no exception escapes a transport access, a netdev call or a device API call (device.threw);
// - every call stays within a work budget: memory operations metered by GuardedMemory
//   (work.unbounded), and operations — ring pops / pushes / publishes (queue-meter.ts), netdev
//   calls, interrupts, events — counted here (work.unbounded-ops); both scale with the ring size;
// - no byte outside the buffers granted to the device changes, and every byte it changes it
//   reported (guarded-memory.ts: guard.write-outside-grant, guard.write-unreported);
// - every used element matches an outstanding posting: no head completes twice (ledger.ts), and
//   used.idx never moves by more than the ring size (used.index-jump);
// - every head the driver made available is in the used ring, still held by the device (in
//   flight), or not yet popped (used.head-lost);
// - the interrupt callback reports level changes only (irq.not-a-change); a used-buffer
//   notification that suppression asks for is delivered (irq.lost), and none is raised when no
//   used element was published (irq.spurious); entering DEVICE_NEEDS_RESET after DRIVER_OK raises
//   the config interrupt (needs-reset.silent);
// - frames intact end to end and received headers within the guest's offloads (stream-checks.ts:
//   rx.frame-corrupt, rx.num-buffers, rx.hdr-offload, rx.hdr-csum-outside-frame, tx.frame-corrupt);
// - an OK-acked GUEST_OFFLOADS_SET is in effect on the host, and the host never has an offload
//   the guest did not negotiate (ctrl.offloads-acked-not-applied, host.offloads-not-negotiated);
// - once the driver reset the device from inside a callback, the rest of that device call touches
//   neither guest memory nor the backend (reentry.touched-after-reset), and after any reset no
//   queue runs (reset.queues-still-running) and no frame is taken in (rx.taken-while-stopped);
// - frames never wait in the backend while the running device has buffers (rx.backend-stalled);
// - the counters add up: rx offered = delivered + drops + backlog, the netdev's injected =
//   delivered + backlog + dropped, tx frames = frames the netdev saw, the receive queues' drops =
//   every receive drop (stats.rx-queue-drops), each receive queue's delivered count = the frames
//   its used ring shows (rx.counted-not-visible);
// - RSS and hash reports (rss-model.ts, the reference): an RSS_CONFIG / HASH_CONFIG is acked as
//   the validation rules say (ctrl.rss-ack); a described IP frame lands on the receive queue the
//   indirection table (or, without RSS, the flow hash over the pairs in use) picks for its
//   reference hash (rx.rss-queue); the 20-byte header's hash_value / hash_report are the reference's
//   (rx.hash-report); no frame reaches the guest twice, on one queue or on two (rx.frame-duplicated).

import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import { VirtioPciTransport } from '../../devices/virtio/pci-transport.js';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import type { NetStats } from '../../devices/virtio-net/net-stats.js';
import { GUEST_OFFLOAD_FEATURES, NetFeature, hasFeature } from '../../devices/virtio-net/constants.js';
import { unmetRequirement } from '../../devices/virtio-net/net-options.js';
import { TX_BURST } from '../../devices/virtio-net/tx-path.js';
import { SplitQueue } from '../../virtqueue/split-queue.js';
import { PackedQueue } from '../../virtqueue/packed-queue.js';
import { EVENT_DESC, EVENT_DISABLE, EVENT_ENABLE, PackedDriverRing } from '../support/packed-driver-ring.js';
import { GuardedMemory, WorkBudgetExceeded } from '../support/guarded-memory.js';
import { DriverRing } from '../support/driver-ring.js';
import { driverFor, initDevice, legacyDriver, legacyRingLayout } from '../support/driver-transport.js';
import type { DriverTransport } from '../support/driver-transport.js';
import { features } from '../support/net-rig.js';
import { DROPPABLE, DROP_KEEP_UNMET } from './ops.js';
import type { FuzzOp, FuzzSetup, Hook, ReentryAction } from './ops.js';
import { QueueLedger } from './ledger.js';
import { applyOp, queueOp, reg } from './driver-ops.js';
import type { FuzzRing, Posting, PostingKind } from './ledger.js';
import { makeFuzzNetdev } from './vnet-netdev.js';
import type { FuzzNetdev, VnetMemoryNetdev } from './vnet-netdev.js';
import { installQueueMeter, setQueueMeter } from './queue-meter.js';
import type { MeteredOp, QueueMeter } from './queue-meter.js';
import { FrameStream, checkRxHeader, findIn } from './stream-checks.js';
import type { Expected, Offloads } from './stream-checks.js';
import { REPORT, RssModel, expectedRssAck, refHash } from './rss-model.js';
import type { FlowDesc } from './rss-model.js';

/** Guest memory: five queue areas of 64 KiB from 0x1000, then unused (guarded) memory. */
export const MEMORY_SIZE = 0x58000;
const QUEUE_AREA = 0x10000;
const QUEUE_BASE = 0x1000;
/** Unused memory after the queue areas (guarded: the device must never write there). */
const TAIL = 0x7000;
/** Rings above this many entries get queue areas of their own size (big-ring setups). */
const SMALL_RING_MAX = 32;
/** Big rings: the scratch the 'queue' op programs rings into, at the end of each queue area. */
const SCRATCH = 0x8000;
/** Big rings: buffer heap per queue area. */
const BIG_HEAP = 0x20000;
/** The device's QueueNumMax for small-ring setups (legacy rings are this size). */
export const QUEUE_MAX = 32;
/** Memory operations one call may use: far above a full ring of maximal chains, far below a hang. */
export const WORK_BUDGET = 400_000;
/**
 * Operations (ring operations, netdev calls, interrupts, events) one call may use. A call may
 * legitimately pop a whole ring for each of the backlogged frames, so the budget grows with the
 * ring: far above that, far below a hang.
 */
export const OPS_BUDGET = 200_000;
/** Budgets grow by this much per ring entry above SMALL_RING_MAX (a big ring holds more work per call). */
const BUDGET_PER_ENTRY = 64;
/** Nested re-entrant driver operations (a callback's operation firing another callback). */
const REENTRY_DEPTH_MAX = 2;
const ISR_QUEUE = 1;
/** Frames the MemoryNetdev holds while the device cannot take them. */
const NETDEV_BACKLOG = 64;
const ALL = (1n << 64n) - 1n;
const STATUS_DRIVER_OK = 4;
const STATUS_NEEDS_RESET = 0x40;

/** Frame payloads are cut from this (byte i is i & 0xff): no per-byte loop per frame. */
const PATTERN = Uint8Array.from({ length: 70_000 + 256 }, (_, i) => i & 0xff);

export interface FuzzFailure {
  /** Index of the operation after which the oracle failed (-1: setup, ops.length: final checks). */
  step: number;
  code: string;
  detail: string;
}

/** Oracles that can be switched off (each names the bug it was added for). */
export interface FuzzOracles {
  /**
   * Without MRG_RXBUF every frame the device counts as delivered must be a used element the guest
   * can see (used.idx published) by the end of the call that delivered it. Added for fixture
   * rx.counted-not-visible (chains completed before a violation were never published; fixed in
   * virtqueue/split-queue.ts). On unless set to false.
   */
  rxVisible?: boolean;
}

/** What the world remembers of each injected frame (FrameStream info). */
interface RxInfo {
  /** Injection number (a frame delivered twice shows it twice). */
  n: number;
  /** The frame's RSS description, when it is one of the 'flow' op's frames. */
  flow: FlowDesc | undefined;
  /** RssModel.version when injected: steering is judged only when the configuration did not change meanwhile. */
  version: number;
}

/** Receive-side offloads and USO (checkOffloads compares these with the host's). */
const HOST_OFFLOAD_KEYS = ['csum', 'tso4', 'tso6', 'ecn', 'ufo', 'uso4', 'uso6'] as const;
type HostOffloads = Record<(typeof HOST_OFFLOAD_KEYS)[number], boolean>;

export class FuzzStop extends Error {
  constructor(readonly failure: FuzzFailure) {
    super(`${failure.code} at step ${failure.step}: ${failure.detail}`);
  }
}

function dropsTotal(s: NetStats): number {
  return Object.values(s.rx.drops).reduce((a, b) => a + b, 0);
}

/** A packed position (offset | wrap << 15) on a line of 2 * size positions. */
function linear(pos: number, size: number): number {
  return ((pos >> 15) & 1) * size + (pos & 0x7fff);
}

/** How far `to` is ahead of `from` on a packed ring of `size` (positions as offset | wrap << 15). */
function packedDistance(from: number, to: number, size: number): number {
  const d = linear(to, size) - linear(from, size);
  return d < 0 ? d + 2 * size : d;
}

/** A device position (wrap * size + offset, packed-layout.ts) as offset | wrap << 15. */
function fromDevicePosition(p: number, size: number): number {
  return p >= size ? (p - size) | 0x8000 : p;
}

/** vring_need_event (§2.7.10). */
function needEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export class FuzzWorld implements QueueMeter {
  readonly memory: GuardedMemory;
  readonly netdev: FuzzNetdev & { vnet: VnetMemoryNetdev | null };
  readonly device: VirtioNetDevice;
  /** The device's QueueNumMax (legacy rings are this size). */
  readonly queueMax: number;
  /** Bytes per queue area. */
  readonly areaSize: number;
  /** Operations run, by kind (ops, re-entrant actions fired, frames cycled): the run's report. */
  readonly counts: Record<string, number> = {};
  readonly transport: VirtioMmioTransport | VirtioPciTransport;
  readonly driver: DriverTransport;
  /** Model rings and their books, by queue index, while the driver believes them live. */
  ledgers: (QueueLedger | null)[] = [];
  negotiated = 0n;
  step = -1;
  /** No raw register/status/queue traffic since the last good initialisation. */
  clean = false;
  transmitted = 0;
  irqLevel = false;
  /** Used-ring areas programmed through 'queue' ops (granted until reset). */
  programmed: [number, number][] = [];
  private activeBefore: [number, number][] = [];
  private frameSeq = 0;
  private wasBroken = false;
  /** Per receive queue: frames its counters showed delivered at the last initialisation. */
  private rxFramesAtInit: number[] = [];
  /** A failure recorded inside a callback (thrown at the next check). */
  private pending: FuzzFailure | null = null;
  /** Device calls in progress (calls nest through re-entrant callbacks). */
  private depth = 0;
  /** Operations in the outermost call in progress, and its budget. */
  private opsInCall = 0;
  readonly opsBudget: number;
  /** Re-entrant operations armed, and how deep they nest now. */
  private armed: { at: Hook; action: ReentryAction; times: number }[] = [];
  private reentryDepth = 0;
  /** A re-entrant operation ran during this step (some checks are then narrowed, see there). */
  private reentered = false;
  /** The driver reset the device from a callback inside the call in progress (and from which hook). */
  private resetFrom: Hook | null = null;
  /** Used-buffer interrupt bookkeeping: used.idx per ring and ISR when the step began. */
  private usedBefore = new Map<QueueLedger, number>();
  private isrBefore = 0;
  /**
   * ISR bits seen set just before the driver read ISR inside the step (a re-entrant operation, or
   * a cycle's interrupt handling): since the last irqMark, and since the step began.
   */
  private isrSeen = 0;
  private stepIsrSeen = 0;
  /** The device's rx backlog at the last check. */
  private rxBacklogBefore = 0;
  /** Books the driver dropped inside a device call; their grants go back after the guard check. */
  private retired: QueueLedger[] = [];
  /** A publish moved some queue's used.idx during this step. */
  private publishedInStep = false;
  /**
   * Frames on their way to the guest, one stream per receive queue (each injected frame in every
   * one: steering decides at delivery; frames to one queue keep their order), and to the backend
   * per transmit queue pair.
   */
  readonly rxStreams: FrameStream[];
  readonly txStreams = [new FrameStream(), new FrameStream()];
  /** Per receive queue: a merged receive frame being put together from consecutive used elements. */
  private rxAssembly: ({ header: Uint8Array; n: number; parts: Uint8Array[] } | null)[] = [];
  /** Injection numbers of the frames the guest received (rx.frame-duplicated). */
  private readonly rxTaken = new Set<number>();
  private rxSeq = 0;
  /** The RSS configuration as the driver's OK acks left it (rss-model.ts). */
  readonly rss = new RssModel();
  /** Received frames of this step, judged against the RSS model once the step's used rings are read. */
  private rxChecks: { k: number; header: Uint8Array; info: RxInfo }[] = [];
  /** RssModel.version, and whether the device held MRG_RXBUF chains for a frame, when the step began. */
  private rssVersionAtStep = 0;
  private heldAtStep = false;
  /** Guest offloads in effect as the driver knows them (negotiated, narrowed by OK-acked GUEST_OFFLOADS_SET). */
  guestOffloads = 0n;
  /** An OK ack of GUEST_OFFLOADS_SET came back this step: the host must now have exactly those. */
  private offloadsAcked = false;

  constructor(
    readonly setup: FuzzSetup,
    readonly oracles: FuzzOracles = {},
  ) {
    installQueueMeter();
    this.rxStreams = Array.from({ length: setup.pairs }, () => new FrameStream());
    const big = setup.ringSize > SMALL_RING_MAX;
    this.queueMax = big ? setup.ringSize : QUEUE_MAX;
    const extra = big ? BUDGET_PER_ENTRY * setup.ringSize : 0;
    this.areaSize = big ? align(26 * setup.ringSize + 0x3000, 0x1000) + BIG_HEAP + SCRATCH : QUEUE_AREA;
    this.memory = new GuardedMemory(QUEUE_BASE + 5 * this.areaSize + TAIL, { budget: WORK_BUDGET + extra });
    this.opsBudget = OPS_BUDGET + extra;
    const tick = GuardedMemory.prototype.tick;
    this.memory.tick = (n = 1): void => {
      if (this.resetFrom !== null) this.touched('a guest memory access');
      tick.call(this.memory, n);
    };
    this.netdev = makeFuzzNetdev(setup.backend ?? 'plain', NETDEV_BACKLOG);
    this.hookNetdev();
    this.device = new VirtioNetDevice({
      id: 'fuzz0',
      mac: '52:54:00:12:34:56',
      memory: this.memory.device,
      netdev: this.netdev,
      queuePairs: setup.pairs,
      queueSize: this.queueMax,
      features: { disable: setup.disable, ...(setup.enable === undefined ? {} : { enable: setup.enable }) },
      strict: setup.strict ?? false,
      ...(setup.mtu === undefined ? {} : { mtu: setup.mtu }),
    });
    this.netdev.on('transmit', (frame: Uint8Array) => {
      this.transmitted++;
      this.checkTransmitted(frame);
      this.hook('transmit');
    });
    this.device.on('rx-filter-changed', () => {
      this.meter();
      this.hook('rx-filter');
    });
    this.device.on('needs-reset', () => {
      this.meter();
      this.hook('needs-reset');
    });
    const onInterrupt = (asserted: boolean): void => {
      if (asserted === this.irqLevel) this.record('irq.not-a-change', `onInterrupt(${asserted}) while the line was already ${asserted ? 'asserted' : 'deasserted'}`);
      this.irqLevel = asserted;
      this.meter();
      if (asserted) this.hook('interrupt');
    };
    const real =
      setup.transport === 'mmio'
        ? new VirtioMmioTransport(this.device, { onInterrupt })
        : new VirtioPciTransport(this.device, { onInterrupt, legacy: setup.transport === 'pci-legacy' });
    this.transport = real;
    const guarded = this.guardTransport(real);
    this.driver = setup.transport === 'pci-legacy' ? legacyDriver(guarded as VirtioPciTransport) : driverFor(guarded);
    this.bump(`setup ring ${setup.ring === 'packed' && setup.transport !== 'pci-legacy' ? 'packed' : 'split'}`);
  }

  // ---------------------------------------------------------------- calls into the device

  /**
   * Runs a device-facing call: metered, and any exception is a failure. Calls made from inside a
   * callback of another call (re-entrancy) count towards the outermost one.
   */
  call<T>(what: string, fn: () => T): T | undefined {
    const outer = this.depth === 0;
    if (outer) {
      this.memory.beginCall();
      this.opsInCall = 0;
    }
    this.depth++;
    const prevMeter = setQueueMeter(this);
    try {
      return fn();
    } catch (e) {
      // A budget overrun is recorded as such (work.unbounded-ops at once, work.unbounded below).
      if (!(e instanceof WorkBudgetExceeded)) this.record('device.threw', `${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      return undefined;
    } finally {
      setQueueMeter(prevMeter);
      this.depth--;
      if (outer) {
        this.resetFrom = null;
        const work = this.memory.endCall();
        if (this.memory.overran) this.record('work.unbounded', `${what} used more than ${this.memory.budget} memory operations (${work})`);
      }
    }
  }

  record(code: string, detail: string): void {
    if (this.pending === null) this.pending = { step: this.step, code, detail };
  }

  /** One operation of the call in progress (ring operation, netdev call, interrupt, event). */
  meter(): void {
    if (this.depth === 0) return;
    if (++this.opsInCall > this.opsBudget) {
      this.record('work.unbounded-ops', `one call used more than ${this.opsBudget} operations (ring operations, netdev calls, interrupts, events)`);
      throw new WorkBudgetExceeded(this.opsBudget);
    }
  }

  /** QueueMeter: the device did a ring operation. */
  queueOp(q: SplitQueue | PackedQueue, op: MeteredOp, advanced: boolean): void {
    if (this.resetFrom !== null) this.touched(`${q.ring === 'packed' ? 'PackedQueue' : 'SplitQueue'}.${op} on queue ${q.index}`);
    if (advanced) this.publishedInStep = true;
    this.meter();
  }

  private touched(what: string): void {
    this.record('reentry.touched-after-reset', `${what} after the driver reset the device from inside a '${this.resetFrom}' callback, in the same device call`);
  }

  /** The device's calls into the netdev: counted, watched after a re-entrant reset, and hooks. */
  private hookNetdev(): void {
    const n = this.netdev;
    const wrap = <K extends 'send' | 'pauseReceive' | 'resumeReceive'>(name: K, hook: Hook | null): void => {
      const orig = (n[name] as (...a: unknown[]) => unknown).bind(n);
      (n as unknown as Record<string, unknown>)[name] = (...args: unknown[]): unknown => {
        this.meter();
        if (this.resetFrom !== null && name === 'send') this.touched('netdev.send');
        const r = orig(...args);
        if (hook !== null) this.hook(hook);
        return r;
      };
    };
    wrap('send', null); // its hook is the transmit listener
    wrap('pauseReceive', 'pause');
    wrap('resumeReceive', 'resume');
    const v = n.vnet;
    if (v !== null) {
      const set = v.setOffloads.bind(v);
      v.setOffloads = (flags) => {
        this.meter();
        if (this.resetFrom !== null) this.touched('netdev.setOffloads');
        const r = set(flags);
        this.hook('offloads');
        return r;
      };
    }
  }

  // ---------------------------------------------------------------- re-entrancy

  /** The driver forgets what it armed (a fresh driver after a reset: the recovery exchange). */
  disarm(): void {
    this.armed = [];
  }

  /** From the next `times` callbacks at `at`, the driver does `action` inside the device call. */
  arm(at: Hook, action: ReentryAction, times: number): void {
    this.armed.push({ at, action, times });
  }

  /** A callback at `at` runs inside a device call: the driver does what is armed there. */
  private hook(at: Hook): void {
    if (this.depth === 0 || this.reentryDepth >= REENTRY_DEPTH_MAX) return;
    const a = this.armed.find((x) => x.at === at && x.times > 0);
    if (a === undefined) return;
    a.times--;
    this.noteIsr(); // the driver may read (clear) ISR now: keep what was raised
    this.reentryDepth++;
    this.reentered = true;
    this.resetFrom = null; // the driver acts again: what follows is the device answering it
    this.bump(`reentry ${at}→${a.action.k}`);
    try {
      this.reenter(a.action);
    } catch (e) {
      if (e instanceof FuzzStop) this.record(e.failure.code, e.failure.detail);
      // else: the model driver could not do it (ring absent): a no-op, as for a top-level op.
    } finally {
      this.reentryDepth--;
    }
    const status = this.device.status;
    if (status === 0) {
      this.forget();
      this.resetFrom = at;
    }
  }

  private reenter(a: ReentryAction): void {
    switch (a.k) {
      case 'reset':
        this.clean = false;
        this.driver.writeStatus(0);
        return;
      case 'status':
        this.clean = false;
        this.driver.writeStatus(a.value);
        return;
      case 'kick':
        this.driver.notify(a.q);
        return;
      case 'queue':
        this.clean = false;
        queueOp(this, { t: 'queue', q: a.q, size: a.size, layout: a.layout });
        return;
      case 'reg':
        this.clean = false;
        reg(this, { t: 'reg', space: a.space, write: true, offset: a.offset, width: a.width, value: a.value });
        return;
      case 'inject':
        this.injectFrame(this.frame(a.len, this.device.mac, -1));
        return;
      case 'isr':
        this.driver.readIsr();
        return;
      case 'link':
        this.call('setLink', () => this.device.setLink(a.up));
        return;
    }
  }

  bump(kind: string, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n;
  }

  // ---------------------------------------------------------------- frames both ways

  /**
   * The backend offers `frame` (with `header`, when it carries headers); the receive streams expect
   * it. `flow`: its RSS description (the 'flow' op), for the steering and hash oracles.
   */
  injectFrame(frame: Uint8Array, header?: number[], flow?: FlowDesc): boolean | undefined {
    // The plain backend carries no header: the case's header (if any) is not passed.
    const h = header === undefined || this.netdev.vnet === null ? undefined : Uint8Array.from(header);
    const info: RxInfo = { n: this.rxSeq++, flow, version: this.rss.version };
    for (const s of this.rxStreams) s.add(frame, h, info);
    return this.call('netdev.inject', () => this.netdev.inject(frame, h));
  }

  /** The driver posts `frame` on transmit queue pair `pair`: the backend should see it. */
  expectTx(pair: number, frame: Uint8Array): void {
    this.txStreams[pair]!.add(frame);
  }

  private checkTransmitted(frame: Uint8Array): void {
    // Narrowed: a raw chain on a transmit queue carries whatever its (possibly aliased) buffers
    // hold, and without a clean initialisation the device's header length may differ from the
    // driver's — then which bytes are "the frame" is not defined.
    if (!this.clean) return;
    for (const l of this.ledgers) if (l !== null && l.index % 2 === 1 && (l.rawSeen || l.tainted)) return;
    if (this.txStreams[0]!.take(frame, () => false) !== null || this.txStreams[1]!.take(frame, () => false) !== null) return;
    this.record('tx.frame-corrupt', `the backend was handed a ${frame.length}-byte frame that matches no frame the driver posted (in order)`);
  }

  fail(code: string, detail: string): never {
    throw new FuzzStop({ step: this.step, code, detail });
  }

  /** The transport with every access going through `call`. */
  guardTransport(t: VirtioMmioTransport | VirtioPciTransport): VirtioMmioTransport | VirtioPciTransport {
    if (t instanceof VirtioMmioTransport) {
      const w = Object.create(t) as VirtioMmioTransport;
      w.read = (o, width) => this.call(`mmio read 0x${o.toString(16)}`, () => t.read(o, width)) ?? 0;
      w.write = (o, width, v) => void this.call(`mmio write 0x${o.toString(16)}`, () => t.write(o, width, v));
      return w;
    }
    const w = Object.create(t) as VirtioPciTransport;
    w.configRead = (o, width) => this.call(`pci config read 0x${o.toString(16)}`, () => t.configRead(o, width)) ?? 0;
    w.configWrite = (o, width, v) => void this.call(`pci config write 0x${o.toString(16)}`, () => t.configWrite(o, width, v));
    w.barRead = (b, o, width) => this.call(`pci bar${b} read 0x${o.toString(16)}`, () => t.barRead(b, o, width)) ?? 0;
    w.barWrite = (b, o, width, v) => void this.call(`pci bar${b} write 0x${o.toString(16)}`, () => t.barWrite(b, o, width, v));
    return w;
  }

  // ---------------------------------------------------------------- model state

  ring(q: number): FuzzRing | null {
    const l = this.ledgers[q];
    return l === undefined || l === null || l.dead ? null : l.ring;
  }

  has(name: string): boolean {
    const bit = features([name as never]);
    return (this.negotiated & bit) !== 0n;
  }

  get hdrLen(): number {
    if (this.has('HASH_REPORT') && this.has('VERSION_1')) return 20; // §5.1.6: hash_value, hash_report, padding
    return this.has('VERSION_1') || this.has('MRG_RXBUF') ? 12 : 10;
  }

  /** Receive queues the driver may use: max_virtqueue_pairs with MQ or RSS (§5.1.2), else 1. */
  get usablePairs(): number {
    return this.has('MQ') || this.has('RSS') ? this.setup.pairs : 1;
  }

  /** The driver forgets its rings (after a reset it did or saw). */
  forget(): void {
    // Inside a device call (a re-entrant reset) the grants stay until the step's guard check: the
    // device wrote into them legitimately before the reset; after it, reentry.touched-after-reset
    // judges every access.
    if (this.depth > 0) this.retired.push(...this.ledgers.filter((l): l is QueueLedger => l !== null));
    else for (const l of this.ledgers) l?.clear();
    this.ledgers = [];
    this.programmed = [];
    this.negotiated = 0n;
    this.guestOffloads = 0n;
    this.rxAssembly = [];
    this.rxChecks = [];
    this.rss.reset();
    this.usedBefore.clear();
  }

  /** Start of queue area `q`'s scratch, where 'queue' ops program rings. */
  scratchArea(q: number): number {
    return this.queueArea(q) + (this.areaSize === QUEUE_AREA ? 0x8000 : this.areaSize - SCRATCH);
  }

  queueArea(q: number): number {
    return QUEUE_BASE + q * this.areaSize;
  }

  private makeRing(q: number): FuzzRing {
    const base = this.queueArea(q);
    const small = this.areaSize === QUEUE_AREA;
    const heapEnd = small ? base + QUEUE_AREA : base + this.areaSize - SCRATCH;
    const heapStart = small ? base + 0x2000 : heapEnd - BIG_HEAP;
    if (this.driver.kind === 'pci-legacy') {
      const l = legacyRingLayout(base, this.queueMax);
      return new DriverRing(this.memory.driver, { ...l, heapStart, heapEnd });
    }
    if (this.setup.ring === 'packed') return new PackedDriverRing(this.memory.driver, { size: this.setup.ringSize, base, heapStart, heapEnd });
    return new DriverRing(this.memory.driver, { size: this.setup.ringSize, base, heapStart, heapEnd });
  }

  /** Linux's initialisation with the offer minus `drop`. True when DRIVER_OK stuck. */
  init(drop: number): boolean {
    this.forget();
    let want = ALL;
    DROPPABLE.forEach((name, i) => {
      if (name !== 'DROP_KEEP_UNMET' && (drop >> i) & 1) want &= ~features([name as never]);
    });
    const offered = this.device.offered;
    if ((drop & DROP_KEEP_UNMET) === 0) {
      // Like Linux, decline what depends on a declined feature (§5.1.3.1), e.g. GUEST_TSO4 without GUEST_CSUM.
      want &= offered;
      for (let u = unmetRequirement(want); u !== null; u = unmetRequirement(want)) want &= ~(1n << BigInt(u.feature));
    }
    // §5.1.2: N = max_virtqueue_pairs with MQ or RSS, the control queue after the 2N data queues.
    const wantMq = (want & offered & features(['MQ', 'RSS' as never])) !== 0n;
    const wantCtrl = (want & offered & features(['CTRL_VQ'])) !== 0n;
    const ctrlIndex = wantMq ? this.setup.pairs * 2 : 2;
    const count = wantCtrl ? ctrlIndex + 1 : ctrlIndex;
    const rings: FuzzRing[] = [];
    for (let q = 0; q < count; q++) rings.push(this.makeRing(q));
    // A re-entrant driver operation inside the initialisation (armed at the backend's setOffloads,
    // called at DRIVER_OK) clears `clean` (e.g. it disabled a queue these ledgers would count as
    // live): it must stay cleared, not be overwritten by the initialisation's own result.
    this.clean = true;
    const res = initDevice(this.driver, { features: want, queues: rings });
    this.negotiated = res.negotiated;
    this.guestOffloads = res.negotiated & GUEST_OFFLOAD_FEATURES;
    this.ledgers = rings.map((r, q) => new QueueLedger(this.memory, r, q));
    const atInit = this.device.stats().queues;
    this.rxFramesAtInit = Array.from({ length: this.setup.pairs }, (_, k) => atInit[2 * k]?.packets ?? 0);
    // Packed rings need VIRTIO_F_RING_PACKED negotiated (initDevice acknowledges it when offered);
    // without it the device would read them as split rings, and nothing the driver sees means anything.
    const packedAgreed = rings.every((r) => r instanceof PackedDriverRing) === ((res.negotiated & features(['RING_PACKED' as never])) !== 0n);
    if (!packedAgreed) for (const l of this.ledgers) if (l !== null) l.tainted = l.dead = true;
    this.clean = this.clean && res.ok && packedAgreed;
    if (res.ok) for (const f of ['RSS', 'HASH_REPORT', 'NOTF_COAL', 'VQ_NOTF_COAL', 'DEVICE_STATS', 'GUEST_USO4', 'HOST_USO', 'SPEED_DUPLEX']) if (this.has(f)) this.bump(`init negotiated ${f}`);
    if (res.ok) this.bump('init ok');
    return res.ok;
  }

  /** Index of the control queue, or -1. */
  get ctrlIndex(): number {
    if (!this.has('CTRL_VQ')) return -1;
    return this.has('MQ') || this.has('RSS') ? this.setup.pairs * 2 : 2;
  }

  /** Publishes with `add` and notifies the way Linux decides (§2.7.10), or always with `force`. */
  kick(q: number, add: () => void, force = false): void {
    const ring = this.ring(q)!;
    if (ring instanceof PackedDriverRing) {
      const before = ring.availPosition;
      add();
      if (ring.needsNotify(before, this.has('EVENT_IDX')) || force) this.driver.notify(q);
      return;
    }
    const old = ring.availIdx;
    add();
    const now = ring.availIdx;
    const need = this.has('EVENT_IDX') ? needEvent(ring.readAvailEvent(), now, old) : (ring.usedFlags() & 1) === 0;
    if (need || force) this.driver.notify(q);
  }

  /**
   * Whether the driver may make `n` more entries available on queue `q`: a driver never has more
   * heads outstanding than the ring has entries (§2.7.13: it owns at most `size` of them).
   */
  room(q: number, n: number): boolean {
    const l = this.ledgers[q];
    // Transmit queues (odd, not the control queue): fewer than TX_BURST outstanding. The device
    // yields after TX_BURST chains and goes on in a later event-loop turn (setImmediate), which a
    // synchronous fuzz case never reaches; only rings above TX_BURST entries are affected.
    const cap = q % 2 === 1 && q !== this.ctrlIndex ? Math.min(l?.ring.size ?? 0, TX_BURST - 1) : (l?.ring.size ?? 0);
    return l !== undefined && l !== null && l.outstanding + n <= cap;
  }

  /**
   * Books a posting. Packed rings: a well-formed list is granted its writable buffers as written;
   * raw lists (driver-ops.ts) pass `granted`.
   */
  post(q: number, head: number, kind: PostingKind, ackAt?: number, command?: readonly number[], granted?: [number, number][]): void {
    const l = this.ledgers[q]!;
    if (granted === undefined && l.ring instanceof PackedDriverRing) {
      granted = [];
      for (const b of l.ring.buffers(head)) if (b.write && b.len > 0) granted.push([b.addr, b.len]);
    }
    l.post(head, kind, ackAt, command, granted);
  }

  // ---------------------------------------------------------------- operations

  apply(op: FuzzOp): void {
    this.bump(op.t);
    this.activeBefore = this.activeUsedRings();
    try {
      applyOp(this, op);
    } catch (e) {
      // The model driver could not do it (ring full, heap exhausted, queue absent): a no-op.
      if (e instanceof FuzzStop) throw e;
    }
  }

  /** A frame of `len` bytes (runts too) to `dst`, optionally tagged, numbered. */
  frame(len: number, dst: string, vlan: number): Uint8Array {
    const seq = this.frameSeq++;
    const f = PATTERN.slice(seq & 0xff, (seq & 0xff) + len);
    const mac = dst.split(':').map((h) => parseInt(h, 16));
    const head = [...mac, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc, ...(vlan >= 0 ? [0x81, 0, (vlan >> 8) & 0x0f, vlan & 0xff] : []), 0x08, 0x00];
    f.set(head.slice(0, len));
    return f;
  }

  // ---------------------------------------------------------------- checks after each operation

  /** Used-ring areas of the device's running queues. */
  private activeUsedRings(): [number, number][] {
    const out: [number, number][] = [];
    for (const q of this.device.queues) {
      if (q === null) continue;
      // Packed: used descriptors go into the descriptor ring; the device event structure is the device's.
      if (q.ring === 'packed') out.push([q.queueConfig.descTable, 16 * q.size], [q.queueConfig.usedRing, 4]);
      else out.push([q.queueConfig.usedRing, 6 + 8 * q.size]);
    }
    return out;
  }

  afterStep(): void {
    if (this.pending !== null) throw new FuzzStop(this.pending);
    this.checkGuards();
    const status = this.device.status;
    const broken = (status & STATUS_NEEDS_RESET) !== 0;
    if (broken && !this.wasBroken && (status & STATUS_DRIVER_OK) !== 0 && ((this.device.isr | this.stepIsrSeen) & 2) === 0) {
      // §2.1.2: entering DEVICE_NEEDS_RESET after DRIVER_OK sends a configuration change notification.
      this.fail('needs-reset.silent', 'device entered DEVICE_NEEDS_RESET without raising the configuration change interrupt');
    }
    this.wasBroken = broken;
    // §2.4 / §3.1.1: after a reset no queue runs until the driver sets them up again (a reset from
    // inside a callback of the device's own DRIVER_OK handling must not leave it running).
    if (status === 0 && this.device.queues.some((q) => q !== null)) {
      this.fail('reset.queues-still-running', `device status is 0 (reset) but queue(s) ${this.device.queues.flatMap((q, i) => (q === null ? [] : [i])).join(', ')} still run`);
    }
    if (status === 0 && this.ledgers.length > 0) this.forget();
    this.checkInterrupts();
    this.consumeUsed();
    this.checkHeld();
    this.checkOffloads();
    this.checkStats();
    if (this.pending !== null) throw new FuzzStop(this.pending);
    this.beginStep();
  }

  /** No byte changed outside the grants, every change reported (guarded-memory.ts). */
  checkGuards(): void {
    if (this.pending !== null) throw new FuzzStop(this.pending);
    for (const l of this.ledgers) l?.refreshRaw();
    const extra = [...this.activeBefore, ...this.activeUsedRings(), ...this.programmed];
    for (const l of this.ledgers) {
      if (l === null) continue;
      if (l.ring instanceof PackedDriverRing) extra.push([l.ring.descRing, 16 * l.ring.size], [l.ring.deviceEvent, 4]);
      else extra.push([l.ring.usedRing, 6 + 8 * l.ring.size]);
    }
    const g = this.memory.check((a) => extra.some(([s, l]) => a >= s && a < s + l));
    for (const l of this.retired) l.clear();
    this.retired = [];
    if (g !== null) {
      this.fail(g.code, `${g.count} byte(s), first at 0x${g.address.toString(16)} (0x${g.before.toString(16)} -> 0x${g.after.toString(16)})`);
    }
  }

  /** Snapshots for the next step's checks (used.idx per live ring, ISR). */
  beginStep(): void {
    this.irqMark();
    this.stepIsrSeen = 0;
    this.reentered = false;
    this.offloadsAcked = false;
    this.rssVersionAtStep = this.rss.version;
    this.heldAtStep = (this.device as unknown as { rx: { heldCount: number } }).rx.heldCount > 0;
  }

  /** The driver is about to read ISR (outside a callback): the step's checks keep what it held. */
  noteIsr(): void {
    this.isrSeen |= this.device.isr;
    this.stepIsrSeen |= this.device.isr;
  }

  /** Snapshots used.idx per live ring and ISR: the interrupt checks judge what happens from here. */
  irqMark(): void {
    this.usedBefore.clear();
    for (const l of this.ledgers) if (l !== null && !l.tainted) this.usedBefore.set(l, usedMark(l.ring));
    this.isrBefore = this.device.isr;
    this.isrSeen = 0;
    this.publishedInStep = false;
  }

  /**
   * §2.7.7.2 / §2.7.10: a used-buffer notification is due when a queue's used.idx moved past
   * used_event (EVENT_IDX) or, without EVENT_IDX, while the driver has not set NO_INTERRUPT. Due
   * means ISR's queue bit is set when the step ends, or was just before a re-entrant driver
   * operation (which may read ISR) — the line stays asserted until the driver reads ISR, so a second
   * notification does not show as a new edge. Narrowed: without a clean initialisation the driver
   * does not know whether EVENT_IDX is in force; and once the device entered DEVICE_NEEDS_RESET,
   * any interrupt (the config one) is accepted — the driver resets.
   * Spurious: ISR's queue bit newly set in a step in which no used.idx moved on any queue (§2.7.7.2
   * allows extra notifications only as a SHOULD NOT when something was used; none when nothing was).
   */
  checkInterrupts(): void {
    const isr = this.device.isr | this.isrSeen;
    if ((isr & ISR_QUEUE) !== 0 && (this.isrBefore & ISR_QUEUE) === 0 && !this.publishedInStep) {
      this.fail('irq.spurious', `the device set ISR's used-buffer bit in a step in which no queue's used.idx moved (ISR 0x${this.isrBefore.toString(16)} -> 0x${isr.toString(16)})`);
    }
    if (!this.clean || !this.driverOk) return;
    if (this.needsReset && isr !== 0) return;
    if ((isr & ISR_QUEUE) !== 0) return;
    const eventIdx = this.has('EVENT_IDX');
    for (const l of this.ledgers) {
      if (l === null || l.tainted) continue;
      const before = this.usedBefore.get(l) ?? (l.ring instanceof PackedDriverRing ? 0x8000 : 0); // a ring set up in this step: where it starts
      const now = usedMark(l.ring);
      if (now === before) continue;
      // Notification coalescing (VIRTIO 1.3 §5.1.6.5.9) may hold the notification for its window.
      if (this.device.coalescing(l.index)?.active === true) continue;
      if (l.ring instanceof PackedDriverRing) {
        const due = packedDue(this.memory, l.ring, before, now, eventIdx);
        if (due === true) {
          this.fail('irq.lost', `queue ${l.index} (packed): the used position moved 0x${before.toString(16)} -> 0x${now.toString(16)} with ${eventIdx ? 'the event descriptor passed or events enabled' : 'events enabled'}, but no used-buffer interrupt (ISR 0x${isr.toString(16)})`);
        }
        continue;
      }
      const due = eventIdx ? needEvent(this.memory.driver.readU16(l.ring.availRing + 4 + 2 * l.ring.size), now, before) : (this.memory.driver.readU16(l.ring.availRing) & 1) === 0;
      if (due) {
        this.fail('irq.lost', `queue ${l.index}: used.idx ${before} -> ${now} with ${eventIdx ? 'used_event crossed' : 'interrupts not suppressed'}, but no used-buffer interrupt (ISR 0x${isr.toString(16)})`);
      }
    }
  }

  /**
   * Every head made available is in the used ring (taken by consumeUsed), held by the device
   * (popped, in flight), or not popped yet: outstanding = (avail.idx - nextAvail) + inFlight.
   * Narrowed to queues the device runs as the driver programmed them, not broken (a stopped queue
   * forgets what it held: the driver must reset), with no raw posting (an index bump re-exposes
   * heads the books cannot place) and not tainted; and to a clean initialisation.
   */
  private checkHeld(): void {
    if (!this.clean || !this.driverOk) return;
    const queues = this.device.queues;
    for (const l of this.ledgers) {
      if (l === null || l.dead || l.tainted || l.rawSeen) continue;
      const q = queues[l.index];
      if (q === null || q === undefined || q.broken) continue;
      if (q instanceof PackedQueue && l.ring instanceof PackedDriverRing) {
        const c = q.queueConfig;
        if (c.descTable !== l.ring.descRing || c.availRing !== l.ring.driverEvent || c.usedRing !== l.ring.deviceEvent || q.size !== l.ring.size) continue;
        const notPopped = listsBetween(this.memory, l.ring, fromDevicePosition(q.nextAvail, q.size), l.ring.availPosition);
        if (l.outstanding !== notPopped + q.inFlight) {
          this.fail('used.head-lost', `queue ${l.index} (packed): the driver has ${l.outstanding} list(s) outstanding, the device holds ${q.inFlight} and has ${notPopped} not popped yet`);
        }
        continue;
      }
      if (!(q instanceof SplitQueue) || l.ring instanceof PackedDriverRing) continue;
      const c = q.queueConfig;
      if (c.descTable !== l.ring.descTable || c.availRing !== l.ring.availRing || c.usedRing !== l.ring.usedRing || q.size !== l.ring.size) continue;
      const notPopped = (l.ring.availIdx - q.nextAvail) & 0xffff;
      if (l.outstanding !== notPopped + q.inFlight) {
        this.fail('used.head-lost', `queue ${l.index}: the driver has ${l.outstanding} head(s) outstanding, the device holds ${q.inFlight} and has ${notPopped} not popped yet`);
      }
    }
  }

  /** The host's offloads against what the guest negotiated and what an OK ack promised. */
  private checkOffloads(): void {
    const v = this.netdev.vnet;
    if (v === null) return;
    const host = v.offloads;
    const neg = hostOffloadsOf(this.negotiated);
    const beyond = HOST_OFFLOAD_KEYS.filter((k) => host[k] === true && !neg[k]);
    // Narrowed: after a refusal the host keeps what it had; the device must then keep the guest
    // from seeing it (the rx header oracle), it cannot take it back from the host.
    if (beyond.length > 0 && this.clean && !v.lastRefused) {
      this.fail('host.offloads-not-negotiated', `the host has ${beyond.join(', ')} enabled, which the guest did not negotiate`);
    }
    if (!this.offloadsAcked) return;
    const want = hostOffloadsOf(this.guestOffloads);
    const off = HOST_OFFLOAD_KEYS.filter((k) => want[k] !== (host[k] ?? false));
    if (off.length > 0) {
      this.fail('ctrl.offloads-acked-not-applied', `GUEST_OFFLOADS_SET was acked OK but the host's ${off.join(', ')} differ(s) from it (host ${JSON.stringify(host)}, acked ${JSON.stringify(want)}${v.offloadRefusals > 0 ? '; the host refused' : ''})`);
    }
  }

  /** The guest's offloads in effect (GUEST_CSUM … as the rx header rules read them). */
  offloadsInEffect(): Offloads {
    return offloadsOf(this.guestOffloads);
  }

  /** The driver takes every used element of its live rings and matches it to its books. */
  consumeUsed(): void {
    for (const l of this.ledgers) {
      if (l === null || l.tainted) continue;
      const idx = this.memory.driver.readU16(l.ring.usedRing + 2);
      const ahead = (idx - (l.ring as unknown as { lastUsed: number }).lastUsed) & 0xffff;
      // Packed rings have no used index: a used descriptor past the ring shows as one naming an unknown ID.
      if (!(l.ring instanceof PackedDriverRing) && ahead > l.ring.size) this.fail('used.index-jump', `queue ${l.index}: used.idx moved ${ahead} entries, more than the ring size ${l.ring.size}`);
      for (const e of l.take()) {
        const p = l.complete(e);
        if (p !== null) this.fail(p.code, p.detail);
        const posting = l.lastCompleted;
        if (posting === null) continue;
        if (posting.kind === 'rx' && l.index % 2 === 0 && l.index !== this.ctrlIndex) this.received(l, e.len, posting);
        if (posting.kind === 'ctrl' && l.lastAck !== undefined && posting.command !== undefined) {
          if (l.lastAck === 0) this.ctrlAcked(posting.command);
          this.ctrlAnswered(posting.command, l.lastAck);
        }
      }
    }
    this.checkRss();
  }

  /**
   * An answered class MQ command (§5.1.6.5.6-7): RSS_CONFIG / HASH_CONFIG acked as the reference
   * validation says (ctrl.rss-ack; narrowed to a clean initialisation, where the driver knows what
   * it negotiated); the RSS model follows every OK.
   */
  private ctrlAnswered(cmd: readonly number[], ack: number): void {
    if (cmd[0] !== 4) return;
    if (cmd[1] === 0 && ack === 0 && cmd.length >= 4) return this.rss.pairsSet(cmd[2]! | (cmd[3]! << 8));
    if (cmd[1] !== 1 && cmd[1] !== 2) return;
    const want = expectedRssAck(cmd[1], cmd.slice(2), { rss: this.has('RSS'), hashReport: this.has('HASH_REPORT'), strict: this.setup.strict ?? false, maxPairs: this.setup.pairs });
    if (this.clean) this.bump(`rss ack judged ${cmd[1] === 1 ? 'RSS_CONFIG' : 'HASH_CONFIG'} ${ack === 0 ? 'OK' : 'ERR'}`);
    if (this.clean && (want.ok ? 0 : 1) !== ack) {
      this.fail('ctrl.rss-ack', `${cmd[1] === 1 ? 'RSS_CONFIG' : 'HASH_CONFIG'} [${cmd.slice(2).join(',')}] acked ${ack === 0 ? 'OK' : 'ERR'}, the validation rules say ${want.ok ? 'OK' : 'ERR'} (RSS ${this.has('RSS')}, HASH_REPORT ${this.has('HASH_REPORT')}, strict ${this.setup.strict === true}, max_virtqueue_pairs ${this.setup.pairs})`);
    }
    if (ack === 0 && want.ok) this.rss.apply(want.commit);
    else if (ack === 0) this.rss.unknown(); // acked beyond the reference (only when not clean): the model no longer knows
  }

  /**
   * The step's received frames against the RSS model (§5.1.6.4.3-4, §5.1.6.5.6, §5.1.6.5.7.3).
   * Narrowed to a clean initialisation with no raw chain on the control queue (the configuration
   * is then unknown), and to steps in which the configuration did not change (a command answered
   * in the same step may have been applied before or after a frame) and no re-entrant operation ran. The queue is judged only for frames injected under the configuration
   * in force (a frame that waited in the backlog across a change), and not in steps that began
   * with MRG_RXBUF chains held (they keep the head frame on their queue whatever steering says now).
   */
  private checkRss(): void {
    const checks = this.rxChecks;
    if (checks.length === 0) return;
    this.rxChecks = [];
    // A raw chain on the control queue (the driver's own mistakes, a stale head re-exposed) may have
    // run a command whose bytes or ack the driver cannot know: the model is then unknown.
    const ctl = this.ctrlIndex < 0 ? undefined : this.ledgers[this.ctrlIndex];
    const unknown = ctl !== undefined && ctl !== null && (ctl.rawSeen || ctl.tainted);
    if (!this.clean || this.reentered || unknown || this.rss.version !== this.rssVersionAtStep) {
      this.bump('rss frames not judged (configuration changed or unknown, or re-entry in the step)', checks.length);
      return;
    }
    const rss = this.rss;
    for (const c of checks) {
      const flow = c.info.flow;
      const h = flow === undefined ? undefined : refHash(flow, rss.types, rss.key);
      if (c.header.length >= 20) {
        const value = (c.header[12]! | (c.header[13]! << 8) | (c.header[14]! << 16) | (c.header[15]! << 24)) >>> 0;
        const report = c.header[16]! | (c.header[17]! << 8);
        const want = h ?? (rss.types === 0 ? { value: 0, report: REPORT.NONE } : undefined);
        if (want !== undefined) this.bump(report === REPORT.NONE ? 'rss hash judged (none)' : 'rss hash judged');
        if (want !== undefined && (want.value !== value || want.report !== report)) {
          this.fail('rx.hash-report', `frame ${c.info.n} on receiveq${c.k + 1}: hash_value 0x${value.toString(16)} hash_report ${report}, the reference says 0x${want.value.toString(16)} / ${want.report} (hash types 0x${rss.types.toString(16)}, key ${rss.key.length} bytes, frame ${JSON.stringify(flow ?? 'not described')})`);
        }
      }
      if (flow === undefined || h === undefined) continue;
      if (c.info.version !== rss.version || this.heldAtStep) {
        this.bump(this.heldAtStep ? 'rss queue not judged (chains held)' : 'rss queue not judged (configuration changed while it waited)');
        continue;
      }
      const want = rss.queueOf(flow, h, this.usablePairs);
      this.bump(`rss queue judged ${rss.redirect ? 'table' : 'flow'} receiveq${c.k + 1}`);
      if (c.k === want) continue;
      // Without the table, a frame whose queue is stopped (queue reset) goes to receiveq1.
      const q = this.device.queues[2 * want];
      if (!rss.redirect && c.k === 0 && (q === null || q === undefined || q.broken)) continue;
      this.fail('rx.rss-queue', `frame ${c.info.n} (${JSON.stringify(flow)}) arrived on receiveq${c.k + 1}; the reference steers it to receiveq${want + 1} (${rss.redirect ? `table [${rss.table.join(',')}], unclassified ${rss.unclassified}, hash 0x${h.value.toString(16)} report ${h.report}` : `flow hash over ${Math.min(rss.pairs, this.usablePairs)} pair(s)`})`);
    }
  }

  /** A command the device acked OK: the driver's view of the offloads follows it (§5.1.6.5.8.2). */
  private ctrlAcked(cmd: readonly number[]): void {
    if (cmd[0] !== 5 || cmd[1] !== 0 || cmd.length !== 10) return;
    let bits = 0n;
    for (let i = 0; i < 8; i++) bits |= BigInt(cmd[2 + i]!) << BigInt(8 * i);
    this.guestOffloads = bits & this.negotiated & GUEST_OFFLOAD_FEATURES;
    this.offloadsAcked = true;
  }

  /**
   * One used element of receiveq1: put merged frames together, then check header and bytes
   * (stream-checks.ts). Narrowed to a clean initialisation (else the device's header length may
   * differ from the driver's) and to a queue with no raw posting (a raw chain's buffers may alias
   * a receive buffer, so what is in it is not the device's alone) and not tainted.
   */
  private received(l: QueueLedger, len: number, p: Posting): void {
    const k = l.index >> 1;
    if (!this.clean || l.rawSeen || l.tainted) {
      this.rxAssembly[k] = null;
      return;
    }
    const a = this.rxAssembly[k] ?? null;
    if (a === null && len === 0) return; // a buffer returned unused (shorter than the header)
    const bytes = readRanges(this.memory, p.ranges, len);
    const hdrLen = this.hdrLen;
    const mergeable = this.has('MRG_RXBUF');
    if (a === null) {
      if (len < hdrLen) return this.fail('rx.frame-corrupt', `used element { id: ${p.head}, len: ${len} } is shorter than the ${hdrLen}-byte header`);
      const header = bytes.slice(0, hdrLen);
      const n = hdrLen >= 12 ? header[10]! | (header[11]! << 8) : 1;
      if (!mergeable && n !== 1) return this.fail('rx.num-buffers', `num_buffers ${n} without MRG_RXBUF (must be 1)`);
      if (n === 0) return this.fail('rx.num-buffers', 'num_buffers 0');
      this.rxAssembly[k] = { header, n, parts: [bytes.subarray(hdrLen)] };
    } else {
      if (len === 0) return this.fail('rx.num-buffers', `a zero-length used element inside a frame of num_buffers ${a.n}`);
      a.parts.push(bytes);
    }
    const cur = this.rxAssembly[k]!;
    if (cur.parts.length < cur.n) return;
    this.rxAssembly[k] = null;
    const frame = concat(cur.parts);
    const o = this.offloadsInEffect();
    const bad = checkRxHeader(cur.header, frame.length, o);
    if (bad !== null) return this.fail(bad.code, bad.detail);
    const mayComplete = (h: Uint8Array | undefined): boolean => !o.csum && h !== undefined && ((h[0] ?? 0) & 1) !== 0;
    const stream = this.rxStreams[k];
    // Frames the guest already received (on another queue) are not candidates: identical frames
    // injected twice are two frames.
    const taken = (x: Expected): boolean => this.rxTaken.has((x.info as RxInfo).n);
    const e = stream?.take(frame, mayComplete, taken) ?? null;
    if (e === null) {
      const again = stream === undefined ? null : findIn(stream, frame, mayComplete);
      if (again !== null && taken(again)) return this.fail('rx.frame-duplicated', `receiveq${k + 1}: frame ${(again.info as RxInfo).n} (${frame.length} bytes) reached the guest a second time`);
      return this.fail('rx.frame-corrupt', `receiveq${k + 1}: the guest received a ${frame.length}-byte frame that matches no frame the backend injected (in order; ${stream?.size ?? 0} waiting)`);
    }
    const info = e.info as RxInfo;
    this.rxTaken.add(info.n);
    this.rxChecks.push({ k, header: cur.header, info });
  }

  checkStats(): void {
    const s = this.call('stats', () => this.device.stats());
    if (s === undefined) return;
    const drops = dropsTotal(s);
    if (s.rx.offered !== s.rx.frames + drops + s.rx.backlog) {
      this.fail('stats.rx-unbalanced', `offered ${s.rx.offered} != delivered ${s.rx.frames} + drops ${drops} + backlog ${s.rx.backlog}`);
    }
    const n = this.netdev.stats();
    if (n.injected !== n.delivered + n.backlog + n.dropped) this.fail('stats.netdev-unbalanced', JSON.stringify(n));
    if (n.delivered !== s.rx.offered) this.fail('stats.offered-mismatch', `netdev delivered ${n.delivered}, device offered ${s.rx.offered}`);
    let queueDrops = 0;
    for (const q of s.queues) if ((q.index & 1) === 0) queueDrops += q.drops;
    if (queueDrops !== drops) this.fail('stats.rx-queue-drops', `the receive queues' drops add up to ${queueDrops}, rx.drops to ${drops} (${JSON.stringify(s.queues.filter((q) => (q.index & 1) === 0).map((q) => q.drops))})`);
    const rx = this.ledgers[0];
    if (this.oracles.rxVisible !== false && !this.has('MRG_RXBUF')) {
      for (let k = 0; k < this.usablePairs; k++) {
        const l = this.ledgers[2 * k];
        if (l === undefined || l === null || l.tainted || l.index === this.ctrlIndex) continue;
        const counted = s.queues[2 * k]!.packets - (this.rxFramesAtInit[k] ?? 0);
        if (counted !== l.usedNonEmpty) {
          this.fail('rx.counted-not-visible', `receiveq${k + 1}: device counts ${counted} frame(s) delivered since initialisation, the guest's used ring shows ${l.usedNonEmpty}`);
        }
      }
    }
    // rx-path.ts: before DRIVER_OK (and after a reset) the device takes no frame — the backend
    // holds them — so its own backlog never grows then.
    if (!this.driverOk && s.rx.backlog > this.rxBacklogBefore) {
      this.fail('rx.taken-while-stopped', `the device took ${s.rx.backlog - this.rxBacklogBefore} frame(s) into its backlog while not running (status 0x${this.device.status.toString(16)})`);
    }
    this.rxBacklogBefore = s.rx.backlog;
    // Frames wait in the backend while the running device has receive buffers and room: it
    // stalled them (it paused the backend and never resumed it). Narrowed to a clean
    // initialisation with the link up and receiveq1 running as programmed, with buffers not popped.
    const q0 = this.device.queues[0];
    if (this.clean && this.driverOk && !this.needsReset && this.device.linkUp && rx !== undefined && rx !== null && !rx.tainted && !rx.dead && q0 !== null && q0 !== undefined && !q0.broken && n.backlog > 0 && s.rx.backlog === 0) {
      const notPopped =
        q0 instanceof PackedQueue && rx.ring instanceof PackedDriverRing
          ? packedDistance(fromDevicePosition(q0.nextAvail, q0.size), rx.ring.availPosition, q0.size)
          : q0 instanceof SplitQueue && !(rx.ring instanceof PackedDriverRing)
            ? (rx.ring.availIdx - q0.nextAvail) & 0xffff
            : 0;
      if (q0.queueConfig.availRing === rx.ring.availRing && notPopped > 0) {
        this.fail('rx.backend-stalled', `the backend holds ${n.backlog} frame(s) while the device runs with ${notPopped} receive buffer(s) not popped and an empty backlog`);
      }
    }
    if (s.tx.frames !== this.transmitted || n.transmitted !== this.transmitted) {
      this.fail('stats.tx-mismatch', `device tx.frames ${s.tx.frames}, netdev transmitted ${n.transmitted}, seen ${this.transmitted}`);
    }
  }

  get needsReset(): boolean {
    return (this.device.status & STATUS_NEEDS_RESET) !== 0;
  }

  get driverOk(): boolean {
    return (this.device.status & STATUS_DRIVER_OK) !== 0;
  }
}

/** Where the used elements the device published end: used.idx (split), the used position past them (packed). */
function usedMark(r: FuzzRing): number {
  return r instanceof PackedDriverRing ? r.usedEnd() : r.usedIdx();
}

/**
 * §2.8.10: whether moving the used position from `before` to `now` called for a used buffer
 * notification, as the driver event suppression structure says: DISABLE no; ENABLE yes; DESC with
 * EVENT_IDX when the named descriptor lies in [before, now). Undefined where the spec leaves the
 * device free (DESC without EVENT_IDX, the reserved value 3, an offset beyond the ring).
 */
function packedDue(m: GuardedMemory, r: PackedDriverRing, before: number, now: number, eventIdx: boolean): boolean | undefined {
  const offWrap = m.driver.readU16(r.driverEvent);
  const flags = m.driver.readU16(r.driverEvent + 2) & 3;
  if (flags === EVENT_DISABLE) return false;
  if (flags === EVENT_ENABLE) return true;
  if (flags !== EVENT_DESC || !eventIdx || (offWrap & 0x7fff) >= r.size) return undefined;
  return packedDistance(before, offWrap, r.size) < packedDistance(before, now, r.size);
}

/**
 * Lists the driver made available from position `from` up to `to` (offset | wrap << 15): a list
 * ends at a descriptor without NEXT (§2.8.6). Only for rings with well-formed lists (no raw posting).
 */
function listsBetween(m: GuardedMemory, r: PackedDriverRing, from: number, to: number): number {
  const n = packedDistance(from, to, r.size);
  let off = from & 0x7fff;
  let lists = 0;
  for (let k = 0; k < n; k++) {
    if ((m.driver.readU16(r.descAddr(off) + 14) & 1) === 0 || k === n - 1) lists++;
    off = off + 1 === r.size ? 0 : off + 1;
  }
  return lists;
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function offloadsOf(f: bigint): Offloads {
  return {
    csum: hasFeature(f, NetFeature.GUEST_CSUM),
    tso4: hasFeature(f, NetFeature.GUEST_TSO4),
    tso6: hasFeature(f, NetFeature.GUEST_TSO6),
    ecn: hasFeature(f, NetFeature.GUEST_ECN),
    ufo: hasFeature(f, NetFeature.GUEST_UFO),
    uso: hasFeature(f, NetFeature.GUEST_USO4) || hasFeature(f, NetFeature.GUEST_USO6),
  };
}

/** The guest offloads in `f` as the host's offload flags name them. */
function hostOffloadsOf(f: bigint): HostOffloads {
  const o = offloadsOf(f);
  return { csum: o.csum, tso4: o.tso4, tso6: o.tso6, ecn: o.ecn, ufo: o.ufo, uso4: hasFeature(f, NetFeature.GUEST_USO4), uso6: hasFeature(f, NetFeature.GUEST_USO6) };
}

/** The first `len` bytes of the granted ranges, concatenated (what the device wrote there). */
function readRanges(m: GuardedMemory, ranges: readonly [number, number][], len: number): Uint8Array {
  const out = new Uint8Array(len);
  let at = 0;
  for (const [a, l] of ranges) {
    if (at >= len) break;
    const n = Math.min(l, len - at);
    m.driver.read(a, out.subarray(at, at + n));
    at += n;
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
