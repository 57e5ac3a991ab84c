// The in-process netdev (no spec section: the host side of the device, see netdev.ts): the embedded
// default backend, and what unit tests and benchmarks drive the device with.
//
// Host → guest: `inject(frame)` offers a frame to the attached device, synchronously when it can.
// While the device is paused (pauseReceive) or answers false, frames wait in a bounded FIFO
// backlog (a copy each: the caller's buffer is only borrowed); past `backlogLimit`, inject() returns
// false and `dropped` counts the frame. `resumeReceive()` drains the backlog in order until the
// device says false again. With no device attached, frames wait the same way.
// Guest → host: `send()` hands every frame to 'transmit' listeners (a copy: the device passes views
// into guest memory), and to the paired netdev if any. `setWritable(false)` makes send() answer
// 'busy' (backpressure); `setWritable(true)` calls the device's `writable()`.
// Counters: injected = delivered + backlog + dropped, always.

import { EventEmitter } from 'node:events';
import type { Netdev, NetdevPeer, SendResult } from './netdev.js';
import { FrameFifo } from '../base/frame-fifo.js';

export interface MemoryNetdevOptions {
  /** Net client id (default `memory<N>`). */
  id?: string;
  /** Frames held while the device cannot take them (default 1024; 0 = hold none). */
  backlogLimit?: number;
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
}

export type TransmitListener = (frame: Uint8Array, vnetHeader?: Uint8Array) => void;

/** Default backlog: enough for a burst of a few hundred frames without unbounded memory. */
const DEFAULT_BACKLOG_LIMIT = 1024;

let nextId = 0;

export class MemoryNetdev extends EventEmitter implements Netdev {
  readonly id: string;
  readonly backlogLimit: number;
  private peer: NetdevPeer | null = null;
  private partner: MemoryNetdev | null = null;
  /** Held frames (copies; refusals past `backlogLimit` counted in its `dropped`). */
  private readonly backlog: FrameFifo;
  private paused = false;
  private draining = false;
  private writableNow = true;
  private closed = false;
  private readonly counters: MemoryNetdevStats = { injected: 0, delivered: 0, backlog: 0, dropped: 0, transmitted: 0 };

  constructor(options: MemoryNetdevOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new TypeError('MemoryNetdev: options must be an object { id?, backlogLimit? }');
    }
    const { id, backlogLimit } = options;
    if (id !== undefined && (typeof id !== 'string' || id.length === 0)) {
      throw new TypeError(`MemoryNetdev: id must be a non-empty string, got ${String(id)}`);
    }
    if (backlogLimit !== undefined && (!Number.isSafeInteger(backlogLimit) || backlogLimit < 0)) {
      throw new RangeError(`MemoryNetdev: backlogLimit must be an integer >= 0, got ${String(backlogLimit)}`);
    }
    this.id = id ?? `memory${nextId++}`;
    this.backlogLimit = backlogLimit ?? DEFAULT_BACKLOG_LIMIT;
    this.backlog = new FrameFifo({ maxFrames: this.backlogLimit });
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
    if (peer === null || typeof peer !== 'object' || typeof peer.receive !== 'function' || typeof peer.writable !== 'function') {
      throw new TypeError(`MemoryNetdev ${this.id}: attach needs a NetdevPeer { receive(), writable() }`);
    }
    this.peer = peer;
    this.paused = false;
    this.drain();
  }

  detach(): void {
    this.peer = null;
  }

  /** Offers a frame from the host to the guest. False when it was dropped (backlog full, or closed). */
  inject(frame: Uint8Array): boolean {
    if (!(frame instanceof Uint8Array)) throw new TypeError(`MemoryNetdev ${this.id}: inject needs a Uint8Array frame`);
    this.counters.injected++;
    if (this.closed) {
      this.counters.dropped++;
      return false;
    }
    const peer = this.peer;
    if (peer !== null && !this.paused && !this.draining && this.backlog.length === 0) {
      if (peer.receive(frame)) {
        this.counters.delivered++;
        return true;
      }
      this.paused = true; // The device keeps none of it: hold it and wait for resumeReceive().
    }
    return this.backlog.push(frame); // false: full, counted in backlog.dropped
  }

  send(frame: Uint8Array, vnetHeader?: Uint8Array): SendResult {
    if (!this.writableNow) return 'busy';
    this.counters.transmitted++;
    if (this.listenerCount('transmit') > 0) {
      this.emit('transmit', frame.slice(), vnetHeader === undefined ? undefined : vnetHeader.slice());
    }
    if (this.partner !== null) this.partner.inject(frame);
    return 'sent';
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
    return { ...this.counters, backlog: this.backlog.length, dropped: this.counters.dropped + this.backlog.dropped };
  }

  /** Drops the backlog (counted in `dropped`), detaches and unpairs. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.counters.dropped += this.backlog.clear(true);
      this.peer = null;
      this.unpair();
    }
    return Promise.resolve();
  }

  override on(event: 'transmit', listener: TransmitListener): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'transmit', listener: TransmitListener): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /** Delivers held frames in order until the device says false or pauses. Re-entrancy safe. */
  private drain(): void {
    if (this.draining) return; // The outer loop (further up the stack) keeps going.
    this.draining = true;
    try {
      const backlog = this.backlog;
      while (backlog.length > 0 && !this.paused && this.peer !== null) {
        if (!this.peer.receive(backlog.peekFrame()!)) {
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
