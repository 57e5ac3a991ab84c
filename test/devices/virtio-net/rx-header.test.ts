// The virtio-net header the backend hands over with a received frame (VIRTIO 1.2 §5.1.6.4 device
// requirements), issue #13 items 1 and 2: the device delivers only what the driver accepts now —
// no NEEDS_CSUM / DATA_VALID without GUEST_CSUM (the checksum is completed instead), no GSO type
// without its GUEST_* offload, no offsets outside the frame — and never acks GUEST_OFFLOADS_SET OK
// when the host refused the offloads. Bad host headers are dropped and counted, never recorded as
// the driver's mistakes. Run with and without MRG_RXBUF, with the 12-byte (VERSION_1 / MRG_RXBUF)
// and the 10-byte (legacy without MRG_RXBUF) header, and with a 10- and a 12-byte backend header.

import { expect } from 'chai';
import { NetRig } from '../../support/net-rig.js';
import { hdr, type HeaderFields } from '../../support/vnet-hdr.js';
import type { RigTransport } from '../../support/net-rig.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { buildFrame } from '../../../lib/packet/build.js';
import { foldSum, pseudoHeaderSum } from '../../../lib/packet/checksum.js';
import { newPacketInfo, parsePacket } from '../../../lib/packet/parse.js';
import { CtrlAck, CtrlClass, CtrlGuestOffloads, NetFeature, VnetHdrFlag, VnetHdrGso, featureMask } from '../../../devices/virtio-net/constants.js';
import type { FeatureName } from '../../../devices/virtio-net/constants.js';

const MAIN = '52:54:00:12:34:56';
const NEEDS_RESET = 0x40;

function readHdr(b: Uint8Array): Required<HeaderFields> {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  return {
    flags: b[0]!,
    gso: b[1]!,
    hdrLen: dv.getUint16(2, true),
    gsoSize: dv.getUint16(4, true),
    csumStart: dv.getUint16(6, true),
    csumOffset: dv.getUint16(8, true),
    numBuffers: b.length >= 12 ? dv.getUint16(10, true) : 1,
  };
}

interface Partial {
  /** The frame as a host with checksum offload hands it over: the field holds the pseudo-header sum. */
  partial: Uint8Array;
  /** The same frame fully checksummed. */
  complete: Uint8Array;
  csumStart: number;
  csumOffset: number;
  l4Offset: number;
}

/** A TCP or UDP frame to the guest with its transport checksum left partial (CHECKSUM_PARTIAL). */
function partialFrame(protocol: 'tcp' | 'udp', payloadLen = 64, v6 = false): Partial {
  const payload = new Uint8Array(payloadLen);
  for (let i = 0; i < payloadLen; i++) payload[i] = (i * 7 + 3) & 0xff;
  const complete = buildFrame({
    dstMac: MAIN,
    src: v6 ? 'fd00::1' : '10.0.0.1',
    dst: v6 ? 'fd00::2' : '10.0.0.2',
    protocol,
    srcPort: 4000,
    dstPort: 5000,
    payload,
  });
  const info = newPacketInfo();
  expect(parsePacket(complete, info)).to.equal('ip');
  const csumOffset = protocol === 'tcp' ? 16 : 6;
  const at = info.l4Offset + csumOffset;
  const partial = complete.slice();
  const seed = foldSum(pseudoHeaderSum(partial, info));
  partial[at] = seed >>> 8;
  partial[at + 1] = seed & 0xff;
  expect([...partial]).to.not.deep.equal([...complete]);
  return { partial, complete, csumStart: info.l4Offset, csumOffset, l4Offset: info.l4Offset };
}

interface Combo {
  transport: RigTransport;
  mrg: boolean;
  /** Length of the header the backend hands over. */
  backendHdr: 10 | 12;
}

const COMBOS: Combo[] = [];
for (const transport of ['mmio', 'pci-legacy'] as const) {
  for (const mrg of [false, true]) {
    for (const backendHdr of [10, 12] as const) COMBOS.push({ transport, mrg, backendHdr });
  }
}

function comboName(c: Combo): string {
  return `${c.transport}${c.mrg ? '+mrg' : ''} backend-hdr-${c.backendHdr}`;
}

function rigWith(c: { transport?: RigTransport; mrg?: boolean }, disable: FeatureName[] = []): NetRig {
  const d = [...disable];
  if (c.mrg === false) d.push('MRG_RXBUF');
  const rig = new NetRig({ transport: c.transport ?? 'mmio', mac: MAIN, netdev: new MemoryNetdev({ id: 'net0', vnetHdr: true }), features: { disable: d } });
  expect(rig.init!.ok, 'initialisation').to.equal(true);
  return rig;
}

/** The used ring, status, counters and diagnostics after a host-header drop; then a good frame still gets through. */
function expectDroppedAndCounted(rig: NetRig, reason: string, count = 1): void {
  expect(rig.rx.takeUsed(), 'a dropped frame uses no buffer').to.deep.equal([]);
  const s = rig.device.stats();
  expect((s.rx.drops as Record<string, number>)[reason], `rx.drops['${reason}']`).to.equal(count);
  expect(s.rx.frames).to.equal(0);
  expect(s.rx.offered, 'offered = frames + drops + backlog').to.equal(s.rx.frames + Object.values(s.rx.drops).reduce((a, b) => a + b, 0) + s.rx.backlog);
  expect(rig.device.diagnostics(), 'host input is not a driver mistake').to.deep.equal([]);
  expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
  const good = partialFrame('udp').complete;
  rig.inject(good, hdr({}, rig.hdrLen === 10 ? 10 : 12));
  const got = rig.received();
  expect(got.map((g) => [...g.frame]), 'the same device delivers a good frame afterwards').to.deep.equal([[...good]]);
}

const ZERO_CSUM_FIELDS = { flags: 0, csumStart: 0, csumOffset: 0 };

describe('devices/virtio-net rx header from the host (§5.1.6.4)', () => {
  for (const c of COMBOS) {
    describe(comboName(c), () => {
      for (const protocol of ['tcp', 'udp'] as const) {
        it(`rx_needs_csum_without_guest_csum_is_delivered_checksummed_with_flags_zero (${protocol})`, () => {
          const rig = rigWith(c, ['GUEST_CSUM']);
          expect(rig.has('GUEST_CSUM')).to.equal(false);
          rig.postRx(4, 2048);
          const p = partialFrame(protocol);
          const h = hdr({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.csumStart, csumOffset: p.csumOffset, hdrLen: 0, numBuffers: 7 }, c.backendHdr);
          rig.inject(p.partial, h);
          const got = rig.received();
          expect(got).to.have.length(1);
          expect([...got[0]!.frame], 'the guest gets the frame fully checksummed').to.deep.equal([...p.complete]);
          expect(readHdr(got[0]!.header)).to.deep.include({ ...ZERO_CSUM_FIELDS, gso: 0, numBuffers: 1 });
          expect(got[0]!.header.length).to.equal(rig.hdrLen);
          const s = rig.device.stats();
          expect(s.rx.csumCompleted).to.equal(1);
          expect(Object.values(s.rx.drops).reduce((a, b) => a + b, 0)).to.equal(0);
          expect(rig.device.diagnostics()).to.deep.equal([]);
        });
      }

      // With MRG_RXBUF only: without it a frame takes one buffer.
      if (c.mrg) it('rx_needs_csum_without_guest_csum_is_completed_where_the_field_spans_two_merged_buffers', () => {
        const rig = rigWith(c, ['GUEST_CSUM']);
        const p = partialFrame('tcp', 200);
        const field = p.csumStart + p.csumOffset; // frame offset of the checksum's first byte
        // First buffer: the header and the frame up to and including the field's first byte.
        rig.postRx(8, rig.hdrLen + field + 1);
        rig.inject(p.partial, hdr({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.csumStart, csumOffset: p.csumOffset }, c.backendHdr));
        const got = rig.received();
        expect(got).to.have.length(1);
        expect(got[0]!.numBuffers).to.be.greaterThan(1);
        expect([...got[0]!.frame]).to.deep.equal([...p.complete]);
        expect(readHdr(got[0]!.header)).to.deep.include(ZERO_CSUM_FIELDS);
      });

      it('rx_data_valid_without_guest_csum_is_delivered_with_flags_zero', () => {
        const rig = rigWith(c, ['GUEST_CSUM']);
        rig.postRx(2, 2048);
        const f = partialFrame('udp').complete;
        rig.inject(f, hdr({ flags: VnetHdrFlag.DATA_VALID }, c.backendHdr));
        const got = rig.received();
        expect([...got[0]!.frame]).to.deep.equal([...f]);
        expect(readHdr(got[0]!.header).flags).to.equal(0);
        expect(rig.device.stats().rx.csumCompleted).to.equal(0);
      });

      it('rx_needs_csum_and_data_valid_with_guest_csum_are_passed_to_the_guest_as_the_host_set_them', () => {
        const rig = rigWith(c);
        expect(rig.has('GUEST_CSUM')).to.equal(true);
        rig.postRx(2, 2048);
        const p = partialFrame('tcp');
        rig.inject(p.partial, hdr({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.csumStart, csumOffset: p.csumOffset, numBuffers: 9 }, c.backendHdr));
        rig.inject(p.complete, hdr({ flags: VnetHdrFlag.DATA_VALID }, c.backendHdr));
        const got = rig.received();
        expect([...got[0]!.frame], 'the partial checksum is the guest\'s to complete').to.deep.equal([...p.partial]);
        expect(readHdr(got[0]!.header)).to.deep.include({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.csumStart, csumOffset: p.csumOffset, numBuffers: 1 });
        expect(readHdr(got[1]!.header)).to.deep.include({ flags: VnetHdrFlag.DATA_VALID });
        expect(rig.device.stats().rx.csumCompleted).to.equal(0);
      });

      it('rx_gso_frame_without_guest_tso4_is_dropped_and_counted', () => {
        const rig = rigWith(c, ['GUEST_TSO4']);
        expect(rig.has('GUEST_CSUM')).to.equal(true);
        rig.postRx(2, 2048);
        const p = partialFrame('tcp', 1400);
        rig.inject(p.partial, hdr({ flags: VnetHdrFlag.NEEDS_CSUM, gso: VnetHdrGso.TCPV4, gsoSize: 700, hdrLen: p.l4Offset + 20, csumStart: p.csumStart, csumOffset: p.csumOffset }, c.backendHdr));
        expectDroppedAndCounted(rig, 'gso-not-negotiated');
      });

      it('rx_gso_frame_without_guest_tso4_and_no_buffer_posted_waits_then_is_dropped_and_counted', () => {
        const rig = rigWith(c, ['GUEST_TSO4']);
        const p = partialFrame('tcp', 1400);
        rig.inject(p.partial, hdr({ flags: VnetHdrFlag.NEEDS_CSUM, gso: VnetHdrGso.TCPV4, gsoSize: 700, hdrLen: p.l4Offset + 20, csumStart: p.csumStart, csumOffset: p.csumOffset }, c.backendHdr));
        expect(rig.device.stats().rx.backlog, 'no buffer: it waits').to.equal(1);
        expect(rig.device.stats().rx.drops['gso-not-negotiated']).to.equal(0);
        rig.postRx(2, 2048);
        expect(rig.device.stats().rx.backlog).to.equal(0);
        expectDroppedAndCounted(rig, 'gso-not-negotiated');
      });

      it('rx_gso_frame_with_guest_tso4_is_delivered_with_its_gso_fields', () => {
        const rig = rigWith(c);
        expect(rig.has('GUEST_TSO4')).to.equal(true);
        rig.postRx(2, 2048);
        const p = partialFrame('tcp', 1400);
        const fields = { flags: VnetHdrFlag.NEEDS_CSUM, gso: VnetHdrGso.TCPV4, gsoSize: 700, hdrLen: p.l4Offset + 20, csumStart: p.csumStart, csumOffset: p.csumOffset };
        rig.inject(p.partial, hdr(fields, c.backendHdr));
        const got = rig.received();
        expect([...got[0]!.frame]).to.deep.equal([...p.partial]);
        expect(readHdr(got[0]!.header)).to.deep.include({ ...fields, numBuffers: 1 });
      });
    });
  }

  describe('GSO types and the offloads in effect', () => {
    const p4 = partialFrame('tcp', 1400);
    const p6 = partialFrame('tcp', 1400, true);
    const u4 = partialFrame('udp', 1400);
    const gsoHeader = (p: Partial, gso: number): Uint8Array =>
      hdr({ flags: VnetHdrFlag.NEEDS_CSUM, gso, gsoSize: 700, hdrLen: p.l4Offset + 8, csumStart: p.csumStart, csumOffset: p.csumOffset });

    it('rx_gso_tcpv6_frame_without_guest_tso6_is_dropped_and_counted', () => {
      const rig = rigWith({}, ['GUEST_TSO6']);
      rig.postRx(2, 2048);
      rig.inject(p6.partial, gsoHeader(p6, VnetHdrGso.TCPV6));
      expectDroppedAndCounted(rig, 'gso-not-negotiated');
    });

    it('rx_gso_udp_frame_without_guest_ufo_is_dropped_and_counted', () => {
      const rig = rigWith({}, ['GUEST_UFO']);
      rig.postRx(2, 2048);
      rig.inject(u4.partial, gsoHeader(u4, VnetHdrGso.UDP));
      expectDroppedAndCounted(rig, 'gso-not-negotiated');
    });

    it('rx_gso_frame_with_the_ecn_bit_without_guest_ecn_is_dropped_and_counted', () => {
      const rig = rigWith({}, ['GUEST_ECN']);
      expect(rig.has('GUEST_TSO4')).to.equal(true);
      rig.postRx(2, 2048);
      rig.inject(p4.partial, gsoHeader(p4, VnetHdrGso.TCPV4 | VnetHdrGso.ECN));
      expectDroppedAndCounted(rig, 'gso-not-negotiated');
    });

    it('rx_gso_udp_l4_frame_without_guest_uso_is_dropped_and_counted', () => {
      const rig = rigWith({});
      expect(rig.has('GUEST_USO4') || rig.has('GUEST_USO6')).to.equal(false); // off by default
      rig.postRx(2, 2048);
      rig.inject(u4.partial, gsoHeader(u4, VnetHdrGso.UDP_L4));
      expectDroppedAndCounted(rig, 'gso-not-negotiated');
    });

    it('rx_gso_udp_l4_frame_with_guest_uso_reaches_the_guest_with_its_header', () => {
      for (const uso of ['GUEST_USO4', 'GUEST_USO6'] as const) {
        const rig = new NetRig({ mac: MAIN, netdev: new MemoryNetdev({ id: 'net0', vnetHdr: true }), features: { enable: [uso] } });
        expect(rig.has(uso)).to.equal(true);
        rig.postRx(2, 2048);
        const h = gsoHeader(u4, VnetHdrGso.UDP_L4);
        expect(rig.inject(u4.partial, h)).to.equal(true);
        const got = rig.received();
        expect(got, uso).to.have.length(1);
        expect([...got[0]!.header.subarray(0, 10)]).to.deep.equal([...h.subarray(0, 10)]);
        expect([...got[0]!.frame]).to.deep.equal([...u4.partial]);
        // GUEST_OFFLOADS_SET without USO: the next one is dropped.
        expect(rig.cmd(5, 0, [2, 0, 0, 0, 0, 0, 0, 0])).to.equal(0);
        rig.inject(u4.partial, h);
        expect(rig.device.stats().rx.drops['gso-not-negotiated']).to.equal(1);
      }
    });

    it('rx_gso_frame_without_any_guest_offload_is_dropped_and_counted', () => {
      const rig = rigWith({}, ['GUEST_CSUM']);
      expect(rig.has('GUEST_TSO4')).to.equal(false);
      rig.postRx(2, 2048);
      rig.inject(p4.partial, gsoHeader(p4, VnetHdrGso.TCPV4));
      expectDroppedAndCounted(rig, 'gso-not-negotiated');
    });

    it('rx_gso_frame_after_guest_offloads_set_turned_tso4_off_is_dropped_and_counted', () => {
      const rig = rigWith({});
      rig.postRx(2, 2048);
      rig.inject(p4.partial, gsoHeader(p4, VnetHdrGso.TCPV4));
      expect(rig.received()).to.have.length(1);
      const onlyCsum = le64(featureMask(NetFeature.GUEST_CSUM));
      expect(rig.cmd(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, onlyCsum)).to.equal(CtrlAck.OK);
      rig.postRx(1, 2048);
      rig.inject(p4.partial, gsoHeader(p4, VnetHdrGso.TCPV4));
      expect(rig.rx.takeUsed()).to.deep.equal([]);
      expect(rig.device.stats().rx.drops['gso-not-negotiated']).to.equal(1);
    });

    it('rx_needs_csum_after_guest_offloads_set_turned_csum_off_is_completed_at_delivery_also_for_a_held_frame', () => {
      const rig = rigWith({});
      const p = partialFrame('udp');
      const h = hdr({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.csumStart, csumOffset: p.csumOffset });
      rig.inject(p.partial, h); // no buffers yet: held in the backlog
      expect(rig.device.stats().rx.backlog).to.equal(1);
      expect(rig.cmd(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(0n))).to.equal(CtrlAck.OK);
      rig.postRx(2, 2048);
      const got = rig.received();
      expect([...got[0]!.frame]).to.deep.equal([...p.complete]);
      expect(readHdr(got[0]!.header)).to.deep.include(ZERO_CSUM_FIELDS);
    });
  });

  describe('headers that break §5.1.6.4 whatever was negotiated', () => {
    const p = partialFrame('tcp', 100);
    for (const guestCsum of [true, false]) {
      const disable: FeatureName[] = guestCsum ? [] : ['GUEST_CSUM'];
      const suffix = guestCsum ? 'with_guest_csum' : 'without_guest_csum';

      it(`rx_bad_csum_start_from_the_host_is_dropped_and_counted_${suffix}`, () => {
        const rig = rigWith({}, disable);
        rig.postRx(2, 2048);
        rig.inject(p.partial, hdr({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.partial.length, csumOffset: 0 }));
        expectDroppedAndCounted(rig, 'csum-out-of-frame');
      });

      it(`rx_csum_offset_past_the_end_of_the_frame_is_dropped_and_counted_${suffix}`, () => {
        const rig = rigWith({}, disable);
        rig.postRx(2, 2048);
        // The 2-byte field would start at the last byte of the frame.
        rig.inject(p.partial, hdr({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.csumStart, csumOffset: p.partial.length - 1 - p.csumStart }));
        expectDroppedAndCounted(rig, 'csum-out-of-frame');
      });
    }

    const malformed: [string, HeaderFields | Uint8Array][] = [
      ['gso_without_needs_csum', { gso: VnetHdrGso.TCPV4, gsoSize: 700, hdrLen: 54 }],
      ['gso_with_gso_size_zero', { flags: VnetHdrFlag.NEEDS_CSUM, gso: VnetHdrGso.TCPV4, gsoSize: 0, hdrLen: 54, csumStart: p.csumStart, csumOffset: p.csumOffset }],
      ['gso_with_hdr_len_past_the_frame', { flags: VnetHdrFlag.NEEDS_CSUM, gso: VnetHdrGso.TCPV4, gsoSize: 700, hdrLen: p.partial.length + 1, csumStart: p.csumStart, csumOffset: p.csumOffset }],
      ['unknown_gso_type', { flags: VnetHdrFlag.NEEDS_CSUM, gso: 2, gsoSize: 700, hdrLen: 54, csumStart: p.csumStart, csumOffset: p.csumOffset }],
      ['ecn_bit_without_a_gso_type', { gso: VnetHdrGso.ECN }],
      ['rsc_info_flag_without_rsc_ext', { flags: VnetHdrFlag.RSC_INFO }],
      ['unknown_flag_bit', { flags: 0x80 }],
      ['header_shorter_than_struct_virtio_net_hdr', Uint8Array.of(0, 0, 0, 0)],
    ];
    for (const [what, h] of malformed) {
      it(`rx_host_header_with_${what}_is_dropped_and_counted`, () => {
        const rig = rigWith({});
        rig.postRx(2, 2048);
        rig.inject(p.partial, h instanceof Uint8Array ? h : hdr(h));
        expectDroppedAndCounted(rig, 'header-malformed');
      });
    }
  });

  it('a_backend_without_vnet_header_delivers_zero_headers_with_num_buffers_set', () => {
    const rig = new NetRig({ mac: MAIN, netdev: new MemoryNetdev({ id: 'net0' }) });
    expect(rig.has('GUEST_CSUM')).to.equal(false);
    rig.postRx(1, 2048);
    const f = partialFrame('udp').complete;
    rig.inject(f);
    const got = rig.received();
    expect([...got[0]!.header]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    expect([...got[0]!.frame]).to.deep.equal([...f]);
  });

  describe('GUEST_OFFLOADS_SET and the host (§5.1.6.5.8)', () => {
    it('guest_offloads_set_refused_by_the_host_is_acked_err_and_keeps_the_previous_offloads', () => {
      const netdev = new MemoryNetdev({ id: 'net0', vnetHdr: true });
      const rig = new NetRig({ mac: MAIN, netdev });
      expect(netdev.offloads).to.deep.equal({ csum: true, tso4: true, tso6: true, ecn: true, ufo: true });
      netdev.refuseOffloads(true);
      const before = rig.device.stats().ctrl;
      expect(rig.cmd(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(featureMask(NetFeature.GUEST_CSUM)))).to.equal(CtrlAck.ERR);
      expect(rig.device.stats().ctrl.byClass['guest-offloads']).to.deep.equal({ ok: before.byClass['guest-offloads']?.ok ?? 0, err: 1 });
      expect(netdev.offloads, 'the host still has the previous offloads').to.deep.include({ tso4: true });
      expect(rig.device.diagnostics(), 'a host refusal is not a driver mistake').to.deep.equal([]);
      // The device keeps the previous offloads too: a TSO4 frame is still the guest's.
      rig.postRx(2, 2048);
      const p = partialFrame('tcp', 1400);
      const tso = hdr({ flags: VnetHdrFlag.NEEDS_CSUM, gso: VnetHdrGso.TCPV4, gsoSize: 700, hdrLen: p.l4Offset + 20, csumStart: p.csumStart, csumOffset: p.csumOffset });
      rig.inject(p.partial, tso);
      expect(rig.received()).to.have.length(1);
      // Once the host takes it, the command is acked OK and the device enforces it.
      netdev.refuseOffloads(false);
      expect(rig.cmd(CtrlClass.GUEST_OFFLOADS, CtrlGuestOffloads.SET, le64(featureMask(NetFeature.GUEST_CSUM)))).to.equal(CtrlAck.OK);
      expect(netdev.offloads).to.deep.equal({ csum: true, tso4: false, tso6: false, ecn: false, ufo: false });
      rig.inject(p.partial, tso);
      expect(rig.rx.takeUsed()).to.deep.equal([]);
      expect(rig.device.stats().rx.drops['gso-not-negotiated']).to.equal(1);
    });

    it('offloads_the_host_refused_at_driver_ok_are_enforced_by_the_device', () => {
      const netdev = new MemoryNetdev({ id: 'net0', vnetHdr: true });
      netdev.refuseOffloads(true); // the host keeps sending checksum-offloaded frames
      const rig = new NetRig({ mac: MAIN, netdev, features: { disable: ['GUEST_CSUM'] } });
      expect(rig.init!.ok).to.equal(true);
      expect(netdev.offloads).to.equal(null);
      rig.postRx(1, 2048);
      const p = partialFrame('tcp');
      rig.inject(p.partial, hdr({ flags: VnetHdrFlag.NEEDS_CSUM, csumStart: p.csumStart, csumOffset: p.csumOffset }));
      const got = rig.received();
      expect([...got[0]!.frame]).to.deep.equal([...p.complete]);
      expect(readHdr(got[0]!.header).flags).to.equal(0);
    });
  });
});

function le64(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((v >> (8n * i)) & 0xffn));
  return out;
}
