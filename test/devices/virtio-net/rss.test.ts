// RSS and HASH_REPORT end to end through the control queue and the datapath (VIRTIO 1.2
// §5.1.6.5.7 RSS, §5.1.6.5.6.4 HASH_CONFIG, §5.1.6.4.3–4 hash calculation and report, §5.1.6.5.6
// automatic steering), multiqueue backends (MemoryNetdev({ queues })), per-queue counters and the
// RSS state across save/restore. Expected queues and hashes come from the reference Toeplitz in
// rss-frames.ts, not from the device's own code.

import { expect } from 'chai';
import { NetRig, le16 } from '../../support/net-rig.js';
import { CtrlAck, CtrlClass, CtrlMq } from '../../../devices/virtio-net/constants.js';
import { HashReport, HashType } from '../../../devices/virtio-net/rss-hash.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { VirtioMmioTransport } from '../../../devices/virtio/mmio-transport.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { MS_KEY, arpFrame, be16, ipv4Bytes, refToeplitz, v4Frame } from './rss-frames.js';

const RSS_ON = { enable: ['RSS', 'HASH_REPORT'] };

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
}

interface RssPayload {
  types: number;
  table: number[];
  unclassified?: number;
  maxTxVq: number;
  key?: readonly number[] | Uint8Array;
  /** Overrides the mask field (default table.length - 1). */
  mask?: number;
}

function rssPayload(o: RssPayload): number[] {
  const key = [...(o.key ?? MS_KEY)];
  return [...le32(o.types), ...le16(o.mask ?? o.table.length - 1), ...le16(o.unclassified ?? 0), ...o.table.flatMap((q) => le16(q)), ...le16(o.maxTxVq), key.length, ...key];
}

function hashConfigPayload(types: number, key: readonly number[] | Uint8Array = MS_KEY, reserved = 0): number[] {
  return [...le32(types), ...new Array<number>(8).fill(reserved), key.length, ...key];
}

/** The TCPv4 4-tuple hash by the reference Toeplitz. */
function tcp4Hash(src: string, dst: string, sport: number, dport: number, key: Uint8Array = MS_KEY): number {
  return refToeplitz(key, Uint8Array.from([...ipv4Bytes(src), ...ipv4Bytes(dst), ...be16(sport), ...be16(dport)]));
}

/** 16 TCP flows from distinct ports. */
const FLOWS = Array.from({ length: 16 }, (_, i) => ({ src: `10.0.${i}.1`, dst: '10.0.2.15', sport: 40000 + 17 * i, dport: 80 }));

function lastCodes(rig: NetRig): string[] {
  return rig.device.diagnostics().map((d) => d.code);
}

function postAll(rig: NetRig, pairs: number, count = 32): void {
  for (let k = 0; k < pairs; k++) rig.postRx(count, 1526, { queue: 2 * k });
}

describe('devices/virtio-net RSS and hash report', () => {
  describe('configuration space (§5.1.4)', () => {
    it('rss_fields_exist_with_rss_or_hash_report', () => {
      const rig = new NetRig({ queuePairs: 4, features: RSS_ON });
      expect(rig.has('RSS') && rig.has('HASH_REPORT')).to.equal(true);
      expect(rig.driver.readConfig(8, 2), 'max_virtqueue_pairs').to.equal(4);
      expect(rig.driver.readConfig(17, 1), 'rss_max_key_size').to.equal(40);
      expect(rig.driver.readConfig(18, 2), 'rss_max_indirection_table_length').to.equal(128);
      expect(rig.driver.readConfig(20, 4), 'supported_hash_types').to.equal(0x1ff);
    });

    it('rss_and_hash_report_are_off_by_default_and_need_ctrl_vq', () => {
      expect(new NetRig({ queuePairs: 2 }).has('RSS')).to.equal(false);
      const noCtrl = new NetRig({ queuePairs: 2, features: { enable: ['RSS', 'HASH_REPORT'], disable: ['CTRL_VQ'] } });
      expect(noCtrl.has('RSS') || noCtrl.has('HASH_REPORT')).to.equal(false);
    });

    it('rss_alone_makes_n_the_configured_pairs_and_the_control_queue_2n', () => {
      const rig = new NetRig({ queuePairs: 3, features: { enable: ['RSS'], disable: ['MQ'] } });
      expect(rig.has('MQ')).to.equal(false);
      expect(rig.ctrlIndex).to.equal(6);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4, table: [0, 1, 2, 1], maxTxVq: 3 }))).to.equal(CtrlAck.OK);
      expect(rig.device.activeQueuePairs).to.equal(3);
    });
  });

  describe('RSS_CONFIG and HASH_CONFIG (§5.1.6.5.7, §5.1.6.5.6.4)', () => {
    it('a_good_rss_config_is_acked_and_sets_the_pairs_in_use_to_max_tx_vq', () => {
      const rig = new NetRig({ queuePairs: 4, features: RSS_ON });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4 | HashType.IPv4, table: [0, 1], maxTxVq: 2 }))).to.equal(CtrlAck.OK);
      expect(rig.device.activeQueuePairs).to.equal(2);
      expect(rig.device.diagnostics()).to.deep.equal([]);
      expect(rig.device.stats().ctrl.byClass['mq']).to.deep.equal({ ok: 1, err: 0 });
    });

    const bad: [string, RssPayload | number[], string, string][] = [
      ['mask_plus_one_not_a_power_of_two', { types: 1, table: [0, 1, 0], maxTxVq: 2 }, 'ctrl.rss-table-length', '5.1.6.5.7.2'],
      ['table_above_128_entries', { types: 1, table: new Array<number>(256).fill(0), maxTxVq: 2 }, 'ctrl.rss-table-length', '5.1.6.5.7.2'],
      ['unclassified_queue_beyond_the_device', { types: 1, table: [0], unclassified: 4, maxTxVq: 2 }, 'ctrl.rss-queue-out-of-range', '5.1.6.5.7.2'],
      ['table_entry_beyond_the_device', { types: 1, table: [0, 4], maxTxVq: 2 }, 'ctrl.rss-queue-out-of-range', '5.1.6.5.7.2'],
      ['max_tx_vq_zero', { types: 1, table: [0], maxTxVq: 0 }, 'ctrl.rss-max-tx-vq-out-of-range', '5.1.6.5.7.1'],
      ['max_tx_vq_above_max_virtqueue_pairs', { types: 1, table: [0], maxTxVq: 5 }, 'ctrl.rss-max-tx-vq-out-of-range', '5.1.6.5.7.1'],
      ['key_longer_than_rss_max_key_size', { types: 1, table: [0], maxTxVq: 1, key: new Array<number>(41).fill(1) }, 'ctrl.rss-key-length', '5.1.6.5.7.1'],
      ['hash_types_without_a_key', { types: 1, table: [0], maxTxVq: 1, key: [] }, 'ctrl.rss-key-missing', '5.1.6.5.7.1'],
      ['fixed_part_short', [1, 0, 0, 0, 0, 0, 0], 'ctrl.short-payload', '5.1.6.5.7.1'],
      ['table_short', [1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 1, 0], 'ctrl.short-payload', '5.1.6.5.7.1'],
      ['key_short', rssPayload({ types: 1, table: [0], maxTxVq: 1 }).slice(0, -1), 'ctrl.short-payload', '5.1.6.5.7.1'],
    ];
    for (const [name, payload, code, section] of bad) {
      it(`rss_config_${name}_is_err_with_${code.replace(/\W/g, '_')}`, () => {
        const rig = new NetRig({ queuePairs: 4, features: RSS_ON });
        const bytes = Array.isArray(payload) ? payload : rssPayload(payload);
        expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, bytes)).to.equal(CtrlAck.ERR);
        const d = rig.device.diagnostics();
        expect(d.map((x) => x.code)).to.deep.equal([code]);
        expect(d[0]!.section).to.equal(section);
        expect(rig.device.activeQueuePairs, 'a refused command changes nothing').to.equal(1);
      });
    }

    // §5.1.6.5.7.2: entries name *enabled* receive queues; a queue held in reset (§2.6.1) is not one.
    const notEnabled: [string, RssPayload][] = [
      ['unclassified_queue_not_enabled', { types: 1, table: [0], unclassified: 2, maxTxVq: 2 }],
      ['table_entry_not_enabled', { types: 1, table: [0, 2], maxTxVq: 4 }],
    ];
    for (const [name, payload] of notEnabled) {
      it(`rss_config_${name}_is_err_with_ctrl_rss_queue_out_of_range`, () => {
        const rig = new NetRig({ queuePairs: 4, features: RSS_ON });
        rig.resetQueue(4, { reenable: false }); // receiveq3
        expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload(payload))).to.equal(CtrlAck.ERR);
        expect(rig.device.diagnostics().map((d) => [d.code, d.section])).to.deep.equal([['ctrl.rss-queue-out-of-range', '5.1.6.5.7.2']]);
        expect(rig.device.activeQueuePairs, 'a refused command changes nothing').to.equal(1);
      });
    }

    it('a_table_over_enabled_receive_queues_beyond_max_tx_vq_is_acked_and_steers_like_linux_6_1_expects', () => {
      // Linux 6.1 after `ethtool -L eth0 combined 2` and `ethtool -X eth0 equal 2`: VQ_PAIRS_SET 2,
      // then RSS_CONFIG with the table over receiveq1 and receiveq2 but max_tx_vq still 1 (the value
      // it set at probe). max_tx_vq counts transmit queues only (§5.1.6.5.7.1); both receive queues
      // are enabled, so the command is good and the table steers (§5.1.6.5.7.3).
      const rig = new NetRig({ queuePairs: 2, features: RSS_ON });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2))).to.equal(CtrlAck.OK);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4, table: [0, 1], maxTxVq: 1 }))).to.equal(CtrlAck.OK);
      expect(rig.device.diagnostics()).to.deep.equal([]);
      expect(rig.device.activeQueuePairs, 'transmit queues in use: max_tx_vq').to.equal(1);
      postAll(rig, 2);
      const counts = [0, 0];
      for (const f of FLOWS) {
        expect(rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }))).to.equal(true);
        counts[tcp4Hash(f.src, f.dst, f.sport, f.dport) & 1]!++;
      }
      expect(counts[0]! > 0 && counts[1]! > 0, 'the flows use both table entries').to.equal(true);
      expect([rig.received(20, 0).length, rig.received(20, 2).length]).to.deep.equal(counts);
    });

    it('unsupported_hash_types_are_tolerated_like_qemu_and_refused_in_strict_mode', () => {
      const payload = rssPayload({ types: HashType.TCPv4 | (1 << 12), table: [0], maxTxVq: 1 });
      const rig = new NetRig({ queuePairs: 2, features: RSS_ON });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, payload)).to.equal(CtrlAck.OK);
      expect(rig.device.diagnostics()[0]).to.include({ code: 'ctrl.rss-hash-types-unsupported', section: '5.1.6.5.7.2' });
      const strict = new NetRig({ queuePairs: 2, features: RSS_ON, strict: true });
      expect(strict.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, payload)).to.equal(CtrlAck.ERR);
      expect(lastCodes(strict)).to.deep.equal(['ctrl.rss-hash-types-unsupported']);
    });

    it('hash_config_reserved_not_zero_and_trailing_bytes_are_tolerated_unless_strict', () => {
      const rig = new NetRig({ features: RSS_ON });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.HASH_CONFIG, hashConfigPayload(HashType.IPv4, MS_KEY, 1))).to.equal(CtrlAck.OK);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.HASH_CONFIG, [...hashConfigPayload(HashType.IPv4), 0])).to.equal(CtrlAck.OK);
      expect(lastCodes(rig)).to.deep.equal(['ctrl.hash-config-reserved', 'ctrl.trailing-bytes']);
      const strict = new NetRig({ features: RSS_ON, strict: true });
      expect(strict.cmd(CtrlClass.MQ, CtrlMq.HASH_CONFIG, hashConfigPayload(HashType.IPv4, MS_KEY, 1))).to.equal(CtrlAck.ERR);
      expect(strict.cmd(CtrlClass.MQ, CtrlMq.HASH_CONFIG, [...hashConfigPayload(HashType.IPv4), 0])).to.equal(CtrlAck.ERR);
    });

    it('commands_need_their_feature', () => {
      const rig = new NetRig({ queuePairs: 2, features: { enable: ['HASH_REPORT'] } });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: 1, table: [0], maxTxVq: 1 }))).to.equal(CtrlAck.ERR);
      expect(lastCodes(rig)).to.deep.equal(['ctrl.feature-not-negotiated']);
      const rss = new NetRig({ queuePairs: 2, features: { enable: ['RSS'] } });
      expect(rss.cmd(CtrlClass.MQ, CtrlMq.HASH_CONFIG, hashConfigPayload(1))).to.equal(CtrlAck.ERR);
      expect(lastCodes(rss)).to.deep.equal(['ctrl.feature-not-negotiated']);
    });
  });

  describe('steering (§5.1.6.5.7.3, §5.1.6.5.6)', () => {
    it('each_frame_goes_to_the_queue_its_hash_picks_in_the_indirection_table', () => {
      const rig = new NetRig({ queuePairs: 4, features: RSS_ON, mac: '52:54:00:12:34:56' });
      const table = Array.from({ length: 128 }, (_, i) => (i * 7) % 4);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4 | HashType.IPv4, table, unclassified: 2, maxTxVq: 4 }))).to.equal(CtrlAck.OK);
      postAll(rig, 4);
      const expected: number[][] = [[], [], [], []];
      FLOWS.forEach((f, i) => {
        expect(rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }))).to.equal(true);
        expected[table[tcp4Hash(f.src, f.dst, f.sport, f.dport) & 127]!]!.push(i);
      });
      rig.inject(arpFrame()); // no hash: unclassified_queue
      expected[2]!.push(FLOWS.length);
      const all = [arpFrame()];
      for (let k = 0; k < 4; k++) {
        const got = rig.received(20, 2 * k);
        const want = expected[k]!;
        expect(got.length, `receiveq${k + 1}`).to.equal(want.length);
        got.forEach((g, j) => {
          const i = want[j]!;
          const view = new DataView(g.header.buffer, g.header.byteOffset);
          if (i === FLOWS.length) {
            expect([...g.frame]).to.deep.equal([...all[0]!]);
            expect(view.getUint16(16, true), 'ARP: no hash').to.equal(HashReport.NONE);
            return;
          }
          const f = FLOWS[i]!;
          expect(view.getUint32(12, true), `hash_value of flow ${i}`).to.equal(tcp4Hash(f.src, f.dst, f.sport, f.dport));
          expect(view.getUint16(16, true)).to.equal(HashReport.TCPv4);
        });
      }
      const q = rig.device.stats().queues.filter((q) => (q.index & 1) === 0);
      expect(q.map((x) => x.packets)).to.deep.equal(expected.map((e) => e.length));
      expect(expected.filter((e) => e.length > 0).length, 'the flows spread over several queues').to.be.greaterThan(1);
    });

    it('hash_config_reports_hashes_without_steering', () => {
      const rig = new NetRig({ features: { enable: ['HASH_REPORT'] } });
      expect(rig.hdrLen).to.equal(20);
      rig.postRx(8);
      const f = FLOWS[3]!;
      rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }));
      let [got] = rig.received(20);
      expect(new DataView(got!.header.buffer, got!.header.byteOffset).getUint16(16, true), 'before HASH_CONFIG: NONE').to.equal(HashReport.NONE);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.HASH_CONFIG, hashConfigPayload(HashType.TCPv4))).to.equal(CtrlAck.OK);
      rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }));
      [got] = rig.received(20);
      const view = new DataView(got!.header.buffer, got!.header.byteOffset);
      expect(view.getUint32(12, true)).to.equal(tcp4Hash(f.src, f.dst, f.sport, f.dport));
      expect(view.getUint16(16, true)).to.equal(HashReport.TCPv4);
      expect(view.getUint16(10, true), 'num_buffers').to.equal(1);
    });

    it('without_rss_frames_spread_over_the_active_pairs_by_flow_hash', () => {
      const rig = new NetRig({ queuePairs: 2 });
      postAll(rig, 2);
      const f0 = FLOWS[0]!;
      rig.inject(v4Frame(f0.src, f0.dst, { sport: f0.sport, dport: f0.dport }));
      expect(rig.received(12, 0).length, 'one pair in use: receiveq1 (§5.1.6.5.6.2)').to.equal(1);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2))).to.equal(CtrlAck.OK);
      const counts = [0, 0];
      for (const f of FLOWS) {
        rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }));
        counts[tcp4Hash(f.src, f.dst, f.sport, f.dport) % 2]!++;
      }
      rig.inject(arpFrame());
      counts[0]!++;
      expect([rig.received(12, 0).length, rig.received(12, 2).length]).to.deep.equal(counts);
      expect(counts[0]! > 0 && counts[1]! > 0).to.equal(true);
      expect(rig.device.stats().queues.filter((q) => (q.index & 1) === 0).map((q) => q.packets)).to.deep.equal([counts[0]! + 1, counts[1]]);
    });

    it('vq_pairs_set_turns_rss_off_like_qemu', () => {
      const rig = new NetRig({ queuePairs: 2, features: RSS_ON });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4, table: [1], maxTxVq: 2 }))).to.equal(CtrlAck.OK);
      postAll(rig, 2);
      const f = FLOWS.find((x) => tcp4Hash(x.src, x.dst, x.sport, x.dport) % 2 === 0)!;
      rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }));
      expect(rig.received(20, 2).length, 'RSS: the table says receiveq2').to.equal(1);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2))).to.equal(CtrlAck.OK);
      rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }));
      const [got] = rig.received(20, 0);
      expect(got, 'flow hash: receiveq1').to.not.equal(undefined);
      expect(new DataView(got!.header.buffer, got!.header.byteOffset).getUint16(16, true), 'no hash configured any more').to.equal(HashReport.NONE);
    });

    it('a_frame_steered_by_rss_to_a_queue_being_reset_is_dropped_and_counted', () => {
      const rig = new NetRig({ queuePairs: 2, features: RSS_ON });
      expect(rig.has('RING_RESET')).to.equal(true);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4, table: [1], maxTxVq: 2 }))).to.equal(CtrlAck.OK);
      postAll(rig, 2);
      rig.resetQueue(2, { reenable: false });
      const f = FLOWS[0]!;
      expect(rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }))).to.equal(true);
      const s = rig.device.stats();
      expect(s.rx.drops['queue-reset']).to.equal(1);
      expect(s.rx.offered).to.equal(s.rx.frames + Object.values(s.rx.drops).reduce((a, b) => a + b, 0) + s.rx.backlog);
      rig.inject(arpFrame()); // unclassified_queue 0 still runs
      expect(rig.received(20, 0).length).to.equal(1);
    });

    it('frames_wait_for_buffers_on_their_own_queue_and_arrive_in_order', () => {
      const rig = new NetRig({ queuePairs: 2, features: RSS_ON });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4, table: [1], unclassified: 0, maxTxVq: 2 }))).to.equal(CtrlAck.OK);
      rig.postRx(4, 1526, { queue: 0 });
      const f = FLOWS[0]!;
      rig.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport, payload: 1 })); // to receiveq2: no buffers there
      rig.inject(arpFrame()); // to receiveq1, behind it
      expect(rig.device.stats().rx.backlog).to.equal(2);
      expect(rig.received(20, 0).length, 'the head of the line waits for receiveq2').to.equal(0);
      rig.postRx(1, 1526, { queue: 2 });
      expect(rig.received(20, 2).length).to.equal(1);
      expect(rig.received(20, 0).length).to.equal(1);
      expect(rig.device.stats().rx.backlog).to.equal(0);
    });
  });

  describe('multiqueue backend (MemoryNetdev({ queues }))', () => {
    it('frames_from_backend_queue_i_go_to_receiveq_i_and_transmitq_i_to_backend_queue_i', () => {
      const netdev = new MemoryNetdev({ id: 'mq0', queues: 2 });
      const rig = new NetRig({ queuePairs: 2, netdev });
      postAll(rig, 2);
      expect(netdev.activeQueues, 'DRIVER_OK: one pair').to.equal(1);
      netdev.injectOn(1, v4Frame('10.0.0.1', '10.0.0.2'));
      expect(rig.received(12, 0).length, 'one pair: the host steers to queue 0').to.equal(1);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2))).to.equal(CtrlAck.OK);
      expect(netdev.activeQueues).to.equal(2);
      for (const f of FLOWS.slice(0, 6)) netdev.injectOn(1, v4Frame(f.src, f.dst, { sport: f.sport }));
      netdev.injectOn(0, arpFrame());
      expect(rig.received(12, 2).length, 'backend queue 1 → receiveq2, whatever the flow').to.equal(6);
      expect(rig.received(12, 0).length).to.equal(1);
      rig.send(v4Frame('10.0.2.15', '10.0.0.1'), { queue: 3 });
      rig.send(v4Frame('10.0.2.15', '10.0.0.1'), { queue: 1 });
      rig.send(v4Frame('10.0.2.15', '10.0.0.1'), { queue: 3 });
      expect(netdev.stats().queues!.map((q) => q.transmitted)).to.deep.equal([1, 2]);
      expect(rig.device.stats().queues.filter((q) => (q.index & 1) === 1).map((q) => q.packets)).to.deep.equal([1, 2]);
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(1))).to.equal(CtrlAck.OK);
      expect(netdev.activeQueues).to.equal(1);
    });

    it('rss_overrides_the_backend_queue', () => {
      const netdev = new MemoryNetdev({ id: 'mq1', queues: 2 });
      const rig = new NetRig({ queuePairs: 2, netdev, features: RSS_ON });
      expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4, table: [0], maxTxVq: 2 }))).to.equal(CtrlAck.OK);
      postAll(rig, 2);
      netdev.injectOn(1, v4Frame('10.0.0.1', '10.0.0.2'));
      expect(rig.received(20, 0).length).to.equal(1);
    });
  });

  describe('device state', () => {
    it('the_rss_configuration_survives_save_and_restore', () => {
      const opts = { queuePairs: 4, features: RSS_ON };
      const a = new NetRig(opts);
      const table = Array.from({ length: 64 }, (_, i) => (i * 5) % 4);
      expect(a.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4 | HashType.IPv4, table, unclassified: 3, maxTxVq: 4 }))).to.equal(CtrlAck.OK);
      postAll(a, 4);
      const image = a.device.saveState();
      // The restored device takes over the same guest memory (A is no longer used).
      const netdev = new MemoryNetdev({ id: 'net1' });
      const b = new VirtioNetDevice({ id: 'nic0', ...opts, memory: a.memory, netdev });
      new VirtioMmioTransport(b, { onInterrupt: () => undefined });
      b.restoreState(image);
      expect(b.activeQueuePairs).to.equal(4);
      expect(Buffer.from(b.saveState()).includes(Buffer.from('NRSS'))).to.equal(true);
      const expected = [0, 0, 0, 0];
      for (const f of FLOWS) {
        netdev.inject(v4Frame(f.src, f.dst, { sport: f.sport, dport: f.dport }));
        expected[table[tcp4Hash(f.src, f.dst, f.sport, f.dport) & 63]!]!++;
      }
      netdev.inject(v4Frame('10.0.0.1', '10.0.0.2', { proto: 'udp' })); // IPv4 only: the address hash
      expected[table[refToeplitz(MS_KEY, Uint8Array.from([...ipv4Bytes('10.0.0.1'), ...ipv4Bytes('10.0.0.2')])) & 63]!]!++;
      // b sent a gratuitous ARP after the restore only without GUEST_ANNOUNCE; nothing is received from it.
      expect([0, 1, 2, 3].map((k) => a.received(20, 2 * k).length)).to.deep.equal(expected);
    });

    it('an_image_without_rss_state_restores_rss_off', () => {
      const opts = { queuePairs: 2, features: RSS_ON };
      const a = new NetRig(opts);
      const image = a.device.saveState();
      expect(Buffer.from(image).includes(Buffer.from('NRSS')), 'nothing to save: no section').to.equal(false);
      const c = new NetRig(opts);
      expect(c.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssPayload({ types: HashType.TCPv4, table: [1], maxTxVq: 2 }))).to.equal(CtrlAck.OK);
      c.device.restoreState(image);
      expect(Buffer.from(c.device.saveState()).includes(Buffer.from('NRSS'))).to.equal(false);
    });
  });
});
