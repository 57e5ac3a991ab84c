// The driver side of a split virtqueue (VIRTIO 1.2 §2.7.13 supplying buffers, §2.7.14 receiving
// used buffers), for tests, fuzzing and benchmarks: lays out the three ring parts in a GuestMemory
// the way a guest driver does, adds descriptor chains (direct or indirect) with buffers from a bump
// allocator, publishes them, and reads the used ring back. `addRaw()` and `bumpAvailIdx()` build
// deliberately broken rings.
//
// Written from the spec's layout, independently of virtqueue/split-queue.ts, so tests check the
// device against the spec rather than against itself.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import type { QueueConfig } from '../../virtqueue/split-queue.js';

const DESC_F_NEXT = 1;
const DESC_F_WRITE = 2;
const DESC_F_INDIRECT = 4;

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

/** One descriptor written exactly as given (for broken chains). */
export interface RawDescriptor {
  /** Guest address; a bigint may exceed 2^53. Default: a fresh buffer of `len` bytes (or, for an
   *  INDIRECT descriptor, the `indirectTable` given to `addRaw`). */
  addr?: number | bigint;
  /** Default 0 (INDIRECT descriptor: 16 * table entries). */
  len?: number;
  /** VIRTQ_DESC_F_* bits; default 0. */
  flags?: number;
  /** Default: with NEXT, the index of the following raw descriptor (0 after the last); else 0. */
  next?: number;
  /** Descriptor table index (or table entry for indirect tables); default: the next free one. */
  index?: number;
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

export interface DriverRingOptions {
  /** Queue size (a power of 2 for a well-formed ring; anything for activation tests). */
  size: number;
  /** Ring addresses; each omitted one is placed after the previous part, suitably aligned. */
  descTable?: number;
  availRing?: number;
  usedRing?: number;
  /** Where automatic placement starts (default 0x1000). */
  base?: number;
  /** Buffer heap: `[heapStart, heapEnd)`; default from after the rings to the end of that region
   *  (heapEnd is required for a memory without `layout()`). */
  heapStart?: number;
  heapEnd?: number;
}

interface ChainRecord {
  descriptors: number[];
  buffers: DriverBuffer[];
}

/** A driver's view of one split virtqueue in `memory`. */
export class DriverRing {
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly heapStart: number;
  readonly heapEnd: number;

  private heapTop: number;
  private freeDescs: number[] = [];
  private chains = new Map<number, ChainRecord>();
  private outstanding = new Set<number>();
  private availIdxValue = 0; // as published
  private pending = 0; // placed in the ring, not yet published
  private lastUsed = 0;

  constructor(
    readonly memory: GuestMemoryAccess,
    options: DriverRingOptions,
  ) {
    const size = options.size;
    this.size = size;
    let at = options.base ?? 0x1000;
    const place = (given: number | undefined, alignment: number, bytes: number): number => {
      if (given !== undefined) return given;
      const addr = align(at, alignment);
      at = addr + bytes;
      return addr;
    };
    this.descTable = place(options.descTable, 16, 16 * size);
    this.availRing = place(options.availRing, 2, 6 + 2 * size);
    this.usedRing = place(options.usedRing, 4, 6 + 8 * size);
    const ringsEnd = Math.max(this.descTable + 16 * size, this.availRing + 6 + 2 * size, this.usedRing + 6 + 8 * size, at);
    this.heapStart = align(options.heapStart ?? ringsEnd, 64);
    this.heapEnd = options.heapEnd ?? regionEnd(memory, this.heapStart);
    this.heapTop = this.heapStart;
    this.reset();
  }

  /** The QueueConfig a driver would program for this layout (ready). */
  queueConfig(): QueueConfig {
    return { size: this.size, descTable: this.descTable, availRing: this.availRing, usedRing: this.usedRing, ready: true };
  }

  /** Zeroes the three ring parts and forgets all chains (a driver re-initialising the queue). */
  reset(): void {
    const m = this.memory;
    m.write(this.descTable, new Uint8Array(16 * this.size));
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
      throw new Error(`DriverRing: buffer heap exhausted (need ${len} at 0x${addr.toString(16)}, heap ends at 0x${this.heapEnd.toString(16)})`);
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
    const bufs = buffers.map((b) => this.placeBuffer(b));
    let head: number;
    let descriptors: number[];
    if (options.indirect === true) {
      const table = this.alloc(16 * bufs.length, 16);
      bufs.forEach((b, i) => {
        const last = i === bufs.length - 1;
        this.writeDesc(table + 16 * i, b.addr, b.len, (b.write ? DESC_F_WRITE : 0) | (last ? 0 : DESC_F_NEXT), last ? 0 : i + 1);
      });
      head = this.takeDesc();
      descriptors = [head];
      this.writeDesc(this.descAddr(head), table, 16 * bufs.length, DESC_F_INDIRECT, 0);
    } else {
      if (bufs.length === 0) throw new Error('DriverRing.addChain: a chain needs at least one buffer (use addRaw for odd chains)');
      descriptors = bufs.map(() => this.takeDesc());
      head = descriptors[0]!;
      bufs.forEach((b, i) => {
        const last = i === bufs.length - 1;
        const next = last ? 0 : descriptors[i + 1]!;
        this.writeDesc(this.descAddr(descriptors[i]!), b.addr, b.len, (b.write ? DESC_F_WRITE : 0) | (last ? 0 : DESC_F_NEXT), next);
      });
    }
    this.chains.set(head, { descriptors, buffers: bufs });
    this.outstanding.add(head);
    this.placeHead(head, options.publish ?? true);
    return head;
  }

  /**
   * Writes `descriptors` exactly as given (see RawDescriptor) and places `options.head` (default:
   * the first descriptor's index) in the available ring. `indirectTable` entries are written into a
   * freshly allocated table that INDIRECT descriptors without an `addr` point to. Returns the head
   * placed in the ring (`indirectTableAt` puts the table at that address instead, aligned or not).
   * Descriptors taken here are not returned to the free list by `takeUsed()`.
   */
  addRaw(
    descriptors: readonly RawDescriptor[],
    options: { indirectTable?: readonly RawDescriptor[]; indirectTableAt?: number; head?: number; publish?: boolean } = {},
  ): number {
    const bufs: DriverBuffer[] = [];
    let tableAddr = 0;
    let tableLen = 0;
    if (options.indirectTable !== undefined) {
      const entries = options.indirectTable;
      tableLen = 16 * entries.length;
      tableAddr = options.indirectTableAt ?? this.alloc(Math.max(tableLen, 16), 16);
      const indices = entries.map((d, i) => d.index ?? i);
      entries.forEach((d, i) => {
        const addr = this.rawAddr(d, bufs);
        this.writeDesc(tableAddr + 16 * indices[i]!, addr, d.len ?? 0, d.flags ?? 0, this.rawNext(d, indices, i));
      });
    }
    const indices = descriptors.map((d) => {
      if (d.index !== undefined) {
        this.freeDescs = this.freeDescs.filter((x) => x !== d.index);
        return d.index;
      }
      return this.takeDesc();
    });
    descriptors.forEach((d, i) => {
      const flags = d.flags ?? 0;
      let addr: number | bigint;
      let len: number;
      if ((flags & DESC_F_INDIRECT) !== 0 && d.addr === undefined && options.indirectTable !== undefined) {
        addr = tableAddr;
        len = d.len ?? tableLen;
      } else {
        addr = this.rawAddr(d, bufs);
        len = d.len ?? 0;
      }
      this.writeDesc(this.descAddr(indices[i]!), addr, len, flags, this.rawNext(d, indices, i));
    });
    const head = options.head ?? indices[0] ?? 0;
    this.chains.set(head, { descriptors: [], buffers: bufs });
    this.placeHead(head, options.publish ?? true);
    return head;
  }

  /** Publishes every head placed with `publish: false` (one `avail.idx` update, §2.7.13.3). */
  publish(): void {
    this.availIdxValue = (this.availIdxValue + this.pending) & 0xffff;
    this.pending = 0;
    this.memory.writeU16(this.availRing + 2, this.availIdxValue);
  }

  /** Moves `avail.idx` by `n` without placing heads (an index jump when n > size). */
  bumpAvailIdx(n: number): void {
    this.availIdxValue = (this.availIdxValue + n) & 0xffff;
    this.memory.writeU16(this.availRing + 2, this.availIdxValue);
  }

  /** Places an existing head in the available ring again and publishes it (benchmarks, re-use). */
  republish(head: number): void {
    this.placeHead(head, true);
  }

  /** The buffers of chain `head` as handed to the device. */
  buffers(head: number): DriverBuffer[] {
    const c = this.chains.get(head);
    if (c === undefined) throw new Error(`DriverRing.buffers: no chain with head ${head}`);
    return c.buffers;
  }

  /** A copy of the bytes of buffer `i` of chain `head`. */
  bufferBytes(head: number, i: number): Uint8Array {
    const b = this.buffers(head)[i];
    if (b === undefined) throw new Error(`DriverRing.bufferBytes: chain ${head} has no buffer ${i}`);
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
    if (at < len) throw new Error(`DriverRing.writtenBytes: chain ${head} has only ${at} writable bytes`);
    return out;
  }

  /** `used.idx` as the device last published it. */
  usedIdx(): number {
    return this.memory.readU16(this.usedRing + 2);
  }

  /** Used elements published since the last `takeUsed()`, without consuming them. */
  usedEntries(): UsedEntry[] {
    const out: UsedEntry[] = [];
    const end = this.usedIdx();
    for (let i = this.lastUsed; i !== end; i = (i + 1) & 0xffff) {
      const o = this.usedRing + 4 + 8 * (i % this.size);
      out.push({ id: this.memory.readU32(o), len: this.memory.readU32(o + 4) });
    }
    return out;
  }

  /** Consumes the used elements published so far and frees their descriptors (§2.7.14). */
  takeUsed(): UsedEntry[] {
    const out = this.usedEntries();
    this.lastUsed = this.usedIdx();
    for (const e of out) {
      const c = this.chains.get(e.id);
      if (c !== undefined && this.outstanding.delete(e.id)) this.freeDescs.push(...c.descriptors);
    }
    if (this.outstanding.size === 0) this.heapTop = this.heapStart;
    return out;
  }

  /** Sets `used_event` (the last field of the available ring, §2.7.6). */
  setUsedEvent(n: number): void {
    this.memory.writeU16(this.availRing + 4 + 2 * this.size, n & 0xffff);
  }

  /** Sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT in `avail.flags` (§2.7.7). */
  setNoInterrupt(on: boolean): void {
    this.memory.writeU16(this.availRing, on ? 1 : 0);
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
    return this.descTable + 16 * i;
  }

  private placeBuffer(b: BufferSpec): DriverBuffer {
    const addr = b.addr ?? this.alloc(b.len);
    if (b.data !== undefined) {
      if (b.data.length > b.len) throw new Error(`DriverRing: data (${b.data.length} bytes) longer than the buffer (${b.len})`);
      this.memory.write(addr, Uint8Array.from(b.data));
    }
    return { addr, len: b.len, write: b.write === true };
  }

  private takeDesc(): number {
    const d = this.freeDescs.shift();
    if (d === undefined) throw new Error('DriverRing: descriptor table full (takeUsed() frees completed chains)');
    return d;
  }

  private placeHead(head: number, publish: boolean): void {
    const slot = (this.availIdxValue + this.pending) % this.size;
    this.memory.writeU16(this.availRing + 4 + 2 * slot, head & 0xffff);
    this.pending++;
    if (publish) this.publish();
  }

  private writeDesc(at: number, addr: number | bigint, len: number, flags: number, next: number): void {
    // One 16-byte write, so a descriptor may straddle two adjacent memory regions.
    const d = new DataView(new ArrayBuffer(16));
    d.setBigUint64(0, BigInt.asUintN(64, BigInt(addr)), true);
    d.setUint32(8, len >>> 0, true);
    d.setUint16(12, flags & 0xffff, true);
    d.setUint16(14, next & 0xffff, true);
    this.memory.write(at, new Uint8Array(d.buffer));
  }

  private rawAddr(d: RawDescriptor, bufs: DriverBuffer[]): number | bigint {
    const len = d.len ?? 0;
    const addr = d.addr ?? (len > 0 ? this.alloc(len) : 0);
    bufs.push({ addr: Number(addr), len, write: ((d.flags ?? 0) & DESC_F_WRITE) !== 0 });
    return addr;
  }

  private rawNext(d: RawDescriptor, indices: readonly number[], i: number): number {
    if (d.next !== undefined) return d.next;
    if (((d.flags ?? 0) & DESC_F_NEXT) === 0) return 0;
    return indices[i + 1] ?? 0;
  }
}

function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

function regionEnd(memory: GuestMemoryAccess, addr: number): number {
  const layout = (memory as { layout?: () => { guestAddress: number; length: number }[] }).layout;
  if (typeof layout !== 'function') throw new Error('DriverRing: give heapEnd for a memory without layout()');
  for (const r of layout.call(memory)) {
    if (addr >= r.guestAddress && addr < r.guestAddress + r.length) return r.guestAddress + r.length;
  }
  throw new Error(`DriverRing: heap start 0x${addr.toString(16)} is not inside guest memory`);
}
