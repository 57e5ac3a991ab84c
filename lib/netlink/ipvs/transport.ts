// How IpvsClient's requests reach a kernel (no VIRTIO section: netlink(7), RFC 3549). A
// transport sends one request and resolves to the data messages of its reply; the client does
// not care whether the kernel is this host's (LocalNetlinkTransport: a NETLINK_GENERIC
// NetlinkSocket) or one the bytes are relayed to (relay-transport.ts: a guest's, through a shell).
// Both read the reply by the same rules (../request.ts).

import type { NlMessage } from '../message.js';
import { NETLINK_GENERIC, NetlinkSocket } from '../socket.js';
import type { NetlinkRequest } from '../request.js';

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
