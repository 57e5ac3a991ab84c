// The datapath shared by the TAP and macvtap backends (no VIRTIO section for the host side; the
// header they carry is VIRTIO 1.2 §5.1.6 struct virtio_net_hdr, 10 or 12 bytes): one character
// device fd where each read(2) is one frame and each write(2) sends one frame, both preceded by
// the virtio-net header when IFF_VNET_HDR is on.
//
// Host → guest: the shared poll loop (host/poller.ts) reports POLLIN; we read at most
// RX_DRAIN_BUDGET frames without blocking into one reused buffer and offer each to the device as
// views (header, frame). When the device answers false (no rx buffers, its backlog full) we copy
// that one frame aside, stop reading (the kernel queues, then drops and counts in the link's
// tx_dropped) and offer it again on resumeReceive().
// Guest → host: header + frame are gathered into one reused buffer and written with one write(2).
// EAGAIN: the frame is not taken ('busy'), we wait for POLLOUT and call the device's writable().
// Any other write error drops the frame ('dropped'), counts it (`txErrors`) and is a host error;
// so is a partial write (`txPartial`: the kernel took only part of the frame).
//
// A dead fd is never silent. POLLERR / POLLHUP / POLLNVAL, a read error or end of file, and a write
// failing with EBADFD, EBADF, ENODEV, ENXIO, EIO or EPIPE (the interface was deleted, the fd
// detached) put the backend in its failed state for good: every later send() answers 'dropped' and
// counts, the fd leaves the poll set, and the link goes down through LinkStateCapable.
// Host errors are counted and the last one kept (`hostErrors()`, HostErrorLogCapable) whether or not
// anyone listens; listeners also get each one as a 'host-error' event (a HostError with its errno).
// The host link (a subclass calls followHostLink(): host-link.ts over rtnetlink) and the failed
// state make `linkUp`; each change reaches onLinkChange listeners from a microtask, never from
// inside send() (the device is in its transmit loop then), and is counted (`linkStatus()`).

import { EventEmitter } from 'node:events';
import type { HostErrorLog, HostErrorLogCapable, HostErrorRecord, LinkChangeReason, LinkStateCapable, LinkStateChange, LinkStatus, Netdev, NetdevPeer, SendResult } from './netdev.js';
import { checkPeer } from './netdev.js';
import { HostLinkFollower } from './host-link.js';
import type { HostLinkPolicy, HostLinkSink } from './host-link.js';
import { FRAME_MAX } from '../base/frame-limits.js';
import { FrameSlot } from '../base/frame-slot.js';
import { Errno, HostError, IOVEC_SIZE, addressOf, closeFd, readFd, writeFd, writevFd } from '../host/libc.js';
import { POLLIN, POLLOUT } from '../host/structs.js';
import { POLL_ERROR_MASK, Poller } from '../host/poller.js';
import type { PollClient } from '../host/poller.js';

/** Frames read per fd per poll turn: bounds one turn's work so other fds and timers get a turn. */
export const RX_DRAIN_BUDGET = 64;
/** The longest virtio-net header the fd carries (TUNSETVNETHDRSZ 12 with VERSION_1 or MRG_RXBUF). */
const VNET_HEADER_MAX = 12;
/** Largest read: the largest frame (FRAME_MAX) behind the longest vnet header. */
export const HOST_FRAME_MAX = FRAME_MAX + VNET_HEADER_MAX;

export interface FdNetdevStats {
  /** Frames read from the fd and offered to the device. */
  rxFrames: number;
  rxBytes: number;
  /** Reads shorter than the vnet header (dropped). */
  rxShort: number;
  /** Times the device refused a frame and reading stopped until resumeReceive(). */
  rxPaused: number;
  rxErrors: number;
  txFrames: number;
  txBytes: number;
  /** write(2) answered EAGAIN: the device was told 'busy'. */
  txBusy: number;
  /** Frames dropped ('dropped'): write(2) failed otherwise or wrote part of the frame, the frame was too large, or the backend had failed. */
  txErrors: number;
  /** Of txErrors: write(2) took fewer bytes than header + frame. */
  txPartial: number;
  /** Host errors recorded (hostErrors().count). */
  hostErrors: number;
}

const NO_BYTES = new Uint8Array(0);

/** errno values after which the fd is dead for good (the interface was deleted or the fd detached). */
const FATAL_ERRNOS: ReadonlySet<number> = new Set([Errno.EBADFD, Errno.EBADF, Errno.ENODEV, Errno.ENXIO, Errno.EIO, Errno.EPIPE]);

export abstract class FdNetdev extends EventEmitter implements Netdev, PollClient, LinkStateCapable, HostErrorLogCapable {
  readonly id: string;
  private fdNum: number;
  private peer: NetdevPeer | null = null;
  private paused = false;
  private blockedWrite = false;
  private failed = false;
  private closed = false;
  private hdrLen: number;
  private readonly rxBuf = new Uint8Array(HOST_FRAME_MAX);
  private rxHeader: Uint8Array;
  private readonly txBuf = new Uint8Array(HOST_FRAME_MAX);
  /** sendSpan's two struct iovecs (header, frame) and the addresses it fills them with. */
  private readonly iov = new Uint8Array(2 * IOVEC_SIZE);
  private readonly iov32 = new Uint32Array(this.iov.buffer);
  private txBufAddress = -1;
  private spanBytes: Uint8Array | null = null;
  private spanAddress = 0;
  /** The one frame the device refused, kept for resumeReceive(). */
  private readonly held = new FrameSlot(HOST_FRAME_MAX, VNET_HEADER_MAX);
  /** A drain continuation is scheduled (the fd is out of the poll set until it ends). */
  private continuing = false;
  protected readonly poller: Poller;
  protected readonly counters: FdNetdevStats = { rxFrames: 0, rxBytes: 0, rxShort: 0, rxPaused: 0, rxErrors: 0, txFrames: 0, txBytes: 0, txBusy: 0, txErrors: 0, txPartial: 0, hostErrors: 0 };
  private lastHostError: HostErrorRecord | null = null;
  /** The host link as followHostLink() last saw it (up while not followed). */
  private hostLinkUp = true;
  /** `linkUp` as last reported (counted and delivered) to listeners. */
  private reportedLinkUp = true;
  private readonly linkListeners = new Set<(change: LinkStateChange) => void>();
  private linkDowns = 0;
  private linkUps = 0;
  private lastLinkChange: LinkStateChange | null = null;
  private follower: HostLinkFollower | null = null;

  protected constructor(id: string, fd: number, hdrLen: number, poller: Poller = Poller.shared()) {
    super();
    this.id = id;
    this.fdNum = fd;
    this.hdrLen = hdrLen;
    this.rxHeader = this.rxBuf.subarray(0, hdrLen);
    this.poller = poller;
  }

  get fd(): number {
    return this.fdNum;
  }

  /** Failed for good (a dead fd): sends are 'dropped', nothing is read. */
  protected get hasFailed(): boolean {
    return this.failed;
  }

  /** Bytes of virtio-net header before each frame on the fd (0 without IFF_VNET_HDR). */
  protected get headerLength(): number {
    return this.hdrLen;
  }
  protected set headerLength(len: number) {
    this.hdrLen = len;
    this.rxHeader = this.rxBuf.subarray(0, len);
  }

  attach(peer: NetdevPeer): void {
    if (this.peer !== null) throw new Error(`${this.constructor.name} ${this.id}: a device is already attached`);
    checkPeer(`${this.constructor.name} ${this.id}`, peer);
    if (this.closed) throw new Error(`${this.constructor.name} ${this.id}: closed`);
    this.peer = peer;
    this.paused = false;
    this.poller.add(this);
  }

  detach(): void {
    this.peer = null;
    this.held.clear();
    this.poller.update();
  }

  send(frame: Uint8Array, vnetHeader?: Uint8Array): SendResult {
    const c = this.counters;
    if (this.blockedWrite && !this.failed) return 'busy';
    const hdrLen = this.hdrLen;
    const total = hdrLen + frame.length;
    if (this.closed || this.failed || total > HOST_FRAME_MAX) {
      c.txErrors++;
      return 'dropped'; // counted here and by the device: a closed or failed backend is a dead wire
    }
    const buf = this.txBuf;
    if (hdrLen > 0) {
      // The header the device passes has its negotiated length; the fd's length was set to match.
      const n = vnetHeader === undefined ? 0 : Math.min(hdrLen, vnetHeader.length);
      if (n > 0) buf.set(n === vnetHeader!.length ? vnetHeader! : vnetHeader!.subarray(0, n), 0);
      buf.fill(0, n, hdrLen);
    }
    buf.set(frame, hdrLen);
    return this.wrote(writeFd(this.fdNum, buf, total), total, frame.length);
  }

  /**
   * Netdev.sendSpan: `bytes[offset, offset + length)` written without a view or a copy — one
   * writev(2) of the header (from the reused buffer) and the frame where it lies (its address from
   * `addressOf`, once per buffer). Same results and counts as send().
   */
  sendSpan(bytes: Uint8Array, offset: number, length: number, vnetHeader?: Uint8Array): SendResult {
    if (!(bytes instanceof Uint8Array) || !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > bytes.length) {
      throw new RangeError(`${this.id}: sendSpan: [${String(offset)}, +${String(length)}) is not a range of the ${bytes instanceof Uint8Array ? `${bytes.length}-byte array` : 'bytes (not a Uint8Array)'}`);
    }
    if (length === 0) return this.send(NO_BYTES, vnetHeader); // no address to take
    const c = this.counters;
    if (this.blockedWrite && !this.failed) return 'busy';
    const hdrLen = this.hdrLen;
    const total = hdrLen + length;
    if (this.closed || this.failed || total > HOST_FRAME_MAX) {
      c.txErrors++;
      return 'dropped';
    }
    const iov = this.iov32;
    let k = 0;
    if (hdrLen > 0) {
      const buf = this.txBuf;
      const n = vnetHeader === undefined ? 0 : Math.min(hdrLen, vnetHeader.length);
      if (n > 0) buf.set(n === vnetHeader!.length ? vnetHeader! : vnetHeader!.subarray(0, n), 0);
      buf.fill(0, n, hdrLen);
      if (this.txBufAddress < 0) this.txBufAddress = addressOf(buf);
      iov[0] = this.txBufAddress >>> 0;
      iov[1] = Math.floor(this.txBufAddress / 0x100000000);
      iov[2] = hdrLen;
      k = 4;
    }
    const at = (bytes === this.spanBytes ? this.spanAddress : this.spanAddressOf(bytes)) + offset;
    iov[k] = at >>> 0;
    iov[k + 1] = Math.floor(at / 0x100000000);
    iov[k + 2] = length;
    return this.wrote(writevFd(this.fdNum, this.iov, hdrLen > 0 ? 2 : 1), total, length);
  }

  /** The address of the last span's array (one lookup per array the device hands over). */
  private spanAddressOf(bytes: Uint8Array): number {
    this.spanAddress = addressOf(bytes);
    this.spanBytes = bytes;
    return this.spanAddress;
  }

  /** A write of `total` bytes (header + `frameLength`) answered `r`: the send's result, counted. */
  private wrote(r: number, total: number, frameLength: number): SendResult {
    const c = this.counters;
    if (r === -Errno.EAGAIN) {
      c.txBusy++;
      this.blockedWrite = true;
      this.poller.update();
      return 'busy';
    }
    if (r < 0) {
      c.txErrors++;
      const e = new HostError('write', -r, this.id);
      if (FATAL_ERRNOS.has(-r)) this.fail(e);
      else this.hostError(e);
      return 'dropped';
    }
    if (r !== total) {
      // A TAP or macvtap write is all or nothing; anything else took part of the frame: lost.
      c.txErrors++;
      c.txPartial++;
      this.hostError(new HostError('write', Errno.EIO, `${this.id}: partial write, ${r} of ${total} bytes`));
      return 'dropped';
    }
    c.txFrames++;
    c.txBytes += frameLength;
    return 'sent';
  }

  pauseReceive(): void {
    if (this.paused) return;
    this.paused = true;
    this.poller.update();
  }

  resumeReceive(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.held.full && this.peer !== null) {
      if (!this.peer.receive(this.held.frame, this.held.header)) {
        this.paused = true;
        return;
      }
      this.held.clear();
    }
    this.poller.update();
  }

  stats(): FdNetdevStats {
    return { ...this.counters };
  }

  // ---- LinkStateCapable, HostErrorLogCapable ----

  /** False while the host link is down or the backend failed. */
  get linkUp(): boolean {
    return this.hostLinkUp && !this.failed;
  }

  onLinkChange(listener: (change: LinkStateChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`${this.constructor.name} ${this.id}: onLinkChange needs a function`);
    this.linkListeners.add(listener);
    return () => void this.linkListeners.delete(listener);
  }

  linkStatus(): LinkStatus {
    return { up: this.linkUp, downs: this.linkDowns, ups: this.linkUps, last: this.lastLinkChange };
  }

  hostErrors(): HostErrorLog {
    return { count: this.counters.hostErrors, last: this.lastHostError };
  }

  /** Follows the host interface's link state (subclasses, once the fd is open). */
  protected followHostLink(ifname: string, policy: HostLinkPolicy): void {
    const sink: HostLinkSink = {
      hostLink: (up, reason, initial) => {
        this.hostLinkUp = up;
        if (initial) this.reportedLinkUp = this.linkUp;
        else this.linkMaybeChanged(reason);
      },
      hostLinkDeleted: () => {
        if (this.closed || this.failed) return;
        this.hostLinkUp = false;
        this.fail(new HostError('link', Errno.ENODEV, `${this.id}: the host interface ${ifname} was deleted`), 'host-link-deleted');
      },
      hostError: (e) => this.hostError(e),
    };
    this.follower = HostLinkFollower.start(ifname, policy, sink);
  }

  /** Stops polling, then closes the fd (after any poll that might hold it returned). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.peer = null;
    this.linkListeners.clear();
    const follower = this.follower;
    this.follower = null;
    await follower?.stop();
    await this.poller.remove(this);
    const fd = this.fdNum;
    this.fdNum = -1;
    if (fd >= 0) closeFd(fd);
    this.onClosed();
  }

  /** Subclass hook after the fd is closed (e.g. stop a host sync). */
  protected onClosed(): void {}

  override on(event: 'host-error', listener: (e: HostError) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  // ---- PollClient ----

  interest(): number {
    if (this.closed || this.failed) return 0;
    let ev = 0;
    if (this.peer !== null && !this.paused && !this.held.full && !this.continuing) ev |= POLLIN;
    if (this.blockedWrite) ev |= POLLOUT;
    return ev;
  }

  ready(revents: number): void {
    if (this.closed) return;
    if ((revents & POLLOUT) !== 0 && this.blockedWrite) {
      this.blockedWrite = false;
      this.peer?.writable();
    }
    if ((revents & POLLIN) !== 0) this.drain();
    else if ((revents & POLL_ERROR_MASK) !== 0) this.fail(new HostError('poll', Errno.EIO, `${this.id}: revents 0x${revents.toString(16)}`));
  }

  /**
   * The poll loop dropped this backend because one of its callbacks threw (e.g. the device's
   * receive()): the backend fails like on a dead fd, reported as a 'host-error' (EIO, the thrown
   * value as `cause`); other backends on the loop keep running.
   */
  pollFailed(error: unknown): void {
    if (this.closed) return;
    const what = error instanceof Error ? error.message : String(error);
    this.fail(new HostError('poll', Errno.EIO, `${this.id}: a callback threw: ${what}`, { cause: error }));
  }

  /** Records a host error (counted, kept as the last one) and emits it to 'host-error' listeners, if any. */
  protected hostError(e: HostError): void {
    this.counters.hostErrors++;
    this.lastHostError = { syscall: e.syscall, errno: e.errno, errnoName: e.errnoName, message: e.message, atMs: Date.now() };
    if (this.listenerCount('host-error') > 0) this.emit('host-error', e);
  }

  /** The fd is dead: failed for good, link down, host error recorded. Idempotent. */
  protected fail(e: HostError, reason: LinkChangeReason = 'backend-failed'): void {
    if (this.failed) return;
    this.failed = true;
    this.counters.rxErrors++;
    this.hostError(e);
    this.linkMaybeChanged(reason);
    const follower = this.follower;
    this.follower = null;
    void follower?.stop();
    this.poller.update();
    if (this.blockedWrite) {
      // The device waits for writable() after a 'busy' that POLLOUT will never end now: release
      // it, so its next send() is answered ('dropped') instead of the transmit queue stalling.
      this.blockedWrite = false;
      this.peer?.writable();
    }
  }

  /** Counts and delivers a change of `linkUp` (from a microtask: never inside the caller's call). */
  private linkMaybeChanged(reason: LinkChangeReason): void {
    const up = this.linkUp;
    if (up === this.reportedLinkUp || this.closed) return;
    this.reportedLinkUp = up;
    if (up) this.linkUps++;
    else this.linkDowns++;
    const change: LinkStateChange = { up, reason, atMs: Date.now() };
    this.lastLinkChange = change;
    queueMicrotask(() => {
      for (const l of [...this.linkListeners]) {
        try {
          l(change);
        } catch (err) {
          // A listener's bug is not the backend's failure: a warning, never an exception out of a microtask.
          process.emitWarning(`${this.constructor.name} ${this.id}: a link-change listener threw: ${String(err)}`, 'NetdevWarning');
        }
      }
    });
  }

  /**
   * A drain that used its whole budget goes on from setImmediate instead of another poll() round
   * trip (measured: one async poll costs ~17 µs of CPU and 30-50 µs of wall time, about a third of
   * the per-frame cost at 64 frames a turn); the fd is left out of the poll set meanwhile, and
   * polled again only once a drain stops early (EAGAIN, paused, detached).
   */
  private readonly continueDrain = (): void => {
    this.continuing = false;
    if (this.closed || this.failed) return;
    try {
      this.drain();
    } catch (e) {
      // Outside the poll loop (setImmediate): the same isolation the loop gives ready().
      void this.poller.remove(this);
      this.pollFailed(e);
      return;
    }
    if (!this.continuing) this.poller.update();
  };

  private drain(): void {
    const c = this.counters;
    const buf = this.rxBuf;
    const hdrLen = this.hdrLen;
    for (let i = 0; i < RX_DRAIN_BUDGET; i++) {
      const peer = this.peer;
      if (peer === null) {
        // No device: leave frames queued in the kernel (interest() dropped POLLIN).
        return;
      }
      if (this.paused || this.closed) return;
      const n = readFd(this.fdNum, buf, buf.length);
      if (n === -Errno.EAGAIN) return;
      if (n === -Errno.EINTR) continue;
      if (n <= 0) {
        this.fail(new HostError('read', n === 0 ? Errno.EIO : -n, n === 0 ? `${this.id}: end of file` : this.id));
        return;
      }
      if (n < hdrLen) {
        c.rxShort++;
        continue;
      }
      c.rxFrames++;
      c.rxBytes += n - hdrLen;
      const frame = buf.subarray(hdrLen, n);
      const header = hdrLen > 0 ? this.rxHeader : undefined;
      if (!peer.receive(frame, header)) {
        this.held.keep(frame, header); // fits: the read buffer and the slot have the same bounds
        this.paused = true;
        c.rxPaused++;
        return;
      }
    }
    // Budget used and the fd may hold more: continue on the next turn without polling (unless a
    // continuation is already scheduled: this drain came from a poll that was already in flight).
    if (this.continuing) return;
    this.continuing = true;
    this.poller.update();
    setImmediate(this.continueDrain);
  }
}
