// RSS and hash-report configuration (VIRTIO 1.2 §5.1.6.5.7 "Receive-side scaling", §5.1.6.5.6.4
// "Hash calculation"): the RSS_CONFIG and HASH_CONFIG commands of class MQ parsed from the control
// chain's bytes, checked, and committed into `RssState`, which the receive path reads per frame.
//
//   RSS_CONFIG (struct virtio_net_rss_config):
//     le32 hash_types; le16 indirection_table_mask; le16 unclassified_queue;
//     le16 indirection_table[mask + 1]; le16 max_tx_vq; u8 hash_key_length; u8 hash_key_data[];
//   HASH_CONFIG (struct virtio_net_hash_config): the same layout with `le16 reserved[4]` in place
//     of mask, unclassified_queue, a one-entry table and max_tx_vq.
//
// Checks, in QEMU 7.2's order (virtio_net_handle_rss) so the first fault reported is QEMU's:
//   8 bytes of fixed part; table length (mask + 1) a power of two and at most
//   rss_max_indirection_table_length (128); unclassified_queue below max_virtqueue_pairs; the
//   table present; max_tx_vq and the key length present; max_tx_vq in 1..max_virtqueue_pairs;
//   key length at most rss_max_key_size (40); a key when any hash type is enabled; the key present.
//   Every one of these is VIRTIO_NET_ERR in both modes (QEMU refuses them too).
// Then what QEMU 7.2 does not check:
// - table entries and unclassified_queue must name enabled receive queues (§5.1.6.5.7.2 "only
//   with enabled receive virtqueues ids"): a receive queue of the device (below
//   max_virtqueue_pairs) that the driver has enabled and not reset since. VIRTIO_NET_ERR in both
//   modes. `max_tx_vq` does not limit them: it counts transmit queues only (§5.1.6.5.7.1), and
//   Linux 6.1 sends a table over both queues with max_tx_vq 1 after `ethtool -L combined 2` then
//   `ethtool -X equal 2` (it sets max_tx_vq once, at probe). QEMU acks such a table but its
//   can_receive then refuses the queues above max_tx_vq; here the table steers (steering.ts).
// - hash_types bits the device does not support (§5.1.6.5.7.2 MUST NOT): tolerated (QEMU acks
//   and never computes them), refused in strict mode; the unsupported bits are ignored.
// - HASH_CONFIG's `reserved` not zero (§5.1.6.5.6.4 MUST): tolerated like QEMU, refused in strict.
// Trailing bytes after the key are reported by ctrl-apply like every command's.
//
// Effects, as QEMU 7.2: a good RSS_CONFIG enables steering by the table (hash_types 0 with no key
// turns RSS off) and sets the queue pairs in use to max_tx_vq; a good HASH_CONFIG sets hash types
// and key for the hash report without steering by table; a good VQ_PAIRS_SET turns RSS off
// (QEMU disables RSS at every MQ command). A refused command changes nothing here (QEMU also turns
// RSS off when it refuses one: the project's rule is that a refused command changes nothing).

import { le16, le32 } from '../../lib/base/endian.js';
import { CTRL_HEADER_LENGTH, CtrlMq } from './constants.js';
import { FrameHash, SUPPORTED_HASH_TYPES } from './rss-hash.js';
import { Toeplitz } from './toeplitz.js';

/** Config `rss_max_key_size` (§5.1.4: at least 40; QEMU's 40). */
export const RSS_MAX_KEY_SIZE = 40;
/** Config `rss_max_indirection_table_length` (§5.1.4: at least 128; QEMU's 128). */
export const RSS_MAX_TABLE_LENGTH = 128;

/** Sections the RSS diagnostics cite (VIRTIO 1.2 numbering). */
export const RssSection = {
  HASH_CONFIG: '5.1.6.5.6.4',
  SETTING: '5.1.6.5.7.1',
  DRIVER: '5.1.6.5.7.2',
  DEVICE: '5.1.6.5.7.3',
} as const;

/** The codes of RSS_CONFIG / HASH_CONFIG mistakes (also listed in ctrl-command.ts's union). */
export type RssDiagnosticCode =
  | 'ctrl.rss-table-length'
  | 'ctrl.rss-queue-out-of-range'
  | 'ctrl.rss-max-tx-vq-out-of-range'
  | 'ctrl.rss-key-length'
  | 'ctrl.rss-key-missing'
  | 'ctrl.rss-hash-types-unsupported'
  | 'ctrl.hash-config-reserved'
  | 'ctrl.short-payload';

/** Where ctrl-apply collects a command's mistakes (its Notes). */
export interface RssNotes {
  note(code: RssDiagnosticCode, section: string, message: string, tolerated: boolean): void;
  /** A tolerated mistake: true when refused (strict mode). */
  tolerate(code: RssDiagnosticCode, section: string, message: string): boolean;
}

/** The RSS / hash configuration in force, read per frame. Reset: everything off. */
export class RssState {
  /** Hash types enabled (supported bits only); 0: no hash is computed. */
  hashTypes = 0;
  /** Steer by the indirection table (a good RSS_CONFIG with hash types or a key). */
  redirect = false;
  /** Indirection table: entries [0, tableLength) are receive queue numbers (0 = receiveq1). */
  readonly table = new Uint16Array(RSS_MAX_TABLE_LENGTH);
  tableLength = 1;
  unclassifiedQueue = 0;
  readonly key = new Uint8Array(RSS_MAX_KEY_SIZE);
  keyLength = 0;
  private readonly toeplitz = new Toeplitz();
  /** The hash of the last frame `hash()` looked at (value, report). */
  readonly frameHash = new FrameHash(this.toeplitz);

  /** Hashes `frame` with the configured key and types; the report type (NONE: no hash). */
  hash(frame: Uint8Array): number {
    return this.frameHash.compute(frame, this.hashTypes);
  }

  /** Everything off (device reset, a VQ_PAIRS_SET, RSS_CONFIG with no hash types and no key). */
  disable(): void {
    this.hashTypes = 0;
    this.redirect = false;
    this.tableLength = 1;
    this.table[0] = 0;
    this.unclassifiedQueue = 0;
    this.key.fill(0);
    this.keyLength = 0;
  }

  /** Sets the whole configuration (a checked command, or a restored device state). */
  set(redirect: boolean, hashTypes: number, table: Uint16Array | Uint8Array, tableAt: number, tableLength: number, unclassified: number, key: Uint8Array, keyAt: number, keyLength: number): void {
    this.redirect = redirect;
    this.hashTypes = hashTypes & SUPPORTED_HASH_TYPES;
    this.tableLength = tableLength;
    if (table instanceof Uint16Array) {
      for (let i = 0; i < tableLength; i++) this.table[i] = table[tableAt + i]!;
    } else {
      for (let i = 0; i < tableLength; i++) this.table[i] = le16(table, tableAt + 2 * i);
    }
    this.unclassifiedQueue = unclassified;
    this.key.fill(0);
    for (let i = 0; i < keyLength; i++) this.key[i] = key[keyAt + i]!;
    this.keyLength = keyLength;
    this.toeplitz.setKey(this.key, 0, keyLength);
  }
}

/** What ctrl-apply needs to know about the device for these commands. */
export interface RssContext {
  readonly strict: boolean;
  readonly maxQueuePairs: number;
}

/** Whether receive queue `queue` (0 = receiveq1) is enabled by the driver now. */
export type RxQueueEnabled = (queue: number) => boolean;

/** Result of `applyRssCommand`: refused, or accepted with the queue pairs now in use (0: unchanged). */
export const RSS_REFUSED = -1;

/**
 * Parses, checks and (when good) commits one RSS_CONFIG or HASH_CONFIG. `bytes` is the whole
 * control chain (class and command first). Returns RSS_REFUSED, 0 (HASH_CONFIG: pairs unchanged)
 * or the new number of queue pairs (RSS_CONFIG's max_tx_vq). `trailing` gets the bytes after the key.
 */
export function applyRssCommand(bytes: Uint8Array, command: number, ctx: RssContext, rss: RssState, notes: RssNotes, trailing: { count: number }, enabled?: RxQueueEnabled): number {
  const doRss = command === CtrlMq.RSS_CONFIG;
  const name = doRss ? 'RSS_CONFIG' : 'HASH_CONFIG';
  const section = doRss ? RssSection.SETTING : RssSection.HASH_CONFIG;
  const end = bytes.length;
  let at = CTRL_HEADER_LENGTH;
  const refuse = (code: RssDiagnosticCode, sec: string, message: string): number => {
    notes.note(code, sec, `${name}: ${message}`, false);
    return RSS_REFUSED;
  };
  if (end - at < 8) return refuse('ctrl.short-payload', section, `needs at least 8 data bytes, got ${end - at}`);
  const hashTypes = le32(bytes, at);
  const tableLength = doRss ? le16(bytes, at + 4) + 1 : 1;
  if ((tableLength & (tableLength - 1)) !== 0) return refuse('ctrl.rss-table-length', RssSection.DRIVER, `indirection table length ${tableLength} (mask + 1) is not a power of two`);
  if (tableLength > RSS_MAX_TABLE_LENGTH) {
    return refuse('ctrl.rss-table-length', RssSection.DRIVER, `indirection table length ${tableLength} is above rss_max_indirection_table_length ${RSS_MAX_TABLE_LENGTH}`);
  }
  const unclassified = doRss ? le16(bytes, at + 6) : 0;
  if (unclassified >= ctx.maxQueuePairs) {
    return refuse('ctrl.rss-queue-out-of-range', RssSection.DRIVER, `unclassified_queue ${unclassified} is not a receive queue (max_virtqueue_pairs ${ctx.maxQueuePairs})`);
  }
  at += 8;
  const tableAt = at;
  if (end - at < 2 * tableLength) return refuse('ctrl.short-payload', section, `the ${tableLength}-entry indirection table needs ${2 * tableLength} bytes, ${end - at} remain`);
  at += 2 * tableLength;
  if (end - at < 3) return refuse('ctrl.short-payload', section, `${end - at} bytes where max_tx_vq and hash_key_length belong`);
  const maxTxVq = doRss ? le16(bytes, at) : 0;
  const keyLength = bytes[at + 2]!;
  if (doRss && (maxTxVq === 0 || maxTxVq > ctx.maxQueuePairs)) {
    return refuse('ctrl.rss-max-tx-vq-out-of-range', RssSection.SETTING, `max_tx_vq ${maxTxVq} is outside 1..${ctx.maxQueuePairs}`);
  }
  if (keyLength > RSS_MAX_KEY_SIZE) return refuse('ctrl.rss-key-length', section, `hash_key_length ${keyLength} is above rss_max_key_size ${RSS_MAX_KEY_SIZE}`);
  if (keyLength === 0 && hashTypes !== 0) return refuse('ctrl.rss-key-missing', section, `hash types 0x${hashTypes.toString(16)} enabled without a key`);
  at += 3;
  const keyAt = at;
  if (keyLength > 0 && end - at < keyLength) return refuse('ctrl.short-payload', section, `the ${keyLength}-byte key needs ${keyLength} bytes, ${end - at} remain`);
  at += keyLength;
  trailing.count = end - at;

  // Beyond QEMU 7.2's checks (see the file comment).
  if (doRss) {
    if (enabled !== undefined && !enabled(unclassified)) {
      return refuse('ctrl.rss-queue-out-of-range', RssSection.DRIVER, `unclassified_queue ${unclassified} is not an enabled receive queue`);
    }
    for (let i = 0; i < tableLength; i++) {
      const q = le16(bytes, tableAt + 2 * i);
      if (q >= ctx.maxQueuePairs || (enabled !== undefined && !enabled(q))) {
        return refuse('ctrl.rss-queue-out-of-range', RssSection.DRIVER, `indirection_table[${i}] = ${q} is not an enabled receive queue (max_virtqueue_pairs ${ctx.maxQueuePairs})`);
      }
    }
  } else {
    let reserved = 0;
    for (let i = 0; i < 8; i++) reserved |= bytes[CTRL_HEADER_LENGTH + 4 + i]!;
    if (reserved !== 0 && notes.tolerate('ctrl.hash-config-reserved', RssSection.HASH_CONFIG, 'HASH_CONFIG: reserved bytes are not zero')) return RSS_REFUSED;
  }
  const unsupported = hashTypes & ~SUPPORTED_HASH_TYPES;
  if (unsupported !== 0 && notes.tolerate('ctrl.rss-hash-types-unsupported', RssSection.DRIVER, `${name}: hash types 0x${(unsupported >>> 0).toString(16)} are not in supported_hash_types 0x${SUPPORTED_HASH_TYPES.toString(16)}; ignored`)) {
    return RSS_REFUSED;
  }
  // Trailing bytes are judged by the caller before it commits: hand back a function-free result.
  pendingCommit.doRss = doRss;
  pendingCommit.bytes = bytes;
  pendingCommit.hashTypes = hashTypes;
  pendingCommit.tableAt = tableAt;
  pendingCommit.tableLength = tableLength;
  pendingCommit.unclassified = unclassified;
  pendingCommit.keyAt = keyAt;
  pendingCommit.keyLength = keyLength;
  return doRss ? maxTxVq : 0;
}

/** The command `applyRssCommand` accepted last; `commitRss` puts it into the state. */
const NO_BYTES: Uint8Array = new Uint8Array(0);
const pendingCommit: { doRss: boolean; bytes: Uint8Array; hashTypes: number; tableAt: number; tableLength: number; unclassified: number; keyAt: number; keyLength: number } = {
  doRss: false,
  bytes: NO_BYTES,
  hashTypes: 0,
  tableAt: 0,
  tableLength: 1,
  unclassified: 0,
  keyAt: 0,
  keyLength: 0,
};

/** Commits the command `applyRssCommand` just accepted (after the caller's own checks passed). */
export function commitRss(rss: RssState): void {
  const p = pendingCommit;
  if (p.doRss && p.hashTypes === 0 && p.keyLength === 0) {
    rss.disable(); // QEMU: RSS_CONFIG with nothing to hash turns RSS off
  } else {
    // HASH_CONFIG hashes for the report only (QEMU: redirect false).
    rss.set(p.doRss, p.hashTypes, p.bytes, p.tableAt, p.tableLength, p.unclassified, p.bytes, p.keyAt, p.keyLength);
  }
  p.bytes = NO_BYTES;
}
