// QEMU's `-netdev stream` backend (QEMU net/stream.c; no VIRTIO section: the host side): frames on
// a unix or TCP stream socket, each one a 4-byte big-endian length and the frame, no virtio-net
// header — the framing of QEMU's socket filters without the vnet word, so one implementation
// (lib/chardev/framing.ts) reads both. QEMU, passt and gvisor-tap-vsock speak it.
//
// Roles as in QEMU: a server listens and takes one peer at a time (a second one is refused and
// counted; QEMU leaves it waiting in the listen queue instead); a client connects, and with
// `reconnectMs` tries again that long after a failed attempt or a lost connection (QEMU 8's
// `reconnect=` seconds, 9.2's `reconnect-ms`). `'connected'` (with the peer address in QEMU's
// SocketAddress form, what NETDEV_STREAM_CONNECTED carries) and `'disconnected'` are events; the
// link (LinkStateCapable, reason 'peer-connection') is up exactly while a peer is connected, so the
// guest sees LINK_UP follow the socket as it does with QEMU (link_down until connected).
//
// Host → guest: socket bytes → FrameReader → peer.receive(view). A refusal (or pauseReceive) leaves
// the frame held inside the reader (no copy) and pauses the socket: the kernel's buffers fill and
// TCP / the unix socket push back on the sender; resumeReceive() offers the held frame again, then
// the bytes after it, then resumes the socket. Memory held per netdev is bounded by the reader's
// one frame buffer (at most MAX_FRAMED_LENGTH), one socket chunk and the stream's read buffer.
// A length of 0 or above MAX_FRAMED_LENGTH (e.g. a hostile 4 GiB) is checked before any buffer
// grows: counted (`rxFramingErrors`) and the connection dropped. With no device attached a frame is
// dropped and counted, as QEMU drops for a netdev without a peer. Counters add up:
// rxFrames = rxDelivered + rxDropped + (1 while a frame is held).
// Guest → host: send() writes one framed copy (the socket keeps the bytes after the call). Past the
// socket's high-water mark the frame is still taken and later sends answer 'busy' until 'drain'
// (then peer.writable()). With no peer connected a frame is 'dropped' and counted (QEMU drops
// frames while link_down).

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { encodeFrame, FrameReader, MAX_FRAMED_LENGTH, type FramingError } from '../chardev/framing.js';
import { listenUnixPrivate, type UnixSocketFile } from '../chardev/unix-socket-file.js';
import type { LinkStateCapable, LinkStateChange, LinkStatus, Netdev, NetdevPeer, SendResult } from './netdev.js';
import { checkPeer } from './netdev.js';

export interface StreamNetdevOptions {
  /** Net client id (QEMU's `-netdev stream,id=`). */
  id: string;
  /** Unix socket path (QEMU `addr.type=unix,addr.path=`). Exactly one of `path` and `port`. */
  path?: string;
  /** TCP host (QEMU `addr.type=inet,addr.host=`; default 127.0.0.1). */
  host?: string;
  /** TCP port (QEMU `addr.port=`; 0 with `server` picks a free one, see `port`). */
  port?: number;
  /** Listen (true) or connect (false, the default), QEMU's `server=on|off`. */
  server?: boolean;
  /** Client only: try again this long after a failed connect or a lost connection (0: never). */
  reconnectMs?: number;
}

/** A peer address in QEMU's SocketAddress form (qapi/sockets.json), as NETDEV_STREAM_CONNECTED carries it. */
export type StreamSocketAddress =
  | { type: 'unix'; path: string }
  | { type: 'inet'; host: string; port: string; ipv4?: true; ipv6?: true };

export interface StreamNetdevStats {
  /** Complete frames read from the socket. */
  rxFrames: number;
  rxBytes: number;
  /** Frames the device took. */
  rxDelivered: number;
  /** Frames dropped: no device attached, or held when the connection ended or the netdev closed. */
  rxDropped: number;
  /** Times reading stopped because the device refused a frame or paused. */
  rxPaused: number;
  /** Connections dropped for bad framing (a zero or too large length); each counts as a dropped frame. */
  rxFramingErrors: number;
  txFrames: number;
  txBytes: number;
  /** send() answered 'busy' (the socket's write buffer is past its high-water mark). */
  txBusy: number;
  /** send() answered 'dropped': no peer connected, the netdev closed, or the frame too long. */
  txDropped: number;
  /** Connections made (accepted or connected). */
  connects: number;
  disconnects: number;
  /** Server: peers refused because one was already connected. */
  refusedPeers: number;
  /** Client: connect attempts that failed. */
  connectFailures: number;
}

type Events = {
  connected: [addr: StreamSocketAddress];
  disconnected: [];
  /** A socket error or bad framing, for logs (the netdev handles it: drop, reconnect). */
  diagnostic: [{ code: string; id: string; message: string }];
};

/** Reconnect delays allowed: QEMU's `reconnect` is at most 2^32-1 s; a day is plenty here. */
const MAX_RECONNECT_MS = 24 * 60 * 60 * 1000;

export class StreamNetdev extends EventEmitter<Events> implements Netdev, LinkStateCapable {
  readonly id: string;
  /** QMP forwards this netdev's connection events as NETDEV_STREAM_* (lib/qmp). */
  readonly kind = 'stream' as const;
  readonly server: boolean;
  readonly reconnectMs: number;
  readonly path: string | undefined;
  readonly host: string;
  private readonly wantedPort: number;
  private peer: NetdevPeer | null = null;
  private listener: net.Server | undefined;
  private socketFile: UnixSocketFile | undefined;
  private socket: net.Socket | undefined;
  private reader: FrameReader | undefined;
  private peerAddress: StreamSocketAddress | undefined;
  private paused = false;
  private blocked = false;
  private closed = false;
  private opened = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly counters: StreamNetdevStats = {
    rxFrames: 0, rxBytes: 0, rxDelivered: 0, rxDropped: 0, rxPaused: 0, rxFramingErrors: 0,
    txFrames: 0, txBytes: 0, txBusy: 0, txDropped: 0, connects: 0, disconnects: 0, refusedPeers: 0, connectFailures: 0,
  };
  private readonly linkListeners = new Set<(change: LinkStateChange) => void>();
  private linkDowns = 0;
  private linkUps = 0;
  private lastLinkChange: LinkStateChange | null = null;

  constructor(options: StreamNetdevOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('StreamNetdev: options must be an object { id, path? | host?, port?, server?, reconnectMs? }');
    const { id, path, host, port, server = false, reconnectMs = 0 } = options;
    if (typeof id !== 'string' || id === '') throw new TypeError(`StreamNetdev: id must be a non-empty string, got ${String(id)}`);
    const who = `StreamNetdev ${id}`;
    if ((path === undefined) === (port === undefined)) throw new TypeError(`${who}: give exactly one of path (unix socket) and port (TCP)`);
    if (path !== undefined && (typeof path !== 'string' || path === '')) throw new TypeError(`${who}: path must be a non-empty string`);
    if (path !== undefined && host !== undefined) throw new TypeError(`${who}: host goes with port (TCP), not with path`);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535 || (port === 0 && !server))) {
      throw new RangeError(`${who}: port must be an integer from 1 to 65535 (0 only for a server), got ${String(port)}`);
    }
    if (host !== undefined && (typeof host !== 'string' || host === '')) throw new TypeError(`${who}: host must be a non-empty string`);
    if (typeof server !== 'boolean') throw new TypeError(`${who}: server must be a boolean (true = listen)`);
    if (!Number.isSafeInteger(reconnectMs) || reconnectMs < 0 || reconnectMs > MAX_RECONNECT_MS) {
      throw new RangeError(`${who}: reconnectMs must be an integer from 0 to ${MAX_RECONNECT_MS}, got ${String(reconnectMs)}`);
    }
    if (server && reconnectMs > 0) throw new TypeError(`${who}: reconnectMs is for a client (a server waits for its peer to come back)`);
    this.id = id;
    this.server = server;
    this.reconnectMs = reconnectMs;
    this.path = path;
    this.host = host ?? '127.0.0.1';
    this.wantedPort = port ?? 0;
  }

  /**
   * Starts listening (server) or connects (client). A client without `reconnectMs` rejects when
   * the first connect fails (QEMU refuses to start); with it, resolves and keeps trying.
   */
  async open(): Promise<void> {
    if (this.opened) throw new Error(`StreamNetdev ${this.id}: already opened`);
    if (this.closed) throw new Error(`StreamNetdev ${this.id}: closed`);
    this.opened = true;
    if (this.server) {
      const srv = net.createServer((s) => this.accept(s));
      this.listener = srv;
      const listen = (where: net.ListenOptions): Promise<void> =>
        new Promise<void>((done, failed) => {
          srv.once('error', failed);
          srv.listen(where, () => {
            srv.off('error', failed);
            srv.on('error', (e) => this.diagnostic('stream.listener-error', e.message));
            done();
          });
        });
      if (this.path !== undefined) this.socketFile = await listenUnixPrivate(`StreamNetdev ${this.id}`, this.path, (p) => listen({ path: p }));
      else await listen({ host: this.host, port: this.wantedPort });
      return;
    }
    const first = await this.connectOnce();
    if (first !== null && this.reconnectMs === 0) {
      this.closed = true;
      throw new Error(`StreamNetdev ${this.id}: cannot connect to ${this.describeTarget()}: ${first.message}`);
    }
  }

  /** The TCP port listened on (a server given port 0 learns it here), else the configured one. */
  get port(): number {
    const a = this.listener?.address();
    return a !== null && typeof a === 'object' ? a.port : this.wantedPort;
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  /** The connected peer's address (QEMU's SocketAddress form), or undefined. */
  get address(): StreamSocketAddress | undefined {
    return this.peerAddress === undefined ? undefined : { ...this.peerAddress };
  }

  attach(peer: NetdevPeer): void {
    if (this.peer !== null) throw new Error(`StreamNetdev ${this.id}: a device is already attached`);
    checkPeer(`StreamNetdev ${this.id}`, peer);
    if (this.closed) throw new Error(`StreamNetdev ${this.id}: closed`);
    this.peer = peer;
    this.paused = false;
    this.resumeReading();
  }

  detach(): void {
    this.peer = null;
  }

  send(frame: Uint8Array): SendResult {
    const c = this.counters;
    const s = this.socket;
    if (this.blocked && s !== undefined && !this.closed) {
      c.txBusy++;
      return 'busy';
    }
    if (this.closed || s === undefined || frame.length === 0 || frame.length > MAX_FRAMED_LENGTH) {
      c.txDropped++;
      return 'dropped';
    }
    c.txFrames++;
    c.txBytes += frame.length;
    if (!s.write(encodeFrame(frame, undefined, false))) this.blocked = true;
    return 'sent';
  }

  pauseReceive(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket?.pause();
  }

  resumeReceive(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeReading();
  }

  stats(): StreamNetdevStats {
    return { ...this.counters };
  }

  /** A frame the device refused waits to be offered again (it counts in rxFrames, not yet in rxDelivered). */
  get holdingFrame(): boolean {
    return this.reader?.holding === true;
  }

  /** Bytes read from the socket and kept unparsed behind a held frame (bounded: the socket is paused). */
  get heldBytes(): number {
    return this.reader?.heldBytes ?? 0;
  }

  // ---- LinkStateCapable ----

  /** Up exactly while a peer is connected. */
  get linkUp(): boolean {
    return this.socket !== undefined && !this.closed;
  }

  onLinkChange(listener: (change: LinkStateChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`StreamNetdev ${this.id}: onLinkChange needs a function`);
    this.linkListeners.add(listener);
    return () => void this.linkListeners.delete(listener);
  }

  linkStatus(): LinkStatus {
    return { up: this.linkUp, downs: this.linkDowns, ups: this.linkUps, last: this.lastLinkChange };
  }

  /** Drops the connection (a held frame counts as dropped), stops listening or reconnecting, removes a unix socket it created. Idempotent. */
  async close(): Promise<void> {
    if (this.closed && this.listener === undefined && this.socket === undefined) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.socket;
    if (s !== undefined) {
      this.lost(s);
      s.destroy();
    }
    this.peer = null;
    const srv = this.listener;
    this.listener = undefined;
    if (srv !== undefined) await new Promise<void>((done) => srv.close(() => done()));
    await this.socketFile?.remove();
    this.linkListeners.clear();
  }

  // ---- connections ----

  private describeTarget(): string {
    return this.path !== undefined ? this.path : `${this.host}:${this.wantedPort}`;
  }

  /** One connect attempt; resolves with null once connected, or the error (a retry is scheduled with reconnectMs). */
  private connectOnce(): Promise<Error | null> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(new Error('closed'));
      const s = this.path !== undefined ? net.connect(this.path) : net.connect(this.wantedPort, this.host);
      const failed = (e: Error): void => {
        this.counters.connectFailures++;
        this.diagnostic('stream.connect-failed', `${this.describeTarget()}: ${e.message}`);
        s.destroy();
        this.scheduleReconnect();
        resolve(e);
      };
      s.once('error', failed);
      s.once('connect', () => {
        s.off('error', failed);
        if (this.closed) {
          s.destroy();
          return resolve(new Error('closed'));
        }
        this.adopt(s, this.path !== undefined ? { type: 'unix', path: this.path } : inetAddress(s.remoteAddress, s.remotePort));
        resolve(null);
      });
    });
  }

  private scheduleReconnect(): void {
    if (this.server || this.reconnectMs === 0 || this.closed || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connectOnce();
    }, this.reconnectMs);
  }

  private accept(s: net.Socket): void {
    if (this.closed || this.socket !== undefined) {
      s.on('error', () => undefined);
      s.destroy();
      if (!this.closed) {
        this.counters.refusedPeers++;
        this.diagnostic('stream.extra-peer-refused', 'a peer is already connected (one at a time)');
      }
      return;
    }
    // QEMU reports a unix server's own path (its local address) and a TCP server's peer.
    this.adopt(s, this.path !== undefined ? { type: 'unix', path: this.socketFile?.path ?? this.path } : inetAddress(s.remoteAddress, s.remotePort));
  }

  private adopt(s: net.Socket, addr: StreamSocketAddress): void {
    this.socket = s;
    this.peerAddress = addr;
    this.blocked = false;
    const reader = new FrameReader(false, (frame) => this.offer(frame));
    this.reader = reader;
    s.setNoDelay?.(true);
    s.on('data', (chunk: Buffer) => {
      if (this.socket !== s) return;
      const e = reader.push(chunk);
      if (e !== undefined) this.badFraming(s, e);
      else if (reader.holding) s.pause();
    });
    s.on('end', () => {
      if (this.socket === s) s.end();
    });
    s.on('drain', () => {
      if (this.socket !== s || !this.blocked) return;
      this.blocked = false;
      this.peer?.writable();
    });
    s.on('error', (e) => this.diagnostic('stream.socket-error', e.message));
    s.on('close', () => {
      if (this.socket !== s) return;
      this.lost(s);
      this.scheduleReconnect();
    });
    this.counters.connects++;
    if (this.paused) s.pause();
    this.linkChanged(true);
    this.emit('connected', { ...addr });
  }

  /** The connection ended (peer, error, bad framing or close()): counts, link down, event. */
  private lost(s: net.Socket): void {
    if (this.socket !== s) return;
    this.socket = undefined;
    this.peerAddress = undefined;
    if (this.reader?.holding === true) this.counters.rxDropped++;
    this.reader = undefined;
    this.counters.disconnects++;
    this.linkChanged(false);
    if (this.blocked) {
      // The device waits for writable() after a 'busy' that 'drain' will never end now: release
      // it, so its next send() is answered ('dropped') instead of its transmit queue stalling.
      this.blocked = false;
      this.peer?.writable();
    }
    this.emit('disconnected');
  }

  private badFraming(s: net.Socket, e: FramingError): void {
    this.counters.rxFramingErrors++;
    this.diagnostic(e.code, JSON.stringify(e));
    s.destroy(); // 'close' follows: lost(), then a client reconnects after reconnectMs
  }

  /** The reader's callback: false holds the frame in the reader (and the socket gets paused). */
  private offer(frame: Uint8Array): boolean {
    const c = this.counters;
    if (!this.reader?.holding) {
      // First offer of this frame (a re-offer from resume() comes with holding still true).
      c.rxFrames++;
      c.rxBytes += frame.length;
    }
    const peer = this.peer;
    if (peer === null) {
      c.rxDropped++;
      return true; // consumed: no device, as QEMU drops for a netdev without a peer
    }
    if (this.paused) return this.refused();
    if (!peer.receive(frame)) {
      this.paused = true;
      return this.refused();
    }
    c.rxDelivered++;
    return true;
  }

  private refused(): false {
    this.counters.rxPaused++;
    this.socket?.pause();
    return false;
  }

  private resumeReading(): void {
    const s = this.socket;
    const reader = this.reader;
    if (s === undefined || reader === undefined || this.paused) return;
    if (reader.holding) {
      const e = reader.resume();
      if (e !== undefined) return this.badFraming(s, e);
      if (reader.holding) return; // refused again: stays paused
    }
    s.resume();
  }

  private linkChanged(up: boolean): void {
    if (up) this.linkUps++;
    else this.linkDowns++;
    const change: LinkStateChange = { up, reason: 'peer-connection', atMs: Date.now() };
    this.lastLinkChange = change;
    queueMicrotask(() => {
      for (const l of [...this.linkListeners]) {
        try {
          l(change);
        } catch (err) {
          process.emitWarning(`StreamNetdev ${this.id}: a link-change listener threw: ${String(err)}`, 'NetdevWarning');
        }
      }
    });
  }

  private diagnostic(code: string, message: string): void {
    if (this.listenerCount('diagnostic') > 0) this.emit('diagnostic', { code, id: this.id, message });
  }
}

/** A TCP peer in QEMU's InetSocketAddress form: numeric host, port as a string, the family flag. */
function inetAddress(host: string | undefined, port: number | undefined): StreamSocketAddress {
  const h = host ?? '';
  return net.isIPv6(h) ? { type: 'inet', host: h, port: String(port ?? 0), ipv6: true } : { type: 'inet', host: h, port: String(port ?? 0), ipv4: true };
}
