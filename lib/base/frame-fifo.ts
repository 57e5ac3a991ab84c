// A bounded first-in-first-out queue of frames (no spec section: the holding side of backpressure
// between a netdev and the device). Frames crossing the Netdev interface are valid only during the
// call, so `push` copies each one into storage the queue owns: one slot per position, allocated the
// first time the position is used and grown only when a larger frame arrives, and its views made
// again only when the length changes — so a queue that fills and drains over and over allocates
// nothing. `peekFrame()` / `peekHeader()` are views of the oldest slot, valid until that position
// is written again.
//
// Caps: `maxFrames` frames and, optionally, `maxBytes` bytes of frames. A push past a cap is
// refused (false) and counted in `dropped`; the queue never evicts. Users: the device's rx backlog
// (devices/virtio-net/rx-backlog.ts) and MemoryNetdev's backlog (lib/netdev/memory-netdev.ts).

export interface FrameFifoOptions {
  /** Frames held at most (an integer >= 0; 0 holds none). */
  readonly maxFrames: number;
  /** Bytes of frames (headers not counted) held at most; default no byte cap. */
  readonly maxBytes?: number;
  /** Header bytes kept with each frame; a longer header is cut to this many. Default 0: none kept. */
  readonly headerBytes?: number;
  /** Storage a slot starts with (a larger frame gets a slot of its own size). Default 2048: an MTU-sized frame with room to spare. */
  readonly slotBytes?: number;
}

/** One position of the ring: its storage and what it holds now. */
interface Slot {
  data: Uint8Array;
  /** `data` cut to the frame held (what peekFrame returns). */
  frame: Uint8Array;
  readonly header: Uint8Array;
  /**
   * `header` cut to the header held; undefined when the frame came with none. An empty header stays
   * an empty view: a receiver that judges headers (the device's rx path) must see the same thing
   * whether the frame was held or not.
   */
  headerView: Uint8Array | undefined;
  /** The caller's number for the frame (a multiqueue backend's queue), -1 when none was given. */
  tag: number;
}

const DEFAULT_SLOT_BYTES = 2048;
const NO_HEADER = new Uint8Array(0);

function checkCount(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new RangeError(`FrameFifo: ${name} must be an integer >= 0, got ${String(v)}`);
}

export class FrameFifo {
  readonly maxFrames: number;
  readonly maxBytes: number;
  private readonly headerBytes: number;
  private readonly slotBytes: number;
  /** Ring storage, filled in index order (position i exists once i positions were used). */
  private readonly slots: Slot[] = [];
  private head = 0;
  private count = 0;
  private byteCount = 0;
  private refused = 0;

  constructor(options: FrameFifoOptions) {
    checkCount('maxFrames', options.maxFrames);
    checkCount('maxBytes', options.maxBytes);
    checkCount('headerBytes', options.headerBytes);
    checkCount('slotBytes', options.slotBytes);
    this.maxFrames = options.maxFrames;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.headerBytes = options.headerBytes ?? 0;
    this.slotBytes = options.slotBytes ?? DEFAULT_SLOT_BYTES;
  }

  /** Frames held now. */
  get length(): number {
    return this.count;
  }

  /** Bytes of frames held now. */
  get bytes(): number {
    return this.byteCount;
  }

  /** Frames `push` refused since construction (a cap was reached). */
  get dropped(): number {
    return this.refused;
  }

  /** No frame fits now: the frame cap is reached, or the byte cap is. */
  get full(): boolean {
    return this.count >= this.maxFrames || this.byteCount >= this.maxBytes;
  }

  /** Whether a frame of `length` bytes fits now. */
  fits(length: number): boolean {
    return this.count < this.maxFrames && this.byteCount + length <= this.maxBytes;
  }

  /**
   * Copies `frame` (and up to `headerBytes` of `header`) in at the tail, with `tag` (a number the
   * caller keeps with it, e.g. the queue it came from). False, counted in `dropped`, when it does not fit.
   */
  push(frame: Uint8Array, header?: Uint8Array, tag = -1): boolean {
    const length = frame.length;
    if (!this.fits(length)) {
      this.refused++;
      return false;
    }
    let i = this.head + this.count;
    if (i >= this.maxFrames) i -= this.maxFrames;
    let slot = this.slots[i];
    if (slot === undefined) {
      // Positions are used in index order from 0, so a missing one is always the next to append.
      const data = new Uint8Array(Math.max(this.slotBytes, length));
      slot = { data, frame: data.subarray(0, length), header: this.headerBytes === 0 ? NO_HEADER : new Uint8Array(this.headerBytes), headerView: undefined, tag };
      this.slots.push(slot);
    } else if (slot.data.length < length) {
      slot.data = new Uint8Array(Math.max(this.slotBytes, length));
      slot.frame = slot.data.subarray(0, length);
    } else if (slot.frame.length !== length) {
      slot.frame = slot.data.subarray(0, length);
    }
    slot.data.set(frame);
    slot.tag = tag;
    const hl = header === undefined ? 0 : Math.min(this.headerBytes, header.length);
    if (header === undefined || this.headerBytes === 0) slot.headerView = undefined;
    else {
      slot.header.set(hl === header!.length ? header! : header!.subarray(0, hl));
      if (slot.headerView === undefined || slot.headerView.length !== hl) slot.headerView = slot.header.subarray(0, hl);
    }
    this.count++;
    this.byteCount += length;
    return true;
  }

  /** The oldest frame as a view of its slot, or undefined when empty. */
  peekFrame(): Uint8Array | undefined {
    return this.count === 0 ? undefined : this.slots[this.head]!.frame;
  }

  /** The oldest frame's header as a view, or undefined when empty, when it came with none, or when headers are not kept. */
  peekHeader(): Uint8Array | undefined {
    return this.count === 0 ? undefined : this.slots[this.head]!.headerView;
  }

  /** The oldest frame's tag (-1 when empty or pushed without one). */
  peekTag(): number {
    return this.count === 0 ? -1 : this.slots[this.head]!.tag;
  }

  /** The `i`-th oldest frame's tag (-1 past the end). */
  tagAt(i: number): number {
    return this.slotAt(i)?.tag ?? -1;
  }

  /** The `i`-th oldest frame (0 is the oldest) as a view of its slot, or undefined past the end. */
  frameAt(i: number): Uint8Array | undefined {
    return this.slotAt(i)?.frame;
  }

  /** The `i`-th oldest frame's header as a view, or undefined (past the end, or it came with none). */
  headerAt(i: number): Uint8Array | undefined {
    return this.slotAt(i)?.headerView;
  }

  private slotAt(i: number): Slot | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) return undefined;
    let k = this.head + i;
    if (k >= this.maxFrames) k -= this.maxFrames;
    return this.slots[k];
  }

  /** Removes the oldest frame (a no-op when empty). */
  shift(): void {
    if (this.count === 0) return;
    this.byteCount -= this.slots[this.head]!.frame.length;
    this.head = this.head + 1 === this.maxFrames ? 0 : this.head + 1;
    this.count--;
  }

  /**
   * Discards every frame and returns how many there were (not counted in `dropped`: the caller
   * knows why they went). `release` also frees the slots' storage (e.g. on close).
   */
  clear(release = false): number {
    const n = this.count;
    this.head = 0;
    this.count = 0;
    this.byteCount = 0;
    if (release) this.slots.length = 0;
    return n;
  }
}
