// Walking and validating one descriptor chain (VIRTIO 1.2 §2.7.5 descriptor table, §2.7.5.2 total
// length and loops, §2.7.5.3 indirect descriptors, §2.7.4.2 readable before writable). The full list
// of checks, with sections, is the doc comment of `ChainError` in queue-errors.ts. One loop walks the
// descriptor table and, from an INDIRECT descriptor on, that indirect table.
//
// Every descriptor field is read exactly once into a local (guest memory may be shared with running
// vCPUs) and every check is made on that local. Direct descriptors come from the queue's cached view
// of the descriptor table; indirect entries through the memory accessors (no allocation per chain).
// The walk is bounded: it stops with an error as soon as it has seen more than queue size buffer
// descriptors, so a cycle costs at most 2 * size + 2 descriptor reads.

import { le32 as u32 } from '../lib/base/endian.js';
import type { GuestMemoryAccess } from './guest-memory.js';
import type { DescriptorChain } from './descriptor-chain.js';
import type { ChainError } from './queue-errors.js';
import {
  DESC_ADDR,
  DESC_FLAGS,
  DESC_LEN,
  DESC_NEXT,
  DESC_SIZE,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from './ring-layout.js';

/** A chain's total length must stay below this (§2.7.5.2; used `len` is 32-bit). */
const MAX_CHAIN_BYTES = 2 ** 32;
const TWO_POW_32 = 2 ** 32;

/** Walks chains of one queue. The queue owns it and refreshes `desc` when memory is remapped. */
export class ChainWalker {
  /** Cached view of the descriptor table (fetched at activate, re-fetched on a generation change). */
  desc: DataView;
  /** One indirect descriptor, copied here when one of its fields straddles two memory regions. */
  private readonly scratch = new Uint8Array(DESC_SIZE);
  /** The indirect descriptor last read by `readEntry()`. */
  private entryAddr = 0;
  private entryLen = 0;
  private entryFlags = 0;
  private entryNext = 0;
  /** The indirect table being walked, and the descriptor that points to it. */
  private tableAddr = 0;
  private tableLen = 0;
  private tableIndex = 0;
  /** The memory names the region holding a range (`regionAt`), so a region needs one lookup. */
  private readonly hasRegionAt: boolean;

  constructor(
    private readonly memory: GuestMemoryAccess,
    desc: DataView,
    private readonly size: number,
    private readonly indirectDesc: boolean,
  ) {
    this.desc = desc;
    this.hasRegionAt = typeof memory.regionAt === 'function';
  }

  /**
   * Fills `chain` from the chain at `head` (< size), or returns why it is malformed.
   *
   * One loop walks both tables: it starts in the descriptor table (read through the cached view)
   * and, at a descriptor with VIRTQ_DESC_F_INDIRECT, moves into that indirect table (read through
   * the memory accessors) for the rest of the chain. `indirect` says which table it is in, and
   * `entries` is that table's length, the bound for `next`. The checks and their order per table
   * are the validation list of queue-errors.ts: in the descriptor table an INDIRECT descriptor is
   * checked before it is counted; in an indirect table every entry is counted first, then refused
   * if it is INDIRECT (nested). One test of the INDIRECT flag serves both tables, so a direct
   * descriptor costs what it cost in a loop of its own (bench/queue.bench.ts).
   */
  walk(chain: DescriptorChain, head: number): ChainError | null {
    const memory = this.memory;
    const desc = this.desc;
    const size = this.size;
    chain.begin(head, memory);
    let indirect = false;
    let entries = size;
    let index = head;
    let count = 0;
    let total = 0;
    let writable = false;
    for (;;) {
      let addr: number;
      let len: number;
      let flags: number;
      let next: number;
      if (!indirect) {
        const o = index * DESC_SIZE;
        addr = desc.getUint32(o + DESC_ADDR, true) + desc.getUint32(o + DESC_ADDR + 4, true) * TWO_POW_32;
        len = desc.getUint32(o + DESC_LEN, true);
        const flagsNext = desc.getUint32(o + DESC_FLAGS, true); // flags and next: adjacent le16 fields
        flags = flagsNext & 0xffff;
        next = flagsNext >>> 16;
      } else {
        if (!this.readEntry(this.tableAddr + index * DESC_SIZE)) {
          return { code: 'chain.indirect-outside-memory', head, index: this.tableIndex, addr: this.tableAddr, len: this.tableLen };
        }
        addr = this.entryAddr;
        len = this.entryLen;
        flags = this.entryFlags;
        next = this.entryNext;
      }
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (indirect) {
          // Nested: refused after the loop guard, which counts this entry first.
          return count + 1 > size ? { code: 'chain.too-many-descriptors', head, count: count + 1 } : { code: 'chain.indirect-nested', head, index };
        }
        if (!this.indirectDesc) return { code: 'chain.indirect-not-negotiated', head, index };
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0) return { code: 'chain.indirect-with-next', head, index };
        if (len === 0 || len % DESC_SIZE !== 0) return { code: 'chain.indirect-bad-length', head, index, length: len };
        if (!memory.contains(addr, len)) return { code: 'chain.indirect-outside-memory', head, index, addr, len };
        // The table ends the chain (§2.7.5.3.2): walk its entries from 0, bounded by its length.
        indirect = true;
        entries = len / DESC_SIZE;
        this.tableIndex = index;
        this.tableAddr = addr;
        this.tableLen = len;
        index = 0;
        continue;
      }
      count++;
      if (count > size) return { code: 'chain.too-many-descriptors', head, count };
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) writable = true;
      else if (writable) return { code: 'chain.readable-after-writable', head, index, indirect };
      if (len !== 0) {
        // One lookup both checks the range and names the region the cursors will use.
        const region = this.hasRegionAt ? memory.regionAt!(addr, len) : undefined;
        if (region === undefined && !memory.contains(addr, len)) return { code: 'chain.region-outside-memory', head, index, addr, len, indirect };
        total += len;
        if (total >= MAX_CHAIN_BYTES) return { code: 'chain.too-long', head, total };
        chain.addRegion(addr, len, writable, region ?? null);
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      if (next >= entries) return { code: 'chain.next-out-of-range', head, index, next, indirect };
      index = next;
    }
    chain.finish(count, indirect);
    return null;
  }

  /**
   * Reads the indirect descriptor at `at` (inside memory) into the entry fields. Field by field
   * through the memory accessors, which allocates nothing; a field that straddles two memory regions
   * makes an accessor throw, and then the whole entry is copied into `scratch` instead (the partial
   * first read is discarded, so each field is still used from exactly one read). False only if the
   * memory refuses a range it said it contains.
   */
  private readEntry(at: number): boolean {
    const memory = this.memory;
    try {
      this.entryAddr = memory.readU32(at + DESC_ADDR) + memory.readU32(at + DESC_ADDR + 4) * TWO_POW_32;
      this.entryLen = memory.readU32(at + DESC_LEN);
      const flagsNext = memory.readU32(at + DESC_FLAGS); // flags and next: adjacent le16 fields
      this.entryFlags = flagsNext & 0xffff;
      this.entryNext = flagsNext >>> 16;
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
    this.entryAddr = u32(b, DESC_ADDR) + u32(b, DESC_ADDR + 4) * TWO_POW_32;
    this.entryLen = u32(b, DESC_LEN);
    this.entryFlags = b[DESC_FLAGS]! | (b[DESC_FLAGS + 1]! << 8);
    this.entryNext = b[DESC_NEXT]! | (b[DESC_NEXT + 1]! << 8);
    return true;
  }
}
