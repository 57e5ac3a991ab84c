// Per-queue receive drops (`device.stats().queues[i].drops`, VIRTIO 1.4 §5.1.6.5.11 RX_BASIC
// rx_drops): a frame dropped on its way to the guest counts on the receive queue it was steered to
// (the RSS indirection table, §5.1.6.5.7.3), not on receiveq1 whatever the steering said. The sum
// over the receive queues is every receive drop. Expected queues come from the reference Toeplitz
// in rss-frames.ts.

import { expect } from 'chai';
import { NetRig, le16 } from '../../support/net-rig.js';
import { CtrlAck, CtrlClass, CtrlMq } from '../../../devices/virtio-net/constants.js';
import { HashType } from '../../../devices/virtio-net/rss-hash.js';
import { MS_KEY, be16, ipv4Bytes, refToeplitz, v4Frame } from './rss-frames.js';
import { NetCounters, QueueField } from '../../../devices/virtio-net/net-stats.js';
import type { NetStats } from '../../../devices/virtio-net/net-stats.js';

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
}

/** RSS_CONFIG: TCPv4 over a 2-entry table [0, 1], both pairs in use, Microsoft's key. */
const RSS_TWO_QUEUES = [...le32(HashType.TCPv4), ...le16(1), ...le16(0), ...le16(0), ...le16(1), ...le16(2), MS_KEY.length, ...MS_KEY];

function queueOf(src: string, sport: number): number {
  return refToeplitz(MS_KEY, Uint8Array.from([...ipv4Bytes(src), ...ipv4Bytes('10.0.2.15'), ...be16(sport), ...be16(80)])) & 1;
}

function rxDrops(s: NetStats): number[] {
  return s.queues.filter((q) => (q.index & 1) === 0).map((q) => q.drops);
}

/** A flow (source address) the table steers to receive queue `k`. */
function flowTo(k: number, from = 0): { src: string; sport: number } {
  for (let i = from; i < 256; i++) if (queueOf(`10.1.${i}.1`, 5000 + i) === k) return { src: `10.1.${i}.1`, sport: 5000 + i };
  throw new Error(`no flow to queue ${k}`);
}

describe('devices/virtio-net per-queue receive drops', () => {
  it('a_frame_dropped_after_steering_counts_on_the_queue_the_rss_table_picked', () => {
    const rig = new NetRig({ queuePairs: 2, features: { enable: ['RSS'] } });
    expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, RSS_TWO_QUEUES)).to.equal(CtrlAck.OK);
    rig.postRx(4, 1526, { queue: 0 });
    rig.postRx(4, 1526, { queue: 2 });
    const to1 = flowTo(1);
    const to0 = flowTo(0);
    // Not for the guest's MAC, promiscuous mode off: the filter drops them after steering.
    expect(rig.cmd(CtrlClass.RX, 0, [0])).to.equal(CtrlAck.OK);
    const other = (f: { src: string; sport: number }): Uint8Array => {
      const frame = v4Frame(f.src, '10.0.2.15', { sport: f.sport, dport: 80 });
      frame.set([0x52, 0x54, 0x00, 0xde, 0xad, 0x01], 0);
      return frame;
    };
    rig.inject(other(to1));
    rig.inject(other(to1));
    rig.inject(other(to0));
    const s = rig.device.stats();
    expect(s.rx.drops.unicast).to.equal(3);
    expect(rxDrops(s), '[receiveq1, receiveq2]').to.deep.equal([1, 2]);
  });

  it('link_down_drops_count_on_the_steered_queue_and_the_queues_add_up_to_every_drop', () => {
    const rig = new NetRig({ queuePairs: 2, features: { enable: ['RSS'] } });
    expect(rig.cmd(CtrlClass.MQ, CtrlMq.RSS_CONFIG, RSS_TWO_QUEUES)).to.equal(CtrlAck.OK);
    const to1 = flowTo(1);
    // No buffers on receiveq2: the frame waits in the backlog; link down drops it there.
    rig.inject(v4Frame(to1.src, '10.0.2.15', { sport: to1.sport, dport: 80 }));
    expect(rig.device.stats().rx.backlog).to.equal(1);
    rig.device.setLink(false);
    rig.inject(v4Frame(to1.src, '10.0.2.15', { sport: to1.sport, dport: 80 })); // dropped at once
    const s = rig.device.stats();
    expect(s.rx.drops['link-down']).to.equal(2);
    expect(rxDrops(s)).to.deep.equal([0, 2]);
    const all = Object.values(s.rx.drops).reduce((a, b) => a + b, 0);
    expect(rxDrops(s).reduce((a, b) => a + b, 0)).to.equal(all);
  });

  it('a_device_state_without_per_queue_receive_drops_restores_them_as_receiveq1s', () => {
    // Written before drops were counted per queue: every receive drop was receiveq1's.
    const old = new NetCounters(4);
    old.importState([['rxLinkDown', 3], ['filterDrops.2', 2], ['queue.1.drops', 5]]);
    expect([0, 1, 2, 3].map((i) => old.queueValue(i, QueueField.DROPS))).to.deep.equal([5, 5, 0, 0]);
    // Written with per-queue drops: restored as they were.
    const now = new NetCounters(4);
    now.importState([['rxLinkDown', 3], ['queue.2.drops', 3]]);
    expect([0, 1, 2, 3].map((i) => now.queueValue(i, QueueField.DROPS))).to.deep.equal([0, 0, 3, 0]);
  });
});
