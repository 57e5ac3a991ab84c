// One netlink request and its reply (no VIRTIO section: RFC 3549, netlink(7)), whatever carries
// the datagrams: NetlinkSocket (this host's kernel) and ipvs/relay-transport.ts (a kernel reached
// through a shell) both build the message here and read the reply with ReplyCollector.
//
// The reply rules: only messages with the request's sequence number count (others are stale: a
// late answer to an earlier request); an NLMSG_ERROR of 0 (the ACK) ends a request, NLMSG_DONE
// ends a dump (NLM_F_DUMP, after NLM_F_MULTI parts; its ACK, if any, follows); a negative
// NLMSG_ERROR is NetlinkError('netlink.errno') with the errno and the kernel's extended-ack text.

import { NetlinkError } from './errors.js';
import type { NlWriter } from './attributes.js';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, buildMessage, errnoError, parseError, parseMessages } from './message.js';
import type { NlMessage } from './message.js';

export interface NetlinkRequest {
  type: number;
  /** Flags besides NLM_F_REQUEST | NLM_F_ACK (e.g. NLM_F_DUMP, NLM_F_CREATE | NLM_F_EXCL). */
  flags?: number;
  /** Writes the family header and attributes. */
  body?: (w: NlWriter) => void;
  /** Names the operation in errors (e.g. 'RTM_NEWLINK vnm0'). */
  what: string;
}

/** The message for `req` with sequence number `seq` (NLM_F_REQUEST | NLM_F_ACK added), and the flags it carries. */
export function requestMessage(req: NetlinkRequest, seq: number): { message: Uint8Array; flags: number } {
  const flags = NLM_F_REQUEST | NLM_F_ACK | (req.flags ?? 0);
  return { message: buildMessage({ type: req.type, flags, seq }, req.body), flags };
}

/** Collects the reply to one request from its datagrams, fed in order. */
export class ReplyCollector {
  /** The reply's data messages so far. */
  readonly messages: NlMessage[] = [];
  private done = false;
  private readonly dump: boolean;

  /** Skipped messages (another sequence number) are counted in `tally.stale`: the collector's own by default, or e.g. a socket's running count. */
  constructor(
    private readonly seq: number,
    flags: number,
    private readonly what: string,
    private readonly tally: { stale: number } = { stale: 0 },
  ) {
    this.dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
  }

  /** Messages with another sequence number (skipped), as counted in the tally. */
  get stale(): number {
    return this.tally.stale;
  }

  get ended(): boolean {
    return this.done;
  }

  /** Takes one datagram (copied: the caller may reuse its buffer); true once the reply has ended. Throws for a kernel error or bad bytes. */
  feed(datagram: Uint8Array): boolean {
    if (this.done) return true;
    for (const m of parseMessages(datagram.slice())) {
      if (m.seq !== this.seq) {
        this.tally.stale++;
        continue;
      }
      if (m.type === NLMSG_NOOP) continue;
      if (m.type === NLMSG_OVERRUN) throw new NetlinkError('netlink.truncated', `${this.what}: the kernel reported NLMSG_OVERRUN`);
      if (m.type === NLMSG_ERROR) {
        const e = parseError(m);
        if (e.errno !== 0) throw errnoError(e, this.what);
        if (!this.dump) return (this.done = true); // the ACK ends a request
        continue;
      }
      if (m.type === NLMSG_DONE) return (this.done = true); // a dump ends here
      this.messages.push(m);
    }
    return false;
  }
}
