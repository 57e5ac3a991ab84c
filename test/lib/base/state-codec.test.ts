// The device state container (lib/base/state-codec.ts) and its checksum (lib/base/crc32.ts).

import { expect } from 'chai';
import { crc32 } from '../../../lib/base/crc32.js';
import { DeviceStateError, STATE_MAX_SECTIONS, StateImage, StateReader, StateWriter, encodeStateImage } from '../../../lib/base/state-codec.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof DeviceStateError) return e.code;
    throw e;
  }
  return undefined;
}

function reseal(b: Uint8Array): Uint8Array {
  new DataView(b.buffer, b.byteOffset).setUint32(b.length - 4, crc32(b, 0, b.length - 4), true);
  return b;
}

const section = (tag: string, payload: number[], required = true, version = 1): { tag: string; version: number; required: boolean; payload: Uint8Array } => ({
  tag,
  version,
  required,
  payload: Uint8Array.from(payload),
});

describe('state codec (lib/base/state-codec.ts)', () => {
  it('crc32_matches_the_ieee_check_value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).to.equal(0xcbf43926);
    expect(crc32(Uint8Array.of(1, 2, 3, 4), 1, 3)).to.equal(crc32(Uint8Array.of(2, 3)));
  });

  it('writer_and_reader_round_trip_every_type', () => {
    const w = new StateWriter().u8(7).u16(0xbeef).u32(0xdeadbeef).u64(0x1234_5678_9abc_def0n).f64(2 ** 40).bool(true).string('net0 é').bytes(Uint8Array.of(9, 8));
    const b = w.finish();
    const r = new StateReader(b, 0, b.length, 'test');
    expect([r.u8(), r.u16(), r.u32(), r.u64(), r.count(), r.bool(), r.string(), [...r.bytes(2)]]).to.deep.equal([7, 0xbeef, 0xdeadbeef, 0x1234_5678_9abc_def0n, 2 ** 40, true, 'net0 é', [9, 8]]);
    r.done();
  });

  it('reading_past_the_end_or_leaving_bytes_unread_is_corrupt', () => {
    const b = Uint8Array.of(1, 2, 3);
    expect(code(() => new StateReader(b, 0, 3, 't').u32())).to.equal('state.corrupt');
    expect(code(() => new StateReader(b, 0, 3, 't').bytes(4))).to.equal('state.corrupt');
    expect(code(() => new StateReader(b, 0, 3, 't').done())).to.equal('state.corrupt');
    expect(code(() => new StateReader(Uint8Array.of(2), 0, 1, 't').bool())).to.equal('state.corrupt');
    const neg = new StateWriter().f64(-1).finish();
    expect(code(() => new StateReader(neg, 0, 8, 't').count())).to.equal('state.corrupt');
    const badUtf8 = new StateWriter().u16(1).u8(0xff).finish();
    expect(code(() => new StateReader(badUtf8, 0, badUtf8.length, 't').string())).to.equal('state.corrupt');
  });

  it('sections_are_found_by_tag_and_required_unknown_ones_refused_at_finish', () => {
    const img = StateImage.parse(encodeStateImage([section('AAAA', [1]), section('BBBB', [2], false), section('CCCC', [3])]));
    expect(img.tags).to.deep.equal(['AAAA', 'BBBB', 'CCCC']);
    expect(img.need('AAAA', 1).reader.u8()).to.equal(1);
    expect(img.take('ZZZZ', 1)).to.equal(undefined);
    expect(code(() => img.need('ZZZZ', 1))).to.equal('state.corrupt');
    expect(code(() => img.finish())).to.equal('state.version'); // CCCC required, not taken; BBBB optional
    img.take('CCCC', 1);
    img.finish();
  });

  it('a_newer_section_is_skipped_when_optional_and_refused_when_required', () => {
    const img = StateImage.parse(encodeStateImage([section('AAAA', [1], false, 3), section('BBBB', [2], true, 3)]));
    expect(img.take('AAAA', 2)).to.equal(undefined);
    expect(code(() => img.take('BBBB', 2))).to.equal('state.version');
  });

  it('malformed_envelopes_are_corrupt_and_other_versions_are_version', () => {
    const good = encodeStateImage([section('AAAA', [1, 2, 3])]);
    expect(code(() => StateImage.parse(good))).to.equal(undefined);
    expect(code(() => StateImage.parse(good.subarray(0, 15)))).to.equal('state.corrupt');
    const version = good.slice();
    version[4] = 2;
    expect(code(() => StateImage.parse(reseal(version)))).to.equal('state.version');
    const flags = good.slice();
    flags[6] = 1;
    expect(code(() => StateImage.parse(reseal(flags)))).to.equal('state.corrupt');
    const tag = good.slice();
    tag[12] = 0x61; // lowercase
    expect(code(() => StateImage.parse(reseal(tag)))).to.equal('state.corrupt');
    const sflags = good.slice();
    sflags[17] = 2;
    expect(code(() => StateImage.parse(reseal(sflags)))).to.equal('state.corrupt');
    const long = good.slice();
    new DataView(long.buffer).setUint32(20, 4, true); // payload claims one byte more than there is
    expect(code(() => StateImage.parse(reseal(long)))).to.equal('state.corrupt');
    const twice = encodeStateImage([section('AAAA', [1]), section('AAAA', [2])]);
    expect(code(() => StateImage.parse(twice))).to.equal('state.corrupt');
    const many = encodeStateImage(Array.from({ length: STATE_MAX_SECTIONS + 1 }, (_, i) => section(`S${String(i).padStart(3, '0')}`, [])));
    expect(code(() => StateImage.parse(many))).to.equal('state.corrupt');
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(8, 0xffff_ffff, true);
    expect(code(() => StateImage.parse(reseal(huge)))).to.equal('state.corrupt');
  });
});
