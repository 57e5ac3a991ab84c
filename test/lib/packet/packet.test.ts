// lib/packet: parsing down to TCP/UDP through VLAN tags and IPv6 extension headers, checksums
// against independently known values, flow keys, address literals — and frames that lie.

import { expect } from 'chai';
import fc from 'fast-check';
import {
  buildFrame,
  finishChecksum,
  flowKey,
  FlowTable,
  foldSum,
  onesSum,
  formatAddress,
  ipv4HeaderChecksum,
  newFlowKey,
  newPacketInfo,
  parseIpAddress,
  parsePacket,
  storeTransportChecksum,
  TCP_FLAG,
  transportChecksumValid,
} from '../../../lib/packet/index.js';

describe('lib/packet', () => {
  it('parses_ipv4_tcp_fields', () => {
    const f = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: 1234, dstPort: 80, seq: 0xfffffff0, ack: 7, flags: TCP_FLAG.ACK | TCP_FLAG.PSH, payload: Buffer.from('hello') });
    const i = newPacketInfo();
    expect(parsePacket(f, i)).to.equal('ip');
    expect([i.ipVersion, i.protocol, i.srcPort, i.dstPort, i.tcpSeq, i.tcpAck, i.tcpFlags]).to.deep.equal([4, 6, 1234, 80, 0xfffffff0, 7, 0x18]);
    expect(Buffer.from(f.subarray(i.payloadOffset, i.payloadOffset + i.payloadLength)).toString()).to.equal('hello');
    expect(formatAddress(f, i.srcOffset, 4)).to.equal('10.0.0.1');
    expect(transportChecksumValid(f, i)).to.equal(true);
    expect(ipv4HeaderChecksum(f, i)).to.equal((f[i.l3Offset + 10]! << 8) | f[i.l3Offset + 11]!);
  });

  it('ones_complement_sum_matches_the_rfc_1071_example', () => {
    // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (with end-around carry).
    const words = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(foldSum(onesSum(words, 0, words.length))).to.equal(0xddf2);
    expect(finishChecksum(onesSum(words, 0, words.length))).to.equal(0x220d);
  });

  it('a_rewritten_field_with_a_recomputed_checksum_validates_and_a_stale_one_does_not', () => {
    const f = buildFrame({ src: 'fd00::1', dst: 'fd00::2', protocol: 'tcp', srcPort: 1, dstPort: 2, seq: 100, flags: TCP_FLAG.ACK, payload: Buffer.from('x') });
    const i = newPacketInfo();
    parsePacket(f, i);
    f[i.l4Offset + 7] = f[i.l4Offset + 7]! ^ 0x01; // change seq
    expect(transportChecksumValid(f, i)).to.equal(false);
    storeTransportChecksum(f, i);
    expect(transportChecksumValid(f, i)).to.equal(true);
  });

  it('parses_through_vlan_tags_and_ipv6_extension_headers', () => {
    const f = buildFrame({ src: 'fd00::1', dst: 'fd00::2', protocol: 'udp', srcPort: 53, dstPort: 5353, payload: new Uint8Array(9), vlan: 100 });
    const i = newPacketInfo();
    expect(parsePacket(f, i)).to.equal('ip');
    expect([i.vlanTags, i.ipVersion, i.protocol, i.srcPort, i.dstPort, i.payloadLength]).to.deep.equal([1, 6, 17, 53, 5353, 9]);
    expect(transportChecksumValid(f, i)).to.equal(true);
    // Insert a hop-by-hop header (8 bytes) in front of UDP.
    const l3 = i.l3Offset;
    const withExt = new Uint8Array(f.length + 8);
    withExt.set(f.subarray(0, l3 + 40));
    withExt.set(f.subarray(l3 + 40), l3 + 48);
    withExt[l3 + 6] = 0; // next header: hop-by-hop
    withExt[l3 + 40] = 17; // its next header: UDP
    const plen = ((f[l3 + 4]! << 8) | f[l3 + 5]!) + 8;
    withExt[l3 + 4] = plen >> 8;
    withExt[l3 + 5] = plen & 0xff;
    expect(parsePacket(withExt, i)).to.equal('ip');
    expect([i.protocol, i.l3HeaderLength, i.srcPort]).to.deep.equal([17, 48, 53]);
    expect(transportChecksumValid(withExt, i)).to.equal(true);
  });

  it('ip_length_past_the_frame_is_truncated_not_read', () => {
    const f = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'udp', srcPort: 1, dstPort: 2, payload: new Uint8Array(20) });
    const i = newPacketInfo();
    expect(parsePacket(f.subarray(0, f.length - 1), i)).to.equal('truncated');
    expect(parsePacket(f.subarray(0, 10), i)).to.equal('truncated');
    const bad = Uint8Array.from(f);
    bad[14] = 0x44; // IHL 4 words < 5
    expect(parsePacket(bad, i)).to.equal('malformed');
  });

  it('ethernet_padding_is_not_payload', () => {
    const f = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: 1, dstPort: 2, flags: TCP_FLAG.ACK });
    const padded = new Uint8Array(64);
    padded.set(f);
    const i = newPacketInfo();
    expect(parsePacket(padded, i)).to.equal('ip');
    expect(i.payloadLength).to.equal(0);
    expect(transportChecksumValid(padded, i)).to.equal(true);
  });

  it('arp_is_not_ip', () => {
    const arp = new Uint8Array(42);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(parsePacket(arp, newPacketInfo())).to.equal('not-ip');
  });

  it('flow_key_is_the_same_both_ways', () => {
    const a = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: 5000, dstPort: 80 });
    const b = buildFrame({ src: '10.0.0.2', dst: '10.0.0.1', protocol: 'tcp', srcPort: 80, dstPort: 5000 });
    const i = newPacketInfo();
    const ka = newFlowKey();
    const kb = newFlowKey();
    parsePacket(a, i);
    const fa = flowKey(a, i, ka);
    parsePacket(b, i);
    const fb = flowKey(b, i, kb);
    expect(Buffer.from(ka).equals(kb)).to.equal(true);
    expect(fa).to.not.equal(fb);
    const t = new FlowTable<string>(1);
    expect(t.add(ka, 'conn')).to.equal(true);
    expect(t.get(kb)).to.equal('conn');
    expect(t.add(newFlowKey(), 'x')).to.equal(false); // full
    expect(t.delete(kb)).to.equal(true);
    expect(t.size).to.equal(0);
  });

  it('ip_literals_parse_like_the_kernel', () => {
    expect([...parseIpAddress('192.168.1.2')!]).to.deep.equal([192, 168, 1, 2]);
    expect(Buffer.from(parseIpAddress('fe80::1:2')!).toString('hex')).to.equal('fe800000000000000000000000010002');
    expect(Buffer.from(parseIpAddress('::ffff:10.0.0.1')!).toString('hex')).to.equal('00000000000000000000ffff0a000001');
    expect(Buffer.from(parseIpAddress('::')!).toString('hex')).to.equal('0'.repeat(32));
    expect(parseIpAddress('primary.example')).to.equal(undefined);
    expect(parseIpAddress('300.1.1.1')).to.equal(undefined);
  });

  it('random_bytes_never_throw_and_offsets_stay_inside', () => {
    const i = newPacketInfo();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(0x0800, 0x86dd, 0x8100), (bytes, type) => {
        const f = new Uint8Array(Math.max(bytes.length, 14));
        f.set(bytes);
        f[12] = type >> 8;
        f[13] = type & 0xff;
        const r = parsePacket(f, i);
        if (r === 'ip') {
          expect(i.ipEnd).to.be.at.most(f.length);
          expect(i.l4Offset + i.l4Length).to.equal(i.ipEnd);
          expect(i.payloadOffset + i.payloadLength).to.be.at.most(f.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
