// `virtio-net ipvs …`: an ipvsadm-style front end over IpvsClient (lib/netlink/ipvs). The
// option spelling follows ipvsadm(8) for what it covers; listings print as `ipvsadm -Ln` does
// (addresses always numeric, so -n is accepted and implied). Kernel refusals print the errno
// name and end with status 1; bad options are usage errors (status 2).

import { UsageError } from './args.js';
import { HostError } from '../host/libc.js';
import { NetlinkError } from '../netlink/errors.js';
import { IpvsClient } from '../netlink/ipvs/client.js';
import { formatDaemons, formatList, formatTimeouts } from '../netlink/ipvs/format.js';
import type { IpvsDestinationSpec, IpvsForwarding, IpvsProtocol, IpvsServiceKey, IpvsServiceSpec } from '../netlink/ipvs/types.js';

export const IPVS_USAGE = `usage: virtio-net ipvs COMMAND [options]   (ipvsadm's spelling)
  -L, -l [-n] [--stats] [--timeout] [--daemon]   list (as ipvsadm -Ln)
  -A SERVICE [-s SCHED] [-p [TIMEOUT]] [-M NETMASK] [-o] [-b FLAGS] [--pe NAME]   add a service
  -E SERVICE …          edit a service        -D SERVICE   delete a service
  -a SERVICE -r ADDR[:PORT] [-g|-i|-m] [-w WEIGHT] [-x UTHRESH] [-y LTHRESH]   add a real server
  -e SERVICE -r …       edit a real server    -d SERVICE -r ADDR[:PORT]   delete a real server
  -C                    flush every service   -Z [SERVICE]   zero counters
  --set TCP TCPFIN UDP  set timeouts (seconds; 0 keeps one)
  --start-daemon master|backup --mcast-interface IF [--syncid N]
  --stop-daemon master|backup
SERVICE: -t ADDR:PORT (tcp) | -u ADDR:PORT (udp) | --sctp-service ADDR:PORT | -f FWMARK [-6]
ADDR: IPv4, or IPv6 in brackets ([2001:db8::1]:80)
`;

/** Short flags that take no value and may be combined (-Ln). */
const BARE = new Set(['L', 'l', 'n', 'C', 'Z', '6', 'g', 'i', 'm', 'o', 'A', 'E', 'D', 'a', 'e', 'd']);
const COMMANDS: Record<string, string> = {
  '-L': 'list', '-l': 'list', '--list': 'list',
  '-A': 'add-service', '--add-service': 'add-service',
  '-E': 'edit-service', '--edit-service': 'edit-service',
  '-D': 'delete-service', '--delete-service': 'delete-service',
  '-a': 'add-server', '--add-server': 'add-server',
  '-e': 'edit-server', '--edit-server': 'edit-server',
  '-d': 'delete-server', '--delete-server': 'delete-server',
  '-C': 'clear', '--clear': 'clear',
  '-Z': 'zero', '--zero': 'zero',
  '--set': 'set',
  '--start-daemon': 'start-daemon',
  '--stop-daemon': 'stop-daemon',
};

/** ADDR:PORT or [ADDR6]:PORT; the port may be absent when `portOptional`. */
export function parseAddrPort(text: string, what: string, portOptional = false): { address: string; port?: number } {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(text) ?? /^([0-9.]+)(?::(\d+))?$/.exec(text);
  if (m === null) throw new UsageError(`virtio-net ipvs: ${what} ${JSON.stringify(text)} is not ADDR[:PORT] (IPv6 in brackets)`);
  if (m[2] === undefined) {
    if (!portOptional) throw new UsageError(`virtio-net ipvs: ${what} ${JSON.stringify(text)} needs a :PORT`);
    return { address: m[1]! };
  }
  const port = Number(m[2]);
  if (port > 65535) throw new UsageError(`virtio-net ipvs: ${what} port ${port} is above 65535`);
  return { address: m[1]!, port };
}

function intArg(v: string | undefined, what: string, max = 0xffffffff): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) > max) throw new UsageError(`virtio-net ipvs: ${what} needs an integer 0..${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Expands combined short flags (-Ln → -L -n). */
function expand(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    if (/^-[A-Za-z6]{2,}$/.test(a) && [...a.slice(1)].every((c) => BARE.has(c))) out.push(...[...a.slice(1)].map((c) => `-${c}`));
    else out.push(a);
  }
  return out;
}

export interface IpvsCommandIo {
  client?: IpvsClient;
  out?: (text: string) => void;
  err?: (text: string) => void;
}

/** Runs `virtio-net ipvs ARGS`; returns the exit status. */
export async function ipvsCommand(argv: readonly string[], io: IpvsCommandIo = {}): Promise<number> {
  const out = io.out ?? ((t: string): void => void process.stdout.write(t));
  const err = io.err ?? ((t: string): void => void process.stderr.write(t));
  const args = expand(argv);
  let command: string | undefined;
  let service: IpvsServiceKey | undefined;
  let proto: IpvsProtocol | undefined;
  let svcAddr: { address: string; port?: number } | undefined;
  let fwmark: number | undefined;
  let v6 = false;
  const spec: { scheduler?: string; persistent?: number; netmask?: string | number; onePacket?: boolean; schedFlags?: (1 | 2 | 3)[]; persistenceEngine?: string } = {};
  const dest: { address?: string; port?: number; forwarding?: IpvsForwarding; weight?: number; upperThreshold?: number; lowerThreshold?: number } = {};
  let stats = false;
  let timeout = false;
  let daemon = false;
  let setValues: number[] = [];
  let daemonState: string | undefined;
  let mcastIf: string | undefined;
  let syncId: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`virtio-net ipvs: ${a} needs a value`);
      return v;
    };
    if (Object.hasOwn(COMMANDS, a)) {
      if (command !== undefined) throw new UsageError(`virtio-net ipvs: one command at a time (${command} and ${a})`);
      command = COMMANDS[a];
      if (command === 'set') setValues = [value(), value(), value()].map((v) => intArg(v, '--set', 0x7fffffff));
      if (command === 'start-daemon' || command === 'stop-daemon') daemonState = value();
      continue;
    }
    switch (a) {
      case '-n': case '--numeric': break;
      case '--stats': stats = true; break;
      case '--timeout': timeout = true; break;
      case '--daemon': daemon = true; break;
      case '-t': case '--tcp-service': proto = 'tcp'; svcAddr = parseAddrPort(value(), 'service'); break;
      case '-u': case '--udp-service': proto = 'udp'; svcAddr = parseAddrPort(value(), 'service'); break;
      case '--sctp-service': proto = 'sctp'; svcAddr = parseAddrPort(value(), 'service'); break;
      case '-f': case '--fwmark-service': fwmark = intArg(value(), 'fwmark'); break;
      case '-6': case '--ipv6': v6 = true; break;
      case '-s': case '--scheduler': spec.scheduler = value(); break;
      case '-p': case '--persistent': {
        const next = args[i + 1];
        spec.persistent = next !== undefined && /^\d+$/.test(next) ? intArg(args[++i], '-p') : 300;
        break;
      }
      case '-M': case '--netmask': { const v = value(); spec.netmask = /^\d+$/.test(v) ? Number(v) : v; break; }
      case '-o': case '--ops': spec.onePacket = true; break;
      case '-b': case '--sched-flags':
        spec.schedFlags = value().split(',').map((f) => {
          const n = { 'flag-1': 1, 'sh-fallback': 1, 'mh-fallback': 1, 'flag-2': 2, 'sh-port': 2, 'mh-port': 2, 'flag-3': 3 }[f];
          if (n === undefined) throw new UsageError(`virtio-net ipvs: unknown scheduler flag ${JSON.stringify(f)}`);
          return n as 1 | 2 | 3;
        });
        break;
      case '--pe': spec.persistenceEngine = value(); break;
      case '-r': case '--real-server': Object.assign(dest, parseAddrPort(value(), 'real server', true)); break;
      case '-g': case '--gatewaying': dest.forwarding = 'route'; break;
      case '-i': case '--ipip': dest.forwarding = 'tunnel'; break;
      case '-m': case '--masquerading': dest.forwarding = 'masq'; break;
      case '-w': case '--weight': dest.weight = intArg(value(), '-w', 0x7fffffff); break;
      case '-x': case '--u-threshold': dest.upperThreshold = intArg(value(), '-x'); break;
      case '-y': case '--l-threshold': dest.lowerThreshold = intArg(value(), '-y'); break;
      case '--mcast-interface': mcastIf = value(); break;
      case '--syncid': syncId = intArg(value(), '--syncid', 255); break;
      default: throw new UsageError(`virtio-net ipvs: unknown option ${JSON.stringify(a)}\n${IPVS_USAGE}`);
    }
  }
  if (command === undefined) throw new UsageError(`virtio-net ipvs: no command\n${IPVS_USAGE}`);
  if (fwmark !== undefined && proto !== undefined) throw new UsageError('virtio-net ipvs: a service is -t/-u/--sctp-service or -f, not both');
  if (fwmark !== undefined) service = { fwmark, family: v6 ? 'inet6' : 'inet' };
  else if (proto !== undefined && svcAddr !== undefined) service = { protocol: proto, address: svcAddr.address, port: svcAddr.port! };
  const needService = (): IpvsServiceKey => {
    if (service === undefined) throw new UsageError(`virtio-net ipvs: ${command} needs a service (-t, -u, --sctp-service or -f)`);
    return service;
  };
  const needDest = (): IpvsDestinationSpec => {
    if (dest.address === undefined) throw new UsageError(`virtio-net ipvs: ${command} needs -r ADDR[:PORT]`);
    return dest as IpvsDestinationSpec;
  };
  const client = io.client ?? new IpvsClient();
  try {
    switch (command) {
      case 'list':
        if (timeout) out(formatTimeouts(await client.timeouts()));
        else if (daemon) out(formatDaemons(await client.daemons()));
        else {
          const info = await client.info();
          const services = service === undefined ? await client.services() : [await client.service(service)];
          const listing = [];
          for (const s of services) listing.push({ service: s, destinations: await client.destinations(s) });
          out(formatList(info, listing, { stats }));
        }
        break;
      case 'add-service': await client.addService({ ...needService(), ...spec } as IpvsServiceSpec); break;
      case 'edit-service': await client.editService({ ...needService(), ...spec } as IpvsServiceSpec); break;
      case 'delete-service': await client.deleteService(needService()); break;
      case 'add-server': await client.addDestination(needService(), needDest()); break;
      case 'edit-server': await client.editDestination(needService(), needDest()); break;
      case 'delete-server': await client.deleteDestination(needService(), needDest()); break;
      case 'clear': await client.flush(); break;
      case 'zero': await client.zero(service); break;
      case 'set': await client.setTimeouts({ tcp: setValues[0]!, tcpFin: setValues[1]!, udp: setValues[2]! }); break;
      case 'start-daemon':
        if (mcastIf === undefined) throw new UsageError('virtio-net ipvs: --start-daemon needs --mcast-interface IF');
        if (daemonState !== 'master' && daemonState !== 'backup') throw new UsageError('virtio-net ipvs: --start-daemon takes master or backup');
        await client.startDaemon({ state: daemonState, interface: mcastIf, ...(syncId === undefined ? {} : { syncId }) });
        break;
      case 'stop-daemon':
        if (daemonState !== 'master' && daemonState !== 'backup') throw new UsageError('virtio-net ipvs: --stop-daemon takes master or backup');
        await client.stopDaemon(daemonState);
        break;
    }
    return 0;
  } catch (e) {
    if (e instanceof HostError || (e instanceof NetlinkError && e.code !== 'netlink.bad-value')) {
      err(`virtio-net ipvs: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NetlinkError) throw new UsageError(`virtio-net ipvs: ${e.message}`);
    throw e;
  } finally {
    if (io.client === undefined) client.close();
  }
}
