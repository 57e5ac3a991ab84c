import { expect } from 'chai';
import {
  CtrlAck,
  CtrlAnnounce,
  CtrlClass,
  CtrlGuestOffloads,
  CtrlMac,
  CtrlMq,
  CtrlRx,
  CtrlVlan,
  MQ_VQ_PAIRS_MAX,
  NetFeature,
  featureMask,
} from '../../../devices/virtio-net/constants.js';
import type { CtrlOutcome } from '../../../devices/virtio-net/ctrl-apply.js';
import { formatMac } from '../../../devices/virtio-net/mac.js';
import { CTRL_FEATURES, DEVICE_MAC, ctrl, harness, le16, le64, mac } from './ctrl-fixtures.js';

const without = (...bits: number[]): bigint => CTRL_FEATURES & ~featureMask(...bits);
const codes = (o: CtrlOutcome): string[] => o.diagnostics.map((d) => d.code);

/** What the rx-filter flags look like, for "state unchanged" checks. */
function flags(h: ReturnType<typeof harness>): Record<string, boolean> {
  const rx = h.state.rxFilter;
  return { promiscuous: rx.promiscuous, allMulti: rx.allMulti, allUni: rx.allUni, noMulti: rx.noMulti, noUni: rx.noUni, noBcast: rx.noBcast };
}

describe('devices/virtio-net/ctrl-apply', () => {
  describe('class RX (§5.1.6.5.1)', () => {
    const rows: [number, keyof ReturnType<typeof flags>][] = [
      [CtrlRx.PROMISC, 'promiscuous'],
      [CtrlRx.ALLMULTI, 'allMulti'],
      [CtrlRx.ALLUNI, 'allUni'],
      [CtrlRx.NOMULTI, 'noMulti'],
      [CtrlRx.NOUNI, 'noUni'],
      [CtrlRx.NOBCAST, 'noBcast'],
    ];
    for (const [command, flag] of rows) {
      it(`rx_${flag}_on_and_off_ack_ok_and_set_the_flag`, () => {
        const h = harness();
        const on = h.run(ctrl(CtrlClass.RX, command, 1));
        expect(on.ack).to.equal(CtrlAck.OK);
        expect(on.diagnostics).to.be.empty;
        expect(flags(h)[flag]).to.equal(true);
        const off = h.run(ctrl(CtrlClass.RX, command, 0));
        expect(off.ack).to.equal(CtrlAck.OK);
        expect(flags(h)[flag]).to.equal(false);
        expect(off.rxFilterChanged).to.equal(true);
      });
    }

    it('rx_without_data_byte_is_err_short_payload', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(codes(o)).to.deep.equal(['ctrl.short-payload']);
      expect(h.state.rxFilter.promiscuous).to.equal(true);
      expect(o.rxFilterChanged).to.equal(false);
      expect(h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0)).ack).to.equal(CtrlAck.OK); // same harness still works
    });

    it('rx_command_above_nobcast_is_err_unknown_command', () => {
      const h = harness();
      const before = flags(h);
      const o = h.run(ctrl(CtrlClass.RX, CtrlRx.NOBCAST + 1, 1));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(codes(o)).to.deep.equal(['ctrl.unknown-command']);
      expect(o.diagnostics[0]!.section).to.equal('5.1.6.5.1');
      expect(flags(h)).to.deep.equal(before);
    });

    it('rx_extra_data_bytes_are_ignored_like_qemu_and_reported', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0, 1, 1));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.rxFilter.promiscuous).to.equal(false);
      expect(o.diagnostics).to.have.length(1);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.trailing-bytes', tolerated: true });
    });

    it('rx_value_other_than_0_or_1_means_on_and_is_reported', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.RX, CtrlRx.ALLMULTI, 0x80));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.rxFilter.allMulti).to.equal(true);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.rx-value-not-boolean', section: '5.1.6.5.1.1', tolerated: true });
    });

    it('rx_without_ctrl_rx_is_processed_as_qemu_does_and_reported', () => {
      const h = harness({ features: without(NetFeature.CTRL_RX) });
      const o = h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.rxFilter.promiscuous).to.equal(false);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.feature-not-negotiated', section: '5.1.6.5.1.2', tolerated: true });
    });

    it('rx_extra_commands_without_ctrl_rx_extra_are_processed_and_reported', () => {
      const h = harness({ features: without(NetFeature.CTRL_RX_EXTRA) });
      const o = h.run(ctrl(CtrlClass.RX, CtrlRx.NOBCAST, 1));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.rxFilter.noBcast).to.equal(true);
      expect(codes(o)).to.deep.equal(['ctrl.feature-not-negotiated']);
      // PROMISC only needs CTRL_RX.
      expect(h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 1)).diagnostics).to.be.empty;
    });
  });

  describe('class MAC, ADDR_SET (§5.1.6.5.2)', () => {
    it('mac_addr_set_with_six_bytes_updates_main_mac_before_the_ack_is_returned', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('02:AA:bb:cc:dd:01')));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(o.rxFilterChanged).to.equal(true);
      expect(formatMac(h.state.rxFilter.mainMac)).to.equal('02:aa:bb:cc:dd:01');
    });

    for (const length of [0, 5, 7, 12]) {
      it(`mac_addr_set_with_${length}_bytes_is_err_and_keeps_the_mac`, () => {
        const h = harness();
        const o = h.run(ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, new Array<number>(length).fill(2)));
        expect(o.ack).to.equal(CtrlAck.ERR);
        expect(codes(o)).to.deep.equal(['ctrl.mac-addr-length']);
        expect(formatMac(h.state.rxFilter.mainMac)).to.equal(DEVICE_MAC);
      });
    }

    it('mac_addr_set_without_ctrl_mac_addr_is_processed_and_reported', () => {
      const h = harness({ features: without(NetFeature.CTRL_MAC_ADDR) });
      const o = h.run(ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('02:00:00:00:00:09')));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.feature-not-negotiated', tolerated: true });
      expect(formatMac(h.state.rxFilter.mainMac)).to.equal('02:00:00:00:00:09');
    });

    it('mac_command_other_than_table_set_or_addr_set_is_err', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET + 1, mac('02:00:00:00:00:09')));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(codes(o)).to.deep.equal(['ctrl.unknown-command']);
      expect(formatMac(h.state.rxFilter.mainMac)).to.equal(DEVICE_MAC);
    });
  });

  describe('class VLAN (§5.1.6.5.3)', () => {
    it('vlan_add_and_del_are_idempotent', () => {
      const h = harness();
      const rx = h.state.rxFilter;
      for (let i = 0; i < 2; i++) expect(h.run(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(100))).ack).to.equal(CtrlAck.OK);
      expect(rx.hasVlan(100)).to.equal(true);
      for (let i = 0; i < 2; i++) expect(h.run(ctrl(CtrlClass.VLAN, CtrlVlan.DEL, le16(100))).ack).to.equal(CtrlAck.OK);
      expect(rx.hasVlan(100)).to.equal(false);
    });

    it('vlan_id_4095_is_accepted_and_4096_is_err_out_of_range', () => {
      const h = harness();
      expect(h.run(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(4095))).ack).to.equal(CtrlAck.OK);
      expect(h.state.rxFilter.hasVlan(4095)).to.equal(true);
      for (const vid of [4096, 0xffff]) {
        const o = h.run(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(vid)));
        expect(o.ack).to.equal(CtrlAck.ERR);
        expect(codes(o)).to.deep.equal(['ctrl.vlan-out-of-range']);
        expect(o.rxFilterChanged).to.equal(false);
      }
    });

    it('vlan_payload_shorter_than_two_bytes_is_err', () => {
      const h = harness();
      for (const payload of [[], [5]]) {
        const o = h.run(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, payload));
        expect(o.ack).to.equal(CtrlAck.ERR);
        expect(codes(o)).to.deep.equal(['ctrl.short-payload']);
      }
      expect(h.state.rxFilter.hasVlan(5)).to.equal(false);
    });

    it('vlan_payload_longer_than_two_bytes_uses_the_first_two_like_qemu', () => {
      // QEMU 7.2 reads the vid with iov_to_buf(…, 2): extra bytes are never looked at.
      const h = harness();
      const o = h.run(ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(7), 0xff, 0xff));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.rxFilter.hasVlan(7)).to.equal(true);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.trailing-bytes', tolerated: true });
    });

    it('vlan_command_other_than_add_or_del_is_err', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.VLAN, CtrlVlan.DEL + 1, le16(7)));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(codes(o)).to.deep.equal(['ctrl.unknown-command']);
    });

    it('vlan_without_ctrl_vlan_edits_the_allow_all_table_as_qemu_does', () => {
      const h = harness({ features: without(NetFeature.CTRL_VLAN) });
      expect(h.state.rxFilter.hasVlan(9)).to.equal(true); // allow-all
      const o = h.run(ctrl(CtrlClass.VLAN, CtrlVlan.DEL, le16(9)));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.rxFilter.hasVlan(9)).to.equal(false);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.feature-not-negotiated', tolerated: true });
    });
  });

  describe('class ANNOUNCE (§5.1.6.5.4)', () => {
    it('announce_ack_clears_the_status_bit_and_is_not_an_rx_filter_change', () => {
      const h = harness();
      h.state.announcePending = true;
      const o = h.run(ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK));
      expect(o).to.include({ ack: CtrlAck.OK, rxFilterChanged: false, effect: 'announce' });
      expect(h.state.announcePending).to.equal(false);
      expect(h.events).to.equal(0);
    });

    it('announce_ack_without_pending_announce_is_err', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(codes(o)).to.deep.equal(['ctrl.announce-not-pending']);
    });

    it('announce_command_other_than_ack_is_err_and_keeps_the_bit', () => {
      const h = harness();
      h.state.announcePending = true;
      const o = h.run(ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK + 1));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(codes(o)).to.deep.equal(['ctrl.unknown-command']);
      expect(h.state.announcePending).to.equal(true);
    });

    it('announce_ack_without_guest_announce_is_processed_and_reported', () => {
      const h = harness({ features: without(NetFeature.GUEST_ANNOUNCE) });
      h.state.announcePending = true;
      const o = h.run(ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(codes(o)).to.deep.equal(['ctrl.feature-not-negotiated']);
    });
  });

  describe('class MQ (§5.1.6.5.6)', () => {
    it('vq_pairs_set_within_max_sets_the_pairs', () => {
      const h = harness({ maxQueuePairs: 4 });
      for (const n of [1, 4, 2]) {
        const o = h.run(ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(n)));
        expect(o).to.include({ ack: CtrlAck.OK, effect: 'queue-pairs', rxFilterChanged: false });
        expect(h.state.queuePairs).to.equal(n);
      }
    });

    for (const n of [0, 5, MQ_VQ_PAIRS_MAX + 1, 0xffff]) {
      it(`vq_pairs_set_${n}_outside_1_to_max_is_err`, () => {
        const h = harness({ maxQueuePairs: 4 });
        const o = h.run(ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(n)));
        expect(o.ack).to.equal(CtrlAck.ERR);
        expect(codes(o)).to.deep.equal(['ctrl.mq-pairs-out-of-range']);
        expect(h.state.queuePairs).to.equal(1);
      });
    }

    it('vq_pairs_set_without_mq_is_err_in_every_mode', () => {
      const h = harness({ features: without(NetFeature.MQ) });
      const o = h.run(ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(1)));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.feature-not-negotiated', tolerated: false });
    });

    it('vq_pairs_set_short_is_err_and_longer_uses_two_bytes_like_qemu', () => {
      const h = harness();
      expect(codes(h.run(ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, 2)))).to.deep.equal(['ctrl.short-payload']);
      const o = h.run(ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2), 9));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.queuePairs).to.equal(2);
      expect(codes(o)).to.deep.equal(['ctrl.trailing-bytes']);
    });

    it('rss_config_and_unknown_mq_commands_are_err', () => {
      const h = harness();
      expect(h.run(ctrl(CtrlClass.MQ, CtrlMq.RSS_CONFIG, new Array<number>(16).fill(0))).ack).to.equal(CtrlAck.ERR);
      expect(h.run(ctrl(CtrlClass.MQ, CtrlMq.HASH_CONFIG, new Array<number>(16).fill(0))).ack).to.equal(CtrlAck.ERR);
      expect(codes(h.run(ctrl(CtrlClass.MQ, CtrlMq.HASH_CONFIG + 1, le16(1))))).to.deep.equal(['ctrl.unknown-command']);
    });
  });

  describe('class GUEST_OFFLOADS (§5.1.6.5.8)', () => {
    const csumAndTso4 = featureMask(NetFeature.GUEST_CSUM, NetFeature.GUEST_TSO4);

    it('offloads_set_within_negotiated_guest_offloads_is_ok', () => {
      const h = harness();
      for (const value of [csumAndTso4, 0n, featureMask(NetFeature.GUEST_CSUM)]) {
        const o = h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(value)));
        expect(o).to.include({ ack: CtrlAck.OK, effect: 'guest-offloads' });
        expect(h.state.guestOffloads).to.equal(value);
      }
    });

    it('offloads_set_with_a_bit_not_negotiated_is_err', () => {
      const h = harness();
      for (const value of [featureMask(NetFeature.GUEST_TSO6), featureMask(NetFeature.MAC), 1n << 63n]) {
        const o = h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(value)));
        expect(o.ack).to.equal(CtrlAck.ERR);
        expect(codes(o)).to.deep.equal(['ctrl.offloads-not-negotiated']);
      }
      expect(h.state.guestOffloads).to.equal(0n);
    });

    it('offloads_without_ctrl_guest_offloads_is_err_in_every_mode', () => {
      const h = harness({ features: without(NetFeature.CTRL_GUEST_OFFLOADS) });
      const o = h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(0n)));
      expect(o.ack).to.equal(CtrlAck.ERR);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.feature-not-negotiated', tolerated: false });
    });

    it('offloads_short_payload_and_unknown_command_are_err', () => {
      const h = harness();
      expect(codes(h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, 1, 2, 3, 4, 5, 6, 7)))).to.deep.equal(['ctrl.short-payload']);
      expect(codes(h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET + 1, le64(0n))))).to.deep.equal(['ctrl.unknown-command']);
    });

    it('offloads_set_refused_by_the_host_is_err_keeps_the_previous_offloads_and_is_no_driver_mistake', () => {
      const h = harness();
      const told: bigint[] = [];
      let hostTakesThem = false;
      const state = Object.assign(h.state, {
        applyHostOffloads: (o: bigint): boolean => {
          told.push(o);
          return hostTakesThem;
        },
      });
      state.guestOffloads = csumAndTso4;
      const refused = h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(0n)));
      expect(refused).to.include({ ack: CtrlAck.ERR, effect: 'none' });
      expect(refused.diagnostics).to.deep.equal([]);
      expect(state.guestOffloads).to.equal(csumAndTso4);
      hostTakesThem = true;
      expect(h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(0n)))).to.include({ ack: CtrlAck.OK, effect: 'guest-offloads' });
      expect(state.guestOffloads).to.equal(0n);
      // The host is asked only for a command that passed every other check.
      expect(h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(featureMask(NetFeature.MAC)))).ack).to.equal(CtrlAck.ERR);
      expect(told).to.deep.equal([0n, 0n]);
    });

    it('offloads_rsc_ext_bit_is_dropped_like_qemu_and_reported', () => {
      const h = harness();
      const o = h.run(ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(csumAndTso4 | featureMask(NetFeature.RSC_EXT))));
      expect(o.ack).to.equal(CtrlAck.OK);
      expect(h.state.guestOffloads).to.equal(csumAndTso4);
      expect(o.diagnostics[0]).to.include({ code: 'ctrl.offloads-not-negotiated', tolerated: true });
    });
  });

  describe('unknown classes and tier 1', () => {
    for (const ctrlClass of [CtrlClass.GUEST_OFFLOADS + 1, 0x7f, 0xff]) {
      it(`unknown_class_${ctrlClass}_is_err`, () => {
        const h = harness();
        const o = h.run(ctrl(ctrlClass, 0, 1, 2, 3));
        expect(o.ack).to.equal(CtrlAck.ERR);
        expect(o.diagnostics[0]).to.include({ code: 'ctrl.unknown-class', section: '5.1.6.5', ctrlClass });
      });
    }

    it('chain_with_fewer_than_two_readable_bytes_is_a_violation_for_the_caller', () => {
      const h = harness();
      for (const payload of [new Uint8Array(0), Uint8Array.of(CtrlClass.RX)]) {
        expect(h.runRaw(payload)).to.deep.equal({ kind: 'violation', code: 'ctrl.missing-header', length: payload.length });
      }
      expect(h.run(ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0)).ack).to.equal(CtrlAck.OK);
    });
  });

  describe('strict mode', () => {
    const tolerated: [string, bigint, Uint8Array, (h: ReturnType<typeof harness>) => void][] = [
      ['rx_without_ctrl_rx', without(NetFeature.CTRL_RX), ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0), () => {}],
      ['allmulti_without_ctrl_rx', without(NetFeature.CTRL_RX), ctrl(CtrlClass.RX, CtrlRx.ALLMULTI, 1), () => {}],
      ['alluni_without_ctrl_rx_extra', without(NetFeature.CTRL_RX_EXTRA), ctrl(CtrlClass.RX, CtrlRx.ALLUNI, 1), () => {}],
      ['nobcast_without_ctrl_rx_extra', without(NetFeature.CTRL_RX_EXTRA), ctrl(CtrlClass.RX, CtrlRx.NOBCAST, 1), () => {}],
      ['table_set_without_ctrl_rx', without(NetFeature.CTRL_RX), ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, 0, 0, 0, 0, 0, 0, 0, 0), () => {}],
      ['addr_set_without_ctrl_mac_addr', without(NetFeature.CTRL_MAC_ADDR), ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('02:00:00:00:00:01')), () => {}],
      ['vlan_without_ctrl_vlan', without(NetFeature.CTRL_VLAN), ctrl(CtrlClass.VLAN, CtrlVlan.DEL, le16(1)), () => {}],
      ['announce_without_guest_announce', without(NetFeature.GUEST_ANNOUNCE), ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK), (h) => (h.state.announcePending = true)],
      ['rx_value_not_boolean', CTRL_FEATURES, ctrl(CtrlClass.RX, CtrlRx.PROMISC, 2), () => {}],
      ['rx_trailing_bytes', CTRL_FEATURES, ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0, 0), () => {}],
      ['vlan_trailing_bytes', CTRL_FEATURES, ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(1), 0), () => {}],
      ['announce_with_payload', CTRL_FEATURES, ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK, 0), (h) => (h.state.announcePending = true)],
      ['mq_trailing_bytes', CTRL_FEATURES, ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2), 0), () => {}],
      ['offloads_trailing_bytes', CTRL_FEATURES, ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(0n), 0), () => {}],
      [
        'offloads_rsc_ext_not_negotiated',
        CTRL_FEATURES,
        ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(featureMask(NetFeature.RSC_EXT))),
        () => {},
      ],
    ];
    for (const [mistake, features, payload, prepare] of tolerated) {
      it(`${mistake}_is_ok_by_default_and_err_in_strict_mode`, () => {
        const lax = harness({ features });
        prepare(lax);
        const laxOut = lax.run(payload);
        expect(laxOut.ack, 'default mode').to.equal(CtrlAck.OK);
        expect(laxOut.diagnostics.some((d) => d.tolerated), 'reported as a tolerated mistake').to.equal(true);

        const strict = harness({ features, strict: true });
        prepare(strict);
        const before = { flags: flags(strict), vlan1: strict.state.rxFilter.hasVlan(1), mac: formatMac(strict.state.rxFilter.mainMac) };
        const o = strict.run(payload);
        expect(o.ack, 'strict mode').to.equal(CtrlAck.ERR);
        expect(o.rxFilterChanged).to.equal(false);
        expect(o.diagnostics.map((d) => d.code)).to.deep.equal(laxOut.diagnostics.map((d) => d.code).slice(0, o.diagnostics.length));
        expect({ flags: flags(strict), vlan1: strict.state.rxFilter.hasVlan(1), mac: formatMac(strict.state.rxFilter.mainMac) }).to.deep.equal(before);
        expect(strict.events).to.equal(0);
        expect(strict.state.queuePairs).to.equal(1);
        expect(strict.state.guestOffloads).to.equal(0n);
      });
    }

    it('strict_mode_still_accepts_correct_commands', () => {
      const h = harness({ strict: true });
      h.state.announcePending = true;
      for (const payload of [
        ctrl(CtrlClass.RX, CtrlRx.PROMISC, 0),
        ctrl(CtrlClass.RX, CtrlRx.NOUNI, 1),
        ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('02:00:00:00:00:01')),
        ctrl(CtrlClass.VLAN, CtrlVlan.ADD, le16(10)),
        ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK),
        ctrl(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2)),
        ctrl(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(featureMask(NetFeature.GUEST_CSUM))),
      ]) {
        const o = h.run(payload);
        expect(o.ack, `class ${payload[0]} command ${payload[1]}`).to.equal(CtrlAck.OK);
        expect(o.diagnostics).to.be.empty;
      }
    });
  });
});
