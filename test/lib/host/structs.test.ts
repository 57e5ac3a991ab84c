import { expect } from 'chai';
import koffi from 'koffi';
import {
  IFREQ_SIZE,
  POLLFD_SIZE,
  SOCKADDR_NL_SIZE,
  TIMEVAL_SIZE,
  POLLIN,
  PollFdTable,
  ifreq,
  ifreqFlags,
  ifreqName,
  setIfreqFlags,
  setIfreqHwaddr,
  ifreqHwaddr,
  sockaddrNl,
  sockaddrNlPid,
  timeval,
  validIfname,
  intArg,
  readIntArg,
  TUNGETIFF,
  TUNSETIFF,
  IFF_TAP,
  IFF_NO_PI,
  IFF_VNET_HDR,
  AF_NETLINK,
  SOCK_RAW,
  AF_UNIX,
  SOCK_DGRAM,
  SOCK_SEQPACKET,
  SOCKADDR_UN_SIZE,
  sockaddrUn,
} from '../../../lib/host/structs.js';
import { O_CLOEXEC, O_NONBLOCK, O_RDWR, bindFd, closeFd, eventFd, getSockName, ioctlPtr, openFile, pollSync, readFd, socketFd, socketPair, writeFd, HostError, Errno } from '../../../lib/host/libc.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linkName, openFds, requireHost } from '../../support/netns.js';

// The C layouts, declared to koffi (which lays structs out by the platform's C rules): every
// hand-written size in structs.ts must match.
const sockaddr = koffi.struct('vnm_sockaddr', { sa_family: 'uint16_t', sa_data: koffi.array('char', 14) });
const ifmap = koffi.struct('vnm_ifmap', { mem_start: 'unsigned long', mem_end: 'unsigned long', base_addr: 'unsigned short', irq: 'unsigned char', dma: 'unsigned char', port: 'unsigned char' });
const ifru = koffi.union('vnm_ifru', { addr: sockaddr, flags: 'short', ifindex: 'int', mtu: 'int', map: ifmap, slave: koffi.array('char', 16), data: 'void *' });
const ifreqC = koffi.struct('vnm_ifreq', { ifr_name: koffi.array('char', 16), ifr_ifru: ifru });
const pollfdC = koffi.struct('vnm_pollfd', { fd: 'int', events: 'short', revents: 'short' });
const sockaddrNlC = koffi.struct('vnm_sockaddr_nl', { nl_family: 'uint16_t', nl_pad: 'uint16_t', nl_pid: 'uint32_t', nl_groups: 'uint32_t' });
const timevalC = koffi.struct('vnm_timeval', { tv_sec: 'long', tv_usec: 'long' });
const sockaddrUnC = koffi.struct('vnm_sockaddr_un', { sun_family: 'uint16_t', sun_path: koffi.array('char', 108) });

describe('lib/host structs and libc wrappers', () => {
  it('struct_sizes_match_the_c_layouts', () => {
    expect(koffi.sizeof(ifreqC)).to.equal(IFREQ_SIZE);
    expect(koffi.offsetof(ifreqC, 'ifr_ifru')).to.equal(16);
    expect(koffi.sizeof(pollfdC)).to.equal(POLLFD_SIZE);
    expect(koffi.offsetof(pollfdC, 'revents')).to.equal(6);
    expect(koffi.sizeof(sockaddrNlC)).to.equal(SOCKADDR_NL_SIZE);
    expect(koffi.sizeof(timevalC)).to.equal(TIMEVAL_SIZE);
    expect(koffi.sizeof(sockaddrUnC)).to.equal(SOCKADDR_UN_SIZE);
    expect(sockaddrUn('/x').addr.length).to.equal(SOCKADDR_UN_SIZE);
    expect(ifreq('eth0').length).to.equal(IFREQ_SIZE);
    expect(sockaddrNl().length).to.equal(SOCKADDR_NL_SIZE);
    expect(timeval(1500).length).to.equal(TIMEVAL_SIZE);
    expect(new PollFdTable(3).bytes.length).to.equal(3 * POLLFD_SIZE);
  });

  it('ifreq_fields_round_trip', () => {
    const r = ifreq('tap7');
    setIfreqFlags(r, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
    expect(ifreqName(r)).to.equal('tap7');
    expect(ifreqFlags(r)).to.equal(0x5002);
    setIfreqHwaddr(r, 0, Uint8Array.of(1, 0, 0x5e, 1, 2, 3));
    expect([...ifreqHwaddr(r)]).to.deep.equal([1, 0, 0x5e, 1, 2, 3]);
    expect(ifreqName(r)).to.equal('tap7');
    expect(sockaddrNlPid(sockaddrNl(1234))).to.equal(1234);
    expect(readIntArg(intArg(-3))).to.equal(-3);
    const tv = new DataView(timeval(2500).buffer);
    expect([tv.getBigInt64(0, true), tv.getBigInt64(8, true)]).to.deep.equal([2n, 500000n]);
  });

  it('interface_names_the_kernel_would_reject_throw_naming_the_rule', () => {
    expect(() => validIfname('')).to.throw(TypeError);
    expect(() => validIfname('abcdefghijklmnop')).to.throw(RangeError, /at most 15/);
    expect(() => validIfname('a/b')).to.throw(RangeError, /character/);
    expect(validIfname('abcdefghijklmno')).to.equal('abcdefghijklmno');
  });

  it('buffers_smaller_than_their_struct_are_refused_before_the_call', () => {
    expect(() => ioctlPtr(0, TUNGETIFF, new Uint8Array(8), IFREQ_SIZE, 'TUNGETIFF')).to.throw(RangeError, /40 bytes/);
    expect(() => pollSync(new Uint8Array(8), 2, 0)).to.throw(RangeError);
    expect(() => readFd(0, new Uint8Array(4), 8)).to.throw(RangeError);
    expect(() => new PollFdTable(1).set(1, 0, 0)).to.throw(RangeError);
  });

  it('poll_reports_an_eventfd_readable_after_a_write_and_read_drains_it', () => {
    const fds = openFds('eventfd');
    const fd = eventFd();
    try {
      const t = new PollFdTable(1);
      t.set(0, fd, POLLIN);
      expect(pollSync(t.bytes, 1, 0)).to.equal(0);
      const one = new Uint8Array(8);
      one[0] = 1;
      expect(writeFd(fd, one)).to.equal(8);
      t.set(0, fd, POLLIN);
      expect(pollSync(t.bytes, 1, 0)).to.equal(1);
      expect(t.revents(0) & POLLIN).to.equal(POLLIN);
      expect(readFd(fd, new Uint8Array(8))).to.equal(8);
      expect(readFd(fd, new Uint8Array(8))).to.equal(-Errno.EAGAIN);
    } finally {
      closeFd(fd);
    }
    expect(openFds('eventfd')).to.equal(fds);
  });

  it('sockaddr_un_binds_a_path_the_kernel_reports_back_and_bad_paths_are_refused_first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vnm-sun-'));
    const fd = socketFd(AF_UNIX, SOCK_DGRAM, 0);
    try {
      const path = join(dir, 's.sock');
      const { addr, len } = sockaddrUn(path);
      expect(len).to.equal(2 + Buffer.byteLength(path) + 1);
      bindFd(fd, addr, len);
      const got = new Uint8Array(SOCKADDR_UN_SIZE);
      expect(getSockName(fd, got)).to.equal(len);
      expect(new DataView(got.buffer).getUint16(0, true)).to.equal(AF_UNIX);
      expect(Buffer.from(got.subarray(2, len - 1)).toString()).to.equal(path);
    } finally {
      closeFd(fd);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => sockaddrUn('')).to.throw(RangeError, /1-107 bytes/);
    expect(() => sockaddrUn('a'.repeat(108))).to.throw(RangeError, /1-107 bytes/);
    expect(() => sockaddrUn('a\0b')).to.throw(RangeError, /without NUL/);
  });

  it('socketpair_gives_two_connected_record_sockets', () => {
    const [a, b] = socketPair(AF_UNIX, SOCK_SEQPACKET);
    try {
      expect(writeFd(a, Uint8Array.of(1, 2, 3))).to.equal(3);
      expect(writeFd(a, Uint8Array.of(4))).to.equal(1);
      const buf = new Uint8Array(16);
      expect(readFd(b, buf)).to.equal(3); // one record per read
      expect(readFd(b, buf)).to.equal(1);
      expect(buf[0]).to.equal(4);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('failed_calls_are_host_errors_with_the_errno', () => {
    let e: unknown;
    try {
      openFile('/nonexistent/vnm', O_RDWR);
    } catch (x) {
      e = x;
    }
    expect(e).to.be.instanceOf(HostError);
    expect((e as HostError).code).to.equal('host.errno');
    expect((e as HostError).errno).to.equal(Errno.ENOENT);
    expect((e as HostError).errnoName).to.equal('ENOENT');
  });

  describe('against the kernel (root)', function () {
    before(function () {
      requireHost(this);
    });

    it('tunsetiff_and_tungetiff_agree_on_the_ifreq_layout', () => {
      const fd = openFile('/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC);
      try {
        const name = linkName('s');
        const r = ifreq(name);
        setIfreqFlags(r, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
        ioctlPtr(fd, TUNSETIFF, r, IFREQ_SIZE, 'TUNSETIFF');
        const g = ifreq('x');
        ioctlPtr(fd, TUNGETIFF, g, IFREQ_SIZE, 'TUNGETIFF');
        expect(ifreqName(g)).to.equal(name);
        expect(ifreqFlags(g) & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)).to.equal(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
      } finally {
        closeFd(fd);
      }
    });

    it('getsockname_returns_a_sockaddr_nl_of_12_bytes', () => {
      const fd = socketFd(AF_NETLINK, SOCK_RAW, 0);
      try {
        bindFd(fd, sockaddrNl(), SOCKADDR_NL_SIZE);
        const a = new Uint8Array(SOCKADDR_NL_SIZE);
        expect(getSockName(fd, a)).to.equal(SOCKADDR_NL_SIZE);
        expect(new DataView(a.buffer).getUint16(0, true)).to.equal(AF_NETLINK);
        expect(sockaddrNlPid(a)).to.be.greaterThan(0);
      } finally {
        closeFd(fd);
      }
    });
  });
});
