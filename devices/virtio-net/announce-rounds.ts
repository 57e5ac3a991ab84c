// Repeated self-announcement, as QEMU's announce timer does it (QEMU's `announce-self` command and
// its migration parameters `announce-initial`, `-max`, `-rounds`, `-step`, all in milliseconds):
// the first round at once, round k + 1 after `min(initial + (k − 1) × step, max)` ms.
//
// Two ways to announce (VIRTIO 1.2 §5.1.6.5.4):
// - the guest announces (GUEST_ANNOUNCE with CTRL_VQ): a round sets VIRTIO_NET_S_ANNOUNCE with a
//   config interrupt; the next round is scheduled only when the driver answered ANNOUNCE_ACK (QEMU
//   steps its timer on the ack, so a guest that never acks is asked once);
// - the device announces for it (a gratuitous ARP from the guest's MAC, announce.ts): the rounds
//   follow the timer alone.
// A new announcement replaces one in progress; a device reset ends it.

import type { Timers } from '../../lib/base/schedule.js';

/** QEMU's parameters (ms, rounds). */
export interface AnnounceParams {
  readonly initial: number;
  readonly max: number;
  readonly rounds: number;
  readonly step: number;
}

/** QEMU's defaults (migration parameters announce-initial 50, -max 550, -rounds 5, -step 100). */
export const QEMU_ANNOUNCE_DEFAULTS: AnnounceParams = Object.freeze({ initial: 50, max: 550, rounds: 5, step: 100 });

/** One announcement (the device's default after a restore, and `announce()` without parameters). */
export const ONE_ROUND: AnnounceParams = Object.freeze({ ...QEMU_ANNOUNCE_DEFAULTS, rounds: 1 });

/** Bounds QEMU checks (migration parameters): delays up to 100 s, up to 1000 rounds. */
const DELAY_MAX = 100_000;
const ROUNDS_MAX = 1000;

/** Checks `announce` options (a bad value throws naming it); missing fields take QEMU's defaults. */
export function checkAnnounceParams(p: Partial<AnnounceParams> | undefined, option: string): AnnounceParams {
  if (p === undefined) return QEMU_ANNOUNCE_DEFAULTS;
  if (p === null || typeof p !== 'object') throw new TypeError(`${option} must be an object { initial?, max?, rounds?, step? }`);
  const unknown = Object.keys(p).filter((k) => !['initial', 'max', 'rounds', 'step'].includes(k));
  if (unknown.length > 0) throw new TypeError(`${option} has unknown key(s) ${unknown.join(', ')}; allowed: initial, max, rounds, step`);
  const out = { ...QEMU_ANNOUNCE_DEFAULTS, ...p };
  for (const k of ['initial', 'max', 'step'] as const) {
    const v = out[k];
    if (!Number.isInteger(v) || v < 1 || v > DELAY_MAX) throw new RangeError(`${option}.${k} must be an integer number of ms in 1..${DELAY_MAX}, got ${String(v)}`);
  }
  if (!Number.isInteger(out.rounds) || out.rounds < 1 || out.rounds > ROUNDS_MAX) {
    throw new RangeError(`${option}.rounds must be an integer in 1..${ROUNDS_MAX}, got ${String(out.rounds)}`);
  }
  if (out.initial > out.max) throw new RangeError(`${option}.initial (${out.initial}) must not exceed max (${out.max})`);
  return out;
}

export interface AnnounceHost {
  /** One round; returns 'guest' (waits for ANNOUNCE_ACK), 'device' (sent), or 'none' (cannot: ends). */
  round(): 'guest' | 'device' | 'none';
  readonly timers: Timers;
}

export class AnnounceRounds {
  private params: AnnounceParams = QEMU_ANNOUNCE_DEFAULTS;
  /** Rounds left after the current one. */
  private left = 0;
  /** Rounds done in this announcement. */
  private done = 0;
  private timer: unknown = null;
  /** The last round was the guest's: the next waits for its ack. */
  private awaitingAck = false;

  constructor(private readonly host: AnnounceHost) {}

  /** Rounds still to come (0 when none is in progress). */
  get pending(): number {
    return this.left;
  }

  /** Starts an announcement of `params.rounds` rounds, the first now; false when none could run. */
  start(params: AnnounceParams): boolean {
    this.cancel();
    this.params = params;
    this.left = params.rounds;
    this.done = 0;
    return this.run() !== 'none';
  }

  /** The driver answered ANNOUNCE_ACK: the next round is scheduled (QEMU's step on the ack). */
  acked(): void {
    if (!this.awaitingAck) return;
    this.awaitingAck = false;
    this.schedule();
  }

  /** Ends the announcement in progress (device reset, a new one). */
  cancel(): void {
    if (this.timer !== null) this.host.timers.clear(this.timer);
    this.timer = null;
    this.left = 0;
    this.awaitingAck = false;
  }

  private run(): 'guest' | 'device' | 'none' {
    this.left--;
    this.done++;
    const how = this.host.round();
    if (how === 'none') {
      this.cancel();
      return how;
    }
    if (how === 'guest') this.awaitingAck = true;
    else this.schedule();
    return how;
  }

  private schedule(): void {
    if (this.left <= 0) {
      this.left = 0;
      return;
    }
    const p = this.params;
    const delay = Math.min(p.initial + (this.done - 1) * p.step, p.max);
    this.timer = this.host.timers.set(() => {
      this.timer = null;
      this.run();
    }, delay);
  }
}
