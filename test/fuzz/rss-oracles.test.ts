// The fuzzer's RSS oracles (world.ts with rss-model.ts; VIRTIO 1.2 §5.1.6.5.7 RSS, §5.1.6.4.3-4
// hash calculation and report, §5.1.6.5.6 steering) hold on a correct device and fire on a planted
// bug: an ack flipped, a frame steered to the other queue, a hash value off by one bit, a receive
// drop counted on no queue, a frame handed to the guest twice. The reference itself is checked
// against the published Microsoft RSS verification values.

import { expect } from 'chai';
import { FuzzWorld } from './world.js';
import { steps, stopCode, worldAfter } from './world-steps.js';
import type { FuzzOp, FuzzSetup } from './ops.js';
import { REPORT, RssModel, expectedRssAck, refHash } from './rss-model.js';
import type { FlowDesc } from './rss-model.js';
import { MS_KEY } from '../devices/virtio-net/rss-frames.js';
import { QueueField } from '../../devices/virtio-net/net-stats.js';

const SETUP: FuzzSetup = { transport: 'pci', pairs: 2, disable: [], ringSize: 16, backend: 'plain', strict: false, enable: ['RSS', 'HASH_REPORT'] };
const le16 = (n: number): number[] => [n & 0xff, n >> 8];
const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];

/** RSS_CONFIG: TCPv4 | IPv4, a table of `table`, unclassified 0, both pairs, Microsoft's key. */
function rssConfig(table: number[]): FuzzOp {
  const payload = [...le32(0x3), ...le16(table.length - 1), ...le16(0), ...table.flatMap(le16), ...le16(2), MS_KEY.length, ...MS_KEY];
  return { t: 'ctrl', cls: 4, cmd: 1, payload, ack: 1, indirect: false, apart: true };
}

/** Eight TCPv4 flows (the Microsoft example addresses and ports among them). */
const FLOWS: FlowDesc[] = Array.from({ length: 8 }, (_, i) => ({ ip: 4, proto: 'tcp', src: 4 + (i % 2), dst: i % 3, sport: 2794 + 97 * i, dport: 1766, frag: false, vlan: false, ext: [], payload: 16 }));
const INIT: FuzzOp = { t: 'init', drop: 2 }; // no MRG_RXBUF: one frame per buffer
const RX: FuzzOp[] = [
  { t: 'rx', count: 8, len: 1526, split: 1, indirect: false },
  { t: 'rx', count: 8, len: 1526, split: 1, indirect: false, pair: 1 },
];
const FLOW: FuzzOp = { t: 'flow', flows: FLOWS };




type Steering = { select: (frame: Uint8Array, tag: number) => number; hashValue: number };
function steering(w: FuzzWorld): Steering {
  return (w.device as unknown as { rx: { steering: Steering } }).rx.steering;
}

describe('fuzz: the RSS reference (rss-model.ts)', () => {
  it('refhash_gives_microsofts_published_tcpv4_values', () => {
    // "Verifying the RSS Hash Calculation": 66.9.149.187:2794 → 161.142.100.80:1766 = 0x51ccc178 (4-tuple), 0x323e8fc2 (addresses).
    const d: FlowDesc = { ip: 4, proto: 'tcp', src: 4, dst: 5, sport: 2794, dport: 1766, frag: false, vlan: false, ext: [], payload: 0 };
    expect(refHash(d, 0x2, MS_KEY)).to.deep.equal({ value: 0x51ccc178, report: REPORT.TCPv4 });
    expect(refHash(d, 0x1, MS_KEY)).to.deep.equal({ value: 0x323e8fc2, report: REPORT.IPv4 });
    expect(refHash({ ...d, frag: true }, 0x3, MS_KEY).report, 'a fragment hashes its addresses').to.equal(REPORT.IPv4);
    expect(refHash({ ...d, ip: 0 }, 0x1ff, MS_KEY).report).to.equal(REPORT.NONE);
  });

  it('expected_acks_follow_each_validation_rule', () => {
    const ctx = { rss: true, hashReport: true, strict: false, maxPairs: 2 };
    const good = (rssConfig([0, 1]) as { payload: number[] }).payload;
    expect(expectedRssAck(1, good, ctx).ok).to.equal(true);
    expect(expectedRssAck(1, good, { ...ctx, rss: false }).ok, 'RSS not negotiated').to.equal(false);
    const table3 = [...good.slice(0, 4), ...le16(2), ...good.slice(6)];
    expect(expectedRssAck(1, table3, ctx).ok, 'length 3').to.equal(false);
    expect(expectedRssAck(1, [...good, 0], ctx).ok, 'trailing byte tolerated').to.equal(true);
    expect(expectedRssAck(1, [...good, 0], { ...ctx, strict: true }).ok, 'trailing byte refused in strict mode').to.equal(false);
    expect(expectedRssAck(1, good.slice(0, good.length - 1), ctx).ok, 'key cut short').to.equal(false);
    const entry2 = [...good.slice(0, 10), ...le16(2), ...good.slice(12)];
    expect(expectedRssAck(1, entry2, ctx).ok, 'an entry past the device\'s queue pairs').to.equal(false);
    const maxTxVqAt = 8 + 2 * 2;
    const txVq1 = [...good.slice(0, maxTxVqAt), ...le16(1), ...good.slice(maxTxVqAt + 2)];
    expect(expectedRssAck(1, txVq1, ctx).ok, 'a table over both receive queues with max_tx_vq 1 (Linux 6.1)').to.equal(true);
  });

  it('the_model_steers_by_table_and_by_flow_hash', () => {
    const m = new RssModel();
    const d = FLOWS[0]!;
    expect(m.queueOf(d, refHash(d, 0, MS_KEY), 2), 'one pair in use').to.equal(0);
    const r = expectedRssAck(1, (rssConfig([1]) as { payload: number[] }).payload, { rss: true, hashReport: true, strict: false, maxPairs: 2 });
    if (!r.ok) throw new Error('expected OK');
    m.apply(r.commit);
    expect(m.queueOf(d, refHash(d, m.types, m.key), 2)).to.equal(1);
  });
});

describe('fuzz: RSS oracles on a correct device and on planted bugs', () => {
  it('a_correct_device_passes_and_the_oracles_judge_both_queues', () => {
    const w = worldAfter(SETUP, [INIT, rssConfig([0, 1]), ...RX, FLOW, FLOW]);
    expect(w.counts['rss ack judged RSS_CONFIG OK']).to.equal(1);
    expect(w.counts['rss hash judged']).to.equal(2 * FLOWS.length);
    const q1 = w.counts['rss queue judged table receiveq1'] ?? 0;
    const q2 = w.counts['rss queue judged table receiveq2'] ?? 0;
    expect(q1 + q2).to.equal(2 * FLOWS.length);
    expect(q1 > 0 && q2 > 0, `both queues received (${q1}, ${q2})`).to.equal(true);
  });

  it('ctrl_rss_ack_an_ok_command_acked_err', () => {
    const w = worldAfter(SETUP, [INIT]);
    const code = stopCode(() => {
      w.step++;
      w.apply(rssConfig([1]));
      // The device's answer, overwritten with ERR before the driver reads it.
      const ring = w.ring(w.ctrlIndex)!;
      const head = w.memory.driver.readU32((ring as unknown as { usedRing: number }).usedRing + 4);
      const bufs = ring.buffers(head);
      w.call('planted', () => w.memory.device.writeU8(bufs[bufs.length - 1]!.addr, 1));
      w.afterStep();
    });
    expect(code).to.equal('ctrl.rss-ack');
  });

  it('rx_rss_queue_a_frame_steered_to_the_other_queue', () => {
    const w = worldAfter(SETUP, [INIT, rssConfig([1]), ...RX]);
    const s = steering(w);
    const select = s.select.bind(s);
    s.select = (frame, tag) => (select(frame, tag) + 1) % 2;
    expect(steps(w, [FLOW])).to.equal('rx.rss-queue');
  });

  it('rx_hash_report_a_hash_value_one_bit_off', () => {
    const w = worldAfter(SETUP, [INIT, rssConfig([1]), ...RX]);
    const s = steering(w);
    const select = s.select.bind(s);
    s.select = (frame, tag) => {
      const k = select(frame, tag);
      s.hashValue ^= 0x100;
      return k;
    };
    expect(steps(w, [FLOW])).to.equal('rx.hash-report');
  });

  it('stats_rx_queue_drops_a_receive_drop_counted_on_no_queue', () => {
    const w = worldAfter(SETUP, [INIT, rssConfig([1]), ...RX]);
    const counters = (w.device as unknown as { counters: { queueAdd: (i: number, f: number, n: number) => void } }).counters;
    const add = counters.queueAdd.bind(counters);
    counters.queueAdd = (i, f, n) => (f === QueueField.DROPS && (i & 1) === 0 ? undefined : add(i, f, n));
    expect(steps(w, [{ t: 'link', up: false }, FLOW])).to.equal('stats.rx-queue-drops');
  });

  it('rx_frame_duplicated_one_frame_delivered_on_both_queues', () => {
    const w = worldAfter(SETUP, [INIT, rssConfig([0, 1]), ...RX]);
    const s = steering(w);
    const select = s.select.bind(s);
    let n = 0;
    s.select = (frame, tag) => {
      select(frame, tag);
      return n++ % 2;
    };
    // The backend hands the device each frame twice (the world expects it once).
    const inject = w.netdev.inject.bind(w.netdev);
    w.netdev.inject = (frame, header) => inject(frame, header) && inject(frame, header);
    expect(steps(w, [{ t: 'flow', flows: [FLOWS[0]!] }])).to.equal('rx.frame-duplicated');
  });
});
