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
  parseCtrlCommand,
  type CtrlCommand,
  type CtrlDiagnostic,
  type CtrlDiagnosticCode,
  type CtrlViolation,
} from './ctrl-command.js';
import type { RxFilterState } from './rx-filter.js';
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
}

/** What a successful command changed. */
export type CtrlEffect = 'none' | 'rx-filter' | 'announce' | 'queue-pairs' | 'guest-offloads';

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
}

/** Parses and applies one control chain's readable bytes. A violation is tier 1: the caller's. */
export function handleCtrl(bytes: Uint8Array, ctx: CtrlContext, state: CtrlState): CtrlOutcome | CtrlViolation {
  const parsed = parseCtrlCommand(bytes);
  return parsed.kind === 'violation' ? parsed : applyCtrlCommand(parsed, ctx, state);
}

const NO_DIAGNOSTICS: readonly CtrlDiagnostic[] = Object.freeze([]);
const RSC_EXT_MASK = featureMask(NetFeature.RSC_EXT);

interface Gate {
  readonly bit: number;
  readonly section: string;
  /** QEMU 7.2 refuses the command without the feature too. */
  readonly enforcedByQemu: boolean;
}

function gateFor(ctrlClass: number, command: number): Gate | null {
  switch (ctrlClass) {
    case CtrlClass.RX:
      if (command === CtrlRx.PROMISC || command === CtrlRx.ALLMULTI) return { bit: NetFeature.CTRL_RX, section: CtrlSection.RX_DRIVER, enforcedByQemu: false };
      if (command <= CtrlRx.NOBCAST) return { bit: NetFeature.CTRL_RX_EXTRA, section: CtrlSection.RX_DRIVER, enforcedByQemu: false };
      return null;
    case CtrlClass.MAC:
      if (command === CtrlMac.TABLE_SET) return { bit: NetFeature.CTRL_RX, section: CtrlSection.MAC_DRIVER, enforcedByQemu: false };
      if (command === CtrlMac.ADDR_SET) return { bit: NetFeature.CTRL_MAC_ADDR, section: CtrlSection.MAC, enforcedByQemu: false };
      return null;
    case CtrlClass.VLAN:
      return { bit: NetFeature.CTRL_VLAN, section: CtrlSection.VLAN, enforcedByQemu: false };
    case CtrlClass.ANNOUNCE:
      return { bit: NetFeature.GUEST_ANNOUNCE, section: CtrlSection.ANNOUNCE_DRIVER, enforcedByQemu: false };
    case CtrlClass.MQ:
      if (command === CtrlMq.VQ_PAIRS_SET) return { bit: NetFeature.MQ, section: CtrlSection.MQ_DRIVER, enforcedByQemu: true };
      if (command === CtrlMq.RSS_CONFIG) return { bit: NetFeature.RSS, section: CtrlSection.RSS_DRIVER, enforcedByQemu: true };
      if (command === CtrlMq.HASH_CONFIG) return { bit: NetFeature.HASH_REPORT, section: CtrlSection.HASH_CONFIG, enforcedByQemu: true };
      return null;
    case CtrlClass.GUEST_OFFLOADS:
      // QEMU checks the feature before the command byte.
      return { bit: NetFeature.CTRL_GUEST_OFFLOADS, section: CtrlSection.OFFLOADS_DRIVER, enforcedByQemu: true };
    default:
      return null;
  }
}

/** Applies a parsed command. Never throws; a refused command changes nothing. */
export function applyCtrlCommand(cmd: CtrlCommand, ctx: CtrlContext, state: CtrlState): CtrlOutcome {
  const { ctrlClass, command } = cmd;
  const diagnostics: CtrlDiagnostic[] = [];
  const note = (code: CtrlDiagnosticCode, section: string, message: string, tolerated: boolean): void => {
    diagnostics.push({ code, section, message, ctrlClass, command, tolerated });
  };
  /** A tolerated mistake: reported; refused only in strict mode. Returns true when refused. */
  const tolerate = (code: CtrlDiagnosticCode, section: string, message: string): boolean => {
    note(code, section, message, true);
    return ctx.strict;
  };

  const gate = gateFor(ctrlClass, command);
  if (gate !== null && !hasFeature(ctx.features, gate.bit)) {
    note(
      'ctrl.feature-not-negotiated',
      gate.section,
      `class ${ctrlClass} command ${command} needs ${featureName(gate.bit) ?? `feature ${gate.bit}`}, which was not negotiated`,
      !gate.enforcedByQemu,
    );
    if (gate.enforcedByQemu || ctx.strict) return refuse(diagnostics);
  }
  if (cmd.kind === 'rejected') {
    diagnostics.push(cmd.error);
    return refuse(diagnostics);
  }
  if ('trailing' in cmd && cmd.trailing > 0) {
    const refused = tolerate('ctrl.trailing-bytes', sectionOf(ctrlClass), `class ${ctrlClass} command ${command} carries ${cmd.trailing} bytes past its data`);
    if (refused) return refuse(diagnostics);
  }

  const rx = state.rxFilter;
  switch (cmd.kind) {
    case 'rx-mode': {
      if (cmd.value > 1 && tolerate('ctrl.rx-value-not-boolean', CtrlSection.RX_DEVICE, `RX command ${command} data byte is ${cmd.value}; it must be 0 or 1`)) {
        return refuse(diagnostics);
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
      return changed(diagnostics);
    }
    case 'mac-addr-set':
      rx.setMainMac(cmd.bytes, cmd.offset);
      return changed(diagnostics);
    case 'mac-table-set': {
      // Built completely in the scratch table, committed only on success.
      const table = rx.beginMacTable();
      table.uniOverflow = cmd.uniOverflow;
      table.multiOverflow = cmd.multiOverflow;
      for (let i = 0; i < cmd.uniKept; i++) {
        table.addUnicast(cmd.bytes, cmd.uniOffset + i * ETH_ALEN);
        if ((table.uniBytes[i * ETH_ALEN]! & 1) === 1 && wrongKind(i, table.uniBytes, 'unicast')) return refuse(diagnostics);
      }
      for (let i = 0; i < cmd.multiKept; i++) {
        table.addMulticast(cmd.bytes, cmd.multiOffset + i * ETH_ALEN);
        if ((table.multiBytes[i * ETH_ALEN]! & 1) === 0 && wrongKind(i, table.multiBytes, 'multicast')) return refuse(diagnostics);
      }
      rx.commitMacTable();
      return changed(diagnostics);
    }
    case 'vlan':
      if (command === CtrlVlan.ADD) rx.vlanAdd(cmd.vid);
      else rx.vlanDel(cmd.vid);
      return changed(diagnostics);
    case 'announce-ack':
      if (!state.announcePending) {
        note('ctrl.announce-not-pending', CtrlSection.ANNOUNCE_DEVICE, 'ANNOUNCE_ACK while VIRTIO_NET_S_ANNOUNCE is not set', false);
        return refuse(diagnostics);
      }
      state.announcePending = false;
      return ok('announce', diagnostics);
    case 'mq-vq-pairs-set': {
      const pairs = cmd.pairs;
      if (pairs < MQ_VQ_PAIRS_MIN || pairs > MQ_VQ_PAIRS_MAX || pairs > ctx.maxQueuePairs) {
        note('ctrl.mq-pairs-out-of-range', CtrlSection.MQ_DRIVER, `VQ_PAIRS_SET ${pairs} is outside 1..${ctx.maxQueuePairs}`, false);
        return refuse(diagnostics);
      }
      state.queuePairs = pairs;
      return ok('queue-pairs', diagnostics);
    }
    case 'mq-rss':
      // Only reachable if RSS / HASH_REPORT were negotiated, which this device never offers.
      note('ctrl.unknown-command', CtrlSection.MQ, `MQ command ${command} (RSS) is not implemented by this device`, false);
      return refuse(diagnostics);
    case 'guest-offloads-set': {
      let offloads = cmd.offloads;
      if ((offloads & RSC_EXT_MASK) !== 0n) {
        // QEMU clears RSC_EXT from the bitmap before checking it, negotiated or not.
        if (
          !hasFeature(ctx.features, NetFeature.RSC_EXT) &&
          tolerate('ctrl.offloads-not-negotiated', CtrlSection.OFFLOADS_DRIVER, 'GUEST_OFFLOADS_SET enables RSC_EXT, which was not negotiated')
        ) {
          return refuse(diagnostics);
        }
        offloads &= ~RSC_EXT_MASK;
      }
      const extra = offloads & ~(ctx.features & GUEST_OFFLOAD_FEATURES);
      if (extra !== 0n) {
        note('ctrl.offloads-not-negotiated', CtrlSection.OFFLOADS_DRIVER, `GUEST_OFFLOADS_SET enables offloads 0x${extra.toString(16)} that were not negotiated`, false);
        return refuse(diagnostics);
      }
      state.guestOffloads = offloads;
      return ok('guest-offloads', diagnostics);
    }
  }

  function wrongKind(index: number, list: Uint8Array, kind: 'unicast' | 'multicast'): boolean {
    return tolerate(
      'ctrl.mac-table-wrong-kind',
      CtrlSection.MAC_DRIVER,
      `MAC TABLE_SET ${kind} entry ${index} is ${formatMac(list, index * ETH_ALEN)}, ${kind === 'unicast' ? 'a group' : 'an individual'} address`,
    );
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

function refuse(diagnostics: CtrlDiagnostic[]): CtrlOutcome {
  return { kind: 'ack', ack: CtrlAck.ERR, rxFilterChanged: false, effect: 'none', diagnostics: freeze(diagnostics) };
}

function changed(diagnostics: CtrlDiagnostic[]): CtrlOutcome {
  return { kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: true, effect: 'rx-filter', diagnostics: freeze(diagnostics) };
}

function ok(effect: CtrlEffect, diagnostics: CtrlDiagnostic[]): CtrlOutcome {
  return { kind: 'ack', ack: CtrlAck.OK, rxFilterChanged: false, effect, diagnostics: freeze(diagnostics) };
}

function freeze(diagnostics: CtrlDiagnostic[]): readonly CtrlDiagnostic[] {
  return diagnostics.length === 0 ? NO_DIAGNOSTICS : diagnostics;
}
