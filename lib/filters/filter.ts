// What a net filter is (QEMU's netfilter object model, include/net/filter.h; no VIRTIO section:
// this is the host side of the device). A filter sits on a netdev, sees frames going one or both
// ways, and answers each with a verdict.
//
// Directions are named from the NETDEV's point of view, exactly as QEMU names its `queue=`
// property (qemu-options "-object filter-…,queue=all|rx|tx"), so QEMU command lines such as the
// COLO ones carry over unchanged:
//   'rx' — the netdev receives the frame: guest → host (the device's TX queue sent it);
//   'tx' — the netdev transmits the frame: host → guest (it goes to the device's RX queue).
// A chain walks 'tx' frames through its filters in order and 'rx' frames in reverse (QEMU
// net/net.c filter_receive_iov), so the filter added first is the one nearest the host on the
// way in and the last one seen on the way out.

/** Direction of one frame, from the netdev's point of view (see the file header). */
export type Direction = 'rx' | 'tx';
/** Which frames a filter sees: QEMU's `queue=` property. */
export type FilterQueue = 'rx' | 'tx' | 'all';

export const FILTER_QUEUES: readonly FilterQueue[] = ['rx', 'tx', 'all'];

/** Let the frame go on unchanged. */
export interface PassVerdict {
  readonly kind: 'pass';
}
/** The filter took the frame (sent it elsewhere, queued it, or dropped it): it goes no further. */
export interface ConsumeVerdict {
  readonly kind: 'consume';
}
/**
 * Go on with this frame instead. `frame` (and `vnetHeader`) must stay valid until the chain
 * returns; filters keep one preallocated verdict and scratch buffer rather than allocating.
 */
export interface ReplaceVerdict {
  readonly kind: 'replace';
  frame: Uint8Array;
  vnetHeader: Uint8Array | undefined;
}
export type Verdict = PassVerdict | ConsumeVerdict | ReplaceVerdict;

export const PASS: PassVerdict = Object.freeze({ kind: 'pass' });
export const CONSUME: ConsumeVerdict = Object.freeze({ kind: 'consume' });

/** Where a filter that produces frames of its own (redirector indev) sends them: the rest of its chain. */
export interface FilterSink {
  /**
   * Continues `frame` in `direction` from just after `from` (in that direction's walk order),
   * through the remaining filters, to the device ('tx') or the host ('rx'). False when the far
   * end could not take it now (device out of buffers, host busy): the frame is dropped.
   */
  passToNext(from: NetFilter, direction: Direction, frame: Uint8Array, vnetHeader?: Uint8Array): boolean;
}

/** A net filter. */
export interface NetFilter {
  /** The filter's id (QEMU `-object …,id=`); passthrough entries name it as `object-name`. */
  readonly id: string;
  readonly queue: FilterQueue;
  /** Off: the chain skips the filter (QEMU `status=off`). */
  status: boolean;
  /**
   * One frame. `frame` is borrowed: valid only during the call (it may be a view into guest
   * memory) — copy what you keep, never write into it. `vnetHeader` is the virtio-net header the
   * backend carries with the frame, if it carries one.
   */
  process(direction: Direction, frame: Uint8Array, vnetHeader: Uint8Array | undefined): Verdict;
  /** Called when the filter joins a chain. */
  attached?(sink: FilterSink): void;
  /** Called when the filter leaves its chain. */
  detached?(): void;
  /** Releases sockets and files. Idempotent. */
  close?(): Promise<void>;
}

/** True when a filter with this queue sees frames going in `direction`. */
export function queueSees(queue: FilterQueue, direction: Direction): boolean {
  return queue === 'all' || queue === direction;
}

/** Common option checks (programmer errors: thrown at once, naming the option). */
export function checkFilterOptions(kind: string, o: { id?: unknown; queue?: unknown; status?: unknown }): { id: string; queue: FilterQueue; status: boolean } {
  if (o === null || typeof o !== 'object') throw new TypeError(`${kind}: options must be an object`);
  if (typeof o.id !== 'string' || o.id === '') throw new TypeError(`${kind}: options.id must be a non-empty string, got ${String(o.id)}`);
  const queue = o.queue ?? 'all';
  if (typeof queue !== 'string' || !FILTER_QUEUES.includes(queue as FilterQueue)) {
    throw new TypeError(`${kind} ${o.id}: options.queue must be one of 'rx', 'tx', 'all', got ${String(o.queue)}`);
  }
  const status = o.status ?? true;
  if (typeof status !== 'boolean') throw new TypeError(`${kind} ${o.id}: options.status must be a boolean (true = on), got ${String(o.status)}`);
  return { id: o.id, queue: queue as FilterQueue, status };
}
