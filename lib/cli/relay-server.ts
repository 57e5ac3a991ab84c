// The WebSocket side of `virtio-net relay`: a server speaking v86's relay protocol (one binary
// message per Ethernet frame, no header, both ways; see lib/netdev/websocket-netdev.ts) that joins
// every connected client and one backend netdev into a learning switch.
//
// Ports: the backend (attached as its NetdevPeer) and each WebSocket client. The switch learns a
// frame's source MAC (unicast sources only) on the port it came in on; a frame to a known MAC goes
// to that port only (dropped, counted `filtered`, when that is the port it came from); broadcast,
// multicast and unknown destinations go to every port but the one it came from (`flooded`).
// A client's entries go when it disconnects; a full table learns nothing more until entries go.
//
// Bounds: a message longer than `maxFrameLength` is counted `oversize`, one shorter than an
// Ethernet header or not binary (text) `invalid`; neither is forwarded. ws's own `maxPayload`
// (64 KiB) closes a client that sends more than that in one message. A client whose
// `bufferedAmount` is above `sendBufferLimit` misses frames (counted `clientDrops`, and per client):
// one slow client never holds the others or the backend up.
//
// Backpressure towards the backend (the Netdev contract: hold, pause, count): a frame the backend
// answers 'busy' is held (copied into a bounded FrameFifo, `backendHoldLimit` frames), and the relay
// stops reading every client's WebSocket (ws pause(): TCP then pushes back on the senders) until the
// backend calls writable(); then the held frames go first, in order, and reading resumes once they
// are all taken. Messages ws had already read when reading paused still arrive: frames among them
// for the backend join the queue, and past its bound are counted `backendOverflow`. A frame the
// backend answers 'dropped' is lost for good (`backendDrops`). Frames for the backend always add up:
//   forBackend = toBackend + backendDrops + backendOverflow + backendHeld.
// While reading is paused clients reach each other no faster than the backend takes frames.
//
// Frames from the backend are borrowed (netdev.ts): copied once, then the same copy goes to every
// client it is for. Frames from clients are ws's own fresh Buffers and are forwarded as they are.

import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { FrameFifo } from '../base/frame-fifo.js';
import type { Netdev, NetdevPeer } from '../netdev/netdev.js';

const ETH_HLEN = 14;
/** Ethernet with one VLAN tag, as WebSocketNetdev's default. */
const DEFAULT_MAX_FRAME = 1518;
/** Bytes a client may have queued before it misses frames (about 170 full-size frames). */
const DEFAULT_SEND_BUFFER_LIMIT = 256 * 1024;
/** Learned MACs at most. */
const DEFAULT_MAC_TABLE_LIMIT = 4096;
/** Frames held for a busy backend (what ws had read before reading paused; about 390 KiB of full frames). */
const DEFAULT_BACKEND_HOLD_LIMIT = 256;
/** ws closes (1009) a client that sends a single message longer than this. */
const MAX_PAYLOAD = 64 * 1024;

export interface RelayServerOptions {
  /** The backend all clients share; the server attaches to it and closes it on close(). */
  backend: Netdev;
  host: string;
  /** 0 = any free port (see `port` after listen()). */
  port: number;
  maxFrameLength?: number;
  sendBufferLimit?: number;
  macTableLimit?: number;
  /** Frames held while the backend is busy (default 256; at least 1: the frame it refused). */
  backendHoldLimit?: number;
}

export interface RelayStats {
  /** Clients connected now, and connections accepted in all. */
  clients: number;
  connections: number;
  /** Messages from clients, whatever they held. */
  fromClients: number;
  /** Of them: text, or shorter than an Ethernet header / longer than maxFrameLength. */
  invalid: number;
  oversize: number;
  /** Frames the backend gave the relay. */
  fromBackend: number;
  /** Frames sent to clients, and frames a client missed because its send buffer was full. */
  toClients: number;
  clientDrops: number;
  /** Frames for the backend (forwarded to its port): toBackend + backendDrops + backendOverflow + backendHeld. */
  forBackend: number;
  /** Frames the backend took. */
  toBackend: number;
  /** Frames it answered 'dropped' (lost for good). */
  backendDrops: number;
  /** Times it answered 'busy' (each time the relay holds the frame and stops reading clients). */
  backendBusy: number;
  /** Frames held for it now, and the most ever held at once (at most backendHoldLimit). */
  backendHeld: number;
  backendHeldMax: number;
  /** Frames for it that found the hold queue full (read before reading paused): dropped. */
  backendOverflow: number;
  /** True while client reading is paused for the backend. */
  pausedForBackend: boolean;
  /** Frames sent to every other port (broadcast, multicast, unknown destination). */
  flooded: number;
  /** Frames to a MAC learned on the port they came from: dropped. */
  filtered: number;
  /** MACs learned now. */
  macs: number;
}

interface Client {
  readonly id: number;
  readonly ws: WebSocket;
  readonly address: string;
  received: number;
  sent: number;
  drops: number;
}

/** The port a MAC was learned on. */
type Port = Client | 'backend';

/** The 48-bit MAC at `off` as a number (a Map key with no allocation). */
function macKey(f: Uint8Array, off: number): number {
  return (f[off]! * 0x10000 + f[off + 1]! * 0x100 + f[off + 2]!) * 0x1000000 + f[off + 3]! * 0x10000 + f[off + 4]! * 0x100 + f[off + 5]!;
}

export class RelayServer {
  readonly backend: Netdev;
  readonly host: string;
  readonly maxFrameLength: number;
  readonly sendBufferLimit: number;
  readonly macTableLimit: number;
  readonly backendHoldLimit: number;
  private readonly requestedPort: number;
  /** Frames the backend has not taken yet, oldest first. */
  private readonly held: FrameFifo;
  /** The backend answered 'busy' and has not called writable() since. */
  private backendBlocked = false;
  /** Client reading is paused until the held frames are all taken. */
  private readingPaused = false;
  private flushing = false;
  private heldMax = 0;
  private server: WebSocketServer | null = null;
  private readonly clients = new Set<Client>();
  private readonly macs = new Map<number, Port>();
  private nextId = 1;
  private closing: Promise<void> | null = null;
  private readonly counters = {
    connections: 0,
    fromClients: 0,
    invalid: 0,
    oversize: 0,
    fromBackend: 0,
    toClients: 0,
    clientDrops: 0,
    forBackend: 0,
    toBackend: 0,
    backendDrops: 0,
    backendBusy: 0,
    backendOverflow: 0,
    flooded: 0,
    filtered: 0,
  };

  constructor(options: RelayServerOptions) {
    const { backend, host, port, maxFrameLength, sendBufferLimit, macTableLimit, backendHoldLimit } = options;
    if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new RangeError(`RelayServer: port must be an integer in [0, 65535], got ${String(port)}`);
    const check = (name: string, v: number | undefined, min: number, max: number): void => {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < min || v > max)) throw new RangeError(`RelayServer: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
    };
    check('maxFrameLength', maxFrameLength, ETH_HLEN, MAX_PAYLOAD);
    check('sendBufferLimit', sendBufferLimit, 1, Number.MAX_SAFE_INTEGER);
    check('macTableLimit', macTableLimit, 0, Number.MAX_SAFE_INTEGER);
    check('backendHoldLimit', backendHoldLimit, 1, 1 << 16);
    this.backend = backend;
    this.host = host;
    this.requestedPort = port;
    this.maxFrameLength = maxFrameLength ?? DEFAULT_MAX_FRAME;
    this.sendBufferLimit = sendBufferLimit ?? DEFAULT_SEND_BUFFER_LIMIT;
    this.macTableLimit = macTableLimit ?? DEFAULT_MAC_TABLE_LIMIT;
    this.backendHoldLimit = backendHoldLimit ?? DEFAULT_BACKEND_HOLD_LIMIT;
    this.held = new FrameFifo({ maxFrames: this.backendHoldLimit, slotBytes: this.maxFrameLength });
  }

  /** Listens on host:port and attaches to the backend; rejects with the listen error (EADDRINUSE…). */
  async listen(): Promise<void> {
    if (this.server !== null) throw new Error('RelayServer: already listening');
    const server = new WebSocketServer({ host: this.host, port: this.requestedPort, maxPayload: MAX_PAYLOAD, perMessageDeflate: false });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('error', () => undefined); // after listening: per-connection errors arrive on the sockets
    server.on('connection', (ws, req) => this.accept(ws, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`));
    const peer: NetdevPeer = { receive: (frame) => this.fromBackend(frame), writable: () => this.backendWritable() };
    this.backend.attach(peer);
  }

  /** The port listened on (the chosen one when 0 was asked for). */
  get port(): number {
    const a = this.server?.address();
    return a !== null && a !== undefined && typeof a === 'object' ? (a as AddressInfo).port : this.requestedPort;
  }

  stats(): RelayStats {
    return { ...this.counters, clients: this.clients.size, macs: this.macs.size, backendHeld: this.held.length, backendHeldMax: this.heldMax, pausedForBackend: this.readingPaused };
  }

  /** Per client: its address and its counters. */
  clientStats(): { id: number; address: string; received: number; sent: number; drops: number }[] {
    return [...this.clients].map((c) => ({ id: c.id, address: c.address, received: c.received, sent: c.sent, drops: c.drops }));
  }

  /** Closes every client, the server and the backend. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = (async () => {
      for (const c of this.clients) c.ws.terminate();
      this.clients.clear();
      this.macs.clear();
      const server = this.server;
      if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
      this.backend.detach();
      await this.backend.close();
    })();
    return this.closing;
  }

  // ---- internals ----

  private accept(ws: WebSocket, address: string): void {
    if (this.closing !== null) {
      ws.terminate();
      return;
    }
    const client: Client = { id: this.nextId++, ws, address, received: 0, sent: 0, drops: 0 };
    this.clients.add(client);
    if (this.readingPaused) ws.pause();
    this.counters.connections++;
    ws.on('message', (data, isBinary) => this.fromClient(client, data, isBinary));
    ws.on('error', () => undefined); // 'close' follows
    ws.on('close', () => {
      this.clients.delete(client);
      for (const [mac, port] of this.macs) if (port === client) this.macs.delete(mac);
    });
  }

  private fromClient(client: Client, data: unknown, isBinary: boolean): void {
    this.counters.fromClients++;
    client.received++;
    if (!isBinary || !(data instanceof Uint8Array)) {
      this.counters.invalid++;
      return;
    }
    if (data.length < ETH_HLEN) {
      this.counters.invalid++;
      return;
    }
    if (data.length > this.maxFrameLength) {
      this.counters.oversize++;
      return;
    }
    this.forward(data, client);
  }

  private fromBackend(frame: Uint8Array): boolean {
    this.counters.fromBackend++;
    if (frame.length < ETH_HLEN || frame.length > this.maxFrameLength) {
      this.counters.oversize += frame.length > this.maxFrameLength ? 1 : 0;
      this.counters.invalid += frame.length < ETH_HLEN ? 1 : 0;
      return true;
    }
    // Borrowed: one copy, shared by every client it goes to (only made when one does).
    this.forward(frame, 'backend');
    return true; // never "no room": a client that cannot keep up misses frames instead
  }

  /** Learns the source, then sends to the destination's port, or floods. */
  private forward(frame: Uint8Array, from: Port): void {
    if ((frame[6]! & 1) === 0) {
      const src = macKey(frame, 6);
      const known = this.macs.get(src);
      if (known !== from && (known !== undefined || this.macs.size < this.macTableLimit)) this.macs.set(src, from);
    }
    const to = (frame[0]! & 1) === 0 ? this.macs.get(macKey(frame, 0)) : undefined;
    if (to !== undefined) {
      if (to === from) {
        this.counters.filtered++;
        return;
      }
      if (to === 'backend') this.toBackend(frame);
      else this.toClient(to, from === 'backend' ? frame.slice() : frame);
      return;
    }
    this.counters.flooded++;
    if (from !== 'backend') this.toBackend(frame);
    let copy: Uint8Array | null = from === 'backend' ? null : frame;
    for (const c of this.clients) {
      if (c === from) continue;
      copy ??= frame.slice();
      this.toClient(c, copy);
    }
  }

  private toClient(c: Client, frame: Uint8Array): void {
    if (c.ws.readyState !== c.ws.OPEN || c.ws.bufferedAmount > this.sendBufferLimit) {
      c.drops++;
      this.counters.clientDrops++;
      return;
    }
    c.ws.send(frame, { binary: true });
    c.sent++;
    this.counters.toClients++;
  }

  private toBackend(frame: Uint8Array): void {
    this.counters.forBackend++;
    // Behind held frames (or a backend that said busy): wait in line, in order.
    if (this.backendBlocked || this.held.length > 0) {
      this.hold(frame);
      return;
    }
    const r = this.backend.send(frame);
    if (r === 'sent') this.counters.toBackend++;
    else if (r === 'dropped') this.counters.backendDrops++;
    else {
      this.counters.backendBusy++;
      this.backendBlocked = true;
      this.hold(frame);
      this.pauseReading();
    }
  }

  /** Copies the frame into the hold queue; a full queue drops it, counted. */
  private hold(frame: Uint8Array): void {
    if (!this.held.push(frame)) {
      this.counters.backendOverflow++;
      return;
    }
    if (this.held.length > this.heldMax) this.heldMax = this.held.length;
  }

  /** The backend can take frames again: held ones first; reading resumes once none is left. */
  private backendWritable(): void {
    this.backendBlocked = false;
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.held.length > 0 && !this.backendBlocked) {
        const r = this.backend.send(this.held.peekFrame()!);
        if (r === 'busy') {
          this.counters.backendBusy++;
          this.backendBlocked = true;
          break;
        }
        if (r === 'sent') this.counters.toBackend++;
        else this.counters.backendDrops++;
        this.held.shift();
      }
    } finally {
      this.flushing = false;
    }
    if (this.held.length === 0 && !this.backendBlocked) this.resumeReading();
  }

  private pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    for (const c of this.clients) c.ws.pause();
  }

  private resumeReading(): void {
    if (!this.readingPaused || this.closing !== null) return;
    this.readingPaused = false;
    for (const c of this.clients) c.ws.resume();
  }
}
