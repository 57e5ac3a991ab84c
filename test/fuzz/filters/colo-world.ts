// The colo-compare world of the filter fuzzer (QEMU net/colo-compare.c behaviour as lib/colo/
// documents it): primary and secondary frames, fake-clock ticks and flushes against one
// ColoCompare with small limits and a passthrough list, every oracle checked after every
// operation, then the end: the clock runs past compareTimeout so every queue must drain.
//
// Oracles (codes):
// - colo.threw — an exception escaped a call.
// - colo.verdict — a primary frame the reference reads as not IP / truncated / malformed, or as a
//   passthrough flow, did not go out at once, unchanged, counted as such (straightOut /
//   passthrough).
// - colo.order — an output frame is not the oldest primary frame of its flow still owed (by the
//   reference's flow key, finer than the compare's, so per-flow order is a fair demand): a frame
//   out of order, changed, made up, or a secondary frame let out.
// - colo.lost — frames in minus frames out differs from what stats() says is queued, or at the
//   end something is still owed after the clock passed every timeout.
// - colo.held-too-long — a primary frame still held longer than compareTimeout plus one scan
//   cycle: the 'timeout' release did not happen.
// - colo.stats — the counters do not add up (primaryIn = released + straightOut + passthrough +
//   flushed + primaryQueued; secondaryIn = secondaryDropped + secondaryQueued; the inputs and
//   outputs this world counted itself; the counter each output moved).
// - colo.cap — connections > maxConnections, pending flows > maxPendingFlows, buffered bytes over
//   the cap (one packet larger than the cap may be queued alone), queued packets beyond what the
//   per-queue limit allows.
// - colo.checkpoint-storm — more than one checkpoint request in one call (one per inconsistency).
// - colo.released-unmatched — before any checkpoint request, a primary TCP data segment went out
//   by comparison (not a flush) with a byte the secondary never sent at that sequence number, or
//   sent differently (the whole point of COLO). Judged only on flows the reference can follow:
//   both sides opened with a SYN at the same sequence number, one SYN each, no FIN/RST yet, no
//   side sending two different bytes for one sequence number.
// - colo.false-mismatch — before any checkpoint request (and before the clock reached
//   compareTimeout, so nothing timed out or went stale), a 'mismatch' request for a flow whose two
//   streams agree: same start, bytes equal where both sent them, a FIN not before the other
//   side's data end, each side in order. UDP: one side's datagrams a prefix of the other's.
// - work.unbounded — one call did more than the limits allow: table operations beyond a constant
//   (lookups, changes) or beyond two passes over both tables (visits), or more frames out than
//   were queued plus one.

import sinon from 'sinon';
import { ColoCompare, type CheckpointRequest } from '../../../lib/colo/colo-compare.js';
import { PassthroughList } from '../../../lib/passthrough/passthrough.js';
import { bump, FilterStop, installTableMeter, OBJECT_ID, PASSTHROUGH_MENU, refPassthrough, resetTableWork, tableWork, type Counts, type FilterCase, type FilterOp } from './common.js';
import { bytesOf, hexOf } from './packets.js';
import { refFlow, refParse, type RefPacket } from './ref-packet.js';

export const COLO_DEFAULTS = {
  maxConnections: 16,
  maxPendingFlows: 4,
  maxQueueSize: 16,
  maxBufferedBytes: 65536,
  idleTimeout: 20_000,
  compareTimeout: 3000,
  expiredScanCycle: 1000,
};

type OutReason = 'released' | 'straightOut' | 'passthrough' | 'flushed';

interface SideTrack {
  bytes: Map<number, number>;
  conflict: boolean;
  first: 'syn' | 'data' | undefined;
  synSeq: number;
  syns: number;
  ended: boolean;
  /** FIN sequence number, or -1. */
  fin: number;
  /** Data after FIN/RST, a gap, a SYN or FIN with payload... */
  disorderly: boolean;
  start: number;
  maxEnd: number;
  hasData: boolean;
  /** UDP / other: l4 content of each datagram, in order. */
  grams: string[];
}

interface FlowTrack {
  proto: number;
  p: SideTrack;
  s: SideTrack;
}

const newSide = (): SideTrack => ({ bytes: new Map(), conflict: false, first: undefined, synSeq: 0, syns: 0, ended: false, fin: -1, disorderly: false, start: 0, maxEnd: 0, hasData: false, grams: [] });

const SYN = 2;
const FIN = 1;
const RST = 4;

/** Wrap-aware a - b as a signed 32-bit distance. */
const dist = (a: number, b: number): number => (a - b) | 0;

export interface ColoPlant {
  (cc: ColoCompare, w: ColoWorld): void;
}

export class ColoWorld {
  readonly cc: ColoCompare;
  readonly clock: sinon.SinonFakeTimers;
  readonly setup: typeof COLO_DEFAULTS;
  step = 0;
  private readonly menu: number[];
  /** Primary frames owed, per reference flow, in input order (hex of header + frame). */
  private readonly owed = new Map<string, string[]>();
  /** When each owed frame came in (same order as `owed`). */
  private readonly owedTimes = new Map<string, number[]>();
  private owedCount = 0;
  private primaryIn = 0;
  private secondaryIn = 0;
  private outs: { reason: OutReason; frame: Uint8Array; hdr: Uint8Array | undefined }[] = [];
  private outTotal = 0;
  private last = { released: 0, straightOut: 0, passthrough: 0, flushed: 0 };
  private requests: CheckpointRequest[] = [];
  private anyCheckpoint = false;
  private largest = 0;
  private readonly flows = new Map<string, FlowTrack>();
  private readonly counts: Counts | undefined;

  constructor(c: FilterCase, counts?: Counts, plant?: ColoPlant) {
    installTableMeter();
    this.counts = counts;
    this.setup = { ...COLO_DEFAULTS, ...(c.setup as Partial<typeof COLO_DEFAULTS>) };
    this.menu = c.passthrough;
    this.clock = sinon.useFakeTimers({ now: 0, toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    const pt = new PassthroughList();
    for (const i of c.passthrough) pt.add(PASSTHROUGH_MENU[i]!);
    try {
      this.cc = new ColoCompare({
        id: OBJECT_ID,
        ...this.setup,
        passthrough: pt,
        now: () => this.clock.now,
        output: (frame, hdr) => this.onOutput(frame, hdr),
      });
      this.cc.on('checkpoint-request', (r) => {
        this.requests.push(r);
        this.anyCheckpoint = true;
        bump(this.counts, `checkpoint ${r.reason}`);
      });
      this.cc.start();
      plant?.(this.cc, this);
    } catch (e) {
      this.clock.restore();
      throw e;
    }
  }

  dispose(): void {
    void this.cc.close();
    this.clock.restore();
  }

  fail(code: string, detail: string): never {
    throw new FilterStop({ step: this.step, code, detail });
  }

  apply(op: FilterOp): void {
    bump(this.counts, op.t);
    this.currentFlow = undefined;
    if (op.t === 'p' || op.t === 's') {
      const frame = bytesOf(op.f);
      const hdr = op.h === undefined ? undefined : bytesOf(op.h);
      this.largest = Math.max(this.largest, frame.length + (hdr?.length ?? 0));
      const ref = refParse(frame);
      if (op.t === 'p') this.primary(frame, hdr, ref);
      else this.secondary(frame, hdr, ref);
      bump(this.counts, 'frames');
    } else if (op.t === 'tick') {
      // Timers fire in scan-cycle steps: each step is one call (one scan at most).
      let left = op.ms;
      while (left > 0) {
        const dt = Math.min(left, this.setup.expiredScanCycle);
        left -= dt;
        this.call('tick', () => this.clock.tick(dt));
        this.checkHeld();
      }
    } else if (op.t === 'checkpoint') {
      // A flush brings the guests back in step as a checkpoint does: the comparison oracles stop.
      this.anyCheckpoint = true;
      this.call('flush', () => this.cc.flush());
    }
  }

  /**
   * A primary packet with no match leaves by the 'timeout' checkpoint of the first scan at least
   * compareTimeout after it came (scans run every expiredScanCycle): none may be older than both.
   */
  private checkHeld(): void {
    const limit = this.clock.now - this.setup.compareTimeout - this.setup.expiredScanCycle;
    for (const [key, times] of this.owedTimes) {
      if (times.length > 0 && times[0]! <= limit) {
        this.fail('colo.held-too-long', `a primary frame of ${key} queued at ${times[0]} ms is still held at ${this.clock.now} ms (compareTimeout ${this.setup.compareTimeout}, scan every ${this.setup.expiredScanCycle})`);
      }
    }
  }

  /** End of case: the clock passes every timeout; nothing may still be owed or queued. */
  finish(): void {
    const s0 = this.cc.stats();
    if (s0.primaryQueued > 0 || s0.secondaryQueued > 0 || s0.pendingFlows > 0) {
      this.apply({ t: 'tick', ms: this.setup.compareTimeout + 2 * this.setup.expiredScanCycle });
    }
    const s = this.cc.stats();
    if (this.owedCount !== 0 || s.primaryQueued !== 0 || s.secondaryQueued !== 0 || s.bufferedBytes !== 0) {
      this.fail('colo.lost', `after the clock passed compareTimeout: ${this.owedCount} primary frame(s) never out, stats queued ${s.primaryQueued}/${s.secondaryQueued}, ${s.bufferedBytes} bytes buffered`);
    }
  }

  private primary(frame: Uint8Array, hdr: Uint8Array | undefined, ref: RefPacket): void {
    this.primaryIn++;
    const key = ref.kind === 'ip' ? refFlow(ref) : 'not-ip';
    const entry = hexOf(hdr ?? new Uint8Array(0)) + '/' + hexOf(frame);
    let q = this.owed.get(key);
    if (q === undefined) {
      this.owed.set(key, (q = []));
      this.owedTimes.set(key, []);
    }
    q.push(entry);
    this.owedTimes.get(key)!.push(this.clock.now);
    this.owedCount++;
    const immediate: OutReason | undefined = ref.kind !== 'ip' ? 'straightOut' : refPassthrough(this.menu, OBJECT_ID, ref) ? 'passthrough' : undefined;
    if (immediate === undefined && ref.kind === 'ip') this.track(ref, frame, true);
    // The verdict is judged right after the call, before the state checks (a frame kept back would
    // otherwise be reported as lost first).
    const verdict = (): void => {
      if (immediate === undefined) return;
      const o = this.outs;
      if (o.length !== 1 || o[0]!.reason !== immediate || hexOf(o[0]!.frame) !== hexOf(frame)) {
        this.fail('colo.verdict', `a primary ${ref.kind === 'ip' ? 'passthrough' : ref.kind} frame must go out at once as ${immediate}; got ${o.length} output(s) [${o.map((x) => x.reason).join(', ')}]: ${hexOf(frame).slice(0, 120)}`);
      }
    };
    this.call('primaryInput', () => this.cc.primaryInput(frame, hdr), verdict);
    bump(this.counts, immediate === undefined ? 'primary compared' : `primary ${immediate}`);
  }

  private secondary(frame: Uint8Array, hdr: Uint8Array | undefined, ref: RefPacket): void {
    this.secondaryIn++;
    if (ref.kind === 'ip' && !refPassthrough(this.menu, OBJECT_ID, ref)) this.track(ref, frame, false);
    this.call('secondaryInput', () => this.cc.secondaryInput(frame, hdr));
  }

  /** One call into the compare, with the per-call oracles around it. */
  private call(what: string, fn: () => void, verdict?: () => void): void {
    const before = this.cc.stats();
    this.outs = [];
    this.requests = [];
    resetTableWork();
    const mismatchFlowsBefore = this.anyCheckpoint;
    const clockBefore = this.clock.now;
    try {
      fn();
    } catch (e) {
      if (e instanceof FilterStop) throw e;
      this.fail('colo.threw', `${what}: ${e instanceof Error ? e.stack : String(e)}`);
    }
    verdict?.();
    if (this.requests.length > 1) {
      this.fail('colo.checkpoint-storm', `${what}: ${this.requests.length} checkpoint requests in one call (${this.requests.map((r) => r.reason).join(', ')})`);
    }
    const conns = before.connections + before.pendingFlows;
    const visitLimit = 2 * (this.setup.maxConnections + this.setup.maxPendingFlows) + 2 * conns + 4;
    if (tableWork.lookups > 8 || tableWork.changes > 8 || tableWork.visited > visitLimit) {
      this.fail('work.unbounded', `${what}: ${tableWork.lookups} lookups, ${tableWork.changes} changes, ${tableWork.visited} entries visited (limit 8 / 8 / ${visitLimit})`);
    }
    if (this.outs.length > before.primaryQueued + 1) {
      this.fail('work.unbounded', `${what}: ${this.outs.length} frames out in one call with ${before.primaryQueued} queued before it`);
    }
    // A mismatch for a flow whose streams agree (judged before anything else went wrong).
    for (const r of this.requests) {
      if (r.reason === 'mismatch' && !mismatchFlowsBefore && clockBefore < this.setup.compareTimeout && before.capDropped === 0) this.judgeMismatch(r);
    }
    this.checkState(what);
  }

  private currentFlow: string | undefined;

  private judgeMismatch(r: CheckpointRequest): void {
    const key = this.currentFlow;
    if (key === undefined) return; // a flush or tick: not tied to one input
    const f = this.flows.get(key);
    if (f === undefined) return;
    if (f.proto === 6) {
      const { p, s } = f;
      if (p.conflict || s.conflict || p.disorderly || s.disorderly || p.syns > 1 || s.syns > 1) return;
      if (p.first === undefined || s.first === undefined) return;
      if (p.first !== s.first) return;
      if (p.first === 'syn' && p.synSeq !== s.synSeq) return;
      if (p.first === 'data' && (!p.hasData || !s.hasData || p.start !== s.start)) return;
      for (const [seq, b] of p.bytes) {
        const o = s.bytes.get(seq);
        if (o !== undefined && o !== b) return;
      }
      if (p.fin >= 0 && s.hasData && dist(s.maxEnd, p.fin) > 0) return;
      if (s.fin >= 0 && p.hasData && dist(p.maxEnd, s.fin) > 0) return;
      if (p.fin >= 0 && s.fin >= 0 && p.fin !== s.fin) return;
      this.fail('colo.false-mismatch', `'mismatch' requested for ${r.flow}, whose two TCP streams agree so far (same start, equal bytes, in order)`);
    }
    const { p, s } = f;
    if (p.conflict || s.conflict) return;
    const n = Math.min(p.grams.length, s.grams.length);
    for (let i = 0; i < n; i++) if (p.grams[i] !== s.grams[i]) return;
    this.fail('colo.false-mismatch', `'mismatch' requested for ${r.flow}, whose datagrams agree so far (${p.grams.length} primary, ${s.grams.length} secondary)`);
  }

  /** Follows what each side sent on a flow, for the two comparison oracles. */
  private track(ref: RefPacket, frame: Uint8Array, primary: boolean): void {
    this.currentFlow = undefined;
    if (ref.fragment || !ref.hasPorts || ref.sport === 0 || ref.dport === 0) return;
    const key = refFlow(ref);
    this.currentFlow = key;
    let f = this.flows.get(key);
    if (f === undefined) this.flows.set(key, (f = { proto: ref.proto, p: newSide(), s: newSide() }));
    const side = primary ? f.p : f.s;
    if (ref.proto !== 6) {
      side.grams.push(hexOf(frame.subarray(ref.l4, ref.ipEnd)));
      return;
    }
    const ctl = ref.flags & (SYN | FIN | RST);
    const n = ref.payloadLength;
    if (n === 0 && ctl === 0) return; // a pure ACK: never compared
    if (side.ended) side.disorderly = true;
    if (ctl !== 0 && n > 0) side.disorderly = true;
    if ((ctl & RST) !== 0) {
      side.ended = true;
      side.disorderly = true;
      return;
    }
    if ((ctl & SYN) !== 0) {
      side.syns++;
      if (side.first === undefined) side.first = 'syn';
      else side.disorderly = true;
      side.synSeq = ref.seq;
      if ((ctl & FIN) !== 0) side.disorderly = true;
      return;
    }
    if ((ctl & FIN) !== 0) {
      side.fin = (ref.seq + n) >>> 0;
      side.ended = true;
      if (!side.hasData && side.first === 'syn' && side.fin !== ((side.synSeq + 1) >>> 0)) side.disorderly = true;
      if (side.hasData && side.fin !== side.maxEnd) side.disorderly = true;
      if (side.first === undefined) side.disorderly = true;
      return;
    }
    if (side.first === undefined) side.first = 'data';
    const end = (ref.seq + n) >>> 0;
    if (!side.hasData) {
      if (side.first === 'syn' && ref.seq !== ((side.synSeq + 1) >>> 0)) side.disorderly = true;
      side.start = ref.seq;
      side.maxEnd = end;
      side.hasData = true;
    } else {
      if (dist(ref.seq, side.maxEnd) > 0 || dist(ref.seq, side.start) < 0) side.disorderly = true;
      if (dist(end, side.maxEnd) > 0) side.maxEnd = end;
    }
    for (let k = 0; k < n; k++) {
      const seq = (ref.seq + k) >>> 0;
      const b = frame[ref.payloadOffset + k]!;
      const had = side.bytes.get(seq);
      if (had !== undefined && had !== b) side.conflict = true;
      side.bytes.set(seq, b);
    }
  }

  private onOutput(frame: Uint8Array, hdr: Uint8Array | undefined): void {
    const s = this.cc.stats();
    const moved = (['released', 'straightOut', 'passthrough', 'flushed'] as const).filter((k) => s[k] !== this.last[k]);
    if (moved.length !== 1 || s[moved[0]!] !== this.last[moved[0]!] + 1) {
      this.fail('colo.stats', `a frame went out moving ${moved.length === 0 ? 'no counter' : moved.map((k) => `${k} ${this.last[k]} -> ${s[k]}`).join(', ')}`);
    }
    const reason = moved[0]!;
    this.last = { released: s.released, straightOut: s.straightOut, passthrough: s.passthrough, flushed: s.flushed };
    this.outTotal++;
    const copy = frame.slice();
    this.outs.push({ reason, frame: copy, hdr: hdr?.slice() });
    bump(this.counts, `out ${reason}`);
    const ref = refParse(copy);
    const key = ref.kind === 'ip' ? refFlow(ref) : 'not-ip';
    const q = this.owed.get(key);
    const entry = hexOf(hdr ?? new Uint8Array(0)) + '/' + hexOf(copy);
    if (q === undefined || q.length === 0 || q[0] !== entry) {
      const known = q?.includes(entry) === true;
      this.fail('colo.order', `${reason}: ${known ? 'a primary frame out of its flow\'s order' : 'a frame that is not an owed primary frame'} (${key}; next owed ${q?.[0]?.slice(0, 60) ?? 'none'}): ${entry.slice(0, 120)}`);
    }
    q.shift();
    this.owedTimes.get(key)!.shift();
    this.owedCount--;
    if (reason === 'released' && !this.anyCheckpoint && ref.kind === 'ip' && ref.proto === 6 && ref.payloadLength > 0) this.judgeRelease(ref, copy);
  }

  private judgeRelease(ref: RefPacket, frame: Uint8Array): void {
    if (ref.fragment || !ref.hasPorts) return;
    const f = this.flows.get(refFlow(ref));
    if (f === undefined) return;
    const { p, s } = f;
    if (p.first !== 'syn' || s.first !== 'syn' || p.synSeq !== s.synSeq || p.syns !== 1 || s.syns !== 1) return;
    if (p.conflict || s.conflict || p.ended || s.ended) return;
    for (let k = 0; k < ref.payloadLength; k++) {
      const seq = (ref.seq + k) >>> 0;
      const b = frame[ref.payloadOffset + k]!;
      const o = s.bytes.get(seq);
      if (o !== b) {
        this.fail('colo.released-unmatched', `a primary segment (seq ${ref.seq}, ${ref.payloadLength} bytes) was released by comparison although the secondary ${o === undefined ? 'never sent' : `sent 0x${o.toString(16)} for`} byte ${seq} (primary 0x${b.toString(16)})`);
      }
    }
  }

  private checkState(what: string): void {
    const s = this.cc.stats();
    const set = this.setup;
    if (this.owedCount !== s.primaryQueued) {
      this.fail('colo.lost', `${what}: ${this.owedCount} primary frame(s) in and not out, but stats say ${s.primaryQueued} queued`);
    }
    if (s.primaryIn !== this.primaryIn || s.secondaryIn !== this.secondaryIn) {
      this.fail('colo.stats', `${what}: stats count ${s.primaryIn}/${s.secondaryIn} frames in, the world gave ${this.primaryIn}/${this.secondaryIn}`);
    }
    if (s.primaryIn !== s.released + s.straightOut + s.passthrough + s.flushed + s.primaryQueued) {
      this.fail('colo.stats', `${what}: primaryIn ${s.primaryIn} != released ${s.released} + straightOut ${s.straightOut} + passthrough ${s.passthrough} + flushed ${s.flushed} + queued ${s.primaryQueued}`);
    }
    if (s.secondaryIn !== s.secondaryDropped + s.secondaryQueued) {
      this.fail('colo.stats', `${what}: secondaryIn ${s.secondaryIn} != dropped ${s.secondaryDropped} + queued ${s.secondaryQueued}`);
    }
    if (s.released + s.straightOut + s.passthrough + s.flushed !== this.outTotal) {
      this.fail('colo.stats', `${what}: counters say ${s.released + s.straightOut + s.passthrough + s.flushed} frames out, ${this.outTotal} came out`);
    }
    if (s.capFlushed > s.flushed || s.capDropped > s.secondaryDropped) this.fail('colo.stats', `${what}: capFlushed/capDropped exceed flushed/secondaryDropped`);
    if (s.connections > set.maxConnections) this.fail('colo.cap', `${what}: ${s.connections} connections > maxConnections ${set.maxConnections}`);
    if (s.pendingFlows > set.maxPendingFlows) this.fail('colo.cap', `${what}: ${s.pendingFlows} pending flows > maxPendingFlows ${set.maxPendingFlows}`);
    if (s.bufferedBytes > Math.max(set.maxBufferedBytes, this.largest)) this.fail('colo.cap', `${what}: ${s.bufferedBytes} bytes buffered > maxBufferedBytes ${set.maxBufferedBytes}`);
    const queueLimit = (2 * set.maxConnections + set.maxPendingFlows) * set.maxQueueSize;
    if (s.primaryQueued + s.secondaryQueued > queueLimit) this.fail('colo.cap', `${what}: ${s.primaryQueued + s.secondaryQueued} packets queued > ${queueLimit}`);
  }
}

/** Runs a colo case; null when every oracle held. */
export function runColo(c: FilterCase, counts?: Counts, plant?: ColoPlant): import('./common.js').FilterFailure | null {
  let w: ColoWorld;
  try {
    w = new ColoWorld(c, counts, plant);
  } catch (e) {
    return { step: -1, code: 'setup.threw', detail: String(e instanceof Error ? e.stack : e) };
  }
  try {
    for (let i = 0; i < c.ops.length; i++) {
      w.step = i;
      w.apply(c.ops[i]!);
    }
    w.step = c.ops.length;
    w.finish();
    return null;
  } catch (e) {
    if (e instanceof FilterStop) return e.failure;
    return { step: w.step, code: 'harness.threw', detail: String(e instanceof Error ? e.stack : e) };
  } finally {
    w.dispose();
  }
}
