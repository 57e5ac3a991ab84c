import { expect } from 'chai';
import { Poller } from '../../../lib/host/poller.js';
import type { PollClient } from '../../../lib/host/poller.js';
import { closeFd, eventFd, readFd, writeFd } from '../../../lib/host/libc.js';
import { POLLIN } from '../../../lib/host/structs.js';
import { openFds, waitFor } from '../../support/netns.js';

/** An eventfd as a poll client: readable while its counter is non-zero. */
class EventClient implements PollClient {
  readonly fd = eventFd();
  wanted = POLLIN;
  reads = 0;
  readyCalls = 0;
  /** Thrown from ready() (before reading: the fd stays readable) or interest() when set. */
  throwFromReady: Error | null = null;
  throwFromInterest: Error | null = null;
  /** What pollFailed() was told. */
  readonly failures: unknown[] = [];
  private readonly buf = new Uint8Array(8);
  interest(): number {
    if (this.throwFromInterest !== null) throw this.throwFromInterest;
    return this.wanted;
  }
  ready(revents: number): void {
    this.readyCalls++;
    if (this.throwFromReady !== null) throw this.throwFromReady;
    if ((revents & POLLIN) !== 0 && readFd(this.fd, this.buf) === 8) this.reads++;
  }
  pollFailed(error: unknown): void {
    this.failures.push(error);
  }
  signal(): void {
    const one = new Uint8Array(8);
    one[0] = 1;
    writeFd(this.fd, one);
  }
  close(): void {
    closeFd(this.fd);
  }
}

describe('lib/host/poller', () => {
  it('one_loop_serves_every_client_and_stops_with_its_eventfd_closed_after_the_last_leaves', async () => {
    const fds = openFds('eventfd');
    const p = new Poller();
    const a = new EventClient();
    const b = new EventClient();
    p.add(a);
    p.add(b);
    expect(p.running).to.equal(true);
    a.signal();
    await waitFor('a to be read', () => a.reads === 1);
    b.signal();
    await waitFor('b to be read', () => b.reads === 1);
    expect(a.reads).to.equal(1);
    await p.remove(a);
    await p.remove(b);
    await waitFor('the loop to stop', () => !p.running);
    a.close();
    b.close();
    expect(openFds('eventfd')).to.equal(fds);
  });

  it('a_client_without_interest_is_not_polled_until_update', async () => {
    const p = new Poller();
    const c = new EventClient();
    c.wanted = 0;
    p.add(c);
    c.signal();
    const turns = p.turns;
    // Wake the loop so it rebuilds its set: still no interest, so the fd stays unread.
    p.update();
    await waitFor('a turn without the client', () => p.turns > turns);
    expect(c.reads).to.equal(0);
    c.wanted = POLLIN;
    p.update();
    await waitFor('the client read after update()', () => c.reads === 1);
    await p.remove(c);
    c.close();
  });

  it('remove_resolves_only_after_the_poll_in_flight_returned', async () => {
    const p = new Poller();
    const c = new EventClient();
    p.add(c);
    expect(p.running).to.equal(true);
    await p.remove(c);
    // The poll that held c.fd has returned: closing it now cannot race a worker thread.
    c.close();
    await waitFor('the loop to stop', () => !p.running);
  });

  it('a_throwing_client_is_dropped_and_reported_and_the_others_keep_being_served', async () => {
    const p = new Poller();
    const bad = new EventClient();
    const good = new EventClient();
    bad.throwFromReady = new Error('a bug in one backend');
    p.add(bad);
    p.add(good);
    bad.signal();
    await waitFor('the failure report', () => bad.failures.length === 1);
    expect(bad.failures[0]).to.equal(bad.throwFromReady);
    expect(p.size, 'the failed client left the loop').to.equal(1);
    // Its fd stays readable (ready() threw before reading), yet it is never offered again.
    for (let i = 1; i <= 3; i++) {
      good.signal();
      await waitFor(`good read ${i}`, () => good.reads === i);
    }
    expect(bad.readyCalls).to.equal(1);
    expect(bad.failures).to.have.length(1);
    await p.remove(bad); // the owner's close(): harmless after the failure
    await p.remove(good);
    bad.close();
    good.close();
  });

  it('a_client_whose_interest_throws_is_dropped_and_reported_and_the_others_keep_being_served', async () => {
    const p = new Poller();
    const good = new EventClient();
    const bad = new EventClient();
    p.add(good);
    bad.throwFromInterest = new Error('a bug in interest()');
    p.add(bad); // wakes the poll in flight; the next turn asks bad for its interest
    await waitFor('the failure report', () => bad.failures.length === 1);
    expect(bad.failures[0]).to.equal(bad.throwFromInterest);
    good.signal();
    await waitFor('good read', () => good.reads === 1);
    expect(p.size).to.equal(1);
    await p.remove(good);
    good.close();
    bad.close();
  });
});
