// A link's multicast address list (no VIRTIO section: netdevice(7) SIOCADDMULTI / SIOCDELMULTI,
// include/uapi/linux/sockios.h). rtnetlink has no message for it; the ioctls take a struct ifreq
// with the address in ifr_hwaddr (AF_UNSPEC), on any datagram socket. The kernel accepts a unicast
// address there too, so the group bit is checked first.

import { NetlinkError } from '../netlink/errors.js';
import { formatMac, isGroupMac } from '../base/mac.js';
import { parseMacString } from '../netlink/mac-text.js';
import { closeFd, ioctlPtr, socketFd } from '../host/libc.js';
import { AF_INET, AF_UNSPEC, IFREQ_SIZE, SIOCADDMULTI, SIOCDELMULTI, SOCK_DGRAM, ifreq, setIfreqHwaddr } from '../host/structs.js';

export class MulticastList {
  private fd: number;
  private readonly req = new Uint8Array(IFREQ_SIZE);

  constructor() {
    this.fd = socketFd(AF_INET, SOCK_DGRAM, 0);
  }

  /** Adds a group address to `ifname`'s list (refcounted by the kernel: one add, one delete). */
  add(ifname: string, mac: string): void {
    this.op(SIOCADDMULTI, 'SIOCADDMULTI', ifname, mac);
  }

  delete(ifname: string, mac: string): void {
    this.op(SIOCDELMULTI, 'SIOCDELMULTI', ifname, mac);
  }

  private op(request: number, name: string, ifname: string, mac: string): void {
    if (this.fd < 0) throw new Error('MulticastList: closed');
    const bytes = parseMacString(mac);
    if (!isGroupMac(bytes)) throw new NetlinkError('netlink.bad-value', `${name}: ${formatMac(bytes)} is not a multicast address (group bit clear)`);
    this.req.set(ifreq(ifname));
    setIfreqHwaddr(this.req, AF_UNSPEC, bytes);
    ioctlPtr(this.fd, request, this.req, IFREQ_SIZE, `${name} ${ifname} ${mac}`);
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeFd(fd);
  }
}

/** The multicast list of every link as /proc/net/dev_mcast shows it: ifname → addresses. */
export function parseDevMcast(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [, name, , , hex] = f as [string, string, string, string, string];
    if (!/^[0-9a-f]{12}$/.test(hex)) continue;
    const mac = hex.match(/../g)!.join(':');
    const list = out.get(name) ?? [];
    list.push(mac);
    out.set(name, list);
  }
  return out;
}
