// Typed errors of the split (VIRTIO 1.2 §2.7) and packed (§2.8) virtqueues: what a running queue reports when the
// driver breaks the ring contract (tier 1, "contract violation", see shared/design/STYLE.md), and
// what activation reports for a queue configuration that cannot run.
//
// Errors are plain data: a discriminated union on `code` with the values that identify the mistake.
// Tests assert on `code` and fields; `describeQueueError()` is for people.

/**
 * The validation list. Every guest value is read once into a local and checked there. Any failure
 * makes the queue `broken` (it refuses work until a queue is activated again) and nothing of the
 * chain reaches the used ring.
 *
 * Per pop, before the chain:
 * - `avail.index-jump` — `avail.idx - nextAvail` (16-bit) must be <= queue size: the ring is as big
 *   as the descriptor table, so a driver can never have more heads outstanding (§2.7.13; §2.7.6.1
 *   forbids decrementing `idx`, which shows up as a jump of nearly 2^16).
 * - `avail.in-flight-exceeded` — at most queue size chains held by the device (popped, or pushed
 *   but not yet published) when another is popped (§2.7: "if Queue Size is 4 then at most 4 buffers
 *   can be queued at any given time"); only a driver that reuses descriptors the device still holds
 *   gets here, and the check keeps unpublished used elements from being overwritten.
 * - `chain.head-out-of-range` — the head from the available ring is < queue size (§2.7.5: the table
 *   holds queue size descriptors).
 *
 * Per descriptor of the descriptor table, in this order:
 * - with VIRTQ_DESC_F_INDIRECT: `chain.indirect-not-negotiated` (needs VIRTIO_F_INDIRECT_DESC,
 *   §2.7.5.3.1), `chain.indirect-with-next` (never INDIRECT and NEXT together, §2.7.5.3.1),
 *   `chain.indirect-bad-length` (a non-zero multiple of 16: `desc[len / 16]`, §2.7.5.3),
 *   `chain.indirect-outside-memory` (the table lies in guest memory, §2.7.5.3); then the walk moves
 *   into the table, which ends the chain (its WRITE flag is ignored, §2.7.5.3.2; zero or more direct
 *   descriptors before it are valid, §2.7.5.3.2).
 * - `chain.too-many-descriptors` — the loop guard: no more buffer descriptors than queue size,
 *   indirect entries included (§2.7.5.3.1 "MUST NOT create a descriptor chain longer than the Queue
 *   Size"; §2.7.5.2 "loops in the descriptor chain are forbidden").
 * - `chain.readable-after-writable` — device-readable descriptors all come before device-writable
 *   ones (§2.7.4.2).
 * - `chain.region-outside-memory` — every non-empty buffer lies inside guest memory (§2.7.5: `addr`
 *   is a guest-physical address). A zero-length descriptor is accepted and gives no region.
 * - `chain.too-long` — the chain's total length stays < 2^32 (§2.7.5.2; exactly 2^32 is refused too,
 *   since lengths and the used `len` are 32-bit).
 * - `chain.next-out-of-range` — with NEXT, `next` is < queue size (§2.7.5).
 *
 * Per entry of an indirect table: `chain.too-many-descriptors`, `chain.indirect-nested` (no INDIRECT
 * inside a table, §2.7.5.3.1), then readable-after-writable, region, total length as above, and
 * `chain.next-out-of-range` against the table's entry count (§2.7.5.3).
 */
export type ChainError = SplitChainError | PackedChainError;

/** The split ring's chain errors (the list above). */
export type SplitChainError =
  /** §2.7.13 / §2.7.6.1: the driver moved `avail.idx` more than queue size ahead of `nextAvail`. */
  | { readonly code: 'avail.index-jump'; readonly availIdx: number; readonly nextAvail: number; readonly size: number }
  /** §2.7 footnote: a chain was offered while the device already held queue size chains (`inFlight`:
   *  popped, or pushed but not yet published). */
  | { readonly code: 'avail.in-flight-exceeded'; readonly inFlight: number; readonly size: number }
  /** §2.7.5: the available ring names a head descriptor past the end of the table. */
  | { readonly code: 'chain.head-out-of-range'; readonly head: number; readonly size: number }
  /**
   * §2.7.5 / §2.7.5.3: descriptor `index` (in the descriptor table, or in the indirect table when
   * `indirect`) links to `next`, which is past the end of its table.
   */
  | { readonly code: 'chain.next-out-of-range'; readonly head: number; readonly index: number; readonly next: number; readonly indirect: boolean }
  /** §2.7.5.3.1 / §2.7.5.2: more than queue size buffer descriptors (a loop, or simply too long). */
  | { readonly code: 'chain.too-many-descriptors'; readonly head: number; readonly count: number }
  /** §2.7.5.3.1: descriptor `index` has VIRTQ_DESC_F_INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated. */
  | { readonly code: 'chain.indirect-not-negotiated'; readonly head: number; readonly index: number }
  /** §2.7.5.3.1: entry `index` of an indirect table has VIRTQ_DESC_F_INDIRECT. */
  | { readonly code: 'chain.indirect-nested'; readonly head: number; readonly index: number }
  /** §2.7.5.3: descriptor `index` points to an indirect table whose length is 0 or not a multiple of 16. */
  | { readonly code: 'chain.indirect-bad-length'; readonly head: number; readonly index: number; readonly length: number }
  /** §2.7.5.3.1: descriptor `index` has both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT. */
  | { readonly code: 'chain.indirect-with-next'; readonly head: number; readonly index: number }
  /** §2.7.5.3: descriptor `index` points to an indirect table `[addr, addr + len)` outside guest memory. */
  | { readonly code: 'chain.indirect-outside-memory'; readonly head: number; readonly index: number; readonly addr: number; readonly len: number }
  /** §2.7.4.2: a device-readable descriptor (`index`, in the indirect table when `indirect`) follows a device-writable one. */
  | { readonly code: 'chain.readable-after-writable'; readonly head: number; readonly index: number; readonly indirect: boolean }
  /** §2.7.5: the buffer `[addr, addr + len)` of descriptor `index` is not inside guest memory. */
  | {
      readonly code: 'chain.region-outside-memory';
      readonly head: number;
      readonly index: number;
      readonly addr: number;
      readonly len: number;
      readonly indirect: boolean;
    }
  /** §2.7.5.2: the chain's buffers add up to 2^32 bytes or more. */
  | { readonly code: 'chain.too-long'; readonly head: number; readonly total: number }
  /**
   * §2.7: the ring views could not be fetched again after guest memory changed (`generation`
   * moved and the rings are no longer inside one region of memory).
   */
  | { readonly code: 'queue.ring-unmapped'; readonly ring: QueueRing };

/**
 * The validation list of the packed ring (§2.8), rule for rule beside the split ring's. Every guest
 * value is read once into a local; any failure makes the queue `broken` (it refuses work until a
 * queue is activated again), nothing of the chain reaches the ring, and chains pushed before it are
 * made visible (their flags written) as the queue stops. `head` is the ring offset of the chain's
 * first descriptor; `index` a ring offset, or an entry of the indirect table when `indirect`.
 *
 * Per pop, at the next ring position: a descriptor whose AVAIL bit differs from the device's wrap
 * counter, or whose USED bit equals it, is simply not available (§2.8.1) — `pop()` is empty. Then:
 * - `packed.in-flight-exceeded` — the device already holds every descriptor of the ring (popped, or
 *   used but not yet marked used) and still finds one available, or a chain runs into held ones: the
 *   driver changed descriptors whose USED bit it had not seen change (§2.8.16).
 *
 * Per descriptor of the ring, in this order:
 * - `packed.too-many-descriptors` — no list longer than the queue size (§2.8.17, "loops ... are
 *   forbidden"); then `packed.in-flight-exceeded` as above for the list's further descriptors.
 * - `packed.chain-descriptor-unavailable` — every descriptor after the first of a NEXT list carries
 *   AVAIL/USED for its own position's wrap counter (§2.8.6: "all flags ... must be set/cleared
 *   correctly in all descriptors in the list, not just the first one").
 * - with VIRTQ_DESC_F_INDIRECT: `packed.indirect-not-negotiated` (needs VIRTIO_F_INDIRECT_DESC,
 *   §2.8.19), `packed.indirect-in-chain` (an INDIRECT descriptor is a list of its own: never with NEXT,
 *   never after a NEXT descriptor, §2.8.19 and §2.8.5), `packed.indirect-bad-length` (a non-zero
 *   multiple of 16, §2.8.7), `packed.indirect-outside-memory` (§2.8.7), `packed.too-many-descriptors`
 *   (table entries <= queue size, §2.8.17); its WRITE flag is ignored (§2.8.7).
 * - `packed.readable-after-writable` — device-readable elements come before device-writable ones
 *   (§2.8.17).
 * - `packed.region-outside-memory` — every non-empty element lies inside guest memory (§2.8.4: the
 *   address is a physical address). A zero-length element is accepted and gives no region.
 * - `packed.too-long` — the list's total length stays < 2^32 (§2.8.4: lengths and the used length are
 *   32-bit; exactly 2^32 is refused too).
 * - at the list's last descriptor: `packed.buffer-id-in-use` — its Buffer ID (§2.8.6: carried by the
 *   last descriptor) is not the ID of a buffer the device still holds (§2.8.21.1: the driver takes
 *   "the next free buffer id"; two outstanding buffers with one ID cannot be told apart when used).
 *
 * Per entry of an indirect table: `packed.indirect-entry-flags` (no flag but WRITE, §2.8.19 — this
 * covers nested INDIRECT and NEXT), then readable-after-writable, region, total length as above.
 * Entry IDs are ignored (§2.8.7).
 *
 * Not violations: the Buffer ID's value (any 16-bit value; §2.8 does not bound it), and event
 * suppression values the device does not understand (reserved flags, RING_EVENT_FLAGS_DESC without
 * VIRTIO_F_EVENT_IDX, an offset past the ring): the device then notifies, which is never wrong.
 */
export type PackedChainError =
  /** §2.8.16: an available descriptor while the device holds `inFlight` of the `size` descriptors. */
  | { readonly code: 'packed.in-flight-exceeded'; readonly head: number; readonly index: number; readonly inFlight: number; readonly size: number }
  /** §2.8.17: a list of more than queue size descriptors (`count`), in the ring or in an indirect table. */
  | { readonly code: 'packed.too-many-descriptors'; readonly head: number; readonly count: number }
  /** §2.8.6: descriptor `index`, which a NEXT flag made part of the list, is not marked available. */
  | { readonly code: 'packed.chain-descriptor-unavailable'; readonly head: number; readonly index: number; readonly flags: number }
  /** §2.8.19: descriptor `index` is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated. */
  | { readonly code: 'packed.indirect-not-negotiated'; readonly head: number; readonly index: number }
  /** §2.8.19: descriptor `index` is INDIRECT and has NEXT, or follows a NEXT descriptor. */
  | { readonly code: 'packed.indirect-in-chain'; readonly head: number; readonly index: number }
  /** §2.8.7: descriptor `index` points to an indirect table of `length` bytes (not a non-zero multiple of 16). */
  | { readonly code: 'packed.indirect-bad-length'; readonly head: number; readonly index: number; readonly length: number }
  /** §2.8.7: descriptor `index` points to an indirect table `[addr, addr + len)` outside guest memory. */
  | { readonly code: 'packed.indirect-outside-memory'; readonly head: number; readonly index: number; readonly addr: number; readonly len: number }
  /** §2.8.19: entry `index` of an indirect table has a flag other than WRITE (`flags`). */
  | { readonly code: 'packed.indirect-entry-flags'; readonly head: number; readonly index: number; readonly flags: number }
  /** §2.8.17: a device-readable element (`index`) follows a device-writable one. */
  | { readonly code: 'packed.readable-after-writable'; readonly head: number; readonly index: number; readonly indirect: boolean }
  /** §2.8.4: the element `[addr, addr + len)` of descriptor `index` is not inside guest memory. */
  | {
      readonly code: 'packed.region-outside-memory';
      readonly head: number;
      readonly index: number;
      readonly addr: number;
      readonly len: number;
      readonly indirect: boolean;
    }
  /** §2.8.4: the list's elements add up to 2^32 bytes or more. */
  | { readonly code: 'packed.too-long'; readonly head: number; readonly total: number }
  /** §2.8.21.1: the list's Buffer ID `id` names a buffer the device still holds. */
  | { readonly code: 'packed.buffer-id-in-use'; readonly head: number; readonly id: number }
  /** §2.8.10.1: the ring views could not be fetched again after guest memory changed. */
  | { readonly code: 'packed.ring-unmapped'; readonly ring: QueueRing };

/** Why a packed `QueueConfig` could not be activated (§2.8.10.1, §2.8.11). */
export type PackedActivationError =
  /** §2.8.10.1: a packed queue has 1..32768 entries (any number, not only powers of 2). */
  | { readonly code: 'packed.size-invalid'; readonly size: number }
  /** §2.8.11: a part does not start at a multiple of its alignment (ring 16, event structures 4). */
  | { readonly code: 'packed.misaligned'; readonly ring: QueueRing; readonly addr: number; readonly alignment: number }
  /** §2.8.10.1: a part `[addr, addr + len)` is not inside guest memory. */
  | { readonly code: 'packed.ring-outside-memory'; readonly ring: QueueRing; readonly addr: number; readonly len: number }
  /** §2.8.10.1 ("each part ... is physically-contiguous"): the part spans two memory regions. */
  | { readonly code: 'packed.ring-not-contiguous'; readonly ring: QueueRing; readonly addr: number; readonly len: number };

/**
 * The three parts of a virtqueue: split (§2.7) descriptor table, available ring, used ring; packed
 * (§2.8) descriptor ring, driver and device event suppression structures.
 */
export type QueueRing = 'descTable' | 'availRing' | 'usedRing' | 'descRing' | 'driverEvent' | 'deviceEvent';

/** Why a `QueueConfig` could not be activated (§2.7, §2.7.1; §2.8.10.1 for a packed ring). */
export type QueueActivationError = SplitActivationError | PackedActivationError;

/** Why a split `QueueConfig` could not be activated (§2.7, §2.7.1). */
export type SplitActivationError =
  /** §2.7: the queue size must be a power of 2 in 1..32768. */
  | { readonly code: 'queue.size-invalid'; readonly size: number }
  /** §2.7.1: a ring part does not start at a multiple of its alignment (16 / 2 / 4). */
  | { readonly code: 'queue.misaligned'; readonly ring: QueueRing; readonly addr: number; readonly alignment: number }
  /** §2.7: a ring part `[addr, addr + len)` is not inside guest memory. */
  | { readonly code: 'queue.ring-outside-memory'; readonly ring: QueueRing; readonly addr: number; readonly len: number }
  /**
   * §2.7 ("each part is physically-contiguous in guest memory"): the part spans two memory regions,
   * so it cannot be reached through one cached view.
   */
  | { readonly code: 'queue.ring-not-contiguous'; readonly ring: QueueRing; readonly addr: number; readonly len: number };

/** Every code a queue can report. */
export type QueueErrorCode = ChainError['code'] | QueueActivationError['code'];

/** The VIRTIO 1.2 section each code enforces (for diagnostics). */
export const QUEUE_ERROR_SECTIONS: Readonly<Record<QueueErrorCode, string>> = Object.freeze({
  'avail.index-jump': '2.7.13',
  'avail.in-flight-exceeded': '2.7',
  'chain.head-out-of-range': '2.7.5',
  'chain.next-out-of-range': '2.7.5',
  'chain.too-many-descriptors': '2.7.5.3.1',
  'chain.indirect-not-negotiated': '2.7.5.3.1',
  'chain.indirect-nested': '2.7.5.3.1',
  'chain.indirect-bad-length': '2.7.5.3',
  'chain.indirect-with-next': '2.7.5.3.1',
  'chain.indirect-outside-memory': '2.7.5.3',
  'chain.readable-after-writable': '2.7.4.2',
  'chain.region-outside-memory': '2.7.5',
  'chain.too-long': '2.7.5.2',
  'queue.ring-unmapped': '2.7',
  'queue.size-invalid': '2.7',
  'queue.misaligned': '2.7.1',
  'queue.ring-outside-memory': '2.7',
  'queue.ring-not-contiguous': '2.7',
  'packed.in-flight-exceeded': '2.8.16',
  'packed.too-many-descriptors': '2.8.17',
  'packed.chain-descriptor-unavailable': '2.8.6',
  'packed.indirect-not-negotiated': '2.8.19',
  'packed.indirect-in-chain': '2.8.19',
  'packed.indirect-bad-length': '2.8.7',
  'packed.indirect-outside-memory': '2.8.7',
  'packed.indirect-entry-flags': '2.8.19',
  'packed.readable-after-writable': '2.8.17',
  'packed.region-outside-memory': '2.8.4',
  'packed.too-long': '2.8.4',
  'packed.buffer-id-in-use': '2.8.21.1',
  'packed.ring-unmapped': '2.8.10.1',
  'packed.size-invalid': '2.8.10.1',
  'packed.misaligned': '2.8.11',
  'packed.ring-outside-memory': '2.8.10.1',
  'packed.ring-not-contiguous': '2.8.10.1',
});

/** The VIRTIO 1.2 section an error enforces, e.g. `'2.7.5.3.1'`. */
export function queueErrorSection(e: ChainError | QueueActivationError): string {
  return QUEUE_ERROR_SECTIONS[e.code];
}

/** A one-line human description of a queue error, ending with the spec section it enforces. */
export function describeQueueError(e: ChainError | QueueActivationError): string {
  return `${message(e)} (VIRTIO 1.2 §${queueErrorSection(e)})`;
}

function message(e: ChainError | QueueActivationError): string {
  switch (e.code) {
    case 'avail.index-jump':
      return `avail.idx ${e.availIdx} is ${(e.availIdx - e.nextAvail) & 0xffff} entries ahead of the device's next index ${e.nextAvail}, more than the queue size ${e.size}`;
    case 'avail.in-flight-exceeded':
      return `the driver offered a chain while the device already held ${e.inFlight} chains on a queue of size ${e.size}`;
    case 'chain.head-out-of-range':
      return `available ring names head descriptor ${e.head}, past the end of a table of ${e.size}`;
    case 'chain.next-out-of-range':
      return `${where(e.indirect)} descriptor ${e.index} of chain ${e.head} links to ${e.next}, past the end of its table`;
    case 'chain.too-many-descriptors':
      return `chain ${e.head} reached ${e.count} descriptors, more than the queue size (a loop or an over-long chain)`;
    case 'chain.indirect-not-negotiated':
      return `descriptor ${e.index} of chain ${e.head} is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated`;
    case 'chain.indirect-nested':
      return `entry ${e.index} of the indirect table of chain ${e.head} is itself INDIRECT`;
    case 'chain.indirect-bad-length':
      return `descriptor ${e.index} of chain ${e.head} points to an indirect table of ${e.length} bytes (must be a non-zero multiple of 16)`;
    case 'chain.indirect-with-next':
      return `descriptor ${e.index} of chain ${e.head} has both INDIRECT and NEXT`;
    case 'chain.indirect-outside-memory':
      return `descriptor ${e.index} of chain ${e.head} points to an indirect table [0x${hex(e.addr)}, +${e.len}) outside guest memory`;
    case 'chain.readable-after-writable':
      return `${where(e.indirect)} descriptor ${e.index} of chain ${e.head} is device-readable but follows a device-writable one`;
    case 'chain.region-outside-memory':
      return `${where(e.indirect)} descriptor ${e.index} of chain ${e.head} has buffer [0x${hex(e.addr)}, +${e.len}) outside guest memory`;
    case 'chain.too-long':
      return `chain ${e.head} adds up to ${e.total} bytes, 2^32 or more`;
    case 'queue.ring-unmapped':
      return `the ${e.ring} is no longer inside one region of guest memory after the memory changed`;
    case 'queue.size-invalid':
      return `queue size ${e.size} is not a power of 2 between 1 and 32768`;
    case 'queue.misaligned':
      return `${e.ring} at 0x${hex(e.addr)} is not aligned to ${e.alignment} bytes`;
    case 'queue.ring-outside-memory':
      return `${e.ring} [0x${hex(e.addr)}, +${e.len}) is not inside guest memory`;
    case 'queue.ring-not-contiguous':
      return `${e.ring} [0x${hex(e.addr)}, +${e.len}) spans two guest memory regions`;
    case 'packed.in-flight-exceeded':
      return `descriptor ${e.index} (list at ${e.head}) is available while the device holds ${e.inFlight} of the ${e.size} descriptors: the driver changed descriptors it had not seen used`;
    case 'packed.too-many-descriptors':
      return `the list at ${e.head} reached ${e.count} descriptors, more than the queue size`;
    case 'packed.chain-descriptor-unavailable':
      return `descriptor ${e.index} continues the list at ${e.head} but its flags 0x${hex(e.flags)} do not mark it available`;
    case 'packed.indirect-not-negotiated':
      return `descriptor ${e.index} is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated`;
    case 'packed.indirect-in-chain':
      return `descriptor ${e.index} of the list at ${e.head} is INDIRECT inside a NEXT-linked list`;
    case 'packed.indirect-bad-length':
      return `descriptor ${e.index} points to an indirect table of ${e.length} bytes (must be a non-zero multiple of 16)`;
    case 'packed.indirect-outside-memory':
      return `descriptor ${e.index} points to an indirect table [0x${hex(e.addr)}, +${e.len}) outside guest memory`;
    case 'packed.indirect-entry-flags':
      return `entry ${e.index} of the indirect table of the list at ${e.head} has flags 0x${hex(e.flags)}; only WRITE is allowed`;
    case 'packed.readable-after-writable':
      return `${where(e.indirect)} descriptor ${e.index} of the list at ${e.head} is device-readable but follows a device-writable one`;
    case 'packed.region-outside-memory':
      return `${where(e.indirect)} descriptor ${e.index} of the list at ${e.head} has element [0x${hex(e.addr)}, +${e.len}) outside guest memory`;
    case 'packed.too-long':
      return `the list at ${e.head} adds up to ${e.total} bytes, 2^32 or more`;
    case 'packed.buffer-id-in-use':
      return `the list at ${e.head} carries buffer ID ${e.id}, which names a buffer the device still holds`;
    case 'packed.ring-unmapped':
      return `the ${e.ring} is no longer inside one region of guest memory after the memory changed`;
    case 'packed.size-invalid':
      return `packed queue size ${e.size} is not an integer between 1 and 32768`;
    case 'packed.misaligned':
      return `${e.ring} at 0x${hex(e.addr)} is not aligned to ${e.alignment} bytes`;
    case 'packed.ring-outside-memory':
      return `${e.ring} [0x${hex(e.addr)}, +${e.len}) is not inside guest memory`;
    case 'packed.ring-not-contiguous':
      return `${e.ring} [0x${hex(e.addr)}, +${e.len}) spans two guest memory regions`;
  }
}

function where(indirect: boolean): string {
  return indirect ? 'indirect' : 'direct';
}

function hex(n: number): string {
  return Number.isFinite(n) && n >= 0 ? n.toString(16) : String(n);
}
