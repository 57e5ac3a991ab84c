// The COLO passthrough list: IPFlowSpec entries checked when added (protocol by the system's
// protocol table, IP literals, ports or service names), duplicates refused, deleting a missing
// entry an error that names it, matching both directions of a flow and only for its object.

import { expect } from 'chai';
import { requireFile } from '../../support/skip.js';
import { PassthroughError, PassthroughList, type IPFlowSpec } from '../../../lib/passthrough/passthrough.js';
import { protocolByName } from '../../../lib/passthrough/protocols.js';
import { buildFrame, newPacketInfo, parsePacket, type FrameSpec } from '../../../lib/packet/index.js';

function code(fn: () => void): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof PassthroughError) return e.code;
    throw e;
  }
  return undefined;
}

function matches(list: PassthroughList, object: string, spec: FrameSpec): boolean {
  const f = buildFrame(spec);
  const i = newPacketInfo();
  parsePacket(f, i);
  return list.matches(object, f, i);
}

const SEED: IPFlowSpec = {
  protocol: 'tcp',
  'object-name': 'object0',
  source: { host: '192.168.1.1', port: '1234' },
  destination: { host: '192.168.1.2', port: '4321' },
};

describe('lib/passthrough passthrough list', () => {
  it('protocols_resolve_like_getprotobyname', () => {
    expect(protocolByName('tcp')).to.equal(6);
    expect(protocolByName('UDP')).to.equal(17);
    expect(protocolByName('icmp')).to.equal(1);
    expect(protocolByName('ipv6-icmp')).to.equal(58);
    expect(protocolByName('132')).to.equal(132);
    expect(protocolByName('nosuchproto')).to.equal(undefined);
  });

  it('add_list_delete_round_trip', () => {
    const list = new PassthroughList();
    let changes = 0;
    list.on('change', () => changes++);
    list.add(SEED);
    list.add({ protocol: 'udp' });
    expect(list.list()).to.deep.equal([SEED, { protocol: 'udp' }]);
    list.delete({ protocol: 'udp' });
    expect(list.list()).to.deep.equal([SEED]);
    expect(changes).to.equal(3);
  });

  it('duplicate_is_refused_even_when_spelled_differently', () => {
    const list = new PassthroughList();
    list.add(SEED);
    expect(code(() => list.add(SEED))).to.equal('passthrough.duplicate');
    // Same flow: protocol by number, port by service-free number, IPv4 the same address.
    expect(code(() => list.add({ ...SEED, protocol: '6' }))).to.equal('passthrough.duplicate');
    expect(() => list.add(SEED)).to.throw(
      'passthrough entry already exists: protocol=tcp object-name=object0 source=192.168.1.1:1234 destination=192.168.1.2:4321',
    );
  });

  it('deleting_a_missing_entry_names_it', () => {
    const list = new PassthroughList();
    list.add(SEED);
    expect(() => list.delete({ ...SEED, 'object-name': 'object1' })).to.throw(
      PassthroughError,
      'passthrough entry not found: protocol=tcp object-name=object1 source=192.168.1.1:1234 destination=192.168.1.2:4321',
    );
    expect(() => list.delete({ source: { host: 'fd00::1', port: '' } })).to.throw('passthrough entry not found: protocol=any object-name=all source=[fd00::1]:any destination=any');
    expect(list.size).to.equal(1);
  });

  it('bad_fields_are_refused_with_their_code', () => {
    const list = new PassthroughList();
    expect(code(() => list.add({ protocol: 'nosuchproto' }))).to.equal('passthrough.unknown-protocol');
    expect(code(() => list.add({ source: { host: 'primary.example', port: '1' } }))).to.equal('passthrough.bad-host');
    expect(code(() => list.add({ destination: { host: '10.0.0.1', port: '70000' } }))).to.equal('passthrough.bad-port');
    expect(code(() => list.add({ destination: { host: '10.0.0.1', port: 'no-such-service' } }))).to.equal('passthrough.bad-port');
    expect(code(() => list.add({ 'object-name': '' }))).to.equal('passthrough.bad-spec');
    expect(list.size).to.equal(0);
  });

  it('service_names_resolve_from_the_system_table', function () {
    requireFile(this, '/etc/services');
    const list = new PassthroughList();
    list.add({ protocol: 'tcp', destination: { host: '', port: 'ssh' } });
    expect(matches(list, 'x', { src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: 5000, dstPort: 22 })).to.equal(true);
    expect(matches(list, 'x', { src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: 5000, dstPort: 23 })).to.equal(false);
  });

  it('matches_both_directions_absent_fields_anything_and_only_its_object', () => {
    const list = new PassthroughList();
    list.add(SEED);
    const fwd: FrameSpec = { src: '192.168.1.1', dst: '192.168.1.2', protocol: 'tcp', srcPort: 1234, dstPort: 4321 };
    const rev: FrameSpec = { src: '192.168.1.2', dst: '192.168.1.1', protocol: 'tcp', srcPort: 4321, dstPort: 1234 };
    expect(matches(list, 'object0', fwd)).to.equal(true);
    expect(matches(list, 'object0', rev)).to.equal(true);
    expect(matches(list, 'object1', fwd)).to.equal(false);
    expect(matches(list, 'object0', { ...fwd, protocol: 'udp' })).to.equal(false);
    expect(matches(list, 'object0', { ...fwd, srcPort: 1235 })).to.equal(false);
    list.add({ protocol: 'icmp' });
    expect(matches(list, 'anything', { src: '10.9.9.9', dst: '10.8.8.8', protocol: 'icmp' })).to.equal(true);
    list.add({ destination: { host: 'fd00::2', port: '' } });
    expect(matches(list, 'o', { src: 'fd00::1', dst: 'fd00::2', protocol: 'udp', srcPort: 1, dstPort: 2 })).to.equal(true);
    expect(matches(list, 'o', { src: 'fd00::1', dst: 'fd00::3', protocol: 'udp', srcPort: 1, dstPort: 2 })).to.equal(false);
  });
});
