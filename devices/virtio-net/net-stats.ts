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

/**
 * One data queue's counters (what VIRTIO 1.4 DEVICE_STATS reports as RX_BASIC / TX_BASIC; the
 * guest reads the same numbers through the control queue, device-stats.ts).
 */
export interface NetQueueStats {
  /** 'receiveq1', 'transmitq1', … (§5.1.2). */
  name: string;
  index: number;
  /** Available-buffer notifications from the driver. */
  notifications: number;
  /** Receive: frames delivered; transmit: frames the backend took. */
  packets: number;
  bytes: number;
  /** Used-buffer notifications sent (after suppression and coalescing). */
  interrupts: number;
  /**
   * Transmit: chains completed unsent (every `tx.errors` reason). Receive: frames dropped on the
   * way to the guest (`rx.drops`, all reasons), each on the receive queue it was steered to
   * (rx-path.ts); the receive queues' drops add up to every receive drop.
   */
  drops: number;
  /** Transmit: chains completed unsent because they were malformed ('header-short', 'oversize'). */
  malformed: number;
}

/** Per-queue counter fields, in their order in `NetCounters.perQueue`. */
export const QueueField = {
  NOTIFICATIONS: 0,
  PACKETS: 1,
  BYTES: 2,
  INTERRUPTS: 3,
  DROPS: 4,
  MALFORMED: 5,
} as const;
const QUEUE_FIELDS = 6;
const QUEUE_FIELD_NAMES = ['notifications', 'packets', 'bytes', 'interrupts', 'drops', 'malformed'] as const;

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
    /** By class name: rx, mac, vlan, announce, mq, guest-offloads, notf-coal, stats, unknown. */
    byClass: Record<string, { ok: number; err: number }>;
  };
  interrupts: { used: number; config: number };
  needsReset: number;
  /** Every data queue the device has, receiveq1 first. */
  queues: NetQueueStats[];
}

const CLASS_NAMES: ReadonlyMap<number, string> = new Map([
  [CtrlClass.RX, 'rx'],
  [CtrlClass.MAC, 'mac'],
  [CtrlClass.VLAN, 'vlan'],
  [CtrlClass.ANNOUNCE, 'announce'],
  [CtrlClass.MQ, 'mq'],
  [CtrlClass.GUEST_OFFLOADS, 'guest-offloads'],
  [CtrlClass.NOTF_COAL, 'notf-coal'],
  [CtrlClass.STATS, 'stats'],
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
  /** `ctrlByClass`'s entry by class number (a byte), found once: no name lookup per command. */
  private readonly ctrlEntryByNumber: ({ ok: number; err: number } | undefined)[] = new Array<{ ok: number; err: number } | undefined>(256).fill(undefined);
  usedInterrupts = 0;
  configInterrupts = 0;
  needsReset = 0;
  rxQueueReset = 0;
  /** Per data queue: `index * 6 + QueueField.X`. */
  readonly perQueue: Float64Array;

  constructor(readonly dataQueues = 2) {
    this.perQueue = new Float64Array(dataQueues * QUEUE_FIELDS);
  }

  /** Bumps field `field` of data queue `index` by `n` (an index past the data queues is ignored). */
  queueAdd(index: number, field: number, n: number): void {
    if (index < this.dataQueues) this.perQueue[index * QUEUE_FIELDS + field]! += n;
  }

  /** A frame of `bytes` delivered to receive queue `index`: the device's and the queue's packets and bytes. */
  rxDelivered(index: number, bytes: number): void {
    this.rxFrames++;
    this.rxBytes += bytes;
    this.queuePacket(index, bytes);
  }

  /** A frame of `bytes` the backend took from transmit queue `index`: the device's and the queue's packets and bytes. */
  txSent(index: number, bytes: number): void {
    this.txFrames++;
    this.txBytes += bytes;
    this.queuePacket(index, bytes);
  }

  /** One packet of `bytes` on data queue `index` (per-queue packets and bytes). */
  private queuePacket(index: number, bytes: number): void {
    if (index < this.dataQueues) {
      const at = index * QUEUE_FIELDS;
      this.perQueue[at + QueueField.PACKETS]!++;
      this.perQueue[at + QueueField.BYTES]! += bytes;
    }
  }

  /** A transmit chain of queue `index` completed unsent; `malformed` for 'header-short' / 'oversize'. */
  txDropped(index: number, malformed: boolean): void {
    if (index >= this.dataQueues) return;
    const at = index * QUEUE_FIELDS;
    this.perQueue[at + QueueField.DROPS]!++;
    if (malformed) this.perQueue[at + QueueField.MALFORMED]!++;
  }

  /** Field `field` of data queue `index`. */
  queueValue(index: number, field: number): number {
    return index < this.dataQueues ? this.perQueue[index * QUEUE_FIELDS + field]! : 0;
  }

  countCtrl(ctrlClass: number, ok: boolean): void {
    let entry = this.ctrlEntryByNumber[ctrlClass & 0xff];
    if (entry === undefined) {
      const name = CLASS_NAMES.get(ctrlClass) ?? 'unknown';
      entry = this.ctrlByClass.get(name);
      if (entry === undefined) {
        entry = { ok: 0, err: 0 };
        this.ctrlByClass.set(name, entry);
      }
      this.ctrlEntryByNumber[ctrlClass & 0xff] = entry;
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
    for (const [k, v] of Object.entries(this)) if (typeof v === 'number' && k !== 'dataQueues') out.push([k, v]);
    this.filterDrops.forEach((v, i) => out.push([`filterDrops.${i}`, v]));
    // Per-queue counters: only the non-zero ones (an image stays small with many queues).
    this.perQueue.forEach((v, i) => {
      if (v !== 0) out.push([`queue.${Math.floor(i / QUEUE_FIELDS)}.${QUEUE_FIELD_NAMES[i % QUEUE_FIELDS]!}`, v]);
    });
    for (const [k, v] of this.ctrlByClass) out.push([`ctrl.${k}.ok`, v.ok], [`ctrl.${k}.err`, v.err]);
    return out;
  }

  /** Sets every counter from `exportState()` entries (absent ones to 0; unknown names are ignored). */
  importState(entries: readonly (readonly [string, number])[]): void {
    const self = this as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(this)) if (typeof v === 'number' && k !== 'dataQueues') self[k] = 0;
    this.filterDrops.fill(0);
    this.perQueue.fill(0);
    this.ctrlByClass.clear();
    this.ctrlEntryByNumber.fill(undefined);
    for (const [name, value] of entries) {
      const drop = /^filterDrops\.(\d)$/.exec(name);
      const ctrl = /^ctrl\.([a-z-]+)\.(ok|err)$/.exec(name);
      const queue = /^queue\.(\d{1,5})\.([a-z]+)$/.exec(name);
      if (queue !== null) {
        const field = (QUEUE_FIELD_NAMES as readonly string[]).indexOf(queue[2]!);
        const index = Number(queue[1]);
        if (field >= 0 && index < this.dataQueues) this.perQueue[index * QUEUE_FIELDS + field] = value;
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
    // Images written before receive drops were counted per queue carry none: every receive drop
    // was receiveq1's then, as that version reported them.
    let perQueueRx = 0;
    for (let i = 0; i < this.dataQueues; i += 2) perQueueRx += this.perQueue[i * QUEUE_FIELDS + QueueField.DROPS]!;
    const rxDrops = this.rxDropTotal();
    if (perQueueRx === 0 && rxDrops > 0 && this.dataQueues > 0) this.perQueue[QueueField.DROPS] = rxDrops;
  }

  /** Every receive drop, all reasons (what `rx.drops` adds up to). */
  private rxDropTotal(): number {
    let n = this.rxLinkDown + this.rxBufferTooSmall + this.rxOversize + this.rxReset + this.rxGsoNotNegotiated + this.rxCsumOutOfFrame + this.rxHeaderMalformed + this.rxQueueReset + this.rxAboveMtu;
    for (const d of this.filterDrops) n += d;
    return n;
  }

  /** The report, given the filter's drop codes and the current backlog. */
  snapshot(filterCodes: Readonly<Record<'vlan' | 'unicast' | 'multicast' | 'broadcast' | 'runt', number>>, backlog: number): NetStats {
    const byClass: Record<string, { ok: number; err: number }> = {};
    for (const [k, v] of this.ctrlByClass) byClass[k] = { ...v };
    const d = this.filterDrops;
    const report: NetStats = {
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
      queues: [],
    };
    report.queues = this.queueSnapshot();
    return report;
  }

  private queueSnapshot(): NetQueueStats[] {
    const out: NetQueueStats[] = [];
    const p = this.perQueue;
    for (let i = 0; i < this.dataQueues; i++) {
      const at = i * QUEUE_FIELDS;
      out.push({
        name: `${(i & 1) === 0 ? 'receiveq' : 'transmitq'}${(i >> 1) + 1}`,
        index: i,
        notifications: p[at + QueueField.NOTIFICATIONS]!,
        packets: p[at + QueueField.PACKETS]!,
        bytes: p[at + QueueField.BYTES]!,
        interrupts: p[at + QueueField.INTERRUPTS]!,
        drops: p[at + QueueField.DROPS]!,
        malformed: p[at + QueueField.MALFORMED]!,
      });
    }
    return out;
  }
}
