// Netdev.sendSpan (lib/netdev/netdev.ts): a guest frame handed over as a range of a larger array,
// with send()'s results and contract. MemoryNetdev counts it without a view when nobody looks, and
// gives listeners and a partner exactly the range; FilterChain passes it to its inner netdev as a
// span when no filter sees guest frames, else walks it through the filters like any frame.

import { expect } from 'chai';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { NetdevPeer } from '../../../lib/netdev/netdev.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { PASS } from '../../../lib/filters/filter.js';
import type { Direction, NetFilter, Verdict } from '../../../lib/filters/filter.js';

const ram = Uint8Array.from({ length: 64 }, (_, i) => i);
const peer = (): NetdevPeer & { got: number[][] } => {
  const got: number[][] = [];
  return { got, receive: (f) => (got.push([...f]), true), writable: () => undefined };
};

describe('Netdev.sendSpan', () => {
  it('memory_netdev_counts_a_span_and_listeners_get_a_copy_of_exactly_the_range', () => {
    const n = new MemoryNetdev();
    expect(n.sendSpan(ram, 10, 5)).to.equal('sent');
    const seen: number[][] = [];
    n.on('transmit', (f) => seen.push([...f]));
    expect(n.sendSpan(ram, 20, 3)).to.equal('sent');
    expect(seen).to.deep.equal([[20, 21, 22]]);
    n.setWritable(false);
    expect(n.sendSpan(ram, 0, 1)).to.equal('busy');
    expect(n.stats().transmitted).to.equal(2);
  });

  it('memory_netdev_span_follows_listeners_added_and_removed_by_on_once_off_and_remove_all', () => {
    // sendSpan tests a flag kept by on/once/off/removeAllListeners, not the listener map: every
    // listener present when a span is sent gets it, none that left does.
    const n = new MemoryNetdev();
    const once: number[][] = [];
    const kept: number[][] = [];
    n.once('transmit', (f) => once.push([...f]));
    n.sendSpan(ram, 1, 2);
    n.sendSpan(ram, 3, 2); // the once listener left by itself
    expect(once).to.deep.equal([[1, 2]]);
    const l = (f: Uint8Array): void => void kept.push([...f]);
    n.on('transmit', l);
    n.sendSpan(ram, 5, 1);
    n.off('transmit', l);
    n.sendSpan(ram, 6, 1);
    n.on('transmit', l);
    n.sendSpan(ram, 7, 1);
    n.removeAllListeners();
    n.sendSpan(ram, 8, 1);
    n.on('transmit', l);
    n.sendSpan(ram, 9, 1);
    expect(kept).to.deep.equal([[5], [7], [9]]);
    expect(n.stats().transmitted).to.equal(7);
  });

  it('memory_netdev_span_reaches_its_partner_as_the_range', () => {
    const a = new MemoryNetdev();
    const b = new MemoryNetdev();
    const p = peer();
    b.attach(p);
    MemoryNetdev.pair(a, b);
    expect(a.sendSpan(ram, 40, 4)).to.equal('sent');
    expect(p.got).to.deep.equal([[40, 41, 42, 43]]);
  });

  it('multiqueue_memory_netdev_counts_a_span_on_its_queue', () => {
    const n = new MemoryNetdev({ queues: 2 });
    n.sendSpan(ram, 0, 4, undefined, 1);
    expect(n.stats().queues!.map((q) => q.transmitted)).to.deep.equal([0, 1]);
  });

  it('filter_chain_without_guest_side_filters_passes_the_span_to_its_inner_netdev', () => {
    const inner = new MemoryNetdev();
    const seen: number[][] = [];
    inner.on('transmit', (f) => seen.push([...f]));
    const chain = new FilterChain(inner);
    chain.attach(peer());
    // A filter on the host-to-guest direction only does not see guest frames.
    chain.add(recorder('in', 'tx'));
    expect(chain.sendSpan(ram, 5, 3)).to.equal('sent');
    expect(seen).to.deep.equal([[5, 6, 7]]);
  });

  it('filter_chain_walks_a_span_through_filters_that_see_guest_frames', () => {
    const inner = new MemoryNetdev();
    const chain = new FilterChain(inner);
    chain.attach(peer());
    const f = recorder('out', 'rx');
    chain.add(f);
    expect(chain.sendSpan(ram, 30, 2)).to.equal('sent');
    expect(f.seen).to.deep.equal([[30, 31]]);
    expect(inner.stats().transmitted).to.equal(1);
    f.status = false;
    expect(chain.sendSpan(ram, 32, 2)).to.equal('sent');
    expect(f.seen).to.have.length(1); // off: skipped, and the span goes straight through
    expect(inner.stats().transmitted).to.equal(2);
  });

  it('filter_chain_keeps_a_span_the_busy_inner_netdev_refused_and_sends_it_when_writable', () => {
    const inner = new MemoryNetdev();
    const seen: number[][] = [];
    inner.on('transmit', (f) => seen.push([...f]));
    const chain = new FilterChain(inner);
    let writable = 0;
    chain.attach({ receive: () => true, writable: () => void writable++ });
    inner.setWritable(false);
    const local = Uint8Array.of(1, 2, 3, 4, 5);
    expect(chain.sendSpan(local, 1, 3)).to.equal('sent'); // taken: held by the chain
    local.fill(0); // the device's memory moves on; the held copy does not
    expect(chain.sendSpan(local, 0, 1)).to.equal('busy');
    inner.setWritable(true);
    expect(seen).to.deep.equal([[2, 3, 4]]);
    expect(writable).to.equal(1);
  });
});

function recorder(id: string, queue: 'rx' | 'tx'): NetFilter & { seen: number[][] } {
  const seen: number[][] = [];
  return {
    id,
    queue,
    status: true,
    seen,
    process(_d: Direction, frame: Uint8Array): Verdict {
      seen.push([...frame]);
      return PASS;
    },
  };
}
