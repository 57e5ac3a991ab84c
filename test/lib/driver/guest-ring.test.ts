// lib/driver/guest-ring.ts as the scripted guest's driver uses it: the legacy layout (used ring on a
// 4096 boundary, VIRTIO 1.2 §2.7.2), one fixed buffer per descriptor, and `collect()` completing
// only chains the driver has outstanding (§2.7.14). The heap-allocating side is checked byte by
// byte in test/virtqueue/driver-ring.test.ts.

import { expect } from 'chai';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import { GuestRing, GuestRingError } from '../../../lib/driver/guest-ring.js';

function slotted(m: GuestMemory, size = 4): GuestRing {
  const layout = GuestRing.layout({ size, base: 0x1000, usedAlign: 4096 });
  return new GuestRing(m, { size, ...layout, slots: { base: 0x4000, bufferSize: 0x100 } });
}

/** Plays the device: appends used element { id, len } and publishes it. */
function complete(m: GuestMemory, r: GuestRing, id: number, len: number): void {
  const idx = r.usedIdx();
  const at = r.usedRing + 4 + 8 * (idx % r.size);
  m.writeU32(at, id);
  m.writeU32(at + 4, len);
  m.writeU16(r.usedRing + 2, (idx + 1) & 0xffff);
}

describe('lib/driver/guest-ring', () => {
  it('legacy_layout_puts_the_used_ring_on_a_4096_boundary', () => {
    const l = GuestRing.layout({ size: 16, base: 0x1000, usedAlign: 4096 });
    expect(l).to.deep.equal({ descTable: 0x1000, availRing: 0x1100, usedRing: 0x2000, end: 0x2000 + 6 + 8 * 16 });
  });

  it('slot_buffers_sit_at_their_descriptors_index', () => {
    const m = new GuestMemory(0x10000);
    const r = slotted(m);
    const head = r.addChain([{ len: 3, data: [7, 8, 9] }, { len: 0x100, write: true }]);
    expect(r.buffers(head)).to.deep.equal([
      { addr: 0x4000, len: 3, write: false },
      { addr: 0x4100, len: 0x100, write: true },
    ]);
    expect(Number(m.readU64(r.descAddr(1)))).to.equal(0x4100);
    expect([...r.bufferBytes(head, 0)]).to.deep.equal([7, 8, 9]);
  });

  it('slot_buffer_too_large_or_table_full_changes_nothing', () => {
    const m = new GuestMemory(0x10000);
    const r = slotted(m, 2);
    expect(() => r.addChain([{ len: 0x101 }])).to.throw(GuestRingError).with.property('reason', 'buffer-too-large');
    expect(() => r.addChain([{ len: 1 }, { len: 1 }, { len: 1 }])).to.throw(GuestRingError).with.property('reason', 'table-full');
    expect(r.freeDescriptors).to.equal(2);
    expect(r.availIdx).to.equal(0);
  });

  it('collect_completes_outstanding_chains_and_skips_unknown_heads', () => {
    const m = new GuestMemory(0x10000);
    const r = slotted(m);
    const a = r.addChain([{ len: 1 }, { len: 8, write: true }]);
    complete(m, r, 3, 5); // a head the driver never offered
    complete(m, r, a, 8);
    const seen: [number, number, number][] = [];
    expect(r.collect((e, bufs) => seen.push([e.id, e.len, bufs.length]))).to.equal(1);
    expect(seen).to.deep.equal([[a, 8, 2]]);
    expect(r.freeDescriptors).to.equal(4);
    complete(m, r, a, 8); // completed twice: the second is not the driver's any more
    expect(r.collect(() => expect.fail('no outstanding chain'))).to.equal(0);
  });
});
