// The read cursor over a chain's device-readable buffers (VIRTIO 1.2 §2.7.4 message framing;
// §2.7.5.1: the device only reads device-readable buffers). Position, region walk, skip and views
// are ChainCursor's.
//
// Reads never throw for guest reasons: past the end of the readable part they return short counts
// or `undefined`. Nothing outside the chain's readable regions is ever touched.

import { ChainCursor } from './chain-cursor.js';

/** Copies up to this many bytes with a loop instead of a subarray view (no allocation per call). */
const SMALL_COPY = 32;

/** A cursor over the readable part of one chain, owned by the chain (see `DescriptorChain.reader()`). */
export class ChainReader extends ChainCursor {
  protected firstSlot(): number {
    return 0; // readable regions come first
  }
  protected partLength(): number {
    return this.chain.readableLength;
  }

  /** Starts over at the first readable byte. */
  rewind(): void {
    this.reset();
  }

  /** Readable bytes consumed so far. */
  get position(): number {
    return this.pos;
  }

  /** The next byte, or `undefined` (nothing consumed) at the end of the readable part. */
  readU8(): number | undefined {
    if (this.remaining <= 0) return undefined;
    const c = this.chain;
    const slot = this.settle();
    const v = c.memory.readU8(c.segAddr[slot]! + this.off);
    this.advance(1);
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
      const slot = this.settle();
      const chunk = Math.min(c.segLen[slot]! - this.off, n - done);
      const r = this.regionOf(slot);
      if (r === null) {
        c.memory.read(c.segAddr[slot]! + this.off, chunk === dest.length ? dest : dest.subarray(done, done + chunk));
      } else {
        // The region the walk checked: no lookup. Small copies byte by byte (a view would be an allocation).
        const from = c.segAddr[slot]! + this.off - r.start;
        const b = r.bytes;
        if (chunk <= SMALL_COPY) for (let i = 0; i < chunk; i++) dest[done + i] = b[from + i]!;
        else dest.set(b.subarray(from, from + chunk), done);
      }
      this.advance(chunk);
      done += chunk;
    }
    return n;
  }

  /** `view(remaining)`: all remaining readable bytes as one view, or `undefined`. */
  remainingView(): Uint8Array | undefined {
    return this.view(this.remaining);
  }
}
