// A netlink socket with request/reply semantics (no VIRTIO section: RFC 3549, netlink(7)):
// every request gets a fresh sequence number and NLM_F_ACK, and its reply is read by the rules of
// request.ts (ReplyCollector): replies with another sequence number (a stale answer to an earlier,
// timed-out request) are skipped; a request ends at its ACK (NLMSG_ERROR with 0), a dump
// (NLM_F_DUMP) at NLMSG_DONE after NLM_F_MULTI parts; a negative NLMSG_ERROR becomes a
// NetlinkError with the errno and the kernel's extended-ack text.
//
// Only the kernel answers: every datagram is received with its source address, and one whose
// nl_pid is not 0 (another process with CAP_NET_ADMIN unicasting to our port id) is dropped
// unparsed and counted (`stats().foreign`), whatever sequence number or nlmsg_pid it claims.
//
// Calls are synchronous but never wait long: the kernel families used here (rtnetlink, generic
// netlink) queue their answer in the sender's context before sendto() returns, and build the next
// part of a dump inside the following recv(); a reply the kernel could not queue (receive buffer
// full) surfaces at once as ENOBUFS. So the receive timeout (SO_RCVTIMEO, REPLY_WAIT_MS) only
// covers a reply that is not coming, and bounds what a request can take from the event loop; the
// same bound applies to the time spent skipping foreign datagrams since the kernel last answered.
// (sendto() itself waits for the kernel to process the request, e.g. for the rtnl lock: that is
// the kernel's work, not a wait for a reply.) The host calls go through lib/host.

import { NetlinkError } from './errors.js';
import type { NlMessage } from './message.js';
import { ReplyCollector, requestMessage } from './request.js';
import type { NetlinkRequest } from './request.js';
import { Errno, HostError, bindFd, closeFd, getSockName, recvFrom, sendTo, setSockOpt, socketFd } from '../host/libc.js';
import { AF_NETLINK, NETLINK_EXT_ACK, SOCKADDR_NL_SIZE, SOCK_RAW, SOL_NETLINK, SOL_SOCKET, SO_RCVTIMEO, intArg, sockaddrNl, sockaddrNlPid, timeval, MSG_TRUNC } from '../host/structs.js';

/** Netlink protocols used here (netlink.h). */
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

/** Receive buffer: the kernel caps a dump datagram at 32 KiB (or one page, larger on big pages). */
const RECV_BUFFER = 64 * 1024;
/**
 * Default wait for a reply (see the head comment: the kernel's answer is already queued when
 * sendto() returns, so this only covers a reply that is not coming).
 */
export const REPLY_WAIT_MS = 10;
/** The longest wait a caller may ask for: beyond it a lost reply would stall the event loop, and every backend with it, noticeably. */
export const MAX_REPLY_WAIT_MS = 50;

export interface NetlinkSocketStats {
  requests: number;
  /** Datagrams whose source nl_pid was not 0 (not the kernel): dropped unparsed. */
  foreign: number;
  /** Kernel messages with another sequence number (late answers to earlier requests): skipped. */
  stale: number;
}

export class NetlinkSocket {
  private fd: number;
  private seq: number;
  readonly portId: number;
  private readonly recvBuf = new Uint8Array(RECV_BUFFER);
  /** The source address of the last datagram received. */
  private readonly fromBuf = new Uint8Array(SOCKADDR_NL_SIZE);
  /** The longest wait for the kernel (ms). */
  readonly replyWaitMs: number;
  private readonly counters: NetlinkSocketStats = { requests: 0, foreign: 0, stale: 0 };

  constructor(
    readonly protocol: number,
    options: { timeoutMs?: number } = {},
  ) {
    const timeoutMs = options.timeoutMs ?? REPLY_WAIT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_REPLY_WAIT_MS) {
      throw new RangeError(`NetlinkSocket: timeoutMs must be an integer from 1 to ${MAX_REPLY_WAIT_MS}, got ${String(timeoutMs)}`);
    }
    this.replyWaitMs = timeoutMs;
    this.fd = socketFd(AF_NETLINK, SOCK_RAW, protocol);
    try {
      setSockOpt(this.fd, SOL_SOCKET, SO_RCVTIMEO, timeval(timeoutMs), 'SO_RCVTIMEO');
      try {
        setSockOpt(this.fd, SOL_NETLINK, NETLINK_EXT_ACK, intArg(1), 'NETLINK_EXT_ACK');
      } catch {
        // Older kernels: errors come without the extended-ack text.
      }
      bindFd(this.fd, sockaddrNl(), SOCKADDR_NL_SIZE);
      const addr = new Uint8Array(SOCKADDR_NL_SIZE);
      getSockName(this.fd, addr);
      this.portId = sockaddrNlPid(addr);
    } catch (e) {
      closeFd(this.fd);
      throw e;
    }
    this.seq = (Date.now() & 0x3fffffff) >>> 0;
  }

  /** The sequence number of the last request (the next one uses this + 1). */
  get sequence(): number {
    return this.seq;
  }

  stats(): NetlinkSocketStats {
    return { ...this.counters };
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /** Sends a request and returns the data messages of its reply (none for a plain ACK). */
  request(req: NetlinkRequest): NlMessage[] {
    if (this.fd < 0) throw new Error('NetlinkSocket: closed');
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const { message: msg, flags } = requestMessage(req, seq);
    const sent = sendTo(this.fd, msg, msg.length, null, 0);
    if (sent < 0) throw new HostError('send', -sent, req.what);
    this.counters.requests++;
    const reply = new ReplyCollector(seq, flags, req.what, this.counters); // stale: late answers to earlier requests
    const timeout = (): NetlinkError => new NetlinkError('netlink.timeout', `${req.what}: no reply from the kernel within ${this.replyWaitMs} ms`);
    // The wait for the kernel restarts with each datagram the kernel sends, never with anyone else's.
    let deadline = performance.now() + this.replyWaitMs;
    for (;;) {
      const n = recvFrom(this.fd, this.recvBuf, MSG_TRUNC, this.fromBuf);
      if (n === -Errno.EINTR) {
        if (performance.now() > deadline) throw timeout();
        continue;
      }
      if (n === -Errno.EAGAIN) throw timeout();
      if (n < 0) throw new HostError('recv', -n, req.what);
      if (sockaddrNlPid(this.fromBuf) !== 0) {
        // Not the kernel: never parsed, whatever it claims to answer.
        this.counters.foreign++;
        if (performance.now() > deadline) throw timeout();
        continue;
      }
      deadline = performance.now() + this.replyWaitMs;
      if (n > this.recvBuf.length) throw new NetlinkError('netlink.truncated', `${req.what}: reply of ${n} bytes exceeds the ${this.recvBuf.length}-byte receive buffer`);
      // feed() copies: the receive buffer is reused for the next datagram.
      if (reply.feed(this.recvBuf.subarray(0, n))) return reply.messages;
    }
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeFd(fd);
  }
}
