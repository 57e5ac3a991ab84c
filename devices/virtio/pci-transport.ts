// virtio over PCI (VIRTIO 1.2 §4.1): one function with a PCI configuration space carrying the virtio
// capabilities, and one I/O BAR (BAR0) holding every structure (see pci-layout.ts for the map).
//
// - Modern (default): device ID 0x1040 + type, revision 1 (§4.1.2.1).
// - `legacy: true`: a transitional device, device ID 0x1000-0x103f, revision 0, subsystem ID =
//   device type (§4.1.2.3), with the legacy header at the start of BAR0 (§4.1.4.10) and the modern
//   structures after it.
// - `legacy: true, modern: false`: legacy-only (QEMU's disable-modern=on): the same transitional
//   identity, BAR0 holds only the legacy header + device cfg, and there are no virtio capabilities,
//   so every driver must use its legacy interface.
//
// Interrupts are INTx on pin A (no MSI-X): the line is asserted while ISR != 0 and the command
// register's INTx-disable bit is clear; reading ISR returns and clears it, which deasserts
// (§4.1.4.5). `onInterrupt` is called on each change of level only.
//
// Accesses to BAR offsets outside every structure, and to structures with the wrong width, are
// driver mistakes (recorded; a read returns 0, a write is ignored). A BAR index other than BAR0, an
// offset past the BAR, or a width other than 1/2/4 is the embedder's mistake and throws.

import type { VirtioDevice } from './virtio-device.js';
import { checkTransportOptions } from './transport-binding.js';
import type { TransportOptions } from './transport-binding.js';
import { PciCommonCfg } from './pci-common-cfg.js';
import { PciConfigSpace, VIRTIO_BAR } from './pci-config-space.js';
import { PciLegacyHeader } from './pci-legacy.js';
import {
  NOTIFY_OFF_MULTIPLIER,
  PCI_CLASS_OTHER,
  PCI_COMMAND_INTX_DISABLE,
  PCI_CONFIG_SIZE,
  VIRTIO_PCI_CLASS,
  VIRTIO_PCI_MODERN_DEVICE_ID_BASE,
  VIRTIO_PCI_MODERN_SUBSYSTEM_ID,
  VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS,
  VIRTIO_PCI_VENDOR_ID,
  computeBarLayout,
  inRegion,
} from './pci-layout.js';
import type { PciBarLayout } from './pci-layout.js';
import type { PciConfigRegisters } from './pci-config-space.js';
import { DeviceStateError } from '../../lib/base/state-codec.js';
import type { StateReader, StateWriter } from '../../lib/base/state-codec.js';

export interface PciTransportOptions extends TransportOptions {
  /** A transitional device with the legacy header in BAR0 (default false: modern only). */
  legacy?: boolean;
  /**
   * Offer the modern interface (default true). `false` needs `legacy: true`: a legacy-only device
   * with no virtio capabilities and only the legacy header in BAR0.
   */
  modern?: boolean;
}

/** A BAR as the hypervisor must map it. */
export interface PciBarInfo {
  index: number;
  size: number;
  kind: 'io' | 'memory';
  /** Base address the guest (firmware) programmed; 0 until then. */
  address: number;
}

/** PCI-specific sections for codes whose default section is another transport's. */
const PCI_SECTIONS = {
  'queue.config-while-enabled': '4.1.4.3.2',
  'queue.size-above-max': '4.1.4.3',
  'register.access-width': '4.1.3.1',
  'register.read-write-only': '4.1.4.4',
  'register.write-read-only': '4.1.4.3.2',
  'register.unknown-offset': '4.1.4',
} as const;

export class VirtioPciTransport {
  readonly legacy: boolean;
  readonly modern: boolean;
  readonly layout: PciBarLayout;
  private readonly config: PciConfigSpace;
  private readonly common: PciCommonCfg;
  private readonly legacyHeader: PciLegacyHeader | null;
  private readonly onInterrupt: (asserted: boolean) => void;
  private line = false;

  constructor(
    readonly device: VirtioDevice,
    options: PciTransportOptions,
  ) {
    checkTransportOptions('VirtioPciTransport', options);
    if (options.legacy !== undefined && typeof options.legacy !== 'boolean') {
      throw new TypeError('VirtioPciTransport: options.legacy must be true or false');
    }
    if (options.modern !== undefined && typeof options.modern !== 'boolean') {
      throw new TypeError('VirtioPciTransport: options.modern must be true or false');
    }
    this.legacy = options.legacy === true;
    this.modern = options.modern !== false;
    if (!this.modern && !this.legacy) {
      throw new TypeError('VirtioPciTransport: options.modern: false needs options.legacy: true (a device must offer at least one interface)');
    }
    const type = device.deviceType;
    const transitionalId = VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS.get(type);
    if (this.legacy && transitionalId === undefined) {
      throw new RangeError(`VirtioPciTransport: options.legacy is only allowed for device types with a transitional ID (${[...VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS.keys()].join(', ')}), not ${type}`);
    }
    this.onInterrupt = options.onInterrupt;
    device.attachTransport({
      isrChanged: (isr) => this.isrChanged(isr),
      sections: PCI_SECTIONS,
      state: { kind: !this.modern ? 'pci-legacy-only' : this.legacy ? 'pci-legacy' : 'pci', save: (w) => this.saveRegisters(w), load: (r) => this.loadRegisters(r) },
    });
    this.layout = computeBarLayout(device.numQueues, device.configSize, this.legacy, this.modern);
    this.config = new PciConfigSpace(
      device,
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: this.legacy ? transitionalId! : VIRTIO_PCI_MODERN_DEVICE_ID_BASE + type,
        revision: this.legacy ? 0 : 1,
        classCode: VIRTIO_PCI_CLASS.get(type) ?? PCI_CLASS_OTHER,
        subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
        subsystemId: this.legacy ? type : VIRTIO_PCI_MODERN_SUBSYSTEM_ID,
      },
      this.layout,
      { barRead: (b, o, w) => this.barRead(b, o, w), barWrite: (b, o, w, v) => this.barWrite(b, o, w, v) },
    );
    this.common = new PciCommonCfg(device);
    this.legacyHeader = this.legacy ? new PciLegacyHeader(device) : null;
  }

  /** The BARs the hypervisor maps: one I/O BAR. */
  bars(): PciBarInfo[] {
    return [{ index: VIRTIO_BAR, size: this.layout.barSize, kind: 'io', address: this.config.barAddress }];
  }

  /** The interrupt line's current level. */
  get interruptAsserted(): boolean {
    return this.line;
  }

  configRead(offset: number, width: 1 | 2 | 4): number {
    checkConfigAccess('configRead', offset, width);
    return this.config.read(offset, width);
  }

  configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    checkConfigAccess('configWrite', offset, width);
    this.config.write(offset, width, truncate(value, width));
    this.updateLine(); // the INTx-disable bit may have changed
  }

  barRead(bar: number, offset: number, width: 1 | 2 | 4): number {
    this.checkBarAccess('barRead', bar, offset, width);
    const L = this.layout;
    const d = this.device;
    if (this.legacyHeader !== null && inRegion(L.legacy, offset, 1)) return this.legacyHeader.read(offset, width);
    if (inRegion(L.common, offset, 1)) return this.common.read(offset - L.common.offset, width);
    if (inRegion(L.device, offset, 1)) return d.readConfig(offset - L.device.offset, width);
    if (L.isr !== null && offset === L.isr.offset) {
      if (width !== 1) return this.wrongWidth('read', offset, width, 'ISR status is 1 byte', '4.1.4.5');
      return d.readAndClearIsr();
    }
    if (inRegion(L.notify, offset, 1)) {
      d.reportDriverMistake('register.read-write-only', `driver read the notification area at BAR offset ${offset}`, { offset, width });
      return 0;
    }
    d.reportDriverMistake('register.unknown-offset', `driver read ${width} bytes at BAR offset ${offset}, outside every virtio structure`, { offset, width });
    return 0;
  }

  barWrite(bar: number, offset: number, width: 1 | 2 | 4, value: number): void {
    this.checkBarAccess('barWrite', bar, offset, width);
    const L = this.layout;
    const d = this.device;
    const v = truncate(value, width);
    if (this.legacyHeader !== null && inRegion(L.legacy, offset, 1)) return this.legacyHeader.write(offset, width, v);
    if (inRegion(L.common, offset, 1)) return this.common.write(offset - L.common.offset, width, v);
    if (inRegion(L.device, offset, 1)) return d.writeConfig(offset - L.device.offset, width, v);
    if (inRegion(L.notify, offset, 1)) return this.notifyWrite(offset - L.notify.offset, width, v);
    if (L.isr !== null && offset === L.isr.offset) {
      d.reportDriverMistake('register.write-read-only', `driver wrote ISR status`, { offset, width, value: v, section: '4.1.4.5' });
      return;
    }
    d.reportDriverMistake('register.unknown-offset', `driver wrote ${width} bytes at BAR offset ${offset}, outside every virtio structure`, { offset, width, value: v });
  }

  /** §4.1.5.2: a 16-bit write of the queue index at cap.offset + queue_notify_off * multiplier. */
  private notifyWrite(rel: number, width: number, value: number): void {
    const d = this.device;
    if (width !== 2 || rel % NOTIFY_OFF_MULTIPLIER !== 0) {
      this.wrongWidth('write', this.layout.notify!.offset + rel, width, 'a notification is a 16-bit write at the queue slot', '4.1.5.2');
      return;
    }
    const queue = rel / NOTIFY_OFF_MULTIPLIER;
    if (value !== queue) {
      d.reportDriverMistake('notify.value-mismatch', `driver wrote ${value} to the notification slot of queue ${queue}; notifying queue ${queue}`, { queue, value });
    }
    d.notify(queue); // the address decides, as on hardware where the slot is the doorbell
  }

  /** Device state: the PCI configuration registers, common_cfg's selects, the legacy queue_select. */
  private saveRegisters(w: StateWriter): void {
    const c = this.config.exportRegisters();
    w.u16(c.command).u8(c.cacheLineSize).u8(c.latencyTimer).u8(c.interruptLine).u32(c.bar0);
    w.u8(c.cfgBar).u32(c.cfgOffset).u32(c.cfgLength).u32(c.cfgData);
    for (const v of this.common.selects) w.u32(v);
    w.u32(this.legacyHeader?.select ?? 0);
  }

  private loadRegisters(r: StateReader): () => void {
    const c: PciConfigRegisters = {
      command: r.u16('command'),
      cacheLineSize: r.u8('cache line size'),
      latencyTimer: r.u8('latency timer'),
      interruptLine: r.u8('interrupt line'),
      bar0: r.u32('BAR0'),
      cfgBar: r.u8('PCI_CFG bar'),
      cfgOffset: r.u32('PCI_CFG offset'),
      cfgLength: r.u32('PCI_CFG length'),
      cfgData: r.u32('PCI_CFG data'),
    };
    const why = this.config.checkRegisters(c);
    if (why !== null) throw new DeviceStateError('state.corrupt', `PCI configuration: ${why}`);
    const selects = [r.u32('device_feature_select'), r.u32('driver_feature_select'), r.u32('queue_select')] as const;
    const legacySelect = r.u32('legacy queue select');
    return () => {
      this.config.importRegisters(c);
      this.common.setSelects(selects);
      this.legacyHeader?.setSelect(legacySelect);
    };
  }

  private wrongWidth(kind: string, offset: number, width: number, why: string, section: string): number {
    this.device.reportDriverMistake('register.access-width', `driver ${kind} of ${width} bytes at BAR offset ${offset}: ${why}`, { offset, width, section });
    return 0;
  }

  private isrChanged(isr: number): void {
    this.config.setInterruptStatus(isr !== 0);
    this.updateLine();
  }

  private updateLine(): void {
    const asserted = this.device.isr !== 0 && (this.config.command & PCI_COMMAND_INTX_DISABLE) === 0;
    if (asserted === this.line) return;
    this.line = asserted;
    this.onInterrupt(asserted);
  }

  private checkBarAccess(kind: string, bar: number, offset: number, width: number): void {
    if (bar !== VIRTIO_BAR) throw new RangeError(`VirtioPciTransport.${kind}: bar must be ${VIRTIO_BAR} (the only BAR, see bars()), got ${String(bar)}`);
    if (width !== 1 && width !== 2 && width !== 4) throw new RangeError(`VirtioPciTransport.${kind}: width must be 1, 2 or 4, got ${String(width)}`);
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.layout.barSize) {
      throw new RangeError(`VirtioPciTransport.${kind}: offset must be an integer with offset + width <= ${this.layout.barSize} (the BAR size), got ${String(offset)}`);
    }
  }
}

function checkConfigAccess(kind: string, offset: number, width: number): void {
  if (width !== 1 && width !== 2 && width !== 4) throw new RangeError(`VirtioPciTransport.${kind}: width must be 1, 2 or 4, got ${String(width)}`);
  if (!Number.isInteger(offset) || offset < 0 || offset + width > PCI_CONFIG_SIZE) {
    throw new RangeError(`VirtioPciTransport.${kind}: offset must be an integer with offset + width <= ${PCI_CONFIG_SIZE}, got ${String(offset)}`);
  }
}

function truncate(value: number, width: number): number {
  return width === 4 ? value >>> 0 : value & (width === 2 ? 0xffff : 0xff);
}
