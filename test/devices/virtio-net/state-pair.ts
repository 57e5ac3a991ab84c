// Two machines for the device-state tests (API.md "Device state"): device A runs from the start;
// at `restore()` its state goes into device B — a fresh device with the same options, over a copy of
// A's guest memory, behind a transport of the same kind — and from then on every driver action
// reaches both: the model driver's memory writes go to both memories (reads come from A's), its
// register accesses to both transports, host frames to both backends. `check()` then says whether
// the two behave identically: same guest memory (so the same used-ring writes and frame bytes),
// same frames sent, interrupt lines, rx-filter-changed events, status, ISR, config generation,
// stats, and the same state image.
//
// The backends are `HostSide`, a MemoryNetdev-like netdev whose held frames can be copied: the
// backend is the machines' environment, not device state, and it is cloned at the split so both
// devices face the same one.

import { expect } from 'chai';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import type { GuestMemoryAccess } from '../../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../../devices/virtio/mmio-transport.js';
import { VirtioPciTransport } from '../../../devices/virtio/pci-transport.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { NetFeature } from '../../../devices/virtio-net/constants.js';
import type { Netdev, NetdevPeer, SendResult } from '../../../lib/netdev/netdev.js';
import { DriverRing } from '../../support/driver-ring.js';
import { PackedDriverRing } from '../../support/packed-driver-ring.js';
import type { BufferSpec } from '../../support/driver-ring.js';
import { driverFor, initDevice, legacyDriver, legacyRingLayout } from '../../support/driver-transport.js';
import type { DriverTransport } from '../../support/driver-transport.js';
import { features } from '../../support/net-rig.js';

export const PAIR_MEMORY = 0x100000;
const QUEUE_BASE = 0x1000;
const QUEUE_AREA = 0x20000;
/** The device's maximum queue size (legacy rings are this size). */
export const PAIR_QUEUE_MAX = 32;

/** A host backend with MemoryNetdev's rules (a refused frame is held and the backend pauses) whose held frames can be copied. */
export class HostSide implements Netdev {
  readonly id = 'host0';
  peer: NetdevPeer | null = null;
  held: Uint8Array[] = [];
  paused = false;
  readonly sent: Uint8Array[] = [];
  private draining = false;

  attach(peer: NetdevPeer): void {
    this.peer = peer;
  }
  detach(): void {
    this.peer = null;
  }
  send(frame: Uint8Array): SendResult {
    this.sent.push(frame.slice());
    return 'sent';
  }
  pauseReceive(): void {
    this.paused = true;
  }
  resumeReceive(): void {
    this.paused = false;
    this.drain();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  inject(frame: Uint8Array): void {
    if (this.peer !== null && !this.paused && !this.draining && this.held.length === 0) {
      if (this.peer.receive(frame)) return;
      this.paused = true;
    }
    this.held.push(frame.slice());
  }
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.held.length > 0 && !this.paused && this.peer !== null) {
        if (!this.peer.receive(this.held[0]!)) {
          this.paused = true;
          break;
        }
        this.held.shift();
      }
    } finally {
      this.draining = false;
    }
  }
  copyFrom(o: HostSide): void {
    this.held = o.held.map((f) => f.slice());
    this.paused = o.paused;
  }
}

/** Driver-side memory: reads from A, writes to A and (after the split) B. */
class TeeMemory implements GuestMemoryAccess {
  split = false;
  constructor(
    private readonly a: GuestMemory,
    private readonly b: GuestMemory,
  ) {}
  get generation(): number {
    return this.a.generation;
  }
  readU8(x: number): number {
    return this.a.readU8(x);
  }
  readU16(x: number): number {
    return this.a.readU16(x);
  }
  readU32(x: number): number {
    return this.a.readU32(x);
  }
  readU64(x: number): bigint {
    return this.a.readU64(x);
  }
  read(x: number, d: Uint8Array): void {
    this.a.read(x, d);
  }
  view(x: number, l: number): Uint8Array | undefined {
    return this.split ? undefined : this.a.view(x, l);
  }
  contains(x: number, l: number): boolean {
    return this.a.contains(x, l);
  }
  wrote(): void {}
  writeU8(x: number, v: number): void {
    this.a.writeU8(x, v);
    if (this.split) this.b.writeU8(x, v);
  }
  writeU16(x: number, v: number): void {
    this.a.writeU16(x, v);
    if (this.split) this.b.writeU16(x, v);
  }
  writeU32(x: number, v: number): void {
    this.a.writeU32(x, v);
    if (this.split) this.b.writeU32(x, v);
  }
  writeU64(x: number, v: bigint): void {
    this.a.writeU64(x, v);
    if (this.split) this.b.writeU64(x, v);
  }
  write(x: number, s: Uint8Array): void {
    this.a.write(x, s);
    if (this.split) this.b.write(x, s);
  }
}

export interface PairSetup {
  /** 'pci-legacy': transitional device, legacy driver; 'pci-legacy-only': the device without its modern interface. */
  transport: 'mmio' | 'pci' | 'pci-legacy' | 'pci-legacy-only';
  pairs: 1 | 2;
  disable: string[];
  ringSize: 8 | 16 | 32;
  /** The driver's ring format (default split; packed is not on the legacy interface). */
  ring?: 'split' | 'packed';
}

/** A driver ring of either format. */
export type PairRing = DriverRing | PackedDriverRing;

interface Machine {
  memory: GuestMemory;
  host: HostSide;
  device: VirtioNetDevice;
  transport: VirtioMmioTransport | VirtioPciTransport;
  driver: DriverTransport;
  irq: boolean;
  /** 'rx-filter-changed' events since the split. */
  changes: number;
}

export class StatePair {
  readonly a: Machine;
  readonly b: Machine;
  readonly mem: TeeMemory;
  readonly driver: DriverTransport;
  split = false;
  rings: PairRing[] = [];
  negotiated = 0n;
  /** Frames B sent when it announced itself (the gratuitous ARP), kept out of the comparison. */
  readonly announceFrames: Uint8Array[] = [];
  /** How B announced itself at the restore. */
  announcedBy: 'status' | 'arp' | 'none' | null = null;
  private framesSent = 0;

  constructor(readonly setup: PairSetup) {
    this.a = this.machine();
    this.b = this.machine();
    this.mem = new TeeMemory(this.a.memory, this.b.memory);
    this.driver = this.tee();
  }

  private machine(): Machine {
    const memory = new GuestMemory(PAIR_MEMORY);
    const host = new HostSide();
    const device = new VirtioNetDevice({
      id: 'net0',
      mac: '52:54:00:12:34:56',
      memory,
      netdev: host,
      queuePairs: this.setup.pairs,
      queueSize: PAIR_QUEUE_MAX,
      features: { disable: this.setup.disable },
    });
    const m = { memory, host, device, irq: false, changes: 0 } as Machine;
    device.on('rx-filter-changed', () => void m.changes++);
    const onInterrupt = (asserted: boolean): void => {
      m.irq = asserted;
    };
    const t = this.setup.transport;
    const legacy = t === 'pci-legacy' || t === 'pci-legacy-only';
    m.transport = t === 'mmio' ? new VirtioMmioTransport(device, { onInterrupt }) : new VirtioPciTransport(device, { onInterrupt, legacy, modern: t !== 'pci-legacy-only' });
    m.driver = legacy ? legacyDriver(m.transport as VirtioPciTransport) : driverFor(m.transport);
    return m;
  }

  /** Every driver register access goes to A, and after the split to B too (results must agree). */
  private tee(): DriverTransport {
    const pair = this;
    return new Proxy(this.a.driver, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          const ra = (v as (...a: unknown[]) => unknown).apply(target, args);
          if (pair.split) {
            const fb = Reflect.get(pair.b.driver, key) as (...a: unknown[]) => unknown;
            const rb = fb.apply(pair.b.driver, args);
            expect(rb, `driver ${String(key)}(${args.map(String).join(', ')}) read differently on the restored device`).to.deep.equal(ra);
          }
          return ra;
        };
      },
    });
  }

  get devices(): VirtioNetDevice[] {
    return this.split ? [this.a.device, this.b.device] : [this.a.device];
  }

  has(name: string): boolean {
    return (this.negotiated & features([name as never])) !== 0n;
  }

  get ctrlIndex(): number {
    if (!this.has('CTRL_VQ')) return -1;
    return this.has('MQ') ? this.setup.pairs * 2 : 2;
  }

  // ---------------------------------------------------------------- the split

  /** A's state into B over a copy of A's memory and backend; from now on both are driven. */
  restore(): void {
    const a = this.a;
    const b = this.b;
    const image = a.device.saveState();
    b.memory.write(0, a.memory.bytes(0, PAIR_MEMORY));
    b.host.copyFrom(a.host);
    const sentBefore = b.host.sent.length;
    b.device.restoreState(image);
    this.split = true;
    this.mem.split = true;
    // B announced itself: the guest-side way when the driver runs with GUEST_ANNOUNCE (mirror it on
    // A so the two stay comparable), else a gratuitous ARP (kept apart).
    const d = b.device;
    const guestSide = d.running && d.hasFeature(NetFeature.GUEST_ANNOUNCE) && d.hasFeature(NetFeature.CTRL_VQ);
    if (guestSide) {
      expect(a.device.announce()).to.equal(true);
      this.announcedBy = 'status';
    } else {
      const sent = b.host.sent.splice(sentBefore);
      this.announceFrames.push(...sent);
      this.announcedBy = sent.length > 0 ? 'arp' : 'none';
    }
    this.framesSent = a.host.sent.length;
    a.changes = b.changes = 0;
    b.host.sent.splice(0, b.host.sent.length, ...a.host.sent.map((f) => f.slice()));
  }

  /** Throws (chai) unless A and B are indistinguishable. */
  check(where: string): void {
    if (!this.split) return;
    const a = this.a;
    const b = this.b;
    const ma = a.memory.bytes(0, PAIR_MEMORY)!;
    const mb = b.memory.bytes(0, PAIR_MEMORY)!;
    if (Buffer.compare(ma, mb) !== 0) {
      let i = 0;
      while (ma[i] === mb[i]) i++;
      expect.fail(`${where}: guest memory differs first at 0x${i.toString(16)} (A 0x${ma[i]!.toString(16)}, B 0x${mb[i]!.toString(16)})`);
    }
    expect(b.host.sent.length, `${where}: frames sent`).to.equal(a.host.sent.length);
    for (let i = this.framesSent; i < a.host.sent.length; i++) expect(Buffer.from(b.host.sent[i]!).equals(Buffer.from(a.host.sent[i]!)), `${where}: frame ${i}`).to.equal(true);
    this.framesSent = a.host.sent.length;
    expect(b.host.held.length, `${where}: frames the backend holds`).to.equal(a.host.held.length);
    expect(b.host.paused, `${where}: backend paused`).to.equal(a.host.paused);
    expect(b.irq, `${where}: interrupt line`).to.equal(a.irq);
    expect(b.changes, `${where}: rx-filter-changed events`).to.equal(a.changes);
    expect(b.device.status, `${where}: status`).to.equal(a.device.status);
    expect(b.device.isr, `${where}: ISR`).to.equal(a.device.isr);
    expect(b.device.configGeneration, `${where}: config generation`).to.equal(a.device.configGeneration);
    expect(b.device.stats(), `${where}: stats`).to.deep.equal(a.device.stats());
    expect(Buffer.from(b.device.saveState()).equals(Buffer.from(a.device.saveState())), `${where}: state images`).to.equal(true);
  }

  // ---------------------------------------------------------------- the driver's actions

  /** Linux's initialisation accepting `want` of the offer, with fresh rings. */
  init(want: bigint): boolean {
    const offered = this.a.device.offered;
    const wantMq = (want & offered & features(['MQ'])) !== 0n;
    const wantCtrl = (want & offered & features(['CTRL_VQ'])) !== 0n;
    const ctrlIndex = wantMq ? this.setup.pairs * 2 : 2;
    const count = wantCtrl ? ctrlIndex + 1 : ctrlIndex;
    this.rings = [];
    for (let q = 0; q < count; q++) {
      const base = QUEUE_BASE + q * QUEUE_AREA;
      const heapEnd = base + QUEUE_AREA;
      if (this.setup.ring === 'packed') {
        this.rings.push(new PackedDriverRing(this.mem, { size: this.setup.ringSize, base, heapStart: base + 0x2000, heapEnd }));
      } else if (this.setup.transport === 'pci-legacy' || this.setup.transport === 'pci-legacy-only') {
        const l = legacyRingLayout(base, PAIR_QUEUE_MAX);
        this.rings.push(new DriverRing(this.mem, { ...l, heapStart: base + 0x2000, heapEnd }));
      } else {
        this.rings.push(new DriverRing(this.mem, { size: this.setup.ringSize, base, heapStart: base + 0x2000, heapEnd }));
      }
    }
    const r = initDevice(this.driver, { features: want, queues: this.rings });
    this.negotiated = r.negotiated;
    return r.ok;
  }

  ring(q: number): PairRing | null {
    return this.rings[q] ?? null;
  }

  /** Publishes with `add` and notifies the way Linux decides (§2.7.10; packed §2.8.10). */
  kick(q: number, add: () => void): void {
    const ring = this.ring(q);
    if (ring === null) return;
    if (ring instanceof PackedDriverRing) {
      const before = ring.availPosition;
      add();
      if (ring.needsNotify(before, this.has('EVENT_IDX'))) this.driver.notify(q);
      return;
    }
    const old = ring.availIdx;
    add();
    const now = ring.availIdx;
    const need = this.has('EVENT_IDX') ? ((now - ring.readAvailEvent() - 1) & 0xffff) < ((now - old) & 0xffff) : (ring.usedFlags() & 1) === 0;
    if (need) this.driver.notify(q);
  }

  postRx(count: number, len: number, split: number): void {
    const ring = this.ring(0);
    if (ring === null) return;
    this.kick(0, () => {
      try {
        for (let i = 0; i < count && ring.freeDescriptors >= split; i++) {
          const parts: BufferSpec[] = [];
          for (let k = 0; k < split; k++) parts.push({ len: Math.max(1, Math.floor(len / split)), write: true });
          ring.addChain(parts, { publish: false });
        }
      } finally {
        ring.publish();
      }
    });
  }

  send(pair: number, frame: Uint8Array, hdrLen: number): void {
    const q = 2 * pair + 1;
    const ring = this.ring(q);
    if (ring === null || q === this.ctrlIndex || ring.freeDescriptors < 2) return;
    const header = new Uint8Array(hdrLen);
    this.kick(q, () => ring.addChain([{ len: hdrLen, data: header }, { len: frame.length, data: frame }]));
  }

  ctrl(cls: number, cmd: number, payload: readonly number[]): void {
    const q = this.ctrlIndex;
    const ring = q < 0 ? null : this.ring(q);
    if (ring === null || ring.freeDescriptors < 3) return;
    const specs: BufferSpec[] = [{ len: 2, data: [cls, cmd] }];
    if (payload.length > 0) specs.push({ len: payload.length, data: payload });
    specs.push({ len: 1, write: true, data: [0xff] });
    this.kick(q, () => ring.addChain(specs));
  }

  /** The driver takes every used entry (recycling descriptors), as its interrupt handler would. */
  consume(): void {
    for (const r of this.rings) {
      try {
        r.takeUsed();
      } catch {
        // A used entry the model cannot match (a broken device): the ring is left as it is.
      }
    }
  }

  inject(frame: Uint8Array): void {
    this.a.host.inject(frame);
    if (this.split) this.b.host.inject(frame);
  }

  /** Calls `fn` on each live device. */
  both(fn: (d: VirtioNetDevice) => void): void {
    for (const d of this.devices) fn(d);
  }
}
