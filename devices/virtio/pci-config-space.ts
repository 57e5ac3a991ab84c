// The PCI configuration space of a virtio function (PCI Local Bus 3.0 §6.1-§6.2 the type-0 header,
// §6.2.5.1 BAR sizing, §6.7 the capability list; VIRTIO 1.2 §4.1.2 identity, §4.1.4 the virtio
// vendor capabilities, §4.1.4.9 the PCI_CFG access window).
//
// A 256-byte image with per-register write rules: the command register (IO, memory, bus master,
// parity, SERR, INTx-disable bits stored — the device does not gate its work on them: v86 does not
// emulate decode enables, and DMA here is a function call), BAR0 as an I/O BAR that answers sizing
// writes with its size mask and takes any relocation, the interrupt line, and the PCI_CFG window.
// Status bit 3 (interrupt status) follows the device's ISR (§4.1.4.5.1). Writes to read-only header
// registers are ignored as on real hardware; writes into a virtio capability other than PCI_CFG are
// recorded as driver mistakes (§4.1.4.1). A legacy-only layout (no modern structures) has no
// capability list at all: status bit 4 clear, capabilities pointer 0, no PCI_CFG window.

import type { VirtioDevice } from './virtio-device.js';
import {
  CAP_BAR,
  CAP_CFG_TYPE,
  CAP_LEN,
  CAP_LENGTH,
  CAP_NEXT,
  CAP_NOTIFY_MULTIPLIER,
  CAP_OFFSET,
  CAP_PCI_CFG_DATA,
  CAP_VNDR,
  FIRST_CAP_OFFSET,
  NOTIFY_OFF_MULTIPLIER,
  PCI_BAR0,
  PCI_BAR_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_VENDOR,
  PCI_COMMAND,
  PCI_COMMAND_WRITABLE,
  PCI_CONFIG_SIZE,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_INTERRUPT_PIN_INTA,
  PCI_LATENCY_TIMER,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_CFG_CAP_SIZE,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
} from './pci-layout.js';
import type { BarRegion, PciBarLayout } from './pci-layout.js';

/** Identity registers of the function. */
export interface PciIdentity {
  deviceId: number;
  revision: number;
  classCode: number;
  subsystemVendorId: number;
  subsystemId: number;
  vendorId: number;
}

/** The PCI configuration registers a device state carries (`exportRegisters`). */
export interface PciConfigRegisters {
  readonly command: number;
  readonly cacheLineSize: number;
  readonly latencyTimer: number;
  readonly interruptLine: number;
  readonly bar0: number;
  readonly cfgBar: number;
  readonly cfgOffset: number;
  readonly cfgLength: number;
  readonly cfgData: number;
}

/** What the config space needs from the transport: BAR0 accesses for the PCI_CFG window. */
export interface PciWindowTarget {
  barRead(bar: number, offset: number, width: 1 | 2 | 4): number;
  barWrite(bar: number, offset: number, width: 1 | 2 | 4, value: number): void;
}

/** The BAR that holds every virtio structure. */
export const VIRTIO_BAR = 0;

export class PciConfigSpace {
  private readonly image = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly view = new DataView(this.image.buffer);
  /** Offsets of the capabilities the driver must not write (everything but PCI_CFG's RW fields). */
  private readonly capStart: number;
  private readonly capEnd: number;
  /** Offset of the PCI_CFG capability; null on a legacy-only function (no capabilities). */
  readonly pciCfgCap: number | null;
  /** Regions a PCI_CFG window access may address (§4.1.4.9.2: those other capabilities describe). */
  private readonly windowRegions: BarRegion[];

  constructor(
    private readonly device: VirtioDevice,
    identity: PciIdentity,
    private readonly layout: PciBarLayout,
    private readonly target: PciWindowTarget,
  ) {
    const v = this.view;
    v.setUint16(PCI_VENDOR_ID, identity.vendorId, true);
    v.setUint16(PCI_DEVICE_ID, identity.deviceId, true);
    const modern = layout.common !== null;
    v.setUint16(PCI_STATUS, modern ? PCI_STATUS_CAP_LIST : 0, true);
    v.setUint8(PCI_REVISION_ID, identity.revision);
    v.setUint8(PCI_REVISION_ID + 1, identity.classCode & 0xff);
    v.setUint8(PCI_REVISION_ID + 2, (identity.classCode >> 8) & 0xff);
    v.setUint8(PCI_REVISION_ID + 3, (identity.classCode >> 16) & 0xff);
    v.setUint32(PCI_BAR0 + 4 * VIRTIO_BAR, PCI_BAR_SPACE_IO, true);
    v.setUint16(PCI_SUBSYSTEM_VENDOR_ID, identity.subsystemVendorId, true);
    v.setUint16(PCI_SUBSYSTEM_ID, identity.subsystemId, true);
    v.setUint8(PCI_INTERRUPT_PIN, PCI_INTERRUPT_PIN_INTA);

    // Capability list, in order of preference (§4.1.4): common, notify, ISR, device, PCI_CFG.
    const caps: { type: number; region: BarRegion | null; size: number; extra?: number }[] = (
      modern
        ? [
            { type: VIRTIO_PCI_CAP_COMMON_CFG, region: layout.common, size: VIRTIO_PCI_CAP_SIZE },
            { type: VIRTIO_PCI_CAP_NOTIFY_CFG, region: layout.notify, size: VIRTIO_PCI_NOTIFY_CAP_SIZE, extra: NOTIFY_OFF_MULTIPLIER },
            { type: VIRTIO_PCI_CAP_ISR_CFG, region: layout.isr, size: VIRTIO_PCI_CAP_SIZE },
            { type: VIRTIO_PCI_CAP_DEVICE_CFG, region: layout.device, size: VIRTIO_PCI_CAP_SIZE },
            { type: VIRTIO_PCI_CAP_PCI_CFG, region: { offset: 0, length: 0 }, size: VIRTIO_PCI_CFG_CAP_SIZE },
          ]
        : []
    ).filter((c) => c.region !== null);
    let at = FIRST_CAP_OFFSET;
    let pciCfg: number | null = null;
    v.setUint8(PCI_CAPABILITY_LIST, caps.length > 0 ? at : 0);
    caps.forEach((c, i) => {
      const last = i === caps.length - 1;
      v.setUint8(at + CAP_VNDR, PCI_CAP_ID_VENDOR);
      v.setUint8(at + CAP_NEXT, last ? 0 : at + alignDword(c.size));
      v.setUint8(at + CAP_LEN, c.size);
      v.setUint8(at + CAP_CFG_TYPE, c.type);
      v.setUint8(at + CAP_BAR, VIRTIO_BAR);
      v.setUint32(at + CAP_OFFSET, c.region!.offset, true);
      v.setUint32(at + CAP_LENGTH, c.region!.length, true);
      if (c.extra !== undefined) v.setUint32(at + CAP_NOTIFY_MULTIPLIER, c.extra, true);
      if (c.type === VIRTIO_PCI_CAP_PCI_CFG) pciCfg = at;
      at += alignDword(c.size);
    });
    this.capStart = FIRST_CAP_OFFSET;
    this.capEnd = at;
    this.pciCfgCap = pciCfg;
    this.windowRegions = [layout.common, layout.notify, layout.isr, layout.device].filter((r): r is BarRegion => r !== null);
  }

  /** The command register. */
  get command(): number {
    return this.view.getUint16(PCI_COMMAND, true);
  }

  /** BAR0's programmed I/O base (0 until firmware assigns it). */
  get barAddress(): number {
    return this.view.getUint32(PCI_BAR0 + 4 * VIRTIO_BAR, true) & ~0x3 & ~(this.layout.barSize - 1);
  }

  /**
   * The registers a driver or firmware can change (command, cache line size, latency timer,
   * interrupt line, BAR0, and PCI_CFG's bar / offset / length / data), for the device state; status
   * bit 3 is not among them (it follows the ISR).
   */
  exportRegisters(): PciConfigRegisters {
    const v = this.view;
    const cap = this.pciCfgCap;
    return {
      command: v.getUint16(PCI_COMMAND, true),
      cacheLineSize: v.getUint8(PCI_CACHE_LINE_SIZE),
      latencyTimer: v.getUint8(PCI_LATENCY_TIMER),
      interruptLine: v.getUint8(PCI_INTERRUPT_LINE),
      bar0: v.getUint32(PCI_BAR0 + 4 * VIRTIO_BAR, true),
      // No PCI_CFG capability (legacy-only): its fields are 0.
      cfgBar: cap === null ? 0 : v.getUint8(cap + CAP_BAR),
      cfgOffset: cap === null ? 0 : v.getUint32(cap + CAP_OFFSET, true),
      cfgLength: cap === null ? 0 : v.getUint32(cap + CAP_LENGTH, true),
      cfgData: cap === null ? 0 : v.getUint32(cap + CAP_PCI_CFG_DATA, true),
    };
  }

  /** Why `r` cannot be this function's registers (a value no write can produce), or null. */
  checkRegisters(r: PciConfigRegisters): string | null {
    if ((r.command & ~PCI_COMMAND_WRITABLE) !== 0) return `command 0x${r.command.toString(16)} has read-only bits set`;
    const sizeMask = ~(this.layout.barSize - 1) & ~0x3;
    if ((((r.bar0 & sizeMask) | PCI_BAR_SPACE_IO) >>> 0) !== r.bar0) return `BAR0 0x${r.bar0.toString(16)} is not an I/O BAR of ${this.layout.barSize} bytes`;
    if (this.pciCfgCap === null && (r.cfgBar !== 0 || r.cfgOffset !== 0 || r.cfgLength !== 0 || r.cfgData !== 0)) return 'PCI_CFG fields set on a function without capabilities';
    return null;
  }

  /** Sets the registers (checked with `checkRegisters` first). */
  importRegisters(r: PciConfigRegisters): void {
    const v = this.view;
    const cap = this.pciCfgCap;
    v.setUint16(PCI_COMMAND, r.command, true);
    v.setUint8(PCI_CACHE_LINE_SIZE, r.cacheLineSize);
    v.setUint8(PCI_LATENCY_TIMER, r.latencyTimer);
    v.setUint8(PCI_INTERRUPT_LINE, r.interruptLine);
    v.setUint32(PCI_BAR0 + 4 * VIRTIO_BAR, r.bar0, true);
    if (cap === null) return;
    v.setUint8(cap + CAP_BAR, r.cfgBar);
    v.setUint32(cap + CAP_OFFSET, r.cfgOffset, true);
    v.setUint32(cap + CAP_LENGTH, r.cfgLength, true);
    v.setUint32(cap + CAP_PCI_CFG_DATA, r.cfgData, true);
  }

  /** Mirrors the interrupt state into status bit 3 (§4.1.4.5.1). */
  setInterruptStatus(pending: boolean): void {
    const s = this.view.getUint16(PCI_STATUS, true);
    this.view.setUint16(PCI_STATUS, pending ? s | PCI_STATUS_INTERRUPT : s & ~PCI_STATUS_INTERRUPT, true);
  }

  read(offset: number, width: 1 | 2 | 4): number {
    if (this.pciCfgCap !== null) {
      const data = this.pciCfgCap + CAP_PCI_CFG_DATA;
      if (offset < data + 4 && offset + width > data) this.windowRead(this.pciCfgCap);
    }
    let value = 0;
    for (let i = width - 1; i >= 0; i--) value = value * 256 + this.image[offset + i]!;
    return value;
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    const data = this.pciCfgCap === null ? -1 : this.pciCfgCap + CAP_PCI_CFG_DATA;
    let touchedBar = false;
    let touchedData = false;
    let capMistake = false;
    for (let i = 0; i < width; i++) {
      const at = offset + i;
      const byte = Math.floor(value / 2 ** (8 * i)) & 0xff;
      if (at === PCI_COMMAND || at === PCI_COMMAND + 1) {
        const mask = (PCI_COMMAND_WRITABLE >> (8 * (at - PCI_COMMAND))) & 0xff;
        this.image[at] = byte & mask;
      } else if (at === PCI_CACHE_LINE_SIZE || at === PCI_LATENCY_TIMER || at === PCI_INTERRUPT_LINE) {
        this.image[at] = byte;
      } else if (at >= PCI_BAR0 + 4 * VIRTIO_BAR && at < PCI_BAR0 + 4 * VIRTIO_BAR + 4) {
        this.image[at] = byte;
        touchedBar = true;
      } else if (this.pciCfgCap !== null && this.isPciCfgField(this.pciCfgCap, at)) {
        this.image[at] = byte;
        if (at >= data) touchedData = true;
      } else if (at >= this.capStart && at < this.capEnd) {
        capMistake = true;
      }
      // Everything else is read-only (IDs, class, header type, other BARs, ROM, pin, ...): ignored.
    }
    if (touchedBar) this.settleBar();
    if (capMistake) {
      this.device.reportDriverMistake('pci.capability-write', `driver wrote ${width} bytes at config offset 0x${offset.toString(16)}, inside a virtio capability`, {
        offset,
        width,
        value,
      });
    }
    if (touchedData && this.pciCfgCap !== null) this.windowWrite(this.pciCfgCap);
  }

  /** BAR0 keeps only the address bits its size allows, plus the I/O space indicator (PCI 3.0 §6.2.5.1). */
  private settleBar(): void {
    const at = PCI_BAR0 + 4 * VIRTIO_BAR;
    const written = this.view.getUint32(at, true);
    const sizeMask = ~(this.layout.barSize - 1) & ~0x3;
    this.view.setUint32(at, ((written & sizeMask) | PCI_BAR_SPACE_IO) >>> 0, true);
  }

  /** cap.bar, cap.offset, cap.length and pci_cfg_data of the PCI_CFG capability are RW (§4.1.4.9). */
  private isPciCfgField(cap: number, at: number): boolean {
    const rel = at - cap;
    return rel === CAP_BAR || (rel >= CAP_OFFSET && rel < CAP_PCI_CFG_DATA + 4);
  }

  /** The window's target, or null after recording why it is not usable (§4.1.4.9.2). */
  private windowTarget(cap: number, kind: string): { bar: number; offset: number; length: 1 | 2 | 4 } | null {
    const bar = this.image[cap + CAP_BAR]!;
    const offset = this.view.getUint32(cap + CAP_OFFSET, true);
    const length = this.view.getUint32(cap + CAP_LENGTH, true);
    const ok =
      bar === VIRTIO_BAR &&
      (length === 1 || length === 2 || length === 4) &&
      offset % length === 0 &&
      this.windowRegions.some((r) => offset >= r.offset && offset + length <= r.offset + r.length);
    if (!ok) {
      this.device.reportDriverMistake('pci.cfg-window-bad-access', `driver ${kind} through PCI_CFG with bar ${bar}, offset ${offset}, length ${length}`, {
        offset,
        width: length,
      });
      return null;
    }
    return { bar, offset, length: length as 1 | 2 | 4 };
  }

  private windowRead(cap: number): void {
    const data = cap + CAP_PCI_CFG_DATA;
    // A window never set up (length 0) reads 0 quietly: whole-config dumps (lspci -xxx) read it too.
    const t = this.view.getUint32(cap + CAP_LENGTH, true) === 0 ? null : this.windowTarget(cap, 'read');
    if (t === null) {
      this.view.setUint32(data, 0, true);
      return;
    }
    const v = this.target.barRead(t.bar, t.offset, t.length);
    this.view.setUint32(data, v >>> 0, true);
  }

  private windowWrite(cap: number): void {
    const t = this.windowTarget(cap, 'write');
    if (t === null) return;
    const raw = this.view.getUint32(cap + CAP_PCI_CFG_DATA, true);
    const v = t.length === 4 ? raw : raw & (t.length === 2 ? 0xffff : 0xff);
    this.target.barWrite(t.bar, t.offset, t.length, v);
  }
}

function alignDword(n: number): number {
  return Math.ceil(n / 4) * 4;
}
