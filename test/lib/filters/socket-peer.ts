// The far end of a ChardevSocket in tests: a plain node socket that writes raw bytes and reads
// frames with the same framing, plus small waiters (no sleeps: everything waits on an event).

import { once } from 'node:events';
import net from 'node:net';
import { FrameReader } from '../../../lib/chardev/framing.js';
import type { SocketEndpoint } from '../../../lib/chardev/chardev-socket.js';

export interface PeerFrame {
  frame: Uint8Array;
  hdr: Uint8Array | undefined;
}

export class SocketPeer {
  readonly frames: PeerFrame[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket, vnet: boolean) {
    const reader = new FrameReader(vnet, (f, h) => {
      this.frames.push({ frame: f.slice(), hdr: h?.slice() });
      this.wake();
    });
    socket.on('data', (d: Buffer) => reader.push(d));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async connect(endpoint: SocketEndpoint, vnet = false): Promise<SocketPeer> {
    const s = 'path' in endpoint ? net.connect(endpoint.path) : net.connect(endpoint.port, endpoint.host ?? '127.0.0.1');
    await once(s, 'connect');
    return new SocketPeer(s, vnet);
  }

  /** Wraps an accepted socket (the peer of a client-mode ChardevSocket). */
  static wrap(s: net.Socket, vnet = false): SocketPeer {
    return new SocketPeer(s, vnet);
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Resolves once `n` frames arrived (or rejects after `ms`). */
  async waitFrames(n: number, ms = 5000): Promise<PeerFrame[]> {
    await this.until(() => this.frames.length >= n, ms, `${n} frames (have ${this.frames.length})`);
    return this.frames.slice(0, n);
  }

  async waitClosed(ms = 5000): Promise<void> {
    await this.until(() => this.closed, ms, 'the connection to close');
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((done) => {
        const t = setTimeout(done, left);
        this.waiters.push(() => {
          clearTimeout(t);
          done();
        });
      });
    }
  }
}

/** Resolves when `cond()` holds, re-checking whenever `emitter` emits `event`. */
export async function waitFor(emitter: NodeJS.EventEmitter, event: string, cond: () => boolean, ms = 5000): Promise<void> {
  if (cond()) return;
  await new Promise<void>((done, fail) => {
    const t = setTimeout(() => {
      emitter.off(event, check);
      fail(new Error(`timed out waiting on '${event}'`));
    }, ms);
    function check(): void {
      if (!cond()) return;
      clearTimeout(t);
      emitter.off(event, check);
      done();
    }
    emitter.on(event, check);
  });
}
