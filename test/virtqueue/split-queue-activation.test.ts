// Activation of a driver-programmed queue configuration (VIRTIO 1.2 §2.7 sizes and contiguity,
// §2.7.1 alignment): typed errors for guest values, exceptions only for programmer errors.

import { expect } from 'chai';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { MAX_QUEUE_SIZE, SplitQueue, newQueueConfig } from '../../virtqueue/split-queue.js';
import type { QueueConfig } from '../../virtqueue/split-queue.js';
import { INDIRECT, PLAIN } from './queue-fixtures.js';

const memory = new GuestMemory(0x10000);
const good: QueueConfig = { size: 8, descTable: 0x1000, availRing: 0x2000, usedRing: 0x3000, ready: true };

function activate(config: Partial<QueueConfig>, m = memory): ReturnType<typeof SplitQueue.activate> {
  return SplitQueue.activate(m, { ...good, ...config }, PLAIN, 0);
}

describe('virtqueue/split-queue activation', () => {
  it('good_config_activates_with_indices_at_zero', () => {
    const q = SplitQueue.activate(memory, good, INDIRECT, 3);
    expect(q).to.be.instanceOf(SplitQueue);
    if (!(q instanceof SplitQueue)) return;
    expect(q.index).to.equal(3);
    expect(q.size).to.equal(8);
    expect(q.nextAvail).to.equal(0);
    expect(q.nextUsed).to.equal(0);
    expect(q.inFlight).to.equal(0);
    expect(q.broken).to.equal(false);
    expect(q.error).to.equal(null);
  });

  it('new_queue_config_is_max_size_not_ready_at_address_zero', () => {
    expect(newQueueConfig(256)).to.deep.equal({ size: 256, descTable: 0, availRing: 0, usedRing: 0, ready: false });
    expect(() => newQueueConfig(100)).to.throw(RangeError, /maxSize/);
  });

  it('queue_size_not_a_power_of_two_is_refused', () => {
    expect(activate({ size: 6 })).to.deep.equal({ code: 'queue.size-invalid', size: 6 });
  });

  it('queue_size_zero_or_above_32768_is_refused', () => {
    expect(activate({ size: 0 })).to.deep.equal({ code: 'queue.size-invalid', size: 0 });
    expect(activate({ size: 65536 })).to.deep.equal({ code: 'queue.size-invalid', size: 65536 });
    expect(MAX_QUEUE_SIZE).to.equal(32768);
    const big = new GuestMemory(0x100000);
    const q = SplitQueue.activate(big, { size: 32768, descTable: 0, availRing: 0x80000, usedRing: 0x90000, ready: true }, PLAIN, 0);
    expect(q).to.be.instanceOf(SplitQueue);
  });

  it('queue_size_one_is_allowed', () => {
    expect(activate({ size: 1 })).to.be.instanceOf(SplitQueue);
  });

  it('descriptor_table_not_16_byte_aligned_is_refused', () => {
    expect(activate({ descTable: 0x1008 })).to.deep.equal({ code: 'queue.misaligned', ring: 'descTable', addr: 0x1008, alignment: 16 });
  });

  it('available_ring_at_an_odd_address_is_refused', () => {
    expect(activate({ availRing: 0x2001 })).to.deep.equal({ code: 'queue.misaligned', ring: 'availRing', addr: 0x2001, alignment: 2 });
  });

  it('used_ring_not_4_byte_aligned_is_refused', () => {
    expect(activate({ usedRing: 0x3002 })).to.deep.equal({ code: 'queue.misaligned', ring: 'usedRing', addr: 0x3002, alignment: 4 });
  });

  it('minimal_alignments_are_enough', () => {
    expect(activate({ descTable: 0x1010, availRing: 0x2002, usedRing: 0x3004 })).to.be.instanceOf(SplitQueue);
  });

  it('ring_running_past_the_end_of_memory_is_refused', () => {
    // The used ring of size 8 is 6 + 64 = 70 bytes; 0xffc0 + 70 > 0x10000.
    expect(activate({ usedRing: 0xffc0 })).to.deep.equal({ code: 'queue.ring-outside-memory', ring: 'usedRing', addr: 0xffc0, len: 70 });
    expect(activate({ descTable: 0x10000 })).to.deep.equal({ code: 'queue.ring-outside-memory', ring: 'descTable', addr: 0x10000, len: 128 });
  });

  it('ring_address_beyond_2_pow_53_is_outside_memory', () => {
    const r = activate({ availRing: 2 ** 60 });
    expect(r).to.have.property('code', 'queue.ring-outside-memory');
    expect(r).to.have.property('ring', 'availRing');
  });

  it('ring_in_a_hole_between_regions_is_refused', () => {
    const m = GuestMemory.fromRegions([
      { guestAddress: 0, buffer: new ArrayBuffer(0x4000) },
      { guestAddress: 0x8000, buffer: new ArrayBuffer(0x4000) },
    ]);
    expect(activate({ availRing: 0x5000 }, m)).to.deep.equal({ code: 'queue.ring-outside-memory', ring: 'availRing', addr: 0x5000, len: 22 });
  });

  it('ring_spanning_two_adjacent_regions_is_refused_as_not_contiguous', () => {
    const m = GuestMemory.fromRegions([
      { guestAddress: 0, buffer: new ArrayBuffer(0x4000) },
      { guestAddress: 0x4000, buffer: new ArrayBuffer(0x4000) },
    ]);
    expect(activate({ descTable: 0x3fc0 }, m)).to.deep.equal({ code: 'queue.ring-not-contiguous', ring: 'descTable', addr: 0x3fc0, len: 128 });
    expect(activate({ descTable: 0x4000 }, m)).to.be.instanceOf(SplitQueue);
  });

  it('activation_copies_the_config_so_later_driver_writes_do_not_move_the_queue', () => {
    const config = { ...good };
    const q = SplitQueue.activate(memory, config, PLAIN, 0);
    config.usedRing = 0x9000;
    config.size = 2;
    if (!(q instanceof SplitQueue)) throw new Error('activation failed');
    expect(q.queueConfig.usedRing).to.equal(0x3000);
    expect(q.size).to.equal(8);
  });

  it('programmer_errors_throw_naming_the_argument', () => {
    expect(() => SplitQueue.activate(memory, good, undefined as never, 0)).to.throw(TypeError, /features/);
    expect(() => SplitQueue.activate(memory, good, { indirectDesc: true } as never, 0)).to.throw(TypeError, /eventIdx/);
    expect(() => SplitQueue.activate(memory, good, PLAIN, -1)).to.throw(RangeError, /index/);
    expect(() => SplitQueue.activate(memory, null as never, PLAIN, 0)).to.throw(TypeError, /config/);
  });
});
