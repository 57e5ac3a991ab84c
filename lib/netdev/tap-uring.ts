// TapNetdev's io_uring datapath (`io: 'uring'`; no VIRTIO section: the host side; the header it
// carries is VIRTIO 1.2 §5.1.6 struct virtio_net_hdr): the same reads and writes as FdNetdev's,
// batched — one io_uring_enter per batch instead of one read(2)/write(2) per frame
// (lib/host/io-uring.ts says why that matters: a system call costs more than the TAP's work).
//
// Guest → host. send() copies header + frame into the next of TX_SLOTS slots of mapped memory (the
// one copy, as the inline path's) and answers 'sent'; the slots are written when TX_BATCH are
// queued, when all slots are taken, at the end of the current turn (a microtask: the device's
// transmit burst is synchronous), by flush(), or by close(). A batch is one chain of linked writes
// (IOSQE_IO_LINK) with RWF_NOWAIT, so the kernel writes them in order and never waits: -EAGAIN
// stops the chain, its frames stay queued in order, later sends are 'busy' until POLLOUT, then the
// queue is written and the device gets writable(). A frame the kernel refuses otherwise (a header
// the TAP rejects: EINVAL) is counted in `txErrors` and a host error, the rest of the chain (cancelled)
// is written again; a fatal errno (the interface gone) fails the backend and the frames still
// queued are counted in `txErrors`. Those frames were answered 'sent': the device does not count
// them, the backend does.
//
// Host → guest. On POLLIN: RX_BATCH reads with RWF_NOWAIT in one call, each into its own slot; the
// frames are offered to the device in order as views (no copy). A refusal keeps that frame and the
// rest of the batch in their slots (nothing is lost, nothing copied) and stops reading until
// resumeReceive(). A full batch continues on the next turn without polling (as FdNetdev's drain).

import type { NetdevPeer, SendResult } from './netdev.js';
import type { FdNetdevStats } from './fd-netdev.js';
import { HOST_FRAME_MAX } from './fd-netdev.js';
import { Errno, HostError } from '../host/libc.js';
import { ECANCELED, IORING_OP_READ, IORING_OP_WRITE, IOSQE_IO_LINK, IoUring, NativeMemory, RWF_NOWAIT } from '../host/io-uring.js';

/** Frames accepted and not yet written, at most. */
export const TX_SLOTS = 128;
/** Queued frames that trigger a write batch at once. */
export const TX_BATCH = 64;
/** Reads per batch. */
export const RX_BATCH = 64;
/** One slot: the largest header + frame behind sendSpan's shift of up to 3 bytes, in whole pages. */
const SLOT_BYTES = Math.ceil((HOST_FRAME_MAX + 3) / 4096) * 4096;
/**
 * errno values after which the fd is dead for good: FdNetdev's list, and EOPNOTSUPP — a kernel whose
 * TAP cannot take RWF_NOWAIT answers it to every request, so nothing could ever be written.
 */
const FATAL_ERRNOS: ReadonlySet<number> = new Set([Errno.EBADFD, Errno.EBADF, Errno.ENODEV, Errno.ENXIO, Errno.EIO, Errno.EPIPE, Errno.EOPNOTSUPP]);

/** claim()'s answers besides a position. */
const BUSY = -1;
const DROPPED = -2;

/** Netdev.sendSpan's range must lie inside `bytes` (the copy reads the buffer beneath the view). */
export function checkSpan(bytes: Uint8Array, offset: number, length: number): void {
  if (!(bytes instanceof Uint8Array) || !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > bytes.length) {
    throw new RangeError(`sendSpan: [${String(offset)}, +${String(length)}) is not a range of the ${bytes instanceof Uint8Array ? `${bytes.length}-byte array` : 'bytes (not a Uint8Array)'}`);
  }
}

/**
 * Copies `length` bytes from byte `from` of `src` to byte `to` of `dst`, where from ≡ to (mod 4):
 * the unaligned head and tail byte by byte, the rest as 32-bit words (`srcWords` / `dstWords` are
 * the same buffers as words). No view, nothing allocated.
 */
function copyAligned(src: Uint8Array, srcWords: Int32Array, from: number, dst: Uint8Array, dstWords: Int32Array, to: number, length: number): void {
  let i = 0;
  while (i < length && ((from + i) & 3) !== 0) {
    dst[to + i] = src[from + i]!;
    i++;
  }
  let s = (from + i) >>> 2;
  let d = (to + i) >>> 2;
  const words = (length - i) >>> 2;
  const end8 = s + (words & ~7); // eight words a round: a third faster than one (measured, 1500 B)
  while (s < end8) {
    dstWords[d] = srcWords[s]!;
    dstWords[d + 1] = srcWords[s + 1]!;
    dstWords[d + 2] = srcWords[s + 2]!;
    dstWords[d + 3] = srcWords[s + 3]!;
    dstWords[d + 4] = srcWords[s + 4]!;
    dstWords[d + 5] = srcWords[s + 5]!;
    dstWords[d + 6] = srcWords[s + 6]!;
    dstWords[d + 7] = srcWords[s + 7]!;
    s += 8;
    d += 8;
  }
  const end = s + (words & 7);
  while (s < end) dstWords[d++] = srcWords[s++]!;
  for (i += words << 2; i < length; i++) dst[to + i] = src[from + i]!;
}

/** What the engine needs of the FdNetdev it serves. */
export interface TapUringOwner {
  readonly id: string;
  readonly fd: number;
  readonly counters: FdNetdevStats;
  headerLength(): number;
  failed(): boolean;
  /** The fd is dead: the owner fails for good (link down, host error). */
  fail(e: HostError): void;
  hostError(e: HostError): void;
  /** The poll interest changed. */
  update(): void;
  /** The device's receive() threw outside the poll loop (a continuation): fail as the loop would. */
  threw(e: unknown): void;
}

export class TapUring {
  private readonly ring: IoUring;
  private readonly txMem: NativeMemory;
  private readonly rxMem: NativeMemory;
  /** Bytes to write (header + frame) and the frame's own length, per TX slot. */
  private readonly txTotal = new Uint32Array(TX_SLOTS);
  private readonly txFrame = new Uint32Array(TX_SLOTS);
  private readonly txResult = new Int32Array(TX_SLOTS);
  /** Where in its slot a frame's header starts (0-3: sendSpan aligns the frame with its source). */
  private readonly txShift = new Uint8Array(TX_SLOTS);
  /** The TX slots as 32-bit words (sendSpan's copy). */
  private readonly txWords: Int32Array;
  /** The buffer of the last span's bytes, as bytes and as words (guest memory: one per region). */
  private srcBuffer: ArrayBufferLike | null = null;
  private srcBytes: Uint8Array = new Uint8Array(0);
  private srcWords: Int32Array = new Int32Array(0);
  /** Oldest queued slot and how many are queued (a FIFO over the slots). */
  private txStart = 0;
  private txQueued = 0;
  /** -EAGAIN: sends are 'busy' until POLLOUT. */
  private blocked = false;
  private flushScheduled = false;
  /** Inside flush(): a failure met there drops the rest of the queue there. */
  private flushing = false;
  private readonly rxResult = new Int32Array(RX_BATCH);
  /** Completed reads of the current batch and the next one to offer. */
  private rxCount = 0;
  private rxNext = 0;
  /** The current batch read a frame into every slot (the fd may hold more). */
  private rxFull = false;
  /** The header length the current batch was read with. */
  private rxHdrLen = 0;
  private rxHeaders: Uint8Array[] = [];
  private readonly rxViews: Uint8Array[] = Array.from({ length: RX_BATCH }, () => new Uint8Array(0));
  private rxHeaderLen = -1;
  private peer: NetdevPeer | null = null;
  private paused = false;
  private continuing = false;
  private closed = false;

  constructor(private readonly owner: TapUringOwner) {
    this.ring = new IoUring(TX_SLOTS >= RX_BATCH ? TX_SLOTS : RX_BATCH);
    let tx: NativeMemory | null = null;
    try {
      tx = new NativeMemory(TX_SLOTS * SLOT_BYTES);
      this.rxMem = new NativeMemory(RX_BATCH * SLOT_BYTES);
    } catch (e) {
      tx?.free();
      this.ring.close();
      throw e;
    }
    this.txMem = tx;
    this.txWords = new Int32Array(tx.bytes.buffer, tx.bytes.byteOffset, tx.bytes.byteLength >>> 2);
  }

  attach(peer: NetdevPeer): void {
    this.peer = peer;
    this.paused = false;
  }

  /** Frames read and not yet delivered are dropped with the peer. */
  detach(): void {
    this.peer = null;
    this.rxNext = this.rxCount;
  }

  /** The poll interest: POLLIN wanted, POLLOUT wanted. */
  wantsRead(): boolean {
    return !this.closed && this.peer !== null && !this.paused && !this.continuing && this.rxNext >= this.rxCount;
  }

  get writeBlocked(): boolean {
    return this.blocked;
  }

  send(frame: Uint8Array, vnetHeader: Uint8Array | undefined): SendResult {
    const at = this.claim(frame.length, vnetHeader, 0);
    if (at < 0) return at === BUSY ? 'busy' : 'dropped';
    this.txMem.bytes.set(frame, at);
    return this.queued();
  }

  /**
   * send() for `bytes[offset, offset + length)` (Netdev.sendSpan): copied into the slot as 32-bit
   * words, without a view — the slot's frame starts at the source's alignment (a shift of 0-3
   * bytes inside the slot), so both sides of every word are aligned. Shares the queue with send().
   */
  sendSpan(bytes: Uint8Array, offset: number, length: number, vnetHeader: Uint8Array | undefined): SendResult {
    checkSpan(bytes, offset, length);
    let src = this.srcBytes;
    const abs = bytes.byteOffset + offset;
    if (bytes.buffer !== this.srcBuffer || abs + length > src.length) {
      // Once per guest memory buffer (and again if a growable one grew).
      const buffer = bytes.buffer;
      this.srcBuffer = buffer;
      this.srcBytes = src = new Uint8Array(buffer);
      this.srcWords = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    }
    const hdrLen = this.owner.headerLength();
    const at = this.claim(length, vnetHeader, (abs - hdrLen) & 3);
    if (at < 0) return at === BUSY ? 'busy' : 'dropped';
    copyAligned(src, this.srcWords, abs, this.txMem.bytes, this.txWords, at, length);
    return this.queued();
  }

  /**
   * Takes the next slot for a frame of `frameLength` bytes written `shift` bytes into it, with the
   * header in front: the frame's byte position in txMem, or BUSY / DROPPED (counted).
   */
  private claim(frameLength: number, vnetHeader: Uint8Array | undefined, shift: number): number {
    const c = this.owner.counters;
    const failed = this.owner.failed();
    if (this.blocked && !failed) return BUSY;
    const hdrLen = this.owner.headerLength();
    const total = hdrLen + frameLength;
    if (this.closed || failed || total > HOST_FRAME_MAX) {
      c.txErrors++;
      return DROPPED;
    }
    if (this.txQueued === TX_SLOTS) {
      this.flush();
      if (this.blocked || this.txQueued === TX_SLOTS) {
        c.txBusy++;
        return BUSY;
      }
    }
    const slot = (this.txStart + this.txQueued) % TX_SLOTS;
    const buf = this.txMem.bytes;
    const at = slot * SLOT_BYTES + shift;
    if (hdrLen > 0) {
      const n = vnetHeader === undefined ? 0 : Math.min(hdrLen, vnetHeader.length);
      if (n > 0) buf.set(n === vnetHeader!.length ? vnetHeader! : vnetHeader!.subarray(0, n), at);
      buf.fill(0, at + n, at + hdrLen);
    }
    this.txShift[slot] = shift;
    this.txTotal[slot] = total;
    this.txFrame[slot] = frameLength;
    return at + hdrLen;
  }

  /** The claimed slot is filled: queue it; a full batch is written now, else at the end of the turn. */
  private queued(): SendResult {
    this.txQueued++;
    if (this.txQueued >= TX_BATCH) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushTask);
    }
    return 'sent';
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Writes every queued frame now (one chain per call; again after a refused frame). */
  flush(): void {
    const c = this.owner.counters;
    this.flushing = true;
    try {
      this.writeQueue(c);
    } finally {
      this.flushing = false;
    }
    if (this.blocked) this.owner.update();
  }

  private writeQueue(c: FdNetdevStats): void {
    while (this.txQueued > 0 && !this.blocked && !this.closed) {
      if (this.owner.failed()) {
        c.txErrors += this.txQueued; // answered 'sent', never written
        this.txStart = (this.txStart + this.txQueued) % TX_SLOTS;
        this.txQueued = 0;
        return;
      }
      const n = this.txQueued;
      const fd = this.owner.fd;
      for (let i = 0; i < n; i++) {
        const slot = (this.txStart + i) % TX_SLOTS;
        this.txResult[slot] = -ECANCELED;
        this.ring.prepare(IORING_OP_WRITE, fd, this.txMem.address + slot * SLOT_BYTES + this.txShift[slot]!, this.txTotal[slot]!, RWF_NOWAIT, i < n - 1 ? IOSQE_IO_LINK : 0, slot);
      }
      const r = this.ring.submitAndWait();
      if (r < 0) {
        // The ring itself failed (ENOMEM, …): the backend cannot write any more.
        c.txErrors += this.txQueued;
        this.txQueued = 0;
        this.owner.fail(new HostError('io_uring_enter', -r, this.owner.id));
        return;
      }
      this.reap(this.txResult);
      let done = 0;
      for (; done < n; done++) {
        const slot = (this.txStart + done) % TX_SLOTS;
        const res = this.txResult[slot]!;
        if (res === -Errno.EAGAIN) {
          c.txBusy++;
          this.blocked = true;
          break;
        }
        if (res === -ECANCELED) break; // after a refused frame: written again by the next round
        if (res === this.txTotal[slot]) {
          c.txFrames++;
          c.txBytes += this.txFrame[slot]!;
        } else if (res < 0) {
          c.txErrors++;
          const e = new HostError('write', -res, this.owner.id);
          if (FATAL_ERRNOS.has(-res)) this.owner.fail(e);
          else this.owner.hostError(e);
        } else {
          c.txErrors++;
          c.txPartial++;
          this.owner.hostError(new HostError('write', Errno.EIO, `${this.owner.id}: partial write, ${res} of ${this.txTotal[slot]} bytes`));
        }
      }
      this.txStart = (this.txStart + done) % TX_SLOTS;
      this.txQueued -= done;
    }
  }

  /** POLLOUT after -EAGAIN: writes the queue, then the device may send again. */
  writable(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.flush();
    if (!this.blocked) this.peer?.writable();
  }

  /** POLLIN: one batch of reads, then its frames to the device. */
  readBatch(): void {
    if (this.closed || this.peer === null || this.paused || this.rxNext < this.rxCount || this.owner.failed()) return;
    const fd = this.owner.fd;
    for (let i = 0; i < RX_BATCH; i++) {
      this.rxResult[i] = -Errno.EAGAIN;
      this.ring.prepare(IORING_OP_READ, fd, this.rxMem.address + i * SLOT_BYTES, HOST_FRAME_MAX, RWF_NOWAIT, 0, i);
    }
    const r = this.ring.submitAndWait();
    if (r < 0) {
      this.owner.fail(new HostError('io_uring_enter', -r, this.owner.id));
      return;
    }
    this.reap(this.rxResult);
    // Counted as read (FdNetdev counts a frame when it is read and offered, once).
    const c = this.owner.counters;
    const hdrLen = this.owner.headerLength();
    this.rxHdrLen = hdrLen; // the batch keeps the header length it was read with
    for (let i = 0; i < RX_BATCH; i++) {
      const n = this.rxResult[i]!;
      if (n >= hdrLen && n > 0) {
        c.rxFrames++;
        c.rxBytes += n - hdrLen;
      } else if (n > 0) c.rxShort++;
    }
    this.rxCount = RX_BATCH;
    this.rxNext = 0;
    this.rxFull = true;
    this.deliver();
  }

  /** Offers the batch's frames from rxNext on; stops at a refusal. */
  private deliver(): void {
    const c = this.owner.counters;
    const hdrLen = this.rxHdrLen;
    if (hdrLen !== this.rxHeaderLen) {
      this.rxHeaders = Array.from({ length: RX_BATCH }, (_, i) => this.rxMem.bytes.subarray(i * SLOT_BYTES, i * SLOT_BYTES + hdrLen));
      this.rxHeaderLen = hdrLen;
    }
    const bytes = this.rxMem.bytes;
    while (this.rxNext < this.rxCount) {
      const peer = this.peer;
      if (peer === null || this.closed) return;
      const i = this.rxNext;
      const n = this.rxResult[i]!;
      if (n === -Errno.EAGAIN || n === -Errno.EINTR) {
        this.rxFull = false;
        this.rxNext++;
        continue;
      }
      if (n <= 0) {
        this.rxNext = this.rxCount;
        this.owner.fail(new HostError('read', n === 0 ? Errno.EIO : -n, n === 0 ? `${this.owner.id}: end of file` : this.owner.id));
        return;
      }
      if (n < hdrLen) {
        this.rxNext++; // counted rxShort
        continue;
      }
      // The slot's last view is reused when the frame has the same length (a flood of equal frames
      // allocates nothing); the device holds it only during receive().
      let view = this.rxViews[i]!;
      if (view.length !== n - hdrLen || view.byteOffset !== i * SLOT_BYTES + hdrLen) {
        view = bytes.subarray(i * SLOT_BYTES + hdrLen, i * SLOT_BYTES + n);
        this.rxViews[i] = view;
      }
      if (!peer.receive(view, hdrLen > 0 ? this.rxHeaders[i] : undefined)) {
        // Kept in its slot with the rest of the batch; offered again on resume.
        this.paused = true;
        c.rxPaused++;
        return;
      }
      this.rxNext++;
    }
    // The batch is delivered. A full one: the fd may hold more — continue next turn, unpolled
    // (the poll in flight, if any, was started without POLLIN on this fd, or is being dispatched).
    if (this.rxFull) {
      if (!this.continuing) {
        this.continuing = true;
        setImmediate(this.continueRead);
      }
      return;
    }
    if (this.wantsRead()) this.owner.update(); // POLLIN again (a mere mark inside a dispatch)
  }

  private readonly continueRead = (): void => {
    this.continuing = false;
    if (this.closed || this.owner.failed()) return;
    try {
      this.readBatch();
    } catch (e) {
      this.owner.threw(e);
    }
  };

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.owner.update();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.rxNext < this.rxCount) this.deliver();
    else this.owner.update();
  }

  /** The owner failed: queued frames are lost (counted), a device waiting for writable() is released. */
  ownerFailed(): void {
    if (!this.flushing) {
      this.owner.counters.txErrors += this.txQueued;
      this.txStart = (this.txStart + this.txQueued) % TX_SLOTS;
      this.txQueued = 0;
    }
    this.rxNext = this.rxCount;
    if (this.blocked) {
      this.blocked = false;
      this.peer?.writable();
    }
  }

  /** Writes what is queued (the fd is still open), then releases the ring and the slots. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (!this.owner.failed()) {
      this.blocked = false; // a last attempt; -EAGAIN leaves the rest unwritten (counted)
      this.flush();
    }
    this.owner.counters.txErrors += this.txQueued;
    this.txQueued = 0;
    this.closed = true;
    this.peer = null;
    this.ring.close();
    this.txMem.free();
    this.rxMem.free();
  }

  /** Reads every completion into `results` by tag. */
  private reap(results: Int32Array): void {
    const ring = this.ring;
    const k = ring.completions();
    for (let j = 0; j < k; j++) {
      const tag = ring.completionTag(j);
      if (tag < results.length) results[tag] = ring.completionResult(j);
    }
    ring.consume(k);
  }
}
