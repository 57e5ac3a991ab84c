// The MTU (VIRTIO_NET_F_MTU, VIRTIO 1.2 §5.1.4; issue #17 item 4). Once negotiated, a non-GSO
// frame is held to mtu + the Ethernet header (+ one 802.1Q / 802.1ad tag): the driver MUST NOT
// transmit a longer one (§5.1.4.2: recorded, not passed on, counted tx.errors['above-mtu'], in
// default and strict mode alike) and the device MUST NOT pass a longer one to the driver (§5.1.4.1:
// dropped, counted rx.drops['above-mtu'], no diagnostic — host input). A backend with a host MTU
// (MtuCapable, e.g. TapNetdev) gives the device its MTU when the `mtu` option is absent.

import { expect } from 'chai';
import { ALL_FEATURES, NetRig, ethFrame } from '../../support/net-rig.js';
import type { NetRigOptions } from '../../support/net-rig.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { MemoryNetdevOptions } from '../../../lib/netdev/memory-netdev.js';
import { reportsMtu } from '../../../lib/netdev/netdev.js';
import { CtrlAck, CtrlClass, CtrlRx, NetFeature, VnetHdrFlag, VnetHdrGso, featureMask } from '../../../devices/virtio-net/constants.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';

const MAIN = '52:54:00:12:34:56';
const NEEDS_RESET = 0x40;
const MTU_BIT = featureMask(NetFeature.MTU);

/** A frame of exactly `length` bytes to the guest's MAC: untagged, 802.1Q-tagged, or with an 802.1ad outer tag. */
function frameOf(length: number, tag: 'none' | '8021q' | '8021ad' = 'none'): Uint8Array {
  if (tag === '8021q') return ethFrame(MAIN, undefined, { vlan: 5, payload: length - 18 });
  if (tag === '8021ad') return ethFrame(MAIN, undefined, { type: 0x88a8, payload: length - 14 });
  return ethFrame(MAIN, undefined, { payload: length - 14 });
}

/** What a Linux guest writes for a TSO frame (a valid GSO header). */
function tso4Header(): Uint8Array {
  const b = new Uint8Array(12);
  const dv = new DataView(b.buffer);
  b[0] = VnetHdrFlag.NEEDS_CSUM;
  b[1] = VnetHdrGso.TCPV4;
  dv.setUint16(2, 54, true);
  dv.setUint16(4, 1448, true);
  dv.setUint16(6, 34, true);
  dv.setUint16(8, 16, true);
  return b;
}

/** A device whose netdev records what it was handed. */
function rigWith(options: NetRigOptions & { vnetHdr?: boolean; netdev?: MemoryNetdev } = {}): { rig: NetRig; sent: Uint8Array[] } {
  const { vnetHdr = false, netdev = new MemoryNetdev({ id: 'net0', vnetHdr }), ...rest } = options;
  const sent: Uint8Array[] = [];
  netdev.on('transmit', (f: Uint8Array) => sent.push(f));
  return { rig: new NetRig({ mac: MAIN, ...rest, netdev }), sent };
}

/** A good exchange both ways and on the control queue: the queues still work. */
function goodExchange(rig: NetRig, sent: Uint8Array[]): void {
  const f = ethFrame(MAIN, undefined, { payload: 80, fill: 9 });
  const before = sent.length;
  expect(rig.send(f)).to.deep.include({ len: 0 });
  expect(sent.length).to.equal(before + 1);
  expect([...sent[before]!]).to.deep.equal([...f]);
  rig.postRx(1, 1600);
  expect(rig.inject(f)).to.equal(true);
  expect(rig.received().map((g) => [...g.frame])).to.deep.equal([[...f]]);
  expect(rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [1])).to.equal(CtrlAck.OK);
  expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
}

/** rx.offered = frames + every drop + backlog. */
function rxBalanced(rig: NetRig): boolean {
  const rx = rig.device.stats().rx;
  return rx.offered === rx.frames + Object.values(rx.drops).reduce((a, b) => a + b, 0) + rx.backlog;
}

/** A MemoryNetdev whose host link has an MTU (what TapNetdev reports through SIOCGIFMTU). */
class MtuNetdev extends MemoryNetdev {
  calls = 0;
  constructor(private readonly mtu: number | undefined, options: MemoryNetdevOptions = {}) {
    super(options);
  }
  hostMtu(): number | undefined {
    this.calls++;
    return this.mtu;
  }
}

describe('devices/virtio-net MTU (§5.1.4)', () => {
  describe('transmit: the driver MUST NOT send above mtu (§5.1.4.2)', () => {
    for (const strict of [false, true]) {
      it(`tx_frame_one_byte_above_mtu_is_recorded_and_not_sent${strict ? '_in_strict_mode' : ''}`, () => {
        const { rig, sent } = rigWith({ mtu: 1500, strict });
        expect(rig.has('MTU')).to.equal(true);
        expect(rig.send(frameOf(1515), { split: 'header-apart' })).to.deep.include({ len: 0 });
        expect(sent).to.have.length(0);
        expect(rig.device.stats().tx).to.deep.include({ frames: 0 });
        expect(rig.device.stats().tx.errors['above-mtu']).to.equal(1);
        expect(rig.device.diagnostics().map((d) => d.code)).to.deep.equal(['tx.frame-above-mtu']);
        expect(rig.device.diagnostics()[0]).to.deep.include({ section: '5.1.4.2', queue: 1, value: 1515 });
        expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
        // Exactly mtu + the Ethernet header goes out.
        expect(rig.send(frameOf(1514))).to.deep.include({ len: 0 });
        expect(sent.map((f) => f.length)).to.deep.equal([1514]);
        goodExchange(rig, sent);
        expect(rig.device.stats().tx.errors['above-mtu']).to.equal(1);
      });
    }

    it('tx_frame_above_mtu_is_refused_over_packed_rings_and_a_gathered_frame_too', () => {
      const { rig, sent } = rigWith({ mtu: 1280, ring: 'packed' });
      expect(rig.send(frameOf(1295), { split: 4 })).to.deep.include({ len: 0 });
      expect(sent).to.have.length(0);
      expect(rig.device.stats().tx.errors['above-mtu']).to.equal(1);
      expect(rig.send(frameOf(1294), { split: 4 })).to.deep.include({ len: 0 });
      expect(sent.map((f) => f.length)).to.deep.equal([1294]);
      goodExchange(rig, sent);
    });

    it('tx_vlan_tagged_frame_may_carry_mtu_plus_ethernet_header_plus_one_tag', () => {
      const { rig, sent } = rigWith({ mtu: 1500 });
      rig.send(frameOf(1518, '8021q'));
      rig.send(frameOf(1518, '8021ad'));
      expect(sent.map((f) => f.length)).to.deep.equal([1518, 1518]);
      expect(rig.device.diagnostics()).to.deep.equal([]);
      // One byte more, or an untagged frame of that length, is above the MTU.
      rig.send(frameOf(1519, '8021q'));
      rig.send(frameOf(1518));
      expect(sent).to.have.length(2);
      expect(rig.device.stats().tx.errors['above-mtu']).to.equal(2);
      expect(rig.device.diagnostics().map((d) => d.value)).to.deep.equal([1519, 1518]);
      goodExchange(rig, sent);
    });

    it('tx_gso_frame_is_not_held_to_the_mtu', () => {
      const { rig, sent } = rigWith({ mtu: 1500, vnetHdr: true, strict: true });
      expect(rig.send(frameOf(9000), { header: tso4Header() })).to.deep.include({ len: 0 });
      expect(sent.map((f) => f.length)).to.deep.equal([9000]);
      expect(rig.device.diagnostics()).to.deep.equal([]);
      expect(rig.device.stats().tx.errors['above-mtu']).to.equal(0);
    });

    it('tx_frame_above_mtu_goes_out_when_the_driver_did_not_negotiate_mtu', () => {
      const { rig, sent } = rigWith({ mtu: 1500, init: false });
      rig.start(ALL_FEATURES & ~MTU_BIT);
      expect(rig.has('MTU')).to.equal(false);
      rig.send(frameOf(4000));
      expect(sent.map((f) => f.length)).to.deep.equal([4000]);
      expect(rig.device.diagnostics()).to.deep.equal([]);
    });
  });

  describe('receive: the device MUST NOT pass frames above mtu (§5.1.4.1)', () => {
    it('rx_frame_one_byte_above_mtu_is_dropped_and_counted_without_a_diagnostic', () => {
      const { rig, sent } = rigWith({ mtu: 1500 });
      const [first] = rig.postRx(2, 1600);
      expect(rig.inject(frameOf(1515))).to.equal(true);
      expect(rig.rx.usedEntries()).to.deep.equal([]);
      expect(rig.device.stats().rx.drops['above-mtu']).to.equal(1);
      expect(rig.device.stats().rx.frames).to.equal(0);
      expect(rig.device.diagnostics()).to.deep.equal([]);
      expect(rxBalanced(rig)).to.equal(true);
      // Exactly mtu + the Ethernet header is delivered, into the buffer the dropped frame did not take.
      expect(rig.inject(frameOf(1514))).to.equal(true);
      const got = rig.received();
      expect(got.map((g) => [g.id, g.frame.length])).to.deep.equal([[first, 1514]]);
      goodExchange(rig, sent);
      expect(rxBalanced(rig)).to.equal(true);
    });

    it('rx_vlan_tagged_frame_of_mtu_plus_the_tag_is_delivered', () => {
      const { rig, sent } = rigWith({ mtu: 1500, features: { disable: ['CTRL_VLAN'] } });
      rig.postRx(4, 1600);
      rig.inject(frameOf(1518, '8021q'));
      rig.inject(frameOf(1518, '8021ad'));
      rig.inject(frameOf(1519, '8021q'));
      expect(rig.received().map((g) => g.frame.length)).to.deep.equal([1518, 1518]);
      expect(rig.device.stats().rx.drops['above-mtu']).to.equal(1);
      goodExchange(rig, sent);
    });

    it('rx_frame_above_mtu_without_mrg_rxbuf_is_above_mtu_not_the_drivers_buffer_too_small', () => {
      // Linux sizes receive buffers for the MTU (1526 for 1500): the frame is the host's fault.
      const { rig, sent } = rigWith({ mtu: 1500, features: { disable: ['MRG_RXBUF'] } });
      const [head] = rig.postRx(1, 1526);
      rig.inject(frameOf(1600));
      expect(rig.device.stats().rx.drops).to.deep.include({ 'above-mtu': 1, 'buffer-too-small': 0 });
      expect(rig.device.diagnostics()).to.deep.equal([]);
      rig.inject(frameOf(1514));
      expect(rig.received().map((g) => [g.id, g.frame.length])).to.deep.equal([[head, 1514]]);
      goodExchange(rig, sent);
    });

    it('rx_frame_above_mtu_with_no_buffer_posted_waits_and_is_dropped_when_buffers_come', () => {
      // Dropped only once it could be delivered, like a frame the rx filter refuses.
      const { rig, sent } = rigWith({ mtu: 1500, features: { disable: ['MRG_RXBUF'] } });
      rig.inject(frameOf(1600));
      expect(rig.device.stats().rx.backlog).to.equal(1);
      expect(rig.device.stats().rx.drops['above-mtu']).to.equal(0);
      const [head] = rig.postRx(1, 1526);
      expect(rig.device.stats().rx.backlog).to.equal(0);
      expect(rig.device.stats().rx.drops['above-mtu']).to.equal(1);
      rig.inject(frameOf(1514)); // the buffer was not used by the dropped frame
      expect(rig.received().map((g) => [g.id, g.frame.length])).to.deep.equal([[head, 1514]]);
      goodExchange(rig, sent);
    });

    it('rx_gso_frame_from_the_backend_is_not_held_to_the_mtu', () => {
      const { rig, sent } = rigWith({ mtu: 1500, vnetHdr: true });
      expect(rig.has('GUEST_TSO4')).to.equal(true);
      rig.postRx(4, 4096);
      rig.inject(frameOf(3000), tso4Header());
      const got = rig.received();
      expect(got.map((g) => g.frame.length)).to.deep.equal([3000]);
      expect(got[0]!.header[1]).to.equal(VnetHdrGso.TCPV4);
      expect(rig.device.stats().rx.drops['above-mtu']).to.equal(0);
      goodExchange(rig, sent);
    });

    it('rx_frame_above_mtu_is_delivered_when_the_driver_did_not_negotiate_mtu', () => {
      const { rig } = rigWith({ mtu: 1500, init: false });
      rig.start(ALL_FEATURES & ~MTU_BIT);
      rig.postRx(1, 4096);
      rig.inject(frameOf(3000));
      expect(rig.received().map((g) => g.frame.length)).to.deep.equal([3000]);
      expect(rig.device.stats().rx.drops['above-mtu']).to.equal(0);
    });
  });

  describe('the MTU from the backend (MtuCapable)', () => {
    it('a_backend_mtu_is_offered_when_the_device_has_no_mtu_option', () => {
      const netdev = new MtuNetdev(9000, { id: 'net0' });
      expect(reportsMtu(netdev)).to.equal(true);
      const { rig, sent } = rigWith({ netdev });
      expect(netdev.calls).to.equal(1); // read once, when the device is built
      expect(rig.device.offered & MTU_BIT).to.equal(MTU_BIT);
      expect(rig.has('MTU')).to.equal(true);
      expect(rig.driver.readConfig(10, 2)).to.equal(9000);
      // … and enforced like the option.
      rig.send(frameOf(9015));
      expect(sent).to.have.length(0);
      expect(rig.device.stats().tx.errors['above-mtu']).to.equal(1);
      goodExchange(rig, sent);
    });

    it('the_mtu_option_wins_over_the_backend', () => {
      const netdev = new MtuNetdev(9000, { id: 'net0' });
      const { rig } = rigWith({ netdev, mtu: 1400 });
      expect(netdev.calls).to.equal(0);
      expect(rig.driver.readConfig(10, 2)).to.equal(1400);
    });

    it('features_disable_mtu_offers_none_and_does_not_ask_the_backend', () => {
      const netdev = new MtuNetdev(9000, { id: 'net0' });
      const { rig, sent } = rigWith({ netdev, features: { disable: ['MTU'] } });
      expect(netdev.calls).to.equal(0);
      expect(rig.device.offered & MTU_BIT).to.equal(0n);
      rig.send(frameOf(9100));
      expect(sent.map((f) => f.length)).to.deep.equal([9100]);
    });

    for (const bad of [undefined, 0, 67, 65536, 1500.5]) {
      it(`a_backend_mtu_of_${String(bad)}_is_not_offered`, () => {
        const netdev = new MtuNetdev(bad, { id: 'net0' });
        const device = new VirtioNetDevice({ id: 'nic0', memory: new GuestMemory(1 << 16), netdev });
        expect(netdev.calls).to.equal(1);
        expect(device.offered & MTU_BIT).to.equal(0n);
      });
    }

    it('a_backend_without_an_mtu_gives_none', () => {
      const device = new VirtioNetDevice({ id: 'nic0', memory: new GuestMemory(1 << 16), netdev: new MemoryNetdev() });
      expect(device.offered & MTU_BIT).to.equal(0n);
    });
  });
});
