// The packed virtqueue, device side (VIRTIO 1.2 §2.8): activation of a driver-programmed queue
// configuration, popping validated lists from the descriptor ring (§2.8.1 wrap counters, §2.8.6
// chaining, §2.8.7 indirect tables), writing used descriptors back into the ring in completion order
// (§2.8.12; in-order and out-of-order completion alike, each carrying its Buffer ID), and both
// directions of event suppression (§2.8.10, with VIRTIO_F_EVENT_IDX's descriptor-specific events).
//
// Positions carry the wrap counter (packed-layout.ts). The device holds the descriptors from its
// last published used position up to its next available position: chains popped, and chains pushed
// whose used descriptor is written but not yet marked used. `publishUsed()` marks them used — the
// first one last, so the driver never sees part of a batch (§2.8.9) — and only then may the driver
// reuse them.
//
// Hot path: the three parts are reached through DataViews fetched at activation (and again when
// `memory.generation` changes); each guest field is read once into a local; chains come from a
// per-queue pool and the bookkeeping arrays are sized at activation, so steady-state pop/push
// allocates nothing. Writes through the cached views are reported with `memory.wrote()`.
//
// Guest memory in a SharedArrayBuffer (a driver running in another thread): the flags of the
// descriptor at the next available position are read with an atomic load (acquire: the driver makes
// a list's first descriptor available last, §2.8.21), used descriptor flags and the device event
// suppression structure are written with atomic stores (release), and the driver event structure is
// read with atomic loads after them (the full barrier of §2.8.10's race) — ring-index.ts. Decided per
// activation / memory generation: over a plain ArrayBuffer the word arrays are null and the DataView
// path runs as before.

import type { GuestMemoryAccess } from './guest-memory.js';
import { CHAIN_FREE, CHAIN_IN_FLIGHT, DescriptorChain } from './descriptor-chain.js';
import { PackedWalker } from './packed-walk.js';
import { loadU16, sharedWords, storeU16 } from './ring-index.js';
import type { ChainError, PackedActivationError, PackedChainError, QueueRing } from './queue-errors.js';
import { QUEUE_EMPTY } from './virtqueue.js';
import type { HeldList, QueueConfig, QueueEmpty, QueueFeatures, QueueViolation, Virtqueue } from './virtqueue.js';
import {
  DESC_RING_ALIGN,
  EVENT_FLAGS,
  EVENT_OFF_WRAP,
  EVENT_SUPPRESS_ALIGN,
  EVENT_SUPPRESS_SIZE,
  PACKED_DESC_F_WRITE,
  PACKED_DESC_FLAGS,
  PACKED_DESC_ID,
  PACKED_DESC_LEN,
  PACKED_DESC_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  RING_EVENT_FLAGS_MASK,
  advancePosition,
  descRingBytes,
  eventOffWrap,
  firstPosition,
  isAvailable,
  isValidPackedSize,
  passedEvent,
  positionDistance,
  positionOffset,
  positionWrap,
  rewindPosition,
  usedFlags,
} from './packed-layout.js';

/** A running packed queue's positions (offset and wrap counter in one number, packed-layout.ts). */
export interface PackedQueueRunState {
  /** Next ring position to pop. */
  readonly nextAvail: number;
  /** Next ring position to write a used descriptor at. */
  readonly nextUsed: number;
  /** Used position as last published: the old position of the next RING_EVENT_FLAGS_DESC test. */
  readonly publishedUsed: number;
}

/** Buffer IDs are 16-bit (§2.8.13): one bit each for "held by the device". */
const BUFFER_ID_WORDS = 0x10000 / 32;

/** A running packed virtqueue. Made only by `PackedQueue.activate()`. */
export class PackedQueue implements Virtqueue {
  /** The ring format (§2.8). */
  readonly ring = 'packed' as const;
  /** Queue index on its device. */
  readonly index: number;
  /** Queue size (descriptors in the ring). */
  readonly size: number;

  private readonly memory: GuestMemoryAccess;
  private readonly config: Readonly<QueueConfig>; // a private copy, validated
  private readonly eventIdx: boolean;
  private readonly indirectDesc: boolean;
  private readonly walker: PackedWalker;
  private descDv: DataView;
  private driverDv: DataView; // driver event suppression: read only
  private deviceDv: DataView; // device event suppression: written only
  /** The three parts as 16-bit words when they lie in a SharedArrayBuffer (atomic flag accesses), else null. */
  private descWords: Uint16Array | null;
  private driverWords: Uint16Array | null;
  private deviceWords: Uint16Array | null;
  private generation: number;

  private availPos: number; // next position to pop
  private usedPos: number; // next position to write a used descriptor at
  private publishedPos: number; // used position as last published
  private inFlightCount = 0;
  private inFlightSlots = 0; // ring descriptors of the chains in flight (nextAvail - nextUsed)
  private popSeq = 0; // pop counter modulo size: where the next pop is kept in bySeq
  private violation: QueueViolation | null = null;
  private readonly free: DescriptorChain[] = [];
  /** In-flight chains by pop sequence (at most `size`: every chain takes at least one descriptor). */
  private readonly bySeq: (DescriptorChain | null)[];
  /** Used descriptors written but not yet marked used: their ring offset and flags, in push order. */
  private readonly pendingOffset: Uint16Array;
  private readonly pendingFlags: Uint16Array;
  private pendingCount = 0;
  /** Buffer IDs of the chains in flight (§2.8.21.1). */
  private readonly idsHeld = new Uint32Array(BUFFER_ID_WORDS);

  private constructor(memory: GuestMemoryAccess, config: QueueConfig, features: QueueFeatures, index: number, views: PackedViews) {
    this.memory = memory;
    this.config = config;
    this.index = index;
    this.size = config.size;
    this.eventIdx = features.eventIdx;
    this.indirectDesc = features.indirectDesc;
    this.walker = new PackedWalker(memory, views.desc, config.size, features.indirectDesc);
    this.descDv = views.desc;
    this.driverDv = views.driver;
    this.deviceDv = views.device;
    this.descWords = views.descWords;
    this.driverWords = views.driverWords;
    this.deviceWords = views.deviceWords;
    this.generation = memory.generation;
    this.availPos = this.usedPos = this.publishedPos = firstPosition(config.size);
    this.bySeq = new Array<DescriptorChain | null>(config.size).fill(null);
    this.pendingOffset = new Uint16Array(config.size);
    this.pendingFlags = new Uint16Array(config.size);
  }

  /**
   * Validates `config` (size 1..32768; alignment 16 / 4 / 4; each part inside memory and inside one
   * region) and returns a running queue at the first position with both wrap counters 1 (§2.8.1),
   * or why it cannot run. Never throws for guest values; throws for programmer errors.
   */
  static activate(memory: GuestMemoryAccess, config: Readonly<QueueConfig>, features: QueueFeatures, index: number): PackedQueue | PackedActivationError {
    if (memory === null || typeof memory !== 'object') throw new TypeError('PackedQueue.activate: memory must be a GuestMemoryAccess');
    if (config === null || typeof config !== 'object') throw new TypeError('PackedQueue.activate: config must be a QueueConfig');
    if (features === null || typeof features !== 'object' || typeof features.indirectDesc !== 'boolean' || typeof features.eventIdx !== 'boolean') {
      throw new TypeError('PackedQueue.activate: features must be { indirectDesc: boolean, eventIdx: boolean }');
    }
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`PackedQueue.activate: index must be a non-negative integer, got ${String(index)}`);
    const copy: QueueConfig = { size: config.size, descTable: config.descTable, availRing: config.availRing, usedRing: config.usedRing, ready: config.ready };
    if (!isValidPackedSize(copy.size)) return { code: 'packed.size-invalid', size: copy.size };
    const misaligned =
      checkAlign('descRing', copy.descTable, DESC_RING_ALIGN) ??
      checkAlign('driverEvent', copy.availRing, EVENT_SUPPRESS_ALIGN) ??
      checkAlign('deviceEvent', copy.usedRing, EVENT_SUPPRESS_ALIGN);
    if (misaligned !== null) return misaligned;
    const views = fetchViews(memory, copy);
    if (!(views instanceof PackedViews)) return views;
    return new PackedQueue(memory, copy, features, index, views);
  }

  /** Next ring position the device will pop (offset and wrap counter, packed-layout.ts). */
  get nextAvail(): number {
    return this.availPos;
  }
  /** Next ring position the device will write a used descriptor at. */
  get nextUsed(): number {
    return this.usedPos;
  }
  get broken(): boolean {
    return this.violation !== null;
  }
  get error(): PackedChainError | null {
    return this.violation === null ? null : (this.violation.error as PackedChainError);
  }
  get inFlight(): number {
    return this.inFlightCount;
  }
  get queueConfig(): Readonly<QueueConfig> {
    return this.config;
  }
  /** Descriptors the device holds: popped, or used but not yet published. */
  get held(): number {
    return positionDistance(this.publishedPos, this.availPos, this.size);
  }

  /**
   * The running positions, for a device state (devices/virtio/core-state.ts), as they are: chains
   * popped and not yet given back stay popped (their descriptors are `nextAvail - nextUsed`). The
   * device that holds them saves which they are (`availIndex`, `headIndex`, `heldList()`) and gives
   * them back to the restored queue with `restoreHeld`. (Rewinding `nextAvail` over them instead
   * would make them available again, which the saved queue did not see — and is wrong when they are
   * not the most recent pops, as after out-of-order completion.) Used descriptors pushed but not yet
   * published cannot be described by positions alone: publish first (the device publishes at the end
   * of every pass). Throws (programmer error) otherwise.
   */
  runState(): PackedQueueRunState {
    if (this.pendingCount !== 0) throw new Error('PackedQueue.runState: used descriptors are pushed but not published; call publishUsed() first');
    return { nextAvail: this.availPos, nextUsed: this.usedPos, publishedUsed: this.publishedPos };
  }

  /**
   * Continues from saved positions; only on a queue fresh from `activate()`. Returns null, or why the
   * positions cannot belong to a queue of this size (nothing pushed and unpublished; at most `size`
   * descriptors in flight). The chains in flight at the save (`nextAvail - nextUsed` descriptors) are
   * then given back with `restoreHeld`, and `heldMissing()` says whether all were.
   */
  restoreRunState(s: PackedQueueRunState): string | null {
    if (this.inFlightCount !== 0 || this.availPos !== firstPosition(this.size) || this.usedPos !== firstPosition(this.size)) {
      throw new Error('PackedQueue.restoreRunState: only a freshly activated queue can be restored');
    }
    for (const k of ['nextAvail', 'nextUsed', 'publishedUsed'] as const) {
      const v = s[k];
      if (!Number.isInteger(v) || v < 0 || v >= 2 * this.size) return `${k} ${String(v)} is not a position of a ring of ${this.size}`;
    }
    if (s.nextUsed !== s.publishedUsed) return `nextUsed ${s.nextUsed} differs from publishedUsed ${s.publishedUsed}`;
    // positionDistance is modulo 2 * size: more than `size` descriptors in flight is impossible (pop()
    // refuses the list that would hold more).
    const inFlight = positionDistance(s.nextUsed, s.nextAvail, this.size);
    if (inFlight > this.size) return `nextAvail ${s.nextAvail} is ${inFlight} descriptors ahead of nextUsed ${s.nextUsed}, more than the ring's ${this.size}`;
    this.availPos = s.nextAvail;
    this.usedPos = s.nextUsed;
    this.publishedPos = s.publishedUsed;
    return null;
  }

  /** The list as popped: its descriptors in the ring may be overwritten by used ones (and reused) since. */
  heldList(chain: DescriptorChain): HeldList | null {
    if (chain.owner !== this || chain.state !== CHAIN_IN_FLIGHT) throw new Error(`PackedQueue.heldList: chain is not in flight on queue ${this.index}`);
    const regions: { addr: number; len: number; writable: boolean }[] = [];
    const readable = chain.readableCount;
    for (let i = 0; i < chain.segCount; i++) regions.push({ addr: chain.segAddr[i]!, len: chain.segLen[i]!, writable: i >= readable });
    return { ringSlots: chain.ringSlots, descriptorCount: chain.descriptorCount, indirect: chain.indirect, regions };
  }

  /**
   * After `restoreRunState`: a list the saved device held, popped at ring position `at` with Buffer ID
   * `id`, rebuilt from `list` (its ring descriptors may have been overwritten since; an indirect
   * table is not read again) and checked as `pop()` checks a list: descriptor counts within the ring,
   * readable buffers before writable ones, every buffer inside this memory, the total below 4 GiB, the
   * Buffer ID not held twice, and all the lists given back together no more descriptors than are in
   * flight. Returns the chain (in flight, as `pop()` returns it; `unpop()` and out-of-order
   * completion work on it as on a popped one); a string when the values are impossible; a ChainError
   * when a buffer is not inside this memory. Nothing changes on failure.
   */
  restoreHeld(id: number, at: number, list: HeldList | null): DescriptorChain | ChainError | string {
    if (list === null || typeof list !== 'object') throw new TypeError('PackedQueue.restoreHeld: a packed ring needs the list as heldList() gave it');
    if (this.violation !== null) return 'the queue is broken';
    const size = this.size;
    if (!Number.isInteger(at) || at < 0 || at >= 2 * size) return `held list position ${String(at)} is not a position of a ring of ${size}`;
    if (!Number.isInteger(id) || id < 0 || id > 0xffff) return `held list Buffer ID ${String(id)} is not a 16-bit ID`;
    const { ringSlots, descriptorCount, indirect, regions } = list;
    if (!Number.isInteger(ringSlots) || ringSlots < 1 || ringSlots > size) return `held list ${id} takes ${String(ringSlots)} ring descriptors (ring of ${size})`;
    if (indirect) {
      if (!this.indirectDesc) return `held list ${id} is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated`;
      if (ringSlots !== 1) return `held list ${id} is indirect but takes ${ringSlots} ring descriptors`;
      if (!Number.isInteger(descriptorCount) || descriptorCount < 1 || descriptorCount > size) return `held list ${id} has ${String(descriptorCount)} indirect entries (ring of ${size})`;
    } else if (descriptorCount !== ringSlots) {
      return `held list ${id} has ${String(descriptorCount)} descriptors in ${ringSlots} ring descriptors`;
    }
    if (regions.length > descriptorCount) return `held list ${id} has ${regions.length} buffers in ${descriptorCount} descriptors`;
    const inFlight = positionDistance(this.usedPos, this.availPos, size);
    if (this.inFlightSlots + ringSlots > inFlight) return `held lists take more than the ${inFlight} descriptors in flight (nextAvail - nextUsed)`;
    if ((this.idsHeld[id >>> 5]! & (1 << (id & 31))) !== 0) return `held list Buffer ID ${id} is held twice`;
    const head = positionOffset(at, size);
    let total = 0;
    let writable = false;
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i]!;
      if (!Number.isSafeInteger(r.addr) || r.addr < 0 || !Number.isInteger(r.len) || r.len < 1 || r.len > 0xffff_ffff) return `held list ${id} buffer ${i} is not a buffer`;
      if (r.writable) writable = true;
      else if (writable) return `held list ${id} has a readable buffer after a writable one`;
      total += r.len;
      if (total >= 2 ** 32) return `held list ${id} is 4 GiB or longer`;
      if (!this.memory.contains(r.addr, r.len)) return { code: 'packed.region-outside-memory', head, index: i, addr: r.addr, len: r.len, indirect };
    }
    const chain = this.free.pop() ?? new DescriptorChain(this.memory, this);
    chain.begin(head, this.memory);
    for (const r of regions) chain.addRegion(r.addr, r.len, r.writable);
    chain.finish(descriptorCount, indirect);
    chain.setHeadIndex(id);
    chain.ringSlots = ringSlots;
    this.idsHeld[id >>> 5] = this.idsHeld[id >>> 5]! | (1 << (id & 31));
    this.track(chain, at);
    return chain;
  }

  /** After `restoreHeld`: null when every chain in flight at the save was given back, else why not. */
  heldMissing(): string | null {
    const want = positionDistance(this.usedPos, this.availPos, this.size);
    return this.inFlightSlots === want ? null : `${want} descriptor(s) in flight (nextAvail - nextUsed), ${this.inFlightSlots} in the ${this.inFlightCount} list(s) held by the device`;
  }

  /** 1 when the descriptor at the next position is available, else 0; or the violation. */
  available(): number | QueueViolation {
    if (this.violation !== null) return this.violation;
    if (this.memory.generation !== this.generation && !this.remap()) return this.violation!;
    const pos = this.availPos;
    const flags = this.headFlags(positionOffset(pos, this.size) * PACKED_DESC_SIZE + PACKED_DESC_FLAGS);
    return isAvailable(flags, positionWrap(pos, this.size)) ? 1 : 0;
  }

  /**
   * Pops and validates the next list. The chain is valid until it is given back with `pushUsed()` or
   * `unpop()`. A malformed list breaks the queue and is not consumed.
   */
  pop(): DescriptorChain | QueueEmpty | QueueViolation {
    if (this.violation !== null) return this.violation;
    if (this.memory.generation !== this.generation && !this.remap()) return this.violation!;
    const size = this.size;
    const pos = this.availPos;
    const head = positionOffset(pos, size);
    const wrap = positionWrap(pos, size);
    const flags = this.headFlags(head * PACKED_DESC_SIZE + PACKED_DESC_FLAGS);
    if (!isAvailable(flags, wrap)) return QUEUE_EMPTY;
    const held = positionDistance(this.publishedPos, pos, size);
    if (held >= size) return this.fail({ code: 'packed.in-flight-exceeded', head, index: head, inFlight: held, size });
    const chain = this.free.pop() ?? new DescriptorChain(this.memory, this);
    const err = this.walker.walk(chain, head, wrap, flags, size - held);
    if (err !== null) {
      this.free.push(chain);
      return this.fail(err);
    }
    const id = chain.headIndex;
    const word = id >>> 5;
    const bit = 1 << (id & 31);
    if ((this.idsHeld[word]! & bit) !== 0) {
      this.free.push(chain);
      return this.fail({ code: 'packed.buffer-id-in-use', head, id });
    }
    this.idsHeld[word] = this.idsHeld[word]! | bit;
    this.track(chain, pos);
    this.availPos = advancePosition(pos, chain.ringSlots, size);
    return chain;
  }

  /** The flags of the descriptor at the next position (shared memory: an atomic load, acquire). */
  private headFlags(byteOffset: number): number {
    const words = this.descWords;
    return words !== null ? loadU16(words, byteOffset) : this.descDv.getUint16(byteOffset, true);
  }

  /** Marks a walked chain (its Buffer ID already marked held) in flight, popped at position `at`. */
  private track(chain: DescriptorChain, at: number): void {
    const seq = this.popSeq;
    chain.state = CHAIN_IN_FLIGHT;
    chain.seq = seq;
    chain.at = at;
    this.bySeq[seq] = chain;
    this.popSeq = seq + 1 === this.size ? 0 : seq + 1;
    this.inFlightCount++;
    this.inFlightSlots += chain.ringSlots;
  }

  /**
   * Gives back the last `count` popped chains, none of them pushed: the next pops read them again from
   * the ring (no used descriptor has been written over them: used descriptors are written only behind
   * every chain in flight). Throws (programmer error) if the last `count` pops are not all in flight
   * (a list given back by `restoreHeld` counts as popped where it was: it can be unpopped only when
   * nothing was popped after it).
   */
  unpop(count: number): void {
    const size = this.size;
    if (!Number.isInteger(count) || count < 0 || count > this.inFlightCount) {
      throw new RangeError(`PackedQueue.unpop: count must be an integer in 0..inFlight (${this.inFlightCount}), got ${String(count)}`);
    }
    let end = this.availPos;
    for (let k = 1; k <= count; k++) {
      const c = this.bySeq[(this.popSeq - k + size) % size];
      // A chain given back by restoreHeld ends where the next pop began only if nothing was popped
      // after it: a list held while a later one was used cannot be popped again from the ring.
      if (c === undefined || c === null || c.state !== CHAIN_IN_FLIGHT || advancePosition(c.at, c.ringSlots, size) !== end) {
        throw new Error('PackedQueue.unpop: one of the last chains popped was already pushed; only the most recent unpushed pops can be given back');
      }
      end = c.at;
    }
    for (let k = 0; k < count; k++) {
      const seq = this.popSeq === 0 ? size - 1 : this.popSeq - 1;
      const c = this.bySeq[seq]!;
      c.flushViewWrites(); // the device may have written through views before giving up
      this.availPos = rewindPosition(this.availPos, c.ringSlots, size);
      this.release(c);
      this.popSeq = seq;
    }
  }

  /**
   * Writes the used descriptor `{ id: chain.headIndex, len: writtenLength }` at the next used
   * position (§2.8.4, §2.8.6) without marking it used, moves the used position past the descriptors
   * the list took, and returns the chain to the pool. On a broken queue the chain is only released.
   * Throws (programmer error) for a chain not in flight here or a length outside 0..writableLength.
   */
  pushUsed(chain: DescriptorChain, writtenLength: number): void {
    if (chain.owner !== this || chain.state !== CHAIN_IN_FLIGHT) {
      throw new Error(`PackedQueue.pushUsed: chain is not in flight on queue ${this.index} (already pushed or unpopped?)`);
    }
    if (!Number.isInteger(writtenLength) || writtenLength < 0 || writtenLength > chain.writableLength) {
      throw new RangeError(`PackedQueue.pushUsed: writtenLength must be an integer in 0..${chain.writableLength} (the chain's writable length), got ${String(writtenLength)}`);
    }
    chain.flushViewWrites();
    if (this.violation === null && (this.memory.generation === this.generation || this.remap())) {
      const size = this.size;
      const pos = this.usedPos;
      const offset = positionOffset(pos, size);
      const o = offset * PACKED_DESC_SIZE;
      this.descDv.setUint32(o + PACKED_DESC_LEN, writtenLength, true);
      this.descDv.setUint16(o + PACKED_DESC_ID, chain.headIndex, true);
      this.memory.wrote(this.config.descTable + o + PACKED_DESC_LEN, 6);
      // §2.8.3: in a used descriptor WRITE says the device wrote into the buffer (then len counts).
      const n = this.pendingCount;
      this.pendingOffset[n] = offset;
      this.pendingFlags[n] = usedFlags(positionWrap(pos, size)) | (writtenLength > 0 ? PACKED_DESC_F_WRITE : 0);
      this.pendingCount = n + 1;
      this.usedPos = advancePosition(pos, chain.ringSlots, size);
    }
    this.release(chain);
  }

  /**
   * Marks everything pushed since the last publish used (the flags of the first of them last,
   * §2.8.9) and says whether the driver wants a used buffer notification (§2.8.10): not with
   * RING_EVENT_FLAGS_DISABLE; with RING_EVENT_FLAGS_DESC (and EVENT_IDX) when the descriptor it names
   * was passed; else yes. False when nothing was pushed or the queue is broken.
   */
  publishUsed(): boolean {
    if (this.violation !== null) return false;
    if (this.pendingCount === 0) return false;
    if (this.memory.generation !== this.generation && !this.remap()) return false;
    this.writePendingFlags();
    const oldPos = this.publishedPos;
    const newPos = this.usedPos;
    this.publishedPos = newPos;
    // Shared memory: atomic loads after the atomic flag stores (the full barrier of §2.8.10's race).
    const words = this.driverWords;
    const flags = (words !== null ? loadU16(words, EVENT_FLAGS) : this.driverDv.getUint16(EVENT_FLAGS, true)) & RING_EVENT_FLAGS_MASK;
    if (flags === RING_EVENT_FLAGS_DISABLE) return false;
    if (flags === RING_EVENT_FLAGS_DESC && this.eventIdx) {
      const offWrap = words !== null ? loadU16(words, EVENT_OFF_WRAP) : this.driverDv.getUint16(EVENT_OFF_WRAP, true);
      return passedEvent(offWrap, newPos, oldPos, this.size);
    }
    return true; // ENABLE, the reserved value 3, or DESC without EVENT_IDX: notify (never wrong)
  }

  /**
   * Asks the driver for (enabled) or not (disabled) available buffer notifications through the
   * device event suppression structure (§2.8.10): disabled is RING_EVENT_FLAGS_DISABLE; enabled is
   * RING_EVENT_FLAGS_DESC at the next position to pop with EVENT_IDX, else RING_EVENT_FLAGS_ENABLE.
   */
  setNotifications(enabled: boolean): void {
    if (this.violation !== null) return;
    if (this.memory.generation !== this.generation && !this.remap()) return;
    const dv = this.deviceDv;
    // Shared memory: atomic stores, so the flags read that follows (enableNotification) is ordered
    // after them.
    const words = this.deviceWords;
    if (enabled && this.eventIdx) {
      const offWrap = eventOffWrap(this.availPos, this.size);
      if (words !== null) {
        storeU16(words, EVENT_OFF_WRAP, offWrap);
        storeU16(words, EVENT_FLAGS, RING_EVENT_FLAGS_DESC);
      } else {
        dv.setUint16(EVENT_OFF_WRAP, offWrap, true);
        dv.setUint16(EVENT_FLAGS, RING_EVENT_FLAGS_DESC, true);
      }
      this.memory.wrote(this.config.usedRing, EVENT_SUPPRESS_SIZE);
      return;
    }
    const flags = enabled ? RING_EVENT_FLAGS_ENABLE : RING_EVENT_FLAGS_DISABLE;
    if (words !== null) storeU16(words, EVENT_FLAGS, flags);
    else dv.setUint16(EVENT_FLAGS, flags, true);
    this.memory.wrote(this.config.usedRing + EVENT_FLAGS, 2);
  }

  /**
   * Turns available buffer notifications back on, then looks once more (the driver may have made a
   * descriptor available before it saw the request). True when the caller must pop again.
   */
  enableNotification(): boolean {
    if (this.violation !== null) return true;
    this.setNotifications(true);
    const n = this.available();
    return typeof n !== 'number' || n > 0;
  }

  /**
   * Writes the flags of the pending used descriptors, the first one last (§2.8.9). Shared memory:
   * atomic stores (release: the id and len written before them are seen with them).
   */
  private writePendingFlags(): void {
    const dv = this.descDv;
    const words = this.descWords;
    const base = this.config.descTable;
    for (let i = this.pendingCount - 1; i >= 0; i--) {
      const o = this.pendingOffset[i]! * PACKED_DESC_SIZE + PACKED_DESC_FLAGS;
      if (words !== null) storeU16(words, o, this.pendingFlags[i]!);
      else dv.setUint16(o, this.pendingFlags[i]!, true);
      this.memory.wrote(base + o, 2);
    }
    this.pendingCount = 0;
  }

  private release(chain: DescriptorChain): void {
    if (this.bySeq[chain.seq] === chain) this.bySeq[chain.seq] = null;
    const id = chain.headIndex;
    this.idsHeld[id >>> 5] = this.idsHeld[id >>> 5]! & ~(1 << (id & 31));
    chain.state = CHAIN_FREE;
    this.inFlightCount--;
    this.inFlightSlots -= chain.ringSlots;
    this.free.push(chain);
  }

  private fail(error: PackedChainError): QueueViolation {
    // Chains completed before the violation were completed properly: mark them used before the
    // queue stops, so the ring and the device's counters agree. No interrupt: the device is about
    // to signal DEVICE_NEEDS_RESET instead.
    if (this.violation === null && this.pendingCount !== 0 && this.memory.generation === this.generation) {
      this.writePendingFlags();
      this.publishedPos = this.usedPos;
    }
    const v: QueueViolation = Object.freeze({ kind: 'violation' as const, error: Object.freeze(error) });
    this.violation = v;
    return v;
  }

  private remap(): boolean {
    const views = fetchViews(this.memory, this.config);
    if (!(views instanceof PackedViews)) {
      this.fail({ code: 'packed.ring-unmapped', ring: views.ring });
      return false;
    }
    this.walker.ring = views.desc;
    this.descDv = views.desc;
    this.driverDv = views.driver;
    this.deviceDv = views.device;
    this.descWords = views.descWords;
    this.driverWords = views.driverWords;
    this.deviceWords = views.deviceWords;
    this.generation = this.memory.generation;
    return true;
  }
}

/** DataViews over the three parts; the same as 16-bit words when shared (ring-index.ts). */
class PackedViews {
  readonly descWords: Uint16Array | null;
  readonly driverWords: Uint16Array | null;
  readonly deviceWords: Uint16Array | null;
  constructor(
    readonly desc: DataView,
    readonly driver: DataView,
    readonly device: DataView,
  ) {
    this.descWords = sharedWords(new Uint8Array(desc.buffer, desc.byteOffset, desc.byteLength));
    this.driverWords = sharedWords(new Uint8Array(driver.buffer, driver.byteOffset, driver.byteLength));
    this.deviceWords = sharedWords(new Uint8Array(device.buffer, device.byteOffset, device.byteLength));
  }
}

function checkAlign(ring: QueueRing, addr: number, alignment: number): PackedActivationError | null {
  if (!Number.isSafeInteger(addr) || addr < 0) return null; // left to the memory check
  return addr % alignment === 0 ? null : { code: 'packed.misaligned', ring, addr, alignment };
}

type RingError = Exclude<PackedActivationError, { code: 'packed.size-invalid' }>;

function fetchViews(memory: GuestMemoryAccess, config: Readonly<QueueConfig>): PackedViews | RingError {
  const desc = fetchView(memory, 'descRing', config.descTable, descRingBytes(config.size));
  if (!(desc instanceof DataView)) return desc;
  const driver = fetchView(memory, 'driverEvent', config.availRing, EVENT_SUPPRESS_SIZE);
  if (!(driver instanceof DataView)) return driver;
  const device = fetchView(memory, 'deviceEvent', config.usedRing, EVENT_SUPPRESS_SIZE);
  if (!(device instanceof DataView)) return device;
  return new PackedViews(desc, driver, device);
}

function fetchView(memory: GuestMemoryAccess, ring: QueueRing, addr: number, len: number): DataView | RingError {
  if (!memory.contains(addr, len)) return { code: 'packed.ring-outside-memory', ring, addr, len };
  let v: Uint8Array | undefined;
  try {
    v = memory.view(addr, len);
  } catch {
    return { code: 'packed.ring-outside-memory', ring, addr, len };
  }
  if (v === undefined) return { code: 'packed.ring-not-contiguous', ring, addr, len };
  return new DataView(v.buffer, v.byteOffset, v.byteLength);
}
