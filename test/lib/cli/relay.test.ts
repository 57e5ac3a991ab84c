// `virtio-net relay` and `--netdev websocket,url=…`: the scripted guest of `virtio-net run`
// reaching the relay's backend through the relay, and the relay's switch seen from raw WebSocket
// clients (ws) speaking v86's protocol: one binary message per frame.

import { expect } from 'chai';
import WebSocket from 'ws';
import { run } from '../../../lib/cli/run.js';
import { parseNetdev } from '../../../lib/cli/args.js';
import { parseListen } from '../../../lib/cli/relay.js';
import { RelayServer } from '../../../lib/cli/relay-server.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { startRelay } from '../../support/relay.js';

function client(url: string): Promise<{ ws: WebSocket; got: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const got: Buffer[] = [];
    ws.on('message', (d, isBinary) => {
      if (isBinary) got.push(d as Buffer);
    });
    ws.once('open', () => resolve({ ws, got }));
    ws.once('error', reject);
  });
}

function frame(dst: number[], src: number[], fill: number, len = 60): Buffer {
  const f = Buffer.alloc(len, fill);
  Buffer.from(dst).copy(f, 0);
  Buffer.from(src).copy(f, 6);
  f[12] = 0x88;
  f[13] = 0xb5; // local experimental EtherType: nothing on the backend answers it
  return f;
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('lib/cli/relay', function () {
  this.timeout(20_000);

  it('the_scripted_guest_on_websocket_pings_the_relays_memory_backend', async () => {
    const r = await startRelay('memory');
    const lines: string[] = [];
    let result;
    try {
      result = await run({ durationMs: 1500, scenario: 'traffic', netdev: parseNetdev(`websocket,url=${r.url}`), qmpPath: null, json: false }, (l) => lines.push(l));
    } finally {
      var rr = await r.stop();
    }
    expect(lines.join('')).to.include(`on websocket ${r.url}`);
    expect(result.neighbour?.mac, 'the guest learned the simulated host by ARP through the relay').to.equal('52:55:0a:00:02:02');
    expect(result.guest['echoReplies'], 'pings answered through the relay').to.be.greaterThan(0);
    expect(rr.relay.connections).to.equal(1);
    expect(rr.relay.toBackend).to.be.greaterThan(0);
    expect(rr.relay.toClients).to.be.greaterThan(0);
    expect(rr.relay.macs, "the simulated host's MAC stays; the guest's went when it disconnected").to.equal(1);
  });

  it('switches_between_clients_by_learned_mac_and_counts_bad_messages', async () => {
    const r = await startRelay('memory');
    const a = await client(r.url);
    const b = await client(r.url);
    const c = await client(r.url);
    const A = [2, 0, 0, 0, 0, 0xa], B = [2, 0, 0, 0, 0, 0xb], C = [2, 0, 0, 0, 0, 0xc];
    try {
      // Unknown destination: flooded to b and c; the relay learns A on a.
      a.ws.send(frame(B, A, 1));
      await until(() => b.got.length === 1 && c.got.length === 1);
      // b answers A: known, so only a gets it; the relay learns B on b.
      b.ws.send(frame(A, B, 2));
      await until(() => a.got.length === 1);
      // a to B: known now, only b.
      a.ws.send(frame(B, A, 3));
      await until(() => b.got.length === 2);
      // Broadcast from c: to a and b.
      c.ws.send(frame([255, 255, 255, 255, 255, 255], C, 4));
      await until(() => a.got.length === 2 && b.got.length === 3);
      // Bad messages: text, a runt, an oversize frame. None is forwarded.
      a.ws.send('hello');
      a.ws.send(Buffer.alloc(10));
      a.ws.send(frame([255, 255, 255, 255, 255, 255], A, 5, 1519));
      // A marker after them (same socket, in order): when it has arrived, the bad ones were handled.
      a.ws.send(frame(B, A, 6));
      await until(() => b.got.length === 4);
    } finally {
      var rr = await r.stop();
    }
    expect(c.got.length, 'c got only the first flood').to.equal(1);
    expect(a.got.map((f) => f[14])).to.deep.equal([2, 4]);
    expect(b.got.map((f) => f[14])).to.deep.equal([1, 3, 4, 6]);
    expect(rr.relay.invalid).to.equal(2);
    expect(rr.relay.oversize).to.equal(1);
    expect(rr.relay.fromClients).to.equal(8);
    expect(rr.relay.flooded).to.equal(2);
    expect(rr.relay.connections).to.equal(3);
  });

  it('refuses_a_non_loopback_listen_address_unless_allowed', () => {
    expect(() => parseListen('0.0.0.0:8086', false)).to.throw(/not a loopback address.*--allow-remote/);
    expect(parseListen('0.0.0.0:8086', true)).to.deep.equal({ host: '0.0.0.0', port: 8086 });
    expect(parseListen('[::1]:0', false)).to.deep.equal({ host: '::1', port: 0 });
    expect(() => parseListen('localhost:8086', false)).to.throw(/must be an IP address/);
    expect(() => parseListen('127.0.0.1', false)).to.throw(/HOST:PORT/);
  });

  it('a_client_that_stops_reading_misses_frames_and_holds_nobody_up', async () => {
    const backend = new MemoryNetdev({ id: 'b' });
    const server = new RelayServer({ backend, host: '127.0.0.1', port: 0, sendBufferLimit: 64 * 1024 });
    await server.listen();
    const url = `ws://127.0.0.1:${server.port}/`;
    const slow = await client(url);
    const fast = await client(url);
    // The slow client stops reading: its TCP window fills, then the relay's buffer for it.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const bcast = frame([255, 255, 255, 255, 255, 255], [2, 0, 0, 0, 0, 1], 7, 1500);
    const N = 20_000;
    try {
      for (let i = 0; i < N; i += 100) {
        for (let j = 0; j < 100; j++) backend.inject(bcast);
        await new Promise((r) => setImmediate(r));
      }
      const s = server.stats();
      const per = new Map(server.clientStats().map((c) => [c.id, c]));
      expect(s.fromBackend).to.equal(N);
      expect(s.toClients + s.clientDrops, 'every frame sent or counted, for each of the 2 clients').to.equal(2 * N);
      const [first, second] = [...per.values()];
      expect(first!.drops, 'the client that stopped reading missed frames').to.be.greaterThan(0);
      expect(first!.sent, 'its queue stayed bounded').to.be.lessThan(N);
      await until(() => fast.got.length === second!.sent, 10_000);
      expect(second!.drops, 'the reading client missed fewer').to.be.lessThan(first!.drops);
    } finally {
      slow.ws.terminate();
      fast.ws.terminate();
      await server.close();
    }
  });
});
