// `virtio-net relay --listen HOST:PORT --to SPEC`: a v86-style WebSocket relay (relay-server.ts)
// whose clients (v86's network adapter with `relay_url`, `--netdev websocket,url=…`) share one
// backend given in the `--netdev` spelling (run.ts opens it). Runs until Ctrl-C / SIGTERM or
// --duration; a status line on a TTY, a summary at the end (or JSON with --json).
// Listens on a loopback address unless --allow-remote: the relay gives whoever connects a port
// on the backend's network, with no authentication.

import { isIP } from 'node:net';
import { parseFlags, parseNetdev, UsageError } from './args.js';
import type { FlagSpec } from './args.js';
import { openNetdev } from './run.js';
import { RelayServer } from './relay-server.js';
import type { RelayStats } from './relay-server.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'listen', kind: 'string', help: 'HOST:PORT to listen on (e.g. 127.0.0.1:8086; [::1]:8086; port 0 = any free port)' },
  { name: 'to', kind: 'string', help: 'the backend, in the --netdev spelling (memory, tap,ifname=…, stream,…, dgram,…, vde,…, passt)' },
  { name: 'allow-remote', kind: 'boolean', help: 'allow a non-loopback listen address' },
  { name: 'duration', kind: 'number', min: 0.1, max: 864000, help: 'seconds to run (default: until Ctrl-C)' },
  { name: 'json', kind: 'boolean', help: 'machine-readable summary' },
];

const STATUS_MS = 250;

export interface RelayResult {
  listen: string;
  backend: string;
  durationMs: number;
  interrupted: boolean;
  relay: RelayStats;
  clients: ReturnType<RelayServer['clientStats']>;
}

/** `HOST:PORT` or `[V6]:PORT`; the host must be an IP address (no name lookup). */
export function parseListen(text: string, allowRemote: boolean): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (m === null) throw new UsageError(`virtio-net relay: --listen must be HOST:PORT or [IPV6]:PORT, got ${JSON.stringify(text)}`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`virtio-net relay: --listen port must be at most 65535, got ${port}`);
  if (isIP(host) === 0) throw new UsageError(`virtio-net relay: --listen host must be an IP address, got ${JSON.stringify(host)}`);
  const loopback = host === '::1' || /^127\./.test(host);
  if (!loopback && !allowRemote) {
    throw new UsageError(`virtio-net relay: ${host} is not a loopback address; anyone who reaches it joins the backend's network (no authentication). Add --allow-remote to listen there anyway`);
  }
  return { host, port };
}

export async function relayCommand(argv: readonly string[]): Promise<number> {
  const f = parseFlags('relay', argv, FLAGS);
  const listenText = f['listen'] as string | undefined;
  const toText = f['to'] as string | undefined;
  if (listenText === undefined) throw new UsageError('virtio-net relay needs --listen HOST:PORT (e.g. 127.0.0.1:8086)');
  if (toText === undefined) throw new UsageError('virtio-net relay needs --to SPEC (the backend, in the --netdev spelling, e.g. tap,ifname=tap0)');
  const allowRemote = f['allow-remote'] === true;
  const { host, port } = parseListen(listenText, allowRemote);
  const spec = parseNetdev(toText);
  if (spec.kind === 'websocket') throw new UsageError('virtio-net relay: --to websocket,… would relay to another relay; give a host backend');
  const json = f['json'] === true;
  const durationS = f['duration'] as number | undefined;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: RelayResult;
  try {
    if (!json && allowRemote && host !== '::1' && !/^127\./.test(host)) {
      process.stderr.write(`virtio-net relay: warning: listening on ${host}, not loopback: anyone who reaches it joins the backend's network\n`);
    }
    result = await relay({ host, port, spec, durationMs: durationS === undefined ? null : durationS * 1000, json, signal: stop.signal }, (t) => process.stdout.write(t));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`\n${summary(result)}\n`);
  return result.interrupted ? 130 : 0;
}

export interface RelayOptions {
  host: string;
  port: number;
  spec: ReturnType<typeof parseNetdev>;
  /** null: until the signal. */
  durationMs: number | null;
  json: boolean;
  signal?: AbortSignal;
  /** Called once listening, with the URL (tests learn the port this way). */
  onListening?: (url: string) => void;
}

/** Runs the relay until the duration ends or the signal fires; `print` gets the human-readable progress. */
export async function relay(options: RelayOptions, print: (text: string) => void): Promise<RelayResult> {
  const { netdev, peer, label } = await openNetdev(options.spec, '10.0.2.2');
  const server = new RelayServer({ backend: netdev, host: options.host, port: options.port });
  try {
    await server.listen();
    const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
    const url = `ws://${hostPart}:${server.port}/`;
    if (!options.json) print(`virtio-net relay: listening on ${url}, backend ${label}\n`);
    options.onListening?.(url);
    const started = Date.now();
    const tty = process.stdout.isTTY === true && !options.json;
    let interrupted = false;
    await new Promise<void>((resolve) => {
      const status = tty ? setInterval(() => print(`\r${statusLine(Date.now() - started, server.stats())}\x1b[K`), STATUS_MS) : null;
      const finish = (): void => {
        if (status !== null) clearInterval(status);
        if (timer !== null) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        interrupted = true;
        finish();
      };
      const timer = options.durationMs === null ? null : setTimeout(finish, options.durationMs);
      if (options.signal?.aborted === true) onAbort();
      else options.signal?.addEventListener('abort', onAbort);
    });
    return { listen: url, backend: label, durationMs: Date.now() - started, interrupted, relay: server.stats(), clients: server.clientStats() };
  } finally {
    peer?.close();
    await server.close();
    await netdev.close();
  }
}

function statusLine(ms: number, s: RelayStats): string {
  return `${(ms / 1000).toFixed(1)} s  clients ${s.clients} (${s.connections} in all)  from clients ${s.fromClients}  to clients ${s.toClients}  from backend ${s.fromBackend}  to backend ${s.toBackend}  drops ${s.clientDrops}/${s.backendDrops + s.backendOverflow}  held ${s.backendHeld}${s.pausedForBackend ? ' (paused)' : ''}  invalid ${s.invalid + s.oversize}  macs ${s.macs}`;
}

function summary(r: RelayResult): string {
  const s = r.relay;
  const rows: [string, string | number][] = [
    ['listen', r.listen],
    ['backend', r.backend],
    ['seconds', (r.durationMs / 1000).toFixed(1)],
    ['connections', s.connections],
    ['frames from clients', s.fromClients],
    ['  invalid (text / short)', s.invalid],
    ['  oversize', s.oversize],
    ['frames to clients', s.toClients],
    ['  missed (client send buffer full)', s.clientDrops],
    ['frames from backend', s.fromBackend],
    ['frames for the backend', s.forBackend],
    ['frames to backend', s.toBackend],
    ['  dropped by the backend', s.backendDrops],
    ['  backend busy (reading paused)', s.backendBusy],
    ['  held at the end / at most', `${s.backendHeld} / ${s.backendHeldMax}`],
    ['  hold queue full (dropped)', s.backendOverflow],
    ['flooded', s.flooded],
    ['filtered (same port)', s.filtered],
    ['MACs learned', s.macs],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
