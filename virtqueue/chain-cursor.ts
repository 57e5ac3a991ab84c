// What the read and write cursors over a chain share (VIRTIO 1.2 §2.7.4 message framing: the
// device MUST NOT assume any particular arrangement of descriptors, so a cursor moves across
// descriptor and memory-region boundaries): the position, the walk over regions, skipping, and
// zero-copy views. ChainReader covers the readable regions, ChainWriter the writable ones.

import type { DescriptorChain } from './descriptor-chain.js';
import type { GuestRegion } from './guest-memory.js';

/** Returned by `view(0)`: an empty view needs no guest address. */
export const EMPTY_VIEW = new Uint8Array(0);

/** Counts come from device code: a bad one is a programmer error. */
export function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`${what}: length must be a non-negative integer, got ${String(n)}`);
  }
}

export abstract class ChainCursor {
  protected slot = 0; // chain region the cursor is in
  protected off = 0; // offset inside it
  protected pos = 0; // bytes consumed (read, written or skipped)
  private limit = 0; // bytes the cursor covers
  /** After `span()` returned true: the memory region holding the spanned bytes… */
  spanRegion: GuestRegion | null = null;
  /** …and their offset in `spanRegion.bytes` (and `spanRegion.data`). */
  spanOffset = 0;

  /** @internal made by its chain. */
  constructor(protected readonly chain: DescriptorChain) {}

  /** Chain region where the cursor's part starts. */
  protected abstract firstSlot(): number;
  /** Bytes of the cursor's part. */
  protected abstract partLength(): number;

  /** @internal back to the start (on every pop, after the walk filled the regions). */
  reset(): void {
    this.slot = this.firstSlot();
    this.off = 0;
    this.pos = 0;
    this.limit = this.partLength();
  }

  /**
   * @internal `reset()` with the part's first region and length given (the chain's walk knows them):
   * no call to the subclass per pop. A writer's view range is empty here (pushUsed / unpop report
   * and clear it before the chain object is walked again).
   */
  restart(firstSlot: number, length: number): void {
    this.slot = firstSlot;
    this.off = 0;
    this.pos = 0;
    this.limit = length;
  }

  /** Bytes of the cursor's part not yet consumed. */
  get remaining(): number {
    return this.limit - this.pos;
  }

  /** Consumes up to `n` bytes without touching them; returns how many. */
  skip(n: number): number {
    checkCount(n, 'skip');
    const lens = this.chain.segLen;
    const total = Math.min(n, this.remaining);
    let left = total;
    while (left > 0) {
      const slot = this.settle();
      const chunk = Math.min(lens[slot]! - this.off, left);
      this.advance(chunk);
      left -= chunk;
    }
    return total;
  }

  /**
   * A zero-copy view of the next `len` bytes, consuming them, when they lie in one descriptor and
   * one memory region; otherwise `undefined` and nothing is consumed. It aliases guest memory.
   */
  view(len: number): Uint8Array | undefined {
    checkCount(len, 'view');
    if (len === 0) return EMPTY_VIEW;
    if (len > this.remaining) return undefined;
    const c = this.chain;
    const slot = this.settle();
    if (len > c.segLen[slot]! - this.off) return undefined;
    const v = c.memory.view(c.segAddr[slot]! + this.off, len);
    if (v === undefined) return undefined;
    this.advance(len);
    return v;
  }

  /**
   * The allocation-free `view()`: when the next `len` (> 0) bytes lie in one descriptor and one
   * memory region the memory names (`GuestMemoryAccess.regionAt`), consumes them and sets
   * `spanRegion` / `spanOffset` to where they are; otherwise false and nothing is consumed (use
   * `view()` or a copy). The region aliases guest memory: only the spanned bytes are the chain's.
   */
  span(len: number): boolean {
    if (!(len > 0) || len > this.remaining) return false;
    const c = this.chain;
    const slot = this.settle();
    const off = this.off;
    if (len > c.segLen[slot]! - off) return false;
    const r = this.regionOf(slot);
    if (r === null) return false;
    this.spanRegion = r;
    this.spanOffset = c.segAddr[slot]! + off - r.start;
    this.advance(len);
    return true;
  }

  /**
   * The memory region holding chain region `slot` whole: the one the walk looked up, else looked
   * up now; null when the memory names none (no `regionAt`, the range spans two regions) or its
   * generation changed since the pop (a remapped memory: the accessors then decide).
   */
  protected regionOf(slot: number): GuestRegion | null {
    const c = this.chain;
    const m = c.memory;
    if (m.generation !== c.generation) return null;
    const r = c.segRegion[slot];
    if (r !== null && r !== undefined) return r;
    if (m.regionAt === undefined) return null;
    const found = m.regionAt(c.segAddr[slot]!, c.segLen[slot]!) ?? null;
    c.segRegion[slot] = found;
    return found;
  }

  protected advance(n: number): void {
    this.off += n;
    this.pos += n;
  }

  /** Moves past exhausted regions and returns the current one. Only called while bytes remain,
   *  so a region with bytes exists. */
  protected settle(): number {
    const lens = this.chain.segLen;
    while (this.off >= lens[this.slot]!) {
      this.slot++;
      this.off = 0;
    }
    return this.slot;
  }
}
