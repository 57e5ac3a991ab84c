// The relay's backpressure towards a slow backend (the Netdev contract: hold, pause, count). The
// backend is a real StreamNetdev whose peer — a unix socket server in this process — does not read
// at first: the kernel's socket buffer fills, the netdev answers 'busy', and the relay must hold
// the frame and stop reading the WebSocket client (TCP then holds the sender back) instead of
// dropping frames. When the peer reads again, every frame arrives, in order, and the counters add
// up (for the backend = taken + dropped + overflowed + held), with at most backendHoldLimit frames
// held in the relay at any time.

import { expect } from 'chai';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { RelayServer } from '../../../lib/cli/relay-server.js';
import { StreamNetdev } from '../../../lib/netdev/stream-netdev.js';

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Frame i: to an unknown unicast MAC (so flooded to the backend), its sequence number at byte 14. */
function frame(i: number, length: number): Buffer {
  const f = Buffer.alloc(length, i & 0xff);
  Buffer.from([0x02, 0, 0, 0, 0, 0xee, 0x02, 0, 0, 0, 0, 0x0a, 0x88, 0xb5]).copy(f, 0);
  f.writeUInt32BE(i, 14);
  return f;
}

describe('lib/cli/relay-server backpressure towards the backend', function () {
  this.timeout(120_000);
  let dir: string;
  const closers: (() => unknown)[] = [];

  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'vnm-relay-bp-'))));
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a_busy_backend_pauses_client_reading_and_loses_nothing_with_bounded_holding', async () => {
    const FRAME_LEN = 1500;
    // The slow peer: accepts, reads nothing until told, then parses QEMU's stream framing.
    const path = join(dir, 'slow.sock');
    let peerSocket: net.Socket | null = null;
    const seqs: number[] = [];
    let badLengths = 0;
    const srv = net.createServer((s) => {
      peerSocket = s;
      s.pause();
      let buf = Buffer.alloc(0);
      s.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 4) {
          const len = buf.readUInt32BE(0);
          if (buf.length < 4 + len) break;
          if (len !== FRAME_LEN) badLengths++;
          seqs.push(buf.readUInt32BE(4 + 14));
          buf = buf.subarray(4 + len);
        }
      });
    });
    closers.push(() => new Promise<void>((r) => srv.close(() => r())));
    await new Promise<void>((r) => srv.listen(path, r));
    const N = 12_000; // 18 MB: more than the unix socket and the loopback TCP buffers hold together

    const backend = new StreamNetdev({ id: 'slow', path });
    await backend.open();
    const relay = new RelayServer({ backend, host: '127.0.0.1', port: 0 });
    await relay.listen();
    closers.push(() => relay.close());
    await until('the peer to accept', () => peerSocket !== null);

    const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/`);
    closers.push(() => ws.terminate());
    await once(ws, 'open');
    for (let i = 0; i < N; i++) ws.send(frame(i, FRAME_LEN));

    // The backend fills and answers busy; the relay holds, stops reading, and drops nothing.
    await until('the backend to answer busy', () => relay.stats().backendBusy > 0);
    await new Promise((r) => setTimeout(r, 1000));
    const paused = relay.stats();
    expect(paused.pausedForBackend, JSON.stringify(paused)).to.equal(true);
    expect(paused.backendDrops + paused.backendOverflow, JSON.stringify(paused)).to.equal(0);
    expect(paused.backendHeld).to.be.within(1, relay.backendHoldLimit);
    expect(paused.fromClients, 'reading stopped: the rest waits in TCP and in the client').to.be.lessThan(N);
    // Still paused a moment later: nothing more read while the backend is stuck.
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.stats().fromClients).to.equal(paused.fromClients);

    // The peer reads again: everything arrives, in order, and reading resumes.
    peerSocket!.resume();
    await until(`all ${N} frames at the peer`, () => seqs.length >= N, 90_000);
    const s = relay.stats();
    expect(seqs.length).to.equal(N);
    expect(badLengths).to.equal(0);
    expect(seqs.every((v, i) => v === i), 'in order, none missing').to.equal(true);
    expect(s.fromClients).to.equal(N);
    expect(s.forBackend).to.equal(N);
    expect(s.toBackend + s.backendDrops + s.backendOverflow + s.backendHeld, JSON.stringify(s)).to.equal(s.forBackend);
    expect(s.toBackend).to.equal(N);
    expect(s.backendHeld).to.equal(0);
    expect(s.pausedForBackend).to.equal(false);
    expect(s.backendHeldMax, 'the relay never held more than its bound').to.be.within(1, relay.backendHoldLimit);
    expect(s.backendBusy).to.be.greaterThan(0);
  });

  it('with_a_hold_queue_of_one_frame_every_frame_is_still_taken_or_counted', async () => {
    // Same slow peer, the smallest queue: frames ws had read before reading paused overflow it,
    // each one counted; nothing disappears uncounted.
    const path = join(dir, 'slow1.sock');
    let peerSocket: net.Socket | null = null;
    let frames = 0;
    const srv = net.createServer((s) => {
      peerSocket = s;
      s.pause();
      let buf = Buffer.alloc(0);
      s.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          frames++;
          buf = buf.subarray(4 + buf.readUInt32BE(0));
        }
      });
    });
    closers.push(() => new Promise<void>((r) => srv.close(() => r())));
    await new Promise<void>((r) => srv.listen(path, r));
    const backend = new StreamNetdev({ id: 'slow1', path });
    await backend.open();
    const relay = new RelayServer({ backend, host: '127.0.0.1', port: 0, backendHoldLimit: 1 });
    await relay.listen();
    closers.push(() => relay.close());
    await until('the peer to accept', () => peerSocket !== null);
    const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/`);
    closers.push(() => ws.terminate());
    await once(ws, 'open');
    const N = 8000;
    for (let i = 0; i < N; i++) ws.send(frame(i, 1500));
    await until('the backend to answer busy', () => relay.stats().backendBusy > 0);
    expect(relay.stats().backendHeldMax).to.equal(1);
    peerSocket!.resume();
    await until('every frame taken or counted', () => {
      const s = relay.stats();
      return s.fromClients === N && s.backendHeld === 0 && frames === s.toBackend;
    }, 90_000);
    const s = relay.stats();
    expect(s.forBackend).to.equal(N);
    expect(s.toBackend + s.backendDrops + s.backendOverflow, JSON.stringify(s)).to.equal(N);
    expect(frames, 'the peer got exactly what the backend took').to.equal(s.toBackend);
    expect(s.backendHeldMax).to.equal(1);
  });
});
