// A small virtio-net guest driver over the virtio-mmio transport (VIRTIO 1.2 §3.1.1 initialisation,
// §4.2.3 MMIO driver requirements, §5.1.5 / §5.1.6 device operation), written the way Linux's
// virtio_net + virtio_mmio behave: negotiate, set up receiveq1 / transmitq1 / controlq, keep the
// receive queue full, send control commands and busy-wait for the ack (here: the device answers
// synchronously on the notify), transmit frames, and service interrupts.
//
// The scripted guest of `virtio-net run` uses it. Register numbers are this driver's own copy of
// §4.2.2, independent of devices/virtio. Its rings are `GuestRing`s with one fixed buffer per
// descriptor and the legacy layout (used ring on a 4096 boundary, §2.7.2).

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { GuestRing } from './guest-ring.js';

const R = {
  magic: 0x000,
  version: 0x004,
  deviceId: 0x008,
  deviceFeatures: 0x010,
  deviceFeaturesSel: 0x014,
  driverFeatures: 0x020,
  driverFeaturesSel: 0x024,
  queueSel: 0x030,
  queueNumMax: 0x034,
  queueNum: 0x038,
  queueReady: 0x044,
  queueNotify: 0x050,
  interruptStatus: 0x060,
  interruptAck: 0x064,
  status: 0x070,
  queueDescLow: 0x080,
  queueDescHigh: 0x084,
  queueDriverLow: 0x090,
  queueDriverHigh: 0x094,
  queueDeviceLow: 0x0a0,
  queueDeviceHigh: 0x0a4,
  config: 0x100,
} as const;

const S_ACKNOWLEDGE = 1;
const S_DRIVER = 2;
const S_DRIVER_OK = 4;
const S_FEATURES_OK = 8;
const S_FAILED = 0x80;
const ISR_USED = 1;
const ISR_CONFIG = 2;
const F_MRG_RXBUF = 15;
const F_RING_EVENT_IDX = 29;
/** Rounds of collect / re-arm per interrupt: the device may publish more while the driver refills. */
const SERVICE_ROUNDS = 8;
const F_VERSION_1 = 32;

/** What the driver needs from a register block (VirtioMmioTransport fits). */
export interface MmioRegisters {
  read(offset: number, width: 1 | 2 | 4): number;
  write(offset: number, width: 1 | 2 | 4, value: number): void;
}

export interface GuestNetDriverOptions {
  /** Where the driver may put rings and buffers: [base, base + 4 MiB). */
  base?: number;
  rxQueueSize?: number;
  txQueueSize?: number;
  /** Receive buffer size (default 2048: a full frame plus header without MRG_RXBUF is 1526). */
  rxBufferSize?: number;
}

export interface ReceivedFrame {
  frame: Uint8Array;
  /** The virtio-net header the device wrote. */
  header: Uint8Array;
}

export class GuestNetDriver {
  readonly rx: GuestRing;
  readonly tx: GuestRing;
  readonly ctrl: GuestRing;
  /** Size of each receive buffer. */
  readonly rxBufferSize: number;
  negotiated = 0n;
  private hdrLen = 12;
  private ctrlIndex = 2;
  /** Frames received since the last `takeReceived()`. */
  private readonly inbox: ReceivedFrame[] = [];
  configChanges = 0;

  constructor(
    private readonly regs: MmioRegisters,
    private readonly memory: GuestMemoryAccess,
    options: GuestNetDriverOptions = {},
  ) {
    const base = options.base ?? 0x10_0000;
    const rxSize = options.rxQueueSize ?? 256;
    const txSize = options.txQueueSize ?? 256;
    const rxBuf = options.rxBufferSize ?? 2048;
    this.rxBufferSize = rxBuf;
    let at = base;
    const place = (size: number, bufferSize: number): GuestRing => {
      if (!Number.isInteger(size) || size < 1 || size > 32768 || (size & (size - 1)) !== 0) {
        throw new RangeError(`GuestNetDriver: queue size must be a power of two in 1..32768, got ${size}`);
      }
      const layout = GuestRing.layout({ size, base: at, usedAlign: 4096 });
      const slots = { base: align(layout.end, 4096), bufferSize };
      at = slots.base + align(size * bufferSize, 4096);
      return new GuestRing(memory, { size, ...layout, slots, heapStart: at, heapEnd: at });
    };
    this.rx = place(rxSize, rxBuf);
    this.tx = place(txSize, 2048);
    this.ctrl = place(16, 1024);
    if (this.r(R.magic) !== 0x74726976 || this.r(R.version) !== 2) throw new Error('GuestNetDriver: not a virtio-mmio version 2 device');
    if (this.r(R.deviceId) !== 1) throw new Error(`GuestNetDriver: device id ${this.r(R.deviceId)} is not a network card`);
  }

  /** §3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK; fills the receive queue. */
  init(wanted: bigint): { ok: boolean; negotiated: bigint } {
    this.w(R.status, 0);
    this.w(R.status, S_ACKNOWLEDGE);
    this.w(R.status, S_ACKNOWLEDGE | S_DRIVER);
    this.w(R.deviceFeaturesSel, 1);
    let offered = BigInt(this.r(R.deviceFeatures)) << 32n;
    this.w(R.deviceFeaturesSel, 0);
    offered |= BigInt(this.r(R.deviceFeatures));
    const f = offered & wanted;
    this.w(R.driverFeaturesSel, 1);
    this.w(R.driverFeatures, Number(f >> 32n) >>> 0);
    this.w(R.driverFeaturesSel, 0);
    this.w(R.driverFeatures, Number(f & 0xffff_ffffn) >>> 0);
    this.w(R.status, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if ((this.r(R.status) & S_FEATURES_OK) === 0) {
      this.w(R.status, S_ACKNOWLEDGE | S_DRIVER | S_FAILED);
      return { ok: false, negotiated: f };
    }
    this.negotiated = f;
    this.hdrLen = bit(f, F_VERSION_1) || bit(f, F_MRG_RXBUF) ? 12 : 10;
    this.ctrlIndex = 2;
    this.rx.reset();
    this.tx.reset();
    this.ctrl.reset();
    this.setupQueue(0, this.rx);
    this.setupQueue(1, this.tx);
    this.setupQueue(this.ctrlIndex, this.ctrl);
    this.w(R.status, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    this.refillRx();
    return { ok: (this.r(R.status) & S_DRIVER_OK) !== 0, negotiated: f };
  }

  has(featureBit: number): boolean {
    return bit(this.negotiated, featureBit);
  }

  /** Device status register. */
  get status(): number {
    return this.r(R.status);
  }

  /** Config `mac` (read byte by byte, as Linux does). */
  readMac(): string {
    const b: string[] = [];
    for (let i = 0; i < 6; i++) b.push(this.regs.read(R.config + i, 1).toString(16).padStart(2, '0'));
    return b.join(':');
  }

  /** Config `status` (LINK_UP = 1, ANNOUNCE = 2). */
  readNetStatus(): number {
    return this.regs.read(R.config + 6, 2);
  }

  /** One control command; returns the ack byte (0 OK, 1 ERR), or -1 when no answer came. */
  command(ctrlClass: number, command: number, ...payload: Uint8Array[]): number {
    const head = add(this.ctrl, [Uint8Array.of(ctrlClass, command), ...payload], [1]);
    if (head < 0) return -1;
    this.w(R.queueNotify, this.ctrlIndex);
    let ack = -1;
    this.ctrl.collect((e, buffers) => {
      if (e.id === head) ack = this.memory.readU8(buffers[buffers.length - 1]!.addr);
    });
    return ack;
  }

  /** Queues one frame (header zeroed) and notifies. False when the transmit ring is full. */
  transmit(frame: Uint8Array): boolean {
    this.tx.collect(() => undefined);
    const head = add(this.tx, [new Uint8Array(this.hdrLen), frame], []);
    if (head < 0) return false;
    this.w(R.queueNotify, 1);
    return true;
  }

  /** The interrupt handler: reads and acknowledges the ISR, collects receives, refills. */
  service(): void {
    const isr = this.r(R.interruptStatus);
    if (isr !== 0) this.w(R.interruptAck, isr);
    if ((isr & ISR_CONFIG) !== 0) this.configChanges++;
    for (let round = 0; round < SERVICE_ROUNDS; round++) {
      this.tx.collect(() => undefined);
      const got = this.rx.collect((e, buffers) => {
        const len = Math.min(e.len, this.rxBufferSize);
        const bytes = new Uint8Array(len);
        this.memory.read(buffers[0]!.addr, bytes);
        this.inbox.push({ header: bytes.slice(0, this.hdrLen), frame: bytes.slice(this.hdrLen) });
      });
      if (got > 0) this.refillRx();
      if (!this.has(F_RING_EVENT_IDX)) return;
      // With EVENT_IDX the device interrupts only when used.idx passes used_event (§2.7.10): ask
      // for the next one, as Linux's virtqueue_enable_cb does, and look again for what the device
      // published meanwhile (the refill above can make it deliver held frames at once).
      this.rx.setUsedEvent(this.rx.usedIdx());
      this.tx.setUsedEvent(this.tx.usedIdx());
      if (this.rx.usedEntries().length === 0 && this.tx.usedEntries().length === 0) return;
    }
  }

  /** Frames received since the last call. */
  takeReceived(): ReceivedFrame[] {
    return this.inbox.splice(0, this.inbox.length);
  }

  private refillRx(): void {
    let added = 0;
    while (this.rx.freeDescriptors > 0) {
      if (add(this.rx, [], [this.rxBufferSize], false) < 0) break;
      added++;
    }
    if (added > 0) {
      this.rx.publish();
      this.w(R.queueNotify, 0);
    }
  }

  private setupQueue(index: number, ring: GuestRing): void {
    this.w(R.queueSel, index);
    const max = this.r(R.queueNumMax);
    if (max < ring.size) throw new Error(`GuestNetDriver: queue ${index} holds at most ${max}, the driver wants ${ring.size}`);
    this.w(R.queueNum, ring.size);
    this.w(R.queueDescLow, ring.descTable);
    this.w(R.queueDescHigh, 0);
    this.w(R.queueDriverLow, ring.availRing);
    this.w(R.queueDriverHigh, 0);
    this.w(R.queueDeviceLow, ring.usedRing);
    this.w(R.queueDeviceHigh, 0);
    this.w(R.queueReady, 1);
  }

  private r(off: number): number {
    return this.regs.read(off, 4);
  }
  private w(off: number, v: number): void {
    this.regs.write(off, 4, v >>> 0);
  }
}

/**
 * Adds one chain to `ring`: a readable descriptor per `readable` entry (its bytes copied into the
 * descriptor's buffer), then a writable descriptor per `writable` length. Returns the head, or -1
 * when there are not enough free descriptors. Publishes avail.idx unless `publish` is false.
 */
function add(ring: GuestRing, readable: readonly Uint8Array[], writable: readonly number[], publish = true): number {
  const n = readable.length + writable.length;
  if (n === 0 || n > ring.freeDescriptors) return -1;
  const buffers = [...readable.map((data) => ({ len: data.length, data })), ...writable.map((len) => ({ len, write: true }))];
  return ring.addChain(buffers, { publish });
}

function bit(f: bigint, n: number): boolean {
  return ((f >> BigInt(n)) & 1n) === 1n;
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Interrupt bits, for callers that look at ISR themselves. */
export const GUEST_ISR = { USED: ISR_USED, CONFIG: ISR_CONFIG } as const;
