// TapNetdev with `io: 'uring'` against the real kernel in throwaway namespaces: frames intact and
// in order both ways, batches larger than the ring, pause / resume without loss, a refused header
// inside a linked chain, close with frames still queued, a dead interface and a throwing device
// as typed errors with the link down, and nothing left behind (no ring fd, no io-wq thread).

import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import { Netns, hostCleanups, linkName, openFds, trackLink, waitFor } from '../../support/netns.js';
import { requireIoUring } from '../../support/io-uring.js';
import { NetRig } from '../../support/net-rig.js';
import { TapNetdev } from '../../../lib/netdev/tap-netdev.js';
import { TX_SLOTS, RX_BATCH } from '../../../lib/netdev/tap-uring.js';
import { HostError, ioctlPtr } from '../../../lib/host/libc.js';
import { intArg } from '../../../lib/host/structs.js';
import { requireProgram } from '../../support/skip.js';
import type { NetdevPeer } from '../../../lib/netdev/netdev.js';
import { captureTestFrames } from '../../support/tap-capture.js';

/** A test frame: broadcast, ethertype 0x88b5 (local experimental), the sequence number and a pattern made from it. */
function frame(seq: number, len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, 1, 0x88, 0xb5, seq >> 8, seq & 0xff], 6);
  for (let i = 16; i < len; i++) f[i] = (seq * 7 + i) & 0xff;
  return f;
}
/** _IOW('T', 212, int): the TAP fd's send buffer (the kernel's default is unlimited). */
const TUNSETSNDBUF = 0x400454d4;
/** _IOW('T', 203, int): keep the interface when its last fd closes. */
const TUNSETPERSIST = 0x400454cb;
const hex = (f: Uint8Array): string => Buffer.from(f).toString('hex');
const isTest = (f: Uint8Array): boolean => f[12] === 0x88 && f[13] === 0xb5;


/** A peer that keeps copies of what it receives; `refuse(i)` says whether to refuse the i-th offer. */
function recorder(refuse: (offer: number) => boolean = () => false): NetdevPeer & { frames: Uint8Array[]; offers: number; writables: number } {
  const r = {
    frames: [] as Uint8Array[],
    offers: 0,
    writables: 0,
    receive(f: Uint8Array): boolean {
      if (refuse(r.offers++)) return false;
      r.frames.push(f.slice());
      return true;
    },
    writable(): void {
      r.writables++;
    },
  };
  return r;
}

function ioUringThreads(): number {
  let n = 0;
  for (const t of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${t}/comm`, 'utf8').startsWith('iou-')) n++;
    } catch {
      // the thread ended while we looked
    }
  }
  return n;
}

describe('lib/netdev/tap-uring (TapNetdev io: uring, real kernel, throwaway netns)', function () {
  this.timeout(30_000);
  const cleanups = hostCleanups();
  before(function () {
    requireIoUring(this);
  });

  /** A uring TAP whose interface is up in a fresh namespace (IPv6 off: no chatter). */
  function setup(options: { queues?: number } = {}): { ns: Netns; tap: TapNetdev } {
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    ns.disableIpv6();
    const tap = new TapNetdev({ id: 'tapu', ifname: linkName('u'), io: 'uring', ...options });
    trackLink(tap.ifname);
    cleanups.push(() => tap.close());
    ns.adopt(tap.ifname);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    return { ns, tap };
  }

  it('frames_sent_in_one_burst_larger_than_the_ring_arrive_intact_and_in_order', async () => {
    const { ns, tap } = setup();
    expect(tap.io).to.equal('uring');
    const peer = recorder();
    tap.attach(peer);
    const n = 3 * TX_SLOTS + 17; // several full batches, slots reused, a partial batch flushed by the microtask
    const sent = Array.from({ length: n }, (_, i) => frame(i, 60 + (i % 200)));
    const cap = await captureTestFrames(ns, tap.ifname, n);
    for (const f of sent) expect(tap.send(f)).to.equal('sent');
    const got = await cap.done;
    expect(got.length).to.equal(n);
    expect(got).to.deep.equal(sent.map(hex));
    expect(tap.stats().txFrames).to.equal(n);
    expect(tap.stats().txErrors).to.equal(0);
  });

  it('frames_from_the_namespace_reach_the_peer_intact_and_in_order_across_batches', async () => {
    const { ns, tap } = setup();
    const peer = recorder();
    tap.attach(peer);
    const n = 3 * RX_BATCH + 5;
    const sent = Array.from({ length: n }, (_, i) => frame(i, 60 + ((i * 13) % 900)));
    ns.sendFrames(tap.ifname, sent);
    await waitFor(`${n} frames at the peer`, () => peer.frames.filter(isTest).length >= n);
    expect(peer.frames.filter(isTest).map(hex)).to.deep.equal(sent.map(hex));
  });

  it('a_refusing_peer_pauses_reading_and_resume_delivers_every_frame_once_in_order', async () => {
    const { ns, tap } = setup();
    // Refuses every 10th offer; the test resumes on the next turn, as a device does once it has room.
    const peer = recorder((i) => i % 10 === 9);
    const receive = peer.receive.bind(peer);
    peer.receive = (f: Uint8Array): boolean => {
      const ok = receive(f);
      if (!ok) setImmediate(() => tap.resumeReceive());
      return ok;
    };
    tap.attach(peer);
    const n = 2 * RX_BATCH + 30;
    const sent = Array.from({ length: n }, (_, i) => frame(i));
    ns.sendFrames(tap.ifname, sent);
    await waitFor(`${n} frames at the peer`, () => peer.frames.filter(isTest).length >= n);
    expect(peer.frames.filter(isTest).map(hex)).to.deep.equal(sent.map(hex));
    expect(tap.stats().rxPaused).to.be.at.least(Math.floor(n / 10));
    expect(tap.stats().rxFrames).to.equal(peer.frames.length); // a refused frame is counted once, when read
  });

  it('pause_receive_holds_frames_in_the_kernel_until_resume', async () => {
    const { ns, tap } = setup();
    const peer = recorder();
    tap.attach(peer);
    tap.pauseReceive();
    await new Promise((r) => setTimeout(r, 50)); // the poll in flight drops POLLIN
    const sent = Array.from({ length: 20 }, (_, i) => frame(i));
    ns.sendFrames(tap.ifname, sent);
    await new Promise((r) => setTimeout(r, 200));
    expect(peer.frames.filter(isTest).length).to.equal(0);
    tap.resumeReceive();
    await waitFor('20 frames after resume', () => peer.frames.filter(isTest).length >= 20);
    expect(peer.frames.filter(isTest).map(hex)).to.deep.equal(sent.map(hex));
  });

  it('eagain_stops_the_chain_sends_are_busy_until_the_tap_is_writable_then_every_frame_arrives_in_order', async function () {
    requireProgram(this, 'tc');
    const { ns, tap } = setup();
    // The TAP's writes enter the namespace, are redirected to a veth whose tbf queue drains a frame
    // every ~60 ms: they stay charged to the TAP's small send buffer (TUNSETSNDBUF) → EAGAIN.
    ns.ip(['link', 'add', 'q0', 'type', 'veth', 'peer', 'name', 'q1']);
    ns.ip(['link', 'set', 'q0', 'up']);
    ns.ip(['link', 'set', 'q1', 'up']);
    ns.exec('tc', ['qdisc', 'add', 'dev', 'q0', 'root', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '10000000']);
    ns.exec('tc', ['qdisc', 'add', 'dev', tap.ifname, 'ingress']);
    ns.exec('tc', ['filter', 'add', 'dev', tap.ifname, 'ingress', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', 'q0']);
    ioctlPtr(tap.fd, TUNSETSNDBUF, intArg(20_000), 4, 'TUNSETSNDBUF');
    const peer = recorder();
    tap.attach(peer);
    const n = 300;
    const sent = Array.from({ length: n }, (_, i) => frame(i));
    const cap = await captureTestFrames(ns, 'q1', n, 5000);
    let next = 0;
    while (next < n && tap.send(sent[next]!) === 'sent') next++;
    expect(next).to.be.below(n); // the kernel pushed back
    expect(tap.stats().txBusy).to.be.at.least(1);
    expect(tap.send(sent[next]!)).to.equal('busy'); // still: nothing is taken until writable()
    // Let the queue drain fast: the TAP becomes writable, the queued frames go first.
    ns.exec('tc', ['qdisc', 'change', 'dev', 'q0', 'root', 'tbf', 'rate', '1gbit', 'burst', '100000', 'limit', '10000000']);
    while (next < n) {
      const w = peer.writables;
      await waitFor('writable()', () => peer.writables > w, 5000);
      while (next < n && tap.send(sent[next]!) === 'sent') next++;
    }
    tap.flush();
    expect(await cap.done).to.deep.equal(sent.map(hex));
    expect(tap.stats()).to.include({ txFrames: n, txErrors: 0 });
  });

  it('a_header_the_tap_refuses_drops_that_frame_alone_and_the_rest_of_the_chain_is_written', async () => {
    const { ns, tap } = setup();
    tap.attach(recorder());
    const bad = new Uint8Array(tap.vnetHeaderLength);
    bad[1] = 0x7f; // gso_type: none the kernel knows (virtio_net_hdr_to_skb: EINVAL)
    bad[4] = 100; // gso_size
    const errors: HostError[] = [];
    tap.on('host-error', (e) => errors.push(e));
    const sent = Array.from({ length: 10 }, (_, i) => frame(i));
    const cap = await captureTestFrames(ns, tap.ifname, 9);
    sent.forEach((f, i) => expect(tap.send(f, i === 5 ? bad : undefined)).to.equal('sent'));
    const got = await cap.done;
    expect(got).to.deep.equal(sent.filter((_, i) => i !== 5).map(hex));
    expect(tap.stats()).to.include({ txFrames: 9, txErrors: 1, txPartial: 0 });
    expect(errors.length).to.equal(1);
    expect(errors[0]).to.be.instanceOf(HostError);
    expect(errors[0]!.errnoName).to.equal('EINVAL');
    expect(tap.linkUp).to.equal(true); // not fatal
  });

  it('close_with_frames_still_queued_writes_them_then_leaves_no_ring_fd_tun_fd_or_io_wq_thread', async () => {
    const rings = openFds('io_uring');
    const tuns = openFds('/dev/net/tun');
    const { ns, tap } = setup();
    expect(openFds('io_uring')).to.equal(rings + 1);
    tap.attach(recorder());
    const sent = Array.from({ length: 40 }, (_, i) => frame(i));
    // Persistent, so closing the fd leaves the interface registered and up: frames the kernel took
    // before the close are still in the receive backlog then, and unregistering would drop them
    // (and fail the capture with ENETDOWN) — what this test checks is that close() wrote them.
    ioctlPtr(tap.fd, TUNSETPERSIST, intArg(1), 4, 'TUNSETPERSIST');
    const cap = await captureTestFrames(ns, tap.ifname, 40);
    for (const f of sent) tap.send(f); // fewer than a batch: queued until the end of this turn…
    const closing = tap.close(); // …but close() comes first
    expect(tap.stats().txFrames).to.equal(40);
    await closing;
    expect(await cap.done).to.deep.equal(sent.map(hex));
    expect(tap.send(frame(99))).to.equal('dropped');
    await tap.close();
    expect(openFds('io_uring')).to.equal(rings);
    expect(openFds('/dev/net/tun')).to.equal(tuns);
    expect(ioUringThreads()).to.equal(0); // RWF_NOWAIT: nothing was ever handed to an io-wq worker
  });

  it('deleting_the_interface_fails_the_backend_with_a_typed_error_and_the_link_down', async () => {
    const { ns, tap } = setup();
    tap.attach(recorder());
    const errors: HostError[] = [];
    tap.on('host-error', (e) => errors.push(e));
    const changes: boolean[] = [];
    tap.onLinkChange((c) => changes.push(c.up));
    expect(tap.send(frame(1))).to.equal('sent');
    await new Promise((r) => setImmediate(r));
    ns.ip(['link', 'del', tap.ifname]);
    await waitFor('the backend to fail', () => !tap.linkUp);
    await waitFor('the link-down change', () => changes.includes(false));
    expect(errors.length).to.be.at.least(1);
    expect(errors.every((e) => e instanceof HostError)).to.equal(true);
    const before = tap.stats().txErrors;
    expect(tap.send(frame(2))).to.equal('dropped');
    expect(tap.stats().txErrors).to.equal(before + 1);
  });

  it('a_device_receive_that_throws_in_a_continued_batch_fails_the_backend_not_the_process', async () => {
    const { ns, tap } = setup();
    let offers = 0;
    const bug = new Error('device bug');
    tap.attach({
      receive: () => {
        if (++offers === RX_BATCH + 3) throw bug; // in the second batch: read on the next turn, outside the poll loop
        return true;
      },
      writable: () => {},
    });
    const errors: HostError[] = [];
    tap.on('host-error', (e) => errors.push(e));
    ns.sendFrames(tap.ifname, Array.from({ length: 2 * RX_BATCH }, (_, i) => frame(i)));
    await waitFor('the backend to fail', () => !tap.linkUp);
    expect(errors.length).to.equal(1);
    expect(errors[0]!.errnoName).to.equal('EIO');
    expect(errors[0]!.cause).to.equal(bug);
    expect(tap.send(frame(0))).to.equal('dropped');
  });

  it('a_device_on_a_uring_tap_reaches_the_namespace_and_back_with_two_queues', async () => {
    const { ns, tap } = setup({ queues: 2 });
    const rig = new NetRig({ netdev: tap, mac: '52:54:00:12:34:56' });
    rig.postRx(64);
    tap.setActiveQueues(2); // what VQ_PAIRS_SET 2 does (the rig's guest uses one pair)
    const cap = await captureTestFrames(ns, tap.ifname, 3);
    expect(tap.send(frame(1), undefined, 0)).to.equal('sent');
    expect(tap.send(frame(2), undefined, 1)).to.equal('sent');
    rig.send(frame(3)); // through the device's transmit path
    expect(new Set(await cap.done)).to.deep.equal(new Set([hex(frame(1)), hex(frame(2)), hex(frame(3))]));
    expect(tap.queueStats().map((s) => s.txFrames)).to.deep.equal([2, 1]);
    // Host → guest through the device on either queue.
    const toGuest = Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56, ...frame(7).subarray(6)]);
    ns.sendFrames(tap.ifname, [toGuest]);
    const got: Uint8Array[] = [];
    await waitFor('the frame in the guest', () => {
      for (const r of rig.received()) got.push(r.frame);
      return got.some((f) => hex(f) === hex(toGuest));
    });
  });

  it('io_other_than_inline_or_uring_is_refused_at_once', () => {
    expect(() => new TapNetdev({ id: 'x', io: 'worker' as never })).to.throw(TypeError, /io must be 'inline' or 'uring'/);
  });
});
