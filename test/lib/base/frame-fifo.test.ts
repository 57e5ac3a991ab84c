import { expect } from 'chai';
import { FrameFifo } from '../../../lib/base/frame-fifo.js';

const frame = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

/** Pops everything as [first byte, length, header bytes or null]. */
function drainAll(q: FrameFifo): [number, number, number[] | null][] {
  const out: [number, number, number[] | null][] = [];
  for (let f = q.peekFrame(); f !== undefined; f = q.peekFrame()) {
    const h = q.peekHeader();
    out.push([f[0] ?? -1, f.length, h === undefined ? null : [...h]]);
    q.shift();
  }
  return out;
}

describe('lib/base/frame-fifo', () => {
  it('frames_come_out_in_the_order_they_went_in_across_the_wrap', () => {
    const q = new FrameFifo({ maxFrames: 3 });
    for (let round = 0; round < 4; round++) {
      expect(q.push(frame(10, 1 + round))).to.equal(true);
      expect(q.push(frame(20, 11 + round))).to.equal(true);
      expect(drainAll(q)).to.deep.equal([
        [1 + round, 10, null],
        [11 + round, 20, null],
      ]);
    }
    expect(q.length).to.equal(0);
    expect(q.peekFrame()).to.equal(undefined);
    expect(q.peekHeader()).to.equal(undefined);
  });

  it('push_copies_so_the_callers_buffer_may_change_after_the_call', () => {
    const q = new FrameFifo({ maxFrames: 2 });
    const buf = frame(4, 7);
    q.push(buf);
    buf.fill(9);
    expect([...q.peekFrame()!]).to.deep.equal([7, 7, 7, 7]);
  });

  it('frame_cap_refuses_and_counts_each_refused_frame', () => {
    const q = new FrameFifo({ maxFrames: 2 });
    expect(q.push(frame(1, 1))).to.equal(true);
    expect(q.full).to.equal(false);
    expect(q.push(frame(1, 2))).to.equal(true);
    expect(q.full).to.equal(true);
    expect(q.push(frame(1, 3))).to.equal(false);
    expect(q.push(frame(1, 4))).to.equal(false);
    expect(q.dropped).to.equal(2);
    expect(q.length).to.equal(2);
    expect(drainAll(q).map((e) => e[0])).to.deep.equal([1, 2]); // nothing evicted
  });

  it('byte_cap_refuses_a_frame_that_would_pass_it_but_takes_a_smaller_one', () => {
    const q = new FrameFifo({ maxFrames: 10, maxBytes: 100 });
    expect(q.push(frame(60, 1))).to.equal(true);
    expect(q.fits(41)).to.equal(false);
    expect(q.push(frame(41, 2))).to.equal(false);
    expect(q.push(frame(40, 3))).to.equal(true);
    expect(q.bytes).to.equal(100);
    expect(q.full).to.equal(true);
    expect(q.push(frame(0, 4))).to.equal(true); // an empty frame passes no cap but the count
    expect(q.dropped).to.equal(1);
    q.shift();
    expect(q.bytes).to.equal(40);
    expect(q.push(frame(60, 5))).to.equal(true);
    expect(drainAll(q).map((e) => e[0])).to.deep.equal([3, -1, 5]);
  });

  it('zero_frames_holds_nothing', () => {
    const q = new FrameFifo({ maxFrames: 0 });
    expect(q.full).to.equal(true);
    expect(q.push(frame(1, 1))).to.equal(false);
    expect(q.dropped).to.equal(1);
    expect(q.length).to.equal(0);
  });

  it('headers_are_kept_cut_to_header_bytes_absent_reads_as_undefined_and_empty_stays_empty', () => {
    const q = new FrameFifo({ maxFrames: 4, headerBytes: 12 });
    q.push(frame(2, 1), Uint8Array.of(1, 2, 3));
    q.push(frame(2, 2));
    q.push(frame(2, 3), new Uint8Array(20).fill(5));
    q.push(frame(2, 4), new Uint8Array(0));
    expect(drainAll(q)).to.deep.equal([
      [1, 2, [1, 2, 3]],
      [2, 2, null],
      [3, 2, new Array<number>(12).fill(5)],
      [4, 2, []],
    ]);
    const none = new FrameFifo({ maxFrames: 1 });
    none.push(frame(2, 1), Uint8Array.of(1, 2));
    expect(none.peekHeader()).to.equal(undefined); // headerBytes 0: headers are not kept
  });

  it('a_slot_grows_for_a_larger_frame_and_is_reused_without_allocating_after', () => {
    const q = new FrameFifo({ maxFrames: 1, slotBytes: 16 });
    q.push(frame(8, 1));
    const small = q.peekFrame()!;
    expect(small.buffer.byteLength).to.equal(16);
    q.shift();
    q.push(frame(100, 2));
    const big = q.peekFrame()!;
    expect(big.length).to.equal(100);
    expect(big.buffer.byteLength).to.equal(100);
    q.shift();
    q.push(frame(50, 3));
    const again = q.peekFrame()!;
    expect(again.buffer).to.equal(big.buffer); // same storage, no new slot
    q.shift();
    q.push(frame(50, 4));
    expect(q.peekFrame()).to.equal(again); // same length: the same view, nothing allocated
    expect(q.peekFrame()![0]).to.equal(4);
  });

  it('clear_returns_the_count_keeps_dropped_and_release_frees_storage', () => {
    const q = new FrameFifo({ maxFrames: 2 });
    q.push(frame(3, 1));
    q.push(frame(3, 2));
    q.push(frame(3, 3));
    q.shift();
    expect(q.clear()).to.equal(1);
    expect(q.length).to.equal(0);
    expect(q.bytes).to.equal(0);
    expect(q.dropped).to.equal(1);
    q.push(frame(3, 4));
    q.push(frame(3, 5));
    expect(q.clear(true)).to.equal(2);
    q.push(frame(3, 6));
    expect(drainAll(q)).to.deep.equal([[6, 3, null]]);
  });

  it('bad_options_throw_naming_the_option', () => {
    expect(() => new FrameFifo({ maxFrames: -1 })).to.throw(RangeError, /maxFrames must be an integer >= 0/);
    expect(() => new FrameFifo({ maxFrames: 1, maxBytes: 1.5 })).to.throw(RangeError, /maxBytes/);
  });
});
