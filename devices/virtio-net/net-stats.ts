// Counters of the network device (no spec section: what `device.stats()` reports to the embedder
// and to management). Plain numeric fields, bumped on the hot path without allocation; `snapshot()`
// builds the JSON-friendly report.

import { CtrlClass } from './constants.js';

/** Why a frame from the backend did not reach the guest. */
export type RxDropReason =
  | 'vlan'
  | 'unicast'
  | 'multicast'
  | 'broadcast'
  | 'runt'
  /** Link down as the guest sees it (`setLink(false)`): QEMU drops such frames too. */
  | 'link-down'
  /** Without MRG_RXBUF, the guest's buffer could not hold the frame (§5.1.6.3.1): dropped, buffer given back. */
  | 'buffer-too-small'
  /** Larger than the device ever delivers. */
  | 'oversize'
  /** Held for the guest (no rx buffers) when the driver reset the device: counted, never silent. */
  | 'reset'
  /** The backend's header asks for a GSO type the driver has not enabled (§5.1.6.4; rx-header.ts). */
  | 'gso-not-negotiated'
  /** The backend's header puts the checksum (csum_start + csum_offset + 2) past the frame (§5.1.6.4). */
  | 'csum-out-of-frame'
  /** The backend's header breaks §5.1.6.4 otherwise (short, unknown flags or GSO type, GSO without NEEDS_CSUM…). */
  | 'header-malformed'
  /** The RSS indirection table steered it to a receive queue being reset (§5.1.6.5.7.3: MUST drop). */
  | 'queue-reset'
  /** With VIRTIO_NET_F_MTU negotiated, a non-GSO frame longer than mtu + Ethernet header (+ one VLAN tag): §5.1.4.1. */
  | 'above-mtu';

/** Why a TX chain was completed without sending (tier 3). */
export type TxErrorReason =
  /** Fewer readable bytes than the virtio-net header (tier 3). */
  | 'header-short'
  /** A frame above TX_FRAME_MAX (tier 3). */
  | 'oversize'
  /** Sent while the link is down as the guest sees it: completed unsent, as QEMU does. */
  | 'link-down'
  /** The backend answered 'dropped' (its host fd failed, or a partial write): completed, not sent. */
  | 'backend'
  /** `strict: true`: the virtio-net header breaks a §5.1.6.2.1 rule (tx-header.ts): completed, not sent. */
  | 'bad-header'
  /** With VIRTIO_NET_F_MTU negotiated, a non-GSO frame longer than mtu + Ethernet header (+ one VLAN tag): §5.1.4.2. */
  | 'above-mtu';

/** The report `VirtioNetDevice.stats()` returns. */
export interface NetStats {
  tx: { frames: number; bytes: number; errors: Record<TxErrorReason, number> };
  rx: {
    /**
     * Frames the device took from the backend (receive() answered true). Always
     * offered = frames + the sum of drops + backlog.
     */
    offered: number;
    frames: number;
    bytes: number;
    /** Frames held now because the guest had no rx buffers. */
    backlog: number;
    /** Times the device told the backend to pause (backlog full, or not running). */
    backpressure: number;
    drops: Record<RxDropReason, number>;
    /** Receive buffers shorter than the header, returned unused with length 0 (§5.1.6.3.1). */
    shortBuffers: number;
    /** Frames delivered whose partial checksum (NEEDS_CSUM) the device completed: the driver lacks GUEST_CSUM (§5.1.6.4). */
    csumCompleted: number;
  };
  ctrl: {
    ok: number;
    err: number;
    /** By class name: rx, mac, vlan, announce, mq, guest-offloads, unknown. */
    byClass: Record<string, { ok: number; err: number }>;
  };
  interrupts: { used: number; config: number };
  needsReset: number;
  /**
   * Per queue pair, index 0 = receiveq1 / transmitq1: frames and bytes delivered to each receive
   * queue and sent from each transmit queue (their sums are rx.frames / rx.bytes, tx.frames / tx.bytes).
   */
  queues: { rx: { frames: number; bytes: number }[]; tx: { frames: number; bytes: number }[] };
}

const CLASS_NAMES: ReadonlyMap<number, string> = new Map([
  [CtrlClass.RX, 'rx'],
  [CtrlClass.MAC, 'mac'],
  [CtrlClass.VLAN, 'vlan'],
  [CtrlClass.ANNOUNCE, 'announce'],
  [CtrlClass.MQ, 'mq'],
  [CtrlClass.GUEST_OFFLOADS, 'guest-offloads'],
]);

/** Class names `byClass` may hold. */
const CTRL_CLASS_NAMES: ReadonlySet<string> = new Set([...CLASS_NAMES.values(), 'unknown']);

/** Mutable counters; one instance per device. */
export class NetCounters {
  txFrames = 0;
  txBytes = 0;
  txHeaderShort = 0;
  txOversize = 0;
  txLinkDown = 0;
  txBackend = 0;
  txBadHeader = 0;
  txAboveMtu = 0;
  rxOffered = 0;
  rxFrames = 0;
  rxBytes = 0;
  rxBackpressure = 0;
  /** Indexed by RxVerdict drop code (rx-filter.ts) for the filter's reasons. */
  readonly filterDrops = new Float64Array(8);
  rxLinkDown = 0;
  rxBufferTooSmall = 0;
  rxOversize = 0;
  rxReset = 0;
  rxShortBuffers = 0;
  rxGsoNotNegotiated = 0;
  rxCsumOutOfFrame = 0;
  rxHeaderMalformed = 0;
  rxCsumCompleted = 0;
  rxAboveMtu = 0;
  ctrlOk = 0;
  ctrlErr = 0;
  private readonly ctrlByClass = new Map<string, { ok: number; err: number }>();
  usedInterrupts = 0;
  configInterrupts = 0;
  needsReset = 0;
  rxQueueReset = 0;
  /** Per pair: frames / bytes delivered to receive queue k, sent from transmit queue k. */
  readonly rxQueueFrames: Float64Array;
  readonly rxQueueBytes: Float64Array;
  readonly txQueueFrames: Float64Array;
  readonly txQueueBytes: Float64Array;

  constructor(pairs = 1) {
    this.rxQueueFrames = new Float64Array(pairs);
    this.rxQueueBytes = new Float64Array(pairs);
    this.txQueueFrames = new Float64Array(pairs);
    this.txQueueBytes = new Float64Array(pairs);
  }

  /** A frame of `bytes` delivered to receive queue `k` (rx.frames / rx.bytes are counted apart). */
  countRxQueue(k: number, bytes: number): void {
    if (k < this.rxQueueFrames.length) {
      this.rxQueueFrames[k]!++;
      this.rxQueueBytes[k]! += bytes;
    }
  }

  /** A frame of `bytes` sent from transmit queue `k`. */
  countTxQueue(k: number, bytes: number): void {
    if (k < this.txQueueFrames.length) {
      this.txQueueFrames[k]!++;
      this.txQueueBytes[k]! += bytes;
    }
  }

  countCtrl(ctrlClass: number, ok: boolean): void {
    const name = CLASS_NAMES.get(ctrlClass) ?? 'unknown';
    let entry = this.ctrlByClass.get(name);
    if (entry === undefined) {
      entry = { ok: 0, err: 0 };
      this.ctrlByClass.set(name, entry);
    }
    if (ok) {
      entry.ok++;
      this.ctrlOk++;
    } else {
      entry.err++;
      this.ctrlErr++;
    }
  }

  /**
   * Every counter as (name, value), for the device state (net-state.ts): the numeric fields by
   * their names, `filterDrops.<verdict>`, `ctrl.<class>.ok|err`. A counter added as a numeric
   * field travels without more work; one kept in another shape needs a line here.
   */
  exportState(): [string, number][] {
    const out: [string, number][] = [];
    for (const [k, v] of Object.entries(this)) if (typeof v === 'number') out.push([k, v]);
    this.filterDrops.forEach((v, i) => out.push([`filterDrops.${i}`, v]));
    for (const [k, v] of this.ctrlByClass) out.push([`ctrl.${k}.ok`, v.ok], [`ctrl.${k}.err`, v.err]);
    for (let k = 0; k < this.rxQueueFrames.length; k++) {
      out.push([`queue.${k}.rxFrames`, this.rxQueueFrames[k]!], [`queue.${k}.rxBytes`, this.rxQueueBytes[k]!]);
      out.push([`queue.${k}.txFrames`, this.txQueueFrames[k]!], [`queue.${k}.txBytes`, this.txQueueBytes[k]!]);
    }
    return out;
  }

  /** Sets every counter from `exportState()` entries (absent ones to 0; unknown names are ignored). */
  importState(entries: readonly (readonly [string, number])[]): void {
    const self = this as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(this)) if (typeof v === 'number') self[k] = 0;
    this.filterDrops.fill(0);
    this.ctrlByClass.clear();
    this.rxQueueFrames.fill(0);
    this.rxQueueBytes.fill(0);
    this.txQueueFrames.fill(0);
    this.txQueueBytes.fill(0);
    for (const [name, value] of entries) {
      const drop = /^filterDrops\.(\d)$/.exec(name);
      const ctrl = /^ctrl\.([a-z-]+)\.(ok|err)$/.exec(name);
      const queue = /^queue\.(\d+)\.(rxFrames|rxBytes|txFrames|txBytes)$/.exec(name);
      if (queue !== null) {
        const k = Number(queue[1]);
        const arrays = { rxFrames: this.rxQueueFrames, rxBytes: this.rxQueueBytes, txFrames: this.txQueueFrames, txBytes: this.txQueueBytes };
        const a = arrays[queue[2] as keyof typeof arrays];
        if (k < a.length) a[k] = value;
      } else if (drop !== null) {
        const i = Number(drop[1]);
        if (i < this.filterDrops.length) this.filterDrops[i] = value;
      } else if (ctrl !== null) {
        if (!CTRL_CLASS_NAMES.has(ctrl[1]!)) continue;
        let e = this.ctrlByClass.get(ctrl[1]!);
        if (e === undefined) this.ctrlByClass.set(ctrl[1]!, (e = { ok: 0, err: 0 }));
        e[ctrl[2] as 'ok' | 'err'] = value;
      } else if (Object.hasOwn(self, name) && typeof self[name] === 'number') {
        self[name] = value;
      }
    }
  }

  /** The report, given the filter's drop codes and the current backlog. */
  snapshot(filterCodes: Readonly<Record<'vlan' | 'unicast' | 'multicast' | 'broadcast' | 'runt', number>>, backlog: number): NetStats {
    const byClass: Record<string, { ok: number; err: number }> = {};
    for (const [k, v] of this.ctrlByClass) byClass[k] = { ...v };
    const d = this.filterDrops;
    return {
      tx: {
        frames: this.txFrames,
        bytes: this.txBytes,
        errors: {
          'header-short': this.txHeaderShort,
          oversize: this.txOversize,
          'link-down': this.txLinkDown,
          backend: this.txBackend,
          'bad-header': this.txBadHeader,
          'above-mtu': this.txAboveMtu,
        },
      },
      rx: {
        offered: this.rxOffered,
        frames: this.rxFrames,
        bytes: this.rxBytes,
        backlog,
        backpressure: this.rxBackpressure,
        drops: {
          vlan: d[filterCodes.vlan]!,
          unicast: d[filterCodes.unicast]!,
          multicast: d[filterCodes.multicast]!,
          broadcast: d[filterCodes.broadcast]!,
          runt: d[filterCodes.runt]!,
          'link-down': this.rxLinkDown,
          'buffer-too-small': this.rxBufferTooSmall,
          oversize: this.rxOversize,
          reset: this.rxReset,
          'gso-not-negotiated': this.rxGsoNotNegotiated,
          'csum-out-of-frame': this.rxCsumOutOfFrame,
          'header-malformed': this.rxHeaderMalformed,
          'queue-reset': this.rxQueueReset,
          'above-mtu': this.rxAboveMtu,
        },
        shortBuffers: this.rxShortBuffers,
        csumCompleted: this.rxCsumCompleted,
      },
      ctrl: { ok: this.ctrlOk, err: this.ctrlErr, byClass },
      interrupts: { used: this.usedInterrupts, config: this.configInterrupts },
      needsReset: this.needsReset,
      queues: {
        rx: Array.from(this.rxQueueFrames, (frames, k) => ({ frames, bytes: this.rxQueueBytes[k]! })),
        tx: Array.from(this.txQueueFrames, (frames, k) => ({ frames, bytes: this.txQueueBytes[k]! })),
      },
    };
  }
}
