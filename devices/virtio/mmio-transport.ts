// virtio-mmio, version 2 (VIRTIO 1.2 §4.2: §4.2.2 the register layout and its device/driver
// requirements, §4.2.3 initialisation, virtqueue configuration and notifications).
//
// `read`/`write` take exactly what a hypervisor forwards from a guest MMIO exit: an offset inside
// the device's window, a width, and a value. Control registers are 32-bit: any other width or an
// unaligned access is a driver mistake (§4.2.2.2) — recorded, a read returns 0, a write is ignored.
// So are reads of write-only registers, writes of read-only ones and accesses to offsets the table
// does not define. The device configuration space at 0x100 is byte-granular.
//
// Interrupt line (§4.2.2.1): asserted while InterruptStatus != 0; the driver lowers it by writing
// the bits it handled to InterruptACK. `onInterrupt` is called on each change of level only.

import type { VirtioDevice } from './virtio-device.js';
import type { RingArea } from './queue-registers.js';
import { checkTransportOptions } from './transport-binding.js';
import { VIRTIO_F_RING_RESET } from './features.js';
import type { TransportOptions } from './transport-binding.js';

/** Register offsets (§4.2.2 table). */
export const MMIO_MAGIC_VALUE = 0x000;
export const MMIO_VERSION = 0x004;
export const MMIO_DEVICE_ID = 0x008;
export const MMIO_VENDOR_ID = 0x00c;
export const MMIO_DEVICE_FEATURES = 0x010;
export const MMIO_DEVICE_FEATURES_SEL = 0x014;
export const MMIO_DRIVER_FEATURES = 0x020;
export const MMIO_DRIVER_FEATURES_SEL = 0x024;
export const MMIO_QUEUE_SEL = 0x030;
export const MMIO_QUEUE_NUM_MAX = 0x034;
export const MMIO_QUEUE_NUM = 0x038;
export const MMIO_QUEUE_READY = 0x044;
export const MMIO_QUEUE_NOTIFY = 0x050;
export const MMIO_INTERRUPT_STATUS = 0x060;
export const MMIO_INTERRUPT_ACK = 0x064;
export const MMIO_STATUS = 0x070;
export const MMIO_QUEUE_DESC_LOW = 0x080;
export const MMIO_QUEUE_DESC_HIGH = 0x084;
export const MMIO_QUEUE_DRIVER_LOW = 0x090;
export const MMIO_QUEUE_DRIVER_HIGH = 0x094;
export const MMIO_QUEUE_DEVICE_LOW = 0x0a0;
export const MMIO_QUEUE_DEVICE_HIGH = 0x0a4;
export const MMIO_SHM_SEL = 0x0ac;
export const MMIO_SHM_LEN_LOW = 0x0b0;
export const MMIO_SHM_LEN_HIGH = 0x0b4;
export const MMIO_SHM_BASE_LOW = 0x0b8;
export const MMIO_SHM_BASE_HIGH = 0x0bc;
export const MMIO_QUEUE_RESET = 0x0c0;
export const MMIO_CONFIG_GENERATION = 0x0fc;
/** Device configuration space starts here. */
export const MMIO_CONFIG = 0x100;

/** "virt" in little-endian (§4.2.2.1). */
export const MMIO_MAGIC = 0x74726976;
/** The non-legacy register layout (§4.2.2.1: "MUST return value 0x2"). */
export const MMIO_VERSION_2 = 2;
/**
 * VendorID: QEMU's 0x554d4551 ("QEMU"). The spec leaves the value to the implementation; using
 * QEMU's means a guest sees the same identity here as under the QEMU reference oracle, so
 * comparison runs do not differ in it. Drivers do not match on it (Linux only logs it).
 */
export const MMIO_VENDOR_QEMU = 0x554d4551;

/** Direction of each control register (§4.2.2 table). */
const REGISTERS: ReadonlyMap<number, 'r' | 'w' | 'rw'> = new Map([
  [MMIO_MAGIC_VALUE, 'r'],
  [MMIO_VERSION, 'r'],
  [MMIO_DEVICE_ID, 'r'],
  [MMIO_VENDOR_ID, 'r'],
  [MMIO_DEVICE_FEATURES, 'r'],
  [MMIO_DEVICE_FEATURES_SEL, 'w'],
  [MMIO_DRIVER_FEATURES, 'w'],
  [MMIO_DRIVER_FEATURES_SEL, 'w'],
  [MMIO_QUEUE_SEL, 'w'],
  [MMIO_QUEUE_NUM_MAX, 'r'],
  [MMIO_QUEUE_NUM, 'w'],
  [MMIO_QUEUE_READY, 'rw'],
  [MMIO_QUEUE_NOTIFY, 'w'],
  [MMIO_INTERRUPT_STATUS, 'r'],
  [MMIO_INTERRUPT_ACK, 'w'],
  [MMIO_STATUS, 'rw'],
  [MMIO_QUEUE_DESC_LOW, 'w'],
  [MMIO_QUEUE_DESC_HIGH, 'w'],
  [MMIO_QUEUE_DRIVER_LOW, 'w'],
  [MMIO_QUEUE_DRIVER_HIGH, 'w'],
  [MMIO_QUEUE_DEVICE_LOW, 'w'],
  [MMIO_QUEUE_DEVICE_HIGH, 'w'],
  [MMIO_SHM_SEL, 'w'],
  [MMIO_SHM_LEN_LOW, 'r'],
  [MMIO_SHM_LEN_HIGH, 'r'],
  [MMIO_SHM_BASE_LOW, 'r'],
  [MMIO_SHM_BASE_HIGH, 'r'],
  [MMIO_QUEUE_RESET, 'rw'],
  [MMIO_CONFIG_GENERATION, 'r'],
]);
/** REGISTERS by offset / 4 (the control registers end below 0x100): an array load per access, not a Map lookup. */
const REGISTER_WORDS: readonly ('r' | 'w' | 'rw' | undefined)[] = Array.from({ length: 0x100 / 4 }, (_, w) => REGISTERS.get(w * 4));

/** Queue address registers → ring area and half. */
const QUEUE_ADDRESS: ReadonlyMap<number, readonly [RingArea, 0 | 1]> = new Map([
  [MMIO_QUEUE_DESC_LOW, ['descTable', 0]],
  [MMIO_QUEUE_DESC_HIGH, ['descTable', 1]],
  [MMIO_QUEUE_DRIVER_LOW, ['availRing', 0]],
  [MMIO_QUEUE_DRIVER_HIGH, ['availRing', 1]],
  [MMIO_QUEUE_DEVICE_LOW, ['usedRing', 0]],
  [MMIO_QUEUE_DEVICE_HIGH, ['usedRing', 1]],
]);

/** MMIO-specific sections for codes whose default section is another transport's. */
const MMIO_SECTIONS = {
  'queue.not-available': '4.2.3.2',
  'queue.reset-not-negotiated': '4.2.2.1',
  'queue.reset-bad-value': '4.2.2.1',
  'register.unknown-offset': '4.2.2.2',
} as const;

/** The virtio-mmio version 2 register block of one device. */
export class VirtioMmioTransport {
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private line = false;
  private readonly onInterrupt: (asserted: boolean) => void;

  constructor(
    readonly device: VirtioDevice,
    options: TransportOptions,
  ) {
    checkTransportOptions('VirtioMmioTransport', options);
    this.onInterrupt = options.onInterrupt;
    device.attachTransport({
      isrChanged: (isr) => this.setLine(isr !== 0),
      sections: MMIO_SECTIONS,
      // The device state holds the three select registers (the line follows the restored ISR).
      state: {
        kind: 'mmio',
        save: (w) => void w.u32(this.deviceFeaturesSel).u32(this.driverFeaturesSel).u32(this.queueSel),
        load: (r) => {
          const sels = [r.u32('DeviceFeaturesSel'), r.u32('DriverFeaturesSel'), r.u32('QueueSel')] as const;
          return () => {
            [this.deviceFeaturesSel, this.driverFeaturesSel, this.queueSel] = sels;
          };
        },
      },
    });
  }

  /** Size of the register window a hypervisor maps: registers plus the device configuration space. */
  get windowSize(): number {
    return MMIO_CONFIG + this.device.configSize;
  }

  /** The interrupt line's current level. */
  get interruptAsserted(): boolean {
    return this.line;
  }

  /** A guest read of `width` bytes at `offset` in the window. */
  read(offset: number, width: 1 | 2 | 4): number {
    // The per-interrupt register first: an aligned 32-bit read of it is always valid (no lookup).
    if (offset === MMIO_INTERRUPT_STATUS && width === 4) return this.device.isr;
    checkAccess('read', offset, width);
    if (offset >= MMIO_CONFIG) return this.device.readConfig(offset - MMIO_CONFIG, width);
    const dir = this.register(offset, width, 'read');
    if (dir === null) return 0;
    if (dir === 'w') {
      this.device.reportDriverMistake('register.read-write-only', `driver read write-only register 0x${offset.toString(16)}`, { offset, width });
      return 0;
    }
    const d = this.device;
    switch (offset) {
      case MMIO_MAGIC_VALUE:
        return MMIO_MAGIC;
      case MMIO_VERSION:
        return MMIO_VERSION_2;
      case MMIO_DEVICE_ID:
        return d.deviceType;
      case MMIO_VENDOR_ID:
        return MMIO_VENDOR_QEMU;
      case MMIO_DEVICE_FEATURES:
        return d.deviceFeatureWord(this.deviceFeaturesSel);
      case MMIO_QUEUE_NUM_MAX:
        return d.queueMaxSize(this.queueSel);
      case MMIO_QUEUE_READY:
        return d.queueConfig(this.queueSel)?.ready === true ? 1 : 0;
      // MMIO_INTERRUPT_STATUS: at the top.
      case MMIO_STATUS:
        return d.status;
      case MMIO_SHM_LEN_LOW:
      case MMIO_SHM_LEN_HIGH:
      case MMIO_SHM_BASE_LOW:
      case MMIO_SHM_BASE_HIGH:
        return 0xffff_ffff; // no shared memory regions: length and base read as -1 (§4.2.2)
      case MMIO_QUEUE_RESET:
        return 0; // a queue reset completes within the write (§4.2.2.1: 0 once it has completed)
      case MMIO_CONFIG_GENERATION:
        return d.configGeneration;
      default:
        return 0;
    }
  }

  /** A guest write of `width` bytes of `value` at `offset` in the window. */
  write(offset: number, width: 1 | 2 | 4, value: number): void {
    // The two registers a driver writes per request first: aligned 32-bit writes of them are always
    // valid, so they skip the access checks and the register lookup (what follows does the same).
    if (width === 4) {
      if (offset === MMIO_QUEUE_NOTIFY) {
        this.device.notify(value >>> 0); // without VIRTIO_F_NOTIFICATION_DATA the value is the queue index
        return;
      }
      if (offset === MMIO_INTERRUPT_ACK) {
        this.device.acknowledgeInterrupt(value >>> 0);
        return;
      }
    }
    checkAccess('write', offset, width);
    const v = width === 4 ? value >>> 0 : value & (width === 2 ? 0xffff : 0xff);
    if (offset >= MMIO_CONFIG) {
      this.device.writeConfig(offset - MMIO_CONFIG, width, v);
      return;
    }
    const dir = this.register(offset, width, 'write');
    if (dir === null) return;
    const d = this.device;
    if (dir === 'r') {
      d.reportDriverMistake('register.write-read-only', `driver wrote read-only register 0x${offset.toString(16)}`, { offset, width, value: v });
      return;
    }
    // The six queue address registers lie together (0x080..0x0a4): one range test before the lookup.
    const area = offset >= MMIO_QUEUE_DESC_LOW && offset <= MMIO_QUEUE_DEVICE_HIGH ? QUEUE_ADDRESS.get(offset) : undefined;
    if (area !== undefined) {
      d.writeQueueAddressWord(this.queueSel, area[0], area[1], v);
      return;
    }
    switch (offset) {
      case MMIO_DEVICE_FEATURES_SEL:
        this.deviceFeaturesSel = v;
        return;
      case MMIO_DRIVER_FEATURES:
        d.writeDriverFeatureWord(this.driverFeaturesSel, v);
        return;
      case MMIO_DRIVER_FEATURES_SEL:
        this.driverFeaturesSel = v;
        return;
      case MMIO_QUEUE_SEL:
        this.queueSel = v;
        return;
      case MMIO_QUEUE_NUM:
        d.writeQueueSize(this.queueSel, v);
        return;
      case MMIO_QUEUE_READY:
        d.writeQueueReady(this.queueSel, v !== 0);
        return;
      // MMIO_QUEUE_NOTIFY, MMIO_INTERRUPT_ACK: at the top (register() admits only 32-bit accesses).
      case MMIO_STATUS:
        d.writeStatus(v, 'modern');
        return;
      case MMIO_SHM_SEL:
        return; // any id selects a region that does not exist
      case MMIO_QUEUE_RESET:
        if (!d.hasFeature(VIRTIO_F_RING_RESET)) {
          d.reportDriverMistake('queue.reset-not-negotiated', `driver wrote QueueReset = ${v} for queue ${this.queueSel}, but VIRTIO_F_RING_RESET was not negotiated; ignored`, {
            queue: this.queueSel,
            value: v,
            offset,
          });
        } else if (v !== 1) {
          d.reportDriverMistake('queue.reset-bad-value', `driver wrote QueueReset = ${v} for queue ${this.queueSel}; only 1 resets a queue; ignored`, { queue: this.queueSel, value: v, offset });
        } else {
          d.resetQueue(this.queueSel); // §2.6.1; QueueReady reads 0 afterwards
        }
        return;
    }
  }

  /** The direction of the register at `offset`, or null after recording why the access is bad. */
  private register(offset: number, width: number, kind: 'read' | 'write'): 'r' | 'w' | 'rw' | null {
    const word = offset >>> 2;
    const dir = word < REGISTER_WORDS.length ? REGISTER_WORDS[word] : undefined;
    if (dir === undefined) {
      this.device.reportDriverMistake('register.unknown-offset', `driver ${kind} at 0x${offset.toString(16)}, which is no register`, { offset, width });
      return null;
    }
    if (width !== 4 || (offset & 3) !== 0) {
      this.device.reportDriverMistake('register.access-width', `driver ${kind} of ${width} bytes at 0x${offset.toString(16)}; registers are 32-bit and aligned`, { offset, width });
      return null;
    }
    return dir;
  }

  private setLine(asserted: boolean): void {
    if (asserted === this.line) return;
    this.line = asserted;
    this.onInterrupt(asserted);
  }
}

/** Offsets and widths come from the hypervisor, not the guest: bad ones are programmer errors. */
function checkAccess(kind: string, offset: number, width: number): void {
  if (width !== 1 && width !== 2 && width !== 4) {
    throw new RangeError(`VirtioMmioTransport.${kind}: width must be 1, 2 or 4, got ${String(width)}`);
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(`VirtioMmioTransport.${kind}: offset must be a non-negative integer, got ${String(offset)}`);
  }
}
