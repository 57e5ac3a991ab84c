// Queue error descriptions and their spec sections (VIRTIO 1.2 §2.7 split, §2.8 packed).

import { expect } from 'chai';
import { QUEUE_ERROR_SECTIONS, describeQueueError, queueErrorSection } from '../../virtqueue/queue-errors.js';
import type { ChainError, QueueActivationError } from '../../virtqueue/queue-errors.js';

const samples: (ChainError | QueueActivationError)[] = [
  { code: 'avail.index-jump', availIdx: 9, nextAvail: 0, size: 8 },
  { code: 'avail.in-flight-exceeded', inFlight: 8, size: 8 },
  { code: 'chain.head-out-of-range', head: 8, size: 8 },
  { code: 'chain.next-out-of-range', head: 1, index: 2, next: 9, indirect: false },
  { code: 'chain.too-many-descriptors', head: 0, count: 9 },
  { code: 'chain.indirect-not-negotiated', head: 0, index: 0 },
  { code: 'chain.indirect-nested', head: 0, index: 1 },
  { code: 'chain.indirect-bad-length', head: 0, index: 0, length: 24 },
  { code: 'chain.indirect-with-next', head: 0, index: 0 },
  { code: 'chain.indirect-outside-memory', head: 0, index: 0, addr: 0xfff0, len: 32 },
  { code: 'chain.readable-after-writable', head: 0, index: 2, indirect: true },
  { code: 'chain.region-outside-memory', head: 0, index: 1, addr: 0x10000, len: 4, indirect: false },
  { code: 'chain.too-long', head: 0, total: 2 ** 32 },
  { code: 'queue.ring-unmapped', ring: 'usedRing' },
  { code: 'queue.size-invalid', size: 6 },
  { code: 'queue.misaligned', ring: 'descTable', addr: 8, alignment: 16 },
  { code: 'queue.ring-outside-memory', ring: 'availRing', addr: 0x10000, len: 22 },
  { code: 'queue.ring-not-contiguous', ring: 'usedRing', addr: 0x3ffc, len: 70 },
  { code: 'packed.in-flight-exceeded', head: 0, index: 0, inFlight: 2, size: 2 },
  { code: 'packed.too-many-descriptors', head: 0, count: 5 },
  { code: 'packed.chain-descriptor-unavailable', head: 0, index: 1, flags: 0x8080 },
  { code: 'packed.indirect-not-negotiated', head: 0, index: 0 },
  { code: 'packed.indirect-in-chain', head: 0, index: 1 },
  { code: 'packed.indirect-bad-length', head: 0, index: 0, length: 24 },
  { code: 'packed.indirect-outside-memory', head: 0, index: 0, addr: 0xfff0, len: 32 },
  { code: 'packed.indirect-entry-flags', head: 0, index: 1, flags: 4 },
  { code: 'packed.readable-after-writable', head: 0, index: 1, indirect: false },
  { code: 'packed.region-outside-memory', head: 0, index: 0, addr: 0xfffe, len: 4, indirect: false },
  { code: 'packed.too-long', head: 0, total: 2 ** 32 },
  { code: 'packed.buffer-id-in-use', head: 1, id: 5 },
  { code: 'packed.ring-unmapped', ring: 'descRing' },
  { code: 'packed.size-invalid', size: 0 },
  { code: 'packed.misaligned', ring: 'driverEvent', addr: 2, alignment: 4 },
  { code: 'packed.ring-outside-memory', ring: 'deviceEvent', addr: 0x10000, len: 4 },
  { code: 'packed.ring-not-contiguous', ring: 'descRing', addr: 0x3ff0, len: 64 },
];

describe('virtqueue/queue-errors', () => {
  it('every_code_has_a_description_ending_with_its_spec_section', () => {
    expect(samples.map((e) => e.code).sort()).to.deep.equal(Object.keys(QUEUE_ERROR_SECTIONS).sort());
    for (const e of samples) {
      const text = describeQueueError(e);
      expect(text, e.code).to.match(e.code.startsWith('packed.') ? / \(VIRTIO 1\.2 §2\.8[.0-9]*\)$/ : / \(VIRTIO 1\.2 §2\.7[.0-9]*\)$/);
      expect(text.endsWith(`§${queueErrorSection(e)})`)).to.equal(true);
    }
  });

  it('descriptions_name_the_values_that_identify_the_mistake', () => {
    expect(describeQueueError(samples[0]!)).to.contain('avail.idx 9').and.contain('queue size 8');
    expect(describeQueueError(samples[9]!)).to.contain('0xfff0');
    expect(describeQueueError(samples[4]!)).to.contain('chain 0');
    expect(queueErrorSection({ code: 'chain.indirect-nested', head: 0, index: 0 })).to.equal('2.7.5.3.1');
    expect(queueErrorSection({ code: 'chain.readable-after-writable', head: 0, index: 0, indirect: false })).to.equal('2.7.4.2');
  });
});
