// Host link notifications (no VIRTIO section: rtnetlink(7), RTNLGRP_LINK; what the TAP and macvtap
// backends follow to give the guest the host's link state).
//
// One NETLINK_ROUTE socket per process, bound to the RTNLGRP_LINK multicast group, non-blocking and
// served by the shared poll loop (host/poller.ts): nothing here waits. Every RTM_NEWLINK /
// RTM_DELLINK the kernel multicasts for an ifindex someone watches is handed to the watchers as a
// `LinkNotice`:
//   - 'changed'    RTM_NEWLINK (flags carry IFF_UP and IFF_LOWER_UP, the carrier);
//   - 'deleted'    RTM_DELLINK without IFLA_NEW_NETNSID: the link is gone;
//   - 'unobserved' RTM_DELLINK with IFLA_NEW_NETNSID (the link moved to another network
//                  namespace, where this socket cannot see it), or the socket failed.
// Only the kernel's datagrams count (source nl_pid 0; others are dropped and counted, as in
// socket.ts); notifications of other families (AF_BRIDGE port messages) are skipped.
// Lost notifications: when the socket's receive queue overflowed the kernel says ENOBUFS; the
// monitor then asks for a dump of every link on the same socket (answered asynchronously like any
// notification) and, at its NLMSG_DONE, reports a watched link that was not in it as 'deleted'.
// The socket opens with the first watch and closes (after the poll loop let go of it) with the last.

import { NetlinkError } from './errors.js';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_REQUEST, buildMessage, parseError, parseMessages } from './message.js';
import { NETLINK_ROUTE } from './socket.js';
import { AF_UNSPEC, IFF_LOWER_UP, IFF_UP, RTMGRP_LINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, parseLink, writeIfinfo } from './rtnetlink.js';
import { Errno, HostError, bindFd, closeFd, recvFrom, sendTo, socketFd, SOCK_NONBLOCK } from '../host/libc.js';
import { AF_NETLINK, MSG_DONTWAIT, MSG_TRUNC, POLLIN, SOCKADDR_NL_SIZE, SOCK_RAW, sockaddrNl, sockaddrNlPid } from '../host/structs.js';
import { POLL_ERROR_MASK, Poller } from '../host/poller.js';
import type { PollClient } from '../host/poller.js';

/** A notification dump part is at most 32 KiB (one page or more on large pages); link notices are ~1-2 KiB. */
const RECV_BUFFER = 64 * 1024;
/** Datagrams read per poll turn: bounds one turn's work (a dump after an overflow may be long). */
const DRAIN_BUDGET = 64;

export type LinkNoticeKind = 'changed' | 'deleted' | 'unobserved';

export interface LinkNotice {
  readonly kind: LinkNoticeKind;
  readonly index: number;
  /** IFLA_IFNAME ('' when the notice is synthesized: a link missing from a dump, a failed socket). */
  readonly name: string;
  /** ifi_flags (IFF_*); 0 when synthesized. */
  readonly flags: number;
  /** IFLA_OPERSTATE (IF_OPER), when the kernel sent it. */
  readonly operstate?: number;
}

/**
 * Whether a link carries frames: administratively up (IFF_UP) with carrier (IFF_LOWER_UP). Both
 * bits change at once with the event; IFLA_OPERSTATE (IF_OPER_UP) is derived from the same carrier
 * by the kernel's linkwatch up to a second later, so it is reported but not used.
 */
export function carrierUp(flags: number): boolean {
  return (flags & IFF_UP) !== 0 && (flags & IFF_LOWER_UP) !== 0;
}

export interface LinkMonitorStats {
  /** Link notifications for watched links handed to watchers. */
  notices: number;
  /** Datagrams not from the kernel (source nl_pid != 0): dropped unparsed. */
  foreign: number;
  /** ENOBUFS: notifications were lost and a dump was asked for. */
  overruns: number;
  /** Datagrams that did not parse (counted, skipped). */
  malformed: number;
  /** The socket failed (poll error, recv error): watchers were told 'unobserved'. */
  failures: number;
}

type Listener = (notice: LinkNotice) => void;

export class LinkMonitor implements PollClient {
  private static instance: LinkMonitor | null = null;
  /** The process-wide monitor every backend shares. */
  static shared(): LinkMonitor {
    return (LinkMonitor.instance ??= new LinkMonitor(Poller.shared()));
  }

  private fdNum = -1;
  private readonly watchers = new Map<number, Set<Listener>>();
  private readonly recvBuf = new Uint8Array(RECV_BUFFER);
  private readonly fromBuf = new Uint8Array(SOCKADDR_NL_SIZE);
  private seq = (Date.now() & 0x3fffffff) >>> 0;
  /** Sequence number of the dump in flight after an overflow, or -1. */
  private resyncSeq = -1;
  private readonly resyncSeen = new Set<number>();
  private readonly counters: LinkMonitorStats = { notices: 0, foreign: 0, overruns: 0, malformed: 0, failures: 0 };

  constructor(private readonly poller: Poller) {}

  get fd(): number {
    return this.fdNum;
  }

  /** Whether the socket is open (some link is watched). */
  get open(): boolean {
    return this.fdNum >= 0;
  }

  stats(): LinkMonitorStats {
    return { ...this.counters };
  }

  /**
   * Calls `listener` with every notice for link `index` from now on. The socket is open (subscribed)
   * when this returns, so a state read right after it misses no change. Throws a HostError when the
   * socket cannot be opened. Returns the unwatch function, which resolves once the socket is closed
   * if this was the last watch.
   */
  watch(index: number, listener: Listener): () => Promise<void> {
    if (!Number.isInteger(index) || index <= 0) throw new RangeError(`LinkMonitor.watch: index must be a positive integer, got ${String(index)}`);
    if (typeof listener !== 'function') throw new TypeError('LinkMonitor.watch: listener must be a function');
    if (this.fdNum < 0) this.openSocket();
    let set = this.watchers.get(index);
    if (set === undefined) this.watchers.set(index, (set = new Set()));
    set.add(listener);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const s = this.watchers.get(index);
      s?.delete(listener);
      if (s !== undefined && s.size === 0) this.watchers.delete(index);
      if (this.watchers.size === 0) await this.closeSocket();
    };
  }

  // ---- PollClient ----

  interest(): number {
    return this.fdNum >= 0 ? POLLIN : 0;
  }

  ready(revents: number): void {
    if (this.fdNum < 0) return;
    if ((revents & POLLIN) !== 0) this.drain();
    else if ((revents & POLL_ERROR_MASK) !== 0) this.socketFailed();
  }

  pollFailed(error: unknown): void {
    // A watcher threw out of its listener is caught in dispatch(); this is the monitor's own bug.
    process.emitWarning(`LinkMonitor: left the poll loop: ${String(error)}`, 'LinkMonitorWarning');
    this.socketFailed();
  }

  // ---- internals ----

  private openSocket(): void {
    const fd = socketFd(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
    try {
      bindFd(fd, sockaddrNl(0, RTMGRP_LINK), SOCKADDR_NL_SIZE);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    this.fdNum = fd;
    this.resyncSeq = -1;
    this.poller.add(this);
  }

  private async closeSocket(): Promise<void> {
    const fd = this.fdNum;
    if (fd < 0) return;
    this.fdNum = -1;
    await this.poller.remove(this);
    closeFd(fd);
  }

  /** The socket is unusable: every watcher is told its link is no longer observed. */
  private socketFailed(): void {
    this.counters.failures++;
    const watched = [...this.watchers.keys()];
    void this.closeSocket();
    for (const index of watched) this.dispatch({ kind: 'unobserved', index, name: '', flags: 0 });
  }

  private drain(): void {
    for (let i = 0; i < DRAIN_BUDGET && this.fdNum >= 0; i++) {
      const n = recvFrom(this.fdNum, this.recvBuf, MSG_DONTWAIT | MSG_TRUNC, this.fromBuf);
      if (n === -Errno.EAGAIN) return;
      if (n === -Errno.EINTR) continue;
      if (n === -Errno.ENOBUFS) {
        this.counters.overruns++;
        this.resync();
        continue;
      }
      if (n < 0) {
        process.emitWarning(new HostError('recv', -n, 'rtnetlink link notifications').message, 'LinkMonitorWarning');
        this.socketFailed();
        return;
      }
      if (sockaddrNlPid(this.fromBuf) !== 0) {
        this.counters.foreign++;
        continue;
      }
      if (n > this.recvBuf.length) {
        this.counters.malformed++; // cut short (MSG_TRUNC says how long it was): cannot be parsed
        continue;
      }
      this.datagram(this.recvBuf.subarray(0, n));
    }
  }

  private datagram(buf: Uint8Array): void {
    let messages;
    try {
      messages = parseMessages(buf);
    } catch (e) {
      if (!(e instanceof NetlinkError)) throw e;
      this.counters.malformed++;
      return;
    }
    for (const m of messages) {
      if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
        let link;
        try {
          link = parseLink(m);
        } catch (e) {
          if (!(e instanceof NetlinkError)) throw e;
          this.counters.malformed++;
          continue;
        }
        if (link.family !== AF_UNSPEC) continue;
        if (this.resyncSeq >= 0 && m.seq === this.resyncSeq) this.resyncSeen.add(link.index);
        if (!this.watchers.has(link.index)) continue;
        const kind: LinkNoticeKind = m.type === RTM_NEWLINK ? 'changed' : link.newNetnsid !== undefined ? 'unobserved' : 'deleted';
        this.dispatch({ kind, index: link.index, name: link.name, flags: link.flags, ...(link.operstate === undefined ? {} : { operstate: link.operstate }) });
      } else if (this.resyncSeq >= 0 && m.seq === this.resyncSeq) {
        if (m.type === NLMSG_DONE) this.resyncDone();
        else if (m.type === NLMSG_ERROR && parseError(m).errno !== 0) this.resync(); // e.g. the dump was interrupted: ask again
      }
    }
  }

  /** Asks the kernel for every link (the answer arrives like notifications). */
  private resync(): void {
    this.seq = (this.seq + 1) >>> 0;
    this.resyncSeq = this.seq;
    this.resyncSeen.clear();
    const msg = buildMessage({ type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP, seq: this.seq }, (w) => writeIfinfo(w, {}));
    const r = sendTo(this.fdNum, msg, msg.length, null, 0);
    // EBUSY/ENOBUFS: a dump is still running or the queue is full; the next overflow asks again.
    if (r < 0) this.resyncSeq = -1;
  }

  private resyncDone(): void {
    this.resyncSeq = -1;
    for (const index of [...this.watchers.keys()]) {
      if (!this.resyncSeen.has(index)) this.dispatch({ kind: 'deleted', index, name: '', flags: 0 });
    }
    this.resyncSeen.clear();
  }

  private dispatch(notice: LinkNotice): void {
    const set = this.watchers.get(notice.index);
    if (set === undefined) return;
    this.counters.notices++;
    for (const l of [...set]) {
      try {
        l(notice);
      } catch (e) {
        // A watcher's bug stays with that watcher: the others and the poll loop go on.
        process.emitWarning(`LinkMonitor: a watcher of link ${notice.index} threw: ${String(e)}`, 'LinkMonitorWarning');
      }
    }
  }
}
