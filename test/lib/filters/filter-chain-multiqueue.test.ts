// FilterChain over a multiqueue backend (MultiQueueCapable: a TAP with IFF_MULTI_QUEUE, a
// MemoryNetdev with `queues`): the chain is multiqueue too, each guest frame reaches the backend
// with its transmit queue and each host frame reaches the device with the queue it came from —
// with no filter, with filters on the walk, and for a frame held back while the far end was busy.

import { expect } from 'chai';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { PASS, type FilterSink, type NetFilter } from '../../../lib/filters/filter.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { isMultiQueue, type MultiQueueCapable, type Netdev, type NetdevPeer, type SendResult } from '../../../lib/netdev/netdev.js';

const passAll = (id: string): NetFilter => ({
  id,
  queue: 'all',
  status: true,
  attached(_sink: FilterSink) {},
  process: () => PASS,
});

class QueuePeer implements NetdevPeer {
  got: { first: number; queue: number | undefined }[] = [];
  accept = true;
  receive(frame: Uint8Array, _h?: Uint8Array, queue?: number): boolean {
    if (!this.accept) return false;
    this.got.push({ first: frame[0]!, queue });
    return true;
  }
  writable(): void {}
}

/** A two-queue backend that answers 'busy' while `busy` is set and records (first byte, queue). */
class TwoQueueBackend implements Netdev, MultiQueueCapable {
  readonly id = 'mq0';
  readonly queues = 2;
  active = 2;
  busy = false;
  sent: { first: number; queue: number | undefined }[] = [];
  peer: NetdevPeer | null = null;
  attach(peer: NetdevPeer): void {
    this.peer = peer;
  }
  detach(): void {
    this.peer = null;
  }
  send(frame: Uint8Array, _h?: Uint8Array, queue?: number): SendResult {
    if (this.busy) return 'busy';
    this.sent.push({ first: frame[0]!, queue });
    return 'sent';
  }
  setActiveQueues(pairs: number): void {
    this.active = pairs;
  }
  pauseReceive(): void {}
  resumeReceive(): void {}
  async close(): Promise<void> {}
}

const frame = (first: number): Uint8Array => Uint8Array.of(first, ...new Array<number>(59).fill(0));

describe('lib/filters/filter-chain over a multiqueue backend', () => {
  it('is_multiqueue_exactly_when_its_backend_is_and_forwards_the_active_queues', () => {
    expect(isMultiQueue(new FilterChain(new MemoryNetdev({ id: 'a' })))).to.equal(false);
    const inner = new TwoQueueBackend();
    const chain = new FilterChain(inner);
    expect(isMultiQueue(chain)).to.equal(true);
    if (!isMultiQueue(chain)) return;
    expect(chain.queues).to.equal(2);
    chain.setActiveQueues(1);
    expect(inner.active).to.equal(1);
  });

  for (const filters of [0, 2]) {
    it(`guest_frames_keep_their_transmit_queue_and_host_frames_their_host_queue_with_${filters}_filters`, () => {
      const inner = new MemoryNetdev({ id: 'm', queues: 2 });
      const chain = new FilterChain(inner);
      for (let i = 0; i < filters; i++) chain.add(passAll(`f${i}`));
      const peer = new QueuePeer();
      chain.attach(peer);
      expect(chain.send(frame(1), undefined, 1)).to.equal('sent');
      const bytes = new Uint8Array(256);
      bytes.set(frame(2), 100);
      expect(chain.sendSpan(bytes, 100, 60, undefined, 1)).to.equal('sent');
      expect(chain.send(frame(3), undefined, 0)).to.equal('sent');
      expect(inner.stats().queues!.map((q) => q.transmitted)).to.deep.equal([1, 2]);
      expect(inner.injectOn(1, frame(4))).to.equal(true);
      expect(inner.injectOn(0, frame(5))).to.equal(true);
      expect(peer.got).to.deep.equal([
        { first: 4, queue: 1 },
        { first: 5, queue: 0 },
      ]);
    });
  }

  it('a_guest_frame_held_while_the_backend_was_busy_goes_out_on_its_queue', () => {
    for (const viaSpan of [false, true]) {
      const inner = new TwoQueueBackend();
      const chain = new FilterChain(inner);
      chain.attach(new QueuePeer());
      inner.busy = true;
      const r = viaSpan ? chain.sendSpan(frame(7), 0, 60, undefined, 1) : chain.send(frame(7), undefined, 1);
      expect(r, 'taken and held').to.equal('sent');
      expect(chain.send(frame(8), undefined, 0), 'the chain holds one frame').to.equal('busy');
      inner.busy = false;
      inner.peer!.writable();
      expect(inner.sent).to.deep.equal([{ first: 7, queue: 1 }]);
    }
  });

  it('a_host_frame_held_while_the_device_had_no_room_arrives_with_its_queue', () => {
    const inner = new MemoryNetdev({ id: 'm', queues: 2 });
    const chain = new FilterChain(inner);
    chain.add(passAll('f'));
    const peer = new QueuePeer();
    chain.attach(peer);
    peer.accept = false;
    inner.injectOn(1, frame(9));
    expect(peer.got).to.deep.equal([]);
    peer.accept = true;
    chain.resumeReceive();
    expect(peer.got[0]).to.deep.equal({ first: 9, queue: 1 });
  });
});
