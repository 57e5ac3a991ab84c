// Guest → host (VIRTIO 1.2 §5.1.6.2 packet transmission).
//
// Each chain on a transmit queue is a virtio-net header followed by one frame. The header is read
// once into a scratch buffer; the frame is handed to the backend as a view of guest memory when it
// lies in one descriptor, else gathered into a preallocated scratch buffer. The chain is completed
// with used length 0 (the device writes nothing). Bad frames (tier 3) are completed with length 0
// and counted; a writable descriptor in a transmit chain is recorded as a driver mistake and
// ignored (QEMU ignores it too). When the backend answers 'busy', the chain is given back and the
// queue waits for `writable()`.

import type { SplitQueue } from '../../virtqueue/split-queue.js';
import type { NetCounters } from './net-stats.js';

/** Largest frame the device sends: a 64 KiB GSO super-frame plus Ethernet and one VLAN tag. */
export const TX_FRAME_MAX = 65535 + 18;
/** Chains handled per notification before yielding (bounded work per call; the rest follows on a later turn). */
export const TX_BURST = 256;

/** What the transmit path needs from the device. */
export interface TxHost {
  readonly counters: NetCounters;
  /** Sends a frame; the header is passed only when the backend carries virtio-net headers. */
  send(frame: Uint8Array, header: Uint8Array | undefined): 'sent' | 'busy';
  raiseUsed(index: number): void;
  violation(error: { readonly code: string; readonly section?: string; readonly queue: number; readonly [k: string]: unknown }): void;
  mistake(code: string, section: string, message: string, queue: number): void;
  /** Runs `fn` on a later turn of the event loop (used when a burst did not finish). */
  defer(fn: () => void): void;
}

export class TxPath {
  private hdrLen = 12;
  private passHeader = false;
  private blocked = false;
  private deferred = false;
  private readonly header = new Uint8Array(12);
  /** `header` cut to the negotiated length (set at start, so the hot loop makes no view). */
  private headerView = this.header;
  /** Gather buffer for frames that span descriptors. */
  private readonly scratch = new Uint8Array(TX_FRAME_MAX);
  private queues: readonly (SplitQueue | null)[] = [];
  private readonly rerun = (): void => {
    this.deferred = false;
    for (const q of this.queues) if (q !== null) this.process(q);
  };

  constructor(private readonly host: TxHost) {}

  /** DRIVER_OK: the header length the driver uses, and whether the backend gets the header. */
  start(queues: readonly (SplitQueue | null)[], hdrLen: 10 | 12, passHeader: boolean): void {
    this.queues = queues;
    this.hdrLen = hdrLen;
    this.headerView = this.header.subarray(0, hdrLen);
    this.passHeader = passHeader;
    this.blocked = false;
  }

  /** The backend can take frames again. */
  writable(): void {
    if (!this.blocked) return;
    this.blocked = false;
    for (const q of this.queues) if (q !== null) this.process(q);
  }

  /** The driver notified transmit queue `q` (or the device resumes it). */
  process(q: SplitQueue): void {
    if (this.blocked || q.broken) return;
    const host = this.host;
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
        // Re-enable notifications, then look once more: the driver may have added a chain between
        // our last look and the re-enable (§2.7.10 / §2.7.21 race).
        q.setNotifications(true);
        const more = q.available();
        if (typeof more === 'number' && more > 0) {
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
        host.mistake('tx.writable-descriptor', '2.7.4.2', `transmit chain ${c.headIndex} has ${c.writableCount} device-writable descriptor(s); ignored`, q.index);
      }
      const total = c.readableLength;
      if (total < hdrLen) {
        host.counters.txHeaderShort++;
        q.pushUsed(c, 0);
        continue;
      }
      const frameLen = total - hdrLen;
      if (frameLen > TX_FRAME_MAX) {
        host.counters.txOversize++;
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
      host.counters.txFrames++;
      host.counters.txBytes += frameLen;
      q.pushUsed(c, 0);
    }
    if (q.publishUsed()) host.raiseUsed(q.index);
  }

  private gather(r: { read(dest: Uint8Array): number }, len: number): Uint8Array {
    const dest = this.scratch.subarray(0, len);
    r.read(dest);
    return dest;
  }
}
