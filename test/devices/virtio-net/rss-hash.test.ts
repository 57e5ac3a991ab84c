// The Toeplitz hash (devices/virtio-net/toeplitz.ts) and the per-packet hash over the VIRTIO 1.2
// §5.1.6.4.3 hash types (rss-hash.ts). Vectors: Microsoft's "Verifying the RSS Hash Calculation"
// (https://learn.microsoft.com/en-us/windows-hardware/drivers/network/verifying-the-rss-hash-calculation),
// IPv4 and IPv6, address-only and with TCP ports; and the reference implementation in rss-frames.ts
// for random keys and inputs, and for which fields each hash type covers.

import { expect } from 'chai';
import { Toeplitz, TOEPLITZ_INPUT_MAX } from '../../../devices/virtio-net/toeplitz.js';
import { FrameHash, HashReport, HashType, SUPPORTED_HASH_TYPES } from '../../../devices/virtio-net/rss-hash.js';
import { MS_KEY, be16, ipv4Bytes, ipv6Bytes, refToeplitz, v4Frame, v6Frame, arpFrame } from './rss-frames.js';

function tableHash(key: Uint8Array, input: Uint8Array): number {
  const t = new Toeplitz();
  t.setKey(key);
  return t.update(0, input, 0, input.length, 0) >>> 0;
}

// [destination, destination port, source, source port, IPv4 hash, IPv4 with TCP hash]
const MS_V4: readonly [string, number, string, number, number, number][] = [
  ['161.142.100.80', 1766, '66.9.149.187', 2794, 0x323e8fc2, 0x51ccc178],
  ['65.69.140.83', 4739, '199.92.111.2', 14230, 0xd718262a, 0xc626b0ea],
  ['12.22.207.184', 38024, '24.19.198.95', 12898, 0xd2d0a5de, 0x5c2b394a],
  ['209.142.163.6', 2217, '38.27.205.30', 48228, 0x82989176, 0xafc7327f],
  ['202.188.127.2', 1303, '153.39.163.191', 44251, 0x5d1809c5, 0x10e828a2],
];
const MS_V6: readonly [string, number, string, number, number, number][] = [
  ['3ffe:2501:200:3::1', 1766, '3ffe:2501:200:1fff::7', 2794, 0x2cc18cd5, 0x40207d3d],
  ['ff02::1', 4739, '3ffe:501:8::260:97ff:fe40:efab', 14230, 0x0f0c461c, 0xdde51bbf],
  ['fe80::200:f8ff:fe21:67cf', 38024, '3ffe:1900:4545:3:200:f8ff:fe21:67cf', 44251, 0x4b61e985, 0x02d1feef],
];

describe('devices/virtio-net RSS hash', () => {
  describe('toeplitz (Microsoft verification examples)', () => {
    for (const [dst, dport, src, sport, ip, tcp] of MS_V4) {
      it(`ipv4_${src}:${sport}_to_${dst}:${dport}`, () => {
        const two = Uint8Array.from([...ipv4Bytes(src), ...ipv4Bytes(dst)]);
        const four = Uint8Array.from([...two, ...be16(sport), ...be16(dport)]);
        expect(tableHash(MS_KEY, two)).to.equal(ip);
        expect(tableHash(MS_KEY, four)).to.equal(tcp);
        expect(refToeplitz(MS_KEY, two)).to.equal(ip);
        expect(refToeplitz(MS_KEY, four)).to.equal(tcp);
      });
    }
    for (const [dst, dport, src, sport, ip, tcp] of MS_V6) {
      it(`ipv6_${src}_${sport}_to_${dst}_${dport}`, () => {
        const two = Uint8Array.from([...ipv6Bytes(src), ...ipv6Bytes(dst)]);
        const four = Uint8Array.from([...two, ...be16(sport), ...be16(dport)]);
        expect(tableHash(MS_KEY, two)).to.equal(ip);
        expect(tableHash(MS_KEY, four)).to.equal(tcp);
        expect(refToeplitz(MS_KEY, four)).to.equal(tcp);
      });
    }

    it('the_table_matches_the_reference_for_random_keys_of_every_length_and_random_inputs', () => {
      let seed = 12345;
      const rnd = (): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed >>> 24;
      };
      const t = new Toeplitz();
      for (let keyLen = 0; keyLen <= 40; keyLen++) {
        const key = Uint8Array.from({ length: keyLen }, rnd);
        t.setKey(key);
        for (let n = 0; n < 4; n++) {
          const input = Uint8Array.from({ length: 1 + (rnd() % TOEPLITZ_INPUT_MAX) }, rnd);
          expect(t.update(0, input, 0, input.length, 0) >>> 0, `key ${keyLen} bytes, input ${input.length}`).to.equal(refToeplitz(key, input));
          // In pieces, as the device hashes addresses and ports apart.
          const cut = rnd() % input.length;
          const pieces = t.update(t.update(0, input, 0, cut, 0), input, cut, input.length - cut, cut) >>> 0;
          expect(pieces).to.equal(refToeplitz(key, input));
        }
      }
    });
  });

  describe('hash types (§5.1.6.4.3)', () => {
    const t = new Toeplitz();
    t.setKey(MS_KEY);
    const fh = new FrameHash(t);
    const ALL = SUPPORTED_HASH_TYPES;
    const v4in = (src: string, dst: string, ports?: [number, number]): Uint8Array =>
      Uint8Array.from([...ipv4Bytes(src), ...ipv4Bytes(dst), ...(ports === undefined ? [] : [...be16(ports[0]), ...be16(ports[1])])]);
    const v6in = (src: string, dst: string, ports?: [number, number]): Uint8Array =>
      Uint8Array.from([...ipv6Bytes(src), ...ipv6Bytes(dst), ...(ports === undefined ? [] : [...be16(ports[0]), ...be16(ports[1])])]);

    it('ipv4_tcp_hashes_the_4_tuple_and_reports_tcpv4_and_the_microsoft_value', () => {
      const f = v4Frame('66.9.149.187', '161.142.100.80', { sport: 2794, dport: 1766 });
      expect(fh.compute(f, ALL)).to.equal(HashReport.TCPv4);
      expect(fh.value).to.equal(0x51ccc178);
    });

    it('ipv4_tcp_without_tcpv4_falls_back_to_the_address_hash', () => {
      const f = v4Frame('66.9.149.187', '161.142.100.80', { sport: 2794, dport: 1766 });
      expect(fh.compute(f, HashType.IPv4 | HashType.UDPv4)).to.equal(HashReport.IPv4);
      expect(fh.value).to.equal(0x323e8fc2);
      expect(fh.compute(f, HashType.UDPv4 | HashType.TCPv6)).to.equal(HashReport.NONE);
      expect(fh.value).to.equal(0);
    });

    it('ipv4_udp_and_a_vlan_tag', () => {
      const f = v4Frame('10.0.0.1', '10.0.0.2', { proto: 'udp', sport: 5353, dport: 53, vlan: 7 });
      expect(fh.compute(f, ALL)).to.equal(HashReport.UDPv4);
      expect(fh.value).to.equal(refToeplitz(MS_KEY, v4in('10.0.0.1', '10.0.0.2', [5353, 53])));
      expect(fh.compute(f, HashType.TCPv4 | HashType.IPv4)).to.equal(HashReport.IPv4);
    });

    it('ipv4_fragments_and_other_protocols_hash_only_the_addresses', () => {
      for (const fragment of ['more', 'offset'] as const) {
        expect(fh.compute(v4Frame('10.0.0.1', '10.0.0.2', { fragment }), ALL), fragment).to.equal(HashReport.IPv4);
        expect(fh.value).to.equal(refToeplitz(MS_KEY, v4in('10.0.0.1', '10.0.0.2')));
        expect(fh.compute(v4Frame('10.0.0.1', '10.0.0.2', { fragment }), HashType.TCPv4)).to.equal(HashReport.NONE);
      }
      expect(fh.compute(v4Frame('10.0.0.1', '10.0.0.2', { proto: 'icmp' }), ALL)).to.equal(HashReport.IPv4);
    });

    it('frames_without_ip_or_truncated_are_not_hashed', () => {
      expect(fh.compute(arpFrame(), ALL)).to.equal(HashReport.NONE);
      const f = v4Frame('10.0.0.1', '10.0.0.2');
      expect(fh.compute(f.subarray(0, 14 + 19), ALL)).to.equal(HashReport.NONE);
      // The TCP header cut short: no 4-tuple, the addresses still.
      expect(fh.compute(f.subarray(0, 14 + 20 + 10), ALL)).to.equal(HashReport.IPv4);
      expect(fh.compute(new Uint8Array(10), ALL)).to.equal(HashReport.NONE);
    });

    it('ipv6_without_extension_headers_uses_the_plain_types_only', () => {
      const f = v6Frame('3ffe:2501:200:1fff::7', '3ffe:2501:200:3::1', { sport: 2794, dport: 1766 });
      expect(fh.compute(f, ALL)).to.equal(HashReport.TCPv6);
      expect(fh.value).to.equal(0x40207d3d);
      expect(fh.compute(f, HashType.IPv6)).to.equal(HashReport.IPv6);
      expect(fh.value).to.equal(0x2cc18cd5);
      // §5.1.6.4.3.3: the _EX types are for packets with extension headers.
      expect(fh.compute(f, HashType.TCP_EX | HashType.IP_EX)).to.equal(HashReport.NONE);
      const u = v6Frame('fe80::1', 'fe80::2', { proto: 'udp', sport: 1, dport: 2 });
      expect(fh.compute(u, ALL)).to.equal(HashReport.UDPv6);
      expect(fh.value).to.equal(refToeplitz(MS_KEY, v6in('fe80::1', 'fe80::2', [1, 2])));
    });

    it('ipv6_ex_types_use_the_home_address_and_the_type_2_routing_address', () => {
      const f = v6Frame('2001:db8::1', '2001:db8::2', { sport: 40000, dport: 443, ext: [{ kind: 'hop' }, { kind: 'dest', home: '2001:db8:aa::9' }, { kind: 'routing2', address: '2001:db8:bb::7' }] });
      expect(fh.compute(f, ALL)).to.equal(HashReport.TCPv6_EX);
      expect(fh.value).to.equal(refToeplitz(MS_KEY, v6in('2001:db8:aa::9', '2001:db8:bb::7', [40000, 443])));
      expect(fh.compute(f, HashType.IP_EX)).to.equal(HashReport.IPv6_EX);
      expect(fh.value).to.equal(refToeplitz(MS_KEY, v6in('2001:db8:aa::9', '2001:db8:bb::7')));
      // No _EX type enabled: the extension headers are skipped and the plain types apply, plain addresses.
      expect(fh.compute(f, HashType.TCPv6)).to.equal(HashReport.TCPv6);
      expect(fh.value).to.equal(refToeplitz(MS_KEY, v6in('2001:db8::1', '2001:db8::2', [40000, 443])));
      const u = v6Frame('2001:db8::1', '2001:db8::2', { proto: 'udp', sport: 7, dport: 9, ext: [{ kind: 'dest' }] });
      expect(fh.compute(u, ALL)).to.equal(HashReport.UDPv6_EX);
      expect(fh.value, 'no home address option: the source address').to.equal(refToeplitz(MS_KEY, v6in('2001:db8::1', '2001:db8::2', [7, 9])));
    });

    it('ipv6_fragments_hash_only_addresses', () => {
      const f = v6Frame('2001:db8::1', '2001:db8::2', { ext: [{ kind: 'fragment' }] });
      expect(fh.compute(f, ALL)).to.equal(HashReport.IPv6_EX);
      expect(fh.compute(f, HashType.TCPv6 | HashType.TCP_EX)).to.equal(HashReport.NONE);
      expect(fh.compute(f, HashType.TCPv6 | HashType.IPv6)).to.equal(HashReport.IPv6);
    });

    it('report_types_follow_the_hash_type_bits', () => {
      // §5.1.6.4.4: VIRTIO_NET_HASH_TYPE_XXX = 1 << (VIRTIO_NET_HASH_REPORT_XXX - 1).
      const pairs: [keyof typeof HashType, keyof typeof HashReport][] = [
        ['IPv4', 'IPv4'], ['TCPv4', 'TCPv4'], ['UDPv4', 'UDPv4'], ['IPv6', 'IPv6'], ['TCPv6', 'TCPv6'], ['UDPv6', 'UDPv6'], ['IP_EX', 'IPv6_EX'], ['TCP_EX', 'TCPv6_EX'], ['UDP_EX', 'UDPv6_EX'],
      ];
      for (const [type, report] of pairs) expect(HashType[type]).to.equal(1 << (HashReport[report] - 1));
    });
  });
});
