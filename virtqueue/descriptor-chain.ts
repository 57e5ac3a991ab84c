// A validated descriptor chain (VIRTIO 1.2 §2.7.5 descriptors, §2.7.5.3 indirect tables, §2.7.4
// message framing): the device-readable regions followed by the device-writable regions, with a
// reader and a writer cursor over them. Device code never sees raw descriptors.
//
// Chains come from a per-queue pool and are reused: a `DescriptorChain` is valid from the `pop()`
// that returned it until it is given back with `pushUsed()` or `unpop()`. Using it after that is a
// programmer error (accessors then describe whatever chain the object holds next).

import type { GuestMemoryAccess, GuestRegion } from './guest-memory.js';
import { ChainReader } from './chain-reader.js';
import { ChainWriter } from './chain-writer.js';

/** Regions a chain object can hold before it grows its arrays (a chain allocates only when a
 *  popped chain has more non-empty buffers than any chain this object held before). */
const INITIAL_REGION_CAPACITY = 8;

/** @internal pool state of a chain object: in the free list. */
export const CHAIN_FREE = 0;
/** @internal pool state of a chain object: popped, not yet pushed or unpopped. */
export const CHAIN_IN_FLIGHT = 1;

/**
 * One popped chain. Regions are the chain's non-empty buffers in chain order: `readableCount`
 * device-readable regions, then `writableCount` device-writable ones (zero-length descriptors are
 * counted in `descriptorCount` but give no region). Every region was checked to lie inside guest
 * memory when the chain was popped.
 */
export class DescriptorChain {
  readonly kind = 'chain' as const;

  /** @internal */ memory: GuestMemoryAccess;
  /** @internal the queue that owns this object (checked by pushUsed/unpop). */ readonly owner: object;
  /** @internal CHAIN_FREE or CHAIN_IN_FLIGHT */ state = CHAIN_FREE;
  /** @internal split: 16-bit available index this chain was popped at; packed: pop sequence slot. */ seq = 0;
  /** @internal split: the available index it was popped at (= seq); packed: the ring position its list started at. */ at = 0;
  /** @internal packed ring: descriptors the chain occupies in the ring (the used position skips them, §2.8.6). */ ringSlots = 1;
  /** @internal guest-physical address of each region */ segAddr: Float64Array;
  /** @internal length of each region */ segLen: Uint32Array;
  /**
   * @internal the memory region holding each region whole, when the walk looked it up
   * (`GuestMemoryAccess.regionAt`), else null: cursors then reach the bytes without a lookup per access.
   */
  segRegion: (GuestRegion | null)[];
  /** @internal readable + writable regions */ segCount = 0;
  /** @internal `memory.generation` when the chain was walked (its `segRegion` entries belong to it). */ generation = 0;

  private headIdx = 0;
  private descCount = 0;
  private viaIndirect = false;
  private nReadable = 0;
  private nWritable = 0;
  private readableBytes = 0;
  private writableBytes = 0;
  private readonly cursorR: ChainReader;
  private readonly cursorW: ChainWriter;

  /** @internal chains are made by their queue's pool. */
  constructor(memory: GuestMemoryAccess, owner: object) {
    this.memory = memory;
    this.owner = owner;
    this.segAddr = new Float64Array(INITIAL_REGION_CAPACITY);
    this.segLen = new Uint32Array(INITIAL_REGION_CAPACITY);
    this.segRegion = new Array<GuestRegion | null>(INITIAL_REGION_CAPACITY).fill(null);
    this.cursorR = new ChainReader(this);
    this.cursorW = new ChainWriter(this);
  }

  /**
   * Where the chain was popped, for a device state: split ring, the available ring index
   * (free-running 16-bit); packed ring, the ring position its list started at (offset and wrap
   * counter, packed-layout.ts).
   */
  get availIndex(): number {
    return this.at;
  }
  /**
   * The `id` the used entry will carry: split ring, the index of the chain's head descriptor (§2.7.8);
   * packed ring, the Buffer ID of the list's last descriptor (§2.8.6).
   */
  get headIndex(): number {
    return this.headIdx;
  }
  /** Buffer descriptors in the chain (direct ones and indirect table entries; not the descriptor
   *  that only points to an indirect table). */
  get descriptorCount(): number {
    return this.descCount;
  }
  /** True when the chain's buffers came from an indirect table (§2.7.5.3). */
  get indirect(): boolean {
    return this.viaIndirect;
  }
  /** Total bytes of the device-readable part. */
  get readableLength(): number {
    return this.readableBytes;
  }
  /** Total bytes of the device-writable part. */
  get writableLength(): number {
    return this.writableBytes;
  }
  /** Number of non-empty device-readable regions. */
  get readableCount(): number {
    return this.nReadable;
  }
  /** Number of non-empty device-writable regions. */
  get writableCount(): number {
    return this.nWritable;
  }
  /** Guest-physical address of readable region `i` (0 <= i < readableCount). */
  readableAddr(i: number): number {
    return this.segAddr[this.readableSlot(i)]!;
  }
  /** Length of readable region `i`. */
  readableLen(i: number): number {
    return this.segLen[this.readableSlot(i)]!;
  }
  /** Guest-physical address of writable region `i` (0 <= i < writableCount). */
  writableAddr(i: number): number {
    return this.segAddr[this.writableSlot(i)]!;
  }
  /** Length of writable region `i`. */
  writableLen(i: number): number {
    return this.segLen[this.writableSlot(i)]!;
  }

  /**
   * The chain's read cursor over the readable part. The same object on every call: its position
   * persists between calls and is reset when the chain is popped (`rewind()` starts over).
   */
  reader(): ChainReader {
    return this.cursorR;
  }
  /**
   * The chain's write cursor over the writable part. The same object on every call; reset when the
   * chain is popped.
   */
  writer(): ChainWriter {
    return this.cursorW;
  }

  // ---- filled by the queue while it walks the chain ----

  /** @internal starts a walk of the chain at `head`. */
  begin(head: number, memory: GuestMemoryAccess): void {
    this.memory = memory;
    this.generation = memory.generation;
    this.headIdx = head;
    this.descCount = 0;
    this.viaIndirect = false;
    this.segCount = 0;
    this.nReadable = 0;
    this.nWritable = 0;
    this.readableBytes = 0;
    this.writableBytes = 0;
  }

  /** @internal appends a validated non-empty region; readable regions all come first (the walk
   *  refuses readable-after-writable before calling this). `region`: the memory region that holds
   *  it whole, when the walk looked it up. */
  addRegion(addr: number, len: number, writable: boolean, region: GuestRegion | null = null): void {
    const n = this.segCount;
    if (n === this.segAddr.length) this.grow();
    this.segAddr[n] = addr;
    this.segLen[n] = len;
    this.segRegion[n] = region;
    this.segCount = n + 1;
    if (writable) {
      this.nWritable++;
      this.writableBytes += len;
    } else {
      this.nReadable++;
      this.readableBytes += len;
    }
  }

  /** @internal packed ring: the Buffer ID, known at the list's last descriptor. */
  setHeadIndex(id: number): void {
    this.headIdx = id;
  }

  /** @internal completes a successful walk. */
  finish(descriptorCount: number, indirect: boolean): void {
    this.descCount = descriptorCount;
    this.viaIndirect = indirect;
    this.cursorR.restart(0, this.readableBytes);
    this.cursorW.restart(this.nReadable, this.writableBytes);
  }

  /** After `placeWritable` answered a region: the offset of the first writable byte in it. */
  placedOffset = 0;

  /**
   * The writable part's first `len` (> 0) bytes in place, without the writer: when they lie in its
   * first descriptor and in the memory region the walk found for it (memory not remapped since),
   * that region, with `placedOffset` set; else null (use `writer()`). The caller writes them into
   * `region.bytes` / `region.data` at `placedOffset` and reports them with `wrotePlaced(len)` before
   * giving the chain back. For a chain whose writer has not been used.
   */
  placeWritable(len: number): GuestRegion | null {
    if (!(len > 0) || this.nWritable === 0) return null;
    const slot = this.nReadable;
    if (len > this.segLen[slot]!) return null;
    const r = this.segRegion[slot];
    if (r === null || r === undefined || this.memory.generation !== this.generation) return null;
    this.placedOffset = this.segAddr[slot]! - r.start;
    return r;
  }

  /** Reports the first `len` writable bytes, written after `placeWritable(len)`, to the memory (`wrote`). */
  wrotePlaced(len: number): void {
    this.memory.wrote(this.segAddr[this.nReadable]!, len);
  }

  /** @internal reports the ranges written through writer views to the memory (see ChainWriter). */
  flushViewWrites(): void {
    this.cursorW.flushViewWrites();
  }

  private grow(): void {
    const cap = this.segAddr.length * 2;
    const a = new Float64Array(cap);
    const l = new Uint32Array(cap);
    a.set(this.segAddr);
    l.set(this.segLen);
    this.segAddr = a;
    this.segLen = l;
    for (let i = this.segRegion.length; i < cap; i++) this.segRegion.push(null);
  }

  private readableSlot(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.nReadable) {
      throw new RangeError(`DescriptorChain: readable region ${String(i)} out of range (readableCount ${this.nReadable})`);
    }
    return i;
  }

  private writableSlot(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.nWritable) {
      throw new RangeError(`DescriptorChain: writable region ${String(i)} out of range (writableCount ${this.nWritable})`);
    }
    return this.nReadable + i;
  }
}

export type { ChainReader } from './chain-reader.js';
export type { ChainWriter } from './chain-writer.js';
