// A framed frame socket: what QEMU's `-chardev socket` is to filter-mirror, filter-redirector and
// colo-compare (QEMU chardev/char-socket.c; framing in lib/chardev/framing.ts). Unix or TCP, as a
// server (listens, one client at a time, like a QEMU server chardev) or a client (connects once).
// TCP servers bind to 127.0.0.1 unless `host` says otherwise.
//
//   write(frame) ─▶ encodeFrame ─▶ socket            socket ─▶ FrameReader ─▶ 'frame' event
//
// Bad input framing: a 'diagnostic' with the framing error's code, the connection is dropped
// (a server then waits for the next client); frames before the bad one were delivered. Output
// while nobody is connected, or beyond `maxPendingBytes` unread by the peer, is dropped and
// counted (the datapath never waits on a management socket).

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { encodeFrame, FrameReader, type FramingError } from './framing.js';
import { listenUnixPrivate, type UnixSocketFile } from './unix-socket-file.js';

export type SocketEndpoint = { path: string } | { host?: string; port: number };

export interface ChardevSocketOptions {
  /** Name used in messages and diagnostics (QEMU's chardev id). */
  id: string;
  endpoint: SocketEndpoint;
  /** Listen (true) or connect (false). */
  server: boolean;
  /** Frames carry the vnet header length word (QEMU `vnet_hdr_support`). */
  vnetHdrSupport?: boolean;
  /** Unread output allowed before frames are dropped (default 4 MiB). */
  maxPendingBytes?: number;
}

export type ChardevDiagnostic =
  | (FramingError & { id: string })
  | { code: 'chardev.extra-client-refused'; id: string }
  | { code: 'chardev.socket-error'; id: string; message: string };

export interface ChardevStats {
  framesIn: number;
  framesOut: number;
  /** Output dropped: nobody connected, or the peer is not reading. */
  droppedOut: number;
  /** Connections dropped for bad framing. */
  framingErrors: number;
}

/** Unread output allowed by default: a few hundred full-size frames. */
const DEFAULT_MAX_PENDING = 4 * 1024 * 1024;

type Events = {
  frame: [frame: Uint8Array, vnetHeader: Uint8Array | undefined];
  diagnostic: [ChardevDiagnostic];
  connect: [];
  disconnect: [];
};

export class ChardevSocket extends EventEmitter<Events> {
  readonly id: string;
  readonly vnetHdrSupport: boolean;
  private readonly endpoint: SocketEndpoint;
  private readonly isServer: boolean;
  private readonly maxPending: number;
  private server: net.Server | undefined;
  private socketFile: UnixSocketFile | undefined;
  private socket: net.Socket | undefined;
  private closed = false;
  private readonly counters: ChardevStats = { framesIn: 0, framesOut: 0, droppedOut: 0, framingErrors: 0 };

  constructor(options: ChardevSocketOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('ChardevSocket: options must be an object');
    const { id, endpoint, server, vnetHdrSupport = false, maxPendingBytes = DEFAULT_MAX_PENDING } = options;
    if (typeof id !== 'string' || id === '') throw new TypeError(`ChardevSocket: options.id must be a non-empty string, got ${String(id)}`);
    if (endpoint === null || typeof endpoint !== 'object' || !('path' in endpoint || 'port' in endpoint)) {
      throw new TypeError(`ChardevSocket ${id}: options.endpoint must be { path } (unix) or { host?, port } (TCP)`);
    }
    if ('path' in endpoint && (typeof endpoint.path !== 'string' || endpoint.path === '')) {
      throw new TypeError(`ChardevSocket ${id}: options.endpoint.path must be a non-empty string`);
    }
    if ('port' in endpoint && (!Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 65535)) {
      throw new TypeError(`ChardevSocket ${id}: options.endpoint.port must be an integer from 0 to 65535, got ${String(endpoint.port)}`);
    }
    if (typeof server !== 'boolean') throw new TypeError(`ChardevSocket ${id}: options.server must be a boolean (true = listen)`);
    if (typeof vnetHdrSupport !== 'boolean') throw new TypeError(`ChardevSocket ${id}: options.vnetHdrSupport must be a boolean`);
    if (!Number.isSafeInteger(maxPendingBytes) || maxPendingBytes < 0) {
      throw new TypeError(`ChardevSocket ${id}: options.maxPendingBytes must be an integer >= 0`);
    }
    this.id = id;
    this.endpoint = endpoint;
    this.isServer = server;
    this.vnetHdrSupport = vnetHdrSupport;
    this.maxPending = maxPendingBytes;
  }

  /** Starts listening, or connects. Resolves when ready. */
  async open(): Promise<void> {
    if (this.isServer) {
      const srv = net.createServer((s) => this.accept(s));
      this.server = srv;
      const listen = (where: net.ListenOptions): Promise<void> =>
        new Promise<void>((done, failed) => {
          srv.once('error', failed);
          srv.listen(where, () => {
            srv.off('error', failed);
            srv.on('error', (e) => this.emit('diagnostic', { code: 'chardev.socket-error', id: this.id, message: e.message }));
            done();
          });
        });
      // A unix server's socket file is 0600 and only ever removed by us (unix-socket-file.ts).
      if ('path' in this.endpoint) this.socketFile = await listenUnixPrivate(`ChardevSocket ${this.id}`, this.endpoint.path, (path) => listen({ path }));
      else await listen({ port: this.endpoint.port, host: this.endpoint.host ?? '127.0.0.1' });
      return;
    }
    const s = 'path' in this.endpoint ? net.connect(this.endpoint.path) : net.connect(this.endpoint.port, this.endpoint.host ?? '127.0.0.1');
    await new Promise<void>((done, failed) => {
      s.once('error', failed);
      s.once('connect', () => {
        s.off('error', failed);
        done();
      });
    });
    this.adopt(s);
  }

  /** The TCP port actually bound (server with port 0), or undefined. */
  get port(): number | undefined {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  stats(): ChardevStats {
    return { ...this.counters };
  }

  /** Sends one frame. False when it was dropped (no peer, or the peer is not reading). */
  write(frame: Uint8Array, vnetHeader?: Uint8Array): boolean {
    const s = this.socket;
    if (s === undefined || s.writableLength > this.maxPending) {
      this.counters.droppedOut++;
      return false;
    }
    s.write(encodeFrame(frame, vnetHeader, this.vnetHdrSupport));
    this.counters.framesOut++;
    return true;
  }

  /** Closes the connection and the listener (removing the unix socket file it created, if still there). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    this.socket = undefined;
    const srv = this.server;
    if (srv !== undefined) {
      await new Promise<void>((done) => srv.close(() => done()));
      await this.socketFile?.remove();
    }
  }

  private accept(s: net.Socket): void {
    if (this.closed || this.socket !== undefined) {
      s.on('error', () => undefined);
      s.destroy();
      if (!this.closed) this.emit('diagnostic', { code: 'chardev.extra-client-refused', id: this.id });
      return;
    }
    this.adopt(s);
  }

  private adopt(s: net.Socket): void {
    this.socket = s;
    const reader = new FrameReader(this.vnetHdrSupport, (frame, hdr) => {
      this.counters.framesIn++;
      this.emit('frame', frame, hdr);
    });
    const bad = (e: FramingError): void => {
      this.counters.framingErrors++;
      this.emit('diagnostic', { ...e, id: this.id });
      s.destroy();
    };
    s.on('data', (chunk: Buffer) => {
      if (reader.error !== undefined) return; // already reported; the socket is going away
      const e = reader.push(chunk);
      if (e !== undefined) bad(e);
    });
    s.on('end', () => {
      if (reader.error !== undefined) return;
      const e = reader.end();
      if (e !== undefined) bad(e);
      else s.end();
    });
    s.on('error', (e) => this.emit('diagnostic', { code: 'chardev.socket-error', id: this.id, message: e.message }));
    s.on('close', () => {
      if (this.socket === s) this.socket = undefined;
      if (!this.closed) this.emit('disconnect');
    });
    this.emit('connect');
  }
}
