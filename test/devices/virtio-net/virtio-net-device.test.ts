import { expect } from 'chai';
import sinon from 'sinon';
import { NetRig, ethFrame, macTable } from '../../support/net-rig.js';
import { CtrlClass, CtrlMac, CtrlRx, CtrlVlan, CtrlAck } from '../../../devices/virtio-net/constants.js';

const MAIN = '52:54:00:12:34:56';

describe('devices/virtio-net/virtio-net-device', () => {
  it('linux_link_up_burst_fires_one_rx_filter_changed_event', () => {
    const rig = new NetRig({ mac: MAIN });
    expect(rig.init!.ok).to.equal(true);
    const spy = sinon.spy();
    rig.device.on('rx-filter-changed', spy);
    expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0])).to.equal(CtrlAck.OK);
    expect(rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [0])).to.equal(CtrlAck.OK);
    expect(rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], ['01:00:5e:00:00:01']))).to.equal(CtrlAck.OK);
    expect(spy.callCount).to.equal(1);
    expect(spy.firstCall.args[0]).to.deep.equal({ name: 'nic0', path: '/machine/peripheral/nic0/virtio-backend' });
    const info = rig.device.queryRxFilter();
    expect(info.promiscuous).to.equal(false);
    expect(info['multicast-table']).to.deep.equal(['01:00:5e:00:00:01']);
    expect(info['main-mac']).to.equal(MAIN);
    expect(rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, [5, 0])).to.equal(CtrlAck.OK);
    expect(spy.callCount).to.equal(2);
    expect(rig.device.queryRxFilter()['vlan-table']).to.deep.equal([5]);
  });

  it('a_throwing_rx_filter_changed_listener_does_not_break_the_device', async () => {
    const rig = new NetRig({ mac: MAIN });
    const thrown = new Promise<unknown>((resolve) => {
      const saved = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.once('uncaughtException', (e) => {
        for (const l of saved) process.on('uncaughtException', l);
        resolve(e);
      });
    });
    const after = sinon.spy();
    rig.device.on('rx-filter-changed', () => {
      throw new Error('embedder bug');
    });
    rig.device.on('rx-filter-changed', after);
    expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [1])).to.equal(CtrlAck.OK);
    expect(after.callCount).to.equal(1);
    expect(rig.device.status & 0x40).to.equal(0); // no DEVICE_NEEDS_RESET
    expect(rig.device.diagnosticCount('device.hook-threw')).to.equal(0);
    expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0])).to.equal(CtrlAck.OK);
    expect(rig.device.queryRxFilter().promiscuous).to.equal(false);
    expect(((await thrown) as Error).message).to.equal('embedder bug'); // reported outside the device
  });

  it('tx_frame_reaches_the_netdev_with_the_header_stripped', () => {
    const rig = new NetRig();
    const frame = ethFrame('ff:ff:ff:ff:ff:ff');
    const used = rig.send(frame);
    expect(used).to.deep.include({ len: 0 });
    expect(rig.transmitted).to.have.length(1);
    expect([...rig.transmitted[0]!]).to.deep.equal([...frame]);
    const used2 = rig.send(frame, { split: 'header-apart' });
    expect(used2).to.not.equal(undefined);
    expect(rig.transmitted).to.have.length(2);
    expect(rig.device.stats().tx.frames).to.equal(2);
  });

  it('rx_filter_drops_unicast_to_other_macs_without_using_a_buffer', () => {
    const rig = new NetRig({ mac: MAIN });
    rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]);
    rig.postRx(4);
    expect(rig.inject(ethFrame('52:54:00:99:99:99'))).to.equal(true);
    expect(rig.received()).to.have.length(0);
    expect(rig.device.stats().rx.drops.unicast).to.equal(1);
    const frame = ethFrame(MAIN);
    rig.inject(frame);
    const got = rig.received();
    expect(got).to.have.length(1);
    expect([...got[0]!.frame]).to.deep.equal([...frame]);
    expect(got[0]!.header[10]).to.equal(1); // num_buffers
  });

  it('frames_wait_for_rx_buffers_and_arrive_when_posted', () => {
    const rig = new NetRig({ mac: MAIN });
    for (let i = 0; i < 3; i++) expect(rig.inject(ethFrame(MAIN, undefined, { payload: 50 + i }))).to.equal(true);
    expect(rig.device.stats().rx.backlog).to.equal(3);
    rig.postRx(2);
    expect(rig.received().map((r) => r.frame.length)).to.deep.equal([64, 65]);
    rig.postRx(2);
    expect(rig.received().map((r) => r.frame.length)).to.deep.equal([66]);
    expect(rig.device.stats().rx.backlog).to.equal(0);
  });

  it('ctrl_chain_without_ack_descriptor_needs_reset', () => {
    const rig = new NetRig();
    const r = rig.ctrlCommand([[CtrlClass.RX, CtrlRx.PROMISC], [0]], 0);
    expect(r.used).to.equal(undefined);
    expect(rig.device.status & 0x40).to.equal(0x40);
    expect(rig.device.diagnosticCount('ctrl.missing-ack')).to.equal(1);
    rig.start((1n << 64n) - 1n);
    expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0])).to.equal(CtrlAck.OK);
  });
});
