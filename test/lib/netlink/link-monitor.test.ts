// The rtnetlink link monitor on the real kernel: RTNLGRP_LINK notifications for a watched veth end
// arrive through the shared poll loop as 'changed' (carrier with IFF_UP | IFF_LOWER_UP), a move to
// another namespace as 'unobserved' (RTM_DELLINK with IFLA_NEW_NETNSID), a deletion as 'deleted';
// the socket closes with the last watch. Waits are for notices, with deadlines (linkwatch may hold a
// carrier event up to a second; the machine may be loaded).

import { expect } from 'chai';
import { Netns, deleteLink, hostCleanups, linkName, run, trackLink, waitFor } from '../../support/netns.js';
import { LinkMonitor, carrierUp } from '../../../lib/netlink/link-monitor.js';
import type { LinkNotice } from '../../../lib/netlink/link-monitor.js';
import { Rtnetlink } from '../../../lib/netlink/rtnetlink.js';
import { Poller } from '../../../lib/host/poller.js';

const DEADLINE_MS = 5000;

describe('lib/netlink/link-monitor (real kernel)', function () {
  this.timeout(30_000);
  const cleanups = hostCleanups();

  it('a_watched_link_reports_carrier_changes_a_move_away_and_a_deletion', async () => {
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    const a = linkName('v');
    const b = linkName('v');
    run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    trackLink(a);
    trackLink(b);
    cleanups.push(() => deleteLink(a));
    cleanups.push(() => deleteLink(b));
    const rt = new Rtnetlink();
    cleanups.push(() => rt.close());
    const ia = rt.getLink(a).index;
    const ib = rt.getLink(b).index;

    const monitor = new LinkMonitor(new Poller());
    const seenA: LinkNotice[] = [];
    const seenB: LinkNotice[] = [];
    const unwatchA = monitor.watch(ia, (n) => seenA.push(n));
    const unwatchB = monitor.watch(ib, (n) => seenB.push(n));
    cleanups.push(() => unwatchA());
    cleanups.push(() => unwatchB());
    expect(monitor.open).to.equal(true);

    run('ip', ['link', 'set', b, 'up']);
    run('ip', ['link', 'set', a, 'up']); // both ends up: carrier on a
    await waitFor('carrier on the watched end', () => seenA.some((n) => n.kind === 'changed' && carrierUp(n.flags)), DEADLINE_MS);
    run('ip', ['link', 'set', b, 'down']); // the peer down: a loses carrier, stays IFF_UP
    await waitFor('carrier loss on the watched end', () => {
      const last = seenA.at(-1);
      return last !== undefined && last.kind === 'changed' && !carrierUp(last.flags);
    }, DEADLINE_MS);

    ns.adopt(b);
    await waitFor('the moved end to be unobserved', () => seenB.some((n) => n.kind === 'unobserved'), DEADLINE_MS);
    expect(seenB.some((n) => n.kind === 'deleted')).to.equal(false);

    deleteLink(a);
    await waitFor('the deletion', () => seenA.some((n) => n.kind === 'deleted'), DEADLINE_MS);
    expect(seenA.every((n) => n.index === ia)).to.equal(true); // only the watched link's notices
    expect(monitor.stats().foreign).to.equal(0);

    await unwatchA();
    expect(monitor.open).to.equal(true); // b is still watched
    await unwatchB();
    expect(monitor.open).to.equal(false);
  });
});
