// A NetlinkTransport whose kernel is reached through a shell: each request runs
// `nlrelay PROTOCOL HEX` (scripts/guest/nlrelay.c, in the QEMU guest image's "ipvs" profile),
// which sends the message on a fresh netlink socket of that kernel and prints every datagram of
// the reply as a line "< HEX". The datagrams are checked here exactly as a local socket's are
// (ReplyCollector, ../request.ts). Used to test IpvsClient against a guest kernel that has IPVS
// when the host's has not.

import { NetlinkError } from '../errors.js';
import type { NlMessage } from '../message.js';
import { NETLINK_GENERIC } from '../socket.js';
import { ReplyCollector, requestMessage } from '../request.js';
import type { NetlinkRequest } from '../request.js';
import type { NetlinkTransport } from './transport.js';

/** Runs one shell command line and resolves to its exit status and output. */
export type ShellRunner = (command: string) => Promise<{ exitCode: number; output: string }>;

export class ShellRelayTransport implements NetlinkTransport {
  private seq = (Date.now() & 0x3fffffff) >>> 0;
  private closed = false;

  constructor(
    private readonly run: ShellRunner,
    private readonly protocol = NETLINK_GENERIC,
  ) {}

  async request(req: NetlinkRequest): Promise<NlMessage[]> {
    if (this.closed) throw new Error('ShellRelayTransport: closed');
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const { message: msg, flags } = requestMessage(req, seq);
    const { exitCode, output } = await this.run(`nlrelay ${this.protocol} ${Buffer.from(msg).toString('hex')}`);
    const collector = new ReplyCollector(seq, flags, req.what);
    for (const line of output.split('\n')) {
      const m = /^< ([0-9a-f]*)$/.exec(line.trim());
      if (m === null) continue;
      if (collector.feed(Buffer.from(m[1]!, 'hex'))) break;
    }
    if (!collector.ended) {
      throw new NetlinkError('netlink.timeout', `${req.what}: the relay ended (exit ${exitCode}) before the reply did: ${output.trim().slice(-200)}`);
    }
    return collector.messages;
  }

  close(): void {
    this.closed = true;
  }
}
