import { expect } from 'chai';
import { Netns, deleteLink, linkName, openFds, requireHost, run, trackLink, withNetnsFd } from '../../support/netns.js';
import { Rtnetlink, IFF_ALLMULTI, IFF_PROMISC, IFF_UP } from '../../../lib/netlink/rtnetlink.js';
import { NETLINK_GENERIC, NETLINK_ROUTE, NetlinkSocket } from '../../../lib/netlink/socket.js';
import { resolveFamily } from '../../../lib/netlink/genl.js';
import { MulticastList } from '../../../lib/netdev/multicast.js';
import { NetlinkError } from '../../../lib/netlink/errors.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('lib/netlink on the real kernel (throwaway netns)', function () {
  this.timeout(20_000);
  let rt: Rtnetlink;
  const cleanups: (() => void)[] = [];

  before(function () {
    requireHost(this);
    rt = new Rtnetlink();
  });
  after(() => rt?.close());
  afterEach(() => {
    for (const c of cleanups.splice(0).reverse()) c();
  });

  it('getlink_by_name_and_by_index_and_a_dump_agree', () => {
    const lo = rt.getLink('lo');
    expect(lo.index).to.equal(1);
    expect(lo.flags & IFF_UP).to.equal(IFF_UP);
    expect(rt.getLink(1).name).to.equal('lo');
    const all = rt.listLinks();
    expect(all.map((l) => l.name)).to.include('lo');
    expect(all.length).to.equal(run('ip', ['-o', 'link']).trim().split('\n').length);
  });

  it('a_missing_link_is_a_netlink_errno_error_with_enodev', () => {
    const e = thrown(() => rt.getLink('vnmnosuchlink'));
    expect(e).to.be.instanceOf(NetlinkError);
    expect((e as NetlinkError).code).to.equal('netlink.errno');
    expect((e as NetlinkError).errno).to.equal(19);
  });

  it('generic_netlink_resolves_nlctrl_and_reports_an_unknown_family', () => {
    const g = new NetlinkSocket(NETLINK_GENERIC);
    try {
      const f = resolveFamily(g, 'nlctrl');
      expect(f.id).to.equal(0x10);
      expect(f.multicastGroups.has('notify')).to.equal(true);
      expect((thrown(() => resolveFamily(g, 'vnmnofamily')) as NetlinkError).code).to.equal('netlink.unknown-family');
    } finally {
      g.close();
    }
  });

  it('creates_a_veth_with_its_peer_in_a_namespace_then_a_macvtap_on_it_and_changes_address_and_flags', () => {
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    const lower = linkName('l');
    withNetnsFd(ns, (fd) => rt.createVeth(lower, 'peer0', { peerNetnsFd: fd }));
    trackLink(lower);
    cleanups.push(() => deleteLink(lower));
    expect(rt.getLink(lower).kind).to.equal('veth');
    expect(ns.ip(['link', 'show', 'peer0'])).to.include('peer0');

    const mvt = linkName('m');
    rt.createMacvtap(mvt, rt.getLink(lower).index, 'bridge', { address: '52:54:00:01:02:03' });
    trackLink(mvt);
    const l = rt.getLink(mvt);
    expect(l).to.include({ kind: 'macvtap', macvlanMode: 'bridge', address: '52:54:00:01:02:03', link: rt.getLink(lower).index });

    rt.setAddress(l.index, '52:54:00:0a:0b:0c');
    rt.setFlags(l.index, IFF_PROMISC | IFF_ALLMULTI, IFF_PROMISC | IFF_ALLMULTI);
    const after = rt.getLink(l.index);
    expect(after.address).to.equal('52:54:00:0a:0b:0c');
    expect(after.flags & (IFF_PROMISC | IFF_ALLMULTI)).to.equal(IFF_PROMISC | IFF_ALLMULTI);
    expect(run('ip', ['-d', 'link', 'show', mvt])).to.match(/PROMISC/).and.match(/ALLMULTI/);
    rt.setFlags(l.index, 0, IFF_PROMISC | IFF_ALLMULTI);
    expect(rt.getLink(l.index).flags & (IFF_PROMISC | IFF_ALLMULTI)).to.equal(0);

    // A bridge-mode macvtap cannot take fdb entries: EOPNOTSUPP from the kernel.
    const e = thrown(() => rt.neighSelf('add', l.index, '52:54:00:aa:00:01')) as NetlinkError;
    expect(e.code).to.equal('netlink.errno');
    expect(e.errno).to.equal(95);

    rt.deleteLink(l.index);
    expect(() => rt.getLink(mvt)).to.throw(NetlinkError);
    expect((thrown(() => rt.createMacvtap(mvt, 1, 'nope' as 'bridge')) as NetlinkError).code).to.equal('netlink.bad-value');
  });

  it('sockets_close_their_fds', () => {
    const fds = openFds('socket:');
    const s = new NetlinkSocket(NETLINK_ROUTE);
    const m = new MulticastList();
    expect(openFds('socket:')).to.equal(fds + 2);
    s.close();
    s.close();
    m.close();
    expect(openFds('socket:')).to.equal(fds);
    expect(() => s.request({ type: 18, what: 'after close' })).to.throw(/closed/);
  });
});
