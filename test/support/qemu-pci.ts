// The guest-driver side of virtio over PCI (VIRTIO 1.2 §4.1), played through qtest port and MMIO
// accesses: find the virtio-net function on bus 0 with configuration mechanism #1 (PCI 3.0
// §3.2.2.3.2), program its BARs as firmware would (§6.2.5), then talk to it through either the
// legacy I/O BAR (§4.1.4.10) or the modern capabilities in a memory BAR (§4.1.4).

import type { QtestChannel } from './qemu-qtest.js';
import * as C from './qemu-virtio-constants.js';

/** Where the oracle puts the BARs: a free I/O range and the top of the 32-bit PCI hole. */
const IO_BAR_BASE = 0xc000;
const MEM_BAR_BASE = 0xfe00_0000;

/** Guest-physical addresses of one split virtqueue (the legacy layout fits both interfaces). */
export interface QueueAddresses {
  size: number;
  descTable: number;
  availRing: number;
  usedRing: number;
}

/** Register access a driver needs, the same for the legacy and the modern interface. */
export interface VirtioPciDriver {
  readonly kind: 'legacy' | 'modern';
  readonly slot: number;
  readonly deviceId: number;
  readStatus(): Promise<number>;
  writeStatus(status: number): Promise<void>;
  readDeviceFeatures(): Promise<bigint>;
  writeDriverFeatures(features: bigint): Promise<void>;
  /** The device's size for queue `index` (0 = the queue does not exist). */
  queueMaxSize(index: number): Promise<number>;
  setupQueue(index: number, queue: QueueAddresses): Promise<void>;
  notify(index: number): Promise<void>;
  readConfig(offset: number, width: 1 | 2 | 4): Promise<number>;
}

/** PCI configuration space of one bus-0 function, through ports 0xcf8/0xcfc. */
export class PciConfig {
  constructor(
    private readonly qt: QtestChannel,
    readonly slot: number,
  ) {}

  async read(offset: number, width: 1 | 2 | 4): Promise<number> {
    await this.qt.outl(C.PCI_CONFIG_ADDRESS_PORT, this.address(offset));
    const port = C.PCI_CONFIG_DATA_PORT + (offset & 3);
    if (width === 1) return this.qt.inb(port);
    if (width === 2) return this.qt.inw(port);
    return this.qt.inl(port);
  }

  async write(offset: number, width: 1 | 2 | 4, value: number): Promise<void> {
    await this.qt.outl(C.PCI_CONFIG_ADDRESS_PORT, this.address(offset));
    const port = C.PCI_CONFIG_DATA_PORT + (offset & 3);
    if (width === 1) await this.qt.outb(port, value);
    else if (width === 2) await this.qt.outw(port, value);
    else await this.qt.outl(port, value);
  }

  private address(offset: number): number {
    return (C.PCI_CONFIG_ENABLE | (this.slot << 11) | (offset & 0xfc)) >>> 0;
  }
}

/** Scans bus 0 for a virtio-net function; null when there is none. */
export async function findVirtioNet(qt: QtestChannel): Promise<{ config: PciConfig; deviceId: number } | null> {
  for (let slot = 0; slot < C.PCI_SLOTS; slot++) {
    const config = new PciConfig(qt, slot);
    const id = await config.read(C.PCI_VENDOR_ID, 4);
    const vendor = id & 0xffff;
    const deviceId = id >>> 16;
    if (vendor !== C.VIRTIO_PCI_VENDOR) continue;
    if (deviceId === C.VIRTIO_NET_TRANSITIONAL_DEVICE_ID || deviceId === C.VIRTIO_NET_MODERN_DEVICE_ID) {
      return { config, deviceId };
    }
  }
  return null;
}

/** Sizes a BAR by the all-ones probe (PCI 3.0 §6.2.5.1) and returns its size in bytes. */
async function barSize(config: PciConfig, bar: number, mask: number): Promise<number> {
  const offset = C.PCI_BAR0 + bar * 4;
  const original = await config.read(offset, 4);
  await config.write(offset, 4, 0xffff_ffff);
  const probed = await config.read(offset, 4);
  await config.write(offset, 4, original);
  const bits = (probed & mask) >>> 0;
  return bits === 0 ? 0 : ((~bits >>> 0) + 1) >>> 0;
}

/** Programs BAR0 (I/O) and enables I/O decoding and bus mastering; returns the legacy driver. */
export async function openLegacy(config: PciConfig, deviceId: number, qt: QtestChannel): Promise<VirtioPciDriver> {
  if (deviceId !== C.VIRTIO_NET_TRANSITIONAL_DEVICE_ID) {
    throw new Error(`legacy: the virtio-net function (device id 0x${deviceId.toString(16)}) has no legacy interface`);
  }
  const bar0 = await config.read(C.PCI_BAR0, 4);
  if ((bar0 & C.PCI_BAR_IO) === 0) throw new Error('legacy: BAR0 of the transitional function is not an I/O BAR');
  if ((await barSize(config, 0, 0xffff_fffc)) === 0) throw new Error('legacy: BAR0 is not implemented');
  await config.write(C.PCI_BAR0, 4, IO_BAR_BASE);
  await config.write(C.PCI_COMMAND, 2, C.PCI_COMMAND_IO | C.PCI_COMMAND_MASTER);
  return new LegacyDriver(qt, config.slot, deviceId, IO_BAR_BASE);
}

class LegacyDriver implements VirtioPciDriver {
  readonly kind = 'legacy' as const;
  constructor(
    private readonly qt: QtestChannel,
    readonly slot: number,
    readonly deviceId: number,
    private readonly base: number,
  ) {}
  readStatus(): Promise<number> {
    return this.qt.inb(this.base + C.LEGACY_STATUS);
  }
  writeStatus(status: number): Promise<void> {
    return this.qt.outb(this.base + C.LEGACY_STATUS, status);
  }
  async readDeviceFeatures(): Promise<bigint> {
    return BigInt(await this.qt.inl(this.base + C.LEGACY_HOST_FEATURES));
  }
  writeDriverFeatures(features: bigint): Promise<void> {
    if (features >> 32n !== 0n) throw new Error('legacy: feature bits above 31 cannot be negotiated through the legacy interface');
    return this.qt.outl(this.base + C.LEGACY_GUEST_FEATURES, Number(features));
  }
  async queueMaxSize(index: number): Promise<number> {
    await this.qt.outw(this.base + C.LEGACY_QUEUE_SEL, index);
    return this.qt.inw(this.base + C.LEGACY_QUEUE_NUM);
  }
  async setupQueue(index: number, q: QueueAddresses): Promise<void> {
    // The legacy interface derives avail and used from the PFN with a fixed layout (§4.1.4.10).
    const expectedUsed = alignUp(q.descTable + q.size * C.VIRTQ_DESC_SIZE + 6 + 2 * q.size, C.LEGACY_VRING_ALIGN);
    if (q.descTable % (1 << C.LEGACY_PAGE_SHIFT) !== 0 || q.availRing !== q.descTable + q.size * C.VIRTQ_DESC_SIZE || q.usedRing !== expectedUsed) {
      throw new Error(`legacy: queue ${index} addresses do not follow the legacy layout`);
    }
    await this.qt.outw(this.base + C.LEGACY_QUEUE_SEL, index);
    await this.qt.outl(this.base + C.LEGACY_QUEUE_PFN, q.descTable >>> C.LEGACY_PAGE_SHIFT);
  }
  notify(index: number): Promise<void> {
    return this.qt.outw(this.base + C.LEGACY_QUEUE_NOTIFY, index);
  }
  readConfig(offset: number, width: 1 | 2 | 4): Promise<number> {
    const port = this.base + C.LEGACY_DEVICE_CONFIG + offset;
    if (width === 1) return this.qt.inb(port);
    if (width === 2) return this.qt.inw(port);
    return this.qt.inl(port);
  }
}

interface CapRegion {
  bar: number;
  offset: number;
  length: number;
  notifyMultiplier: number;
}

/** Walks the capability list, programs the BARs the virtio capabilities use, enables memory. */
export async function openModern(config: PciConfig, deviceId: number, qt: QtestChannel): Promise<VirtioPciDriver> {
  const status = await config.read(C.PCI_STATUS, 2);
  if ((status & C.PCI_STATUS_CAP_LIST) === 0) throw new Error('modern: the virtio-net function has no capability list');
  const caps = new Map<number, CapRegion>();
  let pointer = (await config.read(C.PCI_CAPABILITY_LIST, 1)) & 0xfc;
  // A capability list is at most 48 entries in 256 bytes of config space: bounds a looping list.
  for (let seen = 0; pointer !== 0 && seen < 48; seen++) {
    const id = await config.read(pointer, 1);
    const next = (await config.read(pointer + 1, 1)) & 0xfc;
    if (id === C.PCI_CAP_ID_VENDOR) {
      const cfgType = await config.read(pointer + C.VIRTIO_PCI_CAP_CFG_TYPE, 1);
      if (!caps.has(cfgType)) {
        caps.set(cfgType, {
          bar: await config.read(pointer + C.VIRTIO_PCI_CAP_BAR, 1),
          offset: await config.read(pointer + C.VIRTIO_PCI_CAP_OFFSET, 4),
          length: await config.read(pointer + C.VIRTIO_PCI_CAP_LENGTH, 4),
          notifyMultiplier: cfgType === C.VIRTIO_PCI_CAP_NOTIFY_CFG ? await config.read(pointer + C.VIRTIO_PCI_NOTIFY_CAP_MULT, 4) : 0,
        });
      }
    }
    pointer = next;
  }
  const need = [C.VIRTIO_PCI_CAP_COMMON_CFG, C.VIRTIO_PCI_CAP_NOTIFY_CFG, C.VIRTIO_PCI_CAP_ISR_CFG, C.VIRTIO_PCI_CAP_DEVICE_CFG];
  const regions = need.map((t) => {
    const cap = caps.get(t);
    if (cap === undefined) throw new Error(`modern: virtio capability cfg_type ${t} is missing`);
    return cap;
  });
  const bars = new Set(regions.map((r) => r.bar));
  const barBase = new Map<number, number>();
  let next = MEM_BAR_BASE;
  for (const bar of bars) {
    const offset = C.PCI_BAR0 + bar * 4;
    const low = await config.read(offset, 4);
    if ((low & C.PCI_BAR_IO) !== 0) throw new Error(`modern: BAR${bar} holding virtio capabilities is an I/O BAR`);
    const size = await barSize(config, bar, 0xffff_fff0);
    if (size === 0) throw new Error(`modern: BAR${bar} is not implemented`);
    const base = alignUp(next, size);
    await config.write(offset, 4, base);
    if ((low & C.PCI_BAR_MEM_TYPE_MASK) === C.PCI_BAR_MEM_TYPE_64) await config.write(offset + 4, 4, 0);
    barBase.set(bar, base);
    next = base + size;
  }
  await config.write(C.PCI_COMMAND, 2, C.PCI_COMMAND_MEMORY | C.PCI_COMMAND_MASTER);
  const at = (r: CapRegion): number => (barBase.get(r.bar) ?? 0) + r.offset;
  const [common, notify, , device] = regions as [CapRegion, CapRegion, CapRegion, CapRegion];
  return new ModernDriver(qt, config.slot, deviceId, at(common), at(notify), notify.notifyMultiplier, at(device));
}

class ModernDriver implements VirtioPciDriver {
  readonly kind = 'modern' as const;
  /** queue_notify_off of each queue set up, read once at setup (§4.1.4.4). */
  private readonly notifyOff = new Map<number, number>();
  constructor(
    private readonly qt: QtestChannel,
    readonly slot: number,
    readonly deviceId: number,
    private readonly common: number,
    private readonly notifyBase: number,
    private readonly notifyMultiplier: number,
    private readonly device: number,
  ) {}
  readStatus(): Promise<number> {
    return this.qt.mmioRead(this.common + C.COMMON_STATUS, 1);
  }
  writeStatus(status: number): Promise<void> {
    return this.qt.mmioWrite(this.common + C.COMMON_STATUS, 1, status);
  }
  async readDeviceFeatures(): Promise<bigint> {
    await this.qt.mmioWrite(this.common + C.COMMON_DFSELECT, 4, 0);
    const low = await this.qt.mmioRead(this.common + C.COMMON_DF, 4);
    await this.qt.mmioWrite(this.common + C.COMMON_DFSELECT, 4, 1);
    const high = await this.qt.mmioRead(this.common + C.COMMON_DF, 4);
    return (BigInt(high) << 32n) | BigInt(low);
  }
  async writeDriverFeatures(features: bigint): Promise<void> {
    await this.qt.mmioWrite(this.common + C.COMMON_GFSELECT, 4, 0);
    await this.qt.mmioWrite(this.common + C.COMMON_GF, 4, Number(features & 0xffff_ffffn));
    await this.qt.mmioWrite(this.common + C.COMMON_GFSELECT, 4, 1);
    await this.qt.mmioWrite(this.common + C.COMMON_GF, 4, Number(features >> 32n));
  }
  async queueMaxSize(index: number): Promise<number> {
    const count = await this.qt.mmioRead(this.common + C.COMMON_NUMQ, 2);
    if (index >= count) return 0;
    await this.qt.mmioWrite(this.common + C.COMMON_Q_SELECT, 2, index);
    return this.qt.mmioRead(this.common + C.COMMON_Q_SIZE, 2);
  }
  async setupQueue(index: number, q: QueueAddresses): Promise<void> {
    const c = this.common;
    await this.qt.mmioWrite(c + C.COMMON_Q_SELECT, 2, index);
    await this.qt.mmioWrite(c + C.COMMON_Q_SIZE, 2, q.size);
    await this.qt.mmioWrite(c + C.COMMON_Q_DESCLO, 4, q.descTable);
    await this.qt.mmioWrite(c + C.COMMON_Q_DESCHI, 4, 0);
    await this.qt.mmioWrite(c + C.COMMON_Q_AVAILLO, 4, q.availRing);
    await this.qt.mmioWrite(c + C.COMMON_Q_AVAILHI, 4, 0);
    await this.qt.mmioWrite(c + C.COMMON_Q_USEDLO, 4, q.usedRing);
    await this.qt.mmioWrite(c + C.COMMON_Q_USEDHI, 4, 0);
    this.notifyOff.set(index, await this.qt.mmioRead(c + C.COMMON_Q_NOFF, 2));
    await this.qt.mmioWrite(c + C.COMMON_Q_ENABLE, 2, 1);
  }
  async notify(index: number): Promise<void> {
    const off = this.notifyOff.get(index);
    if (off === undefined) throw new Error(`modern: queue ${index} was not set up`);
    await this.qt.mmioWrite(this.notifyBase + off * this.notifyMultiplier, 2, index);
  }
  readConfig(offset: number, width: 1 | 2 | 4): Promise<number> {
    return this.qt.mmioRead(this.device + offset, width);
  }
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
