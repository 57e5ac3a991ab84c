import { expect } from 'chai';
import fc from 'fast-check';
import {
  CtrlAck,
  CtrlAnnounce,
  CtrlClass,
  CtrlGuestOffloads,
  CtrlMac,
  CtrlMq,
  CtrlRx,
  CtrlVlan,
} from '../../../devices/virtio-net/constants.js';
import { parseCtrlCommand, parseCtrlCommandReused } from '../../../devices/virtio-net/ctrl-command.js';
import { queryRxFilter } from '../../../devices/virtio-net/rx-filter-query.js';
import { ctrl, harness, le16, le32, le64, mac } from './ctrl-fixtures.js';

/** Command payloads biased towards real classes and commands, with random lengths and contents. */
function randomPayload(): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc
      .tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.uint8Array({ maxLength: 24 }))
      .map(([c, k, rest]) => Uint8Array.from([c, k, ...rest])),
    fc
      .tuple(fc.integer({ min: 0, max: 3 }), fc.array(fc.uint8Array({ minLength: 6, maxLength: 6 }), { maxLength: 4 }), fc.integer({ min: 0, max: 3 }))
      .map(([nu, entries, nm]) => ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(nu), ...entries.slice(0, nu), le32(nm), ...entries.slice(nu))),
  );
}

describe('devices/virtio-net/ctrl-command', () => {
  it('parses_each_class_into_its_command_value', () => {
    expect(parseCtrlCommand(ctrl(CtrlClass.RX, CtrlRx.NOUNI, 1, 9))).to.deep.equal({
      kind: 'rx-mode',
      ctrlClass: CtrlClass.RX,
      command: CtrlRx.NOUNI,
      value: 1,
      trailing: 1,
    });
    expect(parseCtrlCommand(ctrl(CtrlClass.VLAN, CtrlVlan.DEL, le16(0x0abc)))).to.deep.equal({
      kind: 'vlan',
      ctrlClass: CtrlClass.VLAN,
      command: CtrlVlan.DEL,
      vid: 0x0abc,
      trailing: 0,
    });
    expect(parseCtrlCommand(ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK, 1, 2))).to.include({ kind: 'announce-ack', trailing: 2 });
    expect(parseCtrlCommand(ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(0x8000)))).to.include({ kind: 'mq-vq-pairs-set', pairs: 0x8000 });
    expect(parseCtrlCommand(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(0x8000_0000_0000_0182n)))).to.include({
      kind: 'guest-offloads-set',
      offloads: 0x8000_0000_0000_0182n,
    });
    const addr = parseCtrlCommand(ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('02:00:00:00:00:07')));
    expect(addr).to.include({ kind: 'mac-addr-set', offset: 2 });
  });

  it('mac_table_set_records_counts_offsets_and_overflow', () => {
    const payload = ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(1), mac('02:00:00:00:00:01'), le32(2), mac('01:00:5e:00:00:01'), mac('01:00:5e:00:00:02'));
    expect(parseCtrlCommand(payload)).to.deep.include({
      kind: 'mac-table-set',
      uniDeclared: 1,
      uniOffset: 6,
      uniKept: 1,
      uniOverflow: false,
      multiDeclared: 2,
      multiOffset: 16,
      multiKept: 2,
      multiOverflow: false,
    });
  });

  it('rejected_commands_carry_a_diagnostic_with_code_section_and_identity', () => {
    const parsed = parseCtrlCommand(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(5000)));
    expect(parsed.kind).to.equal('rejected');
    if (parsed.kind !== 'rejected') return;
    expect(parsed.error).to.include({ code: 'ctrl.vlan-out-of-range', section: '5.1.6.5.3', ctrlClass: CtrlClass.VLAN, command: CtrlVlan.ADD, tolerated: false });
    expect(parsed.error.message).to.be.a('string').and.not.empty;
  });

  it('fewer_than_two_bytes_is_a_violation_not_an_ack', () => {
    expect(parseCtrlCommand(new Uint8Array(0))).to.deep.equal({ kind: 'violation', code: 'ctrl.missing-header', length: 0 });
    expect(parseCtrlCommand(Uint8Array.of(0))).to.deep.equal({ kind: 'violation', code: 'ctrl.missing-header', length: 1 });
  });

  it('random_chains_never_throw_and_a_refused_command_changes_nothing', () => {
    fc.assert(
      fc.property(fc.array(randomPayload(), { minLength: 1, maxLength: 8 }), fc.boolean(), (payloads, strict) => {
        const h = harness({ strict });
        h.state.announcePending = true;
        for (const p of payloads) {
          const snapshot = (): string =>
            JSON.stringify([queryRxFilter(h.state.rxFilter, 'nic0'), h.state.announcePending, h.state.queuePairs, String(h.state.guestOffloads)]);
          const before = snapshot();
          const out = h.runRaw(p);
          if (out.kind === 'violation') {
            expect(p.length).to.be.below(2);
            continue;
          }
          expect([CtrlAck.OK, CtrlAck.ERR]).to.include(out.ack);
          if (out.ack === CtrlAck.ERR) {
            expect(snapshot()).to.equal(before);
            expect(out.rxFilterChanged).to.equal(false);
            expect(out.diagnostics.length).to.be.greaterThan(0);
          }
          if (strict && out.ack === CtrlAck.OK) expect(out.diagnostics).to.be.empty;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the_device_path_parse_reuses_one_value_per_kind_and_reads_the_same_as_the_fresh_parse', () => {
    // handleCtrl's parse (no allocation per command) must answer exactly what parseCtrlCommand does.
    fc.assert(
      fc.property(fc.array(randomPayload(), { minLength: 1, maxLength: 8 }), (payloads) => {
        const fresh = payloads.map((p) => parseCtrlCommand(p));
        const copies = fresh.map((v) => structuredClone(v));
        for (let i = 0; i < payloads.length; i++) expect(parseCtrlCommandReused(payloads[i]!)).to.deep.equal(fresh[i]);
        // The fresh values are the caller's: later reused parses did not touch them.
        expect(fresh).to.deep.equal(copies);
      }),
      { numRuns: 300 },
    );
    const a = parseCtrlCommandReused(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 1));
    const b = parseCtrlCommandReused(ctrl(CtrlClass.RX, CtrlRx.ALLMULTI, 0));
    expect(b).to.equal(a);
    expect(b).to.deep.equal({ kind: 'rx-mode', ctrlClass: CtrlClass.RX, command: CtrlRx.ALLMULTI, value: 0, trailing: 0 });
    expect(parseCtrlCommand(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 1))).to.not.equal(parseCtrlCommand(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 1)));
  });
});
