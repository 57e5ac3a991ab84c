import { expect } from 'chai';
import { Netns, deleteLink, hostCleanups, linkName, openFds, run, trackLink, withNetnsFd } from '../../support/netns.js';
import { Rtnetlink, IFF_ALLMULTI, IFF_PROMISC, IFF_UP } from '../../../lib/netlink/rtnetlink.js';
import { MAX_REPLY_WAIT_MS, NETLINK_GENERIC, NETLINK_ROUTE, NetlinkSocket } from '../../../lib/netlink/socket.js';
import { resolveFamily } from '../../../lib/netlink/genl.js';
import { MulticastList } from '../../../lib/netdev/multicast.js';
import { NetlinkError } from '../../../lib/netlink/errors.js';
import { NLMSG_ERROR, NLM_F_REQUEST, buildMessage } from '../../../lib/netlink/message.js';
import { RTM_GETLINK } from '../../../lib/netlink/rtnetlink.js';
import { Errno, HostError, SOCK_NONBLOCK, bindFd, closeFd, sendTo, socketFd } from '../../../lib/host/libc.js';
import { AF_NETLINK, SOCKADDR_NL_SIZE, SOCK_RAW, sockaddrNl } from '../../../lib/host/structs.js';

/** A second NETLINK_ROUTE socket in this namespace that sends datagrams to another socket's port id (needs CAP_NET_ADMIN). */
function forger(): { send(toPort: number, datagram: Uint8Array): void; fill(toPort: number, datagram: Uint8Array): number; close(): void } {
  const fd = socketFd(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
  bindFd(fd, sockaddrNl(), SOCKADDR_NL_SIZE);
  return {
    send(toPort, datagram) {
      const n = sendTo(fd, datagram, datagram.length, sockaddrNl(toPort), SOCKADDR_NL_SIZE);
      if (n !== datagram.length) throw new Error(`forger: sendto returned ${n}`);
    },
    /** Sends until the receiver's queue is full (EAGAIN); returns how many datagrams were queued. */
    fill(toPort, datagram) {
      for (let sent = 0; ; sent++) {
        const n = sendTo(fd, datagram, datagram.length, sockaddrNl(toPort), SOCKADDR_NL_SIZE);
        if (n === -Errno.EAGAIN) return sent;
        if (n !== datagram.length) throw new Error(`forger: sendto returned ${n}`);
      }
    },
    close: () => closeFd(fd),
  };
}

/** An NLMSG_ERROR as the kernel would send it for request `seq` to `port`: errno `errno` (0 = ACK). */
function forgedError(seq: number, port: number, errno: number, requestType: number): Uint8Array {
  return buildMessage({ type: NLMSG_ERROR, flags: 0, seq, pid: port }, (w) => {
    const b = Buffer.alloc(4 + 16);
    b.writeInt32LE(-errno, 0);
    b.writeUInt32LE(16, 4);
    b.writeUInt16LE(requestType, 8);
    b.writeUInt16LE(NLM_F_REQUEST, 10);
    b.writeUInt32LE(seq, 12);
    b.writeUInt32LE(port, 16);
    w.bytes(b);
  });
}

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
  const cleanups = hostCleanups();
  let rt: Rtnetlink;

  before(() => {
    rt = new Rtnetlink();
  });
  after(() => rt?.close());

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

  it('netlink_reply_from_a_userspace_port_is_ignored', () => {
    // Another process with CAP_NET_ADMIN can unicast to our port id: its datagrams must never be
    // taken for the kernel's answer (the kernel's source nl_pid is 0), only dropped and counted.
    const sock = new NetlinkSocket(NETLINK_ROUTE);
    const f = forger();
    try {
      const ours = new Rtnetlink(sock);
      const next = sock.sequence + 1;
      // A well-formed answer to our next request (its seq, our port in nlmsg_pid) saying EPERM,
      // a forged ACK, and a datagram that is not even valid netlink.
      f.send(sock.portId, forgedError(next, sock.portId, 1, RTM_GETLINK));
      f.send(sock.portId, forgedError(next, sock.portId, 0, RTM_GETLINK));
      f.send(sock.portId, Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      const lo = ours.getLink('lo');
      expect(lo.name).to.equal('lo');
      expect(lo.index).to.equal(1);
      expect(sock.stats().foreign).to.equal(3);
      // The socket goes on answering requests, and a forged reply queued later is dropped too.
      f.send(sock.portId, forgedError(sock.sequence + 1, sock.portId, 19, RTM_GETLINK));
      expect(ours.getLink(1).name).to.equal('lo');
      expect(sock.stats().foreign).to.equal(4);
    } finally {
      f.close();
      sock.close();
    }
  });

  it('a_netlink_request_never_waits_seconds_for_the_kernel', () => {
    // The kernel's answer is queued before sendto() returns: the wait only covers a reply that is
    // not coming, and is bounded to milliseconds, not seconds.
    const sock = new NetlinkSocket(NETLINK_ROUTE);
    try {
      expect(sock.replyWaitMs).to.be.within(1, 10);
    } finally {
      sock.close();
    }
    expect(() => new NetlinkSocket(NETLINK_ROUTE, { timeoutMs: 2000 })).to.throw(RangeError, /timeoutMs/);
    expect(() => new NetlinkSocket(NETLINK_ROUTE, { timeoutMs: MAX_REPLY_WAIT_MS + 1 })).to.throw(RangeError, /timeoutMs/);
    new NetlinkSocket(NETLINK_ROUTE, { timeoutMs: MAX_REPLY_WAIT_MS }).close();
  });

  it('a_reply_that_is_not_coming_fails_in_milliseconds_not_seconds', () => {
    // A forger fills our receive queue. The kernel cannot queue its answer: it reports ENOBUFS once
    // (the first request fails at once with it) and, while the queue stays congested, drops its
    // next answer silently: the one real case of a reply that never comes. That request must give
    // up within the bound (milliseconds), after skipping the forged datagrams; once the queue is
    // drained the socket works again.
    const sock = new NetlinkSocket(NETLINK_ROUTE);
    const f = forger();
    try {
      const ours = new Rtnetlink(sock);
      const queued = f.fill(sock.portId, forgedError(0, sock.portId, 1, RTM_GETLINK));
      expect(queued).to.be.greaterThan(0);
      const lost = thrown(() => ours.getLink('lo'));
      expect(lost).to.be.instanceOf(HostError);
      expect((lost as HostError).errno).to.equal(Errno.ENOBUFS);
      const t0 = performance.now();
      const silent = thrown(() => ours.getLink('lo'));
      const waited = performance.now() - t0;
      expect(silent).to.be.instanceOf(NetlinkError);
      expect((silent as NetlinkError).code).to.equal('netlink.timeout');
      expect(waited, 'ms the event loop was held').to.be.below(200);
      expect(sock.stats().foreign).to.equal(queued);
      expect(ours.getLink('lo').index).to.equal(1);
    } finally {
      f.close();
      sock.close();
    }
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
