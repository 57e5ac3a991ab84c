import { expect } from 'chai';
import { CtrlClass, CtrlMac, CtrlRx, CtrlVlan } from '../../../devices/virtio-net/constants.js';
import { parseMac } from '../../../devices/virtio-net/mac.js';
import { RxFilterState } from '../../../devices/virtio-net/rx-filter.js';
import { queryRxFilter, type RxFilterInfo } from '../../../devices/virtio-net/rx-filter-query.js';
import { ctrl, harness, le16, mac, macTableSet } from './ctrl-fixtures.js';
import { rxFilterInfo } from '../../support/rx-filter-info.js';

/** QEMU 7.2's RxFilterInfo schema order (qapi/net.json), which its JSON reply follows. */
const QEMU_FIELD_ORDER = [
  'name',
  'promiscuous',
  'multicast',
  'unicast',
  'vlan',
  'broadcast-allowed',
  'multicast-overflow',
  'unicast-overflow',
  'main-mac',
  'vlan-table',
  'unicast-table',
  'multicast-table',
];

/** A state as a Linux guest leaves it: promisc off, two table entries each, VLANs 0, 5, 100. */
function configured(): ReturnType<typeof harness> {
  const h = harness();
  h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0));
  h.run(macTableSet(['02:00:00:00:00:01', '02:00:00:00:00:02'], ['01:00:5e:00:00:01', '33:33:00:00:00:01']));
  for (const vid of [100, 0, 5]) h.run(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(vid)));
  return h;
}

describe('devices/virtio-net/rx-filter-query', () => {
  it('fresh_device_reports_promiscuous_and_allow_all_vlans', () => {
    const s = new RxFilterState(parseMac('52:54:00:AB:CD:EF'));
    const q = queryRxFilter(s, 'nic0');
    const vlanTable = q['vlan-table'];
    expect({ ...q, 'vlan-table': undefined }).to.deep.equal({
      name: 'nic0',
      promiscuous: true,
      multicast: 'normal',
      unicast: 'normal',
      vlan: 'all',
      'broadcast-allowed': true,
      'multicast-overflow': false,
      'unicast-overflow': false,
      'main-mac': '52:54:00:ab:cd:ef',
      'vlan-table': undefined,
      'unicast-table': [],
      'multicast-table': [],
    });
    // CTRL_VLAN not negotiated: the table lets every id through, and lists every id.
    expect(vlanTable).to.have.length(4096);
    expect(vlanTable.slice(0, 3)).to.deep.equal([0, 1, 2]);
    expect(vlanTable[4095]).to.equal(4095);
    expect(queryRxFilter(s, 'nic0', 'qemu')['vlan-table'].slice(0, 2)).to.deep.equal([4095, 4094]);
  });

  it('fields_come_in_qemu_schema_order_in_both_modes', () => {
    const h = configured();
    expect(Object.keys(queryRxFilter(h.state.rxFilter, 'nic0'))).to.deep.equal(QEMU_FIELD_ORDER);
    expect(Object.keys(queryRxFilter(h.state.rxFilter, 'nic0', 'qemu'))).to.deep.equal(QEMU_FIELD_ORDER);
  });

  it('default_mode_reports_guest_order_ascending_vlans_and_broadcast_received', () => {
    const h = configured();
    const q: RxFilterInfo = queryRxFilter(h.state.rxFilter, 'nic0');
    expect(q).to.deep.equal(
      rxFilterInfo({
        name: 'nic0',
        'broadcast-allowed': true,
        'main-mac': '52:54:00:12:34:56',
        'vlan-table': [0, 5, 100],
        'unicast-table': ['02:00:00:00:00:01', '02:00:00:00:00:02'],
        'multicast-table': ['01:00:5e:00:00:01', '33:33:00:00:00:01'],
      }),
    );
  });

  it('qemu_compat_reports_nobcast_as_broadcast_allowed_and_lists_newest_first', () => {
    const h = configured();
    const q = queryRxFilter(h.state.rxFilter, 'nic0', 'qemu');
    expect(q['broadcast-allowed']).to.equal(false); // NOBCAST is off, and QEMU reports the flag itself
    expect(q['vlan-table']).to.deep.equal([100, 5, 0]);
    expect(q['unicast-table']).to.deep.equal(['02:00:00:00:00:02', '02:00:00:00:00:01']);
    expect(q['multicast-table']).to.deep.equal(['33:33:00:00:00:01', '01:00:5e:00:00:01']);
    h.run(ctrl(CtrlClass.RX, CtrlRx.NOBCAST, 1));
    expect(queryRxFilter(h.state.rxFilter, 'nic0', 'qemu')['broadcast-allowed']).to.equal(true);
    expect(queryRxFilter(h.state.rxFilter, 'nic0')['broadcast-allowed']).to.equal(false);
  });

  it('unicast_and_multicast_states_follow_no_then_all_then_normal', () => {
    const h = harness();
    const states = () => {
      const q = queryRxFilter(h.state.rxFilter, 'nic0');
      return [q.unicast, q.multicast];
    };
    expect(states()).to.deep.equal(['normal', 'normal']);
    h.run(ctrl(CtrlClass.RX, CtrlRx.ALLUNI, 1));
    h.run(ctrl(CtrlClass.RX, CtrlRx.ALLMULTI, 1));
    expect(states()).to.deep.equal(['all', 'all']);
    h.run(ctrl(CtrlClass.RX, CtrlRx.NOUNI, 1));
    h.run(ctrl(CtrlClass.RX, CtrlRx.NOMULTI, 1));
    expect(states()).to.deep.equal(['none', 'none']); // NO… wins over ALL…
  });

  it('vlan_state_is_none_when_ctrl_vlan_is_negotiated_and_the_table_is_empty', () => {
    const h = harness();
    expect(queryRxFilter(h.state.rxFilter, 'nic0').vlan).to.equal('none');
    expect(queryRxFilter(h.state.rxFilter, 'nic0')['vlan-table']).to.deep.equal([]);
    h.run(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(4095)));
    expect(queryRxFilter(h.state.rxFilter, 'nic0').vlan).to.equal('normal');
    expect(queryRxFilter(h.state.rxFilter, 'nic0')['vlan-table']).to.deep.equal([4095]);
  });

  it('overflow_flags_and_main_mac_are_reported', () => {
    const h = harness();
    h.run(ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('02:AB:CD:EF:00:01')));
    const uni = Array.from({ length: 65 }, (_, i) => `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`);
    h.run(macTableSet(uni, ['01:00:5e:00:00:01']));
    const q = queryRxFilter(h.state.rxFilter, 'nic0', 'qemu');
    expect(q['main-mac']).to.equal('02:ab:cd:ef:00:01');
    expect(q['unicast-overflow']).to.equal(true);
    expect(q['multicast-overflow']).to.equal(false);
    expect(q['unicast-table']).to.deep.equal([]);
    expect(q['multicast-table']).to.deep.equal(['01:00:5e:00:00:01']);
  });

  it('query_is_a_pure_derivation_and_does_not_touch_the_latch', () => {
    const h = configured();
    expect(h.latch.armed).to.equal(false);
    const a = JSON.stringify(queryRxFilter(h.state.rxFilter, 'nic0'));
    expect(JSON.stringify(queryRxFilter(h.state.rxFilter, 'nic0'))).to.equal(a);
    expect(h.latch.armed).to.equal(false);
  });
});
