// The in-process netdev (no spec section: the host side of the device, see netdev.ts): the embedded
// default backend, and what unit tests and benchmarks drive the device with.
//
// Host → guest: `inject(frame)` offers a frame to the attached device, synchronously when it can.
// While the device is paused (pauseReceive) or answers false, frames wait in a bounded FIFO
// backlog (a copy each: the caller's buffer is only borrowed); past `backlogLimit`, inject() returns
// false and `dropped` counts the frame. `resumeReceive()` drains the backlog in order until the
// device says false again. With no device attached, frames wait the same way.
// Guest → host: `send()` hands every frame to 'transmit' listeners (a copy: the device passes views
// into guest memory), and to the paired netdev if any; `sendSpan()` (the device's allocation-free
// path, Netdev.sendSpan) does the same through a view, and only counts when nobody looks (a flag
// kept from the emitter's listenersChanged, not a listener lookup per frame). `setWritable(false)` makes send() answer
// 'busy' (backpressure); `setWritable(true)` calls the device's `writable()`.
// Counters: injected = delivered + backlog + dropped, always.
//
// With `vnetHdr: true` it carries a virtio-net header (VIRTIO 1.2 §5.1.6) with each frame, as a TAP
// with IFF_VNET_HDR does: it offers the vnet-header and offload capabilities (so the device offers
// CSUM, GUEST_CSUM, TSO…), `inject(frame, header)` hands the header to the device as given (any
// length: tests and the fuzzer send odd ones; none given: zeros of `vnetHeaderLength`), 'transmit'
// listeners get the guest's header, and `refuseOffloads(true)` makes `setOffloads()` fail as a
// TUNSETOFFLOAD error would (the previous offloads stay).
//
// With `queues: N` (> 1) it is a multiqueue backend like a TAP with IFF_MULTI_QUEUE
// (MultiQueueCapable): `injectOn(queue, frame)` offers a frame tagged with its queue (the device
// delivers it to that receive queue while RSS is off), frames sent from transmit queue k are counted
// on queue k (`stats().queues`), and `setActiveQueues(n)` — the device's VQ_PAIRS_SET — makes
// frames injected on a queue >= n arrive on queue `queue % n`, as the kernel steers only to
// attached queues. A held frame keeps its queue.
//
// Events come from lib/base/events.ts (no `node:` import, so the browser entry takes this file): a
// 'transmit' listener that throws does not throw into send() — i.e. into the device's transmit
// path — the other listeners still run and the error is re-thrown on a microtask, the rule of the
// device's own events.

import { TypedEmitter } from '../base/events.js';
import type { Netdev, NetdevPeer, OffloadFlags, SendResult } from './netdev.js';
import { checkPeer } from './netdev.js';
import { FrameFifo } from '../base/frame-fifo.js';

export interface MemoryNetdevOptions {
  /** Net client id (default `memory<N>`). */
  id?: string;
  /** Frames held while the device cannot take them (default 1024; 0 = hold none). */
  backlogLimit?: number;
  /** Carry a virtio-net header with each frame and offer the header and offload capabilities (default false). */
  vnetHdr?: boolean;
  /** Queues (1..256, default 1); more than 1 makes it a multiqueue backend (MultiQueueCapable). */
  queues?: number;
}

/** Per queue of a multiqueue MemoryNetdev. */
export interface MemoryNetdevQueueStats {
  /** Frames offered on this queue (injectOn; after folding into the active queues). */
  injected: number;
  /** Frames the guest sent from the device's transmit queue of the same number. */
  transmitted: number;
}

export interface MemoryNetdevStats {
  /** Frames offered by inject() (and by a paired netdev). */
  injected: number;
  /** Frames the device accepted. */
  delivered: number;
  /** Frames waiting now. */
  backlog: number;
  /** Frames refused because the backlog was full, or discarded by close(). */
  dropped: number;
  /** Frames the guest sent that this netdev took ('sent'). */
  transmitted: number;
  /** Per queue: multiqueue netdevs only (`queues` > 1). */
  queues?: MemoryNetdevQueueStats[];
}

export type TransmitListener = (frame: Uint8Array, vnetHeader?: Uint8Array) => void;

/** MemoryNetdev's events: 'transmit' (the frame; listeners also get the header, see TransmitListener). */
export interface MemoryNetdevEvents {
  transmit: Uint8Array;
}

/** Default backlog: enough for a burst of a few hundred frames without unbounded memory. */
const DEFAULT_BACKLOG_LIMIT = 1024;
/** Header length before the device sets one: the kernel's TAP default (struct virtio_net_hdr). */
const DEFAULT_VNET_HDR_LEN = 10;
/**
 * Header bytes kept with a held frame: longer than any virtio-net header (20 with hash reports), so
 * tests and the fuzzer see odd header lengths reach the device unchanged whether held or not.
 */
const MAX_HELD_HEADER = 64;
/** Most queues a MemoryNetdev takes (a TAP allows 256 with IFF_MULTI_QUEUE). */
const MAX_QUEUES = 256;

let nextId = 0;

export class MemoryNetdev extends TypedEmitter<MemoryNetdevEvents> implements Netdev {
  readonly id: string;
  readonly backlogLimit: number;
  /** Frames carry a virtio-net header (the `vnetHdr` option). */
  readonly vnetHdr: boolean;
  private peer: NetdevPeer | null = null;
  private partner: MemoryNetdev | null = null;
  /** Held frames and their headers (copies; refusals past `backlogLimit` counted in its `dropped`). */
  private readonly backlog: FrameFifo;
  /** Frames injected while an offer is in progress (re-entrant), moved behind it afterwards. */
  private readonly late: FrameFifo;
  private offering = false;
  private hdrLen: 10 | 12 = DEFAULT_VNET_HDR_LEN;
  /** What inject() passes when a vnetHdr netdev is given no header: `hdrLen` zeros (never written). */
  private zeroHeader = new Uint8Array(DEFAULT_VNET_HDR_LEN);
  private appliedOffloads: OffloadFlags | null = null;
  private offloadsRefused = false;
  private paused = false;
  private draining = false;
  private writableNow = true;
  private closed = false;
  /** A 'transmit' listener is registered (kept by listenersChanged): sendSpan tests a field, not the listener map. */
  private watched = false;
  private readonly counters: MemoryNetdevStats = { injected: 0, delivered: 0, backlog: 0, dropped: 0, transmitted: 0 };
  /** Queues (the `queues` option); `setActiveQueues` narrows where injected frames arrive. */
  readonly queues: number;
  private active = 1;
  private readonly perQueue: MemoryNetdevQueueStats[];

  constructor(options: MemoryNetdevOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new TypeError('MemoryNetdev: options must be an object { id?, backlogLimit?, vnetHdr? }');
    }
    const { id, backlogLimit, vnetHdr = false, queues = 1 } = options;
    if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) throw new RangeError(`MemoryNetdev: queues must be an integer in 1..${MAX_QUEUES}, got ${String(queues)}`);
    this.queues = queues;
    this.active = queues;
    this.perQueue = Array.from({ length: queues }, () => ({ injected: 0, transmitted: 0 }));
    if (id !== undefined && (typeof id !== 'string' || id.length === 0)) {
      throw new TypeError(`MemoryNetdev: id must be a non-empty string, got ${String(id)}`);
    }
    if (backlogLimit !== undefined && (!Number.isSafeInteger(backlogLimit) || backlogLimit < 0)) {
      throw new RangeError(`MemoryNetdev: backlogLimit must be an integer >= 0, got ${String(backlogLimit)}`);
    }
    if (typeof vnetHdr !== 'boolean') throw new TypeError(`MemoryNetdev: vnetHdr must be true or false, got ${String(vnetHdr)}`);
    this.id = id ?? `memory${nextId++}`;
    this.backlogLimit = backlogLimit ?? DEFAULT_BACKLOG_LIMIT;
    this.vnetHdr = vnetHdr;
    this.backlog = new FrameFifo({ maxFrames: this.backlogLimit, headerBytes: vnetHdr ? MAX_HELD_HEADER : 0 });
    this.late = new FrameFifo({ maxFrames: this.backlogLimit, headerBytes: vnetHdr ? MAX_HELD_HEADER : 0 });
    if (!vnetHdr) {
      // Hide the capabilities from the type guards (hasVnetHeader / hasOffloads look for these).
      Object.defineProperty(this, 'setVnetHeaderLength', { value: undefined });
      Object.defineProperty(this, 'setOffloads', { value: undefined });
    }
    // Single-queue: hide MultiQueueCapable from the type guard (isMultiQueue).
    if (queues === 1) Object.defineProperty(this, 'setActiveQueues', { value: undefined });
  }

  /**
   * Connects two memory netdevs back to back: what one's guest sends is injected into the other.
   * Like a wire, a frame the other side cannot hold is dropped there (its `dropped` counts it).
   */
  static pair(a: MemoryNetdev, b: MemoryNetdev): void {
    if (!(a instanceof MemoryNetdev) || !(b instanceof MemoryNetdev) || a === b) {
      throw new TypeError('MemoryNetdev.pair: needs two different MemoryNetdev instances');
    }
    if (a.partner !== null || b.partner !== null) throw new Error('MemoryNetdev.pair: a netdev is already paired');
    a.partner = b;
    b.partner = a;
  }

  /** Undoes pair(); a no-op when not paired. */
  unpair(): void {
    const p = this.partner;
    if (p === null) return;
    p.partner = null;
    this.partner = null;
  }

  attach(peer: NetdevPeer): void {
    if (this.peer !== null) throw new Error(`MemoryNetdev ${this.id}: a device is already attached`);
    checkPeer(`MemoryNetdev ${this.id}`, peer);
    this.peer = peer;
    this.paused = false;
    this.drain();
  }

  detach(): void {
    this.peer = null;
  }

  /**
   * Offers a frame from the host to the guest, with `vnetHeader` when the netdev carries headers
   * (default: zeros). False when it was dropped (backlog full, or closed).
   */
  inject(frame: Uint8Array, vnetHeader?: Uint8Array): boolean {
    return this.offer(frame, vnetHeader, this.queues > 1 ? 0 : -1);
  }

  /**
   * Multiqueue: offers a frame that arrived on host queue `queue` (0-based; folded into the active
   * queues as the kernel would). A single-queue netdev takes only queue 0.
   */
  injectOn(queue: number, frame: Uint8Array, vnetHeader?: Uint8Array): boolean {
    if (!Number.isInteger(queue) || queue < 0 || queue >= this.queues) throw new RangeError(`MemoryNetdev ${this.id}: queue must be an integer in 0..${this.queues - 1}, got ${String(queue)}`);
    return this.offer(frame, vnetHeader, this.queues > 1 ? queue % this.active : -1);
  }

  /** Capability (queues > 1): the device uses queues [0, pairs); frames then arrive only there. */
  setActiveQueues(pairs: number): void {
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > this.queues) throw new RangeError(`MemoryNetdev ${this.id}: active queues must be in 1..${this.queues}, got ${String(pairs)}`);
    this.active = pairs;
  }

  /** Queues the device uses now (setActiveQueues; all of them until it says otherwise). */
  get activeQueues(): number {
    return this.active;
  }

  private offer(frame: Uint8Array, vnetHeader: Uint8Array | undefined, tag: number): boolean {
    if (!(frame instanceof Uint8Array)) throw new TypeError(`MemoryNetdev ${this.id}: inject needs a Uint8Array frame`);
    if (vnetHeader !== undefined) {
      if (!(vnetHeader instanceof Uint8Array)) throw new TypeError(`MemoryNetdev ${this.id}: inject's vnetHeader must be a Uint8Array`);
      if (!this.vnetHdr) throw new TypeError(`MemoryNetdev ${this.id}: carries no virtio-net header (create it with { vnetHdr: true })`);
    }
    const header = this.vnetHdr ? (vnetHeader ?? this.zeroHeader) : undefined;
    this.counters.injected++;
    this.perQueue[tag < 0 ? 0 : tag]!.injected++;
    if (this.closed) {
      this.counters.dropped++;
      return false;
    }
    // Injected from inside the device's handling of an offer (e.g. its pause callback): it must
    // not overtake the frame being offered, so it waits until that frame's fate is known.
    if (this.offering) return this.late.push(frame, header, tag);
    const peer = this.peer;
    if (peer !== null && !this.paused && !this.draining && this.backlog.length === 0) {
      this.offering = true;
      let taken: boolean;
      try {
        taken = tag < 0 ? peer.receive(frame, header) : peer.receive(frame, header, tag);
      } finally {
        this.offering = false;
      }
      let kept = taken;
      if (taken) this.counters.delivered++;
      else {
        this.paused = true; // The device keeps none of it: hold it and wait for resumeReceive().
        kept = this.backlog.push(frame, header, tag);
      }
      if (this.late.length > 0) {
        for (let f = this.late.peekFrame(); f !== undefined; f = this.late.peekFrame()) {
          this.backlog.push(f, this.late.peekHeader(), this.late.peekTag()); // false: full, counted in backlog.dropped
          this.late.shift();
        }
        this.drain();
      }
      return kept;
    }
    return this.backlog.push(frame, header, tag); // false: full, counted in backlog.dropped
  }

  send(frame: Uint8Array, vnetHeader?: Uint8Array, queue = 0): SendResult {
    if (!this.writableNow) return 'busy';
    this.counters.transmitted++;
    this.perQueue[queue < this.queues ? queue : queue % this.queues]!.transmitted++;
    if (this.listenerCount('transmit') > 0) {
      this.emitWith('transmit', frame.slice(), vnetHeader === undefined ? undefined : vnetHeader.slice());
    }
    const partner = this.partner;
    if (partner !== null) partner.inject(frame, partner.vnetHdr ? vnetHeader : undefined);
    return 'sent';
  }

  /**
   * `send()` for `bytes[offset, offset + length)` (Netdev.sendSpan): with no 'transmit' listener
   * and no partner it only counts the frame, without making a view of it.
   */
  sendSpan(bytes: Uint8Array, offset: number, length: number, vnetHeader?: Uint8Array, queue = 0): SendResult {
    if (!this.writableNow) return 'busy';
    if (this.partner !== null || this.watched) return this.send(bytes.subarray(offset, offset + length), vnetHeader, queue);
    this.counters.transmitted++;
    this.perQueue[queue < this.queues ? queue : queue % this.queues]!.transmitted++;
    return 'sent';
  }

  /** Header length the device set (10 or 12; 10 until it sets one). */
  get vnetHeaderLength(): number {
    return this.hdrLen;
  }

  /** Capability (vnetHdr only): the device sets the header length at DRIVER_OK. */
  setVnetHeaderLength(length: 10 | 12): void {
    if (length !== 10 && length !== 12) throw new RangeError(`MemoryNetdev ${this.id}: vnet header length must be 10 or 12, got ${String(length)}`);
    if (length === this.hdrLen) return;
    this.hdrLen = length;
    this.zeroHeader = new Uint8Array(length);
  }

  /** Capability (vnetHdr only): the guest's receive offloads. False (nothing changes) after refuseOffloads(true). */
  setOffloads(flags: OffloadFlags): boolean {
    if (this.offloadsRefused) return false;
    this.appliedOffloads = { csum: flags.csum, tso4: flags.tso4, tso6: flags.tso6, ecn: flags.ecn, ufo: flags.ufo };
    return true;
  }

  /** The offloads last applied, or null before the device set any. */
  get offloads(): OffloadFlags | null {
    return this.appliedOffloads === null ? null : { ...this.appliedOffloads };
  }

  /** Makes setOffloads() fail (true) as a host that refuses TUNSETOFFLOAD, or succeed again (false). */
  refuseOffloads(refuse: boolean): void {
    this.offloadsRefused = refuse;
  }

  pauseReceive(): void {
    this.paused = true;
  }

  resumeReceive(): void {
    this.paused = false;
    this.drain();
  }

  /** Makes send() answer 'busy' (false) or 'sent' again (true); going back to true calls the device's writable(). */
  setWritable(writable: boolean): void {
    const was = this.writableNow;
    this.writableNow = writable;
    if (writable && !was && this.peer !== null) this.peer.writable();
  }

  get writable(): boolean {
    return this.writableNow;
  }

  stats(): MemoryNetdevStats {
    return {
      ...this.counters,
      backlog: this.backlog.length + this.late.length,
      dropped: this.counters.dropped + this.backlog.dropped + this.late.dropped,
      ...(this.queues > 1 ? { queues: this.perQueue.map((q) => ({ ...q })) } : {}),
    };
  }

  /** Drops the backlog (counted in `dropped`), detaches and unpairs. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.counters.dropped += this.backlog.clear(true) + this.late.clear(true);
      this.peer = null;
      this.unpair();
    }
    return Promise.resolve();
  }

  /** Listens to the guest's frames (and their headers, with `vnetHdr`); copies, the listener's to keep. */
  override on(event: 'transmit', listener: TransmitListener): this {
    return super.on(event, listener);
  }

  override once(event: 'transmit', listener: TransmitListener): this {
    return super.once(event, listener);
  }

  override off(event: 'transmit', listener: TransmitListener): this {
    return super.off(event, listener);
  }

  protected override listenersChanged(event: string): void {
    if (event === 'transmit') this.watched = this.listenerCount('transmit') > 0;
  }

  /** Delivers held frames in order until the device says false or pauses. Re-entrancy safe. */
  private drain(): void {
    if (this.draining) return; // The outer loop (further up the stack) keeps going.
    this.draining = true;
    try {
      const backlog = this.backlog;
      while (backlog.length > 0 && !this.paused && this.peer !== null) {
        const tag = backlog.peekTag();
        if (!(tag < 0 ? this.peer.receive(backlog.peekFrame()!, backlog.peekHeader()) : this.peer.receive(backlog.peekFrame()!, backlog.peekHeader(), tag))) {
          this.paused = true;
          break;
        }
        backlog.shift();
        this.counters.delivered++;
      }
    } finally {
      this.draining = false;
    }
  }
}
