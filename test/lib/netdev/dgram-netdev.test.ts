// DgramNetdev against real sockets on this machine's loopback: UDP (a node:dgram peer), multicast
// (two netdevs in one group on 127.0.0.1), unix datagrams (python3 as the independent peer, and
// raw sockets through lib/host for garbage and floods). Counters must always add up:
//   rxDatagrams = rxFrames + rxRunt + rxOversize + rxBadRecord + rxBacklogDropped + rxDiscarded + backlog

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DgramNetdev } from '../../../lib/netdev/dgram-netdev.js';
import type { DatagramNetdevStats } from '../../../lib/netdev/datagram-netdev.js';
import { UDP_SEND_SLOTS } from '../../../lib/netdev/udp-port.js';
import { Errno, HostError, SOCK_NONBLOCK, bindFd, closeFd, sendTo, socketFd } from '../../../lib/host/libc.js';
import { AF_UNIX, SOCK_DGRAM, sockaddrUn } from '../../../lib/host/structs.js';
import { requireProgram } from '../../support/skip.js';
import { RecordingPeer } from '../../support/recording-peer.js';

/** An Ethernet frame of `length` bytes whose payload is `tag` repeated. */
function frame(length: number, tag: number): Uint8Array {
  const f = new Uint8Array(length).fill(tag);
  f.set([0x52, 0x54, 0, 0, 0, 1, 0x52, 0x54, 0, 0, 0, 2, 0x08, 0x00]);
  return f;
}

function expectBalanced(s: DatagramNetdevStats): void {
  expect(s.rxDatagrams, `offered = delivered + counted drops + held: ${JSON.stringify(s)}`).to.equal(
    s.rxFrames + s.rxRunt + s.rxOversize + s.rxBadRecord + s.rxBacklogDropped + s.rxDiscarded + s.backlog,
  );
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function udpPeer(): Promise<{ socket: Socket; port: number; got: Buffer[] }> {
  const socket = createSocket('udp4');
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve({ socket, port: socket.address().port, got })));
}

function sendUdp(socket: Socket, data: Uint8Array, port: number): Promise<void> {
  return new Promise((resolve, reject) => socket.send(data, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
}

describe('lib/netdev/dgram-netdev', function () {
  this.timeout(20000);
  let dir: string;
  const open: DgramNetdev[] = [];
  const sockets: Socket[] = [];
  const fds: number[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vnm-dgram-'));
  });
  afterEach(async () => {
    for (const n of open.splice(0)) await n.close();
    for (const s of sockets.splice(0)) s.close();
    for (const fd of fds.splice(0)) closeFd(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const track = (n: DgramNetdev): DgramNetdev => {
    open.push(n);
    return n;
  };

  /** A raw unix datagram socket bound in the temp dir (the garbage and flood sender). */
  function rawUnix(name: string): { fd: number; path: string } {
    const path = join(dir, name);
    const fd = socketFd(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    fds.push(fd);
    const a = sockaddrUn(path);
    bindFd(fd, a.addr, a.len);
    return { fd, path };
  }
  function sendRaw(fd: number, to: string, data: Uint8Array): number {
    const a = sockaddrUn(to);
    return sendTo(fd, data, data.length, a.addr, a.len);
  }

  describe('options (immediate, specific errors)', () => {
    it('bad_addresses_are_refused_naming_the_field_and_qemus_rule', () => {
      const bad: [unknown, RegExp][] = [
        [{ id: 'd0' }, /needs local/],
        [{ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 1 } }, /needs remote/],
        [{ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 1 }, remote: { type: 'unix', path: '/x' } }, /remote and local types must be the same/],
        [{ id: 'd0', local: { type: 'fd', str: '3' } }, /'fd'.*not supported/],
        [{ id: 'd0', local: { type: 'inet', host: '::1', port: 1 }, remote: { type: 'inet', host: '127.0.0.1', port: 2 } }, /local\.host must be an IPv4 address/],
        [{ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 70000 }, remote: { type: 'inet', host: '127.0.0.1', port: 2 } }, /local\.port must be an integer 0-65535/],
        [{ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 1 }, remote: { type: 'inet', host: '127.0.0.1', port: 0 } }, /remote\.port must be an integer 1-65535/],
        [{ id: 'd0', local: { type: 'unix', path: '' }, remote: { type: 'unix', path: '/x' } }, /local\.path/],
        [{ id: 'd0', local: { type: 'unix', path: 'a'.repeat(108) }, remote: { type: 'unix', path: '/x' } }, /1-107 bytes/],
        [{ id: 'd0', remote: { type: 'inet', host: '239.1.2.3', port: 5000 }, local: { type: 'unix', path: '/x' } }, /multicast needs local of type inet/],
        [{ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 1, to: 5 }, remote: { type: 'inet', host: '127.0.0.1', port: 2 } }, /local\.to is not a property/],
        [{ id: '', local: { type: 'unix', path: '/a' }, remote: { type: 'unix', path: '/b' } }, /id must be a non-empty string/],
        [{ id: 'd0', local: { type: 'unix', path: '/a' }, remote: { type: 'unix', path: '/b' }, maxFrameLength: 13 }, /maxFrameLength must be an integer 14-/],
      ];
      for (const [options, message] of bad) {
        expect(() => new DgramNetdev(options as never), JSON.stringify(options)).to.throw(message);
      }
    });

    it('a_unix_path_that_cannot_be_bound_throws_a_host_error_with_the_errno', () => {
      const err = (() => {
        try {
          new DgramNetdev({ id: 'd0', local: { type: 'unix', path: join(dir, 'no', 'such', 'dir.sock') }, remote: { type: 'unix', path: join(dir, 'r') } });
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).to.be.instanceOf(HostError);
      expect((err as HostError).errnoName).to.equal('ENOENT');
    });

    it('a_udp_bind_failure_rejects_ready_and_later_frames_are_dropped_and_counted', async () => {
      // 192.0.2.1 (TEST-NET-1) is no address of this machine: bind fails with EADDRNOTAVAIL.
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'inet', host: '192.0.2.1', port: 0 }, remote: { type: 'inet', host: '127.0.0.1', port: 9 } }));
      const err = await n.ready.then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(HostError);
      expect((err as HostError).errnoName).to.equal('EADDRNOTAVAIL');
      expect(n.failed).to.equal(true);
      expect(n.send(frame(60, 1))).to.equal('dropped');
      expect(n.stats().txErrors).to.equal(1);
      expect(n.hostErrors().count).to.equal(1);
    });
  });

  describe('UDP', () => {
    it('frames_go_both_ways_one_frame_per_datagram_with_no_header', async () => {
      const peer = await udpPeer();
      sockets.push(peer.socket);
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 0 }, remote: { type: 'inet', host: '127.0.0.1', port: String(peer.port) } }));
      await n.ready;
      const dev = new RecordingPeer();
      n.attach(dev);
      const out = frame(100, 0xab);
      expect(n.send(out)).to.equal('sent');
      await until('the peer gets the frame', () => peer.got.length === 1);
      expect([...peer.got[0]!]).to.deep.equal([...out]);
      const back = frame(1514, 0xcd);
      await sendUdp(peer.socket, back, n.localPort!);
      await until('the device gets the frame', () => dev.received.length === 1);
      expect([...dev.received[0]!]).to.deep.equal([...back]);
      expect(n.info).to.equal(`udp=127.0.0.1:${n.localPort}/127.0.0.1:${peer.port}`);
      const s = n.stats();
      expect(s).to.include({ rxDatagrams: 1, rxFrames: 1, rxBytes: 1514, txFrames: 1, txBytes: 100, txErrors: 0 });
      expectBalanced(s);
    });

    it('runts_and_oversize_datagrams_are_counted_drops_and_never_reach_the_device', async () => {
      const peer = await udpPeer();
      sockets.push(peer.socket);
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 0 }, remote: { type: 'inet', host: '127.0.0.1', port: peer.port }, maxFrameLength: 1514 }));
      await n.ready;
      const dev = new RecordingPeer();
      n.attach(dev);
      for (const len of [0, 1, 13, 1515, 9000]) await sendUdp(peer.socket, new Uint8Array(len).fill(7), n.localPort!);
      await sendUdp(peer.socket, frame(14, 1), n.localPort!); // the shortest frame that counts
      await until('all six datagrams', () => n.stats().rxDatagrams === 6);
      const s = n.stats();
      expect(s).to.include({ rxRunt: 3, rxOversize: 2, rxFrames: 1 });
      expect(dev.received.map((f) => f.length)).to.deep.equal([14]);
      expectBalanced(s);
      // Oversize the other way: refused before the socket.
      expect(n.send(frame(1515, 2))).to.equal('dropped');
      expect(n.stats()).to.include({ txOversize: 1, txErrors: 1, txFrames: 0 });
    });

    it('a_flood_while_the_device_takes_nothing_fills_the_bounded_backlog_and_counts_every_drop', async () => {
      const peer = await udpPeer();
      sockets.push(peer.socket);
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 0 }, remote: { type: 'inet', host: '127.0.0.1', port: peer.port }, backlogLimit: 100, backlogBytes: 64 * 1024 }));
      await n.ready;
      const dev = new RecordingPeer(0); // no room
      n.attach(dev);
      const sent = 3000;
      let done = 0;
      for (let i = 0; i < sent; i++) {
        const f = frame(1000, 3);
        f[14] = i & 0xff;
        peer.socket.send(f, n.localPort!, '127.0.0.1', () => done++);
        // In bursts of 50 (sender and netdev share this event loop: let it read in between).
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 1));
      }
      await until('every send completed', () => done === sent, 10000);
      // Loopback UDP may itself drop on a full socket buffer; what arrived must be accounted for.
      for (let last = -1; n.stats().rxDatagrams !== last && n.stats().rxDatagrams !== sent; ) {
        last = n.stats().rxDatagrams;
        await new Promise((r) => setTimeout(r, 100));
      }
      const s = n.stats();
      expectBalanced(s);
      expect(s.rxDatagrams).to.be.greaterThan(1000);
      expect(s.backlog, 'frames held (bounded by frames and by bytes: 64 KiB / 1000 B)').to.equal(65);
      expect(s.rxBacklogDropped).to.equal(s.rxDatagrams - 65);
      expect(s.rxFrames).to.equal(0);
      // The device has room again: the held frames come in order, nothing else was lost.
      dev.room = Infinity;
      n.resumeReceive();
      expect(dev.received).to.have.length(65);
      expect(dev.received.map((x) => x[14])).to.deep.equal(Array.from({ length: 65 }, (_, i) => i & 0xff));
      const after = n.stats();
      expect(after).to.include({ backlog: 0, rxFrames: 65 });
      expectBalanced(after);
    });

    it('more_frames_than_send_buffers_in_one_burst_answers_busy_then_writable', async () => {
      const peer = await udpPeer();
      sockets.push(peer.socket);
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'inet', host: '127.0.0.1', port: 0 }, remote: { type: 'inet', host: '127.0.0.1', port: peer.port } }));
      await n.ready;
      const dev = new RecordingPeer();
      n.attach(dev);
      const results: string[] = [];
      for (let i = 0; i < UDP_SEND_SLOTS + 5; i++) results.push(n.send(frame(60, i)));
      expect(results.slice(0, UDP_SEND_SLOTS).every((r) => r === 'sent')).to.equal(true);
      expect(results.slice(UDP_SEND_SLOTS)).to.deep.equal(['busy', 'busy', 'busy', 'busy', 'busy']);
      await until('writable()', () => dev.writableCalls === 1);
      expect(n.send(frame(60, 0xee))).to.equal('sent');
      await until('every sent frame at the peer', () => peer.got.length === UDP_SEND_SLOTS + 1);
      // In order, each one intact (the send buffers were not reused while in flight).
      expect(peer.got.map((g) => g[20])).to.deep.equal([...Array.from({ length: UDP_SEND_SLOTS }, (_, i) => i), 0xee]);
      expect(n.stats()).to.include({ txFrames: UDP_SEND_SLOTS + 1, txBusy: 1 });
    });
  });

  describe('multicast', () => {
    it('two_netdevs_in_one_group_hear_each_other_and_themselves_as_qemu_does', async () => {
      const port = 40000 + (process.pid % 20000);
      const group = { type: 'inet' as const, host: '239.255.77.1', port };
      const iface = { type: 'inet' as const, host: '127.0.0.1', port: 0 };
      const a = track(new DgramNetdev({ id: 'a', remote: group, local: iface }));
      const b = track(new DgramNetdev({ id: 'b', remote: group, local: iface }));
      await Promise.all([a.ready, b.ready]);
      const da = new RecordingPeer();
      const db = new RecordingPeer();
      a.attach(da);
      b.attach(db);
      expect(a.info).to.equal(`mcast=239.255.77.1:${port}`);
      expect(a.send(frame(64, 0xa1))).to.equal('sent');
      expect(b.send(frame(64, 0xb1))).to.equal('sent');
      await until('both frames at both', () => da.received.length === 2 && db.received.length === 2);
      for (const d of [da, db]) expect(d.received.map((f) => f[20]).sort()).to.deep.equal([0xa1, 0xb1]);
      expectBalanced(a.stats());
      expectBalanced(b.stats());
    });
  });

  describe('unix datagrams', () => {
    it('frames_go_both_ways_with_an_independent_peer_python3', async function () {
      requireProgram(this, 'python3');
      const mine = join(dir, 'mine.sock');
      const theirs = join(dir, 'theirs.sock');
      // The peer: binds, says so, echoes one datagram back with the MAC addresses swapped.
      const py = spawn('python3', ['-c', [
        'import socket, sys',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        `s.bind(${JSON.stringify(theirs)})`,
        'print("bound", flush=True)',
        'd, a = s.recvfrom(70000)',
        `s.sendto(d[6:12] + d[0:6] + d[12:], ${JSON.stringify(mine)})`,
        'print(len(d), flush=True)',
      ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      py.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      const exited = new Promise<number | null>((r) => py.on('exit', (code) => r(code)));
      try {
        await until('python3 to bind', () => out.includes('bound'));
        const n = track(new DgramNetdev({ id: 'd0', local: { type: 'unix', path: mine }, remote: { type: 'unix', path: theirs } }));
        const dev = new RecordingPeer();
        n.attach(dev);
        const f = frame(3000, 0x5a);
        expect(n.send(f)).to.equal('sent');
        await until('the echo', () => dev.received.length === 1);
        expect(await exited).to.equal(0);
        expect(out).to.include('3000');
        const want = f.slice();
        want.set(f.subarray(6, 12), 0);
        want.set(f.subarray(0, 6), 6);
        expect([...dev.received[0]!]).to.deep.equal([...want]);
        expect(n.info).to.equal(`udp=${mine}:${theirs}`);
        expectBalanced(n.stats());
        await n.close();
        expect(existsSync(mine), 'close() removes the bound socket file').to.equal(false);
      } finally {
        py.kill('SIGKILL');
      }
    });

    it('garbage_datagrams_are_counted_by_kind_and_the_next_good_frame_still_arrives', () => {
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'unix', path: join(dir, 'n.sock') }, remote: { type: 'unix', path: join(dir, 'raw.sock') } }));
      const dev = new RecordingPeer();
      n.attach(dev);
      const raw = rawUnix('raw.sock');
      for (const len of [0, 5, 13, 65553 + 1, 100_000]) expect(sendRaw(raw.fd, join(dir, 'n.sock'), new Uint8Array(len).fill(9))).to.equal(len);
      expect(sendRaw(raw.fd, join(dir, 'n.sock'), frame(65553, 4))).to.equal(65553); // FRAME_MAX: fits
      return until('six datagrams', () => n.stats().rxDatagrams === 6).then(() => {
        const s = n.stats();
        expect(s).to.include({ rxRunt: 3, rxOversize: 2, rxFrames: 1, rxBytes: 65553 });
        expect(dev.received.map((f) => f.length)).to.deep.equal([65553]);
        expectBalanced(s);
      });
    });

    it('a_flood_while_the_device_is_full_is_held_by_the_kernel_so_the_sender_sees_eagain_and_nothing_is_lost', async () => {
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'unix', path: join(dir, 'n.sock') }, remote: { type: 'unix', path: join(dir, 'raw.sock') } }));
      const dev = new RecordingPeer(10);
      n.attach(dev);
      const raw = rawUnix('raw.sock');
      let sent = 0;
      let refused = false;
      // Sends until the kernel pushes back after the device is full (the netdev keeps reading
      // until then; before, an EAGAIN only means the netdev has not read yet: send again later).
      for (let round = 0; round < 500 && !(refused && dev.received.length === 10 && n.stats().backlog === 1); round++) {
        refused = false;
        for (let i = 0; i < 100; i++) {
          const f = frame(200, 0);
          f.set([sent >> 8, sent & 0xff], 20);
          const r = sendRaw(raw.fd, join(dir, 'n.sock'), f);
          if (r === -Errno.EAGAIN) {
            refused = true;
            break;
          }
          expect(r).to.equal(200);
          sent++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(refused, 'the sender was pushed back (EAGAIN)').to.equal(true);
      const held = n.stats();
      expect(held.rxFrames).to.equal(10);
      expect(held.backlog, 'one refused frame held, the rest in the kernel').to.equal(1);
      expect(held.rxBacklogDropped + held.rxRunt + held.rxOversize).to.equal(0);
      dev.room = Infinity;
      n.resumeReceive();
      await until('every frame sent', () => dev.received.length === sent);
      const seqs = dev.received.map((f) => (f[20]! << 8) | f[21]!);
      expect(seqs).to.deep.equal(Array.from({ length: sent }, (_, i) => i));
      const s = n.stats();
      expect(s.rxDatagrams).to.equal(sent);
      expectBalanced(s);
    });

    it('a_frame_to_a_path_nobody_is_bound_to_is_dropped_counted_and_recorded', () => {
      const n = track(new DgramNetdev({ id: 'd0', local: { type: 'unix', path: join(dir, 'n.sock') }, remote: { type: 'unix', path: join(dir, 'nobody.sock') } }));
      const errors: HostError[] = [];
      n.on('host-error', (e) => errors.push(e));
      n.attach(new RecordingPeer());
      expect(n.send(frame(60, 1))).to.equal('dropped');
      expect(n.stats()).to.include({ txErrors: 1, txFrames: 0 });
      expect(n.hostErrors().last?.errnoName).to.equal('ENOENT');
      expect(errors.map((e) => e.errnoName)).to.deep.equal(['ENOENT']);
      expect(n.failed, 'a missing peer is not the end: it may bind later').to.equal(false);
    });

    it('after_close_frames_are_dropped_and_held_frames_count_as_discarded', async () => {
      const n = new DgramNetdev({ id: 'd0', local: { type: 'unix', path: join(dir, 'n.sock') }, remote: { type: 'unix', path: join(dir, 'raw.sock') } });
      const dev = new RecordingPeer(0);
      n.attach(dev);
      const raw = rawUnix('raw.sock');
      sendRaw(raw.fd, join(dir, 'n.sock'), frame(60, 1));
      await until('the refused frame held', () => n.stats().backlog === 1);
      await n.close();
      const s = n.stats();
      expect(s).to.include({ backlog: 0, rxDiscarded: 1 });
      expectBalanced(s);
      expect(n.send(frame(60, 2))).to.equal('dropped');
    });
  });
});
