// Property: the fast accept function (hash lookups, integer compares) decides exactly like a
// straightforward reading of the rules (linear scans over byte arrays), on random states and frames.

import { expect } from 'chai';
import fc from 'fast-check';
import { MAC_TABLE_ENTRIES } from '../../../devices/virtio-net/constants.js';
import { RxFilterState, RxVerdict, acceptFrame } from '../../../devices/virtio-net/rx-filter.js';

interface Model {
  promiscuous: boolean;
  allMulti: boolean;
  allUni: boolean;
  noMulti: boolean;
  noUni: boolean;
  noBcast: boolean;
  mainMac: number[];
  uni: number[][];
  multi: number[][];
  uniOverflow: boolean;
  multiOverflow: boolean;
  ctrlVlan: boolean;
  vlans: number[];
}

/** The reference: the rules read literally, no cleverness. */
function reference(m: Model, f: Uint8Array): RxVerdict {
  if (m.promiscuous) return RxVerdict.ACCEPT;
  if (f.length < 14) return RxVerdict.DROP_RUNT;
  if (f[12] === 0x81 && f[13] === 0x00) {
    if (f.length < 18) return RxVerdict.DROP_RUNT;
    const vid = ((f[14]! & 0x0f) << 8) | f[15]!;
    const allowed = m.ctrlVlan ? m.vlans.includes(vid) : true;
    if (!allowed) return RxVerdict.DROP_VLAN;
  }
  const dst = [...f.subarray(0, 6)];
  const same = (a: number[]) => a.every((b, i) => b === dst[i]);
  if ((dst[0]! & 1) === 1) {
    if (dst.every((b) => b === 0xff)) return m.noBcast ? RxVerdict.DROP_BROADCAST : RxVerdict.ACCEPT;
    if (m.noMulti) return RxVerdict.DROP_MULTICAST;
    if (m.allMulti || m.multiOverflow) return RxVerdict.ACCEPT;
    return m.multi.some(same) ? RxVerdict.ACCEPT : RxVerdict.DROP_MULTICAST;
  }
  if (m.noUni) return RxVerdict.DROP_UNICAST;
  if (m.allUni || m.uniOverflow) return RxVerdict.ACCEPT;
  if (same(m.mainMac)) return RxVerdict.ACCEPT;
  return m.uni.some(same) ? RxVerdict.ACCEPT : RxVerdict.DROP_UNICAST;
}

function build(m: Model): RxFilterState {
  const s = new RxFilterState(Uint8Array.from(m.mainMac));
  s.setCtrlVlanNegotiated(m.ctrlVlan);
  for (const vid of m.vlans) s.vlanAdd(vid); // without CTRL_VLAN the table is allow-all: adding changes nothing
  Object.assign(s, { promiscuous: m.promiscuous, allMulti: m.allMulti, allUni: m.allUni, noMulti: m.noMulti, noUni: m.noUni, noBcast: m.noBcast });
  const t = s.beginMacTable();
  for (const a of m.uni) t.addUnicast(Uint8Array.from(a), 0);
  for (const a of m.multi) t.addMulticast(Uint8Array.from(a), 0);
  t.uniOverflow = m.uniOverflow;
  t.multiOverflow = m.multiOverflow;
  s.commitMacTable();
  return s;
}

// Few distinct byte values, so random addresses collide with table entries and with each other.
const byte = fc.oneof(fc.constantFrom(0x00, 0x01, 0x02, 0x33, 0x5e, 0xff), fc.integer({ min: 0, max: 255 }));
const macArb = fc.array(byte, { minLength: 6, maxLength: 6 });
const groupMac = macArb.map((a) => [a[0]! | 1, ...a.slice(1)]);
const individualMac = macArb.map((a) => [a[0]! & 0xfe, ...a.slice(1)]);

const modelArb: fc.Arbitrary<Model> = fc
  .record({
    promiscuous: fc.integer({ min: 0, max: 9 }).map((n) => n < 2), // mostly off, so the rest is exercised
    allMulti: fc.boolean(),
    allUni: fc.boolean(),
    noMulti: fc.boolean(),
    noUni: fc.boolean(),
    noBcast: fc.boolean(),
    mainMac: individualMac,
    uni: fc.array(individualMac, { maxLength: 40 }),
    multi: fc.array(groupMac, { maxLength: 24 }),
    uniOverflow: fc.boolean(),
    multiOverflow: fc.boolean(),
    ctrlVlan: fc.boolean(),
    vlans: fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 4095 })), { maxLength: 20 }),
  })
  .filter((m) => m.uni.length + m.multi.length <= MAC_TABLE_ENTRIES);

/** Frames whose destination is often one the state knows. */
function frameArb(m: Model): fc.Arbitrary<Uint8Array> {
  const known = [m.mainMac, ...m.uni, ...m.multi, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]];
  const dst = fc.oneof(fc.constantFrom(...known), macArb, fc.constantFrom(...known).chain((a) => fc.integer({ min: 0, max: 47 }).map((bit) => flip(a, bit))));
  const vid = fc.oneof(fc.constantFrom(...(m.vlans.length > 0 ? m.vlans : [0])), fc.integer({ min: 0, max: 0xffff }));
  return fc
    .record({ dst, tagged: fc.boolean(), vid, tpidLow: fc.constantFrom(0x00, 0xa8, 0x01), length: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(64)) })
    .map(({ dst, tagged, vid, tpidLow, length }) => {
      const full = new Uint8Array(64);
      full.set(dst, 0);
      full.set([0x02, 0, 0, 0, 0, 0x01], 6);
      if (tagged) full.set([tpidLow === 0xa8 ? 0x88 : 0x81, tpidLow, (vid >> 8) & 0xff, vid & 0xff, 0x08, 0x00], 12);
      else full.set([0x08, 0x00], 12);
      return full.slice(0, length);
    });
}

function flip(a: number[], bit: number): number[] {
  const out = [...a];
  out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
  return out;
}

describe('devices/virtio-net/rx-filter (property)', () => {
  it('fast_accept_equals_the_reference_on_random_states_and_frames', () => {
    fc.assert(
      fc.property(
        modelArb.chain((m) => fc.tuple(fc.constant(m), fc.array(frameArb(m), { minLength: 1, maxLength: 30 }))),
        ([m, frames]) => {
          const s = build(m);
          for (const f of frames) {
            expect(acceptFrame(s, f, 0, f.length), `frame ${Buffer.from(f).toString('hex')}`).to.equal(reference(m, f));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('fast_accept_reads_a_frame_in_place_at_any_offset', () => {
    fc.assert(
      fc.property(
        modelArb.chain((m) => fc.tuple(fc.constant(m), frameArb(m), fc.integer({ min: 0, max: 9 }))),
        ([m, f, pad]) => {
          const s = build(m);
          const buf = new Uint8Array(pad + f.length + 7).fill(0xa5);
          buf.set(f, pad);
          expect(acceptFrame(s, buf, pad, f.length)).to.equal(reference(m, f));
        },
      ),
      { numRuns: 200 },
    );
  });
});
