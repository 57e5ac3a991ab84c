// One IPv4 neighbour entry as Linux keeps it (no VIRTIO section: ARP, RFC 826; the state machine
// is RFC 4861 §7.3.2's, which Linux's neighbour core uses for ARP too; the retry backoff is RFC
// 7048's idea). The scripted guest keeps one for its peer.
//
//   none ──resolve()──▶ incomplete ── broadcast who-has every retransMs, mcastSolicit times
//                          │  no answer ──▶ failed ── broadcast again after 2, 4, 8, 8, … × retransMs
//                          ▼  (any ARP from the peer, whatever the state)
//   reachable ──reachableMs without confirmation──▶ stale ──resolve()──▶ delay
//   delay ──confirmed within delayFirstProbeMs──▶ reachable, else ──▶ probe
//   probe ── unicast who-has to the known MAC every retransMs, ucastSolicit times ──▶ reachable on
//            an answer, else back to incomplete (broadcast: the peer may have a new MAC)
//
// Heard from the peer (the responder calls heard()): a reply sent to our MAC makes the entry
// reachable; a request, a broadcast reply or a gratuitous ARP makes it stale when it brings a new
// MAC (or resolves an entry that had none) and leaves a valid entry with the same MAC alone. A new
// MAC within locktimeMs of the last update is not taken unless gratuitous (Linux's locktime: the
// first answer wins when two hosts answer). confirm() is iputils ping's MSG_CONFIRM: an echo reply
// from the entry's MAC proves it still reachable.
// Linux defaults: retrans 1 s, mcast/ucast solicit 3, base reachable 30 s (the entry uses a random
// time in [15, 45) s), delay first probe 5 s, locktime 1 s. Linux itself starts over on the next
// packet after FAILED; here the retries are spaced out instead (at most maxRetransMs apart), so a
// peer that comes up late is found without a request every second forever.

import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

export type NeighbourState = 'none' | 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed';

export interface NeighbourParams {
  retransMs: number;
  mcastSolicit: number;
  ucastSolicit: number;
  baseReachableMs: number;
  delayFirstProbeMs: number;
  locktimeMs: number;
  /** Longest gap between two broadcast requests once the entry failed. */
  maxRetransMs: number;
}

export const LINUX_NEIGHBOUR_DEFAULTS: Readonly<NeighbourParams> = {
  retransMs: 1000,
  mcastSolicit: 3,
  ucastSolicit: 3,
  baseReachableMs: 30_000,
  delayFirstProbeMs: 5000,
  locktimeMs: 1000,
  maxRetransMs: 8000,
};

/** How an ARP from the peer reached us. */
export type HeardAs = 'solicited' | 'unsolicited' | 'gratuitous';

export interface NeighbourOptions {
  /** Sends a who-has for the peer: broadcast when `to` is null, else unicast to `to`. */
  solicit: (to: Uint8Array | null) => void;
  clock?: Clock;
  params?: Partial<NeighbourParams>;
  /** In [0, 1): picks the reachable time in [base/2, 3·base/2) as Linux does (default Math.random). */
  random?: () => number;
}

export interface NeighbourStats {
  broadcastRequests: number;
  unicastRequests: number;
  /** The peer's MAC changed under a valid entry. */
  macChanges: number;
}

export class Neighbour {
  readonly params: Readonly<NeighbourParams>;
  /** ms an entry stays reachable after a confirmation. */
  readonly reachableMs: number;
  readonly stats: NeighbourStats = { broadcastRequests: 0, unicastRequests: 0, macChanges: 0 };
  private st: NeighbourState = 'none';
  private readonly macBytes = new Uint8Array(6);
  private hasMac = false;
  private probes = 0;
  private retryGap = 0;
  private updated = 0;
  private confirmed = 0;
  private unansweredSince: number | null = null;
  private timer: unknown = null;
  private readonly clock: Clock;
  private readonly solicit: (to: Uint8Array | null) => void;
  private readonly onTimer = (): void => this.expire();

  constructor(options: NeighbourOptions) {
    this.params = { ...LINUX_NEIGHBOUR_DEFAULTS, ...options.params };
    const p = this.params;
    for (const [k, v] of Object.entries(p)) {
      if (!Number.isFinite(v) || v < 1) throw new RangeError(`Neighbour: ${k} must be a number >= 1, got ${v}`);
    }
    this.clock = options.clock ?? systemClock;
    this.solicit = options.solicit;
    const r = (options.random ?? Math.random)();
    this.reachableMs = Math.floor(p.baseReachableMs / 2 + Math.min(Math.max(r, 0), 0.999999) * p.baseReachableMs);
  }

  get state(): NeighbourState {
    return this.st;
  }

  /** The peer's MAC as known (also in probe), or null. A view: copy it to keep it. */
  get mac(): Uint8Array | null {
    return this.hasMac && this.st !== 'incomplete' && this.st !== 'failed' && this.st !== 'none' ? this.macBytes : null;
  }

  /**
   * A packet wants to go to the peer: the MAC to send it to, or null while unresolved (resolution
   * is started if it was not under way). Using a stale entry starts the delay before a probe.
   */
  resolve(): Uint8Array | null {
    switch (this.st) {
      case 'none':
        this.startIncomplete();
        return null;
      case 'incomplete':
      case 'failed':
        return null;
      case 'stale':
        this.st = 'delay';
        this.arm(this.params.delayFirstProbeMs);
        return this.macBytes;
      default:
        return this.macBytes;
    }
  }

  /** An ARP whose sender is the peer, with sender MAC `mac` (read at once, not kept). */
  heard(mac: Uint8Array, how: HeardAs): void {
    const now = this.clock.now();
    this.unansweredSince = null;
    const valid = this.st === 'reachable' || this.st === 'stale' || this.st === 'delay' || this.st === 'probe';
    const same = this.hasMac && sameMac(this.macBytes, mac);
    if (valid && !same && how !== 'gratuitous' && now - this.updated < this.params.locktimeMs) {
      // Another answer right after the last update: keep the first MAC, but trust it less.
      if (this.st === 'reachable') {
        this.st = 'stale';
        this.disarm();
      }
      return;
    }
    if (!same) {
      if (valid) this.stats.macChanges++;
      this.macBytes.set(mac.subarray(0, 6));
      this.hasMac = true;
    }
    if (how === 'solicited') {
      this.confirmed = now;
      this.enter('reachable', now);
    } else if (!same || !valid) {
      this.enter('stale', now);
    }
  }

  /** Proof from above that the peer answers at `mac` (an echo reply from it). */
  confirm(mac: Uint8Array): void {
    if (!this.hasMac || !sameMac(this.macBytes, mac)) return;
    if (this.st === 'reachable' || this.st === 'stale' || this.st === 'delay' || this.st === 'probe') this.confirmed = this.clock.now();
  }

  /** How long requests have gone unanswered (since the first unanswered one), or null. */
  noAnswerMs(): number | null {
    return this.unansweredSince === null ? null : this.clock.now() - this.unansweredSince;
  }

  close(): void {
    this.disarm();
  }

  private enter(state: 'reachable' | 'stale', now: number): void {
    this.st = state;
    this.updated = now;
    this.probes = 0;
    if (state === 'reachable') this.arm(this.reachableMs);
    else this.disarm();
  }

  private startIncomplete(): void {
    this.st = 'incomplete';
    this.probes = 0;
    this.send(null);
    this.arm(this.params.retransMs);
  }

  private send(to: Uint8Array | null): void {
    this.probes++;
    if (to === null) this.stats.broadcastRequests++;
    else this.stats.unicastRequests++;
    if (this.unansweredSince === null) this.unansweredSince = this.clock.now();
    this.solicit(to);
  }

  private expire(): void {
    this.timer = null;
    const p = this.params;
    const now = this.clock.now();
    switch (this.st) {
      case 'incomplete':
        if (this.probes < p.mcastSolicit) {
          this.send(null);
          this.arm(p.retransMs);
        } else {
          // The last request went out retransMs ago: the first retry comes 2 × retransMs after it.
          this.st = 'failed';
          this.retryGap = Math.min(2 * p.retransMs, p.maxRetransMs);
          this.arm(this.retryGap - p.retransMs);
        }
        break;
      case 'failed':
        this.send(null);
        this.retryGap = Math.min(this.retryGap * 2, p.maxRetransMs);
        this.arm(this.retryGap);
        break;
      case 'reachable': {
        const left = this.confirmed + this.reachableMs - now;
        if (left > 0) this.arm(left);
        else this.st = 'stale';
        break;
      }
      case 'delay':
        if (now - this.confirmed < p.delayFirstProbeMs) {
          this.st = 'reachable';
          this.arm(this.confirmed + this.reachableMs - now);
        } else {
          this.st = 'probe';
          this.probes = 0;
          this.send(this.macBytes);
          this.arm(p.retransMs);
        }
        break;
      case 'probe':
        if (this.probes < p.ucastSolicit) {
          this.send(this.macBytes);
          this.arm(p.retransMs);
        } else {
          this.startIncomplete();
        }
        break;
      default:
        break;
    }
  }

  private arm(ms: number): void {
    this.disarm();
    this.timer = this.clock.setTimeout(this.onTimer, Math.max(ms, 1));
  }

  private disarm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}
