// Backpressure accounting under pressure (VIRTIO 1.2 §5.1.6.3 the driver supplies receive buffers,
// §5.1.6.4 the device waits for them; devices/virtio-net/rx-path.ts the policy): a million frames
// offered to a guest that posts receive buffers slowly and in bursts. The policy: with no buffers
// the device holds frames in its bounded backlog, then pauses the backend, which holds up to its
// own limit and refuses (counts `dropped`) only while that is full. So:
//   delivered + counted drops == offered, every refusal happens with the backend's backlog full,
//   the device drops nothing for lack of buffers, and frames arrive in order, intact.
// A second run flaps the link and resets the device: the only other drops are 'link-down' (while
// the link is down) and 'reset' (what the device held at a reset), each counted.

import { expect } from 'chai';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import type { NetStats } from '../../devices/virtio-net/net-stats.js';
import { NetRig } from '../support/net-rig.js';

const MAIN = '52:54:00:12:34:56';
/** Receive buffers live here, one fixed slot each (the rig's bump heap would starve). */
const POOL_BASE = 0x40_0000;
const SLOT = 2048;
const RING = 256;
const NETDEV_BACKLOG = 512;
/** Where the frame number sits in the frame: after the Ethernet header. */
const SEQ_AT = 14;

/** A small deterministic generator (xorshift32): the same pressure pattern every run. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

function dropsTotal(s: NetStats): number {
  return Object.values(s.rx.drops).reduce((a, b) => a + b, 0);
}

/** A guest that posts fixed receive slots in bursts and reads frames back in order. */
class SlowGuest {
  readonly free: number[] = [];
  private readonly slotOf = new Map<number, number>();
  delivered = 0;
  lastSeq = -1;
  outOfOrder = 0;
  corrupt = 0;

  constructor(readonly rig: NetRig) {
    this.reset();
  }

  reset(): void {
    this.free.length = 0;
    this.slotOf.clear();
    for (let i = 0; i < RING; i++) this.free.push(POOL_BASE + i * SLOT);
  }

  /** Posts up to `n` buffers at once (one avail.idx update), notifying as Linux decides. */
  post(n: number): void {
    const ring = this.rig.rx;
    const count = Math.min(n, this.free.length, ring.freeDescriptors);
    if (count === 0) return;
    this.rig.kick(0, () => {
      for (let i = 0; i < count; i++) {
        const addr = this.free.pop()!;
        this.slotOf.set(ring.addChain([{ len: SLOT, write: true, addr }], { publish: false }), addr);
      }
      ring.publish();
    });
  }

  /** Reads every completed buffer: frame number in order, length as sent. */
  collect(frameLen: number): void {
    const m = this.rig.memory;
    const hdr = this.rig.hdrLen;
    for (const e of this.rig.rx.takeUsed()) {
      const addr = this.slotOf.get(e.id)!;
      this.slotOf.delete(e.id);
      this.free.push(addr);
      const seq = m.readU32(addr + hdr + SEQ_AT);
      if (seq <= this.lastSeq) this.outOfOrder++;
      if (e.len !== hdr + frameLen || m.readU8(addr + hdr + 30) !== 0xab) this.corrupt++;
      this.lastSeq = seq;
      this.delivered++;
    }
  }
}

function frameTemplate(len: number): Uint8Array {
  const f = new Uint8Array(len).fill(0xab);
  f.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc, 0x08, 0x00]);
  return f;
}

describe('reliability: backpressure accounting', function () {
  this.timeout(300_000);

  it('a_million_frames_to_a_slow_bursty_guest_are_delivered_or_counted_and_drops_only_at_a_full_backend', () => {
    const OFFERED = 1_000_000;
    const FRAME = 64;
    const netdev = new MemoryNetdev({ id: 'bp0', backlogLimit: NETDEV_BACKLOG });
    const rig = new NetRig({ mac: MAIN, netdev, ringSize: RING });
    const guest = new SlowGuest(rig);
    const frame = frameTemplate(FRAME);
    const view = new DataView(frame.buffer);
    const rand = rng(0x5eed);
    let offered = 0;
    let refused = 0;
    let refusedWhileNotFull = 0;
    while (offered < OFFERED) {
      // The host: mostly trickles, sometimes a burst far beyond every backlog.
      const r = rand(100);
      const burst = r < 70 ? rand(9) : r < 95 ? 8 + rand(57) : 200 + rand(1200);
      for (let i = 0; i < burst && offered < OFFERED; i++) {
        view.setUint32(SEQ_AT, offered, true);
        offered++;
        if (!rig.inject(frame)) {
          refused++;
          if (netdev.stats().backlog !== NETDEV_BACKLOG) refusedWhileNotFull++;
        }
      }
      // The guest: often busy, then a burst of buffers of any size.
      if (rand(10) < 3) guest.post(1 + rand(RING));
      guest.collect(FRAME);
    }
    // The guest catches up: everything held reaches it.
    for (let i = 0; i < 10_000 && (netdev.stats().backlog > 0 || rig.device.stats().rx.backlog > 0); i++) {
      guest.post(RING);
      guest.collect(FRAME);
    }
    const s = rig.device.stats();
    const n = netdev.stats();
    console.log(`      offered ${OFFERED}: delivered ${guest.delivered}, backend drops ${n.dropped}, device pauses ${s.rx.backpressure}`);
    expect(n.injected).to.equal(OFFERED);
    expect(s.rx.backlog + n.backlog, 'nothing left waiting').to.equal(0);
    expect(guest.delivered + n.dropped, 'delivered + counted drops == offered').to.equal(OFFERED);
    expect(n.dropped, 'every refusal was counted').to.equal(refused);
    expect(refusedWhileNotFull, 'refusals only with the backend backlog full').to.equal(0);
    expect(dropsTotal(s), 'the device dropped nothing: it waits for buffers').to.equal(0);
    expect(s.rx.frames).to.equal(guest.delivered);
    expect(s.rx.offered).to.equal(n.delivered);
    expect(guest.outOfOrder, 'in order').to.equal(0);
    expect(guest.corrupt, 'intact').to.equal(0);
    expect(refused, 'the pressure really overflowed the backlogs').to.be.greaterThan(0);
    expect(s.rx.backpressure, 'the device paused the backend').to.be.greaterThan(0);
  });

  it('link_flaps_and_resets_drop_only_what_the_policy_names_and_count_it', () => {
    const OFFERED = 200_000;
    const FRAME = 1000;
    const netdev = new MemoryNetdev({ id: 'bp1', backlogLimit: NETDEV_BACKLOG });
    const rig = new NetRig({ mac: MAIN, netdev, ringSize: RING });
    const guest = new SlowGuest(rig);
    const frame = frameTemplate(FRAME);
    const view = new DataView(frame.buffer);
    const rand = rng(0xf1a9);
    let offered = 0;
    let linkUp = true;
    let linkDownWhileUp = 0;
    let resetDropsOutsideReset = 0;
    let last = rig.device.stats();
    while (offered < OFFERED) {
      const burst = rand(10) < 8 ? rand(16) : 100 + rand(600);
      for (let i = 0; i < burst && offered < OFFERED; i++) {
        view.setUint32(SEQ_AT, offered, true);
        offered++;
        rig.inject(frame);
      }
      const event = rand(1000);
      if (event < 5) {
        // Link flap: frames held and frames offered while down are dropped as 'link-down'.
        linkUp = !linkUp;
        rig.device.setLink(linkUp);
      } else if (event < 8) {
        // The driver resets and reinitialises: what the device held is dropped as 'reset'.
        const before = rig.device.stats();
        rig.start();
        guest.reset();
        const after = rig.device.stats();
        if (after.rx.drops['link-down'] !== before.rx.drops['link-down']) linkDownWhileUp++;
        last = after;
      }
      if (rand(10) < 4) guest.post(1 + rand(RING));
      guest.collect(FRAME);
      const now = rig.device.stats();
      if (linkUp && event >= 5 && now.rx.drops['link-down'] !== last.rx.drops['link-down']) linkDownWhileUp++;
      if (event >= 8 && now.rx.drops.reset !== last.rx.drops.reset) resetDropsOutsideReset++;
      last = now;
    }
    if (!linkUp) rig.device.setLink(true);
    for (let i = 0; i < 10_000 && (netdev.stats().backlog > 0 || rig.device.stats().rx.backlog > 0); i++) {
      guest.post(RING);
      guest.collect(FRAME);
    }
    const s = rig.device.stats();
    const n = netdev.stats();
    const d = s.rx.drops;
    console.log(`      offered ${OFFERED}: delivered ${guest.delivered}, link-down ${d['link-down']}, reset ${d.reset}, backend drops ${n.dropped}`);
    expect(guest.delivered + dropsTotal(s) + n.dropped, 'delivered + counted drops == offered').to.equal(OFFERED);
    expect(d.unicast + d.multicast + d.broadcast + d.vlan + d.runt + d.oversize + d['buffer-too-small'], 'no other reason').to.equal(0);
    expect(linkDownWhileUp, "'link-down' drops only while the link is down").to.equal(0);
    expect(resetDropsOutsideReset, "'reset' drops only at a reset").to.equal(0);
    expect(d['link-down'], 'the flaps dropped frames').to.be.greaterThan(0);
    expect(guest.outOfOrder, 'in order').to.equal(0);
    expect(guest.corrupt, 'intact').to.equal(0);
  });
});
