// The driver side of one packed virtqueue (VIRTIO 1.2 §2.8.21 supplying buffers, §2.8.22 receiving
// used buffers), the packed counterpart of guest-ring.ts: lays out the descriptor ring and the two
// event suppression structures (§2.8.10.1), makes well-formed lists available (chained with NEXT,
// or one INDIRECT descriptor, §2.8.6 / §2.8.7) with buffer IDs from a free list, reads used
// descriptors back skipping the descriptors each list took, and sets or reads event suppression.
//
// Its public members match GuestRing's where the meaning is the same (`addChain`, `publish`,
// `takeUsed`, `collect`, `buffers`, `bufferBytes`, `writtenBytes`, `queueConfig`, `reset`,
// `alloc`), so device-level tests run over either ring. Written from the spec's text,
// independently of virtqueue/, so tests check the device against the spec rather than against itself.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import type { BufferSpec, DriverBuffer, UsedEntry } from './guest-ring.js';
import { GuestRingError, RingBuffers, align } from './ring-buffers.js';

/** Descriptor flags (§2.8.1, §2.8.3, §2.8.6, §2.8.7). */
export const PACKED_F_NEXT = 1;
export const PACKED_F_WRITE = 2;
export const PACKED_F_INDIRECT = 4;
export const PACKED_F_AVAIL = 1 << 7;
export const PACKED_F_USED = 1 << 15;
/** Event suppression flags (§2.8.10). */
export const EVENT_ENABLE = 0;
export const EVENT_DISABLE = 1;
export const EVENT_DESC = 2;
const DESC_SIZE = 16;

export interface PackedGuestRingOptions {
  /** Queue size (any 1..32768 for a well-formed ring, §2.8.10.1). */
  size: number;
  /** Where the descriptor ring starts (default 0x1000); the event structures follow it. */
  base?: number;
  /** Buffer heap `[heapStart, heapEnd)`; default from after the ring to the end of that region. */
  heapStart?: number;
  heapEnd?: number;
}

interface ListRecord {
  slots: number;
  buffers: DriverBuffer[];
}

/** A driver's view of one packed virtqueue in `memory`. */
export class PackedGuestRing extends RingBuffers {
  readonly kind = 'packed' as const;
  readonly size: number;
  /** Descriptor Area: the descriptor ring. */
  readonly descRing: number;
  /** Driver Area: the driver event suppression structure (written by the driver). */
  readonly driverEvent: number;
  /** Device Area: the device event suppression structure (written by the device). */
  readonly deviceEvent: number;

  /** Next offset to make available and the Driver Ring Wrap Counter (§2.8.1). */
  protected nextAvail = 0;
  protected availWrap = 1;
  /** Next offset to read a used descriptor at, and its wrap counter. */
  protected nextUsed = 0;
  protected usedWrap = 1;
  /** Descriptors not in the device's hands. */
  protected freeCount = 0;
  protected freeIds: number[] = [];
  /** The last list made available with each Buffer ID (kept after use, like GuestRing's chains). */
  protected readonly lists = new Map<number, ListRecord>();
  protected readonly outstanding = new Set<number>();
  /** Lists written whose first descriptor's flags wait for `publish()`: [offset, flags]. */
  private pendingFirst: [number, number][] = [];
  /** Descriptors made available in total (the driver's counterpart of avail.idx, for kick decisions). */
  protected madeAvailable = 0;

  constructor(memory: GuestMemoryAccess, options: PackedGuestRingOptions) {
    const size = options.size;
    const descRing = align(options.base ?? 0x1000, 16);
    // The ring, then the driver and the device event structures (4 bytes each), then the heap.
    super(memory, { ring: 'PackedGuestRing', unit: 'list' }, options.heapStart ?? descRing + DESC_SIZE * size + 8, options.heapEnd);
    this.size = size;
    this.descRing = descRing;
    this.driverEvent = this.descRing + DESC_SIZE * size;
    this.deviceEvent = this.driverEvent + 4;
    this.reset();
  }

  /** The queue configuration a driver programs for this layout (ready): Descriptor, Driver, Device Area. */
  queueConfig(): { size: number; descTable: number; availRing: number; usedRing: number; ready: true } {
    return { size: this.size, descTable: this.descRing, availRing: this.driverEvent, usedRing: this.deviceEvent, ready: true };
  }
  /** Transport-facing names of the three areas (the split ring's field names, for driver-transport). */
  get descTable(): number {
    return this.descRing;
  }
  get availRing(): number {
    return this.driverEvent;
  }
  get usedRing(): number {
    return this.deviceEvent;
  }

  /** Zeroes the ring and both event structures (§2.8.13: "zero-initialized") and forgets all lists. */
  reset(): void {
    this.memory.write(this.descRing, new Uint8Array(DESC_SIZE * this.size + 8));
    this.nextAvail = 0;
    this.availWrap = 1;
    this.nextUsed = 0;
    this.usedWrap = 1;
    this.freeCount = this.size;
    this.freeIds = Array.from({ length: this.size }, (_, i) => i);
    this.lists.clear();
    this.outstanding.clear();
    this.pendingFirst = [];
    this.madeAvailable = 0;
    this.restartHeap();
  }

  /** Descriptors made available so far (counts every descriptor of every list; wraps at 2^16). */
  get availIdx(): number {
    return this.madeAvailable & 0xffff;
  }
  /** The next position the driver makes available: offset | wrap << 15 (what a notification's next_off/next_wrap say). */
  get availPosition(): number {
    return this.nextAvail | (this.availWrap << 15);
  }
  /** Descriptors not held by the device. */
  get freeDescriptors(): number {
    return this.freeCount;
  }

  /**
   * Makes a well-formed list available: readable buffers then writable ones, chained with NEXT (or
   * one INDIRECT descriptor with a table), the Buffer ID in the last descriptor, every descriptor's
   * flags for its own position, the first's flags written last (§2.8.21.1) — at once, or with
   * `publish: false` at the next `publish()`. Returns the Buffer ID (what the used descriptor carries).
   */
  addChain(buffers: readonly BufferSpec[], options: { indirect?: boolean; publish?: boolean } = {}): number {
    if (buffers.length === 0) throw new Error('PackedGuestRing.addChain: a list needs at least one buffer');
    const bufs = buffers.map((b) => this.fillBuffer(b, b.addr ?? this.alloc(b.len)));
    const slots = options.indirect === true ? 1 : bufs.length;
    if (slots > this.freeCount) throw new GuestRingError('table-full', `ring full: ${slots} descriptors needed, ${this.freeCount} free (takeUsed() frees used lists)`);
    const id = this.freeIds.shift();
    if (id === undefined) throw new GuestRingError('table-full', 'no free buffer id');
    const first = this.nextAvail;
    let firstFlags = 0;
    const put = (addr: number, len: number, flags: number, isFirst: boolean): void => {
      const f = flags | (this.availWrap === 1 ? PACKED_F_AVAIL : PACKED_F_USED);
      this.writeDesc(this.nextAvail, addr, len, id, isFirst ? 0 : f, !isFirst);
      if (isFirst) firstFlags = f;
      this.advanceAvail();
    };
    if (options.indirect === true) {
      const table = this.alloc(DESC_SIZE * bufs.length, 16);
      bufs.forEach((b, i) => this.writeEntry(table + DESC_SIZE * i, b.addr, b.len, b.write ? PACKED_F_WRITE : 0));
      put(table, DESC_SIZE * bufs.length, PACKED_F_INDIRECT, true);
    } else {
      bufs.forEach((b, i) => put(b.addr, b.len, (b.write ? PACKED_F_WRITE : 0) | (i < bufs.length - 1 ? PACKED_F_NEXT : 0), i === 0));
    }
    this.freeCount -= slots;
    this.lists.set(id, { slots, buffers: bufs });
    this.outstanding.add(id);
    this.pendingFirst.push([first, firstFlags]);
    this.madeAvailable += slots;
    if (options.publish ?? true) this.publish();
    return id;
  }

  /** Writes the first descriptor's flags of every list added with `publish: false`, in order. */
  publish(): void {
    for (const [offset, flags] of this.pendingFirst) this.memory.writeU16(this.descRing + DESC_SIZE * offset + 14, flags);
    this.pendingFirst = [];
  }

  /** The buffers of the list with Buffer ID `id` as handed to the device. */
  buffers(id: number): DriverBuffer[] {
    const l = this.lists.get(id);
    if (l === undefined) throw new Error(`PackedGuestRing.buffers: no list with buffer id ${id}`);
    return l.buffers;
  }

  /** Used descriptors marked used since the last `takeUsed()` / `collect()`, without consuming them. */
  usedEntries(): UsedEntry[] {
    const out: UsedEntry[] = [];
    let offset = this.nextUsed;
    let wrap = this.usedWrap;
    for (let guard = 0; guard < this.size; guard++) {
      const at = this.descAddr(offset);
      const flags = this.memory.readU16(at + 14);
      if (((flags & PACKED_F_AVAIL) !== 0 ? 1 : 0) !== wrap || ((flags & PACKED_F_USED) !== 0 ? 1 : 0) !== wrap) break;
      const id = this.memory.readU16(at + 12);
      out.push({ id, len: (flags & PACKED_F_WRITE) !== 0 ? this.memory.readU32(at + 8) : 0 });
      const slots = this.outstanding.has(id) ? this.lists.get(id)!.slots : 1;
      offset += slots;
      if (offset >= this.size) {
        offset -= this.size;
        wrap ^= 1;
      }
    }
    return out;
  }

  /** Sets the driver event suppression structure (§2.8.14): flags and, for EVENT_DESC, the position (offset | wrap << 15). */
  setDriverEvent(flags: number, offWrap = 0): void {
    this.memory.writeU16(this.driverEvent, offWrap & 0xffff);
    this.memory.writeU16(this.driverEvent + 2, flags & 0xffff);
  }
  /** The next position the driver reads a used descriptor at: offset | wrap << 15 (for EVENT_DESC). */
  usedPosition(): number {
    return this.nextUsed | (this.usedWrap << 15);
  }
  /** The device event suppression structure as the device wrote it. */
  readDeviceEvent(): { flags: number; offWrap: number } {
    return { offWrap: this.memory.readU16(this.deviceEvent), flags: this.memory.readU16(this.deviceEvent + 2) };
  }

  /**
   * Whether the driver must notify after making descriptors available from position `before`
   * (`availPosition` before the additions) to now, as Linux's virtqueue_kick_prepare_packed decides:
   * with RING_EVENT_FLAGS_DESC (and EVENT_IDX) when the event position was passed, else unless
   * the device wrote RING_EVENT_FLAGS_DISABLE.
   */
  needsNotify(before: number, eventIdx: boolean): boolean {
    const { flags, offWrap } = this.readDeviceEvent();
    if ((flags & 3) === EVENT_DESC && eventIdx) {
      const lin = (p: number): number => ((p >> 15) & 1) * this.size + (p & 0x7fff);
      const period = 2 * this.size;
      const old = lin(before);
      const dist = (to: number): number => (((to - old) % period) + period) % period;
      return dist(lin(offWrap)) < dist(lin(this.availPosition));
    }
    return (flags & 3) !== EVENT_DISABLE;
  }

  /** Address of ring descriptor `offset`. */
  descAddr(offset: number): number {
    return this.descRing + DESC_SIZE * offset;
  }

  /** Writes ring descriptor `offset` (flags last unless `withFlags` is false). */
  protected writeDesc(offset: number, addr: number | bigint, len: number, id: number, flags: number, withFlags = true): void {
    const at = this.descAddr(offset);
    const d = new DataView(new ArrayBuffer(14));
    d.setBigUint64(0, BigInt.asUintN(64, BigInt(addr)), true);
    d.setUint32(8, len >>> 0, true);
    d.setUint16(12, id & 0xffff, true);
    this.memory.write(at, new Uint8Array(d.buffer));
    if (withFlags) this.memory.writeU16(at + 14, flags & 0xffff);
  }

  /** Writes one indirect table entry (id 0). */
  protected writeEntry(at: number, addr: number | bigint, len: number, flags: number): void {
    const d = new DataView(new ArrayBuffer(DESC_SIZE));
    d.setBigUint64(0, BigInt.asUintN(64, BigInt(addr)), true);
    d.setUint32(8, len >>> 0, true);
    d.setUint16(14, flags & 0xffff, true);
    this.memory.write(at, new Uint8Array(d.buffer));
  }

  /** Moves the next available position on by one, flipping the wrap counter at the end (§2.8.21.1). */
  protected advanceAvail(): void {
    this.nextAvail++;
    if (this.nextAvail === this.size) {
      this.nextAvail = 0;
      this.availWrap ^= 1;
    }
  }

  /** The AVAIL/USED bits that mark a descriptor available at the current driver wrap counter. */
  protected availBits(): number {
    return this.availWrap === 1 ? PACKED_F_AVAIL : PACKED_F_USED;
  }

  /**
   * Consumes the used descriptors the device marked used (§2.8.22): reads each at the next used
   * position, skips the descriptors its list took, frees them and its ID; an ID this ring does not
   * have outstanding skips only that descriptor. `len` is 0 for a used descriptor without WRITE
   * (§2.8.4: its length is reserved then).
   */
  protected consumeUsed(visit: (e: UsedEntry, buffers: readonly DriverBuffer[] | null) => void): void {
    for (let guard = 0; guard < this.size; guard++) {
      const at = this.descAddr(this.nextUsed);
      const flags = this.memory.readU16(at + 14);
      const avail = (flags & PACKED_F_AVAIL) !== 0 ? 1 : 0;
      const used = (flags & PACKED_F_USED) !== 0 ? 1 : 0;
      if (avail !== this.usedWrap || used !== this.usedWrap) break;
      const id = this.memory.readU16(at + 12);
      const len = (flags & PACKED_F_WRITE) !== 0 ? this.memory.readU32(at + 8) : 0;
      const l = this.outstanding.delete(id) ? this.lists.get(id) : undefined;
      const slots = l?.slots ?? 1;
      if (l !== undefined) {
        this.freeIds.push(id);
        this.freeCount += slots;
      }
      for (let k = 0; k < slots; k++) {
        this.nextUsed++;
        if (this.nextUsed === this.size) {
          this.nextUsed = 0;
          this.usedWrap ^= 1;
        }
      }
      visit({ id, len }, l === undefined ? null : l.buffers);
    }
    if (this.outstanding.size === 0) this.restartHeap();
  }
}
