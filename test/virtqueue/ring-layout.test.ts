// Ring layout constants and 16-bit index arithmetic (VIRTIO 1.2 §2.7 table, §2.7.13.3 wrap,
// §2.7.7.2 event index test).

import { expect } from 'chai';
import {
  add16,
  availEventOffset,
  availRingBytes,
  descTableBytes,
  isValidQueueSize,
  needEvent,
  sub16,
  usedEventOffset,
  usedRingBytes,
  wrap16,
} from '../../virtqueue/ring-layout.js';

describe('virtqueue/ring-layout', () => {
  it('ring_part_sizes_follow_the_spec_table', () => {
    expect([descTableBytes(256), availRingBytes(256), usedRingBytes(256)]).to.deep.equal([4096, 518, 2054]);
    expect(usedEventOffset(256)).to.equal(516);
    expect(availEventOffset(256)).to.equal(2052);
  });

  it('queue_sizes_are_powers_of_two_up_to_32768', () => {
    expect([1, 2, 256, 32768].every(isValidQueueSize)).to.equal(true);
    expect([0, 3, 65536, -2, 1.5, NaN].some(isValidQueueSize)).to.equal(false);
  });

  it('index_arithmetic_wraps_at_2_16', () => {
    expect(wrap16(0x10003)).to.equal(3);
    expect(add16(0xffff, 2)).to.equal(1);
    expect(sub16(1, 0xffff)).to.equal(2);
    expect(sub16(0xffff, 1)).to.equal(0xfffe);
  });

  it('need_event_is_true_exactly_when_the_event_index_was_written', () => {
    // Moving 10 -> 13 writes entries 10, 11, 12.
    expect([9, 10, 11, 12, 13].map((e) => needEvent(e, 13, 10))).to.deep.equal([false, true, true, true, false]);
    // Across the wrap: 0xfffe -> 1 writes 0xfffe, 0xffff, 0.
    expect([0xfffd, 0xfffe, 0xffff, 0, 1].map((e) => needEvent(e, 1, 0xfffe))).to.deep.equal([false, true, true, true, false]);
    // No movement never notifies.
    expect(needEvent(5, 5, 5)).to.equal(false);
  });

  it('need_event_agrees_with_the_spec_definition_for_every_event_near_the_wrap', () => {
    for (const old of [0, 0x7fff, 0xfff0, 0xffff]) {
      for (const n of [1, 2, 17]) {
        const now = (old + n) & 0xffff;
        for (let d = -20; d < 40; d++) {
          const event = (old + d) & 0xffff;
          const written = d >= 0 && d < n; // entry `event` was among those written
          expect(needEvent(event, now, old), `old ${old} new ${now} event ${event}`).to.equal(written);
        }
      }
    }
  });
});
