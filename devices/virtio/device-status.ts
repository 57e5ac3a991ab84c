// The device status field as an explicit state machine (VIRTIO 1.2 §2.1 the bits, §2.1.1/§2.1.2
// the rules, §3.1.1 the initialisation order, §3.1.2 the legacy interface's order).
//
// `nextStatus()` is pure: given the current status, the value the driver wrote, which interface it
// wrote it through, and a feature check, it returns the status that sticks, the bits that newly
// became set, and every mistake the write contained. The device core applies the result.
//
// Rules (each mistake is recorded; the write is never an exception):
// - 0 (the whole written value) resets the device (§2.1, §4.1.4.3 / §4.2.2 "writing zero ... triggers a device reset").
// - A bit the driver set cannot be cleared except by reset (§2.1.1): cleared bits stay set.
// - DEVICE_NEEDS_RESET belongs to the device: the driver may echo it back (Linux ORs new bits into
//   the status it read), but writing it when the device has not set it is a mistake; either way the
//   device keeps its own value of the bit.
// - After FAILED nothing new is accepted until reset (§2.1.1).
// - DRIVER before ACKNOWLEDGE, FEATURES_OK before DRIVER: accepted (they change nothing the device
//   relies on), recorded (§3.1.1).
// - FEATURES_OK (modern interface only) sticks only when the feature check passes (§2.2.2); through
//   the legacy interface the bit has no meaning (§3.1.2) and is dropped.
// - DRIVER_OK through the modern interface needs FEATURES_OK (§3.1.1); otherwise it does not stick.
//   Through the legacy interface it needs nothing (§3.1.2).

/** §2.1 status bits. */
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 0x40;
export const STATUS_FAILED = 0x80;

/** Bits the driver may set. */
const DRIVER_BITS = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK | STATUS_FEATURES_OK | STATUS_FAILED;

/**
 * Which register block the driver used: the modern interface (virtio-pci capabilities, virtio-mmio
 * version 2) or the legacy virtio-pci header (§4.1.4.10).
 */
export type DriverInterface = 'modern' | 'legacy';

/** A mistake found in one status write (a `DiagnosticCode` of the `status.*` or `features.*` family). */
export interface StatusMistake {
  readonly code:
    | 'status.bit-cleared'
    | 'status.device-bit-set'
    | 'status.after-failed'
    | 'status.driver-before-acknowledge'
    | 'status.features-ok-before-driver'
    | 'status.driver-ok-before-features-ok'
    | 'status.features-ok-on-legacy'
    | 'features.not-offered'
    | 'features.version-1-missing'
    | 'features.rejected-by-device';
  readonly message: string;
  /** The status bits or feature bits concerned. */
  readonly value: number | bigint;
}

/** Why the feature set the driver acknowledged cannot be accepted at FEATURES_OK. */
export type FeatureRefusal = Pick<StatusMistake, 'code' | 'message' | 'value'> & {
  readonly code: 'features.not-offered' | 'features.version-1-missing' | 'features.rejected-by-device';
};

/** Outcome of one status write. */
export type StatusTransition =
  | { readonly kind: 'reset' }
  | {
      readonly kind: 'update';
      /** The status that sticks (what the driver reads back). */
      readonly status: number;
      /** Bits set by this write that were not set before (FEATURES_OK / DRIVER_OK trigger work). */
      readonly newlySet: number;
      readonly mistakes: readonly StatusMistake[];
    };

/**
 * Applies one driver write of the status field. `checkFeatures` is called only when the write
 * newly sets FEATURES_OK through the modern interface; it returns null to accept.
 */
export function nextStatus(
  current: number,
  written: number,
  via: DriverInterface,
  checkFeatures: () => FeatureRefusal | null,
): StatusTransition {
  if (written >>> 0 === 0) return { kind: 'reset' };
  // Only the low 8 bits are defined (§2.1); MMIO's Status register is 32 bits wide.
  const value = written & 0xff;
  const mistakes: StatusMistake[] = [];

  const deviceBit = current & STATUS_DEVICE_NEEDS_RESET;
  if ((value & STATUS_DEVICE_NEEDS_RESET) !== 0 && deviceBit === 0) {
    mistakes.push({ code: 'status.device-bit-set', message: 'driver wrote DEVICE_NEEDS_RESET, which only the device sets', value });
  }
  const cleared = current & DRIVER_BITS & ~value;
  if (cleared !== 0) {
    mistakes.push({ code: 'status.bit-cleared', message: `driver cleared status bits ${bits(cleared)} without a reset`, value: cleared });
  }
  // Unknown bits (0x10, 0x20) are ignored: they are not defined in §2.1.
  let requested = (value & DRIVER_BITS & ~current) >>> 0;

  if ((current & STATUS_FAILED) !== 0 && (requested & ~STATUS_FAILED) !== 0) {
    mistakes.push({
      code: 'status.after-failed',
      message: `driver set ${bits(requested)} after FAILED without resetting the device`,
      value: requested,
    });
    requested = 0;
  }

  let next = current | requested;
  if ((requested & STATUS_DRIVER) !== 0 && (next & STATUS_ACKNOWLEDGE) === 0) {
    mistakes.push({ code: 'status.driver-before-acknowledge', message: 'driver set DRIVER before ACKNOWLEDGE', value });
  }
  if ((requested & STATUS_FEATURES_OK) !== 0) {
    if (via === 'legacy') {
      mistakes.push({
        code: 'status.features-ok-on-legacy',
        message: 'driver set FEATURES_OK through the legacy interface, which has no such step; ignored',
        value,
      });
      next &= ~STATUS_FEATURES_OK;
    } else {
      if ((next & STATUS_DRIVER) === 0) {
        mistakes.push({ code: 'status.features-ok-before-driver', message: 'driver set FEATURES_OK before DRIVER', value });
      }
      const refusal = checkFeatures();
      if (refusal !== null) {
        mistakes.push(refusal);
        next &= ~STATUS_FEATURES_OK;
      }
    }
  }
  if ((requested & STATUS_DRIVER_OK) !== 0 && via === 'modern' && (next & STATUS_FEATURES_OK) === 0) {
    mistakes.push({
      code: 'status.driver-ok-before-features-ok',
      message: 'driver set DRIVER_OK without FEATURES_OK having been accepted; DRIVER_OK refused',
      value,
    });
    next &= ~STATUS_DRIVER_OK;
  }
  next = (next & DRIVER_BITS) | deviceBit;
  return { kind: 'update', status: next, newlySet: next & ~current, mistakes };
}

/** `'ACKNOWLEDGE|DRIVER'`-style names for a set of status bits. */
export function statusBitNames(status: number): string {
  return bits(status);
}

const NAMES: readonly [number, string][] = [
  [STATUS_ACKNOWLEDGE, 'ACKNOWLEDGE'],
  [STATUS_DRIVER, 'DRIVER'],
  [STATUS_FEATURES_OK, 'FEATURES_OK'],
  [STATUS_DRIVER_OK, 'DRIVER_OK'],
  [STATUS_DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET'],
  [STATUS_FAILED, 'FAILED'],
];

function bits(status: number): string {
  const names = NAMES.filter(([b]) => (status & b) !== 0).map(([, n]) => n);
  return names.length > 0 ? names.join('|') : '0';
}
