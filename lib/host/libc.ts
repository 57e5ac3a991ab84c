// Host system calls for the Linux backends (no VIRTIO section: the host side; Linux's tun, macvtap,
// netlink and socket ABIs). With io-uring.ts, the only module that touches koffi: every other file
// calls these typed wrappers. Each wrapper takes buffers sized to the C struct it passes (host/structs.ts) and checks
// the size before the call, because FFI has no bounds checks.
//
// Errors: a failing call returns -1 and errno; wrappers that cannot fail usefully throw a
// `HostError` (code 'host.errno', with `syscall` and `errno`), the hot-path ones (read, write,
// poll) return the negative errno instead so that EAGAIN costs no exception.

import koffi from 'koffi';
import { POLLFD_SIZE } from './structs.js';

/** A failed host call: typed, with the errno and the call that failed. */
export class HostError extends Error {
  readonly code = 'host.errno' as const;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail?: string,
    options?: ErrorOptions,
  ) {
    super(`${syscall}${detail === undefined ? '' : ` (${detail})`} failed: ${errnoName(errno)} (errno ${errno})`, options);
    this.name = 'HostError';
  }
  /** The symbolic errno name, e.g. 'EAGAIN'. */
  get errnoName(): string {
    return errnoName(this.errno);
  }
}

/** errno values the backends test for (asm-generic/errno-base.h, errno.h). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EPIPE: 32,
  EBADFD: 77,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENOBUFS: 105,
  ENOTCONN: 107,
  ECONNREFUSED: 111,
} as const;

const ERRNO_NAMES = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** open(2) flags (asm-generic/fcntl.h; same values on x86-64 and arm64). */
export const O_RDWR = 0x2;
export const O_NONBLOCK = 0x800;
export const O_CLOEXEC = 0x80000;
/** eventfd(2) flags equal O_NONBLOCK / O_CLOEXEC. */
export const EFD_NONBLOCK = O_NONBLOCK;
export const EFD_CLOEXEC = O_CLOEXEC;
/** socket(2) type flags. */
export const SOCK_CLOEXEC = O_CLOEXEC;
export const SOCK_NONBLOCK = O_NONBLOCK;

interface Libc {
  open: (path: string, flags: number) => number;
  close: (fd: number) => number;
  read: (fd: number, buf: Uint8Array, len: number) => number;
  write: (fd: number, buf: Uint8Array, len: number) => number;
  writev: (fd: number, iov: Uint8Array, count: number) => number;
  memmove: (dst: Uint8Array, src: Uint8Array, len: number) => number;
  ioctlPtr: (fd: number, req: number, arg: Uint8Array) => number;
  ioctlInt: (fd: number, req: number, arg: number) => number;
  poll: ((fds: Uint8Array, nfds: number, timeout: number) => number) & {
    async: (fds: Uint8Array, nfds: number, timeout: number, cb: (err: unknown, res: number) => void) => void;
  };
  eventfd: (initval: number, flags: number) => number;
  socket: (domain: number, type: number, protocol: number) => number;
  bind: (fd: number, addr: Uint8Array, len: number) => number;
  sendto: (fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null, alen: number) => number;
  recv: (fd: number, buf: Uint8Array, len: number, flags: number) => number;
  recvfrom: (fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, lenp: Uint8Array) => number;
  setsockopt: (fd: number, level: number, name: number, val: Uint8Array, len: number) => number;
  getsockname: (fd: number, addr: Uint8Array, lenp: Uint8Array) => number;
  socketpair: (domain: number, type: number, protocol: number, sv: Uint8Array) => number;
}

let libc: Libc | null = null;

function lib(): Libc {
  if (libc !== null) return libc;
  if (process.platform !== 'linux') throw new Error('the TAP / macvtap / netlink backends need Linux');
  const l = koffi.load('libc.so.6');
  const poll = l.func('int poll(void *fds, unsigned long nfds, int timeout)');
  libc = {
    open: l.func('int open(const char *path, int flags)'),
    close: l.func('int close(int fd)'),
    read: l.func('long read(int fd, void *buf, unsigned long count)'),
    write: l.func('long write(int fd, const void *buf, unsigned long count)'),
    writev: l.func('long writev(int fd, const void *iov, int iovcnt)'),
    // memmove(p, p, 0) returns p: the address of a typed array's bytes (addressOf).
    memmove: l.func('memmove', 'uintptr_t', ['void *', 'void *', 'size_t']),
    // ioctl is variadic in C; its third argument is one machine word (a pointer or an int), so it is
    // declared twice with a fixed third parameter (glibc's ioctl is a plain syscall wrapper).
    ioctlPtr: l.func('ioctl', 'int', ['int', 'unsigned long', 'void *']),
    ioctlInt: l.func('ioctl', 'int', ['int', 'unsigned long', 'long']),
    poll: poll as Libc['poll'],
    eventfd: l.func('int eventfd(unsigned int initval, int flags)'),
    socket: l.func('int socket(int domain, int type, int protocol)'),
    bind: l.func('int bind(int fd, const void *addr, unsigned int len)'),
    sendto: l.func('long sendto(int fd, const void *buf, unsigned long len, int flags, const void *addr, unsigned int alen)'),
    recv: l.func('long recv(int fd, void *buf, unsigned long len, int flags)'),
    recvfrom: l.func('long recvfrom(int fd, void *buf, unsigned long len, int flags, void *addr, void *addrlen)'),
    setsockopt: l.func('int setsockopt(int fd, int level, int name, const void *val, unsigned int len)'),
    getsockname: l.func('int getsockname(int fd, void *addr, void *lenp)'),
    socketpair: l.func('int socketpair(int domain, int type, int protocol, void *sv)'),
  };
  return libc;
}

function errno(): number {
  return koffi.errno();
}

function check(syscall: string, r: number, detail?: string): number {
  if (r < 0) throw new HostError(syscall, errno(), detail);
  return r;
}

function needSize(what: string, buf: Uint8Array, size: number): void {
  if (!(buf instanceof Uint8Array) || buf.byteLength < size) {
    throw new RangeError(`${what}: buffer must be a Uint8Array of at least ${size} bytes`);
  }
}

// ---- files and descriptors ----

export function openFile(path: string, flags: number): number {
  return check('open', lib().open(path, flags), path);
}

/** Closes a descriptor; errors other than EINTR are thrown (EBADF means a double close: a bug). */
export function closeFd(fd: number): void {
  const r = lib().close(fd);
  if (r < 0 && errno() !== Errno.EINTR) throw new HostError('close', errno(), `fd ${fd}`);
}

/** Non-blocking read into `buf`: bytes read (0 = EOF), or `-errno` (e.g. -EAGAIN). Never throws. */
export function readFd(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  if (len > buf.byteLength) throw new RangeError(`readFd: len ${len} exceeds the buffer (${buf.byteLength})`);
  const r = lib().read(fd, buf, len);
  return r < 0 ? -errno() : r;
}

/** One write(2) of `len` bytes: bytes written, or `-errno`. Never throws. */
export function writeFd(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  if (len > buf.byteLength) throw new RangeError(`writeFd: len ${len} exceeds the buffer (${buf.byteLength})`);
  const r = lib().write(fd, buf, len);
  return r < 0 ? -errno() : r;
}

/** Bytes of one struct iovec (x86-64 and arm64: a pointer and a size_t). */
export const IOVEC_SIZE = 16;

/**
 * One writev(2) of `count` struct iovecs (the caller filled `iov` with addresses from addressOf and
 * lengths): bytes written, or `-errno`. Never throws.
 */
export function writevFd(fd: number, iov: Uint8Array, count: number): number {
  if (!Number.isInteger(count) || count < 1 || count * IOVEC_SIZE > iov.byteLength) throw new RangeError(`writevFd: ${String(count)} iovecs do not fit the ${iov.byteLength}-byte array`);
  const r = lib().writev(fd, iov, count);
  return r < 0 ? -errno() : r;
}

const addresses = new WeakMap<ArrayBufferLike, number>();

/**
 * The address of `bytes`' first byte, for a system call that takes addresses inside a struct
 * (writev's iovecs). An ArrayBuffer's bytes live outside the JS heap and do not move while it is
 * alive (a small one V8 kept on its heap is moved out on first use, before the address is read):
 * the address is looked up once per buffer. Valid while the caller holds `bytes` and its buffer is
 * not detached (a detached buffer's views have length 0: check lengths before each use).
 */
export function addressOf(bytes: Uint8Array): number {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) throw new RangeError('addressOf: needs a non-empty Uint8Array');
  const buffer = bytes.buffer;
  let base = addresses.get(buffer);
  if (base === undefined) {
    const whole = new Uint8Array(buffer, 0, 1);
    base = lib().memmove(whole, whole, 0);
    addresses.set(buffer, base);
  }
  return base + bytes.byteOffset;
}

/** ioctl with a pointer argument (`arg` is the struct, sized by the caller's `size`). */
export function ioctlPtr(fd: number, request: number, arg: Uint8Array, size: number, name: string): number {
  needSize(name, arg, size);
  return check(`ioctl ${name}`, lib().ioctlPtr(fd, request, arg));
}

/** ioctl with an integer argument passed by value (TUNSETOFFLOAD). */
export function ioctlInt(fd: number, request: number, arg: number, name: string): number {
  return check(`ioctl ${name}`, lib().ioctlInt(fd, request, arg));
}

/** ioctl returning -errno instead of throwing (callers that expect a failure, e.g. EOPNOTSUPP). */
export function ioctlPtrTry(fd: number, request: number, arg: Uint8Array, size: number, name: string): number {
  needSize(name, arg, size);
  const r = lib().ioctlPtr(fd, request, arg);
  return r < 0 ? -errno() : r;
}

// ---- poll and wake-ups ----

/** poll(2) synchronously: ready count or -errno. `fds` holds `nfds` struct pollfd. */
export function pollSync(fds: Uint8Array, nfds: number, timeoutMs: number): number {
  needSize('poll', fds, nfds * POLLFD_SIZE);
  const r = lib().poll(fds, nfds, timeoutMs);
  return r < 0 ? -errno() : r;
}

/**
 * poll(2) on a koffi worker thread (one threadpool thread while it waits). `cb` gets the ready
 * count, or -1 on failure (EINTR included; the caller polls again).
 */
export function pollAsync(fds: Uint8Array, nfds: number, timeoutMs: number, cb: (ready: number) => void): void {
  needSize('poll', fds, nfds * POLLFD_SIZE);
  lib().poll.async(fds, nfds, timeoutMs, (err, res) => cb(err ? -1 : res));
}

export function eventFd(): number {
  return check('eventfd', lib().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

// ---- sockets ----

export function socketFd(domain: number, type: number, protocol: number): number {
  return check('socket', lib().socket(domain, type | SOCK_CLOEXEC, protocol), `domain ${domain} type ${type} protocol ${protocol}`);
}

export function bindFd(fd: number, addr: Uint8Array, len: number): void {
  needSize('bind', addr, len);
  check('bind', lib().bind(fd, addr, len));
}

/** send(2)/sendto(2): bytes sent or -errno. */
export function sendTo(fd: number, buf: Uint8Array, len: number, addr: Uint8Array | null, alen: number): number {
  if (len > buf.byteLength) throw new RangeError(`sendTo: len ${len} exceeds the buffer (${buf.byteLength})`);
  if (addr !== null) needSize('sendto', addr, alen);
  const r = lib().sendto(fd, buf, len, 0, addr, addr === null ? 0 : alen);
  return r < 0 ? -errno() : r;
}

/** recv(2) into `buf`: bytes received or -errno. `flags` e.g. MSG_DONTWAIT | MSG_TRUNC. */
export function recvFd(fd: number, buf: Uint8Array, flags: number): number {
  const r = lib().recv(fd, buf, buf.byteLength, flags);
  return r < 0 ? -errno() : r;
}

const recvFromLen = new Uint8Array(4);

/**
 * recvfrom(2) into `buf`, the sender's address into `addr` (e.g. a sockaddr_nl, whose nl_pid says
 * whether the kernel sent it): bytes received or -errno. `addr` is valid only when the result is >= 0.
 */
export function recvFrom(fd: number, buf: Uint8Array, flags: number, addr: Uint8Array): number {
  new DataView(recvFromLen.buffer).setUint32(0, addr.byteLength, true);
  const r = lib().recvfrom(fd, buf, buf.byteLength, flags, addr, recvFromLen);
  return r < 0 ? -errno() : r;
}

export function setSockOpt(fd: number, level: number, name: number, value: Uint8Array, what: string): void {
  check(`setsockopt ${what}`, lib().setsockopt(fd, level, name, value, value.byteLength));
}

/** getsockname(2) into `addr`; returns the address length. */
export function getSockName(fd: number, addr: Uint8Array): number {
  const lenp = new Uint8Array(4);
  new DataView(lenp.buffer).setUint32(0, addr.byteLength, true);
  check('getsockname', lib().getsockname(fd, addr, lenp));
  return new DataView(lenp.buffer).getUint32(0, true);
}

/**
 * socketpair(2): two connected sockets (close-on-exec, blocking; set one end non-blocking with
 * FIONBIO when the other goes to a child that expects a blocking descriptor).
 */
export function socketPair(domain: number, type: number): [number, number] {
  const sv = new Uint8Array(8);
  check('socketpair', lib().socketpair(domain, type | SOCK_CLOEXEC, 0, sv), `domain ${domain} type ${type}`);
  const v = new DataView(sv.buffer);
  return [v.getInt32(0, true), v.getInt32(4, true)];
}
