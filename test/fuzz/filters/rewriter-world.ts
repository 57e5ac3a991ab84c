// The filter-rewriter world of the filter fuzzer: client frames (direction 'tx', host → guest) and
// secondary-guest frames ('rx', guest → host) through a FilterChain holding one RewriterFilter,
// fake-clock ticks (the ageing scan runs on its own timer) and checkpoints. Every output is
// compared byte for byte with `RefRewriter`, a reference model of what lib/filters/rewriter.ts
// documents (QEMU net/filter-rewriter.c, commit 30656b09 in /work/shared/seeds: learn
// offset = secondary ISN - primary ISN from the handshake, then client → guest ack += offset,
// guest → client seq -= offset; plus SACK blocks, timestamps, closing and ageing as the file
// header says), written with its own parser and checksum (ref-packet.ts).
//
// Oracles (codes):
// - rewriter.threw — an exception escaped.
// - rewriter.lost — a frame did not come out at the far end exactly once (the rewriter never
//   consumes), re-entrant ones included (`re`: the far end sends a frame the other way through
//   the chain from inside the delivery, refuses the first, then takes it when ready again).
// - rewriter.verdict — the frame out differs from the reference's (a wrong offset, a field
//   rewritten that should not be, a bad checksum, a header changed), with the connection's
//   reference state in the message.
// - rewriter.stats — the table size or a counter (rewritten, untracked, closed, expired,
//   rstIgnored, checkpoints) differs from the reference's.
// - rewriter.cap — more connections tracked than maxConnections (a SYN flood must not grow it).
// - work.unbounded — a frame cost more than a few table operations, or a scan visited more
//   entries than the table held.

import sinon from 'sinon';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { RewriterFilter } from '../../../lib/filters/rewriter.js';
import type { Netdev, NetdevPeer, SendResult } from '../../../lib/netdev/netdev.js';
import { bump, FilterStop, installTableMeter, OBJECT_ID, resetTableWork, tableWork, type Counts, type FilterCase, type FilterFailure, type FilterOp } from './common.js';
import { bytesOf, hexOf } from './packets.js';
import { refFixL4Checksum, refFlow, refParse, refTcpOption, u32, type RefPacket } from './ref-packet.js';

export const REWRITER_DEFAULTS = { maxConnections: 16, idleTimeout: 7_440_000, transientIdleTimeout: 120_000, expiryScanInterval: 1000 };

type State = 'syn-received' | 'syn-ack-recorded' | 'syn-sent' | 'established' | 'client-closing' | 'guest-closing' | 'last-ack' | 'closed';

interface RefConn {
  state: State;
  guestIsn: number;
  guestTs: number;
  offset: number;
  tsOffset: number;
  clientFin: number;
  guestFin: number;
  clientNext: number | undefined;
  guestNext: number | undefined;
  last: number;
}

const FIN = 1;
const SYN = 2;
const RST = 4;
const ACK = 16;
const MAX_FRAME = 4096 + 65536;

const w32 = (b: Uint8Array, i: number, v: number): void => {
  b[i] = v >>> 24;
  b[i + 1] = (v >>> 16) & 255;
  b[i + 2] = (v >>> 8) & 255;
  b[i + 3] = v & 255;
};

/** The offset the rewriter uses only while the connection's offset is known. */
const REWRITING: ReadonlySet<State> = new Set(['established', 'client-closing', 'guest-closing', 'last-ack']);
const LONG_LIVED: ReadonlySet<State> = new Set(['established', 'client-closing', 'guest-closing']);

export class RefRewriter {
  readonly conns = new Map<string, RefConn>();
  readonly stats = { rewritten: 0, untracked: 0, closed: 0, expired: 0, rstIgnored: 0, checkpoints: 0 };
  constructor(private readonly o: typeof REWRITER_DEFAULTS) {}

  /** What should come out for `frame` going `dir`; also the connection's state afterwards, for messages. */
  process(dir: 'tx' | 'rx', frame: Uint8Array, hdr: Uint8Array | undefined, now: number): { out: Uint8Array; note: string } {
    const p = refParse(frame);
    if (p.kind !== 'ip' || p.proto !== 6 || p.fragment || !p.hasPorts) return { out: frame, note: 'not a whole TCP segment' };
    const client = dir === 'tx';
    const f = p.flags;
    const syn = (f & SYN) !== 0;
    const rst = (f & RST) !== 0;
    const fin = (f & FIN) !== 0;
    const ack = (f & ACK) !== 0;
    if (!rst && !syn && !fin && !ack) return { out: frame, note: 'no RST/SYN/FIN/ACK flag' };
    const key = refFlow(p);
    let c = this.conns.get(key);
    if (c === undefined) {
      if (rst || !syn || ack) return { out: frame, note: 'untracked flow, not a SYN' };
      if (this.conns.size >= this.o.maxConnections) {
        this.stats.untracked++;
        return { out: frame, note: 'table full' };
      }
      c = { state: client ? 'syn-received' : 'syn-sent', guestIsn: 0, guestTs: -1, offset: 0, tsOffset: 0, clientFin: 0, guestFin: 0, clientNext: undefined, guestNext: undefined, last: now };
      this.conns.set(key, c);
      if (!client) this.recordGuest(c, p, frame);
      this.advance(c, client, p);
      c.last = now;
      return { out: frame, note: `new ${c.state}` };
    }
    c.last = now;
    const before = c.state;
    if (rst) {
      if (this.rstOk(c, client, p)) c.state = 'closed';
      else this.stats.rstIgnored++;
    } else {
      this.step(c, client, p, frame, syn, fin, ack);
      this.advance(c, client, p);
    }
    const rewrite = (c.offset !== 0 || c.tsOffset !== 0) && (REWRITING.has(before) || REWRITING.has(c.state));
    const note = `${before} -> ${c.state}, offset ${c.offset}, tsOffset ${c.tsOffset}`;
    if (c.state === 'closed') {
      this.conns.delete(key);
      this.stats.closed++;
    }
    if (!rewrite || frame.length > MAX_FRAME) return { out: frame, note };
    this.stats.rewritten++;
    return { out: this.rewrite(frame, p, hdr, c, client), note };
  }

  private step(c: RefConn, client: boolean, p: RefPacket, frame: Uint8Array, syn: boolean, fin: boolean, ack: boolean): void {
    const s = c.state;
    if (syn) {
      if (!client && ack && (s === 'syn-received' || s === 'syn-ack-recorded')) {
        c.state = 'syn-ack-recorded';
        this.recordGuest(c, p, frame);
      } else if (!client && !ack && s === 'syn-sent') this.recordGuest(c, p, frame);
      else if (client && ack && s === 'syn-sent') {
        c.state = 'established';
        this.learnOffset(c, p, frame);
      }
      return;
    }
    if (fin) {
      if (client && s === 'syn-ack-recorded') {
        c.state = 'client-closing';
        this.learnOffset(c, p, frame);
      } else if (client && (s === 'established' || s === 'client-closing' || s === 'guest-closing')) {
        c.state = s === 'guest-closing' ? 'last-ack' : 'client-closing';
        c.clientFin = (p.seq + p.payloadLength) >>> 0;
      } else if (!client && (s === 'established' || s === 'client-closing' || s === 'guest-closing')) {
        c.state = s === 'client-closing' ? 'last-ack' : 'guest-closing';
        c.guestFin = (p.seq - c.offset + p.payloadLength) >>> 0;
      }
      return;
    }
    // ACK
    if (client && s === 'syn-ack-recorded') {
      c.state = 'established';
      this.learnOffset(c, p, frame);
    } else if (s === 'last-ack') {
      const wanted = client ? (c.guestFin + 1) >>> 0 : (c.clientFin + 1) >>> 0;
      if (p.ack === wanted) c.state = 'closed';
    }
  }

  private recordGuest(c: RefConn, p: RefPacket, frame: Uint8Array): void {
    c.guestIsn = p.seq;
    const ts = tsAt(frame, p);
    c.guestTs = ts < 0 ? -1 : u32(frame, ts + 2);
  }

  private learnOffset(c: RefConn, p: RefPacket, frame: Uint8Array): void {
    c.offset = (c.guestIsn - ((p.ack - 1) >>> 0)) >>> 0;
    const ts = tsAt(frame, p);
    c.tsOffset = ts < 0 || c.guestTs < 0 ? 0 : (c.guestTs - u32(frame, ts + 6)) >>> 0;
  }

  private advance(c: RefConn, client: boolean, p: RefPacket): void {
    const end = (p.seq + p.payloadLength + ((p.flags & SYN) !== 0 ? 1 : 0) + ((p.flags & FIN) !== 0 ? 1 : 0)) >>> 0;
    const cur = client ? c.clientNext : c.guestNext;
    const next = cur === undefined || ((cur - end) | 0) < 0 ? end : cur;
    if (client) c.clientNext = next;
    else c.guestNext = next;
  }

  private rstOk(c: RefConn, client: boolean, p: RefPacket): boolean {
    const mine = client ? c.clientNext : c.guestNext;
    if (mine === undefined) {
      const theirs = client ? c.guestNext : c.clientNext;
      return theirs !== undefined && (p.flags & ACK) !== 0 && p.ack === theirs;
    }
    return ((p.seq - mine) >>> 0) < 65535;
  }

  private rewrite(frame: Uint8Array, p: RefPacket, hdr: Uint8Array | undefined, c: RefConn, client: boolean): Uint8Array {
    const out = frame.slice();
    const ts = c.tsOffset === 0 ? -1 : tsAt(out, p);
    if (client) {
      if ((p.flags & ACK) !== 0) w32(out, p.l4 + 8, (p.ack + c.offset) >>> 0);
      const sack = c.offset === 0 ? -1 : refTcpOption(out, p, 5);
      if (sack >= 0) {
        const len = out[sack + 1]!;
        for (let j = sack + 2; j + 8 <= sack + len; j += 8) {
          w32(out, j, (u32(out, j) + c.offset) >>> 0);
          w32(out, j + 4, (u32(out, j + 4) + c.offset) >>> 0);
        }
      }
      if (ts >= 0) w32(out, ts + 6, (u32(out, ts + 6) + c.tsOffset) >>> 0);
    } else {
      w32(out, p.l4 + 4, (p.seq - c.offset) >>> 0);
      if (ts >= 0) w32(out, ts + 2, (u32(out, ts + 2) - c.tsOffset) >>> 0);
    }
    const partial = hdr !== undefined && hdr.length > 0 && (hdr[0]! & 1) !== 0;
    if (!partial) refFixL4Checksum(out, p);
    return out;
  }

  checkpoint(): void {
    for (const c of this.conns.values()) {
      c.offset = 0;
      c.tsOffset = 0;
    }
    this.stats.checkpoints++;
  }

  expire(now: number): void {
    for (const [k, c] of this.conns) {
      const limit = LONG_LIVED.has(c.state) ? this.o.idleTimeout : this.o.transientIdleTimeout;
      if (now - c.last > limit) {
        this.conns.delete(k);
        this.stats.expired++;
      }
    }
  }

  describe(frame: Uint8Array): string {
    const p = refParse(frame);
    if (p.kind !== 'ip' || !p.hasPorts) return 'no flow';
    const c = this.conns.get(refFlow(p));
    return c === undefined ? 'no reference connection' : `reference connection ${c.state}, offset ${c.offset}, tsOffset ${c.tsOffset}, guestIsn ${c.guestIsn}`;
  }
}

function tsAt(frame: Uint8Array, p: RefPacket): number {
  const at = refTcpOption(frame, p, 8);
  return at >= 0 && frame[at + 1] === 10 ? at : -1;
}

/** The host side under the chain: records what the chain sends, delivers client frames. */
class HostEnd implements Netdev {
  readonly id = 'fuzz-host';
  peer: NetdevPeer | null = null;
  readonly sent: { frame: Uint8Array; hdr: Uint8Array | undefined }[] = [];
  /** Re-entry: runs inside the next send(), whose answer it gives. */
  onSend: (() => SendResult) | undefined;
  attach(peer: NetdevPeer): void {
    this.peer = peer;
  }
  detach(): void {
    this.peer = null;
  }
  send(frame: Uint8Array, hdr?: Uint8Array): SendResult {
    const hook = this.onSend;
    if (hook !== undefined) {
      this.onSend = undefined;
      return hook();
    }
    this.sent.push({ frame: frame.slice(), hdr: hdr?.slice() });
    return 'sent';
  }
  pauseReceive(): void {}
  resumeReceive(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export type RewriterPlant = (r: RewriterFilter, w: RewriterWorld) => void;

export class RewriterWorld {
  readonly clock: sinon.SinonFakeTimers;
  readonly filter: RewriterFilter;
  readonly chain: FilterChain;
  readonly host = new HostEnd();
  readonly guest: { frame: Uint8Array; hdr: Uint8Array | undefined }[] = [];
  readonly ref: RefRewriter;
  readonly setup: typeof REWRITER_DEFAULTS;
  step = 0;
  /** Re-entry: the guest's next delivery runs this, then is refused. */
  private refuseNext: (() => void) | undefined;
  private readonly counts: Counts | undefined;

  constructor(c: FilterCase, counts?: Counts, plant?: RewriterPlant) {
    installTableMeter();
    this.counts = counts;
    this.setup = { ...REWRITER_DEFAULTS, ...(c.setup as Partial<typeof REWRITER_DEFAULTS>) };
    this.ref = new RefRewriter(this.setup);
    this.clock = sinon.useFakeTimers({ now: 0, toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    try {
      this.filter = new RewriterFilter({ id: OBJECT_ID, ...this.setup, now: () => this.clock.now });
      this.chain = new FilterChain(this.host, { id: 'fuzz-chain' });
      this.chain.add(this.filter);
      this.chain.attach({
        receive: (frame, hdr) => {
          const refuse = this.refuseNext;
          if (refuse !== undefined) {
            this.refuseNext = undefined;
            refuse();
            return false;
          }
          this.guest.push({ frame: frame.slice(), hdr: hdr?.slice() });
          return true;
        },
        writable: () => undefined,
      });
      plant?.(this.filter, this);
    } catch (e) {
      this.clock.restore();
      throw e;
    }
  }

  dispose(): void {
    void this.filter.close();
    this.clock.restore();
  }

  fail(code: string, detail: string): never {
    throw new FilterStop({ step: this.step, code, detail });
  }

  private guarded(what: string, fn: () => void): void {
    resetTableWork();
    try {
      fn();
    } catch (e) {
      if (e instanceof FilterStop) throw e;
      this.fail('rewriter.threw', `${what}: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }

  apply(op: FilterOp): void {
    bump(this.counts, op.t);
    if (op.t === 'c' || op.t === 'g') {
      const frame = bytesOf(op.f);
      const hdr = op.h === undefined ? undefined : bytesOf(op.h);
      const dir = op.t === 'c' ? 'tx' : 'rx';
      const want = this.ref.process(dir, frame, hdr, this.clock.now);
      const sink = op.t === 'c' ? this.guest : this.host.sent;
      const n = sink.length;
      const re = op.re === undefined ? undefined : bytesOf(op.re);
      // Re-entry: the far end sends `re` the other way from inside this delivery and refuses it.
      const wantRe = re === undefined ? undefined : this.ref.process(dir === 'tx' ? 'rx' : 'tx', re, undefined, this.clock.now);
      const reSink = op.t === 'c' ? this.host.sent : this.guest;
      const m = reSink.length;
      if (re !== undefined) {
        if (op.t === 'c') this.refuseNext = () => void this.chain.send(re);
        else this.host.onSend = () => (this.host.peer!.receive(re), 'busy');
      }
      this.guarded(dir, () => {
        if (op.t === 'c') this.host.peer!.receive(frame, hdr);
        else this.chain.send(frame, hdr);
        if (re !== undefined) {
          // Ready again: the held frame goes on.
          if (op.t === 'c') this.chain.resumeReceive();
          else this.host.peer!.writable();
        }
      });
      this.refuseNext = undefined;
      this.host.onSend = undefined;
      bump(this.counts, 'frames', re === undefined ? 1 : 2);
      if (re !== undefined) bump(this.counts, 'reentrant frames');
      const per = re === undefined ? 2 : 4;
      if (tableWork.lookups > per || tableWork.changes > per || tableWork.visited > 0) {
        this.fail('work.unbounded', `one frame cost ${tableWork.lookups} lookups, ${tableWork.changes} changes, ${tableWork.visited} entries visited`);
      }
      if (sink.length !== n + 1 + (re !== undefined && reSink === sink ? 1 : 0)) this.fail('rewriter.lost', `a ${op.t === 'c' ? 'client' : 'guest'} frame came out ${sink.length - n} times at the far end`);
      if (re !== undefined && reSink.length !== m + 1) this.fail('rewriter.lost', `a re-entrant frame came out ${reSink.length - m} times at the far end`);
      const got = sink[n]!;
      if (hexOf(got.frame) !== hexOf(want.out) || hexOf(got.hdr ?? new Uint8Array(0)) !== hexOf(hdr ?? new Uint8Array(0))) {
        this.fail('rewriter.verdict', `${dir} frame${re === undefined ? '' : ' (re-entered)'}: expected ${diff(want.out, got.frame)} (${want.note}; ${this.ref.describe(frame)}): ${op.f.slice(0, 160)}`);
      }
      if (re !== undefined && wantRe !== undefined && hexOf(reSink[m]!.frame) !== hexOf(wantRe.out)) {
        this.fail('rewriter.verdict', `re-entrant frame: expected ${diff(wantRe.out, reSink[m]!.frame)} (${wantRe.note})`);
      }
      bump(this.counts, hexOf(got.frame) === op.f ? 'frames passed' : 'frames rewritten');
    } else if (op.t === 'tick') {
      let left = op.ms;
      const every = this.setup.expiryScanInterval;
      while (left > 0) {
        // Up to the next scan instant, so the reference ages at the same moments.
        const toScan = every - (this.clock.now % every);
        const dt = Math.min(left, toScan);
        left -= dt;
        const size = this.filter.stats().connections;
        this.guarded('tick', () => this.clock.tick(dt));
        if (this.clock.now % every === 0) this.ref.expire(this.clock.now);
        if (tableWork.visited > size || tableWork.lookups > 0) this.fail('work.unbounded', `one scan visited ${tableWork.visited} entries of a table of ${size}`);
        if (left > 50 * every) {
          // A long quiet spell: jump over the empty scans (nothing changes between them but time).
          const skip = Math.floor((left - every) / every) * every;
          this.guarded('tick', () => this.clock.tick(skip));
          left -= skip;
          this.ref.expire(this.clock.now);
        }
      }
    } else if (op.t === 'checkpoint') {
      this.guarded('checkpoint', () => this.filter.checkpoint());
      this.ref.checkpoint();
    }
    this.checkState();
  }

  private checkState(): void {
    const s = this.filter.stats();
    if (s.connections > this.setup.maxConnections) this.fail('rewriter.cap', `${s.connections} connections tracked > maxConnections ${this.setup.maxConnections}`);
    const r = { connections: this.ref.conns.size, ...this.ref.stats };
    for (const k of Object.keys(r) as (keyof typeof r)[]) {
      if (s[k] !== r[k]) this.fail('rewriter.stats', `${k}: filter says ${s[k]}, the reference ${r[k]} (filter ${JSON.stringify(s)})`);
    }
  }
}

function diff(want: Uint8Array, got: Uint8Array): string {
  if (want.length !== got.length) return `${want.length} bytes, got ${got.length}`;
  const at: string[] = [];
  for (let i = 0; i < want.length && at.length < 6; i++) if (want[i] !== got[i]) at.push(`[${i}] 0x${want[i]!.toString(16)} got 0x${got[i]!.toString(16)}`);
  return at.join(', ');
}

export function runRewriter(c: FilterCase, counts?: Counts, plant?: RewriterPlant): FilterFailure | null {
  let w: RewriterWorld;
  try {
    w = new RewriterWorld(c, counts, plant);
  } catch (e) {
    return { step: -1, code: 'setup.threw', detail: String(e instanceof Error ? e.stack : e) };
  }
  try {
    for (let i = 0; i < c.ops.length; i++) {
      w.step = i;
      w.apply(c.ops[i]!);
    }
    return null;
  } catch (e) {
    if (e instanceof FilterStop) return e.failure;
    return { step: w.step, code: 'harness.threw', detail: String(e instanceof Error ? e.stack : e) };
  } finally {
    w.dispose();
  }
}
