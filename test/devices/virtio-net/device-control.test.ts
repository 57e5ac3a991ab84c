// The device's host-facing controls and control-queue effects end to end: link status with its
// config interrupt (§5.1.4 status), announce (§5.1.6.5.4), multiqueue (§5.1.6.5.5–§5.1.6.5.6),
// the event latch and both reporting modes through the real control queue, strict mode, the legacy
// config MAC write (§5.1.4.3), MTU (§5.1.4), stats, and options validation.

import { expect } from 'chai';
import sinon from 'sinon';
import { NetRig, ALL_FEATURES, ethFrame, features, le16, macTable } from '../../support/net-rig.js';
import { CtrlAck, CtrlAnnounce, CtrlClass, CtrlMac, CtrlMq, CtrlRx, CtrlVlan, NetStatus } from '../../../devices/virtio-net/constants.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { VirtioNetOptions } from '../../../devices/virtio-net/net-options.js';

const MAIN = '52:54:00:12:34:56';
const ISR_CONFIG = 2;

describe('devices/virtio-net device control', () => {
  describe('link', () => {
    for (const transport of ['mmio', 'pci', 'pci-legacy'] as const) {
      it(`set_link_updates_status_and_raises_a_config_interrupt_${transport}`, () => {
        const rig = new NetRig({ mac: MAIN, transport });
        expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(NetStatus.LINK_UP);
        rig.readIsr();
        const raises = rig.irqRaises;
        rig.device.setLink(false);
        expect(rig.irqLevel).to.equal(true);
        expect(rig.irqRaises).to.equal(raises + 1);
        expect(rig.readIsr() & ISR_CONFIG).to.equal(ISR_CONFIG);
        expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(0);
        expect(rig.device.linkUp).to.equal(false);
        rig.device.setLink(false); // no change, no interrupt
        expect(rig.irqRaises).to.equal(raises + 1);
        rig.device.setLink(true);
        expect(rig.readIsr() & ISR_CONFIG).to.equal(ISR_CONFIG);
        expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(NetStatus.LINK_UP);
        expect(rig.device.stats().interrupts.config).to.equal(2);
      });
    }

    it('set_link_before_driver_ok_raises_no_interrupt_but_status_follows', () => {
      const rig = new NetRig({ mac: MAIN, init: false });
      rig.device.setLink(false);
      expect(rig.irqRaises).to.equal(0);
      rig.start();
      expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(0);
    });

    it('set_link_rejects_a_non_boolean', () => {
      const rig = new NetRig();
      expect(() => rig.device.setLink('up' as unknown as boolean)).to.throw(TypeError, /up must be a boolean/);
    });
  });

  // Announce, multiqueue and the control-queue latch over both ring formats (§2.7 split, §2.8 packed).
  for (const ring of ['split', 'packed'] as const) {
    describe(`${ring} ring`, () => {
      describe('announce', () => {
        it('announce_sets_the_status_bit_and_ack_clears_it', () => {
          const rig = new NetRig({ ring, mac: MAIN });
          rig.readIsr();
          expect(rig.device.announce()).to.equal(true);
          expect(rig.readIsr() & ISR_CONFIG).to.equal(ISR_CONFIG);
          expect(rig.readLinkStatus()).to.equal(NetStatus.LINK_UP | NetStatus.ANNOUNCE);
          const spy = sinon.spy();
          rig.device.on('rx-filter-changed', spy);
          expect(rig.cmd(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK)).to.equal(CtrlAck.OK);
          expect(rig.readLinkStatus()).to.equal(NetStatus.LINK_UP);
          expect(rig.cmd(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK)).to.equal(CtrlAck.ERR);
          expect(spy.callCount).to.equal(0); // announce never fires the rx-filter event
          expect(rig.device.stats().ctrl.byClass['announce']).to.deep.equal({ ok: 1, err: 1 });
        });

        it('announce_without_guest_announce_negotiated_does_nothing', () => {
          const rig = new NetRig({ ring, mac: MAIN, features: { disable: ['GUEST_ANNOUNCE'] } });
          expect(rig.device.announce()).to.equal(false);
          expect(rig.readLinkStatus()).to.equal(NetStatus.LINK_UP);
          const idle = new NetRig({ ring, mac: MAIN, init: false });
          expect(idle.device.announce()).to.equal(false);
        });

        it('reset_clears_a_pending_announce', () => {
          const rig = new NetRig({ ring, mac: MAIN });
          rig.device.announce();
          rig.start();
          expect(rig.readLinkStatus()).to.equal(NetStatus.LINK_UP);
        });
      });

      describe('multiqueue', () => {
        it('only_pair_0_transmits_until_vq_pairs_set_enables_more', () => {
          const rig = new NetRig({ ring, mac: MAIN, queuePairs: 2 });
          expect(rig.has('MQ')).to.equal(true);
          expect(rig.ctrlIndex).to.equal(4);
          expect(rig.driver.readConfig(8, 2)).to.equal(2); // max_virtqueue_pairs
          const f = ethFrame(MAIN, undefined, { fill: 3 });
          expect(rig.send(f, { queue: 3 })).to.equal(undefined);
          expect(rig.device.diagnosticCount('tx.queue-inactive')).to.equal(1);
          expect(rig.device.diagnostics().at(-1)).to.deep.include({ section: '5.1.6.5.6.1', queue: 3 });
          expect(rig.transmitted).to.have.length(0);
          expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2))).to.equal(CtrlAck.OK);
          expect(rig.device.activeQueuePairs).to.equal(2);
          // The waiting chain went out when its pair became active.
          expect(rig.ringAt(3).takeUsed()).to.have.length(1);
          expect([...rig.transmitted[0]!]).to.deep.equal([...f]);
          expect(rig.send(f, { queue: 3 })).to.deep.include({ len: 0 });
          expect(rig.transmitted).to.have.length(2);
          expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(3))).to.equal(CtrlAck.ERR);
          expect(rig.device.diagnosticCount('ctrl.mq-pairs-out-of-range')).to.equal(1);
          expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(1))).to.equal(CtrlAck.OK);
          expect(rig.send(f, { queue: 3 })).to.equal(undefined);
          expect(rig.device.diagnosticCount('tx.queue-inactive')).to.equal(2);
          expect(rig.send(f, { queue: 1 })).to.deep.include({ len: 0 });
        });

        it('received_frames_go_to_receiveq1_whatever_the_active_pairs', () => {
          const rig = new NetRig({ ring, mac: MAIN, queuePairs: 2 });
          rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2));
          rig.postRx(2, 1600, { queue: 2 });
          rig.inject(ethFrame(MAIN));
          expect(rig.received(12, 2)).to.have.length(0);
          expect(rig.device.stats().rx.backlog).to.equal(1);
          rig.postRx(1, 1600);
          expect(rig.received()).to.have.length(1);
        });

        it('vq_pairs_set_without_mq_is_refused', () => {
          const rig = new NetRig({ ring, mac: MAIN, queuePairs: 2, init: false });
          rig.start(ALL_FEATURES & ~features(['MQ']));
          expect(rig.ctrlIndex).to.equal(2);
          expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(1))).to.equal(CtrlAck.ERR);
          expect(rig.device.diagnosticCount('ctrl.feature-not-negotiated')).to.equal(1);
        });

        it('reset_returns_to_one_pair', () => {
          const rig = new NetRig({ ring, mac: MAIN, queuePairs: 4 });
          rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(4));
          expect(rig.device.activeQueuePairs).to.equal(4);
          rig.start();
          expect(rig.device.activeQueuePairs).to.equal(1);
          expect(rig.send(ethFrame(MAIN), { queue: 5 })).to.equal(undefined);
          expect(rig.device.diagnosticCount('tx.queue-inactive')).to.equal(1);
        });
      });

      describe('event latch and reporting through the control queue', () => {
        it('linux_burst_fires_once_and_again_only_after_a_query', () => {
          const rig = new NetRig({ ring, mac: MAIN });
          const spy = sinon.spy();
          rig.device.on('rx-filter-changed', spy);
          rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]);
          rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [0]);
          rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], ['01:00:5e:00:00:01', '33:33:00:00:00:01']));
          rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, le16(0));
          expect(spy.callCount).to.equal(1);
          expect(spy.firstCall.args[0]).to.deep.equal({ name: 'nic0', path: '/machine/peripheral/nic0/virtio-backend' });
          rig.device.queryRxFilter();
          rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, le16(5));
          expect(spy.callCount).to.equal(2);
          // Refused commands, MQ and announce never fire.
          rig.device.queryRxFilter();
          rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, le16(5000));
          rig.device.announce();
          rig.cmd(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK);
          rig.start(); // reset does not fire either
          expect(spy.callCount).to.equal(2);
        });

        it('default_and_qemu_reporting_modes_over_the_same_commands', () => {
          const run = (compat?: 'qemu'): ReturnType<VirtioNetDevice['queryRxFilter']> => {
            const rig = new NetRig({ ring, mac: MAIN, ...(compat === undefined ? {} : { compat }) });
            rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]);
            rig.cmd(CtrlClass.RX, CtrlRx.NOBCAST, [1]);
            rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable(['02:00:00:00:00:01', '02:00:00:00:00:02'], ['01:00:5e:00:00:01', '01:00:5e:00:00:02']));
            rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, le16(7));
            rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, le16(3));
            return rig.device.queryRxFilter();
          };
          const plain = run();
          expect(plain).to.deep.include({ 'broadcast-allowed': false, vlan: 'normal', promiscuous: false });
          expect(plain['vlan-table']).to.deep.equal([3, 7]);
          expect(plain['unicast-table']).to.deep.equal(['02:00:00:00:00:01', '02:00:00:00:00:02']);
          const qemu = run('qemu');
          expect(qemu['broadcast-allowed']).to.equal(true); // QEMU reports the NOBCAST flag here
          expect(qemu['vlan-table']).to.deep.equal([7, 3]);
          expect(qemu['unicast-table']).to.deep.equal(['02:00:00:00:00:02', '02:00:00:00:00:01']);
          expect(qemu['multicast-table']).to.deep.equal(['01:00:5e:00:00:02', '01:00:5e:00:00:01']);
        });

        it('mac_addr_set_changes_config_mac_and_the_filter_before_the_ack', () => {
          const rig = new NetRig({ ring, mac: MAIN });
          rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]);
          expect(rig.cmd(CtrlClass.MAC, CtrlMac.ADDR_SET, [0x02, 0, 0, 0, 0, 0x42])).to.equal(CtrlAck.OK);
          expect(rig.readMac()).to.equal('02:00:00:00:00:42');
          expect(rig.device.mac).to.equal('02:00:00:00:00:42');
          rig.postRx(2, 1600);
          rig.inject(ethFrame(MAIN));
          rig.inject(ethFrame('02:00:00:00:00:42'));
          expect(rig.received()).to.have.length(1);
          rig.start();
          expect(rig.readMac()).to.equal(MAIN); // reset returns to the configured address
        });

        it('vlan_filter_with_ctrl_vlan_drops_untagged_ids_not_in_the_table', () => {
          const rig = new NetRig({ ring, mac: MAIN });
          rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]);
          rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, le16(10));
          rig.postRx(4, 1600);
          rig.inject(ethFrame(MAIN, undefined, { vlan: 10 }));
          rig.inject(ethFrame(MAIN, undefined, { vlan: 11 }));
          rig.inject(ethFrame(MAIN));
          expect(rig.received()).to.have.length(2);
          expect(rig.device.stats().rx.drops.vlan).to.equal(1);
        });
      });
    });
  }

  describe('strict mode', () => {
    it('tolerated_mistakes_are_acked_ok_by_default_and_err_in_strict_mode_and_always_recorded', () => {
      const driverFeatures = ALL_FEATURES & ~features(['CTRL_RX_EXTRA']);
      for (const strict of [false, true]) {
        const rig = new NetRig({ mac: MAIN, strict, init: false });
        rig.start(driverFeatures);
        expect(rig.cmd(CtrlClass.RX, CtrlRx.NOUNI, [1])).to.equal(strict ? CtrlAck.ERR : CtrlAck.OK);
        expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [1], [0])).to.equal(strict ? CtrlAck.ERR : CtrlAck.OK); // trailing byte
        expect(rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [2])).to.equal(strict ? CtrlAck.ERR : CtrlAck.OK); // not 0/1
        const codes = rig.device.diagnostics().map((d) => d.code);
        expect(codes).to.include.members(['ctrl.feature-not-negotiated', 'ctrl.trailing-bytes', 'ctrl.rx-value-not-boolean']);
        const d = rig.device.diagnostics().find((x) => x.code === 'ctrl.feature-not-negotiated')!;
        expect(d).to.deep.include({ section: '5.1.6.5.1.2', queue: 2 });
        expect(rig.device.queryRxFilter().unicast).to.equal(strict ? 'normal' : 'none');
        expect(rig.device.stats().ctrl).to.deep.include(strict ? { ok: 0, err: 3 } : { ok: 3, err: 0 });
      }
    });

    it('rx_command_without_ctrl_rx_is_processed_like_qemu_unless_strict', () => {
      for (const strict of [false, true]) {
        const rig = new NetRig({ mac: MAIN, strict, init: false });
        rig.start(ALL_FEATURES & ~features(['CTRL_RX', 'CTRL_RX_EXTRA']));
        expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0])).to.equal(strict ? CtrlAck.ERR : CtrlAck.OK);
        expect(rig.device.queryRxFilter().promiscuous).to.equal(strict);
      }
    });
  });

  describe('legacy config mac write (§5.1.4.3)', () => {
    it('legacy_driver_without_ctrl_mac_addr_sets_the_mac_through_config', () => {
      const rig = new NetRig({ mac: MAIN, transport: 'pci-legacy', init: false });
      rig.start(ALL_FEATURES & ~features(['CTRL_MAC_ADDR']));
      const spy = sinon.spy();
      rig.device.on('rx-filter-changed', spy);
      const mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
      mac.forEach((b, i) => rig.driver.writeConfig(i, 1, b));
      expect(rig.readMac()).to.equal('02:11:22:33:44:55');
      expect(rig.device.queryRxFilter()['main-mac']).to.equal('02:11:22:33:44:55');
      expect(rig.device.diagnosticCount('config.mac-write')).to.equal(0);
      expect(spy.callCount).to.equal(0); // QEMU does not report a config write as a filter change
    });

    it('legacy_driver_with_ctrl_mac_addr_cannot_write_config_mac', () => {
      const rig = new NetRig({ mac: MAIN, transport: 'pci-legacy' });
      rig.driver.writeConfig(0, 1, 0x02);
      expect(rig.readMac()).to.equal(MAIN);
      expect(rig.device.diagnosticCount('config.mac-write')).to.equal(1);
    });
  });

  it('mtu_option_offers_mtu_and_config_reports_it', () => {
    const rig = new NetRig({ mac: MAIN, mtu: 9000 });
    expect(rig.has('MTU')).to.equal(true);
    expect(rig.driver.readConfig(10, 2)).to.equal(9000);
    const plain = new NetRig({ mac: MAIN });
    expect(plain.has('MTU')).to.equal(false);
  });

  it('default_features_are_the_issue_list_and_disable_removes_them', () => {
    const rig = new NetRig({ mac: MAIN });
    const expected = features([
      'VERSION_1', 'MAC', 'STATUS', 'MRG_RXBUF', 'CTRL_VQ', 'CTRL_RX', 'CTRL_RX_EXTRA', 'CTRL_VLAN', 'CTRL_MAC_ADDR',
      'GUEST_ANNOUNCE', 'INDIRECT_DESC', 'EVENT_IDX', 'RING_PACKED', 'RING_RESET',
      'NOTF_COAL', 'VQ_NOTF_COAL', 'DEVICE_STATS',
    ]);
    expect(rig.device.offered).to.equal(expected);
    const split = new NetRig({ features: { disable: ['RING_PACKED', 'RING_RESET'] } });
    expect(split.device.offered).to.equal(expected & ~features(['RING_PACKED', 'RING_RESET']));
    const mq = new NetRig({ queuePairs: 2, features: { disable: ['CTRL_VLAN', 'EVENT_IDX'] } });
    expect(mq.device.offered).to.equal((expected | features(['MQ'])) & ~features(['CTRL_VLAN', 'EVENT_IDX']));
    // Disabling CTRL_VQ takes everything that needs it with it (§5.1.3.1).
    const noCtrl = new NetRig({ features: { disable: ['CTRL_VQ'] } });
    expect(noCtrl.device.offered).to.equal(features(['VERSION_1', 'MAC', 'STATUS', 'MRG_RXBUF', 'INDIRECT_DESC', 'EVENT_IDX', 'RING_PACKED', 'RING_RESET']));
    expect(noCtrl.init!.ok).to.equal(true);
  });

  describe('options validation', () => {
    const memory = new GuestMemory(1 << 16);
    const base = (): VirtioNetOptions => ({ id: 'nic0', memory, netdev: new MemoryNetdev() });
    const bad: [string, Partial<Record<keyof VirtioNetOptions, unknown>>, RegExp][] = [
      ['id', { id: '' }, /id must be/],
      ['id', { id: '0abc' }, /id must be/],
      ['mac', { mac: '52:54:00:12:34' }, /mac must be a MAC address/],
      ['memory', { memory: {} }, /memory must be a GuestMemory/],
      ['netdev', { netdev: { send() {} } }, /netdev must be a Netdev/],
      ['queuePairs', { queuePairs: 0 }, /queuePairs must be an integer in 1\.\.32768/],
      ['queuePairs', { queuePairs: 1.5 }, /queuePairs/],
      ['mtu', { mtu: 67 }, /mtu must be an integer in 68\.\.65535/],
      ['compat', { compat: 'linux' }, /compat must be 'qemu'/],
      ['strict', { strict: 'yes' }, /strict must be a boolean/],
      ['queueSize', { queueSize: 100 }, /queueSize must be a power of two/],
      ['features', { features: [] }, /features has unknown key|features must be/],
      ['features', { features: { enabled: ['MQ'] } }, /features has unknown key\(s\) enabled; allowed: disable, enable/],
      ['features.enable', { features: { enable: ['MQ'] } }, /features\.enable: MQ cannot be enabled on this device; allowed: GUEST_USO4, GUEST_USO6, HOST_USO, HASH_REPORT, RSS, SPEED_DUPLEX/],
      ['features.enable', { features: { enable: ['HOST_USO'] } }, /features\.enable: HOST_USO need a netdev that carries a virtio-net header/],
      ['features.enable', { features: { enable: ['SPEED_DUPLEX'], disable: ['SPEED_DUPLEX'] } }, /SPEED_DUPLEX both enabled and disabled/],
      ['speed', { speed: -1 }, /speed must be an integer number of Mb\/s in 0\.\.2147483647/],
      ['duplex', { duplex: 'FULL' }, /duplex must be 'full' or 'half', got "FULL"/],
      ['features.enable', { features: { enable: ['NOPE'] } }, /features\.enable: unknown feature "NOPE"/],
      ['features.disable', { features: { disable: ['NOPE'] } }, /features\.disable: unknown feature "NOPE"; allowed: CSUM, GUEST_CSUM/],
      ['features.disable', { features: { disable: 'MQ' } }, /features\.disable must be an array/],
    ];
    for (const [option, patch, message] of bad) {
      it(`bad_${option.replace('.', '_')}_${JSON.stringify(Object.values(patch)[0])?.replace(/\W+/g, '_')}_throws_naming_it`, () => {
        expect(() => new VirtioNetDevice({ ...base(), ...patch } as VirtioNetOptions)).to.throw(message);
      });
    }
    it('options_must_be_an_object', () => {
      expect(() => new VirtioNetDevice(undefined as unknown as VirtioNetOptions)).to.throw(TypeError, /options must be an object/);
    });
    it('a_netdev_takes_one_device', () => {
      const netdev = new MemoryNetdev();
      new VirtioNetDevice({ id: 'a', memory, netdev });
      expect(() => new VirtioNetDevice({ id: 'b', memory, netdev })).to.throw(/already attached/);
    });
  });
});
