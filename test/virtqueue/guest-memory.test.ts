import { expect } from 'chai';
import sinon from 'sinon';
import { GuestMemory, GuestMemoryError } from '../../virtqueue/guest-memory.js';

describe('virtqueue/guest-memory', () => {
  it('one_region_le_accessors_round_trip', () => {
    const m = new GuestMemory(64);
    m.writeU8(0, 0xab);
    m.writeU16(2, 0x1234);
    m.writeU32(4, 0xdeadbeef);
    m.writeU64(8, 0x0102030405060708n);
    expect(m.readU8(0)).to.equal(0xab);
    expect(m.readU16(2)).to.equal(0x1234);
    expect(m.readU32(4)).to.equal(0xdeadbeef);
    expect(m.readU64(8)).to.equal(0x0102030405060708n);
    expect([...m.bytes(2, 2)]).to.deep.equal([0x34, 0x12]); // little-endian
  });

  it('access_past_end_throws_with_address_and_length_and_touches_nothing', () => {
    const m = new GuestMemory(16);
    const before = [...m.bytes(0, 16)];
    for (const f of [() => m.readU32(13), () => m.writeU32(13, 1), () => m.write(10, new Uint8Array(7)), () => m.readU8(-1)]) {
      expect(f).to.throw(GuestMemoryError);
    }
    let caught: unknown = null;
    try {
      m.writeU64(12, 1n);
    } catch (e) {
      caught = e;
    }
    // Without this the checks below would pass when nothing was thrown.
    expect(caught).to.be.instanceOf(GuestMemoryError);
    expect((caught as GuestMemoryError).code).to.equal('memory.out-of-range');
    expect((caught as GuestMemoryError).address).to.equal(12);
    expect((caught as GuestMemoryError).length).to.equal(8);
    expect([...m.bytes(0, 16)]).to.deep.equal(before);
  });

  it('regions_with_holes_reject_accesses_into_the_hole', () => {
    const m = GuestMemory.fromRegions([
      { guestAddress: 0x1000, buffer: new ArrayBuffer(0x100) },
      { guestAddress: 0, buffer: new ArrayBuffer(0x100) },
    ]);
    expect(m.layout()).to.deep.equal([
      { guestAddress: 0, length: 0x100 },
      { guestAddress: 0x1000, length: 0x100 },
    ]);
    m.writeU32(0x1000, 7);
    expect(m.readU32(0x1000)).to.equal(7);
    expect(() => m.readU8(0x100)).to.throw(GuestMemoryError);
    expect(() => m.readU32(0xfe)).to.throw(GuestMemoryError);
    expect(m.contains(0xf0, 0x20)).to.equal(false);
    expect(() => m.view(0xf0, 0x20)).to.throw(GuestMemoryError);
  });

  it('adjacent_regions_copy_across_the_boundary_but_give_no_view', () => {
    const a = new ArrayBuffer(8);
    const b = new ArrayBuffer(8);
    const m = GuestMemory.fromRegions([
      { guestAddress: 0, buffer: a },
      { guestAddress: 8, buffer: b },
    ]);
    m.write(6, Uint8Array.of(1, 2, 3, 4));
    expect([...new Uint8Array(a).subarray(6)]).to.deep.equal([1, 2]);
    expect([...new Uint8Array(b).subarray(0, 2)]).to.deep.equal([3, 4]);
    expect(m.contains(6, 4)).to.equal(true);
    expect(m.view(6, 4)).to.equal(undefined);
    const copy = m.bytes(6, 4);
    expect([...copy]).to.deep.equal([1, 2, 3, 4]);
    const dest = new Uint8Array(4);
    m.read(6, dest);
    expect([...dest]).to.deep.equal([1, 2, 3, 4]);
    expect(() => m.readU32(6)).to.throw(GuestMemoryError); // scalar accessors stay in one region
  });

  it('view_aliases_guest_memory_without_copying', () => {
    const buf = new ArrayBuffer(32);
    const m = GuestMemory.fromRegions([{ guestAddress: 0x100, buffer: buf }]);
    const v = m.view(0x104, 4)!;
    v[0] = 9;
    expect(new Uint8Array(buf)[4]).to.equal(9);
    expect(v.buffer).to.equal(buf);
  });

  it('write_observer_sees_every_written_range', () => {
    const m = new GuestMemory(64);
    const seen = sinon.spy();
    m.setWriteObserver(seen);
    m.writeU16(4, 1);
    m.write(10, new Uint8Array(5));
    m.view(20, 4)!.fill(1);
    m.wrote(20, 4);
    m.readU32(0);
    expect(seen.args).to.deep.equal([
      [4, 2],
      [10, 5],
      [20, 4],
    ]);
  });

  it('bad_options_throw_at_once_naming_the_option', () => {
    expect(() => new GuestMemory(0)).to.throw(RangeError, /size/);
    expect(() => GuestMemory.fromRegions([])).to.throw(TypeError, /regions/);
    expect(() =>
      GuestMemory.fromRegions([
        { guestAddress: 0, buffer: new ArrayBuffer(16) },
        { guestAddress: 8, buffer: new ArrayBuffer(16) },
      ]),
    ).to.throw(RangeError, /overlap/);
    expect(() => GuestMemory.fromRegions([{ guestAddress: -1, buffer: new ArrayBuffer(1) }])).to.throw(/guestAddress/);
  });
});
