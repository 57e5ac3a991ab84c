// A virtio-net device on a MemoryNetdev, driven over a real transport by a driver built from
// DriverRing + driver-transport: what unit tests, the differential test against QEMU, the fuzzer
// and the benchmarks use to play the guest.

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
import type { UsedEntry } from './driver-ring.js';
import { driverFor, initDevice, notifyQueue, readIsr, legacyDriver } from './driver-transport.js';
import type { DriverTransport, InitResult } from './driver-transport.js';

export type RigTransport = 'mmio' | 'pci' | 'pci-legacy';

export interface NetRigOptions extends Partial<Omit<VirtioNetOptions, 'memory' | 'netdev'>> {
  /** Features the driver acknowledges (names); default: everything offered. */
  driverFeatures?: FeatureName[];
  transport?: RigTransport;
  /** Ring size of every queue (default 64). */
  ringSize?: number;
  memorySize?: number;
  netdev?: Netdev;
  /** Initialise the device (default true). */
  init?: boolean;
}

/** Feature word from names. */
export function features(names: readonly FeatureName[]): bigint {
  let f = 0n;
  for (const n of names) f |= 1n << BigInt(FEATURE_BITS.get(n)!);
  return f;
}

export class NetRig {
  readonly memory: GuestMemory;
  readonly netdev: Netdev;
  readonly device: VirtioNetDevice;
  readonly transport: VirtioMmioTransport | VirtioPciTransport;
  readonly driver: DriverTransport;
  readonly rx: DriverRing;
  readonly tx: DriverRing;
  readonly ctrl: DriverRing;
  /** Frames the guest transmitted (copies), in order. */
  readonly transmitted: Uint8Array[] = [];
  irqLevel = false;
  irqRaises = 0;
  init: InitResult | null = null;
  /** Index of the control queue for the negotiated features. */
  ctrlIndex = 2;

  constructor(readonly options: NetRigOptions = {}) {
    const { driverFeatures, transport = 'mmio', ringSize = 64, memorySize = 4 << 20, netdev, init = true, id = 'nic0', ...rest } = options;
    this.memory = new GuestMemory(memorySize);
    this.netdev = netdev ?? new MemoryNetdev({ id: 'net0' });
    if (this.netdev instanceof MemoryNetdev) this.netdev.on('transmit', (f: Uint8Array) => this.transmitted.push(f));
    this.device = new VirtioNetDevice({ id, ...rest, memory: this.memory, netdev: this.netdev });
    const onInterrupt = (asserted: boolean): void => {
      if (asserted && !this.irqLevel) this.irqRaises++;
      this.irqLevel = asserted;
    };
    this.transport =
      transport === 'mmio'
        ? new VirtioMmioTransport(this.device, { onInterrupt })
        : new VirtioPciTransport(this.device, { onInterrupt, legacy: transport === 'pci-legacy' });
    this.driver = transport === 'pci-legacy' ? legacyDriver(this.transport as VirtioPciTransport) : driverFor(this.transport);
    // Rings: rx at 0x10000, tx at 0x40000, ctrl at 0x70000; buffer heaps after each.
    const ring = (base: number): DriverRing => new DriverRing(this.memory, { size: ringSize, base, heapEnd: base + 0x30000 });
    this.rx = ring(0x10000);
    this.tx = ring(0x40000);
    this.ctrl = ring(0x70000);
    if (init) this.start(driverFeatures === undefined ? (1n << 64n) - 1n : features(driverFeatures));
  }

  /** Runs Linux's initialisation with the given driver features. */
  start(driverFeatures: bigint): InitResult {
    const pairs = this.options.queuePairs ?? 1;
    const queues: DriverRing[] = [];
    for (let p = 0; p < pairs; p++) {
      queues.push(p === 0 ? this.rx : new DriverRing(this.memory, { size: 8, base: 0x200000 + p * 0x8000, heapEnd: 0x200000 + p * 0x8000 + 0x4000 }));
      queues.push(p === 0 ? this.tx : new DriverRing(this.memory, { size: 8, base: 0x204000 + p * 0x8000, heapEnd: 0x204000 + p * 0x8000 + 0x4000 }));
    }
    const wantMq = (driverFeatures & features(['MQ'])) !== 0n && (this.device.offered & features(['MQ'])) !== 0n;
    const ctrlIndex = wantMq ? pairs * 2 : 2;
    while (queues.length < ctrlIndex) queues.push(new DriverRing(this.memory, { size: 8, base: 0x280000 + queues.length * 0x4000, heapEnd: 0x280000 + queues.length * 0x4000 + 0x2000 }));
    queues[ctrlIndex] = this.ctrl;
    for (const q of queues) q.reset(); // a driver lays its rings out afresh on every initialisation
    this.init = initDevice(this.driver, { features: driverFeatures, queues });
    this.ctrlIndex = ctrlIndex;
    return this.init;
  }

  /** Sends one control command: readable `segments` then a writable ack of `ackLen` bytes. */
  ctrlCommand(segments: readonly (Uint8Array | readonly number[])[], ackLen = 1): { used: UsedEntry | undefined; ack: number } {
    const specs = segments.map((s) => ({ len: s.length, data: s }));
    const head = this.ctrl.addChain([...specs, ...(ackLen > 0 ? [{ len: ackLen, write: true, data: new Array<number>(ackLen).fill(0xff) }] : [])]);
    notifyQueue(this.driver, this.ctrlIndex);
    const used = this.ctrl.takeUsed().find((u) => u.id === head);
    const ack = ackLen > 0 ? this.ctrl.bufferBytes(head, segments.length)[0]! : -1;
    return { used, ack };
  }

  /** Shorthand: class, command, payload in separate descriptors (as Linux sends them). */
  cmd(ctrlClass: number, command: number, ...payload: (Uint8Array | readonly number[])[]): number {
    return this.ctrlCommand([[ctrlClass, command], ...payload]).ack;
  }

  /** Posts `count` receive buffers of `len` bytes each and notifies. */
  postRx(count: number, len = 1526): number[] {
    const heads: number[] = [];
    for (let i = 0; i < count; i++) heads.push(this.rx.addChain([{ len, write: true }]));
    notifyQueue(this.driver, 0);
    return heads;
  }

  /** Transmits one frame with a zeroed header of `hdrLen` bytes, split as given. */
  send(frame: Uint8Array, options: { hdrLen?: number; split?: 'one' | 'header-apart' } = {}): UsedEntry | undefined {
    const hdrLen = options.hdrLen ?? 12;
    const whole = new Uint8Array(hdrLen + frame.length);
    whole.set(frame, hdrLen);
    const head =
      options.split === 'header-apart'
        ? this.tx.addChain([{ len: hdrLen, data: whole.subarray(0, hdrLen) }, { len: frame.length, data: frame }])
        : this.tx.addChain([{ len: whole.length, data: whole }]);
    notifyQueue(this.driver, 1);
    return this.tx.takeUsed().find((u) => u.id === head);
  }

  /** Completed receive buffers as (header, frame) pairs, for single-buffer chains. */
  received(hdrLen = 12): { header: Uint8Array; frame: Uint8Array; id: number }[] {
    return this.rx.takeUsed().map((u) => {
      const bytes = this.rx.writtenBytes(u.id, u.len);
      return { header: bytes.slice(0, hdrLen), frame: bytes.slice(hdrLen), id: u.id };
    });
  }

  inject(frame: Uint8Array): boolean {
    return (this.netdev as MemoryNetdev).inject(frame);
  }

  readIsr(): number {
    return readIsr(this.driver);
  }
}

/** An Ethernet frame: dst, src, ethertype, payload (optionally 802.1Q-tagged). */
export function ethFrame(dst: string, src = '52:54:00:aa:bb:cc', options: { vlan?: number; type?: number; payload?: number } = {}): Uint8Array {
  const mac = (s: string): number[] => s.split(':').map((h) => parseInt(h, 16));
  const payloadLen = options.payload ?? 46;
  const tag = options.vlan === undefined ? [] : [0x81, 0x00, (options.vlan >> 8) & 0x0f, options.vlan & 0xff];
  const type = options.type ?? 0x0800;
  const bytes = [...mac(dst), ...mac(src), ...tag, type >> 8, type & 0xff];
  const out = new Uint8Array(bytes.length + payloadLen);
  out.set(bytes);
  for (let i = 0; i < payloadLen; i++) out[bytes.length + i] = i & 0xff;
  return out;
}

/** MAC_TABLE_SET payload: le32 N, N×6, le32 M, M×6. */
export function macTable(unicast: readonly string[], multicast: readonly string[]): Uint8Array {
  const mac = (s: string): number[] => s.split(':').map((h) => parseInt(h, 16));
  const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
  return Uint8Array.from([...le32(unicast.length), ...unicast.flatMap(mac), ...le32(multicast.length), ...multicast.flatMap(mac)]);
}
