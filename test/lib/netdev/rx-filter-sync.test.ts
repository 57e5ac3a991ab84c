import { expect } from 'chai';
import { planHostFilter } from '../../../lib/netdev/rx-filter-sync.js';
import { tunOffloadBits } from '../../../lib/netdev/offload-bits.js';
import type { RxFilterSnapshot } from '../../../lib/netdev/netdev.js';
import { rxFilterInfo } from '../../support/rx-filter-info.js';
import { NetRig, macTable } from '../../support/net-rig.js';
import { CtrlClass, CtrlMac, CtrlRx, CtrlVlan } from '../../../devices/virtio-net/constants.js';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_UFO } from '../../../lib/host/structs.js';

function filter(over: Partial<RxFilterSnapshot> = {}): RxFilterSnapshot {
  return rxFilterInfo(over);
}

describe('lib/netdev/rx-filter-sync plan (the libvirt rules)', () => {
  it('quiet_guest_gets_its_mac_and_no_flags', () => {
    expect(planHostFilter(filter())).to.deep.equal({ mac: '52:54:00:12:34:56', promisc: false, allmulti: false, multicastFlag: true, multicast: [], unicast: [] });
  });

  it('promiscuous_guest_makes_the_link_promiscuous', () => {
    expect(planHostFilter(filter({ promiscuous: true })).promisc).to.equal(true);
  });

  it('a_vlan_other_than_0_makes_the_link_promiscuous_vlan_0_alone_does_not', () => {
    expect(planHostFilter(filter({ 'vlan-table': [0] })).promisc).to.equal(false);
    expect(planHostFilter(filter({ 'vlan-table': [0, 5] })).promisc).to.equal(true);
    // Without CTRL_VLAN the table is allow-all: macvtap passes tagged frames to our MAC anyway.
    expect(planHostFilter(filter({ vlan: 'all', 'vlan-table': [1, 2, 3] })).promisc).to.equal(false);
  });

  it('unicast_all_or_overflow_keeps_the_host_a_superset_with_promisc', () => {
    expect(planHostFilter(filter({ unicast: 'all' })).promisc).to.equal(true);
    expect(planHostFilter(filter({ 'unicast-overflow': true })).promisc).to.equal(true);
  });

  it('multicast_all_or_overflow_sets_allmulti', () => {
    expect(planHostFilter(filter({ multicast: 'all' }))).to.include({ allmulti: true, multicastFlag: true });
    expect(planHostFilter(filter({ 'multicast-overflow': true }))).to.include({ allmulti: true, multicastFlag: true });
  });

  it('multicast_none_clears_allmulti_and_the_multicast_flag_and_keeps_the_guest_list', () => {
    const none = planHostFilter(filter({ multicast: 'none', 'multicast-overflow': true, 'multicast-table': ['01:00:5e:00:00:fb'] }));
    expect(none).to.include({ allmulti: false, multicastFlag: false });
    expect(none.multicast).to.deep.equal(['01:00:5e:00:00:fb']);
    expect(planHostFilter(filter({ multicast: 'normal', 'multicast-table': ['01:00:5e:00:00:fb'] }))).to.include({ allmulti: false, multicastFlag: true });
  });

  it('tables_are_lower_cased_and_deduplicated', () => {
    const p = planHostFilter(filter({ 'main-mac': '52:54:00:AB:CD:EF', 'multicast-table': ['01:00:5E:00:00:FB', '01:00:5e:00:00:fb'], 'unicast-table': ['52:54:00:00:00:02'] }));
    expect(p.mac).to.equal('52:54:00:ab:cd:ef');
    expect(p.multicast).to.deep.equal(['01:00:5e:00:00:fb']);
    expect(p.unicast).to.deep.equal(['52:54:00:00:00:02']);
  });

  it('the_plan_follows_a_real_devices_query_reply', () => {
    const rig = new NetRig();
    rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]);
    rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable(['52:54:00:00:00:09'], ['33:33:00:00:00:01']));
    rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, [7, 0]);
    const p = planHostFilter(rig.device.queryRxFilter());
    expect(p).to.deep.equal({ mac: rig.device.mac, promisc: true, allmulti: false, multicastFlag: true, multicast: ['33:33:00:00:00:01'], unicast: ['52:54:00:00:00:09'] });
  });
});

describe('lib/netdev/offload-bits', () => {
  it('guest_offloads_map_to_tun_bits_and_nothing_without_csum', () => {
    expect(tunOffloadBits({ csum: false, tso4: true, tso6: true, ecn: true, ufo: true })).to.equal(0);
    expect(tunOffloadBits({ csum: true, tso4: false, tso6: false, ecn: true, ufo: false })).to.equal(TUN_F_CSUM);
    expect(tunOffloadBits({ csum: true, tso4: true, tso6: true, ecn: true, ufo: true })).to.equal(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO);
  });
});
