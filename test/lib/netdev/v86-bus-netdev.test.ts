// V86BusNetdev against a fake v86 bus: a pair of connectors with v86's semantics (src/bus.js:
// `send` on one side calls the listeners registered on the other, synchronously; `unregister`
// matches by function identity). The adapter side stands where v86's network adapters register.

import { expect } from 'chai';
import { V86BusNetdev } from '../../../lib/netdev/v86-bus-netdev.js';
import type { V86BusConnector } from '../../../lib/netdev/v86-bus-netdev.js';
import type { NetdevPeer, RxFilterSnapshot, RxFilterSource } from '../../../lib/netdev/netdev.js';
import { NetRig } from '../../support/net-rig.js';
import { RecordingPeer } from '../../support/recording-peer.js';
import { CtrlClass, CtrlMac } from '../../../devices/virtio-net/constants.js';

class FakeConnector implements V86BusConnector {
  pair!: FakeConnector;
  readonly listeners = new Map<string, ((v: unknown) => void)[]>();
  register(name: string, fn: (value: unknown) => void): void {
    const l = this.listeners.get(name) ?? [];
    l.push(fn);
    this.listeners.set(name, l);
  }
  unregister(name: string, fn: (value: unknown) => void): void {
    const l = this.listeners.get(name);
    if (l !== undefined) this.listeners.set(name, l.filter((x) => x !== fn));
  }
  send(name: string, value?: unknown): void {
    for (const fn of this.pair.listeners.get(name) ?? []) fn(value);
  }
  count(name: string): number {
    return this.listeners.get(name)?.length ?? 0;
  }
}

/** v86's Bus.create(): [browser side (adapters), device side (NICs)]. */
function busPair(): { adapter: FakeConnector; device: FakeConnector } {
  const adapter = new FakeConnector();
  const device = new FakeConnector();
  adapter.pair = device;
  device.pair = adapter;
  return { adapter, device };
}

/** What an adapter on the browser side sees: frames (copies) and MAC announcements. */
function adapterOn(bus: FakeConnector, id = 'net0'): { sent: number[][]; macs: unknown[]; txEnds: unknown[] } {
  const seen = { sent: [] as number[][], macs: [] as unknown[], txEnds: [] as unknown[] };
  bus.register(`${id}-send`, (f) => seen.sent.push([...(f as Uint8Array)]));
  bus.register(`${id}-mac`, (m) => seen.macs.push(m));
  bus.register('eth-transmit-end', (x) => seen.txEnds.push(x));
  return seen;
}

/** A stand-in for the device's rx-filter side: a MAC and the rx-filter-changed event. */
class FakeFilterSource implements RxFilterSource {
  mac = '52:54:00:12:34:56';
  queries = 0;
  private readonly fns: ((e: { name: string; path: string }) => void)[] = [];
  queryRxFilter(): RxFilterSnapshot {
    this.queries++;
    return { 'main-mac': this.mac } as RxFilterSnapshot;
  }
  on(_e: 'rx-filter-changed', fn: (e: { name: string; path: string }) => void): void {
    this.fns.push(fn);
  }
  off(_e: 'rx-filter-changed', fn: (e: { name: string; path: string }) => void): void {
    const i = this.fns.indexOf(fn);
    if (i >= 0) this.fns.splice(i, 1);
  }
  changed(): void {
    for (const fn of [...this.fns]) fn({ name: 'nic0', path: '/machine/peripheral/nic0/virtio-backend' });
  }
  get listeners(): number {
    return this.fns.length;
  }
}

const f = (n: number, len = 3): Uint8Array => new Uint8Array(len).fill(n);

function expectBalanced(n: V86BusNetdev): void {
  const s = n.stats();
  expect(s.received, 'received = delivered + backlog + dropped + invalid').to.equal(s.delivered + s.backlog + s.dropped + s.invalid);
}

describe('lib/netdev/v86-bus-netdev', () => {
  describe('network to guest (<id>-receive)', () => {
    it('adapter_frames_reach_the_device_in_order', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const peer = new RecordingPeer();
      n.attach(peer);
      for (let i = 1; i <= 3; i++) bus.adapter.send('net0-receive', f(i));
      expect(peer.received).to.deep.equal([[1, 1, 1], [2, 2, 2], [3, 3, 3]]);
      expect(n.stats()).to.include({ received: 3, delivered: 3, backlog: 0, dropped: 0 });
      expectBalanced(n);
    });

    it('frames_are_held_while_the_device_has_no_room_and_delivered_in_order_on_resume', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const peer = new RecordingPeer(1);
      n.attach(peer);
      for (let i = 1; i <= 4; i++) bus.adapter.send('net0-receive', f(i));
      expect(peer.received).to.deep.equal([[1, 1, 1]]);
      expect(n.stats()).to.include({ received: 4, delivered: 1, backlog: 3, dropped: 0 });
      peer.room = Infinity;
      n.resumeReceive();
      expect(peer.received).to.deep.equal([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]]);
      expect(n.stats()).to.include({ delivered: 4, backlog: 0 });
      expectBalanced(n);
    });

    it('held_frames_are_copies_not_the_adapters_buffer', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const peer = new RecordingPeer(0);
      n.attach(peer);
      const buf = f(7);
      bus.adapter.send('net0-receive', buf);
      buf.fill(0); // the adapter reuses its buffer
      peer.room = Infinity;
      n.resumeReceive();
      expect(peer.received).to.deep.equal([[7, 7, 7]]);
    });

    it('pause_receive_holds_frames_until_resume', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const peer = new RecordingPeer();
      n.attach(peer);
      n.pauseReceive();
      bus.adapter.send('net0-receive', f(1));
      expect(peer.received).to.have.length(0);
      n.resumeReceive();
      expect(peer.received).to.deep.equal([[1, 1, 1]]);
    });

    it('backlog_is_bounded_and_refusals_are_counted', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device }, backlogLimit: 2 });
      const peer = new RecordingPeer(0);
      n.attach(peer);
      for (let i = 1; i <= 5; i++) bus.adapter.send('net0-receive', f(i));
      expect(n.stats()).to.include({ received: 5, delivered: 0, backlog: 2, dropped: 3 });
      expectBalanced(n);
      peer.room = Infinity;
      n.resumeReceive();
      expect(peer.received, 'the oldest frames were kept, the newest refused').to.deep.equal([[1, 1, 1], [2, 2, 2]]);
      expectBalanced(n);
    });

    it('frames_before_a_device_is_attached_wait_for_it', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      bus.adapter.send('net0-receive', f(1));
      const peer = new RecordingPeer();
      n.attach(peer);
      expect(peer.received).to.deep.equal([[1, 1, 1]]);
    });

    it('array_buffer_payloads_are_accepted_and_non_bytes_are_counted_invalid', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const peer = new RecordingPeer();
      n.attach(peer);
      bus.adapter.send('net0-receive', Uint8Array.of(9, 9).buffer);
      bus.adapter.send('net0-receive', 'not a frame');
      bus.adapter.send('net0-receive', undefined);
      expect(peer.received).to.deep.equal([[9, 9]]);
      expect(n.stats()).to.include({ received: 3, delivered: 1, invalid: 2 });
      expectBalanced(n);
    });

    it('a_frame_answered_from_inside_send_is_delivered_on_a_later_turn', () => {
      const bus = busPair();
      const later: (() => void)[] = [];
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device }, defer: (fn) => later.push(fn) });
      const peer = new RecordingPeer();
      n.attach(peer);
      // fetch/wisp answer ARP and DHCP synchronously from their `<id>-send` listener.
      bus.adapter.register('net0-send', (frame) => bus.adapter.send('net0-receive', Uint8Array.of(...(frame as Uint8Array), 0xaa)));
      expect(n.send(Uint8Array.of(1))).to.equal('sent');
      expect(peer.received, 'not re-entered during send').to.have.length(0);
      expect(later).to.have.length(1);
      later.shift()!();
      expect(peer.received).to.deep.equal([[1, 0xaa]]);
      expectBalanced(n);
    });

    it('another_id_speaks_its_own_events', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device }, id: 'net1' });
      const peer = new RecordingPeer();
      n.attach(peer);
      bus.adapter.send('net0-receive', f(1));
      bus.adapter.send('net1-receive', f(2));
      expect(peer.received).to.deep.equal([[2, 2, 2]]);
      const seen = adapterOn(bus.adapter, 'net1');
      n.send(f(3));
      expect(seen.sent).to.deep.equal([[3, 3, 3]]);
    });
  });

  describe('guest to network (<id>-send)', () => {
    it('send_gives_the_adapter_a_copy_and_counts', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const kept: Uint8Array[] = [];
      bus.adapter.register('net0-send', (fr) => kept.push(fr as Uint8Array));
      const seen = adapterOn(bus.adapter);
      const guest = Uint8Array.of(1, 2, 3, 4);
      expect(n.send(guest)).to.equal('sent');
      guest.fill(0); // the guest reuses its buffer once the device completed the chain
      expect([...kept[0]!]).to.deep.equal([1, 2, 3, 4]);
      expect(seen.txEnds).to.deep.equal([[4]]);
      expect(n.stats().transmitted).to.equal(1);
    });

    it('send_never_answers_busy_even_with_no_adapter', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      for (let i = 0; i < 10; i++) expect(n.send(f(i))).to.equal('sent');
    });
  });

  describe('MAC announcements (<id>-mac)', () => {
    it('binding_a_device_announces_its_mac_in_v86s_text_form', () => {
      const bus = busPair();
      const seen = adapterOn(bus.adapter);
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const src = new FakeFilterSource();
      src.mac = '52:54:00:AB:0C:01';
      n.bindRxFilterSource(src);
      expect(seen.macs).to.deep.equal(['52:54:00:ab:0c:01']);
      expect(n.announcedMac).to.equal('52:54:00:ab:0c:01');
    });

    it('a_mac_change_is_announced_and_other_filter_changes_are_not', () => {
      const bus = busPair();
      const seen = adapterOn(bus.adapter);
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const src = new FakeFilterSource();
      n.bindRxFilterSource(src);
      src.changed(); // e.g. promiscuous mode: same MAC
      src.mac = '52:54:00:00:00:02';
      src.changed();
      expect(seen.macs).to.deep.equal(['52:54:00:12:34:56', '52:54:00:00:00:02']);
      expect(n.stats().macAnnouncements).to.equal(2);
    });

    it('announce_mac_announces_even_when_unchanged', () => {
      const bus = busPair();
      const seen = adapterOn(bus.adapter);
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      n.bindRxFilterSource(new FakeFilterSource());
      n.announceMac();
      n.announceMac('02:00:00:00:00:09');
      expect(seen.macs).to.deep.equal(['52:54:00:12:34:56', '52:54:00:12:34:56', '02:00:00:00:00:09']);
      expect(() => n.announceMac('nope')).to.throw(TypeError);
    });

    it('a_real_device_announces_at_construction_and_after_mac_addr_set', () => {
      const bus = busPair();
      const seen = adapterOn(bus.adapter);
      const netdev = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      const rig = new NetRig({ netdev, mac: '52:54:00:12:34:56', transport: 'pci' });
      expect(seen.macs).to.deep.equal(['52:54:00:12:34:56']);
      expect(rig.cmd(CtrlClass.MAC, CtrlMac.ADDR_SET, [0x02, 0x11, 0x22, 0x33, 0x44, 0x55])).to.equal(0);
      expect(seen.macs).to.deep.equal(['52:54:00:12:34:56', '02:11:22:33:44:55']);
      expect(rig.cmd(CtrlClass.MAC, CtrlMac.ADDR_SET, [0x02, 0x11, 0x22, 0x33, 0x44, 0x66])).to.equal(0);
      expect(seen.macs.at(-1), 'every change, not just the first').to.equal('02:11:22:33:44:66');
    });
  });

  describe('lifecycle', () => {
    it('close_unregisters_from_the_bus_and_drops_held_frames', async () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      expect(bus.device.count('net0-receive')).to.equal(1);
      const peer = new RecordingPeer(0);
      n.attach(peer);
      const src = new FakeFilterSource();
      n.bindRxFilterSource(src);
      bus.adapter.send('net0-receive', f(1));
      bus.adapter.send('net0-receive', f(2));
      await n.close();
      await n.close();
      expect(bus.device.count('net0-receive')).to.equal(0);
      expect(src.listeners).to.equal(0);
      expect(n.stats()).to.include({ backlog: 0, dropped: 2 });
      expectBalanced(n);
    });

    it('options_are_checked', () => {
      const bus = busPair();
      expect(() => new V86BusNetdev({ emulator: {} })).to.throw(TypeError, /emulator_bus/);
      expect(() => new V86BusNetdev({ emulator: { emulator_bus: bus.device }, id: '' })).to.throw(TypeError);
      expect(() => new V86BusNetdev({ emulator: { emulator_bus: bus.device }, backlogLimit: -1 })).to.throw(RangeError);
      expect(() => new V86BusNetdev(null as never)).to.throw(TypeError);
    });

    it('a_second_device_cannot_attach', () => {
      const bus = busPair();
      const n = new V86BusNetdev({ emulator: { emulator_bus: bus.device } });
      n.attach(new RecordingPeer());
      expect(() => n.attach(new RecordingPeer())).to.throw(Error, /already attached/);
    });
  });
});
