// C structures and request numbers of the Linux ABIs the host backends use (no VIRTIO section:
// include/uapi/linux/if.h, if_tun.h, sockios.h, netlink.h, poll.h; x86-64 / arm64 layouts).
// Every struct is a fixed-size Uint8Array built and read here, so its size is stated once and
// unit-tested against the kernel's sizeof (test/lib/host/structs.test.ts).

import { endianness } from 'node:os';

if (endianness() !== 'LE') {
  // Netlink and ioctl structs are in host byte order; the encoders below write little-endian.
  throw new Error('lib/host: only little-endian hosts are supported');
}

/** Interface names are at most IFNAMSIZ - 1 bytes plus NUL (if.h). */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq): name[16] + a 24-byte union (struct ifmap is the largest member). */
export const IFREQ_SIZE = 40;
/** sizeof(struct pollfd): int fd, short events, short revents. */
export const POLLFD_SIZE = 8;
/** sizeof(struct sockaddr_nl): family u16, pad u16, pid u32, groups u32. */
export const SOCKADDR_NL_SIZE = 12;
/** sizeof(struct timeval) on 64-bit: two longs. */
export const TIMEVAL_SIZE = 16;
/** sizeof(struct sockaddr_un): family u16 + sun_path[108] (sys/un.h). */
export const SOCKADDR_UN_SIZE = 110;
/** sun_path's size: a path takes at most 107 bytes plus its NUL. */
export const UNIX_PATH_MAX = 108;

/** poll(2) events (poll.h). */
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/** _IOW / _IOR numbers of if_tun.h ('T' = 0x54; size 4 = int / unsigned int). */
export const TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
export const TUNSETOFFLOAD = 0x400454d0; // _IOW('T', 208, unsigned int)
export const TUNGETIFF = 0x800454d2; // _IOR('T', 210, unsigned int)
export const TUNGETVNETHDRSZ = 0x800454d7; // _IOR('T', 215, int)
export const TUNSETVNETHDRSZ = 0x400454d8; // _IOW('T', 216, int)
export const TUNSETQUEUE = 0x400454d9; // _IOW('T', 217, int); the argument is a struct ifreq

/** ifr_flags for TUNSETIFF (if_tun.h). */
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
/** One fd per queue (TUNSETIFF); TUNSETQUEUE's ifr_flags attach or detach a queue's fd. */
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;

/** TUNSETOFFLOAD bits (if_tun.h). */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
/** UDP segmentation offload, IPv4 / IPv6 (include/uapi/linux/if_tun.h, Linux 6.2). */
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

/** Socket ioctls (sockios.h). */
export const SIOCGIFMTU = 0x8921;
export const SIOCGIFHWADDR = 0x8927;
export const SIOCADDMULTI = 0x8931;
export const SIOCDELMULTI = 0x8932;
export const SIOCGIFINDEX = 0x8933;

/** Address and protocol families, socket types and options (socket.h, netlink.h). */
export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_NETLINK = 16;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOL_SOCKET = 1;
export const SO_RCVTIMEO = 20;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
/** ioctl(FIONBIO, int *on): sets or clears O_NONBLOCK on one file description (asm-generic/ioctls.h). */
export const FIONBIO = 0x5421;

/** struct ifreq with ifr_name set (validated: non-empty, < IFNAMSIZ bytes, no NUL or '/'). */
export function ifreq(name: string): Uint8Array {
  const buf = new Uint8Array(IFREQ_SIZE);
  setIfreqName(buf, name);
  return buf;
}

export function setIfreqName(buf: Uint8Array, name: string): void {
  const bytes = Buffer.from(validIfname(name), 'utf8');
  buf.fill(0, 0, IFNAMSIZ);
  buf.set(bytes, 0);
}

/** Throws on a name the kernel would reject (dev_valid_name), with the rule broken. */
export function validIfname(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`interface name must be a non-empty string, got ${String(name)}`);
  const len = Buffer.byteLength(name, 'utf8');
  if (len >= IFNAMSIZ) throw new RangeError(`interface name "${name}" is ${len} bytes; at most ${IFNAMSIZ - 1} are allowed`);
  if (name === '.' || name === '..' || /[\0/:\s]/.test(name)) throw new RangeError(`interface name "${name}" contains a character the kernel rejects`);
  return name;
}

export function ifreqName(buf: Uint8Array): string {
  const end = buf.subarray(0, IFNAMSIZ).indexOf(0);
  return Buffer.from(buf.subarray(0, end < 0 ? IFNAMSIZ : end)).toString('utf8');
}

/** ifr_flags (short at offset 16). */
export function setIfreqFlags(buf: Uint8Array, flags: number): void {
  new DataView(buf.buffer, buf.byteOffset, IFREQ_SIZE).setInt16(IFNAMSIZ, flags, true);
}
export function ifreqFlags(buf: Uint8Array): number {
  return new DataView(buf.buffer, buf.byteOffset, IFREQ_SIZE).getUint16(IFNAMSIZ, true);
}

/** ifr_ifindex (int at offset 16). */
export function ifreqIndex(buf: Uint8Array): number {
  return new DataView(buf.buffer, buf.byteOffset, IFREQ_SIZE).getInt32(IFNAMSIZ, true);
}

/** ifr_mtu (int at offset 16, SIOCGIFMTU). */
export function ifreqMtu(buf: Uint8Array): number {
  return new DataView(buf.buffer, buf.byteOffset, IFREQ_SIZE).getInt32(IFNAMSIZ, true);
}

/** ifr_hwaddr: struct sockaddr at offset 16 (sa_family u16, sa_data[14]); the MAC is sa_data[0..6]. */
export function setIfreqHwaddr(buf: Uint8Array, family: number, mac: Uint8Array): void {
  if (mac.length !== 6) throw new RangeError('ifr_hwaddr: a MAC address is 6 bytes');
  new DataView(buf.buffer, buf.byteOffset, IFREQ_SIZE).setUint16(IFNAMSIZ, family, true);
  buf.fill(0, IFNAMSIZ + 2, IFREQ_SIZE);
  buf.set(mac, IFNAMSIZ + 2);
}
export function ifreqHwaddr(buf: Uint8Array): Uint8Array {
  return buf.slice(IFNAMSIZ + 2, IFNAMSIZ + 8);
}

/** An int-sized ioctl argument (TUNSETVNETHDRSZ takes a pointer to int). */
export function intArg(value: number): Uint8Array {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setInt32(0, value, true);
  return buf;
}
export function readIntArg(buf: Uint8Array): number {
  return new DataView(buf.buffer, buf.byteOffset, 4).getInt32(0, true);
}

/** struct sockaddr_nl for bind (pid 0: the kernel assigns one; groups: multicast group mask). */
export function sockaddrNl(pid = 0, groups = 0): Uint8Array {
  const buf = new Uint8Array(SOCKADDR_NL_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint16(0, AF_NETLINK, true);
  v.setUint32(4, pid, true);
  v.setUint32(8, groups, true);
  return buf;
}
export function sockaddrNlPid(buf: Uint8Array): number {
  return new DataView(buf.buffer, buf.byteOffset, SOCKADDR_NL_SIZE).getUint32(4, true);
}

/**
 * struct sockaddr_un for `path` and the length to pass with it (family + path + NUL). Throws a
 * RangeError for an empty path, one with a NUL, or one longer than sun_path holds (107 bytes).
 */
export function sockaddrUn(path: string): { addr: Uint8Array; len: number } {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0 || bytes.length >= UNIX_PATH_MAX || bytes.includes(0)) {
    throw new RangeError(`unix socket path must be 1-${UNIX_PATH_MAX - 1} bytes without NUL, got ${bytes.length} bytes: ${JSON.stringify(path)}`);
  }
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return { addr, len: 2 + bytes.length + 1 };
}

/** struct timeval { tv_sec, tv_usec } from milliseconds. */
export function timeval(ms: number): Uint8Array {
  const buf = new Uint8Array(TIMEVAL_SIZE);
  const v = new DataView(buf.buffer);
  v.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  v.setBigInt64(8, BigInt((ms % 1000) * 1000), true);
  return buf;
}

/** A table of `count` struct pollfd, with typed accessors (fd at +0, events at +4, revents at +6). */
export class PollFdTable {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  constructor(readonly capacity: number) {
    this.bytes = new Uint8Array(capacity * POLLFD_SIZE);
    this.view = new DataView(this.bytes.buffer);
  }
  set(i: number, fd: number, events: number): void {
    this.check(i);
    this.view.setInt32(i * POLLFD_SIZE, fd, true);
    this.view.setInt16(i * POLLFD_SIZE + 4, events, true);
    this.view.setInt16(i * POLLFD_SIZE + 6, 0, true);
  }
  fd(i: number): number {
    this.check(i);
    return this.view.getInt32(i * POLLFD_SIZE, true);
  }
  events(i: number): number {
    this.check(i);
    return this.view.getUint16(i * POLLFD_SIZE + 4, true);
  }
  revents(i: number): number {
    this.check(i);
    return this.view.getUint16(i * POLLFD_SIZE + 6, true);
  }
  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.capacity) throw new RangeError(`pollfd index ${i} outside 0..${this.capacity - 1}`);
  }
}
