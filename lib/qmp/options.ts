// QmpServer options: their types, defaults, limits, and the checks that reject bad ones at once
// with a message naming the option and what is allowed (programmer errors, thrown).

import { PassthroughList } from '../passthrough/passthrough.js';
import type { QmpNetdev, QmpNic } from './nic.js';
import type { ObjectRegistry } from '../colo/object-registry.js';

/** An object management names by id: a colo-compare or a net filter (QEMU `-object …,id=`). */
export interface QmpObject {
  readonly id: string;
}

export interface QmpServerOptions {
  /** The NICs management sees (net client names must be unique). */
  devices: readonly QmpNic[];
  /** Unix socket path; the socket is created with mode 0600 (replacing a stale socket there). */
  path: string;
  /** Netdevs (net clients that are not NICs): named by set_link and rejected by query-rx-filter. */
  netdevs?: readonly QmpNetdev[];
  /** Also listen on TCP: only when given, on loopback unless `host` says otherwise. */
  tcp?: { port: number; host?: string };
  /** What the greeting and query-version report. */
  version?: { qemu: { major: number; minor: number; micro: number }; package?: string };
  /** Largest accepted message; a client that sends a larger one gets an error and is closed. */
  maxMessageBytes?: number;
  /** Largest backlog of unread output per client before the client is disconnected. */
  maxOutputBytes?: number;
  /**
   * A client that has not completed `qmp_capabilities` this long after connecting gets an error
   * and is disconnected, so it cannot hold one of the MAX_CLIENTS slots forever.
   */
  negotiationTimeoutMs?: number;
  /** A client that sends nothing for this long before completing negotiation is disconnected sooner. */
  unnegotiatedIdleMs?: number;
  /**
   * The COLO objects management edits: `passthrough` is the list the colo-passthrough-* and
   * passthrough-filter-* commands change (share it with ColoCompare / MirrorFilter /
   * RedirectorFilter; default: a list of the server's own, `server.passthrough`); `objects` are
   * the colo-compare and filter objects an entry's `object-name` may name (ids unique; taken as
   * given at construction; default none). A name that is not among them is refused.
   */
  colo?: { passthrough?: PassthroughList; objects?: readonly QmpObject[] };
  /**
   * The objects object-add / object-del manage (filters on the run's netdevs, colo-compare; an
   * ObjectRegistry from lib/colo/object-registry.ts). Their ids are names `object-name` may use too,
   * and their colo-compare checkpoint requests become COLO_COMPARE_CHECKPOINT_REQUEST events.
   * Default: a registry of the server's own with no netdevs or chardevs (only iothread objects can
   * then be added).
   */
  objects?: ObjectRegistry;
}

/** Default message limit: far above any command in the schema, small enough to bound memory per client. */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
/** Message limits allowed: at least a few commands' worth, at most QEMU's own 64 MiB token limit. */
export const MESSAGE_BYTES_RANGE = [1024, 64 * 1024 * 1024] as const;
/** Default output backlog: room for a burst of events to a slow reader; replies are small. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/** Output limits allowed: one reply must fit; more than 64 MiB queued for one client is never needed. */
export const OUTPUT_BYTES_RANGE = [4096, 64 * 1024 * 1024] as const;
/** Default negotiation deadline: tools negotiate right after the greeting; a person at a socat prompt needs well under a minute. */
export const DEFAULT_NEGOTIATION_TIMEOUT_MS = 60_000;
/** Default silence allowed before negotiating: long enough to type the command, short enough to free a slot soon. */
export const DEFAULT_UNNEGOTIATED_IDLE_MS = 30_000;
/** Negotiation timeouts allowed: 1 ms (tests) to an hour (a slot held longer is a leak, not a slow client). */
export const NEGOTIATION_MS_RANGE = [1, 60 * 60 * 1000] as const;
/**
 * Longest string argument, in UTF-8 bytes: far above any name, address, port or protocol the
 * commands take (QEMU ids are short; a DNS name is at most 253), and it bounds what a stored entry
 * holds and what an error quotes back.
 */
export const MAX_STRING_ARGUMENT_BYTES = 256;
/** Clients at once; with the output bound this caps the memory unread output can take. */
export const MAX_CLIENTS = 64;
/** Linux `sun_path` holds 108 bytes including the terminating NUL. */
export const MAX_UNIX_PATH_BYTES = 107;
/** What query-version reports by default: the QEMU release whose QMP behaviour this server follows. */
export const DEFAULT_VERSION = { qemu: { major: 7, minor: 2, micro: 0 }, package: 'virtio-net-model' } as const;

/** Options after checking, with defaults applied. */
export interface ResolvedOptions {
  devices: readonly QmpNic[];
  path: string;
  netdevs: readonly QmpNetdev[];
  tcp: { port: number; host: string } | undefined;
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  maxMessageBytes: number;
  maxOutputBytes: number;
  negotiationTimeoutMs: number;
  unnegotiatedIdleMs: number;
  passthrough: PassthroughList;
  /** Ids of `colo.objects`. */
  coloObjectIds: ReadonlySet<string>;
}

function fail(option: string, allowed: string, got: unknown): never {
  let shown: string;
  try {
    shown = typeof got === 'string' ? JSON.stringify(got) : typeof got === 'object' ? JSON.stringify(got) ?? String(got) : String(got);
  } catch {
    shown = Object.prototype.toString.call(got);
  }
  throw new TypeError(`QmpServer: options${option === '' ? '' : `.${option}`} must be ${allowed}; got ${shown}`);
}

function intInRange(option: string, v: unknown, lo: number, hi: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || (v as number) < lo || (v as number) > hi) fail(option, `an integer from ${lo} to ${hi}`, v);
  return v as number;
}

const NIC_METHODS = ['queryRxFilter', 'on', 'off', 'setLink', 'stats'] as const;

export function resolveOptions(options: QmpServerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('', 'an object { devices, path, … }', options);
  const { devices, path, netdevs = [], tcp, version } = options;

  if (!Array.isArray(devices)) fail('devices', 'an array of NICs', devices);
  const seen = new Set<string>();
  devices.forEach((nic: unknown, i) => {
    const n = nic as Record<string, unknown> | null;
    if (typeof n !== 'object' || n === null || typeof n['id'] !== 'string' || n['id'] === '' || NIC_METHODS.some((m) => typeof n[m] !== 'function')) {
      fail(`devices[${i}]`, `a NIC: an object with a non-empty string id and methods ${NIC_METHODS.join(', ')}`, typeof nic);
    }
    const id = n['id'] as string;
    if (seen.has(id)) fail(`devices[${i}].id`, 'unique among the devices', id);
    seen.add(id);
  });

  if (typeof path !== 'string' || path === '') fail('path', 'a non-empty unix socket path', path);
  if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) fail('path', `at most ${MAX_UNIX_PATH_BYTES} bytes long (a unix socket path)`, path);

  if (!Array.isArray(netdevs)) fail('netdevs', 'an array of { id: string }', netdevs);
  netdevs.forEach((nd: unknown, i) => {
    const id = (nd as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || id === '') fail(`netdevs[${i}].id`, 'a non-empty string', id);
  });

  let resolvedTcp: ResolvedOptions['tcp'];
  if (tcp !== undefined) {
    if (typeof tcp !== 'object' || tcp === null) fail('tcp', 'an object { port, host? }', tcp);
    const port = tcp.port;
    if (!Number.isSafeInteger(port) || port < 0 || port > 65535) fail('tcp.port', 'an integer from 0 to 65535 (0: any free port)', port);
    const host = tcp.host ?? '127.0.0.1';
    if (typeof host !== 'string' || host === '') fail('tcp.host', "a host name or address (default '127.0.0.1')", tcp.host);
    resolvedTcp = { port, host };
  }

  let resolvedVersion: ResolvedOptions['version'] = {
    qemu: { ...DEFAULT_VERSION.qemu },
    package: DEFAULT_VERSION.package,
  };
  if (version !== undefined) {
    const q = (version as { qemu?: Record<string, unknown> } | null)?.qemu;
    if (typeof q !== 'object' || q === null) fail('version', 'an object { qemu: { major, minor, micro }, package? }', version);
    const part = (k: 'major' | 'minor' | 'micro'): number => {
      const v = q[k];
      if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > 0xffff) fail(`version.qemu.${k}`, 'an integer from 0 to 65535', v);
      return v as number;
    };
    const major = part('major');
    const minor = part('minor');
    const micro = part('micro');
    const pkg = version.package ?? DEFAULT_VERSION.package;
    if (typeof pkg !== 'string') fail('version.package', 'a string', pkg);
    resolvedVersion = { qemu: { major, minor, micro }, package: pkg };
  }

  const colo: Record<string, unknown> = options.colo ?? {};
  if (typeof colo !== 'object' || colo === null) fail('colo', 'an object { passthrough?, objects? }', colo);
  const pl = colo['passthrough'] ?? new PassthroughList();
  if (!(pl instanceof PassthroughList)) fail('colo.passthrough', 'a PassthroughList (lib/passthrough/passthrough.ts)', typeof pl);
  const passthrough = pl;
  const objects = colo['objects'] ?? [];
  if (!Array.isArray(objects)) fail('colo.objects', 'an array of colo-compare and filter objects ({ id: string })', objects);
  const coloObjectIds = new Set<string>();
  objects.forEach((o: unknown, i) => {
    const id = (o as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || id === '') fail(`colo.objects[${i}].id`, 'a non-empty string', id);
    if (coloObjectIds.has(id)) fail(`colo.objects[${i}].id`, 'unique among the objects', id);
    coloObjectIds.add(id);
  });

  return {
    passthrough,
    coloObjectIds,
    devices,
    path,
    netdevs,
    tcp: resolvedTcp,
    version: resolvedVersion,
    maxMessageBytes: intInRange('maxMessageBytes', options.maxMessageBytes, ...MESSAGE_BYTES_RANGE, DEFAULT_MAX_MESSAGE_BYTES),
    maxOutputBytes: intInRange('maxOutputBytes', options.maxOutputBytes, ...OUTPUT_BYTES_RANGE, DEFAULT_MAX_OUTPUT_BYTES),
    negotiationTimeoutMs: intInRange('negotiationTimeoutMs', options.negotiationTimeoutMs, ...NEGOTIATION_MS_RANGE, DEFAULT_NEGOTIATION_TIMEOUT_MS),
    unnegotiatedIdleMs: intInRange('unnegotiatedIdleMs', options.unnegotiatedIdleMs, ...NEGOTIATION_MS_RANGE, DEFAULT_UNNEGOTIATED_IDLE_MS),
  };
}
