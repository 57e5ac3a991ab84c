// Feature negotiation over 64 feature bits (VIRTIO 1.2 §2.2; §6 reserved bits; §2.2.3 and
// §4.1.4.10 the legacy interface's 32-bit view).
//
// Features are a `bigint` bit set internally. Transports see them through 32-bit windows selected
// by a select register (`device_feature_select` / `DeviceFeaturesSel`, §4.1.4.3 and §4.2.2).
// The driver's acknowledged set is mutable until FEATURES_OK (modern) or DRIVER_OK (legacy) and
// frozen after that; only a reset clears it.

import type { DriverInterface, FeatureRefusal } from './device-status.js';

/** A feature bit number as a one-bit mask. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** §6 reserved (transport and ring) feature bits, as bit numbers. */
export const VIRTIO_F_NOTIFY_ON_EMPTY = 24; // legacy only (§6.3)
export const VIRTIO_F_ANY_LAYOUT = 27; // legacy only (§6.3)
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;
export const VIRTIO_F_IN_ORDER = 35;
export const VIRTIO_F_ORDER_PLATFORM = 36;
export const VIRTIO_F_SR_IOV = 37;
export const VIRTIO_F_NOTIFICATION_DATA = 38;
export const VIRTIO_F_NOTIF_CONFIG_DATA = 39;
export const VIRTIO_F_RING_RESET = 40;

/** Mask of the 32-bit feature word the select value `select` shows. */
const WORD_MASK = 0xffff_ffffn;
/** Feature words that exist: bits 0..63 (§4.1.4.3.1: "0 for any device_feature_select other than 0 or 1"). */
export const FEATURE_WORDS = 2;
/** All bits a 64-bit feature set can hold. */
const ALL_64 = (1n << 64n) - 1n;

/** What a feature write did wrong, if anything. */
export interface FeatureWriteMistake {
  readonly code: 'features.write-after-features-ok' | 'features.not-offered';
  readonly message: string;
  readonly value: number;
}

/** The driver side of negotiation, as saved in the device state. */
export interface NegotiationState {
  readonly driver: bigint;
  readonly frozen: boolean;
  readonly straySelectBits: boolean;
}

/**
 * The device's offer and the driver's acknowledgement. `offered` is fixed at construction (the
 * concrete device's offer plus VERSION_1); the driver side resets with the device.
 */
export class FeatureNegotiation {
  private driver = 0n;
  /** The driver set's two 32-bit halves, for allocation-free `has()`. */
  private lo = 0;
  private hi = 0;
  /** Bits the driver wrote through a select beyond the 64 defined bits (never offered). */
  private straySelectBits = false;
  private frozenAt: 'open' | 'frozen' = 'open';

  constructor(
    /** Everything the device offers through the modern interface. */
    readonly offered: bigint,
    /** What the device offers through the legacy interface (low 32 bits only, §4.1.4.10). */
    readonly offeredLegacy: bigint = (offered & WORD_MASK) | featureBit(VIRTIO_F_ANY_LAYOUT),
  ) {
    if (offered < 0n || offered > ALL_64) throw new RangeError('FeatureNegotiation: offered must be a 64-bit feature set');
  }

  /** The 32-bit window of the device's offer for `select` (0 beyond the defined words). */
  deviceWord(select: number): number {
    if (select >= FEATURE_WORDS || select < 0) return 0;
    return Number((this.offered >> BigInt(32 * select)) & WORD_MASK);
  }

  /** The 32-bit window of the driver's acknowledged set for `select`. */
  driverWord(select: number): number {
    if (select >= FEATURE_WORDS || select < 0) return 0;
    return Number((this.driver >> BigInt(32 * select)) & WORD_MASK);
  }

  /** The driver writes one 32-bit window of its acknowledged set. */
  writeDriverWord(select: number, value: number): FeatureWriteMistake | null {
    const v = value >>> 0;
    if (this.frozenAt === 'frozen') {
      return { code: 'features.write-after-features-ok', message: `driver wrote feature word ${select} = 0x${v.toString(16)} after negotiation ended; ignored`, value: v };
    }
    if (select >= FEATURE_WORDS || select < 0) {
      if (v === 0) return null;
      this.straySelectBits = true;
      return { code: 'features.not-offered', message: `driver acknowledged bits 0x${v.toString(16)} in feature word ${select}, which the device never offers`, value: v };
    }
    const shift = BigInt(32 * select);
    this.setDriver((this.driver & ~(WORD_MASK << shift)) | (BigInt(v) << shift));
    return null;
  }

  /**
   * The legacy interface's guest-features write: 32 bits, bits 32..63 not acknowledged (§4.1.4.10).
   * Bits the device did not offer are dropped (the legacy interface has no way to refuse).
   */
  writeLegacyDriverFeatures(value: number): FeatureWriteMistake | null {
    const v = value >>> 0;
    if (this.frozenAt === 'frozen') {
      return { code: 'features.write-after-features-ok', message: `driver wrote legacy guest features 0x${v.toString(16)} after DRIVER_OK; ignored`, value: v };
    }
    const unoffered = BigInt(v) & ~this.offeredLegacy;
    this.setDriver(BigInt(v) & this.offeredLegacy);
    if (unoffered !== 0n) {
      return { code: 'features.not-offered', message: `driver acknowledged unoffered bits 0x${unoffered.toString(16)} through the legacy interface; dropped`, value: Number(unoffered) };
    }
    return null;
  }

  /**
   * The FEATURES_OK check (§2.2.1, §2.2.2, §6.1): every acknowledged bit offered, VERSION_1
   * acknowledged (modern interface), then the device's own dependency check.
   */
  checkFeaturesOk(via: DriverInterface, deviceCheck: (features: bigint) => string | null): FeatureRefusal | null {
    const unoffered = this.driver & ~this.offered;
    if (unoffered !== 0n || this.straySelectBits) {
      return {
        code: 'features.not-offered',
        message: `driver acknowledged bits the device did not offer: ${describeBits(unoffered)}${this.straySelectBits ? ' (and bits beyond 63)' : ''}`,
        value: unoffered,
      };
    }
    if (via === 'modern' && (this.driver & featureBit(VIRTIO_F_VERSION_1)) === 0n) {
      return { code: 'features.version-1-missing', message: 'driver did not acknowledge VIRTIO_F_VERSION_1 through the modern interface', value: this.driver };
    }
    const reason = deviceCheck(this.driver);
    if (reason !== null) return { code: 'features.rejected-by-device', message: reason, value: this.driver };
    return null;
  }

  /** Ends negotiation (at FEATURES_OK, or at DRIVER_OK through the legacy interface). */
  freeze(): void {
    this.frozenAt = 'frozen';
  }

  get frozen(): boolean {
    return this.frozenAt === 'frozen';
  }

  /** Whether the driver acknowledged feature `bit` (0..63); allocates nothing (hot-path safe). */
  has(bit: number): boolean {
    if (bit < 32) return ((this.lo >>> bit) & 1) === 1;
    return bit < 64 && ((this.hi >>> (bit - 32)) & 1) === 1;
  }

  private setDriver(v: bigint): void {
    this.driver = v;
    this.lo = Number(v & WORD_MASK);
    this.hi = Number((v >> 32n) & WORD_MASK);
  }

  /** The driver's acknowledged set (final once `frozen`). */
  get acknowledged(): bigint {
    return this.driver;
  }

  /** The driver side as a value, for the device state (core-state.ts). */
  exportState(): NegotiationState {
    return { driver: this.driver, frozen: this.frozenAt === 'frozen', straySelectBits: this.straySelectBits };
  }

  /** Sets the driver side from a checked state value (core-state.ts validates it first). */
  importState(s: NegotiationState): void {
    this.setDriver(s.driver);
    this.frozenAt = s.frozen ? 'frozen' : 'open';
    this.straySelectBits = s.straySelectBits;
  }

  /** Reset (§2.4): nothing acknowledged, negotiation open again. */
  reset(): void {
    this.setDriver(0n);
    this.straySelectBits = false;
    this.frozenAt = 'open';
  }
}

/** `'bit 3, bit 40'`-style list of the bits in a set. */
export function describeBits(set: bigint): string {
  const out: string[] = [];
  for (let i = 0; set >> BigInt(i) !== 0n; i++) if (((set >> BigInt(i)) & 1n) !== 0n) out.push(`bit ${i}`);
  return out.length > 0 ? out.join(', ') : 'none';
}
