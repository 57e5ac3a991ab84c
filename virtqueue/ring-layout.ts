// Split virtqueue memory layout (VIRTIO 1.2 §2.7: the alignment and size table; §2.7.5 the
// descriptor, §2.7.6 the available ring, §2.7.8 the used ring) and the 16-bit free-running index
// arithmetic every ring operation goes through (§2.7.13.3: idx "wraps naturally at 65536").
//
// Everything here is a constant or a pure function: no guest memory access.

/** Largest queue size the spec allows (§2.7: the highest power of 2 that fits in 16 bits). */
export const MAX_QUEUE_SIZE = 32768;

/** Bytes per descriptor (`struct virtq_desc`: le64 addr, le32 len, le16 flags, le16 next; §2.7.5). */
export const DESC_SIZE = 16;
/** Offsets inside one descriptor (§2.7.5). */
export const DESC_ADDR = 0;
export const DESC_LEN = 8;
export const DESC_FLAGS = 12;
export const DESC_NEXT = 14;

/** The buffer continues via `next` (§2.7.5). */
export const VIRTQ_DESC_F_NEXT = 1;
/** The buffer is device write-only; otherwise device read-only (§2.7.5). */
export const VIRTQ_DESC_F_WRITE = 2;
/** The buffer holds a table of indirect descriptors (§2.7.5.3). */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** `avail.flags` bit: the driver does not want used buffer notifications (§2.7.7). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** `used.flags` bit: the device does not want available buffer notifications (§2.7.10). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Offsets inside the available ring (`struct virtq_avail`, §2.7.6). */
export const AVAIL_FLAGS = 0;
export const AVAIL_IDX = 2;
export const AVAIL_RING = 4;
/** Bytes per available ring entry (le16 head index). */
export const AVAIL_ELEM_SIZE = 2;

/** Offsets inside the used ring (`struct virtq_used`, §2.7.8). */
export const USED_FLAGS = 0;
export const USED_IDX = 2;
export const USED_RING = 4;
/** Bytes per used ring element (`struct virtq_used_elem`: le32 id, le32 len). */
export const USED_ELEM_SIZE = 8;

/** Minimum alignments of the three parts (§2.7 table, required of the driver by §2.7.1). */
export const DESC_TABLE_ALIGN = 16;
export const AVAIL_RING_ALIGN = 2;
export const USED_RING_ALIGN = 4;

/** Bytes of the descriptor table for a queue of `size` entries (§2.7 table: 16 * size). */
export function descTableBytes(size: number): number {
  return DESC_SIZE * size;
}
/** Bytes of the available ring including `used_event` (§2.7 table: 6 + 2 * size). */
export function availRingBytes(size: number): number {
  return 6 + AVAIL_ELEM_SIZE * size;
}
/** Bytes of the used ring including `avail_event` (§2.7 table: 6 + 8 * size). */
export function usedRingBytes(size: number): number {
  return 6 + USED_ELEM_SIZE * size;
}
/** Offset of `used_event` (the last field of the available ring, §2.7.6) from the ring start. */
export function usedEventOffset(size: number): number {
  return AVAIL_RING + AVAIL_ELEM_SIZE * size;
}
/** Offset of `avail_event` (the last field of the used ring, §2.7.8) from the ring start. */
export function availEventOffset(size: number): number {
  return USED_RING + USED_ELEM_SIZE * size;
}

/** True for the queue sizes the spec allows: a power of 2 in 1..MAX_QUEUE_SIZE (§2.7). */
export function isValidQueueSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 && size <= MAX_QUEUE_SIZE && (size & (size - 1)) === 0;
}

// ---- 16-bit free-running index arithmetic (§2.7.13.3) ----

/** `x` reduced to 16 bits. */
export function wrap16(x: number): number {
  return x & 0xffff;
}
/** `a + n` in 16-bit arithmetic. */
export function add16(a: number, n: number): number {
  return (a + n) & 0xffff;
}
/** `a - b` in 16-bit arithmetic: how far index `a` is ahead of index `b`. */
export function sub16(a: number, b: number): number {
  return (a - b) & 0xffff;
}

/**
 * The event-index test (§2.7.7.2 / §2.7.10 with VIRTIO_F_EVENT_IDX): moving an index from `oldIdx`
 * to `newIdx` crossed the other side's `eventIdx`, i.e. `eventIdx` is in `[oldIdx, newIdx)` modulo
 * 2^16. Same arithmetic as Linux's `vring_need_event()` (virtio_ring.h).
 */
export function needEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
