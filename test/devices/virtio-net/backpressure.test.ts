// Backpressure both ways (VIRTIO 1.2 §5.1.6.3: the device waits for receive buffers; §5.1.6.2 with
// a backend that cannot take a frame now) and what happens to held frames on link down and reset.
// Nothing is dropped without a counter: at every step the device's
// offered = delivered + drops + backlog, and the netdev's injected = delivered + backlog + dropped.

import { expect } from 'chai';
import { NetRig, ethFrame } from '../../support/net-rig.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { RX_BACKLOG_FRAMES } from '../../../devices/virtio-net/rx-backlog.js';
import type { NetStats } from '../../../devices/virtio-net/net-stats.js';

const MAIN = '52:54:00:12:34:56';

function dropsTotal(s: NetStats): number {
  return Object.values(s.rx.drops).reduce((a, b) => a + b, 0);
}

function expectBalanced(rig: NetRig): void {
  const s = rig.device.stats();
  expect(s.rx.offered, 'device: offered = delivered + drops + backlog').to.equal(s.rx.frames + dropsTotal(s) + s.rx.backlog);
  const n = (rig.netdev as MemoryNetdev).stats();
  expect(n.injected, 'netdev: injected = delivered + backlog + dropped').to.equal(n.delivered + n.backlog + n.dropped);
  expect(n.delivered, 'what the netdev delivered is what the device took').to.equal(s.rx.offered);
}

/** Frame i carries i in its payload, so order can be checked. */
function numbered(i: number): Uint8Array {
  const f = ethFrame(MAIN, undefined, { payload: 60 });
  f[14] = i & 0xff;
  f[15] = i >> 8;
  return f;
}

describe('devices/virtio-net backpressure', () => {
  it('rx_backlog_fills_pauses_the_backend_and_everything_arrives_in_order', () => {
    const netdev = new MemoryNetdev({ id: 'n0', backlogLimit: 100 });
    const rig = new NetRig({ mac: MAIN, netdev });
    const total = RX_BACKLOG_FRAMES + 150;
    const accepted: boolean[] = [];
    for (let i = 0; i < total; i++) accepted.push(rig.inject(numbered(i)));
    // The device holds RX_BACKLOG_FRAMES, then pauses the backend, which holds 100 and drops 50.
    const s = rig.device.stats();
    expect(s.rx.backlog).to.equal(RX_BACKLOG_FRAMES);
    expect(s.rx.backpressure).to.equal(1);
    expect(netdev.stats()).to.deep.include({ injected: total, delivered: RX_BACKLOG_FRAMES, backlog: 100, dropped: 50 });
    expect(accepted.filter((a) => !a)).to.have.length(50);
    expect(accepted.slice(0, RX_BACKLOG_FRAMES + 100).every((a) => a)).to.equal(true);
    expectBalanced(rig);
    // The guest posts buffers a ring at a time; frames arrive in order, the backend resumes.
    const got: number[] = [];
    for (let round = 0; round < 20 && got.length < RX_BACKLOG_FRAMES + 100; round++) {
      rig.postRx(rig.rx.size, 128);
      for (const r of rig.received()) got.push(r.frame[14]! | (r.frame[15]! << 8));
      expectBalanced(rig);
    }
    expect(got).to.deep.equal(Array.from({ length: RX_BACKLOG_FRAMES + 100 }, (_, i) => i));
    expect(rig.device.stats().rx.backlog).to.equal(0);
    expect(netdev.stats().backlog).to.equal(0);
    // New frames go straight through again.
    rig.postRx(1, 128);
    expect(rig.inject(numbered(7))).to.equal(true);
    expect(rig.received()).to.have.length(1);
    expectBalanced(rig);
  });

  it('filter_runs_when_buffers_exist_so_held_frames_meet_the_filter_of_delivery_time', () => {
    const rig = new NetRig({ mac: MAIN });
    rig.inject(ethFrame('52:54:00:99:99:99')); // held while promiscuous
    rig.inject(ethFrame(MAIN));
    expect(rig.device.stats().rx.backlog).to.equal(2);
    rig.cmd(0, 0, [0]); // PROMISC off before the guest posts buffers
    rig.postRx(4, 1600);
    expect(rig.received()).to.have.length(1);
    const s = rig.device.stats();
    expect(s.rx.drops.unicast).to.equal(1);
    expect(s.rx.frames).to.equal(1);
    expectBalanced(rig);
  });

  it('a_frame_the_filter_refuses_while_no_buffer_is_posted_waits_and_meets_the_filter_of_delivery_time', () => {
    const rig = new NetRig({ mac: MAIN });
    rig.cmd(0, 0, [0]); // PROMISC off: a frame for another address is refused once it can be delivered
    rig.inject(ethFrame('52:54:00:99:99:99'));
    expect(rig.device.stats().rx.backlog).to.equal(1); // no buffer: held unfiltered, not dropped
    expect(rig.device.stats().rx.drops.unicast).to.equal(0);
    rig.cmd(0, 0, [1]); // PROMISC on before the guest posts buffers
    rig.postRx(2, 1600);
    expect(rig.received()).to.have.length(1);
    expect(rig.device.stats().rx.drops.unicast).to.equal(0);
    // With a buffer posted the refusal is immediate and consumes no buffer.
    rig.cmd(0, 0, [0]);
    rig.inject(ethFrame('52:54:00:99:99:99'));
    expect(rig.device.stats().rx.drops.unicast).to.equal(1);
    rig.inject(ethFrame(MAIN));
    expect(rig.received()).to.have.length(1);
    expect(rig.device.stats().rx.frames).to.equal(2);
    expectBalanced(rig);
  });

  it('device_not_running_refuses_frames_and_the_backend_holds_them_across_reset', () => {
    const rig = new NetRig({ mac: MAIN, init: false });
    expect(rig.inject(numbered(1))).to.equal(true); // held by the netdev, not by the device
    expect(rig.inject(numbered(2))).to.equal(true);
    expect((rig.netdev as MemoryNetdev).stats()).to.deep.include({ delivered: 0, backlog: 2 });
    expect(rig.device.stats().rx.backpressure).to.equal(1);
    rig.start(); // reset, negotiate, DRIVER_OK: the backend is resumed
    expect(rig.device.stats().rx.backlog).to.equal(2);
    rig.postRx(2, 1600);
    expect(rig.received().map((r) => r.frame[14])).to.deep.equal([1, 2]);
    expect(rig.device.stats().rx.drops.reset).to.equal(0);
    expectBalanced(rig);
  });

  it('reset_drops_held_frames_and_counts_them_as_reset', () => {
    const rig = new NetRig({ mac: MAIN });
    for (let i = 0; i < 3; i++) rig.inject(numbered(i));
    expect(rig.device.stats().rx.backlog).to.equal(3);
    rig.start();
    const s = rig.device.stats();
    expect(s.rx.backlog).to.equal(0);
    expect(s.rx.drops.reset).to.equal(3);
    expectBalanced(rig);
    rig.postRx(1, 1600);
    rig.inject(numbered(9));
    expect(rig.received().map((r) => r.frame[14])).to.deep.equal([9]);
  });

  it('link_down_drops_held_frames_and_resumes_the_backend_which_drops_too', () => {
    const netdev = new MemoryNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev });
    for (let i = 0; i < RX_BACKLOG_FRAMES + 5; i++) rig.inject(numbered(i));
    expect(netdev.stats().backlog).to.equal(5);
    rig.device.setLink(false);
    const s = rig.device.stats();
    expect(s.rx.backlog).to.equal(0);
    expect(s.rx.drops['link-down']).to.equal(RX_BACKLOG_FRAMES + 5);
    expect(netdev.stats().backlog).to.equal(0);
    expectBalanced(rig);
    rig.postRx(2, 1600);
    rig.inject(numbered(1));
    expect(rig.received()).to.have.length(0);
    rig.device.setLink(true);
    rig.inject(numbered(2));
    expect(rig.received().map((r) => r.frame[14])).to.deep.equal([2]);
    expectBalanced(rig);
  });

  it('busy_backend_holds_tx_chains_until_writable', () => {
    const netdev = new MemoryNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev });
    netdev.setWritable(false);
    const frames = [1, 2, 3].map(numbered);
    for (const f of frames) expect(rig.send(f)).to.equal(undefined); // not completed
    expect(rig.transmitted).to.have.length(0);
    expect(rig.device.stats().tx.frames).to.equal(0);
    netdev.setWritable(true); // calls the device's writable()
    const used = rig.tx.takeUsed();
    expect(used.map((u) => u.len)).to.deep.equal([0, 0, 0]);
    expect(rig.transmitted.map((t) => t[14])).to.deep.equal([1, 2, 3]);
    expect(rig.device.stats().tx.frames).to.equal(3);
    expect(rig.send(numbered(4))).to.deep.include({ len: 0 });
  });

  it('link_down_completes_tx_chains_unsent_and_counts_them', () => {
    const rig = new NetRig({ mac: MAIN });
    rig.device.setLink(false);
    expect(rig.send(numbered(1))).to.deep.include({ len: 0 });
    expect(rig.transmitted).to.have.length(0);
    expect(rig.device.stats().tx.errors['link-down']).to.equal(1);
    rig.device.setLink(true);
    expect(rig.send(numbered(2))).to.deep.include({ len: 0 });
    expect(rig.transmitted).to.have.length(1);
  });

  it('paired_netdevs_carry_frames_between_two_devices', () => {
    const a = new MemoryNetdev({ id: 'a' });
    const b = new MemoryNetdev({ id: 'b' });
    MemoryNetdev.pair(a, b);
    const ra = new NetRig({ mac: '52:54:00:00:00:0a', netdev: a });
    const rb = new NetRig({ mac: '52:54:00:00:00:0b', netdev: b, transport: 'pci' });
    rb.postRx(4, 1600);
    const f = ethFrame('52:54:00:00:00:0b', '52:54:00:00:00:0a', { payload: 300, fill: 5 });
    ra.send(f);
    const got = rb.received();
    expect(got.map((g) => [...g.frame])).to.deep.equal([[...f]]);
  });
});
