// Allocation-free access to a chain's bytes (VIRTIO 1.2 §2.7.4: no assumption about how
// descriptors split a message): GuestMemory.regionAt names the region holding a range, and
// ChainCursor.span() hands out where the next bytes lie instead of a view, only when they lie in
// one descriptor and one region; writes made through a writer's span reach the write observer.

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { INDIRECT, PLAIN, SwappableMemory, activate, popChain, setup } from './queue-fixtures.js';
import { DriverRing } from '../support/driver-ring.js';

describe('virtqueue chain spans (regionAt, span)', () => {
  it('region_at_names_the_one_region_holding_a_range_and_nothing_across_or_outside', () => {
    const m = GuestMemory.fromRegions([
      { guestAddress: 0, buffer: new ArrayBuffer(0x1000) },
      { guestAddress: 0x1000, buffer: new ArrayBuffer(0x1000) },
      { guestAddress: 0x4000, buffer: new ArrayBuffer(0x1000) },
    ]);
    const a = m.regionAt(0x10, 0x20)!;
    expect(a.start).to.equal(0);
    expect(m.regionAt(0x100, 4)).to.equal(a); // the same object: nothing made per call
    const b = m.regionAt(0x4ff0, 0x10)!;
    expect(b.start).to.equal(0x4000);
    expect(b.end).to.equal(0x5000);
    expect(m.regionAt(0xff0, 0x20)).to.equal(undefined); // spans two adjacent regions
    expect(m.regionAt(0x2000, 1)).to.equal(undefined); // a hole
    expect(m.regionAt(0x4ff0, 0x11)).to.equal(undefined); // past the end
  });

  for (const indirect of [false, true]) {
    it(`reader_span_names_bytes_inside_one_descriptor_and_refuses_across_${indirect ? 'indirect' : 'direct'}`, () => {
      const s = setup(8, INDIRECT);
      s.ring.addChain([{ len: 3, data: [1, 2, 3] }, { len: 4, data: [4, 5, 6, 7] }, { len: 2, write: true }], { indirect });
      const r = popChain(s.q).reader();
      expect(r.span(0)).to.equal(false);
      expect(r.span(4)).to.equal(false); // crosses into the second descriptor
      expect(r.position).to.equal(0);
      expect(r.span(2)).to.equal(true);
      expect([...r.spanRegion!.bytes.subarray(r.spanOffset, r.spanOffset + 2)]).to.deep.equal([1, 2]);
      expect(r.position).to.equal(2);
      expect(r.span(2)).to.equal(false); // 1 byte left in this descriptor
      expect(r.readU8()).to.equal(3);
      expect(r.span(4)).to.equal(true);
      expect(r.spanRegion!.data.getUint32(r.spanOffset, true)).to.equal(0x07060504);
      expect(r.span(1)).to.equal(false); // the readable part is used up; the writable part is not its
    });
  }

  it('writer_span_writes_are_reported_to_the_write_observer_when_the_chain_is_given_back', () => {
    const s = setup(8, PLAIN);
    const head = s.ring.addChain([{ len: 1, data: [9] }, { len: 6, write: true }]);
    const seen: [number, number][] = [];
    s.memory.setWriteObserver((a, l) => seen.push([a, l]));
    const c = popChain(s.q);
    const w = c.writer();
    expect(w.span(4)).to.equal(true);
    w.spanRegion!.bytes.set([0xa, 0xb, 0xc, 0xd], w.spanOffset);
    expect(seen.filter(([, l]) => l === 4)).to.deep.equal([]); // not before the chain goes back
    s.q.pushUsed(c, 4);
    const buf = s.ring.buffers(head)[1]!;
    expect(seen).to.deep.include([buf.addr, 4]);
    expect([...s.memory.bytes(buf.addr, 4)]).to.deep.equal([0xa, 0xb, 0xc, 0xd]);
  });

  it('place_writable_names_the_first_writable_descriptor_when_it_holds_the_bytes_and_wrote_placed_reports_them', () => {
    const s = setup(8, PLAIN);
    const seen: [number, number][] = [];
    const one = s.ring.addChain([{ len: 1, data: [9] }, { len: 6, write: true }]);
    const c = popChain(s.q);
    expect(c.placeWritable(0)).to.equal(null);
    expect(c.placeWritable(7)).to.equal(null); // more than the descriptor
    const r = c.placeWritable(6)!;
    const buf = s.ring.buffers(one)[1]!;
    expect(r.start + c.placedOffset).to.equal(buf.addr);
    r.bytes.set([1, 2, 3, 4, 5], c.placedOffset);
    s.memory.setWriteObserver((a, l) => seen.push([a, l]));
    c.wrotePlaced(5);
    expect(seen).to.deep.equal([[buf.addr, 5]]);
    s.q.pushUsed(c, 5);
    // The writer reported nothing more inside the buffer (the other write is the used element).
    expect(seen.filter(([a]) => a >= buf.addr && a < buf.addr + 6)).to.deep.equal([[buf.addr, 5]]);
    expect([...s.memory.bytes(buf.addr, 5)]).to.deep.equal([1, 2, 3, 4, 5]);
    // Header and frame in two writable descriptors: only the first one's bytes are placed.
    const two = s.ring.addChain([{ len: 2, write: true }, { len: 4, write: true }]);
    const d = popChain(s.q);
    expect(d.placeWritable(3)).to.equal(null);
    expect(d.placeWritable(2)!.start + d.placedOffset).to.equal(s.ring.buffers(two)[0]!.addr);
    s.q.pushUsed(d, 0);
    // A chain with no writable part.
    s.ring.addChain([{ len: 4, data: [1, 2, 3, 4] }]);
    const e = popChain(s.q);
    expect(e.placeWritable(1)).to.equal(null);
  });

  it('a_memory_without_region_at_gets_no_span_and_views_and_copies_still_work', () => {
    const memory = new SwappableMemory(0x10000);
    const ring = new DriverRing(memory as unknown as GuestMemory, { size: 8 });
    const q = activate(memory, ring, PLAIN);
    ring.addChain([{ len: 4, data: [1, 2, 3, 4] }, { len: 4, write: true }]);
    const c = popChain(q);
    const r = c.reader();
    expect(r.span(2)).to.equal(false);
    expect([...r.view(2)!]).to.deep.equal([1, 2]);
    const rest = new Uint8Array(2);
    expect(r.read(rest)).to.equal(2);
    expect([...rest]).to.deep.equal([3, 4]);
    expect(c.writer().span(4)).to.equal(false);
    expect(c.placeWritable(4)).to.equal(null);
    expect(c.writer().write(Uint8Array.of(5, 6, 7, 8))).to.equal(4);
  });
});
