import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { NetRig, macTable } from '../../support/net-rig.js';
import { CtrlAck, CtrlClass, CtrlMac, CtrlRx, CtrlVlan } from '../../../devices/virtio-net/constants.js';
import { Netns, deleteLink, hostCleanups, linkName, openFds, run, trackLink, waitFor, withNetnsFd } from '../../support/netns.js';
import { MacvtapNetdev } from '../../../lib/netdev/macvtap-netdev.js';
import type { SyncError, SyncResult } from '../../../lib/netdev/rx-filter-sync.js';
import { HostError } from '../../../lib/host/libc.js';
import { syncsRxFilter } from '../../../lib/netdev/netdev.js';
import { Rtnetlink } from '../../../lib/netlink/rtnetlink.js';
import type { MacvlanMode } from '../../../lib/netlink/rtnetlink.js';
import { parseDevMcast } from '../../../lib/netdev/multicast.js';

const GUEST_MAC = '52:54:00:12:34:56';
const GROUP = '01:00:5e:01:02:03';
const GROUP6 = '33:33:00:00:00:fb';

interface HostView {
  mac: string;
  promisc: boolean;
  allmulti: boolean;
  /** IFF_MULTICAST. */
  multicast: boolean;
  groups: string[];
}

/** What `ip -d link` and `ip maddr` show for the link. */
function hostView(ifname: string): HostView {
  const link = run('ip', ['-d', 'link', 'show', ifname]);
  const flags = /<([^>]*)>/.exec(link)?.[1]?.split(',') ?? [];
  const mac = /link\/ether ([0-9a-f:]{17})/.exec(link)?.[1] ?? '';
  const maddr = run('ip', ['maddr', 'show', 'dev', ifname]);
  const groups = [...maddr.matchAll(/link\s+([0-9a-f:]{17})/g)].map((m) => m[1]!);
  return { mac, promisc: flags.includes('PROMISC'), allmulti: flags.includes('ALLMULTI'), multicast: flags.includes('MULTICAST'), groups };
}

function frameTo(dst: string, marker: number): Uint8Array {
  const d = dst.split(':').map((h) => parseInt(h, 16));
  return Uint8Array.from([...d, 0x02, 0, 0, 0, 0, 0x77, 0x88, 0xb5, marker, ...new Array<number>(45).fill(0)]);
}

describe('lib/netdev/macvtap-netdev (real kernel, throwaway netns)', function () {
  this.timeout(20_000);
  const cleanups = hostCleanups();
  let rt: Rtnetlink;

  before(() => {
    rt = new Rtnetlink();
  });
  after(() => rt?.close());

  /**
   * A veth pair (lower end here, peer `p0` in a fresh namespace with IPv6 off so it sends nothing
   * by itself) and a macvtap on the lower end, both up; a device on a MacvtapNetdev with sync.
   */
  function setup(mode: MacvlanMode = 'bridge'): { ns: Netns; ifname: string; netdev: MacvtapNetdev; rig: NetRig; synced: SyncResult[]; errors: SyncError[] } {
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    ns.disableIpv6();
    const lower = linkName('l');
    withNetnsFd(ns, (fd) => rt.createVeth(lower, 'p0', { peerNetnsFd: fd }));
    trackLink(lower);
    cleanups.push(() => deleteLink(lower));
    const ifname = linkName('m');
    rt.createMacvtap(ifname, rt.getLink(lower).index, mode);
    trackLink(ifname);
    run('sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`]);
    run('sysctl', ['-qw', `net.ipv6.conf.${lower}.disable_ipv6=1`]);
    rt.setUp(rt.getLink(lower).index, true);
    rt.setUp(rt.getLink(ifname).index, true);
    ns.ip(['link', 'set', 'p0', 'up']);
    const netdev = new MacvtapNetdev({ id: 'mvt0', ifname, syncRxFilter: true });
    cleanups.push(() => netdev.close());
    const synced: SyncResult[] = [];
    const errors: SyncError[] = [];
    netdev.on('synced', (r: SyncResult) => synced.push(r));
    netdev.on('sync-error', (e: SyncError) => errors.push(e));
    const rig = new NetRig({ netdev, mac: GUEST_MAC }); // the device binds itself to the sync
    return { ns, ifname, netdev, rig, synced, errors };
  }

  /** Runs a guest change and waits (at most 2 s) for the sync it causes. */
  async function change(s: { rig: NetRig; synced: SyncResult[] }, fn: () => number): Promise<void> {
    const before = s.synced.length;
    expect(fn()).to.equal(CtrlAck.OK);
    await waitFor('the host sync', () => s.synced.length > before, 2000);
  }

  it('macvtap_opens_the_tap_char_device_with_the_header_and_syncs_on_bind', async () => {
    const s = setup();
    expect(syncsRxFilter(s.netdev)).to.equal(true);
    expect(s.netdev.devicePath).to.match(/^\/dev\/tap\d+$/);
    expect(s.netdev.vnetHeaderLength).to.equal(12); // the device set 12 at DRIVER_OK (macvtap opens at 10)
    await waitFor('the first sync', () => s.synced.length > 0);
    const v = hostView(s.ifname);
    expect(v.mac).to.equal(GUEST_MAC);
    expect(v.promisc).to.equal(true); // a device starts promiscuous until the driver says otherwise
  });

  it('host_link_follows_each_guest_change_within_two_seconds', async () => {
    const s = setup();
    const { rig, ifname } = s;
    await waitFor('the first sync', () => s.synced.length > 0);

    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]));
    expect(hostView(ifname).promisc).to.equal(false);

    await change(s, () => rig.cmd(CtrlClass.MAC, CtrlMac.ADDR_SET, [0x52, 0x54, 0, 0x65, 0x43, 0x21]));
    expect(hostView(ifname).mac).to.equal('52:54:00:65:43:21');

    await change(s, () => rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], [GROUP, GROUP6])));
    expect(hostView(ifname).groups).to.include.members([GROUP, GROUP6]);

    await change(s, () => rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], [GROUP6])));
    let v = hostView(ifname);
    expect(v.groups).to.include(GROUP6);
    expect(v.groups).to.not.include(GROUP);
    expect(v.allmulti).to.equal(false); // the on→off recompute left it off

    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [1]));
    expect(hostView(ifname).allmulti).to.equal(true);
    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [0]));
    expect(hostView(ifname).allmulti).to.equal(false);

    await change(s, () => rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, [5, 0]));
    expect(hostView(ifname).promisc).to.equal(true); // macvtap cannot filter by VLAN
    await change(s, () => rig.cmd(CtrlClass.VLAN, CtrlVlan.DEL, [5, 0]));
    expect(hostView(ifname).promisc).to.equal(false);

    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [1]));
    v = hostView(ifname);
    expect(v.promisc).to.equal(true);
    expect(s.errors).to.deep.equal([]);
    // The same list through /proc (what the sync's own bookkeeping is checked against).
    expect(parseDevMcast(readFileSync('/proc/net/dev_mcast', 'utf8')).get(ifname)).to.include(GROUP6);
  });

  it('multicast_none_clears_allmulti_and_multicast_on_the_host_link', async () => {
    // libvirt's rule for rx-filter `multicast`: none clears IFF_ALLMULTI and IFF_MULTICAST, normal
    // restores IFF_MULTICAST (ALLMULTI := overflow), all sets ALLMULTI; the host's multicast list
    // follows the guest's table in every mode.
    const s = setup();
    const { rig, ifname } = s;
    await waitFor('the first sync', () => s.synced.length > 0);
    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]));
    await change(s, () => rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], [GROUP])));
    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [1]));
    expect(hostView(ifname)).to.include({ allmulti: true, multicast: true });

    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.NOMULTI, [1]));
    expect(rig.device.queryRxFilter().multicast).to.equal('none');
    let v = hostView(ifname);
    expect(v).to.include({ allmulti: false, multicast: false });
    expect(v.groups, 'the host list is still the guest table').to.include(GROUP);

    await change(s, () => rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], [GROUP6])));
    v = hostView(ifname);
    expect(v).to.include({ allmulti: false, multicast: false });
    expect(v.groups).to.include(GROUP6);
    expect(v.groups).to.not.include(GROUP);

    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.NOMULTI, [0])); // back to 'all' (ALLMULTI is still on)
    expect(hostView(ifname)).to.include({ allmulti: true, multicast: true });
    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [0])); // 'normal'
    v = hostView(ifname);
    expect(v).to.include({ allmulti: false, multicast: true });
    expect(v.groups).to.include(GROUP6);

    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.NOMULTI, [1])); // normal → none → normal
    expect(hostView(ifname)).to.include({ allmulti: false, multicast: false });
    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.NOMULTI, [0]));
    expect(hostView(ifname)).to.include({ allmulti: false, multicast: true });
    expect(s.errors).to.deep.equal([]);
  });

  it('a_group_the_guest_removed_stops_reaching_the_tap_device', async () => {
    const s = setup();
    const { rig, ns, netdev } = s;
    await waitFor('the first sync', () => s.synced.length > 0);
    await change(s, () => rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]));
    await change(s, () => rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], [GROUP])));
    rig.postRx(32);
    const got: Uint8Array[] = [];
    const poll = (): void => {
      for (const r of rig.received()) got.push(r.frame);
    };
    ns.sendFrames('p0', [frameTo(GROUP, 1)]);
    await waitFor('the group frame in the guest', () => {
      poll();
      return got.some((f) => f[14] === 1);
    });

    await change(s, () => rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], [])));
    const readBefore = netdev.stats().rxFrames;
    const dropsBefore = rig.device.stats().rx.drops.multicast;
    ns.sendFrames('p0', [frameTo(GROUP, 2), frameTo(GUEST_MAC, 3)]);
    await waitFor('the unicast marker in the guest', () => {
      poll();
      return got.some((f) => f[14] === 3);
    });
    expect(got.some((f) => f[14] === 2)).to.equal(false);
    expect(netdev.stats().rxFrames - readBefore, 'frames read from /dev/tapN').to.equal(1);
    expect(rig.device.stats().rx.drops.multicast).to.equal(dropsBefore);
  });

  it('a_burst_of_guest_changes_costs_one_sync', async () => {
    const s = setup();
    const { rig, netdev } = s;
    await waitFor('the first sync', () => s.synced.length > 0);
    const before = netdev.rxFilterSync!.stats();
    expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0])).to.equal(CtrlAck.OK);
    expect(rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [1])).to.equal(CtrlAck.OK);
    expect(rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], [GROUP]))).to.equal(CtrlAck.OK);
    expect(rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [0])).to.equal(CtrlAck.OK);
    await waitFor('the sync', () => s.synced.length > 1);
    await new Promise((r) => setImmediate(r));
    expect(netdev.rxFilterSync!.stats().syncs - before.syncs).to.equal(1);
    const v = hostView(s.ifname);
    expect(v.promisc).to.equal(false);
    expect(v.allmulti).to.equal(false);
    expect(v.groups).to.include(GROUP);
  });

  it('passthru_link_takes_the_guest_unicast_table_and_bridge_mode_skips_it', async () => {
    for (const mode of ['passthru', 'bridge'] as const) {
      const s = setup(mode);
      await waitFor('the first sync', () => s.synced.length > 0);
      const extra = '52:54:00:aa:00:01';
      await change(s, () => s.rig.cmd(CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([extra], [])));
      const last = s.synced[s.synced.length - 1]!;
      expect(s.errors, mode).to.deep.equal([]);
      const fdb = run('bridge', ['fdb', 'show', 'dev', s.ifname]);
      if (mode === 'passthru') {
        expect(last.unicastSkipped).to.equal(false);
        expect(fdb).to.include(extra);
      } else {
        expect(last.unicastSkipped).to.equal(true);
        expect(fdb).to.not.include(extra);
      }
      for (const c of cleanups.splice(0).reverse()) await c();
    }
  });

  it('host_errors_are_typed_events_and_the_device_keeps_working', async () => {
    const s = setup();
    await waitFor('the first sync', () => s.synced.length > 0);
    deleteLink(s.ifname); // the link vanishes under the sync
    await change(s, () => s.rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]));
    expect(s.errors.length).to.be.at.least(1);
    expect(s.errors[0]!.code).to.equal('rx-filter-sync.host-error');
    expect(s.errors[0]!.op).to.equal('link');
    expect(s.errors[0]!.errno).to.equal(19); // ENODEV
    expect(s.rig.cmd(CtrlClass.RX, CtrlRx.ALLMULTI, [1])).to.equal(CtrlAck.OK);
  });

  it('a_throwing_backend_callback_fails_that_backend_and_others_keep_running', async () => {
    // Two macvtaps on one veth (bridge mode): a broadcast from the peer reaches both, through the
    // one shared poll loop. The first backend's device throws from receive() (a bug): that backend
    // fails with a typed 'host-error', the process does not crash, the second keeps receiving.
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    ns.disableIpv6();
    const lower = linkName('l');
    withNetnsFd(ns, (fd) => rt.createVeth(lower, 'p0', { peerNetnsFd: fd }));
    trackLink(lower);
    cleanups.push(() => deleteLink(lower));
    run('sysctl', ['-qw', `net.ipv6.conf.${lower}.disable_ipv6=1`]);
    const names = [linkName('m'), linkName('m')];
    for (const n of names) {
      rt.createMacvtap(n, rt.getLink(lower).index, 'bridge');
      trackLink(n);
      run('sysctl', ['-qw', `net.ipv6.conf.${n}.disable_ipv6=1`]);
      rt.setUp(rt.getLink(n).index, true);
    }
    rt.setUp(rt.getLink(lower).index, true);
    ns.ip(['link', 'set', 'p0', 'up']);

    const bug = new Error('a bug in the device on the first backend');
    const broken = new MacvtapNetdev({ id: 'broken', ifname: names[0]! });
    const healthy = new MacvtapNetdev({ id: 'healthy', ifname: names[1]! });
    cleanups.push(() => broken.close());
    cleanups.push(() => healthy.close());
    let brokenCalls = 0;
    const markers: number[] = [];
    broken.attach({
      receive: () => {
        brokenCalls++;
        throw bug;
      },
      writable: () => {},
    });
    healthy.attach({
      receive: (frame) => {
        if (frame[12] === 0x88 && frame[13] === 0xb5) markers.push(frame[14]!);
        return true;
      },
      writable: () => {},
    });
    const hostErrors: HostError[] = [];
    broken.on('host-error', (e) => hostErrors.push(e));

    ns.sendFrames('p0', [frameTo('ff:ff:ff:ff:ff:ff', 1)]);
    await waitFor('the failure report', () => hostErrors.length === 1);
    await waitFor('marker 1 on the healthy backend', () => markers.includes(1));
    const e = hostErrors[0]!;
    expect(e).to.be.instanceOf(HostError);
    expect(e.code).to.equal('host.errno');
    expect(e.errno).to.equal(5); // EIO: the backend is dead
    expect(e.cause).to.equal(bug);
    expect(broken.stats().rxErrors).to.equal(1);

    ns.sendFrames('p0', [frameTo('ff:ff:ff:ff:ff:ff', 2)]);
    await waitFor('marker 2 on the healthy backend', () => markers.includes(2));
    expect(brokenCalls, 'the failed backend is not polled again').to.equal(1);
    expect(hostErrors).to.have.length(1);
  });

  it('opening_a_link_that_is_not_macvtap_is_a_host_error', () => {
    let err: unknown;
    try {
      new MacvtapNetdev({ id: 'x', ifname: 'lo' });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(HostError);
    expect((err as HostError).errno).to.equal(19);
    expect(() => new MacvtapNetdev({ id: 'x', ifname: 'lo', syncRxFilter: 1 as unknown as boolean })).to.throw(TypeError, /syncRxFilter/);
  });

  it('close_releases_every_fd_including_the_sync_sockets', async () => {
    const fds = { tap: openFds('/dev/tap'), sockets: openFds('socket:') };
    const s = setup();
    await waitFor('the first sync', () => s.synced.length > 0);
    expect(openFds('/dev/tap')).to.equal(fds.tap + 1);
    expect(openFds('socket:')).to.equal(fds.sockets + 3); // rtnetlink + the SIOCADDMULTI socket + the link monitor (RTNLGRP_LINK)
    await s.netdev.close();
    await s.netdev.close();
    expect({ tap: openFds('/dev/tap'), sockets: openFds('socket:') }).to.deep.equal(fds);
  });
});
