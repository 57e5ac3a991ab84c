// The read cursor over a chain's device-readable buffers (VIRTIO 1.2 §2.7.4 message framing: the
// device MUST NOT assume any particular arrangement of descriptors, so every read works across
// descriptor and memory-region boundaries). §2.7.5.1: the device only reads device-readable buffers.
//
// Reads never throw for guest reasons: past the end of the readable part they return short counts
// or `undefined`. Nothing outside the chain's readable regions is ever touched.

import type { DescriptorChain } from './descriptor-chain.js';

/** Returned by `view(0)`: an empty view needs no guest address. */
const EMPTY = new Uint8Array(0);

/** A cursor over the readable part of one chain, owned by the chain (see `DescriptorChain.reader()`). */
export class ChainReader {
  private seg = 0; // current region (readable regions are chain regions 0..readableCount)
  private off = 0; // offset inside the current region
  private pos = 0; // bytes consumed

  /** @internal made by its chain. */
  constructor(private readonly chain: DescriptorChain) {}

  /** @internal back to the start (on every pop). */
  reset(): void {
    this.seg = 0;
    this.off = 0;
    this.pos = 0;
  }

  /** Starts over at the first readable byte. */
  rewind(): void {
    this.reset();
  }

  /** Readable bytes not yet consumed. */
  get remaining(): number {
    return this.chain.readableLength - this.pos;
  }

  /** Readable bytes consumed so far. */
  get position(): number {
    return this.pos;
  }

  /** The next byte, or `undefined` (nothing consumed) at the end of the readable part. */
  readU8(): number | undefined {
    const c = this.chain;
    if (this.pos >= c.readableLength) return undefined;
    this.settle();
    const v = c.memory.readU8(c.segAddr[this.seg]! + this.off);
    this.off++;
    this.pos++;
    return v;
  }

  /** The next little-endian u16, or `undefined` (nothing consumed) when fewer than 2 bytes remain. */
  readU16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const lo = this.readU8()!;
    return lo | (this.readU8()! << 8);
  }

  /** The next little-endian u32, or `undefined` (nothing consumed) when fewer than 4 bytes remain. */
  readU32(): number | undefined {
    if (this.remaining < 4) return undefined;
    const b0 = this.readU8()!;
    const b1 = this.readU8()!;
    const b2 = this.readU8()!;
    const b3 = this.readU8()!;
    return (b0 | (b1 << 8) | (b2 << 16)) + b3 * 0x1000000;
  }

  /** Copies up to `dest.length` bytes into `dest`; returns how many were copied (short at the end). */
  read(dest: Uint8Array): number {
    const c = this.chain;
    const n = Math.min(dest.length, this.remaining);
    let done = 0;
    while (done < n) {
      this.settle();
      const chunk = Math.min(c.segLen[this.seg]! - this.off, n - done);
      const addr = c.segAddr[this.seg]! + this.off;
      c.memory.read(addr, chunk === dest.length ? dest : dest.subarray(done, done + chunk));
      this.off += chunk;
      this.pos += chunk;
      done += chunk;
    }
    return n;
  }

  /** Consumes up to `n` bytes without reading them; returns how many were skipped. */
  skip(n: number): number {
    checkCount(n, 'skip');
    const c = this.chain;
    const total = Math.min(n, this.remaining);
    let left = total;
    while (left > 0) {
      this.settle();
      const chunk = Math.min(c.segLen[this.seg]! - this.off, left);
      this.off += chunk;
      this.pos += chunk;
      left -= chunk;
    }
    return total;
  }

  /**
   * A zero-copy view of the next `len` bytes, consuming them, when they lie in one descriptor and
   * one memory region; otherwise `undefined` and nothing is consumed (use `read()` then). The view
   * aliases guest memory: the guest may change it concurrently, so copy what must stay stable.
   */
  view(len: number): Uint8Array | undefined {
    checkCount(len, 'view');
    if (len === 0) return EMPTY;
    if (len > this.remaining) return undefined;
    this.settle();
    const c = this.chain;
    if (len > c.segLen[this.seg]! - this.off) return undefined;
    const v = c.memory.view(c.segAddr[this.seg]! + this.off, len);
    if (v === undefined) return undefined;
    this.off += len;
    this.pos += len;
    return v;
  }

  /** `view(remaining)`: all remaining readable bytes as one view, or `undefined`. */
  remainingView(): Uint8Array | undefined {
    return this.view(this.remaining);
  }

  /** Moves past exhausted regions; only called while bytes remain, so a region with bytes exists. */
  private settle(): void {
    const lens = this.chain.segLen;
    while (this.off >= lens[this.seg]!) {
      this.seg++;
      this.off = 0;
    }
  }
}

/** Counts come from device code: a bad one is a programmer error. */
export function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`${what}: length must be a non-negative integer, got ${String(n)}`);
  }
}
