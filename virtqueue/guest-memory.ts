// Guest-physical memory as the device sees it (VIRTIO 1.2 §2.7: every ring and buffer address the
// driver hands over is a guest-physical address).
//
// The device never holds a raw buffer: queue and device code take a `GuestMemoryAccess`, which
// `GuestMemory` implements and which an embedding hypervisor may implement over its own RAM
// (see lib/hypervisors/). Every access is bounds-checked; nothing outside the asked-for range is
// ever read or written.

/** Thrown by every `GuestMemoryAccess` method for a range that is not wholly inside guest memory. */
export class GuestMemoryError extends Error {
  /** Stable code for tests and diagnostics. */
  readonly code = 'memory.out-of-range' as const;
  constructor(
    /** First guest-physical address of the rejected access. */
    readonly address: number,
    /** Length in bytes of the rejected access. */
    readonly length: number,
    detail = 'outside guest memory',
  ) {
    super(`guest memory access [0x${hex(address)}, +${length}) ${detail}`);
    this.name = 'GuestMemoryError';
  }
}

/** Called with every guest-physical range the device wrote, after it wrote it. */
export type WriteObserver = (address: number, length: number) => void;

/**
 * What the device needs from guest memory. `GuestMemory` implements it; a hypervisor can supply
 * its own (v86's adapter does, to invalidate its JIT cache over every range the device writes).
 */
export interface GuestMemoryAccess {
  readU8(address: number): number;
  readU16(address: number): number;
  readU32(address: number): number;
  readU64(address: number): bigint;
  writeU8(address: number, value: number): void;
  writeU16(address: number, value: number): void;
  writeU32(address: number, value: number): void;
  writeU64(address: number, value: bigint): void;
  /** Copies `dest.length` bytes at `address` into `dest`. */
  read(address: number, dest: Uint8Array): void;
  /** Copies `src` to `address`. */
  write(address: number, src: Uint8Array): void;
  /**
   * A zero-copy view of `[address, address + length)` when the range lies in one region, else
   * `undefined` (the range spans two adjacent regions). Throws `GuestMemoryError` if any byte is
   * outside memory. A caller that writes through the view must then call `wrote()`.
   */
  view(address: number, length: number): Uint8Array | undefined;
  /** True when the whole range is inside guest memory (possibly across adjacent regions). */
  contains(address: number, length: number): boolean;
  /** Reports a write the caller made through a view, so the embedder sees every written range. */
  wrote(address: number, length: number): void;
  /**
   * Changes whenever views returned earlier may no longer alias guest memory (an embedder whose
   * RAM buffer can be replaced bumps it). Holders of long-lived views re-fetch them on change.
   */
  readonly generation: number;
  /**
   * Optional, for hot paths: the region holding all of `[address, address + length)`, or
   * `undefined` when the range is not wholly inside one region (it spans two, or lies outside).
   * The same long-lived object on every call (nothing allocated), valid until `generation`
   * changes. A caller that writes into `bytes` must then call `wrote()`. Without it, callers use
   * `view()`, which makes a view per call.
   */
  regionAt?(address: number, length: number): GuestRegion | undefined;
}

/**
 * One region of guest memory addressed directly: guest-physical address `start` is `bytes[0]`
 * (and `data`'s offset 0). Device code touches only ranges it validated (a chain's regions).
 */
export interface GuestRegion {
  readonly start: number;
  /** Exclusive end address. */
  readonly end: number;
  readonly bytes: Uint8Array;
  readonly data: DataView;
}

/**
 * One region of guest-physical memory. A SharedArrayBuffer region is guest RAM another thread (a
 * vCPU worker running the driver) uses at the same time: the queues then access the ring words
 * that order the two sides with `Atomics` (ring-index.ts); buffers stay plain accesses.
 */
export interface GuestMemoryRegion {
  guestAddress: number;
  buffer: ArrayBuffer | SharedArrayBuffer;
}

/** Copies up to this many bytes with a loop instead of a subarray view (no allocation per call). */
const SMALL_COPY = 32;

/** Largest guest-physical address + 1 the model accepts: numbers are exact to 2^53. */
const ADDRESS_LIMIT = 2 ** 53;

type Region = GuestRegion;

/**
 * Guest memory made of one or more regions at guest-physical addresses, possibly with holes.
 * Little-endian accessors; `view()`/`bytes()` alias the backing buffer without copying.
 */
export class GuestMemory implements GuestMemoryAccess {
  private readonly regions: Region[];
  /** The first region, for the one-region fast path. */
  private readonly r0: Region;
  private observer: WriteObserver | null = null;
  readonly generation = 0;

  /** One zero-filled region of `size` bytes at guest-physical address 0. */
  constructor(size: number);
  /** @internal used by fromRegions */
  constructor(size: number, regions: GuestMemoryRegion[]);
  constructor(size: number, regions?: GuestMemoryRegion[]) {
    const list = regions ?? [{ guestAddress: 0, buffer: new ArrayBuffer(checkSize(size)) }];
    this.regions = buildRegions(list);
    this.r0 = this.regions[0]!;
  }

  /** Guest memory from several regions (sorted by address, non-overlapping, holes allowed). */
  static fromRegions(regions: GuestMemoryRegion[]): GuestMemory {
    if (!Array.isArray(regions) || regions.length === 0) {
      throw new TypeError('GuestMemory.fromRegions: regions must be a non-empty array of { guestAddress, buffer }');
    }
    return new GuestMemory(0, regions);
  }

  /** Total bytes over all regions. */
  get size(): number {
    let n = 0;
    for (const r of this.regions) n += r.end - r.start;
    return n;
  }

  /** The regions as (guestAddress, length) pairs, ascending. */
  layout(): { guestAddress: number; length: number }[] {
    return this.regions.map((r) => ({ guestAddress: r.start, length: r.end - r.start }));
  }

  /** Sees every range written through this object (accessors, `write`, and `wrote()` reports). */
  setWriteObserver(observer: WriteObserver | null): void {
    this.observer = observer;
  }

  readU8(address: number): number {
    const r = this.regionFor(address, 1);
    return r.bytes[address - r.start]!;
  }
  readU16(address: number): number {
    const r = this.regionFor(address, 2);
    return r.data.getUint16(address - r.start, true);
  }
  readU32(address: number): number {
    const r = this.regionFor(address, 4);
    return r.data.getUint32(address - r.start, true);
  }
  readU64(address: number): bigint {
    const r = this.regionFor(address, 8);
    return r.data.getBigUint64(address - r.start, true);
  }
  writeU8(address: number, value: number): void {
    const r = this.regionFor(address, 1);
    r.bytes[address - r.start] = value;
    if (this.observer !== null) this.observer(address, 1);
  }
  writeU16(address: number, value: number): void {
    const r = this.regionFor(address, 2);
    r.data.setUint16(address - r.start, value, true);
    if (this.observer !== null) this.observer(address, 2);
  }
  writeU32(address: number, value: number): void {
    const r = this.regionFor(address, 4);
    r.data.setUint32(address - r.start, value >>> 0, true);
    if (this.observer !== null) this.observer(address, 4);
  }
  writeU64(address: number, value: bigint): void {
    const r = this.regionFor(address, 8);
    r.data.setBigUint64(address - r.start, BigInt.asUintN(64, value), true);
    if (this.observer !== null) this.observer(address, 8);
  }

  read(address: number, dest: Uint8Array): void {
    const len = dest.length;
    const r = this.find(address, len);
    if (r === undefined) {
      this.readSpanning(address, dest);
      return;
    }
    const off = address - r.start;
    if (len <= SMALL_COPY) {
      // A byte loop for headers and such: subarray() would allocate a view object per call.
      const b = r.bytes;
      for (let i = 0; i < len; i++) dest[i] = b[off + i]!;
      return;
    }
    dest.set(r.bytes.subarray(off, off + len));
  }

  write(address: number, src: Uint8Array): void {
    const len = src.length;
    const r = this.find(address, len);
    if (r !== undefined) r.bytes.set(src, address - r.start);
    else this.writeSpanning(address, src);
    if (this.observer !== null && len > 0) this.observer(address, len);
  }

  view(address: number, length: number): Uint8Array | undefined {
    const r = this.find(address, length);
    if (r !== undefined) {
      const off = address - r.start;
      return r.bytes.subarray(off, off + length);
    }
    if (!this.contains(address, length)) throw new GuestMemoryError(address, length);
    return undefined;
  }

  /** A view of the range when it lies in one region, else a copy (writes to a copy do not reach guest memory). */
  bytes(address: number, length: number): Uint8Array {
    const v = this.view(address, length);
    if (v !== undefined) return v;
    const copy = new Uint8Array(length);
    this.read(address, copy);
    return copy;
  }

  contains(address: number, length: number): boolean {
    if (!validRange(address, length)) return false;
    let at = address;
    const end = address + length;
    for (const r of this.regions) {
      if (at >= end) break;
      if (at < r.start) return false; // a hole before this region
      if (at < r.end) at = r.end;
    }
    return at >= end;
  }

  wrote(address: number, length: number): void {
    if (this.observer !== null && length > 0) this.observer(address, length);
  }

  regionAt(address: number, length: number): GuestRegion | undefined {
    return this.find(address, length);
  }

  /** The region holding the whole range, or undefined (spans regions, or outside). */
  private find(address: number, length: number): Region | undefined {
    const r0 = this.r0;
    if (address >= r0.start && length >= 0 && address + length <= r0.end) return r0;
    if (!validRange(address, length)) return undefined;
    const end = address + length;
    for (let i = 1; i < this.regions.length; i++) {
      const r = this.regions[i]!;
      if (address >= r.start && end <= r.end) return r;
    }
    return undefined;
  }

  private regionFor(address: number, width: number): Region {
    const r = this.find(address, width);
    if (r === undefined) throw new GuestMemoryError(address, width);
    return r;
  }

  // The spanning paths live in their own methods: a closure in read()/write() themselves would be
  // allocated on every call, even when the range lies in one region (measured: ~40 B per call).
  private readSpanning(address: number, dest: Uint8Array): void {
    this.spanning(address, dest.length, (chunk, at) => dest.set(chunk, at));
  }

  private writeSpanning(address: number, src: Uint8Array): void {
    this.spanning(address, src.length, (chunk, at) => chunk.set(src.subarray(at, at + chunk.length)));
  }

  /** Walks a range that crosses adjacent regions; throws if any byte is in a hole. */
  private spanning(address: number, length: number, each: (chunk: Uint8Array, offsetInRange: number) => void): void {
    if (!this.contains(address, length)) throw new GuestMemoryError(address, length);
    let at = address;
    const end = address + length;
    for (const r of this.regions) {
      if (at >= end) break;
      if (at >= r.end) continue;
      const stop = Math.min(end, r.end);
      each(r.bytes.subarray(at - r.start, stop - r.start), at - address);
      at = stop;
    }
  }
}

function validRange(address: number, length: number): boolean {
  return (
    Number.isInteger(address) && Number.isInteger(length) && address >= 0 && length >= 0 && address + length <= ADDRESS_LIMIT
  );
}

function checkSize(size: number): number {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new RangeError(`GuestMemory: size must be a positive integer number of bytes, got ${String(size)}`);
  }
  return size;
}

function buildRegions(list: GuestMemoryRegion[]): Region[] {
  const out: Region[] = list.map((reg, i) => {
    if (reg === null || typeof reg !== 'object') throw new TypeError(`GuestMemory: region ${i} must be { guestAddress, buffer }`);
    const { guestAddress, buffer } = reg;
    if (!(buffer instanceof ArrayBuffer) && !(typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(`GuestMemory: region ${i} buffer must be an ArrayBuffer or SharedArrayBuffer`);
    }
    if (!Number.isSafeInteger(guestAddress) || guestAddress < 0) {
      throw new RangeError(`GuestMemory: region ${i} guestAddress must be a non-negative integer, got ${String(guestAddress)}`);
    }
    if (buffer.byteLength === 0) throw new RangeError(`GuestMemory: region ${i} is empty`);
    if (guestAddress + buffer.byteLength > ADDRESS_LIMIT) {
      throw new RangeError(`GuestMemory: region ${i} ends past 2^53`);
    }
    return {
      start: guestAddress,
      end: guestAddress + buffer.byteLength,
      bytes: new Uint8Array(buffer),
      data: new DataView(buffer),
    };
  });
  out.sort((a, b) => a.start - b.start);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.start < out[i - 1]!.end) {
      throw new RangeError(
        `GuestMemory: regions overlap at 0x${hex(out[i]!.start)} (previous region ends at 0x${hex(out[i - 1]!.end)})`,
      );
    }
  }
  return out;
}

function hex(n: number): string {
  return Number.isFinite(n) && n >= 0 ? n.toString(16) : String(n);
}
