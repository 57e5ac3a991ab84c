// rtnetlink link and neighbour operations (no VIRTIO section: include/uapi/linux/rtnetlink.h,
// if_link.h, neighbour.h; rtnetlink(7)). What the host rx-filter sync and the tests need:
// RTM_GETLINK (one or a dump), RTM_NEWLINK to change IFLA_ADDRESS and ifi_flags/ifi_change
// (IFF_UP, IFF_PROMISC, IFF_ALLMULTI), RTM_NEWLINK with IFLA_LINKINFO to create veth and macvtap
// links, RTM_DELLINK, and RTM_NEWNEIGH/RTM_DELNEIGH with NTF_SELF (AF_BRIDGE fdb entries on the
// device itself: secondary unicast addresses of a passthru macvtap).

import BufferLayout from 'buffer-layout';
import { NetlinkError } from './errors.js';
import { decodeAttrs, encodeAttrs } from './attributes.js';
import type { AttrSchema, AttrValues, NlWriter } from './attributes.js';
import { NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL } from './message.js';
import type { NlMessage } from './message.js';
import { NETLINK_ROUTE, NetlinkSocket } from './socket.js';
import { formatMac } from '../base/mac.js';
import { parseMacString } from './mac-text.js';

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;

/** net_device flags (if.h). */
export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_RUNNING = 0x40;
export const IFF_PROMISC = 0x100;
export const IFF_ALLMULTI = 0x200;
export const IFF_MULTICAST = 0x1000;
/** The link has carrier (netif_carrier_ok), set as the carrier changes (not through linkwatch). */
export const IFF_LOWER_UP = 0x10000;

/** Multicast group of link notifications (RTNLGRP_LINK = 1; as a bind() group mask, RTMGRP_LINK). */
export const RTMGRP_LINK = 0x1;

/** IFLA_OPERSTATE values (RFC 2863, if.h IF_OPER_*). */
export const IF_OPER = { unknown: 0, notpresent: 1, down: 2, lowerlayerdown: 3, testing: 4, dormant: 5, up: 6 } as const;

export const AF_UNSPEC = 0;
export const AF_BRIDGE = 7;
/** ndm_flags / ndm_state (neighbour.h). */
export const NTF_SELF = 0x02;
export const NUD_PERMANENT = 0x80;

/** IFLA_MACVLAN_MODE values (if_link.h). */
export const MACVLAN_MODE = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 } as const;
export type MacvlanMode = keyof typeof MACVLAN_MODE;

export interface IfInfoMsg {
  family: number;
  pad: number;
  type: number;
  index: number;
  flags: number;
  change: number;
}
/** struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; } — 16 bytes. */
export const ifinfomsgLayout = BufferLayout.struct<IfInfoMsg>([
  BufferLayout.u8('family'),
  BufferLayout.u8('pad'),
  BufferLayout.u16('type'),
  BufferLayout.s32('index'),
  BufferLayout.u32('flags'),
  BufferLayout.u32('change'),
]);
export const IFINFOMSG_SIZE = 16;

export interface NdMsg {
  family: number;
  pad1: number;
  pad2: number;
  ifindex: number;
  state: number;
  flags: number;
  type: number;
}
/** struct ndmsg { u8 family; u8 pad1; u16 pad2; s32 ifindex; u16 state; u8 flags; u8 type; } — 12 bytes. */
export const ndmsgLayout = BufferLayout.struct<NdMsg>([
  BufferLayout.u8('family'),
  BufferLayout.u8('pad1'),
  BufferLayout.u16('pad2'),
  BufferLayout.s32('ifindex'),
  BufferLayout.u16('state'),
  BufferLayout.u8('flags'),
  BufferLayout.u8('type'),
]);
export const NDMSG_SIZE = 12;

const MACVLAN_DATA: AttrSchema = { mode: { type: 1, kind: 'u32' } };
const LINKINFO: AttrSchema = {
  kind: { type: 1, kind: 'string' },
  data: { type: 2, kind: 'nested', nested: MACVLAN_DATA },
};
/** IFLA_* attributes used here (if_link.h). */
export const IFLA: AttrSchema = {
  address: { type: 1, kind: 'binary' },
  broadcast: { type: 2, kind: 'binary' },
  ifname: { type: 3, kind: 'string' },
  mtu: { type: 4, kind: 'u32' },
  link: { type: 5, kind: 'u32' },
  master: { type: 10, kind: 'u32' },
  txqlen: { type: 13, kind: 'u32' },
  operstate: { type: 16, kind: 'u8' },
  linkinfo: { type: 18, kind: 'nested', nested: LINKINFO },
  netNsPid: { type: 19, kind: 'u32' },
  netNsFd: { type: 28, kind: 'u32' },
  promiscuity: { type: 30, kind: 'u32' },
  /** In the RTM_DELLINK of a link moving to another namespace: that namespace's id as seen from here. */
  newNetnsid: { type: 45, kind: 's32' },
  allmulti: { type: 61, kind: 'u32' },
};
/** NDA_* attributes (neighbour.h). */
export const NDA: AttrSchema = {
  dst: { type: 1, kind: 'binary' },
  lladdr: { type: 2, kind: 'binary' },
  master: { type: 9, kind: 'u32' },
};

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  /** net_device flags (IFF_*). */
  readonly flags: number;
  /** "aa:bb:cc:dd:ee:ff", when the link has an Ethernet address. */
  readonly address?: string;
  readonly mtu?: number;
  /** IFLA_INFO_KIND ('veth', 'macvtap', 'tun', …). */
  readonly kind?: string;
  /** IFLA_MACVLAN_MODE name for macvlan/macvtap links. */
  readonly macvlanMode?: MacvlanMode;
  readonly promiscuity?: number;
  /** Index of the lower device (IFLA_LINK). */
  readonly link?: number;
  /** IFLA_OPERSTATE (IF_OPER). */
  readonly operstate?: number;
  /** IFLA_NEW_NETNSID: present in the RTM_DELLINK of a link that moved to another namespace. */
  readonly newNetnsid?: number;
  /** ifi_family (AF_UNSPEC for links; AF_BRIDGE for a bridge port's notifications). */
  readonly family: number;
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export function writeIfinfo(w: NlWriter, m: Partial<IfInfoMsg>): void {
  const b = Buffer.alloc(IFINFOMSG_SIZE);
  ifinfomsgLayout.encode({ family: m.family ?? AF_UNSPEC, pad: 0, type: m.type ?? 0, index: m.index ?? 0, flags: m.flags ?? 0, change: m.change ?? 0 }, b, 0);
  w.bytes(b);
}

/** Decodes an RTM_NEWLINK payload (ifinfomsg + IFLA attributes). */
export function parseLink(m: NlMessage): LinkInfo {
  if (m.payload.length < IFINFOMSG_SIZE) throw new NetlinkError('netlink.truncated', `RTM_NEWLINK payload of ${m.payload.length} bytes, need ${IFINFOMSG_SIZE}`, { type: m.type });
  const hdr = ifinfomsgLayout.decode(asBuffer(m.payload), 0);
  const a = decodeAttrs(m.payload.subarray(IFINFOMSG_SIZE), IFLA, IFINFOMSG_SIZE);
  const li = a.linkinfo as AttrValues | undefined;
  const data = li?.data as AttrValues | undefined;
  const modeNum = typeof data?.mode === 'number' ? data.mode : undefined;
  const mode = modeNum === undefined ? undefined : (Object.entries(MACVLAN_MODE).find(([, v]) => v === modeNum)?.[0] as MacvlanMode | undefined);
  return {
    index: hdr.index,
    name: typeof a.ifname === 'string' ? a.ifname : '',
    flags: hdr.flags,
    ...(a.address instanceof Uint8Array && a.address.length === 6 ? { address: formatMac(a.address) } : {}),
    ...(typeof a.mtu === 'number' ? { mtu: a.mtu } : {}),
    ...(typeof li?.kind === 'string' ? { kind: li.kind } : {}),
    ...(mode === undefined ? {} : { macvlanMode: mode }),
    ...(typeof a.promiscuity === 'number' ? { promiscuity: a.promiscuity } : {}),
    ...(typeof a.link === 'number' ? { link: a.link } : {}),
    ...(typeof a.operstate === 'number' ? { operstate: a.operstate } : {}),
    ...(typeof a.newNetnsid === 'number' ? { newNetnsid: a.newNetnsid } : {}),
    family: hdr.family,
  };
}

/** rtnetlink operations over one NETLINK_ROUTE socket. */
export class Rtnetlink {
  readonly socket: NetlinkSocket;
  constructor(socket?: NetlinkSocket) {
    this.socket = socket ?? new NetlinkSocket(NETLINK_ROUTE);
  }

  /** One link by name or index. A missing link is a 'netlink.errno' error with errno ENODEV. */
  getLink(link: string | number): LinkInfo {
    const replies = this.socket.request({
      type: RTM_GETLINK,
      what: `RTM_GETLINK ${link}`,
      body: (w) => {
        writeIfinfo(w, { index: typeof link === 'number' ? link : 0 });
        if (typeof link === 'string') encodeAttrs(w, IFLA, { ifname: link });
      },
    });
    const first = replies[0];
    if (first === undefined) throw new NetlinkError('netlink.malformed', `RTM_GETLINK ${link}: no reply message`);
    return parseLink(first);
  }

  /** Every link (a multipart dump). */
  listLinks(): LinkInfo[] {
    return this.socket.request({ type: RTM_GETLINK, flags: NLM_F_DUMP, what: 'RTM_GETLINK dump', body: (w) => writeIfinfo(w, {}) }).map(parseLink);
  }

  /** Sets the bits of `change` in the link's flags to their values in `flags`. */
  setFlags(index: number, flags: number, change: number): void {
    this.socket.request({ type: RTM_NEWLINK, what: `RTM_NEWLINK flags ${index}`, body: (w) => writeIfinfo(w, { index, flags, change }) });
  }

  setUp(index: number, up: boolean): void {
    this.setFlags(index, up ? IFF_UP : 0, IFF_UP);
  }

  /** Sets the link's Ethernet address (IFLA_ADDRESS). */
  setAddress(index: number, mac: string | Uint8Array): void {
    const bytes = typeof mac === 'string' ? parseMacString(mac) : mac;
    this.socket.request({
      type: RTM_NEWLINK,
      what: `RTM_NEWLINK address ${index}`,
      body: (w) => {
        writeIfinfo(w, { index });
        encodeAttrs(w, IFLA, { address: bytes });
      },
    });
  }

  /** Moves a link into the network namespace open at `netnsFd`. */
  setNetns(index: number, netnsFd: number): void {
    this.socket.request({
      type: RTM_NEWLINK,
      what: `RTM_NEWLINK netns ${index}`,
      body: (w) => {
        writeIfinfo(w, { index });
        encodeAttrs(w, IFLA, { netNsFd: netnsFd });
      },
    });
  }

  /** Creates a veth pair; the peer goes into the namespace open at `peerNetnsFd` when given. */
  createVeth(name: string, peerName: string, options: { peerNetnsFd?: number } = {}): void {
    this.socket.request({
      type: RTM_NEWLINK,
      flags: NLM_F_CREATE | NLM_F_EXCL,
      what: `RTM_NEWLINK veth ${name}`,
      body: (w) => {
        writeIfinfo(w, {});
        encodeAttrs(w, IFLA, { ifname: name });
        const li = w.beginAttr(IFLA.linkinfo!.type | 0x8000);
        encodeAttrs(w, LINKINFO, { kind: 'veth' });
        const data = w.beginAttr(LINKINFO.data!.type | 0x8000);
        // VETH_INFO_PEER carries a whole ifinfomsg followed by the peer's IFLA attributes.
        const peer = w.beginAttr(1);
        writeIfinfo(w, {});
        encodeAttrs(w, IFLA, { ifname: peerName, ...(options.peerNetnsFd === undefined ? {} : { netNsFd: options.peerNetnsFd }) });
        w.endAttr(peer);
        w.endAttr(data);
        w.endAttr(li);
      },
    });
  }

  /** Creates a macvtap link on the lower device `lowerIndex`. */
  createMacvtap(name: string, lowerIndex: number, mode: MacvlanMode = 'bridge', options: { address?: string } = {}): void {
    if (!(mode in MACVLAN_MODE)) throw new NetlinkError('netlink.bad-value', `macvtap mode must be one of ${Object.keys(MACVLAN_MODE).join(', ')}, got ${String(mode)}`);
    this.socket.request({
      type: RTM_NEWLINK,
      flags: NLM_F_CREATE | NLM_F_EXCL,
      what: `RTM_NEWLINK macvtap ${name}`,
      body: (w) => {
        writeIfinfo(w, {});
        encodeAttrs(w, IFLA, {
          ifname: name,
          link: lowerIndex,
          ...(options.address === undefined ? {} : { address: parseMacString(options.address) }),
          linkinfo: { kind: 'macvtap', data: { mode: MACVLAN_MODE[mode] } },
        });
      },
    });
  }

  deleteLink(index: number): void {
    this.socket.request({ type: RTM_DELLINK, what: `RTM_DELLINK ${index}`, body: (w) => writeIfinfo(w, { index }) });
  }

  /** Adds (or removes) a unicast address in the device's own fdb (NTF_SELF): macvlan passthru only. */
  neighSelf(op: 'add' | 'del', ifindex: number, mac: string): void {
    const lladdr = parseMacString(mac);
    this.socket.request({
      type: op === 'add' ? RTM_NEWNEIGH : RTM_DELNEIGH,
      flags: op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : 0,
      what: `${op === 'add' ? 'RTM_NEWNEIGH' : 'RTM_DELNEIGH'} ${mac} on ${ifindex}`,
      body: (w) => {
        const b = Buffer.alloc(NDMSG_SIZE);
        ndmsgLayout.encode({ family: AF_BRIDGE, pad1: 0, pad2: 0, ifindex, state: NUD_PERMANENT, flags: NTF_SELF, type: 0 }, b, 0);
        w.bytes(b);
        encodeAttrs(w, NDA, { lladdr });
      },
    });
  }

  close(): void {
    this.socket.close();
  }
}
