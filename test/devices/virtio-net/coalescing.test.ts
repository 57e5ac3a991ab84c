// Notification coalescing (VIRTIO 1.3 §5.1.6.5.9, devices/virtio-net/coalescing.ts): exact
// used-buffer notification counts under sinon's fake clock, the interplay with EVENT_IDX and
// NO_INTERRUPT suppression, the commands and the driver's mistakes, reset, queue reset and the
// device state.

import { expect } from 'chai';
import sinon from 'sinon';
import { NetRig, ethFrame, le16 } from '../../support/net-rig.js';
import { CtrlAck, CtrlClass, CtrlNotfCoal } from '../../../devices/virtio-net/constants.js';
import { usecsToMs } from '../../../devices/virtio-net/coalescing.js';
import { encodeStateImage } from '../../../lib/base/state-codec.js';
import type { StateSection } from '../../../lib/base/state-codec.js';

const MAIN = '52:54:00:12:34:56';

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** TX_SET / RX_SET: struct virtio_net_ctrl_coal { le32 max_packets; le32 max_usecs; }. */
function coalSet(rig: NetRig, command: number, maxPackets: number, maxUsecs: number): number {
  return rig.cmd(CtrlClass.NOTF_COAL, command, [...le32(maxPackets), ...le32(maxUsecs)]);
}

/** VQ_SET: struct virtio_net_ctrl_coal_vq { le16 vq_index; le16 reserved; coal }. */
function vqSet(rig: NetRig, vq: number, maxPackets: number, maxUsecs: number, reserved = 0): number {
  return rig.cmd(CtrlClass.NOTF_COAL, CtrlNotfCoal.VQ_SET, [...le16(vq), ...le16(reserved)], [...le32(maxPackets), ...le32(maxUsecs)]);
}

/** VQ_GET: the ack and the 8-byte result after it (as Linux lays the chain out). */
function vqGet(rig: NetRig, vq: number, resultLen = 8): { ack: number; maxPackets: number; maxUsecs: number } {
  const ctrl = rig.ringAt(rig.ctrlIndex);
  let head = -1;
  rig.kick(rig.ctrlIndex, () => {
    head = ctrl.addChain([
      { len: 2, data: [CtrlClass.NOTF_COAL, CtrlNotfCoal.VQ_GET] },
      { len: 4, data: [...le16(vq), 0, 0] },
      { len: 1, write: true, data: [0xff] },
      ...(resultLen > 0 ? [{ len: resultLen, write: true, data: new Array<number>(resultLen).fill(0xee) }] : []),
    ]);
  });
  ctrl.takeUsed();
  const ack = ctrl.bufferBytes(head, 2)[0]!;
  if (resultLen < 8) return { ack, maxPackets: -1, maxUsecs: -1 };
  const r = ctrl.bufferBytes(head, 3);
  const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
  return { ack, maxPackets: dv.getUint32(0, true), maxUsecs: dv.getUint32(4, true) };
}

/** The sections of a state image (lib/base/state-codec.ts layout: 12-byte header, sections, CRC). */
function sectionsOf(image: Uint8Array): StateSection[] {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const out: StateSection[] = [];
  for (let at = 12; at < image.length - 4; ) {
    const len = dv.getUint32(at + 8, true);
    out.push({ tag: String.fromCharCode(...image.subarray(at, at + 4)), version: image[at + 4]!, required: (image[at + 5]! & 1) === 1, payload: image.slice(at + 12, at + 12 + len) });
    at += 12 + len;
  }
  return out;
}

function interrupts(rig: NetRig, queue: number): number {
  return rig.device.stats().queues[queue]!.interrupts;
}

/** Frames from the host to the guest's MAC (buffers must be posted). */
function receive(rig: NetRig, n: number): void {
  for (let i = 0; i < n; i++) expect(rig.inject(ethFrame(MAIN, undefined, { fill: i }))).to.equal(true);
}

function transmit(rig: NetRig, n: number): void {
  for (let i = 0; i < n; i++) rig.send(ethFrame('52:54:00:99:99:99', MAIN, { fill: i }));
}

describe('devices/virtio-net notification coalescing', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => clock.restore());

  describe('receive', () => {
    it('without_coalescing_every_frame_is_a_notification', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      rig.postRx(16);
      const before = interrupts(rig, 0);
      receive(rig, 5);
      expect(interrupts(rig, 0) - before).to.equal(5);
    });

    it('max_packets_frames_make_one_notification', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 4, 1_000_000)).to.equal(CtrlAck.OK);
      rig.postRx(32);
      const before = interrupts(rig, 0);
      receive(rig, 3);
      expect(interrupts(rig, 0) - before).to.equal(0);
      receive(rig, 1);
      expect(interrupts(rig, 0) - before).to.equal(1);
      receive(rig, 8);
      expect(interrupts(rig, 0) - before).to.equal(3);
      // No timer is left behind by windows that closed on their count.
      expect(clock.countTimers()).to.equal(0);
      expect(rig.received()).to.have.length(12);
    });

    it('a_packed_ring_is_coalesced_the_same_way', () => {
      const rig = new NetRig({ mac: MAIN, ring: 'packed', features: { disable: ['EVENT_IDX'] } });
      expect(rig.has('RING_PACKED')).to.equal(true);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 4, 1_000_000)).to.equal(CtrlAck.OK);
      rig.postRx(16);
      const before = interrupts(rig, 0);
      receive(rig, 9);
      expect(interrupts(rig, 0) - before).to.equal(2);
      clock.tick(1000);
      expect(interrupts(rig, 0) - before).to.equal(3);
      expect(rig.received()).to.have.length(9);
    });

    it('a_held_notification_fires_when_max_usecs_elapse', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 100, 2500)).to.equal(CtrlAck.OK); // 2.5 ms → a 3 ms timer
      rig.postRx(16);
      const before = interrupts(rig, 0);
      receive(rig, 2);
      clock.tick(usecsToMs(2500) - 1);
      expect(interrupts(rig, 0) - before).to.equal(0);
      clock.tick(1);
      expect(interrupts(rig, 0) - before).to.equal(1);
      // The window closed: time alone sends nothing more.
      clock.tick(50);
      expect(interrupts(rig, 0) - before).to.equal(1);
      // The next frame opens the next window, counted from its own arrival.
      receive(rig, 1);
      clock.tick(2);
      expect(interrupts(rig, 0) - before).to.equal(1);
      clock.tick(1);
      expect(interrupts(rig, 0) - before).to.equal(2);
      expect(rig.irqRaises).to.be.greaterThan(0);
    });

    it('either_parameter_zero_means_no_coalescing', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 0, 1000)).to.equal(CtrlAck.OK);
      rig.postRx(16);
      const before = interrupts(rig, 0);
      receive(rig, 3);
      expect(interrupts(rig, 0) - before).to.equal(3);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 8, 0)).to.equal(CtrlAck.OK);
      receive(rig, 3);
      expect(interrupts(rig, 0) - before).to.equal(6);
      expect(clock.countTimers()).to.equal(0);
    });
  });

  describe('transmit', () => {
    it('tx_completions_are_coalesced_by_count_and_by_time', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.TX_SET, 3, 10_000)).to.equal(CtrlAck.OK);
      const before = interrupts(rig, 1);
      transmit(rig, 2);
      expect(interrupts(rig, 1) - before).to.equal(0);
      transmit(rig, 1);
      expect(interrupts(rig, 1) - before).to.equal(1);
      transmit(rig, 1);
      clock.tick(10);
      expect(interrupts(rig, 1) - before).to.equal(2);
      expect(rig.transmitted).to.have.length(4);
      // RX_SET does not touch the transmit queue.
      expect(vqGet(rig, 1)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 3, maxUsecs: 10_000 });
      expect(vqGet(rig, 0)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 0, maxUsecs: 0 });
    });
  });

  describe('suppression (§5.1.6.5.9.1: conditions met and not suppressed)', () => {
    it('no_interrupt_flag_suppresses_the_notification_at_the_end_of_the_window', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 2, 1000)).to.equal(CtrlAck.OK);
      rig.postRx(16);
      rig.rx.setNoInterrupt(true);
      const before = interrupts(rig, 0);
      receive(rig, 4); // two windows closed by count
      receive(rig, 1); // one closed by time
      clock.tick(5);
      expect(interrupts(rig, 0) - before).to.equal(0);
      rig.rx.setNoInterrupt(false);
      receive(rig, 2);
      expect(interrupts(rig, 0) - before).to.equal(1);
    });

    it('event_idx_crossing_inside_a_window_is_held_until_the_window_ends', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(rig.has('EVENT_IDX')).to.equal(true);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 10, 3000)).to.equal(CtrlAck.OK);
      rig.postRx(32);
      rig.received();
      const start = rig.rx.usedIdx();
      // The driver wants a notification once the second frame is used.
      rig.rx.setUsedEvent(start + 1);
      const before = interrupts(rig, 0);
      receive(rig, 3); // the second frame crosses used_event; the window holds it
      expect(interrupts(rig, 0) - before).to.equal(0);
      clock.tick(3);
      expect(interrupts(rig, 0) - before).to.equal(1);
      // used_event left behind: the next window's frames are all suppressed, so it ends silently.
      receive(rig, 3);
      clock.tick(3);
      expect(interrupts(rig, 0) - before).to.equal(1);
    });

    it('event_idx_without_coalescing_notifies_only_on_the_crossing', () => {
      const rig = new NetRig({ mac: MAIN });
      rig.postRx(32);
      rig.received();
      rig.rx.setUsedEvent(rig.rx.usedIdx() + 2);
      const before = interrupts(rig, 0);
      receive(rig, 5);
      expect(interrupts(rig, 0) - before).to.equal(1);
    });
  });

  describe('parameter changes (§5.1.6.5.9.4)', () => {
    it('lowering_max_packets_below_the_count_sends_the_held_notification_at_once', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.TX_SET, 15, 1_000_000)).to.equal(CtrlAck.OK);
      const before = interrupts(rig, 1);
      transmit(rig, 10);
      expect(interrupts(rig, 1) - before).to.equal(0);
      expect(coalSet(rig, CtrlNotfCoal.TX_SET, 8, 1_000_000)).to.equal(CtrlAck.OK);
      expect(interrupts(rig, 1) - before).to.equal(1);
      expect(clock.countTimers()).to.equal(0);
    });

    it('switching_coalescing_off_sends_the_held_notification_at_once', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(vqSet(rig, 0, 50, 1_000_000)).to.equal(CtrlAck.OK);
      rig.postRx(8);
      const before = interrupts(rig, 0);
      receive(rig, 2);
      expect(vqSet(rig, 0, 0, 0)).to.equal(CtrlAck.OK);
      expect(interrupts(rig, 0) - before).to.equal(1);
    });

    it('a_shorter_max_usecs_rearms_the_timer_for_the_time_left', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 100, 100_000)).to.equal(CtrlAck.OK); // 100 ms
      rig.postRx(8);
      const before = interrupts(rig, 0);
      receive(rig, 1);
      clock.tick(4);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 100, 10_000)).to.equal(CtrlAck.OK); // 10 ms: 6 left
      clock.tick(5);
      expect(interrupts(rig, 0) - before).to.equal(0);
      clock.tick(1);
      expect(interrupts(rig, 0) - before).to.equal(1);
      // Already elapsed under the new value: at once.
      receive(rig, 1);
      clock.tick(7);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 100, 5000)).to.equal(CtrlAck.OK);
      expect(interrupts(rig, 0) - before).to.equal(2);
    });
  });

  describe('commands', () => {
    it('the_spec_example_sequence_reads_back_the_last_parameters_set_per_queue', () => {
      // §5.1.6.5.9, two pairs: commands 1..6.
      const rig = new NetRig({ mac: MAIN, queuePairs: 2 });
      expect(rig.has('MQ')).to.equal(true);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 11, 110)).to.equal(CtrlAck.OK); // 1: queues 0, 2
      expect(vqSet(rig, 0, 22, 220)).to.equal(CtrlAck.OK); // 2
      expect(vqGet(rig, 0)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 22, maxUsecs: 220 }); // 3
      expect(vqGet(rig, 2)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 11, maxUsecs: 110 });
      expect(vqSet(rig, 1, 33, 330)).to.equal(CtrlAck.OK); // 4
      expect(vqGet(rig, 3)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 0, maxUsecs: 0 });
      expect(coalSet(rig, CtrlNotfCoal.TX_SET, 44, 440)).to.equal(CtrlAck.OK); // 5: queues 1, 3
      expect(vqGet(rig, 1)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 44, maxUsecs: 440 }); // 6
      expect(vqGet(rig, 3)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 44, maxUsecs: 440 });
      expect(rig.device.diagnostics()).to.deep.equal([]);
      expect(rig.device.stats().ctrl.byClass['notf-coal']).to.deep.equal({ ok: 9, err: 0 });
    });

    it('reserved_is_ignored', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(vqSet(rig, 1, 5, 50, 0xbeef)).to.equal(CtrlAck.OK);
      expect(vqGet(rig, 1)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 5, maxUsecs: 50 });
      expect(rig.device.diagnostics()).to.deep.equal([]);
    });

    it('a_data_queue_of_a_pair_beyond_the_negotiated_queues_is_refused', () => {
      // 2 pairs offered, MQ not negotiated: only receiveq1 / transmitq1 are data queues.
      const rig = new NetRig({ mac: MAIN, queuePairs: 2, driverFeatures: ['VERSION_1', 'CTRL_VQ', 'NOTF_COAL', 'VQ_NOTF_COAL'] });
      expect(rig.has('MQ')).to.equal(false);
      expect(vqSet(rig, 3, 5, 50)).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((d) => d.code)).to.deep.equal(['ctrl.coal-vq-not-data-queue']);
    });
    it('with_rss_but_not_mq_every_pair_s_data_queues_take_per_queue_commands', () => {
      // §5.1.2 and §5.1.4: RSS alone makes N = max_virtqueue_pairs (Linux probes the pairs on MQ or
      // RSS), so receiveq2 / transmitq2 are data queues and per-queue coalescing applies to them.
      const rig = new NetRig({ mac: MAIN, queuePairs: 2, features: { enable: ['RSS', 'NOTF_COAL', 'VQ_NOTF_COAL'], disable: ['MQ'] } });
      expect([rig.has('MQ'), rig.has('RSS'), rig.ctrlIndex]).to.deep.equal([false, true, 4]);
      expect(vqSet(rig, 3, 5, 50)).to.equal(CtrlAck.OK);
      expect(vqGet(rig, 3)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 5, maxUsecs: 50 });
      expect(vqSet(rig, 4, 5, 50), 'the control queue').to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((d) => d.code)).to.deep.equal(['ctrl.coal-vq-not-data-queue']);
    });
  });

  describe('driver mistakes', () => {
    it('vq_index_of_the_control_queue_is_refused_with_its_section', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(vqSet(rig, rig.ctrlIndex, 5, 50)).to.equal(CtrlAck.ERR);
      expect(vqGet(rig, rig.ctrlIndex).ack).to.equal(CtrlAck.ERR);
      expect(vqSet(rig, 40, 5, 50)).to.equal(CtrlAck.ERR);
      const d = rig.device.diagnostics();
      expect(d.map((x) => [x.code, x.section])).to.deep.equal([
        ['ctrl.coal-vq-not-data-queue', '5.1.6.5.9.5'],
        ['ctrl.coal-vq-not-data-queue', '5.1.6.5.9.5'],
        ['ctrl.coal-vq-not-data-queue', '5.1.6.5.9.5'],
      ]);
      // Nothing changed.
      expect(vqGet(rig, 0)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 0, maxUsecs: 0 });
    });

    it('tx_set_without_notf_coal_negotiated_is_refused', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['NOTF_COAL'] } });
      expect(coalSet(rig, CtrlNotfCoal.TX_SET, 5, 50)).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((x) => [x.code, x.section])).to.deep.equal([['ctrl.feature-not-negotiated', '5.1.6.5.9.5']]);
      // VQ_SET has its own feature, negotiated here.
      expect(vqSet(rig, 1, 5, 50)).to.equal(CtrlAck.OK);
    });

    it('vq_set_without_vq_notf_coal_negotiated_is_refused', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['VQ_NOTF_COAL'] } });
      expect(vqSet(rig, 0, 5, 50)).to.equal(CtrlAck.ERR);
      expect(vqGet(rig, 0).ack).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((x) => x.code)).to.deep.equal(['ctrl.feature-not-negotiated', 'ctrl.feature-not-negotiated']);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 5, 50)).to.equal(CtrlAck.OK);
    });

    it('short_payloads_and_unknown_commands_are_refused', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(rig.cmd(CtrlClass.NOTF_COAL, CtrlNotfCoal.RX_SET, le32(5))).to.equal(CtrlAck.ERR);
      expect(rig.cmd(CtrlClass.NOTF_COAL, CtrlNotfCoal.VQ_SET, [0, 0, 0, 0], le32(5))).to.equal(CtrlAck.ERR);
      expect(rig.cmd(CtrlClass.NOTF_COAL, 4, [0])).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((x) => x.code)).to.deep.equal(['ctrl.short-payload', 'ctrl.short-payload', 'ctrl.unknown-command']);
      expect(vqGet(rig, 0)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 0, maxUsecs: 0 });
    });

    it('vq_get_without_room_for_the_result_is_refused', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(vqGet(rig, 0, 0).ack).to.equal(CtrlAck.ERR);
      expect(vqGet(rig, 0, 4).ack).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((x) => x.code)).to.deep.equal(['ctrl.result-too-short', 'ctrl.result-too-short']);
    });

    it('trailing_bytes_are_tolerated_by_default_and_refused_in_strict_mode', () => {
      const lax = new NetRig({ mac: MAIN });
      expect(lax.cmd(CtrlClass.NOTF_COAL, CtrlNotfCoal.RX_SET, [...le32(5), ...le32(50), 0])).to.equal(CtrlAck.OK);
      expect(lax.device.diagnostics().map((x) => x.code)).to.deep.equal(['ctrl.trailing-bytes']);
      const strict = new NetRig({ mac: MAIN, strict: true });
      expect(strict.cmd(CtrlClass.NOTF_COAL, CtrlNotfCoal.RX_SET, [...le32(5), ...le32(50), 0])).to.equal(CtrlAck.ERR);
      expect(vqGet(strict, 0)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 0, maxUsecs: 0 });
    });
  });

  describe('life cycle', () => {
    it('reset_sets_every_parameter_to_zero_and_drops_open_windows', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 10, 5000)).to.equal(CtrlAck.OK);
      rig.postRx(8);
      receive(rig, 2);
      expect(clock.countTimers()).to.equal(1);
      const before = rig.device.stats().interrupts.used;
      rig.start();
      expect(clock.countTimers()).to.equal(0);
      clock.tick(10);
      expect(rig.device.stats().interrupts.used).to.equal(before);
      expect(vqGet(rig, 0)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 0, maxUsecs: 0 });
    });

    it('a_re_enabled_queue_takes_the_last_tx_set_or_rx_set_values', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(rig.has('RING_RESET')).to.equal(true);
      expect(coalSet(rig, CtrlNotfCoal.RX_SET, 2, 20)).to.equal(CtrlAck.OK);
      expect(vqSet(rig, 0, 7, 70)).to.equal(CtrlAck.OK);
      expect(vqSet(rig, 1, 8, 80)).to.equal(CtrlAck.OK);
      rig.resetQueue(0, { reenable: true });
      rig.resetQueue(1, { reenable: true });
      expect(vqGet(rig, 0)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 2, maxUsecs: 20 });
      // No TX_SET: 0 (§5.1.6.5.9.6).
      expect(vqGet(rig, 1)).to.deep.equal({ ack: CtrlAck.OK, maxPackets: 0, maxUsecs: 0 });
    });

    it('a_queue_being_reset_is_not_an_enabled_queue', () => {
      const rig = new NetRig({ mac: MAIN });
      rig.resetQueue(1, { reenable: false });
      expect(vqSet(rig, 1, 5, 50)).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((x) => x.code)).to.deep.equal(['ctrl.coal-vq-not-data-queue']);
    });

    it('saved_state_keeps_the_parameters_and_an_image_without_them_restores_zero', () => {
      const rig = new NetRig({ mac: MAIN, queuePairs: 2 });
      expect(coalSet(rig, CtrlNotfCoal.TX_SET, 3, 30)).to.equal(CtrlAck.OK);
      expect(vqSet(rig, 2, 4, 40)).to.equal(CtrlAck.OK);
      const image = rig.device.saveState();
      const restoreInto = (img: Uint8Array): NetRig => {
        const b = new NetRig({ mac: MAIN, queuePairs: 2, init: false });
        b.memory.write(0, rig.memory.bytes(0, rig.memory.size));
        b.device.restoreState(img);
        return b;
      };
      const coalPayload = (img: Uint8Array): number[] => [...sectionsOf(img).find((x) => x.tag === 'NCOA')!.payload];
      // tx 3/30, rx 0/0, 4 queues: rx0 0/0, tx1 3/30, rx2 4/40, tx3 3/30.
      const q = (p: number, u: number): number[] => [...le32(p), ...le32(u)];
      const saved = [...q(3, 30), ...q(0, 0), ...le16(4), ...q(0, 0), ...q(3, 30), ...q(4, 40), ...q(3, 30)];
      expect(coalPayload(image)).to.deep.equal(saved);
      expect(coalPayload(restoreInto(image).device.saveState())).to.deep.equal(saved);
      // An image written before the section existed: the restored device has every parameter 0.
      const old = encodeStateImage(sectionsOf(image).filter((x) => x.tag !== 'NCOA'));
      const zero = [...q(0, 0), ...q(0, 0), ...le16(4), ...q(0, 0), ...q(0, 0), ...q(0, 0), ...q(0, 0)];
      expect(coalPayload(restoreInto(old).device.saveState())).to.deep.equal(zero);
    });

    it('an_image_with_coalescing_for_another_queue_count_is_refused_as_corrupt', () => {
      const rig = new NetRig({ mac: MAIN });
      const image = rig.device.saveState();
      const bad = encodeStateImage(sectionsOf(image).map((x) => (x.tag === 'NCOA' ? { ...x, payload: Uint8Array.from([...new Array<number>(16).fill(0), ...le16(3), ...new Array<number>(24).fill(0)]) } : x)));
      const b = new NetRig({ mac: MAIN, init: false });
      expect(() => b.device.restoreState(bad)).to.throw(/coalescing parameters for 3 data queues, the device has 2/);
    });
  });
});
