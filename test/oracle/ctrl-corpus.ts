// The control-command corpus of the differential test (VIRTIO 1.2 §5.1.6.5 "Control Virtqueue"):
// named cases, each a driver feature set plus a sequence of steps — control chains given as the
// exact device-readable descriptor segments (the split matters: headers and payloads are cut at
// odd bytes on purpose), host announces, management queries and device resets. The same bytes
// go to QEMU 7.2 and to this project's device; differential.test.ts compares what comes back.
//
// The class / command numbers and the feature names below are this corpus's own copy of the
// spec's facts (§5.1.6.5.1–§5.1.6.5.8, §5.1.3), kept apart from devices/ on purpose: a corpus
// that shared the device's constants would share its mistakes.

import type { FeatureName } from '../support/qemu-oracle.js';

// ---- spec facts ----------------------------------------------------------------------------

/** Control classes (§5.1.6.5). Class 6 is NOTF_COAL in 1.2, which neither side implements. */
export const Cls = { RX: 0, MAC: 1, VLAN: 2, ANNOUNCE: 3, MQ: 4, GUEST_OFFLOADS: 5, NOTF_COAL: 6 } as const;
/** RX commands (§5.1.6.5.1): 0..1 need CTRL_RX, 2..5 CTRL_RX_EXTRA. */
export const Rx = { PROMISC: 0, ALLMULTI: 1, ALLUNI: 2, NOMULTI: 3, NOUNI: 4, NOBCAST: 5 } as const;
/** MAC commands (§5.1.6.5.2). */
export const Mac = { TABLE_SET: 0, ADDR_SET: 1 } as const;
/** VLAN commands (§5.1.6.5.3). */
export const Vlan = { ADD: 0, DEL: 1 } as const;
/** ANNOUNCE commands (§5.1.6.5.4). */
export const Announce = { ACK: 0 } as const;
/** MQ commands (§5.1.6.5.6, §5.1.6.5.7). */
export const Mq = { VQ_PAIRS_SET: 0, RSS_CONFIG: 1, HASH_CONFIG: 2 } as const;
/** GUEST_OFFLOADS commands (§5.1.6.5.8). */
export const Offloads = { SET: 0 } as const;
/** The ack values (§5.1.6.5). */
export const OK = 0;
export const ERR = 1;

/** The NIC's MAC on both sides. */
export const NIC_MAC = '52:54:00:12:34:56';
/** The NIC's id on both sides: `name` in query-rx-filter. */
export const NIC_ID = 'nic0';

// ---- feature sets (driver side; negotiated = these ∩ offered, plus VERSION_1) ---------------

/** What Linux 6.1 negotiates for the control queue on a one-queue NIC. */
export const FULL: readonly FeatureName[] = ['MAC', 'STATUS', 'CTRL_VQ', 'CTRL_RX', 'CTRL_VLAN', 'CTRL_RX_EXTRA', 'GUEST_ANNOUNCE', 'CTRL_MAC_ADDR'];
const without = (...names: FeatureName[]): readonly FeatureName[] => FULL.filter((f) => !names.includes(f));
export const NO_CTRL_VLAN = without('CTRL_VLAN');
export const NO_RX_EXTRA = without('CTRL_RX_EXTRA');
export const NO_MAC_ADDR = without('CTRL_MAC_ADDR');
export const NO_ANNOUNCE = without('GUEST_ANNOUNCE');
export const NO_STATUS = without('STATUS');
/** A control queue and nothing to send on it. */
export const CTRL_VQ_ONLY: readonly FeatureName[] = ['MAC', 'STATUS', 'CTRL_VQ'];
/** FULL plus MQ (QEMU: `mq=on`, one queue pair behind a hubport; the model: 2 pairs offered). */
export const WITH_MQ: readonly FeatureName[] = [...FULL, 'MQ'];
/**
 * FULL plus RSS (QEMU: `rss=on`, software RSS — a hubport cannot take its eBPF program — one queue
 * pair; the model: one pair). HASH_REPORT is not in it: QEMU 7.2 offers it only to a peer with
 * virtio-net headers (a TAP), and the oracle's hubport has none.
 */
export const WITH_RSS: readonly FeatureName[] = [...FULL, 'RSS'];

// ---- the case format ------------------------------------------------------------------------

export type CtrlStep =
  /** One control chain: each segment is one device-readable descriptor, then a writable ack of `ackLen` bytes (none when 0). */
  | { readonly kind: 'chain'; readonly label: string; readonly segments: readonly Uint8Array[]; readonly ackLen: number; readonly indirect: boolean }
  /** The host asks the guest to announce itself (QMP announce-self / device.announce()). */
  | { readonly kind: 'announce' }
  /** Management runs query-rx-filter (compared, and re-arms NIC_RX_FILTER_CHANGED on both sides). */
  | { readonly kind: 'query' }
  /** The driver resets the device and initializes it again with the same features. */
  | { readonly kind: 'reset' };

export interface CtrlCase {
  /** snake_case: the behaviour or the guest's mistake. */
  readonly name: string;
  readonly features: readonly FeatureName[];
  readonly steps: readonly CtrlStep[];
}

// ---- byte helpers ---------------------------------------------------------------------------

export const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
export const hdr = (cls: number, cmd: number): Uint8Array => bytes(cls, cmd);
export const le16 = (n: number): Uint8Array => bytes(n & 0xff, (n >>> 8) & 0xff);
export const le32 = (n: number): Uint8Array => bytes(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
export const mac = (text: string): Uint8Array => Uint8Array.from(text.split(':').map((h) => Number.parseInt(h, 16)));
export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
/** `count` distinct addresses whose first byte is `first` (0x02: unicast, 0x01: multicast). */
export function macs(count: number, first: number): Uint8Array {
  const out = new Uint8Array(count * 6);
  for (let i = 0; i < count; i++) out.set([first, 0, 0, 0x5a, i >> 8, i & 0xff], i * 6);
  return out;
}
/** A MAC table block as Linux sends it: le32 count, then the addresses. */
export const block = (addrs: readonly string[]): Uint8Array => cat(le32(addrs.length), ...addrs.map(mac));
/** Cuts `all` into segments at the given offsets (ascending). */
export function cut(all: Uint8Array, ...at: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (const to of [...at, all.length]) {
    out.push(all.slice(from, to));
    from = to;
  }
  return out;
}

// ---- step builders --------------------------------------------------------------------------

/** A chain as Linux lays it out: header, each payload part, ack — one descriptor each. */
const linux = (label: string, cls: number, cmd: number, ...payload: Uint8Array[]): CtrlStep => ({
  kind: 'chain',
  label,
  segments: [hdr(cls, cmd), ...payload],
  ackLen: 1,
  indirect: false,
});
/** A chain with the readable bytes split exactly as given. */
const raw = (label: string, segments: Uint8Array[], ackLen = 1): CtrlStep => ({ kind: 'chain', label, segments, ackLen, indirect: false });
const viaIndirect = (label: string, segments: Uint8Array[]): CtrlStep => ({ kind: 'chain', label, segments, ackLen: 1, indirect: true });
const ANNOUNCE: CtrlStep = { kind: 'announce' };
const QUERY: CtrlStep = { kind: 'query' };
const RESET: CtrlStep = { kind: 'reset' };
const rx = (label: string, cmd: number, value: number): CtrlStep => linux(label, Cls.RX, cmd, bytes(value));
const vlan = (label: string, cmd: number, vid: number): CtrlStep => linux(label, Cls.VLAN, cmd, le16(vid));
const table = (label: string, uni: Uint8Array, multi: Uint8Array): CtrlStep => linux(label, Cls.MAC, Mac.TABLE_SET, uni, multi);
const tableOf = (label: string, nUni: number, nMulti: number): CtrlStep =>
  table(label, cat(le32(nUni), macs(nUni, 0x02)), cat(le32(nMulti), macs(nMulti, 0x01)));

const c = (name: string, features: readonly FeatureName[], ...steps: CtrlStep[]): CtrlCase => ({ name, features, steps });

/** Microsoft's RSS verification key ("Verifying the RSS Hash Calculation"), 40 bytes. */
const MS_KEY: readonly number[] = [
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
  0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
/** struct virtio_net_rss_config (§5.1.6.5.7.1): hash_types, mask, unclassified_queue, table, max_tx_vq, key length, key. */
function rssPayload(types: number, mask: number, unclassified: number, table: readonly number[], maxTxVq: number, key: readonly number[]): Uint8Array {
  return cat(le32(types), le16(mask), le16(unclassified), ...table.map(le16), le16(maxTxVq), bytes(key.length), Uint8Array.from(key));
}
const rssConfig = (label: string, types: number, mask: number, unclassified: number, table: readonly number[], maxTxVq: number, key: readonly number[]): CtrlStep =>
  linux(label, Cls.MQ, Mq.RSS_CONFIG, rssPayload(types, mask, unclassified, table, maxTxVq, key));
/** struct virtio_net_hash_config (§5.1.6.5.6.4): hash_types, reserved[4] (zero), key length, key. */
const hashConfig = (label: string, types: number, key: readonly number[]): CtrlStep =>
  linux(label, Cls.MQ, Mq.HASH_CONFIG, cat(le32(types), new Uint8Array(8), bytes(key.length), Uint8Array.from(key)));

/** 0x2AAAAAAB × 6 = 0x1_0000_0002: a unicast count whose byte length wraps to 2 in 32 bits. */
export const WRAPPING_COUNT = 0x2aaa_aaab;

// ---- the corpus -----------------------------------------------------------------------------

export const CORPUS: readonly CtrlCase[] = [
  // RX class (§5.1.6.5.1): one data byte; QEMU stores it as given (non-zero = on).
  c('rx_promisc_0_leaves_promiscuous_mode', FULL, rx('PROMISC 0', Rx.PROMISC, 0)),
  c('rx_promisc_0_then_1', FULL, rx('PROMISC 0', Rx.PROMISC, 0), QUERY, rx('PROMISC 1', Rx.PROMISC, 1)),
  c('rx_allmulti_1', FULL, rx('ALLMULTI 1', Rx.ALLMULTI, 1)),
  c('rx_alluni_1', FULL, rx('ALLUNI 1', Rx.ALLUNI, 1)),
  c('rx_nomulti_1', FULL, rx('NOMULTI 1', Rx.NOMULTI, 1)),
  c('rx_nouni_1', FULL, rx('NOUNI 1', Rx.NOUNI, 1)),
  c('rx_nobcast_1', FULL, rx('NOBCAST 1', Rx.NOBCAST, 1)),
  c('rx_every_mode_on_then_off', FULL,
    ...[0, 1, 2, 3, 4, 5].map((cmd) => rx(`RX ${cmd} 1`, cmd, 1)), QUERY,
    ...[0, 1, 2, 3, 4, 5].map((cmd) => rx(`RX ${cmd} 0`, cmd, 0))),
  c('rx_value_2_counts_as_on', FULL, rx('PROMISC 0', Rx.PROMISC, 0), rx('ALLMULTI 2', Rx.ALLMULTI, 2), rx('NOMULTI 2', Rx.NOMULTI, 2)),
  c('rx_value_0xff_counts_as_on', FULL, rx('NOBCAST 0xff', Rx.NOBCAST, 0xff), rx('ALLUNI 0xff', Rx.ALLUNI, 0xff)),
  c('rx_missing_data_byte_is_err', FULL, linux('PROMISC (no data)', Cls.RX, Rx.PROMISC)),
  c('rx_header_split_without_data_is_err', FULL, raw('PROMISC [1|1], no data', [bytes(Cls.RX), bytes(Rx.PROMISC)])),
  c('rx_extra_data_bytes_are_ignored', FULL, linux('PROMISC 0 + 2 extra', Cls.RX, Rx.PROMISC, bytes(0, 1, 2))),
  c('rx_command_6_is_unknown', FULL, rx('RX 6 1', 6, 1)),
  c('rx_command_0xff_is_unknown', FULL, rx('RX 0xff 0', 0xff, 0)),
  c('rx_header_split_one_byte_per_descriptor', FULL, raw('PROMISC 0 [1|1|1]', [bytes(Cls.RX), bytes(Rx.PROMISC), bytes(0)])),
  c('rx_header_and_data_in_one_descriptor', FULL, raw('ALLMULTI 1 [3]', [bytes(Cls.RX, Rx.ALLMULTI, 1)])),
  c('rx_class_byte_alone_then_command_and_data', FULL, raw('NOBCAST 1 [1|2]', [bytes(Cls.RX), bytes(Rx.NOBCAST, 1)])),
  c('rx_modes_return_to_promiscuous_only_after_reset', FULL, ...[0, 1, 2, 3, 4, 5].map((cmd) => rx(`RX ${cmd} 1`, cmd, cmd === 0 ? 0 : 1)), QUERY, RESET),
  c('rx_extra_modes_without_ctrl_rx_extra', NO_RX_EXTRA, rx('ALLUNI 1', Rx.ALLUNI, 1), rx('NOBCAST 1', Rx.NOBCAST, 1)),
  c('rx_promisc_without_ctrl_rx', CTRL_VQ_ONLY, rx('PROMISC 0', Rx.PROMISC, 0)),

  // MAC class (§5.1.6.5.2): ADDR_SET takes exactly 6 bytes.
  c('mac_addr_set_6_bytes', FULL, linux('ADDR_SET 02:11:22:33:44:55', Cls.MAC, Mac.ADDR_SET, mac('02:11:22:33:44:55'))),
  c('mac_addr_set_5_bytes_is_err', FULL, linux('ADDR_SET 5 bytes', Cls.MAC, Mac.ADDR_SET, bytes(2, 0x11, 0x22, 0x33, 0x44))),
  c('mac_addr_set_7_bytes_is_err', FULL, linux('ADDR_SET 7 bytes', Cls.MAC, Mac.ADDR_SET, bytes(2, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66))),
  c('mac_addr_set_empty_is_err', FULL, linux('ADDR_SET 0 bytes', Cls.MAC, Mac.ADDR_SET)),
  c('mac_addr_set_split_at_odd_bytes', FULL, raw('ADDR_SET [1|3|3|1]', cut(cat(hdr(Cls.MAC, Mac.ADDR_SET), mac('02:aa:bb:cc:dd:ee')), 1, 4, 7))),
  c('mac_addr_set_header_and_address_in_one_descriptor', FULL, raw('ADDR_SET [8]', [cat(hdr(Cls.MAC, Mac.ADDR_SET), mac('06:00:00:00:00:01'))])),
  c('mac_addr_set_group_address_is_taken', FULL, linux('ADDR_SET 01:00:5e:00:00:07', Cls.MAC, Mac.ADDR_SET, mac('01:00:5e:00:00:07'))),
  c('mac_addr_set_without_ctrl_mac_addr', NO_MAC_ADDR, linux('ADDR_SET 02:00:00:00:00:09', Cls.MAC, Mac.ADDR_SET, mac('02:00:00:00:00:09'))),
  c('mac_addr_set_twice_keeps_the_last', FULL,
    linux('ADDR_SET a', Cls.MAC, Mac.ADDR_SET, mac('02:00:00:00:00:0a')), linux('ADDR_SET b', Cls.MAC, Mac.ADDR_SET, mac('02:00:00:00:00:0b'))),
  c('mac_addr_set_then_reset_restores_the_configured_mac', FULL, linux('ADDR_SET', Cls.MAC, Mac.ADDR_SET, mac('02:00:00:00:00:0c')), QUERY, RESET),
  c('mac_command_2_is_unknown', FULL, linux('MAC 2', Cls.MAC, 2, mac('02:00:00:00:00:01'))),
  c('mac_command_0xff_is_unknown', FULL, linux('MAC 0xff', Cls.MAC, 0xff)),

  // MAC TABLE_SET (§5.1.6.5.2): le32 N, N×6, le32 M, M×6; 64 entries shared; overflow = accept all of a kind.
  c('table_set_one_unicast_one_multicast', FULL, table('1+1', block(['02:00:00:00:00:07']), block(['01:00:5e:00:00:01']))),
  c('table_set_empty', FULL, tableOf('0+0', 0, 0)),
  c('table_set_empty_after_entries_clears_them', FULL, tableOf('3+3', 3, 3), tableOf('0+0', 0, 0)),
  c('table_set_64_unicast_fills_the_table', FULL, tableOf('64+0', 64, 0)),
  c('table_set_65_unicast_overflows', FULL, tableOf('65+0', 65, 0)),
  c('table_set_65_unicast_overflow_keeps_multicast', FULL, tableOf('65+2', 65, 2)),
  c('table_set_60_plus_5_multicast_overflows', FULL, tableOf('60+5', 60, 5)),
  c('table_set_64_plus_1_multicast_overflows', FULL, tableOf('64+1', 64, 1)),
  c('table_set_0_plus_64_multicast', FULL, tableOf('0+64', 0, 64)),
  c('table_set_0_plus_65_multicast_overflows', FULL, tableOf('0+65', 0, 65)),
  c('table_set_no_payload_is_err', FULL, linux('TABLE_SET (no data)', Cls.MAC, Mac.TABLE_SET)),
  c('table_set_truncated_in_unicast_count_is_err', FULL, linux('TABLE_SET 3 bytes', Cls.MAC, Mac.TABLE_SET, bytes(1, 0, 0))),
  c('table_set_truncated_in_unicast_entries_is_err', FULL, linux('TABLE_SET N=2, 1 entry', Cls.MAC, Mac.TABLE_SET, cat(le32(2), macs(1, 0x02)))),
  c('table_set_truncated_before_multicast_count_is_err', FULL, linux('TABLE_SET N=1, no M', Cls.MAC, Mac.TABLE_SET, cat(le32(1), macs(1, 0x02)))),
  c('table_set_truncated_in_multicast_count_is_err', FULL, linux('TABLE_SET N=0, M 3 bytes', Cls.MAC, Mac.TABLE_SET, le32(0), bytes(1, 0, 0))),
  c('table_set_truncated_in_multicast_entries_is_err', FULL, table('N=0, M=2, 1 entry', le32(0), cat(le32(2), macs(1, 0x01)))),
  c('table_set_trailing_byte_is_err', FULL, table('1+1 + 1 trailing', block(['02:00:00:00:00:07']), cat(block(['01:00:5e:00:00:01']), bytes(7)))),
  c('table_set_failure_keeps_the_previous_table', FULL, tableOf('2+2', 2, 2), QUERY, linux('TABLE_SET truncated', Cls.MAC, Mac.TABLE_SET, cat(le32(2), macs(1, 0x02)))),
  c('table_set_replaces_the_previous_table', FULL, tableOf('4+4', 4, 4), table('1+0', block(['02:00:00:00:00:99']), le32(0))),
  c('table_set_count_x6_overflows_32_bits_and_length_check_fails', FULL,
    linux('TABLE_SET N=0xffffffff', Cls.MAC, Mac.TABLE_SET, cat(le32(0xffff_ffff), macs(2, 0x02), le32(0)))),
  c('table_set_count_x6_wraps_32_bits', FULL, linux('TABLE_SET N=0x2aaaaaab', Cls.MAC, Mac.TABLE_SET, cat(le32(WRAPPING_COUNT), bytes(0xaa, 0xbb), le32(0)))),
  c('table_set_split_at_odd_bytes', FULL,
    raw('1+2 cut at 1,5,9,14,23', cut(
      cat(hdr(Cls.MAC, Mac.TABLE_SET), block(['02:00:00:00:01:01']), block(['01:00:5e:7f:00:01', '33:33:00:00:00:fb'])), 1, 5, 9, 14, 23))),
  c('table_set_one_byte_per_descriptor', FULL,
    raw('1+1, 22 descriptors', cut(cat(hdr(Cls.MAC, Mac.TABLE_SET), block(['02:00:00:00:03:01']), block(['01:00:5e:00:00:02'])), ...Array.from({ length: 21 }, (_, i) => i + 1)))),
  c('table_set_65_declared_but_64_present_is_err', FULL, linux('TABLE_SET N=65, 64 entries', Cls.MAC, Mac.TABLE_SET, cat(le32(65), macs(64, 0x02)), le32(0))),
  c('table_set_whole_command_in_one_descriptor', FULL, raw('2+1 [1]', [cat(hdr(Cls.MAC, Mac.TABLE_SET), block(['02:00:00:00:02:01', '02:00:00:00:02:02']), block(['01:00:5e:00:00:fb']))])),
  c('table_set_unicast_list_holds_a_group_address', FULL, table('group in unicast', block(['01:00:5e:00:00:09']), block([]))),
  c('table_set_multicast_list_holds_an_individual_address', FULL, table('individual in multicast', block([]), block(['02:00:00:00:00:09']))),
  c('table_set_duplicate_addresses_are_kept', FULL, table('dup', block(['02:00:00:00:00:01', '02:00:00:00:00:01']), block(['01:00:5e:00:00:01', '01:00:5e:00:00:01']))),
  c('table_set_then_reset_empties_the_table', FULL, tableOf('3+3', 3, 3), QUERY, RESET),
  c('table_set_without_ctrl_rx', CTRL_VQ_ONLY, tableOf('1+1', 1, 1)),

  // VLAN class (§5.1.6.5.3): le16 id below 4096; extra bytes ignored.
  c('vlan_add_0', FULL, vlan('ADD 0', Vlan.ADD, 0)),
  c('vlan_add_4095', FULL, vlan('ADD 4095', Vlan.ADD, 4095)),
  c('vlan_add_4096_is_err', FULL, vlan('ADD 4096', Vlan.ADD, 4096)),
  c('vlan_add_0xffff_is_err', FULL, vlan('ADD 0xffff', Vlan.ADD, 0xffff)),
  c('vlan_add_one_byte_is_err', FULL, linux('ADD [1 byte]', Cls.VLAN, Vlan.ADD, bytes(5))),
  c('vlan_add_no_data_is_err', FULL, linux('ADD (no data)', Cls.VLAN, Vlan.ADD)),
  c('vlan_add_three_bytes_uses_the_first_two', FULL, linux('ADD 7 + 1 extra', Cls.VLAN, Vlan.ADD, bytes(7, 0, 0x10))),
  c('vlan_id_split_across_descriptors', FULL, raw('ADD 0x123 [2|1|1]', [hdr(Cls.VLAN, Vlan.ADD), bytes(0x23), bytes(0x01)])),
  c('vlan_header_and_id_in_one_descriptor', FULL, raw('ADD 300 [4]', [cat(hdr(Cls.VLAN, Vlan.ADD), le16(300))])),
  c('vlan_del_of_a_present_id', FULL, vlan('ADD 10', Vlan.ADD, 10), vlan('ADD 11', Vlan.ADD, 11), vlan('DEL 10', Vlan.DEL, 10)),
  c('vlan_del_of_an_absent_id_is_ok', FULL, vlan('DEL 42', Vlan.DEL, 42)),
  c('vlan_del_4096_is_err', FULL, vlan('DEL 4096', Vlan.DEL, 4096)),
  c('vlan_command_2_is_unknown', FULL, vlan('VLAN 2 5', 2, 5)),
  c('vlan_add_twice_then_del_then_add', FULL, vlan('ADD 7', Vlan.ADD, 7), vlan('ADD 7 again', Vlan.ADD, 7), QUERY, vlan('DEL 7', Vlan.DEL, 7), vlan('ADD 8', Vlan.ADD, 8)),
  c('vlan_table_lists_ids_descending', FULL, ...[5, 100, 3, 4095, 0, 64].map((v) => vlan(`ADD ${v}`, Vlan.ADD, v))),
  c('vlan_add_without_ctrl_vlan_keeps_allow_all', NO_CTRL_VLAN, vlan('ADD 5', Vlan.ADD, 5)),
  c('vlan_del_without_ctrl_vlan_punches_a_hole', NO_CTRL_VLAN, vlan('DEL 5', Vlan.DEL, 5)),
  c('vlan_table_after_reset_with_ctrl_vlan_starts_empty', FULL, vlan('ADD 5', Vlan.ADD, 5), QUERY, RESET, vlan('ADD 6', Vlan.ADD, 6)),
  c('vlan_hole_without_ctrl_vlan_across_reset', NO_CTRL_VLAN, vlan('DEL 5', Vlan.DEL, 5), QUERY, RESET),

  // ANNOUNCE class (§5.1.6.5.4): ACK only while VIRTIO_NET_S_ANNOUNCE is set.
  c('announce_ack_without_pending_announce_is_err', FULL, linux('ANNOUNCE_ACK', Cls.ANNOUNCE, Announce.ACK)),
  c('announce_ack_with_pending_announce', FULL, ANNOUNCE, linux('ANNOUNCE_ACK', Cls.ANNOUNCE, Announce.ACK)),
  c('announce_ack_twice_second_is_err', FULL, ANNOUNCE, linux('ANNOUNCE_ACK 1', Cls.ANNOUNCE, Announce.ACK), linux('ANNOUNCE_ACK 2', Cls.ANNOUNCE, Announce.ACK)),
  c('announce_ack_with_data_bytes', FULL, ANNOUNCE, linux('ANNOUNCE_ACK + 2 bytes', Cls.ANNOUNCE, Announce.ACK, bytes(1, 2))),
  c('announce_command_1_is_unknown', FULL, ANNOUNCE, linux('ANNOUNCE 1', Cls.ANNOUNCE, 1)),
  c('announce_without_guest_announce', NO_ANNOUNCE, ANNOUNCE, linux('ANNOUNCE_ACK', Cls.ANNOUNCE, Announce.ACK)),
  c('announce_pending_survives_other_commands', FULL, ANNOUNCE, rx('PROMISC 0', Rx.PROMISC, 0)),
  c('announce_pending_is_cleared_by_reset', FULL, ANNOUNCE, QUERY, RESET, linux('ANNOUNCE_ACK', Cls.ANNOUNCE, Announce.ACK)),
  c('announce_without_status_feature', NO_STATUS, ANNOUNCE, linux('ANNOUNCE_ACK', Cls.ANNOUNCE, Announce.ACK)),

  // MQ (§5.1.6.5.6) and GUEST_OFFLOADS (§5.1.6.5.8): refused without their feature.
  c('mq_vq_pairs_set_without_mq_is_err', FULL, linux('VQ_PAIRS_SET 1', Cls.MQ, Mq.VQ_PAIRS_SET, le16(1))),
  c('mq_rss_config_without_rss_is_err', FULL, linux('RSS_CONFIG', Cls.MQ, Mq.RSS_CONFIG, new Uint8Array(16))),
  c('mq_hash_config_without_hash_report_is_err', WITH_MQ, linux('HASH_CONFIG', Cls.MQ, Mq.HASH_CONFIG, new Uint8Array(16))),
  c('mq_vq_pairs_set_1_with_mq', WITH_MQ, linux('VQ_PAIRS_SET 1', Cls.MQ, Mq.VQ_PAIRS_SET, le16(1))),
  c('mq_vq_pairs_set_0_is_err', WITH_MQ, linux('VQ_PAIRS_SET 0', Cls.MQ, Mq.VQ_PAIRS_SET, le16(0))),
  c('mq_vq_pairs_set_0x8001_is_err', WITH_MQ, linux('VQ_PAIRS_SET 0x8001', Cls.MQ, Mq.VQ_PAIRS_SET, le16(0x8001))),
  c('mq_vq_pairs_set_one_byte_is_err', WITH_MQ, linux('VQ_PAIRS_SET [1 byte]', Cls.MQ, Mq.VQ_PAIRS_SET, bytes(1))),
  c('mq_vq_pairs_set_with_a_trailing_byte', WITH_MQ, linux('VQ_PAIRS_SET 1 + 1', Cls.MQ, Mq.VQ_PAIRS_SET, bytes(1, 0, 9))),
  c('mq_command_3_is_unknown', WITH_MQ, linux('MQ 3', Cls.MQ, 3, le16(1))),
  // RSS_CONFIG / HASH_CONFIG (§5.1.6.5.7.1, §5.1.6.5.6.4) with one queue pair: max_virtqueue_pairs 1
  // on both sides, so every rule QEMU checks can be judged the same way.
  c('rss_config_one_queue_toeplitz_key', WITH_RSS, rssConfig('RSS_CONFIG types 0x3f [0]', 0x3f, 0, 0, [0], 1, MS_KEY)),
  c('rss_config_128_entries', WITH_RSS, rssConfig('RSS_CONFIG [0 x128]', 0x1ff, 127, 0, new Array<number>(128).fill(0), 1, MS_KEY)),
  c('rss_config_no_types_no_key_turns_rss_off', WITH_RSS, rssConfig('RSS_CONFIG off', 0, 0, 0, [0], 1, [])),
  c('rss_config_table_length_3_is_err', WITH_RSS, rssConfig('RSS_CONFIG mask 2', 0x3f, 2, 0, [0, 0, 0], 1, MS_KEY)),
  c('rss_config_table_length_256_is_err', WITH_RSS, rssConfig('RSS_CONFIG mask 255', 0x3f, 255, 0, new Array<number>(256).fill(0), 1, MS_KEY)),
  c('rss_config_unclassified_queue_1_is_err', WITH_RSS, rssConfig('RSS_CONFIG unclassified 1', 0x3f, 0, 1, [0], 1, MS_KEY)),
  c('rss_config_max_tx_vq_0_is_err', WITH_RSS, rssConfig('RSS_CONFIG max_tx_vq 0', 0x3f, 0, 0, [0], 0, MS_KEY)),
  c('rss_config_max_tx_vq_2_is_err', WITH_RSS, rssConfig('RSS_CONFIG max_tx_vq 2', 0x3f, 0, 0, [0], 2, MS_KEY)),
  c('rss_config_key_41_bytes_is_err', WITH_RSS, rssConfig('RSS_CONFIG key 41', 0x3f, 0, 0, [0], 1, [...MS_KEY, 7])),
  c('rss_config_hash_types_without_key_is_err', WITH_RSS, rssConfig('RSS_CONFIG types, no key', 0x3f, 0, 0, [0], 1, [])),
  c('rss_config_key_without_hash_types', WITH_RSS, rssConfig('RSS_CONFIG key, no types', 0, 0, 0, [0], 1, MS_KEY.slice(0, 20))),
  c('rss_config_unsupported_hash_types_are_ignored', WITH_RSS, rssConfig('RSS_CONFIG types 0xfffffe01', 0xfffffe01, 0, 0, [0], 1, MS_KEY)),
  c('rss_config_fixed_part_only_is_err', WITH_RSS, linux('RSS_CONFIG [8 bytes]', Cls.MQ, Mq.RSS_CONFIG, cat(le32(0x3f), le16(0), le16(0)))),
  c('rss_config_7_bytes_is_err', WITH_RSS, linux('RSS_CONFIG [7 bytes]', Cls.MQ, Mq.RSS_CONFIG, bytes(0x3f, 0, 0, 0, 0, 0, 0))),
  c('rss_config_key_cut_short_is_err', WITH_RSS, linux('RSS_CONFIG key 40, 39 sent', Cls.MQ, Mq.RSS_CONFIG, rssPayload(0x3f, 0, 0, [0], 1, MS_KEY).slice(0, -1))),
  c('rss_config_trailing_bytes_are_ignored', WITH_RSS, linux('RSS_CONFIG + 3', Cls.MQ, Mq.RSS_CONFIG, rssPayload(0x3f, 0, 0, [0], 1, MS_KEY), bytes(1, 2, 3))),
  c('rss_config_table_entry_beyond_the_devices_queues', WITH_RSS, rssConfig('RSS_CONFIG [1] max_tx_vq 1', 0x3f, 0, 0, [1], 1, MS_KEY)),
  c('rss_config_refused_then_good', WITH_RSS, rssConfig('RSS_CONFIG mask 2', 0x3f, 2, 0, [0, 0, 0], 1, MS_KEY), rssConfig('RSS_CONFIG [0]', 0x12, 0, 0, [0], 1, MS_KEY)),
  c('rss_config_split_across_descriptors', WITH_RSS, raw('RSS_CONFIG [2|5|rest]', cut(cat(hdr(Cls.MQ, Mq.RSS_CONFIG), rssPayload(0x3f, 1, 0, [0, 0], 1, MS_KEY)), 2, 7))),
  c('hash_config_with_rss_but_without_hash_report_is_err', WITH_RSS, hashConfig('HASH_CONFIG types 0x1ff', 0x1ff, MS_KEY)),
  c('rss_config_then_hash_config_without_hash_report', WITH_RSS, rssConfig('RSS_CONFIG [0]', 0x3f, 0, 0, [0], 1, MS_KEY), hashConfig('HASH_CONFIG types 0x2', 0x2, MS_KEY.slice(0, 16))),
  c('rss_config_across_reset', WITH_RSS, rssConfig('RSS_CONFIG [0]', 0x3f, 0, 0, [0], 1, MS_KEY), RESET, rssConfig('RSS_CONFIG mask 1', 0x3f, 1, 0, [0, 0], 1, MS_KEY)),

  c('guest_offloads_set_without_ctrl_guest_offloads_is_err', FULL, linux('OFFLOADS_SET 0', Cls.GUEST_OFFLOADS, Offloads.SET, new Uint8Array(8))),
  c('guest_offloads_command_1_without_ctrl_guest_offloads_is_err', FULL, linux('OFFLOADS 1', Cls.GUEST_OFFLOADS, 1, new Uint8Array(8))),
  c('guest_offloads_short_without_ctrl_guest_offloads_is_err', FULL, linux('OFFLOADS_SET [3 bytes]', Cls.GUEST_OFFLOADS, Offloads.SET, bytes(1, 2, 3))),

  // Unknown classes.
  c('unknown_class_6_notf_coal_is_err', FULL, linux('class 6', Cls.NOTF_COAL, 0, new Uint8Array(8))),
  c('unknown_class_7_is_err', FULL, linux('class 7', 7, 0, bytes(1))),
  c('unknown_class_0xff_is_err', FULL, linux('class 0xff', 0xff, 0xff)),

  // What Linux 6.1's virtio_net sends (REAL-GUEST.md), each part in its own descriptor.
  c('linux_link_up_burst', FULL,
    rx('PROMISC 0', Rx.PROMISC, 0), rx('ALLMULTI 0', Rx.ALLMULTI, 0),
    table('TABLE_SET 0 + [01:00:5e:00:00:01, 33:33:00:00:00:01]', block([]), block(['01:00:5e:00:00:01', '33:33:00:00:00:01'])),
    vlan('ADD 0', Vlan.ADD, 0)),
  c('linux_link_up_burst_without_ctrl_vlan', NO_CTRL_VLAN,
    rx('PROMISC 0', Rx.PROMISC, 0), rx('ALLMULTI 0', Rx.ALLMULTI, 0), table('TABLE_SET 0 + [01:00:5e:00:00:01]', block([]), block(['01:00:5e:00:00:01']))),
  c('linux_ip_link_set_promisc_on_then_off', FULL, rx('PROMISC 0', Rx.PROMISC, 0), QUERY, rx('PROMISC 1', Rx.PROMISC, 1), QUERY, rx('PROMISC 0', Rx.PROMISC, 0)),
  c('linux_ip_link_set_allmulticast_on', FULL, rx('PROMISC 0', Rx.PROMISC, 0), rx('ALLMULTI 1', Rx.ALLMULTI, 1)),
  c('linux_vlan_subinterface', FULL,
    rx('PROMISC 0', Rx.PROMISC, 0), vlan('ADD 0', Vlan.ADD, 0), QUERY, vlan('ADD 100', Vlan.ADD, 100),
    table('TABLE_SET + 01:80:c2:00:00:21', block([]), block(['01:00:5e:00:00:01', '33:33:00:00:00:01', '01:80:c2:00:00:21']))),
  c('linux_address_change', FULL, linux('ADDR_SET', Cls.MAC, Mac.ADDR_SET, mac('52:54:00:aa:bb:cc')), table('TABLE_SET', block([]), block(['01:00:5e:00:00:01']))),
  c('linux_secondary_unicast_addresses', FULL, rx('PROMISC 0', Rx.PROMISC, 0),
    table('TABLE_SET 2 uni (macvlan)', block(['02:00:00:00:10:01', '02:00:00:00:10:02']), block(['01:00:5e:00:00:01']))),

  // NIC_RX_FILTER_CHANGED: once until the next query; refused commands never fire it.
  c('events_fire_once_until_a_query', FULL, rx('PROMISC 0', Rx.PROMISC, 0), rx('ALLMULTI 1', Rx.ALLMULTI, 1), QUERY, rx('NOBCAST 1', Rx.NOBCAST, 1), vlan('ADD 1', Vlan.ADD, 1)),
  c('refused_commands_fire_no_event', FULL,
    vlan('ADD 4096', Vlan.ADD, 4096), linux('ADDR_SET 5', Cls.MAC, Mac.ADDR_SET, bytes(1, 2, 3, 4, 5)), rx('RX 9', 9, 1), tableOf('65+0 (accepted: fires)', 65, 0)),
  c('noop_commands_still_fire', FULL, vlan('DEL 9', Vlan.DEL, 9), QUERY, linux('ADDR_SET same', Cls.MAC, Mac.ADDR_SET, mac(NIC_MAC))),

  // The ack (§5.1.6.5): one byte written, used length 1, whatever the writable space.
  c('ack_of_four_bytes_gets_one', FULL, raw('PROMISC 0, ack 4', [hdr(Cls.RX, Rx.PROMISC), bytes(0)], 4)),
  c('ack_of_four_bytes_on_an_error', FULL, raw('RX 6, ack 4', [hdr(Cls.RX, 6), bytes(0)], 4)),

  // Chains QEMU treats as breaking the device (tier 1): no ack, fewer than 2 header bytes.
  c('chain_without_ack_descriptor_needs_reset', FULL, rx('PROMISC 0', Rx.PROMISC, 0), raw('ALLMULTI 1, no ack', [hdr(Cls.RX, Rx.ALLMULTI), bytes(1)], 0)),
  c('chain_with_one_header_byte_needs_reset', FULL, raw('1 byte', [bytes(Cls.RX)])),
  c('chain_with_one_header_byte_and_no_ack_needs_reset', FULL, raw('1 byte, no ack', [bytes(Cls.RX)], 0)),
  c('chain_of_only_an_ack_needs_reset', FULL, raw('ack only', [])),
  c('device_recovers_after_a_breaking_chain_and_reset', FULL, raw('1 byte', [bytes(Cls.MAC)]), RESET, rx('PROMISC 0', Rx.PROMISC, 0)),

  // Chains whose descriptors QEMU and the model judge differently (see KNOWN_DIFFERENCES).
  c('zero_length_descriptor_between_header_and_data', FULL, raw('PROMISC [2|0|1]', [hdr(Cls.RX, Rx.PROMISC), new Uint8Array(0), bytes(0)])),
  c('indirect_chain_without_ring_indirect_desc', FULL, viaIndirect('PROMISC 0 via indirect', [hdr(Cls.RX, Rx.PROMISC), bytes(0)])),
];

/** The rows of the command table (§5.1.6.5): every (class, command) the corpus must exercise. */
export const COMMAND_TABLE: readonly { readonly cls: number; readonly cmd: number; readonly row: string }[] = [
  ...Object.entries(Rx).map(([n, cmd]) => ({ cls: Cls.RX, cmd, row: `RX ${n}` })),
  { cls: Cls.RX, cmd: 6, row: 'RX unknown command' },
  ...Object.entries(Mac).map(([n, cmd]) => ({ cls: Cls.MAC, cmd, row: `MAC ${n}` })),
  { cls: Cls.MAC, cmd: 2, row: 'MAC unknown command' },
  ...Object.entries(Vlan).map(([n, cmd]) => ({ cls: Cls.VLAN, cmd, row: `VLAN ${n}` })),
  { cls: Cls.VLAN, cmd: 2, row: 'VLAN unknown command' },
  { cls: Cls.ANNOUNCE, cmd: Announce.ACK, row: 'ANNOUNCE ACK' },
  { cls: Cls.ANNOUNCE, cmd: 1, row: 'ANNOUNCE unknown command' },
  ...Object.entries(Mq).map(([n, cmd]) => ({ cls: Cls.MQ, cmd, row: `MQ ${n}` })),
  { cls: Cls.GUEST_OFFLOADS, cmd: Offloads.SET, row: 'GUEST_OFFLOADS SET' },
  { cls: Cls.NOTF_COAL, cmd: 0, row: 'unknown class' },
];
