// Control-queue commands (VIRTIO 1.2 §5.1.6.5): parses the readable bytes of one control chain
// (struct virtio_net_ctrl: class, command, command-specific data; the ack byte is the caller's)
// into a command value. Parsing looks only at the bytes; whether the features allow the command and
// what it does to the device is ctrl-apply.ts.
//
// Length rules, checked against QEMU 7.2 (hw/net/virtio-net.c), which reads fixed-size payloads
// with iov_to_buf(): it copies at most the size asked for and fails only when fewer bytes exist.
// So for RX (1 byte), VLAN (2), MQ VQ_PAIRS_SET (2) and GUEST_OFFLOADS_SET (8) a SHORT payload is
// an error and EXTRA bytes are ignored; ANNOUNCE_ACK ignores any payload. Only MAC ADDR_SET insists
// on exactly 6 bytes (iov_size != 6 → ERR). Extra bytes are recorded as `trailing` so apply can
// report them (and refuse them in strict mode).
//
// The bytes are either a copy gathered from the chain or, for the classes `parsesInPlace` names,
// the guest memory the payload lies in (the control queue's fast path): parse and apply together
// read every guest byte at most once (a MAC table's counts here, its addresses in apply, each into
// a copy before use), so a driver changing them meanwhile cannot make two reads disagree.

import { le16, le32 } from '../../lib/base/endian.js';
import {
  CtrlAnnounce,
  CtrlClass,
  CtrlGuestOffloads,
  CtrlMac,
  CtrlMq,
  CtrlRx,
  CtrlVlan,
  CTRL_HEADER_LENGTH,
  ETH_ALEN,
  MAC_TABLE_ENTRIES,
  VLAN_ID_COUNT,
} from './constants.js';
import type { RssDiagnosticCode } from './rss-config.js';

/** Spec sections the diagnostics cite (VIRTIO 1.2 numbering). */
export const CtrlSection = {
  CONTROL_VIRTQUEUE: '5.1.6.5',
  RX: '5.1.6.5.1',
  RX_DEVICE: '5.1.6.5.1.1',
  RX_DRIVER: '5.1.6.5.1.2',
  MAC: '5.1.6.5.2',
  MAC_DRIVER: '5.1.6.5.2.2',
  VLAN: '5.1.6.5.3',
  ANNOUNCE: '5.1.6.5.4',
  ANNOUNCE_DRIVER: '5.1.6.5.4.1',
  ANNOUNCE_DEVICE: '5.1.6.5.4.2',
  MQ: '5.1.6.5.6',
  MQ_DRIVER: '5.1.6.5.6.1',
  HASH_CONFIG: '5.1.6.5.6.4',
  RSS_DRIVER: '5.1.6.5.7.2',
  OFFLOADS: '5.1.6.5.8.1',
  OFFLOADS_DRIVER: '5.1.6.5.8.2',
} as const;

/** Stable codes of the driver mistakes the control queue reports. */
export type CtrlDiagnosticCode =
  | 'ctrl.unknown-class'
  | 'ctrl.unknown-command'
  | 'ctrl.short-payload'
  | 'ctrl.trailing-bytes'
  | 'ctrl.feature-not-negotiated'
  | 'ctrl.rx-value-not-boolean'
  | 'ctrl.mac-addr-length'
  | 'ctrl.mac-table-malformed'
  | 'ctrl.mac-table-wrong-kind'
  | 'ctrl.vlan-out-of-range'
  | 'ctrl.announce-not-pending'
  | 'ctrl.mq-pairs-out-of-range'
  | 'ctrl.offloads-not-negotiated'
  | RssDiagnosticCode
  // classes NOTF_COAL and STATS (coalescing.ts, device-stats.ts)
  | 'ctrl.coal-vq-not-data-queue'
  | 'ctrl.result-too-short'
  | 'ctrl.stats-request-malformed'
  | 'ctrl.stats-vq-out-of-range'
  | 'ctrl.stats-type-invalid';

/** Which part of a MAC_TABLE_SET payload was wrong (§5.1.6.5.2.2 layout). */
export type MacTableFault =
  /** Fewer than 4 bytes where the unicast count belongs. */
  | 'uni-count-short'
  /** The unicast entries run past the end of the payload. */
  | 'uni-entries-short'
  /** Fewer than 4 bytes left for the multicast count. */
  | 'multi-count-short'
  /** The multicast entries do not end exactly at the end of the payload. */
  | 'multi-entries-mismatch'
  /** count × 6 does not fit 32 bits (QEMU 7.2 would wrap it; refused here). */
  | 'count-overflow';

/** One driver mistake seen on the control queue. */
export interface CtrlDiagnostic {
  readonly code: CtrlDiagnosticCode;
  /** The VIRTIO 1.2 section the driver broke. */
  readonly section: string;
  readonly message: string;
  readonly ctrlClass: number;
  readonly command: number;
  /**
   * True when QEMU 7.2 acks the command VIRTIO_NET_OK despite this mistake. Such a command succeeds
   * here too unless the device runs in strict mode.
   */
  readonly tolerated: boolean;
  /** For 'ctrl.mac-table-malformed': which part. */
  readonly fault?: MacTableFault;
}

/** A command that parsed. `trailing` = payload bytes after the ones the command uses. */
export type CtrlCommand =
  | { readonly kind: 'rx-mode'; readonly ctrlClass: number; readonly command: number; readonly value: number; readonly trailing: number }
  | { readonly kind: 'mac-addr-set'; readonly ctrlClass: number; readonly command: number; readonly bytes: Uint8Array; readonly offset: number }
  | {
      readonly kind: 'mac-table-set';
      readonly ctrlClass: number;
      readonly command: number;
      readonly bytes: Uint8Array;
      /** Unicast count the guest declared, and where its entries start. */
      readonly uniDeclared: number;
      readonly uniOffset: number;
      /** Entries kept (0 when the list overflowed). */
      readonly uniKept: number;
      readonly uniOverflow: boolean;
      readonly multiDeclared: number;
      readonly multiOffset: number;
      readonly multiKept: number;
      readonly multiOverflow: boolean;
    }
  | { readonly kind: 'vlan'; readonly ctrlClass: number; readonly command: number; readonly vid: number; readonly trailing: number }
  | { readonly kind: 'announce-ack'; readonly ctrlClass: number; readonly command: number; readonly trailing: number }
  | { readonly kind: 'mq-vq-pairs-set'; readonly ctrlClass: number; readonly command: number; readonly pairs: number; readonly trailing: number }
  /** RSS_CONFIG / HASH_CONFIG: the whole chain; parsed and checked against the device by rss-config.ts. */
  | { readonly kind: 'mq-rss'; readonly ctrlClass: number; readonly command: number; readonly bytes: Uint8Array }
  | { readonly kind: 'guest-offloads-set'; readonly ctrlClass: number; readonly command: number; readonly offloads: bigint; readonly trailing: number }
  /** Bad request content (tier 2): answered VIRTIO_NET_ERR in every mode. */
  | { readonly kind: 'rejected'; readonly ctrlClass: number; readonly command: number; readonly error: CtrlDiagnostic };

/**
 * Tier 1: no room for class and command. The caller treats it as a contract violation (as it does
 * a chain with no writable byte for the ack).
 */
export interface CtrlViolation {
  readonly kind: 'violation';
  readonly code: 'ctrl.missing-header';
  readonly length: number;
}

/** Parses one control chain's readable bytes (header first). Never throws on any byte content. */
export function parseCtrlCommand(bytes: Uint8Array): CtrlCommand | CtrlViolation {
  const v = parseCtrlCommandReused(bytes);
  // A fresh copy of the module-owned value ('violation' and 'rejected' values are fresh already).
  return v.kind === 'violation' || v.kind === 'rejected' ? v : { ...v };
}

/**
 * parseCtrlCommand without allocating for a command that parses: the value is one of a few
 * module-owned objects (one per kind), overwritten by the next call. For handleCtrl only, which
 * reads every field it needs before anything can call out (as with its shared diagnostics list).
 * A refused command still gets a fresh 'rejected' value (it carries a diagnostic).
 */
export function parseCtrlCommandReused(bytes: Uint8Array): CtrlCommand | CtrlViolation {
  const length = bytes.length;
  if (length < CTRL_HEADER_LENGTH) return { kind: 'violation', code: 'ctrl.missing-header', length };
  return parseCtrlPayload(bytes[0]!, bytes[1]!, bytes, CTRL_HEADER_LENGTH, length);
}

/**
 * Whether parseCtrlPayload may read this command's payload where it lies (in guest memory): its
 * class is answered by this file and ctrl-apply.ts alone, and its value does not carry the header
 * ('mq-rss' does; NOTF_COAL, STATS and unknown classes go to `CtrlState.otherClass`).
 */
export function parsesInPlace(ctrlClass: number): boolean {
  switch (ctrlClass) {
    case CtrlClass.RX:
    case CtrlClass.MAC:
    case CtrlClass.VLAN:
    case CtrlClass.ANNOUNCE:
    case CtrlClass.GUEST_OFFLOADS:
      return true;
    default:
      return false;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Kind<K extends CtrlCommand['kind']> = Mutable<Extract<CtrlCommand, { kind: K }>>;
const NO_BYTES = new Uint8Array(0);
// The module-owned values, one per kind; parseCtrlCommand hands out copies of them.
const RX_MODE: Kind<'rx-mode'> = { kind: 'rx-mode', ctrlClass: 0, command: 0, value: 0, trailing: 0 };
const MAC_ADDR_SET: Kind<'mac-addr-set'> = { kind: 'mac-addr-set', ctrlClass: 0, command: 0, bytes: NO_BYTES, offset: 0 };
const MAC_TABLE_SET: Kind<'mac-table-set'> = {
  kind: 'mac-table-set',
  ctrlClass: 0,
  command: 0,
  bytes: NO_BYTES,
  uniDeclared: 0,
  uniOffset: 0,
  uniKept: 0,
  uniOverflow: false,
  multiDeclared: 0,
  multiOffset: 0,
  multiKept: 0,
  multiOverflow: false,
};
const VLAN: Kind<'vlan'> = { kind: 'vlan', ctrlClass: 0, command: 0, vid: 0, trailing: 0 };
const ANNOUNCE_ACK: Kind<'announce-ack'> = { kind: 'announce-ack', ctrlClass: 0, command: 0, trailing: 0 };
const MQ_VQ_PAIRS_SET: Kind<'mq-vq-pairs-set'> = { kind: 'mq-vq-pairs-set', ctrlClass: 0, command: 0, pairs: 0, trailing: 0 };
const MQ_RSS: Kind<'mq-rss'> = { kind: 'mq-rss', ctrlClass: 0, command: 0, bytes: NO_BYTES };
const GUEST_OFFLOADS_SET: Kind<'guest-offloads-set'> = { kind: 'guest-offloads-set', ctrlClass: 0, command: 0, offloads: 0n, trailing: 0 };

/**
 * The parse behind both entry points: class and command already read, the payload is
 * `bytes[at, end)`. Every payload byte is read at most once here (MAC addresses are read by apply,
 * once). Offsets in the value ('mac-addr-set', 'mac-table-set') index `bytes`. 'mq-rss' carries
 * `bytes` whole and expects the header at `at - 2` (parsesInPlace excludes it). Returns a
 * module-owned value (see parseCtrlCommandReused) or a fresh 'rejected' one.
 */
export function parseCtrlPayload(ctrlClass: number, command: number, bytes: Uint8Array, at: number, end: number): CtrlCommand {
  const payload = end - at;
  switch (ctrlClass) {
    case CtrlClass.RX: {
      if (command > CtrlRx.NOBCAST) return unknownCommand(ctrlClass, command, CtrlSection.RX);
      if (payload < 1) return short(ctrlClass, command, 1, payload, CtrlSection.RX_DEVICE);
      const o = RX_MODE;
      o.ctrlClass = ctrlClass;
      o.command = command;
      o.value = bytes[at]!;
      o.trailing = payload - 1;
      return o;
    }
    case CtrlClass.MAC: {
      if (command === CtrlMac.ADDR_SET) {
        if (payload !== ETH_ALEN) {
          return rejected(ctrlClass, command, 'ctrl.mac-addr-length', CtrlSection.MAC, `MAC ADDR_SET carries ${payload} bytes; it must be exactly ${ETH_ALEN}`);
        }
        const o = MAC_ADDR_SET;
        o.ctrlClass = ctrlClass;
        o.command = command;
        o.bytes = bytes;
        o.offset = at;
        return o;
      }
      if (command === CtrlMac.TABLE_SET) return parseMacTable(bytes, at, end, ctrlClass, command);
      return unknownCommand(ctrlClass, command, CtrlSection.MAC);
    }
    case CtrlClass.VLAN: {
      if (command !== CtrlVlan.ADD && command !== CtrlVlan.DEL) return unknownCommand(ctrlClass, command, CtrlSection.VLAN);
      if (payload < 2) return short(ctrlClass, command, 2, payload, CtrlSection.VLAN);
      const vid = le16(bytes, at);
      if (vid >= VLAN_ID_COUNT) {
        return rejected(ctrlClass, command, 'ctrl.vlan-out-of-range', CtrlSection.VLAN, `VLAN id ${vid} is not below ${VLAN_ID_COUNT}`);
      }
      const o = VLAN;
      o.ctrlClass = ctrlClass;
      o.command = command;
      o.vid = vid;
      o.trailing = payload - 2;
      return o;
    }
    case CtrlClass.ANNOUNCE: {
      if (command !== CtrlAnnounce.ACK) return unknownCommand(ctrlClass, command, CtrlSection.ANNOUNCE);
      const o = ANNOUNCE_ACK;
      o.ctrlClass = ctrlClass;
      o.command = command;
      o.trailing = payload;
      return o;
    }
    case CtrlClass.MQ: {
      if (command === CtrlMq.VQ_PAIRS_SET) {
        if (payload < 2) return short(ctrlClass, command, 2, payload, CtrlSection.MQ);
        const o = MQ_VQ_PAIRS_SET;
        o.ctrlClass = ctrlClass;
        o.command = command;
        o.pairs = le16(bytes, at);
        o.trailing = payload - 2;
        return o;
      }
      if (command === CtrlMq.RSS_CONFIG || command === CtrlMq.HASH_CONFIG) {
        const o = MQ_RSS;
        o.ctrlClass = ctrlClass;
        o.command = command;
        o.bytes = bytes;
        return o;
      }
      return unknownCommand(ctrlClass, command, CtrlSection.MQ);
    }
    case CtrlClass.GUEST_OFFLOADS: {
      if (command !== CtrlGuestOffloads.SET) return unknownCommand(ctrlClass, command, CtrlSection.OFFLOADS);
      if (payload < 8) return short(ctrlClass, command, 8, payload, CtrlSection.OFFLOADS);
      const low = le32(bytes, at);
      const high = le32(bytes, at + 4);
      const o = GUEST_OFFLOADS_SET;
      o.ctrlClass = ctrlClass;
      o.command = command;
      o.offloads = (BigInt(high) << 32n) | BigInt(low);
      o.trailing = payload - 8;
      return o;
    }
    default:
      return rejected(ctrlClass, command, 'ctrl.unknown-class', CtrlSection.CONTROL_VIRTQUEUE, `unknown control class ${ctrlClass}`);
  }
}

/**
 * MAC_TABLE_SET: `le32 N_uni, N_uni × 6 bytes, le32 N_multi, N_multi × 6 bytes` (§5.1.6.5.2),
 * following QEMU 7.2's virtio_net_handle_mac step by step:
 * 1. 4 bytes for N_uni, and N_uni × 6 must not exceed what remains (more may remain: the
 *    multicast part follows);
 * 2. N_uni <= 64 → keep them, else unicast overflow and keep none — QEMU still skips the N_uni × 6
 *    bytes (it must, to find N_multi), and so does this;
 * 3. 4 bytes for N_multi, and N_multi × 6 must equal exactly what remains;
 * 4. N_multi <= 64 − unicast kept → keep them, else multicast overflow and keep none.
 * Counts are multiplied in exact arithmetic: a count whose × 6 does not fit 32 bits is refused
 * ('count-overflow'), where QEMU's 32-bit multiplication would wrap and could accept it.
 */
function parseMacTable(bytes: Uint8Array, start: number, end: number, ctrlClass: number, command: number): CtrlCommand {
  let at = start;
  let remaining = end - at;

  if (remaining < 4) return macTableFault(ctrlClass, command, 'uni-count-short', `${remaining} bytes where the 4-byte unicast count belongs`);
  const uniDeclared = le32(bytes, at);
  at += 4;
  remaining -= 4;
  const uniLength = uniDeclared * ETH_ALEN;
  if (uniLength > 0xffffffff) return macTableFault(ctrlClass, command, 'count-overflow', `unicast count ${uniDeclared} × 6 does not fit 32 bits`);
  if (uniLength > remaining) {
    return macTableFault(ctrlClass, command, 'uni-entries-short', `${uniDeclared} unicast entries need ${uniLength} bytes, ${remaining} remain`);
  }
  const uniOffset = at;
  const uniOverflow = uniDeclared > MAC_TABLE_ENTRIES;
  const uniKept = uniOverflow ? 0 : uniDeclared;
  at += uniLength;
  remaining -= uniLength;

  if (remaining < 4) return macTableFault(ctrlClass, command, 'multi-count-short', `${remaining} bytes where the 4-byte multicast count belongs`);
  const multiDeclared = le32(bytes, at);
  at += 4;
  remaining -= 4;
  const multiLength = multiDeclared * ETH_ALEN;
  if (multiLength > 0xffffffff) return macTableFault(ctrlClass, command, 'count-overflow', `multicast count ${multiDeclared} × 6 does not fit 32 bits`);
  if (multiLength !== remaining) {
    return macTableFault(
      ctrlClass,
      command,
      'multi-entries-mismatch',
      `${multiDeclared} multicast entries need exactly ${multiLength} bytes, ${remaining} remain`,
    );
  }
  const multiOverflow = multiDeclared > MAC_TABLE_ENTRIES - uniKept;
  const multiKept = multiOverflow ? 0 : multiDeclared;
  const o = MAC_TABLE_SET;
  o.ctrlClass = ctrlClass;
  o.command = command;
  o.bytes = bytes;
  o.uniDeclared = uniDeclared;
  o.uniOffset = uniOffset;
  o.uniKept = uniKept;
  o.uniOverflow = uniOverflow;
  o.multiDeclared = multiDeclared;
  o.multiOffset = at;
  o.multiKept = multiKept;
  o.multiOverflow = multiOverflow;
  return o;
}

function rejected(ctrlClass: number, command: number, code: CtrlDiagnosticCode, section: string, message: string, fault?: MacTableFault): CtrlCommand {
  const error: CtrlDiagnostic =
    fault === undefined
      ? { code, section, message, ctrlClass, command, tolerated: false }
      : { code, section, message, ctrlClass, command, tolerated: false, fault };
  return { kind: 'rejected', ctrlClass, command, error };
}

function unknownCommand(ctrlClass: number, command: number, section: string): CtrlCommand {
  return rejected(ctrlClass, command, 'ctrl.unknown-command', section, `unknown command ${command} in control class ${ctrlClass}`);
}

function short(ctrlClass: number, command: number, need: number, have: number, section: string): CtrlCommand {
  return rejected(ctrlClass, command, 'ctrl.short-payload', section, `class ${ctrlClass} command ${command} needs ${need} data bytes, got ${have}`);
}

function macTableFault(ctrlClass: number, command: number, fault: MacTableFault, message: string): CtrlCommand {
  return rejected(ctrlClass, command, 'ctrl.mac-table-malformed', CtrlSection.MAC_DRIVER, `MAC TABLE_SET: ${message}`, fault);
}
