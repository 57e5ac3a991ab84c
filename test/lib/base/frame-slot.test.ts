import { expect } from 'chai';
import { FrameSlot } from '../../../lib/base/frame-slot.js';

describe('lib/base/frame-slot', () => {
  it('keeps_one_copy_and_gives_it_back_until_cleared', () => {
    const s = new FrameSlot(8, 4);
    expect(s.full).to.equal(false);
    expect(s.frame.length).to.equal(0);
    expect(s.header).to.equal(undefined);
    const f = Uint8Array.of(1, 2, 3);
    const h = Uint8Array.of(9, 9);
    expect(s.keep(f, h)).to.equal(true);
    f.fill(0);
    h.fill(0);
    expect(s.full).to.equal(true);
    expect([...s.frame]).to.deep.equal([1, 2, 3]);
    expect([...s.header!]).to.deep.equal([9, 9]);
    s.clear();
    expect(s.full).to.equal(false);
    expect(s.header).to.equal(undefined);
  });

  it('a_held_frame_is_never_overwritten', () => {
    const s = new FrameSlot(8);
    expect(s.keep(Uint8Array.of(1))).to.equal(true);
    expect(s.keep(Uint8Array.of(2))).to.equal(false);
    expect([...s.frame]).to.deep.equal([1]);
  });

  it('too_large_a_frame_or_header_is_refused_and_nothing_kept', () => {
    const s = new FrameSlot(4, 2);
    expect(s.keep(new Uint8Array(5))).to.equal(false);
    expect(s.keep(new Uint8Array(4), new Uint8Array(3))).to.equal(false);
    expect(s.full).to.equal(false);
    expect(s.keep(new Uint8Array(4), new Uint8Array(2))).to.equal(true);
  });

  it('no_header_and_an_empty_header_stay_different', () => {
    const s = new FrameSlot(4, 2);
    s.keep(Uint8Array.of(1));
    expect(s.header).to.equal(undefined);
    s.clear();
    s.keep(Uint8Array.of(1), new Uint8Array(0));
    expect(s.header).to.deep.equal(new Uint8Array(0));
  });

  it('storage_is_allocated_once', () => {
    const s = new FrameSlot(16, 2);
    s.keep(Uint8Array.of(1, 2));
    const buffer = s.frame.buffer;
    s.clear();
    s.keep(new Uint8Array(16));
    expect(s.frame.buffer).to.equal(buffer);
    expect(() => new FrameSlot(-1)).to.throw(RangeError);
  });
});
