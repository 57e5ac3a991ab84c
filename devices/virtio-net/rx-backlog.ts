// Frames from the backend that wait for guest rx buffers (no spec section: the device side of
// backpressure; VIRTIO 1.2 §5.1.6.3 lets the device wait for the driver to add buffers).
//
// A bounded FIFO of copies: lib/base/frame-fifo.ts with the device's sizes. Slots are allocated
// once and grown only when a larger frame arrives, so steady-state backpressure allocates nothing.
// When it is full the device answers `false` to the backend, which keeps the frame and pauses
// until the device resumes it: nothing is dropped.
//
// Each frame keeps the backend queue it came from (a multiqueue backend's tag, -1 for none): the
// receive queue is chosen when the frame is delivered (steering.ts), like the rx filter's verdict.

import { FrameFifo } from '../../lib/base/frame-fifo.js';

/** Frames held before the backend is paused: a burst of this many arriving with no rx buffer. */
export const RX_BACKLOG_FRAMES = 256;
/** The longest virtio-net header a backend passes with a frame (§5.1.6: 12 with VERSION_1 or MRG_RXBUF). */
const RX_BACKLOG_HEADER_BYTES = 12;

/** The device's rx backlog: `length`, `full`, `push(frame, header, tag)`, `peekFrame()`, `peekHeader()`, `peekTag()`, `shift()`, `clear()`. */
export class RxBacklog extends FrameFifo {
  /** Backend queue of each held frame, a ring parallel to the frames. */
  private readonly tags = new Int32Array(RX_BACKLOG_FRAMES);
  private tagHead = 0;

  constructor() {
    super({ maxFrames: RX_BACKLOG_FRAMES, headerBytes: RX_BACKLOG_HEADER_BYTES });
  }

  override push(frame: Uint8Array, header?: Uint8Array, tag = -1): boolean {
    const n = this.length;
    if (!super.push(frame, header)) return false;
    this.tags[(this.tagHead + n) % RX_BACKLOG_FRAMES] = tag;
    return true;
  }

  /** The oldest frame's backend queue (-1: the backend has one queue, or the backlog is empty). */
  peekTag(): number {
    return this.length === 0 ? -1 : this.tags[this.tagHead]!;
  }

  /** The `i`-th oldest frame's backend queue. */
  tagAt(i: number): number {
    return i < this.length ? this.tags[(this.tagHead + i) % RX_BACKLOG_FRAMES]! : -1;
  }

  override shift(): void {
    if (this.length === 0) return;
    super.shift();
    this.tagHead = (this.tagHead + 1) % RX_BACKLOG_FRAMES;
  }

  override clear(release = false): number {
    this.tagHead = 0;
    return super.clear(release);
  }
}
