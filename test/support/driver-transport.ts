// The driver side of the virtio transports, register by register, the way Linux 6.1 does it
// (VIRTIO 1.2 §3.1.1 initialisation; §4.1.5.1 / virtio_pci_modern_dev.c for PCI including the
// capability walk; §4.1.4.10 / virtio_pci_legacy_dev.c for the legacy header; §4.2.3 /
// virtio_mmio.c for MMIO). Tests of the device core, of virtio-net and the conformance suite use it.
//
// Written from the spec and the drivers' documented behaviour, independently of devices/virtio, so
// the device is checked against what a driver expects rather than against itself. Every register
// number here is the helper's own copy.

import type { GuestRing } from '../../lib/driver/guest-ring.js';
import type { PackedGuestRing } from '../../lib/driver/packed-guest-ring.js';

/** A ring of either format, as far as the transport is concerned (size and the three area addresses). */
export type AnyGuestRing = GuestRing | PackedGuestRing;
import type { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import type { VirtioPciTransport } from '../../devices/virtio/pci-transport.js';

export type AnyTransport = VirtioMmioTransport | VirtioPciTransport;

// §2.1 status bits
export const ACKNOWLEDGE = 1;
export const DRIVER = 2;
export const DRIVER_OK = 4;
export const FEATURES_OK = 8;
export const NEEDS_RESET = 0x40;
export const FAILED = 0x80;
/** VIRTIO_F_VERSION_1 (§6). */
export const F_VERSION_1 = 1n << 32n;
/** VIRTIO_F_RING_PACKED (§6): acknowledged only by a driver whose rings are packed. */
export const F_RING_PACKED = 1n << 34n;
/** VIRTIO_F_RING_RESET (§6). */
export const F_RING_RESET = 1n << 40n;

// §4.2.2 MMIO registers
const MMIO = {
  magic: 0x000, version: 0x004, deviceId: 0x008, vendorId: 0x00c, deviceFeatures: 0x010, deviceFeaturesSel: 0x014,
  driverFeatures: 0x020, driverFeaturesSel: 0x024, queueSel: 0x030, queueNumMax: 0x034, queueNum: 0x038,
  queueReady: 0x044, queueNotify: 0x050, interruptStatus: 0x060, interruptAck: 0x064, status: 0x070,
  queueDescLow: 0x080, queueDescHigh: 0x084, queueDriverLow: 0x090, queueDriverHigh: 0x094,
  queueDeviceLow: 0x0a0, queueDeviceHigh: 0x0a4, queueReset: 0x0c0, configGeneration: 0x0fc, config: 0x100,
} as const;

// §4.1.4.3 common configuration offsets
const COMMON = {
  dfselect: 0, df: 4, gfselect: 8, gf: 12, msixConfig: 16, numQueues: 18, status: 20, generation: 21,
  qSelect: 22, qSize: 24, qMsix: 26, qEnable: 28, qNotifyOff: 30, qDescLo: 32, qDescHi: 36,
  qAvailLo: 40, qAvailHi: 44, qUsedLo: 48, qUsedHi: 52, qNotifyData: 56, qReset: 58,
} as const;
/** sizeof(struct virtio_pci_common_cfg) in Linux 6.1: the minimum length it maps. */
const LINUX_COMMON_CFG_MINLEN = 56;

// §4.1.4.10 legacy header
const LEGACY = { hostFeatures: 0, guestFeatures: 4, queuePfn: 8, queueNum: 12, queueSel: 14, queueNotify: 16, status: 18, isr: 19, config: 20 } as const;
export const LEGACY_QUEUE_ALIGN = 4096;

// PCI 3.0 §6.1 / §6.7, VIRTIO 1.2 §4.1.4
const PCI_STATUS = 0x06;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_CAPABILITY_LIST = 0x34;
const PCI_CAP_ID_VNDR = 0x09;
const PCI_FIND_CAP_TTL = 48;
export const CAP_COMMON = 1;
export const CAP_NOTIFY = 2;
export const CAP_ISR = 3;
export const CAP_DEVICE = 4;
export const CAP_PCI_CFG = 5;

/** One virtio structure as a capability describes it. */
export interface CapRegion {
  /** Offset of the capability in config space. */
  cap: number;
  bar: number;
  offset: number;
  length: number;
}

/** What the capability walk found (Linux: vp_modern_probe). */
export interface VirtioCaps {
  common: CapRegion;
  notify: CapRegion & { multiplier: number };
  isr: CapRegion;
  device: CapRegion | null;
  pciCfg: CapRegion | null;
}

/** A BAR as firmware found and placed it. */
export interface AssignedBar {
  index: number;
  kind: 'io' | 'memory';
  size: number;
  address: number;
}

/** Register-level driver access to one device through one interface. */
export interface DriverTransport {
  readonly kind: 'mmio' | 'pci' | 'pci-legacy';
  readonly transport: AnyTransport;
  readStatus(): number;
  writeStatus(value: number): void;
  readDeviceFeatures(): bigint;
  writeDriverFeatures(features: bigint): void;
  /** Queue maximum size as the driver reads it (0: no such queue). */
  queueMaxSize(index: number): number;
  /** Programs queue `index` from `ring` (not yet enabled on PCI modern; Linux enables all at the end). */
  setupQueue(index: number, ring: AnyGuestRing): void;
  /** Resets queue `index` (VIRTIO_F_RING_RESET, §2.6.1) and checks it reads back 0, as Linux does; throws if not. */
  resetQueue(index: number): void;
  enableQueue(index: number): void;
  notify(index: number): void;
  /** Reads (and on MMIO acknowledges) the interrupt status, as the driver's interrupt handler does. */
  readIsr(): number;
  readConfig(offset: number, width: 1 | 2 | 4): number;
  writeConfig(offset: number, width: 1 | 2 | 4, value: number): void;
  /** Config generation (the legacy interface has none: 0). */
  configGeneration(): number;
}

const drivers = new WeakMap<AnyTransport, DriverTransport>();

function isPci(t: AnyTransport): t is VirtioPciTransport {
  return typeof (t as VirtioPciTransport).configRead === 'function';
}

/** The (cached) modern driver for a transport: MMIO, or PCI through its capabilities. */
export function driverFor(t: AnyTransport | DriverTransport): DriverTransport {
  if ('transport' in t) return t;
  let d = drivers.get(t);
  if (d === undefined) {
    d = isPci(t) ? new PciModernDriver(t) : new MmioDriver(t);
    drivers.set(t, d);
  }
  return d;
}

/** A legacy driver over a transitional PCI device's BAR0 header (Linux with virtio_pci.force_legacy=1). */
export function legacyDriver(t: VirtioPciTransport): DriverTransport {
  return new PciLegacyDriver(t);
}

export interface InitOptions {
  /** Features the driver understands; it acknowledges those the device offers (as Linux does). */
  features: bigint;
  /** Rings for queues 0..n-1, in order. Packed rings make the driver acknowledge VIRTIO_F_RING_PACKED
   *  (when offered); split rings (or none) make it decline it, as a driver without packed support does. */
  queues?: readonly AnyGuestRing[];
  /** Write `features` as given, without masking by the offer (for mistake tests). */
  ackExactly?: boolean;
}

export interface InitResult {
  /** FEATURES_OK stuck (always true on the legacy interface, which has no such step) and DRIVER_OK was set. */
  ok: boolean;
  offered: bigint;
  negotiated: bigint;
  status: number;
}

/** Adds status bits the way Linux's virtio_add_status does: read, OR, write. */
export function addStatus(t: AnyTransport | DriverTransport, bits: number): void {
  const d = driverFor(t);
  d.writeStatus(d.readStatus() | bits);
}

/** Resets the device and waits for status to read 0 (§2.4.2). */
export function resetDevice(t: AnyTransport | DriverTransport): void {
  const d = driverFor(t);
  d.writeStatus(0);
  if (d.readStatus() !== 0) throw new Error('driver-transport: device status did not read 0 after reset');
}

/**
 * Linux's initialisation sequence (§3.1.1, §3.1.2 on the legacy interface): reset, ACKNOWLEDGE,
 * DRIVER, read features, write the accepted subset, FEATURES_OK and read it back (not on legacy),
 * set up every queue, enable them, DRIVER_OK. On a refused FEATURES_OK it sets FAILED and stops.
 */
export function initDevice(t: AnyTransport | DriverTransport, options: InitOptions): InitResult {
  const d = driverFor(t);
  resetDevice(d);
  addStatus(d, ACKNOWLEDGE);
  addStatus(d, DRIVER);
  const offered = d.readDeviceFeatures();
  let wanted = options.ackExactly === true ? options.features : options.features & offered;
  const rings = options.queues ?? [];
  const packed = rings.length > 0 && rings.every((r) => 'kind' in r && r.kind === 'packed');
  if (options.ackExactly !== true && !packed) wanted &= ~F_RING_PACKED;
  if (d.kind === 'pci-legacy') wanted &= 0xffff_ffffn;
  d.writeDriverFeatures(wanted);
  if (d.kind !== 'pci-legacy') {
    addStatus(d, FEATURES_OK);
    if ((d.readStatus() & FEATURES_OK) === 0) {
      addStatus(d, FAILED);
      return { ok: false, offered, negotiated: wanted, status: d.readStatus() };
    }
  }
  rings.forEach((ring, i) => d.setupQueue(i, ring));
  rings.forEach((_, i) => d.enableQueue(i));
  addStatus(d, DRIVER_OK);
  const status = d.readStatus();
  return { ok: (status & DRIVER_OK) !== 0, offered, negotiated: wanted, status };
}

export function notifyQueue(t: AnyTransport | DriverTransport, index: number): void {
  driverFor(t).notify(index);
}
export function readIsr(t: AnyTransport | DriverTransport): number {
  return driverFor(t).readIsr();
}
export function readStatus(t: AnyTransport | DriverTransport): number {
  return driverFor(t).readStatus();
}
export function writeStatus(t: AnyTransport | DriverTransport, value: number): void {
  driverFor(t).writeStatus(value);
}
export function readConfig(t: AnyTransport | DriverTransport, offset: number, width: 1 | 2 | 4): number {
  return driverFor(t).readConfig(offset, width);
}
export function writeConfig(t: AnyTransport | DriverTransport, offset: number, width: 1 | 2 | 4, value: number): void {
  driverFor(t).writeConfig(offset, width, value);
}
export function configGeneration(t: AnyTransport | DriverTransport): number {
  return driverFor(t).configGeneration();
}

/** Reads `length` config bytes one at a time inside a generation check (§2.5.1), as Linux reads a MAC. */
export function readConfigBytes(t: AnyTransport | DriverTransport, offset: number, length: number): Uint8Array {
  const d = driverFor(t);
  for (let attempt = 0; attempt < 16; attempt++) {
    const before = d.configGeneration();
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = d.readConfig(offset + i, 1);
    if (d.configGeneration() === before) return out;
  }
  throw new Error('driver-transport: config generation kept changing');
}

/** The legacy ring layout at `base` (page aligned) for a queue of `size` (§2.7.2, Queue Align 4096). */
export function legacyRingLayout(base: number, size: number): { size: number; descTable: number; availRing: number; usedRing: number } {
  if (base % LEGACY_QUEUE_ALIGN !== 0) throw new Error('legacyRingLayout: base must be 4096-aligned');
  const availRing = base + 16 * size;
  const usedRing = Math.ceil((availRing + 2 * (3 + size)) / LEGACY_QUEUE_ALIGN) * LEGACY_QUEUE_ALIGN;
  return { size, descTable: base, availRing, usedRing };
}

// ---------------------------------------------------------------- MMIO (virtio_mmio.c)

class MmioDriver implements DriverTransport {
  readonly kind = 'mmio' as const;
  constructor(readonly transport: VirtioMmioTransport) {
    if (this.r(MMIO.magic) !== 0x74726976) throw new Error('driver-transport: bad MMIO magic');
    if (this.r(MMIO.version) !== 2) throw new Error('driver-transport: MMIO version is not 2');
  }
  private r(off: number): number {
    return this.transport.read(off, 4);
  }
  private w(off: number, v: number): void {
    this.transport.write(off, 4, v >>> 0);
  }
  readStatus(): number {
    return this.r(MMIO.status);
  }
  writeStatus(v: number): void {
    this.w(MMIO.status, v);
  }
  readDeviceFeatures(): bigint {
    this.w(MMIO.deviceFeaturesSel, 1);
    const hi = BigInt(this.r(MMIO.deviceFeatures));
    this.w(MMIO.deviceFeaturesSel, 0);
    return (hi << 32n) | BigInt(this.r(MMIO.deviceFeatures));
  }
  writeDriverFeatures(f: bigint): void {
    this.w(MMIO.driverFeaturesSel, 1);
    this.w(MMIO.driverFeatures, Number((f >> 32n) & 0xffff_ffffn));
    this.w(MMIO.driverFeaturesSel, 0);
    this.w(MMIO.driverFeatures, Number(f & 0xffff_ffffn));
  }
  queueMaxSize(i: number): number {
    this.w(MMIO.queueSel, i);
    return this.r(MMIO.queueNumMax);
  }
  resetQueue(i: number): void {
    this.w(MMIO.queueSel, i);
    this.w(MMIO.queueReset, 1);
    if (this.r(MMIO.queueReset) !== 0 || this.r(MMIO.queueReady) !== 0) throw new Error(`driver-transport: MMIO queue ${i} did not finish its reset`);
  }
  setupQueue(i: number, ring: AnyGuestRing): void {
    this.w(MMIO.queueSel, i);
    if (this.r(MMIO.queueReady) !== 0) throw new Error(`driver-transport: MMIO queue ${i} already ready`);
    const max = this.r(MMIO.queueNumMax);
    if (max === 0) throw new Error(`driver-transport: MMIO queue ${i} not available`);
    if (ring.size > max) throw new Error(`driver-transport: ring of ${ring.size} exceeds QueueNumMax ${max}`);
    this.w(MMIO.queueNum, ring.size);
    this.w(MMIO.queueDescLow, ring.descTable % 2 ** 32);
    this.w(MMIO.queueDescHigh, Math.floor(ring.descTable / 2 ** 32));
    this.w(MMIO.queueDriverLow, ring.availRing % 2 ** 32);
    this.w(MMIO.queueDriverHigh, Math.floor(ring.availRing / 2 ** 32));
    this.w(MMIO.queueDeviceLow, ring.usedRing % 2 ** 32);
    this.w(MMIO.queueDeviceHigh, Math.floor(ring.usedRing / 2 ** 32));
  }
  enableQueue(i: number): void {
    this.w(MMIO.queueSel, i);
    this.w(MMIO.queueReady, 1);
  }
  notify(i: number): void {
    this.w(MMIO.queueNotify, i);
  }
  readIsr(): number {
    const s = this.r(MMIO.interruptStatus);
    this.w(MMIO.interruptAck, s);
    return s;
  }
  readConfig(off: number, width: 1 | 2 | 4): number {
    return this.transport.read(MMIO.config + off, width);
  }
  writeConfig(off: number, width: 1 | 2 | 4, v: number): void {
    this.transport.write(MMIO.config + off, width, v);
  }
  configGeneration(): number {
    return this.r(MMIO.configGeneration);
  }
}

// ---------------------------------------------------------------- PCI configuration space

/**
 * What firmware (SeaBIOS) does before the OS runs: size every BAR by writing all ones, place it,
 * and enable I/O, memory and bus mastering in the command register.
 */
export function assignBars(t: VirtioPciTransport, ioBase = 0xc000, memBase = 0xfe00_0000): AssignedBar[] {
  const out: AssignedBar[] = [];
  const next = { io: ioBase, memory: memBase };
  for (let i = 0; i < 6; i++) {
    const { size, kind } = barInfo(t, i);
    if (size === 0) continue;
    const address = Math.ceil(next[kind] / size) * size;
    next[kind] = address + size;
    t.configWrite(0x10 + 4 * i, 4, address);
    out.push({ index: i, kind, size, address });
  }
  t.configWrite(0x04, 2, t.configRead(0x04, 2) | 0x7);
  return out;
}

/** BAR `bar`'s size and kind, by sizing it (0 size: not implemented). */
function barInfo(t: VirtioPciTransport, bar: number): { size: number; kind: 'io' | 'memory' } {
  const reg = 0x10 + 4 * bar;
  const orig = t.configRead(reg, 4);
  t.configWrite(reg, 4, 0xffff_ffff);
  const mask = t.configRead(reg, 4);
  t.configWrite(reg, 4, orig);
  if (mask === 0) return { size: 0, kind: 'memory' };
  const kind = (mask & 1) === 1 ? 'io' : 'memory';
  return { size: ((~(mask & (kind === 'io' ? ~0x3 : ~0xf)) >>> 0) + 1) >>> 0, kind };
}

/**
 * Linux's virtio_pci_find_capability for every cfg_type, plus vp_modern_map_capability's checks
 * (length >= minlen, offset alignment, structure inside the BAR). Throws when the device's layout
 * would make Linux refuse it.
 */
export function findVirtioCaps(t: VirtioPciTransport): VirtioCaps {
  if ((t.configRead(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST) === 0) throw new Error('driver-transport: no capability list');
  const found = new Map<number, CapRegion & { multiplier: number }>();
  let pos = t.configRead(PCI_CAPABILITY_LIST, 1) & ~3;
  for (let ttl = PCI_FIND_CAP_TTL; pos >= 0x40 && ttl > 0; ttl--) {
    const id = t.configRead(pos, 1);
    if (id === 0xff) break;
    if (id === PCI_CAP_ID_VNDR) {
      const type = t.configRead(pos + 3, 1);
      const bar = t.configRead(pos + 4, 1);
      // PCI_CFG's bar field is the driver's to write: that capability is found by type alone.
      const usable = type === CAP_PCI_CFG || (bar <= 5 && barInfo(t, bar).size > 0);
      if (usable && !found.has(type)) {
        found.set(type, {
          cap: pos,
          bar,
          offset: t.configRead(pos + 8, 4),
          length: t.configRead(pos + 12, 4),
          multiplier: type === CAP_NOTIFY ? t.configRead(pos + 16, 4) : 0,
        });
      }
    }
    pos = t.configRead(pos + 1, 1) & ~3;
  }
  const need = (type: number, minlen: number, align: number): CapRegion & { multiplier: number } => {
    const c = found.get(type);
    if (c === undefined) throw new Error(`driver-transport: missing virtio capability cfg_type ${type}`);
    checkMap(t, c, minlen, align);
    return c;
  };
  const common = need(CAP_COMMON, LINUX_COMMON_CFG_MINLEN, 4);
  const isr = need(CAP_ISR, 1, 1);
  const notify = need(CAP_NOTIFY, 2, 2);
  const device = found.get(CAP_DEVICE) ?? null;
  if (device !== null) checkMap(t, device, 0, 4);
  return { common, notify, isr, device, pciCfg: found.get(CAP_PCI_CFG) ?? null };
}

function checkMap(t: VirtioPciTransport, c: CapRegion, minlen: number, align: number): void {
  if (c.length < minlen) throw new Error(`driver-transport: capability at ${c.cap} has length ${c.length} < ${minlen}`);
  if (c.offset % align !== 0) throw new Error(`driver-transport: capability at ${c.cap} offset ${c.offset} not aligned to ${align}`);
  const size = barInfo(t, c.bar).size;
  if (c.offset + Math.max(minlen, c.length) > size) throw new Error(`driver-transport: capability at ${c.cap} runs past BAR ${c.bar} (${size} bytes)`);
}

/** Reads through the PCI_CFG capability's window (§4.1.4.9). */
export function pciCfgWindowRead(t: VirtioPciTransport, bar: number, offset: number, length: 1 | 2 | 4): number {
  const cap = findVirtioCaps(t).pciCfg;
  if (cap === null) throw new Error('driver-transport: no PCI_CFG capability');
  t.configWrite(cap.cap + 4, 1, bar);
  t.configWrite(cap.cap + 12, 4, length);
  t.configWrite(cap.cap + 8, 4, offset);
  return t.configRead(cap.cap + 16, 4) & (length === 4 ? 0xffff_ffff : length === 2 ? 0xffff : 0xff);
}

/** Writes through the PCI_CFG capability's window (§4.1.4.9). */
export function pciCfgWindowWrite(t: VirtioPciTransport, bar: number, offset: number, length: 1 | 2 | 4, value: number): void {
  const cap = findVirtioCaps(t).pciCfg;
  if (cap === null) throw new Error('driver-transport: no PCI_CFG capability');
  t.configWrite(cap.cap + 4, 1, bar);
  t.configWrite(cap.cap + 12, 4, length);
  t.configWrite(cap.cap + 8, 4, offset);
  t.configWrite(cap.cap + 16, length, value);
}

// ---------------------------------------------------------------- PCI modern (virtio_pci_modern_dev.c)

class PciModernDriver implements DriverTransport {
  readonly kind = 'pci' as const;
  readonly caps: VirtioCaps;
  constructor(readonly transport: VirtioPciTransport) {
    this.caps = findVirtioCaps(transport);
  }
  private cr(off: number, w: 1 | 2 | 4): number {
    return this.transport.barRead(this.caps.common.bar, this.caps.common.offset + off, w);
  }
  private cw(off: number, w: 1 | 2 | 4, v: number): void {
    this.transport.barWrite(this.caps.common.bar, this.caps.common.offset + off, w, v);
  }
  readStatus(): number {
    return this.cr(COMMON.status, 1);
  }
  writeStatus(v: number): void {
    this.cw(COMMON.status, 1, v);
  }
  readDeviceFeatures(): bigint {
    this.cw(COMMON.dfselect, 4, 0);
    const lo = BigInt(this.cr(COMMON.df, 4));
    this.cw(COMMON.dfselect, 4, 1);
    return (BigInt(this.cr(COMMON.df, 4)) << 32n) | lo;
  }
  writeDriverFeatures(f: bigint): void {
    this.cw(COMMON.gfselect, 4, 0);
    this.cw(COMMON.gf, 4, Number(f & 0xffff_ffffn));
    this.cw(COMMON.gfselect, 4, 1);
    this.cw(COMMON.gf, 4, Number((f >> 32n) & 0xffff_ffffn));
  }
  queueMaxSize(i: number): number {
    if (i >= this.cr(COMMON.numQueues, 2)) return 0;
    this.cw(COMMON.qSelect, 2, i);
    return this.cr(COMMON.qSize, 2);
  }
  resetQueue(i: number): void {
    this.cw(COMMON.qSelect, 2, i);
    this.cw(COMMON.qReset, 2, 1);
    if (this.cr(COMMON.qReset, 2) !== 0 || this.cr(COMMON.qEnable, 2) !== 0) throw new Error(`driver-transport: PCI queue ${i} did not finish its reset`);
  }
  setupQueue(i: number, ring: AnyGuestRing): void {
    if (i >= this.cr(COMMON.numQueues, 2)) throw new Error(`driver-transport: queue ${i} >= num_queues`);
    this.cw(COMMON.qSelect, 2, i);
    const num = this.cr(COMMON.qSize, 2);
    if (num === 0 || this.cr(COMMON.qEnable, 2) !== 0) throw new Error(`driver-transport: queue ${i} unavailable or already enabled`);
    if (ring.size > num) throw new Error(`driver-transport: ring of ${ring.size} exceeds queue_size ${num}`);
    this.cw(COMMON.qSize, 2, ring.size);
    for (const [lo, addr] of [[COMMON.qDescLo, ring.descTable], [COMMON.qAvailLo, ring.availRing], [COMMON.qUsedLo, ring.usedRing]] as const) {
      this.cw(lo, 4, addr % 2 ** 32);
      this.cw(lo + 4, 4, Math.floor(addr / 2 ** 32));
    }
    this.notifyOffset(i); // Linux maps the notify address during setup_vq and fails there
  }
  enableQueue(i: number): void {
    this.cw(COMMON.qSelect, 2, i);
    this.cw(COMMON.qEnable, 2, 1);
  }
  /** Offset of queue i's notify register in its BAR (vp_modern_map_vq_notify's check included). */
  notifyOffset(i: number): number {
    this.cw(COMMON.qSelect, 2, i);
    const off = this.cr(COMMON.qNotifyOff, 2);
    const n = this.caps.notify;
    if (off * n.multiplier + 2 > n.length) throw new Error(`driver-transport: notify offset ${off} * ${n.multiplier} outside the notify area (${n.length})`);
    return n.offset + off * n.multiplier;
  }
  notify(i: number): void {
    this.transport.barWrite(this.caps.notify.bar, this.notifyOffset(i), 2, i);
  }
  readIsr(): number {
    return this.transport.barRead(this.caps.isr.bar, this.caps.isr.offset, 1);
  }
  readConfig(off: number, width: 1 | 2 | 4): number {
    const dev = this.caps.device;
    if (dev === null) throw new Error('driver-transport: no device config capability');
    return this.transport.barRead(dev.bar, dev.offset + off, width);
  }
  writeConfig(off: number, width: 1 | 2 | 4, v: number): void {
    const dev = this.caps.device;
    if (dev === null) throw new Error('driver-transport: no device config capability');
    this.transport.barWrite(dev.bar, dev.offset + off, width, v);
  }
  configGeneration(): number {
    return this.cr(COMMON.generation, 1);
  }
}

// ---------------------------------------------------------------- PCI legacy (virtio_pci_legacy_dev.c)

class PciLegacyDriver implements DriverTransport {
  readonly kind = 'pci-legacy' as const;
  constructor(readonly transport: VirtioPciTransport) {
    if (transport.configRead(0x08, 1) !== 0) throw new Error('driver-transport: legacy driver needs PCI revision 0');
    const id = transport.configRead(0x02, 2);
    if (id < 0x1000 || id > 0x103f) throw new Error(`driver-transport: device id 0x${id.toString(16)} is not transitional`);
    if ((transport.configRead(0x10, 4) & 1) !== 1) throw new Error('driver-transport: BAR0 is not an I/O BAR');
  }
  private r(off: number, w: 1 | 2 | 4): number {
    return this.transport.barRead(0, off, w);
  }
  private w(off: number, w: 1 | 2 | 4, v: number): void {
    this.transport.barWrite(0, off, w, v);
  }
  readStatus(): number {
    return this.r(LEGACY.status, 1);
  }
  writeStatus(v: number): void {
    this.w(LEGACY.status, 1, v);
  }
  readDeviceFeatures(): bigint {
    return BigInt(this.r(LEGACY.hostFeatures, 4));
  }
  writeDriverFeatures(f: bigint): void {
    this.w(LEGACY.guestFeatures, 4, Number(f & 0xffff_ffffn));
  }
  queueMaxSize(i: number): number {
    this.w(LEGACY.queueSel, 2, i);
    return this.r(LEGACY.queueNum, 2);
  }
  resetQueue(): void {
    throw new Error('driver-transport: the legacy interface has no queue reset');
  }
  setupQueue(i: number, ring: AnyGuestRing): void {
    this.w(LEGACY.queueSel, 2, i);
    const num = this.r(LEGACY.queueNum, 2);
    if (num === 0 || this.r(LEGACY.queuePfn, 4) !== 0) throw new Error(`driver-transport: legacy queue ${i} unavailable or in use`);
    const want = legacyRingLayout(ring.descTable, num);
    if (ring.size !== num || ring.availRing !== want.availRing || ring.usedRing !== want.usedRing) {
      throw new Error(`driver-transport: legacy queue ${i} needs the legacy layout of size ${num} (use legacyRingLayout)`);
    }
    this.w(LEGACY.queuePfn, 4, ring.descTable / LEGACY_QUEUE_ALIGN);
  }
  enableQueue(): void {
    // The page number write enabled the queue.
  }
  notify(i: number): void {
    this.w(LEGACY.queueNotify, 2, i);
  }
  readIsr(): number {
    return this.r(LEGACY.isr, 1);
  }
  readConfig(off: number, width: 1 | 2 | 4): number {
    return this.r(LEGACY.config + off, width);
  }
  writeConfig(off: number, width: 1 | 2 | 4, v: number): void {
    this.w(LEGACY.config + off, width, v);
  }
  configGeneration(): number {
    return 0;
  }
}
