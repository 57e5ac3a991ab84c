// Applying a parsed control command (VIRTIO 1.2 §5.1.6.5) to the device state, deciding the ack.
//
// Two modes:
// - default (QEMU 7.2): what QEMU acks OK is acked OK here. QEMU does not check the feature bits
//   for RX, MAC, VLAN or ANNOUNCE commands (an RX command without CTRL_RX is processed), it ignores
//   payload bytes past the ones a command reads, treats any non-zero RX byte as "on", and drops
//   the RSC_EXT bit from GUEST_OFFLOADS_SET. These are still driver mistakes: each is reported as a
//   diagnostic with `tolerated: true`.
// - strict: every such tolerated mistake is answered VIRTIO_NET_ERR and changes nothing.
// Mistakes QEMU refuses (MQ or GUEST_OFFLOADS without their feature, short payloads, VLAN id >=
// 4096, malformed MAC tables…) are VIRTIO_NET_ERR in both modes.
//
// Feature gates (the driver requirement each one enforces):
//   RX PROMISC, ALLMULTI → CTRL_RX; ALLUNI, NOMULTI, NOUNI, NOBCAST → CTRL_RX_EXTRA (§5.1.6.5.1.2)
//   MAC TABLE_SET → CTRL_RX (§5.1.6.5.2.2)
//   MAC ADDR_SET → CTRL_MAC_ADDR. §5.1.6.5.2.2 words the CTRL_RX rule for the whole MAC class, but
//     CTRL_MAC_ADDR only requires CTRL_VQ (§5.1.3.1) and Linux sends ADDR_SET on CTRL_MAC_ADDR
//     alone, so ADDR_SET is gated on CTRL_MAC_ADDR only.
//   VLAN → CTRL_VLAN (§5.1.6.5.3); ANNOUNCE → GUEST_ANNOUNCE (§5.1.6.5.4.1)
//   MQ VQ_PAIRS_SET → MQ, RSS_CONFIG → RSS, HASH_CONFIG → HASH_REPORT; GUEST_OFFLOADS → CTRL_GUEST_OFFLOADS
//     (QEMU enforces these four).
//
// GUEST_OFFLOADS_SET and the host: the offloads are applied to the backend (TUNSETOFFLOAD) before the
// ack is decided, through `CtrlState.applyHostOffloads`. When the host refuses them the command is
// acked VIRTIO_NET_ERR and the previous offloads stay in force, in the device and in the host
// alike ("never ack OK for something not done"). QEMU 7.2 acks OK whatever happens: its
// virtio_net_handle_offloads returns OK after virtio_net_apply_guest_offloads, and tap_fd_set_offload
// only prints the TUNSETOFFLOAD error. Keeping OK and letting the device enforce the new offloads on
// the host's frames (rx-header.ts does so anyway) was the other choice; it is refused because the
// host goes on with the old ones: turning TSO off would then drop every large frame the host still
// sends, silently stalling the guest's TCP, where ERR lets the driver keep its working setting and
// report the failure (Linux: the ethtool -K request fails). A backend without the offload
// capability takes no part; the device alone enforces the offloads, so OK is then true.
//
// Every successful RX, MAC or VLAN command counts as an rx-filter change, even when it changes
// nothing (QEMU notifies on each); the caller feeds that to the ChangeLatch. State the device
// exposes to the guest (config `mac`, the STATUS ANNOUNCE bit) is updated here, before the caller
// writes the ack and uses the chain, as §5.1.6.5.2.1 and §5.1.6.5.4.2 require.

import {
  CtrlAck,
  CtrlClass,
  CtrlMac,
  CtrlMq,
  CtrlRx,
  CtrlVlan,
  ETH_ALEN,
  GUEST_OFFLOAD_FEATURES,
  MQ_VQ_PAIRS_MAX,
  MQ_VQ_PAIRS_MIN,
  NetFeature,
  featureMask,
  featureName,
  hasFeature,
  type CtrlAckValue,
} from './constants.js';
import {
  CtrlSection,
  parseCtrlCommandReused,
  parseCtrlPayload,
  type CtrlCommand,
  type CtrlDiagnostic,
  type CtrlDiagnosticCode,
  type CtrlViolation,
} from './ctrl-command.js';
import type { RxFilterState } from './rx-filter.js';
import { RSS_REFUSED, applyRssCommand, commitRss, type RssState, type RxQueueEnabled } from './rss-config.js';
import { formatMac } from './mac.js';

/** What the control queue may read: fixed for the life of a driver session. */
export interface CtrlContext {
  /** Negotiated feature bits. */
  readonly features: bigint;
  /** Refuse every driver mistake, including the ones QEMU tolerates. */
  readonly strict: boolean;
  /** `max_virtqueue_pairs` the device offers (§5.1.4). */
  readonly maxQueuePairs: number;
}

/** What the control queue may change. */
export interface CtrlState {
  readonly rxFilter: RxFilterState;
  /** VIRTIO_NET_S_ANNOUNCE in config `status`. */
  announcePending: boolean;
  /** Queue pairs in use (VQ_PAIRS_SET). */
  queuePairs: number;
  /** Guest offloads in effect, as feature bits (GUEST_OFFLOADS_SET). */
  guestOffloads: bigint;
  /**
   * The host's part of GUEST_OFFLOADS_SET: tells the backend the offloads (TUNSETOFFLOAD). False
   * when the host refused them: the command is acked VIRTIO_NET_ERR and `guestOffloads` keeps its
   * value. Absent when there is no backend to tell.
   */
  readonly applyHostOffloads?: (offloads: bigint) => boolean;
  /** RSS / hash configuration (RSS_CONFIG, HASH_CONFIG; rss-config.ts). Absent: both refused. */
  readonly rss?: RssState;
  /** Whether a receive queue is enabled now (RSS_CONFIG's table and unclassified_queue must name one). Absent: every receive queue of the device. */
  readonly isEnabledRxQueue?: RxQueueEnabled;
  /**
   * Classes answered outside this file (NOTF_COAL: coalescing.ts, STATS: device-stats.ts): their
   * outcome, or null for a class they do not own. `resultRoom`: the chain's writable bytes after
   * the ack (a command-specific result goes there).
   */
  readonly otherClass?: (bytes: Uint8Array, ctx: CtrlContext, resultRoom: number) => CtrlOutcome | null;
}

/** What a successful command changed. */
export type CtrlEffect = 'none' | 'rx-filter' | 'announce' | 'queue-pairs' | 'guest-offloads' | 'coalescing';

export interface CtrlOutcome {
  /** Tells an outcome from a CtrlViolation (see handleCtrl). */
  readonly kind: 'ack';
  /** The byte to write to the chain's ack. */
  readonly ack: CtrlAckValue;
  /** A successful RX, MAC or VLAN command (even a no-op): feed to ChangeLatch.trigger(). */
  readonly rxFilterChanged: boolean;
  readonly effect: CtrlEffect;
  /** The driver's mistakes in this command, tolerated or not. */
  readonly diagnostics: readonly CtrlDiagnostic[];
  /** The command-specific result, written after the ack (§5.1.6.5; VQ_GET, STATS), cut to the room there is. */
  readonly result?: Uint8Array;
}

/** Parses and applies one control chain's readable bytes. A violation is tier 1: the caller's. */
export function handleCtrl(bytes: Uint8Array, ctx: CtrlContext, state: CtrlState, resultRoom = 0): CtrlOutcome | CtrlViolation {
  if (bytes.length >= 2 && state.otherClass !== undefined) {
    const other = state.otherClass(bytes, ctx, resultRoom);
    if (other !== null) return other;
  }
  const parsed = parseCtrlCommandReused(bytes);
  return parsed.kind === 'violation' ? parsed : applyCtrlCommand(parsed, ctx, state);
}

/**
 * handleCtrl for a command the control queue reads in place: class and command already read (once)
 * from the chain, the payload `bytes[at, end)` where it lies in guest memory. Only for classes
 * `parsesInPlace` names: `state.otherClass` owns none of them, so it is not asked.
 */
export function handleCtrlInPlace(ctrlClass: number, command: number, bytes: Uint8Array, at: number, end: number, ctx: CtrlContext, state: CtrlState): CtrlOutcome {
  return applyCtrlCommand(parseCtrlPayload(ctrlClass, command, bytes, at, end), ctx, state);
}

const NO_DIAGNOSTICS: readonly CtrlDiagnostic[] = Object.freeze([]);
/** ETH_ALEN as a module-local constant for the table loop (imported bindings stay loads under tsx). */
const MAC_LEN = ETH_ALEN;
const RSC_EXT_MASK = featureMask(NetFeature.RSC_EXT);

interface Gate {
  readonly bit: number;
  /** This gate's bit in `gatesOpen` (one bit per gate). */
  readonly flag: number;
  /** The same bit as a feature mask (checked without allocating a shifted bigint per command). */
  readonly mask: bigint;
  readonly section: string;
  /** QEMU 7.2 refuses the command without the feature too. */
  readonly enforcedByQemu: boolean;
}

const GATES: Gate[] = [];

function gate(bit: number, section: string, enforcedByQemu: boolean): Gate {
  const g = Object.freeze({ bit, flag: 1 << GATES.length, mask: featureMask(bit), section, enforcedByQemu });
  GATES.push(g);
  return g;
}

/** The features `gatesOpen` was computed for, and one bit per gate whose feature they hold. */
let gatesFeatures = -1n;
let gatesOpen = 0;

/**
 * Whether the gate's feature was negotiated. A bigint `&` allocates its result, so the answer for
 * every gate is computed once per feature set (fixed between DRIVER_OK and reset), not per command.
 */
function gateOpen(features: bigint, g: Gate): boolean {
  if (features !== gatesFeatures) {
    let open = 0;
    for (let i = 0; i < GATES.length; i++) if ((features & GATES[i]!.mask) !== 0n) open |= GATES[i]!.flag;
    gatesOpen = open;
    gatesFeatures = features;
  }
  return (gatesOpen & g.flag) !== 0;
}

// One frozen value per gate: gateFor runs per command and allocates nothing.
const GATE_RX = gate(NetFeature.CTRL_RX, CtrlSection.RX_DRIVER, false);
const GATE_RX_EXTRA = gate(NetFeature.CTRL_RX_EXTRA, CtrlSection.RX_DRIVER, false);
const GATE_MAC_TABLE = gate(NetFeature.CTRL_RX, CtrlSection.MAC_DRIVER, false);
const GATE_MAC_ADDR = gate(NetFeature.CTRL_MAC_ADDR, CtrlSection.MAC, false);
const GATE_VLAN = gate(NetFeature.CTRL_VLAN, CtrlSection.VLAN, false);
const GATE_ANNOUNCE = gate(NetFeature.GUEST_ANNOUNCE, CtrlSection.ANNOUNCE_DRIVER, false);
const GATE_MQ = gate(NetFeature.MQ, CtrlSection.MQ_DRIVER, true);
const GATE_RSS = gate(NetFeature.RSS, CtrlSection.RSS_DRIVER, true);
const GATE_HASH = gate(NetFeature.HASH_REPORT, CtrlSection.HASH_CONFIG, true);
const GATE_OFFLOADS = gate(NetFeature.CTRL_GUEST_OFFLOADS, CtrlSection.OFFLOADS_DRIVER, true);

function gateFor(ctrlClass: number, command: number): Gate | null {
  switch (ctrlClass) {
    case CtrlClass.RX:
      if (command === CtrlRx.PROMISC || command === CtrlRx.ALLMULTI) return GATE_RX;
      if (command <= CtrlRx.NOBCAST) return GATE_RX_EXTRA;
      return null;
    case CtrlClass.MAC:
      if (command === CtrlMac.TABLE_SET) return GATE_MAC_TABLE;
      if (command === CtrlMac.ADDR_SET) return GATE_MAC_ADDR;
      return null;
    case CtrlClass.VLAN:
      return GATE_VLAN;
    case CtrlClass.ANNOUNCE:
      return GATE_ANNOUNCE;
    case CtrlClass.MQ:
      if (command === CtrlMq.VQ_PAIRS_SET) return GATE_MQ;
      if (command === CtrlMq.RSS_CONFIG) return GATE_RSS;
      if (command === CtrlMq.HASH_CONFIG) return GATE_HASH;
      return null;
    case CtrlClass.GUEST_OFFLOADS:
      // QEMU checks the feature before the command byte.
      return GATE_OFFLOADS;
    default:
      return null;
  }
}

/**
 * Applies a parsed command. Never throws; a refused command changes nothing. The command's bytes
 * may be guest memory (read in place): every field is read once (the rx filter reads a MAC
 * address once and works on its own copy).
 */
export function applyCtrlCommand(cmd: CtrlCommand, ctx: CtrlContext, state: CtrlState): CtrlOutcome {
  const { ctrlClass, command } = cmd;
  // No closures and no per-command objects here: they dominated the cost of a command.
  const notes = NOTES.begin(ctrlClass, command, ctx.strict);

  const gate = gateFor(ctrlClass, command);
  if (gate !== null && !gateOpen(ctx.features, gate)) {
    notes.note(
      'ctrl.feature-not-negotiated',
      gate.section,
      `class ${ctrlClass} command ${command} needs ${featureName(gate.bit) ?? `feature ${gate.bit}`}, which was not negotiated`,
      !gate.enforcedByQemu,
    );
    if (gate.enforcedByQemu || ctx.strict) return refuse(notes.list);
  }
  if (cmd.kind === 'rejected') {
    notes.add(cmd.error);
    return refuse(notes.list);
  }
  const trailing = trailingOf(cmd);
  if (trailing > 0) {
    const refused = notes.tolerate('ctrl.trailing-bytes', sectionOf(ctrlClass), `class ${ctrlClass} command ${command} carries ${trailing} bytes past its data`);
    if (refused) return refuse(notes.list);
  }

  const rx = state.rxFilter;
  switch (cmd.kind) {
    case 'rx-mode': {
      if (cmd.value > 1 && notes.tolerate('ctrl.rx-value-not-boolean', CtrlSection.RX_DEVICE, `RX command ${command} data byte is ${cmd.value}; it must be 0 or 1`)) {
        return refuse(notes.list);
      }
      const on = cmd.value !== 0; // QEMU stores the byte; any non-zero value is "on".
      switch (command) {
        case CtrlRx.PROMISC: rx.promiscuous = on; break;
        case CtrlRx.ALLMULTI: rx.allMulti = on; break;
        case CtrlRx.ALLUNI: rx.allUni = on; break;
        case CtrlRx.NOMULTI: rx.noMulti = on; break;
        case CtrlRx.NOUNI: rx.noUni = on; break;
        default: rx.noBcast = on; break; // CtrlRx.NOBCAST: the parser admits nothing else.
      }
      return changed(notes.list);
    }
    case 'mac-addr-set':
      rx.setMainMac(cmd.bytes, cmd.offset); // reads each byte once, even in guest memory
      return changed(notes.list);
    case 'mac-table-set': {
      // Built completely in the scratch table, committed only on success.
      const table = rx.beginMacTable();
      table.uniOverflow = cmd.uniOverflow;
      table.multiOverflow = cmd.multiOverflow;
      const bytes = cmd.bytes;
      // The table reads each address once (it may be guest memory) and is checked on its own copy.
      const uni = table.uniBytes;
      for (let i = 0, at = cmd.uniOffset; i < cmd.uniKept; i++, at += MAC_LEN) {
        table.addUnicast(bytes, at);
        if ((uni[i * MAC_LEN]! & 1) === 1 && wrongKind(notes, i, uni, 'unicast')) return refuse(notes.list);
      }
      const multi = table.multiBytes;
      for (let i = 0, at = cmd.multiOffset; i < cmd.multiKept; i++, at += MAC_LEN) {
        table.addMulticast(bytes, at);
        if ((multi[i * MAC_LEN]! & 1) === 0 && wrongKind(notes, i, multi, 'multicast')) return refuse(notes.list);
      }
      rx.commitMacTable();
      return changed(notes.list);
    }
    case 'vlan':
      if (command === CtrlVlan.ADD) rx.vlanAdd(cmd.vid);
      else rx.vlanDel(cmd.vid);
      return changed(notes.list);
    case 'announce-ack':
      if (!state.announcePending) {
        notes.note('ctrl.announce-not-pending', CtrlSection.ANNOUNCE_DEVICE, 'ANNOUNCE_ACK while VIRTIO_NET_S_ANNOUNCE is not set', false);
        return refuse(notes.list);
      }
      state.announcePending = false;
      return ok('announce', notes.list);
    case 'mq-vq-pairs-set': {
      const pairs = cmd.pairs;
      if (pairs < MQ_VQ_PAIRS_MIN || pairs > MQ_VQ_PAIRS_MAX || pairs > ctx.maxQueuePairs) {
        notes.note('ctrl.mq-pairs-out-of-range', CtrlSection.MQ_DRIVER, `VQ_PAIRS_SET ${pairs} is outside 1..${ctx.maxQueuePairs}`, false);
        return refuse(notes.list);
      }
      state.queuePairs = pairs;
      state.rss?.disable(); // QEMU 7.2: VQ_PAIRS_SET turns RSS off
      return ok('queue-pairs', notes.list);
    }
    case 'mq-rss': {
      const rss = state.rss;
      if (rss === undefined) {
        notes.note('ctrl.unknown-command', CtrlSection.MQ, `MQ command ${command} (RSS) is not implemented by this device`, false);
        return refuse(notes.list);
      }
      const pairs = applyRssCommand(cmd.bytes, command, ctx, rss, notes, RSS_TRAILING, state.isEnabledRxQueue);
      if (pairs === RSS_REFUSED) return refuse(notes.list);
      if (RSS_TRAILING.count > 0 && notes.tolerate('ctrl.trailing-bytes', CtrlSection.MQ, `class ${ctrlClass} command ${command} carries ${RSS_TRAILING.count} bytes past its key`)) {
        return refuse(notes.list);
      }
      commitRss(rss);
      if (pairs === 0) return ok('none', notes.list);
      state.queuePairs = pairs; // QEMU 7.2: max_tx_vq becomes the queue pairs in use (transmit; the table steers receive)
      return ok('queue-pairs', notes.list);
    }
    case 'guest-offloads-set': {
      let offloads = cmd.offloads;
      if ((offloads & RSC_EXT_MASK) !== 0n) {
        // QEMU clears RSC_EXT from the bitmap before checking it, negotiated or not.
        if (
          !hasFeature(ctx.features, NetFeature.RSC_EXT) &&
          notes.tolerate('ctrl.offloads-not-negotiated', CtrlSection.OFFLOADS_DRIVER, 'GUEST_OFFLOADS_SET enables RSC_EXT, which was not negotiated')
        ) {
          return refuse(notes.list);
        }
        offloads &= ~RSC_EXT_MASK;
      }
      const extra = offloads & ~(ctx.features & GUEST_OFFLOAD_FEATURES);
      if (extra !== 0n) {
        notes.note('ctrl.offloads-not-negotiated', CtrlSection.OFFLOADS_DRIVER, `GUEST_OFFLOADS_SET enables offloads 0x${extra.toString(16)} that were not negotiated`, false);
        return refuse(notes.list);
      }
      // The host's refusal is no driver mistake: no diagnostic. (The list is taken first: the
      // backend call may emit events, and NOTES is shared.)
      const list = notes.list;
      if (state.applyHostOffloads !== undefined && !state.applyHostOffloads(offloads)) return refuse(list);
      state.guestOffloads = offloads;
      return ok('guest-offloads', list);
    }
  }
}

function wrongKind(notes: Notes, index: number, list: Uint8Array, kind: 'unicast' | 'multicast'): boolean {
  return notes.tolerate(
    'ctrl.mac-table-wrong-kind',
    CtrlSection.MAC_DRIVER,
    `MAC TABLE_SET ${kind} entry ${index} is ${formatMac(list, index * ETH_ALEN)}, ${kind === 'unicast' ? 'a group' : 'an individual'} address`,
  );
}

/**
 * The driver's mistakes in the command being applied; the list is allocated only when there is
 * one. One instance serves every call (applyCtrlCommand is synchronous and never re-entered).
 */
class Notes {
  list: readonly CtrlDiagnostic[] = NO_DIAGNOSTICS;
  private ctrlClass = 0;
  private command = 0;
  private strict = false;

  begin(ctrlClass: number, command: number, strict: boolean): this {
    this.list = NO_DIAGNOSTICS;
    this.ctrlClass = ctrlClass;
    this.command = command;
    this.strict = strict;
    return this;
  }

  add(d: CtrlDiagnostic): void {
    this.list = this.list.length === 0 ? [d] : [...this.list, d];
  }

  note(code: CtrlDiagnosticCode, section: string, message: string, tolerated: boolean): void {
    this.add({ code, section, message, ctrlClass: this.ctrlClass, command: this.command, tolerated });
  }

  /** A tolerated mistake: reported; refused only in strict mode. Returns true when refused. */
  tolerate(code: CtrlDiagnosticCode, section: string, message: string): boolean {
    this.note(code, section, message, true);
    return this.strict;
  }
}

/** The payload bytes past the ones the command uses (0 for the kinds that have none). */
function trailingOf(cmd: CtrlCommand): number {
  switch (cmd.kind) {
    case 'rx-mode':
    case 'vlan':
    case 'announce-ack':
    case 'mq-vq-pairs-set':
    case 'guest-offloads-set':
      return cmd.trailing;
    default:
      return 0;
  }
}

function sectionOf(ctrlClass: number): string {
  switch (ctrlClass) {
    case CtrlClass.RX: return CtrlSection.RX_DEVICE;
    case CtrlClass.VLAN: return CtrlSection.VLAN;
    case CtrlClass.ANNOUNCE: return CtrlSection.ANNOUNCE;
    case CtrlClass.MQ: return CtrlSection.MQ;
    case CtrlClass.GUEST_OFFLOADS: return CtrlSection.OFFLOADS;
    default: return CtrlSection.CONTROL_VIRTQUEUE;
  }
}

// Outcomes without diagnostics are shared frozen values: a good command allocates no outcome.
const REFUSED: CtrlOutcome = Object.freeze({ kind: 'ack', ack: CtrlAck.ERR, rxFilterChanged: false, effect: 'none', diagnostics: NO_DIAGNOSTICS });
const CHANGED: CtrlOutcome = Object.freeze({ kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: true, effect: 'rx-filter', diagnostics: NO_DIAGNOSTICS });
const OK_BY_EFFECT: Readonly<Record<CtrlEffect, CtrlOutcome>> = Object.freeze({
  none: Object.freeze({ kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect: 'none', diagnostics: NO_DIAGNOSTICS }),
  'rx-filter': Object.freeze({ kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect: 'rx-filter', diagnostics: NO_DIAGNOSTICS }),
  announce: Object.freeze({ kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect: 'announce', diagnostics: NO_DIAGNOSTICS }),
  'queue-pairs': Object.freeze({ kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect: 'queue-pairs', diagnostics: NO_DIAGNOSTICS }),
  'guest-offloads': Object.freeze({ kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect: 'guest-offloads', diagnostics: NO_DIAGNOSTICS }),
  coalescing: Object.freeze({ kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect: 'coalescing', diagnostics: NO_DIAGNOSTICS }),
} as const);

function refuse(diagnostics: readonly CtrlDiagnostic[]): CtrlOutcome {
  return diagnostics.length === 0 ? REFUSED : { ...REFUSED, diagnostics };
}

function changed(diagnostics: readonly CtrlDiagnostic[]): CtrlOutcome {
  return diagnostics.length === 0 ? CHANGED : { ...CHANGED, diagnostics };
}

function ok(effect: CtrlEffect, diagnostics: readonly CtrlDiagnostic[]): CtrlOutcome {
  const base = OK_BY_EFFECT[effect];
  return diagnostics.length === 0 ? base : { ...base, diagnostics };
}

const NOTES = new Notes();
const RSS_TRAILING = { count: 0 };
