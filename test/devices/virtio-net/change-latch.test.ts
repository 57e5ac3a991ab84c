import { expect } from 'chai';
import { ChangeLatch, rxFilterChangedEvent } from '../../../devices/virtio-net/change-latch.js';
import {
  CtrlAck,
  CtrlAnnounce,
  CtrlClass,
  CtrlGuestOffloads,
  CtrlMac,
  CtrlMq,
  CtrlRx,
  CtrlVlan,
  NetFeature,
  featureMask,
} from '../../../devices/virtio-net/constants.js';
import { ctrl, harness, le16, le64, mac, macTableSet } from './ctrl-fixtures.js';

describe('devices/virtio-net/change-latch', () => {
  it('latch_is_armed_at_creation_fires_once_and_rearms_on_query', () => {
    const latch = new ChangeLatch();
    expect(latch.armed).to.equal(true);
    expect(latch.trigger()).to.equal(true);
    expect(latch.armed).to.equal(false);
    expect(latch.trigger()).to.equal(false);
    expect(latch.trigger()).to.equal(false);
    latch.rearm();
    latch.rearm();
    expect(latch.trigger()).to.equal(true);
    expect(latch.trigger()).to.equal(false);
  });

  it('event_payload_names_the_device_and_its_qom_path', () => {
    expect(rxFilterChangedEvent('nic0')).to.deep.equal({ name: 'nic0', path: '/machine/peripheral/nic0/virtio-backend' });
  });

  for (const [what, payload] of [
    ['rx', ctrl(CtrlClass.RX, CtrlRx.ALLUNI, 0)],
    ['mac_addr_set', ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('52:54:00:12:34:56'))],
    ['mac_table_set', macTableSet([], [])],
    ['vlan_add', ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(0))],
    ['vlan_del', ctrl(CtrlClass.VLAN, CtrlVlan.DEL, le16(0))],
  ] as const) {
    it(`successful_${what}_counts_as_a_change_even_when_it_changes_nothing`, () => {
      const h = harness();
      const o = h.run(payload);
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(o.rxFilterChanged).to.equal(true);
      expect(h.events).to.equal(1);
    });
  }

  it('announce_mq_and_offloads_never_fire', () => {
    const h = harness();
    h.state.announcePending = true;
    for (const payload of [
      ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK),
      ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2)),
      ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(featureMask(NetFeature.GUEST_CSUM))),
    ]) {
      const o = h.run(payload);
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(o.rxFilterChanged).to.equal(false);
    }
    expect(h.events).to.equal(0);
    expect(h.latch.armed).to.equal(true);
  });

  it('refused_rx_filter_commands_never_fire', () => {
    const h = harness();
    for (const payload of [
      ctrl(CtrlClass.RX, CtrlRx.PROMISC),
      ctrl(CtrlClass.RX, CtrlRx.NOBCAST + 1, 1),
      ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, 1, 2, 3),
      ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, 0, 0),
      ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(4096)),
    ]) {
      expect(h.run(payload).ack).to.equal(CtrlAck.ERR);
    }
    expect(h.events).to.equal(0);
    expect(h.latch.armed).to.equal(true);
  });

  it('device_reset_neither_fires_nor_rearms', () => {
    const h = harness();
    h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0));
    expect(h.events).to.equal(1);
    h.state.rxFilter.reset();
    expect(h.latch.armed).to.equal(false);
    h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0));
    expect(h.events).to.equal(1);
  });
});
