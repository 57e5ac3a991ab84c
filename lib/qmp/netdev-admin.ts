// netdev_add / netdev_del (QEMU qapi/net.json `Netdev`, net/net.c qmp_netdev_add / qmp_netdev_del)
// and the stream netdev events (NETDEV_STREAM_CONNECTED / NETDEV_STREAM_DISCONNECTED, since QEMU
// 7.2). Arguments flat, in QEMU's spelling where QEMU has the type:
//   stream     `addr: { type: 'unix', path } | { type: 'inet', host, port }, server?, reconnect? (s,
//              QEMU 8), reconnect-ms? (QEMU 9.2)`; error texts as QEMU 7.2 gives them (checked
//              against it: Duplicate ID, Parameter … is missing, expects an identifier, Device …
//              not found).
//   dgram      `local?, remote?` as QEMU's SocketAddress objects (qapi/net.json NetdevDgramOptions;
//              checked by dgram-address.ts, QEMU's rules).
//   vde        `sock` (the switch's directory, QEMU's `-netdev vde,sock=`).
//   passt      `tcp?, udp?`: lists of passt(1) `-t` / `-u` specs (the CLI's `tcp=` / `udp=`).
//   websocket  `url` (ws:// or wss://), `reconnect-ms?` (0 = never; default v86's 10 s).
// A parameter that belongs to another type is "Parameter 'X' is unexpected" (QEMU's words for a
// member outside the chosen union branch). The netdev is open (listening, connected, bound, its
// helper process running) before netdev_add answers; a netdev that cannot open is an error and
// leaves nothing behind.

import { DgramNetdev } from '../netdev/dgram-netdev.js';
import { PasstNetdev } from '../netdev/passt-netdev.js';
import { StreamNetdev, type StreamNetdevOptions, type StreamSocketAddress } from '../netdev/stream-netdev.js';
import { VdeNetdev } from '../netdev/vde-netdev.js';
import { WebSocketNetdev, type WebSocketConstructor } from '../netdev/websocket-netdev.js';
import { QmpError, genericError } from './errors.js';
import type { QmpNetdev } from './nic.js';

/** A netdev whose connection events QMP forwards (StreamNetdev satisfies it). */
export interface QmpStreamNetdev extends QmpNetdev {
  readonly kind: 'stream';
  on(event: 'connected', listener: (addr: StreamSocketAddress) => void): unknown;
  on(event: 'disconnected', listener: () => void): unknown;
  off(event: 'connected', listener: (addr: StreamSocketAddress) => void): unknown;
  off(event: 'disconnected', listener: () => void): unknown;
}

export function isStreamNetdev(n: unknown): n is QmpStreamNetdev {
  const s = n as Partial<QmpStreamNetdev> | null;
  return typeof s === 'object' && s !== null && s.kind === 'stream' && typeof s.on === 'function' && typeof s.off === 'function';
}

/** What the netdev_add / netdev_del handlers reach through the context (the server implements it). */
export interface QmpNetdevAdmin {
  /** Creates, opens and registers a netdev from netdev_add's arguments. */
  add(args: NetdevAddArgs): Promise<void>;
  /** Closes and forgets a netdev (DeviceNotFound / GenericError as QEMU). */
  del(id: string): Promise<void>;
}

export interface NetdevAddArgs {
  type: string;
  id: string;
  addr?: unknown;
  server?: boolean;
  reconnect?: number;
  'reconnect-ms'?: number;
  local?: unknown;
  remote?: unknown;
  sock?: string;
  tcp?: readonly string[];
  udp?: readonly string[];
  url?: string;
}

/** The netdev types netdev_add makes (the schema's NetClientDriver enum). */
export const QMP_NETDEV_TYPES = ['stream', 'dgram', 'vde', 'passt', 'websocket'] as const;

/** How long netdev_add waits for a WebSocket relay to answer (without reconnect-ms). */
const WEBSOCKET_CONNECT_TIMEOUT_MS = 10_000;

/** The parameters each type takes besides `type` and `id`. */
const PARAMETERS: Record<(typeof QMP_NETDEV_TYPES)[number], readonly (keyof NetdevAddArgs)[]> = {
  stream: ['addr', 'server', 'reconnect', 'reconnect-ms'],
  dgram: ['local', 'remote'],
  vde: ['sock'],
  passt: ['tcp', 'udp'],
  websocket: ['url', 'reconnect-ms'],
};

/** A netdev netdev_add made: netdev_del and the server's close() close it. */
export type QmpOwnedNetdev = QmpNetdev & { close(): Promise<void> };

/** QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
export function idWellFormed(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(id);
}

/** netdev_add's arguments → StreamNetdev options, or a QmpError in QEMU's words. */
export function streamOptionsFromQmp(args: NetdevAddArgs): StreamNetdevOptions {
  if (!idWellFormed(args.id)) throw genericError("Parameter 'id' expects an identifier");
  const addr = args.addr as Record<string, unknown> | undefined;
  if (addr === undefined) throw genericError("Parameter 'addr' is missing");
  if (typeof addr !== 'object' || addr === null || Array.isArray(addr)) throw genericError("Invalid parameter type for 'addr', expected: object");
  const str = (k: string): string => {
    const v = addr[k];
    if (v === undefined) throw genericError(`Parameter 'addr.${k}' is missing`);
    if (typeof v !== 'string') throw genericError(`Invalid parameter type for 'addr.${k}', expected: string`);
    return v;
  };
  const only = (allowed: string[]): void => {
    for (const k of Object.keys(addr)) if (!allowed.includes(k)) throw genericError(`Parameter 'addr.${k}' is unexpected`);
  };
  const type = str('type');
  if (args.reconnect !== undefined && args['reconnect-ms'] !== undefined) throw genericError("'reconnect' and 'reconnect-ms' are mutually exclusive");
  const reconnectMs = args['reconnect-ms'] ?? (args.reconnect ?? 0) * 1000;
  const server = args.server ?? false;
  if (server && reconnectMs > 0) throw genericError("'reconnect' option is incompatible with socket in server listening mode");
  let endpoint: Pick<StreamNetdevOptions, 'path' | 'host' | 'port'>;
  if (type === 'unix') {
    only(['type', 'path']);
    endpoint = { path: str('path') };
  } else if (type === 'inet') {
    only(['type', 'host', 'port']);
    const host = str('host');
    const portText = str('port');
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 0 && port <= 65535) || (port === 0 && !server)) throw genericError(`Parameter 'addr.port' expects a port number${server ? '' : ' from 1 to 65535'}`);
    endpoint = { host, port };
  } else {
    throw genericError(`Parameter 'addr.type' does not accept value '${type}'`);
  }
  return { id: args.id, ...endpoint, server, reconnectMs };
}

/** Checks the id and that no parameter of another type was given. */
function checkCommon(args: NetdevAddArgs): (typeof QMP_NETDEV_TYPES)[number] {
  const type = args.type as (typeof QMP_NETDEV_TYPES)[number];
  // The schema's enum has already refused other types; this guards direct callers.
  if (!QMP_NETDEV_TYPES.includes(type)) throw genericError(`Parameter 'type' does not accept value '${String(args.type)}'`);
  if (!idWellFormed(args.id)) throw genericError("Parameter 'id' expects an identifier");
  const allowed = PARAMETERS[type];
  for (const k of Object.keys(args) as (keyof NetdevAddArgs)[]) {
    if (k !== 'type' && k !== 'id' && args[k] !== undefined && !allowed.includes(k)) throw genericError(`Parameter '${k}' is unexpected`);
  }
  return type;
}

/** A constructor's TypeError / RangeError / HostError as QMP's GenericError (its text names the field). */
function asQmp(e: unknown): QmpError {
  return e instanceof QmpError ? e : genericError((e as Error).message);
}

/** Creates and opens the netdev netdev_add describes; throws a QmpError (having closed what it opened) when it cannot. */
export async function openNetdevFromQmp(args: NetdevAddArgs): Promise<QmpOwnedNetdev> {
  switch (checkCommon(args)) {
    case 'stream':
      return openStream(args);
    case 'dgram':
      return openDgram(args);
    case 'vde':
      return openVde(args);
    case 'passt':
      return openPasst(args);
    case 'websocket':
      return openWebSocket(args);
  }
}

async function openStream(args: NetdevAddArgs): Promise<StreamNetdev> {
  const netdev = new StreamNetdev(streamOptionsFromQmp(args));
  try {
    await netdev.open();
  } catch (e) {
    await netdev.close();
    throw asQmp(e);
  }
  return netdev;
}

/** `-netdev dgram`: bound (UDP's bind is asynchronous) before the answer. */
async function openDgram(args: NetdevAddArgs): Promise<DgramNetdev> {
  const object = (name: 'local' | 'remote'): void => {
    const v = args[name];
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) throw genericError(`Invalid parameter type for '${name}', expected: object`);
  };
  object('local');
  object('remote');
  if (args.local === undefined && args.remote === undefined) throw genericError("Parameter 'local' is missing");
  let netdev: DgramNetdev;
  try {
    netdev = new DgramNetdev({ id: args.id, ...(args.local !== undefined ? { local: args.local as never } : {}), ...(args.remote !== undefined ? { remote: args.remote as never } : {}) });
  } catch (e) {
    throw asQmp(e);
  }
  try {
    await netdev.ready;
  } catch (e) {
    await netdev.close();
    throw asQmp(e);
  }
  return netdev;
}

/** `-netdev vde,sock=DIR`: vde_plug started on the switch (VdeNetdev checks the switch is there). */
async function openVde(args: NetdevAddArgs): Promise<VdeNetdev> {
  if (args.sock === undefined) throw genericError("Parameter 'sock' is missing");
  try {
    return new VdeNetdev({ id: args.id, sock: args.sock });
  } catch (e) {
    throw asQmp(e);
  }
}

/** passt started for this netdev and connected (PasstNetdev.start stops it again when that fails). */
async function openPasst(args: NetdevAddArgs): Promise<PasstNetdev> {
  try {
    return await PasstNetdev.start({ id: args.id, tcp: args.tcp ?? [], udp: args.udp ?? [] });
  } catch (e) {
    throw asQmp(e);
  }
}

/**
 * A WebSocket relay client (the `ws` package's class: Node 20 has no global WebSocket). With
 * `reconnect-ms` above 0 it answers at once and connects in the background (as a stream client
 * with reconnect); otherwise it waits for the first attempt, and one that fails is an error.
 */
async function openWebSocket(args: NetdevAddArgs): Promise<WebSocketNetdev> {
  const url = args.url;
  if (url === undefined) throw genericError("Parameter 'url' is missing");
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // below
  }
  if (parsed === null || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') || parsed.hostname === '' || parsed.hash !== '') {
    throw genericError(`Parameter 'url' expects a ws:// or wss:// URL with a host and no #fragment, got '${url}'`);
  }
  const reconnectMs = args['reconnect-ms'];
  const { WebSocket } = await import('ws');
  let netdev: WebSocketNetdev;
  try {
    netdev = new WebSocketNetdev({ id: args.id, url, WebSocket: WebSocket as unknown as WebSocketConstructor, ...(reconnectMs !== undefined ? { reconnectMs } : {}) });
  } catch (e) {
    throw asQmp(e);
  }
  if (reconnectMs !== undefined && reconnectMs > 0) return netdev;
  const outcome = await new Promise<string | null>((resolve) => {
    const settle = (why: string | null): void => {
      clearTimeout(timer);
      netdev.off('connected', up);
      netdev.off('disconnected', down);
      resolve(why);
    };
    const up = (): void => settle(null);
    const down = (d: { code: number; reason: string }): void => settle(`close code ${d.code}${d.reason === '' ? '' : `: ${d.reason}`}`);
    const timer = setTimeout(() => settle(`no answer within ${WEBSOCKET_CONNECT_TIMEOUT_MS} ms`), WEBSOCKET_CONNECT_TIMEOUT_MS);
    netdev.on('connected', up);
    netdev.on('disconnected', down);
  });
  if (outcome !== null) {
    await netdev.close();
    throw genericError(`WebSocketNetdev ${args.id}: cannot connect to ${url} (${outcome})`);
  }
  return netdev;
}
