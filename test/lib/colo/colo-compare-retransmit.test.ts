// colo-compare and the primary's TCP retransmissions (found by the filter fuzzer,
// test/fuzz/filters/): a primary segment whose bytes were all compared already is a
// retransmission and goes out at once (lib/colo/compare-rules.ts), even when the secondary has
// nothing queued — it must not wait for the secondary's next segment (a 'timeout' checkpoint when
// none comes) nor be paired with the secondary's FIN as if it were new data (a 'mismatch'). But
// only bytes really compared count: after a SYN pair, data from before the connection's first
// byte (half the sequence space away, which wrap-aware comparison calls "before") is the guests
// diverging, never a retransmission let out uncompared.

import { expect } from 'chai';
import { ColoCompare, type CheckpointRequest } from '../../../lib/colo/colo-compare.js';
import { buildFrame, TCP_FLAG } from '../../../lib/packet/index.js';
import { CLIENT, GUEST, streamBytes, tcpStream } from './streams.js';

function harness(): { cc: ColoCompare; out: string[]; requests: CheckpointRequest[]; clock: { t: number } } {
  const out: string[] = [];
  const requests: CheckpointRequest[] = [];
  const clock = { t: 0 };
  const cc = new ColoCompare({ id: 'comp0', output: (f) => out.push(Buffer.from(f).toString('hex')), now: () => clock.t });
  cc.on('checkpoint-request', (r) => requests.push(r));
  return { cc, out, requests, clock };
}

const hex = (f: Uint8Array): string => Buffer.from(f).toString('hex');

describe('lib/colo colo-compare retransmissions', () => {
  // SYN/ACK, one data segment, FIN — the same on both sides; the sequence numbers cross 2^32.
  const stream = tcpStream(streamBytes(24), [], { isn: 0xffffffff });
  const [syn, seg, fin] = stream as [Uint8Array, Uint8Array, Uint8Array];

  it('a_primary_retransmission_of_compared_bytes_goes_out_at_once_with_the_secondary_queue_empty', () => {
    const { cc, out, requests, clock } = harness();
    cc.primaryInput(syn);
    cc.secondaryInput(syn);
    cc.primaryInput(seg);
    cc.secondaryInput(seg);
    expect(out).to.deep.equal([hex(syn), hex(seg)]);
    cc.primaryInput(seg); // the client's ACK got lost: the primary sends the segment again
    expect(out, 'the retransmission is out at once').to.deep.equal([hex(syn), hex(seg), hex(seg)]);
    clock.t = 10_000;
    cc.scan();
    expect(requests, 'no timeout checkpoint for bytes already compared').to.deep.equal([]);
    expect(cc.stats()).to.deep.include({ primaryQueued: 0, released: 3, flushed: 0 });
  });

  it('a_primary_retransmission_followed_by_the_secondarys_fin_is_not_a_mismatch', () => {
    const { cc, out, requests } = harness();
    cc.primaryInput(syn);
    cc.secondaryInput(syn);
    cc.primaryInput(seg);
    cc.secondaryInput(seg);
    cc.primaryInput(seg);
    cc.secondaryInput(fin);
    cc.primaryInput(fin);
    expect(requests).to.deep.equal([]);
    expect(out).to.deep.equal([hex(syn), hex(seg), hex(seg), hex(fin)]);
    expect(cc.stats()).to.deep.include({ closed: 1, connections: 0, primaryQueued: 0, secondaryQueued: 0 });
  });

  it('primary_data_before_the_first_byte_after_a_syn_pair_is_a_mismatch_not_a_retransmission', () => {
    const { cc, out, requests } = harness();
    const isn = 0x7ffffffb;
    const seg = (seq: number, flags: number, payload?: Uint8Array): Uint8Array =>
      buildFrame({ src: GUEST, dst: CLIENT, protocol: 'tcp', srcPort: 8080, dstPort: 40000, seq, ack: 5001, flags, payload });
    const synAck = seg(isn, TCP_FLAG.SYN | TCP_FLAG.ACK);
    cc.primaryInput(synAck);
    cc.secondaryInput(synAck);
    // 222 bytes at sequence number 0: 2^31 - 4 before the first data byte (isn + 1).
    const stray = seg(0, TCP_FLAG.ACK | TCP_FLAG.PSH, streamBytes(222));
    cc.primaryInput(stray);
    expect(requests.map((r) => r.reason)).to.deep.equal(['mismatch']);
    expect(out).to.deep.equal([hex(synAck), hex(stray)]); // out only by the flush after the request
    expect(cc.stats()).to.deep.include({ released: 1, flushed: 1 });
  });
});
