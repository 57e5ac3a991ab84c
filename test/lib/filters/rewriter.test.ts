// filter-rewriter: the per-connection state machine learns offset = secondary_seq - primary_seq
// from the handshake (guest as server and as client), maps client → guest acks and guest → client
// seqs with valid checksums (IPv4 and IPv6, across the 2^32 wrap), forgets connections on FIN/FIN/
// ACK and RST, resets offsets at a checkpoint, leaves partial checksums alone, and never writes
// into the guest's frame. The tshark part checks a whole session through a real FilterChain.

import { expect } from 'chai';
import sinon from 'sinon';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DumpFilter } from '../../../lib/filters/dump.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { RewriterFilter } from '../../../lib/filters/rewriter.js';
import { REWRITER_TRANSITIONS } from '../../../lib/filters/rewriter-states.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { buildFrame, newPacketInfo, parsePacket, TCP_FLAG, transportChecksumValid } from '../../../lib/packet/index.js';
import { serverSession, type SessionSpec } from './rewriter-session.js';
import { needTshark, tsharkFields } from './tshark.js';

const V4: SessionSpec = { client: '192.168.0.10', guest: '192.168.0.2', clientIsn: 5000, primaryIsn: 1_000_000, secondaryIsn: 0xffffff80 };
const V6: SessionSpec = { client: 'fd00::10', guest: 'fd00::2', clientIsn: 0xfffffff0, primaryIsn: 0x7fff0000, secondaryIsn: 12345 };

function fields(frame: Uint8Array): { seq: number; ack: number; valid: boolean } {
  const i = newPacketInfo();
  expect(parsePacket(frame, i)).to.equal('ip');
  return { seq: i.tcpSeq, ack: i.tcpAck, valid: transportChecksumValid(frame, i) };
}

function through(rw: RewriterFilter, direction: 'tx' | 'rx', frame: Uint8Array, hdr?: Uint8Array): Uint8Array {
  const v = rw.process(direction, frame, hdr);
  if (v.kind === 'replace') return v.frame.slice();
  expect(v.kind).to.equal('pass');
  return frame;
}

describe('lib/filters rewriter (filter-rewriter)', () => {
  for (const [name, spec] of [['ipv4', V4], ['ipv6', V6]] as const) {
    it(`${name}_guest_as_server_session_is_mapped_with_valid_checksums`, () => {
      const rw = new RewriterFilter({ id: 'f3' });
      for (const [k, step] of serverSession(spec).entries()) {
        const before = step.frame.slice();
        const out = fields(through(rw, step.direction, step.frame));
        expect(out, `step ${k}`).to.deep.equal({ seq: step.seq, ack: step.ack, valid: true });
        expect(step.frame, 'the input frame is never written').to.deep.equal(before);
      }
      expect(rw.stats()).to.deep.include({ connections: 0, closed: 1 });
    });
  }

  it('guest_as_client_offset_comes_from_the_clients_syn_ack', () => {
    const rw = new RewriterFilter({ id: 'f3' });
    const S = 900;
    const P = 0xfffffffe; // the primary's ISN: primary + 1 wraps to 0... secondary ISN 900
    const g = (seq: number, ack: number, flags: number): Uint8Array =>
      buildFrame({ src: '10.1.0.2', dst: '10.1.0.9', protocol: 'tcp', srcPort: 33000, dstPort: 22, seq, ack, flags });
    const c = (seq: number, ack: number, flags: number): Uint8Array =>
      buildFrame({ src: '10.1.0.9', dst: '10.1.0.2', protocol: 'tcp', srcPort: 22, dstPort: 33000, seq, ack, flags });
    expect(fields(through(rw, 'rx', g(S, 0, TCP_FLAG.SYN))).seq).to.equal(S);
    // The server answers the primary's SYN: ack = P + 1 (wrapped); the secondary needs S + 1.
    expect(fields(through(rw, 'tx', c(777, (P + 1) >>> 0, TCP_FLAG.SYN | TCP_FLAG.ACK)))).to.deep.equal({ seq: 777, ack: S + 1, valid: true });
    expect(fields(through(rw, 'rx', g(S + 1, 778, TCP_FLAG.ACK)))).to.deep.equal({ seq: (P + 1) >>> 0, ack: 778, valid: true });
    expect(rw.connections()).to.deep.equal([{ state: 'established', offset: (S - P) >>> 0, tsOffset: 0 }]);
  });

  it('checkpoint_resets_every_offset', () => {
    const rw = new RewriterFilter({ id: 'f3' });
    const steps = serverSession(V4);
    for (const s of steps.slice(0, 4)) through(rw, s.direction, s.frame);
    rw.checkpoint();
    expect(rw.connections()).to.deep.equal([{ state: 'established', offset: 0, tsOffset: 0 }]);
    // After the checkpoint the secondary continues from the primary's numbers: nothing to change.
    expect(rw.process('rx', steps[4]!.frame, undefined).kind).to.equal('pass');
    expect(rw.stats().checkpoints).to.equal(1);
  });

  it('rst_forgets_the_connection_and_mid_stream_packets_are_not_tracked', () => {
    const rw = new RewriterFilter({ id: 'f3' });
    const steps = serverSession(V4);
    for (const s of steps.slice(0, 3)) through(rw, s.direction, s.frame);
    expect(rw.stats().connections).to.equal(1);
    const rst = buildFrame({ src: V4.client, dst: V4.guest, protocol: 'tcp', srcPort: 40000, dstPort: 8080, seq: 5001, flags: TCP_FLAG.RST });
    through(rw, 'tx', rst);
    expect(rw.stats().connections).to.equal(0);
    expect(rw.process('rx', steps[5]!.frame, undefined).kind).to.equal('pass'); // unknown connection now
    expect(rw.stats().connections).to.equal(0);
  });

  it('rst_with_out_of_window_sequence_keeps_the_connection', () => {
    // A blind RST (RFC 5961 §3) must not make the rewriter forget the offset: the secondary's
    // session would then be rewritten no more and diverge from the primary's.
    const rw = new RewriterFilter({ id: 'f3' });
    const steps = serverSession(V4);
    for (const s of steps.slice(0, 4)) through(rw, s.direction, s.frame); // handshake + 100-byte request
    const clientNext = V4.clientIsn + 101;
    const rst = (seq: number, from: 'client' | 'guest', ack?: number): Uint8Array =>
      from === 'client'
        ? buildFrame({ src: V4.client, dst: V4.guest, protocol: 'tcp', srcPort: 40000, dstPort: 8080, seq: seq >>> 0, ack: ack ?? 0, flags: TCP_FLAG.RST | (ack === undefined ? 0 : TCP_FLAG.ACK) })
        : buildFrame({ src: V4.guest, dst: V4.client, protocol: 'tcp', srcPort: 8080, dstPort: 40000, seq: seq >>> 0, ack: ack ?? 0, flags: TCP_FLAG.RST | (ack === undefined ? 0 : TCP_FLAG.ACK) });
    for (const seq of [clientNext + 70_000, clientNext - 1, V4.clientIsn, (clientNext + 0x80000000) >>> 0]) through(rw, 'tx', rst(seq, 'client'));
    through(rw, 'rx', rst(V4.secondaryIsn + 100_000, 'guest'));
    expect(rw.connections()).to.have.length(1);
    expect(rw.connections()[0]!.state).to.equal('established');
    expect(rw.stats()).to.deep.include({ connections: 1, rstIgnored: 5, closed: 0 });
    // The session goes on being mapped.
    expect(fields(through(rw, 'rx', steps[5]!.frame)).seq).to.equal(steps[5]!.seq);
    // A reset at the sender's next sequence number (the guest's, in the secondary's space) is real.
    through(rw, 'rx', rst(V4.secondaryIsn + 201, 'guest'));
    expect(rw.stats()).to.deep.include({ connections: 0, rstIgnored: 5, closed: 1 });
  });

  it('rst_answering_a_syn_is_accepted_when_it_acks_the_syn', () => {
    const rw = new RewriterFilter({ id: 'f3' });
    through(rw, 'tx', serverSession(V4)[0]!.frame); // client SYN; the guest has sent nothing yet
    const refuse = (ack: number): Uint8Array => buildFrame({ src: V4.guest, dst: V4.client, protocol: 'tcp', srcPort: 8080, dstPort: 40000, seq: 0, ack, flags: TCP_FLAG.RST | TCP_FLAG.ACK });
    through(rw, 'rx', refuse(V4.clientIsn + 7));
    expect(rw.stats()).to.deep.include({ connections: 1, rstIgnored: 1 });
    through(rw, 'rx', refuse(V4.clientIsn + 1));
    expect(rw.stats()).to.deep.include({ connections: 0, closed: 1 });
  });

  describe('ageing (sinon fake timers)', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers();
    });
    afterEach(() => {
      clock.restore();
    });

    it('idle_connection_expires_after_the_idle_timeout', async () => {
      const rw = new RewriterFilter({ id: 'f3', idleTimeout: 60_000, transientIdleTimeout: 5_000, expiryScanInterval: 1_000 });
      const steps = serverSession(V4);
      for (const s of steps.slice(0, 3)) through(rw, s.direction, s.frame); // established
      // A half-open connection (SYN seen, nothing else) ages on the short timeout.
      through(rw, 'tx', buildFrame({ src: V4.client, dst: V4.guest, protocol: 'tcp', srcPort: 40001, dstPort: 8080, seq: 1, flags: TCP_FLAG.SYN }));
      expect(rw.stats().connections).to.equal(2);
      clock.tick(5_000);
      expect(rw.stats().connections).to.equal(2);
      clock.tick(1_000);
      expect(rw.stats()).to.deep.include({ connections: 1, expired: 1 });
      // Traffic keeps a connection alive.
      clock.tick(50_000);
      through(rw, steps[3]!.direction, steps[3]!.frame);
      clock.tick(59_000);
      expect(rw.stats()).to.deep.include({ connections: 1, expired: 1 });
      clock.tick(2_000);
      expect(rw.stats()).to.deep.include({ connections: 0, expired: 2 });
      await rw.close();
      expect(clock.countTimers()).to.equal(0);
    });
  });

  it('partial_checksum_under_needs_csum_is_left_alone', () => {
    const rw = new RewriterFilter({ id: 'f3' });
    const steps = serverSession(V4);
    for (const s of steps.slice(0, 3)) through(rw, s.direction, s.frame);
    const needsCsum = Uint8Array.of(1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0);
    const f = steps[5]!.frame;
    const i = newPacketInfo();
    parsePacket(f, i);
    const csum = [f[i.l4Offset + 16], f[i.l4Offset + 17]];
    const v = rw.process('rx', f, needsCsum);
    expect(v.kind).to.equal('replace');
    if (v.kind !== 'replace') return;
    expect([v.frame[i.l4Offset + 16], v.frame[i.l4Offset + 17]]).to.deep.equal(csum);
    expect(v.vnetHeader).to.equal(needsCsum);
    expect(fields(v.frame).seq).to.equal(steps[5]!.seq);
  });

  it('client_sack_blocks_are_mapped_into_the_secondary_space', () => {
    const rw = new RewriterFilter({ id: 'f3' });
    const steps = serverSession(V4);
    for (const s of steps.slice(0, 3)) through(rw, s.direction, s.frame);
    const P = V4.primaryIsn;
    const sack = Buffer.alloc(12);
    sack.set([1, 1, 5, 10]); // NOP NOP SACK len 10
    sack.writeUInt32BE(P + 50, 4);
    sack.writeUInt32BE(P + 60, 8);
    const f = buildFrame({ src: V4.client, dst: V4.guest, protocol: 'tcp', srcPort: 40000, dstPort: 8080, seq: 5101, ack: P + 1, flags: TCP_FLAG.ACK, tcpOptions: sack });
    const out = through(rw, 'tx', f);
    const i = newPacketInfo();
    parsePacket(out, i);
    const opts = Buffer.from(out.subarray(i.l4Offset + 20, i.l4Offset + 32));
    const off = (V4.secondaryIsn - P) >>> 0;
    expect([opts.readUInt32BE(4), opts.readUInt32BE(8)]).to.deep.equal([(P + 50 + off) >>> 0, (P + 60 + off) >>> 0]);
    expect(transportChecksumValid(out, i)).to.equal(true);
  });

  it('timestamps_are_mapped_like_sequence_numbers', () => {
    // RFC 7323: the client echoes the primary's TSval; the secondary must see its own.
    const ts = (tsval: number, tsecr: number): Uint8Array => {
      const o = Buffer.alloc(12);
      o.set([1, 1, 8, 10]);
      o.writeUInt32BE(tsval, 4);
      o.writeUInt32BE(tsecr, 8);
      return o;
    };
    const rw = new RewriterFilter({ id: 'f3' });
    const PTS = 1000;
    const STS = 0xfffffff0; // the secondary's clock, wrapping soon
    const c = (seq: number, ack: number, flags: number, o: Uint8Array): Uint8Array =>
      buildFrame({ src: V4.client, dst: V4.guest, protocol: 'tcp', srcPort: 40000, dstPort: 8080, seq, ack, flags, tcpOptions: o });
    const g = (seq: number, ack: number, flags: number, o: Uint8Array): Uint8Array =>
      buildFrame({ src: V4.guest, dst: V4.client, protocol: 'tcp', srcPort: 8080, dstPort: 40000, seq, ack, flags, tcpOptions: o });
    const tsOf = (f: Uint8Array): [number, number] => {
      const i = newPacketInfo();
      parsePacket(f, i);
      const b = Buffer.from(f.subarray(i.l4Offset + 24, i.l4Offset + 32));
      return [b.readUInt32BE(0), b.readUInt32BE(4)];
    };
    through(rw, 'tx', c(10, 0, TCP_FLAG.SYN, ts(500, 0)));
    through(rw, 'rx', g(7000, 11, TCP_FLAG.SYN | TCP_FLAG.ACK, ts(STS, 500)));
    const ack = through(rw, 'tx', c(11, 3001, TCP_FLAG.ACK, ts(501, PTS)));
    expect(tsOf(ack)).to.deep.equal([501, STS]);
    expect(fields(ack)).to.deep.equal({ seq: 11, ack: 7001, valid: true });
    const data = through(rw, 'rx', g(7001, 11, TCP_FLAG.ACK, ts((STS + 20) >>> 0, 501)));
    expect(tsOf(data)).to.deep.equal([PTS + 20, 501]);
    expect(fields(data)).to.deep.equal({ seq: 3001, ack: 11, valid: true });
    expect(rw.connections()).to.deep.equal([{ state: 'established', offset: 4000, tsOffset: (STS - PTS) >>> 0 }]);
  });

  it('transition_table_is_closed_over_its_states', () => {
    const states = new Set(['new', 'syn-received', 'syn-ack-recorded', 'syn-sent', 'established', 'client-closing', 'guest-closing', 'last-ack', 'closed']);
    for (const [key, t] of REWRITER_TRANSITIONS) {
      expect(states.has(key.split('/')[0]!), key).to.equal(true);
      expect(states.has(t.next), key).to.equal(true);
    }
    expect(REWRITER_TRANSITIONS.get('syn-ack-recorded/client-ack')).to.deep.equal({ next: 'established', action: 'compute-offset' });
  });

  it('bad_options_throw_naming_the_option', () => {
    expect(() => new RewriterFilter({ id: 'f', maxConnections: 0 })).to.throw(TypeError, /options\.maxConnections/);
    expect(() => new RewriterFilter({ id: 'f', idleTimeout: 0 })).to.throw(TypeError, /options\.idleTimeout/);
    expect(() => new RewriterFilter({ id: 'f', status: 'on' as unknown as boolean })).to.throw(TypeError, /options\.status must be a boolean/);
  });

  describe('a whole session through a FilterChain, judged by tshark', () => {
    let dir: string;
    before(async function () {
      needTshark(this);
    });
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rewriter-'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('without_the_rewriter_tshark_finds_the_secondary_session_broken', async () => {
      // The control: the same frames with the rewriter off leave the secondary acked at the
      // primary's numbers, which tshark flags — so the coherence check above has teeth.
      const guestView = join(dir, 'unrewritten.pcap');
      const chain = new FilterChain(new MemoryNetdev());
      chain.add(new RewriterFilter({ id: 'f3', status: false }));
      chain.add(new DumpFilter({ id: 'dump-guest', file: guestView }));
      chain.attach({ receive: () => true, writable: () => undefined });
      for (const s of serverSession(V4)) {
        if (s.direction === 'tx') (chain.inner as MemoryNetdev).inject(s.frame);
        else chain.send(s.frame);
      }
      await chain.close();
      const rows = await tsharkFields(guestView, ['tcp.analysis.flags']);
      expect(rows.filter((r) => r[0] !== '').length).to.be.greaterThan(0);
    });

    for (const [name, spec] of [['ipv4', V4], ['ipv6', V6]] as const) {
      it(`${name}_every_rewritten_segment_has_a_valid_checksum_and_both_views_are_coherent_tcp`, async () => {
        // filters: [dump at the host side, rewriter, dump at the guest side]. Host → guest frames
        // walk in order, guest → host in reverse: each dump sees one side's view of the session.
        const hostView = join(dir, 'host-side.pcap');
        const guestView = join(dir, 'secondary-guest.pcap');
        const clientView = join(dir, 'client.pcap');
        const inner = new MemoryNetdev({ id: 'hn0' });
        const chain = new FilterChain(inner);
        const rewriter = new RewriterFilter({ id: 'f3', queue: 'all' });
        chain.add(new DumpFilter({ id: 'dump-host', file: hostView }));
        chain.add(rewriter);
        chain.add(new DumpFilter({ id: 'dump-guest', file: guestView }));
        const toGuest: Uint8Array[] = [];
        chain.attach({ receive: (f) => (toGuest.push(f.slice()), true), writable: () => undefined });
        const toHost: Uint8Array[] = [];
        inner.on('transmit', (f: Uint8Array) => toHost.push(f));
        // What the client itself sees: its own frames, the PRIMARY's SYN/ACK, then the
        // secondary's rewritten frames (colo-compare forwards the primary's, which are identical).
        const client = new DumpFilter({ id: 'client', file: clientView });
        const steps = serverSession(spec);
        for (const s of steps) {
          if (s.direction === 'tx') {
            client.process('tx', s.frame, undefined);
            inner.inject(s.frame);
          } else {
            expect(chain.send(s.frame)).to.equal('sent');
            client.process('rx', s.primaryTwin ?? toHost[toHost.length - 1]!, undefined);
          }
        }
        await client.close();
        await chain.close();
        expect(rewriter.stats()).to.deep.include({ rewritten: 8, connections: 0 });

        const cols = ['tcp.seq_raw', 'tcp.ack_raw', 'tcp.checksum.status', 'tcp.analysis.flags', 'tcp.srcport'];
        const secondary = await tsharkFields(guestView, cols);
        const hostSide = await tsharkFields(hostView, cols);
        const clientSide = await tsharkFields(clientView, cols);
        expect(secondary).to.have.length(10);
        expect(hostSide).to.have.length(10);
        // Every segment, rewritten or not, has a checksum tshark calls good.
        for (const [view, rows] of [['secondary', secondary], ['host', hostSide], ['client', clientSide]] as const) {
          rows.forEach((r, k) => expect(r[2], `${view} frame ${k + 1} checksum`).to.equal('1'));
        }
        // The two real endpoints' views are coherent TCP (no analysis warning: no ACK of unseen
        // data, no out-of-order or lost segment). The host-side capture mixes both sequence
        // spaces by design (the secondary's SYN/ACK is never rewritten), so it is not checked.
        for (const [view, rows] of [['secondary', secondary], ['client', clientSide]] as const) {
          rows.forEach((r, k) => expect(r[3], `${view} frame ${k + 1} tcp analysis`).to.equal(''));
        }
        // The secondary's session lives in the secondary's sequence space...
        const guestSide = (rows: string[][]): number[][] => rows.map((r) => [Number(r[0]), Number(r[1])]);
        const clientToGuest = steps.filter((s) => s.direction === 'tx');
        expect(guestSide(secondary).filter((_, k) => steps[k]!.direction === 'tx')).to.deep.equal(clientToGuest.map((s) => [s.seq, s.ack]));
        // ...and what leaves for the client is in the primary's.
        expect(guestSide(hostSide).filter((_, k) => steps[k]!.direction === 'rx').slice(1)).to.deep.equal(
          steps.filter((s) => s.direction === 'rx').slice(1).map((s) => [s.seq, s.ack]),
        );
        expect(toGuest).to.have.length(5);
        expect(toHost).to.have.length(5);
      });
    }
  });
});
