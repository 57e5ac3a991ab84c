// Device state save / restore (API.md "Device state — save, restore, migrate"; issue #14 item 2):
// one test per error code, each checking the device is byte-for-byte unchanged afterwards; rings
// outside guest memory; the announcement after a restore (both ways); frames held in the rx backlog
// and MRG_RXBUF chains held for a frame, delivered after a restore — on split and packed rings
// (out-of-order completion over a held packed list included); transport registers.

import { expect } from 'chai';
import { DeviceStateError } from '../../../index.js';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../../devices/virtio/mmio-transport.js';
import { VirtioPciTransport } from '../../../devices/virtio/pci-transport.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { CtrlAnnounce, CtrlClass, CtrlMac, CtrlRx, CtrlVlan } from '../../../devices/virtio-net/constants.js';
import { crc32 } from '../../../lib/base/crc32.js';
import { STATE_MAGIC, StateImage, StateWriter, encodeStateImage } from '../../../lib/base/state-codec.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { SplitQueue } from '../../../virtqueue/split-queue.js';
import { PackedQueue } from '../../../virtqueue/packed-queue.js';
import { firstPosition, positionDistance, positionOffset } from '../../../virtqueue/packed-layout.js';
import { PackedDriverRing } from '../../support/packed-driver-ring.js';
import { ALL_FEATURES, ethFrame, features } from '../../support/net-rig.js';
import { HostSide, PAIR_MEMORY, StatePair } from './state-pair.js';
import type { PairSetup } from './state-pair.js';

const MMIO: PairSetup = { transport: 'mmio', pairs: 1, disable: [], ringSize: 16 };
const MAC = '52:54:00:12:34:56';

function le32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
}
function macBytes(text: string): number[] {
  return text.split(':').map((h) => parseInt(h, 16));
}

/** A source device with something in every part of its state. */
function busy(setup: PairSetup = MMIO, want = ALL_FEATURES): StatePair {
  const p = new StatePair(setup);
  expect(p.init(want)).to.equal(true);
  p.ctrl(CtrlClass.RX, CtrlRx.PROMISC, [0]);
  p.ctrl(CtrlClass.RX, CtrlRx.ALLMULTI, [1]);
  p.ctrl(CtrlClass.MAC, CtrlMac.TABLE_SET, [...le32(1), ...macBytes('52:54:00:00:00:01'), ...le32(1), ...macBytes('01:00:5e:00:00:07')]);
  p.ctrl(CtrlClass.VLAN, CtrlVlan.ADD, [5, 0]);
  p.send(0, ethFrame('52:54:00:99:99:99'), 12);
  p.postRx(2, 1526, 1);
  for (let i = 0; i < 4; i++) p.inject(ethFrame(MAC, undefined, { payload: 60 + i }));
  p.consume();
  expect(p.a.device.stats().rx.backlog).to.equal(2);
  return p;
}

/** The device's full observable state, for "unchanged" checks. */
function snapshot(d: VirtioNetDevice): unknown {
  return { image: Buffer.from(d.saveState()).toString('hex'), stats: d.stats(), status: d.status, isr: d.isr, gen: d.configGeneration };
}

function refused(d: VirtioNetDevice, image: Uint8Array, code: DeviceStateError['code']): DeviceStateError {
  const before = snapshot(d);
  let caught: unknown;
  try {
    d.restoreState(image);
  } catch (e) {
    caught = e;
  }
  expect(caught, 'restoreState should throw').to.be.instanceOf(DeviceStateError);
  const e = caught as DeviceStateError;
  expect(e.code, e.message).to.equal(code);
  expect(snapshot(d), 'the device changed after a refused restore').to.deep.equal(before);
  return e;
}

/** Recomputes the checksum after an edit (so the edit, not the checksum, is what is judged). */
function reseal(image: Uint8Array): Uint8Array {
  new DataView(image.buffer, image.byteOffset).setUint32(image.length - 4, crc32(image, 0, image.length - 4), true);
  return image;
}

/** Offset of section `tag`'s payload. */
function sectionAt(image: Uint8Array, tag: string): number {
  const dv = new DataView(image.buffer, image.byteOffset);
  let at = 12;
  while (at < image.length - 4) {
    const t = String.fromCharCode(...image.subarray(at, at + 4));
    if (t === tag) return at + 12;
    at += 12 + dv.getUint32(at + 8, true);
  }
  throw new Error(`no section ${tag}`);
}

type Section = { tag: string; version: number; required: boolean; payload: Uint8Array };

/** The image's sections with `extra` appended. */
function withSection(image: Uint8Array, extra: Section): Uint8Array {
  return encodeStateImage([...sectionsOf(image), extra]);
}

/** The image with section `tag`'s payload replaced. */
function withPayload(image: Uint8Array, tag: string, payload: Uint8Array): Uint8Array {
  return encodeStateImage(sectionsOf(image).map((s) => (s.tag === tag ? { ...s, payload } : s)));
}

function sectionsOf(image: Uint8Array): Section[] {
  const body = image.subarray(12, image.length - 4);
  const w = new StateWriter().bytes(body);
  const sections: Section[] = [];
  const all = w.finish();
  const dv = new DataView(all.buffer);
  for (let at = 0; at < all.length; ) {
    const len = dv.getUint32(at + 8, true);
    sections.push({ tag: String.fromCharCode(...all.subarray(at, at + 4)), version: all[at + 4]!, required: (all[at + 5]! & 1) === 1, payload: all.slice(at + 12, at + 12 + len) });
    at += 12 + len;
  }
  return sections;
}

describe('device state (API.md "Device state", issue #14 item 2)', () => {
  describe('the image', () => {
    it('is_magic_version_tagged_sections_and_a_crc32_over_everything', () => {
      const p = busy();
      const image = p.a.device.saveState();
      const dv = new DataView(image.buffer);
      expect(dv.getUint32(0, true)).to.equal(STATE_MAGIC);
      expect(dv.getUint16(4, true)).to.equal(1);
      expect(dv.getUint32(8, true)).to.equal(image.length);
      expect(dv.getUint32(image.length - 4, true)).to.equal(crc32(image, 0, image.length - 4));
      expect(StateImage.parse(image).tags).to.deep.equal(['NETI', 'CORE', 'TRNS', 'NETF', 'NETC', 'NETB', 'NETR', 'NCOA', 'NETS']);
    });

    it('crc32_is_the_ieee_802_3_checksum', () => {
      expect(crc32(new TextEncoder().encode('123456789'))).to.equal(0xcbf43926);
      expect(crc32(new Uint8Array(0))).to.equal(0);
    });

    it('saving_changes_nothing_and_gives_the_same_bytes_twice', () => {
      const p = busy();
      const before = snapshot(p.a.device);
      expect(Buffer.from(p.a.device.saveState()).equals(Buffer.from(p.a.device.saveState()))).to.equal(true);
      expect(snapshot(p.a.device)).to.deep.equal(before);
    });

    for (const transport of ['mmio', 'pci', 'pci-legacy', 'pci-legacy-only'] as const) {
      it(`restored_device_is_indistinguishable_over_${transport.replaceAll('-', '_')}`, () => {
        const p = busy({ ...MMIO, transport }, transport.startsWith('pci-legacy') ? ALL_FEATURES & 0xffff_ffffn : ALL_FEATURES);
        p.restore();
        p.check('after restore');
        p.postRx(4, 1526, 2);
        p.consume();
        p.check('after rx buffers');
        p.send(0, ethFrame('ff:ff:ff:ff:ff:ff'), p.has('VERSION_1') || p.has('MRG_RXBUF') ? 12 : 10);
        p.consume();
        p.check('after a transmit');
        expect(p.b.device.queryRxFilter()).to.deep.equal(p.a.device.queryRxFilter());
      });
    }

    it('a_state_saved_before_the_driver_started_restores_into_a_fresh_device', () => {
      const p = new StatePair(MMIO);
      p.restore();
      p.check('after restore');
      expect(p.init(ALL_FEATURES)).to.equal(true);
      p.check('after init');
    });

    it('restoring_over_a_running_device_replaces_its_state', () => {
      const src = busy();
      const dst = busy();
      dst.ctrl(CtrlClass.RX, CtrlRx.PROMISC, [1]);
      dst.a.device.restoreState(src.a.device.saveState());
      expect(dst.a.device.queryRxFilter()).to.deep.equal(src.a.device.queryRxFilter());
      expect(dst.a.device.stats().rx.backlog).to.equal(2);
    });
  });

  describe('refused states change nothing', () => {
    it('corrupt_state_bytes_are_refused_with_state_corrupt_and_change_nothing', () => {
      const p = busy();
      const image = p.a.device.saveState();
      const target = busy().a.device; // a running device with its own state
      // Every byte flipped, one at a time: the checksum (or the magic) catches each.
      for (let i = 0; i < image.length; i++) {
        const bad = image.slice();
        bad[i]! ^= i % 2 === 0 ? 0x01 : 0x80;
        let code: string | undefined;
        try {
          target.restoreState(bad);
        } catch (e) {
          code = (e as DeviceStateError).code;
        }
        if (code !== 'state.corrupt') expect.fail(`byte ${i} flipped: ${code ?? 'accepted'}`);
      }
      refused(target, (() => { const b = image.slice(); b[image.length >> 1]! ^= 0xff; return b; })(), 'state.corrupt');
      // Intact checksum, impossible contents.
      const core = sectionAt(image, 'CORE');
      const statusAt = core + 4 + 8 + 4 + 2 * 3; // device type, offered, count, three maximum sizes
      const e1 = refused(target, reseal(Object.assign(image.slice(), { [statusAt]: image[statusAt]! | 0x10 })), 'state.corrupt');
      expect(e1.message).to.match(/status/);
      const netf = sectionAt(image, 'NETF');
      const bad2 = image.slice();
      bad2[netf + 1 + 1 + 6 + 2] = 65; // unicast count above the table
      refused(target, reseal(bad2), 'state.corrupt');
      const bad3 = image.slice();
      new DataView(bad3.buffer).setUint32(sectionAt(image, 'NETB') - 4, 0xffff_fff0, true); // a section length past the end
      refused(target, reseal(bad3), 'state.corrupt');
      refused(target, new Uint8Array(image.length), 'state.corrupt'); // zeros: no magic
    });

    it('corrupt_queue_indices_are_refused_with_state_corrupt', () => {
      const p = busy();
      const image = p.a.device.saveState();
      const target = busy().a.device;
      const core = sectionAt(image, 'CORE');
      // Queue records start after identity (4+8+4+3*2), status/isr/gen/iface (1+1+4+1), negotiation (8+1+1).
      const q0 = core + 22 + 7 + 10;
      const running = q0 + 4 + 1 + 24 + 1; // size, ready, words, pending → kind
      expect(image[running]).to.equal(1);
      const bad = image.slice();
      new DataView(bad.buffer).setUint16(running + 1 + 4, (new DataView(image.buffer).getUint16(running + 1, true) + 100) & 0xffff, true); // nextUsed 100 ahead of nextAvail
      refused(target, reseal(bad), 'state.corrupt');
      const mis = image.slice();
      new DataView(mis.buffer).setUint32(q0 + 5, new DataView(image.buffer).getUint32(q0 + 5, true) + 8, true); // descriptor table misaligned
      const e = refused(target, reseal(mis), 'state.corrupt');
      expect(e.message).to.match(/queue\.misaligned/);
    });

    it('truncated_state_bytes_are_refused_with_state_corrupt_and_change_nothing', () => {
      const image = busy().a.device.saveState();
      const target = busy().a.device;
      for (let n = 0; n < image.length; n++) {
        let code: string | undefined;
        try {
          target.restoreState(image.subarray(0, n));
        } catch (e) {
          code = (e as DeviceStateError).code;
        }
        if (code !== 'state.corrupt') expect.fail(`first ${n} bytes: ${code ?? 'accepted'}`);
      }
      refused(target, image.subarray(0, image.length - 1), 'state.corrupt');
      const padded = new Uint8Array(image.length + 1);
      padded.set(image);
      refused(target, padded, 'state.corrupt');
    });

    it('wrong_version_state_bytes_are_refused_with_state_version_and_change_nothing', () => {
      const image = busy().a.device.saveState();
      const target = busy().a.device;
      for (const v of [0, 2, 0xffff]) {
        const bad = image.slice();
        new DataView(bad.buffer).setUint16(4, v, true);
        refused(target, reseal(bad), 'state.version');
      }
      // A required section this version does not know, and a known one in a newer layout.
      refused(target, withSection(image, { tag: 'RSSX', version: 1, required: true, payload: new Uint8Array(4) }), 'state.version');
      const newer = image.slice();
      newer[sectionAt(image, 'NETF') - 8] = 2;
      refused(target, reseal(newer), 'state.version');
      // CORE v1 (held receive chains saved as not popped) is an older layout this version refuses.
      const older = image.slice();
      expect(older[sectionAt(image, 'CORE') - 8]).to.equal(2);
      older[sectionAt(image, 'CORE') - 8] = 1;
      expect(refused(target, reseal(older), 'state.version').message).to.match(/CORE is version 1/);
    });

    it('held_receive_chains_are_checked_like_guest_values', () => {
      const p = new StatePair(MMIO);
      expect(p.init(ALL_FEATURES)).to.equal(true);
      p.postRx(2, 512, 1);
      p.inject(ethFrame(MAC, undefined, { payload: 1500 - 14 }));
      p.consume();
      expect(p.a.device.queues[0]!.inFlight).to.equal(2);
      const image = p.a.device.saveState();
      const netr = sectionAt(image, 'NETR');
      const dv = new DataView(image.buffer);
      expect(dv.getUint16(netr, true), 'count').to.equal(2);
      const [seq0, head0, seq1] = [dv.getUint16(netr + 2, true), dv.getUint16(netr + 4, true), dv.getUint16(netr + 6, true)];
      expect([seq0, seq1]).to.deep.equal([0, 1]);
      // The target: a running device over a copy of the same memory (so the chains walk there).
      const target = (): VirtioNetDevice => {
        const d = busy().a.device;
        const m = new GuestMemory(PAIR_MEMORY);
        m.write(0, p.a.memory.bytes(0, PAIR_MEMORY)!);
        const fresh = new VirtioNetDevice({ id: 'net0', mac: MAC, memory: m, netdev: new HostSide(), queueSize: 32 });
        new VirtioMmioTransport(fresh, { onInterrupt: () => undefined });
        fresh.restoreState(d.saveState());
        return fresh;
      };
      const edit = (fn: (v: DataView) => void): Uint8Array => {
        const b = image.slice();
        fn(new DataView(b.buffer));
        return reseal(b);
      };
      const t = target();
      // A head beyond the ring, the same chain twice in pop order, and fewer chains than in flight.
      expect(refused(t, edit((v) => v.setUint16(netr + 4, 16, true)), 'state.corrupt').message).to.match(/out of range/);
      expect(refused(t, edit((v) => v.setUint16(netr + 6, seq0, true)), 'state.corrupt').message).to.match(/not younger/);
      expect(refused(t, edit((v) => v.setUint16(netr + 2, 2, true)), 'state.corrupt').message).to.match(/not before nextAvail/);
      const one = image.slice(netr, netr + 6);
      one[0] = 1;
      expect(refused(t, withPayload(image, 'NETR', one), 'state.corrupt').message).to.match(/2 chain\(s\) in flight/);
      expect(refused(t, withPayload(image, 'NETR', new Uint8Array(2)), 'state.corrupt').message).to.match(/2 chain\(s\) in flight/);
      // The chain's descriptor rewritten in the target's memory: not a chain there.
      const m2 = new GuestMemory(PAIR_MEMORY);
      m2.write(0, p.a.memory.bytes(0, PAIR_MEMORY)!);
      const ring = p.ring(0)!;
      m2.writeU32(ring.descTable + 16 * head0 + 4, 0x10); // the buffer's address now far outside memory
      const other = new VirtioNetDevice({ id: 'net0', mac: MAC, memory: m2, netdev: new HostSide(), queueSize: 32 });
      new VirtioMmioTransport(other, { onInterrupt: () => undefined });
      expect(refused(other, image, 'state.mismatch').message).to.match(/held chain/);
      // Held chains on a device that did not negotiate MRG_RXBUF (it never holds any).
      const plain = busy(MMIO, ALL_FEATURES & ~features(['MRG_RXBUF'])).a.device.saveState();
      expect(refused(t, withPayload(plain, 'NETR', image.slice(netr, netr + 6)), 'state.corrupt').message).to.match(/without MRG_RXBUF/);
      // The image as saved restores, and the restored device holds the same two chains.
      const ok = target();
      ok.restoreState(image);
      expect(ok.queues[0]!.inFlight).to.equal(2);
    });

    it('saving_from_inside_a_call_out_while_a_chain_is_in_use_is_a_programmer_error', () => {
      const p = new StatePair(MMIO);
      expect(p.init(ALL_FEATURES)).to.equal(true);
      const errors: unknown[] = [];
      p.a.device.on('diagnostic', () => {
        try {
          p.a.device.saveState();
        } catch (e) {
          errors.push(e);
        }
      });
      p.send(0, new Uint8Array(0), 4); // a 4-byte chain: shorter than the header, a driver mistake
      expect(errors).to.have.length(1);
      expect(String(errors[0])).to.match(/saveState: queue 1 has a chain in use/);
      p.a.device.saveState(); // outside the call-out: fine
    });

    it('unknown_optional_sections_are_skipped', () => {
      const p = busy();
      const image = withSection(p.a.device.saveState(), { tag: 'ZZZZ', version: 9, required: false, payload: new Uint8Array([1, 2, 3]) });
      const d = busy().a.device;
      d.restoreState(image);
      expect(d.queryRxFilter()).to.deep.equal(p.a.device.queryRxFilter());
    });

    it('state_from_a_device_with_other_options_is_refused_with_state_mismatch', () => {
      const image = busy().a.device.saveState();
      const other = (o: Partial<ConstructorParameters<typeof VirtioNetDevice>[0]>, legacy?: boolean | 'only'): VirtioNetDevice => {
        const d = new VirtioNetDevice({ id: 'net0', mac: MAC, memory: new GuestMemory(PAIR_MEMORY), netdev: new HostSide(), queueSize: 32, ...o });
        if (legacy === undefined) new VirtioMmioTransport(d, { onInterrupt: () => undefined });
        else if (legacy === 'only') new VirtioPciTransport(d, { onInterrupt: () => undefined, legacy: true, modern: false });
        else new VirtioPciTransport(d, { onInterrupt: () => undefined, legacy });
        return d;
      };
      expect(refused(other({ queuePairs: 2 }), image, 'state.mismatch').message).to.match(/queue pair/);
      expect(refused(other({ id: 'net1' }), image, 'state.mismatch').message).to.match(/net0/);
      expect(refused(other({ features: { disable: ['CTRL_VLAN'] } }), image, 'state.mismatch').message).to.match(/offered features/);
      expect(refused(other({ mtu: 1500 }), image, 'state.mismatch').message).to.match(/mtu/);
      expect(refused(other({ queueSize: 64 }), image, 'state.mismatch').message).to.match(/maximum size/);
      expect(refused(other({}, false), image, 'state.mismatch').message).to.match(/transport/);
      expect(refused(other({}, 'only'), image, 'state.mismatch').message).to.match(/transport/);
      // A backend with a virtio-net header changes the offer too.
      const tap = new MemoryNetdev({ vnetHdr: true });
      refused(other({ netdev: tap }), image, 'state.mismatch');
      // Compatible options restore (compat, strict and the configured MAC are not identity).
      other({ compat: 'qemu', strict: true, mac: '52:54:00:ab:cd:ef' }).restoreState(image);
    });

    it('rings_outside_this_guest_memory_are_refused_with_state_mismatch', () => {
      const image = busy().a.device.saveState();
      // The same options over a memory too small for the saved rings (they are at 0x1000 and up).
      const small = new VirtioNetDevice({ id: 'net0', mac: MAC, memory: new GuestMemory(0x2000), netdev: new HostSide(), queueSize: 32 });
      new VirtioMmioTransport(small, { onInterrupt: () => undefined });
      expect(refused(small, image, 'state.mismatch').message).to.match(/ring-outside-memory/);
      // An address in the state moved past the end of memory, like a guest value would be.
      const target = busy().a.device;
      const core = sectionAt(image, 'CORE');
      const usedHi = core + 22 + 7 + 10 + 4 + 1 + 20; // queue 0's device-area high word
      const bad = image.slice();
      new DataView(bad.buffer).setUint32(usedHi, 1, true);
      expect(refused(target, reseal(bad), 'state.mismatch').message).to.match(/queue 0 cannot run/);
    });

    it('a_non_uint8array_is_a_programmer_error', () => {
      expect(() => busy().a.device.restoreState('state' as unknown as Uint8Array)).to.throw(TypeError);
    });
  });

  describe('after a restore', () => {
    it('the_device_announces_with_virtio_net_s_announce_when_guest_announce_was_negotiated', () => {
      const p = busy();
      expect(p.has('GUEST_ANNOUNCE')).to.equal(true);
      p.a.driver.readIsr(); // nothing pending before the save
      p.restore();
      expect(p.announcedBy).to.equal('status');
      expect(p.announceFrames).to.have.length(0);
      const b = p.b;
      expect(b.driver.readConfig(6, 2) & 2, 'VIRTIO_NET_S_ANNOUNCE').to.equal(2);
      expect(b.irq).to.equal(true);
      expect(b.device.isr & 2, 'config interrupt').to.equal(2);
      p.check('after restore');
      p.ctrl(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK, []);
      expect(b.driver.readConfig(6, 2) & 2, 'cleared by ANNOUNCE_ACK').to.equal(0);
      p.check('after ANNOUNCE_ACK');
    });

    it('the_device_sends_a_gratuitous_arp_from_the_guest_mac_without_guest_announce', () => {
      const p = busy(MMIO, ALL_FEATURES & ~features(['GUEST_ANNOUNCE']));
      p.ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, macBytes('52:54:00:aa:00:01'));
      p.restore();
      expect(p.announcedBy).to.equal('arp');
      expect(p.announceFrames).to.have.length(1);
      const f = p.announceFrames[0]!;
      expect(f.length).to.equal(60);
      expect([...f.subarray(0, 6)]).to.deep.equal([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      expect([...f.subarray(6, 12)]).to.deep.equal(macBytes('52:54:00:aa:00:01'));
      expect([...f.subarray(12, 22)]).to.deep.equal([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]); // ARP, Ethernet/IPv4, request
      expect([...f.subarray(22, 28)]).to.deep.equal(macBytes('52:54:00:aa:00:01')); // sender hardware address
      expect(p.b.driver.readConfig(6, 2) & 2).to.equal(0);
      p.check('after restore');
    });

    it('a_device_whose_link_is_down_sends_no_arp', () => {
      const p = busy(MMIO, ALL_FEATURES & ~features(['GUEST_ANNOUNCE']));
      p.a.device.setLink(false);
      p.restore();
      expect(p.announcedBy).to.equal('none');
      expect(p.b.device.linkUp).to.equal(false);
      p.check('after restore');
    });

    it('frames_held_in_the_rx_backlog_are_delivered_after_restore', () => {
      const p = busy();
      const held = p.a.device.stats().rx.backlog;
      expect(held).to.equal(2);
      p.restore();
      expect(p.b.device.stats().rx.backlog).to.equal(2);
      const ring = p.ring(0)!;
      p.postRx(2, 1526, 1);
      const used = ring.takeUsed();
      expect(used).to.have.length(2);
      // The held frames (payload 62 and 63) arrive in order, on B exactly as on A.
      const payloads = used.map((u) => u.len - 12 - 14);
      expect(payloads).to.deep.equal([62, 63]);
      p.check('after delivery');
      expect(p.b.device.stats().rx.backlog).to.equal(0);
      const s = p.b.device.stats().rx;
      const drops = Object.values(s.drops).reduce((a, b) => a + b, 0);
      expect(s.offered).to.equal(s.frames + drops + s.backlog);
    });

    it('mrg_rxbuf_chains_held_for_a_frame_are_held_again_after_restore', () => {
      const p = new StatePair(MMIO);
      p.init(ALL_FEATURES);
      p.postRx(2, 512, 1); // 1024 bytes: not enough for a 1500-byte frame
      p.inject(ethFrame(MAC, undefined, { payload: 1500 - 14 }));
      p.consume();
      expect(p.a.device.stats().rx.backlog).to.equal(1);
      expect(p.a.device.queues[0]!.inFlight).to.equal(2);
      p.restore();
      expect(p.b.device.queues[0]!.inFlight).to.equal(2);
      p.check('after restore');
      p.postRx(2, 512, 1);
      expect(p.b.device.stats().rx.frames).to.equal(p.a.device.stats().rx.frames);
      p.consume();
      p.check('after the frame');
      expect(p.b.device.stats().rx.backlog).to.equal(0);
    });

    it('mrg_rxbuf_chains_held_for_a_frame_stay_held_across_a_restore', () => {
      // Issue #14's divergence (found by the state property with a random seed): the saved device
      // holds two 12-byte chains popped for frame F and has consumed every available entry, so it
      // drains its backlog only at the next notification. A restore that made those chains
      // available again let the restored device drain at the next host frame instead, dropping F
      // (no longer for this MAC) and the runt behind it one step early.
      const p = new StatePair({ ...MMIO, ringSize: 8 });
      expect(p.init(ALL_FEATURES)).to.equal(true);
      p.inject(ethFrame(MAC, undefined, { payload: 100 })); // F: waits, no buffers yet
      p.inject(new Uint8Array(0)); // a runt behind it
      p.postRx(2, 12, 1); // two header-sized buffers: F takes them and waits for more
      p.consume();
      expect(p.a.device.queues[0]!.inFlight).to.equal(2);
      p.ctrl(CtrlClass.RX, CtrlRx.PROMISC, [0]);
      p.ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, macBytes('52:54:00:aa:00:01')); // F is not for the guest any more
      p.consume();
      expect(p.a.device.stats().rx.backlog).to.equal(2);
      p.restore();
      expect(p.b.device.queues[0]!.inFlight, 'chains held by the restored device').to.equal(2);
      p.check('after restore');
      p.inject(ethFrame('52:54:00:aa:00:01', undefined, { payload: 46 }));
      p.consume();
      p.check('after a host frame');
      expect(p.a.device.stats().rx.backlog).to.equal(3);
      p.postRx(6, 12, 1); // the notification: F and the runt are dropped now, on both
      p.consume();
      p.check('after more buffers');
      expect(p.b.device.stats().rx.drops.unicast).to.equal(1);
      expect(p.b.device.stats().rx.drops.runt).to.equal(1);
    });

    it('a_held_chain_older_than_a_chain_already_used_stays_held_after_restore', () => {
      // The held chain is not the most recent pop: a buffer shorter than the header came after it
      // and went straight back (used, length 0). Rewinding nextAvail over "the last inFlight pops"
      // (the first format) would have re-popped that used chain and lost the held one.
      const p = new StatePair({ ...MMIO, ringSize: 8 });
      expect(p.init(ALL_FEATURES)).to.equal(true);
      p.postRx(1, 12, 1);
      p.inject(ethFrame(MAC)); // 72 bytes with the header: takes the 12-byte chain, waits for 5 more
      p.postRx(1, 4, 1); // shorter than the header: returned unused
      p.consume();
      const q = p.a.device.queues[0] as SplitQueue; // the rig runs split rings
      expect([q.inFlight, q.nextAvail, q.nextUsed]).to.deep.equal([1, 2, 1]);
      expect(p.a.device.stats().rx.shortBuffers).to.equal(1);
      p.restore();
      expect(p.b.device.queues[0]!.inFlight).to.equal(1);
      p.check('after restore');
      p.postRx(5, 12, 1);
      p.consume();
      p.check('after more buffers');
      expect(p.b.device.stats().rx.frames).to.equal(1);
    });

    describe('over packed rings (held lists saved as popped, like split rings)', () => {
      const PACKED: PairSetup = { ...MMIO, ringSize: 8, ring: 'packed' };

      it('mrg_rxbuf_lists_held_for_a_frame_stay_held_across_a_restore', () => {
        // The split case above on a packed receiveq1: the restored device holds the two lists the
        // saved one held (it does not pop them again), so it drops F and the runt at the same
        // notification as the saved device, not at the next host frame.
        const p = new StatePair(PACKED);
        expect(p.init(ALL_FEATURES)).to.equal(true);
        expect(p.a.device.queues[0]).to.be.instanceOf(PackedQueue);
        p.inject(ethFrame(MAC, undefined, { payload: 100 }));
        p.inject(new Uint8Array(0));
        p.postRx(2, 12, 1);
        p.consume();
        expect(p.a.device.queues[0]!.inFlight).to.equal(2);
        p.ctrl(CtrlClass.RX, CtrlRx.PROMISC, [0]);
        p.ctrl(CtrlClass.MAC, CtrlMac.ADDR_SET, macBytes('52:54:00:aa:00:01'));
        p.consume();
        expect(p.a.device.stats().rx.backlog).to.equal(2);
        const image = p.a.device.saveState();
        const netr = sectionAt(image, 'NETR');
        expect(new DataView(image.buffer).getUint16(netr, true), 'lists listed in NETR').to.equal(2);
        p.restore();
        const qa = p.a.device.queues[0] as PackedQueue;
        const qb = p.b.device.queues[0] as PackedQueue;
        expect([qb.inFlight, qb.nextAvail, qb.nextUsed], 'restored positions and lists held').to.deep.equal([2, qa.nextAvail, qa.nextUsed]);
        p.check('after restore');
        p.inject(ethFrame('52:54:00:aa:00:01', undefined, { payload: 46 }));
        p.consume();
        p.check('after a host frame');
        expect(p.a.device.stats().rx.backlog).to.equal(3);
        p.postRx(5, 12, 1);
        p.consume();
        p.check('after more buffers');
        expect(p.b.device.stats().rx.drops.unicast).to.equal(1);
        expect(p.b.device.stats().rx.drops.runt).to.equal(1);
      });

      it('a_held_list_older_than_a_used_one_stays_held_though_its_ring_slot_was_overwritten', () => {
        // Out-of-order completion: list A (12 bytes) is held for a frame; list B (4 bytes, shorter
        // than the header) came after it and went straight back. B's used descriptor is written at
        // the next used position — A's ring slot — so the ring no longer describes A: the state
        // carries A's list, and the restored device holds A and completes it after B, as the saved one.
        const p = new StatePair(PACKED);
        expect(p.init(ALL_FEATURES)).to.equal(true);
        p.postRx(1, 12, 1);
        p.inject(ethFrame(MAC));
        p.postRx(1, 4, 1);
        p.consume();
        const q = p.a.device.queues[0] as PackedQueue;
        const first = firstPosition(q.size);
        expect([q.inFlight, positionDistance(first, q.nextAvail, q.size), positionDistance(first, q.nextUsed, q.size)]).to.deep.equal([1, 2, 1]);
        const ring = p.ring(0) as PackedDriverRing;
        const slotA = ring.descAddr(0);
        // A's slot now holds B's used descriptor (B's Buffer ID, not A's).
        const image = p.a.device.saveState();
        const netr = sectionAt(image, 'NETR');
        const dv = new DataView(image.buffer);
        const idA = dv.getUint16(netr + 4, true);
        expect(positionOffset(dv.getUint16(netr + 2, true), q.size), 'A was popped at offset 0').to.equal(0);
        expect(p.a.memory.readU16(slotA + 12), 'the ID in A\'s ring slot').to.not.equal(idA);
        p.restore();
        expect(p.b.device.queues[0]!.inFlight).to.equal(1);
        p.check('after restore');
        p.postRx(5, 12, 1);
        p.consume();
        p.check('after more buffers');
        expect(p.b.device.stats().rx.frames).to.equal(1);
        expect(p.b.device.queues[0]!.inFlight).to.equal(0);
      });

      it('out_of_order_completion_goes_on_across_a_save_with_the_ring_wrapped_under_a_held_list', () => {
        // A is held while the driver keeps adding lists and the device completes them: the ring
        // wraps (twice its size of lists) with A still held, its slot long reused. Saved then, the
        // restored device completes A, and both go on alike.
        const p = new StatePair(PACKED);
        expect(p.init(ALL_FEATURES)).to.equal(true);
        p.postRx(1, 12, 1);
        p.inject(ethFrame(MAC)); // A held, waiting
        for (let i = 0; i < 4; i++) {
          p.postRx(4, 4, 1); // each shorter than the header: used at once, ahead of A
          p.consume();
        }
        const q = p.a.device.queues[0] as PackedQueue;
        expect(q.inFlight).to.equal(1);
        expect(p.a.device.stats().rx.shortBuffers).to.equal(16);
        // 17 descriptors popped on a ring of 8: positions (offset and wrap counter) run modulo 16.
        expect(positionDistance(firstPosition(q.size), q.nextAvail, q.size), 'the ring wrapped').to.equal(17 % (2 * q.size));
        p.restore();
        expect(p.b.device.queues[0]!.inFlight).to.equal(1);
        p.check('after restore');
        p.postRx(2, 4, 1);
        p.consume();
        p.check('after more short buffers');
        p.postRx(5, 12, 1);
        p.consume();
        p.check('after the buffers the frame needs');
        expect(p.b.device.stats().rx.frames).to.equal(1);
      });

      it('held_lists_are_checked_like_guest_values', () => {
        const p = new StatePair(PACKED);
        expect(p.init(ALL_FEATURES)).to.equal(true);
        p.postRx(2, 512, 1);
        p.inject(ethFrame(MAC, undefined, { payload: 1500 - 14 }));
        p.consume();
        expect(p.a.device.queues[0]!.inFlight).to.equal(2);
        const image = p.a.device.saveState();
        const netr = sectionAt(image, 'NETR');
        const dv = new DataView(image.buffer);
        // Each record: position, Buffer ID, ring descriptors, descriptors, indirect, buffer count,
        // then each buffer (address u64, length u32, writable u8).
        expect(dv.getUint16(netr, true), 'count').to.equal(2);
        const rec0 = netr + 2;
        expect([dv.getUint16(rec0 + 4, true), dv.getUint16(rec0 + 6, true), image[rec0 + 8], dv.getUint16(rec0 + 9, true)]).to.deep.equal([1, 1, 0, 1]);
        expect([dv.getUint32(rec0 + 19, true), image[rec0 + 23]]).to.deep.equal([512, 1]);
        const rec1 = rec0 + 11 + 13;
        const target = (memory?: GuestMemory): VirtioNetDevice => {
          const m = memory ?? new GuestMemory(PAIR_MEMORY);
          if (memory === undefined) m.write(0, p.a.memory.bytes(0, PAIR_MEMORY)!);
          const fresh = new VirtioNetDevice({ id: 'net0', mac: MAC, memory: m, netdev: new HostSide(), queueSize: 32 });
          new VirtioMmioTransport(fresh, { onInterrupt: () => undefined });
          return fresh;
        };
        const edit = (fn: (v: DataView) => void): Uint8Array => {
          const b = image.slice();
          fn(new DataView(b.buffer));
          return reseal(b);
        };
        const t = target();
        expect(refused(t, edit((v) => v.setUint16(rec1 + 2, dv.getUint16(rec0 + 2, true), true)), 'state.corrupt').message).to.match(/held twice/);
        expect(refused(t, edit((v) => v.setUint16(rec0 + 4, 0, true)), 'state.corrupt').message).to.match(/takes 0 ring descriptors/);
        expect(refused(t, edit((v) => v.setUint16(rec0 + 4, 9, true)), 'state.corrupt').message).to.match(/takes 9 ring descriptors/);
        expect(refused(t, edit((v) => v.setUint16(rec0 + 6, 2, true)), 'state.corrupt').message).to.match(/2 descriptors in 1 ring/);
        expect(refused(t, edit((v) => v.setUint16(rec0, 16, true)), 'state.corrupt').message).to.match(/not a position/);
        expect(refused(t, edit((v) => v.setUint32(rec0 + 19, 0, true)), 'state.corrupt').message).to.match(/not a buffer/);
        expect(refused(t, edit((v) => {
          v.setUint8(rec0 + 8, 1);
          v.setUint16(rec0 + 4, 2, true);
        }), 'state.corrupt').message).to.match(/is indirect but takes 2 ring descriptors/);
        // Both lists 2 descriptors long: more than the 2 in flight.
        expect(refused(t, edit((v) => {
          v.setUint16(rec0 + 4, 2, true);
          v.setUint16(rec0 + 6, 2, true);
        }), 'state.corrupt').message).to.match(/more than the 2 descriptors in flight/);
        // One list where two are in flight.
        const one = image.slice(netr, rec1);
        one[0] = 1;
        expect(refused(t, withPayload(image, 'NETR', one), 'state.corrupt').message).to.match(/2 descriptor\(s\) in flight/);
        expect(refused(t, withPayload(image, 'NETR', new Uint8Array(2)), 'state.corrupt').message).to.match(/2 descriptor\(s\) in flight/);
        // A record cut short.
        expect(refused(t, withPayload(image, 'NETR', image.slice(netr, rec1 - 1)), 'state.corrupt'));
        // A buffer past the end of this memory: intact state, other memory.
        expect(refused(t, edit((v) => v.setUint32(rec0 + 11, PAIR_MEMORY - 8, true)), 'state.mismatch').message).to.match(/held chain \d+ is not a valid chain in this memory \(packed.region-outside-memory\)/);
        // The image as saved restores into a memory whose ring slots say nothing of the lists.
        const blank = new GuestMemory(PAIR_MEMORY);
        blank.write(0, p.a.memory.bytes(0, PAIR_MEMORY)!);
        const ring = p.ring(0) as PackedDriverRing;
        for (let i = 0; i < 2; i++) blank.write(ring.descAddr(i), new Uint8Array(16));
        const ok = target(blank);
        ok.restoreState(image);
        expect(ok.queues[0]!.inFlight).to.equal(2);
        // ... and saves them as they were saved (the rest of its image moved on: it announced itself).
        const again = ok.saveState();
        const at = sectionAt(again, 'NETR');
        expect(Buffer.from(again.subarray(at, at + rec1 + 24 - netr)).equals(Buffer.from(image.subarray(netr, rec1 + 24))), 'NETR saved again').to.equal(true);
      });
    });

    it('pci_configuration_and_select_registers_come_back', () => {
      const p = busy({ ...MMIO, transport: 'pci' });
      const t = p.a.transport as VirtioPciTransport;
      t.configWrite(0x3c, 1, 11); // interrupt line
      p.restore();
      const u = p.b.transport as VirtioPciTransport;
      for (const off of [0x04, 0x10, 0x3c]) expect(u.configRead(off, 4), `config 0x${off.toString(16)}`).to.equal(t.configRead(off, 4));
      const common = u.bars()[0]!;
      expect(common.address).to.equal(t.bars()[0]!.address);
      p.check('after restore');
    });
  });
});
