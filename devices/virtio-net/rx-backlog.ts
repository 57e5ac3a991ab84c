// Frames from the backend that wait for guest rx buffers (no spec section: the device side of
// backpressure; VIRTIO 1.2 §5.1.6.3 lets the device wait for the driver to add buffers).
//
// A bounded FIFO of copies: lib/base/frame-fifo.ts with the device's sizes. Slots are allocated
// once and grown only when a larger frame arrives, so steady-state backpressure allocates nothing.
// When it is full the device answers `false` to the backend, which keeps the frame and pauses
// until the device resumes it: nothing is dropped. Each frame keeps its tag: the backend queue it
// came from (-1: a single-queue backend), because the receive queue is chosen when the frame is
// delivered (steering.ts), like the rx filter's verdict.

import { FrameFifo } from '../../lib/base/frame-fifo.js';

/** Frames held before the backend is paused: a burst of this many arriving with no rx buffer. */
export const RX_BACKLOG_FRAMES = 256;
/** The longest virtio-net header a backend passes with a frame (§5.1.6: 12 with VERSION_1 or MRG_RXBUF). */
const RX_BACKLOG_HEADER_BYTES = 12;

/** The device's rx backlog: `length`, `full`, `push(frame, header, tag)`, `peekFrame()`, `peekHeader()`, `peekTag()`, `shift()`, `clear()`. */
export class RxBacklog extends FrameFifo {
  constructor() {
    super({ maxFrames: RX_BACKLOG_FRAMES, headerBytes: RX_BACKLOG_HEADER_BYTES });
  }
}
