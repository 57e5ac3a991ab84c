// How colo-compare decides that the primary's and the secondary's packets of one connection agree
// (QEMU net/colo-compare.c: colo_compare_tcp compares payload over sequence ranges since QEMU
// 2.12; colo_compare_udp / _icmp / _other compare content after the IP header). Pure functions
// over queued packets: no I/O, no clock.
//
// TCP: the two payload streams are compared byte for byte over sequence numbers, however each side
// cut them into segments. `cursor` is the first sequence number not yet compared. A primary segment
// goes out once every byte of it has been matched; a secondary segment is dropped once covered.
// Segments wholly below the cursor are retransmissions of compared bytes (primary: out at once,
// whatever the other side has queued; secondary: dropped) — except, once a SYN pair pinned the
// first data byte, data wholly before that byte: the guests diverged (a mismatch). Pure ACKs (no payload, no SYN/FIN/RST) are not compared: two stacks ACK at
// different moments (delayed ACK), and an ACK carries nothing the client could see diverge
// beyond what the data comparison catches. Control segments without payload (SYN, FIN, RST) pair
// up in order and must carry the same control flags.
// The secondary's sequence numbers are already in the primary's space: the secondary's
// filter-rewriter maps them (lib/filters/rewriter.ts).
// Closing: once both sides' FINs have left their queues, or an RST pair at the stream's next
// sequence number (the cursor, or just past a FIN; RFC 5961 §3.2) has, the connection is `closed`
// and the caller may forget it when its queues are empty. An RST elsewhere is compared and let out
// like any control segment but does not end the connection.
// Other IP protocols: heads of the two queues pair up in order and must be equal from the
// transport header to the end of the IP packet (IP headers differ legitimately: id, TTL, checksum).

import { seqAtOrBefore, seqBefore, TCP_FLAG } from '../packet/parse.js';

/** One queued packet (a copy: the queue outlives the read buffer). */
export interface QueuedPacket {
  readonly frame: Uint8Array;
  readonly vnetHeader: Uint8Array | undefined;
  /** Arrival time (ms, the compare's clock). */
  readonly time: number;
  readonly l4Offset: number;
  /** End of the IP packet in `frame`. */
  readonly ipEnd: number;
  readonly tcpFlags: number;
  readonly seq: number;
  readonly payloadOffset: number;
  readonly payloadLength: number;
}

export interface CompareConnection {
  readonly protocol: number;
  readonly primary: QueuedPacket[];
  readonly secondary: QueuedPacket[];
  /** TCP: first sequence number (primary space) not compared yet; undefined before the first data. */
  cursor: number | undefined;
  /** TCP: the first data byte's sequence number, when a SYN pair pinned it (undefined: picked up mid-stream). */
  synBase: number | undefined;
  /** TCP: sequence number of each side's FIN once it left its queue (FIN alone or on data). */
  primaryFin: number | undefined;
  secondaryFin: number | undefined;
  /** TCP: both FINs or an in-sequence RST pair went out: nothing more to compare. */
  closed: boolean;
}

/** What comparing did; `release` and `drop` are called as packets leave the queues. */
export type CompareOutcome = 'ok' | 'mismatch';

const CONTROL = TCP_FLAG.SYN | TCP_FLAG.FIN | TCP_FLAG.RST;

function isPureAck(p: QueuedPacket): boolean {
  return p.payloadLength === 0 && (p.tcpFlags & CONTROL) === 0;
}

/**
 * Compares what can be compared now. Matched primary packets are passed to `release` (in order),
 * matched or stale secondary packets to `drop`. Stops at the first mismatch (queues left as they
 * are: the caller flushes them) or when one queue runs dry.
 */
export function compareConnection(
  c: CompareConnection,
  release: (p: QueuedPacket) => void,
  drop: (p: QueuedPacket) => void,
): CompareOutcome {
  return c.protocol === 6 ? compareTcp(c, release, drop) : compareByContent(c, release, drop);
}

function isFinOnly(p: QueuedPacket): boolean {
  return p.payloadLength === 0 && (p.tcpFlags & CONTROL) === TCP_FLAG.FIN;
}

function compareTcp(c: CompareConnection, release: (p: QueuedPacket) => void, drop: (p: QueuedPacket) => void): CompareOutcome {
  const P = c.primary;
  const S = c.secondary;
  const out = (q: QueuedPacket[], primary: boolean): void => {
    const x = q.shift()!;
    if ((x.tcpFlags & TCP_FLAG.FIN) !== 0) {
      const fin = (x.seq + x.payloadLength) >>> 0;
      if (primary) c.primaryFin = fin;
      else c.secondaryFin = fin;
      if (c.primaryFin !== undefined && c.secondaryFin !== undefined) c.closed = true;
    }
    if (primary) release(x);
    else drop(x);
  };
  for (;;) {
    const p = P[0];
    const s = S[0];
    if (p !== undefined && isPureAck(p)) {
      out(P, true);
      continue;
    }
    if (s !== undefined && isPureAck(s)) {
      out(S, false);
      continue;
    }
    // A FIN alone on one side matches the other side's FIN at the same place, even when that
    // one rode on the last data segment (stacks differ in that).
    if (p !== undefined && isFinOnly(p) && c.secondaryFin === p.seq) {
      out(P, true);
      continue;
    }
    if (s !== undefined && isFinOnly(s) && c.primaryFin === s.seq) {
      out(S, false);
      continue;
    }
    // Data wholly before the cursor was compared already (a retransmission): out at once, even
    // with nothing queued on the other side — it must neither wait for the other side's next
    // segment (a timeout) nor be paired with that side's next control segment (a mismatch).
    // After a SYN pair, data wholly before the first byte is no retransmission but the guests
    // diverging (wrap-aware comparison calls anything up to 2^31 back "before").
    if (p !== undefined && p.payloadLength > 0 && c.cursor !== undefined && seqAtOrBefore((p.seq + p.payloadLength) >>> 0, c.cursor)) {
      if (beforeSynBase(c, p)) return 'mismatch';
      out(P, true);
      continue;
    }
    if (s !== undefined && s.payloadLength > 0 && c.cursor !== undefined && seqAtOrBefore((s.seq + s.payloadLength) >>> 0, c.cursor)) {
      if (beforeSynBase(c, s)) return 'mismatch';
      out(S, false);
      continue;
    }
    if (p === undefined || s === undefined) return 'ok';
    if (p.payloadLength === 0 || s.payloadLength === 0) {
      if (p.payloadLength !== s.payloadLength || (p.tcpFlags & CONTROL) !== (s.tcpFlags & CONTROL)) return 'mismatch';
      // A SYN pins where the data starts: from here on, comparing is strict.
      if ((p.tcpFlags & TCP_FLAG.SYN) !== 0) c.cursor = c.synBase = (p.seq + 1) >>> 0;
      const reset = (p.tcpFlags & TCP_FLAG.RST) !== 0 && p.seq === s.seq && rstInSequence(c, p.seq);
      out(P, true);
      out(S, false);
      if (reset) c.closed = true;
      continue;
    }
    const pEnd = (p.seq + p.payloadLength) >>> 0;
    const sEnd = (s.seq + s.payloadLength) >>> 0;
    if (c.cursor === undefined) {
      // Picked up mid-stream (no SYN seen, or after a flush): start at the later of the two
      // segments; bytes before it on the other side predate the comparison.
      c.cursor = seqBefore(p.seq, s.seq) ? s.seq : p.seq;
    }
    const cursor = c.cursor;
    if (seqAtOrBefore(pEnd, cursor)) {
      out(P, true);
      continue;
    }
    if (seqAtOrBefore(sEnd, cursor)) {
      out(S, false);
      continue;
    }
    // Bytes at the cursor missing from one stream: the streams diverged.
    if (seqBefore(cursor, p.seq) || seqBefore(cursor, s.seq)) return 'mismatch';
    const hi = seqBefore(pEnd, sEnd) ? pEnd : sEnd;
    const n = (hi - cursor) >>> 0;
    const pi = p.payloadOffset + ((cursor - p.seq) >>> 0);
    const si = s.payloadOffset + ((cursor - s.seq) >>> 0);
    for (let k = 0; k < n; k++) if (p.frame[pi + k] !== s.frame[si + k]) return 'mismatch';
    c.cursor = hi;
    if (pEnd === hi) out(P, true);
    if (sEnd === hi) out(S, false);
  }
}

/** Data ending at or before the first byte a SYN pair pinned: from before the connection began. */
function beforeSynBase(c: CompareConnection, x: QueuedPacket): boolean {
  return c.synBase !== undefined && seqAtOrBefore((x.seq + x.payloadLength) >>> 0, c.synBase);
}

/** An RST at the stream's next sequence number: the cursor, just past a FIN, or before any data. */
function rstInSequence(c: CompareConnection, seq: number): boolean {
  if (c.cursor === undefined) return true;
  return seq === c.cursor || (c.primaryFin !== undefined && seq === ((c.primaryFin + 1) >>> 0));
}

function compareByContent(c: CompareConnection, release: (p: QueuedPacket) => void, drop: (p: QueuedPacket) => void): CompareOutcome {
  const P = c.primary;
  const S = c.secondary;
  for (;;) {
    const p = P[0];
    const s = S[0];
    if (p === undefined || s === undefined) return 'ok';
    const pl = p.ipEnd - p.l4Offset;
    if (pl !== s.ipEnd - s.l4Offset) return 'mismatch';
    for (let k = 0; k < pl; k++) if (p.frame[p.l4Offset + k] !== s.frame[s.l4Offset + k]) return 'mismatch';
    release(P.shift()!);
    drop(S.shift()!);
  }
}
