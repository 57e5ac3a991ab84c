// WebSocketNetdev against a real relay: a `ws` WebSocketServer on 127.0.0.1 (an ephemeral port)
// playing v86's websockproxy — one binary message per Ethernet frame both ways — and a real
// VirtioNetDevice driven by the test driver (NetRig). Node 20 has no global WebSocket: the netdev
// is given the `ws` package's class, as a Node embedder would.

import { expect } from 'chai';
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { WebSocketNetdev } from '../../../lib/netdev/websocket-netdev.js';
import type { WebSocketConstructor } from '../../../lib/netdev/websocket-netdev.js';
import { hasLinkState } from '../../../lib/netdev/netdev.js';
import type { LinkStateChange } from '../../../lib/netdev/netdev.js';
import { NetStatus } from '../../../devices/virtio-net/constants.js';
import { NetRig, ethFrame } from '../../support/net-rig.js';

const MAIN = '52:54:00:12:34:56';
const PEER = '52:54:00:aa:bb:cc';
const WS: WebSocketConstructor = WebSocket;

/** Waits for `cond`, looking every 5 ms; fails naming `what` after `timeoutMs`. */
async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A relay on 127.0.0.1: every connection, and the binary messages each one sent, in order. */
class Relay {
  readonly server: WebSocketServer;
  readonly conns: WebSocket[] = [];
  readonly got: Uint8Array[][] = [];
  readonly closes: number[] = [];
  private constructor(server: WebSocketServer) {
    this.server = server;
    server.on('connection', (ws) => {
      const i = this.conns.length;
      this.conns.push(ws);
      this.got.push([]);
      ws.on('message', (data, isBinary) => {
        if (isBinary) this.got[i]!.push(new Uint8Array(data as Buffer));
      });
      ws.on('close', (code) => this.closes.push(code));
    });
  }
  static async start(): Promise<Relay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return new Relay(server);
  }
  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }
  get last(): WebSocket {
    return this.conns[this.conns.length - 1]!;
  }
  async stop(): Promise<void> {
    for (const c of this.conns) c.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A frame for the guest carrying `seq` in its first two payload bytes. */
function numbered(seq: number, payload = 46): Uint8Array {
  const f = ethFrame(MAIN, PEER, { payload });
  f[14] = seq >> 8;
  f[15] = seq & 0xff;
  return f;
}
const seqOf = (f: Uint8Array): number => (f[14]! << 8) | f[15]!;

describe('lib/netdev/websocket-netdev (a real ws relay on 127.0.0.1)', function () {
  this.timeout(20000);
  let relay: Relay;
  const opened: { netdev: WebSocketNetdev }[] = [];

  beforeEach(async () => {
    relay = await Relay.start();
  });
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.netdev.close();
    await relay.stop();
  });

  /** A device on a WebSocketNetdev to the relay, once the relay has the connection. */
  async function connectedRig(options: Partial<ConstructorParameters<typeof WebSocketNetdev>[0]> = {}): Promise<{ rig: NetRig; netdev: WebSocketNetdev }> {
    const netdev = new WebSocketNetdev({ id: 'hostnet0', url: relay.url, WebSocket: WS, ...options });
    opened.push({ netdev });
    const rig = new NetRig({ mac: MAIN, netdev });
    expect(netdev.linkUp, 'down until the relay answers').to.equal(false);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP, 'the guest sees no carrier yet').to.equal(0);
    await until('the relay connection', () => netdev.connected && relay.conns.length === 1);
    return { rig, netdev };
  }

  it('frames_cross_both_ways_one_binary_message_each_and_the_guest_sees_the_link_come_up', async () => {
    const { rig, netdev } = await connectedRig();
    expect(hasLinkState(netdev)).to.equal(true);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP, 'carrier once connected').to.equal(NetStatus.LINK_UP);
    expect(netdev.linkStatus()).to.deep.include({ up: true, ups: 1, downs: 0 });
    expect(netdev.linkStatus().last?.reason).to.equal('connected');

    // Relay → guest.
    rig.postRx(8);
    for (let i = 0; i < 3; i++) relay.last.send(numbered(i));
    await until('three frames delivered', () => netdev.stats().delivered === 3);
    expect(rig.received().map((r) => [...r.frame])).to.deep.equal([0, 1, 2].map((i) => [...numbered(i)]));

    // Guest → relay: the frame without its virtio-net header, one message each.
    const out1 = ethFrame(PEER, MAIN, { payload: 100, fill: 7 });
    const out2 = ethFrame('ff:ff:ff:ff:ff:ff', MAIN, { type: 0x0806, payload: 28, fill: 3 });
    expect(rig.send(out1)).to.deep.include({ len: 0 });
    expect(rig.send(out2, { split: 'header-apart' })).to.deep.include({ len: 0 });
    await until('two frames at the relay', () => relay.got[0]!.length === 2);
    expect(relay.got[0]!.map((f) => [...f])).to.deep.equal([[...out1], [...out2]]);
    expect(netdev.stats()).to.deep.include({ received: 3, delivered: 3, transmitted: 2, invalid: 0, oversize: 0, dropped: 0, txDropped: 0 });
    expect(rig.device.stats().tx.frames).to.equal(2);
  });

  it('a_flood_faster_than_the_guest_takes_is_held_up_to_the_limit_then_dropped_and_every_frame_is_counted', async () => {
    const { rig, netdev } = await connectedRig({ backlogLimit: 64 });
    rig.postRx(8);
    const N = 3000;
    for (let i = 0; i < N; i++) relay.last.send(numbered(i));
    let maxBacklog = 0;
    await until(`${N} messages at the netdev`, () => {
      maxBacklog = Math.max(maxBacklog, netdev.stats().backlog);
      return netdev.stats().received === N;
    });
    const s = netdev.stats();
    // 8 into guest buffers, the device's own backlog (RX_BACKLOG_FRAMES), then this netdev's 64.
    const dev = rig.device.stats().rx;
    expect(maxBacklog, 'memory bounded: never more than backlogLimit held').to.be.at.most(64);
    expect(s.backlog).to.equal(64);
    expect(s.dropped).to.be.greaterThan(0);
    expect(s.invalid + s.oversize).to.equal(0);
    expect(s.delivered + s.backlog + s.dropped, 'offered = delivered + held + dropped').to.equal(N);
    expect(dev.offered, 'what the device took is what the netdev delivered').to.equal(s.delivered);
    const devDrops = Object.values(dev.drops).reduce((a, b) => a + b, 0);
    expect(dev.frames + devDrops + dev.backlog).to.equal(dev.offered);

    // The guest catches up: everything held arrives, in order, and it is the head of the flood.
    const seqs: number[] = rig.received().map((r) => seqOf(r.frame));
    for (let round = 0; round < 100 && netdev.stats().backlog + rig.device.stats().rx.backlog > 0; round++) {
      rig.postRx(32);
      seqs.push(...rig.received().map((r) => seqOf(r.frame)));
    }
    const end = netdev.stats();
    expect(end.backlog).to.equal(0);
    expect(seqs).to.deep.equal([...Array(end.delivered).keys()]);
    expect(end.delivered + end.dropped).to.equal(N);
    expect(rig.device.stats().rx.frames).to.equal(end.delivered);
  });

  it('text_runt_and_oversize_messages_are_counted_and_never_reach_the_guest', async () => {
    const { rig, netdev } = await connectedRig();
    rig.postRx(8, 2048);
    relay.last.send('not a frame');
    relay.last.send(Uint8Array.of(1, 2, 3, 4, 5));
    relay.last.send(numbered(1, 1600)); // 1614 bytes > 1518
    relay.last.send(numbered(2));
    await until('four messages', () => netdev.stats().received === 4);
    expect(netdev.stats()).to.deep.include({ received: 4, invalid: 2, oversize: 1, delivered: 1, dropped: 0, backlog: 0 });
    expect(rig.received().map((r) => seqOf(r.frame))).to.deep.equal([2]);
    expect(rig.device.stats().rx.offered).to.equal(1);

    // A longer limit carries it.
    const big = await (async () => {
      const n = new WebSocketNetdev({ id: 'big', url: relay.url, WebSocket: WS, maxFrameLength: 9018 });
      opened.push({ netdev: n });
      await until('second connection', () => n.connected && relay.conns.length === 2);
      return n;
    })();
    relay.last.send(numbered(3, 1600));
    await until('the long frame held', () => big.stats().received === 1);
    expect(big.stats()).to.deep.include({ oversize: 0, backlog: 1 }); // no device attached: held
  });

  it('a_guest_frame_longer_than_the_limit_is_dropped_and_counted_by_both_sides', async () => {
    const { rig, netdev } = await connectedRig();
    expect(rig.send(ethFrame(PEER, MAIN, { payload: 1600 }))).to.deep.include({ len: 0 });
    expect(netdev.stats().txDropped).to.equal(1);
    expect(rig.device.stats().tx.errors.backend).to.equal(1);
    const ok = ethFrame(PEER, MAIN, { payload: 60 });
    rig.send(ok);
    await until('the next frame at the relay', () => relay.got[0]!.length === 1);
    expect([...relay.got[0]![0]!]).to.deep.equal([...ok]);
  });

  it('the_relay_closing_takes_the_link_down_and_the_netdev_reconnects', async () => {
    const { rig, netdev } = await connectedRig({ reconnectMs: 100 });
    const changes: LinkStateChange[] = [];
    netdev.onLinkChange((c) => changes.push(c));
    const disconnected = new Promise<{ code: number }>((resolve) => netdev.once('disconnected', resolve));
    relay.last.close(4000, 'relay restarting');
    expect((await disconnected).code).to.equal(4000);
    expect(netdev.linkUp).to.equal(false);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP, 'the guest loses carrier').to.equal(0);
    // While down, the device completes the guest's frames unsent (QEMU's rule), nothing is sent.
    expect(rig.send(ethFrame(PEER, MAIN))).to.deep.include({ len: 0 });
    expect(rig.device.stats().tx.errors['link-down']).to.equal(1);

    await until('the reconnection', () => netdev.connected && relay.conns.length === 2);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(NetStatus.LINK_UP);
    expect(changes.map((c) => [c.up, c.reason])).to.deep.equal([
      [false, 'disconnected'],
      [true, 'connected'],
    ]);
    expect(netdev.stats()).to.deep.include({ connects: 2, disconnects: 1, connectAttempts: 2 });
    const f = ethFrame(PEER, MAIN, { fill: 9 });
    rig.send(f);
    await until('a frame on the new connection', () => relay.got[1]!.length === 1);
    expect([...relay.got[1]![0]!]).to.deep.equal([...f]);
    expect(relay.got[0]).to.deep.equal([]);
  });

  it('a_relay_that_is_not_there_keeps_the_link_down_and_is_tried_again_at_the_interval', async () => {
    const url = relay.url;
    await relay.stop();
    const netdev = new WebSocketNetdev({ id: 'n', url, WebSocket: WS, reconnectMs: 50 });
    opened.push({ netdev });
    const fails: number[] = [];
    netdev.on('disconnected', (e) => fails.push(e.code));
    await until('three attempts', () => netdev.stats().connectAttempts >= 3);
    expect(netdev.linkUp).to.equal(false);
    expect(netdev.stats()).to.deep.include({ connects: 0, disconnects: 0 });
    expect(fails.length).to.be.at.least(2);
    expect(netdev.linkStatus()).to.deep.include({ ups: 0, downs: 0, last: null });
    relay = await Relay.start(); // for afterEach
  });

  it('a_relay_that_stops_reading_makes_send_busy_and_the_device_resumes_when_it_drains', async () => {
    const { rig, netdev } = await connectedRig({ sendBufferLimit: 64 * 1024 });
    const serverSide = relay.last as unknown as { _socket: { pause(): void; resume(): void } };
    serverSide._socket.pause(); // the relay's TCP receive window fills, then the client's buffer
    const frame = ethFrame(PEER, MAIN, { payload: 1500 - 14 });
    let sent = 0;
    while (netdev.stats().txBusy === 0 && sent < 50000) {
      const used = rig.send(frame);
      if (used === undefined) break;
      sent++;
      if (sent % 200 === 0) await new Promise((r) => setImmediate(r)); // let the socket flush what it can
    }
    expect(netdev.stats().txBusy, 'the socket buffer filled').to.be.greaterThan(0);
    const txBefore = rig.device.stats().tx.frames;
    serverSide._socket.resume();
    await until('the held frame sent after writable()', () => rig.device.stats().tx.frames === txBefore + 1);
    expect(rig.tx.takeUsed().length, 'the held chain completed').to.be.at.least(1);
    await until('every frame at the relay', () => relay.got[0]!.length === netdev.stats().transmitted);
    expect(netdev.stats().transmitted).to.equal(sent + 1);
    expect(netdev.stats().txDropped).to.equal(0);
  });

  it('close_closes_the_socket_cleanly_drops_held_frames_counted_and_does_not_reconnect', async () => {
    const { netdev } = await connectedRig({ reconnectMs: 10 });
    netdev.detach(); // no device: the netdev holds what arrives
    for (let i = 0; i < 5; i++) relay.last.send(numbered(i));
    await until('five frames', () => netdev.stats().received === 5);
    expect(netdev.stats()).to.deep.include({ backlog: 5, delivered: 0 });
    await netdev.close();
    await until('the relay sees the close', () => relay.closes.length === 1);
    expect(relay.closes).to.deep.equal([1000]);
    expect(netdev.linkUp).to.equal(false);
    const s = netdev.stats();
    expect(s).to.deep.include({ delivered: 0, dropped: 5, backlog: 0 });
    expect(netdev.send(ethFrame(PEER, MAIN))).to.equal('dropped');
    await netdev.close(); // idempotent
    expect(netdev.stats().connectAttempts).to.equal(1);
    expect(relay.conns).to.have.length(1);
  });

  it('a_frame_sent_while_the_socket_is_closing_is_dropped_and_counted_not_lost_silently', async () => {
    // The moment between the relay's close frame and the socket's close event is too short to hit
    // on a real socket; a stand-in with the WebSocket state machine holds it open.
    const sent: Uint8Array[] = [];
    class ClosingSocket {
      static last: ClosingSocket;
      binaryType = 'blob';
      readyState = 0;
      bufferedAmount = 0;
      onopen: ((e: unknown) => void) | null = null;
      onmessage: ((e: unknown) => void) | null = null;
      onclose: ((e: { code: number; reason: string }) => void) | null = null;
      onerror: ((e: unknown) => void) | null = null;
      constructor(readonly url: string) {
        ClosingSocket.last = this;
      }
      send(data: Uint8Array): void {
        if (this.readyState === 1) sent.push(data); // a browser drops it silently when CLOSING
      }
      close(): void {
        this.readyState = 3;
        queueMicrotask(() => this.onclose?.({ code: 1000, reason: '' }));
      }
    }
    const netdev = new WebSocketNetdev({ id: 'c', url: 'ws://relay.invalid/', WebSocket: ClosingSocket, reconnectMs: 0 });
    opened.push({ netdev });
    ClosingSocket.last.readyState = 1;
    ClosingSocket.last.onopen!({});
    expect(netdev.send(ethFrame(PEER, MAIN))).to.equal('sent');
    ClosingSocket.last.readyState = 2; // the relay's close frame arrived
    expect(netdev.send(ethFrame(PEER, MAIN))).to.equal('dropped');
    expect(netdev.stats()).to.deep.include({ transmitted: 1, txDropped: 1 });
    expect(sent).to.have.length(1);
  });

  describe('api misuse throws at once', () => {
    it('bad_options_name_the_option', () => {
      expect(() => new WebSocketNetdev({ id: '', url: 'ws://127.0.0.1:1/', WebSocket: WS })).to.throw(TypeError, /options\.id/);
      expect(() => new WebSocketNetdev({ id: 'x', url: 'http://127.0.0.1/', WebSocket: WS })).to.throw(TypeError, /options\.url/);
      expect(() => new WebSocketNetdev({ id: 'x', url: 'ws://127.0.0.1:1/' })).to.throw(TypeError, /no global WebSocket.*options\.WebSocket/);
      expect(() => new WebSocketNetdev({ id: 'x', url: 'ws://127.0.0.1:1/', WebSocket: WS, maxFrameLength: 10 })).to.throw(RangeError, /maxFrameLength/);
      expect(() => new WebSocketNetdev({ id: 'x', url: 'ws://127.0.0.1:1/', WebSocket: WS, maxFrameLength: 70000 })).to.throw(RangeError, /maxFrameLength/);
      expect(() => new WebSocketNetdev({ id: 'x', url: 'ws://127.0.0.1:1/', WebSocket: WS, reconnectMs: -1 })).to.throw(RangeError, /reconnectMs/);
      expect(() => new WebSocketNetdev({ id: 'x', url: 'ws://127.0.0.1:1/', WebSocket: WS, backlogLimit: 1.5 })).to.throw(RangeError, /backlogLimit/);
    });

    it('a_second_attach_throws', async () => {
      const { netdev } = await connectedRig();
      expect(() => netdev.attach({ receive: () => true, writable: () => {} })).to.throw(/already attached/);
      expect(() => netdev.detach()).to.not.throw();
      expect(() => netdev.attach({} as never)).to.throw(TypeError, /NetdevPeer/);
    });
  });
});
