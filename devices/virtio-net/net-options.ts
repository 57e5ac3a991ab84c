// Options of `new VirtioNetDevice(...)` (API.md) and the feature set they give (VIRTIO 1.2 §5.1.3,
// §5.1.3.1 feature requirements). Bad options throw at once, naming the option and what is allowed.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import type { Netdev } from '../../lib/netdev/netdev.js';
import { hasLinkSpeed, hasVnetHeader, reportsMtu } from '../../lib/netdev/netdev.js';
import { MQ_VQ_PAIRS_MAX, NetFeature, VirtioFeature, featureMask, featureMaskFromNames, featureName, hasFeature } from './constants.js';
import { defaultMac, parseMac } from './mac.js';
import { ONE_ROUND, checkAnnounceParams } from './announce-rounds.js';
import type { AnnounceParams } from './announce-rounds.js';

export interface VirtioNetOptions {
  /** Net client name: `name` in queryRxFilter() and in events. */
  id: string;
  /** "52:54:00:12:34:56" form; default a locally administered address. */
  mac?: string;
  memory: GuestMemoryAccess;
  netdev: Netdev;
  /** Receive/transmit queue pairs (default 1; MQ is offered when > 1). */
  queuePairs?: number;
  /**
   * Offer VIRTIO_NET_F_MTU with this value (68..65535). Without it, a backend with a host MTU
   * (`MtuCapable`: TapNetdev) gives its own, read once here; `features.disable: ['MTU']` offers none.
   */
  mtu?: number;
  /**
   * Feature names without the VIRTIO_NET_F_ / VIRTIO_F_ prefix, e.g. "CTRL_VLAN": `disable` turns
   * off what is offered by default, `enable` turns on what is off by default (`ENABLEABLE_FEATURES`).
   */
  features?: { disable?: string[]; enable?: string[] };
  /**
   * Config `speed` in Mb/s (0..0x7fffffff; VIRTIO 1.3 §5.1.4); offers SPEED_DUPLEX. Default: what
   * the backend reports (TAP: the interface's speed), else unknown (0xffffffff).
   */
  speed?: number;
  /** Config `duplex`; offers SPEED_DUPLEX. Default: the backend's, else unknown (0xff). */
  duplex?: 'full' | 'half';
  /**
   * How the device announces itself after `restoreState()`: QEMU's announce parameters (ms;
   * announce-rounds.ts). Default one round; fields left out take QEMU's values (50, 550, 5, 100),
   * so `{}` gives QEMU's five rounds.
   */
  announce?: Partial<AnnounceParams>;
  /** Report the rx filter exactly as QEMU does. */
  compat?: 'qemu';
  /**
   * Answer VIRTIO_NET_ERR to every control-command mistake QEMU tolerates, and refuse transmit
   * frames whose virtio-net header breaks a §5.1.6.2.1 rule (QEMU forwards them).
   */
  strict?: boolean;
  /** Maximum size of every virtqueue (power of two, 2..32768; default 256, QEMU's). */
  queueSize?: number;
}

/** The options, checked and with defaults filled in. */
export interface NetConfig {
  readonly id: string;
  readonly mac: Uint8Array;
  readonly memory: GuestMemoryAccess;
  readonly netdev: Netdev;
  readonly queuePairs: number;
  /** The `mtu` option, else the backend's MTU (when MTU is not disabled); undefined when neither. */
  readonly mtu: number | undefined;
  readonly compat: 'qemu' | undefined;
  readonly strict: boolean;
  readonly queueSize: number;
  readonly offered: bigint;
  /** The `speed` / `duplex` options (undefined: the backend's or unknown). */
  readonly speed: number | undefined;
  readonly duplex: 'full' | 'half' | undefined;
  /** The announcement after a restore. */
  readonly announce: AnnounceParams;
}

const MTU_MIN = 68; // §5.1.4.1: the device MUST NOT set mtu below 68
const MTU_MAX = 65535;
const QUEUE_SIZE_DEFAULT = 256;

/**
 * Offered by default (the list; QEMU's default virtio-net-pci set minus host offloads), plus
 * the packed ring (§2.8) and per-queue reset (§2.6.1), which Linux negotiates when offered.
 * `features.disable: ['RING_PACKED']` / `['RING_RESET']` turns them off. The legacy PCI interface
 * shows only bits 0..31, so it never offers either.
 */
const DEFAULT_FEATURES = featureMask(
  VirtioFeature.VERSION_1,
  NetFeature.MAC,
  NetFeature.STATUS,
  NetFeature.MRG_RXBUF,
  NetFeature.CTRL_VQ,
  NetFeature.CTRL_RX,
  NetFeature.CTRL_RX_EXTRA,
  NetFeature.CTRL_VLAN,
  NetFeature.CTRL_MAC_ADDR,
  NetFeature.GUEST_ANNOUNCE,
  VirtioFeature.INDIRECT_DESC,
  VirtioFeature.EVENT_IDX,
  VirtioFeature.RING_PACKED,
  VirtioFeature.RING_RESET,
  NetFeature.NOTF_COAL,
  NetFeature.VQ_NOTF_COAL,
  NetFeature.DEVICE_STATS,
);

/**
 * Implemented but off by default, like QEMU's `rss=off,hash=off`: a driver that sees them changes
 * how it configures the device (Linux sends RSS_CONFIG at probe), so they are asked for with
 * `features.enable`. Both need CTRL_VQ (RSS by §5.1.3.1; HASH_REPORT by §5.1.4.1's SHOULD NOT).
 */
export const OPT_IN_FEATURES = featureMask(NetFeature.RSS, NetFeature.HASH_REPORT);
/**
 * Off by default, offered with `features.enable`. USO: a TAP turns it on only from Linux 6.2
 * (TUN_F_USO4/6), and what an older kernel does with a UDP_L4 GSO frame written to it is refuse
 * it, so the embedder who knows the host enables it. SPEED_DUPLEX: also offered by the `speed` /
 * `duplex` options and by a backend that knows its link speed (LinkSpeedCapable).
 */
export const ENABLEABLE_FEATURES = OPT_IN_FEATURES | featureMask(NetFeature.GUEST_USO4, NetFeature.GUEST_USO6, NetFeature.HOST_USO, NetFeature.SPEED_DUPLEX);
/** Of those, the ones that need a backend carrying the virtio-net header. */
const ENABLEABLE_HEADER_FEATURES = featureMask(NetFeature.GUEST_USO4, NetFeature.GUEST_USO6, NetFeature.HOST_USO);
/** Control-queue features the spec's §5.1.3.1 table omits but which only work with CTRL_VQ. */
const CTRL_VQ_ONLY = featureMask(NetFeature.DEVICE_STATS);
const SPEED_MAX = 0x7fffffff;

/** Offered only when the backend carries a virtio-net header (it can take partial checksums / GSO). */
const HEADER_FEATURES = featureMask(
  NetFeature.CTRL_GUEST_OFFLOADS,
  NetFeature.CSUM,
  NetFeature.GUEST_CSUM,
  NetFeature.GUEST_TSO4,
  NetFeature.GUEST_TSO6,
  NetFeature.GUEST_ECN,
  NetFeature.GUEST_UFO,
  NetFeature.HOST_TSO4,
  NetFeature.HOST_TSO6,
  NetFeature.HOST_ECN,
  NetFeature.HOST_UFO,
);

export function checkOptions(options: VirtioNetOptions): NetConfig {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('VirtioNetDevice: options must be an object { id, memory, netdev, ... }');
  }
  const { id, mac, memory, netdev, queuePairs = 1, mtu, features, compat, strict = false, queueSize = QUEUE_SIZE_DEFAULT, speed, duplex, announce } = options;
  if (typeof id !== 'string' || id.length === 0 || !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(id)) {
    throw new TypeError(`VirtioNetDevice: id must be a non-empty string of letters, digits, '-', '.', '_' starting with a letter (a QEMU id), got ${JSON.stringify(id)}`);
  }
  if (memory === null || typeof memory !== 'object' || typeof (memory as GuestMemoryAccess).readU16 !== 'function') {
    throw new TypeError('VirtioNetDevice: memory must be a GuestMemory (or implement GuestMemoryAccess)');
  }
  if (netdev === null || typeof netdev !== 'object' || typeof (netdev as Netdev).send !== 'function' || typeof (netdev as Netdev).attach !== 'function') {
    throw new TypeError('VirtioNetDevice: netdev must be a Netdev (e.g. new MemoryNetdev())');
  }
  if (!Number.isInteger(queuePairs) || queuePairs < 1 || queuePairs > MQ_VQ_PAIRS_MAX) {
    throw new RangeError(`VirtioNetDevice: queuePairs must be an integer in 1..${MQ_VQ_PAIRS_MAX}, got ${String(queuePairs)}`);
  }
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX)) {
    throw new RangeError(`VirtioNetDevice: mtu must be an integer in ${MTU_MIN}..${MTU_MAX}, got ${String(mtu)}`);
  }
  if (compat !== undefined && compat !== 'qemu') {
    throw new TypeError(`VirtioNetDevice: compat must be 'qemu' or absent, got ${JSON.stringify(compat)}`);
  }
  if (typeof strict !== 'boolean') throw new TypeError(`VirtioNetDevice: strict must be a boolean, got ${String(strict)}`);
  if (!Number.isInteger(queueSize) || queueSize < 2 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
    throw new RangeError(`VirtioNetDevice: queueSize must be a power of two in 2..32768, got ${String(queueSize)}`);
  }
  if (features !== undefined && (features === null || typeof features !== 'object' || Array.isArray(features))) {
    throw new TypeError('VirtioNetDevice: features must be an object { disable?: string[], enable?: string[] }');
  }
  const unknownKeys = features === undefined ? [] : Object.keys(features).filter((k) => k !== 'disable' && k !== 'enable');
  if (unknownKeys.length > 0) throw new TypeError(`VirtioNetDevice: features has unknown key(s) ${unknownKeys.join(', ')}; allowed: disable, enable`);
  const disabled = featureMaskFromNames(features?.disable ?? [], 'VirtioNetDevice: features.disable');
  const enabled = featureMaskFromNames(features?.enable ?? [], 'VirtioNetDevice: features.enable');
  const notEnableable = enabled & ~ENABLEABLE_FEATURES & ~DEFAULT_FEATURES & ~(hasVnetHeader(netdev) ? HEADER_FEATURES : 0n);
  if (notEnableable !== 0n) {
    throw new TypeError(
      `VirtioNetDevice: features.enable: ${namesOf(notEnableable)} cannot be enabled on this device; allowed: ${namesOf(ENABLEABLE_FEATURES)}`,
    );
  }
  if ((enabled & ENABLEABLE_HEADER_FEATURES) !== 0n && !hasVnetHeader(netdev)) {
    throw new TypeError(`VirtioNetDevice: features.enable: ${namesOf(enabled & ENABLEABLE_HEADER_FEATURES)} need a netdev that carries a virtio-net header (e.g. TapNetdev with vnetHdr)`);
  }
  const both = enabled & disabled;
  if (both !== 0n) throw new TypeError(`VirtioNetDevice: features: ${namesOf(both)} both enabled and disabled`);
  if (speed !== undefined && (!Number.isInteger(speed) || speed < 0 || speed > SPEED_MAX)) {
    throw new RangeError(`VirtioNetDevice: speed must be an integer number of Mb/s in 0..${SPEED_MAX}, got ${String(speed)}`);
  }
  if (duplex !== undefined && duplex !== 'full' && duplex !== 'half') {
    throw new TypeError(`VirtioNetDevice: duplex must be 'full' or 'half', got ${JSON.stringify(duplex)}`);
  }

  const mtuOffered = mtu ?? backendMtu(netdev, disabled);
  let offered = DEFAULT_FEATURES;
  if (mtuOffered !== undefined) offered |= featureMask(NetFeature.MTU);
  if (queuePairs > 1) offered |= featureMask(NetFeature.MQ);
  if (hasVnetHeader(netdev)) offered |= HEADER_FEATURES;
  if (speed !== undefined || duplex !== undefined || hasLinkSpeed(netdev)) offered |= featureMask(NetFeature.SPEED_DUPLEX);
  offered |= enabled;
  offered &= ~disabled;
  offered = dropUnmetRequirements(offered);
  if (!hasFeature(offered, NetFeature.CTRL_VQ)) offered &= ~CTRL_VQ_ONLY;

  return {
    id,
    mac: mac === undefined ? defaultMac() : parseMac(mac, 'VirtioNetDevice: mac'),
    memory,
    netdev,
    queuePairs,
    mtu: mtuOffered,
    compat,
    strict,
    queueSize,
    offered,
    speed,
    duplex,
    announce: announce === undefined ? ONE_ROUND : checkAnnounceParams(announce, 'VirtioNetDevice: announce'),
  };
}

/**
 * The backend's host MTU (TapNetdev), when it has one within 68..65535 (§5.1.4.1: the device MUST
 * set mtu in that range) and MTU is not disabled; read only then.
 */
function backendMtu(netdev: Netdev, disabled: bigint): number | undefined {
  if (hasFeature(disabled, NetFeature.MTU) || !reportsMtu(netdev)) return undefined;
  const m = netdev.hostMtu();
  return typeof m === 'number' && Number.isInteger(m) && m >= MTU_MIN && m <= MTU_MAX ? m : undefined;
}

function namesOf(mask: bigint): string {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) if (hasFeature(mask, bit)) names.push(featureName(bit) ?? String(bit));
  return names.join(', ');
}

/** §5.1.3.1: each feature and the features it requires. */
export const FEATURE_REQUIREMENTS: readonly (readonly [number, readonly number[]])[] = [
  [NetFeature.GUEST_TSO4, [NetFeature.GUEST_CSUM]],
  [NetFeature.GUEST_TSO6, [NetFeature.GUEST_CSUM]],
  [NetFeature.GUEST_ECN, [NetFeature.GUEST_TSO4, NetFeature.GUEST_TSO6]], // either one
  [NetFeature.GUEST_UFO, [NetFeature.GUEST_CSUM]],
  [NetFeature.HOST_TSO4, [NetFeature.CSUM]],
  [NetFeature.HOST_TSO6, [NetFeature.CSUM]],
  [NetFeature.HOST_ECN, [NetFeature.HOST_TSO4, NetFeature.HOST_TSO6]], // either one
  [NetFeature.HOST_UFO, [NetFeature.CSUM]],
  [NetFeature.GUEST_USO4, [NetFeature.GUEST_CSUM]],
  [NetFeature.GUEST_USO6, [NetFeature.GUEST_CSUM]],
  [NetFeature.HOST_USO, [NetFeature.CSUM]],
  [NetFeature.NOTF_COAL, [NetFeature.CTRL_VQ]],
  [NetFeature.VQ_NOTF_COAL, [NetFeature.CTRL_VQ]],
  [NetFeature.CTRL_RX, [NetFeature.CTRL_VQ]],
  [NetFeature.CTRL_VLAN, [NetFeature.CTRL_VQ]],
  [NetFeature.GUEST_ANNOUNCE, [NetFeature.CTRL_VQ]],
  [NetFeature.MQ, [NetFeature.CTRL_VQ]],
  [NetFeature.CTRL_MAC_ADDR, [NetFeature.CTRL_VQ]],
  [NetFeature.CTRL_RX_EXTRA, [NetFeature.CTRL_RX]],
  [NetFeature.CTRL_GUEST_OFFLOADS, [NetFeature.CTRL_VQ]],
  [NetFeature.RSS, [NetFeature.CTRL_VQ]],
];

/** The features in `f` whose §5.1.3.1 requirement is not met, as the first offending pair. */
export function unmetRequirement(f: bigint): { feature: number; requires: readonly number[] } | null {
  for (const [feature, requires] of FEATURE_REQUIREMENTS) {
    if (hasFeature(f, feature) && !requires.some((r) => hasFeature(f, r))) return { feature, requires };
  }
  return null;
}

/** A device must not offer a feature without what it requires (e.g. disabling CTRL_VQ drops CTRL_RX). */
function dropUnmetRequirements(f: bigint): bigint {
  // §5.1.4.1: the device SHOULD NOT offer HASH_REPORT without CTRL_VQ (not a §5.1.3.1 requirement,
  // so a driver negotiating it alone is not refused).
  if (!hasFeature(f, NetFeature.CTRL_VQ)) f &= ~featureMask(NetFeature.HASH_REPORT);
  for (;;) {
    const u = unmetRequirement(f);
    if (u === null) return f;
    f &= ~featureMask(u.feature);
  }
}
