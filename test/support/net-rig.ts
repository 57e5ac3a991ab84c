// A virtio-net device on a MemoryNetdev, driven over a real transport by a driver built from
// DriverRing + driver-transport: what unit tests, the differential test against QEMU, the fuzzer
// and the benchmarks use to play the guest.
//
// The driver behaves like Linux's: it lays its rings out afresh at every initialisation (the legacy
// layout on the legacy PCI interface, where the ring size is the device's maximum), and it notifies
// a queue only when the device asks for it (§2.7.10: `avail_event` with EVENT_IDX, else the
// NO_NOTIFY flag) — so a device that forgets to ask is caught, as a real guest would catch it.

import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import { VirtioPciTransport } from '../../devices/virtio/pci-transport.js';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import type { VirtioNetOptions } from '../../devices/virtio-net/net-options.js';
import { FEATURE_BITS } from '../../devices/virtio-net/constants.js';
import type { FeatureName } from '../../devices/virtio-net/constants.js';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import type { Netdev } from '../../lib/netdev/netdev.js';
import { DriverRing } from './driver-ring.js';
import { PackedDriverRing } from './packed-driver-ring.js';
import type { BufferSpec, UsedEntry } from './driver-ring.js';
import { driverFor, initDevice, legacyDriver, legacyRingLayout, readIsr } from './driver-transport.js';
import type { DriverTransport, InitResult } from './driver-transport.js';

export type RigTransport = 'mmio' | 'pci' | 'pci-legacy';

export interface NetRigOptions extends Partial<Omit<VirtioNetOptions, 'memory' | 'netdev'>> {
  /** Features the driver acknowledges (names); default: everything offered (RING_PACKED only with `ring: 'packed'`). */
  driverFeatures?: FeatureName[];
  /** The driver's ring format (default 'split'): 'packed' lays out packed rings and acknowledges RING_PACKED. */
  ring?: 'split' | 'packed';
  transport?: RigTransport;
  /** Ring size of every queue (default 64; on pci-legacy it is also the device's queueSize). */
  ringSize?: number;
  memorySize?: number;
  /** Bytes between the rings of consecutive queues, buffer heap included (default 0x40000). */
  ringSpacing?: number;
  netdev?: Netdev;
  /** Initialise the device (default true). */
  init?: boolean;
  /** Keep a copy of every transmitted frame in `transmitted` (default true; benchmarks turn it off). */
  recordTransmitted?: boolean;
  /** Called on every interrupt line change after the rig's own bookkeeping (the hypervisor's hook). */
  onInterrupt?: (asserted: boolean) => void;
}

/** Feature word from names. */
export function features(names: readonly FeatureName[]): bigint {
  let f = 0n;
  for (const n of names) f |= 1n << BigInt(FEATURE_BITS.get(n)!);
  return f;
}

/** Every feature bit: the driver acknowledges whatever the device offers. */
export const ALL_FEATURES = (1n << 64n) - 1n;

/** One received frame as the driver reassembles it from one or more used buffers. */
export interface RxFrame {
  header: Uint8Array;
  frame: Uint8Array;
  /** Head of the first buffer. */
  id: number;
  /** num_buffers from the header (1 when the header has none). */
  numBuffers: number;
  /** Used entries the frame took. */
  entries: UsedEntry[];
}

/** vring_need_event (§2.7.10 with EVENT_IDX): notify when new_idx passed event_idx since old_idx. */
function needEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/** A driver ring of either format: what the rig's own helpers use. */
export type RigRing = DriverRing | PackedDriverRing;

export class NetRig {
  readonly memory: GuestMemory;
  readonly netdev: Netdev;
  readonly device: VirtioNetDevice;
  readonly transport: VirtioMmioTransport | VirtioPciTransport;
  readonly driver: DriverTransport;
  /** Every ring of the last initialisation, by queue index, of either format. */
  private all: RigRing[] = [];
  /** Frames the guest transmitted (copies), in order. */
  readonly transmitted: Uint8Array[] = [];
  irqLevel = false;
  irqRaises = 0;
  init: InitResult | null = null;
  /** Index of the control queue for the negotiated features. */
  ctrlIndex = 2;
  /** Notifications the driver skipped because the device did not ask for them. */
  suppressedKicks = 0;
  private readonly ringSize: number;
  private readonly ringSpacing: number;
  /** Rings laid out by resetQueue() so far (each at a fresh address). */
  private respaced = 0;
  /** The driver's ring format. */
  readonly ringFormat: 'split' | 'packed';

  constructor(readonly options: NetRigOptions = {}) {
    const { driverFeatures, ring: ringFormat = 'split', transport = 'mmio', ringSize = 64, memorySize = 8 << 20, ringSpacing = 0x40000, netdev, init = true, id = 'nic0', recordTransmitted = true, onInterrupt: hook, ...rest } = options;
    this.ringSize = ringSize;
    this.ringSpacing = ringSpacing;
    this.ringFormat = ringFormat;
    if (ringFormat === 'packed' && transport === 'pci-legacy') throw new Error('NetRig: the legacy interface has no packed ring');
    this.memory = new GuestMemory(memorySize);
    this.netdev = netdev ?? new MemoryNetdev({ id: 'net0' });
    if (this.netdev instanceof MemoryNetdev && recordTransmitted) this.netdev.on('transmit', (f: Uint8Array) => this.transmitted.push(f));
    const queueSize = transport === 'pci-legacy' ? (rest.queueSize ?? ringSize) : rest.queueSize;
    this.device = new VirtioNetDevice({ id, ...rest, ...(queueSize === undefined ? {} : { queueSize }), memory: this.memory, netdev: this.netdev });
    const onInterrupt = (asserted: boolean): void => {
      if (asserted && !this.irqLevel) this.irqRaises++;
      this.irqLevel = asserted;
      hook?.(asserted);
    };
    this.transport =
      transport === 'mmio'
        ? new VirtioMmioTransport(this.device, { onInterrupt })
        : new VirtioPciTransport(this.device, { onInterrupt, legacy: transport === 'pci-legacy' });
    this.driver = transport === 'pci-legacy' ? legacyDriver(this.transport as VirtioPciTransport) : driverFor(this.transport);
    this.layoutRings(2);
    if (init) this.start(driverFeatures === undefined ? ALL_FEATURES : features(driverFeatures));
  }

  /** Split rings of queues 0, 1 and the control queue of the last initialisation (a split-ring rig only). */
  get rx(): DriverRing {
    return this.split(0);
  }
  get tx(): DriverRing {
    return this.split(1);
  }
  get ctrl(): DriverRing {
    return this.split(this.ctrlIndex);
  }
  /** Every split ring of the last initialisation, by queue index (a split-ring rig only). */
  get rings(): DriverRing[] {
    return this.all.map((r, i) => this.split(i));
  }
  /** Queue `index`'s ring, of either format. */
  ringAt(index: number): RigRing {
    const r = this.all[index];
    if (r === undefined) throw new Error(`NetRig: no ring for queue ${index}`);
    return r;
  }
  /** Used entries of queue `index` published and not yet taken (either ring format). */
  usedEntries(index: number): UsedEntry[] {
    return this.ringAt(index).usedEntries();
  }

  /** Queue `index`'s packed ring (a packed-ring rig only). */
  packedRing(index: number): PackedDriverRing {
    const r = this.ringAt(index);
    if (!(r instanceof PackedDriverRing)) throw new Error('NetRig: this rig drives split rings (ring: "split")');
    return r;
  }
  private split(index: number): DriverRing {
    const r = this.ringAt(index);
    if (!(r instanceof DriverRing)) throw new Error('NetRig: this rig drives packed rings; use ringAt() / packedRing()');
    return r;
  }

  /**
   * Resets queue `index` through the transport (VIRTIO_F_RING_RESET, §2.6.1: QueueReset / queue_reset,
   * then reads back 0 in it and in QueueReady / queue_enable, as Linux does) and re-enables it with a
   * new ring at a fresh address, programmed as during initialisation (§2.6.1.2). Returns the new ring.
   */
  resetQueue(index: number, options: { reenable?: boolean } = {}): RigRing {
    this.driver.resetQueue(index);
    this.respaced++;
    const ring = this.ring(this.all.length + this.respaced);
    if (options.reenable ?? true) {
      this.driver.setupQueue(index, ring);
      this.driver.enableQueue(index);
    }
    this.all[index] = ring;
    return ring;
  }

  /** Queue ring number `slot`: 0x10000 + slot × ringSpacing, buffer heap after it. */
  private ring(slot: number): RigRing {
    const index = slot;
    const base = 0x10000 + index * this.ringSpacing;
    const size = this.ringSize;
    const heapEnd = base + this.ringSpacing;
    if (this.ringFormat === 'packed') return new PackedDriverRing(this.memory, { size, base, heapEnd });
    if (this.driver?.kind === 'pci-legacy') {
      const l = legacyRingLayout(base, size);
      return new DriverRing(this.memory, { size, descTable: l.descTable, availRing: l.availRing, usedRing: l.usedRing, heapStart: l.usedRing + 0x1000 + 8 * size, heapEnd });
    }
    return new DriverRing(this.memory, { size, base, heapEnd });
  }

  private layoutRings(ctrlIndex: number): RigRing[] {
    const rings: RigRing[] = [];
    for (let i = 0; i <= ctrlIndex; i++) rings.push(this.ring(i));
    this.all = rings;
    this.ctrlIndex = ctrlIndex;
    return rings;
  }

  /** Runs Linux's initialisation with the given driver features (all queues, control queue last). */
  start(driverFeatures: bigint = ALL_FEATURES): InitResult {
    const pairs = this.options.queuePairs ?? 1;
    const offered = this.device.offered;
    if (this.ringFormat === 'packed' && (offered & features(['RING_PACKED'])) === 0n) throw new Error('NetRig: ring "packed" but the device does not offer RING_PACKED');
    const wantMq = (driverFeatures & offered & features(['MQ', 'RSS'])) !== 0n; // §5.1.2: MQ or RSS
    const wantCtrl = (driverFeatures & offered & features(['CTRL_VQ'])) !== 0n;
    const ctrlIndex = wantMq ? pairs * 2 : 2;
    const rings = this.layoutRings(ctrlIndex);
    this.init = initDevice(this.driver, { features: driverFeatures, queues: wantCtrl ? rings : rings.slice(0, ctrlIndex) });
    return this.init;
  }

  /** The features negotiated at the last initialisation. */
  get negotiated(): bigint {
    return this.init?.negotiated ?? 0n;
  }

  has(name: FeatureName): boolean {
    return (this.negotiated & features([name])) !== 0n;
  }

  /** The virtio-net header length for the negotiated features (20 with HASH_REPORT, 12 with VERSION_1 or MRG_RXBUF). */
  get hdrLen(): 10 | 12 | 20 {
    if (this.has('HASH_REPORT') && this.has('VERSION_1')) return 20;
    return this.has('VERSION_1') || this.has('MRG_RXBUF') ? 12 : 10;
  }

  /**
   * Publishes with `add` (which places heads) and notifies queue `index` the way Linux's
   * virtqueue_kick_prepare decides: with EVENT_IDX when the new avail.idx passed avail_event, else
   * unless the device set VIRTQ_USED_F_NO_NOTIFY. `force` notifies anyway.
   */
  kick(index: number, add: () => void, force = false): void {
    const ring = this.ringAt(index);
    let need: boolean;
    if (ring instanceof PackedDriverRing) {
      // virtqueue_kick_prepare_packed: the device event suppression structure (§2.8.10).
      const before = ring.availPosition;
      add();
      need = ring.needsNotify(before, this.has('EVENT_IDX'));
    } else {
      const old = ring.availIdx;
      add();
      const now = ring.availIdx;
      need = this.has('EVENT_IDX') ? needEvent(ring.readAvailEvent(), now, old) : (ring.usedFlags() & 1) === 0;
    }
    if (need || force) this.driver.notify(index);
    else this.suppressedKicks++;
  }

  /** Sends one control command: readable `segments` then a writable ack of `ackLen` bytes. */
  ctrlCommand(segments: readonly (Uint8Array | readonly number[])[], ackLen = 1, options: { indirect?: boolean } = {}): { used: UsedEntry | undefined; ack: number } {
    const specs: BufferSpec[] = segments.map((s) => ({ len: s.length, data: s }));
    if (ackLen > 0) specs.push({ len: ackLen, write: true, data: new Array<number>(ackLen).fill(0xff) });
    let head = -1;
    const ctrl = this.ringAt(this.ctrlIndex);
    this.kick(this.ctrlIndex, () => {
      head = ctrl.addChain(specs, options);
    });
    const used = ctrl.takeUsed().find((u) => u.id === head);
    const ack = ackLen > 0 ? ctrl.bufferBytes(head, options.indirect === true ? segments.length : segments.length)[0]! : -1;
    return { used, ack };
  }

  /** Shorthand: class, command, payload in separate descriptors (as Linux sends them). */
  cmd(ctrlClass: number, command: number, ...payload: (Uint8Array | readonly number[])[]): number {
    return this.ctrlCommand([[ctrlClass, command], ...payload]).ack;
  }

  /**
   * Posts `count` receive buffers of `len` bytes each (one chain per buffer, split into `split`
   * descriptors, optionally through an indirect table) on receive queue `queue` and kicks it.
   */
  postRx(count: number, len = 1526, options: { split?: number; indirect?: boolean; queue?: number } = {}): number[] {
    const heads: number[] = [];
    const split = options.split ?? 1;
    const queue = options.queue ?? 0;
    const ring = this.ringAt(queue);
    this.kick(queue, () => {
      for (let i = 0; i < count; i++) {
        const parts: BufferSpec[] = [];
        let left = len;
        for (let k = 0; k < split; k++) {
          const n = k === split - 1 ? left : Math.floor(len / split);
          parts.push({ len: n, write: true });
          left -= n;
        }
        heads.push(ring.addChain(parts, { indirect: options.indirect === true, publish: false }));
      }
      ring.publish();
    });
    return heads;
  }

  /**
   * Transmits one frame with a zeroed header (default: the negotiated length) on transmit queue
   * `queue` (default 1): `split` 'one' = header and frame in one descriptor, 'header-apart' = two
   * (Linux), a number = that many descriptors; `writable` appends a device-writable descriptor.
   */
  send(
    frame: Uint8Array,
    options: { hdrLen?: number; split?: 'one' | 'header-apart' | number; indirect?: boolean; writable?: number; queue?: number; header?: Uint8Array } = {},
  ): UsedEntry | undefined {
    const hdrLen = options.hdrLen ?? this.hdrLen;
    const queue = options.queue ?? 1;
    const ring = this.ringAt(queue);
    const whole = new Uint8Array(hdrLen + frame.length);
    if (options.header !== undefined) whole.set(options.header.subarray(0, hdrLen));
    whole.set(frame, hdrLen);
    let parts: BufferSpec[];
    if (options.split === 'header-apart') parts = [{ len: hdrLen, data: whole.subarray(0, hdrLen) }, { len: frame.length, data: frame }];
    else if (typeof options.split === 'number') parts = splitBytes(whole, options.split);
    else parts = [{ len: whole.length, data: whole }];
    if (options.writable !== undefined) parts.push({ len: options.writable, write: true });
    let head = -1;
    this.kick(queue, () => {
      head = ring.addChain(parts.filter((p) => p.len > 0), { indirect: options.indirect === true });
    });
    return ring.takeUsed().find((u) => u.id === head);
  }

  /**
   * Completed receive buffers as frames: a frame's first used buffer carries the header, whose
   * num_buffers (with MRG_RXBUF) says how many used buffers hold it; without it, one each.
   */
  received(hdrLen: number = this.hdrLen, queue = 0): RxFrame[] {
    const ring = this.ringAt(queue);
    const used = ring.takeUsed();
    const mergeable = this.has('MRG_RXBUF');
    const out: RxFrame[] = [];
    for (let i = 0; i < used.length; ) {
      const first = used[i]!;
      const firstBytes = ring.writtenBytes(first.id, first.len);
      const header = firstBytes.slice(0, hdrLen);
      const numBuffers = hdrLen >= 12 ? header[10]! | (header[11]! << 8) : 1;
      const take = mergeable ? Math.max(1, numBuffers) : 1;
      const entries = used.slice(i, i + take);
      const parts = [firstBytes.subarray(hdrLen), ...entries.slice(1).map((e) => ring.writtenBytes(e.id, e.len))];
      const frame = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        frame.set(p, at);
        at += p.length;
      }
      out.push({ header, frame, id: first.id, numBuffers, entries });
      i += take;
    }
    return out;
  }

  /** Offers a frame from the host (with a virtio-net header when the netdev is a `MemoryNetdev({ vnetHdr: true })`). */
  inject(frame: Uint8Array, vnetHeader?: Uint8Array): boolean {
    return (this.netdev as MemoryNetdev).inject(frame, vnetHeader);
  }

  readIsr(): number {
    return readIsr(this.driver);
  }

  /** Device status as the driver reads it. */
  readStatus(): number {
    return this.driver.readStatus();
  }

  /** Config `status` (offset 6, §5.1.4). */
  readLinkStatus(): number {
    return this.driver.readConfig(6, 2);
  }

  /** Config `mac` as the driver reads it, byte by byte. */
  readMac(): string {
    const b: string[] = [];
    for (let i = 0; i < 6; i++) b.push(this.driver.readConfig(i, 1).toString(16).padStart(2, '0'));
    return b.join(':');
  }
}

function splitBytes(bytes: Uint8Array, n: number): BufferSpec[] {
  const out: BufferSpec[] = [];
  const step = Math.max(1, Math.ceil(bytes.length / n));
  for (let at = 0; at < bytes.length; at += step) {
    const part = bytes.subarray(at, Math.min(bytes.length, at + step));
    out.push({ len: part.length, data: part });
  }
  return out;
}

/** An Ethernet frame: dst, src, ethertype, payload (optionally 802.1Q-tagged). */
export function ethFrame(dst: string, src = '52:54:00:aa:bb:cc', options: { vlan?: number; type?: number; payload?: number; fill?: number } = {}): Uint8Array {
  const mac = (s: string): number[] => s.split(':').map((h) => parseInt(h, 16));
  const payloadLen = options.payload ?? 46;
  const tag = options.vlan === undefined ? [] : [0x81, 0x00, (options.vlan >> 8) & 0x0f, options.vlan & 0xff];
  const type = options.type ?? 0x0800;
  const bytes = [...mac(dst), ...mac(src), ...tag, type >> 8, type & 0xff];
  const out = new Uint8Array(bytes.length + payloadLen);
  out.set(bytes);
  const fill = options.fill ?? 0;
  for (let i = 0; i < payloadLen; i++) out[bytes.length + i] = (i + fill) & 0xff;
  return out;
}

/** MAC_TABLE_SET payload: le32 N, N×6, le32 M, M×6. */
export function macTable(unicast: readonly string[], multicast: readonly string[]): Uint8Array {
  const mac = (s: string): number[] => s.split(':').map((h) => parseInt(h, 16));
  const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
  return Uint8Array.from([...le32(unicast.length), ...unicast.flatMap(mac), ...le32(multicast.length), ...multicast.flatMap(mac)]);
}

/** le16 bytes. */
export function le16(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff];
}
