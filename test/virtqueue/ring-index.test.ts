// ring-index.ts: which ring parts get atomic 16-bit words (decided once per view), and that the
// atomic accessors read and write the ring's little-endian values whatever the host's byte order.

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { loadU16, sharedWords, storeU16 } from '../../virtqueue/ring-index.js';
import { SplitQueue } from '../../virtqueue/split-queue.js';

describe('virtqueue/ring-index', () => {
  it('gives words over a SharedArrayBuffer part at an even offset, null over an ArrayBuffer or an odd offset', () => {
    const shared = new SharedArrayBuffer(64);
    const w = sharedWords(new Uint8Array(shared, 8, 16));
    expect(w).to.be.instanceOf(Uint16Array);
    expect(w!.buffer).to.equal(shared);
    expect([w!.byteOffset, w!.length]).to.deep.equal([8, 8]);
    expect(sharedWords(new Uint8Array(new ArrayBuffer(64), 8, 16))).to.equal(null);
    expect(sharedWords(new Uint8Array(shared, 9, 16))).to.equal(null);
  });

  it('loadU16 / storeU16 are the little-endian ring values at a byte offset', () => {
    const shared = new SharedArrayBuffer(16);
    const dv = new DataView(shared);
    const words = new Uint16Array(shared, 4, 4);
    dv.setUint16(4 + 6, 0xbeef, true);
    expect(loadU16(words, 6)).to.equal(0xbeef);
    storeU16(words, 2, 0x1234);
    expect(dv.getUint16(4 + 2, true)).to.equal(0x1234);
    expect(dv.getUint16(4 + 6, true)).to.equal(0xbeef); // the neighbour untouched
  });

  it('a split queue over shared memory publishes used.idx and reads avail.idx as plain memory shows them', () => {
    // The same ring values whether the queue takes the atomic path or not: one pop and publish on each.
    for (const buffer of [new ArrayBuffer(0x4000), new SharedArrayBuffer(0x4000)]) {
      const memory = GuestMemory.fromRegions([{ guestAddress: 0, buffer }]);
      const dv = new DataView(buffer);
      // One 1-descriptor chain: desc 0 = writable buffer at 0x3000, 64 bytes; avail ring at 0x1000, used at 0x2000.
      dv.setBigUint64(0, 0x3000n, true);
      dv.setUint32(8, 64, true);
      dv.setUint16(12, 2, true);
      dv.setUint16(0x1000 + 4, 0, true);
      dv.setUint16(0x1000 + 2, 1, true); // avail.idx
      const q = SplitQueue.activate(memory, { size: 8, descTable: 0, availRing: 0x1000, usedRing: 0x2000, ready: true }, { indirectDesc: false, eventIdx: true }, 0);
      if (!(q instanceof SplitQueue)) throw new Error(q.code);
      const c = q.pop();
      if (c.kind !== 'chain') throw new Error(`no chain: ${c.kind}`);
      q.pushUsed(c, 10);
      dv.setUint16(0x1000 + 4 + 2 * 8, 0, true); // used_event 0: the first entry notifies
      expect(q.publishUsed(), String(buffer.constructor.name)).to.equal(true);
      expect(dv.getUint16(0x2000 + 2, true)).to.equal(1); // used.idx
      expect(dv.getUint32(0x2000 + 4 + 4, true)).to.equal(10); // used len
      q.setNotifications(true);
      expect(dv.getUint16(0x2000 + 4 + 8 * 8, true)).to.equal(1); // avail_event = nextAvail
    }
  });
});
