// The TX and RX datapath of the assembled device (VIRTIO 1.2 §5.1.6.2 transmission, §5.1.6.3 /
// §5.1.6.4 reception) under every relevant feature combination — MRG_RXBUF, EVENT_IDX,
// INDIRECT_DESC on and off — over the MMIO, modern PCI and legacy PCI transports, and on MMIO and
// modern PCI over split and packed rings (§2.7, §2.8; the legacy interface has no packed ring). On
// the legacy interface VERSION_1 is never negotiated, so without MRG_RXBUF the header is 10 bytes.

import { expect } from 'chai';
import { NetRig, ethFrame } from '../../support/net-rig.js';
import type { RigTransport } from '../../support/net-rig.js';
import type { FeatureName } from '../../../devices/virtio-net/constants.js';

const MAIN = '52:54:00:12:34:56';
const TRANSPORTS: RigTransport[] = ['mmio', 'pci', 'pci-legacy'];

interface Combo {
  transport: RigTransport;
  ring: 'split' | 'packed';
  mrg: boolean;
  eventIdx: boolean;
  indirect: boolean;
}

const COMBOS: Combo[] = [];
for (const transport of TRANSPORTS) {
  for (const ring of transport === 'pci-legacy' ? (['split'] as const) : (['split', 'packed'] as const)) {
    for (const mrg of [false, true]) {
      for (const eventIdx of [false, true]) {
        for (const indirect of [false, true]) COMBOS.push({ transport, ring, mrg, eventIdx, indirect });
      }
    }
  }
}

function rigFor(c: Combo): NetRig {
  const disable: FeatureName[] = [];
  if (!c.mrg) disable.push('MRG_RXBUF');
  if (!c.eventIdx) disable.push('EVENT_IDX');
  if (!c.indirect) disable.push('INDIRECT_DESC');
  const rig = new NetRig({ transport: c.transport, ring: c.ring, mac: MAIN, features: { disable } });
  expect(rig.init!.ok, 'initialisation').to.equal(true);
  expect(rig.has('RING_PACKED'), 'ring format negotiated').to.equal(c.ring === 'packed');
  return rig;
}

function name(c: Combo): string {
  return `${c.transport}${c.ring === 'packed' ? '+packed' : ''}${c.mrg ? '+mrg' : ''}${c.eventIdx ? '+event_idx' : ''}${c.indirect ? '+indirect' : ''}`;
}

describe('devices/virtio-net datapath', () => {
  for (const c of COMBOS) {
    describe(name(c), () => {
      it('header_length_follows_version_1_and_mrg_rxbuf', () => {
        const rig = rigFor(c);
        const expected = c.transport !== 'pci-legacy' || c.mrg ? 12 : 10;
        expect(rig.hdrLen).to.equal(expected);
        expect(rig.has('MRG_RXBUF')).to.equal(c.mrg);
        expect(rig.has('EVENT_IDX')).to.equal(c.eventIdx);
        expect(rig.has('INDIRECT_DESC')).to.equal(c.indirect);
        expect(rig.has('VERSION_1')).to.equal(c.transport !== 'pci-legacy');
      });

      it('tx_frames_reach_the_backend_whatever_the_descriptor_layout', () => {
        const rig = rigFor(c);
        const frames = [ethFrame('ff:ff:ff:ff:ff:ff', undefined, { payload: 100, fill: 1 }), ethFrame(MAIN, undefined, { payload: 1500, fill: 2 })];
        const layouts: Parameters<NetRig['send']>[1][] = [{ split: 'one' }, { split: 'header-apart' }, { split: 5 }];
        if (c.indirect) layouts.push({ split: 'header-apart', indirect: true }, { split: 7, indirect: true });
        let sent = 0;
        let bytes = 0;
        for (const layout of layouts) {
          for (const f of frames) {
            const used = rig.send(f, layout);
            expect(used, JSON.stringify(layout)).to.deep.include({ len: 0 });
            sent++;
            bytes += f.length;
            expect([...rig.transmitted[sent - 1]!]).to.deep.equal([...f]);
          }
        }
        const st = rig.device.stats();
        expect(st.tx.frames).to.equal(sent);
        expect(st.tx.bytes).to.equal(bytes);
        expect(rig.device.diagnostics().filter((d) => d.code.startsWith('tx.'))).to.deep.equal([]);
      });

      it('rx_frame_lands_in_one_buffer_with_num_buffers_1', () => {
        const rig = rigFor(c);
        rig.postRx(4, 1600, { split: 3, indirect: c.indirect }); // the frame spans descriptors in one chain
        const raisesBefore = rig.irqRaises;
        const f = ethFrame(MAIN, undefined, { payload: 1000, fill: 3 });
        expect(rig.inject(f)).to.equal(true);
        expect(rig.irqRaises).to.equal(raisesBefore + 1);
        const got = rig.received();
        expect(got).to.have.length(1);
        expect([...got[0]!.frame]).to.deep.equal([...f]);
        expect(got[0]!.entries[0]!.len).to.equal(rig.hdrLen + f.length);
        if (rig.hdrLen === 12) expect(got[0]!.numBuffers).to.equal(1);
        expect([...got[0]!.header.subarray(0, 10)]).to.deep.equal(new Array(10).fill(0));
        const st = rig.device.stats();
        expect(st.rx).to.deep.include({ offered: 1, frames: 1, bytes: f.length, backlog: 0 });
      });

      it('rx_keeps_frames_in_order_across_many_buffers_and_kicks', () => {
        const rig = rigFor(c);
        const sent: Uint8Array[] = [];
        for (let round = 0; round < 5; round++) {
          rig.postRx(3, 1600);
          for (let i = 0; i < 4; i++) {
            const f = ethFrame(MAIN, undefined, { payload: 60 + round * 4 + i, fill: round });
            sent.push(f);
            expect(rig.inject(f)).to.equal(true);
          }
        }
        rig.postRx(5, 1600);
        const got = [...rig.received()];
        expect(got.map((g) => g.frame.length)).to.deep.equal(sent.map((f) => f.length));
        expect(rig.device.stats().rx.backlog).to.equal(0);
      });

      if (c.mrg) {
        it('mrg_rxbuf_frame_spans_3_buffers_with_num_buffers_3', () => {
          const rig = rigFor(c);
          rig.postRx(5, 600, { indirect: c.indirect });
          const f = ethFrame(MAIN, undefined, { payload: 1486, fill: 4 }); // 1500 + 12 = 600 + 600 + 312
          expect(rig.inject(f)).to.equal(true);
          const got = rig.received();
          expect(got).to.have.length(1);
          expect(got[0]!.numBuffers).to.equal(3);
          expect(got[0]!.entries.map((e) => e.len)).to.deep.equal([600, 600, 312]);
          expect([...got[0]!.frame]).to.deep.equal([...f]);
          // The two remaining buffers take the next frame.
          const g = ethFrame(MAIN, undefined, { payload: 100 });
          rig.inject(g);
          const got2 = rig.received();
          expect(got2).to.have.length(1);
          expect(got2[0]!.numBuffers).to.equal(1);
          expect(rig.device.stats().rx.frames).to.equal(2);
        });

        it('mrg_rxbuf_frames_split_alike_over_3_buffers_each_arrive_intact', () => {
          // The pieces of a spanning frame come from a staged copy with views cached per range
          // (rx-stage.ts): frames with the same split must each carry their own bytes.
          const rig = rigFor(c);
          rig.postRx(9, 600, { indirect: c.indirect });
          const frames = [4, 5, 6].map((fill) => ethFrame(MAIN, undefined, { payload: 1486, fill }));
          for (const f of frames) expect(rig.inject(f)).to.equal(true);
          const got = rig.received();
          expect(got.map((g) => g.numBuffers)).to.deep.equal([3, 3, 3]);
          got.forEach((g, i) => expect([...g.frame]).to.deep.equal([...frames[i]!]));
        });

        it('mrg_rxbuf_frame_waits_until_enough_buffers_are_posted', () => {
          const rig = rigFor(c);
          rig.postRx(1, 600);
          const f = ethFrame(MAIN, undefined, { payload: 1486 });
          expect(rig.inject(f)).to.equal(true);
          expect(rig.received()).to.have.length(0);
          expect(rig.device.stats().rx.backlog).to.equal(1);
          rig.postRx(2, 600);
          const got = rig.received();
          expect(got).to.have.length(1);
          expect(got[0]!.numBuffers).to.equal(3);
          expect([...got[0]!.frame]).to.deep.equal([...f]);
        });
      } else {
        it('rx_buffer_too_small_without_mrg_rxbuf_drops_the_frame_and_keeps_the_buffer', () => {
          const rig = rigFor(c);
          const [head] = rig.postRx(1, 600);
          const isrBefore = rig.device.isr;
          const big = ethFrame(MAIN, undefined, { payload: 1000 });
          expect(rig.inject(big)).to.equal(true);
          // code, used ring, status, counter
          expect(rig.device.diagnosticCount('rx.buffer-too-small')).to.equal(1);
          expect(rig.usedEntries(0)).to.have.length(0);
          expect(rig.device.isr).to.equal(isrBefore);
          expect(rig.readStatus() & 0x40).to.equal(0);
          expect(rig.device.stats().rx.drops['buffer-too-small']).to.equal(1);
          // The same buffer takes the next frame that fits.
          const small = ethFrame(MAIN, undefined, { payload: 200 });
          rig.inject(small);
          const got = rig.received();
          expect(got).to.have.length(1);
          expect(got[0]!.id).to.equal(head);
          expect([...got[0]!.frame]).to.deep.equal([...small]);
          expect(rig.device.stats().rx).to.deep.include({ offered: 2, frames: 1 });
        });
      }

      it('dropped_frame_consumes_no_buffer_and_raises_no_interrupt', () => {
        const rig = rigFor(c);
        rig.cmd(0, 0, [0]); // RX PROMISC off
        rig.postRx(2, 1600);
        rig.readIsr();
        const raises = rig.irqRaises;
        expect(rig.inject(ethFrame('52:54:00:99:99:99'))).to.equal(true);
        expect(rig.irqRaises).to.equal(raises);
        expect(rig.usedEntries(0)).to.have.length(0);
        expect(rig.device.stats().rx.drops.unicast).to.equal(1);
        rig.inject(ethFrame(MAIN));
        expect(rig.received()).to.have.length(1);
        expect(rig.irqRaises).to.equal(raises + 1);
      });
    });
  }

  it('event_idx_used_event_suppresses_rx_interrupts_until_crossed', () => {
    const rig = new NetRig({ mac: MAIN });
    expect(rig.has('EVENT_IDX')).to.equal(true);
    rig.postRx(8, 1600);
    rig.rx.setUsedEvent(2); // interrupt when used.idx passes 2
    rig.readIsr();
    const raises = rig.irqRaises;
    rig.inject(ethFrame(MAIN));
    rig.inject(ethFrame(MAIN));
    expect(rig.irqRaises).to.equal(raises);
    rig.inject(ethFrame(MAIN));
    expect(rig.irqRaises).to.equal(raises + 1);
    expect(rig.received()).to.have.length(3);
  });

  it('event_idx_control_queue_rearms_avail_event_so_every_command_is_notified', () => {
    const rig = new NetRig({ mac: MAIN });
    for (let i = 0; i < 5; i++) expect(rig.cmd(0, 1, [i & 1])).to.equal(0);
    expect(rig.suppressedKicks).to.equal(0);
    expect(rig.ctrl.readAvailEvent()).to.equal(5);
  });

  it('event_idx_rx_asks_for_a_notification_only_while_frames_wait', () => {
    const rig = new NetRig({ mac: MAIN });
    rig.postRx(2, 1600);
    rig.inject(ethFrame(MAIN));
    rig.postRx(2, 1600); // nothing waits: the device did not ask, the driver skips the kick
    expect(rig.suppressedKicks).to.equal(1);
    for (let i = 0; i < 4; i++) rig.inject(ethFrame(MAIN)); // the 4th finds no buffer: it waits, and the device asks to be notified
    expect(rig.device.stats().rx.backlog).to.equal(1);
    expect(rig.rx.readAvailEvent()).to.equal(4);
    rig.postRx(1, 1600);
    expect(rig.suppressedKicks).to.equal(1);
    expect(rig.received()).to.have.length(5);
  });

  it('event_idx_mrg_rxbuf_frame_waiting_on_popped_buffers_asks_for_the_next_new_one', () => {
    const rig = new NetRig({ mac: MAIN });
    rig.postRx(1, 600);
    rig.inject(ethFrame(MAIN, undefined, { payload: 1486 }));
    expect(rig.rx.readAvailEvent()).to.equal(1); // the buffer it holds is entry 0
    rig.postRx(2, 600);
    expect(rig.suppressedKicks).to.equal(0);
    expect(rig.received().map((r) => r.numBuffers)).to.deep.equal([3]);
  });

  it('no_interrupt_flag_suppresses_tx_interrupts_without_event_idx', () => {
    const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
    rig.tx.setNoInterrupt(true);
    rig.readIsr();
    const raises = rig.irqRaises;
    expect(rig.send(ethFrame(MAIN))).to.deep.include({ len: 0 });
    expect(rig.irqRaises).to.equal(raises);
    rig.tx.setNoInterrupt(false);
    rig.send(ethFrame(MAIN));
    expect(rig.irqRaises).to.equal(raises + 1);
  });

  it('backend_with_vnet_header_receives_it_and_gets_the_guest_header_length', () => {
    const seen: { frame: Uint8Array; header: Uint8Array | undefined }[] = [];
    const backend = {
      id: 'hdr0',
      vnetHeaderLength: 10,
      peer: null as null | { receive(f: Uint8Array, h?: Uint8Array): boolean; writable(): void },
      attach(p: { receive(f: Uint8Array, h?: Uint8Array): boolean; writable(): void }) {
        this.peer = p;
      },
      detach() {},
      send(frame: Uint8Array, header?: Uint8Array) {
        seen.push({ frame: frame.slice(), header: header?.slice() });
        return 'sent' as const;
      },
      pauseReceive() {},
      resumeReceive() {},
      close: async () => {},
      setVnetHeaderLength(n: 10 | 12) {
        this.vnetHeaderLength = n;
      },
      offloads: null as unknown,
      setOffloads(o: unknown) {
        this.offloads = o;
      },
    };
    const rig = new NetRig({ mac: MAIN, netdev: backend });
    expect(rig.has('CSUM')).to.equal(true);
    expect(rig.has('CTRL_GUEST_OFFLOADS')).to.equal(true);
    expect(backend.vnetHeaderLength).to.equal(12);
    expect(backend.offloads).to.deep.include({ csum: true, tso4: true });
    const header = Uint8Array.from([1, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0]); // NEEDS_CSUM, TCPV4
    rig.send(ethFrame(MAIN), { header });
    expect([...seen[0]!.header!]).to.deep.equal([...header]);
    // Host → guest: the backend's header reaches the guest, num_buffers is the device's.
    rig.postRx(1, 1600);
    backend.peer!.receive(ethFrame(MAIN), Uint8Array.from([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9]));
    const got = rig.received();
    expect([...got[0]!.header]).to.deep.equal([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    // A frame offered without a header after one with a header: the guest sees a zero header (the
    // device's scratch is zeroed only after a frame that wrote into it).
    rig.postRx(2, 1600);
    backend.peer!.receive(ethFrame(MAIN), Uint8Array.from([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 7])); // DATA_VALID
    backend.peer!.receive(ethFrame(MAIN));
    const got3 = rig.received();
    expect(got3).to.have.length(2);
    expect([...got3[0]!.header]).to.deep.equal([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    expect([...got3[1]!.header]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    // GUEST_OFFLOADS_SET (§5.1.6.5.8) reaches the backend: only checksum offload from now on.
    expect(rig.cmd(5, 0, [2, 0, 0, 0, 0, 0, 0, 0])).to.equal(0);
    expect(backend.offloads).to.deep.equal({ csum: true, tso4: false, tso6: false, ecn: false, ufo: false, uso4: false, uso6: false });
    expect(rig.cmd(5, 0, [0, 0, 0, 0, 0, 0, 0, 0x80])).to.equal(1); // a bit never offered
    expect(backend.offloads).to.deep.include({ csum: true });
  });
});
