import { expect } from 'chai';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { NetdevPeer } from '../../../lib/netdev/netdev.js';
import { hasOffloads, hasVnetHeader } from '../../../lib/netdev/netdev.js';
import { RecordingPeer } from '../../support/recording-peer.js';

const f = (n: number): Uint8Array => Uint8Array.of(n, n, n);

function expectBalanced(n: MemoryNetdev): void {
  const s = n.stats();
  expect(s.injected, 'injected = delivered + backlog + dropped').to.equal(s.delivered + s.backlog + s.dropped);
}

describe('lib/netdev/memory-netdev', () => {
  describe('host to guest', () => {
    it('inject_delivers_synchronously_to_the_attached_device', () => {
      const n = new MemoryNetdev({ id: 'host0' });
      const peer = new RecordingPeer();
      n.attach(peer);
      expect(n.inject(f(1))).to.equal(true);
      expect(peer.received).to.deep.equal([[1, 1, 1]]);
      expect(n.stats()).to.deep.equal({ injected: 1, delivered: 1, backlog: 0, dropped: 0, transmitted: 0 });
      expect(n.id).to.equal('host0');
    });

    it('a_frame_injected_while_the_device_refuses_an_offer_does_not_overtake_it', () => {
      // Fuzz finding (test/fixtures/fuzz/rx.frame-corrupt-memorynetdev-reorder-…): the device's
      // pause handling ran code that injected another frame, which got held before the refused one.
      const n = new MemoryNetdev();
      const received: number[] = [];
      let refuse = true;
      n.attach({
        receive: (frame: Uint8Array) => {
          if (refuse) {
            refuse = false;
            n.inject(f(2)); // re-entrant, from inside the offer of frame 1
            return false;
          }
          received.push(frame[0]!);
          return true;
        },
        writable: () => undefined,
      });
      expect(n.inject(f(1))).to.equal(true); // held
      n.resumeReceive();
      expect(received).to.deep.equal([1, 2]);
      expect(n.stats()).to.deep.include({ injected: 2, delivered: 2, backlog: 0, dropped: 0 });
    });

    it('a_frame_injected_while_the_device_takes_an_offer_follows_it', () => {
      const n = new MemoryNetdev();
      const received: number[] = [];
      let first = true;
      n.attach({
        receive: (frame: Uint8Array) => {
          received.push(frame[0]!);
          if (first) {
            first = false;
            n.inject(f(2));
          }
          return true;
        },
        writable: () => undefined,
      });
      n.inject(f(1));
      expect(received).to.deep.equal([1, 2]);
      expect(n.stats()).to.deep.include({ injected: 2, delivered: 2, backlog: 0 });
    });

    it('device_saying_false_pauses_delivery_and_resume_drains_in_order_until_false_again', () => {
      const n = new MemoryNetdev();
      const peer = new RecordingPeer(1);
      n.attach(peer);
      for (let i = 1; i <= 5; i++) expect(n.inject(f(i))).to.equal(true);
      expect(peer.received).to.deep.equal([[1, 1, 1]]);
      expect(peer.offers, 'no offers after the first false until resume').to.equal(2);
      expect(n.stats().backlog).to.equal(4);
      peer.room = 2;
      n.resumeReceive();
      expect(peer.received.map((r) => r[0])).to.deep.equal([1, 2, 3]);
      expect(n.stats().backlog).to.equal(2);
      peer.room = Infinity;
      n.resumeReceive();
      expect(peer.received.map((r) => r[0])).to.deep.equal([1, 2, 3, 4, 5]);
      expect(n.stats()).to.include({ delivered: 5, backlog: 0, dropped: 0 });
      expectBalanced(n);
      n.inject(f(6)); // back to synchronous delivery
      expect(peer.received.at(-1)).to.deep.equal([6, 6, 6]);
    });

    it('pause_receive_holds_frames_until_resume', () => {
      const n = new MemoryNetdev();
      const peer = new RecordingPeer();
      n.attach(peer);
      n.pauseReceive();
      n.inject(f(1));
      n.inject(f(2));
      expect(peer.offers).to.equal(0);
      n.resumeReceive();
      expect(peer.received.map((r) => r[0])).to.deep.equal([1, 2]);
    });

    it('full_backlog_makes_inject_return_false_and_counts_the_drop', () => {
      const n = new MemoryNetdev({ backlogLimit: 3 });
      const peer = new RecordingPeer(0);
      n.attach(peer);
      expect([1, 2, 3, 4, 5].map((i) => n.inject(f(i)))).to.deep.equal([true, true, true, false, false]);
      expect(n.stats()).to.deep.equal({ injected: 5, delivered: 0, backlog: 3, dropped: 2, transmitted: 0 });
      peer.room = Infinity;
      n.resumeReceive();
      expect(peer.received.map((r) => r[0])).to.deep.equal([1, 2, 3]);
      expectBalanced(n);
    });

    it('backlog_ring_keeps_fifo_order_across_wraparound', () => {
      const n = new MemoryNetdev({ backlogLimit: 4 });
      const peer = new RecordingPeer(0);
      n.attach(peer);
      let next = 1;
      const delivered: number[] = [];
      for (let round = 0; round < 10; round++) {
        while (n.inject(f(next))) next++;
        expect(n.stats().backlog).to.equal(4);
        peer.room = 1 + (round % 3);
        n.resumeReceive();
        delivered.push(...peer.received.splice(0).map((r) => r[0]!));
      }
      expect(delivered).to.deep.equal(Array.from({ length: delivered.length }, (_, i) => i + 1));
    });

    it('backlog_limit_zero_holds_nothing', () => {
      const n = new MemoryNetdev({ backlogLimit: 0 });
      expect(n.inject(f(1))).to.equal(false);
      expect(n.stats()).to.include({ dropped: 1, backlog: 0 });
    });

    it('frames_injected_before_a_device_attaches_wait_and_are_delivered_on_attach', () => {
      const n = new MemoryNetdev();
      n.inject(f(1));
      n.inject(f(2));
      const peer = new RecordingPeer();
      n.attach(peer);
      expect(peer.received.map((r) => r[0])).to.deep.equal([1, 2]);
    });

    it('held_frames_are_copies_of_the_callers_buffer', () => {
      const n = new MemoryNetdev();
      const peer = new RecordingPeer(0);
      n.attach(peer);
      const buf = f(7);
      n.inject(buf);
      buf.fill(0);
      peer.room = 1;
      n.resumeReceive();
      expect(peer.received).to.deep.equal([[7, 7, 7]]);
    });

    it('inject_from_inside_receive_keeps_order_while_draining', () => {
      const n = new MemoryNetdev();
      const peer = new RecordingPeer(0);
      n.attach(peer);
      n.inject(f(1));
      n.inject(f(2));
      peer.onReceive = (frame) => {
        if (frame[0] === 1) n.inject(f(9)); // e.g. a reply produced synchronously
      };
      peer.room = Infinity;
      n.resumeReceive();
      expect(peer.received.map((r) => r[0])).to.deep.equal([1, 2, 9]);
      expectBalanced(n);
    });

    it('close_drops_the_backlog_into_the_counter_and_refuses_more', async () => {
      const n = new MemoryNetdev();
      const peer = new RecordingPeer(0);
      n.attach(peer);
      n.inject(f(1));
      n.inject(f(2));
      await n.close();
      await n.close(); // idempotent
      expect(n.stats()).to.include({ backlog: 0, dropped: 2 });
      expect(n.inject(f(3))).to.equal(false);
      expect(n.stats().dropped).to.equal(3);
      expectBalanced(n);
    });
  });

  describe('guest to host', () => {
    it('transmit_listeners_get_copies_of_every_sent_frame', () => {
      const n = new MemoryNetdev();
      const seen: [number[], number[] | undefined][] = [];
      const kept: Uint8Array[] = [];
      n.on('transmit', (frame, header) => {
        kept.push(frame);
        seen.push([[...frame], header && [...header]]);
      });
      const view = f(4);
      expect(n.send(view)).to.equal('sent');
      expect(n.send(f(5), Uint8Array.of(1, 0))).to.equal('sent');
      view.fill(0); // the device reuses its buffer
      expect([...kept[0]!]).to.deep.equal([4, 4, 4]);
      expect(seen).to.deep.equal([
        [[4, 4, 4], undefined],
        [[5, 5, 5], [1, 0]],
      ]);
      expect(n.stats().transmitted).to.equal(2);
    });

    it('once_off_and_listener_count_follow_node_semantics_for_transmit', () => {
      const n = new MemoryNetdev();
      const seen: string[] = [];
      const l = (frame: Uint8Array): void => void seen.push(`l${frame[0]}`);
      n.once('transmit', (frame) => void seen.push(`once${frame[0]}`));
      n.on('transmit', l);
      expect(n.listenerCount('transmit')).to.equal(2);
      n.send(f(1));
      expect(n.listenerCount('transmit')).to.equal(1);
      n.off('transmit', l);
      expect(n.listenerCount('transmit')).to.equal(0);
      n.send(f(2));
      n.on('transmit', l);
      n.removeAllListeners();
      n.send(f(3));
      expect(seen).to.deep.equal(['once1', 'l1']);
      expect(n.stats().transmitted).to.equal(3);
    });

    it('a_throwing_transmit_listener_does_not_throw_into_send_and_is_reported_outside', async () => {
      const n = new MemoryNetdev();
      const thrown = new Promise<unknown>((resolve) => {
        const saved = process.listeners('uncaughtException');
        process.removeAllListeners('uncaughtException');
        process.once('uncaughtException', (e) => {
          for (const l of saved) process.on('uncaughtException', l);
          resolve(e);
        });
      });
      let after = 0;
      n.on('transmit', () => {
        throw new Error('embedder bug');
      });
      n.on('transmit', () => void after++);
      expect(n.send(f(1))).to.equal('sent');
      expect(after).to.equal(1);
      expect(((await thrown) as Error).message).to.equal('embedder bug');
    });

    it('not_writable_answers_busy_and_becoming_writable_calls_the_devices_writable', () => {
      const n = new MemoryNetdev();
      const peer = new RecordingPeer();
      n.attach(peer);
      let sent = 0;
      n.on('transmit', () => sent++);
      n.setWritable(false);
      expect(n.send(f(1))).to.equal('busy');
      expect(n.send(f(1))).to.equal('busy');
      expect(sent).to.equal(0);
      expect(n.stats().transmitted).to.equal(0);
      expect(peer.writableCalls).to.equal(0);
      n.setWritable(true);
      expect(peer.writableCalls).to.equal(1);
      n.setWritable(true); // no transition, no call
      expect(peer.writableCalls).to.equal(1);
      expect(n.send(f(1))).to.equal('sent');
      expect(sent).to.equal(1);
    });

    it('paired_netdevs_inject_what_one_guest_sends_into_the_other', () => {
      const a = new MemoryNetdev({ id: 'a' });
      const b = new MemoryNetdev({ id: 'b' });
      MemoryNetdev.pair(a, b);
      const pa = new RecordingPeer();
      const pb = new RecordingPeer();
      a.attach(pa);
      b.attach(pb);
      expect(a.send(f(1))).to.equal('sent');
      expect(b.send(f(2))).to.equal('sent');
      expect(pb.received).to.deep.equal([[1, 1, 1]]);
      expect(pa.received).to.deep.equal([[2, 2, 2]]);
      expect(b.stats()).to.include({ injected: 1, delivered: 1, transmitted: 1 });
    });

    it('pair_backpressure_holds_frames_in_the_receivers_backlog_and_counts_overflow_there', () => {
      const a = new MemoryNetdev();
      const b = new MemoryNetdev({ backlogLimit: 2 });
      MemoryNetdev.pair(a, b);
      const pb = new RecordingPeer(0);
      b.attach(pb);
      for (let i = 1; i <= 3; i++) expect(a.send(f(i))).to.equal('sent');
      expect(b.stats()).to.include({ backlog: 2, dropped: 1 });
      pb.room = Infinity;
      b.resumeReceive();
      expect(pb.received.map((r) => r[0])).to.deep.equal([1, 2]);
      a.unpair();
      a.send(f(4));
      expect(b.stats().injected).to.equal(3);
    });
  });

  describe('api misuse throws at once', () => {
    it('bad_options_name_the_option', () => {
      expect(() => new MemoryNetdev({ id: '' })).to.throw(TypeError, /id must be a non-empty string/);
      expect(() => new MemoryNetdev({ backlogLimit: -1 })).to.throw(RangeError, /backlogLimit must be an integer >= 0/);
      expect(() => new MemoryNetdev({ backlogLimit: 1.5 })).to.throw(RangeError, /backlogLimit/);
    });

    it('second_attach_throws_and_detach_allows_another', () => {
      const n = new MemoryNetdev();
      n.attach(new RecordingPeer());
      expect(() => n.attach(new RecordingPeer())).to.throw(/already attached/);
      n.detach();
      const peer = new RecordingPeer();
      n.attach(peer);
      n.inject(f(1));
      expect(peer.received).to.have.length(1);
    });

    it('pairing_twice_or_with_itself_throws', () => {
      const a = new MemoryNetdev();
      const b = new MemoryNetdev();
      expect(() => MemoryNetdev.pair(a, a)).to.throw(TypeError);
      MemoryNetdev.pair(a, b);
      expect(() => MemoryNetdev.pair(a, new MemoryNetdev())).to.throw(/already paired/);
    });

    it('inject_of_a_non_uint8array_throws', () => {
      expect(() => new MemoryNetdev().inject([1, 2, 3] as unknown as Uint8Array)).to.throw(TypeError, /Uint8Array/);
    });
  });
  describe('virtio-net header (vnetHdr: true)', () => {
    /** A device side that records each frame with the header it came with. */
    function headerPeer(room = Infinity): NetdevPeer & { got: { frame: number[]; header: number[] | undefined }[]; room: number } {
      return {
        got: [],
        room,
        receive(frame: Uint8Array, header?: Uint8Array): boolean {
          if (this.room <= 0) return false;
          this.room--;
          this.got.push({ frame: [...frame], header: header === undefined ? undefined : [...header] });
          return true;
        },
        writable(): void {},
      };
    }

    it('a_plain_memory_netdev_offers_neither_capability_and_refuses_a_header', () => {
      const n = new MemoryNetdev();
      expect(hasVnetHeader(n)).to.equal(false);
      expect(hasOffloads(n)).to.equal(false);
      expect(() => n.inject(f(1), new Uint8Array(12))).to.throw(TypeError, /vnetHdr: true/);
    });

    it('inject_hands_the_header_as_given_and_zeros_of_the_set_length_without_one', () => {
      const n = new MemoryNetdev({ vnetHdr: true });
      expect(hasVnetHeader(n)).to.equal(true);
      expect(hasOffloads(n)).to.equal(true);
      const peer = headerPeer();
      n.attach(peer);
      expect(n.vnetHeaderLength).to.equal(10);
      n.inject(f(1));
      n.setVnetHeaderLength(12);
      n.inject(f(2));
      n.inject(f(3), Uint8Array.of(1, 2, 3));
      expect(peer.got.map((g) => g.header)).to.deep.equal([new Array(10).fill(0), new Array(12).fill(0), [1, 2, 3]]);
      expect(() => n.setVnetHeaderLength(11 as 12)).to.throw(RangeError, /10 or 12/);
    });

    it('held_frames_keep_their_headers_in_order', () => {
      const n = new MemoryNetdev({ vnetHdr: true, backlogLimit: 4 });
      const peer = headerPeer(0);
      n.attach(peer);
      const h = Uint8Array.of(1, 0, 0, 0, 0, 0, 14, 0, 16, 0);
      n.inject(f(1), h);
      h[0] = 2; // the netdev copied it
      n.inject(f(2), h);
      n.inject(f(3));
      peer.room = Infinity;
      n.resumeReceive();
      expect(peer.got.map((g) => [g.frame[0], g.header?.[0]])).to.deep.equal([[1, 1], [2, 2], [3, 0]]);
      expectBalanced(n);
    });

    it('transmit_listeners_get_the_guest_header_and_a_paired_header_netdev_passes_it_on', () => {
      const a = new MemoryNetdev({ vnetHdr: true });
      const b = new MemoryNetdev({ vnetHdr: true });
      const plain = new MemoryNetdev();
      const c = new MemoryNetdev({ vnetHdr: true });
      MemoryNetdev.pair(a, b);
      MemoryNetdev.pair(c, plain);
      const seen: (number[] | undefined)[] = [];
      a.on('transmit', (_f, header) => seen.push(header === undefined ? undefined : [...header]));
      const pb = headerPeer();
      b.attach(pb);
      const pp = headerPeer();
      plain.attach(pp);
      expect(a.send(f(7), Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0, 0))).to.equal('sent');
      expect(c.send(f(8), Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0, 0))).to.equal('sent');
      expect(seen).to.deep.equal([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
      expect(pb.got).to.deep.equal([{ frame: [7, 7, 7], header: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] }]);
      expect(pp.got).to.deep.equal([{ frame: [8, 8, 8], header: undefined }]);
    });

    it('set_offloads_records_them_and_a_refusing_host_keeps_the_previous_ones', () => {
      const n = new MemoryNetdev({ vnetHdr: true });
      expect(n.offloads).to.equal(null);
      expect(n.setOffloads({ csum: true, tso4: true, tso6: false, ecn: false, ufo: false })).to.equal(true);
      n.refuseOffloads(true);
      expect(n.setOffloads({ csum: false, tso4: false, tso6: false, ecn: false, ufo: false })).to.equal(false);
      expect(n.offloads).to.deep.equal({ csum: true, tso4: true, tso6: false, ecn: false, ufo: false });
      n.refuseOffloads(false);
      expect(n.setOffloads({ csum: false, tso4: false, tso6: false, ecn: false, ufo: false })).to.equal(true);
      expect(n.offloads).to.deep.include({ csum: false });
      expect(() => new MemoryNetdev({ vnetHdr: 'yes' as unknown as boolean })).to.throw(TypeError, /vnetHdr/);
    });
  });
});
