// `--netdev stream,…` and `--netdev passt,…` (no spec section: QEMU's `-netdev stream` property
// names, qapi/net.json NetdevStreamOptions, so a QEMU command line's netdev works as written):
//   stream,addr.type=unix,addr.path=P[,server=on|off][,reconnect=SECONDS|,reconnect-ms=MS]
//   stream,addr.type=inet,addr.host=H,addr.port=N[,server=on|off][,reconnect=…]
//   passt[,tcp=SPEC]…[,udp=SPEC]…[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]…
// passt's `tcp=` / `udp=` take passt(1)'s own -t / -u spec, one per property (repeat it); `hostfwd=`
// is QEMU's `-netdev user` spelling of one forward, turned into the same passt spec.

import type { StreamNetdevOptions } from '../netdev/stream-netdev.js';
import { UsageError } from './args.js';

export type StreamNetdevSpec = { kind: 'stream'; options: Omit<StreamNetdevOptions, 'id'> };
export type PasstNetdevSpec = { kind: 'passt'; tcp: string[]; udp: string[] };

/** `key=value` properties in order (keys may repeat). */
function pairs(kind: string, rest: readonly string[]): [string, string][] {
  return rest.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--netdev ${kind}: expected key=value, got ${JSON.stringify(p)}`);
    return [p.slice(0, eq), p.slice(eq + 1)];
  });
}

function onOff(kind: string, key: string, v: string): boolean {
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw new UsageError(`--netdev ${kind}: ${key} must be on or off, got ${JSON.stringify(v)}`);
}

function integer(kind: string, key: string, v: string, lo: number, hi: number): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= lo && n <= hi)) throw new UsageError(`--netdev ${kind}: ${key} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  return n;
}

export function parseStreamNetdev(rest: readonly string[]): StreamNetdevSpec {
  const props = new Map<string, string>();
  const allowed = ['addr.type', 'addr.path', 'addr.host', 'addr.port', 'server', 'reconnect', 'reconnect-ms'];
  for (const [k, v] of pairs('stream', rest)) {
    if (!allowed.includes(k)) throw new UsageError(`--netdev stream: unknown property ${k}; allowed: ${allowed.join(', ')}`);
    if (props.has(k)) throw new UsageError(`--netdev stream: ${k} given twice`);
    props.set(k, v);
  }
  const server = props.has('server') ? onOff('stream', 'server', props.get('server')!) : false;
  if (props.has('reconnect') && props.has('reconnect-ms')) throw new UsageError('--netdev stream: give reconnect (seconds) or reconnect-ms, not both');
  const reconnectMs = props.has('reconnect-ms')
    ? integer('stream', 'reconnect-ms', props.get('reconnect-ms')!, 0, 86_400_000)
    : props.has('reconnect')
      ? integer('stream', 'reconnect', props.get('reconnect')!, 0, 86_400) * 1000
      : 0;
  if (server && reconnectMs > 0) throw new UsageError('--netdev stream: reconnect is for a client (server=off)');
  const type = props.get('addr.type');
  if (type === 'unix') {
    const path = props.get('addr.path');
    if (path === undefined || path === '') throw new UsageError('--netdev stream,addr.type=unix needs addr.path=PATH');
    if (props.has('addr.host') || props.has('addr.port')) throw new UsageError('--netdev stream,addr.type=unix takes addr.path, not addr.host / addr.port');
    return { kind: 'stream', options: { path, server, reconnectMs } };
  }
  if (type === 'inet') {
    const host = props.get('addr.host');
    if (host === undefined || host === '') throw new UsageError('--netdev stream,addr.type=inet needs addr.host=HOST');
    const portText = props.get('addr.port');
    if (portText === undefined) throw new UsageError('--netdev stream,addr.type=inet needs addr.port=PORT');
    if (props.has('addr.path')) throw new UsageError('--netdev stream,addr.type=inet takes addr.host and addr.port, not addr.path');
    const port = integer('stream', 'addr.port', portText, server ? 0 : 1, 65535);
    return { kind: 'stream', options: { host, port, server, reconnectMs } };
  }
  throw new UsageError(`--netdev stream needs addr.type=unix or addr.type=inet, got ${type === undefined ? 'none' : JSON.stringify(type)}`);
}

/** QEMU hostfwd: `tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport` → passt's `[hostaddr/]hostport:guestport`. */
function hostfwd(v: string): { proto: 'tcp' | 'udp'; spec: string } {
  const m = /^(tcp|udp)?:([0-9.]*):(\d{1,5})-([0-9.]*):(\d{1,5})$/.exec(v);
  if (m === null) throw new UsageError(`--netdev passt: hostfwd must look like tcp::8080-:80 (QEMU's spelling), got ${JSON.stringify(v)}`);
  const [, proto = 'tcp', hostAddr, hostPort, guestAddr, guestPort] = m;
  if (guestAddr !== '') throw new UsageError('--netdev passt: hostfwd cannot name a guest address (passt forwards to the guest\'s own address)');
  if (Number(hostPort) > 65535 || Number(guestPort) > 65535) throw new UsageError(`--netdev passt: hostfwd ports must be at most 65535, got ${JSON.stringify(v)}`);
  return { proto: proto as 'tcp' | 'udp', spec: `${hostAddr === '' ? '' : `${hostAddr}/`}${hostPort}:${guestPort}` };
}

export function parsePasstNetdev(rest: readonly string[]): PasstNetdevSpec {
  const out: PasstNetdevSpec = { kind: 'passt', tcp: [], udp: [] };
  for (const [k, v] of pairs('passt', rest)) {
    if (k === 'tcp' || k === 'udp') {
      if (!/^[0-9A-Za-z:.~%/_-]+$/.test(v)) throw new UsageError(`--netdev passt: ${k}= takes one passt port spec (e.g. 8080:80 or 1000-1010; repeat ${k}= for more), got ${JSON.stringify(v)}`);
      out[k].push(v);
    } else if (k === 'hostfwd') {
      const f = hostfwd(v);
      out[f.proto].push(f.spec);
    } else {
      throw new UsageError(`--netdev passt: unknown property ${k}; allowed: tcp, udp, hostfwd`);
    }
  }
  return out;
}
