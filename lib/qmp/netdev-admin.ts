// netdev_add / netdev_del (QEMU qapi/net.json `Netdev`, net/net.c qmp_netdev_add / qmp_netdev_del)
// and the stream netdev events (NETDEV_STREAM_CONNECTED / NETDEV_STREAM_DISCONNECTED, since QEMU
// 7.2). Arguments in QEMU's spelling: `{ type: 'stream', id, addr: { type: 'unix', path } |
// { type: 'inet', host, port }, server?, reconnect? (s, QEMU 8), reconnect-ms? (QEMU 9.2) }`; error
// texts as QEMU 7.2 gives them (checked against it: Duplicate ID, Parameter … is missing,
// expects an identifier, Device … not found).

import { StreamNetdev, type StreamNetdevOptions, type StreamSocketAddress } from '../netdev/stream-netdev.js';
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
}

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

/** Creates and opens the netdev netdev_add describes (only `stream` is in the schema's enum). */
export async function openNetdevFromQmp(args: NetdevAddArgs): Promise<StreamNetdev> {
  const netdev = new StreamNetdev(streamOptionsFromQmp(args));
  try {
    await netdev.open();
  } catch (e) {
    await netdev.close();
    throw e instanceof QmpError ? e : genericError((e as Error).message);
  }
  return netdev;
}
