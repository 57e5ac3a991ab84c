// Numbers the QEMU oracle needs to act as a guest driver: PCI configuration space (PCI Local Bus
// 3.0 §6.1, §6.2.5 BARs, §6.7 capabilities), virtio over PCI (VIRTIO 1.2 §4.1.4 modern
// capabilities and common configuration, §4.1.4.10 legacy interface), device status (§2.1),
// feature bits (§6 reserved bits, §5.1.3 network device), split virtqueue layout (§2.7).
//
// These are the oracle's own copy of the facts, kept apart from devices/ on purpose: an oracle
// that shared the device's constants would share its mistakes.

/** PCI configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): address port and data port. */
export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
/** Bit 31 of CONFIG_ADDRESS enables the configuration cycle. */
export const PCI_CONFIG_ENABLE = 0x8000_0000;

/** Offsets in a type-0 configuration header (PCI 3.0 §6.1). */
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_BAR0 = 0x10;
export const PCI_CAPABILITY_LIST = 0x34;

export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
/** PCI_STATUS bit: the function has a capability list. */
export const PCI_STATUS_CAP_LIST = 0x10;
/** BAR bit 0: 1 = I/O space. Bits 2:1 of a memory BAR: 0b10 = 64-bit. */
export const PCI_BAR_IO = 0x1;
export const PCI_BAR_MEM_TYPE_MASK = 0x6;
export const PCI_BAR_MEM_TYPE_64 = 0x4;
/** Devices per bus; the oracle scans bus 0 function 0 only (QEMU puts -device there). */
export const PCI_SLOTS = 32;

/** Red Hat / virtio vendor id and the virtio-net device ids (VIRTIO 1.2 §4.1.2). */
export const VIRTIO_PCI_VENDOR = 0x1af4;
export const VIRTIO_NET_TRANSITIONAL_DEVICE_ID = 0x1000;
export const VIRTIO_NET_MODERN_DEVICE_ID = 0x1041;

/** Vendor-specific capability id and virtio_pci_cap field offsets (VIRTIO 1.2 §4.1.4). */
export const PCI_CAP_ID_VENDOR = 0x09;
export const VIRTIO_PCI_CAP_CFG_TYPE = 3;
export const VIRTIO_PCI_CAP_BAR = 4;
export const VIRTIO_PCI_CAP_OFFSET = 8;
export const VIRTIO_PCI_CAP_LENGTH = 12;
/** virtio_pci_notify_cap.notify_off_multiplier (§4.1.4.4). */
export const VIRTIO_PCI_NOTIFY_CAP_MULT = 16;
/** cfg_type values (§4.1.4). */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;

/** struct virtio_pci_common_cfg offsets (§4.1.4.3). */
export const COMMON_DFSELECT = 0x00;
export const COMMON_DF = 0x04;
export const COMMON_GFSELECT = 0x08;
export const COMMON_GF = 0x0c;
export const COMMON_NUMQ = 0x12;
export const COMMON_STATUS = 0x14;
export const COMMON_Q_SELECT = 0x16;
export const COMMON_Q_SIZE = 0x18;
export const COMMON_Q_ENABLE = 0x1c;
export const COMMON_Q_NOFF = 0x1e;
export const COMMON_Q_DESCLO = 0x20;
export const COMMON_Q_DESCHI = 0x24;
export const COMMON_Q_AVAILLO = 0x28;
export const COMMON_Q_AVAILHI = 0x2c;
export const COMMON_Q_USEDLO = 0x30;
export const COMMON_Q_USEDHI = 0x34;

/** Legacy I/O BAR0 register offsets (§4.1.4.10). */
export const LEGACY_HOST_FEATURES = 0x00;
export const LEGACY_GUEST_FEATURES = 0x04;
export const LEGACY_QUEUE_PFN = 0x08;
export const LEGACY_QUEUE_NUM = 0x0c;
export const LEGACY_QUEUE_SEL = 0x0e;
export const LEGACY_QUEUE_NOTIFY = 0x10;
export const LEGACY_STATUS = 0x12;
/** Device config starts here while MSI-X is disabled (the oracle never enables MSI-X). */
export const LEGACY_DEVICE_CONFIG = 0x14;
/** Legacy queue addresses are page frame numbers of this page size (§4.1.4.10). */
export const LEGACY_PAGE_SHIFT = 12;
/** Legacy layout: the used ring starts on the next multiple of this after the avail ring. */
export const LEGACY_VRING_ALIGN = 4096;

/** Device status bits (VIRTIO 1.2 §2.1). */
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 0x40;
export const STATUS_FAILED = 0x80;

/**
 * Feature bits by the name the spec gives them without the VIRTIO_NET_F_ / VIRTIO_F_ prefix
 * (§5.1.3, §6). Only the ones the oracle may want to negotiate.
 */
export const FEATURE_BITS = {
  CSUM: 0,
  GUEST_CSUM: 1,
  CTRL_GUEST_OFFLOADS: 2,
  MTU: 3,
  MAC: 5,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_ECN: 9,
  GUEST_UFO: 10,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_ECN: 13,
  HOST_UFO: 14,
  MRG_RXBUF: 15,
  STATUS: 16,
  CTRL_VQ: 17,
  CTRL_RX: 18,
  CTRL_VLAN: 19,
  CTRL_RX_EXTRA: 20,
  GUEST_ANNOUNCE: 21,
  MQ: 22,
  CTRL_MAC_ADDR: 23,
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
  RING_PACKED: 34,
  HASH_REPORT: 57,
  RSS: 60,
} as const;
export type FeatureName = keyof typeof FEATURE_BITS;

/** What the oracle negotiates unless told otherwise: everything that matters for control. */
export const DEFAULT_GUEST_FEATURES: readonly FeatureName[] = [
  'MAC',
  'STATUS',
  'CTRL_VQ',
  'CTRL_RX',
  'CTRL_VLAN',
  'CTRL_RX_EXTRA',
  'GUEST_ANNOUNCE',
  'CTRL_MAC_ADDR',
];

/** Split virtqueue descriptor flags and entry size (§2.7.5). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_SIZE = 16;
/** Used ring element size: le32 id + le32 len (§2.7.8). */
export const VIRTQ_USED_ELEM_SIZE = 8;

/** Queue indices of a one-pair virtio-net device (§5.1.2): receiveq1, transmitq1, controlq. */
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
export const CTRL_QUEUE = 2;

/** Device config fields of virtio-net (§5.1.4). */
export const NET_CONFIG_MAC = 0;
export const NET_CONFIG_STATUS = 6;
