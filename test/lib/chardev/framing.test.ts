// The chardev framing (be32 length [+ be32 vnet header length] + bytes): any split across reads
// gives the same frames; each kind of garbled framing is a typed error that stops the reader
// after delivering what came before it.

import { expect } from 'chai';
import fc from 'fast-check';
import { encodeFrame, FrameReader, MAX_FRAMED_LENGTH } from '../../../lib/chardev/framing.js';

type Got = { frame: number[]; hdr: number[] | undefined };

function reader(vnet: boolean): { r: FrameReader; got: Got[] } {
  const got: Got[] = [];
  const r = new FrameReader(vnet, (f, h) => {
    got.push({ frame: [...f], hdr: h === undefined ? undefined : [...h] });
  });
  return { r, got };
}

function be32(...words: number[]): Uint8Array {
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32BE(w, i * 4));
  return b;
}

describe('lib/chardev framing', () => {
  it('encodes_like_qemu_filter_send', () => {
    const hdr = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    const f = Uint8Array.of(0xaa, 0xbb);
    expect([...encodeFrame(f, undefined, false)]).to.deep.equal([0, 0, 0, 2, 0xaa, 0xbb]);
    // The length counts the header; the second word is the header length.
    expect([...encodeFrame(f, hdr, true)]).to.deep.equal([0, 0, 0, 14, 0, 0, 0, 12, ...hdr, 0xaa, 0xbb]);
    expect([...encodeFrame(f, undefined, true)]).to.deep.equal([0, 0, 0, 2, 0, 0, 0, 0, 0xaa, 0xbb]);
  });

  it('any_split_gives_the_same_frames', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.record({ f: fc.uint8Array({ minLength: 1, maxLength: 300 }), h: fc.boolean() }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (vnet, frames, cuts) => {
          const hdr = new Uint8Array(12).fill(7);
          const wire = Buffer.concat(frames.map(({ f, h }) => encodeFrame(f, vnet && h ? hdr : undefined, vnet)));
          const { r, got } = reader(vnet);
          let at = 0;
          for (let k = 0; at < wire.length; k++) {
            const n = cuts[k % cuts.length]!;
            expect(r.push(wire.subarray(at, at + n))).to.equal(undefined);
            at += n;
          }
          expect(r.end()).to.equal(undefined);
          expect(got.map((g) => g.frame)).to.deep.equal(frames.map(({ f }) => [...f]));
          expect(got.map((g) => g.hdr)).to.deep.equal(frames.map(({ h }) => (vnet && h ? [...hdr] : undefined)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('zero_length_is_an_error_after_the_good_frames', () => {
    const { r, got } = reader(false);
    const e = r.push(Buffer.concat([encodeFrame(Uint8Array.of(1), undefined, false), be32(0), encodeFrame(Uint8Array.of(2), undefined, false)]));
    expect(e).to.deep.equal({ code: 'framing.empty-frame' });
    expect(got.map((g) => g.frame)).to.deep.equal([[1]]);
    expect(r.push(encodeFrame(Uint8Array.of(3), undefined, false))).to.deep.equal(e); // stays stopped
    expect(got).to.have.length(1);
  });

  it('length_over_net_bufsize_is_an_error', () => {
    const { r } = reader(false);
    expect(r.push(be32(MAX_FRAMED_LENGTH + 1))).to.deep.equal({ code: 'framing.length-too-large', length: MAX_FRAMED_LENGTH + 1, limit: MAX_FRAMED_LENGTH });
    const ok = reader(false);
    expect(ok.r.push(be32(MAX_FRAMED_LENGTH))).to.equal(undefined); // the limit itself is allowed
  });

  it('vnet_header_length_that_is_no_header_size_or_not_shorter_than_the_frame_is_an_error', () => {
    expect(reader(true).r.push(be32(100, 11))).to.deep.equal({ code: 'framing.vnet-header-length', vnetHeaderLength: 11, length: 100 });
    expect(reader(true).r.push(be32(12, 12))).to.deep.equal({ code: 'framing.vnet-header-length', vnetHeaderLength: 12, length: 12 });
    expect(reader(true).r.push(be32(0xffffffff, 0xffffffff))!.code).to.equal('framing.length-too-large');
  });

  it('stream_ending_inside_a_frame_is_truncated', () => {
    const { r, got } = reader(true);
    const whole = encodeFrame(new Uint8Array(40).fill(3), undefined, true);
    expect(r.push(Buffer.concat([whole, whole.subarray(0, 20)]))).to.equal(undefined);
    expect(r.end()).to.deep.equal({ code: 'framing.truncated', expected: 40, got: 12 });
    expect(got).to.have.length(1);
    const p = reader(false);
    p.r.push(Uint8Array.of(0, 0));
    expect(p.r.end()).to.deep.equal({ code: 'framing.truncated', expected: 4, got: 2 });
  });

  it('a_refused_frame_is_held_and_offered_again_then_the_rest_in_order_for_any_split_and_refusals', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 15 }),
        (frames, cuts, refusals) => {
          const wire = Buffer.concat(frames.map((f) => encodeFrame(f, undefined, false)));
          const taken: number[][] = [];
          const pattern = [...refusals, false]; // refusals come and go; every frame is taken in the end
          let offers = 0;
          const r = new FrameReader(false, (f) => {
            const refuse = pattern[offers++ % pattern.length]!;
            if (!refuse) taken.push([...f]);
            return !refuse;
          });
          let at = 0;
          for (let k = 0; at < wire.length; k++) {
            const n = cuts[k % cuts.length]!;
            expect(r.push(wire.subarray(at, at + n))).to.equal(undefined);
            at += n;
            // Pushing while held keeps the bytes; sometimes resume in between.
            if (k % 2 === 0) expect(r.resume()).to.equal(undefined);
          }
          for (let i = 0; r.holding && i < 1000; i++) expect(r.resume()).to.equal(undefined);
          expect(r.holding).to.equal(false);
          expect(r.heldBytes).to.equal(0);
          expect(r.end()).to.equal(undefined);
          expect(taken).to.deep.equal(frames.map((f) => [...f]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('while_holding_pushed_bytes_are_kept_not_parsed_and_a_bad_length_after_the_held_frame_is_found_on_resume', () => {
    let accept = false;
    const seen: number[] = [];
    const r = new FrameReader(false, (f) => {
      if (!accept) return false;
      seen.push(f[0]!);
      return true;
    });
    expect(r.push(Buffer.concat([encodeFrame(Uint8Array.of(1), undefined, false), encodeFrame(Uint8Array.of(2), undefined, false)]))).to.equal(undefined);
    expect(r.holding).to.equal(true);
    expect(r.heldBytes).to.equal(5); // frame 2 waits unparsed behind the held frame 1
    expect(r.push(be32(0xffffffff))).to.equal(undefined); // a hostile length, not parsed yet
    expect(r.heldBytes).to.equal(9);
    expect(r.resume()).to.equal(undefined); // still refused
    accept = true;
    expect(r.resume()).to.deep.equal({ code: 'framing.length-too-large', length: 0xffffffff, limit: MAX_FRAMED_LENGTH });
    expect(seen).to.deep.equal([1, 2]);
  });
});
