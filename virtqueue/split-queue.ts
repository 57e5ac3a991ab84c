// The split virtqueue, device side (VIRTIO 1.2 §2.7): activation of a driver-programmed queue
// configuration, popping validated chains from the available ring (§2.7.6), returning them through
// the used ring (§2.7.8), and both directions of notification suppression (§2.7.7 used buffer,
// §2.7.10 available buffer, with and without VIRTIO_F_EVENT_IDX).
//
// Hot path: the three ring parts are reached through DataViews fetched once at activation (and again
// when `memory.generation` changes); each guest field is read once into a local; chains come from a
// per-queue pool, so steady-state pop/push allocates nothing. Writes through the cached views are
// reported with `memory.wrote()`.
//
// Guest memory in a SharedArrayBuffer (a driver running in another thread): avail.idx is read with
// an atomic load (acquire), used.idx, avail_event and used.flags are written with atomic stores
// (release), and used_event / avail.flags are read with atomic loads after the used.idx store (the
// full barrier of §2.7.7.2) — ring-index.ts. Decided per activation / memory generation: over a
// plain ArrayBuffer the word arrays are null and the DataView path runs as before.

import type { GuestMemoryAccess } from './guest-memory.js';
import { CHAIN_FREE, CHAIN_IN_FLIGHT, DescriptorChain } from './descriptor-chain.js';
import { ChainWalker } from './chain-walk.js';
import { loadU16, sharedWords, storeU16 } from './ring-index.js';
import type { ChainError, QueueActivationError, QueueRing, SplitActivationError } from './queue-errors.js';
import { QUEUE_EMPTY } from './virtqueue.js';
import type { HeldList, QueueConfig, QueueEmpty, QueueFeatures, QueueViolation, Virtqueue } from './virtqueue.js';
import {
  AVAIL_FLAGS,
  AVAIL_IDX,
  AVAIL_RING,
  AVAIL_RING_ALIGN,
  DESC_TABLE_ALIGN,
  MAX_QUEUE_SIZE,
  USED_FLAGS,
  USED_IDX,
  USED_RING,
  USED_RING_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY,
  availEventOffset,
  availRingBytes,
  descTableBytes,
  isValidQueueSize,
  needEvent,
  sub16,
  usedEventOffset,
  usedRingBytes,
} from './ring-layout.js';

export { MAX_QUEUE_SIZE };
export { QUEUE_EMPTY, newQueueConfig } from './virtqueue.js';
export type { QueueConfig, QueueEmpty, QueueFeatures, QueueViolation } from './virtqueue.js';

/** A running split queue's indices (free-running 16-bit), as a device state saves them. */
export interface SplitQueueRunState {
  /** Next available ring entry to pop. */
  readonly nextAvail: number;
  /** `avail.idx` as the device last read it. */
  readonly shadowAvail: number;
  /** Next used ring entry to write. */
  readonly nextUsed: number;
  /** `used.idx` as last published: the old index of the next EVENT_IDX `used_event` test (§2.7.7.2). */
  readonly publishedUsed: number;
}

/** A running split virtqueue. Made only by `SplitQueue.activate()`. */
export class SplitQueue implements Virtqueue {
  /** The ring format (§2.7). */
  readonly ring = 'split' as const;
  /** Queue index on its device. */
  readonly index: number;
  /** Queue size (entries in each ring). */
  readonly size: number;

  private readonly memory: GuestMemoryAccess;
  private readonly config: Readonly<QueueConfig>; // a private copy, validated
  private readonly mask: number;
  private readonly eventIdx: boolean;
  private readonly walker: ChainWalker;
  private availDv: DataView;
  private usedDv: DataView;
  /** The avail / used ring as 16-bit words when they lie in a SharedArrayBuffer (atomic index accesses), else null. */
  private availWords: Uint16Array | null;
  private usedWords: Uint16Array | null;
  private generation: number;

  private lastAvail = 0; // next available ring entry to pop (free-running 16-bit)
  private shadowAvail = 0; // avail.idx as last read
  private usedIdx = 0; // next used ring entry to write
  private publishedUsed = 0; // used.idx as last published
  private inFlightCount = 0;
  private restoredAge = 0x10000; // age (nextAvail - index) of the last chain given back by restoreHeld
  private violation: QueueViolation | null = null;
  private readonly free: DescriptorChain[] = [];
  /** In-flight chains by `seq & mask`, for unpop() to find the most recent ones. */
  private readonly bySeq: (DescriptorChain | null)[];

  private constructor(
    memory: GuestMemoryAccess,
    config: QueueConfig,
    features: QueueFeatures,
    index: number,
    views: RingViews,
  ) {
    this.memory = memory;
    this.config = config;
    this.index = index;
    this.size = config.size;
    this.mask = config.size - 1;
    this.eventIdx = features.eventIdx;
    this.walker = new ChainWalker(memory, views.desc, config.size, features.indirectDesc);
    this.availDv = views.avail;
    this.usedDv = views.used;
    this.availWords = views.availWords;
    this.usedWords = views.usedWords;
    this.generation = memory.generation;
    this.bySeq = new Array<DescriptorChain | null>(config.size).fill(null);
  }

  /**
   * Validates `config` (size a power of 2 in 1..MAX_QUEUE_SIZE; alignment 16 / 2 / 4; each ring part
   * inside memory and inside one region, so it can be reached through a cached view) and returns a
   * running queue starting at index 0, or why it cannot run. Never throws for guest values; throws
   * for programmer errors (missing features, bad index). `config.ready` is the caller's business.
   */
  static activate(
    memory: GuestMemoryAccess,
    config: Readonly<QueueConfig>,
    features: QueueFeatures,
    index: number,
  ): SplitQueue | QueueActivationError {
    if (memory === null || typeof memory !== 'object') throw new TypeError('SplitQueue.activate: memory must be a GuestMemoryAccess');
    if (config === null || typeof config !== 'object') throw new TypeError('SplitQueue.activate: config must be a QueueConfig');
    if (features === null || typeof features !== 'object' || typeof features.indirectDesc !== 'boolean' || typeof features.eventIdx !== 'boolean') {
      throw new TypeError('SplitQueue.activate: features must be { indirectDesc: boolean, eventIdx: boolean }');
    }
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`SplitQueue.activate: index must be a non-negative integer, got ${String(index)}`);
    // Read each driver-programmed value once.
    const copy: QueueConfig = {
      size: config.size,
      descTable: config.descTable,
      availRing: config.availRing,
      usedRing: config.usedRing,
      ready: config.ready,
    };
    if (!isValidQueueSize(copy.size)) return { code: 'queue.size-invalid', size: copy.size };
    const misaligned =
      checkAlign('descTable', copy.descTable, DESC_TABLE_ALIGN) ??
      checkAlign('availRing', copy.availRing, AVAIL_RING_ALIGN) ??
      checkAlign('usedRing', copy.usedRing, USED_RING_ALIGN);
    if (misaligned !== null) return misaligned;
    const views = fetchViews(memory, copy);
    if (!(views instanceof RingViews)) return views;
    return new SplitQueue(memory, copy, features, index, views);
  }

  /** Next available ring index the device will pop (free-running 16-bit). */
  get nextAvail(): number {
    return this.lastAvail;
  }
  /** Next used ring index the device will write (free-running 16-bit). */
  get nextUsed(): number {
    return this.usedIdx;
  }
  /** After any violation the queue refuses work until a new queue is activated. */
  get broken(): boolean {
    return this.violation !== null;
  }
  /** The violation that broke the queue, or null. */
  get error(): ChainError | null {
    return this.violation === null ? null : this.violation.error;
  }
  /** Chains popped and not yet pushed or unpopped. */
  get inFlight(): number {
    return this.inFlightCount;
  }
  /** The configuration the queue runs with (a validated copy). */
  get queueConfig(): Readonly<QueueConfig> {
    return this.config;
  }

  /**
   * The running indices, for a device state (devices/virtio/core-state.ts), as they are: chains
   * popped and not yet given back (`inFlight`, always `nextAvail - nextUsed` on a queue that is not
   * broken) stay popped. The device that holds them saves which they are (`availIndex`,
   * `headIndex`) and gives them back to the restored queue with `restoreHeld`. (Rewinding
   * `nextAvail` over them instead would make them available again, which the saved queue did not
   * see — and is wrong when they are not the most recent pops.)
   */
  runState(): SplitQueueRunState {
    return { nextAvail: this.lastAvail, shadowAvail: this.shadowAvail, nextUsed: this.usedIdx, publishedUsed: this.publishedUsed };
  }

  /**
   * Continues from saved indices; only on a queue fresh from `activate()` (nothing popped yet).
   * Returns null, or why the indices cannot belong to a queue of this size (§2.7.13.3: the device
   * is never more than `size` entries ahead of what it published, or behind what is available).
   * Chains in flight at the save (`nextAvail - nextUsed`) are then given back with `restoreHeld`,
   * and `heldMissing()` says whether all were.
   */
  restoreRunState(s: SplitQueueRunState): string | null {
    if (this.inFlightCount !== 0 || this.lastAvail !== 0 || this.usedIdx !== 0) throw new Error('SplitQueue.restoreRunState: only a freshly activated queue can be restored');
    for (const k of ['nextAvail', 'shadowAvail', 'nextUsed', 'publishedUsed'] as const) {
      const v = s[k];
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) return `${k} ${String(v)} is not a 16-bit index`;
    }
    if (sub16(s.shadowAvail, s.nextAvail) > this.size) return `shadowAvail ${s.shadowAvail} is more than ${this.size} ahead of nextAvail ${s.nextAvail}`;
    if (sub16(s.nextUsed, s.publishedUsed) > this.size) return `nextUsed ${s.nextUsed} is more than ${this.size} ahead of publishedUsed ${s.publishedUsed}`;
    if (sub16(s.nextAvail, s.nextUsed) > this.size) return `nextAvail ${s.nextAvail} is more than ${this.size} ahead of nextUsed ${s.nextUsed}`;
    // The chains in flight and the used entries not yet published, together at most `size` (what
    // pop() allows).
    if (sub16(s.nextAvail, s.nextUsed) + sub16(s.nextUsed, s.publishedUsed) > this.size) {
      return `${sub16(s.nextAvail, s.nextUsed)} chain(s) in flight and ${sub16(s.nextUsed, s.publishedUsed)} unpublished used entries are more than ${this.size}`;
    }
    this.lastAvail = s.nextAvail;
    this.shadowAvail = s.shadowAvail;
    this.usedIdx = s.nextUsed;
    this.publishedUsed = s.publishedUsed;
    return null;
  }

  /**
   * After `restoreRunState`: a chain the saved device held, popped at available index `seq` with
   * head descriptor `head`, walked and validated again in this memory like any popped chain. Returns
   * the chain (in flight, as `pop()` returns it); a string when the values are impossible (the
   * head out of range, `seq` not before `nextAvail` or not younger than the chain given back
   * before, more chains than the indices leave in flight); the walk's error when the descriptors in
   * this memory do not make a valid chain. Nothing changes on failure (the queue does not break: it
   * is not running anything yet). A split ring keeps held chains in its descriptor table: `list` must
   * be null.
   */
  restoreHeld(head: number, seq: number, list: HeldList | null = null): DescriptorChain | ChainError | string {
    if (list !== null) throw new Error('SplitQueue.restoreHeld: a split ring re-walks held chains in its descriptor table; list must be null');
    if (this.violation !== null) return 'the queue is broken';
    if (!Number.isInteger(head) || head < 0 || head >= this.size) return `held chain head ${String(head)} is out of range (queue size ${this.size})`;
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffff) return `held chain index ${String(seq)} is not a 16-bit index`;
    const age = sub16(this.lastAvail, seq);
    if (age === 0) return `held chain index ${seq} is not before nextAvail ${this.lastAvail}`;
    // The held chains come oldest first (in pop order): each is younger than the one before.
    if (age >= this.restoredAge) return `held chain index ${seq} is not younger than the one before`;
    if (this.inFlightCount >= sub16(this.lastAvail, this.usedIdx)) return `more held chains than the ${sub16(this.lastAvail, this.usedIdx)} in flight (nextAvail - nextUsed)`;
    const chain = this.free.pop() ?? new DescriptorChain(this.memory, this);
    const err = this.walker.walk(chain, head);
    if (err !== null) {
      this.free.push(chain);
      return err;
    }
    chain.state = CHAIN_IN_FLIGHT;
    chain.seq = seq;
    chain.at = seq;
    // unpop() finds recent pops here; an older chain whose slot was reused since is not one.
    if (age <= this.size) this.bySeq[seq & this.mask] = chain;
    this.inFlightCount++;
    this.restoredAge = age;
    return chain;
  }

  /** Null: the descriptor table keeps describing a chain in flight (the driver does not reuse it). */
  heldList(_chain: DescriptorChain): HeldList | null {
    return null;
  }

  /** After `restoreHeld`: null when every chain in flight at the save was given back, else why not. */
  heldMissing(): string | null {
    const want = sub16(this.lastAvail, this.usedIdx);
    return this.inFlightCount === want ? null : `${want} chain(s) in flight (nextAvail - nextUsed), ${this.inFlightCount} held by the device`;
  }

  /**
   * Chains the driver has made available and the device has not popped yet. Reads `avail.idx` once;
   * a violation (the queue breaks) if it is more than `size` ahead of `nextAvail` (§2.7.13).
   */
  available(): number | QueueViolation {
    if (this.violation !== null) return this.violation;
    if (this.memory.generation !== this.generation && !this.remap()) return this.violation!;
    return this.refreshAvail();
  }

  /**
   * Pops and validates the next chain. The chain is valid until it is given back with `pushUsed()`
   * or `unpop()`. A malformed chain breaks the queue and is not consumed.
   */
  pop(): DescriptorChain | QueueEmpty | QueueViolation {
    if (this.violation !== null) return this.violation;
    if (this.memory.generation !== this.generation && !this.remap()) return this.violation!;
    const seq = this.lastAvail;
    if (seq === this.shadowAvail) {
      const n = this.refreshAvail();
      if (typeof n !== 'number') return n;
      if (n === 0) return QUEUE_EMPTY;
    }
    // Chains the device holds: popped, or pushed but not yet published (the driver cannot have
    // reused those descriptors). More than `size` would overwrite unpublished used elements.
    const held = this.inFlightCount + sub16(this.usedIdx, this.publishedUsed);
    if (held >= this.size) return this.fail({ code: 'avail.in-flight-exceeded', inFlight: held, size: this.size });
    const slot = seq & this.mask;
    const head = this.availDv.getUint16(AVAIL_RING + 2 * slot, true);
    if (head >= this.size) return this.fail({ code: 'chain.head-out-of-range', head, size: this.size });
    const chain = this.free.pop() ?? new DescriptorChain(this.memory, this);
    const err = this.walker.walk(chain, head);
    if (err !== null) {
      this.free.push(chain);
      return this.fail(err);
    }
    chain.state = CHAIN_IN_FLIGHT;
    chain.seq = seq;
    chain.at = seq;
    this.bySeq[slot] = chain;
    this.inFlightCount++;
    this.lastAvail = (seq + 1) & 0xffff;
    return chain;
  }

  /**
   * Gives back the last `count` popped chains, none of them pushed (e.g. rx could not place a whole
   * frame): they will be popped again, re-validated. The chain objects are invalid afterwards.
   * Throws (programmer error) if the last `count` pops are not all still in flight.
   */
  unpop(count: number): void {
    if (!Number.isInteger(count) || count < 0 || count > this.inFlightCount) {
      throw new RangeError(`SplitQueue.unpop: count must be an integer in 0..inFlight (${this.inFlightCount}), got ${String(count)}`);
    }
    for (let k = 1; k <= count; k++) {
      const seq = (this.lastAvail - k) & 0xffff;
      const c = this.bySeq[seq & this.mask];
      if (c === undefined || c === null || c.state !== CHAIN_IN_FLIGHT || c.seq !== seq) {
        throw new Error(`SplitQueue.unpop: the chain popped at avail index ${seq} was already pushed; only the most recent unpushed pops can be given back`);
      }
    }
    for (let k = 1; k <= count; k++) {
      const seq = (this.lastAvail - k) & 0xffff;
      const c = this.bySeq[seq & this.mask]!;
      c.flushViewWrites(); // the device may have written through views before giving up
      this.release(c);
    }
    this.lastAvail = (this.lastAvail - count) & 0xffff;
  }

  /**
   * Writes the used element `{ id: chain.headIndex, len: writtenLength }` (§2.7.8) without publishing
   * `used.idx`, and returns the chain to the pool (it is invalid afterwards). On a broken queue the
   * chain is only released. Throws (programmer error) for a chain that is not in flight on this
   * queue or a length outside 0..writableLength.
   */
  pushUsed(chain: DescriptorChain, writtenLength: number): void {
    if (chain.owner !== this || chain.state !== CHAIN_IN_FLIGHT) {
      throw new Error(`SplitQueue.pushUsed: chain is not in flight on queue ${this.index} (already pushed or unpopped?)`);
    }
    if (!Number.isInteger(writtenLength) || writtenLength < 0 || writtenLength > chain.writableLength) {
      throw new RangeError(
        `SplitQueue.pushUsed: writtenLength must be an integer in 0..${chain.writableLength} (the chain's writable length), got ${String(writtenLength)}`,
      );
    }
    chain.flushViewWrites();
    if (this.violation === null && (this.memory.generation === this.generation || this.remap())) {
      const slot = this.usedIdx & this.mask;
      const o = USED_RING + 8 * slot;
      this.usedDv.setUint32(o, chain.headIndex, true);
      this.usedDv.setUint32(o + 4, writtenLength, true);
      this.memory.wrote(this.config.usedRing + o, 8);
      this.usedIdx = (this.usedIdx + 1) & 0xffff;
    }
    this.release(chain);
  }

  /**
   * Publishes `used.idx` for everything pushed since the last publish (§2.7.8.2: after the elements)
   * and says whether the driver must be notified (§2.7.7.2): with EVENT_IDX when the new entries
   * crossed `used_event`, else unless `avail.flags` has VIRTQ_AVAIL_F_NO_INTERRUPT. False when nothing
   * was pushed or the queue is broken.
   */
  publishUsed(): boolean {
    if (this.violation !== null) return false;
    const newIdx = this.usedIdx;
    const oldIdx = this.publishedUsed;
    if (newIdx === oldIdx) return false;
    if (this.memory.generation !== this.generation && !this.remap()) return false;
    const usedWords = this.usedWords;
    const availWords = this.availWords;
    // Shared memory: the used elements before used.idx (release), and used.idx before the read of
    // used_event / avail.flags (both sequentially consistent: the full barrier of §2.7.7.2).
    if (usedWords !== null) storeU16(usedWords, USED_IDX, newIdx);
    else this.usedDv.setUint16(USED_IDX, newIdx, true);
    this.memory.wrote(this.config.usedRing + USED_IDX, 2);
    this.publishedUsed = newIdx;
    if (this.eventIdx) {
      const o = usedEventOffset(this.size);
      const usedEvent = availWords !== null ? loadU16(availWords, o) : this.availDv.getUint16(o, true);
      return needEvent(usedEvent, newIdx, oldIdx);
    }
    const flags = availWords !== null ? loadU16(availWords, AVAIL_FLAGS) : this.availDv.getUint16(AVAIL_FLAGS, true);
    return (flags & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Asks the driver for (enabled) or not (disabled) available buffer notifications (§2.7.10). With
   * EVENT_IDX, enabling writes `avail_event = nextAvail` (notify me when you publish past what I have
   * popped) and disabling writes nothing; without it, VIRTQ_USED_F_NO_NOTIFY in `used.flags` is
   * cleared or set. To enable, use `enableNotification()`: it also looks again, as enabling needs.
   */
  setNotifications(enabled: boolean): void {
    if (this.violation !== null) return;
    if (this.memory.generation !== this.generation && !this.remap()) return;
    if (this.eventIdx) {
      if (!enabled) return;
      const o = availEventOffset(this.size);
      // Shared memory: an atomic store, so the avail.idx read that follows (enableNotification) is
      // ordered after it (§2.7.10's race; Linux's virtio_mb before reading avail_event).
      if (this.usedWords !== null) storeU16(this.usedWords, o, this.lastAvail);
      else this.usedDv.setUint16(o, this.lastAvail, true);
      this.memory.wrote(this.config.usedRing + o, 2);
      return;
    }
    const flags = enabled ? 0 : VIRTQ_USED_F_NO_NOTIFY;
    if (this.usedWords !== null) storeU16(this.usedWords, USED_FLAGS, flags);
    else this.usedDv.setUint16(USED_FLAGS, flags, true);
    this.memory.wrote(this.config.usedRing + USED_FLAGS, 2);
  }

  /**
   * Turns available buffer notifications back on (`setNotifications(true)`), then looks once more:
   * the driver may have published a chain after the device's last look and before it saw the
   * request, and will then not notify (§2.7.10; with EVENT_IDX, §2.7.7.2's race). Returns true when
   * the caller must pop again: chains are available, or `avail.idx` now breaks the ring contract
   * (the queue is `broken` and the next `pop()` returns the violation, so the caller reports it
   * where it reports every other). False: nothing more, wait for the next notification.
   */
  enableNotification(): boolean {
    if (this.violation !== null) return true;
    this.setNotifications(true);
    const n = this.available();
    return typeof n !== 'number' || n > 0;
  }

  /** Reads avail.idx once (shared memory: an atomic load, acquire); number of new entries, or the violation. */
  private refreshAvail(): number | QueueViolation {
    const words = this.availWords;
    const availIdx = words !== null ? loadU16(words, AVAIL_IDX) : this.availDv.getUint16(AVAIL_IDX, true);
    const n = sub16(availIdx, this.lastAvail);
    if (n > this.size) return this.fail({ code: 'avail.index-jump', availIdx, nextAvail: this.lastAvail, size: this.size });
    this.shadowAvail = availIdx;
    return n;
  }

  private release(chain: DescriptorChain): void {
    const slot = chain.seq & this.mask;
    if (this.bySeq[slot] === chain) this.bySeq[slot] = null;
    chain.state = CHAIN_FREE;
    this.inFlightCount--;
    this.free.push(chain);
  }

  private fail(error: ChainError): QueueViolation {
    // Chains completed before the violation were completed properly: publish them before the queue
    // stops (QEMU publishes each element as it completes), so the used ring and the device's
    // counters agree. No interrupt: the device is about to signal DEVICE_NEEDS_RESET instead.
    if (this.violation === null && this.usedIdx !== this.publishedUsed && this.memory.generation === this.generation) {
      if (this.usedWords !== null) storeU16(this.usedWords, USED_IDX, this.usedIdx);
      else this.usedDv.setUint16(USED_IDX, this.usedIdx, true);
      this.memory.wrote(this.config.usedRing + USED_IDX, 2);
      this.publishedUsed = this.usedIdx;
    }
    const v: QueueViolation = Object.freeze({ kind: 'violation' as const, error: Object.freeze(error) });
    this.violation = v;
    return v;
  }

  /** Re-fetches the ring views after `memory.generation` changed; false (queue broken) if it cannot. */
  private remap(): boolean {
    const views = fetchViews(this.memory, this.config);
    if (!(views instanceof RingViews)) {
      this.fail({ code: 'queue.ring-unmapped', ring: views.ring });
      return false;
    }
    this.walker.desc = views.desc;
    this.availDv = views.avail;
    this.usedDv = views.used;
    this.availWords = views.availWords;
    this.usedWords = views.usedWords;
    this.generation = this.memory.generation;
    return true;
  }
}

/** DataViews over the three ring parts; the avail and used rings as 16-bit words when shared (ring-index.ts). */
class RingViews {
  readonly availWords: Uint16Array | null;
  readonly usedWords: Uint16Array | null;
  constructor(
    readonly desc: DataView,
    readonly avail: DataView,
    readonly used: DataView,
  ) {
    this.availWords = sharedWords(new Uint8Array(avail.buffer, avail.byteOffset, avail.byteLength));
    this.usedWords = sharedWords(new Uint8Array(used.buffer, used.byteOffset, used.byteLength));
  }
}

function checkAlign(ring: QueueRing, addr: number, alignment: number): QueueActivationError | null {
  // A non-integer or negative address is left to the memory check, which reports it as outside.
  if (!Number.isSafeInteger(addr) || addr < 0) return null;
  return addr % alignment === 0 ? null : { code: 'queue.misaligned', ring, addr, alignment };
}

/** Activation errors about one ring part (all but the size). */
type RingError = Exclude<SplitActivationError, { code: 'queue.size-invalid' }>;

function fetchViews(memory: GuestMemoryAccess, config: Readonly<QueueConfig>): RingViews | RingError {
  const desc = fetchView(memory, 'descTable', config.descTable, descTableBytes(config.size));
  if (!(desc instanceof DataView)) return desc;
  const avail = fetchView(memory, 'availRing', config.availRing, availRingBytes(config.size));
  if (!(avail instanceof DataView)) return avail;
  const used = fetchView(memory, 'usedRing', config.usedRing, usedRingBytes(config.size));
  if (!(used instanceof DataView)) return used;
  return new RingViews(desc, avail, used);
}

function fetchView(memory: GuestMemoryAccess, ring: QueueRing, addr: number, len: number): DataView | RingError {
  if (!memory.contains(addr, len)) return { code: 'queue.ring-outside-memory', ring, addr, len };
  let v: Uint8Array | undefined;
  try {
    v = memory.view(addr, len);
  } catch {
    // contains() said yes; an embedder's memory that disagrees is treated as "outside".
    return { code: 'queue.ring-outside-memory', ring, addr, len };
  }
  if (v === undefined) return { code: 'queue.ring-not-contiguous', ring, addr, len };
  return new DataView(v.buffer, v.byteOffset, v.byteLength);
}
