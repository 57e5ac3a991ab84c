// `--chardev socket,id=ID,host=H,port=N[,server=on|off][,wait=on|off]` and
// `--chardev socket,id=ID,path=P[,server=on|off][,wait=on|off]` — QEMU's `-chardev socket`
// spelling (qemu-options.hx), including the old bare flags `server` (= server=on) and `nowait`
// (= wait=off) that the COLO lines of shared/seeds/001_* use. A server listens on host:port (or
// the unix path); with wait=on (QEMU's default for a server) the run starts only once a client
// has connected. A client connects at start-up and fails if nobody listens (QEMU: no reconnect).
// Only the `socket` backend exists: it is what filters and colo-compare use.

import { UsageError } from './args.js';
import { splitOptions } from './object-args.js';

export interface ChardevSpec {
  id: string;
  endpoint: { path: string } | { host: string; port: number };
  server: boolean;
  /** Server only: wait for the first client before the run starts. */
  wait: boolean;
}

const PROPERTIES = ['id', 'host', 'port', 'path', 'server', 'wait', 'nowait'];

export function parseChardev(value: string): ChardevSpec {
  const [backend, ...rest] = splitOptions(value);
  if (backend !== 'socket') {
    throw new UsageError(`--chardev: backend must be socket (socket,id=ID,host=H,port=N[,server=on,wait=off] or path=P), got ${JSON.stringify(backend ?? '')}`);
  }
  const props = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    if (!PROPERTIES.includes(key)) throw new UsageError(`--chardev socket: unknown property '${key}'; allowed: ${PROPERTIES.join(', ')}`);
    if (props.has(key)) throw new UsageError(`--chardev socket: property '${key}' given twice`);
    props.set(key, eq < 0 ? '' : p.slice(eq + 1));
  }
  const id = props.get('id');
  const where = id === undefined ? '--chardev socket' : `--chardev socket,id=${id}`;
  if (id === undefined || !/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) {
    throw new UsageError(`${where}: needs id=NAME (a letter, then letters, digits, '-', '.', '_'), got ${JSON.stringify(id ?? '')}`);
  }
  const flag = (key: string, fallback: boolean): boolean => {
    const v = props.get(key);
    if (v === undefined) return fallback;
    if (v === '' || v === 'on' || v === 'yes' || v === 'true') return true;
    if (v === 'off' || v === 'no' || v === 'false') return false;
    throw new UsageError(`${where}: ${key} must be on or off, got ${JSON.stringify(v)}`);
  };
  const server = flag('server', false);
  if (props.has('nowait') && props.get('nowait') !== '') throw new UsageError(`${where}: nowait takes no value (or write wait=off)`);
  if (props.has('nowait') && props.has('wait')) throw new UsageError(`${where}: give wait= or nowait, not both`);
  const wait = props.has('nowait') ? false : flag('wait', true);
  if (!server && (props.has('wait') || props.has('nowait'))) throw new UsageError(`${where}: wait/nowait is for a server (server=on)`);
  const path = props.get('path');
  if (path !== undefined) {
    if (props.has('host') || props.has('port')) throw new UsageError(`${where}: give path= (unix) or host=,port= (TCP), not both`);
    if (path === '') throw new UsageError(`${where}: path must not be empty`);
    return { id, endpoint: { path }, server, wait: server && wait };
  }
  const portText = props.get('port');
  if (portText === undefined) throw new UsageError(`${where}: needs port=N (TCP, with host=H) or path=P (unix)`);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535) || (port === 0 && !server)) {
    throw new UsageError(`${where}: port must be a number from ${server ? 0 : 1} to 65535, got ${JSON.stringify(portText)}`);
  }
  const host = props.get('host') ?? '127.0.0.1'; // QEMU listens on every address without host=; here loopback (a frame-injection socket)
  if (host === '') throw new UsageError(`${where}: host must not be empty`);
  return { id, endpoint: { host, port }, server, wait: server && wait };
}
