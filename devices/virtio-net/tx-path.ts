// Guest → host (VIRTIO 1.2 §5.1.6.2 packet transmission; §5.1.6.5.6 which transmit queues are in
// use under multiqueue; §2.7.10 available buffer notification suppression).
//
// Each chain on a transmit queue is a virtio-net header (12 bytes with VERSION_1 or MRG_RXBUF, 10
// without) followed by one frame. The header is read once into a scratch buffer and handed to the
// backend when it carries headers (stripped otherwise). The frame is handed over as a view of guest
// memory when it lies in one descriptor (zero-copy: one view object per frame, which the Netdev
// API's `Uint8Array` needs), else gathered into a preallocated scratch buffer through a cached view
// of that length (no allocation). The chain is completed with used length 0 (the device writes
// nothing). Bad frames (tier 3: shorter than the header, or a frame above TX_FRAME_MAX) are
// completed with length 0 and counted; a writable descriptor in a transmit chain is recorded as a
// driver mistake and ignored (QEMU ignores it too). With the link down, chains are completed unsent
// and counted 'link-down' (QEMU drops them the same way). When the backend answers 'busy', the
// chain is given back and every transmit queue waits for `writable()`; when it answers 'dropped'
// (its host fd failed, or the host took part of the frame) the chain is completed and counted
// 'backend'.
//
// Multiqueue: only the transmit queues of the active pairs (VQ_PAIRS_SET, 1 by default) are
// served; a notification on another is recorded by the device and its chains wait until the pair
// becomes active (the device flushes a pair it is about to deactivate first).

import type { SplitQueue } from '../../virtqueue/split-queue.js';
import type { ChainReader } from '../../virtqueue/chain-reader.js';
import type { Defer } from '../../lib/base/schedule.js';
import type { PathReport } from './net-diagnostics.js';
import type { NetCounters } from './net-stats.js';
import { FRAME_MAX } from '../../lib/base/frame-limits.js';

/** Largest frame the device sends (lib/base/frame-limits.ts says why). */
export const TX_FRAME_MAX = FRAME_MAX;
/** Chains handled per notification before yielding (bounded work per call; the rest follows on a later turn). */
export const TX_BURST = 256;
/** Gathered frames up to this length get a cached scratch view per length (no allocation per frame). */
const GATHER_VIEW_CACHE_MAX = 2048;

/** What the transmit path needs from the device. */
export interface TxHost extends PathReport {
  readonly counters: NetCounters;
  /** Sends a frame; the header is passed only when the backend carries virtio-net headers. */
  send(frame: Uint8Array, header: Uint8Array | undefined): 'sent' | 'busy' | 'dropped';
  /** Runs `fn` on a later turn of the event loop (used when a burst did not finish). */
  readonly defer: Defer;
}

export class TxPath {
  private hdrLen = 12;
  private passHeader = false;
  private blocked = false;
  private deferred = false;
  private linkUp = true;
  /** Pairs whose transmit queue is served. */
  private activePairs = 1;
  private readonly header = new Uint8Array(12);
  /** `header` cut to the negotiated length (set at start, so the hot loop makes no view). */
  private headerView = this.header;
  /** Gather buffer for frames that span descriptors. */
  private readonly scratch = new Uint8Array(TX_FRAME_MAX);
  /** scratch.subarray(0, n) by n, made on first use. */
  private readonly scratchViews: (Uint8Array | undefined)[] = [];
  /** The running queues (transmitq of pair p at 2p + 1), this path's own copy; empty while stopped. */
  private queues: (SplitQueue | null)[] = [];
  private readonly rerun = (): void => {
    this.deferred = false;
    this.processAll();
  };

  constructor(private readonly host: TxHost) {}

  /** DRIVER_OK: the running queues, the header length the driver uses, whether the backend gets the header. */
  start(queues: readonly (SplitQueue | null)[], hdrLen: 10 | 12, passHeader: boolean): void {
    this.queues = queues.slice();
    this.hdrLen = hdrLen;
    this.headerView = this.header.subarray(0, hdrLen);
    this.passHeader = passHeader;
    this.blocked = false;
    this.activePairs = 1;
  }

  /** The driver enabled queue `index` after DRIVER_OK. */
  queueStarted(index: number, q: SplitQueue): void {
    if (index < this.queues.length) this.queues[index] = q;
  }

  stop(): void {
    this.queues = [];
    this.blocked = false;
    this.activePairs = 1;
  }

  setLink(up: boolean): void {
    this.linkUp = up;
  }

  /** Whether transmit queue `index` belongs to an active pair. */
  isActive(index: number): boolean {
    return (index - 1) >>> 1 < this.activePairs;
  }

  /**
   * VQ_PAIRS_SET took effect. Pairs being deactivated are flushed first (chains the driver made
   * available before the command still go out); newly active pairs are served at once.
   */
  setActivePairs(pairs: number): void {
    const before = this.activePairs;
    if (pairs < before) {
      for (let p = pairs; p < before; p++) this.processIndex(2 * p + 1);
      this.activePairs = pairs;
    } else if (pairs > before) {
      this.activePairs = pairs;
      for (let p = before; p < pairs; p++) this.processIndex(2 * p + 1);
    }
  }

  /** The backend can take frames again. */
  writable(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.processAll();
  }

  private processAll(): void {
    for (let p = 0; p < this.activePairs; p++) this.processIndex(2 * p + 1);
  }

  private processIndex(index: number): void {
    const q = this.queues[index];
    if (q !== null && q !== undefined) this.process(q);
  }

  /** The driver notified transmit queue `q` (or the device resumes it). */
  process(q: SplitQueue): void {
    if (this.blocked || q.broken) return;
    const host = this.host;
    const counters = host.counters;
    const hdrLen = this.hdrLen;
    const header = this.headerView;
    let done = 0;
    q.setNotifications(false);
    for (;;) {
      if (done === TX_BURST) {
        if (!this.deferred) {
          this.deferred = true;
          host.defer(this.rerun);
        }
        break;
      }
      const c = q.pop();
      if (c.kind === 'empty') {
        // Ask for the next notification and look once more (the §2.7.10 race; see enableNotification).
        if (q.enableNotification()) {
          q.setNotifications(false);
          continue;
        }
        break;
      }
      if (c.kind === 'violation') {
        host.violation({ ...c.error, queue: q.index });
        return;
      }
      done++;
      if (c.writableCount > 0) {
        host.mistake('tx.writable-descriptor', `transmit chain ${c.headIndex} has ${c.writableCount} device-writable descriptor(s); ignored`, q.index);
      }
      const total = c.readableLength;
      if (total < hdrLen) {
        counters.txHeaderShort++;
        host.mistake('tx.header-short', `transmit chain ${c.headIndex} has ${total} readable bytes, fewer than the ${hdrLen}-byte header`, q.index);
        q.pushUsed(c, 0);
        continue;
      }
      const frameLen = total - hdrLen;
      if (frameLen > TX_FRAME_MAX) {
        counters.txOversize++;
        host.mistake('tx.frame-too-large', `transmit chain ${c.headIndex} carries a ${frameLen}-byte frame, above ${TX_FRAME_MAX}`, q.index);
        q.pushUsed(c, 0);
        continue;
      }
      if (!this.linkUp) {
        counters.txLinkDown++;
        q.pushUsed(c, 0);
        continue;
      }
      const r = c.reader();
      r.read(header);
      const frame = r.view(frameLen) ?? this.gather(r, frameLen);
      const result = host.send(frame, this.passHeader ? header : undefined);
      if (result === 'busy') {
        q.unpop(1);
        this.blocked = true;
        break;
      }
      if (result === 'dropped') {
        counters.txBackend++;
        q.pushUsed(c, 0);
        continue;
      }
      counters.txFrames++;
      counters.txBytes += frameLen;
      q.pushUsed(c, 0);
    }
    if (q.publishUsed()) host.raiseUsed(q.index);
  }

  private gather(r: ChainReader, len: number): Uint8Array {
    let dest: Uint8Array;
    if (len <= GATHER_VIEW_CACHE_MAX) {
      dest = this.scratchViews[len] ?? (this.scratchViews[len] = this.scratch.subarray(0, len));
    } else {
      dest = this.scratch.subarray(0, len);
    }
    r.read(dest);
    return dest;
  }
}
