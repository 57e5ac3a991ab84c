// The packed virtqueue (VIRTIO 1.2 §2.8) with a well-behaved driver: lists in and out, chains and
// indirect tables, in-order and out-of-order completion, wrapping, unpop, event suppression in both
// directions (§2.8.10), activation.

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { PackedQueue } from '../../virtqueue/packed-queue.js';
import { QUEUE_EMPTY } from '../../virtqueue/virtqueue.js';
import { activateQueue } from '../../virtqueue/activate-queue.js';
import { SplitQueue } from '../../virtqueue/split-queue.js';
import { EVENT_DESC, EVENT_DISABLE, EVENT_ENABLE, PACKED_F_AVAIL, PACKED_F_USED } from '../support/packed-driver-ring.js';
import { P_EVENT_IDX, P_INDIRECT, P_PLAIN, pactivate, ppop, psetup } from './packed-fixtures.js';
import { DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import { firstPosition, positionDistance, positionOffset } from '../../virtqueue/packed-layout.js';

describe('virtqueue/packed-queue', () => {
  it('a list made available is popped with its buffers, and its used descriptor carries the buffer id and length', () => {
    const s = psetup(8);
    const id = s.ring.addChain([{ len: 3, data: [1, 2, 3] }, { len: 2, data: [4, 5] }, { len: 8, write: true }]);
    const c = ppop(s.q);
    expect(c.headIndex).to.equal(id);
    expect(c.readableLength).to.equal(5);
    expect(c.writableLength).to.equal(8);
    expect(c.descriptorCount).to.equal(3);
    const got = new Uint8Array(5);
    c.reader().read(got);
    expect([...got]).to.deep.equal([1, 2, 3, 4, 5]);
    c.writer().write(Uint8Array.of(7, 7));
    expect(s.q.pop()).to.equal(QUEUE_EMPTY);
    s.q.pushUsed(c, 2);
    // Not visible before publishUsed: the flags are written there.
    expect(s.ring.takeUsed()).to.deep.equal([]);
    expect(s.q.publishUsed()).to.equal(true);
    expect(s.ring.takeUsed()).to.deep.equal([{ id, len: 2 }]);
    expect(s.ring.freeDescriptors).to.equal(8);
  });

  it('a descriptor with AVAIL==USED under the current wrap counter is not available', () => {
    const s = psetup(4);
    s.ring.addRaw([{ len: 4, rawFlags: PACKED_F_AVAIL | PACKED_F_USED }]);
    expect(s.q.available()).to.equal(0);
    expect(s.q.pop()).to.equal(QUEUE_EMPTY);
    s.ring.writeAt(0, { len: 4, flags: 0 });
    expect(s.q.pop()).to.equal(QUEUE_EMPTY);
    // The next lap's marking (AVAIL=0, USED=1) is not available at wrap counter 1 either.
    s.ring.writeAt(0, { len: 4, flags: PACKED_F_USED });
    expect(s.q.pop()).to.equal(QUEUE_EMPTY);
    expect(s.q.broken).to.equal(false);
  });

  it('out-of-order completion writes used descriptors in completion order, each skipping its list', () => {
    const s = psetup(8);
    const a = s.ring.addChain([{ len: 4 }, { len: 4 }, { len: 4, write: true }]); // 3 descriptors
    const b = s.ring.addChain([{ len: 4, write: true }]); // 1
    const c = s.ring.addChain([{ len: 4 }, { len: 4, write: true }]); // 2
    const ca = ppop(s.q);
    const cb = ppop(s.q);
    const cc = ppop(s.q);
    s.q.pushUsed(cb, 1);
    s.q.pushUsed(cc, 2);
    expect(s.q.publishUsed()).to.equal(true);
    // Used descriptors at offsets 0 (b, skip 1) and 1 (c, skip 2): the driver reads them in order.
    expect(s.ring.takeUsed()).to.deep.equal([
      { id: b, len: 1 },
      { id: c, len: 2 },
    ]);
    s.q.pushUsed(ca, 4);
    s.q.publishUsed();
    expect(s.ring.takeUsed()).to.deep.equal([{ id: a, len: 4 }]);
    expect(s.ring.freeDescriptors).to.equal(8);
    expect(s.q.nextUsed).to.equal(s.q.nextAvail);
  });

  it('lists that wrap around the ring end are read across it, over many laps, with a size that is not a power of 2', () => {
    const s = psetup(5, P_PLAIN);
    for (let i = 0; i < 200; i++) {
      const id = s.ring.addChain([{ len: 2, data: [i & 0xff, 1] }, { len: 1 }, { len: 2, write: true }]);
      const c = ppop(s.q);
      expect(c.headIndex).to.equal(id);
      const got = new Uint8Array(3);
      c.reader().read(got);
      expect(got[0]).to.equal(i & 0xff);
      s.q.pushUsed(c, i % 3 === 0 ? 0 : 2);
      s.q.publishUsed();
      expect(s.ring.takeUsed()).to.deep.equal([{ id, len: i % 3 === 0 ? 0 : 2 }]);
    }
    expect(s.q.broken).to.equal(false);
  });

  it('an indirect list occupies one ring descriptor and its table gives the buffers', () => {
    const s = psetup(4, P_INDIRECT);
    const id = s.ring.addChain([{ len: 2, data: [5, 6] }, { len: 3 }, { len: 6, write: true }, { len: 6, write: true }], { indirect: true });
    const next = s.ring.addChain([{ len: 1, write: true }]);
    const c = ppop(s.q);
    expect(c.indirect).to.equal(true);
    expect(c.headIndex).to.equal(id);
    expect(c.descriptorCount).to.equal(4);
    expect(c.readableLength).to.equal(5);
    expect(c.writableLength).to.equal(12);
    expect(ppop(s.q).headIndex).to.equal(next);
  });

  it('unpop gives the last lists back and they are popped again from the ring', () => {
    const s = psetup(8);
    const a = s.ring.addChain([{ len: 4, write: true }, { len: 4, write: true }]);
    const b = s.ring.addChain([{ len: 4, write: true }]);
    ppop(s.q);
    ppop(s.q);
    s.q.unpop(1);
    expect(s.q.inFlight).to.equal(1);
    expect(ppop(s.q).headIndex).to.equal(b);
    s.q.unpop(2);
    expect(ppop(s.q).headIndex).to.equal(a);
    expect(ppop(s.q).headIndex).to.equal(b);
    expect(s.q.inFlight).to.equal(2);
    expect(() => s.q.unpop(3)).to.throw(RangeError);
  });

  it('the device holds what it popped until it publishes: a full ring pops empty, not a violation', () => {
    const s = psetup(2);
    s.ring.addChain([{ len: 1, write: true }]);
    s.ring.addChain([{ len: 1, write: true }]);
    const c0 = ppop(s.q);
    ppop(s.q);
    expect(s.q.held).to.equal(2);
    expect(s.q.pop()).to.equal(QUEUE_EMPTY);
    s.q.pushUsed(c0, 1);
    expect(s.q.held).to.equal(2);
    s.q.publishUsed();
    expect(s.q.held).to.equal(1);
  });

  it('a batch becomes visible at once: the first used descriptor is marked used last', () => {
    const s = psetup(4);
    s.ring.addChain([{ len: 1, write: true }]);
    s.ring.addChain([{ len: 1, write: true }]);
    const first = ppop(s.q);
    const second = ppop(s.q);
    const order: number[] = [];
    s.memory.setWriteObserver((addr, len) => {
      if (len === 2 && addr >= s.ring.descRing && addr < s.ring.descRing + 64) order.push((addr - s.ring.descRing - 14) / 16);
    });
    s.q.pushUsed(first, 1);
    s.q.pushUsed(second, 1);
    s.q.publishUsed();
    expect(order).to.deep.equal([1, 0]);
  });

  describe('used buffer notifications (driver event suppression, §2.8.10)', () => {
    it('RING_EVENT_FLAGS_DISABLE suppresses them and ENABLE asks for each publish', () => {
      const s = psetup(4, P_PLAIN);
      s.ring.setDriverEvent(EVENT_DISABLE);
      s.ring.addChain([{ len: 1, write: true }]);
      s.q.pushUsed(ppop(s.q), 1);
      expect(s.q.publishUsed()).to.equal(false);
      s.ring.setDriverEvent(EVENT_ENABLE);
      s.ring.addChain([{ len: 1, write: true }]);
      s.q.pushUsed(ppop(s.q), 1);
      expect(s.q.publishUsed()).to.equal(true);
    });

    it('RING_EVENT_FLAGS_DESC with EVENT_IDX notifies only when the named descriptor (with its wrap counter) is used', () => {
      const s = psetup(4, P_EVENT_IDX);
      // Ask for an event at offset 2 of the first lap (wrap 1).
      s.ring.setDriverEvent(EVENT_DESC, 2 | (1 << 15));
      const run = (): boolean => {
        s.ring.addChain([{ len: 1, write: true }]);
        s.q.pushUsed(ppop(s.q), 1);
        const r = s.q.publishUsed();
        s.ring.takeUsed();
        return r;
      };
      expect(run()).to.equal(false); // used at 0
      expect(run()).to.equal(false); // used at 1
      expect(run()).to.equal(true); // used at 2: the event
      expect(run()).to.equal(false); // 3
      expect(run()).to.equal(false); // 0, second lap (wrap 0): offset 2 again but the wrong lap...
      expect(run()).to.equal(false); // 1
      expect(run()).to.equal(false); // 2 with wrap 0: not the event's wrap counter
    });

    it('a batch that passes the event descriptor notifies once', () => {
      const s = psetup(8, P_EVENT_IDX);
      s.ring.setDriverEvent(EVENT_DESC, 1 | (1 << 15));
      s.ring.addChain([{ len: 1, write: true }]);
      s.ring.addChain([{ len: 1, write: true }, { len: 1, write: true }]);
      const a = ppop(s.q);
      const b = ppop(s.q);
      s.q.pushUsed(a, 1);
      s.q.pushUsed(b, 2);
      expect(s.q.publishUsed()).to.equal(true);
    });

    it('RING_EVENT_FLAGS_DESC without EVENT_IDX, or the reserved value 3, notifies (never wrong)', () => {
      for (const flags of [EVENT_DESC, 3]) {
        const s = psetup(4, P_PLAIN);
        s.ring.setDriverEvent(flags, 3 | (1 << 15));
        s.ring.addChain([{ len: 1, write: true }]);
        s.q.pushUsed(ppop(s.q), 1);
        expect(s.q.publishUsed()).to.equal(true);
      }
    });

    it('publishing nothing notifies nothing', () => {
      const s = psetup(4, P_PLAIN);
      expect(s.q.publishUsed()).to.equal(false);
    });
  });

  describe('available buffer notifications (device event suppression, §2.8.10)', () => {
    it('without EVENT_IDX the device writes DISABLE and ENABLE', () => {
      const s = psetup(4, P_PLAIN);
      s.q.setNotifications(false);
      expect(s.ring.readDeviceEvent().flags).to.equal(EVENT_DISABLE);
      s.q.setNotifications(true);
      expect(s.ring.readDeviceEvent().flags).to.equal(EVENT_ENABLE);
      const before = s.ring.availPosition;
      s.ring.addChain([{ len: 1 }]);
      expect(s.ring.needsNotify(before, false)).to.equal(true);
    });

    it('with EVENT_IDX enabling asks for the next position to pop, with its wrap counter', () => {
      const s = psetup(2, P_EVENT_IDX);
      for (let i = 0; i < 3; i++) {
        s.ring.addChain([{ len: 1 }]);
        s.q.pushUsed(ppop(s.q), 0);
        s.q.publishUsed();
        s.ring.takeUsed();
      }
      // Popped 3 on a ring of 2: next position offset 1, wrap counter 0.
      expect(s.q.enableNotification()).to.equal(false);
      expect(s.ring.readDeviceEvent()).to.deep.equal({ flags: EVENT_DESC, offWrap: 1 });
      const before = s.ring.availPosition;
      s.ring.addChain([{ len: 1 }]);
      expect(s.ring.needsNotify(before, true)).to.equal(true);
    });

    it('enableNotification looks again and reports a list made available meanwhile', () => {
      const s = psetup(4, P_EVENT_IDX);
      s.q.setNotifications(false);
      s.ring.addChain([{ len: 1 }]);
      expect(s.q.enableNotification()).to.equal(true);
    });
  });

  describe('activation', () => {
    it('activateQueue picks the ring format from the features', () => {
      const m = new GuestMemory(0x10000);
      const cfg = { size: 8, descTable: 0x1000, availRing: 0x1080, usedRing: 0x1084, ready: true };
      expect(activateQueue(m, cfg, P_PLAIN, 0)).to.be.instanceOf(PackedQueue);
      expect(activateQueue(m, { ...cfg, availRing: 0x2000, usedRing: 0x3000 }, { indirectDesc: false, eventIdx: false }, 0)).to.be.instanceOf(SplitQueue);
    });

    it('refuses a size of 0 or above 32768, accepts any size in between', () => {
      const m = new GuestMemory(0x100000);
      const cfg = { size: 3, descTable: 0x1000, availRing: 0x80000, usedRing: 0x80004, ready: true };
      expect(PackedQueue.activate(m, cfg, P_PLAIN, 0)).to.be.instanceOf(PackedQueue);
      expect(PackedQueue.activate(m, { ...cfg, size: 0 }, P_PLAIN, 0)).to.deep.equal({ code: 'packed.size-invalid', size: 0 });
      expect(PackedQueue.activate(m, { ...cfg, size: 32769 }, P_PLAIN, 0)).to.deep.equal({ code: 'packed.size-invalid', size: 32769 });
    });

    it('refuses misaligned parts and parts outside memory', () => {
      const m = new GuestMemory(0x10000);
      const cfg = { size: 4, descTable: 0x1000, availRing: 0x2000, usedRing: 0x2004, ready: true };
      expect(PackedQueue.activate(m, { ...cfg, descTable: 0x1008 }, P_PLAIN, 0)).to.deep.equal({ code: 'packed.misaligned', ring: 'descRing', addr: 0x1008, alignment: 16 });
      expect(PackedQueue.activate(m, { ...cfg, availRing: 0x2002 }, P_PLAIN, 0)).to.deep.equal({ code: 'packed.misaligned', ring: 'driverEvent', addr: 0x2002, alignment: 4 });
      expect(PackedQueue.activate(m, { ...cfg, usedRing: 0x2006 }, P_PLAIN, 0)).to.deep.equal({ code: 'packed.misaligned', ring: 'deviceEvent', addr: 0x2006, alignment: 4 });
      expect(PackedQueue.activate(m, { ...cfg, usedRing: 0x10000 }, P_PLAIN, 0)).to.deep.equal({ code: 'packed.ring-outside-memory', ring: 'deviceEvent', addr: 0x10000, len: 4 });
      expect(PackedQueue.activate(m, { ...cfg, descTable: 0xfff0 }, P_PLAIN, 0)).to.deep.equal({ code: 'packed.ring-outside-memory', ring: 'descRing', addr: 0xfff0, len: 64 });
    });
  });
  describe('device state: chains in flight stay popped (runState / restoreRunState / restoreHeld)', () => {
    it('a restored queue holds the same lists, out of order and after their slots were overwritten, and goes on like the saved one', () => {
      const s = psetup(8);
      const a = s.ring.addChain([{ len: 4 }, { len: 4, write: true }]); // 2 descriptors, at offset 0
      const b = s.ring.addChain([{ len: 4, write: true }]); // 1, at offset 2
      const c = s.ring.addChain([{ len: 8, write: true }, { len: 8, write: true }]); // 2, at offset 3
      const ca = ppop(s.q);
      const cb = ppop(s.q);
      const cc = ppop(s.q);
      s.q.pushUsed(cb, 1); // b first: its used descriptor goes over a's first ring slot
      s.q.publishUsed();
      const st = s.q.runState();
      expect(st.nextAvail, 'nextAvail is not rewound').to.equal(s.q.nextAvail);
      expect(positionDistance(st.nextUsed, st.nextAvail, 8)).to.equal(4);
      const lists = [ca, cc].map((ch) => ({ id: ch.headIndex, at: ch.availIndex, list: s.q.heldList(ch)! }));
      expect(lists.map((l) => [l.id, positionOffset(l.at, 8), l.list.ringSlots])).to.deep.equal([
        [a, 0, 2],
        [c, 3, 2],
      ]);
      // The restored queue: same memory contents (a's first slot holds b's used descriptor), and a's
      // second slot blanked too: the ring does not describe a any more.
      expect(s.memory.readU16(s.ring.descAddr(0) + 12)).to.equal(b);
      const m2 = new GuestMemory(0x10000);
      m2.write(0, s.memory.bytes(0, 0x10000)!);
      m2.write(s.ring.descAddr(1), new Uint8Array(16));
      const q2 = pactivate(m2, s.ring, s.features);
      expect(q2.restoreRunState(st)).to.equal(null);
      expect(q2.heldMissing()).to.match(/4 descriptor\(s\) in flight/);
      const ra = q2.restoreHeld(lists[0]!.id, lists[0]!.at, lists[0]!.list);
      expect(ra).to.be.instanceOf(DescriptorChain);
      expect(q2.restoreHeld(lists[0]!.id, lists[0]!.at, lists[0]!.list)).to.match(/held twice/);
      const rc = q2.restoreHeld(lists[1]!.id, lists[1]!.at, lists[1]!.list) as DescriptorChain;
      expect(q2.heldMissing()).to.equal(null);
      expect(q2.restoreHeld(b, lists[1]!.at, { ringSlots: 1, descriptorCount: 1, indirect: false, regions: [] })).to.match(/more than the 4 descriptors in flight/);
      const chainA = ra as DescriptorChain;
      expect([chainA.headIndex, chainA.readableLength, chainA.writableLength, chainA.descriptorCount, chainA.availIndex]).to.deep.equal([a, 4, 4, 2, lists[0]!.at]);
      expect(q2.inFlight).to.equal(2);
      // a cannot be given back to the ring (b was popped after it and is used); c can: the most
      // recent pop, its ring descriptors still in place.
      expect(() => q2.unpop(2)).to.throw(/only the most recent unpushed pops/);
      expect(q2.inFlight).to.equal(2);
      // c can be given back (the most recent pop), then popped again from the ring as it was.
      q2.unpop(1);
      const rc2 = ppop(q2);
      expect([rc2.headIndex, rc2.writableLength]).to.deep.equal([c, 16]);
      expect(rc.state, 'the unpopped chain went back to the pool and came out again').to.equal(rc2.state);
      // Complete c, then a, on both queues: the same used descriptors at the same positions.
      s.q.pushUsed(cc, 16);
      s.q.pushUsed(ca, 4);
      s.q.publishUsed();
      q2.pushUsed(rc2, 16);
      q2.pushUsed(chainA, 4);
      q2.publishUsed();
      // (Used descriptors carry length, ID and flags; the address field is not written.)
      const usedFields = (m: GuestMemory): number[][] => Array.from({ length: 8 }, (_, i) => [m.readU32(s.ring.descAddr(i) + 8), m.readU16(s.ring.descAddr(i) + 12), m.readU16(s.ring.descAddr(i) + 14)]);
      expect(usedFields(m2)).to.deep.equal(usedFields(s.memory));
      expect(s.ring.takeUsed()).to.deep.equal([
        { id: b, len: 1 },
        { id: c, len: 16 },
        { id: a, len: 4 },
      ]);
      expect(q2.runState()).to.deep.equal(s.q.runState());
    });

    it('impossible positions and lists are refused without changing the queue', () => {
      const s = psetup(4, P_PLAIN);
      const q = pactivate(s.memory, s.ring, s.features);
      const first = firstPosition(4);
      expect(q.restoreRunState({ nextAvail: 8, nextUsed: first, publishedUsed: first })).to.match(/not a position/);
      expect(q.restoreRunState({ nextAvail: first, nextUsed: 1, publishedUsed: first })).to.match(/differs from publishedUsed/);
      expect(q.restoreRunState({ nextAvail: 3, nextUsed: 6, publishedUsed: 6 })).to.match(/more than the ring's 4/);
      expect(q.restoreRunState({ nextAvail: 6, nextUsed: first, publishedUsed: first })).to.equal(null);
      const buf = { addr: 0x8000, len: 16, writable: true };
      const one = { ringSlots: 1, descriptorCount: 1, indirect: false, regions: [buf] };
      expect(q.restoreHeld(0, 8, one)).to.match(/not a position/);
      expect(q.restoreHeld(0x10000, first, one)).to.match(/not a 16-bit ID/);
      expect(q.restoreHeld(0, first, { ...one, indirect: true })).to.match(/INDIRECT_DESC was not negotiated/);
      expect(q.restoreHeld(0, first, { ...one, ringSlots: 5, descriptorCount: 5 })).to.match(/takes 5 ring descriptors/);
      expect(q.restoreHeld(0, first, { ...one, regions: [buf, buf] })).to.match(/2 buffers in 1 descriptors/);
      expect(q.restoreHeld(0, first, { ringSlots: 2, descriptorCount: 2, indirect: false, regions: [buf, { ...buf, writable: false }] })).to.match(/readable buffer after a writable/);
      expect(q.restoreHeld(0, first, { ...one, regions: [{ ...buf, addr: 0xfff8 }] })).to.deep.include({ code: 'packed.region-outside-memory' });
      expect(q.inFlight).to.equal(0);
      expect(q.heldMissing()).to.match(/2 descriptor\(s\) in flight/);
      expect(q.restoreHeld(0, first, one)).to.be.instanceOf(DescriptorChain);
      expect(q.restoreHeld(1, first + 1, one)).to.be.instanceOf(DescriptorChain);
      expect(q.heldMissing()).to.equal(null);
    });
  });
});
