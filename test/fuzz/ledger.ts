// The driver's books for one virtqueue under fuzzing (VIRTIO 1.2 §2.7.13 what the driver made
// available, §2.7.14 what came back in the used ring): every published head is a posting that
// grants the device its writable buffers; every used element must match an outstanding posting
// (so no head is completed twice or invented) and stay within what was granted.
//
// The grant of a posting is found by walking the descriptor table as the driver left it when it
// published the head (direct descriptors following NEXT, one level of indirect table), written
// from §2.7.5 independently of virtqueue/. The walk is generous — it follows paths the device
// must reject — so a grant is never smaller than what the device may legitimately write.
// Packed rings (§2.8): the world hands `post()` the grant itself (the buffers of a list it wrote,
// or a walk of the ring descriptors it just wrote, driver-ops.ts), since a packed ring's slots are
// overwritten by used descriptors and reused, so the ring cannot be walked again later.

import type { GuardedMemory } from '../support/guarded-memory.js';
import type { DriverRing, UsedEntry } from '../support/driver-ring.js';
import { PackedDriverRing } from '../support/packed-driver-ring.js';

/** A model driver ring of either layout. */
export type FuzzRing = DriverRing | PackedDriverRing;

const F_NEXT = 1;
const F_WRITE = 2;
const F_INDIRECT = 4;
/** Entries of one indirect table the walk looks at (a table is at most queue size useful entries). */
const WALK_TABLE_MAX = 4096;

/** Commands that write a result after the ack (VIRTIO 1.3 NOTF_COAL VQ_GET, 1.4 STATS QUERY and GET). */
function hasResult(cmd: readonly number[]): boolean {
  return (cmd[0] === 6 && cmd[1] === 3) || (cmd[0] === 8 && (cmd[1] === 0 || cmd[1] === 1));
}

export type PostingKind = 'tx' | 'rx' | 'ctrl' | 'raw';

export interface Posting {
  readonly head: number;
  readonly kind: PostingKind;
  /** Granted writable ranges [address, length] (raw postings: grows, see refreshRaw). */
  readonly ranges: [number, number][];
  /** Sum of the granted lengths at posting. */
  readonly writable: number;
  /** Control postings: where the ack byte goes. */
  readonly ackAt?: number;
  /** Control postings: class, command and payload as the driver sent them. */
  readonly command?: readonly number[];
}

export interface LedgerProblem {
  code: string;
  detail: string;
}

export class QueueLedger {
  private readonly byHead = new Map<number, Posting[]>();
  private count = 0;
  /** Used elements seen, by kind, and bytes the device reported writing. */
  usedSeen = 0;
  usedBytes = 0;
  /** Used elements with a length (on a receive queue without MRG_RXBUF: one frame each). */
  usedNonEmpty = 0;
  /** The driver moved avail.idx past the ring: it posts nothing more here until a reset. */
  dead = false;
  /** The ring itself was granted as a buffer: its used ring is no longer the driver's to read. */
  tainted = false;
  /**
   * A raw posting went out since the last reset. Its descriptors may alias buffers the driver
   * reuses for later chains (a stale head re-exposed by an index jump), so the device may
   * legitimately overwrite those chains' acks or descriptors: per-kind checks (lengths, acks) are
   * off; double completion and the guard regions still apply.
   */
  rawSeen = false;
  /** The posting the last `complete()` matched (null: none), and the ack it read (control postings). */
  lastCompleted: Posting | null = null;
  lastAck: number | undefined;

  constructor(
    private readonly memory: GuardedMemory,
    readonly ring: FuzzRing,
    readonly index: number,
  ) {}

  /** The ring is packed (§2.8). */
  get packed(): boolean {
    return this.ring instanceof PackedDriverRing;
  }

  get outstanding(): number {
    return this.count;
  }

  /** Outstanding postings of `kind`. */
  outstandingOf(kind: PostingKind): number {
    let n = 0;
    for (const list of this.byHead.values()) for (const p of list) if (p.kind === kind) n++;
    return n;
  }

  /**
   * Records that `head` was published; grants what the table gives the device from it (split), or
   * `granted` (packed: the writable ranges of the list as written).
   */
  post(head: number, kind: PostingKind, ackAt?: number, command?: readonly number[], granted?: [number, number][]): void {
    const ranges = granted !== undefined ? granted : !this.packed && head < this.ring.size ? this.walk(head) : [];
    let writable = 0;
    for (const [a, l] of ranges) {
      this.memory.grant(a, l);
      writable += l;
    }
    if (kind === 'raw') this.rawSeen = true;
    if (ranges.some(([a, l]) => this.overlapsRing(a, l))) {
      // The driver handed its own ring to the device as a buffer: from now on the ring says
      // whatever the device wrote there. Only the guard regions can judge this queue any more.
      this.dead = true;
      this.tainted = true;
    }
    const p: Posting = { head, kind, ranges, writable, ...(ackAt === undefined ? {} : { ackAt }), ...(command === undefined ? {} : { command }) };
    const list = this.byHead.get(head);
    if (list === undefined) this.byHead.set(head, [p]);
    else list.push(p);
    this.count++;
  }

  /** One used element came back: match it to the oldest posting of its head. */
  complete(e: UsedEntry): LedgerProblem | null {
    const list = this.byHead.get(e.id);
    const p = list?.shift();
    this.lastCompleted = p ?? null;
    this.lastAck = undefined;
    if (p === undefined) {
      return { code: 'used.unknown-head', detail: `queue ${this.index}: used element { id: ${e.id}, len: ${e.len} } matches no outstanding head (completed twice, or never made available)` };
    }
    if (list!.length === 0) this.byHead.delete(e.id);
    this.count--;
    for (const [a, l] of p.ranges) this.memory.revoke(a, l);
    this.usedSeen++;
    this.usedBytes += e.len;
    if (e.len > 0) this.usedNonEmpty++;
    // A raw posting's descriptors may legitimately change before the device reads them (a stale
    // head re-exposed by an index bump): only the guard regions judge what it wrote.
    if (this.rawSeen) return null;
    if (p.kind !== 'raw' && e.len > p.writable) {
      return { code: 'used.len-too-large', detail: `queue ${this.index}: used len ${e.len} for head ${e.id} exceeds its ${p.writable} writable bytes` };
    }
    if (p.kind === 'tx' && e.len !== 0) return { code: 'used.tx-len-nonzero', detail: `queue ${this.index}: transmit head ${e.id} completed with len ${e.len}` };
    if (p.kind === 'ctrl') {
      const ack = this.memory.driver.readU8(p.ackAt!);
      // The ack byte; an OK command with a result (VQ_GET, STATS QUERY / GET) also its result after it.
      const result = ack === 0 && p.command !== undefined && hasResult(p.command);
      if (result ? e.len < 1 : e.len !== 1) return { code: 'used.ctrl-len', detail: `queue ${this.index}: control head ${e.id} completed with len ${e.len}, not 1` };
      this.lastAck = ack;
      if (ack !== 0 && ack !== 1) return { code: 'ctrl.ack-invalid', detail: `queue ${this.index}: control head ${e.id} acked ${ack}` };
    }
    return null;
  }

  /**
   * Raw postings (broken chains, stale heads re-exposed by an index jump) may point at descriptors
   * and indirect tables the driver rewrites afterwards for other chains; the device reads them when
   * it pops. So, before each guard check, their grant — and, once a raw posting exists on the
   * queue, every posting's grant — also takes what the table says now (the union: a chain popped
   * earlier keeps what it was granted then). Found by seed 34: a stale TABLE_SET chain's ack
   * buffer overlapped a new chain's indirect table, whose next descriptor then pointed elsewhere.
   */
  refreshRaw(): void {
    if (this.packed) return; // packed postings are granted what they were written with (see the top)
    for (const list of this.byHead.values()) {
      for (const p of list) {
        // Once a raw posting exists on this queue, a well-formed posting's descriptors or indirect
        // table may lie in a buffer the raw one granted (a stale head re-exposed by an index bump
        // points at buffers the driver has reused): the device may legitimately overwrite them and
        // then follow them. So every posting's grant takes what the table says now.
        if ((p.kind !== 'raw' && !this.rawSeen) || p.head >= this.ring.size) continue;
        for (const [a, l] of this.walk(p.head)) {
          if (p.ranges.some(([x, y]) => x === a && y === l)) continue;
          p.ranges.push([a, l]);
          this.memory.grant(a, l);
        }
      }
    }
  }

  /** The driver forgets everything (device reset): grants go back. */
  clear(): void {
    for (const list of this.byHead.values()) for (const p of list) for (const [a, l] of p.ranges) this.memory.revoke(a, l);
    this.byHead.clear();
    this.count = 0;
  }

  private overlapsRing(a: number, l: number): boolean {
    const r = this.ring;
    const areas: [number, number][] = r instanceof PackedDriverRing ? [
      [r.descRing, 16 * r.size],
      [r.driverEvent, 4],
      [r.deviceEvent, 4],
    ] : [
      [r.descTable, 16 * r.size],
      [r.availRing, 6 + 2 * r.size],
      [r.usedRing, 6 + 8 * r.size],
    ];
    return areas.some(([s, n]) => a < s + n && s < a + l);
  }

  /** Writable ranges reachable from `head` in the table as it stands. */
  private walk(head: number): [number, number][] {
    const m = this.memory.driver;
    const size = this.ring.size;
    const ring = this.ring as DriverRing;
    const out: [number, number][] = [];
    const seen = new Set<number>();
    let i = head;
    while (i < size && !seen.has(i)) {
      seen.add(i);
      const at = ring.descAddr(i);
      const addr = m.readU64(at);
      const len = m.readU32(at + 8);
      const flags = m.readU16(at + 12);
      const next = m.readU16(at + 14);
      if ((flags & F_INDIRECT) !== 0) this.walkTable(addr, len, out);
      else if ((flags & F_WRITE) !== 0) this.push(out, addr, len);
      if ((flags & F_NEXT) === 0) break;
      i = next;
    }
    return out;
  }

  walkTable(addr: bigint, len: number, out: [number, number][]): void {
    const m = this.memory.driver;
    const base = Number(addr);
    const n = Math.min(Math.floor(len / 16), WALK_TABLE_MAX);
    if (addr >= BigInt(this.memory.size) || n === 0 || !m.contains(base, n * 16)) return;
    const seen = new Set<number>();
    let i = 0;
    while (i < n && !seen.has(i)) {
      seen.add(i);
      const at = base + 16 * i;
      const a = m.readU64(at);
      const l = m.readU32(at + 8);
      const flags = m.readU16(at + 12);
      const next = m.readU16(at + 14);
      if ((flags & F_WRITE) !== 0 && (flags & F_INDIRECT) === 0) this.push(out, a, l);
      if ((flags & F_NEXT) === 0) break;
      i = next;
    }
  }

  push(out: [number, number][], addr: bigint, len: number): void {
    if (len === 0 || addr >= BigInt(this.memory.size)) return;
    const a = Number(addr);
    out.push([a, Math.min(len, this.memory.size - a)]);
  }

  /** Completed elements the driver has not taken yet, taken now. */
  take(): UsedEntry[] {
    return this.ring.takeUsed();
  }
}
