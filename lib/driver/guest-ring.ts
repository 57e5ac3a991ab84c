// The driver side of one split virtqueue (VIRTIO 1.2 §2.7.13 supplying buffers, §2.7.14 receiving
// used buffers), the project's one driver ring: lays out the descriptor table (§2.7.5), available
// ring (§2.7.6) and used ring (§2.7.8) in guest memory the way a guest driver does, builds
// well-formed chains (direct, or in one indirect table, §2.7.5.3) from free descriptors, publishes
// them, reads the used ring back and sets the notification-suppression fields (§2.7.7, §2.7.10).
//
// The scripted guest's driver (guest-net-driver.ts) uses it with one fixed buffer per descriptor;
// unit tests, fuzzing, benchmarks and the conformance suite use it with a bump-allocated buffer heap,
// through test/support/driver-ring.ts, which adds only the deliberately broken chains.
//
// Written from the spec's layout, independently of virtqueue/, so tests check the device against
// the spec rather than against itself.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';

/** Descriptor flags (§2.7.5). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** avail.flags bit (§2.7.7). */
const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
const DESC_SIZE = 16;

/** One buffer of a well-formed chain. */
export interface BufferSpec {
  /** Buffer length in bytes. */
  len: number;
  /** Device-writable (default: device-readable). */
  write?: boolean;
  /** Initial contents (at most `len` bytes), written before the chain is published. */
  data?: Uint8Array | readonly number[];
  /** Use this guest address instead of allocating one. */
  addr?: number;
}

/** A buffer as the driver handed it to the device. */
export interface DriverBuffer {
  addr: number;
  len: number;
  write: boolean;
}

/** A used ring element (§2.7.8). */
export interface UsedEntry {
  id: number;
  len: number;
}

/** Where the three ring parts sit. */
export interface RingLayout {
  descTable: number;
  availRing: number;
  usedRing: number;
  /** First byte after the parts placed automatically (and after the given ones). */
  end: number;
}

export interface GuestRingOptions {
  /** Queue size (a power of 2 for a well-formed ring; anything for activation tests). */
  size: number;
  /** Ring addresses; each omitted one is placed after the previous part, suitably aligned. */
  descTable?: number;
  availRing?: number;
  usedRing?: number;
  /** Where automatic placement starts (default 0x1000). */
  base?: number;
  /** Alignment of an automatically placed used ring: 4 by default (§2.7), 4096 for the legacy
   *  layout (§2.7.2) that old drivers use. */
  usedAlign?: number;
  /** Buffer heap: `[heapStart, heapEnd)`; default from after the rings to the end of that region
   *  (heapEnd is required for a memory without `layout()`). Unused with `slots`. */
  heapStart?: number;
  heapEnd?: number;
  /** Instead of the heap, one fixed buffer of `bufferSize` bytes per descriptor, descriptor `i`'s at
   *  `base + i * bufferSize` — for a driver that keeps chains outstanding forever (a full receive
   *  queue), where a bump heap would never be freed. Indirect tables still come from the heap. */
  slots?: { base: number; bufferSize: number };
}

/** Why the ring could not build a chain (the driver's own limits, not the device's). */
export class GuestRingError extends Error {
  constructor(
    readonly reason: 'heap-exhausted' | 'table-full' | 'buffer-too-large',
    message: string,
  ) {
    super(`GuestRing: ${message}`);
    this.name = 'GuestRingError';
  }
}

interface ChainRecord {
  descriptors: number[];
  buffers: DriverBuffer[];
}

/** A driver's view of one split virtqueue in `memory`. */
export class GuestRing {
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly heapStart: number;
  readonly heapEnd: number;

  private readonly slots: { base: number; bufferSize: number } | null;
  private heapTop: number;
  /** Free descriptors, taken from the front, returned to the back. */
  private freeDescs: number[] = [];
  private readonly chains = new Map<number, ChainRecord>();
  private readonly outstanding = new Set<number>();
  private availIdxValue = 0; // as published
  private pending = 0; // placed in the ring, not yet published
  private lastUsed = 0;

  constructor(
    readonly memory: GuestMemoryAccess,
    options: GuestRingOptions,
  ) {
    const size = options.size;
    this.size = size;
    const l = GuestRing.layout(options);
    this.descTable = l.descTable;
    this.availRing = l.availRing;
    this.usedRing = l.usedRing;
    this.slots = options.slots ?? null;
    this.heapStart = align(options.heapStart ?? l.end, 64);
    this.heapEnd = options.heapEnd ?? (this.slots !== null ? this.heapStart : regionEnd(memory, this.heapStart));
    this.heapTop = this.heapStart;
    this.reset();
  }

  /** Where `options` puts the three parts (what the constructor uses). */
  static layout(options: GuestRingOptions): RingLayout {
    const size = options.size;
    let at = options.base ?? 0x1000;
    const place = (given: number | undefined, alignment: number, bytes: number): number => {
      if (given !== undefined) return given;
      const addr = align(at, alignment);
      at = addr + bytes;
      return addr;
    };
    const descTable = place(options.descTable, 16, DESC_SIZE * size);
    const availRing = place(options.availRing, 2, 6 + 2 * size);
    const usedRing = place(options.usedRing, options.usedAlign ?? 4, 6 + 8 * size);
    const end = Math.max(descTable + DESC_SIZE * size, availRing + 6 + 2 * size, usedRing + 6 + 8 * size, at);
    return { descTable, availRing, usedRing, end };
  }

  /** The queue configuration a driver would program for this layout (ready); a `QueueConfig`. */
  queueConfig(): { size: number; descTable: number; availRing: number; usedRing: number; ready: true } {
    return { size: this.size, descTable: this.descTable, availRing: this.availRing, usedRing: this.usedRing, ready: true };
  }

  /** Zeroes the three ring parts and forgets all chains (a driver re-initialising the queue). */
  reset(): void {
    const m = this.memory;
    m.write(this.descTable, new Uint8Array(DESC_SIZE * this.size));
    m.write(this.availRing, new Uint8Array(6 + 2 * this.size));
    m.write(this.usedRing, new Uint8Array(6 + 8 * this.size));
    this.freeDescs = Array.from({ length: this.size }, (_, i) => i);
    this.chains.clear();
    this.outstanding.clear();
    this.availIdxValue = 0;
    this.pending = 0;
    this.lastUsed = 0;
    this.heapTop = this.heapStart;
  }

  /** avail.idx as last published by this driver. */
  get availIdx(): number {
    return this.availIdxValue;
  }

  /** Free descriptors left in the table. */
  get freeDescriptors(): number {
    return this.freeDescs.length;
  }

  /** Allocates `len` bytes of buffer space (bump allocator; it restarts when no chain is outstanding). */
  alloc(len: number, alignment = 8): number {
    const addr = align(this.heapTop, alignment);
    if (addr + len > this.heapEnd) {
      throw new GuestRingError('heap-exhausted', `buffer heap exhausted (need ${len} at 0x${addr.toString(16)}, heap ends at 0x${this.heapEnd.toString(16)})`);
    }
    this.heapTop = addr + len;
    return addr;
  }

  /**
   * Adds a well-formed chain: readable buffers then writable ones as given, chained with NEXT (or
   * in one indirect table), places the head in the available ring and, unless `publish` is false,
   * publishes it (`avail.idx` += everything placed). Returns the head index.
   */
  addChain(buffers: readonly BufferSpec[], options: { indirect?: boolean; publish?: boolean } = {}): number {
    let head: number;
    let descriptors: number[];
    let bufs: DriverBuffer[];
    if (options.indirect === true) {
      bufs = buffers.map((b) => this.placeBuffer(b, -1));
      const table = this.alloc(DESC_SIZE * bufs.length, 16);
      bufs.forEach((b, i) => {
        const last = i === bufs.length - 1;
        this.writeDesc(table + DESC_SIZE * i, b.addr, b.len, (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : i + 1);
      });
      head = this.takeDesc();
      descriptors = [head];
      this.writeDesc(this.descAddr(head), table, DESC_SIZE * bufs.length, VIRTQ_DESC_F_INDIRECT, 0);
    } else {
      // Buffer k goes with the k-th free descriptor, which takeDesc() hands out in that order.
      bufs = buffers.map((b, k) => this.placeBuffer(b, k));
      if (bufs.length === 0) throw new Error('GuestRing.addChain: a chain needs at least one buffer (use addRaw for odd chains)');
      descriptors = bufs.map(() => this.takeDesc());
      head = descriptors[0]!;
      bufs.forEach((b, i) => {
        const last = i === bufs.length - 1;
        const next = last ? 0 : descriptors[i + 1]!;
        this.writeDesc(this.descAddr(descriptors[i]!), b.addr, b.len, (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), next);
      });
    }
    this.record(head, descriptors, bufs, true);
    this.placeHead(head, options.publish ?? true);
    return head;
  }

  /** Publishes every head placed with `publish: false` (one `avail.idx` update, §2.7.13.3). */
  publish(): void {
    const n = this.pending;
    this.pending = 0;
    this.moveAvailIdx(n);
  }

  /** Places an existing head in the available ring again and publishes it (benchmarks, re-use). */
  republish(head: number): void {
    this.placeHead(head, true);
  }

  /** The buffers of chain `head` as handed to the device. */
  buffers(head: number): DriverBuffer[] {
    const c = this.chains.get(head);
    if (c === undefined) throw new Error(`GuestRing.buffers: no chain with head ${head}`);
    return c.buffers;
  }

  /** A copy of the bytes of buffer `i` of chain `head`. */
  bufferBytes(head: number, i: number): Uint8Array {
    const b = this.buffers(head)[i];
    if (b === undefined) throw new Error(`GuestRing.bufferBytes: chain ${head} has no buffer ${i}`);
    const out = new Uint8Array(b.len);
    this.memory.read(b.addr, out);
    return out;
  }

  /** The first `len` bytes of the writable buffers of chain `head`, concatenated (what the device wrote). */
  writtenBytes(head: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let at = 0;
    for (const b of this.buffers(head)) {
      if (!b.write || at >= len) continue;
      const n = Math.min(b.len, len - at);
      this.memory.read(b.addr, out.subarray(at, at + n));
      at += n;
    }
    if (at < len) throw new Error(`GuestRing.writtenBytes: chain ${head} has only ${at} writable bytes`);
    return out;
  }

  /** `used.idx` as the device last published it. */
  usedIdx(): number {
    return this.memory.readU16(this.usedRing + 2);
  }

  /** Used elements published since the last `takeUsed()` / `collect()`, without consuming them. */
  usedEntries(): UsedEntry[] {
    return this.readUsed(this.usedIdx());
  }

  /** Consumes the used elements published so far and frees their descriptors (§2.7.14). Returns
   *  every element, also one naming a head this ring does not have outstanding. */
  takeUsed(): UsedEntry[] {
    const out: UsedEntry[] = [];
    this.consumeUsed((e) => void out.push(e));
    return out;
  }

  /** Like `takeUsed()`, but calls `each` only for the chains it completes (a used element naming a
   *  head this ring does not have outstanding is skipped, as a driver ignores it); returns how many. */
  collect(each: (entry: UsedEntry, buffers: readonly DriverBuffer[]) => void): number {
    let n = 0;
    this.consumeUsed((e, buffers) => {
      if (buffers === null) return;
      each(e, buffers);
      n++;
    });
    return n;
  }

  /** The used index consumed so far (where the next used element will be read). */
  get consumedUsedIndex(): number {
    return this.lastUsed;
  }

  /** Sets `used_event` (the last field of the available ring, §2.7.6). */
  setUsedEvent(n: number): void {
    this.memory.writeU16(this.availRing + 4 + 2 * this.size, n & 0xffff);
  }

  /** Sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT in `avail.flags` (§2.7.7). */
  setNoInterrupt(on: boolean): void {
    this.memory.writeU16(this.availRing, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
  }

  /** `avail_event` (the last field of the used ring, §2.7.8). */
  readAvailEvent(): number {
    return this.memory.readU16(this.usedRing + 4 + 8 * this.size);
  }

  /** `used.flags` (bit 0: VIRTQ_USED_F_NO_NOTIFY, §2.7.10). */
  usedFlags(): number {
    return this.memory.readU16(this.usedRing);
  }

  /** Address of descriptor `i` of the table. */
  descAddr(i: number): number {
    return this.descTable + DESC_SIZE * i;
  }

  // For builders layered on this ring (test/support/driver-ring.ts builds broken chains with them).

  /** Writes one descriptor at `at` as given (an address past 2^53 as a bigint), in one 16-byte write
   *  so a descriptor may straddle two adjacent memory regions. */
  protected writeDesc(at: number, addr: number | bigint, len: number, flags: number, next: number): void {
    const d = new DataView(new ArrayBuffer(DESC_SIZE));
    d.setBigUint64(0, BigInt.asUintN(64, BigInt(addr)), true);
    d.setUint32(8, len >>> 0, true);
    d.setUint16(12, flags & 0xffff, true);
    d.setUint16(14, next & 0xffff, true);
    this.memory.write(at, new Uint8Array(d.buffer));
  }

  /** Takes the next free descriptor. */
  protected takeDesc(): number {
    const d = this.freeDescs.shift();
    if (d === undefined) throw new GuestRingError('table-full', 'descriptor table full (takeUsed() frees completed chains)');
    return d;
  }

  /** Takes descriptor `index` out of the free list, wherever it is (or nothing if it is not free). */
  protected claimDesc(index: number): void {
    this.freeDescs = this.freeDescs.filter((x) => x !== index);
  }

  /** Remembers chain `head` (for `buffers()`); an `outstanding` one gives its descriptors back when used. */
  protected record(head: number, descriptors: number[], buffers: DriverBuffer[], outstanding: boolean): void {
    this.chains.set(head, { descriptors, buffers });
    if (outstanding) this.outstanding.add(head);
  }

  /** Places `head` in the next slot of the available ring; publishes everything placed if `publish`. */
  protected placeHead(head: number, publish: boolean): void {
    const slot = (this.availIdxValue + this.pending) % this.size;
    this.memory.writeU16(this.availRing + 4 + 2 * slot, head & 0xffff);
    this.pending++;
    if (publish) this.publish();
  }

  /** Adds `n` to `avail.idx` (16-bit) and writes it. */
  protected moveAvailIdx(n: number): void {
    this.availIdxValue = (this.availIdxValue + n) & 0xffff;
    this.memory.writeU16(this.availRing + 2, this.availIdxValue);
  }

  /** Buffer `b` of a chain: its given address, else the slot of the `k`-th free descriptor (with
   *  `slots` and k >= 0), else heap space; `data` written there. */
  private placeBuffer(b: BufferSpec, k: number): DriverBuffer {
    const addr = b.addr ?? (this.slots !== null && k >= 0 ? this.slotFor(k, b.len) : this.alloc(b.len));
    if (b.data !== undefined) {
      if (b.data.length > b.len) throw new Error(`GuestRing: data (${b.data.length} bytes) longer than the buffer (${b.len})`);
      this.memory.write(addr, Uint8Array.from(b.data));
    }
    return { addr, len: b.len, write: b.write === true };
  }

  private slotFor(k: number, len: number): number {
    const slots = this.slots!;
    const d = this.freeDescs[k];
    if (d === undefined) throw new GuestRingError('table-full', 'descriptor table full (takeUsed() frees completed chains)');
    if (len > slots.bufferSize) throw new GuestRingError('buffer-too-large', `buffer of ${len} bytes exceeds the slot size ${slots.bufferSize}`);
    return slots.base + d * slots.bufferSize;
  }

  /** The used elements from `lastUsed` up to `end` (16-bit, §2.7.14). */
  private readUsed(end: number): UsedEntry[] {
    const out: UsedEntry[] = [];
    for (let i = this.lastUsed; i !== end; i = (i + 1) & 0xffff) {
      const o = this.usedRing + 4 + 8 * (i % this.size);
      out.push({ id: this.memory.readU32(o), len: this.memory.readU32(o + 4) });
    }
    return out;
  }

  /** Consumes the published used elements: frees the descriptors of each chain it completes and
   *  visits every element with that chain's buffers (null when it completes none); the heap restarts
   *  once nothing is outstanding. */
  private consumeUsed(visit: (e: UsedEntry, buffers: readonly DriverBuffer[] | null) => void): void {
    const end = this.usedIdx();
    const entries = this.readUsed(end);
    this.lastUsed = end;
    for (const e of entries) {
      const c = this.chains.get(e.id);
      const completes = c !== undefined && this.outstanding.delete(e.id);
      if (completes) this.freeDescs.push(...c.descriptors);
      visit(e, completes ? c.buffers : null);
    }
    if (this.outstanding.size === 0) this.heapTop = this.heapStart;
  }
}

function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

function regionEnd(memory: GuestMemoryAccess, addr: number): number {
  const layout = (memory as { layout?: () => { guestAddress: number; length: number }[] }).layout;
  if (typeof layout !== 'function') throw new Error('GuestRing: give heapEnd for a memory without layout()');
  for (const r of layout.call(memory)) {
    if (addr >= r.guestAddress && addr < r.guestAddress + r.length) return r.guestAddress + r.length;
  }
  throw new Error(`GuestRing: heap start 0x${addr.toString(16)} is not inside guest memory`);
}
