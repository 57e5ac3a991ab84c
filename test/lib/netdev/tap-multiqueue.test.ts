// A multiqueue TAP (TapNetdev({ queues: 2 }): IFF_MULTI_QUEUE, one fd per queue pair) with a real
// kernel in a throwaway namespace, as root. The kernel's tun driver steers each flow sent into the
// interface to one of the attached queues (tun_automq_select_queue: the flow hash modulo the
// attached queues); the device delivers what fd i reads to receiveq i+1 (RSS off), sends transmitq
// i+1 on fd i, and VQ_PAIRS_SET attaches / detaches the fds (TUNSETQUEUE).

import { expect } from 'chai';
import { NetRig, le16 } from '../../support/net-rig.js';
import { CtrlAck, CtrlClass, CtrlMq } from '../../../devices/virtio-net/constants.js';
import { Netns, hostCleanups, linkName, waitFor } from '../../support/netns.js';
import { tapAndNetns } from '../../support/netns-tap.js';
import { TapNetdev } from '../../../lib/netdev/tap-netdev.js';
import { isMultiQueue } from '../../../lib/netdev/netdev.js';
import { udpFrame } from './frames.js';

const GUEST_MAC = '52:54:00:12:34:56';
const HOST_MAC = '02:00:00:00:00:01';
const FLOWS = 32;

/** UDP frames to the guest, one per source port (distinct flows for the kernel's hash). */
function flows(dport: number): Uint8Array[] {
  return Array.from({ length: FLOWS }, (_, i) => udpFrame(GUEST_MAC, HOST_MAC, '10.210.0.1', '10.210.0.2', 20000 + i, dport, new Uint8Array(8), false).frame);
}

/** The UDP destination port of a received frame (IPv4 without options), or -1. */
function dport(f: Uint8Array): number {
  return f.length >= 38 && f[12] === 0x08 && f[13] === 0x00 && f[23] === 17 ? (f[36]! << 8) | f[37]! : -1;
}

describe('lib/netdev/tap-netdev multiqueue (real kernel, throwaway netns)', function () {
  this.timeout(20_000);
  const cleanups = hostCleanups();

  function setup(): { ns: Netns; tap: TapNetdev; rig: NetRig } {
    const { ns, tap } = tapAndNetns(cleanups, { id: 'mqtap', ifname: linkName('q'), queues: 2 });
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC, queuePairs: 2 });
    ns.adopt(tap.ifname);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    rig.postRx(64, 1526, { queue: 0 });
    rig.postRx(64, 1526, { queue: 2 });
    return { ns, tap, rig };
  }

  /** Frames with UDP destination port `port` taken from receive queue `queue` so far (accumulated). */
  function taker(rig: NetRig, port: number): { counts: number[]; poll(): void } {
    const counts = [0, 0];
    return {
      counts,
      poll(): void {
        for (const k of [0, 1]) {
          const got = rig.received(rig.hdrLen, 2 * k);
          counts[k]! += got.filter((g) => dport(g.frame) === port).length;
          if (got.length > 0) rig.postRx(got.length, 1526, { queue: 2 * k });
        }
      },
    };
  }

  it('flows_from_the_host_spread_over_both_queues_and_each_fd_feeds_its_receive_queue', async () => {
    const { ns, tap, rig } = setup();
    expect(isMultiQueue(tap)).to.equal(true);
    expect(tap.queues).to.equal(2);
    expect(tap.activeQueues, 'DRIVER_OK: one pair, fd 1 detached').to.equal(1);

    // One pair in use: fd 1 is detached, so the kernel steers every flow to fd 0.
    const one = taker(rig, 7001);
    ns.sendFrames(tap.ifname, flows(7001));
    await waitFor('all flows on receiveq1', () => {
      one.poll();
      return one.counts[0] === FLOWS;
    });
    expect(one.counts[1]).to.equal(0);
    expect(tap.queueStats()[1]!.rxFrames).to.equal(0);

    expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2))).to.equal(CtrlAck.OK);
    expect(tap.activeQueues).to.equal(2);
    const before = tap.queueStats().map((s) => s.rxFrames);
    const statsBefore = rig.device.stats().queues.filter((q) => (q.index & 1) === 0).map((q) => q.packets);
    const two = taker(rig, 7002);
    ns.sendFrames(tap.ifname, flows(7002));
    await waitFor('every flow in the guest', () => {
      two.poll();
      return two.counts[0]! + two.counts[1]! === FLOWS;
    });
    expect(two.counts[0], 'flows on receiveq1').to.be.greaterThan(0);
    expect(two.counts[1], 'flows on receiveq2').to.be.greaterThan(0);
    // What each fd read went to its own receive queue (one source of counters: device.stats()).
    const fdRead = tap.queueStats().map((s, i) => s.rxFrames - before[i]!);
    const perQueue = rig.device.stats().queues.filter((q) => (q.index & 1) === 0).map((q, i) => q.packets - statsBefore[i]!);
    expect(perQueue).to.deep.equal(fdRead);
    expect(perQueue[0]! >= two.counts[0]! && perQueue[1]! >= two.counts[1]!).to.equal(true);
  });

  it('transmitq_i_goes_out_on_fd_i_and_vq_pairs_set_1_detaches_fd_1', async () => {
    const { ns, tap, rig } = setup();
    expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(2))).to.equal(CtrlAck.OK);
    const frame = udpFrame('ff:ff:ff:ff:ff:ff', GUEST_MAC, '10.210.0.2', '10.210.0.1', 5000, 5001, new Uint8Array(8), false).frame;
    rig.send(frame, { queue: 3 });
    rig.send(frame, { queue: 1 });
    rig.send(frame, { queue: 3 });
    expect(tap.queueStats().map((s) => s.txFrames)).to.deep.equal([1, 2]);
    expect(rig.device.stats().queues.filter((q) => (q.index & 1) === 1).map((q) => q.packets)).to.deep.equal([1, 2]);

    expect(rig.cmd(CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET, le16(1))).to.equal(CtrlAck.OK);
    expect(tap.activeQueues).to.equal(1);
    const before = tap.queueStats()[1]!.rxFrames;
    const t = taker(rig, 7003);
    ns.sendFrames(tap.ifname, flows(7003));
    await waitFor('all flows on receiveq1 again', () => {
      t.poll();
      return t.counts[0] === FLOWS;
    });
    expect(tap.queueStats()[1]!.rxFrames - before, 'a detached fd reads nothing').to.equal(0);
    expect(tap.hostErrors().count).to.equal(0);
  });
});
