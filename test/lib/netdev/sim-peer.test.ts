// SimPeer: the simulated host that answers a guest's ARP and ping (RFC 826, RFC 792) over a
// MemoryNetdev. Frames are built the way a guest stack puts them on the wire (lib/cli/guest-frames.ts).

import { expect } from 'chai';
import { SimPeer } from '../../../lib/netdev/sim-peer.js';
import { inetChecksum } from '../../../lib/packet/checksum.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { arpRequest, icmpEcho } from '../../../lib/cli/guest-frames.js';

const GUEST = { mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56), ip: [10, 0, 2, 15] as const };
const PEER_MAC = Uint8Array.of(0x52, 0x55, 0x0a, 0, 2, 2);
const PEER_IP = [10, 0, 2, 2];

function rig(): { netdev: MemoryNetdev; peer: SimPeer; received: Uint8Array[] } {
  const netdev = new MemoryNetdev({ id: 'host0' });
  const received: Uint8Array[] = [];
  netdev.attach({ receive: (f) => (received.push(f.slice()), true), writable: () => {} });
  return { netdev, peer: new SimPeer(netdev), received };
}

const nextMacrotask = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SimPeer', () => {
  it('answers_arp_who_has_for_its_address_after_the_transmit_returns', async () => {
    const { netdev, peer, received } = rig();
    netdev.send(arpRequest(GUEST, PEER_IP));
    expect(received).to.have.length(0); // never from inside the guest's transmit
    await nextMacrotask();
    expect(received).to.have.length(1);
    const r = received[0]!;
    expect([...r.subarray(0, 6)]).to.deep.equal([...GUEST.mac]);
    expect([...r.subarray(6, 12)]).to.deep.equal([...PEER_MAC]);
    expect((r[20]! << 8) | r[21]!).to.equal(2); // reply
    expect([...r.subarray(22, 28)]).to.deep.equal([...PEER_MAC]);
    expect([...r.subarray(28, 32)]).to.deep.equal(PEER_IP);
    expect([...r.subarray(32, 38)]).to.deep.equal([...GUEST.mac]);
    expect([...r.subarray(38, 42)]).to.deep.equal([...GUEST.ip]);
    expect(peer.stats()).to.deep.equal({ arpReplies: 1, echoReplies: 0, ignored: 0 });
  });

  it('answers_icmp_echo_with_valid_checksums_and_the_same_payload', async () => {
    const { netdev, peer, received } = rig();
    const req = icmpEcho(GUEST, PEER_MAC, PEER_IP, 0x1234, 7, 56);
    netdev.send(req);
    await nextMacrotask();
    expect(received).to.have.length(1);
    const r = received[0]!;
    expect(r.length).to.equal(req.length);
    expect([...r.subarray(26, 30)]).to.deep.equal(PEER_IP); // source
    expect([...r.subarray(30, 34)]).to.deep.equal([...GUEST.ip]); // destination
    expect(inetChecksum(r, 14, 20)).to.equal(0);
    expect(r[34]).to.equal(0); // echo reply
    expect(inetChecksum(r, 34, r.length - 34)).to.equal(0);
    expect([...r.subarray(38)]).to.deep.equal([...req.subarray(38)]); // id, seq, payload
    expect(peer.stats().echoReplies).to.equal(1);
  });

  it('ignores_frames_for_other_hosts_and_other_protocols', async () => {
    const { netdev, peer, received } = rig();
    netdev.send(arpRequest(GUEST, [10, 0, 2, 3]));
    netdev.send(icmpEcho(GUEST, PEER_MAC, [10, 0, 2, 3], 1, 1));
    netdev.send(new Uint8Array(10)); // runt
    const v6 = new Uint8Array(60);
    v6[12] = 0x86;
    v6[13] = 0xdd;
    netdev.send(v6);
    await nextMacrotask();
    expect(received).to.have.length(0);
    expect(peer.stats()).to.deep.equal({ arpReplies: 0, echoReplies: 0, ignored: 4 });
  });

  it('close_stops_answering', async () => {
    const { netdev, peer, received } = rig();
    netdev.send(arpRequest(GUEST, PEER_IP));
    peer.close();
    netdev.send(arpRequest(GUEST, PEER_IP));
    await nextMacrotask();
    expect(received).to.have.length(0);
  });

  it('bad_options_throw_naming_the_option', () => {
    const netdev = new MemoryNetdev();
    expect(() => new SimPeer(netdev, { ip: '10.0.2' })).to.throw(TypeError, /options\.ip/);
    expect(() => new SimPeer(netdev, { mac: 'zz' })).to.throw(TypeError, /options\.mac/);
  });
});
