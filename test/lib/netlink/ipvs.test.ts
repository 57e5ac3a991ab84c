// The IPVS schema, encoder, decoder, reply collector, ipvsadm-style text and the CLI's option
// parsing, on bytes (no kernel: the real IPVS is exercised in test/guest/qemu-ipvs.test.ts).
// Replies are built the way net/netfilter/ipvs/ip_vs_ctl.c builds them (the same attributes,
// sizes and byte orders), then decoded; broken variants must fail with a typed NetlinkError, and
// a fuzz run feeds random, mutated and truncated datagrams to the whole decode path.

import { expect } from 'chai';
import fc from 'fast-check';
import { encodeAttrs } from '../../../lib/netlink/attributes.js';
import type { AttrValues } from '../../../lib/netlink/attributes.js';
import { NetlinkError } from '../../../lib/netlink/errors.js';
import { writeGenlHeader } from '../../../lib/netlink/genl.js';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_MULTI, buildMessage, parseMessages } from '../../../lib/netlink/message.js';
import { addressBytes, addressText } from '../../../lib/netlink/ipvs/address.js';
import { decodeDaemon, decodeDestination, decodeInfo, decodeService, decodeTimeouts, genlPayload } from '../../../lib/netlink/ipvs/decode.js';
import { destAttrs, serviceAttrs, serviceKeyAttrs } from '../../../lib/netlink/ipvs/encode.js';
import { formatDaemons, formatList, formatTimeouts, largeNumber, serviceName } from '../../../lib/netlink/ipvs/format.js';
import { CMD_ATTRS, INFO_ATTRS, IPVS_CMD } from '../../../lib/netlink/ipvs/schema.js';
import { ReplyCollector } from '../../../lib/netlink/request.js';
import type { IpvsDestination, IpvsService } from '../../../lib/netlink/ipvs/types.js';
import { ipvsCommand } from '../../../lib/cli/ipvs.js';
import { UsageError } from '../../../lib/cli/args.js';

const FAMILY = 0x25;
const be16 = (v: number): number => ((v & 0xff) << 8) | (v >> 8);
const addr16 = (text: string): Uint8Array => {
  const out = new Uint8Array(16);
  out.set(addressBytes(text));
  return out;
};
const flagsStruct = (flags: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, flags, true);
  new DataView(b.buffer).setUint32(4, 0xffffffff, true);
  return b;
};
const stats32 = { conns: 1, inpkts: 2, outpkts: 3, inbytes: 4n, outbytes: 5n, cps: 6, inpps: 7, outpps: 8, inbps: 9, outbps: 10 };
const stats64 = { conns: 1n, inpkts: 2n, outpkts: 3n, inbytes: 123456789012n, outbytes: 5n, cps: 6n, inpps: 7n, outpps: 8n, inbps: 9n, outbps: 10n };

/** A kernel-style reply message: genlmsghdr + attributes. */
function reply(cmd: number, attrs: AttrValues, schema = CMD_ATTRS, seq = 7, type = FAMILY, flags = NLM_F_MULTI): Uint8Array {
  return buildMessage({ type, flags, seq }, (w) => {
    writeGenlHeader(w, cmd, 1);
    encodeAttrs(w, schema, attrs);
  });
}

/** An IPv4 TCP service as ip_vs_genl_fill_service puts it. */
function tcpService(over: AttrValues = {}): AttrValues {
  return {
    af: 2,
    protocol: 6,
    addr: addr16('10.0.0.1'),
    port: be16(80),
    schedName: 'rr',
    flags: flagsStruct(0x2),
    timeout: 0,
    netmask: 0xffffffff,
    stats: stats32,
    stats64,
    ...over,
  };
}

function decodeOne(bytes: Uint8Array, cmd: number): ReturnType<typeof genlPayload> {
  const [m] = parseMessages(bytes);
  return genlPayload(m!.payload, cmd, 'test');
}

function expectNetlinkError(f: () => unknown, code: string): NetlinkError {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(NetlinkError);
    expect((e as NetlinkError).code).to.equal(code);
    return e as NetlinkError;
  }
  throw new Error(`expected NetlinkError ${code}, nothing was thrown`);
}

describe('IPVS over generic netlink: codec', () => {
  describe('addresses', () => {
    it('parses and prints IPv4 and IPv6 text (RFC 5952 form)', () => {
      const cases: [string, string][] = [
        ['10.0.0.1', '10.0.0.1'],
        ['2001:db8::1', '2001:db8::1'],
        ['::', '::'],
        ['::1', '::1'],
        ['1::', '1::'],
        ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
        ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
        ['::ffff:1.2.3.4', '::ffff:102:304'],
      ];
      for (const [input, text] of cases) expect(addressText(addressBytes(input), input.includes(':') ? 'inet6' : 'inet'), input).to.equal(text);
      expect(Array.from(addressBytes('::ffff:1.2.3.4').subarray(10))).to.deep.equal([0xff, 0xff, 1, 2, 3, 4]);
    });
    it('rejects what is not an address', () => {
      for (const bad of ['1.2.3', '256.1.1.1', '01.2.3.4', '1:::2', '12345::', '1:2:3:4:5:6:7:8:9', '1::2::3', 'x', '']) {
        expectNetlinkError(() => addressBytes(bad), 'netlink.bad-value');
      }
    });
  });

  describe('encode', () => {
    it('writes a service the way the kernel reads it (AF, protocol, 16-byte address, __be16 port, flags struct)', () => {
      const a = serviceAttrs({ protocol: 'udp', address: '10.1.2.3', port: 53, scheduler: 'wrr', persistent: 600, netmask: '255.255.255.0', onePacket: true });
      expect(a['af']).to.equal(2);
      expect(a['protocol']).to.equal(17);
      expect(Array.from(a['addr'] as Uint8Array)).to.deep.equal([10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      expect(a['port']).to.equal(0x3500);
      expect(a['schedName']).to.equal('wrr');
      expect(Array.from(a['flags'] as Uint8Array)).to.deep.equal([5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
      expect(a['timeout']).to.equal(600);
      // 255.255.255.0 as a __be32 read little-endian.
      expect(a['netmask']).to.equal(0x00ffffff);
      const f = serviceKeyAttrs({ fwmark: 9, family: 'inet6' });
      expect(f).to.deep.equal({ af: 10, fwmark: 9 });
    });
    it('writes destinations with forwarding method, weight, thresholds and the address family', () => {
      const d = destAttrs({ protocol: 'tcp', address: '10.0.0.1', port: 80 }, { address: '2001:db8::5', forwarding: 'tunnel', weight: 4, upperThreshold: 9, lowerThreshold: 2 });
      expect(d).to.include({ fwdMethod: 2, weight: 4, uThresh: 9, lThresh: 2, addrFamily: 10, port: be16(80) });
      expect(destAttrs({ fwmark: 3 }, { address: '10.0.0.9' })).to.include({ fwdMethod: 3, weight: 1, port: 0 });
    });
    it('refuses values the kernel could not take, before sending', () => {
      const svc = { protocol: 'tcp' as const, address: '10.0.0.1', port: 80 };
      expectNetlinkError(() => serviceAttrs({ ...svc, port: 70000 }), 'netlink.bad-value');
      expectNetlinkError(() => serviceAttrs({ ...svc, scheduler: 'a-scheduler-name-too-long' }), 'netlink.bad-value');
      expectNetlinkError(() => serviceAttrs({ fwmark: 0 }), 'netlink.bad-value');
      expectNetlinkError(() => serviceAttrs({ ...svc, address: '10.0.0' }), 'netlink.bad-value');
      expectNetlinkError(() => serviceAttrs({ protocol: 'icmp' as 'tcp', address: '10.0.0.1', port: 1 }), 'netlink.bad-value');
      expectNetlinkError(() => serviceAttrs({ ...svc, netmask: 64 }), 'netlink.bad-value');
      expectNetlinkError(() => serviceAttrs({ protocol: 'tcp', address: '::1', port: 1, netmask: 129 }), 'netlink.bad-value');
      expectNetlinkError(() => destAttrs(svc, { address: '10.0.0.2', weight: -1 }), 'netlink.bad-value');
      expectNetlinkError(() => destAttrs(svc, { address: '10.0.0.2', forwarding: 'nat' as 'masq' }), 'netlink.bad-value');
      expectNetlinkError(() => destAttrs(svc, { address: '10.0.0.2', tunnel: { type: 'gue' } }), 'netlink.bad-value');
    });
  });

  describe('decode', () => {
    it('reads a service reply (stats64 preferred over the 32-bit stats)', () => {
      const s = decodeService(decodeOne(reply(IPVS_CMD.ADD_SERVICE, { service: tcpService() }), IPVS_CMD.ADD_SERVICE));
      expect(s).to.deep.equal({
        family: 'inet',
        protocol: 'tcp',
        address: '10.0.0.1',
        port: 80,
        fwmark: 0,
        scheduler: 'rr',
        flags: 2,
        timeout: 0,
        netmask: '255.255.255.255',
        stats: { ...stats64 },
      });
      const only32 = decodeService(decodeOne(reply(IPVS_CMD.ADD_SERVICE, { service: tcpService({ stats64: undefined }) }), IPVS_CMD.ADD_SERVICE));
      expect(only32.stats?.inbytes).to.equal(4n);
    });
    it('reads IPv6 and fwmark services', () => {
      const v6 = decodeService(decodeOne(reply(IPVS_CMD.ADD_SERVICE, { service: tcpService({ af: 10, addr: addr16('2001:db8::1'), netmask: 64, flags: flagsStruct(3), timeout: 300, peName: 'sip' }) }), IPVS_CMD.ADD_SERVICE));
      expect(v6).to.include({ family: 'inet6', address: '2001:db8::1', netmask: 64, timeout: 300, flags: 3, persistenceEngine: 'sip' });
      const fw = decodeService(decodeOne(reply(IPVS_CMD.ADD_SERVICE, { service: { af: 2, fwmark: 7, schedName: 'sh', flags: flagsStruct(0xa), timeout: 0, netmask: 0xffffffff } }), IPVS_CMD.ADD_SERVICE));
      expect(fw).to.deep.equal({ family: 'inet', fwmark: 7, scheduler: 'sh', flags: 0xa, timeout: 0, netmask: '255.255.255.255' });
    });
    it('names the missing or malformed attribute instead of guessing', () => {
      const svc = (over: AttrValues): (() => unknown) => () => decodeService(decodeOne(reply(IPVS_CMD.ADD_SERVICE, { service: tcpService(over) }), IPVS_CMD.ADD_SERVICE));
      expect(expectNetlinkError(svc({ schedName: undefined }), 'netlink.missing-attribute').message).to.contain('IPVS_SVC_ATTR_SCHED_NAME');
      expect(expectNetlinkError(svc({ af: undefined }), 'netlink.missing-attribute').message).to.contain('IPVS_SVC_ATTR_AF');
      expect(expectNetlinkError(svc({ port: undefined }), 'netlink.missing-attribute').message).to.contain('IPVS_SVC_ATTR_PORT');
      expectNetlinkError(svc({ flags: new Uint8Array(7) }), 'netlink.bad-attribute');
      expectNetlinkError(svc({ af: 3 }), 'netlink.bad-attribute');
      expectNetlinkError(svc({ addr: new Uint8Array(3) }), 'netlink.bad-attribute');
      expectNetlinkError(svc({ stats64: { conns: 1n } }), 'netlink.missing-attribute');
      expectNetlinkError(() => decodeService(decodeOne(reply(IPVS_CMD.ADD_SERVICE, {}), IPVS_CMD.ADD_SERVICE)), 'netlink.missing-attribute');
      // A u32 attribute of 3 bytes: the codec's length check.
      const bytes = reply(IPVS_CMD.GET_TIMEOUT + 0, { timeoutTcp: 900, timeoutTcpFin: 120, timeoutUdp: 300 });
      const m = parseMessages(bytes)[0]!;
      const broken = m.payload.slice();
      broken[4] = 7; // nla_len 8 → 7 on the first attribute
      expectNetlinkError(() => genlPayload(broken, IPVS_CMD.GET_TIMEOUT, 'test'), 'netlink.bad-attribute');
      // A reply to another command.
      expectNetlinkError(() => decodeOne(reply(IPVS_CMD.ADD_DEST, {}), IPVS_CMD.ADD_SERVICE), 'netlink.malformed');
    });
    it('reads destinations, daemons, timeouts and info', () => {
      const d = decodeDestination(
        decodeOne(reply(IPVS_CMD.ADD_DEST, { dest: { addr: addr16('192.168.1.10'), port: be16(8080), fwdMethod: 0, weight: 3, uThresh: 100, lThresh: 10, activeConns: 1, inactConns: 2, persistConns: 3, addrFamily: 2, tunType: 1, tunPort: be16(6080), tunFlags: 1 } }), IPVS_CMD.ADD_DEST),
        'inet6',
      );
      expect(d).to.deep.equal({ family: 'inet', address: '192.168.1.10', port: 8080, forwarding: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 10, activeConns: 1, inactConns: 2, persistConns: 3, tunnel: { type: 'gue', port: 6080, flags: 1 } });
      expectNetlinkError(() => decodeDestination(decodeOne(reply(IPVS_CMD.ADD_DEST, { dest: { addr: addr16('1.2.3.4'), port: 0, fwdMethod: 0, weight: 1, uThresh: 0, lThresh: 0, activeConns: 0, inactConns: 0 } }), IPVS_CMD.ADD_DEST), 'inet'), 'netlink.missing-attribute');
      const dm = decodeDaemon(decodeOne(reply(IPVS_CMD.START_DAEMON, { daemon: { state: 1, mcastIfn: 'eth0', syncId: 5, syncMaxlen: 1472, mcastGroup: Uint8Array.of(224, 0, 0, 81), mcastPort: 8848, mcastTtl: 1 } }), IPVS_CMD.START_DAEMON));
      expect(dm).to.deep.equal({ state: 'master', interface: 'eth0', syncId: 5, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1 });
      expectNetlinkError(() => decodeDaemon(decodeOne(reply(IPVS_CMD.START_DAEMON, { daemon: { state: 3, mcastIfn: 'eth0', syncId: 0 } }), IPVS_CMD.START_DAEMON)), 'netlink.bad-attribute');
      expect(decodeTimeouts(decodeOne(reply(IPVS_CMD.SET_TIMEOUT, { timeoutTcp: 900, timeoutTcpFin: 120, timeoutUdp: 300 }), IPVS_CMD.SET_TIMEOUT))).to.deep.equal({ tcp: 900, tcpFin: 120, udp: 300 });
      expectNetlinkError(() => decodeTimeouts(decodeOne(reply(IPVS_CMD.SET_TIMEOUT, { timeoutTcp: 900 }), IPVS_CMD.SET_TIMEOUT)), 'netlink.missing-attribute');
      const [m] = parseMessages(reply(IPVS_CMD.SET_INFO, { version: 0x010201, connTabSize: 4096 }, INFO_ATTRS));
      expect(decodeInfo(genlPayload(m!.payload, IPVS_CMD.SET_INFO, 'test', INFO_ATTRS))).to.deep.equal({ version: '1.2.1', versionCode: 0x010201, connTableSize: 4096 });
    });
  });

  describe('ReplyCollector', () => {
    it('collects a multipart dump to NLMSG_DONE, skipping other sequence numbers', () => {
      const c = new ReplyCollector(7, 0x300, 'dump');
      const part = (seq: number): Uint8Array => reply(IPVS_CMD.ADD_SERVICE, { service: tcpService() }, CMD_ATTRS, seq);
      const joined = new Uint8Array([...part(7), ...part(6), ...part(7)]);
      expect(c.feed(joined)).to.equal(false);
      expect(c.feed(buildMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 7 }, (w) => w.u32(0)))).to.equal(true);
      expect(c.messages).to.have.length(2);
      expect(c.stale).to.equal(1);
    });
    it('counts_skipped_messages_into_a_given_tally_as_a_socket_keeps_its_running_count', () => {
      const tally = { stale: 5 };
      const c = new ReplyCollector(7, 0, 'add', tally);
      const other = buildMessage({ type: NLMSG_ERROR, flags: 0x100, seq: 6 }, (w) => { w.s32(0); w.bytes(buildMessage({ type: FAMILY, flags: 5, seq: 6 })); });
      expect(c.feed(new Uint8Array([...other, ...other]))).to.equal(false);
      expect(tally.stale).to.equal(7);
      expect(c.stale).to.equal(7);
    });
    it('turns a negative NLMSG_ERROR into netlink.errno with the errno', () => {
      const c = new ReplyCollector(9, 0, 'add');
      const err = buildMessage({ type: NLMSG_ERROR, flags: 0x100, seq: 9 }, (w) => {
        w.s32(-17);
        w.bytes(buildMessage({ type: FAMILY, flags: 5, seq: 9 }));
      });
      const e = expectNetlinkError(() => c.feed(err), 'netlink.errno');
      expect(e.errno).to.equal(17);
      const ok = new ReplyCollector(10, 0, 'add');
      expect(ok.feed(buildMessage({ type: NLMSG_ERROR, flags: 0x100, seq: 10 }, (w) => { w.s32(0); w.bytes(buildMessage({ type: FAMILY, flags: 5, seq: 10 })); }))).to.equal(true);
    });
  });

  describe('fuzz: random, mutated and truncated replies', () => {
    const valid: Uint8Array[] = [
      reply(IPVS_CMD.ADD_SERVICE, { service: tcpService() }),
      reply(IPVS_CMD.ADD_SERVICE, { service: tcpService({ af: 10, addr: addr16('2001:db8::1'), netmask: 64, peName: 'sip' }) }),
      reply(IPVS_CMD.ADD_DEST, { dest: { addr: addr16('192.168.1.10'), port: be16(80), fwdMethod: 3, weight: 1, uThresh: 0, lThresh: 0, activeConns: 0, inactConns: 0, persistConns: 0, stats64 } }),
      reply(IPVS_CMD.START_DAEMON, { daemon: { state: 2, mcastIfn: 'eth0', syncId: 1 } }),
      reply(IPVS_CMD.SET_TIMEOUT, { timeoutTcp: 1, timeoutTcpFin: 2, timeoutUdp: 3 }),
      reply(IPVS_CMD.SET_INFO, { version: 1, connTabSize: 2 }, INFO_ATTRS),
    ];
    /** The whole decode path; returns how many objects decoded. Only NetlinkError may escape. */
    function decodeAll(datagram: Uint8Array): number {
      let n = 0;
      const attempt = (f: () => unknown): void => {
        try {
          f();
          n++;
        } catch (e) {
          if (!(e instanceof NetlinkError)) throw e;
        }
      };
      let messages;
      try {
        messages = parseMessages(datagram);
      } catch (e) {
        if (!(e instanceof NetlinkError)) throw e;
        return 0;
      }
      for (const m of messages) {
        const cmd = m.payload[0] ?? 0;
        attempt(() => decodeService(genlPayload(m.payload, cmd, 'fuzz')));
        attempt(() => decodeDestination(genlPayload(m.payload, cmd, 'fuzz'), 'inet'));
        attempt(() => decodeDaemon(genlPayload(m.payload, cmd, 'fuzz')));
        attempt(() => decodeTimeouts(genlPayload(m.payload, cmd, 'fuzz')));
        attempt(() => decodeInfo(genlPayload(m.payload, cmd, 'fuzz', INFO_ATTRS)));
      }
      return n;
    }

    it('decodes each valid reply', () => {
      for (const v of valid) expect(decodeAll(v)).to.be.greaterThan(0);
    });

    it('every truncation of a valid reply fails typed or decodes, never crashes', () => {
      for (const v of valid) {
        for (let len = 0; len < v.length; len++) {
          const cut = v.slice(0, len);
          decodeAll(cut);
          // The header still claims the full length: the message must be refused as truncated.
          if (len >= 16) expectNetlinkError(() => parseMessages(cut), 'netlink.truncated');
        }
      }
    });

    it('random bytes and random mutations of valid replies fail typed or decode', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
          decodeAll(bytes);
        }),
        { numRuns: 2000 },
      );
      fc.assert(
        fc.property(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (v, edits) => {
          const b = v.slice();
          for (const [at, byte] of edits) b[at % b.length] = byte;
          decodeAll(b);
        }),
        { numRuns: 3000 },
      );
    });
  });

  describe('ipvsadm text', () => {
    // The listing and its exact text as Debian's ipvsadm 1.31 printed it for this state on a
    // 6.1 kernel (recorded from the guest of test/guest/qemu-ipvs.test.ts).
    const dest = (address: string, port: number, forwarding: IpvsDestination['forwarding'], weight: number): IpvsDestination => ({
      family: address.includes(':') ? 'inet6' : 'inet', address, port, forwarding, weight, upperThreshold: 0, lowerThreshold: 0, activeConns: 0, inactConns: 0, persistConns: 0,
    });
    const svc = (s: Partial<IpvsService>): IpvsService => ({ family: 'inet', fwmark: 0, scheduler: 'wlc', flags: 2, timeout: 0, netmask: '255.255.255.255', ...s });
    const listing = [
      { service: svc({ family: 'inet6', protocol: 'tcp', address: '2001:db8::1', port: 443, scheduler: 'lc', flags: 3, timeout: 300, netmask: 64 }), destinations: [dest('2001:db8::10', 8443, 'masq', 1)] },
      { service: svc({ fwmark: 8, family: 'inet6', netmask: 128 }), destinations: [] },
      { service: svc({ protocol: 'udp', address: '10.0.0.1', port: 53, scheduler: 'wrr', flags: 7, timeout: 600, netmask: '255.255.255.0' }), destinations: [] },
      { service: svc({ fwmark: 7, scheduler: 'sh', flags: 10 }), destinations: [dest('192.168.1.20', 0, 'route', 1)] },
      { service: svc({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' }), destinations: [dest('192.168.1.12', 80, 'tunnel', 1), dest('192.168.1.11', 80, 'route', 0), dest('192.168.1.10', 8080, 'masq', 3)] },
    ];
    it('formats -Ln as ipvsadm does (sorted services and destinations, flags, persistence)', () => {
      expect(formatList({ version: '1.2.1', versionCode: 0x010201, connTableSize: 4096 }, listing)).to.equal(
        [
          'IP Virtual Server version 1.2.1 (size=4096)',
          'Prot LocalAddress:Port Scheduler Flags',
          '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
          'TCP  10.0.0.1:80 rr',
          '  -> 192.168.1.10:8080            Masq    3      0          0         ',
          '  -> 192.168.1.11:80              Route   0      0          0         ',
          '  -> 192.168.1.12:80              Tunnel  1      0          0         ',
          'UDP  10.0.0.1:53 wrr persistent 600 mask 255.255.255.0 ops',
          'TCP  [2001:db8::1]:443 lc persistent 300 mask 64',
          '  -> [2001:db8::10]:8443          Masq    1      0          0         ',
          'FWM  7 sh (sh-fallback)',
          '  -> 192.168.1.20:0               Route   1      0          0         ',
          'FWM  8 IPv6 wlc',
          '',
        ].join('\n'),
      );
    });
    it('formats --stats, --timeout and --daemon', () => {
      const out = formatList({ version: '1.2.1', versionCode: 0x010201, connTableSize: 4096 }, listing.slice(4), { stats: true });
      expect(out.split('\n').slice(1, 5)).to.deep.equal([
        'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
        '  -> RemoteAddress:Port',
        'TCP  10.0.0.1:80                         0        0        0        0        0',
        '  -> 192.168.1.10:8080                   0        0        0        0        0',
      ]);
      expect(serviceName({ family: 'inet', protocol: 'sctp', address: '10.0.0.2', port: 9899, fwmark: 0, scheduler: 'lc', flags: 2, timeout: 0, netmask: '255.255.255.255' })).to.equal('SCTP 10.0.0.2:9899');
      expect(largeNumber(99_999_999n)).to.equal(' 99999999');
      expect(largeNumber(123_456_789n)).to.equal('  123456K');
      expect(largeNumber(123_456_789_012n)).to.equal('     123G');
      expect(formatTimeouts({ tcp: 1000, tcpFin: 60, udp: 200 })).to.equal('Timeout (tcp tcpfin udp): 1000 60 200\n');
      expect(formatDaemons([{ state: 'backup', interface: 'eth0', syncId: 6 }, { state: 'master', interface: 'eth0', syncId: 5, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1 }])).to.equal(
        'master sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\nbackup sync daemon (mcast=eth0, syncid=6)\n',
      );
    });
  });

  describe('virtio-net ipvs options', () => {
    it('refuses bad options as usage errors before touching the kernel', async () => {
      for (const argv of [['-A', '-t', '10.0.0.1:99999'], ['-A', '-t', '10.0.0.1'], ['-A', '-t', '2001:db8::1:80'], ['-a', '-t', '10.0.0.1:80'], ['-A'], ['--bogus'], ['-L', '-C'], ['--start-daemon', 'primary', '--mcast-interface', 'eth0']]) {
        let thrown: unknown;
        try {
          await ipvsCommand(argv, { client: {} as never, out: () => {}, err: () => {} });
        } catch (e) {
          thrown = e;
        }
        expect(thrown, argv.join(' ')).to.be.instanceOf(UsageError);
      }
    });
  });
});
