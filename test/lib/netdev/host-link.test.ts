// A dead or unplugged host backend is never silent (issue #13 item 4), on real kernel objects:
// the host link (rtnetlink RTM_NEWLINK / RTM_DELLINK on RTNLGRP_LINK) and the fd's failure reach
// the guest as link down (config `status` without LINK_UP, a config change interrupt); a send on a
// failed fd is not 'sent'; a partial write is an error; every host error is counted and recorded
// whether or not anyone listens for 'host-error'.
//
// Waits are for events with deadlines (waitFor): a carrier change reaches rtnetlink through the
// kernel's linkwatch, which may hold a non-urgent event for up to a second, and the machine running
// this may be loaded — hence 5 s.

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetRig } from '../../support/net-rig.js';
import { NetStatus } from '../../../devices/virtio-net/constants.js';
import { Netns, deleteLink, hostCleanups, linkName, run, trackLink, waitFor, withNetnsFd } from '../../support/netns.js';
import { TapNetdev } from '../../../lib/netdev/tap-netdev.js';
import { MacvtapNetdev } from '../../../lib/netdev/macvtap-netdev.js';
import { FdNetdev } from '../../../lib/netdev/fd-netdev.js';
import { hasLinkState } from '../../../lib/netdev/netdev.js';
import { O_CLOEXEC, O_NONBLOCK, O_RDWR, openFile } from '../../../lib/host/libc.js';
import { Rtnetlink } from '../../../lib/netlink/rtnetlink.js';

const GUEST_MAC = '52:54:00:12:34:56';
const ISR_CONFIG = 2;
/** Deadline for a host link change to reach the guest (see the head comment). */
const LINK_DEADLINE_MS = 5000;
const FRAME = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x88, 0xb5, ...new Array<number>(46).fill(0)]);

/** FdNetdev over any fd: here a FIFO, whose non-blocking writes above PIPE_BUF can be partial. */
class FifoNetdev extends FdNetdev {
  constructor(fd: number) {
    super('fifo0', fd, 0);
  }
}

describe('lib/netdev host link and dead backends (real kernel)', function () {
  this.timeout(30_000);
  const cleanups = hostCleanups();

  function upTap(): TapNetdev {
    const tap = new TapNetdev({ id: 'tap0', ifname: linkName('t') });
    trackLink(tap.ifname);
    cleanups.push(() => deleteLink(tap.ifname));
    cleanups.push(() => tap.close());
    run('sysctl', ['-qw', `net.ipv6.conf.${tap.ifname}.disable_ipv6=1`]);
    run('ip', ['link', 'set', tap.ifname, 'up']);
    return tap;
  }

  it('deleting_the_tap_interface_takes_the_guest_link_down', async () => {
    const tap = upTap();
    expect(hasLinkState(tap)).to.equal(true);
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC });
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(NetStatus.LINK_UP);
    rig.readIsr();
    deleteLink(tap.ifname);
    await waitFor('the guest link to go down', () => !rig.device.linkUp, LINK_DEADLINE_MS);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(0);
    expect(rig.readIsr() & ISR_CONFIG).to.equal(ISR_CONFIG);
    expect(rig.device.stats().interrupts.config).to.equal(1);
    const link = tap.linkStatus();
    expect(link.up).to.equal(false);
    expect(link.downs).to.equal(1);
    expect(link.ups).to.equal(0);
    // Deleting an interface first sets it down (RTM_NEWLINK without IFF_UP), then RTM_DELLINK; the
    // fd fails too (POLLERR). Whichever the backend sees first took the link down; the failure follows.
    expect(['host-link', 'host-link-deleted', 'backend-failed']).to.include(link.last?.reason);
    await waitFor('the backend to fail', () => tap.hostErrors().count > 0, LINK_DEADLINE_MS);
    expect(tap.hostErrors().count).to.equal(1);
    expect(tap.linkStatus().downs).to.equal(1);
    expect(tap.send(FRAME)).to.equal('dropped');
    // The guest's frames are now completed unsent and counted, never black-holed as 'sent'.
    rig.send(FRAME);
    expect(rig.device.stats().tx.frames).to.equal(0);
    expect(rig.device.stats().tx.errors['link-down']).to.equal(1);
  });

  it('setting_the_macvtap_lower_device_down_takes_the_guest_link_down_and_up_again', async () => {
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    const rt = new Rtnetlink();
    cleanups.push(() => rt.close());
    const lower = linkName('l');
    withNetnsFd(ns, (fd) => rt.createVeth(lower, 'p0', { peerNetnsFd: fd }));
    trackLink(lower);
    cleanups.push(() => deleteLink(lower));
    const ifname = linkName('m');
    rt.createMacvtap(ifname, rt.getLink(lower).index, 'bridge');
    trackLink(ifname);
    for (const l of [lower, ifname]) run('sysctl', ['-qw', `net.ipv6.conf.${l}.disable_ipv6=1`]);
    rt.setUp(rt.getLink(lower).index, true);
    rt.setUp(rt.getLink(ifname).index, true);
    ns.ip(['link', 'set', 'p0', 'up']);
    await waitFor('carrier on the macvtap link', () => run('ip', ['link', 'show', ifname]).includes('LOWER_UP'), LINK_DEADLINE_MS);
    const netdev = new MacvtapNetdev({ id: 'mvt0', ifname });
    cleanups.push(() => netdev.close());
    const rig = new NetRig({ netdev, mac: GUEST_MAC });
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(NetStatus.LINK_UP);

    rt.setUp(rt.getLink(lower).index, false);
    await waitFor('the guest link to go down', () => !rig.device.linkUp, LINK_DEADLINE_MS);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(0);
    expect(netdev.linkStatus()).to.include({ up: false, downs: 1, ups: 0 });
    expect(netdev.linkStatus().last?.reason).to.equal('host-link');

    rt.setUp(rt.getLink(lower).index, true);
    await waitFor('the guest link to come back up', () => rig.device.linkUp, LINK_DEADLINE_MS);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(NetStatus.LINK_UP);
    expect(netdev.linkStatus()).to.include({ up: true, downs: 1, ups: 1 });
    expect(rig.device.stats().interrupts.config).to.equal(2);
    expect(netdev.hostErrors().count).to.equal(0); // a carrier change is not a host error
  });

  it('send_after_the_fd_failed_is_not_reported_sent', () => {
    const tap = upTap();
    deleteLink(tap.ifname); // the TAP's fd is detached: write(2) answers EBADFD from now on
    expect(tap.send(FRAME)).to.equal('dropped');
    expect(tap.linkUp).to.equal(false);
    expect(tap.send(FRAME)).to.equal('dropped'); // the failed backend stays failed
    const s = tap.stats();
    expect(s.txFrames).to.equal(0);
    expect(s.txErrors).to.equal(2);
    const log = tap.hostErrors();
    expect(log.count).to.equal(1);
    expect(log.last?.syscall).to.equal('write');
    expect(log.last?.errnoName).to.equal('EBADFD');
  });

  // A TAP or macvtap write is all or nothing (the kernel builds one skb from the whole buffer and
  // answers its length or an error), so a partial write cannot be provoked there. A FIFO can do it
  // for real: a non-blocking write above PIPE_BUF into a pipe with some room writes what fits.
  it('partial_write_counts_as_an_error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vnm-fifo-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', [path]);
    const netdev = new FifoNetdev(openFile(path, O_RDWR | O_NONBLOCK | O_CLOEXEC));
    cleanups.push(() => netdev.close());
    const big = new Uint8Array(9000); // above PIPE_BUF (4096): not atomic
    const results: string[] = [];
    for (let i = 0; i < 64 && results.at(-1) !== 'busy'; i++) results.push(netdev.send(big));
    const sent = results.filter((r) => r === 'sent').length;
    expect(results.at(-1)).to.equal('busy'); // the pipe filled up
    expect(results.filter((r) => r === 'dropped')).to.have.length(1); // the one write that did not fit whole
    const s = netdev.stats();
    expect(s.txFrames).to.equal(sent);
    expect(s.txPartial).to.equal(1);
    expect(s.txErrors).to.equal(1);
    expect(netdev.hostErrors().count).to.equal(1);
    expect(netdev.hostErrors().last?.message).to.match(/partial write/);
    expect(netdev.linkUp).to.equal(true); // a short write loses one frame; the fd still works
  });
});
