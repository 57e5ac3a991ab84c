// The legacy virtio-pci header in BAR0 of a transitional device (VIRTIO 1.2 §4.1.4.10; the legacy
// virtqueue layout §2.7.2 with the 4096-byte alignment of §4.1.5.1.3.1; legacy initialisation
// §3.1.2; legacy feature bits §6.3).
//
//   0 le32 host features (R)     4 le32 guest features (RW)   8 le32 queue address / 4096 (RW)
//  12 le16 queue size (R)       14 le16 queue select (RW)    16 le16 queue notify (RW)
//  18 u8 device status (RW)     19 u8 ISR status (R, read clears)
//  20 device-specific configuration (MSI-X is never enabled, so it never moves to 24)
//
// Only feature bits 0..31 exist here and VERSION_1 never does: a driver on this interface is a
// legacy driver. Queue sizes are fixed at the maximum; one page number places all three rings.

import type { VirtioDevice } from './virtio-device.js';

export const LEGACY_HOST_FEATURES = 0;
export const LEGACY_GUEST_FEATURES = 4;
export const LEGACY_QUEUE_PFN = 8;
export const LEGACY_QUEUE_SIZE = 12;
export const LEGACY_QUEUE_SELECT = 14;
export const LEGACY_QUEUE_NOTIFY = 16;
export const LEGACY_STATUS = 18;
export const LEGACY_ISR = 19;
export const LEGACY_CONFIG = 20;

/** Queue Align of the legacy PCI interface, and the unit of the queue address register (§4.1.5.1.3.1). */
export const LEGACY_QUEUE_ALIGN = 4096;
const PFN_SHIFT = 12;

/** Register widths and directions. */
const REGISTERS: ReadonlyMap<number, { width: 1 | 2 | 4; access: 'r' | 'rw' }> = new Map([
  [LEGACY_HOST_FEATURES, { width: 4, access: 'r' }],
  [LEGACY_GUEST_FEATURES, { width: 4, access: 'rw' }],
  [LEGACY_QUEUE_PFN, { width: 4, access: 'rw' }],
  [LEGACY_QUEUE_SIZE, { width: 2, access: 'r' }],
  [LEGACY_QUEUE_SELECT, { width: 2, access: 'rw' }],
  [LEGACY_QUEUE_NOTIFY, { width: 2, access: 'rw' }],
  [LEGACY_STATUS, { width: 1, access: 'rw' }],
  [LEGACY_ISR, { width: 1, access: 'r' }],
]);

/** The legacy ring layout for a queue of `size` at guest address `base` (§2.7.2, Queue Align 4096). */
export function legacyQueueLayout(base: number, size: number): { size: number; descTable: number; availRing: number; usedRing: number } {
  const availRing = base + 16 * size;
  // avail: flags, idx, ring[size], used_event = 2 * (3 + size) bytes; used starts on the next boundary
  const usedRing = Math.ceil((availRing + 2 * (3 + size)) / LEGACY_QUEUE_ALIGN) * LEGACY_QUEUE_ALIGN;
  return { size, descTable: base, availRing, usedRing };
}

/** The legacy header; offsets are relative to the start of BAR0. */
export class PciLegacyHeader {
  private queueSelect = 0;

  constructor(private readonly device: VirtioDevice) {}

  resetSelects(): void {
    this.queueSelect = 0;
  }

  /** queue_select, for the device state. */
  get select(): number {
    return this.queueSelect;
  }
  setSelect(v: number): void {
    this.queueSelect = v;
  }

  read(offset: number, width: number): number {
    const d = this.device;
    if (offset >= LEGACY_CONFIG) return d.readConfig(offset - LEGACY_CONFIG, width); // any width (§4.1.4.10)
    const r = this.register(offset, width, 'read');
    if (r === null) return 0;
    const q = this.queueSelect;
    switch (offset) {
      case LEGACY_HOST_FEATURES:
        return d.legacyDeviceFeatures();
      case LEGACY_GUEST_FEATURES:
        return d.driverFeatureWord(0);
      case LEGACY_QUEUE_PFN: {
        const c = d.queueConfig(q);
        return c !== undefined && c.ready ? Math.floor(c.descTable / LEGACY_QUEUE_ALIGN) >>> 0 : 0;
      }
      case LEGACY_QUEUE_SIZE:
        return d.queueMaxSize(q);
      case LEGACY_QUEUE_SELECT:
        return q;
      case LEGACY_STATUS:
        return d.status;
      case LEGACY_ISR:
        return d.readAndClearIsr();
      default:
        return 0; // queue notify reads as 0
    }
  }

  write(offset: number, width: number, value: number): void {
    const d = this.device;
    if (offset >= LEGACY_CONFIG) {
      d.writeConfig(offset - LEGACY_CONFIG, width, value);
      return;
    }
    const r = this.register(offset, width, 'write');
    if (r === null) return;
    if (r.access === 'r') {
      d.reportDriverMistake('register.write-read-only', `driver wrote read-only legacy register at ${offset}`, { offset, width, value, section: '4.1.4.10' });
      return;
    }
    const q = this.queueSelect;
    switch (offset) {
      case LEGACY_GUEST_FEATURES:
        d.writeLegacyDriverFeatures(value);
        return;
      case LEGACY_QUEUE_PFN: {
        const pfn = value >>> 0;
        // The page number is trusted only as an address: activation checks the rings against memory.
        d.writeQueueLayout(q, pfn === 0 ? null : legacyQueueLayout(pfn * 2 ** PFN_SHIFT, d.queueMaxSize(q)));
        return;
      }
      case LEGACY_QUEUE_SELECT:
        this.queueSelect = value;
        return;
      case LEGACY_QUEUE_NOTIFY:
        d.notify(value);
        return;
      case LEGACY_STATUS:
        d.writeStatus(value, 'legacy');
        return;
    }
  }

  private register(offset: number, width: number, kind: 'read' | 'write'): { width: number; access: 'r' | 'rw' } | null {
    const r = REGISTERS.get(offset);
    if (r === undefined || r.width !== width) {
      this.device.reportDriverMistake(
        r === undefined ? 'register.unknown-offset' : 'register.access-width',
        `driver ${kind} of ${width} bytes at legacy header offset ${offset}`,
        { offset, width, section: '4.1.4.10' },
      );
      return null;
    }
    return r;
  }
}
