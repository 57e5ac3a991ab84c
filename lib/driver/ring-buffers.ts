// What the split and the packed driver ring (guest-ring.ts, packed-guest-ring.ts) do alike with
// the buffers of their chains: place them at a given address or in a bump-allocated heap (which
// restarts once the device holds nothing), write their initial data, read them back after the
// device used them, and consume used entries (takeUsed / collect) over the ring's own way of
// reading its used ring.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import type { BufferSpec, DriverBuffer, UsedEntry } from './guest-ring.js';

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

/** How a ring names itself and its chains in errors ('GuestRing' / 'chain', 'PackedGuestRing' / 'list'). */
export interface RingLabel {
  ring: string;
  unit: string;
}

/** The buffer side of a driver ring in `memory`; the ring supplies its chains' buffers and reads its used ring. */
export abstract class RingBuffers {
  readonly heapStart: number;
  readonly heapEnd: number;
  private heapTop: number;

  /** The buffer heap is `[heapStart, heapEnd)`, its start aligned to 64; without `heapEnd`, to the end of the memory region it starts in. */
  protected constructor(
    readonly memory: GuestMemoryAccess,
    private readonly label: RingLabel,
    heapStart: number,
    heapEnd: number | undefined,
  ) {
    this.heapStart = align(heapStart, 64);
    this.heapEnd = heapEnd ?? regionEnd(memory, this.heapStart, label.ring);
    this.heapTop = this.heapStart;
  }

  /** The buffers of chain `id` as handed to the device. */
  abstract buffers(id: number): DriverBuffer[];

  /** Allocates `len` bytes of buffer space (bump allocator; it restarts when no chain is outstanding). */
  alloc(len: number, alignment = 8): number {
    const addr = align(this.heapTop, alignment);
    if (addr + len > this.heapEnd) {
      throw new GuestRingError('heap-exhausted', `buffer heap exhausted (need ${len} at 0x${addr.toString(16)}, heap ends at 0x${this.heapEnd.toString(16)})`);
    }
    this.heapTop = addr + len;
    return addr;
  }

  /** A copy of the bytes of buffer `i` of chain `id`. */
  bufferBytes(id: number, i: number): Uint8Array {
    const b = this.buffers(id)[i];
    if (b === undefined) throw new Error(`${this.label.ring}.bufferBytes: ${this.label.unit} ${id} has no buffer ${i}`);
    const out = new Uint8Array(b.len);
    this.memory.read(b.addr, out);
    return out;
  }

  /** The first `len` bytes of the writable buffers of chain `id`, concatenated (what the device wrote). */
  writtenBytes(id: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let at = 0;
    for (const b of this.buffers(id)) {
      if (!b.write || at >= len) continue;
      const n = Math.min(b.len, len - at);
      this.memory.read(b.addr, out.subarray(at, at + n));
      at += n;
    }
    if (at < len) throw new Error(`${this.label.ring}.writtenBytes: ${this.label.unit} ${id} has only ${at} writable bytes`);
    return out;
  }

  /** Consumes the used entries published so far and frees what each completes. Returns every entry,
   *  also one naming a chain this ring does not have outstanding. */
  takeUsed(): UsedEntry[] {
    const out: UsedEntry[] = [];
    this.consumeUsed((e) => void out.push(e));
    return out;
  }

  /** Like `takeUsed()`, but calls `each` only for the chains it completes (an entry naming a chain
   *  this ring does not have outstanding is skipped, as a driver ignores it); returns how many. */
  collect(each: (entry: UsedEntry, buffers: readonly DriverBuffer[]) => void): number {
    let n = 0;
    this.consumeUsed((e, buffers) => {
      if (buffers === null) return;
      each(e, buffers);
      n++;
    });
    return n;
  }

  /** Consumes the used entries: frees what each completes and visits it with that chain's buffers
   *  (null when it completes none); restarts the heap once nothing is outstanding. */
  protected abstract consumeUsed(visit: (e: UsedEntry, buffers: readonly DriverBuffer[] | null) => void): void;

  /** Buffer `b` of a chain at `addr`, its `data` written there. */
  protected fillBuffer(b: BufferSpec, addr: number): DriverBuffer {
    if (b.data !== undefined) {
      if (b.data.length > b.len) throw new Error(`${this.label.ring}: data (${b.data.length} bytes) longer than the buffer (${b.len})`);
      this.memory.write(addr, Uint8Array.from(b.data));
    }
    return { addr, len: b.len, write: b.write === true };
  }

  /** Starts the heap over (nothing outstanding uses it any more). */
  protected restartHeap(): void {
    this.heapTop = this.heapStart;
  }
}

export function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

function regionEnd(memory: GuestMemoryAccess, addr: number, ring: string): number {
  const layout = (memory as { layout?: () => { guestAddress: number; length: number }[] }).layout;
  if (typeof layout !== 'function') throw new Error(`${ring}: give heapEnd for a memory without layout()`);
  for (const r of layout.call(memory)) {
    if (addr >= r.guestAddress && addr < r.guestAddress + r.length) return r.guestAddress + r.length;
  }
  throw new Error(`${ring}: heap start 0x${addr.toString(16)} is not inside guest memory`);
}
