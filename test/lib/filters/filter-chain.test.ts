// FilterChain: a netdev with filters, which the device attaches to unchanged. Walk order per
// direction (QEMU: netdev-transmitted frames in filter order, netdev-received in reverse), queue
// and status, the three verdicts, frames a filter injects mid-chain, and backpressure that never
// runs a filter twice on one frame.

import { expect } from 'chai';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { CONSUME, PASS, type Direction, type FilterQueue, type FilterSink, type NetFilter, type Verdict } from '../../../lib/filters/filter.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { announcesMac, hasVnetHeader, syncsRxFilter, type Netdev, type NetdevPeer, type SendResult } from '../../../lib/netdev/netdev.js';
import { V86BusNetdev, type V86BusConnector } from '../../../lib/netdev/v86-bus-netdev.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import { NetRig } from '../../support/net-rig.js';

type Seen = { filter: string; direction: Direction; first: number };

class RecordingFilter implements NetFilter {
  sink: FilterSink | undefined;
  constructor(
    readonly id: string,
    readonly log: Seen[],
    readonly queue: FilterQueue = 'all',
    public status = true,
    public verdict: (d: Direction, f: Uint8Array) => Verdict = () => PASS,
  ) {}
  attached(sink: FilterSink): void {
    this.sink = sink;
  }
  process(direction: Direction, frame: Uint8Array): Verdict {
    this.log.push({ filter: this.id, direction, first: frame[0]! });
    return this.verdict(direction, frame);
  }
}

class DevicePeer implements NetdevPeer {
  frames: number[] = [];
  accept = true;
  writables = 0;
  receive(frame: Uint8Array): boolean {
    if (!this.accept) return false;
    this.frames.push(frame[0]!);
    return true;
  }
  writable(): void {
    this.writables++;
  }
}

function setup(...specs: [string, FilterQueue?][]): { inner: MemoryNetdev; chain: FilterChain; peer: DevicePeer; log: Seen[]; sent: number[]; filters: RecordingFilter[] } {
  const inner = new MemoryNetdev({ id: 'hn0' });
  const sent: number[] = [];
  inner.on('transmit', (f: Uint8Array) => sent.push(f[0]!));
  const chain = new FilterChain(inner);
  const log: Seen[] = [];
  const filters = specs.map(([id, q]) => new RecordingFilter(id, log, q));
  for (const f of filters) chain.add(f);
  const peer = new DevicePeer();
  chain.attach(peer);
  return { inner, chain, peer, log, sent, filters };
}

const frame = (b: number): Uint8Array => Uint8Array.of(b, 0, 0, 0);

describe('lib/filters FilterChain', () => {
  it('netdev_transmit_walks_in_order_and_netdev_receive_in_reverse', () => {
    const { inner, chain, peer, log, sent } = setup(['a'], ['b'], ['c']);
    inner.inject(frame(1)); // host → guest: the netdev transmits: 'tx'
    expect(chain.send(frame(2))).to.equal('sent'); // guest → host: the netdev receives: 'rx'
    expect(log.map((s) => `${s.filter}:${s.direction}:${s.first}`)).to.deep.equal(['a:tx:1', 'b:tx:1', 'c:tx:1', 'c:rx:2', 'b:rx:2', 'a:rx:2']);
    expect(peer.frames).to.deep.equal([1]);
    expect(sent).to.deep.equal([2]);
  });

  it('queue_and_status_choose_what_a_filter_sees', () => {
    const { inner, chain, log, filters } = setup(['rxonly', 'rx'], ['txonly', 'tx'], ['off']);
    filters[2]!.status = false;
    inner.inject(frame(1));
    chain.send(frame(2));
    expect(log.map((s) => `${s.filter}:${s.direction}`)).to.deep.equal(['txonly:tx', 'rxonly:rx']);
  });

  it('consume_stops_the_frame_and_replace_changes_it_for_the_rest', () => {
    const { inner, chain, peer, log, sent, filters } = setup(['a'], ['b']);
    filters[0]!.verdict = (d) => (d === 'tx' ? CONSUME : PASS);
    const replacement = frame(9);
    filters[1]!.verdict = (d) => (d === 'rx' ? { kind: 'replace', frame: replacement, vnetHeader: undefined } : PASS);
    inner.inject(frame(1));
    expect(chain.send(frame(2))).to.equal('sent');
    expect(peer.frames).to.deep.equal([]); // consumed by a before b saw it
    expect(log.map((s) => `${s.filter}:${s.direction}:${s.first}`)).to.deep.equal(['a:tx:1', 'b:rx:2', 'a:rx:9']);
    expect(sent).to.deep.equal([9]);
    expect(chain.stats()).to.deep.include({ consumedTx: 1, replaced: 1 });
  });

  it('frames_a_filter_injects_continue_after_it_only', () => {
    const { chain, peer, log, sent, filters } = setup(['a'], ['b'], ['c']);
    expect(filters[1]!.sink!.passToNext(filters[1]!, 'tx', frame(5))).to.equal(true);
    expect(filters[1]!.sink!.passToNext(filters[1]!, 'rx', frame(6))).to.equal(true);
    expect(log.map((s) => `${s.filter}:${s.direction}:${s.first}`)).to.deep.equal(['c:tx:5', 'a:rx:6']);
    expect(peer.frames).to.deep.equal([5]);
    expect(sent).to.deep.equal([6]);
    chain.remove('b');
    expect(filters[1]!.sink!.passToNext(filters[1]!, 'tx', frame(7))).to.equal(false); // no longer on the chain
  });

  it('busy_host_holds_one_frame_and_filters_see_it_once', () => {
    const { inner, chain, peer, log, sent } = setup(['a']);
    inner.setWritable(false);
    expect(chain.send(frame(1))).to.equal('sent'); // kept by the chain
    expect(chain.send(frame(2))).to.equal('busy'); // the device keeps this one and waits
    expect(log).to.have.length(1);
    inner.setWritable(true);
    expect(sent).to.deep.equal([1]);
    expect(peer.writables).to.equal(1);
    expect(chain.send(frame(2))).to.equal('sent');
    expect(sent).to.deep.equal([1, 2]);
    expect(log.map((s) => s.first)).to.deep.equal([1, 2]);
  });

  it('full_device_holds_one_frame_pauses_the_host_and_filters_see_it_once', () => {
    const { inner, chain, peer, log } = setup(['a']);
    peer.accept = false;
    expect(inner.inject(frame(1))).to.equal(true);
    expect(inner.inject(frame(2))).to.equal(true); // held by the paused memory netdev
    expect(log).to.have.length(1);
    peer.accept = true;
    chain.resumeReceive();
    expect(peer.frames).to.deep.equal([1, 2]);
    expect(log.map((s) => s.first)).to.deep.equal([1, 2]);
  });

  it('a_frame_the_backend_dropped_is_reported_dropped_not_sent', () => {
    const inner = new MemoryNetdev({ id: 'failed' });
    let answer: SendResult = 'dropped';
    inner.send = (): SendResult => answer; // what a failed TAP/macvtap fd answers
    const chain = new FilterChain(inner);
    chain.attach({ receive: () => true, writable: () => undefined });
    expect(chain.send(new Uint8Array(60))).to.equal('dropped');
    answer = 'sent';
    expect(chain.send(new Uint8Array(60)), 'the flag does not stick to later frames').to.equal('sent');
  });

  it('positions_and_duplicate_ids', () => {
    const { chain } = setup(['a'], ['c']);
    const log: Seen[] = [];
    chain.add(new RecordingFilter('b', log), { position: 'c', insert: 'before' });
    chain.add(new RecordingFilter('z', log), { position: 'head' });
    chain.add(new RecordingFilter('d', log), { position: 'c' });
    expect(chain.filters.map((f) => f.id)).to.deep.equal(['z', 'a', 'b', 'c', 'd']);
    expect(() => chain.add(new RecordingFilter('a', log))).to.throw(/already on the chain/);
    expect(() => chain.add(new RecordingFilter('q', log), { position: 'nope' })).to.throw(/position must be 'head', 'tail' or the id/);
  });

  it('rx_filter_binding_and_mac_announcement_are_forwarded_to_a_bus_netdev', () => {
    const plain = new FilterChain(new MemoryNetdev());
    expect(syncsRxFilter(plain)).to.equal(false);
    expect(announcesMac(plain)).to.equal(false);
    // v86's browser side of `net0-mac`, as its adapters listen.
    const macs: unknown[] = [];
    const bus: V86BusConnector = {
      register: () => undefined,
      unregister: () => undefined,
      send: (name, value) => {
        if (name === 'net0-mac') macs.push(value);
      },
    };
    const chain = new FilterChain(new V86BusNetdev({ emulator: { emulator_bus: bus } }));
    chain.add(new RecordingFilter('a', []));
    expect(syncsRxFilter(chain)).to.equal(true);
    expect(announcesMac(chain)).to.equal(true);
    // The device binds its rx filter to the netdev it is given; through the chain, the bus netdev
    // learns the MAC and announces it.
    new VirtioNetDevice({ id: 'nic0', mac: '52:54:00:aa:bb:cc', memory: new GuestMemory(1 << 16), netdev: chain });
    expect(macs).to.deep.equal(['52:54:00:aa:bb:cc']);
    chain.announceMac!();
    expect(macs).to.deep.equal(['52:54:00:aa:bb:cc', '52:54:00:aa:bb:cc']);
  });

  it('vnet_header_capability_is_forwarded_only_when_the_backend_has_it', () => {
    expect(hasVnetHeader(new FilterChain(new MemoryNetdev()))).to.equal(false);
    let len = 10;
    const tapLike: Netdev & { vnetHeaderLength: number; setVnetHeaderLength(l: 10 | 12): void } = {
      id: 'tap0',
      attach: () => undefined,
      detach: () => undefined,
      send: (): SendResult => 'sent',
      pauseReceive: () => undefined,
      resumeReceive: () => undefined,
      close: () => Promise.resolve(),
      get vnetHeaderLength() {
        return len;
      },
      setVnetHeaderLength(l) {
        len = l;
      },
    };
    const chain = new FilterChain(tapLike);
    expect(hasVnetHeader(chain)).to.equal(true);
    if (!hasVnetHeader(chain)) return;
    chain.setVnetHeaderLength(12);
    expect(chain.vnetHeaderLength).to.equal(12);
  });

  it('a_virtio_net_device_attaches_to_a_chain_unchanged', () => {
    const inner = new MemoryNetdev({ id: 'hn0' });
    const sent: Uint8Array[] = [];
    inner.on('transmit', (f: Uint8Array) => sent.push(f));
    const chain = new FilterChain(inner);
    const log: Seen[] = [];
    const bump = new Uint8Array(60);
    chain.add(
      new RecordingFilter('edit', log, 'rx', true, (_d, f) => {
        bump.set(f.subarray(0, 60));
        bump[59] = 0xee;
        return { kind: 'replace', frame: bump, vnetHeader: undefined };
      }),
    );
    const rig = new NetRig({ netdev: chain });
    const out = new Uint8Array(60).fill(0x11);
    rig.send(out);
    expect(sent).to.have.length(1);
    expect(sent[0]![59]).to.equal(0xee);
    expect(sent[0]![0]).to.equal(0x11);
    rig.postRx(4);
    const toGuest = new Uint8Array(60).fill(0xff); // broadcast: passes the rx filter
    expect(inner.inject(toGuest)).to.equal(true);
    const got = rig.received();
    expect(got).to.have.length(1);
    expect(got[0]!.frame).to.deep.equal(toGuest);
    expect(log.map((s) => s.direction)).to.deep.equal(['rx']); // the rx-only filter saw the guest's frame only
  });
});
