// netdev_add / netdev_del for the types besides stream, each against a real peer on this machine:
// dgram (a real UDP socket on loopback), vde (a real vde_switch and a second vde_plug on it), passt
// (Debian's passt, answering ARP) and websocket (a ws server on loopback). Frames cross both ways
// through the added netdev (a recording device attached through server.netdev(), as QEMU's
// device_add netdev=ID would); netdev_del closes it for real (the port is free again, the helper
// process is gone, the relay sees the close). Bad arguments get specific errors and leave nothing.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { QmpServer } from '../../../lib/qmp/index.js';
import type { Netdev, NetdevPeer } from '../../../lib/netdev/netdev.js';
import { VdeNetdev } from '../../../lib/netdev/vde-netdev.js';
import { requireProgram } from '../../support/skip.js';
import { FakeNic } from './fake-nic.js';
import { RawQmpClient } from './raw-client.js';

class Recorder implements NetdevPeer {
  readonly frames: Uint8Array[] = [];
  receive(frame: Uint8Array): boolean {
    this.frames.push(frame.slice());
    return true;
  }
  writable(): void {}
}

/** A frame from `src` (last byte) to broadcast, its payload filled with `tag`. */
function frame(src: number, tag: number, length = 60): Uint8Array {
  const f = new Uint8Array(length).fill(tag);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x00, 0x00, src, 0x88, 0xb5], 0);
  return f;
}

/** An ARP who-has from `mac`/`ip` for `target` (RFC 826). */
function arpWhoHas(mac: number[], ip: number[], target: number[]): Uint8Array {
  return Uint8Array.from([...new Array(6).fill(0xff), ...mac, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, ...mac, ...ip, 0, 0, 0, 0, 0, 0, ...target, ...new Array(18).fill(0)]);
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

type Reply = Record<string, unknown>;
const errorOf = (r: Reply): { class: string; desc: string } => r['error'] as { class: string; desc: string };

describe('lib/qmp netdev_add / netdev_del (dgram, vde, passt, websocket)', function () {
  this.timeout(30_000);
  let dir: string;
  let server: QmpServer;
  let c: RawQmpClient;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-netdev-types-'));
    server = new QmpServer({ devices: [new FakeNic('vnet0', {}, { id: 'hostnet0' })], path: join(dir, 'qmp.sock') });
    await server.listen();
    c = await RawQmpClient.negotiated(server.address.path);
  });
  afterEach(async () => {
    for (const f of closers.splice(0).reverse()) await f();
    c.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The added netdev, with a recorder attached. */
  function attached(id: string): { netdev: Netdev; rec: Recorder } {
    const netdev = server.netdev(id) as Netdev | undefined;
    expect(netdev, `netdev ${id} is known after netdev_add`).to.not.equal(undefined);
    const rec = new Recorder();
    netdev!.attach(rec);
    return { netdev: netdev!, rec };
  }

  it('dgram_over_udp_carries_frames_both_ways_with_a_real_peer_and_netdev_del_frees_its_port', async () => {
    const peer = dgram.createSocket('udp4');
    closers.push(() => new Promise<void>((r) => peer.close(() => r())));
    peer.bind(0, '127.0.0.1');
    await once(peer, 'listening');
    const peerPort = (peer.address() as AddressInfo).port;
    const got: { data: Buffer; port: number }[] = [];
    peer.on('message', (data, rinfo) => got.push({ data, port: rinfo.port }));

    const add = { type: 'dgram', id: 'd1', local: { type: 'inet', host: '127.0.0.1', port: '0' }, remote: { type: 'inet', host: '127.0.0.1', port: String(peerPort) } };
    expect(await c.execute('netdev_add', add)).to.deep.equal({ return: {} });
    const { netdev, rec } = attached('d1');
    const out = frame(1, 0xa1);
    expect(netdev.send(out)).to.equal('sent');
    await until('the UDP peer to get the frame', () => got.length === 1);
    expect(new Uint8Array(got[0]!.data)).to.deep.equal(out);
    const ourPort = got[0]!.port;

    const back = frame(2, 0xb2, 100);
    peer.send(back, ourPort, '127.0.0.1');
    await until('the netdev to deliver the reply', () => rec.frames.length === 1);
    expect(rec.frames[0]).to.deep.equal(back);

    expect(await c.execute('netdev_del', { id: 'd1' })).to.deep.equal({ return: {} });
    expect(server.netdev('d1')).to.equal(undefined);
    // The socket is closed: its port binds again without SO_REUSEADDR, and a datagram to it reaches nobody.
    peer.send(frame(2, 0xc3), ourPort, '127.0.0.1');
    const probe = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    closers.push(() => new Promise<void>((r) => probe.close(() => r())));
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(ourPort, '127.0.0.1', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.frames.length, 'nothing delivered after netdev_del').to.equal(1);
    expect(await c.execute('netdev_del', { id: 'd1' })).to.deep.equal({ error: { class: 'DeviceNotFound', desc: "Device 'd1' not found" } });
  });

  it('dgram_bad_arguments_are_specific_errors_and_leave_no_netdev', async () => {
    const cases: [Reply, string | RegExp][] = [
      [{ type: 'dgram', id: 'x1' }, "Parameter 'local' is missing"],
      [{ type: 'dgram', id: 'x2', addr: { type: 'unix', path: '/tmp/x' } }, "Parameter 'addr' is unexpected"],
      [{ type: 'dgram', id: 'x3', local: 'udp:1' }, "Invalid parameter type for 'local', expected: object"],
      [{ type: 'dgram', id: 'x4', local: { type: 'inet', host: 'localhost', port: '1' }, remote: { type: 'inet', host: '127.0.0.1', port: '2' } }, /^DgramNetdev x4: local\.host must be an IPv4 address/],
      [{ type: 'dgram', id: 'x5', local: { type: 'inet', host: '127.0.0.1', port: '1' } }, /^DgramNetdev x5: local of type inet needs remote/],
      [{ type: 'dgram', id: 'x6', local: { type: 'unix', path: join(dir, 'a') }, remote: { type: 'inet', host: '127.0.0.1', port: '2' } }, /^DgramNetdev x6: remote and local types must be the same/],
      [{ type: 'dgram', id: 'x7', local: { type: 'fd', str: '3' }, remote: { type: 'inet', host: '127.0.0.1', port: '2' } }, /^DgramNetdev x7: local\.type 'fd'/],
      [{ type: 'dgram', id: 'x8', local: { type: 'inet', host: '127.0.0.1', port: '70000' }, remote: { type: 'inet', host: '127.0.0.1', port: '2' } }, /^DgramNetdev x8: local\.port must be an integer 0-65535/],
      // 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails, asynchronously.
      [{ type: 'dgram', id: 'x9', local: { type: 'inet', host: '192.0.2.1', port: '0' }, remote: { type: 'inet', host: '127.0.0.1', port: '2' } }, /^.*EADDRNOTAVAIL|cannot assign requested address/i],
    ];
    for (const [args, want] of cases) {
      const r = await c.execute('netdev_add', args);
      const err = errorOf(r);
      expect(err, JSON.stringify(args)).to.not.equal(undefined);
      expect(err.class).to.equal('GenericError');
      if (typeof want === 'string') expect(err.desc).to.equal(want);
      else expect(err.desc).to.match(want);
      expect(server.netdev(args['id'] as string), `${String(args['id'])} left nothing`).to.equal(undefined);
    }
  });

  it('vde_joins_a_real_switch_frames_reach_another_plug_and_netdev_del_stops_its_vde_plug', async function () {
    requireProgram(this, 'vde_switch');
    requireProgram(this, 'vde_plug');
    const sock = join(dir, 'switch');
    const sw: ChildProcess = spawn('vde_switch', ['-s', sock], { stdio: ['pipe', 'ignore', 'pipe'] });
    closers.push(async () => {
      if (sw.exitCode === null && sw.signalCode === null) {
        const gone = once(sw, 'exit');
        sw.kill('SIGTERM');
        const t = setTimeout(() => sw.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      }
    });
    await until('the switch socket', () => existsSync(join(sock, 'ctl')));
    const other = new VdeNetdev({ id: 'other', sock });
    closers.push(() => other.close());
    const otherRec = new Recorder();
    other.attach(otherRec);

    expect(await c.execute('netdev_add', { type: 'vde', id: 'v1', sock })).to.deep.equal({ return: {} });
    const { netdev, rec } = attached('v1');
    const pid = (netdev as VdeNetdev).pid!;
    expect(alive(pid)).to.equal(true);
    // Broadcasts until the switch has both ports up (a plug's first frames may precede its port).
    const a = frame(0x0a, 0x11);
    await until('the other plug to get a frame from v1', () => (netdev.send(a), otherRec.frames.some((f) => f[11] === 0x0a)));
    expect(otherRec.frames.find((f) => f[11] === 0x0a)).to.deep.equal(a);
    const b = frame(0x0b, 0x22, 200);
    await until('v1 to get a frame from the other plug', () => (other.send(b), rec.frames.some((f) => f[11] === 0x0b)));
    expect(rec.frames.find((f) => f[11] === 0x0b)).to.deep.equal(b);

    expect(await c.execute('netdev_del', { id: 'v1' })).to.deep.equal({ return: {} });
    expect(alive(pid), 'vde_plug is gone after netdev_del').to.equal(false);
    expect((netdev as VdeNetdev).plugExit).to.not.equal(null);
    const before = rec.frames.length;
    other.send(b);
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.frames.length).to.equal(before);

    expect(await c.execute('netdev_add', { type: 'vde', id: 'v2' })).to.deep.equal({ error: { class: 'GenericError', desc: "Parameter 'sock' is missing" } });
    const noSwitch = errorOf(await c.execute('netdev_add', { type: 'vde', id: 'v3', sock: join(dir, 'none') }));
    expect(noSwitch.desc).to.match(/^VdeNetdev v3: no VDE switch at .*none/);
    expect(errorOf(await c.execute('netdev_add', { type: 'vde', id: 'v4', sock, url: 'ws://x/' })).desc).to.equal("Parameter 'url' is unexpected");
    expect(server.netdev('v3')).to.equal(undefined);
  });

  it('passt_is_started_answers_arp_through_the_added_netdev_and_netdev_del_stops_it', async function () {
    requireProgram(this, 'passt');
    expect(await c.execute('netdev_add', { type: 'passt', id: 'p1', tcp: [], udp: [] })).to.deep.equal({ return: {} });
    const { netdev, rec } = attached('p1');
    const pid = (netdev as unknown as { pid: number }).pid;
    const path = (netdev as unknown as { path: string }).path;
    expect(alive(pid)).to.equal(true);
    expect(existsSync(path)).to.equal(true);
    const mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    expect(netdev.send(arpWhoHas(mac, [10, 9, 9, 9], [10, 9, 9, 1]))).to.equal('sent');
    await until('passt to answer the ARP', () => rec.frames.some((f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2));
    const reply = rec.frames.find((f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2)!;
    expect([...reply.subarray(0, 6)]).to.deep.equal(mac);
    expect([...reply.subarray(28, 32)], 'the reply is for the address asked about').to.deep.equal([10, 9, 9, 1]);

    expect(await c.execute('netdev_del', { id: 'p1' })).to.deep.equal({ return: {} });
    expect(alive(pid), 'passt is gone after netdev_del').to.equal(false);
    expect(existsSync(path), 'its socket directory went too').to.equal(false);

    const bad = errorOf(await c.execute('netdev_add', { type: 'passt', id: 'p2', tcp: ['80;reboot'] }));
    expect(bad.desc).to.match(/^PasstNetdev p2: tcp spec "80;reboot" is not a passt port spec/);
    expect(errorOf(await c.execute('netdev_add', { type: 'passt', id: 'p3', tcp: '8080:80' })).desc).to.equal("Invalid parameter type for 'tcp', expected: array");
    expect(errorOf(await c.execute('netdev_add', { type: 'passt', id: 'p4', server: true })).desc).to.equal("Parameter 'server' is unexpected");
    expect(server.netdev('p2')).to.equal(undefined);
  });

  it('websocket_connects_to_a_real_relay_carries_frames_both_ways_and_netdev_del_closes_the_connection', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    closers.push(
      () =>
        new Promise<void>((r) => {
          for (const s of wss.clients) s.terminate();
          wss.close(() => r());
        }),
    );
    await once(wss, 'listening');
    const port = (wss.address() as AddressInfo).port;
    const sockets: WebSocket[] = [];
    const fromNetdev: Uint8Array[] = [];
    let closes = 0;
    wss.on('connection', (ws) => {
      sockets.push(ws);
      ws.on('message', (data) => fromNetdev.push(new Uint8Array(data as Buffer)));
      ws.on('close', () => closes++);
    });

    expect(await c.execute('netdev_add', { type: 'websocket', id: 'w1', url: `ws://127.0.0.1:${port}/` })).to.deep.equal({ return: {} });
    expect(sockets.length, 'connected before the answer').to.equal(1);
    const { netdev, rec } = attached('w1');
    const out = frame(3, 0x33);
    expect(netdev.send(out)).to.equal('sent');
    await until('the relay to get the frame', () => fromNetdev.length === 1);
    expect(fromNetdev[0]).to.deep.equal(out);
    const back = frame(4, 0x44, 300);
    sockets[0]!.send(back, { binary: true });
    await until('the netdev to deliver the relay frame', () => rec.frames.length === 1);
    expect(rec.frames[0]).to.deep.equal(back);

    expect(await c.execute('netdev_del', { id: 'w1' })).to.deep.equal({ return: {} });
    await until('the relay to see the connection close', () => closes === 1);
    // No reconnect after netdev_del.
    await new Promise((r) => setTimeout(r, 200));
    expect(sockets.length).to.equal(1);

    // A relay that is not there: an error (without reconnect-ms), nothing left.
    const probe = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(probe, 'listening');
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const refused = errorOf(await c.execute('netdev_add', { type: 'websocket', id: 'w2', url: `ws://127.0.0.1:${deadPort}/` }));
    expect(refused.desc).to.match(new RegExp(`^WebSocketNetdev w2: cannot connect to ws://127\\.0\\.0\\.1:${deadPort}/ \\(close code`));
    expect(server.netdev('w2')).to.equal(undefined);
    // With reconnect-ms it answers at once and connects when the relay appears... here the live one.
    expect(await c.execute('netdev_add', { type: 'websocket', id: 'w3', url: `ws://127.0.0.1:${port}/`, 'reconnect-ms': 50 })).to.deep.equal({ return: {} });
    await until('w3 to connect', () => sockets.length === 2);

    expect(errorOf(await c.execute('netdev_add', { type: 'websocket', id: 'w4' })).desc).to.equal("Parameter 'url' is missing");
    expect(errorOf(await c.execute('netdev_add', { type: 'websocket', id: 'w5', url: 'http://127.0.0.1/' })).desc).to.match(/^Parameter 'url' expects a ws:\/\/ or wss:\/\/ URL/);
    expect(errorOf(await c.execute('netdev_add', { type: 'websocket', id: 'w6', url: 'ws://h/', local: {} })).desc).to.equal("Parameter 'local' is unexpected");
    expect(errorOf(await c.execute('netdev_add', { type: 'stream', id: 'w7', url: 'ws://h/', addr: { type: 'unix', path: '/x' } })).desc).to.equal("Parameter 'url' is unexpected");
  });
});
