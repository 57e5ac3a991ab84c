// The driver-side ring builder (test/support/driver-ring.ts) writes what VIRTIO 1.2 §2.7.5,
// §2.7.6 and §2.7.13 say a driver writes: checked here byte by byte, without the device.

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { DriverRing } from '../support/driver-ring.js';

function desc(m: GuestMemory, ring: DriverRing, i: number, table = ring.descTable) {
  const at = table + 16 * i;
  return { addr: Number(m.readU64(at)), len: m.readU32(at + 8), flags: m.readU16(at + 12), next: m.readU16(at + 14) };
}

describe('test/support/driver-ring', () => {
  it('lays_out_the_three_parts_aligned_one_after_another', () => {
    const m = new GuestMemory(0x10000);
    const r = new DriverRing(m, { size: 4, base: 0x1001 });
    expect(r.descTable).to.equal(0x1010);
    expect(r.availRing).to.equal(0x1050); // + 16 * 4
    expect(r.usedRing).to.equal(0x1060); // + 6 + 2 * 4 = 0x105e, aligned to 4
    expect(r.queueConfig()).to.deep.equal({ size: 4, descTable: 0x1010, availRing: 0x1050, usedRing: 0x1060, ready: true });
    expect(r.heapStart).to.be.greaterThanOrEqual(0x1060 + 6 + 32);
    expect(r.heapEnd).to.equal(0x10000);
  });

  it('add_chain_writes_linked_descriptors_then_the_avail_entry_then_idx', () => {
    const m = new GuestMemory(0x10000);
    const r = new DriverRing(m, { size: 4 });
    const head = r.addChain([{ len: 3, data: [1, 2, 3] }, { len: 5, write: true }]);
    const b = r.buffers(head);
    expect(head).to.equal(0);
    expect(desc(m, r, 0)).to.deep.equal({ addr: b[0]!.addr, len: 3, flags: 1, next: 1 });
    expect(desc(m, r, 1)).to.deep.equal({ addr: b[1]!.addr, len: 5, flags: 2, next: 0 });
    expect(m.readU16(r.availRing + 4)).to.equal(0);
    expect(m.readU16(r.availRing + 2)).to.equal(1);
    expect([...r.bufferBytes(head, 0)]).to.deep.equal([1, 2, 3]);
  });

  it('indirect_chain_takes_one_slot_pointing_to_a_table', () => {
    const m = new GuestMemory(0x10000);
    const r = new DriverRing(m, { size: 4 });
    const head = r.addChain([{ len: 3 }, { len: 5, write: true }], { indirect: true });
    const d = desc(m, r, head);
    expect(d.flags).to.equal(4);
    expect(d.len).to.equal(32);
    expect(desc(m, r, 0, d.addr)).to.deep.include({ len: 3, flags: 1, next: 1 });
    expect(desc(m, r, 1, d.addr)).to.deep.include({ len: 5, flags: 2, next: 0 });
    expect(r.freeDescriptors).to.equal(3);
  });

  it('unpublished_heads_become_visible_with_one_idx_update', () => {
    const m = new GuestMemory(0x10000);
    const r = new DriverRing(m, { size: 4 });
    r.addChain([{ len: 1 }], { publish: false });
    r.addChain([{ len: 1 }], { publish: false });
    expect(m.readU16(r.availRing + 2)).to.equal(0);
    r.publish();
    expect(m.readU16(r.availRing + 2)).to.equal(2);
    expect([m.readU16(r.availRing + 4), m.readU16(r.availRing + 6)]).to.deep.equal([0, 1]);
  });

  it('take_used_frees_descriptors_and_the_heap_once_nothing_is_outstanding', () => {
    const m = new GuestMemory(0x10000);
    const r = new DriverRing(m, { size: 2 });
    const h = r.addChain([{ len: 1 }, { len: 1, write: true }]);
    expect(() => r.addChain([{ len: 1 }])).to.throw(/descriptor table full/);
    // Play the device: used element { id: h, len: 1 }, used.idx = 1.
    m.writeU32(r.usedRing + 4, h);
    m.writeU32(r.usedRing + 8, 1);
    m.writeU16(r.usedRing + 2, 1);
    expect(r.usedEntries()).to.deep.equal([{ id: h, len: 1 }]);
    expect(r.takeUsed()).to.deep.equal([{ id: h, len: 1 }]);
    expect(r.usedEntries()).to.deep.equal([]);
    expect(r.freeDescriptors).to.equal(2);
    expect(r.alloc(1)).to.equal(r.heapStart);
  });

  it('event_fields_sit_at_the_ends_of_the_rings', () => {
    const m = new GuestMemory(0x10000);
    const r = new DriverRing(m, { size: 8 });
    r.setUsedEvent(0x1234);
    expect(m.readU16(r.availRing + 4 + 16)).to.equal(0x1234);
    m.writeU16(r.usedRing + 4 + 64, 0x4321);
    expect(r.readAvailEvent()).to.equal(0x4321);
    r.setNoInterrupt(true);
    expect(m.readU16(r.availRing)).to.equal(1);
  });

  it('raw_descriptors_are_written_exactly_as_given', () => {
    const m = new GuestMemory(0x10000);
    const r = new DriverRing(m, { size: 8 });
    const head = r.addRaw([{ index: 5, addr: 0xffff_ffff_ffff_0000n, len: 7, flags: 7, next: 9 }], { head: 6 });
    expect(head).to.equal(6);
    expect(m.readU64(r.descTable + 16 * 5)).to.equal(0xffff_ffff_ffff_0000n);
    expect(desc(m, r, 5)).to.deep.include({ len: 7, flags: 7, next: 9 });
    expect(m.readU16(r.availRing + 4)).to.equal(6);
    r.bumpAvailIdx(10);
    expect(r.availIdx).to.equal(11);
  });
});
