// The split virtqueue with a well-behaved driver (VIRTIO 1.2 §2.7): chains direct and indirect,
// the used ring, batching, unpop, the chain pool, notification suppression both ways with and
// without EVENT_IDX (including the 16-bit wrap), write reporting and memory remapping.

import { expect } from 'chai';
import { QUEUE_EMPTY, SplitQueue } from '../../virtqueue/split-queue.js';
import { VIRTQ_DESC_F_INDIRECT as IND, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../../virtqueue/ring-layout.js';
import { DriverRing } from '../support/driver-ring.js';
import { ALL, EVENT_IDX, INDIRECT, PLAIN, SwappableMemory, activate, popChain, setup } from './queue-fixtures.js';
import type { Setup } from './queue-fixtures.js';

/** Runs `n` one-buffer chains through the queue, publishing each (moves both indices by n). */
function advance(s: Setup, n: number): void {
  const addr = s.ring.alloc(4);
  for (let i = 0; i < n; i++) {
    s.ring.addChain([{ len: 4, write: true, addr }]);
    s.q.pushUsed(popChain(s.q), 0);
    s.q.publishUsed();
    s.ring.takeUsed();
  }
}

/** Adds, pops and pushes one chain without publishing. */
function pushOne(s: Setup): void {
  s.ring.addChain([{ len: 1 }]);
  s.q.pushUsed(popChain(s.q), 0);
}

describe('virtqueue/split-queue', () => {
  describe('chains', () => {
    it('direct_chain_gives_readable_then_writable_regions_in_order', () => {
      const s = setup(8, PLAIN);
      const head = s.ring.addChain([
        { len: 10, data: [1, 2, 3] },
        { len: 6 },
        { len: 100, write: true },
        { len: 28, write: true },
      ]);
      const c = popChain(s.q);
      const bufs = s.ring.buffers(head);
      expect(c.kind).to.equal('chain');
      expect(c.headIndex).to.equal(head);
      expect(c.descriptorCount).to.equal(4);
      expect(c.indirect).to.equal(false);
      expect([c.readableCount, c.writableCount]).to.deep.equal([2, 2]);
      expect([c.readableLength, c.writableLength]).to.deep.equal([16, 128]);
      expect([c.readableAddr(0), c.readableLen(0), c.readableAddr(1), c.readableLen(1)]).to.deep.equal([bufs[0]!.addr, 10, bufs[1]!.addr, 6]);
      expect([c.writableAddr(0), c.writableLen(0), c.writableAddr(1), c.writableLen(1)]).to.deep.equal([bufs[2]!.addr, 100, bufs[3]!.addr, 28]);
      expect(() => c.readableAddr(2)).to.throw(RangeError);
      expect(() => c.writableLen(-1)).to.throw(RangeError);
      expect(s.q.inFlight).to.equal(1);
      expect(s.q.nextAvail).to.equal(1);
    });

    it('indirect_chain_gives_the_table_entries_as_regions', () => {
      const s = setup(8, INDIRECT);
      const head = s.ring.addChain([{ len: 12, data: [7, 7] }, { len: 1500, write: true }, { len: 2, write: true }], { indirect: true });
      const c = popChain(s.q);
      const bufs = s.ring.buffers(head);
      expect(c.headIndex).to.equal(head);
      expect(c.indirect).to.equal(true);
      expect(c.descriptorCount).to.equal(3);
      expect([c.readableCount, c.writableCount, c.readableLength, c.writableLength]).to.deep.equal([1, 2, 12, 1502]);
      expect(c.writableAddr(0)).to.equal(bufs[1]!.addr);
      expect(s.ring.freeDescriptors).to.equal(7); // one table slot for three buffers
    });

    it('direct_descriptors_followed_by_one_indirect_table_form_one_chain', () => {
      // §2.7.5.3.2: the device MUST handle zero or more direct descriptors then one indirect one.
      const s = setup(8, INDIRECT);
      s.ring.addRaw([{ len: 4, flags: NEXT }, { flags: IND }], { indirectTable: [{ len: 8, flags: NEXT }, { len: 16, flags: WRITE }] });
      const c = popChain(s.q);
      expect([c.descriptorCount, c.readableCount, c.writableCount, c.readableLength, c.writableLength]).to.deep.equal([3, 2, 1, 12, 16]);
      expect(c.indirect).to.equal(true);
    });

    it('write_flag_on_the_descriptor_pointing_to_a_table_is_ignored', () => {
      // §2.7.5.3.2: the device MUST ignore the write-only flag of that descriptor.
      const s = setup(8, INDIRECT);
      s.ring.addRaw([{ flags: IND | WRITE }], { indirectTable: [{ len: 8 }] });
      const c = popChain(s.q);
      expect([c.readableCount, c.writableCount]).to.deep.equal([1, 0]);
    });

    it('zero_length_descriptors_count_but_give_no_region', () => {
      const s = setup(8, PLAIN);
      s.ring.addRaw([{ len: 0, flags: NEXT }, { len: 4, flags: NEXT }, { len: 0, flags: WRITE | NEXT }, { len: 0, flags: WRITE }]);
      const c = popChain(s.q);
      expect([c.descriptorCount, c.readableCount, c.writableCount, c.readableLength, c.writableLength]).to.deep.equal([4, 1, 0, 4, 0]);
      expect(c.writer().write(Uint8Array.of(1))).to.equal(0);
    });

    it('chain_of_queue_size_descriptors_is_accepted', () => {
      const s = setup(4, PLAIN);
      s.ring.addChain([{ len: 1 }, { len: 1 }, { len: 1, write: true }, { len: 1, write: true }]);
      expect(popChain(s.q).descriptorCount).to.equal(4);
    });

    it('chains_pop_in_available_ring_order_and_can_be_used_out_of_order', () => {
      const s = setup(8);
      const a = s.ring.addChain([{ len: 4, write: true }]);
      const b = s.ring.addChain([{ len: 4, write: true }]);
      const ca = popChain(s.q);
      const cb = popChain(s.q);
      expect([ca.headIndex, cb.headIndex]).to.deep.equal([a, b]);
      s.q.pushUsed(cb, 2);
      s.q.pushUsed(ca, 4);
      expect(s.q.publishUsed()).to.equal(true);
      expect(s.ring.takeUsed()).to.deep.equal([
        { id: b, len: 2 },
        { id: a, len: 4 },
      ]);
    });

    it('empty_queue_pops_the_one_empty_value', () => {
      const s = setup(8);
      expect(s.q.pop()).to.equal(QUEUE_EMPTY);
      expect(s.q.available()).to.equal(0);
      s.ring.addChain([{ len: 1 }]);
      s.ring.addChain([{ len: 1 }]);
      expect(s.q.available()).to.equal(2);
      popChain(s.q);
      expect(s.q.available()).to.equal(1);
      popChain(s.q);
      expect(s.q.pop()).to.deep.equal({ kind: 'empty' });
    });

    it('heads_placed_but_not_published_are_not_popped', () => {
      const s = setup(8);
      s.ring.addChain([{ len: 1 }], { publish: false });
      expect(s.q.pop()).to.equal(QUEUE_EMPTY);
      s.ring.publish();
      popChain(s.q);
    });
  });

  describe('used ring', () => {
    it('push_writes_the_element_but_used_idx_moves_only_on_publish', () => {
      const s = setup(8);
      const heads = [0, 1, 2].map(() => s.ring.addChain([{ len: 8, write: true }]));
      for (const _ of heads) s.q.pushUsed(popChain(s.q), 5);
      expect(s.q.nextUsed).to.equal(3);
      expect(s.ring.usedIdx()).to.equal(0);
      expect(s.ring.usedEntries()).to.deep.equal([]);
      expect(s.q.publishUsed()).to.equal(true);
      expect(s.ring.usedIdx()).to.equal(3);
      expect(s.ring.takeUsed().map((e) => e.id)).to.deep.equal(heads);
    });

    it('publish_with_nothing_pushed_returns_false_and_writes_nothing', () => {
      const s = setup(8);
      const writes: [number, number][] = [];
      s.memory.setWriteObserver((a, l) => writes.push([a, l]));
      expect(s.q.publishUsed()).to.equal(false);
      expect(writes).to.deep.equal([]);
    });

    it('pushing_more_than_the_writable_length_is_a_programmer_error', () => {
      const s = setup(8);
      s.ring.addChain([{ len: 1 }, { len: 4, write: true }]);
      const c = popChain(s.q);
      expect(() => s.q.pushUsed(c, 5)).to.throw(RangeError, /writtenLength/);
      expect(() => s.q.pushUsed(c, -1)).to.throw(RangeError);
      expect(() => s.q.pushUsed(c, 1.5)).to.throw(RangeError);
      s.q.pushUsed(c, 4);
    });

    it('pushing_a_chain_twice_or_on_another_queue_is_a_programmer_error', () => {
      const s = setup(8);
      const other = activate(s.memory, new DriverRing(s.memory, { size: 8, base: 0x8000 }), INDIRECT, 1);
      s.ring.addChain([{ len: 1 }]);
      const c = popChain(s.q);
      expect(() => other.pushUsed(c, 0)).to.throw(Error, /not in flight on queue 1/);
      s.q.pushUsed(c, 0);
      expect(() => s.q.pushUsed(c, 0)).to.throw(Error, /not in flight/);
    });

    it('used_ring_wraps_at_queue_size_and_used_idx_at_2_16', () => {
      const s = setup(2);
      advance(s, 0xffff);
      expect(s.q.nextUsed).to.equal(0xffff);
      expect(s.ring.usedIdx()).to.equal(0xffff);
      const h1 = s.ring.addChain([{ len: 1, write: true }]);
      const h2 = s.ring.addChain([{ len: 1, write: true }]);
      s.q.pushUsed(popChain(s.q), 1);
      s.q.pushUsed(popChain(s.q), 0);
      s.q.publishUsed();
      expect(s.ring.usedIdx()).to.equal(1);
      expect(s.q.nextAvail).to.equal(1);
      expect(s.ring.takeUsed()).to.deep.equal([
        { id: h1, len: 1 },
        { id: h2, len: 0 },
      ]);
    });
  });

  describe('unpop and the chain pool', () => {
    it('unpop_gives_back_the_last_chains_and_they_pop_again', () => {
      const s = setup(8);
      const heads = [0, 1, 2].map(() => s.ring.addChain([{ len: 16, write: true }]));
      const c0 = popChain(s.q);
      popChain(s.q);
      popChain(s.q);
      s.q.unpop(2);
      expect(s.q.inFlight).to.equal(1);
      expect(s.q.nextAvail).to.equal(1);
      expect(s.q.available()).to.equal(2);
      expect(popChain(s.q).headIndex).to.equal(heads[1]);
      expect(popChain(s.q).headIndex).to.equal(heads[2]);
      expect(s.q.pop()).to.equal(QUEUE_EMPTY);
      s.q.pushUsed(c0, 0);
    });

    it('unpopped_chain_is_validated_again_when_popped_again', () => {
      const s = setup(8);
      const head = s.ring.addChain([{ len: 16, write: true }]);
      popChain(s.q);
      s.q.unpop(1);
      // The driver (wrongly) rewrites the descriptor while the device does not hold it.
      s.memory.writeU32(s.ring.descAddr(head) + 8, 0x7fff_ffff);
      expect(s.q.pop()).to.have.property('kind', 'violation');
    });

    it('unpop_cursors_restart_when_the_chain_is_popped_again', () => {
      const s = setup(8);
      s.ring.addChain([{ len: 4, data: [1, 2, 3, 4] }, { len: 4, write: true }]);
      const c = popChain(s.q);
      c.reader().skip(3);
      c.writer().skip(2);
      s.q.unpop(1);
      const again = popChain(s.q);
      expect(again.reader().position).to.equal(0);
      expect(again.writer().written).to.equal(0);
      expect(again.reader().readU8()).to.equal(1);
    });

    it('unpop_of_a_pushed_chain_or_more_than_in_flight_is_a_programmer_error', () => {
      const s = setup(8);
      s.ring.addChain([{ len: 1 }]);
      s.ring.addChain([{ len: 1 }]);
      const a = popChain(s.q);
      const b = popChain(s.q);
      expect(() => s.q.unpop(3)).to.throw(RangeError, /count/);
      s.q.pushUsed(b, 0);
      expect(() => s.q.unpop(1)).to.throw(Error, /already pushed/);
      expect(s.q.inFlight).to.equal(1);
      s.q.unpop(0);
      s.q.pushUsed(a, 0);
    });

    it('pushed_chain_objects_are_reused_by_the_next_pop', () => {
      const s = setup(8);
      s.ring.addChain([{ len: 1 }]);
      s.ring.addChain([{ len: 1 }]);
      s.ring.addChain([{ len: 1 }]);
      const a = popChain(s.q);
      const b = popChain(s.q);
      expect(a).to.not.equal(b);
      s.q.pushUsed(a, 0);
      const c = popChain(s.q);
      expect(c).to.equal(a);
      expect(c.reader()).to.equal(a.reader());
      s.q.pushUsed(b, 0);
      s.q.pushUsed(c, 0);
    });

    it('a_long_chain_grows_the_region_arrays_once_and_keeps_them', () => {
      const s = setup(32, PLAIN);
      const specs = Array.from({ length: 20 }, (_, i) => ({ len: i + 1, write: i >= 10 }));
      const head = s.ring.addChain(specs);
      const c = popChain(s.q);
      expect([c.readableCount, c.writableCount]).to.deep.equal([10, 10]);
      expect(c.writableLen(9)).to.equal(20);
      expect(c.writableAddr(9)).to.equal(s.ring.buffers(head)[19]!.addr);
      s.q.pushUsed(c, 0);
      s.q.publishUsed();
      // The same object holds a short chain, then a long one again, correctly.
      s.ring.takeUsed();
      s.ring.addChain([{ len: 3 }]);
      const short = popChain(s.q);
      expect(short).to.equal(c);
      expect([short.readableCount, short.writableCount, short.readableLen(0)]).to.deep.equal([1, 0, 3]);
      s.q.pushUsed(short, 0);
      s.q.publishUsed();
      s.ring.takeUsed();
      const head2 = s.ring.addChain(specs);
      const again = popChain(s.q);
      expect(again).to.equal(c);
      expect(again.writableAddr(9)).to.equal(s.ring.buffers(head2)[19]!.addr);
      expect(again.writableLength).to.equal(155);
    });
  });

  describe('used buffer notifications (§2.7.7)', () => {
    it('without_event_idx_publish_interrupts_unless_no_interrupt_is_set', () => {
      const s = setup(8, PLAIN);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(true);
      s.ring.setNoInterrupt(true);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(false);
      s.ring.setNoInterrupt(false);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(true);
    });

    it('with_event_idx_used_event_zero_interrupts_after_the_first_buffer_only', () => {
      const s = setup(8, EVENT_IDX);
      s.ring.setUsedEvent(0);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(true); // used idx 0 -> 1 crosses 0
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(false); // 1 -> 2
    });

    it('with_event_idx_a_batch_interrupts_when_it_crosses_used_event', () => {
      const s = setup(8, EVENT_IDX);
      s.ring.setUsedEvent(4);
      pushOne(s);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(false); // 0 -> 2
      pushOne(s);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(false); // 2 -> 4 (entry 4 not yet written)
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(true); // 4 -> 5 wrote entry 4
    });

    it('with_event_idx_no_interrupt_flag_is_ignored', () => {
      const s = setup(8, EVENT_IDX);
      s.ring.setNoInterrupt(true);
      s.ring.setUsedEvent(0);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(true);
    });

    it('with_event_idx_used_event_math_holds_across_the_16_bit_wrap', () => {
      const s = setup(4, EVENT_IDX);
      advance(s, 0xfffd);
      expect(s.q.nextUsed).to.equal(0xfffd);
      s.ring.setUsedEvent(0xffff);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(false); // 0xfffd -> 0xfffe
      pushOne(s);
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(true); // 0xfffe -> 0x0000 wrote entry 0xffff
      s.ring.setUsedEvent(0);
      s.ring.takeUsed();
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(true); // 0 -> 1 wrote entry 0
      s.ring.setUsedEvent(0xfff0); // far behind: not crossed
      pushOne(s);
      expect(s.q.publishUsed()).to.equal(false);
    });
  });

  describe('available buffer notifications (§2.7.10)', () => {
    it('without_event_idx_disabling_sets_no_notify_in_used_flags', () => {
      const s = setup(8, PLAIN);
      expect(s.ring.usedFlags()).to.equal(0);
      s.q.setNotifications(false);
      expect(s.ring.usedFlags()).to.equal(1);
      s.q.setNotifications(true);
      expect(s.ring.usedFlags()).to.equal(0);
      expect(s.ring.readAvailEvent()).to.equal(0);
    });

    it('with_event_idx_enabling_writes_avail_event_as_next_avail_and_leaves_flags_zero', () => {
      const s = setup(8, EVENT_IDX);
      advance(s, 3);
      s.q.setNotifications(true);
      expect(s.ring.readAvailEvent()).to.equal(3);
      s.q.setNotifications(false);
      advance(s, 2);
      expect(s.ring.readAvailEvent()).to.equal(3); // disabling writes nothing
      expect(s.ring.usedFlags()).to.equal(0);
    });

    for (const [name, features] of [['without_event_idx', PLAIN], ['with_event_idx', EVENT_IDX]] as const) {
      it(`${name}_enable_notification_on_an_empty_ring_re_enables_and_answers_false`, () => {
        const s = setup(8, features);
        s.q.setNotifications(false);
        expect(s.q.pop()).to.equal(QUEUE_EMPTY);
        expect(s.q.enableNotification()).to.equal(false);
        expect(s.ring.usedFlags()).to.equal(0); // NO_NOTIFY cleared (or never set with EVENT_IDX)
        if (features.eventIdx) expect(s.ring.readAvailEvent()).to.equal(0);
      });

      it(`${name}_enable_notification_sees_a_chain_the_driver_published_during_the_race`, () => {
        const s = setup(8, features);
        s.q.setNotifications(false);
        expect(s.q.pop()).to.equal(QUEUE_EMPTY);
        // The driver publishes after the device's last look, before it sees notifications enabled.
        s.ring.addChain([{ len: 4 }]);
        expect(s.q.enableNotification()).to.equal(true);
        expect(popChain(s.q).readableLength).to.equal(4);
        expect(s.q.pop()).to.equal(QUEUE_EMPTY);
        expect(s.q.enableNotification()).to.equal(false);
        if (features.eventIdx) expect(s.ring.readAvailEvent()).to.equal(1);
      });

      it(`${name}_enable_notification_after_an_avail_index_jump_says_pop_again_and_pop_reports_it`, () => {
        const s = setup(8, features);
        expect(s.q.pop()).to.equal(QUEUE_EMPTY);
        s.ring.bumpAvailIdx(9); // more than the queue size ahead (§2.7.13)
        expect(s.q.enableNotification()).to.equal(true);
        expect(s.q.broken).to.equal(true);
        const v = s.q.pop();
        expect(v).to.deep.include({ kind: 'violation' });
        expect((v as { error: { code: string } }).error.code).to.equal('avail.index-jump');
      });
    }

    it('with_event_idx_avail_event_follows_next_avail_across_the_wrap', () => {
      const s = setup(2, ALL);
      advance(s, 0xffff);
      s.q.setNotifications(true);
      expect(s.ring.readAvailEvent()).to.equal(0xffff);
      advance(s, 1);
      s.q.setNotifications(true);
      expect(s.ring.readAvailEvent()).to.equal(0);
    });
  });

  describe('guest memory', () => {
    it('every_device_write_is_reported_and_view_writes_only_after_the_chain_is_pushed', () => {
      const s = setup(8, PLAIN);
      const head = s.ring.addChain([{ len: 8, write: true }, { len: 8, write: true }]);
      const bufs = s.ring.buffers(head);
      const writes: [number, number][] = [];
      s.memory.setWriteObserver((a, l) => writes.push([a, l]));
      const c = popChain(s.q);
      const w = c.writer();
      const v = w.view(6)!;
      v.fill(0xaa);
      expect(writes).to.deep.equal([]);
      w.write(Uint8Array.of(1, 2, 3, 4)); // 2 bytes in buffer 0, 2 in buffer 1
      const v2 = w.view(3)!;
      v2.fill(0xbb);
      s.q.pushUsed(c, w.written);
      s.q.setNotifications(false);
      s.q.publishUsed();
      expect(writes).to.deep.equal([
        [bufs[0]!.addr + 6, 2], // write() through memory.write, buffer 0
        [bufs[1]!.addr, 2], // write() through memory.write, buffer 1
        [bufs[0]!.addr, 8], // views and what lies between them, reported at pushUsed
        [bufs[1]!.addr, 5],
        [s.ring.usedRing + 4, 8], // used element 0
        [s.ring.usedRing, 2], // used.flags
        [s.ring.usedRing + 2, 2], // used.idx
      ]);
      expect([...s.ring.writtenBytes(head, 13)]).to.deep.equal([0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 1, 2, 3, 4, 0xbb, 0xbb, 0xbb]);
    });

    it('view_writes_are_reported_when_the_chain_is_unpopped', () => {
      const s = setup(8, PLAIN);
      const head = s.ring.addChain([{ len: 8, write: true }]);
      const writes: [number, number][] = [];
      s.memory.setWriteObserver((a, l) => writes.push([a, l]));
      const c = popChain(s.q);
      c.writer().view(4)!.fill(1);
      s.q.unpop(1);
      expect(writes).to.deep.equal([[s.ring.buffers(head)[0]!.addr, 4]]);
    });

    it('ring_views_are_fetched_again_when_memory_generation_changes', () => {
      const m = new SwappableMemory(0x10000);
      const ring = new DriverRing(m, { size: 8, heapEnd: 0x10000 });
      const q = activate(m, ring, PLAIN);
      ring.addChain([{ len: 4, write: true }]);
      q.pushUsed(popChain(q), 1);
      m.swap(); // the embedder replaced its RAM buffer (same contents)
      const h = ring.addChain([{ len: 4, write: true }]);
      const c = popChain(q); // only visible through the new buffer
      expect(c.headIndex).to.equal(h);
      q.pushUsed(c, 2);
      expect(q.publishUsed()).to.equal(true);
      expect(ring.takeUsed().map((e) => e.len)).to.deep.equal([1, 2]);
    });

    it('rings_that_no_longer_fit_after_a_memory_change_break_the_queue', () => {
      const m = new SwappableMemory(0x10000);
      const ring = new DriverRing(m, { size: 8, base: 0x8000, heapEnd: 0x10000 });
      const q = activate(m, ring, PLAIN);
      m.swap(0x4000);
      const r = q.pop();
      expect(r).to.deep.equal({ kind: 'violation', error: { code: 'queue.ring-unmapped', ring: 'descTable' } });
      expect(q.broken).to.equal(true);
    });

    it('activation_over_a_custom_memory_never_throws_for_guest_values', () => {
      const m = new SwappableMemory(0x1000);
      const r = SplitQueue.activate(m, { size: 8, descTable: 0x2000, availRing: 0, usedRing: 0x100, ready: true }, PLAIN, 0);
      expect(r).to.deep.equal({ code: 'queue.ring-outside-memory', ring: 'descTable', addr: 0x2000, len: 128 });
    });
  });
});
