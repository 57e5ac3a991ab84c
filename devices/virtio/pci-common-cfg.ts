// struct virtio_pci_common_cfg (VIRTIO 1.2 §4.1.4.3; §4.1.4.3.1 device and §4.1.4.3.2 driver
// requirements; §4.1.3.1 natural-width access).
//
// Each field must be accessed with its own width at its own offset (64-bit queue addresses as two
// 32-bit halves). Any other access is recorded as a driver mistake; a write is ignored and a read
// returns 0, except a narrower read at a field's start, which returns the field's low bytes as
// QEMU does (reads have no side effect here; old iPXE depends on it). There is no MSI-X
// capability, so both vector fields read VIRTIO_MSI_NO_VECTOR.

import type { VirtioDevice } from './virtio-device.js';
import type { RingArea } from './queue-registers.js';
import { VIRTIO_F_RING_RESET } from './features.js';

/** Field offsets (§4.1.4.3). */
export const COMMON_DEVICE_FEATURE_SELECT = 0;
export const COMMON_DEVICE_FEATURE = 4;
export const COMMON_DRIVER_FEATURE_SELECT = 8;
export const COMMON_DRIVER_FEATURE = 12;
export const COMMON_CONFIG_MSIX_VECTOR = 16;
export const COMMON_NUM_QUEUES = 18;
export const COMMON_DEVICE_STATUS = 20;
export const COMMON_CONFIG_GENERATION = 21;
export const COMMON_QUEUE_SELECT = 22;
export const COMMON_QUEUE_SIZE = 24;
export const COMMON_QUEUE_MSIX_VECTOR = 26;
export const COMMON_QUEUE_ENABLE = 28;
export const COMMON_QUEUE_NOTIFY_OFF = 30;
export const COMMON_QUEUE_DESC_LO = 32;
export const COMMON_QUEUE_DESC_HI = 36;
export const COMMON_QUEUE_DRIVER_LO = 40;
export const COMMON_QUEUE_DRIVER_HI = 44;
export const COMMON_QUEUE_DEVICE_LO = 48;
export const COMMON_QUEUE_DEVICE_HI = 52;
export const COMMON_QUEUE_NOTIFY_DATA = 56;
export const COMMON_QUEUE_RESET = 58;

/** §4.1.5.1.2: the vector value meaning "no MSI-X vector". */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** Width and driver access of each field. */
const FIELDS: ReadonlyMap<number, { width: 1 | 2 | 4; access: 'r' | 'rw' }> = new Map([
  [COMMON_DEVICE_FEATURE_SELECT, { width: 4, access: 'rw' }],
  [COMMON_DEVICE_FEATURE, { width: 4, access: 'r' }],
  [COMMON_DRIVER_FEATURE_SELECT, { width: 4, access: 'rw' }],
  [COMMON_DRIVER_FEATURE, { width: 4, access: 'rw' }],
  [COMMON_CONFIG_MSIX_VECTOR, { width: 2, access: 'rw' }],
  [COMMON_NUM_QUEUES, { width: 2, access: 'r' }],
  [COMMON_DEVICE_STATUS, { width: 1, access: 'rw' }],
  [COMMON_CONFIG_GENERATION, { width: 1, access: 'r' }],
  [COMMON_QUEUE_SELECT, { width: 2, access: 'rw' }],
  [COMMON_QUEUE_SIZE, { width: 2, access: 'rw' }],
  [COMMON_QUEUE_MSIX_VECTOR, { width: 2, access: 'rw' }],
  [COMMON_QUEUE_ENABLE, { width: 2, access: 'rw' }],
  [COMMON_QUEUE_NOTIFY_OFF, { width: 2, access: 'r' }],
  [COMMON_QUEUE_DESC_LO, { width: 4, access: 'rw' }],
  [COMMON_QUEUE_DESC_HI, { width: 4, access: 'rw' }],
  [COMMON_QUEUE_DRIVER_LO, { width: 4, access: 'rw' }],
  [COMMON_QUEUE_DRIVER_HI, { width: 4, access: 'rw' }],
  [COMMON_QUEUE_DEVICE_LO, { width: 4, access: 'rw' }],
  [COMMON_QUEUE_DEVICE_HI, { width: 4, access: 'rw' }],
  [COMMON_QUEUE_NOTIFY_DATA, { width: 2, access: 'r' }],
  [COMMON_QUEUE_RESET, { width: 2, access: 'rw' }],
]);

const QUEUE_ADDRESS: ReadonlyMap<number, readonly [RingArea, 0 | 1]> = new Map([
  [COMMON_QUEUE_DESC_LO, ['descTable', 0]],
  [COMMON_QUEUE_DESC_HI, ['descTable', 1]],
  [COMMON_QUEUE_DRIVER_LO, ['availRing', 0]],
  [COMMON_QUEUE_DRIVER_HI, ['availRing', 1]],
  [COMMON_QUEUE_DEVICE_LO, ['usedRing', 0]],
  [COMMON_QUEUE_DEVICE_HI, ['usedRing', 1]],
]);

/** The common configuration structure of one modern virtio-pci function. */
export class PciCommonCfg {
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private queueSelect = 0;

  constructor(private readonly device: VirtioDevice) {}

  /** Selects back to 0 (a device reset does not touch them; a function reset does). */
  resetSelects(): void {
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.queueSelect = 0;
  }

  /** The three select registers, for the device state. */
  get selects(): readonly [number, number, number] {
    return [this.deviceFeatureSelect, this.driverFeatureSelect, this.queueSelect];
  }
  setSelects(s: readonly [number, number, number]): void {
    [this.deviceFeatureSelect, this.driverFeatureSelect, this.queueSelect] = s;
  }

  read(offset: number, width: number): number {
    if (this.field(offset, width, 'read') === null) {
      // Tolerated like QEMU 7.2 (its common_cfg handler takes 1–4 byte accesses and keeps the low
      // bytes): a narrower read at a field's start reads the field's low bytes. iPXE before 2023
      // (Debian's 1.0.0+git-20190125) reads 32-bit fields with 16-bit accesses (vpm_ioread32).
      const f = FIELDS.get(offset);
      if (f === undefined || width >= f.width || (width !== 1 && width !== 2)) return 0;
      return this.fieldValue(offset) & (width === 1 ? 0xff : 0xffff);
    }
    return this.fieldValue(offset);
  }

  /** The value of the field that starts at `offset` (a known field). */
  private fieldValue(offset: number): number {
    const d = this.device;
    const q = this.queueSelect;
    const area = QUEUE_ADDRESS.get(offset);
    if (area !== undefined) return d.queueAddressWord(q, area[0], area[1]);
    switch (offset) {
      case COMMON_DEVICE_FEATURE_SELECT:
        return this.deviceFeatureSelect;
      case COMMON_DEVICE_FEATURE:
        return d.deviceFeatureWord(this.deviceFeatureSelect);
      case COMMON_DRIVER_FEATURE_SELECT:
        return this.driverFeatureSelect;
      case COMMON_DRIVER_FEATURE:
        return d.driverFeatureWord(this.driverFeatureSelect);
      case COMMON_CONFIG_MSIX_VECTOR:
      case COMMON_QUEUE_MSIX_VECTOR:
        return VIRTIO_MSI_NO_VECTOR;
      case COMMON_NUM_QUEUES:
        return d.numQueues;
      case COMMON_DEVICE_STATUS:
        return d.status;
      case COMMON_CONFIG_GENERATION:
        return d.configGeneration & 0xff;
      case COMMON_QUEUE_SELECT:
        return q;
      case COMMON_QUEUE_SIZE:
        return d.queueConfig(q)?.size ?? 0; // 0: queue unavailable (§4.1.4.3.1)
      case COMMON_QUEUE_ENABLE:
        return d.queueConfig(q)?.ready === true ? 1 : 0;
      case COMMON_QUEUE_NOTIFY_OFF:
        return d.queueMaxSize(q) > 0 ? q : 0; // notify slot = queue index * multiplier
      default:
        // queue_notify_data (no NOTIF_CONFIG_DATA); queue_reset: a reset completes within the write
        // (§4.1.4.3.1: 0 once it has completed)
        return 0;
    }
  }

  write(offset: number, width: number, value: number): void {
    const f = this.field(offset, width, 'write');
    if (f === null) return;
    const d = this.device;
    if (f.access === 'r') {
      d.reportDriverMistake('register.write-read-only', `driver wrote read-only common_cfg field at ${offset}`, { offset, width, value, section: '4.1.4.3.2' });
      return;
    }
    const q = this.queueSelect;
    const area = QUEUE_ADDRESS.get(offset);
    if (area !== undefined) {
      d.writeQueueAddressWord(q, area[0], area[1], value);
      return;
    }
    switch (offset) {
      case COMMON_DEVICE_FEATURE_SELECT:
        this.deviceFeatureSelect = value >>> 0;
        return;
      case COMMON_DRIVER_FEATURE_SELECT:
        this.driverFeatureSelect = value >>> 0;
        return;
      case COMMON_DRIVER_FEATURE:
        d.writeDriverFeatureWord(this.driverFeatureSelect, value);
        return;
      case COMMON_CONFIG_MSIX_VECTOR:
      case COMMON_QUEUE_MSIX_VECTOR:
        return; // no MSI-X: every mapping fails, reads show NO_VECTOR (§4.1.5.1.2.1)
      case COMMON_DEVICE_STATUS:
        d.writeStatus(value, 'modern');
        return;
      case COMMON_QUEUE_SELECT:
        this.queueSelect = value;
        return;
      case COMMON_QUEUE_SIZE:
        d.writeQueueSize(q, value);
        return;
      case COMMON_QUEUE_ENABLE:
        if (value === 1) {
          d.writeQueueReady(q, true);
        } else {
          d.reportDriverMistake('queue.disable-unsupported', `driver wrote ${value} to queue_enable of queue ${q}; only 1 may be written`, {
            queue: q,
            value,
            section: '4.1.4.3.2',
          });
        }
        return;
      case COMMON_QUEUE_RESET:
        if (!d.hasFeature(VIRTIO_F_RING_RESET)) {
          d.reportDriverMistake('queue.reset-not-negotiated', `driver wrote queue_reset = ${value} for queue ${q}, but VIRTIO_F_RING_RESET was not negotiated; ignored`, {
            queue: q,
            value,
            section: '4.1.4.3.2',
          });
        } else if (value !== 1) {
          d.reportDriverMistake('queue.reset-bad-value', `driver wrote queue_reset = ${value} for queue ${q}; only 1 resets a queue; ignored`, { queue: q, value, section: '4.1.4.3.1' });
        } else {
          d.resetQueue(q); // §2.6.1; queue_enable reads 0 afterwards
        }
        return;
    }
  }

  /** The field at exactly `offset` with exactly `width`, or null after recording the mistake. */
  private field(offset: number, width: number, kind: 'read' | 'write'): { width: number; access: 'r' | 'rw' } | null {
    const f = FIELDS.get(offset);
    if (f === undefined || f.width !== width) {
      this.device.reportDriverMistake(
        f === undefined ? 'register.unknown-offset' : 'register.access-width',
        `driver ${kind} of ${width} bytes at common_cfg offset ${offset}${f === undefined ? ', which is no field start' : `; the field is ${f.width} bytes`}`,
        { offset, width, section: '4.1.3.1' },
      );
      return null;
    }
    return f;
  }
}
