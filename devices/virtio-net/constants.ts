// virtio-net numbers, pinned to VIRTIO 1.2 (cs01): feature bits (§5.1.3 and, for the
// device-independent ones, §6 "Reserved Feature Bits"), config status bits (§5.1.4), header flags
// and GSO types (§5.1.6), control-queue classes, commands and ack values (§5.1.6.5). This is the
// only module that spells these numbers; everything else imports them.
//
// Note on §5.1.3: the VIRTIO 1.2 cs01 feature list omits VIRTIO_NET_F_CTRL_RX_EXTRA (20), although
// §5.1.6.5.1 uses it and every implementation (Linux, QEMU) defines it as 20; it is listed here.

/** Device type of a network card (§5 table of device IDs). */
export const VIRTIO_ID_NET = 1;

/** Network device feature bits (§5.1.3; legacy-only bits from §5.1.3.2 are marked). */
export const NetFeature = {
  CSUM: 0,
  GUEST_CSUM: 1,
  CTRL_GUEST_OFFLOADS: 2,
  MTU: 3,
  MAC: 5,
  /** Legacy interface only (§5.1.3.2). */
  GSO: 6,
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
  /** Legacy interface only (§5.1.3.2). */
  GUEST_RSC4: 41,
  /** Legacy interface only (§5.1.3.2). */
  GUEST_RSC6: 42,
  /** VIRTIO 1.4: statistics through control class STATS. */
  DEVICE_STATS: 50,
  /** VIRTIO 1.3: per-virtqueue notification coalescing (VQ_SET / VQ_GET). */
  VQ_NOTF_COAL: 52,
  /** VIRTIO 1.3: notification coalescing for all transmit / receive queues (TX_SET / RX_SET). */
  NOTF_COAL: 53,
  /** VIRTIO 1.3: the driver takes GSO_UDP_L4 over IPv4 / IPv6. */
  GUEST_USO4: 54,
  GUEST_USO6: 55,
  HOST_USO: 56,
  HASH_REPORT: 57,
  GUEST_HDRLEN: 59,
  RSS: 60,
  RSC_EXT: 61,
  STANDBY: 62,
  SPEED_DUPLEX: 63,
} as const;

/** Device-independent feature bits (§6; legacy-only bits from §6.1 are marked). */
export const VirtioFeature = {
  /** Legacy interface only (§6.1). */
  NOTIFY_ON_EMPTY: 24,
  /** Legacy interface only (§6.1). */
  ANY_LAYOUT: 27,
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  IN_ORDER: 35,
  ORDER_PLATFORM: 36,
  SR_IOV: 37,
  NOTIFICATION_DATA: 38,
  NOTIF_CONFIG_DATA: 39,
  RING_RESET: 40,
} as const;

/** A feature name as `features.disable` spells it: the spec name without `VIRTIO_NET_F_` / `VIRTIO_F_`. */
export type FeatureName = keyof typeof NetFeature | keyof typeof VirtioFeature;

/** Every feature name with its bit number, network bits first, ascending. */
export const FEATURE_BITS: ReadonlyMap<FeatureName, number> = new Map(
  ([...Object.entries(NetFeature), ...Object.entries(VirtioFeature)] as [FeatureName, number][]).sort((a, b) => a[1] - b[1]),
);

const NAME_BY_BIT: ReadonlyMap<number, FeatureName> = new Map([...FEATURE_BITS].map(([name, bit]) => [bit, name]));

/** The bit number of a feature name (`"CTRL_VLAN"` → 19), or undefined for an unknown name. */
export function featureBit(name: string): number | undefined {
  return FEATURE_BITS.get(name as FeatureName);
}

/** The name of a feature bit (19 → `"CTRL_VLAN"`), or undefined for a bit the spec does not define. */
export function featureName(bit: number): FeatureName | undefined {
  return NAME_BY_BIT.get(bit);
}

/** The 64-bit feature word with exactly `bits` set. */
export function featureMask(...bits: number[]): bigint {
  let mask = 0n;
  for (const bit of bits) mask |= 1n << BigInt(bit);
  return mask;
}

/** True when `bit` is set in the feature word `features`. */
export function hasFeature(features: bigint, bit: number): boolean {
  return ((features >> BigInt(bit)) & 1n) === 1n;
}

/**
 * The feature word for a list of names (API input such as `features.disable`). Throws a TypeError
 * naming `option` and the allowed values for anything that is not a known feature name.
 */
export function featureMaskFromNames(names: readonly string[], option: string): bigint {
  if (!Array.isArray(names)) {
    throw new TypeError(`${option} must be an array of feature names (${allowedNames()}), got ${describe(names)}`);
  }
  let mask = 0n;
  for (const name of names) {
    const bit = typeof name === 'string' ? featureBit(name) : undefined;
    if (bit === undefined) {
      throw new TypeError(`${option}: unknown feature ${describe(name)}; allowed: ${allowedNames()}`);
    }
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

function allowedNames(): string {
  return [...FEATURE_BITS.keys()].join(', ');
}

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * The guest offloads a GUEST_OFFLOADS_SET bitmap may carry (§5.1.6.5.8.1: the bitmap uses the
 * feature bit numbers). QEMU 7.2's mask is the first five; USO4 / USO6 are VIRTIO 1.3's (Linux sends them).
 */
export const GUEST_OFFLOAD_FEATURES = featureMask(
  NetFeature.GUEST_CSUM,
  NetFeature.GUEST_TSO4,
  NetFeature.GUEST_TSO6,
  NetFeature.GUEST_ECN,
  NetFeature.GUEST_UFO,
  NetFeature.GUEST_USO4,
  NetFeature.GUEST_USO6,
);

/** Bits of the config `status` field (§5.1.4). */
export const NetStatus = {
  LINK_UP: 1,
  ANNOUNCE: 2,
} as const;

/** `flags` of struct virtio_net_hdr (§5.1.6). */
export const VnetHdrFlag = {
  NEEDS_CSUM: 1,
  DATA_VALID: 2,
  RSC_INFO: 4,
} as const;

/** `gso_type` of struct virtio_net_hdr (§5.1.6); ECN is a flag OR-ed into the type. */
export const VnetHdrGso = {
  NONE: 0,
  TCPV4: 1,
  UDP: 3,
  TCPV6: 4,
  UDP_L4: 5,
  ECN: 0x80,
} as const;

/** Control-queue classes (§5.1.6.5). */
export const CtrlClass = {
  RX: 0,
  MAC: 1,
  VLAN: 2,
  ANNOUNCE: 3,
  MQ: 4,
  GUEST_OFFLOADS: 5,
  /** VIRTIO 1.3 §5.1.6.5.9 (coalescing.ts). */
  NOTF_COAL: 6,
  /** VIRTIO 1.4 §5.1.6.5.11 (device-stats.ts). */
  STATS: 8,
} as const;

/** Commands of class RX (§5.1.6.5.1). */
export const CtrlRx = {
  PROMISC: 0,
  ALLMULTI: 1,
  ALLUNI: 2,
  NOMULTI: 3,
  NOUNI: 4,
  NOBCAST: 5,
} as const;

/** Commands of class MAC (§5.1.6.5.2). */
export const CtrlMac = {
  TABLE_SET: 0,
  ADDR_SET: 1,
} as const;

/** Commands of class VLAN (§5.1.6.5.3). */
export const CtrlVlan = {
  ADD: 0,
  DEL: 1,
} as const;

/** Commands of class ANNOUNCE (§5.1.6.5.4). */
export const CtrlAnnounce = {
  ACK: 0,
} as const;

/** Commands of class MQ (§5.1.6.5.6, §5.1.6.5.7). */
export const CtrlMq = {
  VQ_PAIRS_SET: 0,
  RSS_CONFIG: 1,
  HASH_CONFIG: 2,
} as const;

/** Bounds of `virtqueue_pairs` in VQ_PAIRS_SET (§5.1.6.5.6). */
export const MQ_VQ_PAIRS_MIN = 1;
export const MQ_VQ_PAIRS_MAX = 0x8000;

/** Commands of class GUEST_OFFLOADS (§5.1.6.5.8). */
export const CtrlGuestOffloads = {
  SET: 0,
} as const;

/** Commands of class NOTF_COAL (VIRTIO 1.3 §5.1.6.5.9). */
export const CtrlNotfCoal = {
  TX_SET: 0,
  RX_SET: 1,
  VQ_SET: 2,
  VQ_GET: 3,
} as const;

/** Commands of class STATS (VIRTIO 1.4 §5.1.6.5.11). */
export const CtrlStats = {
  QUERY: 0,
  GET: 1,
} as const;

/** The ack byte the device writes (§5.1.6.5). */
export const CtrlAck = {
  OK: 0,
  ERR: 1,
} as const;
export type CtrlAckValue = (typeof CtrlAck)[keyof typeof CtrlAck];

/** Class and command bytes that precede every control payload (struct virtio_net_ctrl, §5.1.6.5). */
export const CTRL_HEADER_LENGTH = 2;

/**
 * Entries of the MAC filter table, shared by the unicast and the multicast list. The spec allows
 * any number (§5.1.6.5.2 footnote: the device may fall back to "all" instead); 64 is QEMU's
 * MAC_TABLE_ENTRIES, so the overflow points match QEMU's.
 */
export const MAC_TABLE_ENTRIES = 64;

/** VLAN ids are 12-bit (IEEE 802.1Q), so the filter is a 4096-bit table. */
export const VLAN_ID_COUNT = 4096;

/** Ethernet facts the rx filter needs (IEEE 802.3 / 802.1Q). */
export const ETH_ALEN = 6;
/** Destination, source, EtherType. */
export const ETH_HLEN = 14;
/** An 802.1Q tag adds 4 bytes, so a tagged header is 18. */
export const ETH_VLAN_HLEN = 18;
/** TPID of an 802.1Q tag; QEMU checks only this one (0x88a8 and 0x9100 are not filtered). */
export const ETH_P_8021Q = 0x8100;
