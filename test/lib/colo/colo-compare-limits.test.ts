// colo-compare under flooding: connections age out (both FINs, an in-sequence RST, idle time),
// buffered bytes are capped across connections, a full table or byte cap requests a checkpoint
// before anything leaves uncompared, and flows only the secondary sends never get a connection.
// Every packet has one fate, so offered = delivered + counted drops + still queued.

import { expect } from 'chai';
import sinon from 'sinon';
import { ColoCompare, type CheckpointRequest, type ColoCompareStats } from '../../../lib/colo/colo-compare.js';
import { buildFrame, TCP_FLAG } from '../../../lib/packet/index.js';
import { CLIENT, GUEST, streamBytes, tcpStream, udp } from './streams.js';

type Log = (string | CheckpointRequest)[];

function harness(extra: Partial<ConstructorParameters<typeof ColoCompare>[0]> = {}): { cc: ColoCompare; log: Log; requests: CheckpointRequest[]; clock: { t: number } } {
  const log: Log = [];
  const requests: CheckpointRequest[] = [];
  const clock = { t: 0 };
  const cc = new ColoCompare({ id: 'comp0', output: (f) => log.push(Buffer.from(f).toString('hex')), now: () => clock.t, ...extra });
  cc.on('checkpoint-request', (r) => (requests.push(r), log.push(r)));
  return { cc, log, requests, clock };
}

/** Every packet offered is delivered, counted as dropped, or still queued. */
function expectAccounted(s: ColoCompareStats): void {
  expect(s.primaryIn, 'primary: offered = out + queued').to.equal(s.released + s.straightOut + s.passthrough + s.flushed + s.primaryQueued);
  expect(s.secondaryIn, 'secondary: offered = dropped + queued').to.equal(s.secondaryDropped + s.secondaryQueued);
  expect(s.capFlushed).to.be.at.most(s.flushed);
  expect(s.capDropped).to.be.at.most(s.secondaryDropped);
}

const tcpSeg = (port: number, seq: number, flags: number, payload?: Uint8Array, ack = 5001): Uint8Array =>
  buildFrame({ src: GUEST, dst: CLIENT, protocol: 'tcp', srcPort: 8080, dstPort: port, seq: seq >>> 0, ack, flags, payload });

describe('lib/colo colo-compare limits', () => {
  it('secondary_only_flow_creates_no_connection_entry', () => {
    const { cc, requests, clock } = harness({ maxPendingFlows: 4 });
    // Ten flows only the secondary sends (a secondary gone astray, or a flood through it).
    for (let k = 0; k < 10; k++) cc.secondaryInput(udp(streamBytes(100, k), 1, 1000 + k));
    cc.secondaryInput(tcpSeg(41000, 7, TCP_FLAG.ACK)); // a pure ACK: never compared, never kept
    let s = cc.stats();
    expect(s.connections).to.equal(0);
    expect(s).to.deep.include({ pendingFlows: 4, secondaryQueued: 4, capDropped: 6, secondaryDropped: 7 });
    expectAccounted(s);
    // Held only for compareTimeout, and never a reason for a checkpoint.
    clock.t = 3000;
    cc.scan();
    s = cc.stats();
    expect(s).to.deep.include({ connections: 0, pendingFlows: 0, secondaryQueued: 0, secondaryDropped: 11, bufferedBytes: 0 });
    expect(requests).to.deep.equal([]);
    expectAccounted(s);
  });

  it('a_secondary_packet_ahead_of_the_primarys_first_still_matches', () => {
    const { cc, log, requests } = harness();
    cc.secondaryInput(udp(streamBytes(64, 3), 9));
    expect(cc.stats().connections).to.equal(0);
    cc.primaryInput(udp(streamBytes(64, 3), 1));
    expect(requests).to.deep.equal([]);
    expect(log).to.have.length(1);
    expect(cc.stats()).to.deep.include({ connections: 1, pendingFlows: 0, released: 1, secondaryDropped: 1 });
    expectAccounted(cc.stats());
  });

  it('connection_is_removed_after_fin_and_final_ack', () => {
    const { cc, log, requests } = harness();
    const data = streamBytes(600);
    const primary = tcpStream(data, [200]); // SYN/ACK, data, FIN
    const secondary = tcpStream(data, [350]);
    for (const f of primary) cc.primaryInput(f);
    for (const f of secondary.slice(0, -1)) cc.secondaryInput(f);
    expect(cc.stats().connections).to.equal(1);
    cc.secondaryInput(secondary[secondary.length - 1]!); // the secondary's FIN: both FINs compared
    expect(cc.stats()).to.deep.include({ connections: 0, closed: 1 });
    // The guests' final ACK of the client's FIN (and any pure ACK after) passes without a new entry.
    const finalAck = tcpSeg(40000, 0xfffffe00 + 602, TCP_FLAG.ACK, undefined, 5002);
    cc.primaryInput(finalAck);
    cc.secondaryInput(finalAck);
    expect(cc.stats()).to.deep.include({ connections: 0, closed: 1 });
    expect(log).to.have.length(primary.length + 1);
    expect(requests).to.deep.equal([]);
    expectAccounted(cc.stats());
  });

  it('rst_with_out_of_window_sequence_keeps_the_connection', () => {
    const { cc, requests } = harness();
    const data = streamBytes(300);
    const isn = 0xfffffe00;
    for (const f of tcpStream(data, []).slice(0, 2)) cc.primaryInput(f); // SYN/ACK + 300 bytes
    for (const f of tcpStream(data, []).slice(0, 2)) cc.secondaryInput(f);
    const rstAt = (seq: number): Uint8Array => tcpSeg(40000, seq, TCP_FLAG.RST);
    // Both guests answer some stray segment with a reset far from the stream: compared, let out, kept.
    cc.primaryInput(rstAt(isn + 1 + 300 + 100_000));
    cc.secondaryInput(rstAt(isn + 1 + 300 + 100_000));
    expect(requests).to.deep.equal([]);
    expect(cc.stats()).to.deep.include({ connections: 1, closed: 0 });
    // A reset at the stream's next sequence number ends the connection.
    cc.primaryInput(rstAt(isn + 1 + 300));
    cc.secondaryInput(rstAt(isn + 1 + 300));
    expect(cc.stats()).to.deep.include({ connections: 0, closed: 1 });
    expectAccounted(cc.stats());
  });

  it('buffered_bytes_are_capped_across_connections', () => {
    const { cc, log, requests } = harness({ maxBufferedBytes: 3000 });
    // Five flows, one 1000-byte frame each, nothing from the secondary: no single queue is long.
    const frames = [0, 1, 2, 3, 4].map((k) => udp(streamBytes(1000 - 42, k), 1, 2000 + k));
    for (const f of frames) cc.primaryInput(f);
    expect(requests.map((r) => r.reason)).to.deep.equal(['buffer-full']);
    // The request comes before the three frames buffered so far leave uncompared.
    expect(log.slice(0, 4).map((e) => (typeof e === 'string' ? 'out' : e.reason))).to.deep.equal(['buffer-full', 'out', 'out', 'out']);
    const s = cc.stats();
    expect(s).to.deep.include({ bufferedBytes: 2000, primaryQueued: 2, flushed: 3, capFlushed: 3, checkpointRequests: 1 });
    expect(s.checkpointsByReason['buffer-full']).to.equal(1);
    expectAccounted(s);
  });

  it('full_table_requests_a_checkpoint_instead_of_releasing_uncompared', () => {
    const { cc, log, requests } = harness({ maxConnections: 2 });
    cc.primaryInput(udp(streamBytes(10, 1), 1, 3001));
    cc.primaryInput(udp(streamBytes(10, 2), 1, 3002));
    expect(log).to.deep.equal([]);
    cc.primaryInput(udp(streamBytes(10, 3), 1, 3003)); // a third flow: the table is full
    expect(requests.map((r) => r.reason)).to.deep.equal(['table-full']);
    expect(typeof log[0]).to.equal('object'); // the request first, then the queued packets
    expect(log.slice(1)).to.have.length(2);
    const s = cc.stats();
    expect(s).to.deep.include({ connections: 1, primaryQueued: 1, flushed: 2, capFlushed: 2 });
    expectAccounted(s);
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
      const cc = new ColoCompare({ id: 'comp0', output: () => undefined, idleTimeout: 10_000 });
      const requests: CheckpointRequest[] = [];
      cc.on('checkpoint-request', (r) => requests.push(r));
      cc.start();
      cc.primaryInput(udp(streamBytes(32)));
      cc.secondaryInput(udp(streamBytes(32), 2));
      expect(cc.stats()).to.deep.include({ connections: 1, primaryQueued: 0 });
      clock.tick(10_000);
      expect(cc.stats().connections).to.equal(1);
      clock.tick(1_000); // the next expiry scan (expiredScanCycle 1000 ms)
      expect(cc.stats()).to.deep.include({ connections: 0, expired: 1 });
      // A connection with a packet waiting is not idle: it times out as a comparison instead.
      cc.primaryInput(udp(streamBytes(32)));
      clock.tick(3_000);
      expect(requests.map((r) => r.reason)).to.deep.equal(['timeout']);
      expectAccounted(cc.stats());
      await cc.close();
      expect(clock.countTimers()).to.equal(0);
    });
  });
});
