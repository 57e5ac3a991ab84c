// Frames from the backend that wait for guest rx buffers (no spec section: the device side of
// backpressure; VIRTIO 1.2 §5.1.6.3 lets the device wait for the driver to add buffers).
//
// A bounded FIFO of copies. Slots are allocated once and grown only when a larger frame arrives,
// so steady-state backpressure allocates nothing. When it is full the device answers `false` to
// the backend, which keeps the frame and pauses until the device resumes it: nothing is dropped.

/** Frames held before the backend is paused: a burst of this many arriving with no rx buffer. */
export const RX_BACKLOG_FRAMES = 256;
/** Initial slot size: one MTU-sized frame with room to spare. */
const SLOT_INITIAL = 2048;

export class RxBacklog {
  private readonly slots: Uint8Array[] = [];
  private readonly lengths = new Uint32Array(RX_BACKLOG_FRAMES);
  /** The backend's virtio-net header per slot (length 0: none). */
  private readonly headers = new Uint8Array(RX_BACKLOG_FRAMES * 12);
  private readonly headerLengths = new Uint8Array(RX_BACKLOG_FRAMES);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }
  get full(): boolean {
    return this.count === RX_BACKLOG_FRAMES;
  }

  /** Copies a frame in; the caller checked `full`. */
  push(frame: Uint8Array, vnetHeader: Uint8Array | undefined): void {
    const i = (this.head + this.count) % RX_BACKLOG_FRAMES;
    let slot = this.slots[i];
    if (slot === undefined || slot.length < frame.length) {
      slot = new Uint8Array(Math.max(SLOT_INITIAL, frame.length));
      this.slots[i] = slot;
    }
    slot.set(frame);
    this.lengths[i] = frame.length;
    const hl = vnetHeader === undefined ? 0 : Math.min(12, vnetHeader.length);
    if (hl > 0) this.headers.set(vnetHeader!.subarray(0, hl), i * 12);
    this.headerLengths[i] = hl;
    this.count++;
  }

  /** The oldest frame as a view of its slot (valid until the next push), or undefined. */
  peekFrame(): Uint8Array | undefined {
    if (this.count === 0) return undefined;
    return this.slots[this.head]!.subarray(0, this.lengths[this.head]!);
  }

  /** The oldest frame's header, or undefined when the backend gave none. */
  peekHeader(): Uint8Array | undefined {
    if (this.count === 0) return undefined;
    const hl = this.headerLengths[this.head]!;
    return hl === 0 ? undefined : this.headers.subarray(this.head * 12, this.head * 12 + hl);
  }

  shift(): void {
    if (this.count === 0) return;
    this.head = (this.head + 1) % RX_BACKLOG_FRAMES;
    this.count--;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}
