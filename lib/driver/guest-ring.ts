// The driver side of one split virtqueue (VIRTIO 1.2 §2.7), as a well-behaved guest driver keeps
// it: descriptor table, available ring and used ring in guest memory, one fixed buffer per
// descriptor, chains built from free descriptors, completions collected from the used ring.
//
// This is the lean driver the scripted guest of `virtio-net run` and the benchmarks use. It only
// builds well-formed chains; the test harness (test/support/driver-ring.ts) also builds broken ones.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';

const DESC_F_NEXT = 1;
const DESC_F_WRITE = 2;

export interface GuestRingLayout {
  /** Queue size (power of two). */
  size: number;
  /** Guest address of the ring area (descriptor table, then avail, then used at 4096 alignment). */
  base: number;
  /** Guest address of the buffer area: `size` buffers of `bufferSize` bytes. */
  buffers: number;
  bufferSize: number;
}

/** A completed chain: its head and the length the device wrote. */
export interface Completion {
  head: number;
  len: number;
}

export class GuestRing {
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly bufferSize: number;
  private readonly buffers: number;
  private readonly free: number[] = [];
  /** Descriptors of each outstanding chain, by head. */
  private readonly chains = new Map<number, number[]>();
  private availIdx = 0;
  private lastUsed = 0;

  constructor(
    private readonly memory: GuestMemoryAccess,
    layout: GuestRingLayout,
  ) {
    const { size, base, buffers, bufferSize } = layout;
    if (!Number.isInteger(size) || size < 1 || size > 32768 || (size & (size - 1)) !== 0) {
      throw new RangeError(`GuestRing: size must be a power of two in 1..32768, got ${size}`);
    }
    this.size = size;
    this.descTable = base;
    this.availRing = base + 16 * size;
    this.usedRing = align(this.availRing + 6 + 2 * size, 4096);
    this.buffers = buffers;
    this.bufferSize = bufferSize;
    this.reset();
  }

  /** Bytes the ring area takes from `base`. */
  static ringBytes(size: number): number {
    return align(16 * size + 6 + 2 * size, 4096) + 6 + 8 * size;
  }

  /** Zeroes the rings and frees every descriptor (the driver re-initialising the queue). */
  reset(): void {
    const m = this.memory;
    m.write(this.descTable, new Uint8Array(16 * this.size));
    m.write(this.availRing, new Uint8Array(6 + 2 * this.size));
    m.write(this.usedRing, new Uint8Array(6 + 8 * this.size));
    this.free.length = 0;
    for (let i = this.size - 1; i >= 0; i--) this.free.push(i);
    this.chains.clear();
    this.availIdx = 0;
    this.lastUsed = 0;
  }

  get freeDescriptors(): number {
    return this.free.length;
  }

  /** Guest address of descriptor `i`'s buffer. */
  bufferAddress(i: number): number {
    return this.buffers + i * this.bufferSize;
  }

  /**
   * Adds one chain: a readable descriptor per `readable` entry (its bytes copied into the buffer),
   * then a writable descriptor per `writable` length. Returns the head, or -1 when there are not
   * enough free descriptors. Publishes avail.idx unless `publish` is false.
   */
  add(readable: readonly Uint8Array[], writable: readonly number[], publish = true): number {
    const n = readable.length + writable.length;
    if (n === 0 || n > this.free.length) return -1;
    const descs: number[] = [];
    for (let k = 0; k < n; k++) descs.push(this.free.pop()!);
    const m = this.memory;
    for (let k = 0; k < n; k++) {
      const d = descs[k]!;
      const isWrite = k >= readable.length;
      const len = isWrite ? writable[k - readable.length]! : readable[k]!.length;
      if (len > this.bufferSize) throw new RangeError(`GuestRing: buffer of ${len} bytes exceeds ${this.bufferSize}`);
      if (!isWrite) m.write(this.bufferAddress(d), readable[k]!);
      const at = this.descTable + 16 * d;
      m.writeU64(at, BigInt(this.bufferAddress(d)));
      m.writeU32(at + 8, len);
      m.writeU16(at + 12, (k + 1 < n ? DESC_F_NEXT : 0) | (isWrite ? DESC_F_WRITE : 0));
      m.writeU16(at + 14, k + 1 < n ? descs[k + 1]! : 0);
    }
    const head = descs[0]!;
    this.chains.set(head, descs);
    m.writeU16(this.availRing + 4 + 2 * (this.availIdx % this.size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    if (publish) this.publish();
    return head;
  }

  /** Makes every added chain visible to the device (writes avail.idx). */
  publish(): void {
    this.memory.writeU16(this.availRing + 2, this.availIdx);
  }

  /** Collects completed chains, frees their descriptors, and calls `each` with head, length and the chain's descriptors. */
  collect(each: (c: Completion, descriptors: readonly number[]) => void): number {
    const m = this.memory;
    const usedIdx = m.readU16(this.usedRing + 2);
    let n = 0;
    while (this.lastUsed !== usedIdx) {
      const at = this.usedRing + 4 + 8 * (this.lastUsed % this.size);
      const head = m.readU32(at);
      const len = m.readU32(at + 4);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      const descs = this.chains.get(head);
      if (descs === undefined) continue; // the device named a head we never gave it: ignore
      this.chains.delete(head);
      each({ head, len }, descs);
      for (const d of descs) this.free.push(d);
      n++;
    }
    return n;
  }
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
