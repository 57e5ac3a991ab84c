// IPVS replies → typed objects (no VIRTIO section: Linux include/uapi/linux/ip_vs.h and what
// net/netfilter/ipvs/ip_vs_ctl.c puts in each reply). Every attribute is checked: lengths by the
// codec (attributes.ts: a u32 of 3 bytes is 'netlink.bad-attribute'), values here (an address
// family other than AF_INET / AF_INET6, a flags struct that is not 8 bytes, an address shorter
// than its family), and each attribute the kernel always sends must be there
// ('netlink.missing-attribute'). A reply that fails never yields a half-filled object.

import { NetlinkError } from '../errors.js';
import { decodeAttrs } from '../attributes.js';
import type { AttrSchema, AttrValue, DecodedAttrs } from '../attributes.js';
import { GENL_HDRLEN } from '../genl.js';
import { addressText } from './address.js';
import type { IpFamily } from './address.js';
import { swap16 } from './encode.js';
import { AF_INET, AF_INET6, CMD_ATTRS, DAEMON_STATE, FWD_METHOD, IPPROTO, IP_VS_CONN_F_FWD_MASK, TUN_TYPE } from './schema.js';
import type { IpvsDaemon, IpvsDestination, IpvsForwarding, IpvsInfo, IpvsProtocol, IpvsService, IpvsStats, IpvsTimeouts, IpvsTunnelType } from './types.js';

const missing = (what: string, attr: string): NetlinkError => new NetlinkError('netlink.missing-attribute', `${what} without ${attr}`);
const badAttr = (what: string, message: string): NetlinkError => new NetlinkError('netlink.bad-attribute', `${what}: ${message}`);

function num(a: DecodedAttrs, key: string, what: string, attr: string): number {
  const v = a[key];
  if (v === undefined) throw missing(what, attr);
  if (typeof v !== 'number') throw badAttr(what, `${attr} is not a number`);
  return v;
}
function str(a: DecodedAttrs, key: string, what: string, attr: string): string {
  const v = a[key];
  if (v === undefined) throw missing(what, attr);
  if (typeof v !== 'string') throw badAttr(what, `${attr} is not a string`);
  return v;
}
function bytes(a: DecodedAttrs, key: string, what: string, attr: string): Uint8Array {
  const v = a[key];
  if (v === undefined) throw missing(what, attr);
  if (!(v instanceof Uint8Array)) throw badAttr(what, `${attr} is not binary`);
  return v;
}
function nested(v: AttrValue | undefined): DecodedAttrs | undefined {
  return v !== undefined && typeof v === 'object' && !(v instanceof Uint8Array) ? v : undefined;
}

/** The genlmsghdr command of a reply, and its attributes by `schema`. */
export function genlPayload(payload: Uint8Array, expectCmd: number, what: string, schema: AttrSchema = CMD_ATTRS): DecodedAttrs {
  if (payload.length < GENL_HDRLEN) throw new NetlinkError('netlink.truncated', `${what}: generic netlink payload of ${payload.length} bytes, need ${GENL_HDRLEN}`);
  if (payload[0] !== expectCmd) throw new NetlinkError('netlink.malformed', `${what}: reply command ${payload[0]}, expected ${expectCmd}`);
  return decodeAttrs(payload.subarray(GENL_HDRLEN), schema, GENL_HDRLEN);
}

function family(af: number, what: string): IpFamily {
  if (af === AF_INET) return 'inet';
  if (af === AF_INET6) return 'inet6';
  throw badAttr(what, `address family ${af} is neither AF_INET nor AF_INET6`);
}

function address(raw: Uint8Array, fam: IpFamily, what: string): string {
  const need = fam === 'inet' ? 4 : 16;
  if (raw.length !== need && raw.length !== 16) throw badAttr(what, `address of ${raw.length} bytes for ${fam} (need ${need} or 16)`);
  return addressText(raw, fam);
}

const STAT_KEYS = ['conns', 'inpkts', 'outpkts', 'inbytes', 'outbytes', 'cps', 'inpps', 'outpps', 'inbps', 'outbps'] as const;

function stats(a: DecodedAttrs, what: string): IpvsStats | undefined {
  const s = nested(a['stats64']) ?? nested(a['stats']);
  if (s === undefined) return undefined;
  const out = {} as IpvsStats;
  for (const k of STAT_KEYS) {
    const v = s[k];
    if (v === undefined) throw missing(`${what} stats`, k);
    if (typeof v !== 'number' && typeof v !== 'bigint') throw badAttr(what, `stats ${k} is not a number`);
    out[k] = BigInt(v);
  }
  return out;
}

const PROTOCOL_NAMES = new Map<number, IpvsProtocol>(Object.entries(IPPROTO).map(([k, v]) => [v, k as IpvsProtocol]));
const FWD_NAMES = new Map<number, IpvsForwarding>(Object.entries(FWD_METHOD).map(([k, v]) => [v, k as IpvsForwarding]));
const TUN_NAMES = new Map<number, IpvsTunnelType>(Object.entries(TUN_TYPE).map(([k, v]) => [v, k as IpvsTunnelType]));

/** An IPVS_ENTRY_ATTR_SERVICE nest. */
export function decodeService(top: DecodedAttrs, what = 'IPVS service'): IpvsService {
  const a = nested(top['service']);
  if (a === undefined) throw missing(what, 'IPVS_CMD_ATTR_SERVICE');
  const fam = family(num(a, 'af', what, 'IPVS_SVC_ATTR_AF'), what);
  const fwmark = typeof a['fwmark'] === 'number' ? a['fwmark'] : 0;
  const flagsRaw = bytes(a, 'flags', what, 'IPVS_SVC_ATTR_FLAGS');
  if (flagsRaw.length !== 8) throw badAttr(what, `IPVS_SVC_ATTR_FLAGS of ${flagsRaw.length} bytes, need 8 (struct ip_vs_flags)`);
  const nm = num(a, 'netmask', what, 'IPVS_SVC_ATTR_NETMASK');
  let netmask: string | number;
  if (fam === 'inet') {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, nm, true);
    netmask = addressText(b, 'inet');
  } else {
    if (nm > 128) throw badAttr(what, `IPv6 netmask (prefix length) ${nm} > 128`);
    netmask = nm;
  }
  const svc: IpvsService = {
    family: fam,
    fwmark,
    scheduler: str(a, 'schedName', what, 'IPVS_SVC_ATTR_SCHED_NAME'),
    flags: new DataView(flagsRaw.buffer, flagsRaw.byteOffset, 8).getUint32(0, true),
    timeout: num(a, 'timeout', what, 'IPVS_SVC_ATTR_TIMEOUT'),
    netmask,
  };
  if (fwmark === 0) {
    const p = num(a, 'protocol', what, 'IPVS_SVC_ATTR_PROTOCOL');
    svc.protocol = PROTOCOL_NAMES.get(p) ?? p;
    svc.address = address(bytes(a, 'addr', what, 'IPVS_SVC_ATTR_ADDR'), fam, what);
    svc.port = swap16(num(a, 'port', what, 'IPVS_SVC_ATTR_PORT'));
  }
  if (typeof a['peName'] === 'string' && a['peName'] !== '') svc.persistenceEngine = a['peName'];
  const st = stats(a, what);
  if (st !== undefined) svc.stats = st;
  return svc;
}

/** An IPVS_ENTRY_ATTR_DEST nest; `serviceFamily` when the kernel sends no IPVS_DEST_ATTR_ADDR_FAMILY. */
export function decodeDestination(top: DecodedAttrs, serviceFamily: IpFamily, what = 'IPVS destination'): IpvsDestination {
  const a = nested(top['dest']);
  if (a === undefined) throw missing(what, 'IPVS_CMD_ATTR_DEST');
  const fam = typeof a['addrFamily'] === 'number' ? family(a['addrFamily'], what) : serviceFamily;
  const fwd = num(a, 'fwdMethod', what, 'IPVS_DEST_ATTR_FWD_METHOD') & IP_VS_CONN_F_FWD_MASK;
  const forwarding = FWD_NAMES.get(fwd);
  if (forwarding === undefined) throw badAttr(what, `forwarding method ${fwd} is not one IPVS defines`);
  const d: IpvsDestination = {
    family: fam,
    address: address(bytes(a, 'addr', what, 'IPVS_DEST_ATTR_ADDR'), fam, what),
    port: swap16(num(a, 'port', what, 'IPVS_DEST_ATTR_PORT')),
    forwarding,
    weight: num(a, 'weight', what, 'IPVS_DEST_ATTR_WEIGHT') | 0,
    upperThreshold: num(a, 'uThresh', what, 'IPVS_DEST_ATTR_U_THRESH'),
    lowerThreshold: num(a, 'lThresh', what, 'IPVS_DEST_ATTR_L_THRESH'),
    activeConns: num(a, 'activeConns', what, 'IPVS_DEST_ATTR_ACTIVE_CONNS'),
    inactConns: num(a, 'inactConns', what, 'IPVS_DEST_ATTR_INACT_CONNS'),
    persistConns: num(a, 'persistConns', what, 'IPVS_DEST_ATTR_PERSIST_CONNS'),
  };
  if (typeof a['tunType'] === 'number') {
    d.tunnel = {
      type: TUN_NAMES.get(a['tunType']) ?? a['tunType'],
      port: typeof a['tunPort'] === 'number' ? swap16(a['tunPort']) : 0,
      flags: typeof a['tunFlags'] === 'number' ? a['tunFlags'] : 0,
    };
  }
  const st = stats(a, what);
  if (st !== undefined) d.stats = st;
  return d;
}

/** An IPVS_ENTRY_ATTR_DAEMON nest. */
export function decodeDaemon(top: DecodedAttrs, what = 'IPVS sync daemon'): IpvsDaemon {
  const a = nested(top['daemon']);
  if (a === undefined) throw missing(what, 'IPVS_CMD_ATTR_DAEMON');
  const state = num(a, 'state', what, 'IPVS_DAEMON_ATTR_STATE');
  const name = state === DAEMON_STATE.master ? 'master' : state === DAEMON_STATE.backup ? 'backup' : undefined;
  if (name === undefined) throw badAttr(what, `state ${state} is neither master (1) nor backup (2)`);
  const d: IpvsDaemon = {
    state: name,
    interface: str(a, 'mcastIfn', what, 'IPVS_DAEMON_ATTR_MCAST_IFN'),
    syncId: num(a, 'syncId', what, 'IPVS_DAEMON_ATTR_SYNC_ID'),
  };
  if (typeof a['syncMaxlen'] === 'number') d.syncMaxlen = a['syncMaxlen'];
  if (a['mcastGroup'] instanceof Uint8Array) d.mcastGroup = address(a['mcastGroup'], 'inet', what);
  else if (a['mcastGroup6'] instanceof Uint8Array) d.mcastGroup = address(a['mcastGroup6'], 'inet6', what);
  if (typeof a['mcastPort'] === 'number') d.mcastPort = a['mcastPort'];
  if (typeof a['mcastTtl'] === 'number') d.mcastTtl = a['mcastTtl'];
  return d;
}

export function decodeTimeouts(a: DecodedAttrs, what = 'IPVS timeouts'): IpvsTimeouts {
  return {
    tcp: num(a, 'timeoutTcp', what, 'IPVS_CMD_ATTR_TIMEOUT_TCP'),
    tcpFin: num(a, 'timeoutTcpFin', what, 'IPVS_CMD_ATTR_TIMEOUT_TCP_FIN'),
    udp: num(a, 'timeoutUdp', what, 'IPVS_CMD_ATTR_TIMEOUT_UDP'),
  };
}

export function decodeInfo(a: DecodedAttrs, what = 'IPVS info'): IpvsInfo {
  const code = num(a, 'version', what, 'IPVS_INFO_ATTR_VERSION');
  return { version: `${(code >> 16) & 0xff}.${(code >> 8) & 0xff}.${code & 0xff}`, versionCode: code, connTableSize: num(a, 'connTabSize', what, 'IPVS_INFO_ATTR_CONN_TAB_SIZE') };
}
