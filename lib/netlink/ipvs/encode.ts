// IpvsClient's typed specs → IPVS attribute values (schema.ts), validated first: a value the
// kernel could not take (port 70000, a 20-character scheduler, weight -1, an address that is
// not one) is the caller's error, NetlinkError('netlink.bad-value') before anything is sent.

import { NetlinkError } from '../errors.js';
import type { AttrValues } from '../attributes.js';
import { addressBytes, familyOf } from './address.js';
import type { IpFamily } from './address.js';
import { AF_INET, AF_INET6, DAEMON_STATE, FWD_METHOD, IPPROTO, IP_VS_IFNAME_MAXLEN, IP_VS_PENAME_MAXLEN, IP_VS_SCHEDNAME_MAXLEN, SVC_FLAG, TUN_FLAG, TUN_TYPE } from './schema.js';
import type { IpvsDaemonSpec, IpvsDestinationSpec, IpvsServiceKey, IpvsServiceSpec, IpvsTimeouts } from './types.js';

const badValue = (message: string): NetlinkError => new NetlinkError('netlink.bad-value', message);

export function uint(name: string, v: unknown, max: number, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badValue(`${name} must be an integer ${min}..${max}, got ${String(v)}`);
  return v;
}

/** A 16-bit value as the little-endian u16 whose bytes are it in network order. */
export function swap16(v: number): number {
  return ((v & 0xff) << 8) | (v >> 8);
}

function name(what: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length >= max || !/^[\x21-\x7e]+$/.test(v)) {
    throw badValue(`${what} must be 1..${max - 1} printable ASCII characters, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** union nf_inet_addr: 16 bytes, IPv4 in the first 4. */
function inetAddr(text: string, what: string): Uint8Array {
  const b = addressBytes(text, what);
  const out = new Uint8Array(16);
  out.set(b);
  return out;
}

export function afNumber(family: IpFamily): number {
  return family === 'inet6' ? AF_INET6 : AF_INET;
}

export function serviceFamily(key: IpvsServiceKey): IpFamily {
  if ('fwmark' in key) {
    const f = key.family ?? 'inet';
    if (f !== 'inet' && f !== 'inet6') throw badValue(`service family must be inet or inet6, got ${String(f)}`);
    return f;
  }
  return familyOf(key.address);
}

/** IPVS_ENTRY_ATTR_SERVICE naming one service (AF + protocol/address/port, or AF + fwmark). */
export function serviceKeyAttrs(key: IpvsServiceKey): AttrValues {
  if (key === null || typeof key !== 'object') throw badValue('a service needs { protocol, address, port } or { fwmark }');
  const af = afNumber(serviceFamily(key));
  if ('fwmark' in key) {
    if ('address' in key || 'protocol' in key) throw badValue('a service has either a fwmark or a protocol/address/port, not both');
    return { af, fwmark: uint('fwmark', key.fwmark, 0xffffffff, 1) };
  }
  const protocol = IPPROTO[key.protocol];
  if (protocol === undefined) throw badValue(`protocol must be tcp, udp or sctp, got ${String(key.protocol)}`);
  return { af, protocol, addr: inetAddr(key.address, 'service address'), port: swap16(uint('port', key.port, 0xffff)) };
}

/** The full service for ADD_SERVICE / EDIT_SERVICE (the kernel wants scheduler, flags, timeout and netmask). */
export function serviceAttrs(spec: IpvsServiceSpec): AttrValues {
  const attrs = serviceKeyAttrs(spec);
  const family = serviceFamily(spec);
  let flags = 0;
  const persistent = spec.persistent;
  if (persistent !== undefined) {
    uint('persistent timeout', persistent, 0xffffffff, 1);
    flags |= SVC_FLAG.persistent;
  }
  if (spec.onePacket === true) flags |= SVC_FLAG.onePacket;
  for (const f of spec.schedFlags ?? []) {
    if (f !== 1 && f !== 2 && f !== 3) throw badValue(`scheduler flags are 1, 2 or 3, got ${String(f)}`);
    flags |= [SVC_FLAG.sched1, SVC_FLAG.sched2, SVC_FLAG.sched3][f - 1]!;
  }
  // struct ip_vs_flags: every flag set or cleared as given (mask all ones).
  const fl = new Uint8Array(8);
  const dv = new DataView(fl.buffer);
  dv.setUint32(0, flags, true);
  dv.setUint32(4, 0xffffffff, true);
  let netmask: number;
  if (family === 'inet') {
    const text = spec.netmask ?? '255.255.255.255';
    if (typeof text !== 'string') throw badValue(`an IPv4 service's netmask is dotted text, got ${String(text)}`);
    const b = addressBytes(text, 'netmask');
    if (b.length !== 4) throw badValue(`an IPv4 service's netmask is dotted text, got ${text}`);
    netmask = new DataView(b.buffer).getUint32(0, true);
  } else {
    netmask = uint('IPv6 netmask (prefix length)', spec.netmask ?? 128, 128, 1);
  }
  return {
    ...attrs,
    schedName: name('scheduler', spec.scheduler ?? 'wlc', IP_VS_SCHEDNAME_MAXLEN),
    flags: fl,
    timeout: persistent ?? 0,
    netmask,
    ...(spec.persistenceEngine === undefined ? {} : { peName: name('persistence engine', spec.persistenceEngine, IP_VS_PENAME_MAXLEN) }),
  };
}

/** IPVS_ENTRY_ATTR_DEST naming one destination (address and port). */
export function destKeyAttrs(service: IpvsServiceKey, dest: { address: string; port?: number }): AttrValues {
  if (dest === null || typeof dest !== 'object') throw badValue('a destination needs { address }');
  const family = familyOf(dest.address);
  const port = dest.port ?? ('port' in service ? service.port : 0);
  return { addr: inetAddr(dest.address, 'destination address'), port: swap16(uint('destination port', port, 0xffff)), addrFamily: afNumber(family) };
}

/** The full destination for ADD_DEST / EDIT_DEST. */
export function destAttrs(service: IpvsServiceKey, dest: IpvsDestinationSpec): AttrValues {
  const attrs = destKeyAttrs(service, dest);
  const method = dest.forwarding ?? 'route';
  const fwd = FWD_METHOD[method];
  if (fwd === undefined) throw badValue(`forwarding must be one of ${Object.keys(FWD_METHOD).join(', ')}, got ${String(method)}`);
  const out: AttrValues = {
    ...attrs,
    fwdMethod: fwd,
    weight: uint('weight', dest.weight ?? 1, 0x7fffffff),
    uThresh: uint('upper threshold', dest.upperThreshold ?? 0, 0xffffffff),
    lThresh: uint('lower threshold', dest.lowerThreshold ?? 0, 0xffffffff),
  };
  if (dest.tunnel !== undefined) {
    if (method !== 'tunnel') throw badValue('tunnel options need forwarding "tunnel"');
    const type = TUN_TYPE[dest.tunnel.type];
    if (type === undefined) throw badValue(`tunnel type must be ipip, gue or gre, got ${String(dest.tunnel.type)}`);
    out['tunType'] = type;
    if (dest.tunnel.port !== undefined) out['tunPort'] = swap16(uint('tunnel port', dest.tunnel.port, 0xffff));
    out['tunFlags'] = (dest.tunnel.csum === true ? TUN_FLAG.csum : 0) | (dest.tunnel.remcsum === true ? TUN_FLAG.remcsum : 0);
  }
  return out;
}

export function timeoutAttrs(t: Partial<IpvsTimeouts>): AttrValues {
  const out: AttrValues = {};
  if (t.tcp !== undefined) out['timeoutTcp'] = uint('tcp timeout', t.tcp, 0x7fffffff);
  if (t.tcpFin !== undefined) out['timeoutTcpFin'] = uint('tcpfin timeout', t.tcpFin, 0x7fffffff);
  if (t.udp !== undefined) out['timeoutUdp'] = uint('udp timeout', t.udp, 0x7fffffff);
  if (Object.keys(out).length === 0) throw badValue('setTimeouts needs at least one of tcp, tcpFin, udp');
  return out;
}

export function daemonState(state: unknown): number {
  if (state !== 'master' && state !== 'backup') throw badValue(`daemon state must be master or backup, got ${String(state)}`);
  return DAEMON_STATE[state];
}

export function daemonAttrs(spec: IpvsDaemonSpec): AttrValues {
  return {
    state: daemonState(spec.state),
    mcastIfn: name('multicast interface', spec.interface, IP_VS_IFNAME_MAXLEN),
    syncId: uint('sync id', spec.syncId ?? 0, 255),
  };
}
