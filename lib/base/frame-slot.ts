// Room for one frame and its header, preallocated (no spec section: the holding side of
// backpressure). A holder that was refused keeps the one frame here and offers it again later:
// FilterChain's held frame each way (lib/filters/filter-chain.ts) and FdNetdev's frame the device
// refused (lib/netdev/fd-netdev.ts). Frames crossing the Netdev interface are valid only during the
// call, so `keep` copies; the storage is allocated once, at construction.

export class FrameSlot {
  private readonly data: Uint8Array;
  private readonly hdr: Uint8Array;
  /** -1: empty. */
  private frameLength = -1;
  /** -1: the frame came with no header (undefined), which is not the same as an empty one. */
  private headerLength = -1;

  /** `frameCapacity`: the largest frame it keeps; `headerCapacity`: the largest header. */
  constructor(readonly frameCapacity: number, readonly headerCapacity = 0) {
    if (!Number.isSafeInteger(frameCapacity) || frameCapacity < 0 || !Number.isSafeInteger(headerCapacity) || headerCapacity < 0) {
      throw new RangeError(`FrameSlot: capacities must be integers >= 0, got ${String(frameCapacity)} and ${String(headerCapacity)}`);
    }
    this.data = new Uint8Array(frameCapacity);
    this.hdr = new Uint8Array(headerCapacity);
  }

  /** A frame is held. */
  get full(): boolean {
    return this.frameLength >= 0;
  }

  /**
   * Copies the frame and header in. False, keeping nothing, when a frame is already held or either
   * is larger than its capacity.
   */
  keep(frame: Uint8Array, header?: Uint8Array): boolean {
    if (this.frameLength >= 0 || frame.length > this.data.length || (header !== undefined && header.length > this.hdr.length)) return false;
    this.data.set(frame);
    this.frameLength = frame.length;
    if (header === undefined) this.headerLength = -1;
    else {
      this.hdr.set(header);
      this.headerLength = header.length;
    }
    return true;
  }

  /** The held frame as a view of the slot (empty when none is held). */
  get frame(): Uint8Array {
    return this.data.subarray(0, Math.max(0, this.frameLength));
  }

  /** The held frame's header as a view, or undefined when none is held or it came without one. */
  get header(): Uint8Array | undefined {
    return this.frameLength < 0 || this.headerLength < 0 ? undefined : this.hdr.subarray(0, this.headerLength);
  }

  /** Empties the slot (the storage stays). */
  clear(): void {
    this.frameLength = -1;
    this.headerLength = -1;
  }
}
