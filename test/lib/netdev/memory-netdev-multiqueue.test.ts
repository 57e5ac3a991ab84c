// MemoryNetdev({ queues }): the in-process multiqueue backend (MultiQueueCapable) — frames tagged
// with their queue, folded into the active queues as the kernel steers only to attached ones, the
// tag kept while a frame is held, sends counted per queue.

import { expect } from 'chai';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { isMultiQueue } from '../../../lib/netdev/netdev.js';
import type { NetdevPeer } from '../../../lib/netdev/netdev.js';

function peer(accept: () => boolean): NetdevPeer & { got: [number, number | undefined][] } {
  const got: [number, number | undefined][] = [];
  return {
    got,
    receive: (frame, _h, queue) => {
      if (!accept()) return false;
      got.push([frame[0]!, queue]);
      return true;
    },
    writable: () => undefined,
  };
}

describe('lib/netdev/memory-netdev multiqueue', () => {
  it('a_single_queue_netdev_is_not_multiqueue_and_passes_no_queue', () => {
    const n = new MemoryNetdev();
    expect(isMultiQueue(n)).to.equal(false);
    const p = peer(() => true);
    n.attach(p);
    n.inject(Uint8Array.of(1));
    n.injectOn(0, Uint8Array.of(2));
    expect(p.got).to.deep.equal([[1, undefined], [2, undefined]]);
    expect(n.stats()).to.not.have.property('queues');
    expect(() => n.injectOn(1, Uint8Array.of(3))).to.throw(RangeError, /queue must be an integer in 0\.\.0/);
  });

  it('frames_carry_their_queue_folded_into_the_active_queues', () => {
    const n = new MemoryNetdev({ queues: 4 });
    expect(isMultiQueue(n)).to.equal(true);
    const p = peer(() => true);
    n.attach(p);
    n.injectOn(3, Uint8Array.of(1));
    n.setActiveQueues(2);
    n.injectOn(3, Uint8Array.of(2));
    n.injectOn(2, Uint8Array.of(3));
    n.inject(Uint8Array.of(4));
    expect(p.got).to.deep.equal([[1, 3], [2, 1], [3, 0], [4, 0]]);
    expect(n.stats().queues!.map((q) => q.injected)).to.deep.equal([2, 1, 0, 1]);
    expect(() => n.setActiveQueues(5)).to.throw(RangeError);
    expect(() => new MemoryNetdev({ queues: 0 })).to.throw(RangeError, /queues must be an integer in 1\.\.256/);
  });

  it('a_held_frame_keeps_its_queue', () => {
    const n = new MemoryNetdev({ queues: 2 });
    let open = false;
    const p = peer(() => open);
    n.attach(p);
    n.injectOn(1, Uint8Array.of(7));
    n.injectOn(0, Uint8Array.of(8));
    expect(n.stats().backlog).to.equal(2);
    open = true;
    n.resumeReceive();
    expect(p.got).to.deep.equal([[7, 1], [8, 0]]);
  });

  it('sends_are_counted_per_queue', () => {
    const n = new MemoryNetdev({ queues: 2 });
    n.send(Uint8Array.of(1), undefined, 1);
    n.send(Uint8Array.of(1));
    n.send(Uint8Array.of(1), undefined, 3); // beyond the backend's queues: folded
    expect(n.stats().queues!.map((q) => q.transmitted)).to.deep.equal([1, 2]);
  });
});
