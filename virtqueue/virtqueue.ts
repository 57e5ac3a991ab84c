// What every virtqueue shares, whatever its ring format (VIRTIO 1.2 §2.6 virtqueues; §2.7 split,
// §2.8 packed): the configuration a transport fills, the ring features that shape it, the results
// of `pop()`, and `Virtqueue`, the interface device code works with. Device code never knows which
// ring it pops from: both formats yield the same validated `DescriptorChain`s.

import type { DescriptorChain } from './descriptor-chain.js';
import type { ChainError } from './queue-errors.js';
import { MAX_QUEUE_SIZE, isValidQueueSize } from './ring-layout.js';

/** What the driver programs through a transport before the queue runs (mutable, unvalidated). */
export interface QueueConfig {
  /** Queue size the driver chose (§2.7: a power of 2; §2.8.10.1: any size for a packed ring). */
  size: number;
  /** Guest-physical address of the Descriptor Area (split: descriptor table; packed: descriptor ring). */
  descTable: number;
  /** Guest-physical address of the Driver Area (split: available ring; packed: driver event suppression). */
  availRing: number;
  /** Guest-physical address of the Device Area (split: used ring; packed: device event suppression). */
  usedRing: number;
  /** The driver enabled the queue (QueueReady / queue_enable). */
  ready: boolean;
}

/** A queue config as after reset: `size = maxSize`, addresses 0, not ready. */
export function newQueueConfig(maxSize: number): QueueConfig {
  if (!isValidQueueSize(maxSize)) {
    throw new RangeError(`newQueueConfig: maxSize must be a power of 2 in 1..${MAX_QUEUE_SIZE}, got ${String(maxSize)}`);
  }
  return { size: maxSize, descTable: 0, availRing: 0, usedRing: 0, ready: false };
}

/**
 * Ring features negotiated for the device (§6: VIRTIO_F_INDIRECT_DESC 28, VIRTIO_F_EVENT_IDX 29,
 * VIRTIO_F_RING_PACKED 34). `ringPacked` absent means a split ring.
 */
export interface QueueFeatures {
  indirectDesc: boolean;
  eventIdx: boolean;
  ringPacked?: boolean;
}

/** `pop()` found no available chain. */
export type QueueEmpty = { readonly kind: 'empty' };
/** The one `QueueEmpty` value. */
export const QUEUE_EMPTY: QueueEmpty = Object.freeze({ kind: 'empty' as const });
/** The driver broke the ring contract; the queue is `broken` from now on. */
export type QueueViolation = { readonly kind: 'violation'; readonly error: ChainError };

/**
 * What a device state records of a chain the device holds across a save, besides its position
 * (`DescriptorChain.availIndex`) and id (`headIndex`), when the ring itself may no longer describe
 * it: a packed ring's used descriptors are written over ring slots in completion order, so a held
 * list older than a used one has its descriptors overwritten (§2.8.12; the driver then reuses the
 * slots). A split ring's descriptor table keeps a held chain intact: no list there.
 */
export interface HeldList {
  /** Descriptors the list took in the ring (1 for an indirect one). */
  readonly ringSlots: number;
  /** Descriptors in the list (ring descriptors, or the indirect table's entries). */
  readonly descriptorCount: number;
  /** The list was one indirect descriptor (§2.8.7). */
  readonly indirect: boolean;
  /** Its non-empty buffers in order, readable ones first, as the pop validated them. */
  readonly regions: readonly { readonly addr: number; readonly len: number; readonly writable: boolean }[];
}

/**
 * A running virtqueue, split (`SplitQueue`) or packed (`PackedQueue`): what device code uses.
 * Made only by activation (`activateQueue()` in activate-queue.ts, or the class's `activate`).
 */
export interface Virtqueue {
  /** The ring format. */
  readonly ring: 'split' | 'packed';
  /** Queue index on its device. */
  readonly index: number;
  /** Queue size (descriptors). */
  readonly size: number;
  /** After any violation the queue refuses work until a new queue is activated. */
  readonly broken: boolean;
  /** The violation that broke the queue, or null. */
  readonly error: ChainError | null;
  /** Chains popped and not yet pushed or unpopped. */
  readonly inFlight: number;
  /** The configuration the queue runs with (a validated copy). */
  readonly queueConfig: Readonly<QueueConfig>;
  /**
   * 0 when nothing is available to pop, else a positive number (split: exactly how many chains;
   * packed: 1, as the ring shows only whether the next descriptor is available), or the violation.
   */
  available(): number | QueueViolation;
  /** Pops and validates the next chain (valid until `pushUsed()` or `unpop()`). */
  pop(): DescriptorChain | QueueEmpty | QueueViolation;
  /** Gives back the last `count` popped chains, none of them pushed: they are popped again later. */
  unpop(count: number): void;
  /** Records the chain as used with `writtenLength` bytes written; not visible to the driver until `publishUsed()`. */
  pushUsed(chain: DescriptorChain, writtenLength: number): void;
  /** Makes everything pushed visible to the driver; true when the driver wants a used buffer notification. */
  publishUsed(): boolean;
  /**
   * For a device state: what besides `availIndex` and `headIndex` it must record of a chain in
   * flight (held by the device across the save), or null when the ring keeps describing it (split).
   */
  heldList(chain: DescriptorChain): HeldList | null;
  /**
   * On a queue restored with chains in flight (`restoreRunState`), gives back one chain the device
   * held, oldest first: `id` and `at` as `headIndex` and `availIndex` were, `list` as `heldList()`
   * gave it (null for a split ring). The chain comes back in flight as `pop()` returned it; a string
   * when the values are impossible; the ring's error when this memory does not hold such a chain.
   * Nothing changes on failure.
   */
  restoreHeld(id: number, at: number, list: HeldList | null): DescriptorChain | ChainError | string;
  /** After `restoreHeld`: null when every chain in flight at the save was given back, else why not. */
  heldMissing(): string | null;
  /** Asks the driver for (true) or not (false) available buffer notifications. */
  setNotifications(enabled: boolean): void;
  /** Turns available buffer notifications on and looks again: true when the caller must pop again. */
  enableNotification(): boolean;
}
