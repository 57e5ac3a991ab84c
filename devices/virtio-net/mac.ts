// MAC addresses (VIRTIO 1.2 §5.1.4 `mac`, §5.1.6.5.2 MAC filtering; IEEE 802 48-bit addresses):
// the split into two integers the rx filter compares without allocating (high 16 bits, low 32
// bits), broadcast, the default address. The text form ("52:54:00:12:34:56" ↔ bytes, QEMU's
// lowercase) and the group bit have one home for every layer, lib/base/mac.ts, re-exported here.
export { formatMac, isGroupMac, parseMac } from '../../lib/base/mac.js';

/** High 16 bits of the address at `offset` (bytes 0–1). */
export function macHigh(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

/** Low 32 bits of the address at `offset` (bytes 2–5) as a signed 32-bit integer (stays a small int). */
export function macLow(bytes: Uint8Array, offset: number): number {
  return (bytes[offset + 2]! << 24) | (bytes[offset + 3]! << 16) | (bytes[offset + 4]! << 8) | bytes[offset + 5]!;
}

/** The address as one exact number below 2^48 (high * 2^32 + unsigned low). */
export function macKey(high: number, low: number): number {
  return high * 0x1_0000_0000 + (low >>> 0);
}

/** ff:ff:ff:ff:ff:ff. */
export function isBroadcastMac(bytes: Uint8Array, offset = 0): boolean {
  return macHigh(bytes, offset) === 0xffff && macLow(bytes, offset) === -1;
}

/**
 * A locally administered unicast address for device number `index` (0..255): 52:54:00:12:34:(56+index),
 * QEMU's default scheme, so a model and a QEMU guest configured alike report the same `main-mac`.
 */
export function defaultMac(index = 0): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index > 255) {
    throw new RangeError(`defaultMac: index must be an integer 0..255, got ${String(index)}`);
  }
  return Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, (0x56 + index) & 0xff);
}
