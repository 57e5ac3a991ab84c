// The scripted guest's host stack (lib/driver/guest-stack.ts): what it answers (ARP, ICMP echo,
// IPv6 NS and echo) from the first frame on, what it ignores, and its pings to a peer that answers
// late or changes its MAC. Frames are checked with this file's own RFC 1071 sum, not the stack's.
import { expect } from 'chai';
import sinon from 'sinon';
import { GuestStack } from '../../../lib/driver/guest-stack.js';
import { buildFrame } from '../../../lib/packet/build.js';

const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);
const PEER_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x02);
const NEW_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x22);
const OTHER_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x07);
const GUEST_LL = 'fe80::5054:ff:fe12:3456';
const hex = (b: ArrayLike<number>): string => Buffer.from(Uint8Array.from(b)).toString('hex');

/** RFC 1071 over `bytes`, written here independently: 0 for a block holding a valid checksum. */
function sum16(bytes: ArrayLike<number>): number {
  let acc = 0;
  for (let i = 0; i < bytes.length; i += 2) acc += (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0);
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return ~acc & 0xffff;
}

/** ICMPv6 checksum check: pseudo header (src, dst, length, next header 58) + message. */
function icmp6Valid(f: Uint8Array): boolean {
  const len = (f[18]! << 8) | f[19]!;
  const pseudo = [...f.subarray(22, 54), 0, 0, len >> 8, len & 0xff, 0, 0, 0, 58, ...f.subarray(54, 54 + len)];
  return sum16(pseudo) === 0;
}

function arp(op: 1 | 2, dst: Uint8Array, sha: Uint8Array, sip: number[], tha: Uint8Array, tip: number[]): Uint8Array {
  return Uint8Array.from([...dst, ...sha, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, op, ...sha, ...sip, ...tha, ...tip]);
}

/** An NS for `target` from `src` (:: for DAD) with hop limit `hops`. */
function ns(target: string, src: string, hops = 255): Uint8Array {
  const t = buildFrame({ src: '::1', dst: target, protocol: 'udp' }).subarray(38, 54); // the target's 16 bytes
  const s = src === '::' ? new Uint8Array(16) : buildFrame({ src: '::1', dst: src, protocol: 'udp' }).subarray(38, 54);
  const dst = Uint8Array.of(0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13]!, t[14]!, t[15]!);
  const body = [135, 0, 0, 0, 0, 0, 0, 0, ...t];
  const f = Uint8Array.from([0x33, 0x33, ...dst.subarray(12), ...OTHER_MAC, 0x86, 0xdd, 0x60, 0, 0, 0, 0, body.length, 58, hops, ...s, ...dst, ...body]);
  const c = sum16([...f.subarray(22, 54), 0, 0, 0, body.length, 0, 0, 0, 58, ...body]);
  f[56] = c >> 8;
  f[57] = c & 0xff;
  return f;
}

describe('lib/driver/guest-stack', () => {
  let clock: sinon.SinonFakeTimers;
  let sent: Uint8Array[];
  let raw: Uint8Array[];
  let stack: GuestStack;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 5_000_000 });
    sent = [];
    raw = [];
    stack = new GuestStack({
      mac: GUEST_MAC, ip: [10, 0, 2, 15], peerIp: [10, 0, 2, 2], random: () => 0.5,
      send: (f) => {
        raw.push(f);
        sent.push(Uint8Array.from(f));
        return true;
      },
    });
  });

  afterEach(() => {
    stack.close();
    clock.restore();
  });

  it('answers_an_arp_request_for_its_address_as_the_first_frame', () => {
    stack.handle(arp(1, Uint8Array.of(255, 255, 255, 255, 255, 255), OTHER_MAC, [10, 0, 2, 99], new Uint8Array(6), [10, 0, 2, 15]));
    expect(sent).to.have.length(1);
    expect(hex(sent[0]!)).to.equal(hex(arp(2, OTHER_MAC, GUEST_MAC, [10, 0, 2, 15], OTHER_MAC, [10, 0, 2, 99])));
    expect(stack.tally.arpRequestsAnswered).to.equal(1);
    // For another address, tagged, or truncated: nothing.
    stack.handle(arp(1, Uint8Array.of(255, 255, 255, 255, 255, 255), OTHER_MAC, [10, 0, 2, 99], new Uint8Array(6), [10, 0, 2, 16]));
    const tagged = arp(1, Uint8Array.of(255, 255, 255, 255, 255, 255), OTHER_MAC, [10, 0, 2, 99], new Uint8Array(6), [10, 0, 2, 15]);
    stack.handle(Uint8Array.from([...tagged.subarray(0, 12), 0x81, 0, 0, 100, ...tagged.subarray(12)]));
    stack.handle(tagged.subarray(0, 40));
    expect(sent).to.have.length(1);
  });

  it('answers_icmp_echo_with_valid_checksums_and_the_same_payload', () => {
    const payload = Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff);
    const req = buildFrame({ srcMac: '02:00:00:00:00:07', dstMac: '52:54:00:12:34:56', src: '10.0.2.99', dst: '10.0.2.15', protocol: 'icmp', payload });
    req[38] = 0x12; // identifier 0x1234, sequence 9
    req[39] = 0x34;
    req[41] = 9;
    req[36] = 0;
    req[37] = 0;
    const c = sum16(req.subarray(34));
    req[36] = c >> 8;
    req[37] = c & 0xff;
    stack.handle(Uint8Array.from([...req, 0, 0, 0])); // Ethernet padding is not echoed
    expect(sent).to.have.length(1);
    const r = sent[0]!;
    expect(r.length).to.equal(req.length);
    expect(hex(r.subarray(0, 6))).to.equal(hex(OTHER_MAC));
    expect(hex(r.subarray(6, 12))).to.equal(hex(GUEST_MAC));
    expect([...r.subarray(26, 34)]).to.deep.equal([10, 0, 2, 15, 10, 0, 2, 99]);
    expect(sum16(r.subarray(14, 34)), 'IPv4 header checksum').to.equal(0);
    expect(r[34], 'echo reply').to.equal(0);
    expect(sum16(r.subarray(34)), 'ICMP checksum').to.equal(0);
    expect(hex(r.subarray(38))).to.equal(hex(req.subarray(38)));
    expect(stack.tally.echoRequestsAnswered).to.equal(1);
  });

  it('ignores_echo_to_another_address_broadcast_echo_and_bad_checksums', () => {
    const base = { srcMac: '02:00:00:00:00:07', src: '10.0.2.99', protocol: 'icmp' as const };
    stack.handle(buildFrame({ ...base, dstMac: '52:54:00:12:34:56', dst: '10.0.2.16' }));
    stack.handle(buildFrame({ ...base, dstMac: 'ff:ff:ff:ff:ff:ff', dst: '10.0.2.15' }));
    const bad = buildFrame({ ...base, dstMac: '52:54:00:12:34:56', dst: '10.0.2.15' });
    bad[40] = bad[40]! ^ 1;
    stack.handle(bad);
    expect(sent).to.deep.equal([]);
  });

  it('answers_a_neighbour_solicitation_for_its_link_local_address', () => {
    stack.handle(ns(GUEST_LL, 'fe80::7'));
    expect(sent).to.have.length(1);
    const na = sent[0]!;
    expect(hex(na.subarray(0, 12))).to.equal(hex([...OTHER_MAC, ...GUEST_MAC]));
    expect(na[21], 'hop limit').to.equal(255);
    expect(hex(na.subarray(38, 54))).to.equal(hex(buildFrame({ src: '::1', dst: 'fe80::7', protocol: 'udp' }).subarray(38, 54)));
    expect(na[54], 'NA').to.equal(136);
    expect(na[58], 'Solicited + Override').to.equal(0x60);
    expect(hex(na.subarray(62, 78))).to.equal(hex(buildFrame({ src: '::1', dst: GUEST_LL, protocol: 'udp' }).subarray(38, 54)));
    expect(hex(na.subarray(78, 86)), 'target link-layer address option').to.equal(hex([2, 1, ...GUEST_MAC]));
    expect(icmp6Valid(na)).to.equal(true);
    expect(stack.tally.neighbourSolicitationsAnswered).to.equal(1);
  });

  it('defends_its_link_local_address_against_dad_with_an_na_to_all_nodes', () => {
    stack.handle(ns(GUEST_LL, '::'));
    const na = sent[0]!;
    expect(hex(na.subarray(0, 6))).to.equal('333300000001');
    expect(hex(na.subarray(38, 54))).to.equal('ff020000000000000000000000000001');
    expect(na[58], 'Override only').to.equal(0x20);
    expect(icmp6Valid(na)).to.equal(true);
  });

  it('ignores_an_ns_for_another_address_or_with_a_hop_limit_below_255', () => {
    stack.handle(ns('fe80::5054:ff:fe12:3457', 'fe80::7'));
    stack.handle(ns(GUEST_LL, 'fe80::7', 64));
    expect(sent).to.deep.equal([]);
  });

  it('answers_icmpv6_echo_to_its_link_local_address', () => {
    const req = buildFrame({ srcMac: '02:00:00:00:00:07', dstMac: '52:54:00:12:34:56', src: 'fe80::7', dst: GUEST_LL, protocol: 'icmp', payload: Uint8Array.of(1, 2, 3, 4) });
    const len = (req[18]! << 8) | req[19]!;
    const c = sum16([...req.subarray(22, 54), 0, 0, 0, len, 0, 0, 0, 58, ...req.subarray(54)]);
    req[56] = c >> 8;
    req[57] = c & 0xff;
    stack.handle(req);
    expect(sent).to.have.length(1);
    expect(sent[0]![54], 'echo reply').to.equal(129);
    expect(icmp6Valid(sent[0]!)).to.equal(true);
  });

  it('pings_only_once_the_peer_answers_however_late_and_counts_matching_replies', () => {
    for (let t = 0; t < 10_000; t += 20) {
      expect(stack.ping()).to.equal(false);
      clock.tick(20);
    }
    const asks = sent.filter((f) => f[12] === 0x08 && f[13] === 0x06);
    expect(asks.length, 'broadcasts at 0, 1, 2, 4, 8 s').to.equal(5);
    expect(stack.tally.echoRequests).to.equal(0);
    stack.handle(arp(2, GUEST_MAC, PEER_MAC, [10, 0, 2, 2], GUEST_MAC, [10, 0, 2, 15]));
    sent = [];
    expect(stack.ping()).to.equal(true);
    const echo = sent[0]!;
    expect(hex(echo.subarray(0, 6))).to.equal(hex(PEER_MAC));
    expect(sum16(echo.subarray(14, 34))).to.equal(0);
    expect(sum16(echo.subarray(34))).to.equal(0);
    expect(echo[34]).to.equal(8);
    // The peer's reply: the same message with type 0, addresses swapped.
    const reply = Uint8Array.from([...GUEST_MAC, ...PEER_MAC, ...echo.subarray(12)]);
    reply.set([10, 0, 2, 2, 10, 0, 2, 15], 26);
    reply[34] = 0;
    reply[36] = 0;
    reply[37] = 0;
    const c = sum16(reply.subarray(34));
    reply[36] = c >> 8;
    reply[37] = c & 0xff;
    expect(stack.awaitingReplies(1000)).to.equal(1);
    stack.handle(reply);
    stack.handle(reply); // a duplicate is not a second reply
    expect(stack.tally).to.include({ echoRequests: 1, echoReplies: 1 });
    expect(stack.awaitingReplies(1000)).to.equal(0);
  });

  it('follows_a_peer_that_changes_its_mac', () => {
    stack.ping();
    stack.handle(arp(2, GUEST_MAC, PEER_MAC, [10, 0, 2, 2], GUEST_MAC, [10, 0, 2, 15]));
    stack.ping();
    clock.tick(2000);
    // The peer's new MAC asks for us (as Linux does after `ip link set … address`: its table was flushed).
    stack.handle(arp(1, Uint8Array.of(255, 255, 255, 255, 255, 255), NEW_MAC, [10, 0, 2, 2], new Uint8Array(6), [10, 0, 2, 15]));
    expect(hex(sent[sent.length - 1]!.subarray(0, 6)), 'answered at the new MAC').to.equal(hex(NEW_MAC));
    sent = [];
    stack.ping();
    expect(hex(sent[0]!.subarray(0, 6))).to.equal(hex(NEW_MAC));
    // And a gratuitous ARP moves it again at once.
    stack.handle(arp(1, Uint8Array.of(255, 255, 255, 255, 255, 255), OTHER_MAC, [10, 0, 2, 2], new Uint8Array(6), [10, 0, 2, 2]));
    sent = [];
    stack.ping();
    expect(hex(sent[0]!.subarray(0, 6))).to.equal(hex(OTHER_MAC));
    expect(stack.tally.peerMacChanges).to.equal(2);
  });

  it('replies_come_from_preallocated_buffers', () => {
    const ask = arp(1, Uint8Array.of(255, 255, 255, 255, 255, 255), OTHER_MAC, [10, 0, 2, 99], new Uint8Array(6), [10, 0, 2, 15]);
    stack.handle(ask);
    stack.handle(ask);
    const echo = buildFrame({ srcMac: '02:00:00:00:00:07', dstMac: '52:54:00:12:34:56', src: '10.0.2.99', dst: '10.0.2.15', protocol: 'icmp' });
    stack.handle(echo);
    stack.handle(echo);
    expect(raw).to.have.length(4);
    expect(raw[0]).to.equal(raw[1]);
    expect(raw[2]!.buffer).to.equal(raw[3]!.buffer);
  });
});
