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

import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import type { Netdev } from '../../lib/netdev/netdev.js';
import { GuestRing } from '../../lib/driver/guest-ring.js';
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
    // Not yet initialised: prepare chains first (a driver posts rx buffers before it starts).
    this.start = () => {
      const r = initDevice(this.driver, { features: ALL_FEATURES, queues: [this.rx.ring, this.tx.ring, ctrl] });
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
    const ring = this.tx.ring;
    for (let i = 0; i < chains; i++) {
      const frame = frames[i % frames.length]!;
      const whole = new Uint8Array(this.hdrLen + frame.length);
      whole.set(frame, this.hdrLen);
      const parts = descriptors === 1 ? [whole] : [whole.subarray(0, this.hdrLen), frame];
      const head = ring.addChain(parts.map((p) => ({ len: p.length, data: p })), { publish: false });
      heads.push(head);
      views.push(ring.buffers(head).map((b) => this.memory.view(b.addr, b.len)!));
    }
    this.tx.heads = Uint16Array.from(heads);
    return views;
  }

  /** Builds `count` receive chains of `bufLen` writable bytes each (1 descriptor) and offers them all. */
  prepareRx(bufLen: number, count = this.size): Uint8Array[] {
    const heads: number[] = [];
    const views: Uint8Array[] = [];
    const ring = this.rx.ring;
    for (let i = 0; i < count; i++) {
      const head = ring.addChain([{ len: bufLen, write: true }], { publish: false });
      heads.push(head);
      const b = ring.buffers(head)[0]!;
      views.push(this.memory.view(b.addr, b.len)!);
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
