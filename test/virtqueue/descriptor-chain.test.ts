// Chain cursors (VIRTIO 1.2 §2.7.4: no assumption about how descriptors split a message; §2.7.5.1:
// the device never writes device-readable buffers): reads and writes across descriptor and memory
// region boundaries, short results at the end, views only where the bytes are contiguous.

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { VIRTQ_DESC_F_INDIRECT as IND, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../../virtqueue/ring-layout.js';
import { INDIRECT, PLAIN, popChain, setup } from './queue-fixtures.js';

const DATA = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/** A chain whose readable part is DATA split as 3 + 1 + 5 bytes, and whose writable part is 2 + 3 + 1 + 4. */
function mixedChain(indirect = false) {
  const s = setup(8, INDIRECT);
  const head = s.ring.addChain(
    [
      { len: 3, data: DATA.slice(0, 3) },
      { len: 1, data: DATA.slice(3, 4) },
      { len: 5, data: DATA.slice(4) },
      { len: 2, write: true },
      { len: 3, write: true },
      { len: 1, write: true },
      { len: 4, write: true },
    ],
    { indirect },
  );
  return { s, head, c: popChain(s.q) };
}

/** Guest addresses whose bytes differ between two snapshots of memory. */
function changed(before: Uint8Array, after: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) out.push(i);
  return out;
}

describe('virtqueue/descriptor-chain cursors', () => {
  for (const indirect of [false, true]) {
    describe(indirect ? 'indirect chain' : 'direct chain', () => {
      it('reader_reads_across_descriptor_boundaries_at_every_split', () => {
        const { c } = mixedChain(indirect);
        const r = c.reader();
        for (let k = 0; k <= DATA.length; k++) {
          r.rewind();
          const a = new Uint8Array(k);
          const b = new Uint8Array(DATA.length - k + 3); // asks for more than remains
          expect(r.read(a)).to.equal(k);
          expect(r.position).to.equal(k);
          expect(r.remaining).to.equal(DATA.length - k);
          expect(r.read(b)).to.equal(DATA.length - k);
          expect([...a, ...b.subarray(0, DATA.length - k)]).to.deep.equal(DATA);
          expect(r.remaining).to.equal(0);
        }
      });

      it('reader_integers_are_little_endian_across_boundaries_at_every_offset', () => {
        const { c } = mixedChain(indirect);
        const r = c.reader();
        for (let k = 0; k < DATA.length; k++) {
          r.rewind();
          r.skip(k);
          expect(r.readU8()).to.equal(DATA[k]);
          r.rewind();
          r.skip(k);
          const u16 = k + 2 <= DATA.length ? DATA[k]! | (DATA[k + 1]! << 8) : undefined;
          expect(r.readU16()).to.equal(u16);
          r.rewind();
          r.skip(k);
          const u32 = k + 4 <= DATA.length ? (DATA[k]! | (DATA[k + 1]! << 8) | (DATA[k + 2]! << 16) | (DATA[k + 3]! << 24)) >>> 0 : undefined;
          expect(r.readU32()).to.equal(u32);
          if (u32 === undefined) expect(r.position).to.equal(k); // nothing consumed on a short read
        }
      });

      it('writer_writes_across_descriptor_boundaries_at_every_split_and_nowhere_else', () => {
        for (let k = 0; k <= 10; k++) {
          const { s, head, c } = mixedChain(indirect);
          const before = s.memory.bytes(0, 0x10000).slice();
          const w = c.writer();
          const src = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);
          expect(w.write(src.subarray(0, k))).to.equal(k);
          expect(w.written).to.equal(k);
          expect(w.write(src.subarray(k))).to.equal(10 - k); // 12 - k asked, 10 - k room
          expect(w.remaining).to.equal(0);
          expect([...s.ring.writtenBytes(head, 10)]).to.deep.equal([...src.subarray(0, 10)]);
          const writable = s.ring.buffers(head).filter((b) => b.write);
          for (const addr of changed(before, s.memory.bytes(0, 0x10000))) {
            expect(writable.some((b) => addr >= b.addr && addr < b.addr + b.len), `byte 0x${addr.toString(16)}`).to.equal(true);
          }
        }
      });
    });
  }

  it('reader_past_the_end_gives_short_counts_and_undefined_without_consuming', () => {
    const { c } = mixedChain();
    const r = c.reader();
    r.skip(8);
    expect(r.readU16()).to.equal(undefined);
    expect(r.readU32()).to.equal(undefined);
    expect(r.position).to.equal(8);
    expect(r.readU8()).to.equal(9);
    expect(r.readU8()).to.equal(undefined);
    expect(r.read(new Uint8Array(4))).to.equal(0);
    expect(r.skip(5)).to.equal(0);
    expect(r.view(1)).to.equal(undefined);
    expect(r.remaining).to.equal(0);
  });

  it('reader_skip_clamps_to_what_remains', () => {
    const { c } = mixedChain();
    const r = c.reader();
    expect(r.skip(4)).to.equal(4);
    expect(r.readU8()).to.equal(5);
    expect(r.skip(100)).to.equal(4);
    expect(r.position).to.equal(9);
  });

  it('reader_view_inside_one_descriptor_aliases_guest_memory_and_advances', () => {
    const { s, head, c } = mixedChain();
    const r = c.reader();
    r.skip(4); // start of the 5-byte buffer
    const v = r.view(3)!;
    expect([...v]).to.deep.equal([5, 6, 7]);
    expect(r.position).to.equal(7);
    s.memory.writeU8(s.ring.buffers(head)[2]!.addr, 0x55); // the guest changes it: the view sees it
    expect(v[0]).to.equal(0x55);
    expect([...r.remainingView()!]).to.deep.equal([8, 9]);
    expect(r.remaining).to.equal(0);
  });

  it('reader_view_across_a_descriptor_boundary_is_undefined_and_does_not_advance', () => {
    const { c } = mixedChain();
    const r = c.reader();
    r.skip(2);
    expect(r.view(2)).to.equal(undefined);
    expect(r.position).to.equal(2);
    expect(r.remainingView()).to.equal(undefined);
    expect([...r.view(1)!]).to.deep.equal([3]);
    expect([...r.view(1)!]).to.deep.equal([4]); // at a boundary the next descriptor is used
    expect(r.view(6)).to.equal(undefined); // more than remains
    expect(r.view(0)!.length).to.equal(0);
  });

  it('reader_and_writer_views_across_a_memory_region_boundary_are_undefined_but_copies_work', () => {
    const memory = GuestMemory.fromRegions([
      { guestAddress: 0, buffer: new ArrayBuffer(0x8000) },
      { guestAddress: 0x8000, buffer: new ArrayBuffer(0x4000) },
      { guestAddress: 0xc000, buffer: new ArrayBuffer(0x4000) },
    ]);
    const s = setup(8, PLAIN, { heapEnd: 0x8000 }, memory);
    // Each buffer lies in one descriptor but crosses a region boundary (0x8000, 0xc000).
    const head = s.ring.addChain([
      { len: 8, data: [1, 2, 3, 4, 5, 6, 7, 8], addr: 0x7ffc },
      { len: 8, write: true, addr: 0xbffc },
    ]);
    const c = popChain(s.q);
    const r = c.reader();
    expect(r.view(8)).to.equal(undefined);
    expect(r.position).to.equal(0);
    expect(r.readU32()).to.equal(0x04030201);
    expect(r.readU32()).to.equal(0x08070605); // this half lies in the second region
    r.rewind();
    expect([...r.view(4)!]).to.deep.equal([1, 2, 3, 4]); // wholly inside the first region
    expect(r.remainingView()).to.not.equal(undefined); // [0x8000, +4) lies in the second region
    const w = c.writer();
    expect(w.view(8)).to.equal(undefined);
    expect(w.writeU16At(3, 0x2211)).to.equal(true); // straddles 0xbfff / 0xc000
    w.skip(5);
    expect(w.write(Uint8Array.of(9, 9, 9))).to.equal(3);
    expect([...s.ring.writtenBytes(head, 8)]).to.deep.equal([0, 0, 0, 0x11, 0x22, 9, 9, 9]);
  });

  it('writer_integers_and_a_full_buffer', () => {
    const { s, head, c } = mixedChain();
    const w = c.writer();
    expect(w.writeU8(0x11)).to.equal(true);
    expect(w.writeU16(0x3322)).to.equal(true); // straddles buffers 0 and 1
    w.skip(5);
    expect(w.writeU16(0x5544)).to.equal(true); // the last two bytes
    expect(w.writeU8(1)).to.equal(false);
    expect(w.writeU16(1)).to.equal(false);
    expect(w.write(Uint8Array.of(1))).to.equal(0);
    expect(w.view(1)).to.equal(undefined);
    expect(w.written).to.equal(10);
    const out = s.ring.writtenBytes(head, 10);
    expect([out[0], out[1], out[2], out[8], out[9]]).to.deep.equal([0x11, 0x22, 0x33, 0x44, 0x55]);
  });

  it('writer_u16_that_does_not_fit_writes_nothing', () => {
    const { s, head, c } = mixedChain();
    const w = c.writer();
    w.skip(9);
    expect(w.writeU16(0xffff)).to.equal(false);
    expect(w.written).to.equal(9);
    expect(s.ring.writtenBytes(head, 10)[9]).to.equal(0);
  });

  it('writer_u16_at_an_offset_straddling_buffers_leaves_the_cursor', () => {
    const { s, head, c } = mixedChain();
    const w = c.writer();
    w.write(Uint8Array.of(1, 2, 3));
    expect(w.writeU16At(1, 0xbbaa)).to.equal(true); // offsets 1 (buffer 0) and 2 (buffer 1)
    expect(w.writeU16At(5, 0xddcc)).to.equal(true); // offsets 5 (buffer 2) and 6 (buffer 3)
    expect(w.writeU16At(9, 1)).to.equal(false);
    expect(w.written).to.equal(3);
    expect([...s.ring.writtenBytes(head, 7)]).to.deep.equal([1, 0xaa, 0xbb, 0, 0, 0xcc, 0xdd]);
  });

  it('writer_u8_at_an_offset_in_a_later_buffer_leaves_the_cursor_and_refuses_past_the_end', () => {
    const { s, head, c } = mixedChain();
    const w = c.writer();
    w.write(Uint8Array.of(1, 2, 3));
    expect(w.writeU8At(2, 0x1ff)).to.equal(true); // buffer 1, masked to a byte
    expect(w.writeU8At(9, 0x44)).to.equal(true); // the last writable byte
    expect(w.writeU8At(10, 1)).to.equal(false);
    expect(w.written).to.equal(3);
    expect([...s.ring.writtenBytes(head, 10)]).to.deep.equal([1, 2, 0xff, 0, 0, 0, 0, 0, 0, 0x44]);
  });

  it('writer_skip_counts_as_written_and_clamps', () => {
    const { c } = mixedChain();
    const w = c.writer();
    expect(w.skip(4)).to.equal(4);
    expect(w.written).to.equal(4);
    expect(w.skip(40)).to.equal(6);
    expect(w.remaining).to.equal(0);
  });

  it('writer_view_only_inside_one_descriptor', () => {
    const { s, head, c } = mixedChain();
    const w = c.writer();
    expect(w.view(3)).to.equal(undefined); // first buffer is 2 bytes
    const v = w.view(2)!;
    v.set([7, 8]);
    expect(w.written).to.equal(2);
    expect(w.view(3)!.length).to.equal(3);
    expect(w.view(0)!.length).to.equal(0);
    expect([...s.ring.writtenBytes(head, 2)]).to.deep.equal([7, 8]);
  });

  it('reader_never_reaches_the_writable_part_and_writer_never_the_readable_part', () => {
    const s = setup(8, PLAIN);
    const head = s.ring.addChain([{ len: 4, data: [1, 2, 3, 4] }, { len: 4, write: true, data: [0xee, 0xee, 0xee, 0xee] }]);
    const c = popChain(s.q);
    const all = new Uint8Array(8);
    expect(c.reader().read(all)).to.equal(4);
    expect([...all]).to.deep.equal([1, 2, 3, 4, 0, 0, 0, 0]);
    c.writer().write(Uint8Array.of(5, 5, 5, 5, 5, 5));
    expect([...s.ring.bufferBytes(head, 0)]).to.deep.equal([1, 2, 3, 4]);
    expect([...s.ring.bufferBytes(head, 1)]).to.deep.equal([5, 5, 5, 5]);
  });

  it('indirect_table_spanning_two_memory_regions_is_read_even_where_a_field_straddles_them', () => {
    const memory = GuestMemory.fromRegions([
      { guestAddress: 0, buffer: new ArrayBuffer(0x8000) },
      { guestAddress: 0x8000, buffer: new ArrayBuffer(0x8000) },
    ]);
    const s = setup(8, INDIRECT, { heapStart: 0x8100, heapEnd: 0x10000 }, memory);
    // Three entries from 0x7ffa: entry 0's high address word (0x7ffe..0x8002) straddles 0x8000.
    s.ring.addRaw([{ flags: IND }], {
      indirectTableAt: 0x7ffa,
      indirectTable: [{ len: 2, flags: NEXT }, { len: 3, flags: NEXT }, { len: 4, flags: WRITE }],
    });
    const c = popChain(s.q);
    expect([c.descriptorCount, c.readableLength, c.writableLength]).to.deep.equal([3, 5, 4]);
    expect([c.readableLen(0), c.readableLen(1), c.writableLen(0)]).to.deep.equal([2, 3, 4]);
    expect(c.readableAddr(0)).to.be.greaterThanOrEqual(0x8100);
  });

  it('negative_or_fractional_lengths_are_programmer_errors', () => {
    const { c } = mixedChain();
    expect(() => c.reader().skip(-1)).to.throw(RangeError, /skip/);
    expect(() => c.reader().view(1.5)).to.throw(RangeError, /view/);
    expect(() => c.writer().skip(-2)).to.throw(RangeError, /skip/);
    expect(() => c.writer().writeU16At(-1, 0)).to.throw(RangeError, /writeU16At/);
  });
});
