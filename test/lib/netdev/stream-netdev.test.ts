// StreamNetdev (QEMU's -netdev stream framing) against real unix and TCP sockets on this machine:
// the bytes on the wire, server and client roles, events and link state, reconnect (sinon's
// clock drives the timer, the sockets are real), backpressure down to the sending socket, a flood
// whose counters add up with bounded memory, and hostile lengths.

import { expect } from 'chai';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sinon from 'sinon';
import { encodeFrame, FrameReader, MAX_FRAMED_LENGTH } from '../../../lib/chardev/framing.js';
import type { NetdevPeer } from '../../../lib/netdev/netdev.js';
import { hasLinkState } from '../../../lib/netdev/netdev.js';
import { StreamNetdev, type StreamSocketAddress } from '../../../lib/netdev/stream-netdev.js';
import { RecordingPeer } from '../../support/recording-peer.js';

const frame = (n: number, len = 60): Uint8Array => new Uint8Array(len).fill(n & 0xff);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw peer socket that decodes frames with the same reader. */
function rawPeer(s: net.Socket): number[][] {
  const got: number[][] = [];
  const r = new FrameReader(false, (f) => {
    got.push([...f]);
  });
  s.on('data', (c: Buffer) => void r.push(c));
  return got;
}

function balanced(n: StreamNetdev): void {
  const s = n.stats();
  expect(s.rxFrames, 'rxFrames = rxDelivered + rxDropped (+1 held)').to.equal(s.rxDelivered + s.rxDropped + (n.holdingFrame ? 1 : 0));
}

describe('lib/netdev/stream-netdev', function () {
  this.timeout(20_000);
  let dir: string;
  const open: StreamNetdev[] = [];
  const sockets: (net.Socket | net.Server)[] = [];
  const track = <T extends net.Socket | net.Server>(s: T): T => (sockets.push(s), s);
  const netdev = (o: ConstructorParameters<typeof StreamNetdev>[0]): StreamNetdev => {
    const n = new StreamNetdev(o);
    open.push(n);
    return n;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vnm-stream-'));
  });
  afterEach(async () => {
    for (const n of open.splice(0)) await n.close();
    for (const s of sockets.splice(0)) (s instanceof net.Server ? s.close() : s.destroy());
    rmSync(dir, { recursive: true, force: true });
  });

  it('bad_options_are_immediate_specific_errors', () => {
    expect(() => new StreamNetdev({ id: '' })).to.throw(TypeError, /id must be a non-empty string/);
    expect(() => new StreamNetdev({ id: 'n' })).to.throw(TypeError, /exactly one of path .* and port/);
    expect(() => new StreamNetdev({ id: 'n', path: '/x', port: 1 })).to.throw(TypeError, /exactly one/);
    expect(() => new StreamNetdev({ id: 'n', port: 70000 })).to.throw(RangeError, /port must be an integer from 1 to 65535/);
    expect(() => new StreamNetdev({ id: 'n', port: 0 })).to.throw(RangeError, /0 only for a server/);
    expect(() => new StreamNetdev({ id: 'n', path: '/x', host: 'h' })).to.throw(TypeError, /host goes with port/);
    expect(() => new StreamNetdev({ id: 'n', port: 5, reconnectMs: -1 })).to.throw(RangeError, /reconnectMs/);
    expect(() => new StreamNetdev({ id: 'n', port: 5, server: true, reconnectMs: 10 })).to.throw(TypeError, /for a client/);
  });

  it('unix_server_frames_both_ways_with_qemu_framing_and_connection_events', async () => {
    const path = join(dir, 's.sock');
    const n = netdev({ id: 'sn0', path, server: true });
    const peer = new RecordingPeer();
    n.attach(peer);
    expect(hasLinkState(n)).to.equal(true);
    const links: boolean[] = [];
    n.onLinkChange((c) => links.push(c.up));
    await n.open();
    expect(n.linkUp).to.equal(false);
    expect(n.send(frame(9))).to.equal('dropped'); // nobody connected: QEMU drops while link_down
    const connected = once(n, 'connected') as Promise<[StreamSocketAddress]>;
    const c = track(net.connect(path));
    const [addr] = await connected;
    expect(addr).to.deep.equal({ type: 'unix', path }); // QEMU reports a unix server's own path
    expect(n.linkUp).to.equal(true);
    const wire = rawPeer(c);
    // The exact bytes: be32 length, then the frame.
    c.write(Buffer.from([0, 0, 0, 3, 0xa, 0xb, 0xc]));
    c.write(encodeFrame(frame(1, 1514), undefined, false));
    await until('two frames', () => peer.received.length === 2);
    expect(peer.received[0]).to.deep.equal([0xa, 0xb, 0xc]);
    expect(peer.received[1]).to.deep.equal([...frame(1, 1514)]);
    expect(n.send(frame(2, 100))).to.equal('sent');
    await until('frame on the wire', () => wire.length === 1);
    expect(wire[0]).to.deep.equal([...frame(2, 100)]);
    const gone = once(n, 'disconnected');
    c.end();
    await gone;
    await tick();
    expect(n.linkUp).to.equal(false);
    expect(links).to.deep.equal([true, false]);
    expect(n.stats()).to.deep.include({ rxFrames: 2, rxDelivered: 2, txFrames: 1, txDropped: 1, connects: 1, disconnects: 1 });
    expect(n.linkStatus()).to.deep.include({ up: false, downs: 1, ups: 1 });
    expect(n.linkStatus().last?.reason).to.equal('peer-connection');
  });

  it('tcp_server_takes_one_peer_at_a_time_and_the_next_after_it_left', async () => {
    const n = netdev({ id: 'tn0', host: '127.0.0.1', port: 0, server: true });
    n.attach(new RecordingPeer());
    await n.open();
    const first = once(n, 'connected') as Promise<[StreamSocketAddress]>;
    const a = track(net.connect(n.port, '127.0.0.1'));
    const [addr] = await first;
    await once(a, 'connect');
    // A TCP server reports its peer, in QEMU's InetSocketAddress form (port as a string).
    expect(addr).to.deep.equal({ type: 'inet', host: '127.0.0.1', port: String(a.localPort), ipv4: true });
    const b = track(net.connect(n.port, '127.0.0.1'));
    b.on('error', () => undefined);
    await once(b, 'close');
    expect(n.stats().refusedPeers).to.equal(1);
    a.destroy();
    await once(n, 'disconnected');
    const again = once(n, 'connected');
    track(net.connect(n.port, '127.0.0.1'));
    await again;
    expect(n.stats()).to.deep.include({ connects: 2, disconnects: 1 });
  });

  it('client_without_reconnect_refuses_to_start_when_nobody_listens', async () => {
    const n = netdev({ id: 'c0', path: join(dir, 'none.sock') });
    let err: unknown;
    await n.open().catch((e: unknown) => (err = e));
    expect((err as Error).message).to.match(/cannot connect to .*none\.sock/);
  });

  it('client_reconnects_reconnectMs_after_a_failed_attempt_and_after_losing_the_peer', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const path = join(dir, 'r.sock');
      const n = netdev({ id: 'rc0', path, reconnectMs: 5000 });
      n.attach(new RecordingPeer());
      await n.open(); // nobody listens yet: resolves, retries later
      expect(n.stats().connectFailures).to.equal(1);
      let peerSock: net.Socket | undefined;
      const srv = track(net.createServer((s) => (peerSock = track(s))));
      await new Promise<void>((r) => srv.listen(path, r));
      await clock.tickAsync(4999);
      await tick();
      expect(n.connected, 'not before reconnectMs').to.equal(false);
      const up = once(n, 'connected') as Promise<[StreamSocketAddress]>;
      await clock.tickAsync(1);
      expect((await up)[0]).to.deep.equal({ type: 'unix', path });
      await until('accepted', () => peerSock !== undefined);
      const down = once(n, 'disconnected');
      peerSock!.destroy();
      await down;
      expect(n.linkUp).to.equal(false);
      await clock.tickAsync(4999);
      await tick();
      expect(n.connected).to.equal(false);
      const back = once(n, 'connected');
      await clock.tickAsync(1);
      await back;
      expect(n.stats()).to.deep.include({ connects: 2, disconnects: 1, connectFailures: 1 });
    } finally {
      clock.restore();
    }
  });

  it('tcp_client_connects_and_reports_the_server_address', async () => {
    const srv = track(net.createServer());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const n = netdev({ id: 'tc0', host: '127.0.0.1', port });
    const up = once(n, 'connected') as Promise<[StreamSocketAddress]>;
    await n.open();
    expect((await up)[0]).to.deep.equal({ type: 'inet', host: '127.0.0.1', port: String(port), ipv4: true });
  });

  it('a_refused_frame_pauses_the_socket_and_resume_delivers_it_and_the_rest_in_order', async () => {
    const path = join(dir, 'bp.sock');
    const n = netdev({ id: 'bp0', path, server: true });
    const peer = new RecordingPeer(2);
    n.attach(peer);
    await n.open();
    const c = track(net.connect(path));
    await once(n, 'connected');
    c.write(Buffer.concat([1, 2, 3, 4, 5].map((i) => encodeFrame(frame(i, 10), undefined, false))));
    await until('two taken', () => peer.received.length === 2 && n.stats().rxPaused === 1);
    await tick();
    expect(n.stats()).to.deep.include({ rxFrames: 3, rxDelivered: 2, rxPaused: 1 }); // frame 3 held, 4 and 5 unparsed
    expect(n.holdingFrame).to.equal(true);
    balanced(n);
    peer.room = 1;
    n.resumeReceive(); // not paused by the device itself: the refusal paused the netdev
    expect(peer.received.map((f) => f[0])).to.deep.equal([1, 2, 3]);
    peer.room = Infinity;
    n.resumeReceive();
    expect(peer.received.map((f) => f[0])).to.deep.equal([1, 2, 3, 4, 5]);
    expect(n.stats()).to.deep.include({ rxFrames: 5, rxDelivered: 5, rxDropped: 0, rxPaused: 2 });
    balanced(n);
  });

  it('flood_peer_faster_than_the_guest_counters_add_up_memory_stays_bounded_and_the_sender_feels_it', async () => {
    const path = join(dir, 'flood.sock');
    const n = netdev({ id: 'fl0', path, server: true });
    let taken = 0;
    let expectNext = 0;
    let inOrder = true;
    let maxHeld = 0;
    // The guest takes 32 frames, then has no room until a later turn (as a device whose rx ring is full).
    let room = 32;
    const peer: NetdevPeer = {
      receive: (f) => {
        maxHeld = Math.max(maxHeld, n.heldBytes);
        if (room === 0) {
          setImmediate(() => {
            room = 32;
            n.resumeReceive();
          });
          return false;
        }
        room--;
        if ((f[0]! | (f[1]! << 8)) !== (expectNext & 0xffff)) inOrder = false;
        expectNext++;
        taken++;
        return true;
      },
      writable: () => undefined,
    };
    n.attach(peer);
    await n.open();
    const c = track(net.connect(path));
    await once(n, 'connected');
    const TOTAL = 20_000;
    let sent = 0;
    let senderBlocked = 0;
    const buf = new Uint8Array(1000);
    await new Promise<void>((done) => {
      const pump = (): void => {
        while (sent < TOTAL) {
          buf[0] = sent & 0xff;
          buf[1] = (sent >> 8) & 0xff;
          sent++;
          if (!c.write(encodeFrame(buf, undefined, false))) {
            senderBlocked++;
            c.once('drain', pump);
            return;
          }
        }
        done();
      };
      pump();
    });
    await until('all taken', () => taken === TOTAL, 15_000);
    const s = n.stats();
    expect(inOrder, 'frames in order').to.equal(true);
    expect(s.rxFrames).to.equal(TOTAL);
    expect(s.rxDelivered + s.rxDropped).to.equal(TOTAL);
    expect(s.rxDropped).to.equal(0); // a stream loses nothing: the sender waited instead
    expect(s.rxPaused).to.be.greaterThan(10);
    expect(senderBlocked, 'backpressure reached the sending socket').to.be.greaterThan(0);
    // What the netdev held at any refusal: at most one socket read's worth behind the held frame.
    expect(maxHeld).to.be.at.most(256 * 1024);
  });

  it('a_hostile_4_GiB_length_is_a_counted_drop_and_a_disconnect_never_an_allocation_and_the_server_takes_the_next_peer', async () => {
    const path = join(dir, 'bad.sock');
    const n = netdev({ id: 'bad0', path, server: true });
    const peer = new RecordingPeer();
    n.attach(peer);
    const diags: string[] = [];
    n.on('diagnostic', (d) => diags.push(d.code));
    await n.open();
    const c = track(net.connect(path));
    await once(n, 'connected');
    const gone = once(n, 'disconnected');
    const before = process.memoryUsage().arrayBuffers;
    c.write(Buffer.concat([encodeFrame(frame(1), undefined, false), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.alloc(64)]));
    await gone;
    expect(process.memoryUsage().arrayBuffers - before).to.be.below(16 * 1024 * 1024);
    expect(peer.received).to.have.length(1); // the good frame before it was delivered
    expect(n.stats()).to.deep.include({ rxFrames: 1, rxDelivered: 1, rxFramingErrors: 1, disconnects: 1 });
    expect(diags).to.include('framing.length-too-large');
    const zero = track(net.connect(path));
    await once(n, 'connected');
    const gone2 = once(n, 'disconnected');
    zero.write(Buffer.from([0, 0, 0, 0])); // a zero length is garbage too
    await gone2;
    expect(n.stats().rxFramingErrors).to.equal(2);
    expect(MAX_FRAMED_LENGTH).to.equal(4096 + 65536);
  });

  it('a_garbage_length_makes_a_client_drop_the_connection_and_reconnect', async () => {
    const path = join(dir, 'g.sock');
    const accepted: net.Socket[] = [];
    const srv = track(net.createServer((s) => accepted.push(track(s))));
    await new Promise<void>((r) => srv.listen(path, r));
    const n = netdev({ id: 'gc0', path, reconnectMs: 20 });
    n.attach(new RecordingPeer());
    await n.open();
    await until('accepted', () => accepted.length === 1);
    const down = once(n, 'disconnected');
    accepted[0]!.write(Buffer.from([0x7f, 0, 0, 0]));
    await down;
    await until('reconnected', () => accepted.length === 2 && n.connected);
    expect(n.stats()).to.deep.include({ rxFramingErrors: 1, connects: 2 });
  });

  it('tx_past_the_high_water_mark_is_busy_until_drain_then_writable', async () => {
    const path = join(dir, 'tx.sock');
    const n = netdev({ id: 'tx0', path, server: true });
    const peer = new RecordingPeer();
    n.attach(peer);
    await n.open();
    const c = track(net.connect(path));
    c.pause(); // the peer does not read
    await once(n, 'connected');
    let results: string[] = [];
    for (let i = 0; i < 2000 && !results.includes('busy'); i++) results.push(n.send(frame(i, 1500)));
    expect(results).to.include('busy');
    expect(results.filter((r) => r === 'dropped')).to.deep.equal([]);
    const wire = rawPeer(c);
    c.resume();
    await until('writable()', () => peer.writableCalls === 1);
    results = [n.send(frame(7, 60))];
    expect(results).to.deep.equal(['sent']);
    const sentFrames = n.stats().txFrames;
    await until('all on the wire', () => wire.length === sentFrames);
    expect(n.stats().txBusy).to.equal(1);
  });

  it('frames_arriving_with_no_device_attached_are_dropped_and_counted', async () => {
    const path = join(dir, 'nd.sock');
    const n = netdev({ id: 'nd0', path, server: true });
    await n.open();
    const c = track(net.connect(path));
    await once(n, 'connected');
    c.write(Buffer.concat([encodeFrame(frame(1), undefined, false), encodeFrame(frame(2), undefined, false)]));
    await until('two counted', () => n.stats().rxFrames === 2);
    expect(n.stats()).to.deep.include({ rxDelivered: 0, rxDropped: 2 });
    balanced(n);
  });

  it('close_drops_the_connection_counts_a_held_frame_and_removes_the_socket_file', async () => {
    const path = join(dir, 'cl.sock');
    const n = netdev({ id: 'cl0', path, server: true });
    n.attach(new RecordingPeer(0));
    await n.open();
    const c = track(net.connect(path));
    await once(n, 'connected');
    c.write(encodeFrame(frame(1), undefined, false));
    await until('held', () => n.stats().rxPaused === 1);
    await n.close();
    expect(n.stats()).to.deep.include({ rxFrames: 1, rxDropped: 1, disconnects: 1 });
    let err: unknown;
    await new Promise<void>((r) => net.connect(path).on('error', (e) => ((err = e), r())));
    expect((err as NodeJS.ErrnoException).code).to.equal('ENOENT');
  });
});
