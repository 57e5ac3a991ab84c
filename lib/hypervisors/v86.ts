// A virtio device as a PCI function of a v86 emulator (VIRTIO 1.2 §4.1 virtio over PCI; the v86
// internals used are listed in shared/design/REAL-GUEST.md and pinned to npm v86 0.5.462).
//
// Data flow:
//   guest IN/OUT on BAR0 ports → v86 io.ports entries registered here → transport.barRead/Write
//   guest config cycles (0xCF8/0xCFC) → v86's PCI bus → hooks on this bus instance:
//     reads of our function (except the BARs and ROM BAR, which v86 itself keeps and relocates)
//     come live from transport.configRead; writes go to v86 (BAR moves) AND transport.configWrite
//   transport onInterrupt(level) → pci.raise_irq / lower_irq (INTx pin A through the PIIX PIRQ
//     routing SeaBIOS programs; no MSI/MSI-X in v86)
//   device DMA → V86GuestMemory over cpu.mem8, jit_dirty_cache over every written range
//
// Register before the BIOS runs (`autostart: false`, in the 'emulator-loaded' handler, before
// `emulator.run()`) so SeaBIOS enumerates the function and assigns its I/O BAR.

import { VirtioPciTransport } from '../../devices/virtio/pci-transport.js';
import type { VirtioDevice } from '../../devices/virtio/virtio-device.js';
import { V86GuestMemory } from './v86-memory.js';
import type { V86CpuMemory } from './v86-memory.js';
import { V86_STATE_INDEX_BASE, hasDeviceState, hookV86State } from './v86-state.js';
import type { V86StateCpu } from './v86-state.js';
import { announcesMac } from '../netdev/netdev.js';

/** The v86 internals this adapter reaches (present in the npm build of 0.5.462). */
export interface V86PortEntry {
  device: unknown;
}
export interface V86Io {
  ports: V86PortEntry[];
  register_read(port: number, device: object, r8?: () => number, r16?: () => number, r32?: () => number): void;
  register_write(port: number, device: object, w8?: (v: number) => void, w16?: (v: number) => void, w32?: (v: number) => void): void;
}
export interface V86Pci {
  devices: unknown[];
  pci_addr: Uint8Array;
  pci_response32: Int32Array;
  register_device(dev: { name: string; pci_id: number; pci_space: number[]; pci_bars: { size: number }[] }): Int32Array;
  raise_irq(pciId: number): void;
  lower_irq(pciId: number): void;
  pci_query(): void;
  pci_write8(address: number, value: number): void;
  pci_write16(address: number, value: number): void;
  pci_write32(address: number, value: number): void;
}
export interface V86Cpu extends V86CpuMemory, V86StateCpu {
  io: V86Io;
  devices: { pci: V86Pci };
}
/** What attachToV86 needs of the `V86` emulator object. */
export interface V86EmulatorLike {
  v86?: { cpu?: V86Cpu };
}

export interface AttachToV86Options {
  /** A transitional device with the legacy register header (default false: modern only). */
  legacy?: boolean;
  /**
   * Offer the modern interface (default true); `false` with `legacy: true` is a legacy-only device
   * (no virtio capabilities, only the legacy header in BAR0: QEMU's disable-modern=on).
   */
  modern?: boolean;
  /** PCI device number on bus 0, 1..31 (default 13: free in v86's default machine). */
  slot?: number;
  /** I/O port where BAR0 sits until the BIOS moves it (default 0xB000; >= 0x1000, aligned to the BAR size). */
  ioBase?: number;
  /** Name v86 logs for the function (default "virtio-net-model"). */
  name?: string;
}

/** What attachToV86 returns. */
export interface V86Attachment {
  readonly transport: VirtioPciTransport;
  readonly device: VirtioDevice;
  readonly memory: V86GuestMemory;
  /** v86's PCI id of the function (slot << 3). */
  readonly pciId: number;
  /** I/O port base of BAR0 as the guest last programmed it. */
  readonly ioBase: number;
  /** INTx level changes so far (raised + lowered), for diagnostics. */
  readonly interruptChanges: number;
  /**
   * Index of the device's entry in v86's CPU state array (v86-state.ts), or null when the device
   * has no saveState / restoreState: then v86's save_state carries no device state.
   */
  readonly stateIndex: number | null;
  /** Times v86's restore_state restored this function. */
  readonly restores: number;
}

/** Slots v86 0.5.462 uses itself: host bridge, ISA bridge, ne2k, ACPI, extra ne2k, its virtio devices, VGA, IDE. */
const V86_USED_SLOTS = new Set([0x00, 0x01, 0x05, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x12, 0x1e]);
const DEFAULT_SLOT = 0x0d;
const DEFAULT_IO_BASE = 0xb000;
/** v86 only relocates I/O ports at or above 0x1000 (set_io_bars). */
const IO_RELOCATABLE_MIN = 0x1000;
const IO_SPACE_END = 0x10000;
const PCI_COMMAND = 0x04;
const PCI_BAR0 = 0x10;
const PCI_INTERRUPT_LINE = 0x3c;
const PCI_BAR_END = 0x28;
const PCI_ROM_ADDRESS = 0x30;
const PCI_CONFIG_SIZE = 256;

/**
 * Memory for a device that attachToV86 will plug into `emulator`: pass it as the device's
 * `memory`. Call in the 'emulator-loaded' handler (v86's CPU must exist).
 */
export function v86GuestMemory(emulator: V86EmulatorLike): V86GuestMemory {
  return new V86GuestMemory(cpuOf(emulator, 'v86GuestMemory'));
}

/**
 * Plugs `device` into `emulator` as a virtio-pci function on an I/O BAR. `device` is either a
 * device built on `v86GuestMemory(emulator)`, or a factory called with that memory.
 */
export function attachToV86(
  emulator: V86EmulatorLike,
  device: VirtioDevice | ((memory: V86GuestMemory) => VirtioDevice),
  options: AttachToV86Options = {},
): V86Attachment {
  const cpu = cpuOf(emulator, 'attachToV86');
  if (options === null || typeof options !== 'object') throw new TypeError('attachToV86: options must be an object { legacy?, modern?, slot?, ioBase?, name? }');
  const slot = options.slot ?? DEFAULT_SLOT;
  if (!Number.isInteger(slot) || slot < 1 || slot > 31 || V86_USED_SLOTS.has(slot)) {
    throw new RangeError(`attachToV86: options.slot must be an integer 1..31 not used by v86 (${[...V86_USED_SLOTS].join(', ')}), got ${String(slot)}`);
  }
  const pci = cpu.devices.pci;
  const pciId = slot << 3;
  if (pci.devices[pciId] !== undefined) throw new RangeError(`attachToV86: PCI slot ${slot} is already taken`);

  let memory: V86GuestMemory;
  let dev: VirtioDevice;
  if (typeof device === 'function') {
    memory = new V86GuestMemory(cpu);
    dev = device(memory);
  } else {
    dev = device;
    if (!(dev.memory instanceof V86GuestMemory)) {
      throw new TypeError('attachToV86: the device must be built with memory: v86GuestMemory(emulator), or pass a factory (memory) => device');
    }
    memory = dev.memory;
  }

  let interruptChanges = 0;
  const transport = new VirtioPciTransport(dev, {
    legacy: options.legacy ?? false,
    ...(options.modern !== undefined ? { modern: options.modern } : {}),
    onInterrupt: (asserted) => {
      interruptChanges++;
      if (asserted) pci.raise_irq(pciId);
      else pci.lower_irq(pciId);
    },
  });
  const barSize = transport.layout.barSize;
  if ((barSize & (barSize - 1)) !== 0) throw new Error(`attachToV86: BAR0 size ${barSize} is not a power of two (v86 needs one)`);
  const ioBase = options.ioBase ?? DEFAULT_IO_BASE;
  if (!Number.isInteger(ioBase) || ioBase < IO_RELOCATABLE_MIN || ioBase + barSize > IO_SPACE_END || ioBase % barSize !== 0) {
    throw new RangeError(`attachToV86: options.ioBase must be a multiple of the BAR size ${barSize} in [0x1000, 0x10000), got ${String(ioBase)}`);
  }
  for (let p = ioBase; p < ioBase + barSize; p++) {
    if (cpu.io.ports[p]?.device !== undefined) throw new RangeError(`attachToV86: I/O port 0x${p.toString(16)} is already in use; choose another options.ioBase`);
  }

  const name = options.name ?? 'virtio-net-model';
  const owner = { name };
  for (let off = 0; off < barSize; off++) {
    const o = off;
    const fits2 = o + 2 <= barSize;
    const fits4 = o + 4 <= barSize;
    cpu.io.register_read(
      ioBase + o,
      owner,
      () => transport.barRead(0, o, 1),
      fits2 ? () => transport.barRead(0, o, 2) : undefined,
      fits4 ? () => transport.barRead(0, o, 4) | 0 : undefined,
    );
    cpu.io.register_write(
      ioBase + o,
      owner,
      (v) => transport.barWrite(0, o, 1, v),
      fits2 ? (v) => transport.barWrite(0, o, 2, v) : undefined,
      fits4 ? (v) => transport.barWrite(0, o, 4, v) : undefined,
    );
  }

  transport.configWrite(PCI_BAR0, 4, ioBase | 1);
  const space: number[] = [];
  for (let off = 0; off < PCI_CONFIG_SIZE; off++) space.push(transport.configRead(off, 1));
  // v86's own copy of our configuration space: what it answers BAR reads from and saves in its image.
  const v86Space = pci.register_device({ name, pci_id: pciId, pci_space: space, pci_bars: [{ size: barSize }] });
  let currentBase = ioBase;
  hookConfigCycles(pci, pciId, transport, (bar0) => {
    currentBase = bar0 & 0xfffc;
  });

  // Device state in v86's save_state() / restore_state() (v86-state.ts). After a restore the
  // transport takes BAR0 from v86 (which moved the ports there) and the command register and
  // interrupt line from the saved config bytes, and a netdev on v86's bus announces the (restored)
  // MAC, as v86's NICs do.
  const stateful = hasDeviceState(dev) ? dev : null;
  const stateIndex = V86_STATE_INDEX_BASE + slot;
  let restores = 0;
  hookV86State(cpu, {
    index: stateIndex,
    pciId,
    device: stateful,
    saveConfig: () => {
      const bytes = new Uint8Array(PCI_CONFIG_SIZE);
      for (let off = 0; off < PCI_CONFIG_SIZE; off++) bytes[off] = transport.configRead(off, 1);
      return bytes;
    },
    restored: (config) => {
      restores++;
      const bar0 = v86Space[PCI_BAR0 >> 2]! >>> 0;
      transport.configWrite(PCI_BAR0, 4, bar0);
      currentBase = bar0 & 0xfffc;
      transport.configWrite(PCI_INTERRUPT_LINE, 1, config[PCI_INTERRUPT_LINE]!);
      transport.configWrite(PCI_COMMAND, 2, config[PCI_COMMAND]! | (config[PCI_COMMAND + 1]! << 8));
      const netdev = (dev as { netdev?: unknown }).netdev;
      if (announcesMac(netdev)) netdev.announceMac();
    },
  });

  return {
    transport,
    device: dev,
    memory,
    pciId,
    get ioBase() {
      return currentBase;
    },
    get interruptChanges() {
      return interruptChanges;
    },
    stateIndex: stateful === null ? null : stateIndex,
    get restores() {
      return restores;
    },
  };
}

/**
 * Routes configuration cycles for `pciId` to the transport: reads live (the status register's
 * interrupt bit and the PCI_CFG window change under the guest), writes to both v86 (which keeps
 * the BARs and moves the I/O handlers) and the transport. Chains earlier hooks, so several
 * devices can be attached.
 */
function hookConfigCycles(pci: V86Pci, pciId: number, transport: VirtioPciTransport, bar0Written: (value: number) => void): void {
  const query = pci.pci_query;
  pci.pci_query = function (this: V86Pci): void {
    query.call(this);
    const bdf = (this.pci_addr[2]! << 8) | this.pci_addr[1]!;
    if (bdf !== pciId) return;
    const addr = this.pci_addr[0]! & 0xfc;
    if (keptByV86(addr)) return;
    this.pci_response32[0] = transport.configRead(addr, 4) | 0;
  };
  const forward = (width: 1 | 2 | 4, original: (address: number, value: number) => void): ((this: V86Pci, address: number, value: number) => void) =>
    function (this: V86Pci, address: number, value: number): void {
      original.call(this, address, value);
      if (((address >> 8) & 0xffff) !== pciId) return;
      const addr = address & 0xff;
      if (addr + width > PCI_CONFIG_SIZE) return;
      transport.configWrite(addr, width, value);
      if (addr === PCI_BAR0 && width === 4) bar0Written(value >>> 0);
    };
  pci.pci_write8 = forward(1, pci.pci_write8);
  pci.pci_write16 = forward(2, pci.pci_write16);
  pci.pci_write32 = forward(4, pci.pci_write32);
}

function keptByV86(addr: number): boolean {
  return (addr >= PCI_BAR0 && addr < PCI_BAR_END) || addr === PCI_ROM_ADDRESS;
}

function cpuOf(emulator: V86EmulatorLike, fn: string): V86Cpu {
  const cpu = emulator?.v86?.cpu;
  if (cpu === undefined || typeof cpu !== 'object' || cpu.devices?.pci === undefined || cpu.io === undefined) {
    throw new TypeError(`${fn}: emulator must be a loaded v86 emulator (call it in the 'emulator-loaded' handler, before run())`);
  }
  return cpu;
}
