// colo-compare: identical streams (however segmented) produce no checkpoint request and the
// primary's packets go out in order; one differing byte produces exactly one; passthrough flows
// are never compared; non-IP goes straight out; timeout and queue limits request a checkpoint;
// and the same over real sockets with vnet headers.

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColoCompare, type CheckpointRequest } from '../../../lib/colo/colo-compare.js';
import { PassthroughList } from '../../../lib/passthrough/passthrough.js';
import { ChardevSocket } from '../../../lib/chardev/chardev-socket.js';
import { encodeFrame } from '../../../lib/chardev/framing.js';
import { SocketPeer, waitFor } from '../filters/socket-peer.js';
import { buildFrame, TCP_FLAG } from '../../../lib/packet/index.js';
import { arp, CLIENT, GUEST, icmp, streamBytes, tcpStream, udp } from './streams.js';

function harness(extra: Partial<ConstructorParameters<typeof ColoCompare>[0]> = {}): { cc: ColoCompare; out: Uint8Array[]; requests: CheckpointRequest[]; clock: { t: number } } {
  const out: Uint8Array[] = [];
  const requests: CheckpointRequest[] = [];
  const clock = { t: 0 };
  const cc = new ColoCompare({ id: 'comp0', output: (f) => out.push(f.slice()), now: () => clock.t, ...extra });
  cc.on('checkpoint-request', (r) => requests.push(r));
  return { cc, out, requests, clock };
}

const hex = (fs: Uint8Array[]): string[] => fs.map((f) => Buffer.from(f).toString('hex'));

describe('lib/colo colo-compare', () => {
  it('identical_streams_segmented_differently_produce_no_checkpoint', () => {
    const { cc, out, requests } = harness();
    const data = streamBytes(1000);
    const primary = tcpStream(data, [100, 300, 700]);
    const secondary = tcpStream(data, [150, 500, 501], { ipId: 99 });
    const pUdp = [udp(streamBytes(40, 1)), udp(streamBytes(50, 2))];
    const sUdp = [udp(streamBytes(40, 1), 7), udp(streamBytes(50, 2), 8)]; // IP ids differ: not compared
    // Interleave arrival: the secondary lags.
    for (const f of [...primary.slice(0, 3), ...pUdp]) cc.primaryInput(f);
    for (const f of secondary.slice(0, 2)) cc.secondaryInput(f);
    for (const f of primary.slice(3)) cc.primaryInput(f);
    for (const f of [...secondary.slice(2), ...sUdp]) cc.secondaryInput(f);
    cc.primaryInput(icmp(streamBytes(8)));
    cc.secondaryInput(icmp(streamBytes(8), 5));
    expect(requests).to.deep.equal([]);
    expect(hex(out).sort()).to.deep.equal(hex([...primary, ...pUdp, icmp(streamBytes(8))]).sort());
    expect(hex(out.filter((f) => f[23] === 6))).to.deep.equal(hex(primary)); // TCP in order
    expect(cc.stats()).to.deep.include({ released: primary.length + 3, checkpointRequests: 0, secondaryDropped: secondary.length + 3 });
  });

  it('one_differing_byte_produces_exactly_one_checkpoint_request', () => {
    const { cc, out, requests } = harness();
    const data = streamBytes(900);
    const bad = data.slice();
    bad[450] = bad[450]! ^ 0x40;
    const primary = tcpStream(data, [300, 600]);
    const secondary = tcpStream(bad, [200, 500]);
    for (let k = 0; k < Math.max(primary.length, secondary.length); k++) {
      if (primary[k] !== undefined) cc.primaryInput(primary[k]!);
      if (secondary[k] !== undefined) cc.secondaryInput(secondary[k]!);
    }
    expect(requests).to.deep.equal([{ id: 'comp0', reason: 'mismatch', flow: 'tcp 192.168.7.2:8080 <-> 192.168.7.100:40000' }]);
    expect(hex(out)).to.deep.equal(hex(primary)); // every primary packet still goes out, in order
  });

  it('a_secondary_that_skips_bytes_after_the_handshake_is_a_mismatch', () => {
    const { cc, requests } = harness();
    const data = streamBytes(400);
    const primary = tcpStream(data, [200]);
    const secondary = tcpStream(data, [200]);
    for (const f of primary.slice(0, 2)) cc.primaryInput(f);
    cc.secondaryInput(secondary[0]!); // SYN/ACK pins the first data byte
    cc.secondaryInput(secondary[2]!); // bytes 200..400 only: 0..200 never come
    expect(requests.map((r) => r.reason)).to.deep.equal(['mismatch']);
  });

  it('a_fin_alone_matches_a_fin_riding_on_the_last_data_segment', () => {
    const { cc, out, requests } = harness();
    const data = streamBytes(300);
    const primary = tcpStream(data, [150]); // SYN/ACK, data 0..150, 150..300, then a FIN alone
    const secondary = [...tcpStream(data, [100]).slice(0, 2)];
    // The secondary's last segment carries the FIN: same bytes 100..300 with FIN|ACK|PSH.
    const fin = buildFrame({ src: GUEST, dst: CLIENT, protocol: 'tcp', srcPort: 8080, dstPort: 40000, seq: (0xfffffe00 + 101) >>> 0, ack: 5001, flags: TCP_FLAG.FIN | TCP_FLAG.ACK | TCP_FLAG.PSH, payload: data.subarray(100) });
    for (const f of primary) cc.primaryInput(f);
    for (const f of [...secondary, fin]) cc.secondaryInput(f);
    expect(requests).to.deep.equal([]);
    expect(hex(out)).to.deep.equal(hex(primary));
  });

  it('one_differing_udp_byte_produces_exactly_one_checkpoint_request', () => {
    const { cc, requests } = harness();
    for (let k = 0; k < 10; k++) {
      const p = streamBytes(64, k);
      const s = p.slice();
      if (k === 4) s[63] = s[63]! ^ 1;
      cc.primaryInput(udp(p));
      cc.secondaryInput(udp(s));
    }
    expect(requests.map((r) => r.reason)).to.deep.equal(['mismatch']);
  });

  it('passthrough_flows_are_never_compared', () => {
    const list = new PassthroughList();
    list.add({ protocol: 'udp', 'object-name': 'comp0', source: { host: '192.168.7.2', port: '53' } });
    list.add({ protocol: 'tcp', 'object-name': 'someone-else', source: { host: '', port: '8080' } });
    const { cc, out, requests } = harness({ passthrough: list });
    // Entirely different content, and the secondary never answers: no request, primary out at once.
    cc.primaryInput(udp(streamBytes(10, 1)));
    cc.secondaryInput(udp(streamBytes(10, 2)));
    cc.primaryInput(udp(streamBytes(10, 3)));
    expect(out).to.have.length(2);
    // The reply direction of the same flow is the same flow.
    cc.primaryInput(buildFrame({ src: CLIENT, dst: GUEST, protocol: 'udp', srcPort: 33333, dstPort: 53, payload: streamBytes(10, 4) }));
    expect(requests).to.deep.equal([]);
    expect(cc.stats()).to.deep.include({ passthrough: 3, connections: 0 });
    // The TCP entry is for another object: this compare still compares TCP.
    cc.primaryInput(tcpStream(streamBytes(5), [])[1]!);
    expect(cc.stats().connections).to.equal(1);
    // Deleting the entry makes the flow compared again.
    list.delete({ protocol: 'udp', 'object-name': 'comp0', source: { host: '192.168.7.2', port: '53' } });
    cc.primaryInput(udp(streamBytes(10, 5)));
    cc.secondaryInput(udp(streamBytes(10, 6)));
    expect(requests.map((r) => r.reason)).to.deep.equal(['mismatch']);
  });

  it('non_ip_goes_straight_out_and_secondary_non_ip_is_dropped', () => {
    const { cc, out, requests } = harness();
    cc.primaryInput(arp());
    cc.secondaryInput(arp());
    cc.primaryInput(new Uint8Array(5)); // too short to parse: out, like QEMU
    expect(out).to.have.length(2);
    expect(requests).to.deep.equal([]);
    expect(cc.stats()).to.deep.include({ straightOut: 2, secondaryDropped: 1 });
  });

  it('a_primary_packet_unmatched_past_compare_timeout_requests_one_checkpoint', () => {
    const { cc, out, requests, clock } = harness();
    expect(cc.compareTimeout).to.equal(3000);
    expect(cc.expiredScanCycle).to.equal(1000);
    expect(cc.maxQueueSize).to.equal(1024);
    cc.primaryInput(udp(streamBytes(20)));
    clock.t = 2999;
    cc.scan();
    expect(requests).to.deep.equal([]);
    expect(out).to.have.length(0);
    clock.t = 3000;
    cc.scan();
    cc.scan();
    expect(requests.map((r) => r.reason)).to.deep.equal(['timeout']);
    expect(out).to.have.length(1); // flushed out after the request
  });

  it('the_expiry_scan_runs_on_its_own_timer', async () => {
    const { cc, requests } = harness({ now: () => performance.now(), compareTimeout: 20, expiredScanCycle: 10 });
    cc.start();
    cc.primaryInput(udp(streamBytes(20)));
    await waitFor(cc, 'checkpoint-request', () => requests.length === 1, 2000);
    expect(requests[0]!.reason).to.equal('timeout');
    await cc.close();
  });

  it('a_queue_over_max_queue_size_requests_a_checkpoint', () => {
    const { cc, out, requests } = harness({ maxQueueSize: 4 });
    for (let k = 0; k < 5; k++) cc.primaryInput(udp(streamBytes(8, k)));
    expect(requests.map((r) => r.reason)).to.deep.equal(['queue-full']);
    expect(out).to.have.length(5);
  });

  it('bad_options_throw_naming_the_option', () => {
    expect(() => new ColoCompare({ id: 'c' })).to.throw(TypeError, /options\.outdev .* or options\.output/);
    expect(() => new ColoCompare({ id: 'c', output: () => undefined, compareTimeout: 0 })).to.throw(TypeError, /options\.compareTimeout/);
    expect(() => new ColoCompare({ id: '', output: () => undefined })).to.throw(TypeError, /options\.id/);
  });

  describe('over real sockets with vnet_hdr_support', () => {
    let dir: string;
    const closers: (() => Promise<void> | void)[] = [];
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'colo-'));
    });
    afterEach(async () => {
      for (const c of closers.splice(0).reverse()) await c();
      await rm(dir, { recursive: true, force: true });
    });

    it('primary_and_secondary_sockets_in_one_output_socket_out', async () => {
      const sock = async (id: string, endpoint: { path: string } | { port: number }): Promise<ChardevSocket> => {
        const s = new ChardevSocket({ id, endpoint, server: true, vnetHdrSupport: true });
        await s.open();
        return s;
      };
      const primaryIn = await sock('compare0', { path: join(dir, 'p.sock') });
      const secondaryIn = await sock('compare1', { port: 0 });
      const outdev = await sock('compare_out', { path: join(dir, 'o.sock') });
      const cc = new ColoCompare({ id: 'comp0', primaryIn, secondaryIn, outdev });
      closers.push(() => cc.close());
      const requests: CheckpointRequest[] = [];
      cc.on('checkpoint-request', (r) => requests.push(r));
      const p = await SocketPeer.connect({ path: join(dir, 'p.sock') }, true);
      const s = await SocketPeer.connect({ port: secondaryIn.port! }, true);
      const o = await SocketPeer.connect({ path: join(dir, 'o.sock') }, true);
      closers.push(() => p.destroy(), () => s.destroy(), () => o.destroy());
      await waitFor(outdev, 'connect', () => outdev.connected && primaryIn.connected && secondaryIn.connected);

      const hdr = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0);
      const data = streamBytes(3000);
      const primary = [arp(), ...tcpStream(data, [1000, 2000])];
      const secondary = tcpStream(data, [1448, 2896]);
      p.write(Buffer.concat(primary.map((f) => encodeFrame(f, hdr, true))));
      s.write(Buffer.concat(secondary.map((f) => encodeFrame(f, hdr, true))));
      const got = await o.waitFrames(primary.length);
      expect(hex(got.map((g) => g.frame))).to.deep.equal(hex(primary));
      expect(got.every((g) => g.hdr !== undefined && Buffer.from(g.hdr).equals(Buffer.from(hdr)))).to.equal(true);
      expect(requests).to.deep.equal([]);

      // One byte off in the next exchange: exactly one request.
      const more = streamBytes(500, 3);
      const off = more.slice();
      off[10] = off[10]! ^ 0xff;
      p.write(Buffer.concat(tcpStream(more, [250], { port: 40001 }).map((f) => encodeFrame(f, hdr, true))));
      s.write(Buffer.concat(tcpStream(off, [100], { port: 40001 }).map((f) => encodeFrame(f, hdr, true))));
      await waitFor(cc, 'checkpoint-request', () => requests.length === 1);
      await o.waitFrames(primary.length + 4);
      expect(requests.map((r) => r.reason)).to.deep.equal(['mismatch']);
    });
  });
});
