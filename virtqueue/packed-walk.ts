// Walking and validating one packed-ring list (VIRTIO 1.2 §2.8.6 descriptor chaining, §2.8.7
// indirect tables, §2.8.17 / §2.8.19 the driver's scatter-gather rules, §2.8.4 element addresses).
// The checks and their order are the packed validation list in queue-errors.ts.
//
// Every descriptor field is read exactly once into a local (guest memory may be shared with running
// vCPUs). Ring descriptors come from the queue's cached view of the descriptor ring; indirect
// entries through the memory accessors (no allocation per chain). The walk is bounded by the queue
// size: at most `size` ring descriptors, or one ring descriptor and a table of at most `size` entries.

import { le32 as u32 } from '../lib/base/endian.js';
import type { GuestMemoryAccess } from './guest-memory.js';
import type { DescriptorChain } from './descriptor-chain.js';
import type { PackedChainError } from './queue-errors.js';
import {
  PACKED_DESC_ADDR,
  PACKED_DESC_F_INDIRECT,
  PACKED_DESC_F_NEXT,
  PACKED_DESC_F_WRITE,
  PACKED_DESC_FLAGS,
  PACKED_DESC_ID,
  PACKED_DESC_LEN,
  PACKED_DESC_SIZE,
  isAvailable,
} from './packed-layout.js';

/** A list's total length must stay below this (§2.8.4; the used length is 32-bit). */
const MAX_CHAIN_BYTES = 2 ** 32;
const TWO_POW_32 = 2 ** 32;

/** Walks lists of one packed queue. The queue owns it and refreshes `ring` when memory is remapped. */
export class PackedWalker {
  /** Cached view of the descriptor ring. */
  ring: DataView;
  /** One indirect entry, copied here when one of its fields straddles two memory regions. */
  private readonly scratch = new Uint8Array(PACKED_DESC_SIZE);
  private entryAddr = 0;
  private entryLen = 0;
  private entryFlags = 0;

  constructor(
    private readonly memory: GuestMemoryAccess,
    ring: DataView,
    private readonly size: number,
    private readonly indirectDesc: boolean,
  ) {
    this.ring = ring;
    this.hasRegionAt = typeof memory.regionAt === 'function';
  }

  /** The memory names the region holding a range (`regionAt`), so a region needs one lookup. */
  private readonly hasRegionAt: boolean;

  /**
   * Fills `chain` from the list whose first descriptor is at ring offset `head` with wrap counter
   * `wrap` and the already-read (available) `firstFlags`; `free` is how many ring descriptors the
   * device does not hold (>= 1). On success `chain.ringSlots` is the list's descriptor count in the
   * ring and `chain.headIndex` its Buffer ID.
   */
  walk(chain: DescriptorChain, head: number, wrap: number, firstFlags: number, free: number): PackedChainError | null {
    const memory = this.memory;
    const ring = this.ring;
    const size = this.size;
    chain.begin(head, memory);
    let offset = head;
    let w = wrap;
    let flags = firstFlags;
    let slots = 0;
    let total = 0;
    let writable = false;
    for (;;) {
      const o = offset * PACKED_DESC_SIZE;
      const addr = ring.getUint32(o + PACKED_DESC_ADDR, true) + ring.getUint32(o + PACKED_DESC_ADDR + 4, true) * TWO_POW_32;
      const len = ring.getUint32(o + PACKED_DESC_LEN, true);
      const id = ring.getUint16(o + PACKED_DESC_ID, true);
      slots++;
      if ((flags & PACKED_DESC_F_INDIRECT) !== 0) {
        if (!this.indirectDesc) return { code: 'packed.indirect-not-negotiated', head, index: offset };
        if (slots > 1 || (flags & PACKED_DESC_F_NEXT) !== 0) return { code: 'packed.indirect-in-chain', head, index: offset };
        if (len === 0 || len % PACKED_DESC_SIZE !== 0) return { code: 'packed.indirect-bad-length', head, index: offset, length: len };
        if (!memory.contains(addr, len)) return { code: 'packed.indirect-outside-memory', head, index: offset, addr, len };
        const entries = len / PACKED_DESC_SIZE;
        if (entries > size) return { code: 'packed.too-many-descriptors', head, count: entries };
        const err = this.walkTable(chain, head, offset, addr, len, entries);
        if (err !== null) return err;
        chain.finish(entries, true);
        chain.setHeadIndex(id);
        chain.ringSlots = 1;
        return null;
      }
      if ((flags & PACKED_DESC_F_WRITE) !== 0) writable = true;
      else if (writable) return { code: 'packed.readable-after-writable', head, index: offset, indirect: false };
      if (len !== 0) {
        // One lookup both checks the range and names the region the cursors will use.
        const region = this.hasRegionAt ? memory.regionAt!(addr, len) : undefined;
        if (region === undefined && !memory.contains(addr, len)) return { code: 'packed.region-outside-memory', head, index: offset, addr, len, indirect: false };
        total += len;
        if (total >= MAX_CHAIN_BYTES) return { code: 'packed.too-long', head, total };
        chain.addRegion(addr, len, writable, region ?? null);
      }
      if ((flags & PACKED_DESC_F_NEXT) === 0) {
        chain.finish(slots, false);
        chain.setHeadIndex(id);
        chain.ringSlots = slots;
        return null;
      }
      // The list goes on at the next ring position (§2.8.6), wrapping with the counter.
      if (slots + 1 > size) return { code: 'packed.too-many-descriptors', head, count: slots + 1 };
      offset++;
      if (offset === size) {
        offset = 0;
        w ^= 1;
      }
      if (slots + 1 > free) return { code: 'packed.in-flight-exceeded', head, index: offset, inFlight: size - free + slots + 1, size };
      flags = ring.getUint16(offset * PACKED_DESC_SIZE + PACKED_DESC_FLAGS, true);
      if (!isAvailable(flags, w)) return { code: 'packed.chain-descriptor-unavailable', head, index: offset, flags };
    }
  }

  /** The entries of one indirect table (inside memory, `entries` <= size) into `chain`. */
  private walkTable(chain: DescriptorChain, head: number, index: number, tableAddr: number, tableLen: number, entries: number): PackedChainError | null {
    const memory = this.memory;
    let total = 0;
    let writable = false;
    for (let i = 0; i < entries; i++) {
      if (!this.readEntry(tableAddr + i * PACKED_DESC_SIZE)) return { code: 'packed.indirect-outside-memory', head, index, addr: tableAddr, len: tableLen };
      const addr = this.entryAddr;
      const len = this.entryLen;
      const flags = this.entryFlags;
      if ((flags & ~PACKED_DESC_F_WRITE) !== 0) return { code: 'packed.indirect-entry-flags', head, index: i, flags };
      if ((flags & PACKED_DESC_F_WRITE) !== 0) writable = true;
      else if (writable) return { code: 'packed.readable-after-writable', head, index: i, indirect: true };
      if (len !== 0) {
        const region = this.hasRegionAt ? memory.regionAt!(addr, len) : undefined;
        if (region === undefined && !memory.contains(addr, len)) return { code: 'packed.region-outside-memory', head, index: i, addr, len, indirect: true };
        total += len;
        if (total >= MAX_CHAIN_BYTES) return { code: 'packed.too-long', head, total };
        chain.addRegion(addr, len, writable, region ?? null);
      }
    }
    return null;
  }

  /**
   * Reads the indirect entry at `at` (inside memory) into the entry fields, field by field through
   * the memory accessors; a field that straddles two memory regions makes an accessor throw, and then
   * the whole entry is copied into `scratch` instead (each field still used from exactly one read).
   * False only if the memory refuses a range it said it contains. The entry's ID is not read (§2.8.7).
   */
  private readEntry(at: number): boolean {
    const memory = this.memory;
    try {
      this.entryAddr = memory.readU32(at + PACKED_DESC_ADDR) + memory.readU32(at + PACKED_DESC_ADDR + 4) * TWO_POW_32;
      this.entryLen = memory.readU32(at + PACKED_DESC_LEN);
      this.entryFlags = memory.readU16(at + PACKED_DESC_FLAGS);
      return true;
    } catch {
      // A field straddles two adjacent regions (indirect tables need no alignment).
    }
    const b = this.scratch;
    try {
      memory.read(at, b);
    } catch {
      return false;
    }
    this.entryAddr = u32(b, PACKED_DESC_ADDR) + u32(b, PACKED_DESC_ADDR + 4) * TWO_POW_32;
    this.entryLen = u32(b, PACKED_DESC_LEN);
    this.entryFlags = b[PACKED_DESC_FLAGS]! | (b[PACKED_DESC_FLAGS + 1]! << 8);
    return true;
  }
}
