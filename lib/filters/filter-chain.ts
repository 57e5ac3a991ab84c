// A netdev with filters on it (QEMU net/net.c: filter_receive_iov, qemu_netfilter_pass_to_next;
// no VIRTIO section: the host side). `FilterChain` wraps any `Netdev` and is itself a `Netdev`, so
// the device attaches to it unchanged:
//
//   device ──send()──▶ [filters, last added first: direction 'rx'] ──▶ inner.send() ──▶ host
//   device ◀─receive()── [filters, first added first: direction 'tx'] ◀── inner ◀── host
//
// Each filter answers pass / consume / replace (lib/filters/filter.ts). A filter that makes frames
// of its own (the redirector's input socket) continues them through `passToNext`.
//
// Backpressure without running a filter twice on one frame: when the far end says "not now"
// (inner.send → 'busy', or the device's receive → false) after the filters have seen the frame,
// the chain keeps that one frame (a copy, into a buffer reused for every such frame) and holds
// back the near end (send answers 'busy' / the inner netdev is paused) until the far end is ready.
// A far end may call back into the chain while it takes a frame (a device transmitting from inside
// a delivery, a host handing a frame in from inside send); the frame being delivered may live in a
// filter's own buffer (a replace verdict), which that inner walk may rewrite, so an inner walk first
// copies the outer deliveries' filter-owned frames — the frame kept after a refusal is the right one.
// Capabilities of the inner netdev (vnet header, offloads, link state, the rx-filter binding of a
// syncing backend, MAC announcement, several queues) are forwarded: a V86BusNetdev or macvtap under
// filters still learns the device's MAC / filter, and a multiqueue TAP under filters still gets each
// guest frame on its transmit queue's fd and hands each host frame in with the queue it came from
// (a held frame keeps its queue; frames a filter makes itself go on queue 0).

import {
  announcesMac,
  isMultiQueue,
  hasLinkState,
  hasOffloads,
  hasVnetHeader,
  type Netdev,
  type NetdevPeer,
  type OffloadFlags,
  type RxFilterSource,
  type SendResult,
  syncsRxFilter,
} from '../netdev/netdev.js';
import { queueSees, type Direction, type FilterSink, type NetFilter } from './filter.js';
import { FrameSlot } from '../base/frame-slot.js';
import { NET_BUFSIZE } from '../base/frame-limits.js';

/** Where `add()` puts a filter (QEMU's `position=` and `insert=` properties). */
export interface FilterPosition {
  /** 'head', 'tail' (default) or the id of a filter already on the chain. */
  position?: string;
  /** With an id: before it or behind it (default 'behind', as QEMU). */
  insert?: 'before' | 'behind';
}

export interface FilterChainStats {
  /** Frames a filter consumed, per direction. */
  consumedRx: number;
  consumedTx: number;
  /** Frames a filter replaced. */
  replaced: number;
  /** Frames produced by filters (passToNext) that the far end could not take. */
  injectedDropped: number;
}

/** A frame held back while the far end is not ready: up to QEMU's NET_BUFSIZE, with a header of up to 64 bytes. */
const heldFrame = (): FrameSlot => new FrameSlot(NET_BUFSIZE, 64);

/**
 * A frame being handed to the far end. `owned`: it is a filter's replaced frame, living in that
 * filter's buffer, which a walk started from inside the far end's call may overwrite.
 */
interface Delivery {
  frame: Uint8Array;
  header: Uint8Array | undefined;
  owned: boolean;
}

const NO_FRAME = new Uint8Array(0);

export class FilterChain implements Netdev, FilterSink {
  readonly id: string;
  private readonly list: NetFilter[] = [];
  private peer: NetdevPeer | null = null;
  private readonly heldOut = heldFrame();
  /** The transmit queue of the frame in heldOut, and the host queue of the one in heldIn. */
  private heldOutQueue: number | undefined;
  private heldInQueue: number | undefined;
  /** Set by walk() when the wrapped netdev answered a guest frame with 'dropped'. */
  private innerDropped = false;
  private readonly heldIn = heldFrame();
  private readonly counters: FilterChainStats = { consumedRx: 0, consumedTx: 0, replaced: 0, injectedDropped: 0 };
  /** Deliveries in progress, outermost first (more than one only when the far end calls back in). */
  private readonly deliveries: Delivery[] = [];
  private depth = 0;
  private closed = false;
  /** What the inner netdev sees as its peer: host-side frames enter the chain here. */
  private readonly innerPeer: NetdevPeer;

  /** Forwarded when the inner netdev carries vnet headers (else absent, so `hasVnetHeader` is false). */
  readonly setVnetHeaderLength?: (length: 10 | 12) => void;
  readonly setOffloads?: (flags: OffloadFlags) => boolean;
  /** Forwarded when the inner netdev mirrors the rx filter (RxFilterSyncCapable) / announces the MAC. */
  readonly syncsRxFilter?: true;
  readonly bindRxFilterSource?: (source: RxFilterSource) => () => void;
  readonly announceMac?: () => void;
  /** Forwarded when the inner netdev has several queues (MultiQueueCapable). */
  readonly setActiveQueues?: (pairs: number) => void;

  constructor(readonly inner: Netdev, options: { id?: string } = {}) {
    if (inner === null || typeof inner !== 'object' || typeof inner.send !== 'function' || typeof inner.attach !== 'function') {
      throw new TypeError('FilterChain: needs a Netdev to wrap (an object with attach, send, …)');
    }
    if (options.id !== undefined && (typeof options.id !== 'string' || options.id === '')) {
      throw new TypeError(`FilterChain: options.id must be a non-empty string, got ${String(options.id)}`);
    }
    this.id = options.id ?? inner.id;
    this.innerPeer = {
      receive: (frame, vnetHeader, queue) => this.fromHost(frame, vnetHeader, queue),
      writable: () => this.hostWritable(),
    };
    if (hasVnetHeader(inner)) {
      this.setVnetHeaderLength = (length) => inner.setVnetHeaderLength(length);
      Object.defineProperty(this, 'vnetHeaderLength', { get: () => inner.vnetHeaderLength, enumerable: true });
    }
    if (hasOffloads(inner)) this.setOffloads = (flags) => inner.setOffloads(flags);
    if (hasLinkState(inner)) {
      Object.defineProperty(this, 'linkUp', { get: () => inner.linkUp, enumerable: true });
      Object.defineProperty(this, 'onLinkChange', { value: inner.onLinkChange.bind(inner), enumerable: true });
      Object.defineProperty(this, 'linkStatus', { value: inner.linkStatus.bind(inner), enumerable: true });
    }
    if (syncsRxFilter(inner)) {
      this.syncsRxFilter = true;
      this.bindRxFilterSource = (source) => inner.bindRxFilterSource(source);
    }
    if (announcesMac(inner)) this.announceMac = () => inner.announceMac();
    if (isMultiQueue(inner)) {
      Object.defineProperty(this, 'queues', { get: () => inner.queues, enumerable: true });
      this.setActiveQueues = (pairs) => inner.setActiveQueues(pairs);
    }
  }

  // --- filters -------------------------------------------------------------------------------

  /** Filters in chain order. */
  get filters(): readonly NetFilter[] {
    return this.list;
  }

  get(id: string): NetFilter | undefined {
    return this.list.find((f) => f.id === id);
  }

  /** Adds a filter (ids are unique on a chain). */
  add(filter: NetFilter, where: FilterPosition = {}): void {
    if (filter === null || typeof filter !== 'object' || typeof filter.process !== 'function' || typeof filter.id !== 'string') {
      throw new TypeError(`FilterChain ${this.id}: add needs a NetFilter { id, queue, status, process() }`);
    }
    if (this.get(filter.id) !== undefined) throw new Error(`FilterChain ${this.id}: a filter with id '${filter.id}' is already on the chain`);
    const position = where.position ?? 'tail';
    const insert = where.insert ?? 'behind';
    if (insert !== 'before' && insert !== 'behind') throw new TypeError(`FilterChain ${this.id}: insert must be 'before' or 'behind', got ${String(insert)}`);
    let index: number;
    if (position === 'tail') index = this.list.length;
    else if (position === 'head') index = 0;
    else {
      const at = this.list.findIndex((f) => f.id === position);
      if (at < 0) throw new Error(`FilterChain ${this.id}: position must be 'head', 'tail' or the id of a filter on the chain, got '${position}'`);
      index = insert === 'before' ? at : at + 1;
    }
    this.list.splice(index, 0, filter);
    filter.attached?.(this);
  }

  /** Removes a filter by id; false when there is none. The filter is not closed. */
  remove(id: string): boolean {
    const i = this.list.findIndex((f) => f.id === id);
    if (i < 0) return false;
    const [f] = this.list.splice(i, 1);
    f!.detached?.();
    return true;
  }

  stats(): FilterChainStats {
    return { ...this.counters };
  }

  // --- Netdev (device side) ------------------------------------------------------------------

  attach(peer: NetdevPeer): void {
    if (this.peer !== null) throw new Error(`FilterChain ${this.id}: a device is already attached`);
    this.peer = peer;
    this.inner.attach(this.innerPeer);
  }

  detach(): void {
    this.peer = null;
    this.inner.detach();
  }

  /** A guest frame toward the host: filters in reverse order, direction 'rx'. */
  send(frame: Uint8Array, vnetHeader?: Uint8Array, queue?: number): SendResult {
    if (this.heldOut.full) return 'busy'; // one frame is still waiting for the host
    this.innerDropped = false;
    if (!this.walk(this.list.length - 1, 'rx', frame, vnetHeader, true, queue)) return 'busy';
    // A frame the backend dropped (a failed fd) is reported as such, so the device counts it.
    return this.innerDropped ? 'dropped' : 'sent';
  }

  /**
   * `send()` for `bytes[offset, offset + length)` (Netdev.sendSpan). With no filter that sees
   * guest frames (direction 'rx') it goes to the inner netdev as a span, else as a view walked
   * through the filters like any frame.
   */
  sendSpan(bytes: Uint8Array, offset: number, length: number, vnetHeader?: Uint8Array, queue?: number): SendResult {
    if (this.seesRx()) return this.send(bytes.subarray(offset, offset + length), vnetHeader, queue);
    if (this.heldOut.full) return 'busy'; // one frame is still waiting for the host
    const inner = this.inner;
    const r =
      inner.sendSpan !== undefined
        ? inner.sendSpan(bytes, offset, length, vnetHeader, queue)
        : inner.send(bytes.subarray(offset, offset + length), vnetHeader, queue);
    if (r !== 'busy') return r;
    // Refused after nothing saw it: kept like any refused frame (send's walk does the same).
    if (!this.heldOut.keep(bytes.subarray(offset, offset + length), vnetHeader)) return 'busy';
    this.heldOutQueue = queue;
    return 'sent';
  }

  /** Whether any filter on the chain sees guest frames now (on, queue 'rx' or 'all'). */
  private seesRx(): boolean {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const f = list[i]!;
      if (f.status && queueSees(f.queue, 'rx')) return true;
    }
    return false;
  }

  pauseReceive(): void {
    this.inner.pauseReceive();
  }

  resumeReceive(): void {
    if (this.heldIn.full && this.peer !== null) {
      if (!this.peer.receive(this.heldIn.frame, this.heldIn.header, this.heldInQueue)) return; // still no room
      this.heldIn.clear();
    }
    this.inner.resumeReceive();
  }

  /** Closes every filter, then the inner netdev. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const f of [...this.list]) await f.close?.();
    await this.inner.close();
  }

  // --- FilterSink ----------------------------------------------------------------------------

  passToNext(from: NetFilter, direction: Direction, frame: Uint8Array, vnetHeader?: Uint8Array): boolean {
    const i = this.list.indexOf(from);
    if (i < 0) return false;
    const ok = this.walk(direction === 'tx' ? i + 1 : i - 1, direction, frame, vnetHeader, false);
    if (!ok) this.counters.injectedDropped++;
    return ok;
  }

  // --- host side -----------------------------------------------------------------------------

  private fromHost(frame: Uint8Array, vnetHeader: Uint8Array | undefined, queue: number | undefined): boolean {
    if (this.heldIn.full) return false; // the device has not taken the held one yet
    return this.walk(0, 'tx', frame, vnetHeader, true, queue);
  }

  private hostWritable(): void {
    if (this.heldOut.full) {
      if (this.inner.send(this.heldOut.frame, this.heldOut.header, this.heldOutQueue) === 'busy') return;
      this.heldOut.clear();
    }
    this.peer?.writable();
  }

  /**
   * Walks filters from index `start` in the direction's order, then delivers to the far end.
   * `hold`: when the far end refuses, keep the frame and hold the near end back (true is
   * returned: the frame was taken); else report false (the frame is dropped by the caller).
   * `queue`: the device's transmit queue ('rx') or the host queue the frame came from ('tx'),
   * passed to the far end with it.
   */
  private walk(start: number, direction: Direction, frame: Uint8Array, vnetHeader: Uint8Array | undefined, hold: boolean, queue?: number): boolean {
    // Called back from inside a delivery (a device transmitting while it refuses a frame, a host
    // handing a frame in from inside send): this walk's filters may rewrite the buffers the outer
    // deliveries' frames live in, and an outer one may still have to keep its frame. Copy those
    // first (rare: an allocation here is not on the per-frame path).
    for (let d = 0; d < this.depth; d++) {
      const o = this.deliveries[d]!;
      if (!o.owned) continue;
      o.frame = o.frame.slice();
      o.header = o.header?.slice();
      o.owned = false;
    }
    let owned = false;
    const step = direction === 'tx' ? 1 : -1;
    for (let i = start; i >= 0 && i < this.list.length; i += step) {
      const f = this.list[i]!;
      if (!f.status || !queueSees(f.queue, direction)) continue;
      const v = f.process(direction, frame, vnetHeader);
      if (v.kind === 'pass') continue;
      if (v.kind === 'consume') {
        if (direction === 'rx') this.counters.consumedRx++;
        else this.counters.consumedTx++;
        return true;
      }
      this.counters.replaced++;
      frame = v.frame;
      vnetHeader = v.vnetHeader;
      owned = true;
    }
    const peer = this.peer;
    if (direction === 'tx' && peer === null) return false;
    const d = (this.deliveries[this.depth] ??= { frame: NO_FRAME, header: undefined, owned: false });
    d.frame = frame;
    d.header = vnetHeader;
    d.owned = owned;
    this.depth++;
    let taken: boolean;
    try {
      if (direction === 'rx') {
        const r = this.inner.send(frame, vnetHeader, queue);
        if (r === 'dropped') this.innerDropped = true; // the backend consumed and counted it
        taken = r !== 'busy';
      } else taken = peer!.receive(frame, vnetHeader, queue);
    } finally {
      this.depth--;
    }
    // The frame as it is now: a copy if a walk from inside the call could have overwritten it.
    frame = d.frame;
    vnetHeader = d.header;
    d.frame = NO_FRAME;
    d.header = undefined;
    if (taken) return true;
    if (direction === 'rx') {
      if (!hold || !this.heldOut.keep(frame, vnetHeader)) return false;
      this.heldOutQueue = queue;
      return true;
    }
    if (!hold || !this.heldIn.keep(frame, vnetHeader)) return false;
    this.heldInQueue = queue;
    this.inner.pauseReceive();
    return true;
  }
}
