// io_uring as a system-call batcher (no VIRTIO section: the host side; Linux's io_uring ABI,
// include/uapi/linux/io_uring.h). One ring, one `io_uring_enter` that submits a batch of
// read/write requests and waits for all of them: what a loop of read(2)/write(2) does in one system
// call each. On these machines a bare system call costs ~1 µs of CPU (page-table isolation inside
// a VM), more than the TAP's own work for a 64-byte frame; batching pays it once per batch.
//
// The rings and the request buffers live in memory mapped here and seen from JS through
// koffi.view (no copy), so a request is a few stores into the SQE array and a completion a few
// loads from the CQ. The caller uses it synchronously: every `submitAndWait()` returns with all
// its completions in the CQ (requests flagged RWF_NOWAIT never wait inside the kernel: they answer
// -EAGAIN instead), so no request is ever in flight between calls and no buffer is ever used by
// the kernel after the call returns.
//
// Second koffi user beside libc.ts (same pattern: typed wrappers, buffers checked before the call).

import koffi from 'koffi';
import { Errno, HostError } from './libc.js';

/** io_uring_setup / io_uring_enter (asm-generic/unistd.h: the same numbers on x86-64 and arm64). */
const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
/** IORING_OFF_SQ_RING, IORING_OFF_SQES (mmap offsets on the ring fd). */
const OFF_SQ_RING = 0;
const OFF_SQES = 0x10000000;
const IORING_FEAT_SINGLE_MMAP = 1 << 0;
const IORING_SETUP_SUBMIT_ALL = 1 << 7;
const IORING_ENTER_GETEVENTS = 1 << 0;
/** Opcodes (enum io_uring_op). */
export const IORING_OP_READ = 22;
export const IORING_OP_WRITE = 23;
/** sqe->flags: the next request starts only after this one completed in full (a failure cancels the rest: -ECANCELED). */
export const IOSQE_IO_LINK = 1 << 2;
/** rw_flags: do not wait inside the kernel; -EAGAIN instead. */
export const RWF_NOWAIT = 0x8;
/** errno ECANCELED (a linked request after a failed one). */
export const ECANCELED = 125;

const PROT_READ_WRITE = 0x3;
const MAP_SHARED = 0x01;
const MAP_PRIVATE_ANONYMOUS = 0x22;
const MAP_POPULATE = 0x8000;
const MAP_FAILED = 0xffffffffffffffffn;
const PARAMS_SIZE = 120;
const SQE_SIZE = 64;
const CQE_SIZE = 16;

interface UringLib {
  setup: (nr: number, entries: number, params: Uint8Array) => number;
  enter: (nr: number, fd: number, toSubmit: number, minComplete: number, flags: number, sig: null, sz: number) => number;
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  munmap: (addr: unknown, len: number) => number;
  close: (fd: number) => number;
}

let uringLib: UringLib | null = null;

function lib(): UringLib {
  if (uringLib !== null) return uringLib;
  if (process.platform !== 'linux') throw new Error('io_uring needs Linux');
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('io_uring.ts assumes a little-endian host');
  const l = koffi.load('libc.so.6');
  // syscall(2) is variadic; each use is declared with its fixed argument list (integer and pointer
  // arguments travel in the same registers either way; glibc's syscall is an assembly stub).
  uringLib = {
    setup: l.func('syscall', 'long', ['long', 'uint32', 'void *']),
    enter: l.func('syscall', 'long', ['long', 'int', 'uint32', 'uint32', 'uint32', 'void *', 'size_t']),
    mmap: l.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'),
    munmap: l.func('int munmap(void *addr, size_t len)'),
    close: l.func('int close(int fd)'),
  };
  return uringLib;
}

function mapOrThrow(len: number, flags: number, fd: number, off: number, what: string): unknown {
  const p = lib().mmap(null, len, PROT_READ_WRITE, flags, fd, off);
  if (p === null || BigInt(koffi.address(p)) === MAP_FAILED) throw new HostError('mmap', koffi.errno(), what);
  return p;
}

/** Memory of our own, mapped (anonymous, populated), with its address for the kernel and a JS view. */
export class NativeMemory {
  readonly bytes: Uint8Array;
  /** Its address (user addresses are below 2^47: exact in a double). */
  readonly address: number;
  private ptr: unknown;

  constructor(readonly length: number) {
    this.ptr = mapOrThrow(length, MAP_PRIVATE_ANONYMOUS, -1, 0, `${length} bytes`); // pages come on first touch
    this.address = Number(koffi.address(this.ptr));
    this.bytes = new Uint8Array(koffi.view(this.ptr, length));
  }

  /** Unmaps it; the views must not be used after. Idempotent. */
  free(): void {
    if (this.ptr === null) return;
    lib().munmap(this.ptr, this.length);
    this.ptr = null;
  }
}

export class IoUring {
  readonly fd: number;
  /** SQ entries: the largest batch. */
  readonly entries: number;
  private readonly ringPtr: unknown;
  private readonly ringLen: number;
  private readonly sqePtr: unknown;
  private readonly ring32: Uint32Array;
  private readonly cqeI32: Int32Array;
  private readonly sqe32: Uint32Array;
  private readonly sqTail: number;
  private readonly sqMask: number;
  private readonly cqHead: number;
  private readonly cqTail: number;
  private readonly cqMask: number;
  private readonly cqes: number;
  private tail: number;
  /** Requests prepared since the last submit. */
  private queued = 0;
  private closed = false;

  /** A ring of `entries` (a power of two ≤ 4096) requests. HostError when the kernel refuses (no io_uring, disabled). */
  constructor(entries: number) {
    if (!Number.isInteger(entries) || entries < 1 || entries > 4096 || (entries & (entries - 1)) !== 0) throw new RangeError(`IoUring: entries must be a power of two in 1..4096, got ${String(entries)}`);
    const l = lib();
    const params = new Uint8Array(PARAMS_SIZE);
    const pv = new DataView(params.buffer);
    pv.setUint32(8, IORING_SETUP_SUBMIT_ALL, true);
    let fd = l.setup(SYS_IO_URING_SETUP, entries, params);
    if (fd < 0 && koffi.errno() === Errno.EINVAL) {
      // Before Linux 5.18 (no SUBMIT_ALL): every request of a batch is valid anyway.
      params.fill(0);
      fd = l.setup(SYS_IO_URING_SETUP, entries, params);
    }
    if (fd < 0) throw new HostError('io_uring_setup', koffi.errno(), `${entries} entries`);
    this.fd = fd;
    try {
      const sqEntries = pv.getUint32(0, true);
      const cqEntries = pv.getUint32(4, true);
      const features = pv.getUint32(20, true);
      if ((features & IORING_FEAT_SINGLE_MMAP) === 0) throw new HostError('io_uring_setup', Errno.EOPNOTSUPP, 'kernel older than 5.4 (no IORING_FEAT_SINGLE_MMAP)');
      const sq = (field: number): number => pv.getUint32(40 + 4 * field, true); // struct io_sqring_offsets
      const cq = (field: number): number => pv.getUint32(80 + 4 * field, true); // struct io_cqring_offsets
      this.ringLen = Math.max(sq(6) + 4 * sqEntries, cq(5) + CQE_SIZE * cqEntries);
      this.ringPtr = mapOrThrow(this.ringLen, MAP_SHARED | MAP_POPULATE, fd, OFF_SQ_RING, 'io_uring rings');
      this.sqePtr = mapOrThrow(SQE_SIZE * sqEntries, MAP_SHARED | MAP_POPULATE, fd, OFF_SQES, 'io_uring SQEs');
      const ringBuf = koffi.view(this.ringPtr, this.ringLen);
      this.ring32 = new Uint32Array(ringBuf);
      this.cqeI32 = new Int32Array(ringBuf);
      this.sqe32 = new Uint32Array(koffi.view(this.sqePtr, SQE_SIZE * sqEntries));
      this.sqe32.fill(0);
      this.entries = sqEntries;
      this.sqTail = sq(1) / 4;
      this.sqMask = this.ring32[sq(2) / 4]!;
      this.cqHead = cq(0) / 4;
      this.cqTail = cq(1) / 4;
      this.cqMask = this.ring32[cq(2) / 4]!;
      this.cqes = cq(5) / 4;
      // The SQ index array maps ring position i to SQE i, once: SQE k is always prepared at position k.
      const array = sq(6) / 4;
      for (let i = 0; i < sqEntries; i++) this.ring32[array + i] = i;
      this.tail = this.ring32[this.sqTail]!;
    } catch (e) {
      l.close(fd);
      throw e;
    }
  }

  /** Requests that can still be prepared before the next submit. */
  get space(): number {
    return this.entries - this.queued;
  }

  /**
   * Prepares a read or write of `len` bytes at `address` on `fd` (at the file's position: -1),
   * with `rwFlags` (RWF_NOWAIT) and `sqeFlags` (IOSQE_IO_LINK); `tag` comes back with the completion.
   */
  prepare(op: number, fd: number, address: number, len: number, rwFlags: number, sqeFlags: number, tag: number): void {
    if (this.queued >= this.entries) throw new RangeError('IoUring: the submission queue is full');
    const i = ((this.tail + this.queued) & this.sqMask) * (SQE_SIZE / 4);
    const s = this.sqe32;
    s[i] = op | (sqeFlags << 8); // opcode, flags, ioprio 0
    s[i + 1] = fd;
    s[i + 2] = 0xffffffff; // off = -1: the file's position (a TAP has none)
    s[i + 3] = 0xffffffff;
    s[i + 4] = address >>> 0;
    s[i + 5] = Math.floor(address / 0x100000000);
    s[i + 6] = len;
    s[i + 7] = rwFlags;
    s[i + 8] = tag;
    // s[i + 9 ..] stay 0: user_data high word, buf_index, personality, splice_fd_in, addr3.
    this.queued++;
  }

  /**
   * Submits the prepared requests and waits until all have completed: then `completions()` of
   * them are in the CQ. Returns the number submitted or -errno (the requests are then dropped).
   */
  submitAndWait(): number {
    const n = this.queued;
    if (n === 0 || this.closed) return 0;
    this.tail = (this.tail + n) >>> 0;
    this.queued = 0;
    Atomics.store(this.ring32, this.sqTail, this.tail);
    const l = lib();
    let r: number;
    do r = l.enter(SYS_IO_URING_ENTER, this.fd, n, n, IORING_ENTER_GETEVENTS, null, 0);
    while (r < 0 && koffi.errno() === Errno.EINTR); // nothing was submitted: again
    if (r < 0) return -koffi.errno();
    // A signal can end the wait early (the call still answers the number submitted): wait for the rest.
    while (this.completions() < r) {
      if (l.enter(SYS_IO_URING_ENTER, this.fd, 0, r - this.completions(), IORING_ENTER_GETEVENTS, null, 0) < 0 && koffi.errno() !== Errno.EINTR) break;
    }
    return r;
  }

  /** Completions waiting in the CQ. */
  completions(): number {
    return (Atomics.load(this.ring32, this.cqTail) - this.ring32[this.cqHead]!) >>> 0;
  }

  /** The tag of completion `k` (0 = oldest unread). */
  completionTag(k: number): number {
    return this.cqeI32[this.cqes + ((this.ring32[this.cqHead]! + k) & this.cqMask) * (CQE_SIZE / 4)]! >>> 0;
  }

  /** The result of completion `k`: bytes, or -errno. */
  completionResult(k: number): number {
    return this.cqeI32[this.cqes + ((this.ring32[this.cqHead]! + k) & this.cqMask) * (CQE_SIZE / 4) + 2]!;
  }

  /** Marks `n` completions read. */
  consume(n: number): void {
    Atomics.store(this.ring32, this.cqHead, (this.ring32[this.cqHead]! + n) >>> 0);
  }

  /** Unmaps the rings and closes the ring fd (nothing is in flight between calls). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const l = lib();
    l.munmap(this.sqePtr, SQE_SIZE * this.entries);
    l.munmap(this.ringPtr, this.ringLen);
    l.close(this.fd);
  }
}
