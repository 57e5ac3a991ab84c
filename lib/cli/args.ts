// Command-line parsing for `virtio-net` (no spec section: the command of the README's main job).
// Every bad flag or value is a `UsageError` saying what was given and what is allowed.

import { dgramEndpoints } from '../netdev/dgram-address.js';
import type { DgramSocketAddress } from '../netdev/dgram-address.js';
import { parsePasstNetdev, parseStreamNetdev, type PasstNetdevSpec, type StreamNetdevSpec } from './stream-args.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One flag of a subcommand. */
export interface FlagSpec {
  readonly name: string;
  /** 'boolean' flags take no value; the others take the next argument or `--name=value`. */
  readonly kind: 'boolean' | 'string' | 'number';
  readonly help: string;
  /** For 'string': the allowed values, when closed. */
  readonly choices?: readonly string[];
  /** For 'number': inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
  /** For 'string': may be given more than once; the values are collected in order (a string[]). */
  readonly repeatable?: boolean;
}

export type ParsedFlags = Record<string, string | number | boolean | string[] | undefined>;

export function parseFlags(command: string, argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const out: ParsedFlags = {};
  const byName = new Map(specs.map((s) => [s.name, s]));
  const allowed = (): string => specs.map((s) => `--${s.name}`).join(', ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      throw new UsageError(`virtio-net ${command}: unexpected argument ${JSON.stringify(arg)}; flags: ${allowed()}`);
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new UsageError(`virtio-net ${command}: unknown flag --${name}; flags: ${allowed()}`);
    if (spec.kind === 'boolean') {
      if (eq !== -1) throw new UsageError(`virtio-net ${command}: --${name} takes no value, got ${JSON.stringify(arg.slice(eq + 1))}`);
      out[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || (eq === -1 && value.startsWith('--'))) {
      throw new UsageError(`virtio-net ${command}: --${name} needs a value (${describeValue(spec)})`);
    }
    if (spec.kind === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new UsageError(`virtio-net ${command}: --${name} must be ${describeValue(spec)}, got ${JSON.stringify(value)}`);
      }
      out[name] = n;
    } else {
      if (spec.choices !== undefined && !spec.choices.includes(value)) {
        throw new UsageError(`virtio-net ${command}: --${name} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(value)}`);
      }
      if (spec.repeatable === true) ((out[name] ??= []) as string[]).push(value);
      else out[name] = value;
    }
  }
  return out;
}

function describeValue(spec: FlagSpec): string {
  if (spec.kind === 'number') return `a number${spec.min !== undefined ? ` >= ${spec.min}` : ''}${spec.max !== undefined ? ` and <= ${spec.max}` : ''}`;
  if (spec.choices !== undefined) return `one of ${spec.choices.join(', ')}`;
  return 'a string';
}

/**
 * `--netdev tap,ifname=NAME[,io=inline|uring]` (io: one system call per frame, the default, or
 * io_uring batches: TapNetdev's `io`) / `--netdev macvtap,ifname=NAME[,sync=on|off]` / `memory` /
 * `--netdev dgram,local.type=inet,local.host=H,local.port=N,remote.type=inet,remote.host=H,remote.port=N`
 * (or `…type=unix,….path=P`; a multicast remote.host makes it multicast, local then optional) /
 * `--netdev vde,sock=DIR` / stream / passt (stream-args.ts) — QEMU's `-netdev` spellings; and
 * `--netdev websocket,url=ws://…` (ours: a v86 relay).
 */
export type NetdevSpec =
  | { kind: 'memory' }
  | { kind: 'tap'; ifname?: string; io?: 'inline' | 'uring' }
  | { kind: 'macvtap'; ifname: string; sync: boolean }
  | { kind: 'dgram'; local?: DgramSocketAddress; remote?: DgramSocketAddress }
  | { kind: 'vde'; sock: string }
  | { kind: 'websocket'; url: string }
  | StreamNetdevSpec
  | PasstNetdevSpec;

/** The backends `--netdev` takes. */
export const NETDEV_KINDS = ['memory', 'tap', 'macvtap', 'dgram', 'vde', 'stream', 'passt', 'websocket'] as const;

export function parseNetdev(value: string): NetdevSpec {
  const [kind, ...rest] = value.split(',');
  if (kind === 'stream') return parseStreamNetdev(rest);
  if (kind === 'passt') return parsePasstNetdev(rest);
  if (kind === 'websocket') return parseWebSocketNetdev(rest);
  const props = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--netdev: expected key=value after the backend, got ${JSON.stringify(p)} (e.g. tap,ifname=tap0)`);
    props.set(p.slice(0, eq), p.slice(eq + 1));
  }
  const only = (allowedKeys: string[]): void => {
    for (const k of props.keys()) {
      if (!allowedKeys.includes(k)) throw new UsageError(`--netdev ${kind}: unknown property ${k}; allowed: ${allowedKeys.join(', ') || '(none)'}`);
    }
  };
  switch (kind) {
    case 'memory':
      only([]);
      return { kind: 'memory' };
    case 'tap': {
      only(['ifname', 'io']);
      const ifname = props.get('ifname');
      if (ifname !== undefined) checkIfname(ifname);
      const io = props.get('io');
      if (io !== undefined && io !== 'inline' && io !== 'uring') throw new UsageError(`--netdev tap: io must be inline or uring, got ${JSON.stringify(io)}`);
      return { kind: 'tap', ...(ifname === undefined ? {} : { ifname }), ...(io === undefined ? {} : { io }) };
    }
    case 'macvtap': {
      only(['ifname', 'sync']);
      const ifname = props.get('ifname');
      if (ifname === undefined) throw new UsageError('--netdev macvtap needs ifname=NAME (an existing macvtap link)');
      checkIfname(ifname);
      const sync = props.get('sync') ?? 'on';
      if (sync !== 'on' && sync !== 'off') throw new UsageError(`--netdev macvtap: sync must be on or off, got ${JSON.stringify(sync)}`);
      return { kind: 'macvtap', ifname, sync: sync === 'on' };
    }
    case 'dgram':
      return parseDgram(props);
    case 'vde': {
      for (const k of props.keys()) {
        if (k === 'port' || k === 'group' || k === 'mode') throw new UsageError(`--netdev vde: ${k}= is not supported (vde_plug connects to any free port of the switch); give sock=DIR only`);
      }
      only(['sock']);
      const sock = props.get('sock');
      if (sock === undefined || sock === '') throw new UsageError('--netdev vde needs sock=DIR (the directory of a running `vde_switch -s DIR`)');
      return { kind: 'vde', sock };
    }
    default:
      throw new UsageError(`--netdev: unknown backend ${JSON.stringify(kind)}; allowed: ${NETDEV_KINDS.join(', ')}`);
  }
}

/**
 * `websocket,url=ws://HOST:PORT/PATH` (or wss://): a v86-style relay (one binary message per
 * frame). The URL is the last property and may hold commas (everything after `url=`).
 */
function parseWebSocketNetdev(rest: readonly string[]): NetdevSpec {
  const joined = rest.join(',');
  if (!joined.startsWith('url=')) {
    throw new UsageError(`--netdev websocket needs url=ws://HOST:PORT[/PATH] (or wss://), got ${JSON.stringify(joined)}`);
  }
  const url = joined.slice('url='.length);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--netdev websocket: url is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new UsageError(`--netdev websocket: url must be ws:// or wss://, got ${JSON.stringify(url)}`);
  }
  if (parsed.hostname === '') throw new UsageError(`--netdev websocket: url has no host: ${JSON.stringify(url)}`);
  return { kind: 'websocket', url };
}

/** `local.*` / `remote.*` properties as QEMU's SocketAddress objects, checked by QEMU's rules. */
function parseDgram(props: Map<string, string>): NetdevSpec {
  const sides: Record<'local' | 'remote', Record<string, string>> = { local: {}, remote: {} };
  for (const [k, v] of props) {
    const m = /^(local|remote)\.(type|host|port|path)$/.exec(k);
    if (m === null) throw new UsageError(`--netdev dgram: unknown property ${k}; allowed: local.type, local.host, local.port, local.path, remote.type, remote.host, remote.port, remote.path`);
    sides[m[1] as 'local' | 'remote'][m[2]!] = v;
  }
  const address = (side: 'local' | 'remote'): DgramSocketAddress | undefined => {
    const p = sides[side];
    if (Object.keys(p).length === 0) return undefined;
    if (p['type'] === 'inet') {
      if (p['path'] !== undefined) throw new UsageError(`--netdev dgram: ${side}.path belongs to type unix, not inet`);
      return { type: 'inet', host: p['host'] ?? '', port: p['port'] ?? '' };
    }
    if (p['type'] === 'unix') {
      if (p['host'] !== undefined || p['port'] !== undefined) throw new UsageError(`--netdev dgram: ${side}.host and ${side}.port belong to type inet, not unix`);
      return { type: 'unix', path: p['path'] ?? '' };
    }
    throw new UsageError(`--netdev dgram: ${side}.type must be inet or unix, got ${JSON.stringify(p['type'] ?? '')}`);
  };
  const local = address('local');
  const remote = address('remote');
  try {
    dgramEndpoints('--netdev dgram', local, remote);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { kind: 'dgram', ...(local !== undefined ? { local } : {}), ...(remote !== undefined ? { remote } : {}) };
}

function checkIfname(name: string): void {
  // Linux IFNAMSIZ is 16 including the NUL; no '/', ':' or whitespace.
  if (name.length === 0 || name.length > 15 || /[\s/:]/.test(name)) {
    throw new UsageError(`--netdev: ifname must be 1-15 characters without spaces, '/' or ':', got ${JSON.stringify(name)}`);
  }
}

/** `--ip ADDR/LEN` and `--peer ADDR`: the scripted guest's IPv4 address and the on-link peer it pings. */
export interface GuestIpSpec {
  ip: [number, number, number, number];
  prefixLength: number;
  peer: [number, number, number, number];
}

export const DEFAULT_GUEST_IP = '10.0.2.15/24';
export const DEFAULT_PEER = '10.0.2.2';

export function parseGuestIp(ipText: string = DEFAULT_GUEST_IP, peerText: string = DEFAULT_PEER): GuestIpSpec {
  const slash = ipText.indexOf('/');
  const ip = slash < 0 ? undefined : dottedQuad(ipText.slice(0, slash));
  const lenText = slash < 0 ? '' : ipText.slice(slash + 1);
  const len = /^\d{1,2}$/.test(lenText) ? Number(lenText) : NaN;
  if (ip === undefined || !(len >= 1 && len <= 31)) {
    throw new UsageError(`--ip must be an IPv4 address and prefix length 1-31, e.g. ${DEFAULT_GUEST_IP}, got ${JSON.stringify(ipText)}`);
  }
  const peer = dottedQuad(peerText);
  if (peer === undefined) throw new UsageError(`--peer must be an IPv4 address, e.g. ${DEFAULT_PEER}, got ${JSON.stringify(peerText)}`);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const net = (a: number[]): number => (((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0);
  const subnet = `${[24, 16, 8, 0].map((s) => ((net(ip) & mask) >>> s) & 0xff).join('.')}/${len}`;
  const check = (flag: string, a: number[], text: string): void => {
    const why = unusableHost(a, net(a), mask, len);
    if (why !== null) throw new UsageError(`--${flag}: ${text} is ${why}; the scripted guest needs a unicast host address`);
  };
  check('ip', ip, ipText.slice(0, slash));
  check('peer', peer, peerText);
  if ((net(ip) & mask) !== (net(peer) & mask)) {
    throw new UsageError(`--peer ${peerText} is not on the guest's subnet ${subnet} (--ip ${ipText}); the scripted guest pings a peer on its link`);
  }
  if (net(ip) === net(peer)) throw new UsageError(`--peer ${peerText} is the guest's own address (--ip ${ipText})`);
  return { ip: ip as GuestIpSpec['ip'], prefixLength: len, peer: peer as GuestIpSpec['peer'] };
}

/** Four decimal octets 0-255 without leading zeros, or undefined. */
function dottedQuad(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

/** Why `a` cannot be a host's address on a /len subnet, or null. */
function unusableHost(a: number[], n: number, mask: number, len: number): string | null {
  if (a[0] === 0) return 'in 0.0.0.0/8 ("this network")';
  if (a[0] === 127) return 'a loopback address';
  if (a[0]! >= 224) return a[0]! < 240 ? 'a multicast address' : 'a reserved or broadcast address';
  if (len <= 30 && (n & ~mask) >>> 0 === 0) return 'the subnet\'s network address';
  if (len <= 30 && (n & ~mask) >>> 0 === ~mask >>> 0) return 'the subnet\'s broadcast address';
  return null;
}
