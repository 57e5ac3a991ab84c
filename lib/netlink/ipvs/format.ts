// Text as `ipvsadm -Ln` prints it (no VIRTIO section: ipvsadm(8) and its list output, checked
// line for line against Debian's ipvsadm 1.31 on the same kernel in test/guest/qemu-ipvs.test.ts):
// the version line, the column titles, each service (sorted by fwmark, family, protocol, address,
// port, as ipvsadm sorts) with its destinations (sorted by address, port); --stats swaps the
// columns for the counters; --timeout and --daemon their one-line forms.

import type { IpvsDaemon, IpvsDestination, IpvsInfo, IpvsService, IpvsStats, IpvsTimeouts } from './types.js';
import { addressBytes } from './address.js';
import { IPPROTO, SVC_FLAG } from './schema.js';

export interface ServiceListing {
  service: IpvsService;
  destinations: IpvsDestination[];
}

const padEnd = (s: string, n: number): string => s.padEnd(n);
const padStart = (s: string, n: number): string => s.padStart(n);

const FWD_NAMES: Record<IpvsDestination['forwarding'], string> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route', bypass: 'Bypass' };

function protoNumber(p: IpvsService['protocol']): number {
  return typeof p === 'number' ? p : p === undefined ? 0 : IPPROTO[p];
}

function addrPort(address: string, port: number, v6: boolean): string {
  return v6 ? `[${address}]:${port}` : `${address}:${port}`;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** ipvsadm's service order: fwmark, address family, protocol, address, port. */
export function compareServices(a: IpvsService, b: IpvsService): number {
  return (
    a.fwmark - b.fwmark ||
    (a.family === b.family ? 0 : a.family === 'inet' ? -1 : 1) ||
    protoNumber(a.protocol) - protoNumber(b.protocol) ||
    compareBytes(addressBytes(a.address ?? '0.0.0.0'), addressBytes(b.address ?? '0.0.0.0')) ||
    (a.port ?? 0) - (b.port ?? 0)
  );
}

/** ipvsadm's destination order: address, port. */
export function compareDestinations(a: IpvsDestination, b: IpvsDestination): number {
  return compareBytes(addressBytes(a.address), addressBytes(b.address)) || a.port - b.port;
}

/**
 * "TCP  10.0.0.1:80", "SCTP 10.0.0.2:9899", "FWM  7", "FWM  8 IPv6": the kind padded to four
 * columns and a space; IPv4 names cut at 33 characters, as ipvsadm does.
 */
export function serviceName(s: IpvsService): string {
  const v6 = s.family === 'inet6';
  if (s.fwmark !== 0) return `FWM  ${s.fwmark}${v6 ? ' IPv6' : ''}`;
  const proto = s.protocol === 'tcp' ? 'TCP' : s.protocol === 'udp' ? 'UDP' : 'SCTP';
  const name = `${proto.padEnd(4)} ${addrPort(s.address ?? '', s.port ?? 0, v6)}`;
  return v6 ? name : name.slice(0, 33);
}

/** Scheduler flag names as ipvsadm shows them (sh and mh name theirs). */
function schedFlagNames(s: IpvsService): string[] {
  const named: Record<string, [string, string]> = { sh: ['sh-fallback', 'sh-port'], mh: ['mh-fallback', 'mh-port'] };
  const names = named[s.scheduler] ?? ['flag-1', 'flag-2'];
  const out: string[] = [];
  if (s.flags & SVC_FLAG.sched1) out.push(names[0]);
  if (s.flags & SVC_FLAG.sched2) out.push(names[1]);
  if (s.flags & SVC_FLAG.sched3) out.push('flag-3');
  return out;
}

function serviceLine(s: IpvsService): string {
  let line = `${serviceName(s)} ${s.scheduler}`;
  const flags = schedFlagNames(s);
  if (flags.length > 0) line += ` (${flags.join(',')})`;
  if (s.flags & SVC_FLAG.persistent) {
    line += ` persistent ${s.timeout}`;
    if (s.family === 'inet' && s.netmask !== '255.255.255.255') line += ` mask ${s.netmask}`;
    if (s.family === 'inet6' && s.netmask !== 128) line += ` mask ${s.netmask}`;
    if (s.persistenceEngine !== undefined) line += ` pe ${s.persistenceEngine}`;
  }
  if (s.flags & SVC_FLAG.onePacket) line += ' ops';
  return line;
}

/** ipvsadm's print_largenum: 9 columns, K / M / G / T beyond 100 million. */
export function largeNumber(n: bigint): string {
  if (n < 100_000_000n) return padStart(String(n), 9);
  if (n < 1_000_000_000n) return `${padStart(String(n / 1000n), 8)}K`;
  if (n < 100_000_000_000n) return `${padStart(String(n / 1_000_000n), 8)}M`;
  if (n < 100_000_000_000_000n) return `${padStart(String(n / 1_000_000_000n), 8)}G`;
  return `${padStart(String(n / 1_000_000_000_000n), 8)}T`;
}

const ZERO: IpvsStats = { conns: 0n, inpkts: 0n, outpkts: 0n, inbytes: 0n, outbytes: 0n, cps: 0n, inpps: 0n, outpps: 0n, inbps: 0n, outbps: 0n };
const counters = (st: IpvsStats | undefined): string => {
  const s = st ?? ZERO;
  return [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map(largeNumber).join('');
};

/** The whole `ipvsadm -Ln` (or `-Ln --stats`) text, ending with a newline. */
export function formatList(info: IpvsInfo, listing: readonly ServiceListing[], options: { stats?: boolean } = {}): string {
  const lines = [`IP Virtual Server version ${info.version} (size=${info.connTableSize})`];
  if (options.stats === true) {
    lines.push(`${padEnd('Prot LocalAddress:Port', 33)} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((t) => padStart(t, 8)).join(' ')}`, '  -> RemoteAddress:Port');
  } else {
    lines.push('Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn');
  }
  for (const { service, destinations } of [...listing].sort((a, b) => compareServices(a.service, b.service))) {
    const v6 = service.family === 'inet6';
    lines.push(options.stats === true ? padEnd(serviceName(service), 33) + counters(service.stats) : serviceLine(service));
    for (const d of [...destinations].sort(compareDestinations)) {
      let name = addrPort(d.address, d.port, d.family === 'inet6');
      if (!v6) name = name.slice(0, 28);
      if (options.stats === true) lines.push(`  -> ${padEnd(name, 28)}${counters(d.stats)}`);
      else lines.push(`  -> ${padEnd(name, 28)} ${padEnd(FWD_NAMES[d.forwarding], 7)} ${padEnd(String(d.weight), 6)} ${padEnd(String(d.activeConns), 10)} ${padEnd(String(d.inactConns), 10)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** `ipvsadm -Ln --timeout`. */
export function formatTimeouts(t: IpvsTimeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpFin} ${t.udp}\n`;
}

/** `ipvsadm -Ln --daemon`: master first, then backup. */
export function formatDaemons(daemons: readonly IpvsDaemon[]): string {
  const order = (d: IpvsDaemon): number => (d.state === 'master' ? 0 : 1);
  return [...daemons]
    .sort((a, b) => order(a) - order(b))
    .map((d) => {
      let s = `${d.state} sync daemon (mcast=${d.interface}, syncid=${d.syncId}`;
      if (d.syncMaxlen !== undefined) s += `, maxlen=${d.syncMaxlen}`;
      if (d.mcastGroup !== undefined) s += `, group=${d.mcastGroup}`;
      if (d.mcastPort !== undefined) s += `, port=${d.mcastPort}`;
      if (d.mcastTtl !== undefined) s += `, ttl=${d.mcastTtl}`;
      return `${s})\n`;
    })
    .join('');
}
