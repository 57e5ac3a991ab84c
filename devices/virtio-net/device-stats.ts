// Device statistics to the guest (VIRTIO 1.4 §5.1.6.5.11; class VIRTIO_NET_CTRL_STATS, feature
// DEVICE_STATS), answered from the counters `device.stats()` reports (net-stats.ts): one source,
// the guest and the embedder read the same numbers.
//
// Types the device supports (QUERY answers this bitmap): CVQ (bit 32), RX_BASIC (bit 0) and
// TX_BASIC (bit 16). RX/TX CSUM, GSO and SPEED are not offered: the device has no counters for
// them (the driver MUST ask only for queried types, §5.1.6.5.11.13, and one that asks anyway is
// refused).
//
// GET (data: N × { le16 vq_index, le16 reserved[3], le64 types_bitmap }) answers, for each entry in
// order and each type bit in ascending order, a reply of `struct virtio_net_stats_reply_hdr` (u8
// type, u8 reserved, le16 vq_index, le16 reserved1, le16 size) and the type's le64 fields, in the
// command-specific result after the ack, cut to the room the driver gave (device MUST "fill up only
// upto the valid bytes"). Any bad entry fails the whole command (§5.1.6.5.11.12): vq_index past
// the device's queues, an unknown type bit, a type not valid for that queue (RX on a transmitq,
// CVQ on a data queue), or one the device does not support.
//
// The numbers (le64; the counters are doubles below 2^53, so they never wrap in practice):
// - CVQ: command_num, ok_num, "including the current command": every control command answered
//   so far, plus this one (which is answered OK when the reply is written).
// - RX_BASIC: rx_notifications, rx_packets, rx_bytes, rx_interrupts per queue; rx_drops: the
//   frames the device took from the backend and dropped (`stats().rx.drops`, all reasons) that were
//   steered to that queue (RSS table, flow hash; receiveq1 with one pair in use); rx_drop_overruns:
//   0 — the device never drops for want of buffers
//   (it holds frames in its backlog and pauses the backend).
// - TX_BASIC: tx_notifications, tx_packets, tx_bytes (frames the backend took), tx_interrupts,
//   tx_drops (chains completed unsent, every `tx.errors` reason), tx_drop_malformed ('header-short'
//   and 'oversize').

import { CtrlAck, CtrlClass, CtrlStats, NetFeature, featureMask } from './constants.js';
import type { CtrlDiagnostic, CtrlDiagnosticCode } from './ctrl-command.js';
import type { CtrlContext, CtrlOutcome } from './ctrl-apply.js';
import type { NetStats } from './net-stats.js';

/** Sections (VIRTIO 1.4 numbering). */
export const StatsSection = {
  STATS: '5.1.6.5.11',
  GET: '5.1.6.5.11.2',
  DEVICE: '5.1.6.5.11.12',
  DRIVER: '5.1.6.5.11.13',
} as const;

/** Type bits (VIRTIO_NET_STATS_TYPE_*): bit numbers, which are also the reply `type` values. */
export const StatsType = {
  RX_BASIC: 0,
  RX_CSUM: 1,
  RX_GSO: 2,
  RX_SPEED: 3,
  TX_BASIC: 16,
  TX_CSUM: 17,
  TX_GSO: 18,
  TX_SPEED: 19,
  CVQ: 32,
} as const;

const KNOWN_TYPES = featureMask(...Object.values(StatsType));
const RX_TYPES = featureMask(StatsType.RX_BASIC, StatsType.RX_CSUM, StatsType.RX_GSO, StatsType.RX_SPEED);
const TX_TYPES = featureMask(StatsType.TX_BASIC, StatsType.TX_CSUM, StatsType.TX_GSO, StatsType.TX_SPEED);
/** What QUERY reports. */
export const SUPPORTED_STATS_TYPES = featureMask(StatsType.CVQ, StatsType.RX_BASIC, StatsType.TX_BASIC);

const DEVICE_STATS_MASK = featureMask(NetFeature.DEVICE_STATS);
const ENTRY_LENGTH = 16;
const REPLY_HEADER = 8;
/** Reply sizes: header + 2 fields (CVQ), header + 6 fields (basic). */
const CVQ_REPLY = REPLY_HEADER + 2 * 8;
const BASIC_REPLY = REPLY_HEADER + 6 * 8;

/** What the answer reads. */
export interface StatsSource {
  /** The counters now (`device.stats()`). */
  stats(): NetStats;
  /** Index of the control queue, or -1. */
  readonly ctrlIndex: number;
  /** Data queues the device has for the negotiated features (2 × pairs with MQ, else 2). */
  readonly dataQueues: number;
}

function diag(code: CtrlDiagnosticCode, section: string, message: string, command: number, tolerated = false): CtrlDiagnostic {
  return { code, section, message, ctrlClass: CtrlClass.STATS, command, tolerated };
}

function refuse(d: CtrlDiagnostic): CtrlOutcome {
  return { kind: 'ack', ack: CtrlAck.ERR, rxFilterChanged: false, effect: 'none', diagnostics: [d] };
}

function answer(result: Uint8Array, diagnostics: readonly CtrlDiagnostic[]): CtrlOutcome {
  return { kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect: 'none', diagnostics, result };
}

/** One class STATS command (`bytes`: class, command, data). */
export function handleStatsCommand(bytes: Uint8Array, ctx: CtrlContext, src: StatsSource, resultRoom: number): CtrlOutcome {
  const command = bytes[1]!;
  if (command > CtrlStats.GET) {
    return refuse(diag('ctrl.unknown-command', StatsSection.STATS, `unknown command ${command} in control class ${CtrlClass.STATS} (STATS)`, command));
  }
  if ((ctx.features & DEVICE_STATS_MASK) === 0n) {
    return refuse(diag('ctrl.feature-not-negotiated', StatsSection.STATS, `STATS command ${command} needs DEVICE_STATS, which was not negotiated`, command));
  }
  const payload = bytes.length - 2;
  if (command === CtrlStats.QUERY) {
    let notes: readonly CtrlDiagnostic[] = [];
    if (payload > 0) {
      notes = [diag('ctrl.trailing-bytes', StatsSection.STATS, `STATS QUERY carries ${payload} data bytes; it has none`, command, true)];
      if (ctx.strict) return { kind: 'ack', ack: CtrlAck.ERR, rxFilterChanged: false, effect: 'none', diagnostics: notes };
    }
    if (resultRoom < 8) {
      return refuse(diag('ctrl.result-too-short', StatsSection.STATS, `STATS QUERY needs 8 writable bytes after the ack for its result, the chain has ${Math.max(0, resultRoom)}`, command));
    }
    const r = new Uint8Array(8);
    writeLe64(new DataView(r.buffer), 0, SUPPORTED_STATS_TYPES);
    return answer(r, notes);
  }
  // GET: validate every entry first (one bad entry fails the command), then size and write.
  if (payload === 0 || payload % ENTRY_LENGTH !== 0) {
    return refuse(diag('ctrl.stats-request-malformed', StatsSection.GET, `STATS GET carries ${payload} data bytes; it needs a non-zero multiple of ${ENTRY_LENGTH}`, command));
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries = payload / ENTRY_LENGTH;
  let size = 0;
  for (let e = 0; e < entries; e++) {
    const at = 2 + e * ENTRY_LENGTH;
    const vq = dv.getUint16(at, true);
    const types = readLe64(dv, at + 8);
    const isCtrl = vq === src.ctrlIndex;
    if (!isCtrl && vq >= src.dataQueues) {
      return refuse(diag('ctrl.stats-vq-out-of-range', StatsSection.DEVICE, `STATS GET entry ${e}: vq_index ${vq} is not one of the device's queues`, command));
    }
    const unknown = types & ~KNOWN_TYPES;
    if (unknown !== 0n) {
      return refuse(diag('ctrl.stats-type-invalid', StatsSection.DEVICE, `STATS GET entry ${e}: unknown type bits 0x${unknown.toString(16)}`, command));
    }
    const valid = isCtrl ? featureMask(StatsType.CVQ) : (vq & 1) === 0 ? RX_TYPES : TX_TYPES;
    const wrong = types & ~valid;
    if (wrong !== 0n) {
      return refuse(diag('ctrl.stats-type-invalid', StatsSection.DRIVER, `STATS GET entry ${e}: types 0x${wrong.toString(16)} are not valid for queue ${vq}`, command));
    }
    const unsupported = types & ~SUPPORTED_STATS_TYPES;
    if (unsupported !== 0n) {
      return refuse(diag('ctrl.stats-type-invalid', StatsSection.DRIVER, `STATS GET entry ${e}: types 0x${unsupported.toString(16)} were not reported by QUERY`, command));
    }
    if (types !== 0n) size += isCtrl ? CVQ_REPLY : BASIC_REPLY;
  }
  const stats = src.stats();
  const out = new Uint8Array(Math.min(size, Math.max(0, resultRoom)));
  // Written into a full-size scratch, then cut: simpler than bounds on every field.
  const full = new Uint8Array(size);
  const w = new DataView(full.buffer);
  let pos = 0;
  for (let e = 0; e < entries; e++) {
    const at = 2 + e * ENTRY_LENGTH;
    const vq = dv.getUint16(at, true);
    const types = readLe64(dv, at + 8);
    if (types === 0n) continue;
    if (vq === src.ctrlIndex) {
      pos = header(w, pos, StatsType.CVQ, vq, CVQ_REPLY);
      const ok = stats.ctrl.ok + 1; // this command, answered OK
      pos = field(w, pos, ok + stats.ctrl.err);
      pos = field(w, pos, ok);
      continue;
    }
    const q = stats.queues[vq]!;
    const rx = (vq & 1) === 0;
    pos = header(w, pos, rx ? StatsType.RX_BASIC : StatsType.TX_BASIC, vq, BASIC_REPLY);
    pos = field(w, pos, q.notifications);
    pos = field(w, pos, q.packets);
    pos = field(w, pos, q.bytes);
    pos = field(w, pos, q.interrupts);
    pos = field(w, pos, q.drops);
    pos = field(w, pos, rx ? 0 : q.malformed); // rx_drop_overruns: never (see the file comment)
  }
  out.set(full.subarray(0, out.length));
  return answer(out, []);
}

function header(w: DataView, pos: number, type: number, vq: number, size: number): number {
  w.setUint8(pos, type);
  w.setUint8(pos + 1, 0);
  w.setUint16(pos + 2, vq, true);
  w.setUint16(pos + 4, 0, true);
  w.setUint16(pos + 6, size, true);
  return pos + REPLY_HEADER;
}

function field(w: DataView, pos: number, value: number): number {
  writeLe64(w, pos, BigInt(Math.floor(value)) & 0xffff_ffff_ffff_ffffn);
  return pos + 8;
}

function readLe64(dv: DataView, at: number): bigint {
  return (BigInt(dv.getUint32(at + 4, true)) << 32n) | BigInt(dv.getUint32(at, true));
}

function writeLe64(dv: DataView, at: number, v: bigint): void {
  dv.setUint32(at, Number(v & 0xffff_ffffn), true);
  dv.setUint32(at + 4, Number((v >> 32n) & 0xffff_ffffn), true);
}
