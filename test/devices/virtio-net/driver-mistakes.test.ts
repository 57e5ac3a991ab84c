// Driver mistakes on the datapath and the control queue, tier by tier (STYLE.md): each test checks
// the error code, the used-ring entry, the status bit, the counter that moved, and that the same
// device passes a good exchange afterwards. VIRTIO 1.2 §5.1.6.2 (tx), §5.1.6.3.1 (rx buffers),
// §5.1.6.5 (control), §2.7.4.2 (descriptor direction), §2.9 / §3.1.1 (notifications).

import { expect } from 'chai';
import { NetRig, ethFrame } from '../../support/net-rig.js';
import { ALL_FEATURES } from '../../support/net-rig.js';
import { CtrlAck, CtrlClass, CtrlRx } from '../../../devices/virtio-net/constants.js';
import { TX_FRAME_MAX } from '../../../devices/virtio-net/tx-path.js';

const MAIN = '52:54:00:12:34:56';
const NEEDS_RESET = 0x40;

/** A good exchange both ways and on the control queue. */
function goodExchange(rig: NetRig): void {
  const f = ethFrame(MAIN, undefined, { payload: 80, fill: 9 });
  const before = rig.transmitted.length;
  expect(rig.send(f)).to.deep.include({ len: 0 });
  expect(rig.transmitted.length).to.equal(before + 1);
  expect([...rig.transmitted[before]!]).to.deep.equal([...f]);
  rig.postRx(1, 1600);
  expect(rig.inject(f)).to.equal(true);
  const got = rig.received();
  expect(got.map((g) => [...g.frame])).to.deep.equal([[...f]]);
  expect(rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [1])).to.equal(CtrlAck.OK);
  expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
}

describe('devices/virtio-net driver mistakes', () => {
  describe('tier 3: bad frames are completed with length 0 and counted', () => {
    it('tx_chain_shorter_than_the_header_is_tier3', () => {
      const rig = new NetRig({ mac: MAIN });
      const used = rig.send(new Uint8Array(0), { hdrLen: 7 });
      expect(used).to.deep.include({ len: 0 });
      expect(rig.transmitted).to.have.length(0);
      expect(rig.device.diagnosticCount('tx.header-short')).to.equal(1);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'tx.header-short', section: '5.1.6.2', queue: 1 });
      expect(rig.device.stats().tx.errors['header-short']).to.equal(1);
      expect(rig.device.stats().tx.frames).to.equal(0);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
      goodExchange(rig);
    });

    it('tx_legacy_10_byte_header_driver_sending_9_bytes_is_tier3', () => {
      const rig = new NetRig({ mac: MAIN, transport: 'pci-legacy', features: { disable: ['MRG_RXBUF'] } });
      expect(rig.hdrLen).to.equal(10);
      expect(rig.send(new Uint8Array(0), { hdrLen: 9 })).to.deep.include({ len: 0 });
      expect(rig.device.stats().tx.errors['header-short']).to.equal(1);
      // Exactly a header and no frame is not short: an empty frame goes out.
      expect(rig.send(new Uint8Array(0))).to.deep.include({ len: 0 });
      expect(rig.transmitted.map((t) => t.length)).to.deep.equal([0]);
      goodExchange(rig);
    });

    it('tx_frame_above_the_maximum_is_tier3', () => {
      const rig = new NetRig({ mac: MAIN });
      const big = new Uint8Array(TX_FRAME_MAX + 1);
      const used = rig.send(big, { split: 3 });
      expect(used).to.deep.include({ len: 0 });
      expect(rig.transmitted).to.have.length(0);
      expect(rig.device.diagnosticCount('tx.frame-too-large')).to.equal(1);
      expect(rig.device.stats().tx.errors.oversize).to.equal(1);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
      // The largest allowed frame still goes out.
      expect(rig.send(new Uint8Array(TX_FRAME_MAX), { split: 3 })).to.deep.include({ len: 0 });
      expect(rig.transmitted[0]!.length).to.equal(TX_FRAME_MAX);
      goodExchange(rig);
    });

    for (const mrg of [true, false]) {
      it(`rx_buffer_shorter_than_the_header_is_returned_unused_${mrg ? 'with' : 'without'}_mrg_rxbuf`, () => {
        const rig = new NetRig({ mac: MAIN, ...(mrg ? {} : { features: { disable: ['MRG_RXBUF'] } }) });
        const [tiny, good] = [...rig.postRx(1, 8), ...rig.postRx(1, 1600)];
        const f = ethFrame(MAIN, undefined, { payload: 100 });
        expect(rig.inject(f)).to.equal(true);
        const used = rig.rx.usedEntries();
        expect(used).to.deep.equal([
          { id: tiny, len: 0 },
          { id: good, len: 12 + f.length },
        ]);
        expect(rig.device.diagnosticCount('rx.buffer-shorter-than-header')).to.equal(1);
        expect(rig.device.diagnostics().find((d) => d.code === 'rx.buffer-shorter-than-header')).to.deep.include({ section: '5.1.6.3.1', queue: 0 });
        expect(rig.device.stats().rx).to.deep.include({ shortBuffers: 1, frames: 1 });
        expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
        rig.rx.takeUsed();
        goodExchange(rig);
      });
    }

    it('rx_frame_above_the_maximum_from_the_backend_is_dropped_and_counted', () => {
      const rig = new NetRig({ mac: MAIN });
      rig.postRx(2, 1600);
      expect(rig.inject(new Uint8Array(70000))).to.equal(true);
      expect(rig.rx.usedIdx()).to.equal(0);
      expect(rig.device.stats().rx.drops.oversize).to.equal(1);
      goodExchange(rig);
    });
  });

  describe('tier 2 (tolerated, recorded): ring-level mistakes', () => {
    it('tx_writable_descriptor_is_recorded_and_the_frame_still_goes_out', () => {
      const rig = new NetRig({ mac: MAIN });
      const f = ethFrame(MAIN);
      const used = rig.send(f, { writable: 64 });
      expect(used).to.deep.include({ len: 0 });
      expect(rig.device.diagnosticCount('tx.writable-descriptor')).to.equal(1);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'tx.writable-descriptor', section: '2.7.4.2', queue: 1 });
      expect([...rig.transmitted[0]!]).to.deep.equal([...f]);
      expect(rig.device.stats().tx.frames).to.equal(1);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
      goodExchange(rig);
    });

    it('notification_for_a_queue_not_enabled_is_recorded', () => {
      const rig = new NetRig({ mac: MAIN, queuePairs: 2, init: false });
      // The driver negotiates without MQ: queues 3 and 4 stay disabled.
      rig.start(ALL_FEATURES & ~(1n << 22n));
      rig.driver.notify(3);
      expect(rig.device.diagnosticCount('notify.queue-not-ready')).to.equal(1);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.queue-not-ready', section: '2.9', queue: 3 });
      expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
      goodExchange(rig);
    });

    it('notification_for_a_queue_the_device_lacks_is_recorded', () => {
      const rig = new NetRig({ mac: MAIN });
      rig.driver.notify(9);
      expect(rig.device.diagnosticCount('notify.queue-out-of-range')).to.equal(1);
      goodExchange(rig);
    });

    it('legacy_mac_write_with_version_1_is_ignored_and_recorded', () => {
      const rig = new NetRig({ mac: MAIN });
      rig.driver.writeConfig(0, 1, 0x02);
      expect(rig.readMac()).to.equal(MAIN);
      expect(rig.device.diagnosticCount('config.mac-write')).to.equal(1);
      goodExchange(rig);
    });
  });

  describe('tier 1: contract violations stop the device until reset', () => {
    it('rx_chain_with_no_writable_descriptor_needs_reset', () => {
      const rig = new NetRig({ mac: MAIN });
      rig.kick(0, () => rig.rx.addChain([{ len: 64 }]));
      rig.readIsr();
      expect(rig.inject(ethFrame(MAIN))).to.equal(true); // held: the device stopped before using it
      expect(rig.device.diagnosticCount('rx.no-writable-descriptor')).to.equal(1);
      expect(rig.rx.usedIdx()).to.equal(0);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(NEEDS_RESET);
      expect(rig.readIsr() & 2).to.equal(2); // config change interrupt
      expect(rig.device.stats().needsReset).to.equal(1);
      expect(rig.device.stats().rx.backlog).to.equal(1);
      // The driver resets: the held frame is dropped, counted 'reset'; the device works again.
      rig.start();
      expect(rig.device.stats().rx.drops.reset).to.equal(1);
      goodExchange(rig);
    });

    it('ctrl_chain_without_ack_descriptor_needs_reset', () => {
      const rig = new NetRig({ mac: MAIN });
      const r = rig.ctrlCommand([[CtrlClass.RX, CtrlRx.PROMISC], [0]], 0);
      expect(r.used).to.equal(undefined);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(NEEDS_RESET);
      expect(rig.device.diagnosticCount('ctrl.missing-ack')).to.equal(1);
      expect(rig.device.diagnostics().find((d) => d.code === 'ctrl.missing-ack')).to.deep.include({ section: '5.1.6.5', queue: 2 });
      expect(rig.device.stats().needsReset).to.equal(1);
      expect(rig.device.queryRxFilter().promiscuous).to.equal(true); // nothing applied
      rig.start();
      goodExchange(rig);
    });

    it('ctrl_chain_with_one_readable_byte_needs_reset', () => {
      const rig = new NetRig({ mac: MAIN });
      const r = rig.ctrlCommand([[CtrlClass.RX]]);
      expect(r.used).to.equal(undefined);
      expect(rig.device.diagnosticCount('ctrl.missing-header')).to.equal(1);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(NEEDS_RESET);
      rig.start();
      goodExchange(rig);
    });

    it('tx_avail_index_jump_needs_reset', () => {
      const rig = new NetRig({ mac: MAIN });
      rig.tx.bumpAvailIdx(rig.tx.size + 1);
      rig.driver.notify(1);
      expect(rig.device.diagnosticCount('avail.index-jump')).to.equal(1);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(NEEDS_RESET);
      expect(rig.device.stats().tx.frames).to.equal(0);
      rig.start();
      goodExchange(rig);
    });
  });

  describe('tier 2: bad control requests are answered VIRTIO_NET_ERR', () => {
    const cases: [string, (Uint8Array | number[])[], string][] = [
      ['unknown_class', [[9, 0]], 'ctrl.unknown-class'],
      ['rx_command_without_data', [[CtrlClass.RX, CtrlRx.PROMISC]], 'ctrl.short-payload'],
      ['vlan_id_4096', [[CtrlClass.VLAN, 0], [0x00, 0x10]], 'ctrl.vlan-out-of-range'],
      ['mac_addr_set_of_5_bytes', [[CtrlClass.MAC, 1], [1, 2, 3, 4, 5]], 'ctrl.mac-addr-length'],
      ['mac_table_truncated', [[CtrlClass.MAC, 0], [1, 0, 0, 0, 2, 0]], 'ctrl.mac-table-malformed'],
      ['announce_ack_when_not_pending', [[CtrlClass.ANNOUNCE, 0]], 'ctrl.announce-not-pending'],
    ];
    for (const [what, segments, code] of cases) {
      it(`${what}_is_answered_err`, () => {
        const rig = new NetRig({ mac: MAIN });
        const before = rig.device.queryRxFilter();
        const r = rig.ctrlCommand(segments);
        expect(r.ack).to.equal(CtrlAck.ERR);
        expect(r.used).to.deep.equal({ id: r.used!.id, len: 1 });
        expect(rig.device.diagnosticCount(code)).to.equal(1);
        expect(rig.device.diagnostics().find((d) => d.code === code)).to.deep.include({ queue: 2 });
        expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
        expect(rig.device.stats().ctrl.err).to.equal(1);
        expect(rig.device.queryRxFilter()).to.deep.equal(before);
        goodExchange(rig);
      });
    }
  });
});
