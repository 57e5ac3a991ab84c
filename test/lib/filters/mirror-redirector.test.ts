// filter-mirror and filter-redirector through real sockets (unix and TCP on 127.0.0.1): frames
// with and without vnet headers go out framed as QEMU frames them, come back in through a
// redirector's input, and garbled or truncated input framing drops only that connection, with a
// typed diagnostic, losing nothing that came before it or after a reconnect.

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChardevSocket, type ChardevDiagnostic } from '../../../lib/chardev/chardev-socket.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { encodeFrame } from '../../../lib/chardev/framing.js';
import { MirrorFilter } from '../../../lib/filters/mirror.js';
import { RedirectorFilter } from '../../../lib/filters/redirector.js';
import { PassthroughList } from '../../../lib/passthrough/passthrough.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { Netdev, NetdevPeer, SendResult } from '../../../lib/netdev/netdev.js';
import { buildFrame, TCP_FLAG } from '../../../lib/packet/index.js';
import { SocketPeer, waitFor } from './socket-peer.js';

class Guest implements NetdevPeer {
  readonly frames: Uint8Array[] = [];
  readonly headers: (Uint8Array | undefined)[] = [];
  receive(frame: Uint8Array, hdr?: Uint8Array): boolean {
    this.frames.push(frame.slice());
    this.headers.push(hdr?.slice());
    return true;
  }
  writable(): void {}
}

/** A backend that carries vnet headers host → guest (as a TAP with IFF_VNET_HDR does). */
class HeaderNetdev implements Netdev {
  readonly id = 'hn-vnet';
  private peer: NetdevPeer | null = null;
  attach(peer: NetdevPeer): void {
    this.peer = peer;
  }
  detach(): void {
    this.peer = null;
  }
  deliver(frame: Uint8Array, hdr: Uint8Array): boolean {
    return this.peer?.receive(frame, hdr) ?? false;
  }
  send(): SendResult {
    return 'sent';
  }
  pauseReceive(): void {}
  resumeReceive(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const tcp = (k: number, sport = 5000): Uint8Array =>
  buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: sport, dstPort: 80, seq: k, flags: TCP_FLAG.ACK, payload: new Uint8Array(k % 50).fill(k) });
const vnetHdr = (k: number): Uint8Array => Uint8Array.of(1, 0, 0, 0, 0, 0, 14, 0, 16, 0, k, 0); // NEEDS_CSUM, csum_start 14, offset 16, num_buffers k

describe('lib/filters mirror and redirector over real sockets', () => {
  let dir: string;
  const closers: (() => Promise<void> | void)[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filters-'));
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await rm(dir, { recursive: true, force: true });
  });

  async function serverSocket(id: string, endpoint: { path: string } | { port: number }, vnetHdrSupport = false): Promise<ChardevSocket> {
    const s = new ChardevSocket({ id, endpoint, server: true, vnetHdrSupport });
    await s.open();
    closers.push(() => s.close());
    return s;
  }

  it('mirror_copies_guest_frames_to_a_unix_socket_and_passes_them_on', async () => {
    const path = join(dir, 'mirror.sock');
    const out = await serverSocket('mirror0', { path });
    const inner = new MemoryNetdev({ id: 'hn0' });
    const host: Uint8Array[] = [];
    inner.on('transmit', (f: Uint8Array) => host.push(f));
    const chain = new FilterChain(inner);
    const mirror = new MirrorFilter({ id: 'm0', queue: 'rx', outdev: out });
    chain.add(mirror);
    chain.attach(new Guest());
    const peer = await SocketPeer.connect({ path });
    closers.push(() => peer.destroy());
    await waitFor(out, 'connect', () => out.connected);
    const sent = Array.from({ length: 50 }, (_, k) => tcp(k));
    for (const f of sent) expect(chain.send(f)).to.equal('sent');
    const got = await peer.waitFrames(50);
    expect(got.map((g) => [...g.frame])).to.deep.equal(sent.map((f) => [...f]));
    expect(host).to.have.length(50);
    expect(mirror.stats()).to.deep.equal({ mirrored: 50, dropped: 0, passedThrough: 0 });
  });

  it('mirror_with_vnet_hdr_support_sends_the_header_over_tcp_on_loopback', async () => {
    const out = await serverSocket('mirror0', { port: 0 }, true);
    expect(out.port).to.be.a('number');
    const chain = new FilterChain(new MemoryNetdev());
    chain.add(new MirrorFilter({ id: 'm0', outdev: out }));
    chain.attach(new Guest());
    const peer = await SocketPeer.connect({ port: out.port! }, true);
    closers.push(() => peer.destroy());
    await waitFor(out, 'connect', () => out.connected);
    expect(peer.socket.remoteAddress).to.equal('127.0.0.1'); // bound to loopback by default
    chain.send(tcp(1), vnetHdr(1));
    chain.send(tcp(2), vnetHdr(2));
    const got = await peer.waitFrames(2);
    expect([...got[0]!.hdr!]).to.deep.equal([...vnetHdr(1)]);
    expect([...got[1]!.frame]).to.deep.equal([...tcp(2)]);
  });

  it('redirector_outdev_takes_frames_and_indev_injects_toward_the_guest', async () => {
    const outPath = join(dir, 'out.sock');
    const inPath = join(dir, 'in.sock');
    const out = await serverSocket('red-out', { path: outPath });
    const inp = await serverSocket('red-in', { path: inPath });
    const inner = new MemoryNetdev({ id: 'hn0' });
    const host: Uint8Array[] = [];
    inner.on('transmit', (f: Uint8Array) => host.push(f));
    const chain = new FilterChain(inner);
    const r1 = new RedirectorFilter({ id: 'r1', queue: 'rx', outdev: out });
    const r0 = new RedirectorFilter({ id: 'r0', queue: 'tx', indev: inp });
    chain.add(r0);
    chain.add(r1);
    const guest = new Guest();
    chain.attach(guest);
    const outPeer = await SocketPeer.connect({ path: outPath });
    const inPeer = await SocketPeer.connect({ path: inPath });
    closers.push(() => outPeer.destroy(), () => inPeer.destroy());
    await waitFor(out, 'connect', () => out.connected && inp.connected);
    // Guest → host frames go to the socket instead of the host.
    chain.send(tcp(3));
    expect(host).to.have.length(0);
    expect([...(await outPeer.waitFrames(1))[0]!.frame]).to.deep.equal([...tcp(3)]);
    // Frames written to the input socket reach the guest.
    const fs = [tcp(4), tcp(5), tcp(6)];
    inPeer.write(Buffer.concat(fs.map((f) => encodeFrame(f, undefined, false))));
    await waitFor(inp, 'frame', () => guest.frames.length === 3);
    expect(guest.frames.map((f) => [...f])).to.deep.equal(fs.map((f) => [...f]));
    expect(r0.stats()).to.deep.include({ injected: 3, inDropped: 0 });
  });

  it('mirror_to_redirector_round_trip_carries_vnet_headers_between_two_chains', async () => {
    // Primary: filter-mirror queue=tx outdev=mirror0 (server); secondary: filter-redirector
    // queue=tx indev=red0 connecting to it — the COLO pipe of QEMU docs/colo-proxy.txt.
    const mirrorOut = await serverSocket('mirror0', { port: 0 }, true);
    const primaryInner = new HeaderNetdev();
    const primary = new FilterChain(primaryInner);
    primary.add(new MirrorFilter({ id: 'm0', queue: 'tx', outdev: mirrorOut }));
    const primaryGuest = new Guest();
    primary.attach(primaryGuest);

    const red0 = new ChardevSocket({ id: 'red0', endpoint: { port: mirrorOut.port! }, server: false, vnetHdrSupport: true });
    await red0.open();
    closers.push(() => red0.close());
    const secondary = new FilterChain(new MemoryNetdev({ id: 'secondary-hn0' }));
    secondary.add(new RedirectorFilter({ id: 'f1', queue: 'tx', indev: red0 }));
    const secondaryGuest = new Guest();
    secondary.attach(secondaryGuest);
    await waitFor(mirrorOut, 'connect', () => mirrorOut.connected);

    // The primary's netdev carries vnet headers: deliver frames with headers host → guest.
    for (let k = 0; k < 20; k++) expect(primaryInner.deliver(tcp(k), vnetHdr(k))).to.equal(true);
    await waitFor(red0, 'frame', () => secondaryGuest.frames.length === 20);
    expect(secondaryGuest.frames.map((f) => [...f])).to.deep.equal(primaryGuest.frames.map((f) => [...f]));
    expect(secondaryGuest.headers.map((h) => [...h!])).to.deep.equal(primaryGuest.headers.map((h) => [...h!]));
  });

  for (const [name, garbage, code] of [
    ['absurd_length', Buffer.from([0x7f, 0xff, 0xff, 0xff]), 'framing.length-too-large'],
    ['zero_length', Buffer.from([0, 0, 0, 0]), 'framing.empty-frame'],
  ] as const) {
    it(`garbled_input_${name}_drops_the_connection_keeps_earlier_frames_and_accepts_a_new_one`, async () => {
      const path = join(dir, 'in.sock');
      const inp = await serverSocket('red-in', { path });
      const diags: ChardevDiagnostic[] = [];
      inp.on('diagnostic', (d) => diags.push(d));
      const chain = new FilterChain(new MemoryNetdev());
      chain.add(new RedirectorFilter({ id: 'r0', queue: 'tx', indev: inp }));
      const guest = new Guest();
      chain.attach(guest);
      const bad = await SocketPeer.connect({ path });
      closers.push(() => bad.destroy());
      bad.write(Buffer.concat([encodeFrame(tcp(1), undefined, false), encodeFrame(tcp(2), undefined, false), garbage, encodeFrame(tcp(9), undefined, false)]));
      await bad.waitClosed();
      expect(diags).to.deep.equal([code === 'framing.length-too-large' ? { code, length: 0x7fffffff, limit: 69632, id: 'red-in' } : { code, id: 'red-in' }]);
      expect(guest.frames.map((f) => f[f.length - 1])).to.deep.equal([1, 2]); // nothing after the garbage is guessed at
      expect(inp.stats().framingErrors).to.equal(1);
      // The next client is served normally.
      await waitFor(inp, 'disconnect', () => !inp.connected);
      const good = await SocketPeer.connect({ path });
      closers.push(() => good.destroy());
      good.write(encodeFrame(tcp(3), undefined, false));
      await waitFor(inp, 'frame', () => guest.frames.length === 3);
      expect([...guest.frames[2]!]).to.deep.equal([...tcp(3)]);
    });
  }

  it('truncated_input_with_vnet_headers_is_reported_when_the_peer_hangs_up', async () => {
    const inp = await serverSocket('red-in', { port: 0 }, true);
    const diags: ChardevDiagnostic[] = [];
    inp.on('diagnostic', (d) => diags.push(d));
    const chain = new FilterChain(new MemoryNetdev());
    chain.add(new RedirectorFilter({ id: 'r0', queue: 'tx', indev: inp }));
    const guest = new Guest();
    chain.attach(guest);
    const peer = await SocketPeer.connect({ port: inp.port! }, true);
    closers.push(() => peer.destroy());
    const whole = encodeFrame(tcp(7), vnetHdr(1), true);
    peer.write(Buffer.concat([whole, whole.subarray(0, 30)]));
    peer.end();
    await waitFor(inp, 'diagnostic', () => diags.length === 1);
    expect(diags[0]).to.deep.equal({ code: 'framing.truncated', expected: whole.length - 8, got: 22, id: 'red-in' });
    expect(guest.frames).to.have.length(1);
    expect([...guest.headers[0]!]).to.deep.equal([...vnetHdr(1)]);
  });

  it('passthrough_flows_are_neither_mirrored_nor_redirected', async () => {
    const path = join(dir, 'm.sock');
    const out = await serverSocket('mirror0', { path });
    const list = new PassthroughList();
    list.add({ protocol: 'tcp', 'object-name': 'm0', destination: { host: '10.0.0.2', port: '80' } });
    const inner = new MemoryNetdev();
    const host: Uint8Array[] = [];
    inner.on('transmit', (f: Uint8Array) => host.push(f));
    const chain = new FilterChain(inner);
    const mirror = new MirrorFilter({ id: 'm0', outdev: out, passthrough: list });
    chain.add(mirror);
    const redirOut = await serverSocket('r-out', { path: join(dir, 'r.sock') });
    const redir = new RedirectorFilter({ id: 'r1', queue: 'rx', outdev: redirOut, passthrough: list });
    chain.add(redir, { position: 'head' });
    list.add({ protocol: 'tcp', 'object-name': 'r1', source: { host: '10.0.0.1', port: '' } });
    chain.attach(new Guest());
    const peer = await SocketPeer.connect({ path });
    closers.push(() => peer.destroy());
    await waitFor(out, 'connect', () => out.connected);
    chain.send(tcp(1, 5000)); // tcp to 10.0.0.2:80: passthrough for both
    chain.send(buildFrame({ src: '10.0.0.1', dst: '10.0.0.3', protocol: 'udp', srcPort: 1, dstPort: 2 })); // mirrored and redirected
    const got = await peer.waitFrames(1);
    expect(got[0]!.frame[23]).to.equal(17); // the UDP one
    expect(mirror.stats()).to.deep.equal({ mirrored: 1, dropped: 0, passedThrough: 1 });
    expect(redir.stats()).to.deep.include({ passedThrough: 1 });
    expect(host).to.have.length(1); // the passthrough frame reached the host; the UDP one was redirected
  });

  it('input_while_the_redirector_is_off_is_dropped_and_counted', async () => {
    const path = join(dir, 'in.sock');
    const inp = await serverSocket('red-in', { path });
    const chain = new FilterChain(new MemoryNetdev());
    const r0 = new RedirectorFilter({ id: 'r0', queue: 'tx', indev: inp, status: false });
    chain.add(r0);
    const guest = new Guest();
    chain.attach(guest);
    const peer = await SocketPeer.connect({ path });
    closers.push(() => peer.destroy());
    peer.write(encodeFrame(tcp(1), undefined, false));
    await waitFor(inp, 'frame', () => inp.stats().framesIn === 1);
    expect(guest.frames).to.have.length(0);
    expect(r0.stats()).to.deep.include({ injected: 0, inDropped: 1 });
    r0.status = true;
    peer.write(encodeFrame(tcp(2), undefined, false));
    await waitFor(inp, 'frame', () => guest.frames.length === 1);
  });

  it('bad_options_throw_naming_the_option', async () => {
    expect(() => new RedirectorFilter({ id: 'r' })).to.throw(TypeError, /needs options\.indev or options\.outdev/);
    const s = new ChardevSocket({ id: 'x', endpoint: { path: join(dir, 'x') }, server: true });
    expect(() => new RedirectorFilter({ id: 'r', indev: s, outdev: s })).to.throw(TypeError, /must be different sockets/);
    expect(() => new MirrorFilter({ id: 'm' } as never)).to.throw(TypeError, /options\.outdev/);
    expect(() => new ChardevSocket({ id: 'x', endpoint: { port: 70000 }, server: true })).to.throw(TypeError, /endpoint\.port/);
    expect(() => new MirrorFilter({ id: '', outdev: s })).to.throw(TypeError, /options\.id/);
  });
});
