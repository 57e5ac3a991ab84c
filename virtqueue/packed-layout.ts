// Packed virtqueue memory layout (VIRTIO 1.2 §2.8: §2.8.13 the descriptor `struct pvirtq_desc`,
// §2.8.14 the event suppression structure `struct pvirtq_event_suppress`, §2.8.10.1 sizes and
// alignments, §2.8.1 the AVAIL/USED flags and ring wrap counters).
//
// Ring positions are kept as one number in 0 .. 2 * size - 1 that carries both the descriptor
// offset and the wrap counter: `position = wrap * size + offset`. Both counters start at 1 (§2.8.1),
// so the first position is `size`; moving forward is `(position + n) % (2 * size)`, and crossing the
// end of the ring flips the wrap counter by itself. Everything here is a constant or a pure function.

/** Largest packed queue (§2.8: "up to 2^15 entries"). */
export const PACKED_MAX_QUEUE_SIZE = 32768;

/** Bytes per descriptor (`struct pvirtq_desc`: le64 addr, le32 len, le16 id, le16 flags; §2.8.13). */
export const PACKED_DESC_SIZE = 16;
export const PACKED_DESC_ADDR = 0;
export const PACKED_DESC_LEN = 8;
export const PACKED_DESC_ID = 12;
export const PACKED_DESC_FLAGS = 14;

/** Descriptor flags (§2.8.6 NEXT, §2.8.3 WRITE, §2.8.7 INDIRECT, §2.8.1 AVAIL and USED). */
export const PACKED_DESC_F_NEXT = 1;
export const PACKED_DESC_F_WRITE = 2;
export const PACKED_DESC_F_INDIRECT = 4;
export const PACKED_DESC_F_AVAIL = 1 << 7;
export const PACKED_DESC_F_USED = 1 << 15;

/** Event suppression structure (§2.8.14): le16 desc (offset : 15, wrap : 1), le16 flags. */
export const EVENT_SUPPRESS_SIZE = 4;
export const EVENT_OFF_WRAP = 0;
export const EVENT_FLAGS = 2;
/** Descriptor Ring Change Event Flags (§2.8.10). */
export const RING_EVENT_FLAGS_ENABLE = 0;
export const RING_EVENT_FLAGS_DISABLE = 1;
/** Only valid with VIRTIO_F_EVENT_IDX (§2.8.10). 3 is reserved. */
export const RING_EVENT_FLAGS_DESC = 2;
/** The flags field's defined bits (the other 14 are reserved, §2.8.14). */
export const RING_EVENT_FLAGS_MASK = 3;

/** Minimum alignments (§2.8.10.1 table, required of the driver by §2.8.11). */
export const DESC_RING_ALIGN = 16;
export const EVENT_SUPPRESS_ALIGN = 4;

/** Bytes of the descriptor ring for a queue of `size` entries (§2.8.10.1: 16 * size). */
export function descRingBytes(size: number): number {
  return PACKED_DESC_SIZE * size;
}

/** True for the sizes a packed ring allows: any integer in 1..32768 (§2.8.10.1: "does not have to be a power of 2"). */
export function isValidPackedSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 && size <= PACKED_MAX_QUEUE_SIZE;
}

/** The position both sides start at: offset 0, wrap counter 1 (§2.8.1). */
export function firstPosition(size: number): number {
  return size;
}
/** The descriptor offset of `position`. */
export function positionOffset(position: number, size: number): number {
  return position >= size ? position - size : position;
}
/** The wrap counter (0 or 1) of `position`. */
export function positionWrap(position: number, size: number): 0 | 1 {
  return position >= size ? 1 : 0;
}
/** `position` moved forward by `n` (0 <= n <= 2 * size). */
export function advancePosition(position: number, n: number, size: number): number {
  const p = position + n;
  return p >= 2 * size ? p - 2 * size : p;
}
/** `position` moved back by `n` (0 <= n <= 2 * size). */
export function rewindPosition(position: number, n: number, size: number): number {
  const p = position - n;
  return p < 0 ? p + 2 * size : p;
}
/** How many descriptors `to` is ahead of `from` (0 .. 2 * size - 1). */
export function positionDistance(from: number, to: number, size: number): number {
  const d = to - from;
  return d < 0 ? d + 2 * size : d;
}

/**
 * A driver descriptor is available to the device when its AVAIL bit equals the wrap counter of its
 * position and its USED bit differs (§2.8.1: AVAIL and USED differ for an available descriptor).
 */
export function isAvailable(flags: number, wrap: number): boolean {
  const avail = (flags & PACKED_DESC_F_AVAIL) !== 0 ? 1 : 0;
  const used = (flags & PACKED_DESC_F_USED) !== 0 ? 1 : 0;
  return avail === wrap && used !== wrap;
}

/** The AVAIL and USED bits of a used descriptor written at wrap counter `wrap` (§2.8.1: both equal to it). */
export function usedFlags(wrap: number): number {
  return wrap === 1 ? PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED : 0;
}

/** The `desc` field of an event suppression structure for `position` (§2.8.14: offset | wrap << 15). */
export function eventOffWrap(position: number, size: number): number {
  return positionOffset(position, size) | (positionWrap(position, size) << 15);
}

/**
 * The descriptor-specific event test (§2.8.10, RING_EVENT_FLAGS_DESC): moving from position `oldPos`
 * to `newPos` (at most `size` ahead) passed the descriptor named by `offWrap` — the event descriptor
 * lies in `[oldPos, newPos)`. The packed counterpart of `needEvent` (ring-layout.ts).
 */
export function passedEvent(offWrap: number, newPos: number, oldPos: number, size: number): boolean {
  const offset = offWrap & 0x7fff;
  if (offset >= size) return true; // names no descriptor of this ring: notify rather than stall the driver
  const event = (offWrap >>> 15) * size + offset;
  return positionDistance(oldPos, event, size) < positionDistance(oldPos, newPos, size);
}
