import { expect } from 'chai';
import { CtrlAck, CtrlClass, CtrlMac, CtrlRx, MAC_TABLE_ENTRIES } from '../../../devices/virtio-net/constants.js';
import { parseCtrlCommand } from '../../../devices/virtio-net/ctrl-command.js';
import { queryRxFilter } from '../../../devices/virtio-net/rx-filter-query.js';
import { ctrl, harness, le32, mac, macTableSet, macs } from './ctrl-fixtures.js';

type Harness = ReturnType<typeof harness>;

/** The reported table, for "state unchanged" comparisons. */
function table(h: Harness) {
  const q = queryRxFilter(h.state.rxFilter, 'nic0');
  return {
    uni: q['unicast-table'],
    multi: q['multicast-table'],
    uniOverflow: q['unicast-overflow'],
    multiOverflow: q['multicast-overflow'],
  };
}

/** A harness whose latch is already spent by an earlier table, so an event would show up as a re-fire. */
function withCommittedTable(): { h: Harness; committed: ReturnType<typeof table> } {
  const h = harness();
  expect(h.run(macTableSet(['02:00:00:00:00:aa'], ['01:00:5e:00:00:01'])).ack).to.equal(CtrlAck.OK);
  h.latch.rearm();
  return { h, committed: table(h) };
}

function expectRefusedUnchanged(h: Harness, committed: ReturnType<typeof table>, payload: Uint8Array, fault?: string): void {
  const eventsBefore = h.events;
  const o = h.run(payload);
  expect(o.ack).to.equal(CtrlAck.ERR);
  expect(o.rxFilterChanged).to.equal(false);
  expect(o.diagnostics[0]?.code).to.equal('ctrl.mac-table-malformed');
  if (fault !== undefined) expect(o.diagnostics[0]?.fault).to.equal(fault);
  expect(table(h)).to.deep.equal(committed);
  expect(h.events).to.equal(eventsBefore);
  expect(h.latch.armed).to.equal(true);
}

describe('devices/virtio-net/mac-table-set (§5.1.6.5.2)', () => {
  it('table_set_keeps_both_lists_in_guest_order', () => {
    const h = harness();
    const o = h.run(macTableSet(['02:00:00:00:00:02', '02:00:00:00:00:01'], ['33:33:00:00:00:01', '01:00:5e:00:00:01', '01:00:5e:7f:ff:fa']));
    expect(o.ack).to.equal(CtrlAck.OK);
    expect(o.rxFilterChanged).to.equal(true);
    expect(table(h)).to.deep.equal({
      uni: ['02:00:00:00:00:02', '02:00:00:00:00:01'],
      multi: ['33:33:00:00:00:01', '01:00:5e:00:00:01', '01:00:5e:7f:ff:fa'],
      uniOverflow: false,
      multiOverflow: false,
    });
  });

  it('table_set_replaces_the_whole_previous_table', () => {
    const { h } = withCommittedTable();
    expect(h.run(macTableSet([], ['01:00:5e:00:00:fb'])).ack).to.equal(CtrlAck.OK);
    expect(table(h)).to.deep.equal({ uni: [], multi: ['01:00:5e:00:00:fb'], uniOverflow: false, multiOverflow: false });
    expect(h.run(macTableSet([], [])).ack).to.equal(CtrlAck.OK);
    expect(table(h)).to.deep.equal({ uni: [], multi: [], uniOverflow: false, multiOverflow: false });
  });

  it('table_set_with_64_unicast_entries_fits', () => {
    const h = harness();
    expect(h.run(macTableSet(macs(MAC_TABLE_ENTRIES, 'unicast'), [])).ack).to.equal(CtrlAck.OK);
    expect(table(h).uni).to.have.length(MAC_TABLE_ENTRIES);
    expect(table(h).uniOverflow).to.equal(false);
  });

  it('unicast_overflow_at_65_keeps_no_unicast_entry_and_still_reads_the_multicast_list', () => {
    // QEMU skips the N_uni × 6 unicast bytes even when it keeps none of them: it must, to find N_multi.
    const h = harness();
    const multi = macs(MAC_TABLE_ENTRIES, 'multicast');
    const o = h.run(macTableSet(macs(65, 'unicast'), multi));
    expect(o.ack).to.equal(CtrlAck.OK);
    expect(table(h)).to.deep.equal({ uni: [], multi, uniOverflow: true, multiOverflow: false });
  });

  it('multicast_overflow_at_60_plus_5_keeps_the_unicast_entries_and_no_multicast_entry', () => {
    const h = harness();
    const uni = macs(60, 'unicast');
    expect(h.run(macTableSet(uni, macs(5, 'multicast'))).ack).to.equal(CtrlAck.OK);
    expect(table(h)).to.deep.equal({ uni, multi: [], uniOverflow: false, multiOverflow: true });
    // 60 + 4 fills the shared 64 entries exactly.
    const multi = macs(4, 'multicast');
    expect(h.run(macTableSet(uni, multi)).ack).to.equal(CtrlAck.OK);
    expect(table(h)).to.deep.equal({ uni, multi, uniOverflow: false, multiOverflow: false });
  });

  it('both_lists_overflowing_sets_both_flags', () => {
    const h = harness();
    expect(h.run(macTableSet(macs(100, 'unicast'), macs(65, 'multicast'))).ack).to.equal(CtrlAck.OK);
    expect(table(h)).to.deep.equal({ uni: [], multi: [], uniOverflow: true, multiOverflow: true });
  });

  it('unicast_count_shorter_than_4_bytes_is_malformed_and_changes_nothing', () => {
    const { h, committed } = withCommittedTable();
    for (const n of [0, 1, 2, 3]) expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, new Array<number>(n).fill(0)), 'uni-count-short');
  });

  it('unicast_entries_past_the_end_are_malformed_and_change_nothing', () => {
    const { h, committed } = withCommittedTable();
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(2), mac('02:00:00:00:00:01')), 'uni-entries-short');
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(1), 2, 0, 0), 'uni-entries-short');
  });

  it('multicast_count_missing_is_malformed_and_changes_nothing', () => {
    const { h, committed } = withCommittedTable();
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(1), mac('02:00:00:00:00:01')), 'multi-count-short');
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(0), 0, 0, 0), 'multi-count-short');
  });

  it('multicast_entries_not_ending_exactly_at_the_end_are_malformed_and_change_nothing', () => {
    const { h, committed } = withCommittedTable();
    // One entry short, one byte short, and one byte too many.
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(0), le32(2), mac('01:00:5e:00:00:01')), 'multi-entries-mismatch');
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(0), le32(1), 1, 0, 0x5e, 0, 0), 'multi-entries-mismatch');
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(0), le32(1), mac('01:00:5e:00:00:01'), 0), 'multi-entries-mismatch');
  });

  it('unicast_count_that_wraps_32_bit_arithmetic_is_refused_not_wrapped', () => {
    // 0x2aaaaaab × 6 = 0x1_0000_0002: QEMU 7.2's uint32 product wraps to 2, passes its length check
    // and reads N_multi two bytes later. Here the exact product is used and the table is refused.
    const { h, committed } = withCommittedTable();
    const payload = ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(0x2aaaaaab), 0, 0, le32(0));
    expectRefusedUnchanged(h, committed, payload, 'count-overflow');
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(0), le32(0x2aaaaaab), 0, 0), 'count-overflow');
    expectRefusedUnchanged(h, committed, ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, le32(0xffffffff), le32(0)), 'count-overflow');
  });

  it('truncation_at_every_byte_is_refused_and_changes_nothing', () => {
    const full = macTableSet(['02:00:00:00:00:01', '02:00:00:00:00:02'], ['01:00:5e:00:00:01', '33:33:00:00:00:01']);
    const { h, committed } = withCommittedTable();
    for (let length = 2; length < full.length; length++) {
      expectRefusedUnchanged(h, committed, full.subarray(0, length));
    }
    expect(h.run(full).ack).to.equal(CtrlAck.OK); // and the same state still takes a good table
    expect(table(h).uni).to.deep.equal(['02:00:00:00:00:01', '02:00:00:00:00:02']);
  });

  it('table_set_parses_without_reading_the_overflowed_unicast_entries', () => {
    const payload = macTableSet(macs(65, 'unicast'), ['01:00:5e:00:00:01']);
    const parsed = parseCtrlCommand(payload);
    expect(parsed).to.include({ kind: 'mac-table-set', uniDeclared: 65, uniKept: 0, uniOverflow: true, multiDeclared: 1, multiKept: 1 });
    expect(parsed).to.have.property('multiOffset', 2 + 4 + 65 * 6 + 4);
  });

  it('group_address_in_the_unicast_list_is_kept_like_qemu_and_reported', () => {
    const h = harness();
    const o = h.run(macTableSet(['01:00:5e:00:00:01'], ['02:00:00:00:00:01']));
    expect(o.ack).to.equal(CtrlAck.OK);
    expect(table(h).uni).to.deep.equal(['01:00:5e:00:00:01']);
    expect(o.diagnostics.map((d) => [d.code, d.tolerated])).to.deep.equal([
      ['ctrl.mac-table-wrong-kind', true],
      ['ctrl.mac-table-wrong-kind', true],
    ]);
  });

  it('group_address_in_the_unicast_list_is_err_in_strict_mode_and_keeps_the_old_table', () => {
    const h = harness({ strict: true });
    expect(h.run(macTableSet(['02:00:00:00:00:aa'], [])).ack).to.equal(CtrlAck.OK);
    const committed = table(h);
    const o = h.run(macTableSet(['02:00:00:00:00:01', '01:00:5e:00:00:01'], []));
    expect(o.ack).to.equal(CtrlAck.ERR);
    expect(o.diagnostics[0]).to.include({ code: 'ctrl.mac-table-wrong-kind', section: '5.1.6.5.2.2' });
    expect(table(h)).to.deep.equal(committed);
    const o2 = h.run(macTableSet([], ['02:00:00:00:00:01']));
    expect(o2.ack).to.equal(CtrlAck.ERR);
    expect(table(h)).to.deep.equal(committed);
  });

  it('linux_burst_promisc_allmulti_table_set_fires_one_event_until_a_query', () => {
    const h = harness();
    // What Linux 6.1 sends on `ip link set eth0 up` (REAL-GUEST.md).
    expect(h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0)).ack).to.equal(CtrlAck.OK);
    expect(h.run(ctrl(CtrlClass.RX, CtrlRx.ALLMULTI, 0)).ack).to.equal(CtrlAck.OK);
    expect(h.run(macTableSet([], ['01:00:5e:00:00:01', '33:33:00:00:00:01'])).ack).to.equal(CtrlAck.OK);
    expect(h.events).to.equal(1);
    h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 1));
    expect(h.events).to.equal(1);
    queryRxFilter(h.state.rxFilter, 'nic0');
    h.latch.rearm(); // the device re-arms on every query
    h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 1)); // a no-op change still counts
    expect(h.events).to.equal(2);
  });
});
