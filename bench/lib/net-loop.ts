// A virtio-net device driven at full speed without a guest (VIRTIO 1.2 §2.7.13 supplying buffers,
// §2.7.14 receiving used buffers, §2.7.10 notification suppression, §5.1.6 the network datapath).
//
// The device is the real one — `VirtioNetDevice` over a `VirtioMmioTransport`, initialised with
// Linux's sequence (test/support/driver-transport.ts) — and the rings are built once with the
// driver ring, `GuestRing` (lib/driver/guest-ring.ts). The loop then plays the guest cheaply: it
// re-offers the same prebuilt chains by writing avail entries and `avail.idx` through one
// DataView, notifies only when the device asked for it (avail_event with EVENT_IDX, else
// VIRTQ_USED_F_NO_NOTIFY, as Linux's virtqueue_kick_prepare decides), re-arms `used_event` and
// acknowledges the interrupt once per batch (as Linux's NAPI poll does). None of that allocates, so what a batch costs is the
// device's work plus a few ring writes. Every batch checks the device completed every chain.
//
// With `ring: 'packed'` (§2.8) the rings are packed (PackedGuestRing lays them out, the driver
// acknowledges VIRTIO_F_RING_PACKED) and the loop re-offers the same prebuilt lists by writing their
// descriptors at the next ring positions (flags of each list's first descriptor last, §2.8.21),
// reads used descriptors back (§2.8.22), notifies as Linux's virtqueue_kick_prepare_packed decides
// (the device event suppression structure, §2.8.10) and re-arms with RING_EVENT_FLAGS_DESC at its
// next used position under EVENT_IDX (else leaves events enabled). Also allocation-free.

import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import type { Netdev } from '../../lib/netdev/netdev.js';
import { GuestRing } from '../../lib/driver/guest-ring.js';
import { EVENT_DESC, EVENT_DISABLE, PACKED_F_AVAIL, PACKED_F_USED, PackedGuestRing } from '../../lib/driver/packed-guest-ring.js';
import { driverFor, initDevice } from '../../test/support/driver-transport.js';
import type { DriverTransport } from '../../test/support/driver-transport.js';
import { ALL_FEATURES } from '../../test/support/net-rig.js';
import { TX_BURST } from '../../devices/virtio-net/tx-path.js';
import { BENCH_MAC } from './corpus.js';

/** Ring size of every queue: Linux's default for virtio-net over PCI is 256. */
export const RING_SIZE = 256;
/** Guest memory: rings and buffers for 256 chains of up to 2 KiB each per queue, with room to spare. */
const MEMORY_SIZE = 8 << 20;
const RX_BASE = 0x10000;
const TX_BASE = 0x210000;
const CTRL_BASE = 0x410000;
const QUEUE_SPAN = 0x200000;
const RX = 0;
const TX = 1;

export interface NetLoopOptions {
  eventIdx: boolean;
  mrgRxbuf: boolean;
  /** Default: a MemoryNetdev with no listeners (what an embedder's in-process backend costs). */
  netdev?: Netdev;
  ringSize?: number;
  /** Features turned on beyond the defaults (`features.enable`, e.g. RSS). */
  enable?: string[];
  /** Ring layout (default split). */
  ring?: 'split' | 'packed';
}

/** vring_need_event (§2.7.10): notify when `newIdx` passed `event` since `oldIdx`. */
function needEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

function dataView(memory: GuestMemory, address: number, length: number): DataView {
  const v = memory.view(address, length)!;
  return new DataView(v.buffer, v.byteOffset, v.byteLength);
}

/** One queue as the bench's guest drives it. */
class LoopQueue {
  readonly avail: DataView;
  readonly used: DataView;
  /** Heads of the prebuilt chains, in the order they are offered. */
  heads = new Uint16Array(0);
  availIdx = 0;
  lastUsed = 0;

  constructor(
    readonly index: number,
    readonly ring: GuestRing,
    memory: GuestMemory,
  ) {
    this.avail = dataView(memory, ring.availRing, 6 + 2 * ring.size);
    this.used = dataView(memory, ring.usedRing, 6 + 8 * ring.size);
  }

  usedIdx(): number {
    return this.used.getUint16(2, true);
  }
}

/** One packed queue as the bench's guest drives it (§2.8). */
class PackedLoopQueue {
  readonly desc: DataView;
  readonly driverEvent: DataView;
  readonly deviceEvent: DataView;
  readonly size: number;
  /** The prebuilt lists, by Buffer ID: first descriptor index into the arrays below, and count. */
  private readonly first: Uint16Array;
  private readonly count: Uint16Array;
  private descAddr = new Float64Array(0);
  private descLen = new Uint32Array(0);
  private descFlags = new Uint16Array(0);
  /** Buffer IDs of the prebuilt lists, in the order they are offered. */
  ids = new Uint16Array(0);
  /** IDs read back from used descriptors (rxRecycle re-offers them). */
  readonly usedIds: Uint16Array;
  availOff = 0;
  availWrap = 1;
  usedOff = 0;
  usedWrap = 1;

  constructor(
    readonly index: number,
    readonly ring: PackedGuestRing,
    memory: GuestMemory,
  ) {
    this.size = ring.size;
    this.desc = dataView(memory, ring.descRing, 16 * ring.size);
    this.driverEvent = dataView(memory, ring.driverEvent, 4);
    this.deviceEvent = dataView(memory, ring.deviceEvent, 4);
    this.first = new Uint16Array(0x10000);
    this.count = new Uint16Array(0x10000);
    this.usedIds = new Uint16Array(ring.size);
  }

  /** Records the lists `ids` as the ring made them (their buffers), to be re-offered as they are. */
  record(ids: readonly number[]): void {
    const total = ids.reduce((n, id) => n + this.ring.buffers(id).length, 0);
    this.descAddr = new Float64Array(total);
    this.descLen = new Uint32Array(total);
    this.descFlags = new Uint16Array(total);
    let k = 0;
    for (const id of ids) {
      const bufs = this.ring.buffers(id);
      this.first[id] = k;
      this.count[id] = bufs.length;
      bufs.forEach((b, i) => {
        this.descAddr[k] = b.addr;
        this.descLen[k] = b.len;
        this.descFlags[k] = (b.write ? 2 : 0) | (i < bufs.length - 1 ? 1 : 0);
        k++;
      });
    }
    this.ids = Uint16Array.from(ids);
  }

  /** The next available position: offset | wrap << 15. */
  get availPosition(): number {
    return this.availOff | (this.availWrap << 15);
  }

  /** Makes list `id` available at the next positions (its first descriptor's flags last). */
  offer(id: number): void {
    const d = this.desc;
    const k0 = this.first[id]!;
    const n = this.count[id]!;
    let headAt = -1;
    let headFlags = 0;
    for (let k = 0; k < n; k++) {
      const o = this.availOff * 16;
      const a = this.descAddr[k0 + k]!;
      d.setUint32(o, a >>> 0, true);
      d.setUint32(o + 4, Math.floor(a / 0x1_0000_0000), true);
      d.setUint32(o + 8, this.descLen[k0 + k]!, true);
      d.setUint16(o + 12, id, true);
      const f = this.descFlags[k0 + k]! | (this.availWrap === 1 ? PACKED_F_AVAIL : PACKED_F_USED);
      if (k === 0) {
        headAt = o;
        headFlags = f;
      } else d.setUint16(o + 14, f, true);
      if (++this.availOff === this.size) {
        this.availOff = 0;
        this.availWrap ^= 1;
      }
    }
    d.setUint16(headAt + 14, headFlags, true);
  }

  /** Takes the used descriptors the device marked used; their IDs into `usedIds`. Returns how many. */
  takeUsed(): number {
    const d = this.desc;
    let n = 0;
    for (;;) {
      const o = this.usedOff * 16;
      const flags = d.getUint16(o + 14, true);
      const w = this.usedWrap;
      if (((flags & PACKED_F_AVAIL) !== 0 ? 1 : 0) !== w || ((flags & PACKED_F_USED) !== 0 ? 1 : 0) !== w) break;
      const id = d.getUint16(o + 12, true);
      this.usedIds[n++] = id;
      this.usedOff += this.count[id]!;
      if (this.usedOff >= this.size) {
        this.usedOff -= this.size;
        this.usedWrap ^= 1;
      }
    }
    return n;
  }

  /** Re-arms used buffer notifications: at the next used position (EVENT_IDX), else enabled. */
  rearm(eventIdx: boolean): void {
    if (!eventIdx) return; // RING_EVENT_FLAGS_ENABLE (0) stays
    this.driverEvent.setUint16(0, this.usedOff | (this.usedWrap << 15), true);
    this.driverEvent.setUint16(2, EVENT_DESC, true);
  }

  /** virtqueue_kick_prepare_packed: notify unless disabled, or (DESC, EVENT_IDX) unless the event position was not passed. */
  needsNotify(before: number, eventIdx: boolean): boolean {
    const flags = this.deviceEvent.getUint16(2, true) & 3;
    if (flags === EVENT_DISABLE) return false;
    if (flags !== EVENT_DESC || !eventIdx) return true;
    const size = this.size;
    const lin = (p: number): number => ((p >> 15) & 1) * size + (p & 0x7fff);
    const period = 2 * size;
    const old = lin(before);
    const dist = (to: number): number => (to - old + period) % period;
    return dist(lin(this.deviceEvent.getUint16(0, true))) < dist(lin(this.availPosition));
  }
}

export class NetLoop {
  readonly memory = new GuestMemory(MEMORY_SIZE);
  readonly netdev: Netdev;
  readonly device: VirtioNetDevice;
  readonly transport: VirtioMmioTransport;
  readonly driver: DriverTransport;
  readonly size: number;
  readonly eventIdx: boolean;
  readonly hdrLen = 12; // VERSION_1 is always negotiated here (§5.1.6.1)
  readonly rx: LoopQueue;
  readonly tx: LoopQueue;
  /** Packed rings (`ring: 'packed'`): these drive the queues instead of `rx` / `tx`. */
  readonly prx: PackedLoopQueue | null = null;
  readonly ptx: PackedLoopQueue | null = null;
  /** Interrupts the device raised (level went up). */
  interrupts = 0;
  /** Called when the interrupt line goes up (a guest's interrupt handler; runs inside the device). */
  onInterrupt: (() => void) | null = null;
  private irq = false;
  private readonly mask: number;

  constructor(options: NetLoopOptions) {
    this.size = options.ringSize ?? RING_SIZE;
    this.mask = this.size - 1;
    this.eventIdx = options.eventIdx;
    this.netdev = options.netdev ?? new MemoryNetdev({ id: 'bench0' });
    const disable: string[] = [];
    if (!options.eventIdx) disable.push('EVENT_IDX');
    if (!options.mrgRxbuf) disable.push('MRG_RXBUF');
    this.device = new VirtioNetDevice({ id: 'nic0', mac: BENCH_MAC, memory: this.memory, netdev: this.netdev, queueSize: this.size, features: { disable, enable: options.enable ?? [] } });
    this.transport = new VirtioMmioTransport(this.device, {
      onInterrupt: (asserted) => {
        const rising = asserted && !this.irq;
        this.irq = asserted;
        if (rising) {
          this.interrupts++;
          if (this.onInterrupt !== null) this.onInterrupt();
        }
      },
    });
    this.driver = driverFor(this.transport);
    const ring = (base: number) => new GuestRing(this.memory, { size: this.size, base, heapEnd: base + QUEUE_SPAN });
    this.rx = new LoopQueue(RX, ring(RX_BASE), this.memory);
    this.tx = new LoopQueue(TX, ring(TX_BASE), this.memory);
    const ctrl = ring(CTRL_BASE);
    this.ctrl = ctrl;
    let queues: (GuestRing | PackedGuestRing)[] = [this.rx.ring, this.tx.ring, ctrl];
    if (options.ring === 'packed') {
      // The split rings above are never programmed; packed ones take their place (memory zeroed by reset()).
      const packed = (base: number) => new PackedGuestRing(this.memory, { size: this.size, base, heapEnd: base + QUEUE_SPAN });
      this.prx = new PackedLoopQueue(RX, packed(RX_BASE), this.memory);
      this.ptx = new PackedLoopQueue(TX, packed(TX_BASE), this.memory);
      queues = [this.prx.ring, this.ptx.ring, packed(CTRL_BASE)];
    }
    // Not yet initialised: prepare chains first (a driver posts rx buffers before it starts).
    this.start = () => {
      const r = initDevice(this.driver, { features: ALL_FEATURES, queues });
      if (!r.ok) throw new Error(`NetLoop: device initialisation failed (status 0x${r.status.toString(16)})`);
    };
  }

  /** Runs Linux's initialisation (reset … DRIVER_OK). Rings already hold what was prepared. */
  readonly start: () => void;
  private readonly ctrl: GuestRing;

  /**
   * Sends one control command (class, command, data; queue 2: one pair, no MQ) after `start`, as
   * Linux does: readable class + command + data, a writable ack byte. Returns the ack.
   */
  command(ctrlClass: number, command: number, data: readonly number[]): number {
    if (this.prx !== null) throw new Error('NetLoop.command: the control queue is driven over split rings only');
    const head = this.ctrl.addChain([
      { len: 2 + data.length, data: Uint8Array.from([ctrlClass, command, ...data]) },
      { len: 1, write: true },
    ]);
    this.driver.notify(2);
    const ack = this.ctrl.buffers(head)[1]!;
    return this.memory.view(ack.addr, 1)![0]!;
  }

  /**
   * Builds one transmit chain per ring slot (fewer with 2 descriptors each), cycling through
   * `frames`: header (zeros) and frame in one descriptor, or header and frame apart (2). Returns,
   * per chain, the guest-memory views of its buffers (what a baseline copies).
   */
  prepareTx(frames: readonly Uint8Array[], descriptors: 1 | 2): Uint8Array[][] {
    // Below TX_BURST: a notification that hands the device a full burst leaves the rest (and the
    // re-enabling of notifications) to a later event-loop turn, which this synchronous loop never
    // gives it. One chain short of the burst, each batch ends with the device seeing an empty ring.
    const chains = Math.min(descriptors === 1 ? this.size : this.size / 2, TX_BURST - 1);
    const heads: number[] = [];
    const views: Uint8Array[][] = [];
    const ring = this.ptx !== null ? this.ptx.ring : this.tx.ring;
    for (let i = 0; i < chains; i++) {
      const frame = frames[i % frames.length]!;
      const whole = new Uint8Array(this.hdrLen + frame.length);
      whole.set(frame, this.hdrLen);
      const parts = descriptors === 1 ? [whole] : [whole.subarray(0, this.hdrLen), frame];
      const head = ring.addChain(parts.map((p) => ({ len: p.length, data: p })), { publish: false });
      heads.push(head);
      views.push(ring.buffers(head).map((b) => this.memory.view(b.addr, b.len)!));
    }
    if (this.ptx !== null) this.ptx.record(heads);
    else this.tx.heads = Uint16Array.from(heads);
    return views;
  }

  /** Builds `count` receive chains of `bufLen` writable bytes each (1 descriptor) and offers them all. */
  prepareRx(bufLen: number, count = this.size): Uint8Array[] {
    const heads: number[] = [];
    const views: Uint8Array[] = [];
    const ring = this.prx !== null ? this.prx.ring : this.rx.ring;
    for (let i = 0; i < count; i++) {
      const head = ring.addChain([{ len: bufLen, write: true }], { publish: false });
      heads.push(head);
      const b = ring.buffers(head)[0]!;
      views.push(this.memory.view(b.addr, b.len)!);
    }
    if (this.prx !== null) {
      this.prx.record(heads);
      for (const id of heads) this.prx.offer(id);
      this.prx.rearm(this.eventIdx);
      return views;
    }
    this.rx.heads = Uint16Array.from(heads);
    // Offer every buffer (the device has not started: no notification needed).
    const q = this.rx;
    for (let i = 0; i < count; i++) q.avail.setUint16(4 + 2 * (i & this.mask), heads[i]!, true);
    q.availIdx = count & 0xffff;
    q.avail.setUint16(2, q.availIdx, true);
    return views;
  }

  /**
   * One transmit batch: offers every prebuilt chain, notifies if asked, reclaims. Returns the
   * frames the device completed (always the whole batch, or it throws: the bench is broken).
   */
  txBatch(): number {
    const p = this.ptx;
    if (p !== null) {
      const ids = p.ids;
      const before = p.availPosition;
      for (let i = 0; i < ids.length; i++) p.offer(ids[i]!);
      if (p.needsNotify(before, this.eventIdx)) this.driver.notify(p.index);
      const done = p.takeUsed();
      if (done !== ids.length) throw new Error(`NetLoop: the device completed ${done} of ${ids.length} transmit lists (backend busy, or a broken ring)`);
      p.rearm(this.eventIdx);
      if (this.irq) this.driver.readIsr();
      return done;
    }
    const q = this.tx;
    const heads = q.heads;
    const n = heads.length;
    const old = q.availIdx;
    for (let i = 0; i < n; i++) q.avail.setUint16(4 + 2 * ((old + i) & this.mask), heads[i]!, true);
    const now = (old + n) & 0xffff;
    q.availIdx = now;
    q.avail.setUint16(2, now, true);
    this.kick(q, old, now);
    const done = (q.usedIdx() - q.lastUsed) & 0xffff;
    if (done !== n) throw new Error(`NetLoop: the device completed ${done} of ${n} transmit chains (backend busy, or a broken ring)`);
    this.reclaim(q);
    return n;
  }

  /**
   * Receive side of the guest: gives back every buffer the device used (the same heads, in the
   * order the used ring names them), re-arms the interrupt and notifies if the device asked.
   * Returns the buffers reclaimed (= frames received without MRG_RXBUF spanning).
   */
  rxRecycle(): number {
    const p = this.prx;
    if (p !== null) {
      const n = p.takeUsed();
      if (n === 0) return 0;
      const before = p.availPosition;
      for (let i = 0; i < n; i++) p.offer(p.usedIds[i]!);
      p.rearm(this.eventIdx);
      if (this.irq) this.driver.readIsr();
      if (p.needsNotify(before, this.eventIdx)) this.driver.notify(p.index);
      return n;
    }
    const q = this.rx;
    const end = q.usedIdx();
    const old = q.availIdx;
    let at = old;
    for (let i = q.lastUsed; i !== end; i = (i + 1) & 0xffff) {
      const head = q.used.getUint32(4 + 8 * (i & this.mask), true);
      q.avail.setUint16(4 + 2 * (at & this.mask), head, true);
      at = (at + 1) & 0xffff;
    }
    const n = (at - old) & 0xffff;
    if (n === 0) return 0;
    q.availIdx = at;
    q.avail.setUint16(2, at, true);
    this.reclaim(q);
    this.kick(q, old, at);
    return n;
  }

  /** Marks the used ring consumed, re-arms used_event (EVENT_IDX) and acknowledges the interrupt. */
  private reclaim(q: LoopQueue): void {
    q.lastUsed = q.usedIdx();
    if (this.eventIdx) q.avail.setUint16(4 + 2 * this.size, q.lastUsed, true);
    if (this.irq) this.driver.readIsr();
  }

  private kick(q: LoopQueue, old: number, now: number): void {
    const need = this.eventIdx ? needEvent(q.used.getUint16(4 + 8 * this.size, true), now, old) : (q.used.getUint16(0, true) & 1) === 0;
    if (need) this.driver.notify(q.index);
  }
}
