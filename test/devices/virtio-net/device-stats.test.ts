// DEVICE_STATS (VIRTIO 1.4 §5.1.6.5.11, devices/virtio-net/device-stats.ts): the capability
// query, the replies for the control, receive and transmit queues read from the same counters as
// `device.stats()`, a result buffer cut short, and every malformed request the spec names.

import { expect } from 'chai';
import { NetRig, ethFrame, le16 } from '../../support/net-rig.js';
import { CtrlAck, CtrlClass, CtrlStats } from '../../../devices/virtio-net/constants.js';
import { StatsType, SUPPORTED_STATS_TYPES } from '../../../devices/virtio-net/device-stats.js';

const MAIN = '52:54:00:12:34:56';
const OTHER = '52:54:00:99:99:99';

function le64(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((v >> (8n * i)) & 0xffn));
  return out;
}

/** One request entry: le16 vq_index, le16 reserved[3], le64 types_bitmap. */
function entry(vq: number, types: bigint): number[] {
  return [...le16(vq), 0, 0, 0, 0, 0, 0, ...le64(types)];
}

/** Sends a STATS command; returns the ack and the result bytes (the writable buffer after the ack). */
function stats(rig: NetRig, command: number, data: number[], resultLen: number): { ack: number; result: Uint8Array; used: number } {
  const ctrl = rig.ringAt(rig.ctrlIndex);
  let head = -1;
  rig.kick(rig.ctrlIndex, () => {
    head = ctrl.addChain([
      { len: 2, data: [CtrlClass.STATS, command] },
      ...(data.length > 0 ? [{ len: data.length, data }] : []),
      { len: 1, write: true, data: [0xff] },
      { len: resultLen, write: true, data: new Array<number>(resultLen).fill(0xee) },
    ]);
  });
  const used = ctrl.takeUsed().find((u) => u.id === head)!;
  const first = data.length > 0 ? 2 : 1;
  return { ack: ctrl.bufferBytes(head, first)[0]!, result: ctrl.bufferBytes(head, first + 1), used: used.len };
}

interface Reply {
  type: number;
  vq: number;
  size: number;
  fields: bigint[];
}

function replies(bytes: Uint8Array): Reply[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Reply[] = [];
  for (let at = 0; at + 8 <= bytes.length; ) {
    const size = dv.getUint16(at + 6, true);
    if (size === 0 || at + size > bytes.length) break;
    const fields: bigint[] = [];
    for (let f = at + 8; f < at + size; f += 8) fields.push(dv.getBigUint64(f, true));
    out.push({ type: bytes[at]!, vq: dv.getUint16(at + 2, true), size, fields });
    at += size;
  }
  return out;
}

describe('devices/virtio-net DEVICE_STATS', () => {
  it('query_reports_cvq_rx_basic_and_tx_basic', () => {
    const rig = new NetRig({ mac: MAIN });
    expect(rig.has('DEVICE_STATS')).to.equal(true);
    const r = stats(rig, CtrlStats.QUERY, [], 8);
    expect(r.ack).to.equal(CtrlAck.OK);
    expect(r.used).to.equal(9);
    expect(new DataView(r.result.buffer, r.result.byteOffset, 8).getBigUint64(0, true)).to.equal(SUPPORTED_STATS_TYPES);
    expect(SUPPORTED_STATS_TYPES).to.equal((1n << 32n) | (1n << 0n) | (1n << 16n));
  });

  it('get_answers_each_queue_from_the_counters_of_stats', () => {
    const rig = new NetRig({ mac: MAIN, features: { disable: ['EVENT_IDX'] } });
    expect(rig.cmd(CtrlClass.RX, 0, [0])).to.equal(CtrlAck.OK); // PROMISC off: the filter drops
    rig.postRx(8);
    for (let i = 0; i < 3; i++) rig.inject(ethFrame(MAIN, OTHER, { payload: 100 }));
    rig.inject(ethFrame(OTHER, OTHER)); // filtered: a drop
    for (let i = 0; i < 2; i++) rig.send(ethFrame(OTHER, MAIN, { payload: 60 }));
    rig.send(new Uint8Array(0), { hdrLen: 4 }); // header short: malformed, dropped
    const before = rig.device.stats();
    const r = stats(rig, CtrlStats.GET, [...entry(0, 1n << 0n), ...entry(1, 1n << 16n), ...entry(rig.ctrlIndex, 1n << 32n)], 3 * 56);
    expect(r.ack).to.equal(CtrlAck.OK);
    const got = replies(r.result);
    const rx = before.queues[0]!;
    const tx = before.queues[1]!;
    expect(rx).to.include({ packets: 3, bytes: 3 * 114, drops: 1 });
    expect(tx).to.include({ packets: 2, bytes: 2 * 74, drops: 1, malformed: 1 });
    expect(got).to.deep.equal([
      { type: StatsType.RX_BASIC, vq: 0, size: 56, fields: [rx.notifications, rx.packets, rx.bytes, rx.interrupts, rx.drops, 0].map(BigInt) },
      { type: StatsType.TX_BASIC, vq: 1, size: 56, fields: [tx.notifications, tx.packets, tx.bytes, tx.interrupts, tx.drops, tx.malformed].map(BigInt) },
      // The current command counts, as completed OK.
      { type: StatsType.CVQ, vq: rig.ctrlIndex, size: 24, fields: [BigInt(before.ctrl.ok + before.ctrl.err + 1), BigInt(before.ctrl.ok + 1)] },
    ]);
    expect(rx.notifications).to.be.greaterThan(0);
    expect(tx.interrupts).to.equal(3);
    expect(r.used).to.equal(1 + 56 + 56 + 24);
  });

  it('a_short_result_buffer_gets_the_replies_cut_to_its_length', () => {
    const rig = new NetRig({ mac: MAIN });
    const r = stats(rig, CtrlStats.GET, [...entry(0, 1n), ...entry(1, 1n << 16n)], 60);
    expect(r.ack).to.equal(CtrlAck.OK);
    expect(r.used).to.equal(61);
    expect(replies(r.result).map((x) => x.type)).to.deep.equal([StatsType.RX_BASIC]);
    // The bytes past the first reply are the second's header, cut.
    expect([...r.result.subarray(56, 60)]).to.deep.equal([StatsType.TX_BASIC, 0, 1, 0]);
  });

  it('an_entry_with_no_types_gets_no_reply', () => {
    const rig = new NetRig({ mac: MAIN });
    const r = stats(rig, CtrlStats.GET, [...entry(0, 0n), ...entry(1, 1n << 16n)], 56);
    expect(r.ack).to.equal(CtrlAck.OK);
    expect(replies(r.result).map((x) => x.vq)).to.deep.equal([1]);
  });

  describe('driver mistakes (§5.1.6.5.11.12: one bad entry fails the command)', () => {
    const cases: [string, (ctrl: number) => number[], string][] = [
      ['vq_index_past_the_queues', () => [...entry(0, 1n), ...entry(7, 1n)], 'ctrl.stats-vq-out-of-range'],
      ['an_unknown_type_bit', () => entry(0, 1n << 5n), 'ctrl.stats-type-invalid'],
      ['a_receive_type_on_a_transmit_queue', () => entry(1, 1n), 'ctrl.stats-type-invalid'],
      ['the_cvq_type_on_a_data_queue', () => entry(0, 1n << 32n), 'ctrl.stats-type-invalid'],
      ['a_transmit_type_on_the_control_queue', (c) => entry(c, 1n << 16n), 'ctrl.stats-type-invalid'],
      ['a_type_query_did_not_report', () => entry(0, 1n << 1n), 'ctrl.stats-type-invalid'],
      ['a_payload_not_a_multiple_of_16', () => [...entry(0, 1n), 0], 'ctrl.stats-request-malformed'],
      ['an_empty_request', () => [], 'ctrl.stats-request-malformed'],
    ];
    for (const [name, data, code] of cases) {
      it(`${name}_is_refused`, () => {
        const rig = new NetRig({ mac: MAIN });
        const r = stats(rig, CtrlStats.GET, data(rig.ctrlIndex), 200);
        expect(r.ack).to.equal(CtrlAck.ERR);
        expect(r.used).to.equal(1);
        expect(rig.device.diagnostics().map((d) => d.code)).to.deep.equal([code]);
        expect(rig.device.diagnostics()[0]!.section).to.match(/^5\.1\.6\.5\.11/);
      });
    }

    it('stats_without_device_stats_negotiated_is_refused', () => {
      const rig = new NetRig({ mac: MAIN, features: { disable: ['DEVICE_STATS'] } });
      expect(stats(rig, CtrlStats.QUERY, [], 8).ack).to.equal(CtrlAck.ERR);
      expect(stats(rig, CtrlStats.GET, entry(0, 1n), 56).ack).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((d) => d.code)).to.deep.equal(['ctrl.feature-not-negotiated', 'ctrl.feature-not-negotiated']);
    });

    it('query_without_room_for_the_bitmap_is_refused', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(stats(rig, CtrlStats.QUERY, [], 4).ack).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((d) => d.code)).to.deep.equal(['ctrl.result-too-short']);
    });

    it('an_unknown_stats_command_is_refused', () => {
      const rig = new NetRig({ mac: MAIN });
      expect(stats(rig, 2, [], 8).ack).to.equal(CtrlAck.ERR);
      expect(rig.device.diagnostics().map((d) => d.code)).to.deep.equal(['ctrl.unknown-command']);
    });
  });

  it('device_stats_is_not_offered_without_ctrl_vq', () => {
    const rig = new NetRig({ mac: MAIN, features: { disable: ['CTRL_VQ'] } });
    expect(rig.device.offered & (1n << 50n)).to.equal(0n);
  });
});
