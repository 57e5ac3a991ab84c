// One poll(2) loop for every host backend fd (no VIRTIO section: the host side; poll(2)).
//
// Measured on these machines: per-frame fs.read reaches ~10% of the kernel's rate and idle reads
// hang process.exit; one poll() over all fds on a koffi worker thread (one threadpool thread in
// total) followed by non-blocking drains of at most 64 frames per fd per turn matches a C loop.
//
// The poll set is rebuilt at the start of each turn from each client's current interest
// (POLLIN while it wants frames, POLLOUT while a write is blocked); an eventfd in slot 0 wakes
// the pending poll when interest changes or a client leaves. When the last client leaves, the
// loop stops and closes its eventfd: nothing is left that keeps the process alive.
// A client's fd is closed only after `remove()` resolves, i.e. after any poll that might still
// hold it returned (closing an fd another thread polls is a race on fd reuse).
//
// One client's exception never reaches another client or the process: a client whose ready() or
// interest() throws leaves the loop at once (its fd is polled no more, the others keep being
// served) and is told through its own pollFailed(), which reports on the backend's error path.

import { closeFd, eventFd, pollAsync, readFd, writeFd } from './libc.js';
import { POLLERR, POLLHUP, POLLNVAL, PollFdTable } from './structs.js';

export interface PollClient {
  readonly fd: number;
  /** The events wanted now (POLLIN / POLLOUT, 0 for none). */
  interest(): number;
  /** Called with the revents of a turn in which the fd was ready. */
  ready(revents: number): void;
  /**
   * ready() or interest() threw `error` (a bug above the loop): the client has left the loop and
   * its fd is polled no more. The client reports it on its own error path and closes the fd in its
   * own time (`remove()` still resolves as usual).
   */
  pollFailed(error: unknown): void;
}

/** Longest single poll; the eventfd normally wakes it sooner. Bounds the wait if a wake is lost. */
const POLL_TIMEOUT_MS = 1000;
/** Largest poll set (slot 0 is the eventfd). */
const MAX_CLIENTS = 255;
export const POLL_ERROR_MASK = POLLERR | POLLHUP | POLLNVAL;

export class Poller {
  private static instance: Poller | null = null;
  /** The process-wide loop every backend shares. */
  static shared(): Poller {
    return (Poller.instance ??= new Poller());
  }

  private readonly clients = new Set<PollClient>();
  private readonly table = new PollFdTable(MAX_CLIENTS + 1);
  /** Clients in table slots 1..n for the poll in flight. */
  private readonly slots: (PollClient | null)[] = new Array<PollClient | null>(MAX_CLIENTS + 1).fill(null);
  private wakeFd = -1;
  private inFlight = false;
  /** done() is calling clients: a kick now waits for the turn done() starts when it ends. */
  private dispatching = false;
  private readonly wakeBuf = new Uint8Array(8);
  private readonly drainBuf = new Uint8Array(8);
  private waiters: (() => void)[] = [];
  /** Turns run (for tests and stats). */
  turns = 0;
  /** Clients dropped because their ready() or interest() threw. */
  clientFailures = 0;

  constructor() {
    new DataView(this.wakeBuf.buffer).setBigUint64(0, 1n, true);
  }

  get size(): number {
    return this.clients.size;
  }

  get running(): boolean {
    return this.inFlight;
  }

  add(c: PollClient): void {
    if (this.clients.has(c)) return;
    if (this.clients.size >= MAX_CLIENTS) throw new RangeError(`Poller: at most ${MAX_CLIENTS} backend fds`);
    this.clients.add(c);
    this.kick();
  }

  /** Removes a client; resolves once no poll in flight can still reference its fd. */
  remove(c: PollClient): Promise<void> {
    this.clients.delete(c);
    if (!this.inFlight) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.wake();
    return done;
  }

  /** A client's interest changed: make the next turn see it. */
  update(): void {
    this.kick();
  }

  private kick(): void {
    if (this.inFlight) this.wake();
    else if (!this.dispatching) this.turn();
  }

  private wake(): void {
    if (this.wakeFd >= 0) writeFd(this.wakeFd, this.wakeBuf, 8);
  }

  private turn(): void {
    if (this.inFlight) return;
    if (this.clients.size === 0) {
      this.stop();
      return;
    }
    if (this.wakeFd < 0) this.wakeFd = eventFd();
    const t = this.table;
    t.set(0, this.wakeFd, 0x1);
    let n = 1;
    let failed: [PollClient, unknown][] | null = null;
    for (const c of this.clients) {
      let ev: number;
      try {
        ev = c.interest();
      } catch (e) {
        (failed ??= []).push([c, e]);
        continue;
      }
      if (ev === 0) continue;
      t.set(n, c.fd, ev);
      this.slots[n] = c;
      n++;
    }
    if (failed !== null) for (const [c] of failed) this.clients.delete(c);
    if (this.clients.size === 0) {
      this.stop();
    } else {
      this.inFlight = true;
      this.turns++;
      pollAsync(t.bytes, n, POLL_TIMEOUT_MS, (ready) => this.done(ready, n));
    }
    // Reported once the poll is in flight (or the loop stopped): a report that calls update()
    // only wakes it.
    if (failed !== null) for (const [c, e] of failed) this.report(c, e);
  }

  /** Drops a client whose callback threw and tells it through its own error path. */
  private drop(c: PollClient, error: unknown): void {
    this.clients.delete(c);
    this.report(c, error);
  }

  private report(c: PollClient, error: unknown): void {
    this.clientFailures++;
    try {
      c.pollFailed(error);
    } catch (e) {
      // Its error path is broken too: a warning on the process, never an exception into the loop.
      process.emitWarning(`Poller: fd ${c.fd} failed (${String(error)}) and its pollFailed() threw: ${String(e)}`, 'PollClientWarning');
    }
  }

  private done(ready: number, n: number): void {
    this.inFlight = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    if (ready > 0) {
      if (this.table.revents(0) !== 0) while (readFd(this.wakeFd, this.drainBuf, 8) > 0);
      this.dispatching = true;
      for (let i = 1; i < n; i++) {
        const c = this.slots[i]!;
        this.slots[i] = null;
        const rev = this.table.revents(i);
        if (rev !== 0 && this.clients.has(c)) {
          try {
            c.ready(rev);
          } catch (e) {
            // A client's bug fails that client only: the others in this turn are still served.
            this.drop(c, e);
          }
        }
      }
      this.dispatching = false;
    } else {
      // Timeout, or -1 (EINTR or a transient failure): clear the slots and poll again.
      for (let i = 1; i < n; i++) this.slots[i] = null;
    }
    this.turn();
  }

  private stop(): void {
    if (this.wakeFd >= 0) {
      const fd = this.wakeFd;
      this.wakeFd = -1;
      closeFd(fd);
    }
  }
}
