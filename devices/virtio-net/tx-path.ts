// Guest → host (VIRTIO 1.2 §5.1.6.2 packet transmission; §5.1.6.5.6 which transmit queues are in
// use under multiqueue; §2.7.10 available buffer notification suppression).
//
// Each chain on a transmit queue is a virtio-net header (12 bytes with VERSION_1 or MRG_RXBUF, 10
// without) followed by one frame. The header is read once (as words where it lies in one memory
// region; into a scratch buffer when a rule is broken or the backend carries headers, which then
// gets it — stripped otherwise). The frame is handed over where it lies in guest memory when it is
// in one descriptor and one region (`Netdev.sendSpan`: no view, nothing allocated per frame; a
// backend without it gets a view), else as a view, else gathered into a preallocated scratch buffer
// through a cached view of that length. The chain is completed with used length 0 (the device writes
// nothing). Bad frames (tier 3: shorter than the header, or a frame above TX_FRAME_MAX) are
// completed with length 0 and counted; a writable descriptor in a transmit chain is recorded as a
// driver mistake and ignored (QEMU ignores it too). With the link down, chains are completed unsent
// and counted 'link-down' (QEMU drops them the same way). When the backend answers 'busy', the
// chain is given back and every transmit queue waits for `writable()`; when it answers 'dropped'
// (its host fd failed, or the host took part of the frame) the chain is completed and counted
// 'backend'.
//
// The header is checked against the negotiated features (tx-header.ts, §5.1.6.2.1): a rule broken
// is recorded as a diagnostic per rule; by default the frame goes on as QEMU 7.2 forwards it (the
// header unchanged), with `strict: true` it is refused (completed with length 0, counted
// 'bad-header'). With VIRTIO_NET_F_MTU negotiated, a non-GSO frame longer than the MTU allows
// (mtu + Ethernet header, + one VLAN tag: mtu-limit.ts) is recorded and not passed on, in either
// mode (§5.1.4.2; counted 'above-mtu'). Both checks run on the device's copy of the header and,
// for the MTU's VLAN tag, on two bytes of the frame; a good frame costs one or a few integer tests.
// A chain given back for a busy backend is read and checked again when it is retried (so a header
// mistake on it may be recorded once per attempt).
//
// Multiqueue: only the transmit queues of the active pairs (VQ_PAIRS_SET, 1 by default) are
// served; a notification on another is recorded by the device and its chains wait until the pair
// becomes active (the device flushes a pair it is about to deactivate first).
//
// Re-entry: `send()` and the diagnostics a pass reports run the embedder's code, which may write
// the transport. After each such call the pass compares the core's epoch (one integer); when its
// queue stopped (reset, tier 1, the driver disabled it) it returns at once, touching neither guest
// memory nor the backend. A kick of the queue being processed, from inside its own pass, does not
// recurse: the pass further up the stack pops until the ring is empty, so it takes those chains
// itself, in order, exactly once. The used interrupt is raised after the pass has ended, so a
// kick from the interrupt handler starts a fresh pass.

import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import type { ChainReader } from '../../virtqueue/chain-reader.js';
import type { Defer } from '../../lib/base/schedule.js';
import type { PathReport } from './net-diagnostics.js';
import type { NetCounters } from './net-stats.js';
import { FRAME_MAX } from '../../lib/base/frame-limits.js';
import { ETH_HLEN } from './constants.js';
import { STRICT_REFUSED_FAULTS, TX_HEADER_FAULT_CODES, TxHeaderCheck, txFaultMessage, txFaultValue, txOffloadBits } from './tx-header.js';
import { aboveMtuAt, mtuApplies } from './mtu-limit.js';
import { VnetHdrOffset } from './vnet-header.js';

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
  send(frame: Uint8Array, header: Uint8Array | undefined, queue: number): 'sent' | 'busy' | 'dropped';
  /** `send` for the frame `bytes[offset, offset + length)` (guest memory: no view made for it). */
  sendSpan(bytes: Uint8Array, offset: number, length: number, header: Uint8Array | undefined, queue: number): 'sent' | 'busy' | 'dropped';
  /** Runs `fn` on a later turn of the event loop (used when a burst did not finish). */
  readonly defer: Defer;
  /** `strict: true`: refuse frames whose header breaks a §5.1.6.2.1 rule (else forward them, as QEMU). */
  readonly strict: boolean;
}

export class TxPath {
  private hdrLen = 12;
  private passHeader = false;
  private blocked = false;
  private deferred = false;
  /** The last pass's chains completed and the ring's notification answer (see pass). */
  private passCompleted = 0;
  private passWanted = false;
  private linkUp = true;
  /** Pairs whose transmit queue is served. */
  private activePairs = 1;
  /** The header rules for the negotiated features (setFeatures). */
  private readonly headerCheck = new TxHeaderCheck();
  /** The negotiated MTU (§5.1.4), 0 when VIRTIO_NET_F_MTU is not negotiated. */
  private mtu = 0;
  /**
   * Header scratch by queue index, each of the negotiated length (made at start, so the hot loop
   * makes no view). One per queue: a diagnostic's listener may run another transmit queue's pass
   * between this pass's header read and its send.
   */
  private headers: Uint8Array[] = [];
  /** `headers[i]` as a DataView (the header is copied in words from guest memory). */
  private headerData: DataView[] = [];
  /** What the backend gets, by queue index: `headers[i]` without HASH_REPORT's fields (at most 12 bytes). */
  private sendHeaders: Uint8Array[] = [];
  /** Gather buffer for frames that span descriptors. */
  private readonly scratch = new Uint8Array(TX_FRAME_MAX);
  /** scratch.subarray(0, n) by n, made on first use. */
  private readonly scratchViews: (Uint8Array | undefined)[] = [];
  /** The running queues (transmitq of pair p at 2p + 1), this path's own copy; empty while stopped. */
  private queues: (Virtqueue | null)[] = [];
  /** By queue index, the queue whose pass is on the stack (re-entry: see the file comment). */
  private readonly inPass: (Virtqueue | null | undefined)[] = [];
  private readonly rerun = (): void => {
    this.deferred = false;
    this.processAll();
  };

  constructor(private readonly host: TxHost) {}

  /** DRIVER_OK: the running queues, the header length the driver uses, whether the backend gets the header. */
  start(queues: readonly (Virtqueue | null)[], hdrLen: 10 | 12 | 20, passHeader: boolean): void {
    this.queues = queues.slice();
    this.hdrLen = hdrLen;
    this.headers = queues.map(() => new Uint8Array(hdrLen));
    this.headerData = this.headers.map((h) => new DataView(h.buffer, h.byteOffset, h.byteLength));
    this.sendHeaders = this.headers.map((h) => h.subarray(0, Math.min(hdrLen, 12)));
    this.headerCheck.hasNumBuffers = hdrLen !== 10;
    this.passHeader = passHeader;
    this.blocked = false;
    this.activePairs = 1;
  }

  /**
   * The negotiated features the header is checked against, and the MTU frames are held to (`mtu`
   * when VIRTIO_NET_F_MTU is negotiated, else undefined). Set at DRIVER_OK and after a restore.
   */
  setFeatures(features: bigint, mtu: number | undefined): void {
    this.headerCheck.offloads = txOffloadBits(features);
    this.mtu = mtu ?? 0;
  }

  /**
   * Work the path owes the guest without a new notification: a burst that yields to the next turn,
   * or chains held back while the backend was busy. A device state saves it (net-state.ts).
   */
  get pendingWork(): boolean {
    return this.deferred || this.blocked;
  }

  /**
   * A restored device state: `start` with the saved pairs, serving nothing now; `pendingWork`
   * continues on a later turn (the restored backend is a new one: it is not busy).
   */
  resume(queues: readonly (Virtqueue | null)[], hdrLen: 10 | 12 | 20, passHeader: boolean, activePairs: number, pendingWork: boolean): void {
    this.start(queues, hdrLen, passHeader);
    this.activePairs = activePairs;
    if (pendingWork && !this.deferred) {
      this.deferred = true;
      this.host.defer(this.rerun);
    }
  }

  /** The driver enabled queue `index` after DRIVER_OK. */
  queueStarted(index: number, q: Virtqueue): void {
    if (index < this.queues.length) this.queues[index] = q;
  }

  /** The driver stopped using queue `index`. */
  queueStopped(index: number): void {
    if (index < this.queues.length) this.queues[index] = null;
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
      const queues = this.queues;
      for (let p = pairs; p < before; p++) this.processIndex(2 * p + 1);
      if (this.queues !== queues) return; // stopped (or restarted) from a call-out: start/stop decide
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
  process(q: Virtqueue): void {
    if (this.blocked || q.broken) return;
    const index = q.index;
    const inPass = this.inPass;
    const outer = inPass[index];
    if (outer === q) return; // re-entered from this queue's own pass, which takes the new chains
    inPass[index] = q;
    let published = false;
    try {
      published = this.pass(q);
    } finally {
      inPass[index] = outer;
    }
    if (published) this.host.usedPublished(index, this.passCompleted, this.passWanted);
  }

  /**
   * One pass over `q`; true when it published (the queue still runs), with `passCompleted` chains
   * completed and `passWanted` the ring's answer (the driver wants a notification).
   */
  private pass(q: Virtqueue): boolean {
    const host = this.host;
    const counters = host.counters;
    const hdrLen = this.hdrLen;
    const header = this.headers[q.index] ?? new Uint8Array(hdrLen); // every queue started has one
    const epoch = host.epoch();
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
        return false;
      }
      done++;
      if (c.writableCount > 0) {
        host.mistake('tx.writable-descriptor', `transmit chain ${c.headIndex} has ${c.writableCount} device-writable descriptor(s); ignored`, q.index);
        if (this.stopped(q, epoch)) return false;
      }
      const total = c.readableLength;
      if (total < hdrLen) {
        counters.txHeaderShort++;
        counters.txDropped(q.index, true);
        host.mistake('tx.header-short', `transmit chain ${c.headIndex} has ${total} readable bytes, fewer than the ${hdrLen}-byte header`, q.index);
        if (this.stopped(q, epoch)) return false;
        q.pushUsed(c, 0);
        continue;
      }
      const frameLen = total - hdrLen;
      if (frameLen > TX_FRAME_MAX) {
        counters.txOversize++;
        counters.txDropped(q.index, true);
        host.mistake('tx.frame-too-large', `transmit chain ${c.headIndex} carries a ${frameLen}-byte frame, above ${TX_FRAME_MAX}`, q.index);
        if (this.stopped(q, epoch)) return false;
        q.pushUsed(c, 0);
        continue;
      }
      if (!this.linkUp) {
        counters.txLinkDown++;
        counters.txDropped(q.index, false);
        q.pushUsed(c, 0);
        continue;
      }
      const r = c.reader();
      // The header, read once. In guest memory it is read as words: a header with no flags, no GSO
      // and no num_buffers keeps every rule (TxHeaderCheck's first test), and is copied into the
      // scratch only when the backend takes it; any other goes through the scratch and the full check.
      // Header and frame in one descriptor and one region (Linux's usual chain): one span covers both.
      let faults = 0;
      let gso = 0;
      let bytes: Uint8Array | null = null;
      let at = 0;
      let d: DataView | null = null;
      let o = 0;
      if (frameLen > 0 && c.readableCount === 1 && r.span(total)) {
        const region = r.spanRegion!;
        d = region.data;
        o = r.spanOffset;
        bytes = region.bytes;
        at = o + hdrLen;
      } else if (r.span(hdrLen)) {
        d = r.spanRegion!.data;
        o = r.spanOffset;
      }
      if (d !== null) {
        const w0 = d.getUint32(o, true);
        const w1 = d.getUint32(o + 4, true);
        const w2 = hdrLen === 10 ? d.getUint16(o + 8, true) : d.getUint32(o + 8, true);
        if ((w0 & 0xffff) !== 0 || w2 >>> 16 !== 0 || hdrLen === 20 || this.passHeader) {
          const h = this.headerData[q.index]!;
          h.setUint32(0, w0, true);
          h.setUint32(4, w1, true);
          if (hdrLen === 10) h.setUint16(8, w2, true);
          else h.setUint32(8, w2, true);
          if (hdrLen === 20) {
            h.setUint32(12, d.getUint32(o + 12, true), true);
            h.setUint32(16, d.getUint32(o + 16, true), true);
          }
          faults = this.headerCheck.check(header, frameLen);
          gso = header[VnetHdrOffset.GSO_TYPE]!;
        }
      } else {
        r.read(header);
        faults = this.headerCheck.check(header, frameLen);
        gso = header[VnetHdrOffset.GSO_TYPE]!;
      }
      if (faults !== 0) {
        // Recorded before the frame is gathered: a listener may run another queue's pass, which gathers into the same scratch.
        if (!this.reportHeader(faults, header, q, c.headIndex, frameLen, epoch)) return false;
        if (this.host.strict && (faults & STRICT_REFUSED_FAULTS) !== 0) {
          counters.txBadHeader++;
          q.pushUsed(c, 0);
          continue;
        }
        if (bytes !== null) {
          // A listener may have remapped guest memory: the frame is located again after the call-out.
          r.rewind();
          r.skip(hdrLen);
          bytes = null;
        }
      }
      // The frame where it lies in guest memory (no view made), else a view, else gathered.
      let inPlace = bytes !== null;
      if (bytes === null) {
        inPlace = r.span(frameLen);
        if (inPlace) {
          bytes = r.spanRegion!.bytes;
          at = r.spanOffset;
        } else bytes = r.view(frameLen) ?? this.gather(r, frameLen);
      }
      const mtu = this.mtu;
      if (mtu !== 0 && frameLen > mtu + ETH_HLEN && mtuApplies(gso) && aboveMtuAt(bytes, at, frameLen, mtu)) {
        counters.txAboveMtu++;
        host.mistake('tx.frame-above-mtu', `transmit chain ${c.headIndex} carries a ${frameLen}-byte frame, above mtu ${mtu} + the Ethernet header; not sent`, q.index, frameLen);
        if (this.stopped(q, epoch)) return false;
        q.pushUsed(c, 0);
        continue;
      }
      const sendHeader = this.passHeader ? this.sendHeaders[q.index] : undefined;
      const result = inPlace ? host.sendSpan(bytes, at, frameLen, sendHeader, q.index >>> 1) : host.send(bytes, sendHeader, q.index >>> 1);
      if (result === 'busy') {
        if (this.stopped(q, epoch)) return false;
        q.unpop(1);
        done--;
        this.blocked = true;
        break;
      }
      if (result === 'dropped') {
        counters.txBackend++;
        counters.txDropped(q.index, false);
        q.pushUsed(c, 0);
        continue;
      }
      counters.txSent(q.index, frameLen);
      if (this.stopped(q, epoch)) return false; // the frame went out; its chain went with the queue
      q.pushUsed(c, 0);
    }
    this.passWanted = q.publishUsed();
    this.passCompleted = done;
    return true;
  }

  /**
   * Records one diagnostic per header rule broken (the mistake path: it builds strings). False when
   * `q` stopped from a listener (the pass must return at once).
   */
  private reportHeader(faults: number, header: Uint8Array, q: Virtqueue, head: number, frameLen: number, epoch: number): boolean {
    for (const [bit, code] of TX_HEADER_FAULT_CODES) {
      if ((faults & bit) === 0) continue;
      this.host.mistake(code, txFaultMessage(code, header, frameLen, head), q.index, txFaultValue(code, header));
      if (this.stopped(q, epoch)) return false;
    }
    return true;
  }

  /** After a call-out: whether `q` stopped meanwhile (an integer compare unless something stopped). */
  private stopped(q: Virtqueue, epoch: number): boolean {
    return this.host.epoch() !== epoch && !this.host.isRunning(q);
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

