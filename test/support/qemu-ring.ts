// A split virtqueue in QEMU's guest RAM, driven from the driver side (VIRTIO 1.2 §2.7): the
// descriptor table (§2.7.5), the available ring (§2.7.6) and the used ring (§2.7.8) written and
// read through qtest `write`/`read`. The layout is the legacy one (§2.7.2 alignment, used ring on
// a 4096 boundary) because it is valid for both the legacy and the modern interface.

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

function le16(value: number): Uint8Array {
  return Uint8Array.of(value & 0xff, (value >> 8) & 0xff);
}
