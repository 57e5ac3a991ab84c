// The scripted guest's TCP echo service (lib/cli/guest-tcp.ts): handshake, one answer per
// in-order request (which ACKs it), the same answer at the same sequence number for a
// retransmitted request, the planted divergence, FIN/ACK, and nothing for other ports or addresses.
// Answers are judged by lib/packet's parser and checksum check, independent of the builder.
import { expect } from 'chai';
import { GuestTcp } from '../../../lib/cli/guest-tcp.js';
import { buildFrame } from '../../../lib/packet/build.js';
import { transportChecksumValid } from '../../../lib/packet/checksum.js';
import { newPacketInfo, parsePacket, TCP_FLAG } from '../../../lib/packet/parse.js';

const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);
const client = (flags: number, seq: number, ack: number, payload?: string, dstPort = 7, dst = '10.0.2.15') =>
  buildFrame({
    srcMac: '02:00:00:00:00:02', dstMac: '52:54:00:12:34:56', src: '10.0.2.2', dst, protocol: 'tcp', srcPort: 40000, dstPort,
    seq, ack, flags, window: 65535, ...(payload === undefined ? {} : { payload: new TextEncoder().encode(payload) }),
  });

function decode(frame: Uint8Array) {
  const i = newPacketInfo();
  expect(parsePacket(frame, i)).to.equal('ip');
  expect(transportChecksumValid(frame, i), 'TCP checksum').to.equal(true);
  return {
    flags: i.tcpFlags, seq: i.tcpSeq, ack: i.tcpAck, srcPort: i.srcPort, dstPort: i.dstPort,
    dstMac: Buffer.from(frame.subarray(0, 6)).toString('hex'),
    data: new TextDecoder().decode(frame.subarray(i.payloadOffset, i.payloadOffset + i.payloadLength)),
  };
}

describe('lib/cli GuestTcp (the scripted guest answering TCP)', () => {
  it('answers_a_session_echoes_resends_a_retransmitted_answer_diverges_on_cue_and_closes', () => {
    const out: Uint8Array[] = [];
    const tcp = new GuestTcp({ mac: GUEST_MAC, ip: [10, 0, 2, 15], port: 7, diverge: 'boom', send: (f) => (out.push(f.slice()), true), random: () => 0.5 });
    expect(tcp.handle(client(TCP_FLAG.SYN, 1000, 0))).to.equal(true);
    const synAck = decode(out.shift()!);
    expect(synAck).to.include({ flags: TCP_FLAG.SYN | TCP_FLAG.ACK, ack: 1001, srcPort: 7, dstPort: 40000, dstMac: '020000000002' });
    const iss = synAck.seq;
    tcp.handle(client(TCP_FLAG.ACK, 1001, iss + 1));
    expect(out.length, 'a bare ACK needs no answer').to.equal(0);

    tcp.handle(client(TCP_FLAG.ACK | TCP_FLAG.PSH, 1001, iss + 1, 'hello'));
    const a1 = decode(out.shift()!);
    expect(a1).to.include({ seq: iss + 1, ack: 1006, data: 'echo: hello' });
    // The client did not get it and sends 'hello' again: the same answer, same place.
    tcp.handle(client(TCP_FLAG.ACK | TCP_FLAG.PSH, 1001, iss + 1, 'hello'));
    expect(decode(out.shift()!)).to.deep.equal(a1);

    tcp.handle(client(TCP_FLAG.ACK | TCP_FLAG.PSH, 1006, iss + 12, 'boom'));
    expect(decode(out.shift()!)).to.include({ seq: iss + 12, ack: 1010, data: 'DIVERGED: boom' });
    // Out of order: a bare ACK of what was received.
    tcp.handle(client(TCP_FLAG.ACK | TCP_FLAG.PSH, 5000, iss + 26, 'later'));
    expect(decode(out.shift()!)).to.include({ flags: TCP_FLAG.ACK, seq: iss + 26, ack: 1010, data: '' });

    tcp.handle(client(TCP_FLAG.FIN | TCP_FLAG.ACK, 1010, iss + 26));
    expect(decode(out.shift()!)).to.include({ flags: TCP_FLAG.FIN | TCP_FLAG.ACK, seq: iss + 26, ack: 1011 });
    tcp.handle(client(TCP_FLAG.ACK, 1011, iss + 27));
    expect(out.length).to.equal(0);
    expect(tcp.tally).to.deep.equal({ tcpConnections: 1, tcpRequests: 2, tcpDiverged: 1 });
    // The connection is gone: data on it is ignored.
    tcp.handle(client(TCP_FLAG.ACK | TCP_FLAG.PSH, 1011, iss + 27, 'x'));
    expect(out.length).to.equal(0);
  });

  it('leaves_other_ports_addresses_and_protocols_to_the_rest_of_the_stack', () => {
    const out: Uint8Array[] = [];
    const tcp = new GuestTcp({ mac: GUEST_MAC, ip: [10, 0, 2, 15], port: 7, send: (f) => (out.push(f), true) });
    expect(tcp.handle(client(TCP_FLAG.SYN, 1, 0, undefined, 8))).to.equal(false);
    expect(tcp.handle(client(TCP_FLAG.SYN, 1, 0, undefined, 7, '10.0.2.16'))).to.equal(false);
    expect(tcp.handle(buildFrame({ src: '10.0.2.2', dst: '10.0.2.15', protocol: 'udp', srcPort: 1, dstPort: 7 }))).to.equal(false);
    expect(out.length).to.equal(0);
    expect(() => new GuestTcp({ mac: GUEST_MAC, ip: [10, 0, 2, 15], port: 0, send: () => true })).to.throw('port must be 1-65535');
  });
});
