// Which receive queue a frame goes to (VIRTIO 1.2 §5.1.6.5.6 automatic receive steering,
// §5.1.6.5.7.3 RSS processing), and the hash its header reports (§5.1.6.4.4).
//
// In order:
// 1. RSS steering by table (a good RSS_CONFIG, rss-config.ts): the frame's hash over the enabled
//    types, masked, indexes the indirection table; a frame with no hash goes to
//    `unclassified_queue`. (A destination queue being reset drops the frame: rx-path.ts.)
// 2. One pair in use: receiveq1 (§5.1.6.5.6.2: "after reset, the device MUST queue packets only
//    on receiveq1").
// 3. A multiqueue backend (TAP with IFF_MULTI_QUEUE): the queue the frame came from — the kernel
//    already steered it by flow — folded into the pairs in use.
// 4. Otherwise a flow hash (Toeplitz with Microsoft's published key over the TCP/UDP 4-tuple or the
//    address pair) modulo the pairs in use: §5.1.6.5.6 "SHOULD steer by flow". Frames without an
//    IP header (ARP, …) go to receiveq1. Steering to the queue of the pair a flow last transmitted
//    on (the SHOULD's other half) is not done: it needs a flow table per device.
//
// The hash for the report (HASH_REPORT) is the RSS/HASH_CONFIG hash of step 1, computed whenever
// hash types are enabled, whether or not the table steers. Nothing here allocates per frame.

import { FrameHash, HashType } from './rss-hash.js';
import type { RssState } from './rss-config.js';
import { Toeplitz } from './toeplitz.js';

/**
 * The key of Microsoft's RSS verification examples ("Verifying the RSS Hash Calculation"), also
 * the default key of many NICs: the flow hash of step 4.
 */
export const DEFAULT_RSS_KEY: readonly number[] = [
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
  0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/** The flow hash's types: 4-tuples for TCP and UDP, else addresses (extension headers skipped). */
const FLOW_TYPES = HashType.IPv4 | HashType.TCPv4 | HashType.UDPv4 | HashType.IPv6 | HashType.TCPv6 | HashType.UDPv6;

export class RxSteering {
  /** Pairs in use (VQ_PAIRS_SET, RSS_CONFIG's max_tx_vq); 1 after reset. */
  activePairs = 1;
  /** For the header of the frame `select` looked at last: the hash and its report type (0: none). */
  hashValue = 0;
  hashReport = 0;
  /** HASH_REPORT negotiated: the hash is computed for the header even when the table does not steer. */
  hashReportWanted = false;
  /** The last `select` followed the RSS indirection table (a missing destination then drops). */
  byTable = false;
  private readonly flow: FrameHash;

  constructor(private readonly rss: RssState) {
    const t = new Toeplitz();
    t.setKey(Uint8Array.from(DEFAULT_RSS_KEY));
    this.flow = new FrameHash(t);
  }

  /** The receive queue number (0 = receiveq1) for `frame`; `tag` is the backend queue it came from (-1: none). */
  select(frame: Uint8Array, tag: number): number {
    const rss = this.rss;
    let report = 0;
    if (rss.hashTypes !== 0 && (rss.redirect || this.hashReportWanted)) report = rss.hash(frame);
    this.hashReport = report;
    this.hashValue = report === 0 ? 0 : rss.frameHash.value;
    const pairs = this.activePairs;
    if (rss.redirect) {
      this.byTable = true;
      const k = report === 0 ? rss.unclassifiedQueue : rss.table[this.hashValue & (rss.tableLength - 1)]!;
      return k; // any receive queue of the device, whatever max_tx_vq says (rss-config.ts); rx-path drops it when that queue is not running
    }
    this.byTable = false;
    if (pairs === 1) return 0;
    if (tag >= 0) return tag < pairs ? tag : tag % pairs;
    return this.flow.compute(frame, FLOW_TYPES) === 0 ? 0 : this.flow.value % pairs;
  }
}
