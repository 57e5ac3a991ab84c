// Host → guest (VIRTIO 1.2 §5.1.6.3 receiving packets, §5.1.6.4 processing of incoming packets).
//
// A frame from the backend is delivered when the receive queue has buffers: the rx filter decides
// first (a dropped frame consumes no buffer and raises no interrupt), then the device writes the
// virtio-net header and the frame into one chain — or, with MRG_RXBUF, into as many chains as it
// takes, filling each but the last completely and setting `num_buffers` to the count. With no
// buffers the frame waits in a bounded backlog (unfiltered: the filter runs only when it can be
// delivered); when the backlog is full the backend is told to pause. Nothing is dropped without a
// counter.

import type { SplitQueue } from '../../virtqueue/split-queue.js';
import type { DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import type { RxFilterState } from './rx-filter.js';
import { acceptFrame } from './rx-filter.js';
import type { NetCounters } from './net-stats.js';
import { RxBacklog } from './rx-backlog.js';
import { VnetHdrOffset } from './vnet-header.js';

/** Largest frame the device delivers: a 64 KiB GSO super-frame plus Ethernet and one VLAN tag. */
export const RX_FRAME_MAX = 65535 + 18;
/** Chains one frame may span with MRG_RXBUF (num_buffers is 16 bits; a ring holds at most 32768). */
const MERGE_CHAINS_MAX = 32768;

/** What the receive path needs from the device. */
export interface RxHost {
  readonly counters: NetCounters;
  readonly filter: RxFilterState;
  /** A used-buffer notification for queue `index` (the transport decides the interrupt). */
  raiseUsed(index: number): void;
  /** Tier 1: the driver broke the contract (a malformed chain, a receive chain with nothing writable). */
  violation(error: { readonly code: string; readonly section?: string; readonly queue: number; readonly [k: string]: unknown }): void;
  /** A driver mistake the device tolerates (recorded as a diagnostic). */
  mistake(code: string, section: string, message: string, queue: number): void;
  /** Ask the backend to hold frames / to deliver again. */
  pauseBackend(): void;
  resumeBackend(): void;
}

export class RxPath {
  readonly backlog = new RxBacklog();
  private queue: SplitQueue | null = null;
  private hdrLen = 12;
  private mergeable = false;
  private linkUp = true;
  private paused = false;
  /** Header scratch: the backend's header or zeros, with num_buffers filled in. */
  private readonly header = new Uint8Array(12);
  /** `header` cut to the negotiated length (set at start, so the hot path makes no view). */
  private headerView = this.header;
  /** Chains popped for the frame being written (MRG_RXBUF). */
  private readonly chains: DescriptorChain[] = [];

  constructor(private readonly host: RxHost) {}

  /** DRIVER_OK (or reset with `queue` null): the queue and the header layout to use. */
  start(queue: SplitQueue | null, hdrLen: 10 | 12, mergeable: boolean): void {
    this.queue = queue;
    this.hdrLen = hdrLen;
    this.headerView = this.header.subarray(0, hdrLen);
    this.mergeable = mergeable;
    if (queue === null) this.backlog.clear();
  }

  setLink(up: boolean): void {
    this.linkUp = up;
  }

  /** The backend offers a frame. False: not taken, the backend holds it and pauses. */
  receive(frame: Uint8Array, vnetHeader: Uint8Array | undefined): boolean {
    const host = this.host;
    if (!this.linkUp) {
      host.counters.rxLinkDown++;
      return true;
    }
    if (frame.length > RX_FRAME_MAX) {
      host.counters.rxOversize++;
      return true;
    }
    const q = this.queue;
    if (q === null || q.broken) {
      // Not running (before DRIVER_OK or needing reset): hold what fits, then push back.
      return this.hold(frame, vnetHeader);
    }
    if (this.backlog.length === 0) {
      const r = this.deliver(q, frame, vnetHeader);
      if (r !== NO_BUFFERS) {
        if (r === DELIVERED) this.publish(q);
        return true;
      }
    }
    return this.hold(frame, vnetHeader);
  }

  /** The guest added receive buffers (or the device started): deliver what waits. */
  refill(): void {
    const q = this.queue;
    if (q === null) return;
    let delivered = false;
    const backlog = this.backlog;
    while (backlog.length > 0 && !q.broken) {
      if (!this.linkUp) {
        this.host.counters.rxLinkDown++;
        backlog.shift();
        continue;
      }
      const r = this.deliver(q, backlog.peekFrame()!, backlog.peekHeader());
      if (r === NO_BUFFERS) break;
      if (r === DELIVERED) delivered = true;
      backlog.shift();
    }
    if (delivered) this.publish(q);
    if (this.paused && !backlog.full) {
      this.paused = false;
      this.host.resumeBackend();
    }
  }

  private hold(frame: Uint8Array, vnetHeader: Uint8Array | undefined): boolean {
    if (this.backlog.full) {
      if (!this.paused) {
        this.paused = true;
        this.host.counters.rxBackpressure++;
        this.host.pauseBackend();
      }
      return false;
    }
    this.backlog.push(frame, vnetHeader);
    return true;
  }

  private publish(q: SplitQueue): void {
    if (q.publishUsed()) this.host.raiseUsed(q.index);
  }

  /** Filters and writes one frame. */
  private deliver(q: SplitQueue, frame: Uint8Array, vnetHeader: Uint8Array | undefined): Outcome {
    const avail = q.available();
    if (typeof avail !== 'number') {
      this.host.violation({ ...avail.error, queue: q.index });
      return NO_BUFFERS;
    }
    if (avail === 0) return NO_BUFFERS;
    const verdict = acceptFrame(this.host.filter, frame, 0, frame.length);
    if (verdict !== 0) {
      const drops = this.host.counters.filterDrops;
      drops[verdict] = drops[verdict]! + 1;
      return DROPPED;
    }
    const header = this.header;
    header.fill(0);
    if (vnetHeader !== undefined) {
      const n = Math.min(10, vnetHeader.length); // num_buffers is the device's to write
      for (let i = 0; i < n; i++) header[i] = vnetHeader[i]!;
    }
    return this.mergeable ? this.writeMerged(q, frame) : this.writeSingle(q, frame);
  }

  private popChain(q: SplitQueue): DescriptorChain | null | undefined {
    const c = q.pop();
    if (c.kind === 'chain') {
      if (c.writableLength === 0) {
        // §2.7.4.2 / §5.1.6.3: receive buffers are device-writable. A chain with none is unusable.
        // Tier 1 like QEMU ("receive queue contains no in buffers"): the device stops; reset forgets the chain.
        this.host.violation({ code: 'rx.no-writable-descriptor', section: '5.1.6.3.1', queue: q.index, head: c.headIndex });
        return undefined;
      }
      return c;
    }
    if (c.kind === 'violation') {
      this.host.violation({ ...c.error, queue: q.index });
      return undefined;
    }
    return null;
  }

  private writeSingle(q: SplitQueue, frame: Uint8Array): Outcome {
    const c = this.popChain(q);
    if (c === null) return NO_BUFFERS;
    if (c === undefined) return NO_BUFFERS;
    const hdrLen = this.hdrLen;
    const total = hdrLen + frame.length;
    if (c.writableLength < total) {
      // §5.1.6.3.1: without MRG_RXBUF each buffer must hold a whole packet. QEMU drops the frame
      // and gives the buffer back; so does this device, and it records the driver's mistake.
      q.unpop(1);
      this.host.counters.rxBufferTooSmall++;
      this.host.mistake(
        'rx.buffer-too-small',
        '5.1.6.3.1',
        `receive buffer of ${c.writableLength} bytes cannot hold a ${total}-byte packet without MRG_RXBUF`,
        q.index,
      );
      return DROPPED;
    }
    if (hdrLen === 12) this.header[VnetHdrOffset.NUM_BUFFERS] = 1;
    const w = c.writer();
    w.write(this.headerView);
    w.write(frame);
    q.pushUsed(c, total);
    this.countDelivered(frame.length);
    return DELIVERED;
  }

  private writeMerged(q: SplitQueue, frame: Uint8Array): Outcome {
    const hdrLen = this.hdrLen;
    const total = hdrLen + frame.length;
    const chains = this.chains;
    chains.length = 0;
    let room = 0;
    while (room < total) {
      if (chains.length === MERGE_CHAINS_MAX) break;
      const c = this.popChain(q);
      if (c === null || c === undefined) {
        // Not enough buffers yet: give them back and wait for more (QEMU waits the same way).
        if (c === null && chains.length > 0) q.unpop(chains.length);
        chains.length = 0;
        return NO_BUFFERS;
      }
      chains.push(c);
      room += c.writableLength;
    }
    // The first chain must hold the whole header (num_buffers is written into it).
    if (chains[0]!.writableLength < hdrLen) {
      q.unpop(chains.length);
      chains.length = 0;
      this.host.counters.rxBufferTooSmall++;
      this.host.mistake('rx.buffer-too-small', '5.1.6.3.1', `receive buffer shorter than the ${hdrLen}-byte header`, q.index);
      return DROPPED;
    }
    const header = this.header;
    header[VnetHdrOffset.NUM_BUFFERS] = chains.length & 0xff;
    header[VnetHdrOffset.NUM_BUFFERS + 1] = chains.length >>> 8;
    let offset = 0; // into the frame
    for (let i = 0; i < chains.length; i++) {
      const c = chains[i]!;
      const w = c.writer();
      let len = 0;
      if (i === 0) len += w.write(this.headerView);
      const n = w.write(offset === 0 ? frame : frame.subarray(offset));
      offset += n;
      len += n;
      q.pushUsed(c, len);
    }
    chains.length = 0;
    this.countDelivered(frame.length);
    return DELIVERED;
  }

  private countDelivered(bytes: number): void {
    this.host.counters.rxFrames++;
    this.host.counters.rxBytes += bytes;
  }
}

const DELIVERED = 0;
const DROPPED = 1;
const NO_BUFFERS = 2;
type Outcome = typeof DELIVERED | typeof DROPPED | typeof NO_BUFFERS;
