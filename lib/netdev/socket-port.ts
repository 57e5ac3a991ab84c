// A record socket on the shared poll loop (no VIRTIO section: the host side; unix(7), socket(2),
// recv(2) MSG_TRUNC): a non-blocking unix datagram socket that sends to one address (DgramNetdev's
// unix mode: Node has no unix datagram sockets, so this goes through lib/host's koffi wrappers),
// or one end of a SOCK_SEQPACKET socketpair (VdeNetdev: records to and from `vde_plug`).
//
// Reading: while the sink wants input, POLLIN; on it, up to RECORD_DRAIN_BUDGET records, each with
// recv(MSG_DONTWAIT | MSG_TRUNC) into one reused buffer — the true length comes back even when the
// record did not fit, so an oversize record is counted without being copied. While the sink does
// not want input the socket is not read: the kernel holds the records (for unix sockets the
// sender then gets EAGAIN: real backpressure).
// Writing: one sendto(2) per record (send(2) on the connected pair); -EAGAIN → POLLOUT, then
// sink.writable(). A SOCK_SEQPACKET peer that hung up (POLLHUP, or recv() = 0) fails the
// transport for good; so does a callback that threw (the Poller drops the client).

import { Errno, HostError, closeFd, recvFd, sendTo } from '../host/libc.js';
import { MSG_DONTWAIT, MSG_TRUNC, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT } from '../host/structs.js';
import { Poller } from '../host/poller.js';
import type { PollClient } from '../host/poller.js';
import type { RecordSink, RecordTransport } from './datagram-netdev.js';

/** Records read per turn: bounds one turn's work so other fds and timers get a turn. */
export const RECORD_DRAIN_BUDGET = 64;

export interface SocketPortOptions {
  /** A non-blocking socket; the port owns it (closes it on close()). */
  fd: number;
  /** Where each record goes (sockaddr and its length), or null for a connected socket. */
  destination: { addr: Uint8Array; len: number } | null;
  /** Largest record read in full; longer ones are reported with their true length, truncated. */
  readBytes: number;
  /** A hang-up (POLLHUP, recv() = 0) is the peer going away: fail (SOCK_SEQPACKET). Datagram sockets ignore it. */
  connected: boolean;
  /** For messages. */
  label: string;
}

export class SocketPort implements RecordTransport, PollClient {
  private fdNum: number;
  private readonly destination: { addr: Uint8Array; len: number } | null;
  private readonly buf: Uint8Array;
  private readonly connected: boolean;
  private readonly label: string;
  private blockedWrite = false;
  private closed = false;
  private dead = false;

  constructor(
    options: SocketPortOptions,
    private readonly sink: RecordSink,
    private readonly poller: Poller = Poller.shared(),
  ) {
    this.fdNum = options.fd;
    this.destination = options.destination;
    this.buf = new Uint8Array(options.readBytes);
    this.connected = options.connected;
    this.label = options.label;
    this.poller.add(this);
  }

  get fd(): number {
    return this.fdNum;
  }

  send(data: Uint8Array, length: number): number {
    if (this.closed || this.dead) return -Errno.EBADF;
    const d = this.destination;
    for (;;) {
      const r = sendTo(this.fdNum, data, length, d === null ? null : d.addr, d === null ? 0 : d.len);
      if (r === -Errno.EINTR) continue;
      if (r === -Errno.EAGAIN) {
        this.blockedWrite = true;
        this.poller.update();
      } else if (r >= 0 && r !== length) {
        return -Errno.EMSGSIZE; // a record socket sends all or nothing; never seen, but never 'sent'
      }
      return r;
    }
  }

  update(): void {
    if (!this.closed) this.poller.update();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.poller.remove(this);
    const fd = this.fdNum;
    this.fdNum = -1;
    if (fd >= 0) closeFd(fd);
  }

  // ---- PollClient ----

  interest(): number {
    if (this.closed || this.dead) return 0;
    let ev = 0;
    if (this.sink.wantsInput()) ev |= POLLIN;
    if (this.blockedWrite) ev |= POLLOUT;
    return ev;
  }

  ready(revents: number): void {
    if (this.closed || this.dead) return;
    if ((revents & POLLOUT) !== 0 && this.blockedWrite) {
      this.blockedWrite = false;
      this.sink.writable();
    }
    if ((revents & (POLLIN | POLLERR)) !== 0) this.drain();
    if (this.dead) return;
    if ((revents & POLLNVAL) !== 0 || (this.connected && (revents & POLLHUP) !== 0 && (revents & POLLIN) === 0)) {
      this.fail(new HostError('poll', Errno.EPIPE, `${this.label}: the other end hung up (revents 0x${revents.toString(16)})`));
    }
  }

  pollFailed(error: unknown): void {
    if (this.closed) return;
    const what = error instanceof Error ? error.message : String(error);
    this.fail(new HostError('poll', Errno.EIO, `${this.label}: a callback threw: ${what}`, { cause: error }));
  }

  private fail(e: HostError): void {
    if (this.dead) return;
    this.dead = true;
    this.poller.update();
    this.sink.transportFailed(e);
  }

  private drain(): void {
    const buf = this.buf;
    for (let i = 0; i < RECORD_DRAIN_BUDGET && !this.closed && !this.dead; i++) {
      if (!this.sink.wantsInput()) return;
      const n = recvFd(this.fdNum, buf, MSG_DONTWAIT | MSG_TRUNC);
      if (n === -Errno.EAGAIN) return;
      if (n === -Errno.EINTR) continue;
      if (n < 0) {
        // A pending socket error (POLLERR) comes back here once and is cleared.
        this.sink.hostError(new HostError('recv', -n, this.label));
        if (n === -Errno.EBADF || n === -Errno.ENOTCONN) this.fail(new HostError('recv', -n, this.label));
        return;
      }
      if (n === 0 && this.connected) {
        this.fail(new HostError('recv', Errno.EPIPE, `${this.label}: end of file (the other end closed)`));
        return;
      }
      this.sink.record(n <= buf.length ? buf.subarray(0, n) : buf, n);
    }
  }
}
