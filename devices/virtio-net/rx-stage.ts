// A frame that spans several receive chains (VIRTIO 1.2 §5.1.6.4 with VIRTIO_NET_F_MRG_RXBUF: the
// device fills each buffer but the last completely), staged so that its pieces are written without
// a view made per piece (no spec section: the hot-path rule "no allocation per frame").
//
// A chain writer copies whole arrays, so each piece of the frame needs a Uint8Array of exactly that
// range — a fresh `subarray` per piece, per frame. Instead the frame is copied once into this
// device-owned buffer, whose views never go stale, and the view of each (offset, length) piece is
// kept in a small direct-mapped cache. A driver's receive buffers have few distinct sizes (Linux
// sizes mergeable buffers from an average of recent packet lengths), so the pieces repeat and the
// steady state makes no view; a new geometry costs one view, as before.

/** Entries in the view cache (a power of 2). */
const SLOTS = 64;

export class RxStage {
  private buffer: Uint8Array | null = null;
  private readonly offsets = new Int32Array(SLOTS).fill(-1);
  private readonly lengths = new Int32Array(SLOTS);
  private readonly views: (Uint8Array | null)[] = new Array<Uint8Array | null>(SLOTS).fill(null);

  constructor(private readonly capacity: number) {}

  /** Copies `frame` (at most `capacity` bytes) in; `piece()` then names ranges of it. */
  load(frame: Uint8Array): void {
    let b = this.buffer;
    if (b === null) b = this.buffer = new Uint8Array(this.capacity); // made at the first spanning frame
    b.set(frame);
  }

  /** The staged bytes `[offset, offset + length)` as a view (cached per range). */
  piece(offset: number, length: number): Uint8Array {
    const i = (Math.imul(offset, 0x9e3779b1) ^ Math.imul(length, 0x85ebca6b)) >>> 26; // top 6 bits: SLOTS
    const v = this.views[i];
    if (v !== null && v !== undefined && this.offsets[i] === offset && this.lengths[i] === length) return v;
    const made = this.buffer!.subarray(offset, offset + length);
    this.offsets[i] = offset;
    this.lengths[i] = length;
    this.views[i] = made;
    return made;
  }
}
