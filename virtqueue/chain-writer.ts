// The write cursor over a chain's device-writable buffers (VIRTIO 1.2 §2.7.4 message framing;
// §2.7.5.1: the device MUST NOT write to device-readable buffers; §2.7.8.2: the used `len` counts
// bytes written from the start of the first device-writable buffer).
//
// Writes never throw for guest reasons: past the end of the writable part they write short or
// nothing. Nothing outside the chain's writable regions is ever touched. Writes through
// `GuestMemoryAccess` methods are seen by the embedder's write observer directly; writes through
// views handed out by `view()` are reported with `memory.wrote()` when the chain is given back
// (`pushUsed()` or `unpop()`), i.e. after the caller wrote them and before the driver can see them.

import { ChainCursor, checkCount } from './chain-cursor.js';

/** A cursor over the writable part of one chain, owned by the chain (see `DescriptorChain.writer()`). */
export class ChainWriter extends ChainCursor {
  private viewLo = 0; // [viewLo, viewHi): writable offsets handed out as views, not yet reported
  private viewHi = 0;

  protected firstSlot(): number {
    return this.chain.readableCount; // writable regions follow the readable ones
  }
  protected partLength(): number {
    return this.chain.writableLength;
  }

  /** @internal back to the start (on every pop). */
  override reset(): void {
    super.reset();
    this.viewLo = 0;
    this.viewHi = 0;
  }

  /** Bytes written (or skipped) so far: the used length to report if the device stops here. */
  get written(): number {
    return this.pos;
  }

  /** Copies as much of `src` as fits; returns how many bytes were written. */
  write(src: Uint8Array): number {
    const c = this.chain;
    const n = Math.min(src.length, this.remaining);
    let done = 0;
    while (done < n) {
      const slot = this.settle();
      const chunk = Math.min(c.segLen[slot]! - this.off, n - done);
      const part = chunk === src.length ? src : src.subarray(done, done + chunk);
      const r = this.regionOf(slot);
      const addr = c.segAddr[slot]! + this.off;
      if (r === null) c.memory.write(addr, part);
      else {
        // The region the walk checked: no lookup; the embedder still sees the range written.
        r.bytes.set(part, addr - r.start);
        c.memory.wrote(addr, chunk);
      }
      this.advance(chunk);
      done += chunk;
    }
    return n;
  }

  /** Writes one byte; false (nothing written) when the writable part is full. */
  writeU8(value: number): boolean {
    if (this.remaining <= 0) return false;
    const slot = this.settle();
    const c = this.chain;
    const addr = c.segAddr[slot]! + this.off;
    const r = this.regionOf(slot);
    if (r === null) c.memory.writeU8(addr, value & 0xff);
    else {
      r.bytes[addr - r.start] = value; // the region the walk checked, as write() does
      c.memory.wrote(addr, 1);
    }
    this.advance(1);
    return true;
  }

  /** Writes a little-endian u16; false (nothing written) when fewer than 2 bytes remain. */
  writeU16(value: number): boolean {
    if (this.remaining < 2) return false;
    this.writeU8(value);
    this.writeU8(value >>> 8);
    return true;
  }

  /**
   * Writes one byte at writable offset `offset` without moving the cursor (e.g. a field patched
   * after the payload). False (nothing written) when it does not fit.
   */
  writeU8At(offset: number, value: number): boolean {
    checkCount(offset, 'writeU8At');
    if (offset >= this.chain.writableLength) return false;
    this.chain.memory.writeU8(this.addressOf(offset), value & 0xff);
    return true;
  }

  /**
   * Writes a little-endian u16 at writable offset `offset` without moving the cursor (e.g. a header
   * field known only after the payload). False (nothing written) when it does not fit.
   */
  writeU16At(offset: number, value: number): boolean {
    checkCount(offset, 'writeU16At');
    if (offset + 2 > this.chain.writableLength) return false;
    const m = this.chain.memory;
    m.writeU8(this.addressOf(offset), value & 0xff);
    m.writeU8(this.addressOf(offset + 1), (value >>> 8) & 0xff);
    return true;
  }

  /**
   * A zero-copy writable view of the next `len` bytes, advancing the cursor, when they lie in one
   * descriptor and one memory region; otherwise `undefined` and nothing moves (skipped bytes count
   * as written, see `skip()`). The caller fills the view before giving the chain back; the range is
   * reported to `memory.wrote()` then.
   */
  override view(len: number): Uint8Array | undefined {
    const start = this.pos;
    const v = super.view(len);
    if (v !== undefined && len > 0) {
      if (this.viewHi === this.viewLo) this.viewLo = start;
      this.viewHi = this.pos;
    }
    return v;
  }

  /**
   * `span()` for writing: the caller writes the spanned bytes into `spanRegion.bytes` before giving
   * the chain back; the range is reported to `memory.wrote()` then, as for `view()`.
   */
  override span(len: number): boolean {
    const start = this.pos;
    if (!super.span(len)) return false;
    if (this.viewHi === this.viewLo) this.viewLo = start;
    this.viewHi = this.pos;
    return true;
  }

  /** @internal reports `[viewLo, viewHi)` region by region to `memory.wrote()`. */
  flushViewWrites(): void {
    let lo = this.viewLo;
    const hi = this.viewHi;
    if (hi <= lo) return;
    const c = this.chain;
    const first = c.readableCount;
    const count = c.writableCount;
    let start = 0; // writable offset of region i
    for (let i = 0; i < count && lo < hi; i++) {
      const len = c.segLen[first + i]!;
      const end = start + len;
      if (lo < end) {
        const stop = Math.min(hi, end);
        c.memory.wrote(c.segAddr[first + i]! + (lo - start), stop - lo);
        lo = stop;
      }
      start = end;
    }
    this.viewLo = 0;
    this.viewHi = 0;
  }

  /** Guest address of writable offset `offset` (< writableLength). */
  private addressOf(offset: number): number {
    const c = this.chain;
    const first = c.readableCount;
    let o = offset;
    let i = first;
    while (o >= c.segLen[i]!) {
      o -= c.segLen[i]!;
      i++;
    }
    return c.segAddr[i]! + o;
  }
}
