// A netlink socket with request/reply semantics (no VIRTIO section: RFC 3549, netlink(7)):
// every request gets a fresh sequence number and NLM_F_ACK; replies with another sequence number
// (a stale answer to an earlier, timed-out request) are skipped; a request ends at its ACK
// (NLMSG_ERROR with 0), a dump (NLM_F_DUMP) at NLMSG_DONE after NLM_F_MULTI parts; a negative
// NLMSG_ERROR becomes a NetlinkError with the errno and the kernel's extended-ack text.
//
// Calls are synchronous with a receive timeout (SO_RCVTIMEO): kernel families answer at once,
// and the timeout bounds the wait if one does not. The host calls go through lib/host.

import { NetlinkError } from './errors.js';
import type { NlWriter } from './attributes.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  buildMessage,
  errnoError,
  parseError,
  parseMessages,
} from './message.js';
import type { NlMessage } from './message.js';
import { Errno, HostError, bindFd, closeFd, getSockName, recvFd, sendTo, setSockOpt, socketFd } from '../host/libc.js';
import { AF_NETLINK, NETLINK_EXT_ACK, SOCKADDR_NL_SIZE, SOCK_RAW, SOL_NETLINK, SOL_SOCKET, SO_RCVTIMEO, intArg, sockaddrNl, sockaddrNlPid, timeval, MSG_TRUNC } from '../host/structs.js';

/** Netlink protocols used here (netlink.h). */
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

/** Receive buffer: the kernel caps a dump datagram at 32 KiB (or one page, larger on big pages). */
const RECV_BUFFER = 64 * 1024;
/** Default wait for a reply; kernel families answer in microseconds. */
const DEFAULT_TIMEOUT_MS = 2000;

export interface NetlinkRequest {
  type: number;
  /** Flags besides NLM_F_REQUEST | NLM_F_ACK (e.g. NLM_F_DUMP, NLM_F_CREATE | NLM_F_EXCL). */
  flags?: number;
  /** Writes the family header and attributes. */
  body?: (w: NlWriter) => void;
  /** Names the operation in errors (e.g. 'RTM_NEWLINK vnm0'). */
  what: string;
}

export class NetlinkSocket {
  private fd: number;
  private seq: number;
  readonly portId: number;
  private readonly recvBuf = new Uint8Array(RECV_BUFFER);

  constructor(
    readonly protocol: number,
    options: { timeoutMs?: number } = {},
  ) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`NetlinkSocket: timeoutMs must be an integer >= 1, got ${String(timeoutMs)}`);
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

  get closed(): boolean {
    return this.fd < 0;
  }

  /** Sends a request and returns the data messages of its reply (none for a plain ACK). */
  request(req: NetlinkRequest): NlMessage[] {
    if (this.fd < 0) throw new Error('NetlinkSocket: closed');
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const flags = NLM_F_REQUEST | NLM_F_ACK | (req.flags ?? 0);
    const msg = buildMessage({ type: req.type, flags, seq }, req.body);
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const sent = sendTo(this.fd, msg, msg.length, null, 0);
    if (sent < 0) throw new HostError('send', -sent, req.what);
    const out: NlMessage[] = [];
    for (;;) {
      const n = recvFd(this.fd, this.recvBuf, MSG_TRUNC);
      if (n === -Errno.EINTR) continue;
      if (n === -Errno.EAGAIN) throw new NetlinkError('netlink.timeout', `${req.what}: no reply from the kernel in time`);
      if (n < 0) throw new HostError('recv', -n, req.what);
      if (n > this.recvBuf.length) throw new NetlinkError('netlink.truncated', `${req.what}: reply of ${n} bytes exceeds the ${this.recvBuf.length}-byte receive buffer`);
      // Copy: the receive buffer is reused for the next datagram.
      for (const m of parseMessages(this.recvBuf.slice(0, n))) {
        if (m.seq !== seq) continue; // a late answer to an earlier request
        if (m.type === NLMSG_NOOP) continue;
        if (m.type === NLMSG_OVERRUN) throw new NetlinkError('netlink.truncated', `${req.what}: the kernel reported NLMSG_OVERRUN`);
        if (m.type === NLMSG_ERROR) {
          const e = parseError(m);
          if (e.errno !== 0) throw errnoError(e, req.what);
          if (!dump) return out; // the ACK ends a request
          continue;
        }
        if (m.type === NLMSG_DONE) return out; // a dump ends here (its ACK, if any, follows)
        out.push(m);
      }
    }
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeFd(fd);
  }
}
