// How IpvsClient's requests reach a kernel (no VIRTIO section: netlink(7), RFC 3549). A
// transport sends one request and resolves to the data messages of its reply; the client does
// not care whether the kernel is this host's (LocalNetlinkTransport: a NETLINK_GENERIC
// NetlinkSocket) or one the bytes are relayed to (relay-transport.ts: a guest's, through a shell).
//
// ReplyCollector is the reply logic for relayed datagrams, the same rules NetlinkSocket applies to
// its own: only messages with the request's sequence number count (others are stale), an
// NLMSG_ERROR of 0 ends a request, NLMSG_DONE ends a dump, a negative NLMSG_ERROR is
// NetlinkError('netlink.errno') with the errno and extended-ack text.

import { NetlinkError } from '../errors.js';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_DUMP, errnoError, parseError, parseMessages } from '../message.js';
import type { NlMessage } from '../message.js';
import { NETLINK_GENERIC, NetlinkSocket } from '../socket.js';
import type { NetlinkRequest } from '../socket.js';

export interface NetlinkTransport {
  /** Sends `req` (NLM_F_REQUEST | NLM_F_ACK added) and resolves to its reply's data messages. */
  request(req: NetlinkRequest): Promise<NlMessage[]>;
  close(): void;
}

/** This host's kernel through a NETLINK_GENERIC socket (needs CAP_NET_ADMIN for changes). */
export class LocalNetlinkTransport implements NetlinkTransport {
  private readonly sock: NetlinkSocket;
  constructor(options: { timeoutMs?: number } = {}) {
    this.sock = new NetlinkSocket(NETLINK_GENERIC, options);
  }
  request(req: NetlinkRequest): Promise<NlMessage[]> {
    try {
      return Promise.resolve(this.sock.request(req));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }
  close(): void {
    this.sock.close();
  }
}

/** Collects the reply to one request from datagrams fed in order. */
export class ReplyCollector {
  readonly messages: NlMessage[] = [];
  /** Messages with another sequence number (skipped). */
  stale = 0;
  private done = false;
  private readonly dump: boolean;

  constructor(
    private readonly seq: number,
    flags: number,
    private readonly what: string,
  ) {
    this.dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
  }

  get ended(): boolean {
    return this.done;
  }

  /** Takes one datagram; true once the reply has ended. Throws for a kernel error or bad bytes. */
  feed(datagram: Uint8Array): boolean {
    if (this.done) return true;
    for (const m of parseMessages(datagram.slice())) {
      if (m.seq !== this.seq) {
        this.stale++;
        continue;
      }
      if (m.type === NLMSG_NOOP) continue;
      if (m.type === NLMSG_OVERRUN) throw new NetlinkError('netlink.truncated', `${this.what}: the kernel reported NLMSG_OVERRUN`);
      if (m.type === NLMSG_ERROR) {
        const e = parseError(m);
        if (e.errno !== 0) throw errnoError(e, this.what);
        if (!this.dump) return (this.done = true);
        continue;
      }
      if (m.type === NLMSG_DONE) return (this.done = true);
      this.messages.push(m);
    }
    return false;
  }
}
