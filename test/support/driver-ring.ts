// The driver ring of tests, fuzzing, benchmarks and the conformance suite: lib/driver/guest-ring.ts
// (layout, well-formed direct and indirect chains, publishing, the used ring, notification fields)
// plus the deliberately broken rings (VIRTIO 1.2 §2.7.5, §2.7.5.3, §2.7.13) a guest driver must
// never build: `addRaw()` writes descriptors exactly as given (cycles, out-of-range next or head,
// nested or malformed indirect tables, buffers outside memory or over the rings) and
// `bumpAvailIdx()` moves `avail.idx` without placing heads.

import { GuestRing, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../lib/driver/guest-ring.js';
import type { DriverBuffer, GuestRingOptions } from '../../lib/driver/guest-ring.js';

export { GuestRingError } from '../../lib/driver/guest-ring.js';
export type { BufferSpec, DriverBuffer, UsedEntry } from '../../lib/driver/guest-ring.js';
export type DriverRingOptions = GuestRingOptions;

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

/** A driver's view of one split virtqueue in `memory`, able to break the ring on purpose. */
export class DriverRing extends GuestRing {
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
        this.writeDesc(tableAddr + 16 * indices[i]!, addr, d.len ?? 0, d.flags ?? 0, rawNext(d, indices, i));
      });
    }
    const indices = descriptors.map((d) => {
      if (d.index !== undefined) {
        this.claimDesc(d.index);
        return d.index;
      }
      return this.takeDesc();
    });
    descriptors.forEach((d, i) => {
      const flags = d.flags ?? 0;
      let addr: number | bigint;
      let len: number;
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0 && d.addr === undefined && options.indirectTable !== undefined) {
        addr = tableAddr;
        len = d.len ?? tableLen;
      } else {
        addr = this.rawAddr(d, bufs);
        len = d.len ?? 0;
      }
      this.writeDesc(this.descAddr(indices[i]!), addr, len, flags, rawNext(d, indices, i));
    });
    const head = options.head ?? indices[0] ?? 0;
    this.record(head, [], bufs, false);
    this.placeHead(head, options.publish ?? true);
    return head;
  }

  /** Moves `avail.idx` by `n` without placing heads (an index jump when n > size). */
  bumpAvailIdx(n: number): void {
    this.moveAvailIdx(n);
  }

  private rawAddr(d: RawDescriptor, bufs: DriverBuffer[]): number | bigint {
    const len = d.len ?? 0;
    const addr = d.addr ?? (len > 0 ? this.alloc(len) : 0);
    bufs.push({ addr: Number(addr), len, write: ((d.flags ?? 0) & VIRTQ_DESC_F_WRITE) !== 0 });
    return addr;
  }
}

function rawNext(d: RawDescriptor, indices: readonly number[], i: number): number {
  if (d.next !== undefined) return d.next;
  if (((d.flags ?? 0) & VIRTQ_DESC_F_NEXT) === 0) return 0;
  return indices[i + 1] ?? 0;
}
