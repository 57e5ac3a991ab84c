// The packed driver ring of tests: lib/driver/packed-guest-ring.ts (layout, well-formed lists,
// publishing, used descriptors, event suppression) plus the deliberately broken lists (VIRTIO 1.2
// §2.8.6, §2.8.7, §2.8.16, §2.8.17, §2.8.19) a guest driver must never make available: `addRaw()`
// writes descriptors exactly as given at the next ring positions, `writeAt()` one descriptor at any
// offset with any flags.

import { PACKED_F_AVAIL, PACKED_F_USED, PackedGuestRing } from '../../lib/driver/packed-guest-ring.js';
import type { PackedGuestRingOptions } from '../../lib/driver/packed-guest-ring.js';

export { PACKED_F_AVAIL, PACKED_F_INDIRECT, PACKED_F_NEXT, PACKED_F_USED, PACKED_F_WRITE, EVENT_DESC, EVENT_DISABLE, EVENT_ENABLE } from '../../lib/driver/packed-guest-ring.js';
export type PackedDriverRingOptions = PackedGuestRingOptions;

/** One ring descriptor written as given. */
export interface RawPackedDescriptor {
  /** Default: a fresh buffer of `len` bytes (INDIRECT without addr: the `indirectTable`). */
  addr?: number | bigint;
  /** Default 0 (INDIRECT: 16 * table entries). */
  len?: number;
  /** Buffer ID; default 0. */
  id?: number;
  /** NEXT / WRITE / INDIRECT bits; AVAIL and USED are added for the position unless `rawFlags`. */
  flags?: number;
  /** The whole flags field exactly as given (AVAIL/USED included). */
  rawFlags?: number;
}

/** One indirect table entry written as given. */
export interface RawPackedEntry {
  addr?: number | bigint;
  len?: number;
  flags?: number;
}

/** A driver's view of one packed virtqueue, able to break the ring on purpose. */
export class PackedDriverRing extends PackedGuestRing {
  constructor(memory: PackedGuestRing['memory'], options: PackedDriverRingOptions) {
    super(memory, options);
  }

  /**
   * Writes `descriptors` at the next ring positions (the first one's flags last), as given; they are
   * not tracked as outstanding lists. Returns the offset of the first. `indirectTable` entries go to
   * a fresh table that INDIRECT descriptors without `addr` point to.
   */
  addRaw(descriptors: readonly RawPackedDescriptor[], options: { indirectTable?: readonly RawPackedEntry[] } = {}): number {
    let tableAddr = 0;
    let tableLen = 0;
    if (options.indirectTable !== undefined) {
      tableLen = 16 * options.indirectTable.length;
      tableAddr = this.alloc(Math.max(tableLen, 16), 16);
      options.indirectTable.forEach((e, i) => this.writeEntry(tableAddr + 16 * i, e.addr ?? (e.len !== undefined && e.len > 0 ? this.alloc(e.len) : 0), e.len ?? 0, e.flags ?? 0));
    }
    const first = this.nextAvail;
    let firstFlags = 0;
    descriptors.forEach((d, i) => {
      const kindBits = d.flags ?? 0;
      const indirect = (kindBits & 4) !== 0 && d.addr === undefined && options.indirectTable !== undefined;
      const len = d.len ?? (indirect ? tableLen : 0);
      const addr = indirect ? tableAddr : (d.addr ?? (len > 0 ? this.alloc(len) : 0));
      const flags = d.rawFlags ?? (kindBits | this.availBits());
      this.writeDesc(this.nextAvail, addr, len, d.id ?? 0, flags, i !== 0);
      if (i === 0) firstFlags = flags;
      this.advanceAvail();
    });
    if (descriptors.length > 0) this.memory.writeU16(this.descAddr(first) + 14, firstFlags & 0xffff);
    return first;
  }

  /** Writes one descriptor at ring offset `offset` with exactly these fields (e.g. to re-offer one the device holds). */
  writeAt(offset: number, d: { addr?: number; len?: number; id?: number; flags: number }): void {
    this.writeDesc(offset, d.addr ?? 0, d.len ?? 0, d.id ?? 0, d.flags);
  }

  /** A Buffer ID not in use by any outstanding list (the one `addChain` would take next), or undefined. */
  peekFreeId(): number | undefined {
    return this.freeIds[0];
  }

  /** A Buffer ID some outstanding list uses, or undefined. */
  heldId(): number | undefined {
    for (const id of this.outstanding) return id;
    return undefined;
  }

  /**
   * Records descriptors written by `addRaw()` as one outstanding list of `slots` ring descriptors
   * with Buffer ID `id` (so `takeUsed()` skips the right number of descriptors when its used
   * descriptor comes back); `writable` are its writable buffers. For a list shaped as the device will
   * read it (first descriptor available, terminated, an ID not outstanding).
   */
  trackRaw(id: number, slots: number, buffers: { addr: number; len: number; write: boolean }[]): void {
    const i = this.freeIds.indexOf(id);
    if (i >= 0) this.freeIds.splice(i, 1);
    this.freeCount -= slots;
    this.madeAvailable += slots;
    this.lists.set(id, { slots, buffers });
    this.outstanding.add(id);
  }

  /** Moves the next available position on by `n` descriptors without writing any (a driver losing count). */
  skip(n: number): void {
    for (let k = 0; k < n; k++) this.advanceAvail();
  }

  /** Flips the Driver Ring Wrap Counter without moving (a driver that believes it wrapped). */
  flipWrap(): void {
    this.availWrap ^= 1;
  }

  /**
   * The position (offset | wrap << 15) just past the used descriptors the device has marked used
   * and the driver has not taken yet (what `usedEntries()` would walk over).
   */
  usedEnd(): number {
    let offset = this.nextUsed;
    let wrap = this.usedWrap;
    for (let guard = 0; guard < this.size; guard++) {
      const flags = this.memory.readU16(this.descAddr(offset) + 14);
      if (((flags & PACKED_F_AVAIL) !== 0 ? 1 : 0) !== wrap || ((flags & PACKED_F_USED) !== 0 ? 1 : 0) !== wrap) break;
      const id = this.memory.readU16(this.descAddr(offset) + 12);
      offset += this.outstanding.has(id) ? this.lists.get(id)!.slots : 1;
      if (offset >= this.size) {
        offset -= this.size;
        wrap ^= 1;
      }
    }
    return offset | (wrap << 15);
  }

  /** The Driver Ring Wrap Counter now (0 or 1). */
  get wrapCounter(): 0 | 1 {
    return this.availWrap === 1 ? 1 : 0;
  }

  /** AVAIL/USED bits marking a descriptor available under wrap counter `wrap`. */
  static availableFor(wrap: 0 | 1): number {
    return wrap === 1 ? PACKED_F_AVAIL : PACKED_F_USED;
  }
}
