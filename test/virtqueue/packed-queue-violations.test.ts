// One test per rule of the packed ring's validation list (VIRTIO 1.2 §2.8, the list in
// virtqueue/queue-errors.ts), named after the driver's mistake. Each checks the error code and
// fields, that the device wrote no used descriptor (nothing in the ring or event structures), that
// the queue is broken and stays so, and that a freshly activated queue on the same memory works.

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { queueErrorSection } from '../../virtqueue/queue-errors.js';
import { PACKED_F_AVAIL, PACKED_F_INDIRECT as IND, PACKED_F_NEXT as NEXT, PACKED_F_USED, PACKED_F_WRITE as WRITE } from '../support/packed-driver-ring.js';
import { P_INDIRECT, P_PLAIN, expectPackedViolation, ppop, psetup } from './packed-fixtures.js';

describe('virtqueue/packed-queue violations (tier 1)', () => {
  it('a driver that re-offers a descriptor the device still holds breaks the ring', () => {
    const s = psetup(2);
    s.ring.addChain([{ len: 1, write: true }]);
    s.ring.addChain([{ len: 1, write: true }]);
    ppop(s.q);
    ppop(s.q);
    // The device holds both descriptors; the driver marks offset 0 available for the next lap anyway.
    s.ring.writeAt(0, { len: 1, id: 7, flags: PACKED_F_USED });
    expectPackedViolation(s, { code: 'packed.in-flight-exceeded', head: 0, index: 0, inFlight: 2, size: 2 });
  });

  it('a list that runs into descriptors the device holds breaks the ring', () => {
    const s = psetup(4);
    s.ring.addChain([{ len: 1, write: true }]);
    ppop(s.q); // holds offset 0
    // Offsets 1, 2, 3 and then 0 again (next lap): the fourth is the held one.
    s.ring.addRaw([{ len: 1, flags: NEXT }, { len: 1, flags: NEXT }, { len: 1, flags: NEXT }, { len: 1, id: 3 }]);
    expectPackedViolation(s, { code: 'packed.in-flight-exceeded', head: 1, index: 0, inFlight: 5, size: 4 });
  });

  it('used descriptors pushed but not yet published still count as held', () => {
    const s = psetup(1);
    s.ring.addChain([{ len: 2, write: true }]);
    const c = ppop(s.q);
    s.q.pushUsed(c, 0);
    s.ring.writeAt(0, { len: 2, id: 0, flags: PACKED_F_USED }); // re-offered before it was marked used
    const r = s.q.pop();
    expect(r).to.deep.equal({ kind: 'violation', error: { code: 'packed.in-flight-exceeded', head: 0, index: 0, inFlight: 1, size: 1 } });
    // The completed use is marked used as the queue stops (it was done properly).
    expect(s.ring.takeUsed()).to.deep.equal([{ id: 0, len: 0 }]);
  });

  it('a list longer than the queue size (a NEXT on every descriptor) breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ len: 1, flags: NEXT }, { len: 1, flags: NEXT }, { len: 1, flags: NEXT }, { len: 1, flags: NEXT }]);
    expectPackedViolation(s, { code: 'packed.too-many-descriptors', head: 0, count: 5 });
  });

  it('an indirect table with more entries than the queue size breaks the ring', () => {
    const s = psetup(2, P_INDIRECT);
    s.ring.addRaw([{ flags: IND }], { indirectTable: [{ len: 1 }, { len: 1 }, { len: 1 }] });
    expectPackedViolation(s, { code: 'packed.too-many-descriptors', head: 0, count: 3 });
  });

  it('a list whose later descriptor is not marked available breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ len: 1, flags: NEXT }, { len: 1, rawFlags: PACKED_F_AVAIL | PACKED_F_USED }]);
    expectPackedViolation(s, { code: 'packed.chain-descriptor-unavailable', head: 0, index: 1, flags: PACKED_F_AVAIL | PACKED_F_USED });
  });

  it('a list continued across the ring end with the old wrap counter breaks the ring', () => {
    const s = psetup(2);
    s.ring.addChain([{ len: 1, write: true }]);
    s.q.pushUsed(ppop(s.q), 1);
    s.q.publishUsed();
    s.ring.takeUsed();
    // Offset 1 (wrap 1) then offset 0, which needs the next lap's marking (AVAIL=0, USED=1).
    s.ring.addRaw([{ len: 1, flags: NEXT }, { len: 1, rawFlags: PACKED_F_AVAIL }]);
    expectPackedViolation(s, { code: 'packed.chain-descriptor-unavailable', head: 1, index: 0, flags: PACKED_F_AVAIL });
  });

  it('an INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC breaks the ring', () => {
    const s = psetup(4, P_PLAIN);
    s.ring.addRaw([{ flags: IND }], { indirectTable: [{ len: 4 }] });
    expectPackedViolation(s, { code: 'packed.indirect-not-negotiated', head: 0, index: 0 });
  });

  it('an INDIRECT descriptor with NEXT breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ flags: IND | NEXT }, { len: 1 }], { indirectTable: [{ len: 4 }] });
    expectPackedViolation(s, { code: 'packed.indirect-in-chain', head: 0, index: 0 });
  });

  it('an INDIRECT descriptor after a NEXT descriptor breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ len: 2, flags: NEXT }, { flags: IND }], { indirectTable: [{ len: 4 }] });
    expectPackedViolation(s, { code: 'packed.indirect-in-chain', head: 0, index: 1 });
  });

  for (const length of [0, 24]) {
    it(`an indirect table of ${length} bytes (not a non-zero multiple of 16) breaks the ring`, () => {
      const s = psetup(4);
      s.ring.addRaw([{ flags: IND, addr: 0x8000, len: length }]);
      expectPackedViolation(s, { code: 'packed.indirect-bad-length', head: 0, index: 0, length });
    });
  }

  it('an indirect table outside guest memory breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ flags: IND, addr: 0xfff0, len: 32 }]);
    expectPackedViolation(s, { code: 'packed.indirect-outside-memory', head: 0, index: 0, addr: 0xfff0, len: 32 });
  });

  it('an indirect entry with NEXT breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ flags: IND }], { indirectTable: [{ len: 4, flags: NEXT }, { len: 4 }] });
    expectPackedViolation(s, { code: 'packed.indirect-entry-flags', head: 0, index: 0, flags: NEXT });
  });

  it('a nested INDIRECT entry breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ flags: IND }], { indirectTable: [{ len: 4 }, { len: 16, flags: IND }] });
    expectPackedViolation(s, { code: 'packed.indirect-entry-flags', head: 0, index: 1, flags: IND });
  });

  it('a readable descriptor after a writable one breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ len: 2, flags: WRITE | NEXT }, { len: 2 }]);
    expectPackedViolation(s, { code: 'packed.readable-after-writable', head: 0, index: 1, indirect: false });
  });

  it('a readable indirect entry after a writable one breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ flags: IND }], { indirectTable: [{ len: 2, flags: WRITE }, { len: 2 }] });
    expectPackedViolation(s, { code: 'packed.readable-after-writable', head: 0, index: 1, indirect: true });
  });

  it('a buffer outside guest memory breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ addr: 0xfffe, len: 4 }]);
    expectPackedViolation(s, { code: 'packed.region-outside-memory', head: 0, index: 0, addr: 0xfffe, len: 4, indirect: false });
  });

  it('an indirect entry outside guest memory breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ flags: IND }], { indirectTable: [{ len: 4 }, { addr: 0x20000, len: 1, flags: WRITE }] });
    expectPackedViolation(s, { code: 'packed.region-outside-memory', head: 0, index: 1, addr: 0x20000, len: 1, indirect: true });
  });

  it('a list of 4 GiB or more breaks the ring', () => {
    // 4 GiB cannot be allocated: the memory claims 8 GiB through contains() and serves the ring from 64 KiB.
    const backing = new GuestMemory(0x10000);
    const big = Object.create(backing) as GuestMemory;
    Object.defineProperty(big, 'contains', { value: (addr: number, len: number) => addr >= 0 && addr + len <= 2 ** 33 });
    const s = psetup(8, P_INDIRECT, big);
    s.ring.addRaw([
      { addr: 0x1_0000_0000, len: 0xffff_ffff, flags: NEXT },
      { addr: 0x1_0000_0000, len: 1, flags: WRITE },
    ]);
    expectPackedViolation(s, { code: 'packed.too-long', head: 0, total: 2 ** 32 });
  });

  it('a buffer id the device still holds, offered again, breaks the ring', () => {
    const s = psetup(4);
    s.ring.addRaw([{ len: 2, id: 5 }]);
    ppop(s.q);
    s.ring.addRaw([{ len: 2, id: 5 }]);
    expectPackedViolation(s, { code: 'packed.buffer-id-in-use', head: 1, id: 5 });
  });

  it('a buffer id is free again once its list was used', () => {
    const s = psetup(4);
    s.ring.addRaw([{ len: 2, id: 5 }]);
    s.q.pushUsed(ppop(s.q), 0);
    s.ring.addRaw([{ len: 2, id: 5 }]);
    expect(ppop(s.q).headIndex).to.equal(5);
  });

  it('every packed code names a §2.8 section', () => {
    for (const code of ['packed.in-flight-exceeded', 'packed.too-many-descriptors', 'packed.buffer-id-in-use', 'packed.indirect-entry-flags'] as const) {
      expect(queueErrorSection({ code } as never)).to.match(/^2\.8\./);
    }
  });
});
