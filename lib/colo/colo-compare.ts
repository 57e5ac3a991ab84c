// colo-compare (QEMU net/colo-compare.c, "-object colo-compare,id=,primary_in=,secondary_in=,
// outdev=,compare_timeout=,expired_scan_cycle=,max_queue_size=,vnet_hdr_support"; usage in QEMU
// docs/colo-proxy.txt). Runs on the COLO primary host:
//
//   primary_in ──▶ parse ─┬─ not IP / unparsable ────────────────────────────▶ out
//                         ├─ passthrough flow ───────────────────────────────▶ out
//                         └─ connection's primary queue ─┐
//   secondary_in ─▶ parse ─┬─ not IP / passthrough ─▶ dropped                │ compare-rules.ts
//                          ├─ no connection yet: pending table (bounded) ───┤ (adopted by the primary's first packet)
//                          └─ connection's secondary queue ┴─ match: primary ─▶ out, secondary dropped
//                                                            mismatch / timeout / queue, byte or table
//                                                            full: 'checkpoint-request', then flush
//
// A checkpoint request is emitted once per inconsistency; then every queue is flushed (primary
// packets go out, secondary ones are dropped, as QEMU does after notifying the COLO frame) so the
// next packets start a clean comparison. Wiring the request to a checkpoint (and calling the
// secondary's RewriterFilter.checkpoint()) is the embedder's job.
// Limits (a client or a stray secondary must not grow memory or force uncompared output):
// - Only the primary creates connections. A secondary packet of an unknown flow waits in a small
//   pending table (`maxPendingFlows`, at most compareTimeout) for the primary's first packet of
//   that flow; when that table is full it is dropped. QEMU creates a connection for either side.
// - `maxBufferedBytes` caps the bytes queued across all connections (QEMU caps only packet counts).
//   A packet that would pass it requests a checkpoint (reason 'buffer-full') and then is queued.
// - A full connection table requests a checkpoint ('table-full') before its queues are flushed;
//   QEMU silently empties its table (net/colo.c connection_get), dropping what was queued.
// - Connections end when both guests' FINs have been compared (QEMU's colo-compare never forgets
//   one; its filter-rewriter waits for the last ACK, which only the client sends and colo-compare
//   never sees — so here a guest's pure ACK of an unknown flow goes out without creating an entry),
//   on an in-sequence RST pair (compare-rules.ts), or after `idleTimeout` with nothing queued.
// Every packet has one fate, counted in stats(): primaryIn = released + straightOut + passthrough
// + flushed + primaryQueued; secondaryIn = secondaryDropped + secondaryQueued (`capFlushed` and
// `capDropped` are the parts of flushed / secondaryDropped that a limit caused).
// Inputs are ChardevSockets (framing: lib/chardev/framing.ts) or direct calls (`primaryInput`,
// `secondaryInput`); output is a ChardevSocket and/or a callback. Queued packets are copies: the
// compare must hold them across reads (QEMU copies them too).

import { EventEmitter } from 'node:events';
import type { ChardevSocket } from '../chardev/chardev-socket.js';
import { FlowTable, flowKey, newFlowKey } from '../packet/flow-table.js';
import { formatAddress, newPacketInfo, parsePacket, TCP_FLAG, type PacketInfo } from '../packet/parse.js';
import { compareConnection, type CompareConnection, type QueuedPacket } from './compare-rules.js';
import type { PassthroughList } from '../passthrough/passthrough.js';
import { protocolName } from '../passthrough/protocols.js';

export interface ColoCompareOptions {
  /** The object id (passthrough entries name it as `object-name`). */
  id: string;
  primaryIn?: ChardevSocket;
  secondaryIn?: ChardevSocket;
  outdev?: ChardevSocket;
  /** Also (or instead of outdev) hands released frames to this callback. */
  output?: (frame: Uint8Array, vnetHeader: Uint8Array | undefined) => void;
  /** ms a primary packet may wait for its match (QEMU default 3000). */
  compareTimeout?: number;
  /** ms between scans for expired packets (QEMU default 1000). */
  expiredScanCycle?: number;
  /** Packets per queue per connection (QEMU default 1024). */
  maxQueueSize?: number;
  /** Connections tracked (QEMU HASHTABLE_MAX_SIZE 16384); when full, a checkpoint is requested. */
  maxConnections?: number;
  /** Bytes queued across all connections (frames + vnet headers); past it, a checkpoint is requested. */
  maxBufferedBytes?: number;
  /** Flows the secondary may send before the primary does; more are dropped. */
  maxPendingFlows?: number;
  /** ms a connection with nothing queued may stay silent before it is forgotten. */
  idleTimeout?: number;
  passthrough?: PassthroughList;
  /** Clock in ms (default performance.now). */
  now?: () => number;
}

export const DEFAULT_COMPARE_TIMEOUT_MS = 3000;
export const DEFAULT_EXPIRED_SCAN_CYCLE_MS = 1000;
export const DEFAULT_MAX_QUEUE_SIZE = 1024;
export const DEFAULT_MAX_CONNECTIONS = 16384;
/** compareTimeout (3 s) of a ~350 Mbit/s guest; a secondary further behind gets a checkpoint, not more memory (counts alone allow 16384 × 2 × 1024 × 64 KiB). */
export const DEFAULT_MAX_BUFFERED_BYTES = 128 * 1024 * 1024;
/** New flows the secondary may lead the primary by; its output seldom leads by more than a few. */
export const DEFAULT_MAX_PENDING_FLOWS = 1024;
/** An idle entry holds only the compare cursor; Linux's largest retransmission timeout (TCP_RTO_MAX) is 120 s. */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;

export type CheckpointReason = 'mismatch' | 'timeout' | 'queue-full' | 'buffer-full' | 'table-full';

/** The reasons that are limits rather than a difference between the guests. */
const CAP_REASONS: ReadonlySet<CheckpointReason> = new Set(['queue-full', 'buffer-full', 'table-full']);

export interface CheckpointRequest {
  /** The colo-compare's id. */
  id: string;
  reason: CheckpointReason;
  /** The connection that caused it: protocol name and endpoints, e.g. "tcp 10.0.0.1:80 <-> 10.0.0.2:5000". */
  flow: string;
}

export interface ColoCompareStats {
  primaryIn: number;
  secondaryIn: number;
  /** Primary packets sent out after a match (or as retransmissions/pure ACKs). */
  released: number;
  /** Non-IP or unparsable primary packets sent straight out. */
  straightOut: number;
  /** Primary packets of passthrough flows sent out uncompared. */
  passthrough: number;
  /** Secondary packets dropped after comparing, as stale, non-IP, or passthrough. */
  secondaryDropped: number;
  /** Primary packets sent out by a flush after a checkpoint request. */
  flushed: number;
  /** Of `flushed`: flushes that a limit (queue, bytes, table) caused. */
  capFlushed: number;
  /** Of `secondaryDropped`: dropped by such a flush, or refused by the pending table or byte cap. */
  capDropped: number;
  checkpointRequests: number;
  checkpointsByReason: Record<CheckpointReason, number>;
  connections: number;
  /** Secondary-only flows waiting for the primary's first packet. */
  pendingFlows: number;
  /** Connections ended by FINs or an in-sequence RST. */
  closed: number;
  /** Connections forgotten after `idleTimeout` with nothing queued. */
  expired: number;
  primaryQueued: number;
  secondaryQueued: number;
  bufferedBytes: number;
}

interface Conn extends CompareConnection {
  readonly flow: string;
  /** Time of the last packet queued (ms). */
  lastSeen: number;
  /** In the pending table (only the secondary has sent). */
  pending: boolean;
}

/** Bytes a queued packet holds. */
function sizeOf(p: QueuedPacket): number {
  return p.frame.length + (p.vnetHeader?.length ?? 0);
}

/** classify(): not compared — the packet goes out (primary) or is dropped (secondary). */
const OUT = 0;
/** classify(): refused by a limit (secondary only; counted). */
const REFUSED = 1;

export class ColoCompare extends EventEmitter<{ 'checkpoint-request': [CheckpointRequest] }> {
  readonly id: string;
  readonly compareTimeout: number;
  readonly expiredScanCycle: number;
  readonly maxQueueSize: number;
  readonly maxBufferedBytes: number;
  readonly idleTimeout: number;
  private readonly opts: ColoCompareOptions;
  private readonly table: FlowTable<Conn>;
  private readonly pending: FlowTable<Conn>;
  private readonly info: PacketInfo = newPacketInfo();
  private readonly key = newFlowKey();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters = {
    primaryIn: 0, secondaryIn: 0, released: 0, straightOut: 0, passthrough: 0, secondaryDropped: 0, flushed: 0, capFlushed: 0, capDropped: 0,
    checkpointRequests: 0, closed: 0, expired: 0,
  };
  private readonly byReason: Record<CheckpointReason, number> = { mismatch: 0, timeout: 0, 'queue-full': 0, 'buffer-full': 0, 'table-full': 0 };
  private primaryQueued = 0;
  private secondaryQueued = 0;
  private buffered = 0;
  private scanTime = 0;
  private readonly isIdle = (c: Conn): boolean => c.primary.length === 0 && c.secondary.length === 0 && this.scanTime - c.lastSeen > this.idleTimeout;
  private readonly isEmpty = (c: Conn): boolean => c.secondary.length === 0;
  private readonly onPrimary = (f: Uint8Array, h: Uint8Array | undefined): void => this.primaryInput(f, h);
  private readonly onSecondary = (f: Uint8Array, h: Uint8Array | undefined): void => this.secondaryInput(f, h);
  private readonly releaseFn = (p: QueuedPacket): void => {
    this.counters.released++;
    this.primaryQueued--;
    this.buffered -= sizeOf(p);
    this.send(p.frame, p.vnetHeader);
  };
  private readonly dropFn = (p: QueuedPacket): void => {
    this.counters.secondaryDropped++;
    this.secondaryQueued--;
    this.buffered -= sizeOf(p);
  };

  constructor(options: ColoCompareOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('ColoCompare: options must be an object');
    const { id, outdev, output } = options;
    if (typeof id !== 'string' || id === '') throw new TypeError(`ColoCompare: options.id must be a non-empty string, got ${String(id)}`);
    if (outdev === undefined && output === undefined) throw new TypeError(`ColoCompare ${id}: needs options.outdev (a ChardevSocket) or options.output (a callback)`);
    if (output !== undefined && typeof output !== 'function') throw new TypeError(`ColoCompare ${id}: options.output must be a function`);
    const ms = (name: 'compareTimeout' | 'expiredScanCycle' | 'maxQueueSize' | 'maxConnections' | 'maxBufferedBytes' | 'maxPendingFlows' | 'idleTimeout', fallback: number): number => {
      const v = options[name] ?? fallback;
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`ColoCompare ${id}: options.${name} must be an integer >= 1, got ${String(options[name])}`);
      return v;
    };
    this.id = id;
    this.compareTimeout = ms('compareTimeout', DEFAULT_COMPARE_TIMEOUT_MS);
    this.expiredScanCycle = ms('expiredScanCycle', DEFAULT_EXPIRED_SCAN_CYCLE_MS);
    this.maxQueueSize = ms('maxQueueSize', DEFAULT_MAX_QUEUE_SIZE);
    this.table = new FlowTable(ms('maxConnections', DEFAULT_MAX_CONNECTIONS));
    this.pending = new FlowTable(ms('maxPendingFlows', DEFAULT_MAX_PENDING_FLOWS));
    this.maxBufferedBytes = ms('maxBufferedBytes', DEFAULT_MAX_BUFFERED_BYTES);
    this.idleTimeout = ms('idleTimeout', DEFAULT_IDLE_TIMEOUT_MS);
    this.now = options.now ?? (() => performance.now());
    this.opts = options;
    options.primaryIn?.on('frame', this.onPrimary);
    options.secondaryIn?.on('frame', this.onSecondary);
  }

  /** Starts the expiry scan (every `expiredScanCycle` ms). Sockets are opened by their owner. */
  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => this.scan(), this.expiredScanCycle);
    this.timer.unref();
  }

  /** A packet from the primary guest (a borrowed view: copied if queued). */
  primaryInput(frame: Uint8Array, vnetHeader?: Uint8Array): void {
    this.counters.primaryIn++;
    const conn = this.classify(frame, true);
    if (conn === OUT) {
      this.send(frame, vnetHeader);
      return;
    }
    if (conn === REFUSED) return; // not reached: the primary is never refused
    this.makeRoom(conn, frame.length + (vnetHeader?.length ?? 0));
    conn.primary.push(this.queued(frame, vnetHeader, conn));
    this.primaryQueued++;
    this.settle(conn, conn.primary.length > this.maxQueueSize);
  }

  /** A packet from the secondary guest. */
  secondaryInput(frame: Uint8Array, vnetHeader?: Uint8Array): void {
    this.counters.secondaryIn++;
    const conn = this.classify(frame, false);
    if (conn === OUT || conn === REFUSED) {
      this.counters.secondaryDropped++;
      if (conn === REFUSED) this.counters.capDropped++;
      return;
    }
    const bytes = frame.length + (vnetHeader?.length ?? 0);
    if (conn.pending && (this.buffered + bytes > this.maxBufferedBytes || conn.secondary.length >= this.maxQueueSize)) {
      // Nothing to compare it with yet: refuse it rather than checkpoint for it.
      this.counters.secondaryDropped++;
      this.counters.capDropped++;
      return;
    }
    this.makeRoom(conn, bytes);
    conn.secondary.push(this.queued(frame, vnetHeader, conn));
    this.secondaryQueued++;
    if (!conn.pending) this.settle(conn, conn.secondary.length > this.maxQueueSize);
  }

  /**
   * Checks for primary packets older than compareTimeout (one checkpoint request, then a flush),
   * drops secondary packets that old (pending ones too), and forgets connections idle for longer
   * than idleTimeout with nothing queued. The timer calls it; tests may call it directly.
   */
  scan(now = this.now()): void {
    const limit = now - this.compareTimeout;
    for (const { value: c } of this.table.entries()) {
      const p = c.primary[0];
      if (p !== undefined && p.time <= limit) {
        this.inconsistent(c.flow, 'timeout');
        return;
      }
      this.dropStale(c, limit);
    }
    for (const { value: c } of this.pending.entries()) this.dropStale(c, limit);
    this.pending.sweep(this.isEmpty);
    this.scanTime = now;
    this.counters.expired += this.table.sweep(this.isIdle);
  }

  /** Sends out every queued primary packet and drops the secondary ones (also used after a checkpoint). */
  flush(): void {
    this.flushAll(false);
  }

  stats(): ColoCompareStats {
    return {
      ...this.counters,
      checkpointsByReason: { ...this.byReason },
      connections: this.table.size,
      pendingFlows: this.pending.size,
      primaryQueued: this.primaryQueued,
      secondaryQueued: this.secondaryQueued,
      bufferedBytes: this.buffered,
    };
  }

  /**
   * Stops the scan and detaches from the sockets without closing them (QMP object-del: the
   * chardevs outlive the object, as QEMU's do). Queued primary packets go out first (nothing the
   * primary sent is lost); queued secondary ones are dropped, as after a checkpoint.
   */
  release(): void {
    this.flush();
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.closed = true;
    this.opts.primaryIn?.off('frame', this.onPrimary);
    this.opts.secondaryIn?.off('frame', this.onSecondary);
  }

  /** Stops the scan, detaches from (and closes) the sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.opts.primaryIn?.off('frame', this.onPrimary);
    this.opts.secondaryIn?.off('frame', this.onSecondary);
    await this.opts.primaryIn?.close();
    await this.opts.secondaryIn?.close();
    await this.opts.outdev?.close();
  }

  /**
   * OUT: not compared (not IP, unparsable, passthrough, a TCP pure ACK of an unknown flow);
   * REFUSED: a secondary packet of an unknown flow with the pending table full; else the
   * packet's connection (`this.key` holds its key).
   */
  private classify(frame: Uint8Array, primary: boolean): Conn | typeof OUT | typeof REFUSED {
    const info = this.info;
    if (parsePacket(frame, info) !== 'ip') {
      if (primary) this.counters.straightOut++;
      return OUT;
    }
    const pt = this.opts.passthrough;
    if (pt !== undefined && pt.size > 0 && pt.matches(this.id, frame, info)) {
      if (primary) this.counters.passthrough++;
      return OUT;
    }
    flowKey(frame, info, this.key);
    const conn = this.table.get(this.key);
    if (conn !== undefined) return conn;
    if (info.protocol === 6 && info.payloadLength === 0 && (info.tcpFlags & (TCP_FLAG.SYN | TCP_FLAG.FIN | TCP_FLAG.RST)) === 0) {
      // A pure ACK is never compared (compare-rules.ts) and nothing of its flow is queued.
      if (primary) this.counters.released++;
      return OUT;
    }
    const waiting = this.pending.get(this.key);
    if (!primary) {
      if (waiting !== undefined) return waiting;
      if (this.pending.size >= this.pending.limit) return REFUSED; // checked first: a flood allocates nothing
      const fresh = this.newConn(frame, info, true);
      this.pending.add(this.key, fresh);
      return fresh;
    }
    if (this.table.size >= this.table.limit) {
      // QEMU empties a full table, dropping what was queued; here the guests are brought back in
      // step first, then what was queued goes out (and the pending table is emptied too).
      this.inconsistent(describe(frame, info), 'table-full');
      return this.adopt(this.newConn(frame, info, false));
    }
    if (waiting === undefined) return this.adopt(this.newConn(frame, info, false));
    this.pending.delete(this.key);
    waiting.pending = false;
    return this.adopt(waiting);
  }

  private newConn(frame: Uint8Array, info: PacketInfo, pending: boolean): Conn {
    return { protocol: info.protocol, primary: [], secondary: [], cursor: undefined, synBase: undefined, primaryFin: undefined, secondaryFin: undefined, closed: false, flow: describe(frame, info), lastSeen: 0, pending };
  }

  private adopt(conn: Conn): Conn {
    this.table.add(this.key, conn);
    return conn;
  }

  /** Past the byte cap: request a checkpoint (everything queued leaves), then keep `conn` tracked. */
  private makeRoom(conn: Conn, bytes: number): void {
    if (this.buffered + bytes <= this.maxBufferedBytes || this.buffered === 0) return;
    this.inconsistent(conn.flow, 'buffer-full');
    this.adopt(conn);
  }

  private dropStale(c: Conn, limit: number): void {
    while (c.secondary.length > 0 && c.secondary[0]!.time <= limit) this.dropFn(c.secondary.shift()!);
  }

  private queued(frame: Uint8Array, vnetHeader: Uint8Array | undefined, conn: Conn): QueuedPacket {
    const i = this.info;
    const time = this.now();
    conn.lastSeen = time;
    this.buffered += frame.length + (vnetHeader?.length ?? 0);
    return {
      frame: frame.slice(),
      vnetHeader: vnetHeader?.slice(),
      time,
      l4Offset: i.l4Offset,
      ipEnd: i.ipEnd,
      tcpFlags: i.tcpFlags,
      seq: i.tcpSeq,
      payloadOffset: i.payloadOffset,
      payloadLength: i.payloadLength,
    };
  }

  private settle(conn: Conn, overfull: boolean): void {
    if (overfull) {
      this.inconsistent(conn.flow, 'queue-full');
      return;
    }
    if (compareConnection(conn, this.releaseFn, this.dropFn) === 'mismatch') {
      this.inconsistent(conn.flow, 'mismatch');
      return;
    }
    if (conn.closed && conn.primary.length === 0 && conn.secondary.length === 0) {
      this.table.delete(this.key);
      this.counters.closed++;
    }
  }

  /** One checkpoint request, then every queue is flushed (see the file header for the order). */
  private inconsistent(flow: string, reason: CheckpointReason): void {
    this.counters.checkpointRequests++;
    this.byReason[reason]++;
    this.emit('checkpoint-request', { id: this.id, reason, flow });
    this.flushAll(CAP_REASONS.has(reason));
  }

  private flushAll(cap: boolean): void {
    for (const table of [this.table, this.pending]) {
      for (const { value: c } of table.entries()) {
        for (const p of c.primary) {
          this.counters.flushed++;
          if (cap) this.counters.capFlushed++;
          this.send(p.frame, p.vnetHeader);
        }
        this.counters.secondaryDropped += c.secondary.length;
        if (cap) this.counters.capDropped += c.secondary.length;
        c.primary.length = 0;
        c.secondary.length = 0;
        c.cursor = undefined;
        c.synBase = undefined;
        c.primaryFin = undefined;
        c.secondaryFin = undefined;
        c.closed = false;
      }
      table.clear();
    }
    this.primaryQueued = 0;
    this.secondaryQueued = 0;
    this.buffered = 0;
  }

  private send(frame: Uint8Array, vnetHeader: Uint8Array | undefined): void {
    this.opts.outdev?.write(frame, vnetHeader);
    this.opts.output?.(frame, vnetHeader);
  }
}

function describe(frame: Uint8Array, info: PacketInfo): string {
  const a = formatAddress(frame, info.srcOffset, info.addrLength);
  const b = formatAddress(frame, info.dstOffset, info.addrLength);
  const ports = info.protocol === 6 || info.protocol === 17;
  const ep = (addr: string, port: number): string => (ports ? `${info.addrLength === 16 ? `[${addr}]` : addr}:${port}` : addr);
  return `${protocolName(info.protocol)} ${ep(a, info.srcPort)} <-> ${ep(b, info.dstPort)}`;
}
