// What the record-carrying backends share (no VIRTIO section: the host side of the device, see
// netdev.ts): DgramNetdev (one frame per UDP or unix datagram) and VdeNetdev (one frame per
// record on a SOCK_SEQPACKET socket to `vde_plug`). A transport (socket-port.ts, udp-port.ts)
// moves whole records; this class checks each frame's length, offers it to the device, holds what
// the device refused, counts everything, and maps the transport's send result to the device's.
//
// Host → guest. Every record read is `rxDatagrams`. Shorter than an Ethernet header (14 bytes)
// or longer than `maxFrameLength`: counted (`rxRunt`, `rxOversize`) and dropped, before anything
// is copied. Otherwise it is offered to the device; refused (or paused, or no device attached), it
// waits in a bounded FIFO backlog. A transport that can stop reading (a polled socket: the kernel
// then holds the datagrams and a unix sender sees EAGAIN, its backpressure) stops while the
// backlog is not empty; one that cannot (UDP through node:dgram: UDP has no backpressure) keeps
// reading, the backlog fills to its bound and the rest is counted in `rxBacklogDropped`. Always:
//   rxDatagrams = rxFrames + rxRunt + rxOversize + rxBadRecord + rxBacklogDropped + rxDiscarded + backlog
// (`rxBadRecord`: a subclass's framing refused the record; `rxDiscarded`: held frames dropped by
// detach() or close()).
// Guest → host. `send()` refuses a frame longer than `maxFrameLength` (`txOversize`, 'dropped'),
// then hands it to the transport: sent; EAGAIN → 'busy' until the transport says writable; any
// other error → 'dropped', counted in `txErrors` and recorded as a host error (a unix datagram to
// a path nobody is bound to: ECONNREFUSED or ENOENT; QEMU drops the frame the same way). A failed
// or closed backend drops every frame it is given, counted.
// Host errors are counted and the last kept (`hostErrors()`); 'host-error' listeners get each.

import { EventEmitter } from 'node:events';
import type { HostErrorLog, HostErrorLogCapable, HostErrorRecord, Netdev, NetdevPeer, SendResult } from './netdev.js';
import { checkPeer } from './netdev.js';
import { FrameFifo } from '../base/frame-fifo.js';
import { Errno, HostError } from '../host/libc.js';

/** Shortest frame offered to the device: an Ethernet header. */
export const ETH_HEADER_LENGTH = 14;

export interface DatagramNetdevStats {
  /** Records read from the host (offered to this netdev). */
  rxDatagrams: number;
  /** Frames the device took. */
  rxFrames: number;
  rxBytes: number;
  /** Shorter than an Ethernet header: dropped. */
  rxRunt: number;
  /** Longer than maxFrameLength: dropped (never copied). */
  rxOversize: number;
  /** Refused by the subclass's framing (VDE: a length prefix that disagrees with the record). */
  rxBadRecord: number;
  /** The backlog was full: dropped. */
  rxBacklogDropped: number;
  /** Held frames dropped by detach() or close(). */
  rxDiscarded: number;
  /** Frames held now. */
  backlog: number;
  /** Times the device refused a frame (it then waits for resumeReceive()). */
  rxPaused: number;
  /** recv(2) failures. */
  rxErrors: number;
  txFrames: number;
  txBytes: number;
  /** The transport could not take a frame now: the device was told 'busy'. */
  txBusy: number;
  /** Frames dropped ('dropped'): oversize, a send error, or a failed / closed backend. */
  txErrors: number;
  /** Of txErrors: longer than maxFrameLength. */
  txOversize: number;
  hostErrors: number;
}

/** What a transport calls back. */
export interface RecordSink {
  /** Whether a polled transport should read now (the device can take frames and nothing is held). */
  wantsInput(): boolean;
  /** One record: `data` holds its first min(length, data.length) bytes; `length` is its true length. Valid during the call only. */
  record(data: Uint8Array, length: number): void;
  /** A send that answered -EAGAIN can be retried. */
  writable(): void;
  /** A host error worth recording (the transport goes on). */
  hostError(e: HostError): void;
  /** The transport is dead for good (its socket hung up, or a callback threw). */
  transportFailed(e: HostError): void;
}

/** A way of moving records; every transport implements it. */
export interface RecordTransport {
  /** Sends `length` bytes of `data` as one record: bytes sent or -errno (-EAGAIN: try again after sink.writable()). */
  send(data: Uint8Array, length: number): number;
  /** The sink's wantsInput() may have changed. */
  update(): void;
  close(): Promise<void>;
}

export interface DatagramNetdevLimits {
  /** Longest frame either way (bytes). */
  maxFrameLength: number;
  /** Frames held at most while the device cannot take them. */
  backlogLimit: number;
  /** Bytes held at most. */
  backlogBytes: number;
}

export abstract class DatagramNetdev extends EventEmitter implements Netdev, HostErrorLogCapable, RecordSink {
  readonly id: string;
  readonly maxFrameLength: number;
  protected peer: NetdevPeer | null = null;
  private paused = false;
  private draining = false;
  private blocked = false;
  private failedFlag = false;
  private closedFlag = false;
  private readonly backlog: FrameFifo;
  protected readonly counters: DatagramNetdevStats = {
    rxDatagrams: 0, rxFrames: 0, rxBytes: 0, rxRunt: 0, rxOversize: 0, rxBadRecord: 0, rxBacklogDropped: 0, rxDiscarded: 0, backlog: 0,
    rxPaused: 0, rxErrors: 0, txFrames: 0, txBytes: 0, txBusy: 0, txErrors: 0, txOversize: 0, hostErrors: 0,
  };
  private lastHostError: HostErrorRecord | null = null;

  protected constructor(id: string, limits: DatagramNetdevLimits) {
    super();
    this.id = id;
    this.maxFrameLength = limits.maxFrameLength;
    this.backlog = new FrameFifo({ maxFrames: limits.backlogLimit, maxBytes: limits.backlogBytes });
  }

  /** The transport; set by the subclass once it exists. */
  protected abstract get transport(): RecordTransport | null;

  /** Sends one frame through the transport: bytes sent or -errno (the subclass adds its framing). */
  protected abstract transmit(frame: Uint8Array): number;

  get failed(): boolean {
    return this.failedFlag;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  attach(peer: NetdevPeer): void {
    if (this.peer !== null) throw new Error(`${this.constructor.name} ${this.id}: a device is already attached`);
    checkPeer(`${this.constructor.name} ${this.id}`, peer);
    if (this.closedFlag) throw new Error(`${this.constructor.name} ${this.id}: closed`);
    this.peer = peer;
    this.paused = false;
    this.drain();
    this.transport?.update();
  }

  detach(): void {
    this.peer = null;
    this.discardBacklog();
    this.transport?.update();
  }

  send(frame: Uint8Array): SendResult {
    const c = this.counters;
    if (this.closedFlag || this.failedFlag) {
      c.txErrors++;
      return 'dropped';
    }
    if (this.blocked) return 'busy';
    if (frame.length > this.maxFrameLength) {
      c.txErrors++;
      c.txOversize++;
      return 'dropped';
    }
    const r = this.transmit(frame);
    if (r >= 0) {
      c.txFrames++;
      c.txBytes += frame.length;
      return 'sent';
    }
    if (r === -Errno.EAGAIN) {
      c.txBusy++;
      this.blocked = true;
      this.transport?.update();
      return 'busy';
    }
    c.txErrors++;
    this.hostError(new HostError('sendto', -r, `${this.id}: frame of ${frame.length} bytes dropped`));
    return 'dropped';
  }

  pauseReceive(): void {
    if (this.paused) return;
    this.paused = true;
    this.transport?.update();
  }

  resumeReceive(): void {
    this.paused = false;
    this.drain();
    this.transport?.update();
  }

  stats(): DatagramNetdevStats {
    return { ...this.counters, backlog: this.backlog.length, rxBacklogDropped: this.backlog.dropped };
  }

  hostErrors(): HostErrorLog {
    return { count: this.counters.hostErrors, last: this.lastHostError };
  }

  /** Stops the transport and drops what is held (counted in rxDiscarded). Idempotent. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.peer = null;
    this.discardBacklog();
    await this.transport?.close();
    await this.onClosed();
  }

  /** Subclass hook after the transport closed. */
  protected async onClosed(): Promise<void> {}

  /** Subclass hook when the transport failed for good. */
  protected onFailed(_e: HostError): void {}

  override on(event: 'host-error', listener: (e: HostError) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  // ---- RecordSink (the transport's side) ----

  wantsInput(): boolean {
    return !this.closedFlag && !this.failedFlag && this.peer !== null && !this.paused && !this.draining && this.backlog.length === 0;
  }

  record(data: Uint8Array, length: number): void {
    this.counters.rxDatagrams++;
    this.offer(data, length);
  }

  writable(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.peer?.writable();
  }

  hostError(e: HostError): void {
    this.counters.hostErrors++;
    this.lastHostError = { syscall: e.syscall, errno: e.errno, errnoName: e.errnoName, message: e.message, atMs: Date.now() };
    if (this.listenerCount('host-error') > 0) this.emit('host-error', e);
  }

  transportFailed(e: HostError): void {
    if (this.failedFlag || this.closedFlag) return;
    this.failedFlag = true;
    this.counters.rxErrors++;
    this.hostError(e);
    this.onFailed(e);
    if (this.blocked) {
      // The device waits for writable() after a 'busy' that will never end now: release it, so
      // its next send() is answered ('dropped') instead of its transmit queue stalling.
      this.blocked = false;
      this.peer?.writable();
    }
  }

  // ---- for subclasses ----

  /**
   * Offers one frame (already counted in rxDatagrams by the caller): length checks, then the
   * device, then the backlog. `data` holds min(length, data.length) bytes.
   */
  protected offer(data: Uint8Array, length: number): void {
    const c = this.counters;
    if (length > this.maxFrameLength || length > data.length) {
      c.rxOversize++;
      return;
    }
    if (length < ETH_HEADER_LENGTH) {
      c.rxRunt++;
      return;
    }
    const frame = length === data.length ? data : data.subarray(0, length);
    const peer = this.peer;
    if (peer !== null && !this.paused && !this.draining && this.backlog.length === 0 && !this.closedFlag) {
      this.draining = true; // the device may call resumeReceive() from inside receive()
      let taken: boolean;
      try {
        taken = peer.receive(frame);
      } finally {
        this.draining = false;
      }
      if (taken) {
        c.rxFrames++;
        c.rxBytes += length;
        return;
      }
      this.paused = true;
      c.rxPaused++;
    }
    this.backlog.push(frame); // false: full, counted in backlog.dropped (rxBacklogDropped)
  }

  /** Delivers held frames in order until the device says false or pauses. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      const b = this.backlog;
      const c = this.counters;
      while (b.length > 0 && !this.paused && this.peer !== null) {
        const f = b.peekFrame()!;
        if (!this.peer.receive(f)) {
          this.paused = true;
          c.rxPaused++;
          break;
        }
        c.rxFrames++;
        c.rxBytes += f.length;
        b.shift();
      }
    } finally {
      this.draining = false;
    }
  }

  private discardBacklog(): void {
    this.counters.rxDiscarded += this.backlog.clear();
  }
}
