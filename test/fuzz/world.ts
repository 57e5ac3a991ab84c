// One fuzzed machine: a VirtioNetDevice on a MemoryNetdev, in guarded guest memory, behind a real
// transport (virtio-mmio §4.2, virtio-pci §4.1, or its legacy interface §4.1.4.10), driven by a
// model driver (DriverRing + driver-transport) that applies FuzzOps (ops.ts, done by driver-ops.ts)
// one at a time.
//
// Oracles, checked after every operation (oracle.ts has the end-of-sequence ones):
// - no exception escapes a transport access, a netdev call or a device API call;
// - every call stays within a work budget (memory operations, metered by GuardedMemory);
// - no byte outside the buffers granted to the device changes, and every byte it changes it
//   reported (guarded-memory.ts);
// - every used element matches an outstanding posting: no head completes twice (ledger.ts);
// - the interrupt callback reports level changes only;
// - the counters add up: rx offered = delivered + drops + backlog, the netdev's injected =
//   delivered + backlog + dropped, tx frames = frames the netdev saw.

import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import { VirtioPciTransport } from '../../devices/virtio/pci-transport.js';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import type { NetStats } from '../../devices/virtio-net/net-stats.js';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import { GuardedMemory } from '../support/guarded-memory.js';
import { DriverRing } from '../support/driver-ring.js';
import { driverFor, initDevice, legacyDriver, legacyRingLayout } from '../support/driver-transport.js';
import type { DriverTransport } from '../support/driver-transport.js';
import { features } from '../support/net-rig.js';
import { DROPPABLE } from './ops.js';
import type { FuzzOp, FuzzSetup } from './ops.js';
import { QueueLedger } from './ledger.js';
import { applyOp } from './driver-ops.js';
import type { PostingKind } from './ledger.js';

/** Guest memory: five queue areas of 64 KiB from 0x1000, then unused (guarded) memory. */
export const MEMORY_SIZE = 0x58000;
const QUEUE_AREA = 0x10000;
const QUEUE_BASE = 0x1000;
/** The device's QueueNumMax (legacy rings are this size). */
export const QUEUE_MAX = 32;
/** Memory operations one call may use: far above a full ring of maximal chains, far below a hang. */
export const WORK_BUDGET = 400_000;
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

export class FuzzStop extends Error {
  constructor(readonly failure: FuzzFailure) {
    super(`${failure.code} at step ${failure.step}: ${failure.detail}`);
  }
}

function dropsTotal(s: NetStats): number {
  return Object.values(s.rx.drops).reduce((a, b) => a + b, 0);
}

/** vring_need_event (§2.7.10). */
function needEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export class FuzzWorld {
  readonly memory = new GuardedMemory(MEMORY_SIZE, { budget: WORK_BUDGET });
  readonly netdev = new MemoryNetdev({ id: 'fuzz-net', backlogLimit: NETDEV_BACKLOG });
  readonly device: VirtioNetDevice;
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
  private rxFramesAtInit = 0;
  /** A failure recorded inside a callback (thrown at the next check). */
  private pending: FuzzFailure | null = null;

  constructor(
    readonly setup: FuzzSetup,
    readonly oracles: FuzzOracles = {},
  ) {
    this.device = new VirtioNetDevice({
      id: 'fuzz0',
      mac: '52:54:00:12:34:56',
      memory: this.memory.device,
      netdev: this.netdev,
      queuePairs: setup.pairs,
      queueSize: QUEUE_MAX,
      features: { disable: setup.disable },
    });
    this.netdev.on('transmit', () => this.transmitted++);
    const onInterrupt = (asserted: boolean): void => {
      if (asserted === this.irqLevel) this.record('irq.not-a-change', `onInterrupt(${asserted}) while the line was already ${asserted ? 'asserted' : 'deasserted'}`);
      this.irqLevel = asserted;
    };
    const real =
      setup.transport === 'mmio'
        ? new VirtioMmioTransport(this.device, { onInterrupt })
        : new VirtioPciTransport(this.device, { onInterrupt, legacy: setup.transport === 'pci-legacy' });
    this.transport = real;
    const guarded = this.guardTransport(real);
    this.driver = setup.transport === 'pci-legacy' ? legacyDriver(guarded as VirtioPciTransport) : driverFor(guarded);
  }

  // ---------------------------------------------------------------- calls into the device

  /** Runs a device-facing call: metered, and any exception is a failure. */
  call<T>(what: string, fn: () => T): T | undefined {
    this.memory.beginCall();
    try {
      return fn();
    } catch (e) {
      this.record('device.threw', `${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      return undefined;
    } finally {
      const work = this.memory.endCall();
      if (this.memory.overran) this.record('work.unbounded', `${what} used more than ${WORK_BUDGET} memory operations (${work})`);
    }
  }

  private record(code: string, detail: string): void {
    if (this.pending === null) this.pending = { step: this.step, code, detail };
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

  ring(q: number): DriverRing | null {
    const l = this.ledgers[q];
    return l === undefined || l === null || l.dead ? null : l.ring;
  }

  has(name: string): boolean {
    const bit = features([name as never]);
    return (this.negotiated & bit) !== 0n;
  }

  get hdrLen(): number {
    return this.has('VERSION_1') || this.has('MRG_RXBUF') ? 12 : 10;
  }

  /** The driver forgets its rings (after a reset it did or saw). */
  forget(): void {
    for (const l of this.ledgers) l?.clear();
    this.ledgers = [];
    this.programmed = [];
    this.negotiated = 0n;
  }

  queueArea(q: number): number {
    return QUEUE_BASE + q * QUEUE_AREA;
  }

  private makeRing(q: number): DriverRing {
    const base = this.queueArea(q);
    const heapEnd = base + QUEUE_AREA;
    if (this.driver.kind === 'pci-legacy') {
      const l = legacyRingLayout(base, QUEUE_MAX);
      return new DriverRing(this.memory.driver, { ...l, heapStart: base + 0x2000, heapEnd });
    }
    return new DriverRing(this.memory.driver, { size: this.setup.ringSize, base, heapStart: base + 0x2000, heapEnd });
  }

  /** Linux's initialisation with the offer minus `drop`. True when DRIVER_OK stuck. */
  init(drop: number): boolean {
    this.forget();
    let want = ALL;
    DROPPABLE.forEach((name, i) => {
      if ((drop >> i) & 1) want &= ~features([name as never]);
    });
    const offered = this.device.offered;
    const wantMq = (want & offered & features(['MQ'])) !== 0n;
    const wantCtrl = (want & offered & features(['CTRL_VQ'])) !== 0n;
    const ctrlIndex = wantMq ? this.setup.pairs * 2 : 2;
    const count = wantCtrl ? ctrlIndex + 1 : ctrlIndex;
    const rings: DriverRing[] = [];
    for (let q = 0; q < count; q++) rings.push(this.makeRing(q));
    const res = initDevice(this.driver, { features: want, queues: rings });
    this.negotiated = res.negotiated;
    this.ledgers = rings.map((r, q) => new QueueLedger(this.memory, r, q));
    this.rxFramesAtInit = this.device.stats().rx.frames;
    this.clean = res.ok;
    return res.ok;
  }

  /** Index of the control queue, or -1. */
  get ctrlIndex(): number {
    if (!this.has('CTRL_VQ')) return -1;
    return this.has('MQ') ? this.setup.pairs * 2 : 2;
  }

  /** Publishes with `add` and notifies the way Linux decides (§2.7.10), or always with `force`. */
  kick(q: number, add: () => void, force = false): void {
    const ring = this.ring(q)!;
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
    return l !== undefined && l !== null && l.outstanding + n <= l.ring.size;
  }

  post(q: number, head: number, kind: PostingKind, ackAt?: number): void {
    this.ledgers[q]!.post(head, kind, ackAt);
  }

  // ---------------------------------------------------------------- operations

  apply(op: FuzzOp): void {
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
    for (const q of this.device.queues) if (q !== null) out.push([q.queueConfig.usedRing, 6 + 8 * q.size]);
    return out;
  }

  afterStep(): void {
    if (this.pending !== null) throw new FuzzStop(this.pending);
    for (const l of this.ledgers) l?.refreshRaw();
    const extra = [...this.activeBefore, ...this.activeUsedRings(), ...this.programmed];
    for (const l of this.ledgers) if (l !== null) extra.push([l.ring.usedRing, 6 + 8 * l.ring.size]);
    const g = this.memory.check((a) => extra.some(([s, l]) => a >= s && a < s + l));
    if (g !== null) {
      this.fail(g.code, `${g.count} byte(s), first at 0x${g.address.toString(16)} (0x${g.before.toString(16)} -> 0x${g.after.toString(16)})`);
    }
    const status = this.device.status;
    const broken = (status & STATUS_NEEDS_RESET) !== 0;
    if (broken && !this.wasBroken && (status & STATUS_DRIVER_OK) !== 0 && (this.device.isr & 2) === 0) {
      // §2.1.2: entering DEVICE_NEEDS_RESET after DRIVER_OK sends a configuration change notification.
      this.fail('needs-reset.silent', 'device entered DEVICE_NEEDS_RESET without raising the configuration change interrupt');
    }
    this.wasBroken = broken;
    if (status === 0 && this.ledgers.length > 0) this.forget();
    this.consumeUsed();
    this.checkStats();
    if (this.pending !== null) throw new FuzzStop(this.pending);
  }

  /** The driver takes every used element of its live rings and matches it to its books. */
  consumeUsed(): void {
    for (const l of this.ledgers) {
      if (l === null || l.tainted) continue;
      const idx = this.memory.driver.readU16(l.ring.usedRing + 2);
      const ahead = (idx - (l.ring as unknown as { lastUsed: number }).lastUsed) & 0xffff;
      if (ahead > l.ring.size) this.fail('used.index-jump', `queue ${l.index}: used.idx moved ${ahead} entries, more than the ring size ${l.ring.size}`);
      for (const e of l.take()) {
        const p = l.complete(e);
        if (p !== null) this.fail(p.code, p.detail);
      }
    }
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
    const rx = this.ledgers[0];
    if (this.oracles.rxVisible !== false && rx !== undefined && rx !== null && !rx.tainted && !this.has('MRG_RXBUF')) {
      const counted = s.rx.frames - this.rxFramesAtInit;
      if (counted !== rx.usedNonEmpty) {
        this.fail('rx.counted-not-visible', `device counts ${counted} frame(s) delivered since initialisation, the guest's used ring shows ${rx.usedNonEmpty}`);
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
