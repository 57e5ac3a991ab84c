// A netdev over a WebSocket relay (no spec section: the host side of the device, see netdev.ts),
// speaking v86's relay protocol. Facts from v86 0.5.462 (src/browser/network.js NetworkAdapter, the
// client of the websockproxy relay that docs/networking.md points to):
//
//   - One binary WebSocket message carries one Ethernet frame, with no header of any kind, in both
//     directions. The client sets `binaryType = 'arraybuffer'`.
//   - The client reconnects after the socket closes, at most one attempt per 10 s
//     (`reconnect_interval`); errors are otherwise ignored.
//   - v86 queues up to 64 frames the guest sends while the socket is not open; here the link is
//     down instead (below), so the device completes those chains unsent and counts them.
//
// Data flow:
//   relay message → here: text (or any non-binary) and messages shorter than an Ethernet header
//           are counted `invalid`, messages longer than `maxFrameLength` are counted `oversize`,
//           neither reaches the device. A frame goes to peer.receive(); while the device has no
//           room (it answered false, or pauseReceive) frames wait in a bounded FrameFifo and past
//           `backlogLimit` are dropped and counted. A browser WebSocket has no receive flow
//           control, so the relay is a lossy wire, as a switch port is.
//           received = invalid + oversize + delivered + backlog + dropped, always.
//   guest → device.send → here: a copy of the frame, one binary message. While the socket's
//           `bufferedAmount` is above `sendBufferLimit` the answer is 'busy'; the netdev polls
//           it (a browser WebSocket has no drain event) and calls peer.writable() once it fell to
//           half. A frame above `maxFrameLength`, or sent while the socket is not open, is
//           'dropped' and counted.
//   Link (LinkStateCapable): up while the socket is open. The device starts with the link down and
//           follows it: the guest sees carrier when the relay connects and loses it when it goes.
//           Changes come from the socket's own events (never from inside send()), as 'connected' /
//           'disconnected' events too.
//   Reconnect: after the socket closes (not by close()), the next attempt is `reconnectMs` after
//           the previous one began (v86: 10 s); 0 = never reconnect.
//
// No `node:` import and no Node global: the browser entry (browser.ts) exports it. It uses the
// global `WebSocket`; Node 20 has none, so Node callers pass one (`options.WebSocket`, e.g. the `ws`
// package's class).

import { TypedEmitter } from '../base/events.js';
import { FrameFifo } from '../base/frame-fifo.js';
import { FRAME_MAX } from '../base/frame-limits.js';
import type { LinkChangeReason, LinkStateCapable, LinkStateChange, LinkStatus, Netdev, NetdevPeer, SendResult } from './netdev.js';
import { checkPeer } from './netdev.js';

/** WebSocket readyState OPEN (WHATWG WebSockets; CONNECTING is 0, CLOSING 2, CLOSED 3). */
const OPEN = 1;

/** The parts of a WebSocket this netdev uses: the browser's class and the `ws` package's both fit. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: `new WebSocket(url)`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface WebSocketNetdevOptions {
  /** Net client id (QEMU's `-netdev id=`). */
  id: string;
  /** The relay, `ws://…` or `wss://…`. */
  url: string;
  /** The WebSocket class (default: the global `WebSocket`; Node 20 has none: pass the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  /** Milliseconds between connection attempts after the socket closed (default 10000, v86's; 0 = never reconnect). */
  reconnectMs?: number;
  /** Frames held while the device cannot take them (default 1024; 0 = hold none). */
  backlogLimit?: number;
  /** Longest frame carried either way (default 1518: Ethernet with one VLAN tag; at most FRAME_MAX). */
  maxFrameLength?: number;
  /** Bytes the socket may have buffered before send() answers 'busy' (default 256 KiB). */
  sendBufferLimit?: number;
}

export interface WebSocketNetdevStats {
  /** Messages from the relay, whatever they held. */
  received: number;
  /** Of them: not binary (text), or shorter than an Ethernet header. */
  invalid: number;
  /** Of them: binary, longer than `maxFrameLength`. */
  oversize: number;
  /** Frames the device accepted. */
  delivered: number;
  /** Frames waiting now. */
  backlog: number;
  /** Frames refused because the backlog was full, or discarded by close(). */
  dropped: number;
  /** Guest frames sent to the relay. */
  transmitted: number;
  /** Guest frames answered 'dropped': too long, or the socket not open. */
  txDropped: number;
  /** send() answers 'busy' (the socket's buffer above `sendBufferLimit`). */
  txBusy: number;
  /** Connection attempts, and how many of them opened. */
  connectAttempts: number;
  connects: number;
  /** Times an open connection closed (not by close()). */
  disconnects: number;
}

export interface WebSocketNetdevEvents {
  /** The relay connection opened (the link is up). */
  connected: { url: string };
  /** The relay connection closed or failed to open (the link is down); `code` / `reason` from the close frame. */
  disconnected: { url: string; code: number; reason: string };
  /** The link changed (what onLinkChange listeners get). */
  'link-change': LinkStateChange;
}

/** Default backlog: a burst of a few hundred frames without unbounded memory (as MemoryNetdev). */
const DEFAULT_BACKLOG_LIMIT = 1024;
/** v86's NetworkAdapter reconnect_interval. */
const DEFAULT_RECONNECT_MS = 10_000;
/** 1500-byte MTU + Ethernet header (14) + one VLAN tag (4): a relay carries no offloads, so no GSO frames. */
const DEFAULT_MAX_FRAME = 1518;
/** Ethernet header: destination, source, EtherType. Shorter messages are not frames. */
const ETH_HLEN = 14;
/** About 170 full-size frames: keeps the relay link busy, and a stalled relay backs up to the guest's tx ring at once. */
const DEFAULT_SEND_BUFFER_LIMIT = 256 * 1024;
/** How often a 'busy' netdev looks at `bufferedAmount` again (a WebSocket has no drain event). */
const DRAIN_POLL_MS = 5;

export class WebSocketNetdev extends TypedEmitter<WebSocketNetdevEvents> implements Netdev, LinkStateCapable {
  readonly id: string;
  readonly url: string;
  readonly reconnectMs: number;
  readonly backlogLimit: number;
  readonly maxFrameLength: number;
  readonly sendBufferLimit: number;
  private readonly Socket: WebSocketConstructor;
  private socket: WebSocketLike | null = null;
  private peer: NetdevPeer | null = null;
  private readonly backlog: FrameFifo;
  private paused = false;
  private draining = false;
  /** send() answered 'busy': the device waits for writable(). */
  private blocked = false;
  private drainTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private lastAttemptAt = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private open = false;
  private linkDowns = 0;
  private linkUps = 0;
  private lastLinkChange: LinkStateChange | null = null;
  private readonly counters = {
    received: 0,
    invalid: 0,
    oversize: 0,
    delivered: 0,
    dropped: 0,
    transmitted: 0,
    txDropped: 0,
    txBusy: 0,
    connectAttempts: 0,
    connects: 0,
    disconnects: 0,
  };

  constructor(options: WebSocketNetdevOptions) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new TypeError('WebSocketNetdev: options must be an object { id, url, WebSocket?, reconnectMs?, backlogLimit?, maxFrameLength?, sendBufferLimit? }');
    }
    const { id, url, reconnectMs, backlogLimit, maxFrameLength, sendBufferLimit } = options;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`WebSocketNetdev: options.id must be a non-empty string, got ${String(id)}`);
    if (typeof url !== 'string' || !/^wss?:\/\/[^/]/i.test(url)) throw new TypeError(`WebSocketNetdev ${id}: options.url must be a ws:// or wss:// URL, got ${String(url)}`);
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof Socket !== 'function') {
      throw new TypeError(`WebSocketNetdev ${id}: no global WebSocket here (Node 20 has none): pass options.WebSocket, e.g. the ws package's class`);
    }
    const count = (name: string, v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void => {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < min || v > max)) {
        throw new RangeError(`WebSocketNetdev ${id}: options.${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
      }
    };
    count('reconnectMs', reconnectMs, 0);
    count('backlogLimit', backlogLimit, 0);
    count('maxFrameLength', maxFrameLength, ETH_HLEN, FRAME_MAX);
    count('sendBufferLimit', sendBufferLimit, 1);
    this.id = id;
    this.url = url;
    this.Socket = Socket;
    this.reconnectMs = reconnectMs ?? DEFAULT_RECONNECT_MS;
    this.backlogLimit = backlogLimit ?? DEFAULT_BACKLOG_LIMIT;
    this.maxFrameLength = maxFrameLength ?? DEFAULT_MAX_FRAME;
    this.sendBufferLimit = sendBufferLimit ?? DEFAULT_SEND_BUFFER_LIMIT;
    this.backlog = new FrameFifo({ maxFrames: this.backlogLimit }); // each frame at most maxFrameLength bytes
    this.connect();
  }

  // ---- Netdev ----

  attach(peer: NetdevPeer): void {
    if (this.closed) throw new Error(`WebSocketNetdev ${this.id}: closed`);
    if (this.peer !== null) throw new Error(`WebSocketNetdev ${this.id}: a device is already attached`);
    checkPeer(`WebSocketNetdev ${this.id}`, peer);
    this.peer = peer;
    this.paused = false;
    this.drain();
  }

  detach(): void {
    this.peer = null;
    this.blocked = false;
  }

  /** A guest frame to the relay, one binary message (a copy: the device's frame is a view of guest memory). */
  send(frame: Uint8Array): SendResult {
    const socket = this.socket;
    // CLOSING counts as gone: both the browser's WebSocket and ws drop a message sent then silently.
    if (this.closed || !this.open || socket === null || socket.readyState !== OPEN || frame.length > this.maxFrameLength) {
      this.counters.txDropped++;
      return 'dropped';
    }
    if (socket.bufferedAmount > this.sendBufferLimit) {
      this.counters.txBusy++;
      this.blocked = true;
      this.pollDrain();
      return 'busy';
    }
    try {
      socket.send(frame.slice());
    } catch {
      // The socket closed under us (its close event is on its way): the frame is lost.
      this.counters.txDropped++;
      return 'dropped';
    }
    this.counters.transmitted++;
    return 'sent';
  }

  pauseReceive(): void {
    this.paused = true;
  }

  resumeReceive(): void {
    this.paused = false;
    this.drain();
  }

  /** Closes the socket (waits for it to close), stops reconnecting, drops held frames (counted in `dropped`). Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    this.clearTimers();
    this.counters.dropped += this.backlog.clear(true);
    this.peer = null;
    this.blocked = false;
    this.open = false;
    const socket = this.socket;
    this.socket = null;
    this.closing =
      socket === null || socket.readyState > OPEN
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            socket.onopen = null;
            socket.onmessage = null;
            socket.onerror = () => {};
            socket.onclose = () => resolve();
            socket.close(1000, 'netdev closed');
          });
    return this.closing;
  }

  // ---- LinkStateCapable ----

  /** True while the relay connection is open. */
  get linkUp(): boolean {
    return this.open;
  }

  onLinkChange(listener: (change: LinkStateChange) => void): () => void {
    this.on('link-change', listener);
    return () => void this.off('link-change', listener);
  }

  linkStatus(): LinkStatus {
    return { up: this.open, downs: this.linkDowns, ups: this.linkUps, last: this.lastLinkChange };
  }

  // ---- reports ----

  /** True while the relay connection is open (the same as `linkUp`). */
  get connected(): boolean {
    return this.open;
  }

  stats(): WebSocketNetdevStats {
    return { ...this.counters, backlog: this.backlog.length, dropped: this.counters.dropped + this.backlog.dropped };
  }

  // ---- internals ----

  private connect(): void {
    this.reconnectTimer = null;
    if (this.closed) return;
    this.counters.connectAttempts++;
    this.lastAttemptAt = Date.now();
    let socket: WebSocketLike;
    try {
      socket = new this.Socket(this.url);
    } catch {
      // The constructor refused (a URL the class rejects, a blocked port): try again later.
      this.scheduleReconnect();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = (() => this.opened(socket)) as (e: never) => void;
    socket.onmessage = ((e: { data: unknown }) => this.message(socket, e.data)) as (e: never) => void;
    socket.onclose = ((e: { code?: number; reason?: string }) => this.socketClosed(socket, e.code ?? 1006, e.reason ?? '')) as (e: never) => void;
    // A failed connection or a broken one also fires 'close', which is where it is handled.
    socket.onerror = (() => {}) as (e: never) => void;
  }

  private opened(socket: WebSocketLike): void {
    if (socket !== this.socket || this.closed) return;
    this.open = true;
    this.counters.connects++;
    this.linkChanged('connected');
    this.emit('connected', { url: this.url });
  }

  private socketClosed(socket: WebSocketLike, code: number, reason: string): void {
    if (socket !== this.socket || this.closed) return;
    this.socket = null;
    const wasOpen = this.open;
    this.open = false;
    if (wasOpen) {
      this.counters.disconnects++;
      this.linkChanged('disconnected');
    }
    if (this.blocked) {
      // The device waits for writable() after a 'busy' the closed socket will never end: release
      // it, so its next send() is answered (dropped, or not made at all with the link down).
      this.blocked = false;
      this.peer?.writable();
    }
    this.emit('disconnected', { url: this.url, code, reason });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectMs === 0 || this.reconnectTimer !== null) return;
    const wait = Math.max(0, this.lastAttemptAt + this.reconnectMs - Date.now());
    this.reconnectTimer = setTimeout(() => this.connect(), wait);
  }

  private message(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.socket || this.closed) return;
    this.counters.received++;
    let frame: Uint8Array;
    if (data instanceof ArrayBuffer) frame = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.counters.invalid++; // text, or a Blob (binaryType changed behind our back)
      return;
    }
    if (frame.length < ETH_HLEN) {
      this.counters.invalid++;
      return;
    }
    if (frame.length > this.maxFrameLength) {
      this.counters.oversize++;
      return;
    }
    const peer = this.peer;
    if (peer !== null && !this.paused && !this.draining && this.backlog.length === 0) {
      if (peer.receive(frame)) {
        this.counters.delivered++;
        return;
      }
      this.paused = true; // The device took none of it: hold it until resumeReceive().
    }
    this.backlog.push(frame); // false: full, counted in backlog.dropped
  }

  /** Delivers held frames in order until the device says false or pauses. Re-entrancy safe. */
  private drain(): void {
    if (this.draining || this.closed) return;
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

  /** While 'busy': look at the socket's buffer again shortly; at half the limit, the device may send again. */
  private pollDrain(): void {
    if (this.drainTimer !== null) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = null;
      if (!this.blocked || this.closed) return;
      const socket = this.socket;
      if (socket !== null && this.open && socket.bufferedAmount > this.sendBufferLimit / 2) {
        this.pollDrain();
        return;
      }
      this.blocked = false;
      this.peer?.writable();
    }, DRAIN_POLL_MS);
  }

  private linkChanged(reason: LinkChangeReason): void {
    if (this.open) this.linkUps++;
    else this.linkDowns++;
    const change: LinkStateChange = { up: this.open, reason, atMs: Date.now() };
    this.lastLinkChange = change;
    this.emit('link-change', change);
  }

  private clearTimers(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    this.reconnectTimer = null;
    this.drainTimer = null;
  }
}
