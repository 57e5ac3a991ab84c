// The scripted guest's neighbour entry (lib/driver/neighbour.ts) on sinon's fake clock: the
// broadcast schedule and its backoff, reachable → stale → delay → probe, expiry and refresh,
// following a new MAC, locktime, and a peer that answers late.
import { expect } from 'chai';
import sinon from 'sinon';
import { Neighbour } from '../../../lib/driver/neighbour.js';

const OLD = Uint8Array.of(0x02, 0, 0, 0, 0, 0x0a);
const NEW = Uint8Array.of(0x02, 0, 0, 0, 0, 0x0b);
const hex = (m: Uint8Array | null): string | null => (m === null ? null : Buffer.from(m).toString('hex'));

describe('lib/driver/neighbour', () => {
  let clock: sinon.SinonFakeTimers;
  /** [ms since start, 'broadcast' | unicast MAC hex] of every who-has sent. */
  let sent: [number, string][];
  let n: Neighbour;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
    sent = [];
    // random 0.5: reachable time = base exactly (30 s).
    n = new Neighbour({ solicit: (to) => sent.push([Date.now() - 1_000_000, to === null ? 'broadcast' : hex(to)!]), random: () => 0.5 });
  });

  afterEach(() => {
    n.close();
    clock.restore();
  });

  it('broadcasts_three_requests_a_second_apart_then_backs_off_to_at_most_eight_seconds', () => {
    expect(n.resolve()).to.equal(null);
    expect(n.state).to.equal('incomplete');
    clock.tick(2999);
    expect(n.state).to.equal('incomplete');
    clock.tick(1);
    expect(n.state).to.equal('failed');
    clock.tick(40_000 - 3000);
    expect(sent.map(([t]) => t)).to.deep.equal([0, 1000, 2000, 4000, 8000, 16_000, 24_000, 32_000, 40_000]);
    expect(sent.every(([, to]) => to === 'broadcast')).to.equal(true);
    expect(n.resolve(), 'no MAC while failed').to.equal(null);
    expect(n.noAnswerMs()).to.equal(40_000);
    expect(n.stats.broadcastRequests).to.equal(9);
  });

  it('resolve_while_incomplete_sends_nothing_more', () => {
    n.resolve();
    for (let i = 0; i < 50; i++) {
      n.resolve();
      clock.tick(20);
    }
    expect(sent).to.have.length(2); // t=0 and t=1000 only
  });

  it('a_late_peer_is_used_as_soon_as_its_reply_arrives', () => {
    n.resolve();
    clock.tick(9000); // five requests unanswered, failed
    expect(n.state).to.equal('failed');
    n.heard(OLD, 'solicited');
    expect(n.state).to.equal('reachable');
    expect(hex(n.resolve())).to.equal(hex(OLD));
    expect(n.noAnswerMs()).to.equal(null);
    const before = sent.length;
    clock.tick(20_000);
    expect(sent.length, 'no request while reachable').to.equal(before);
  });

  it('a_request_from_the_peer_resolves_the_entry_as_stale_and_use_starts_the_delay', () => {
    n.resolve();
    n.heard(OLD, 'unsolicited');
    expect(n.state).to.equal('stale');
    expect(hex(n.resolve())).to.equal(hex(OLD));
    expect(n.state).to.equal('delay');
  });

  it('reachable_expires_to_stale_after_the_reachable_time_without_confirmation', () => {
    expect(n.reachableMs).to.equal(30_000);
    n.resolve();
    n.heard(OLD, 'solicited');
    clock.tick(29_999);
    expect(n.state).to.equal('reachable');
    clock.tick(1);
    expect(n.state).to.equal('stale');
    expect(hex(n.mac)).to.equal(hex(OLD));
  });

  it('confirmations_keep_the_entry_reachable', () => {
    n.resolve();
    n.heard(OLD, 'solicited');
    for (let i = 0; i < 100; i++) {
      clock.tick(1000);
      n.confirm(OLD); // echo replies from the peer
    }
    expect(n.state).to.equal('reachable');
    expect(sent).to.have.length(1);
    n.confirm(NEW); // from another MAC: no proof for this entry
    clock.tick(30_000);
    expect(n.state).to.equal('stale');
  });

  it('stale_in_use_is_reprobed_by_unicast_after_five_seconds_and_refreshed_by_the_answer', () => {
    n.resolve();
    n.heard(OLD, 'solicited');
    clock.tick(30_000);
    expect(n.state).to.equal('stale');
    sent = [];
    const t0 = Date.now() - 1_000_000;
    expect(hex(n.resolve())).to.equal(hex(OLD));
    expect(n.state).to.equal('delay');
    clock.tick(4999);
    expect(sent).to.deep.equal([]);
    clock.tick(1);
    expect(n.state).to.equal('probe');
    expect(sent).to.deep.equal([[t0 + 5000, hex(OLD)]]);
    expect(hex(n.resolve()), 'pings keep going to the known MAC while probing').to.equal(hex(OLD));
    n.heard(OLD, 'solicited');
    expect(n.state).to.equal('reachable');
  });

  it('delay_ends_reachable_without_a_probe_when_confirmed_meanwhile', () => {
    n.resolve();
    n.heard(OLD, 'solicited');
    clock.tick(30_000);
    sent = [];
    n.resolve();
    clock.tick(1000);
    n.confirm(OLD);
    clock.tick(4000);
    expect(n.state).to.equal('reachable');
    expect(sent).to.deep.equal([]);
  });

  it('an_unanswered_probe_falls_back_to_broadcast_and_finds_the_new_mac', () => {
    n.resolve();
    n.heard(OLD, 'solicited');
    clock.tick(30_000);
    sent = [];
    n.resolve();
    clock.tick(5000 + 3000); // three unicast probes, no answer
    expect(sent.map(([, to]) => to)).to.deep.equal([hex(OLD), hex(OLD), hex(OLD), 'broadcast']);
    expect(n.state).to.equal('incomplete');
    expect(n.resolve()).to.equal(null);
    expect(n.noAnswerMs()).to.equal(3000);
    n.heard(NEW, 'solicited');
    expect(hex(n.resolve())).to.equal(hex(NEW));
    expect(n.state).to.equal('reachable');
  });

  it('a_gratuitous_arp_with_a_new_mac_is_followed_at_once', () => {
    n.resolve();
    n.heard(OLD, 'solicited');
    n.heard(NEW, 'gratuitous'); // even within locktime
    expect(hex(n.resolve())).to.equal(hex(NEW));
    expect(n.stats.macChanges).to.equal(1);
  });

  it('a_new_mac_in_a_reply_or_request_is_taken_after_locktime_and_ignored_within_it', () => {
    n.resolve();
    n.heard(OLD, 'solicited');
    clock.tick(500);
    n.heard(NEW, 'solicited'); // a second answer 0.5 s later: the first one wins
    expect(hex(n.mac)).to.equal(hex(OLD));
    expect(n.state).to.equal('stale');
    clock.tick(600);
    n.heard(NEW, 'unsolicited'); // the peer asks for us from its new MAC
    expect(hex(n.mac)).to.equal(hex(NEW));
    expect(n.state).to.equal('stale');
    expect(n.stats.macChanges).to.equal(1);
  });

  it('the_same_mac_in_a_request_leaves_a_reachable_entry_alone', () => {
    n.resolve();
    n.heard(OLD, 'solicited');
    clock.tick(2000);
    n.heard(OLD, 'unsolicited');
    expect(n.state).to.equal('reachable');
  });

  it('close_stops_the_timers', () => {
    n.resolve();
    n.close();
    clock.tick(60_000);
    expect(sent).to.have.length(1);
    expect(clock.countTimers()).to.equal(0);
  });

  it('bad_parameters_are_refused', () => {
    expect(() => new Neighbour({ solicit: () => undefined, params: { retransMs: 0 } })).to.throw(RangeError, /retransMs/);
  });
});
