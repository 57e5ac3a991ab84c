// Where everything lives on the virtio-pci function (VIRTIO 1.2 §4.1.2 identity, §4.1.3 layout,
// §4.1.4 the virtio structure capabilities, §4.1.4.10 the legacy header; PCI Local Bus 3.0 §6.1
// for the type-0 configuration header).
//
// Every virtio structure lives in ONE I/O-port BAR (BAR0): v86, the main embedder, cannot move
// memory BARs, and Linux's virtio_pci_modern maps capabilities in I/O BARs as well as memory BARs.
// Modern device, BAR0:   common cfg | ISR | notify (one 4-byte slot per queue) | device cfg
// Transitional (legacy: true), BAR0: legacy header (20 bytes) + device cfg at 20 (§4.1.4.10,
// MSI-X never enabled), then, from the next 64-byte boundary, the same modern structures — a
// transitional device offers both interfaces and the driver picks one (Linux prefers modern
// unless `virtio_pci.force_legacy=1`).
// Legacy-only (legacy: true, modern: false; QEMU's disable-modern=on): BAR0 holds the legacy header
// + device cfg and nothing else, and there are no virtio capabilities, so a driver can only use the
// legacy interface (iPXE and Linux otherwise pick the modern one of a transitional device).

/** PCI type-0 header offsets (PCI 3.0 §6.1). */
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_BAR_COUNT = 6;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
/** Size of conventional PCI configuration space. */
export const PCI_CONFIG_SIZE = 256;

/** Command register bits (PCI 3.0 §6.2.2). */
export const PCI_COMMAND_IO = 0x001;
export const PCI_COMMAND_MEMORY = 0x002;
export const PCI_COMMAND_MASTER = 0x004;
export const PCI_COMMAND_PARITY = 0x040;
export const PCI_COMMAND_SERR = 0x100;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
/** Bits of the command register a driver can set; the rest are hardwired to 0. */
export const PCI_COMMAND_WRITABLE =
  PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;
/** Status register bits (PCI 3.0 §6.2.3). */
export const PCI_STATUS_INTERRUPT = 0x08;
export const PCI_STATUS_CAP_LIST = 0x10;
/** BAR bit 0: I/O space. */
export const PCI_BAR_SPACE_IO = 0x1;
/** INTA# (PCI 3.0 §6.2.4). */
export const PCI_INTERRUPT_PIN_INTA = 1;

/** §4.1.2 identity. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
export const VIRTIO_PCI_MODERN_DEVICE_ID_BASE = 0x1040;
/** Transitional device IDs by virtio device type (§4.1.2.1 table). */
export const VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS: ReadonlyMap<number, number> = new Map([
  [1, 0x1000], // network card
  [2, 0x1001], // block device
  [5, 0x1002], // memory ballooning (traditional)
  [3, 0x1003], // console
  [8, 0x1004], // SCSI host
  [4, 0x1005], // entropy source
  [9, 0x1009], // 9P transport
]);
/**
 * Subsystem ID of a modern device: §4.1.2.1 asks for 0x40 or higher; 0x1100 is QEMU's value, so
 * the guest sees the same identity as under the QEMU reference oracle.
 */
export const VIRTIO_PCI_MODERN_SUBSYSTEM_ID = 0x1100;
/** PCI class codes (class << 16 | subclass << 8 | prog-if) by virtio device type. */
export const VIRTIO_PCI_CLASS: ReadonlyMap<number, number> = new Map([
  [1, 0x020000], // network controller, Ethernet
  [2, 0x010000], // mass storage, SCSI
  [3, 0x078000], // communication controller, other
]);
/** Class for other device types: "device does not fit any defined class". */
export const PCI_CLASS_OTHER = 0xff0000;

/** §4.1.4 capability layout. */
export const PCI_CAP_ID_VENDOR = 0x09;
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;
/** Offsets inside struct virtio_pci_cap. */
export const CAP_VNDR = 0;
export const CAP_NEXT = 1;
export const CAP_LEN = 2;
export const CAP_CFG_TYPE = 3;
export const CAP_BAR = 4;
export const CAP_ID = 5;
export const CAP_OFFSET = 8;
export const CAP_LENGTH = 12;
/** struct virtio_pci_notify_cap.notify_off_multiplier / struct virtio_pci_cfg_cap.pci_cfg_data. */
export const CAP_NOTIFY_MULTIPLIER = 16;
export const CAP_PCI_CFG_DATA = 16;
export const VIRTIO_PCI_CAP_SIZE = 16;
export const VIRTIO_PCI_NOTIFY_CAP_SIZE = 20;
export const VIRTIO_PCI_CFG_CAP_SIZE = 20;
/** First capability: right after the 64-byte header. */
export const FIRST_CAP_OFFSET = 0x40;

/** Bytes reserved for struct virtio_pci_common_cfg (60 used in 1.2, padded to 64). */
export const COMMON_CFG_LENGTH = 0x40;
/**
 * Notification slot per queue: notify_off_multiplier. 4 keeps each queue's 16-bit notify register
 * on its own aligned dword and is an even power of 2 as §4.1.4.4.1 requires.
 */
export const NOTIFY_OFF_MULTIPLIER = 4;
/** Legacy header bytes before the device configuration space, MSI-X disabled (§4.1.4.10). */
export const LEGACY_HEADER_SIZE = 20;
/** Alignment of the modern block after the legacy area in a transitional BAR0. */
const MODERN_BLOCK_ALIGN = 0x40;

/** One structure inside BAR0. */
export interface BarRegion {
  readonly offset: number;
  readonly length: number;
}

/** The BAR0 map of one function. */
export interface PciBarLayout {
  /** Power of two, >= every region's end. */
  readonly barSize: number;
  /** Legacy header + device config (transitional only). */
  readonly legacy: BarRegion | null;
  /** The modern structures; null on a legacy-only device. */
  readonly common: BarRegion | null;
  readonly isr: BarRegion | null;
  readonly notify: BarRegion | null;
  /** Device-specific configuration (modern structure); null when the device has none or is legacy-only. */
  readonly device: BarRegion | null;
}

/**
 * Computes BAR0's layout for a device with `numQueues` queues and `configSize` bytes of config;
 * `modern: false` (legacy-only, needs `legacy`) leaves out the modern structures.
 */
export function computeBarLayout(numQueues: number, configSize: number, legacy: boolean, modern = true): PciBarLayout {
  let at = 0;
  let legacyRegion: BarRegion | null = null;
  if (legacy) {
    legacyRegion = { offset: 0, length: LEGACY_HEADER_SIZE + configSize };
    if (!modern) return { barSize: nextPowerOfTwo(legacyRegion.length), legacy: legacyRegion, common: null, isr: null, notify: null, device: null };
    at = alignUp(legacyRegion.length, MODERN_BLOCK_ALIGN);
  }
  const common = { offset: at, length: COMMON_CFG_LENGTH };
  at += COMMON_CFG_LENGTH;
  const isr = { offset: at, length: 1 };
  at += 4; // ISR needs no alignment (§4.1.4.5); notify needs 2 (§4.1.4.4.1), we keep dwords
  const notify = { offset: at, length: NOTIFY_OFF_MULTIPLIER * Math.max(numQueues, 1) };
  at += notify.length;
  let device: BarRegion | null = null;
  if (configSize > 0) {
    device = { offset: alignUp(at, 4), length: alignUp(configSize, 4) };
    at = device.offset + device.length;
  }
  return { barSize: nextPowerOfTwo(Math.max(at, 4)), legacy: legacyRegion, common, isr, notify, device };
}

export function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

function nextPowerOfTwo(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

/** True when `[offset, offset + width)` lies inside `region`. */
export function inRegion(region: BarRegion | null, offset: number, width: number): region is BarRegion {
  return region !== null && offset >= region.offset && offset + width <= region.offset + region.length;
}
