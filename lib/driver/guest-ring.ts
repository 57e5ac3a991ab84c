// The driver side of one split virtqueue (VIRTIO 1.2 §2.7.13 supplying buffers, §2.7.14 receiving
// used buffers), the project's one driver ring: lays out the descriptor table (§2.7.5), available
// ring (§2.7.6) and used ring (§2.7.8) in guest memory the way a guest driver does, builds
// well-formed chains (direct, or in one indirect table, §2.7.5.3) from free descriptors, publishes
// them, reads the used ring back and sets the notification-suppression fields (§2.7.7, §2.7.10).
//
// The scripted guest's driver (guest-net-driver.ts) uses it with one fixed buffer per descriptor;
// unit tests, fuzzing, benchmarks and the conformance suite use it with a bump-allocated buffer heap,
// through test/support/driver-ring.ts, which adds only the deliberately broken chains.
// The buffer side it shares with the packed ring (heap, buffers read back, takeUsed / collect) is
// ring-buffers.ts.
//
// Written from the spec's layout, independently of virtqueue/, so tests check the device against
// the spec rather than against itself.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { GuestRingError, RingBuffers, align } from './ring-buffers.js';

export { GuestRingError } from './ring-buffers.js';

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

interface ChainRecord {
  descriptors: number[];
  buffers: DriverBuffer[];
}

/** A driver's view of one split virtqueue in `memory`. */
export class GuestRing extends RingBuffers {
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;

  private readonly slots: { base: number; bufferSize: number } | null;
  /** Free descriptors, taken from the front, returned to the back. */
  private freeDescs: number[] = [];
  private readonly chains = new Map<number, ChainRecord>();
  private readonly outstanding = new Set<number>();
  private availIdxValue = 0; // as published
  private pending = 0; // placed in the ring, not yet published
  private lastUsed = 0;

  constructor(memory: GuestMemoryAccess, options: GuestRingOptions) {
    const l = GuestRing.layout(options);
    const slots = options.slots ?? null;
    // With slots the heap holds only indirect tables: it ends where it starts unless given.
    const heapStart = align(options.heapStart ?? l.end, 64);
    super(memory, { ring: 'GuestRing', unit: 'chain' }, heapStart, options.heapEnd ?? (slots !== null ? heapStart : undefined));
    this.size = options.size;
    this.descTable = l.descTable;
    this.availRing = l.availRing;
    this.usedRing = l.usedRing;
    this.slots = slots;
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
    this.restartHeap();
  }

  /** avail.idx as last published by this driver. */
  get availIdx(): number {
    return this.availIdxValue;
  }

  /** Free descriptors left in the table. */
  get freeDescriptors(): number {
    return this.freeDescs.length;
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

  /** `used.idx` as the device last published it. */
  usedIdx(): number {
    return this.memory.readU16(this.usedRing + 2);
  }

  /** Used elements published since the last `takeUsed()` / `collect()`, without consuming them. */
  usedEntries(): UsedEntry[] {
    return this.readUsed(this.usedIdx());
  }

  /**
   * Asks for an interrupt on the next used buffer after a drain, as Linux's virtqueue_enable_cb
   * does: with VIRTIO_F_EVENT_IDX, `used_event` = the next used index this driver will read
   * (§2.7.7.2; the device ignores the field otherwise). True when used entries are already waiting
   * (published before the write was seen): drain again.
   */
  armUsedInterrupt(): boolean {
    this.setUsedEvent(this.lastUsed);
    return this.usedIdx() !== this.lastUsed;
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
    return this.fillBuffer(b, b.addr ?? (this.slots !== null && k >= 0 ? this.slotFor(k, b.len) : this.alloc(b.len)));
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

  /** Consumes the published used elements (§2.7.14): frees the descriptors of each chain it
   *  completes and visits every element with that chain's buffers (null when it completes none);
   *  the heap restarts once nothing is outstanding. */
  protected consumeUsed(visit: (e: UsedEntry, buffers: readonly DriverBuffer[] | null) => void): void {
    const end = this.usedIdx();
    const entries = this.readUsed(end);
    this.lastUsed = end;
    for (const e of entries) {
      const c = this.chains.get(e.id);
      const completes = c !== undefined && this.outstanding.delete(e.id);
      if (completes) this.freeDescs.push(...c.descriptors);
      visit(e, completes ? c.buffers : null);
    }
    if (this.outstanding.size === 0) this.restartHeap();
  }
}
