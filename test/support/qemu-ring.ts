// A split virtqueue in QEMU's guest RAM, driven from the driver side (VIRTIO 1.2 §2.7): the
// descriptor table (§2.7.5), the available ring (§2.7.6) and the used ring (§2.7.8) written and
// read through qtest `write`/`read`. The layout is the legacy one (§2.7.2 alignment, used ring on
// a 4096 boundary) because it is valid for both the legacy and the modern interface.
// `PackedQemuRing`: the same four operations on a packed virtqueue (§2.8, modern interface only).

import type { QtestChannel } from './qemu-qtest.js';
import { alignUp, type QueueAddresses } from './qemu-pci.js';
import * as C from './qemu-virtio-constants.js';

/** One descriptor exactly as it will sit in the table: nothing is checked, on purpose. */
export interface RawDescriptor {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/** One used-ring element. */
export interface UsedElement {
  id: number;
  len: number;
}

/** Legacy split-ring layout of a queue of `size` entries whose table starts at `base`. */
export function legacyQueueLayout(base: number, size: number): QueueAddresses & { end: number } {
  const availRing = base + size * C.VIRTQ_DESC_SIZE;
  const usedRing = alignUp(availRing + 6 + 2 * size, C.LEGACY_VRING_ALIGN);
  const end = alignUp(usedRing + 6 + C.VIRTQ_USED_ELEM_SIZE * size, C.LEGACY_VRING_ALIGN);
  return { size, descTable: base, availRing, usedRing, end };
}

export class DriverRing {
  /** Next free slot of the available ring (free-running 16-bit, §2.7.6). */
  private nextAvail = 0;
  /** Used-ring index up to which completions were consumed. */
  private lastUsed = 0;

  constructor(
    private readonly qt: QtestChannel,
    readonly queue: QueueAddresses,
  ) {}

  /** Zeroes the rings in guest RAM and the driver-side indices (before the queue goes live). */
  async clear(): Promise<void> {
    this.nextAvail = 0;
    this.lastUsed = 0;
    const q = this.queue;
    await this.qt.memWrite(q.descTable, new Uint8Array(q.size * C.VIRTQ_DESC_SIZE + 6 + 2 * q.size));
    await this.qt.memWrite(q.usedRing, new Uint8Array(6 + C.VIRTQ_USED_ELEM_SIZE * q.size));
  }

  /** Writes descriptors 0..n-1 of the table in one go. */
  async writeDescriptors(descriptors: readonly RawDescriptor[]): Promise<void> {
    if (descriptors.length > this.queue.size) {
      throw new Error(`ring: ${descriptors.length} descriptors do not fit a table of ${this.queue.size}`);
    }
    const bytes = new Uint8Array(descriptors.length * C.VIRTQ_DESC_SIZE);
    const view = new DataView(bytes.buffer);
    descriptors.forEach((d, i) => {
      const at = i * C.VIRTQ_DESC_SIZE;
      view.setBigUint64(at, BigInt(d.addr), true);
      view.setUint32(at + 8, d.len >>> 0, true);
      view.setUint16(at + 12, d.flags & 0xffff, true);
      view.setUint16(at + 14, d.next & 0xffff, true);
    });
    await this.qt.memWrite(this.queue.descTable, bytes);
  }

  /** Puts `head` in the next avail slot, then moves avail.idx (in that order, §2.7.13.2). */
  async publish(head: number): Promise<void> {
    const slot = this.nextAvail % this.queue.size;
    await this.qt.memWrite(this.queue.availRing + 4 + 2 * slot, le16(head));
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    await this.qt.memWrite(this.queue.availRing + 2, le16(this.nextAvail));
  }

  /** The next completion the device put in the used ring, or null when there is none. */
  async takeUsed(): Promise<UsedElement | null> {
    const header = await this.qt.memRead(this.queue.usedRing, 4);
    const usedIdx = header[2]! | (header[3]! << 8);
    if (usedIdx === this.lastUsed) return null;
    const slot = this.lastUsed % this.queue.size;
    const elem = new DataView((await this.qt.memRead(this.queue.usedRing + 4 + C.VIRTQ_USED_ELEM_SIZE * slot, 8)).buffer);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    return { id: elem.getUint32(0, true), len: elem.getUint32(4, true) };
  }
}

/** Packed layout of a queue of `size` entries at `base` (§2.8.10.1): descriptor ring, driver and device event structures. */
export function packedQueueLayout(base: number, size: number): QueueAddresses & { end: number } {
  const descTable = alignUp(base, 16);
  const availRing = descTable + size * C.VIRTQ_DESC_SIZE; // driver event suppression (4 bytes)
  const usedRing = availRing + 4; // device event suppression
  return { size, descTable, availRing, usedRing, end: alignUp(usedRing + 4, C.LEGACY_VRING_ALIGN) };
}

/**
 * A packed virtqueue in QEMU's guest RAM, driven from the driver side (§2.8.21 making lists
 * available, §2.8.22 reading used descriptors): the same operations as DriverRing. A chain given
 * split-style (`writeDescriptors`, then `publish(head)`, following NEXT from `head`) is written at
 * the next ring positions with the AVAIL/USED bits of the Driver Ring Wrap Counter, the list's
 * first descriptor's flags last; its Buffer ID is `head`. Indirect tables must already be in the
 * packed form (entries in order, no NEXT, §2.8.7).
 */
export class PackedQemuRing {
  private pending: readonly RawDescriptor[] = [];
  private nextAvail = 0;
  private availWrap = 1;
  private nextUsed = 0;
  private usedWrap = 1;
  /** Ring descriptors each outstanding Buffer ID took. */
  private readonly slots = new Map<number, number>();

  constructor(
    private readonly qt: QtestChannel,
    readonly queue: QueueAddresses,
  ) {}

  /** Zeroes the descriptor ring and both event structures and the driver-side positions. */
  async clear(): Promise<void> {
    this.nextAvail = this.nextUsed = 0;
    this.availWrap = this.usedWrap = 1;
    this.slots.clear();
    await this.qt.memWrite(this.queue.descTable, new Uint8Array(this.queue.size * C.VIRTQ_DESC_SIZE + 8));
  }

  /** Keeps the chain's descriptors (split-style: `next` links) until `publish`. */
  async writeDescriptors(descriptors: readonly RawDescriptor[]): Promise<void> {
    if (descriptors.length > this.queue.size) throw new Error(`ring: ${descriptors.length} descriptors do not fit a ring of ${this.queue.size}`);
    this.pending = descriptors;
  }

  /** Writes the list starting at `head` at the next ring positions, first descriptor's flags last. */
  async publish(head: number): Promise<void> {
    const list: RawDescriptor[] = [];
    const seen = new Set<number>();
    for (let i = head; i < this.pending.length && !seen.has(i); ) {
      seen.add(i);
      const d = this.pending[i]!;
      list.push(d);
      if ((d.flags & C.VIRTQ_DESC_F_NEXT) === 0) break;
      i = d.next;
    }
    if (list.length === 0) throw new Error(`ring: no descriptor ${head} to publish`);
    let firstAt = 0;
    let firstFlags = 0;
    list.forEach((d, k) => {
      const at = this.queue.descTable + C.VIRTQ_DESC_SIZE * this.nextAvail;
      const flags = (d.flags & 7) | (this.availWrap === 1 ? PACKED_F_AVAIL : PACKED_F_USED);
      const bytes = new Uint8Array(C.VIRTQ_DESC_SIZE);
      const view = new DataView(bytes.buffer);
      view.setBigUint64(0, BigInt(d.addr), true);
      view.setUint32(8, d.len >>> 0, true);
      view.setUint16(12, head & 0xffff, true);
      view.setUint16(14, k === 0 ? 0 : flags, true);
      if (k === 0) {
        firstAt = at;
        firstFlags = flags;
      }
      this.writes.push([at, bytes]);
      if (++this.nextAvail === this.queue.size) {
        this.nextAvail = 0;
        this.availWrap ^= 1;
      }
    });
    for (const [at, bytes] of this.writes) await this.qt.memWrite(at, bytes);
    this.writes = [];
    await this.qt.memWrite(firstAt + 14, le16(firstFlags));
    this.slots.set(head & 0xffff, list.length);
  }

  private writes: [number, Uint8Array][] = [];

  /** The next used descriptor the device marked used (§2.8.22), or null when there is none. */
  async takeUsed(): Promise<UsedElement | null> {
    const at = this.queue.descTable + C.VIRTQ_DESC_SIZE * this.nextUsed;
    const view = new DataView((await this.qt.memRead(at, C.VIRTQ_DESC_SIZE)).buffer);
    const flags = view.getUint16(14, true);
    const avail = (flags & PACKED_F_AVAIL) !== 0 ? 1 : 0;
    const used = (flags & PACKED_F_USED) !== 0 ? 1 : 0;
    if (avail !== this.usedWrap || used !== this.usedWrap) return null;
    const id = view.getUint16(12, true);
    // Read whatever the flags say, as Linux's virtqueue_get_buf_ctx_packed does: QEMU 7.2 writes the
    // used length without setting VIRTQ_DESC_F_WRITE in the used descriptor (§2.8.4 wants WRITE when
    // the device wrote), the model sets it; both write len = bytes written.
    const len = view.getUint32(8, true);
    const n = this.slots.get(id) ?? 1;
    this.slots.delete(id);
    for (let k = 0; k < n; k++) {
      if (++this.nextUsed === this.queue.size) {
        this.nextUsed = 0;
        this.usedWrap ^= 1;
      }
    }
    return { id, len };
  }
}

/** AVAIL and USED bits of a packed descriptor's flags (§2.8.1). */
const PACKED_F_AVAIL = 1 << 7;
const PACKED_F_USED = 1 << 15;

function le16(value: number): Uint8Array {
  return Uint8Array.of(value & 0xff, (value >> 8) & 0xff);
}
