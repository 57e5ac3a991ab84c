// filter-rewriter (QEMU net/filter-rewriter.c, "-object filter-rewriter,id=,netdev=,queue=all,
// vnet_hdr_support"), on the COLO secondary: keeps the secondary guest's TCP connections valid
// although the client only ever talks to the primary. Per connection it runs the state machine of
// lib/filters/rewriter-states.ts to learn `offset = secondary_seq - primary_seq`, then rewrites:
//   direction 'tx' (netdev → guest: the client's packets)   ack += offset (and SACK blocks)
//   direction 'rx' (guest → netdev: the secondary's packets) seq -= offset
// TCP timestamps (RFC 7323) are a second clock the client echoes: the same handshake gives
// `tsOffset = secondary TSval - primary TSval` (the secondary's SYN/ACK TSval against the TSecr
// of the client's first ACK), and client → guest `TSecr += tsOffset`, guest → client
// `TSval -= tsOffset`. QEMU's rewriter does not do this (its secondary is a replica whose clock
// matches); Linux 6.x rejects an ACK whose TSecr it never sent (TcpExtTSEcrRejected), so a
// secondary whose clock differs needs it.
// The checksum is recomputed (IPv4 and IPv6 pseudo headers) — unless the vnet header says the
// checksum is still to be done (VIRTIO 1.2 §5.1.6.2 VIRTIO_NET_HDR_F_NEEDS_CSUM: the field then
// holds only the pseudo-header sum, which seq/ack do not enter).
// Ageing (the table must not fill up with dead connections): both FINs and the ACK of the second
// close a connection (QEMU: TCPS_LAST_ACK and fin_ack_seq); an RST closes it only when its sequence
// number is the sender's next one (RFC 5961 §3.2; QEMU's rewriter ignores RST, and forgetting on any
// RST would let a blind reset erase the offset); a connection silent for `idleTimeout`
// (`transientIdleTimeout` during the handshake and after both FINs) is forgotten by a periodic
// scan. QEMU never ages its table; forgetting costs at most one checkpoint (an unknown connection
// passes unrewritten, which is right again after the next checkpoint).
// `checkpoint()`: after a COLO checkpoint the secondary is a copy of the primary, so every offset
// becomes 0 (QEMU: COLO_EVENT_CHECKPOINT → reset_seq_offset).
//
// The guest's frame is never written: a rewritten frame is a copy in a preallocated scratch buffer
// (valid until the next frame), returned as a `replace` verdict.

import { storeTransportChecksum } from '../packet/checksum.js';
import { FlowTable, flowKey, newFlowKey } from '../packet/flow-table.js';
import { be32, newPacketInfo, parsePacket, seqBefore, TCP_FLAG, writeBe32, type PacketInfo } from '../packet/parse.js';
import { TCPOLEN_TIMESTAMP, TCPOPT, tcpOptionOffset } from '../packet/tcp-options.js';
import { checkFilterOptions, PASS, type Direction, type FilterQueue, type NetFilter, type ReplaceVerdict, type Verdict } from './filter.js';
import { rewrites, transition, type RewriterAction, type RewriterEvent, type RewriterState } from './rewriter-states.js';
import { NET_BUFSIZE } from '../base/frame-limits.js';

export interface RewriterFilterOptions {
  id: string;
  /** Must see both directions: 'all' (the default). */
  queue?: FilterQueue;
  status?: boolean;
  /** Connections tracked at once (default 16384, QEMU's HASHTABLE_MAX_SIZE). */
  maxConnections?: number;
  /** ms an established (or half-closed) connection may stay silent before it is forgotten. */
  idleTimeout?: number;
  /** ms a connection in its handshake or waiting for the last ACK may stay silent. */
  transientIdleTimeout?: number;
  /** ms between ageing scans. */
  expiryScanInterval?: number;
  /** Clock in ms (default performance.now). */
  now?: () => number;
}

/** QEMU's connection table limit. */
export const DEFAULT_MAX_CONNECTIONS = 16384;
/** Longer than Linux's default keepalive time (tcp_keepalive_time, 7200 s): a kept-alive idle connection is never aged out. */
export const DEFAULT_IDLE_TIMEOUT_MS = 7_440_000;
/** Longer than the longest gap between SYN or FIN retransmissions (Linux backs off to 64 s) and conntrack's 60 s SYN_RECV. */
export const DEFAULT_TRANSIENT_IDLE_TIMEOUT_MS = 120_000;
/** Ageing need not be punctual: a connection forgotten a few seconds late costs nothing. */
export const DEFAULT_EXPIRY_SCAN_INTERVAL_MS = 5_000;
/** An RST is valid up to one unscaled window past the sender's next sequence number (RFC 9293 §3.10.7.4); scaled windows are not tracked — an RST ignored only leaves the entry to age out. */
const RST_WINDOW = 65_535;
/** Largest frame rewritten: a 64 KiB GSO segment plus headers. */
const SCRATCH_BYTES = NET_BUFSIZE;
/** virtio-net header flags bit (VIRTIO 1.2 §5.1.6). */
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;

interface Connection {
  state: RewriterState;
  guestIsn: number;
  /** secondary_seq - primary_seq, mod 2^32. */
  offset: number;
  /** The guest's TSval in its SYN or SYN/ACK (-1: no timestamps). */
  guestTsval: number;
  /** secondary TSval - primary TSval, mod 2^32. */
  tsOffset: number;
  /** Sequence number of the client's FIN. */
  clientFin: number;
  /** Sequence number of the guest's FIN, in the primary's space. */
  guestFin: number;
  /** Each sender's next sequence number (seq + length + SYN + FIN, highest seen; the guest's in its own space); valid once `…Seen`. */
  clientNext: number;
  guestNext: number;
  clientSeen: boolean;
  guestSeen: boolean;
  /** Time of the last packet (ms, the filter's clock). */
  lastSeen: number;
}

export interface RewriterStats {
  connections: number;
  rewritten: number;
  /** Connections not tracked because the table was full. */
  untracked: number;
  /** Connections closed by FIN/ACK or a valid RST. */
  closed: number;
  /** Connections forgotten after being silent too long. */
  expired: number;
  /** RSTs whose sequence number was not the sender's next one: passed on, the connection kept. */
  rstIgnored: number;
  checkpoints: number;
}

/** One tracked connection, for inspection (not per frame). */
export interface RewriterConnectionInfo {
  state: RewriterState;
  offset: number;
  tsOffset: number;
}

export class RewriterFilter implements NetFilter {
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  private readonly table: FlowTable<Connection>;
  private readonly info: PacketInfo = newPacketInfo();
  private readonly key = newFlowKey();
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);
  private readonly verdict: ReplaceVerdict = { kind: 'replace', frame: new Uint8Array(0), vnetHeader: undefined };
  private readonly counters = { rewritten: 0, untracked: 0, closed: 0, expired: 0, rstIgnored: 0, checkpoints: 0 };
  readonly idleTimeout: number;
  readonly transientIdleTimeout: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private scanTime = 0;
  private readonly isExpired = (c: Connection): boolean =>
    this.scanTime - c.lastSeen > (c.state === 'established' || c.state === 'client-closing' || c.state === 'guest-closing' ? this.idleTimeout : this.transientIdleTimeout);

  constructor(options: RewriterFilterOptions) {
    const base = checkFilterOptions('RewriterFilter', options);
    const int = (name: 'maxConnections' | 'idleTimeout' | 'transientIdleTimeout' | 'expiryScanInterval', fallback: number): number => {
      const v = options[name] ?? fallback;
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`RewriterFilter ${base.id}: options.${name} must be an integer >= 1, got ${String(options[name])}`);
      return v;
    };
    this.id = base.id;
    this.queue = base.queue;
    this.status = base.status;
    this.table = new FlowTable(int('maxConnections', DEFAULT_MAX_CONNECTIONS));
    this.idleTimeout = int('idleTimeout', DEFAULT_IDLE_TIMEOUT_MS);
    this.transientIdleTimeout = int('transientIdleTimeout', DEFAULT_TRANSIENT_IDLE_TIMEOUT_MS);
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError(`RewriterFilter ${base.id}: options.now must be a function`);
    this.now = options.now ?? (() => performance.now());
    this.timer = setInterval(() => this.expire(), int('expiryScanInterval', DEFAULT_EXPIRY_SCAN_INTERVAL_MS));
    this.timer.unref();
  }

  /** Forgets connections silent for longer than their timeout; the timer calls it, tests may too. Returns how many. */
  expire(now = this.now()): number {
    this.scanTime = now;
    const n = this.table.sweep(this.isExpired);
    this.counters.expired += n;
    return n;
  }

  /** Stops the ageing timer. Idempotent. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  process(direction: Direction, frame: Uint8Array, vnetHeader: Uint8Array | undefined): Verdict {
    const info = this.info;
    if (parsePacket(frame, info) !== 'ip' || info.protocol !== 6 || info.fragment || info.tcpHeaderLength === 0) return PASS;
    const fromClient = direction === 'tx';
    const event = eventOf(info.tcpFlags, fromClient);
    if (event === undefined) return PASS;
    flowKey(frame, info, this.key);
    let conn = this.table.get(this.key);
    if (conn === undefined) {
      // Only a SYN creates a connection: mid-stream packets and resets are not ours to fix.
      if (event === 'rst' || transition('new', event) === undefined) return PASS;
      conn = { state: 'new', guestIsn: 0, offset: 0, guestTsval: -1, tsOffset: 0, clientFin: 0, guestFin: 0, clientNext: 0, guestNext: 0, clientSeen: false, guestSeen: false, lastSeen: 0 };
      if (!this.table.add(this.key, conn)) {
        this.counters.untracked++;
        return PASS;
      }
    }
    conn.lastSeen = this.now();
    const before = conn.state;
    if (event === 'rst' && !rstInSequence(conn, fromClient, info)) {
      this.counters.rstIgnored++;
    } else {
      const tr = transition(before, event);
      if (tr !== undefined) {
        conn.state = tr.next;
        this.act(tr.action, conn, event, frame, info);
      }
      if (event !== 'rst') advanceNext(conn, fromClient, info);
    }
    const rewrite = (conn.offset !== 0 || conn.tsOffset !== 0) && (rewrites(before) || rewrites(conn.state));
    if (conn.state === 'closed') {
      this.table.delete(this.key);
      this.counters.closed++;
    }
    if (!rewrite) return PASS;
    return this.rewrite(frame, vnetHeader, conn, fromClient);
  }

  /** A COLO checkpoint happened: the secondary now equals the primary, every offset is 0. */
  checkpoint(): void {
    for (const e of this.table.entries()) {
      e.value.offset = 0;
      e.value.tsOffset = 0;
    }
    this.counters.checkpoints++;
  }

  /** Tracked connections (inspection and tests). */
  connections(): RewriterConnectionInfo[] {
    return [...this.table.entries()].map((e) => ({ state: e.value.state, offset: e.value.offset, tsOffset: e.value.tsOffset }));
  }

  stats(): RewriterStats {
    return { connections: this.table.size, ...this.counters };
  }

  private act(action: RewriterAction, conn: Connection, event: RewriterEvent, frame: Uint8Array, info: PacketInfo): void {
    const seq = info.tcpSeq;
    const ack = info.tcpAck;
    switch (action) {
      case 'record-guest-isn': {
        conn.guestIsn = seq;
        const ts = timestampAt(frame, info);
        conn.guestTsval = ts < 0 ? -1 : be32(frame, ts + 2);
        break;
      }
      case 'compute-offset': {
        conn.offset = (conn.guestIsn - (ack - 1)) >>> 0;
        const ts = timestampAt(frame, info);
        // The client's TSecr echoes the primary's TSval of the segment it answers.
        conn.tsOffset = ts < 0 || conn.guestTsval < 0 ? 0 : (conn.guestTsval - be32(frame, ts + 6)) >>> 0;
        break;
      }
      case 'record-client-fin':
        conn.clientFin = (seq + info.payloadLength) >>> 0;
        break;
      case 'record-guest-fin':
        conn.guestFin = (seq - conn.offset + info.payloadLength) >>> 0;
        break;
      case 'close-on-final-ack':
        if ((event === 'client-ack' && ack === ((conn.guestFin + 1) >>> 0)) || (event === 'guest-ack' && ack === ((conn.clientFin + 1) >>> 0))) {
          conn.state = 'closed';
        }
        break;
      default:
        break;
    }
  }

  private rewrite(frame: Uint8Array, vnetHeader: Uint8Array | undefined, conn: Connection, fromClient: boolean): Verdict {
    if (frame.length > SCRATCH_BYTES) return PASS;
    const info = this.info;
    const out = this.scratch;
    out.set(frame);
    const l4 = info.l4Offset;
    const offset = conn.offset;
    const ts = conn.tsOffset === 0 ? -1 : timestampAt(out, info);
    if (fromClient) {
      if ((info.tcpFlags & TCP_FLAG.ACK) !== 0) writeBe32(out, l4 + 8, (info.tcpAck + offset) >>> 0);
      if (offset !== 0) shiftSackBlocks(out, info, offset);
      if (ts >= 0) writeBe32(out, ts + 6, (be32(out, ts + 6) + conn.tsOffset) >>> 0); // TSecr
    } else {
      writeBe32(out, l4 + 4, (info.tcpSeq - offset) >>> 0);
      if (ts >= 0) writeBe32(out, ts + 2, (be32(out, ts + 2) - conn.tsOffset) >>> 0); // TSval
    }
    const partial = vnetHeader !== undefined && vnetHeader.length > 0 && (vnetHeader[0]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    if (!partial) storeTransportChecksum(out, info); // offsets are the same in the copy
    this.counters.rewritten++;
    const v = this.verdict;
    v.frame = out.subarray(0, frame.length);
    v.vnetHeader = vnetHeader;
    return v;
  }
}

/** The sender's sequence space advances by the payload, SYN and FIN (RFC 9293 §3.4). */
function advanceNext(conn: Connection, fromClient: boolean, info: PacketInfo): void {
  const f = info.tcpFlags;
  const end = (info.tcpSeq + info.payloadLength + ((f & TCP_FLAG.SYN) !== 0 ? 1 : 0) + ((f & TCP_FLAG.FIN) !== 0 ? 1 : 0)) >>> 0;
  if (fromClient) {
    if (!conn.clientSeen || seqBefore(conn.clientNext, end)) conn.clientNext = end;
    conn.clientSeen = true;
  } else {
    if (!conn.guestSeen || seqBefore(conn.guestNext, end)) conn.guestNext = end;
    conn.guestSeen = true;
  }
}

/**
 * An RST is in sequence when it starts at its sender's next sequence number, up to one window
 * on (RFC 5961 §3.2 asks for an exact match before a stack resets; a window covers a sender
 * that cut its reset at the window's edge). A sender that has sent nothing yet (a reset
 * answering a SYN) must acknowledge what the other side sent (RFC 9293 §3.10.7.3).
 */
function rstInSequence(conn: Connection, fromClient: boolean, info: PacketInfo): boolean {
  const seen = fromClient ? conn.clientSeen : conn.guestSeen;
  if (!seen) {
    const otherSeen = fromClient ? conn.guestSeen : conn.clientSeen;
    const otherNext = fromClient ? conn.guestNext : conn.clientNext;
    return otherSeen && (info.tcpFlags & TCP_FLAG.ACK) !== 0 && info.tcpAck === otherNext;
  }
  const next = fromClient ? conn.clientNext : conn.guestNext;
  return ((info.tcpSeq - next) >>> 0) < RST_WINDOW;
}

/** Offset of a well-formed timestamp option, or -1. */
function timestampAt(frame: Uint8Array, info: PacketInfo): number {
  const at = tcpOptionOffset(frame, info, TCPOPT.TIMESTAMP);
  return at >= 0 && frame[at + 1] === TCPOLEN_TIMESTAMP ? at : -1;
}

function eventOf(flags: number, fromClient: boolean): RewriterEvent | undefined {
  if ((flags & TCP_FLAG.RST) !== 0) return 'rst';
  if ((flags & TCP_FLAG.SYN) !== 0) {
    if ((flags & TCP_FLAG.ACK) !== 0) return fromClient ? 'client-syn-ack' : 'guest-syn-ack';
    return fromClient ? 'client-syn' : 'guest-syn';
  }
  if ((flags & TCP_FLAG.FIN) !== 0) return fromClient ? 'client-fin' : 'guest-fin';
  if ((flags & TCP_FLAG.ACK) !== 0) return fromClient ? 'client-ack' : 'guest-ack';
  return undefined;
}

/** SACK blocks (RFC 2018 §3) from the client acknowledge primary sequence numbers: map them too. */
function shiftSackBlocks(b: Uint8Array, info: PacketInfo, offset: number): void {
  const at = tcpOptionOffset(b, info, TCPOPT.SACK);
  if (at < 0) return;
  const len = b[at + 1]!;
  for (let j = at + 2; j + 8 <= at + len; j += 8) {
    writeBe32(b, j, (be32(b, j) + offset) >>> 0);
    writeBe32(b, j + 4, (be32(b, j + 4) + offset) >>> 0);
  }
}
