// colo-compare (QEMU net/colo-compare.c, "-object colo-compare,id=,primary_in=,secondary_in=,
// outdev=,compare_timeout=,expired_scan_cycle=,max_queue_size=,vnet_hdr_support"; usage in QEMU
// docs/colo-proxy.txt). Runs on the COLO primary host:
//
//   primary_in ──▶ parse ─┬─ not IP / unparsable ────────────────────────────▶ out
//                         ├─ passthrough flow ───────────────────────────────▶ out
//                         └─ connection's primary queue ─┐
//   secondary_in ─▶ parse ─┬─ not IP / passthrough ─▶ dropped                │ compare-rules.ts
//                          └─ connection's secondary queue ┴─ match: primary ─▶ out, secondary dropped
//                                                            mismatch / timeout / queue full:
//                                                            'checkpoint-request', then flush
//
// A checkpoint request is emitted once per inconsistency; then every queue is flushed (primary
// packets go out, secondary ones are dropped, as QEMU does after notifying the COLO frame) so the
// next packets start a clean comparison. Wiring the request to a checkpoint (and calling the
// secondary's RewriterFilter.checkpoint()) is the embedder's job.
// Inputs are ChardevSockets (framing: lib/chardev/framing.ts) or direct calls (`primaryInput`,
// `secondaryInput`); output is a ChardevSocket and/or a callback. Queued packets are copies: the
// compare must hold them across reads (QEMU copies them too).

import { EventEmitter } from 'node:events';
import type { ChardevSocket } from '../chardev/chardev-socket.js';
import { FlowTable, flowKey, newFlowKey } from '../packet/flow-table.js';
import { formatAddress, newPacketInfo, parsePacket, type PacketInfo } from '../packet/parse.js';
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
  /** Connections tracked (QEMU HASHTABLE_MAX_SIZE 16384); when full, every queue is flushed. */
  maxConnections?: number;
  passthrough?: PassthroughList;
  /** Clock in ms (default performance.now). */
  now?: () => number;
}

export const DEFAULT_COMPARE_TIMEOUT_MS = 3000;
export const DEFAULT_EXPIRED_SCAN_CYCLE_MS = 1000;
export const DEFAULT_MAX_QUEUE_SIZE = 1024;
export const DEFAULT_MAX_CONNECTIONS = 16384;

export type CheckpointReason = 'mismatch' | 'timeout' | 'queue-full';

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
  checkpointRequests: number;
  connections: number;
}

interface Conn extends CompareConnection {
  readonly flow: string;
}

export class ColoCompare extends EventEmitter<{ 'checkpoint-request': [CheckpointRequest] }> {
  readonly id: string;
  readonly compareTimeout: number;
  readonly expiredScanCycle: number;
  readonly maxQueueSize: number;
  private readonly opts: ColoCompareOptions;
  private readonly table: FlowTable<Conn>;
  private readonly info: PacketInfo = newPacketInfo();
  private readonly key = newFlowKey();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters = { primaryIn: 0, secondaryIn: 0, released: 0, straightOut: 0, passthrough: 0, secondaryDropped: 0, flushed: 0, checkpointRequests: 0 };
  private readonly onPrimary = (f: Uint8Array, h: Uint8Array | undefined): void => this.primaryInput(f, h);
  private readonly onSecondary = (f: Uint8Array, h: Uint8Array | undefined): void => this.secondaryInput(f, h);
  private readonly releaseFn = (p: QueuedPacket): void => {
    this.counters.released++;
    this.send(p.frame, p.vnetHeader);
  };
  private readonly dropFn = (): void => {
    this.counters.secondaryDropped++;
  };

  constructor(options: ColoCompareOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('ColoCompare: options must be an object');
    const { id, outdev, output } = options;
    if (typeof id !== 'string' || id === '') throw new TypeError(`ColoCompare: options.id must be a non-empty string, got ${String(id)}`);
    if (outdev === undefined && output === undefined) throw new TypeError(`ColoCompare ${id}: needs options.outdev (a ChardevSocket) or options.output (a callback)`);
    if (output !== undefined && typeof output !== 'function') throw new TypeError(`ColoCompare ${id}: options.output must be a function`);
    const ms = (name: 'compareTimeout' | 'expiredScanCycle' | 'maxQueueSize' | 'maxConnections', fallback: number): number => {
      const v = options[name] ?? fallback;
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`ColoCompare ${id}: options.${name} must be an integer >= 1, got ${String(options[name])}`);
      return v;
    };
    this.id = id;
    this.compareTimeout = ms('compareTimeout', DEFAULT_COMPARE_TIMEOUT_MS);
    this.expiredScanCycle = ms('expiredScanCycle', DEFAULT_EXPIRED_SCAN_CYCLE_MS);
    this.maxQueueSize = ms('maxQueueSize', DEFAULT_MAX_QUEUE_SIZE);
    this.table = new FlowTable(ms('maxConnections', DEFAULT_MAX_CONNECTIONS));
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
    if (conn === 'out') {
      this.send(frame, vnetHeader);
      return;
    }
    if (conn === undefined) return;
    conn.primary.push(this.queued(frame, vnetHeader));
    this.settle(conn, conn.primary.length > this.maxQueueSize);
  }

  /** A packet from the secondary guest. */
  secondaryInput(frame: Uint8Array, vnetHeader?: Uint8Array): void {
    this.counters.secondaryIn++;
    const conn = this.classify(frame, false);
    if (conn === 'out') {
      this.counters.secondaryDropped++;
      return;
    }
    if (conn === undefined) return;
    conn.secondary.push(this.queued(frame, vnetHeader));
    this.settle(conn, conn.secondary.length > this.maxQueueSize);
  }

  /**
   * Checks for primary packets older than compareTimeout (one checkpoint request, then a flush)
   * and drops secondary packets that old. The timer calls it; tests may call it directly.
   */
  scan(now = this.now()): void {
    const limit = now - this.compareTimeout;
    for (const { value: c } of this.table.entries()) {
      const p = c.primary[0];
      if (p !== undefined && p.time <= limit) {
        this.inconsistent(c, 'timeout');
        return;
      }
      while (c.secondary.length > 0 && c.secondary[0]!.time <= limit) {
        c.secondary.shift();
        this.counters.secondaryDropped++;
      }
    }
  }

  /** Sends out every queued primary packet and drops the secondary ones (also used after a checkpoint). */
  flush(): void {
    for (const { value: c } of this.table.entries()) {
      for (const p of c.primary) {
        this.counters.flushed++;
        this.send(p.frame, p.vnetHeader);
      }
      this.counters.secondaryDropped += c.secondary.length;
      c.primary.length = 0;
      c.secondary.length = 0;
      c.cursor = undefined;
    }
    this.table.clear();
  }

  stats(): ColoCompareStats {
    return { ...this.counters, connections: this.table.size };
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

  /** 'out': not compared (not IP, unparsable, passthrough); else the packet's connection (undefined: table trouble handled). */
  private classify(frame: Uint8Array, primary: boolean): Conn | 'out' | undefined {
    const info = this.info;
    if (parsePacket(frame, info) !== 'ip') {
      if (primary) this.counters.straightOut++;
      return 'out';
    }
    const pt = this.opts.passthrough;
    if (pt !== undefined && pt.size > 0 && pt.matches(this.id, frame, info)) {
      if (primary) this.counters.passthrough++;
      return 'out';
    }
    flowKey(frame, info, this.key);
    let conn = this.table.get(this.key);
    if (conn !== undefined) return conn;
    conn = { protocol: info.protocol, primary: [], secondary: [], cursor: undefined, primaryFin: undefined, secondaryFin: undefined, flow: describe(frame, info) };
    if (!this.table.add(this.key, conn)) {
      // Table full (QEMU resets its table): flush everything and start again.
      this.flush();
      this.table.add(this.key, conn);
    }
    return conn;
  }

  private queued(frame: Uint8Array, vnetHeader: Uint8Array | undefined): QueuedPacket {
    const i = this.info;
    return {
      frame: frame.slice(),
      vnetHeader: vnetHeader?.slice(),
      time: this.now(),
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
      this.inconsistent(conn, 'queue-full');
      return;
    }
    if (compareConnection(conn, this.releaseFn, this.dropFn) === 'mismatch') this.inconsistent(conn, 'mismatch');
  }

  private inconsistent(conn: Conn, reason: CheckpointReason): void {
    this.counters.checkpointRequests++;
    const flow = conn.flow;
    this.flush();
    this.emit('checkpoint-request', { id: this.id, reason, flow });
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
