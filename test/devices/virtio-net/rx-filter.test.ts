import { expect } from 'chai';
import { ETH_P_8021Q, MAC_TABLE_ENTRIES } from '../../../devices/virtio-net/constants.js';
import { formatMac, macHigh, macLow, parseMac } from '../../../devices/virtio-net/mac.js';
import { MacSet, RX_DROP_REASONS, RxFilterState, RxVerdict, acceptFrame } from '../../../devices/virtio-net/rx-filter.js';

const MAIN = '52:54:00:12:34:56';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const OTHER_UNI = '02:00:00:00:00:99';
const MCAST = '01:00:5e:00:00:01';

/** An Ethernet frame to `dst`, optionally 802.1Q-tagged, `length` bytes long. */
function frame(dst: string, options: { vid?: number; tpid?: number; length?: number } = {}): Uint8Array {
  const tagged = options.vid !== undefined;
  const f = new Uint8Array(options.length ?? 64);
  const d = parseMac(dst);
  f.set(d.subarray(0, Math.min(6, f.length)));
  const put = (at: number, v: number): void => {
    if (at < f.length) f[at] = v;
  };
  [0x02, 0, 0, 0, 0, 0x01].forEach((b, i) => put(6 + i, b)); // source
  if (tagged) {
    const tpid = options.tpid ?? ETH_P_8021Q;
    put(12, tpid >> 8);
    put(13, tpid & 0xff);
    put(14, (options.vid! >> 8) & 0x0f);
    put(15, options.vid! & 0xff);
    put(16, 0x08);
    put(17, 0x00);
  } else {
    put(12, 0x08);
    put(13, 0x00);
  }
  return f;
}

/** Promiscuous off (as Linux leaves it after `ip link set up`), CTRL_VLAN negotiated unless told. */
function filter(options: { ctrlVlan?: boolean; uni?: string[]; multi?: string[] } = {}): RxFilterState {
  const s = new RxFilterState(parseMac(MAIN));
  s.setCtrlVlanNegotiated(options.ctrlVlan ?? true);
  s.promiscuous = false;
  const t = s.beginMacTable();
  for (const m of options.uni ?? []) t.addUnicast(parseMac(m), 0);
  for (const m of options.multi ?? []) t.addMulticast(parseMac(m), 0);
  s.commitMacTable();
  return s;
}

const accept = (s: RxFilterState, f: Uint8Array): RxVerdict => acceptFrame(s, f, 0, f.length);

describe('devices/virtio-net/rx-filter', () => {
  describe('decision order', () => {
    it('promiscuous_accepts_everything_even_runts_and_unknown_vlans', () => {
      const s = filter();
      s.promiscuous = true;
      s.noUni = s.noMulti = s.noBcast = true;
      for (const f of [new Uint8Array(0), frame(OTHER_UNI, { length: 5 }), frame(OTHER_UNI, { vid: 7 }), frame(BCAST), frame(MCAST)]) {
        expect(accept(s, f)).to.equal(RxVerdict.ACCEPT);
      }
    });

    it('frame_shorter_than_an_ethernet_header_is_a_runt', () => {
      const s = filter();
      for (const length of [0, 1, 6, 13]) expect(accept(s, frame(MAIN, { length }))).to.equal(RxVerdict.DROP_RUNT);
      expect(accept(s, frame(MAIN, { length: 14 }))).to.equal(RxVerdict.ACCEPT);
    });

    it('tagged_frame_shorter_than_18_bytes_is_a_runt', () => {
      const s = filter();
      s.vlanAdd(5);
      for (const length of [14, 15, 17]) expect(accept(s, frame(MAIN, { vid: 5, length }))).to.equal(RxVerdict.DROP_RUNT);
      expect(accept(s, frame(MAIN, { vid: 5, length: 18 }))).to.equal(RxVerdict.ACCEPT);
    });

    it('vlan_not_in_the_table_drops_before_any_address_check', () => {
      const s = filter({ multi: [MCAST] });
      s.allUni = s.allMulti = true;
      for (const dst of [MAIN, BCAST, MCAST, OTHER_UNI]) expect(accept(s, frame(dst, { vid: 7 })), dst).to.equal(RxVerdict.DROP_VLAN);
      s.vlanAdd(7);
      for (const dst of [MAIN, BCAST, MCAST, OTHER_UNI]) expect(accept(s, frame(dst, { vid: 7 })), dst).to.equal(RxVerdict.ACCEPT);
    });

    it('vlan_id_is_the_low_12_bits_of_the_tci', () => {
      const s = filter();
      s.vlanAdd(0x123);
      const f = frame(MAIN, { vid: 0x123 });
      f[14] = 0xe1; // priority 7, DEI 0, VID high nibble 1
      expect(accept(s, f)).to.equal(RxVerdict.ACCEPT);
    });

    it('untagged_frames_and_other_tpids_are_not_vlan_filtered', () => {
      const s = filter(); // CTRL_VLAN negotiated, table empty
      expect(accept(s, frame(MAIN))).to.equal(RxVerdict.ACCEPT);
      expect(accept(s, frame(MAIN, { vid: 7, tpid: 0x88a8 }))).to.equal(RxVerdict.ACCEPT);
      expect(accept(s, frame(MAIN, { vid: 7, tpid: 0x8100 }))).to.equal(RxVerdict.DROP_VLAN);
    });

    it('broadcast_is_accepted_unless_nobcast_even_with_nomulti', () => {
      const s = filter();
      s.noMulti = true;
      expect(accept(s, frame(BCAST))).to.equal(RxVerdict.ACCEPT);
      s.noBcast = true;
      s.allMulti = true;
      expect(accept(s, frame(BCAST))).to.equal(RxVerdict.DROP_BROADCAST);
    });

    it('nomulti_beats_allmulti_and_the_multicast_list', () => {
      const s = filter({ multi: [MCAST] });
      s.allMulti = true;
      s.noMulti = true;
      expect(accept(s, frame(MCAST))).to.equal(RxVerdict.DROP_MULTICAST);
    });

    it('allmulti_or_multicast_overflow_accepts_any_multicast', () => {
      const s = filter();
      expect(accept(s, frame('33:33:00:00:00:fb'))).to.equal(RxVerdict.DROP_MULTICAST);
      s.allMulti = true;
      expect(accept(s, frame('33:33:00:00:00:fb'))).to.equal(RxVerdict.ACCEPT);
      s.allMulti = false;
      s.macTable.multiOverflow = true;
      expect(accept(s, frame('33:33:00:00:00:fb'))).to.equal(RxVerdict.ACCEPT);
    });

    it('multicast_is_accepted_iff_in_the_multicast_list', () => {
      const s = filter({ multi: [MCAST, '33:33:ff:12:34:56'], uni: ['01:00:5e:00:00:02'] });
      expect(accept(s, frame(MCAST))).to.equal(RxVerdict.ACCEPT);
      expect(accept(s, frame('33:33:ff:12:34:56'))).to.equal(RxVerdict.ACCEPT);
      expect(accept(s, frame('01:00:5e:00:00:03'))).to.equal(RxVerdict.DROP_MULTICAST);
      // A group address the guest put in the UNICAST list is never consulted for group frames.
      expect(accept(s, frame('01:00:5e:00:00:02'))).to.equal(RxVerdict.DROP_MULTICAST);
    });

    it('nouni_drops_even_the_main_mac_and_beats_alluni', () => {
      const s = filter({ uni: [OTHER_UNI] });
      s.allUni = true;
      s.noUni = true;
      expect(accept(s, frame(MAIN))).to.equal(RxVerdict.DROP_UNICAST);
      expect(accept(s, frame(OTHER_UNI))).to.equal(RxVerdict.DROP_UNICAST);
      expect(accept(s, frame(MCAST))).to.equal(RxVerdict.DROP_MULTICAST);
    });

    it('alluni_or_unicast_overflow_accepts_any_unicast', () => {
      const s = filter();
      expect(accept(s, frame(OTHER_UNI))).to.equal(RxVerdict.DROP_UNICAST);
      s.allUni = true;
      expect(accept(s, frame(OTHER_UNI))).to.equal(RxVerdict.ACCEPT);
      s.allUni = false;
      s.macTable.uniOverflow = true;
      expect(accept(s, frame(OTHER_UNI))).to.equal(RxVerdict.ACCEPT);
    });

    it('unicast_is_accepted_for_the_main_mac_or_the_unicast_list_only', () => {
      const s = filter({ uni: ['02:00:00:00:00:01'] });
      expect(accept(s, frame(MAIN))).to.equal(RxVerdict.ACCEPT);
      expect(accept(s, frame('02:00:00:00:00:01'))).to.equal(RxVerdict.ACCEPT);
      expect(accept(s, frame(OTHER_UNI))).to.equal(RxVerdict.DROP_UNICAST);
      // Differs from the main MAC only in the low 32 bits / only in the high 16 bits.
      expect(accept(s, frame('52:54:00:12:34:57'))).to.equal(RxVerdict.DROP_UNICAST);
      expect(accept(s, frame('52:56:00:12:34:56'))).to.equal(RxVerdict.DROP_UNICAST);
    });

    it('main_mac_change_takes_effect_at_once', () => {
      const s = filter();
      s.setMainMac(parseMac('02:aa:bb:cc:dd:ee'), 0);
      expect(accept(s, frame(MAIN))).to.equal(RxVerdict.DROP_UNICAST);
      expect(accept(s, frame('02:aa:bb:cc:dd:ee'))).to.equal(RxVerdict.ACCEPT);
      expect(formatMac(s.mainMac)).to.equal('02:aa:bb:cc:dd:ee');
    });

    it('frame_at_an_offset_inside_a_larger_buffer_is_read_in_place', () => {
      const s = filter();
      const buf = new Uint8Array(100).fill(0xff);
      buf.set(frame(MAIN, { length: 60 }), 12);
      expect(acceptFrame(s, buf, 12, 60)).to.equal(RxVerdict.ACCEPT);
      expect(acceptFrame(s, buf, 12, 13)).to.equal(RxVerdict.DROP_RUNT);
      expect(acceptFrame(s, buf, 0, 60)).to.equal(RxVerdict.ACCEPT); // ff… = broadcast
    });

    it('drop_reason_names_are_indexed_by_verdict', () => {
      expect(RX_DROP_REASONS[RxVerdict.DROP_VLAN]).to.equal('vlan');
      expect(RX_DROP_REASONS[RxVerdict.DROP_UNICAST]).to.equal('unicast');
      expect(RX_DROP_REASONS[RxVerdict.DROP_MULTICAST]).to.equal('multicast');
      expect(RX_DROP_REASONS[RxVerdict.DROP_BROADCAST]).to.equal('broadcast');
      expect(RX_DROP_REASONS[RxVerdict.DROP_RUNT]).to.equal('runt');
    });
  });

  describe('vlan table start state', () => {
    it('vlan_table_allows_all_before_negotiation', () => {
      const s = new RxFilterState(parseMac(MAIN));
      s.promiscuous = false;
      expect(s.ctrlVlanNegotiated).to.equal(false);
      expect(accept(s, frame(MAIN, { vid: 4095 }))).to.equal(RxVerdict.ACCEPT);
    });

    it('negotiating_ctrl_vlan_empties_the_table_and_renegotiating_the_same_bit_keeps_it', () => {
      const s = new RxFilterState(parseMac(MAIN));
      s.promiscuous = false;
      s.setCtrlVlanNegotiated(true);
      expect(accept(s, frame(MAIN, { vid: 1 }))).to.equal(RxVerdict.DROP_VLAN);
      s.vlanAdd(1);
      s.setCtrlVlanNegotiated(true); // the driver writes its features again
      expect(s.hasVlan(1)).to.equal(true);
      expect(accept(s, frame(MAIN, { vid: 1 }))).to.equal(RxVerdict.ACCEPT);
    });

    it('dropping_ctrl_vlan_on_renegotiation_makes_the_table_allow_all_again', () => {
      const s = filter({ ctrlVlan: true });
      s.vlanAdd(1);
      s.setCtrlVlanNegotiated(false);
      for (const vid of [0, 2, 4095]) expect(s.hasVlan(vid)).to.equal(true);
      s.vlanDel(2); // QEMU lets a driver edit it anyway
      s.setCtrlVlanNegotiated(false);
      expect(s.hasVlan(2)).to.equal(false);
      s.setCtrlVlanNegotiated(true);
      for (const vid of [0, 1, 2, 4095]) expect(s.hasVlan(vid)).to.equal(false);
    });

    it('reset_returns_to_promiscuous_empty_table_default_mac_and_allow_all_vlans', () => {
      const s = filter({ ctrlVlan: true, uni: [OTHER_UNI], multi: [MCAST] });
      s.allMulti = s.allUni = s.noMulti = s.noUni = s.noBcast = true;
      s.macTable.uniOverflow = true;
      s.setMainMac(parseMac('02:00:00:00:00:01'), 0);
      s.reset();
      expect([s.promiscuous, s.allMulti, s.allUni, s.noMulti, s.noUni, s.noBcast]).to.deep.equal([true, false, false, false, false, false]);
      expect([s.macTable.uniCount, s.macTable.multiCount, s.macTable.uniOverflow, s.macTable.multiOverflow]).to.deep.equal([0, 0, false, false]);
      expect(formatMac(s.mainMac)).to.equal(MAIN);
      expect(s.ctrlVlanNegotiated).to.equal(false);
      expect(s.hasVlan(77)).to.equal(true);
      s.promiscuous = false;
      expect(accept(s, frame(OTHER_UNI))).to.equal(RxVerdict.DROP_UNICAST);
    });
  });

  describe('MacSet', () => {
    it('holds_64_addresses_and_finds_exactly_those', () => {
      const set = new MacSet();
      const rnd = mulberry32(7);
      const inSet: Uint8Array[] = [];
      for (let i = 0; i < MAC_TABLE_ENTRIES; i++) {
        const m = Uint8Array.from({ length: 6 }, () => Math.floor(rnd() * 256));
        inSet.push(m);
        set.add(macHigh(m, 0), macLow(m, 0));
        set.add(macHigh(m, 0), macLow(m, 0)); // a duplicate is kept once
      }
      expect(set.size).to.be.at.most(MAC_TABLE_ENTRIES);
      for (const m of inSet) expect(set.has(macHigh(m, 0), macLow(m, 0))).to.equal(true);
      for (let i = 0; i < 2000; i++) {
        const m = Uint8Array.from({ length: 6 }, () => Math.floor(rnd() * 256));
        const expected = inSet.some((x) => x.every((b, j) => b === m[j]));
        expect(set.has(macHigh(m, 0), macLow(m, 0))).to.equal(expected);
      }
      set.clear();
      expect(set.size).to.equal(0);
      for (const m of inSet) expect(set.has(macHigh(m, 0), macLow(m, 0))).to.equal(false);
    });

    it('tells_apart_addresses_that_differ_only_in_the_top_bit_of_either_half', () => {
      const set = new MacSet();
      const a = parseMac('80:00:80:00:00:00');
      set.add(macHigh(a, 0), macLow(a, 0));
      for (const other of ['00:00:80:00:00:00', '80:00:00:00:00:00', '00:00:00:00:00:00']) {
        const m = parseMac(other);
        expect(set.has(macHigh(m, 0), macLow(m, 0)), other).to.equal(false);
      }
      expect(set.has(macHigh(a, 0), macLow(a, 0))).to.equal(true);
    });
  });
});

function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
