// The `local` / `remote` addresses of `-netdev dgram` in QEMU's SocketAddress spelling (no VIRTIO
// section: QEMU's qapi/net.json NetdevDgramOptions, qapi/sockets.json SocketAddress, and the rules
// net/dgram.c applies). Checked once, when the netdev is made: a bad address is an immediate
// TypeError / RangeError naming the field, never a failure later on the datapath.
//
// QEMU's rules, kept here:
// - `remote` of type inet with an IPv4 multicast host (224.0.0.0/4) is multicast: the socket binds
//   the group's address and port, joins the group (on `local.host`'s interface when `local` is
//   given, which must then be inet), loops its own datagrams back (IP_MULTICAST_LOOP: several
//   guests on one host hear each other, and each hears itself) and sends to the group.
// - Otherwise `local` and `remote` are both needed and of the same type: inet (UDP, bound to
//   `local` with SO_REUSEADDR, sending to `remote`) or unix (a datagram socket bound to
//   `local.path`, unlinked first, sending to `remote.path`).
// - inet is IPv4 only (net/dgram.c builds struct sockaddr_in). `type: 'fd'` (a descriptor passed by
//   the monitor) has no equivalent here and is refused.

export interface DgramInetAddress {
  readonly type: 'inet';
  /** An IPv4 address in dotted-quad form. */
  readonly host: string;
  /** 0-65535 (0 for `local`: the kernel picks a port); QEMU's QAPI carries it as a string, both are accepted. */
  readonly port: number | string;
}

export interface DgramUnixAddress {
  readonly type: 'unix';
  readonly path: string;
}

export type DgramSocketAddress = DgramInetAddress | DgramUnixAddress;

/** What the options say, checked and normalized. */
export type DgramEndpoints =
  | { readonly kind: 'udp'; readonly local: { host: string; port: number }; readonly remote: { host: string; port: number } }
  | { readonly kind: 'mcast'; readonly group: { host: string; port: number }; readonly localHost: string | null }
  | { readonly kind: 'unix'; readonly localPath: string; readonly remotePath: string };

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** IPv4 multicast (224.0.0.0/4), as QEMU's IN_MULTICAST. */
export function isIpv4Multicast(host: string): boolean {
  const first = Number(host.split('.')[0]);
  return IPV4.test(host) && first >= 224 && first <= 239;
}

function inet(owner: string, field: string, a: Record<string, unknown>, minPort: number): { host: string; port: number } {
  for (const k of Object.keys(a)) {
    if (k !== 'type' && k !== 'host' && k !== 'port') throw new TypeError(`${owner}: ${field}.${k} is not a property of an inet address (host, port)`);
  }
  const host = a['host'];
  if (typeof host !== 'string' || !IPV4.test(host)) {
    throw new TypeError(`${owner}: ${field}.host must be an IPv4 address such as 127.0.0.1 (QEMU's dgram is IPv4 only), got ${JSON.stringify(host)}`);
  }
  const raw = a['port'];
  const port = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < minPort || port > 65535) {
    throw new RangeError(`${owner}: ${field}.port must be an integer ${minPort}-65535, got ${JSON.stringify(raw)}`);
  }
  return { host, port };
}

function unixPath(owner: string, field: string, a: Record<string, unknown>): string {
  for (const k of Object.keys(a)) {
    if (k !== 'type' && k !== 'path') throw new TypeError(`${owner}: ${field}.${k} is not a property of a unix address (path)`);
  }
  const path = a['path'];
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0') || Buffer.byteLength(path) > 107) {
    throw new TypeError(`${owner}: ${field}.path must be a file path of 1-107 bytes, got ${JSON.stringify(path)}`);
  }
  return path;
}

function record(owner: string, field: string, v: unknown): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object') throw new TypeError(`${owner}: ${field} must be a SocketAddress object { type: 'inet', host, port } or { type: 'unix', path }`);
  const r = v as Record<string, unknown>;
  if (r['type'] === 'fd') throw new TypeError(`${owner}: ${field}.type 'fd' (a descriptor passed through the monitor) is not supported; use inet or unix`);
  if (r['type'] !== 'inet' && r['type'] !== 'unix') throw new TypeError(`${owner}: ${field}.type must be 'inet' or 'unix', got ${JSON.stringify(r['type'])}`);
  return r;
}

/** Checks `local` / `remote` by QEMU's rules (see the top of this file). */
export function dgramEndpoints(owner: string, local: unknown, remote: unknown): DgramEndpoints {
  const l = record(owner, 'local', local);
  const r = record(owner, 'remote', remote);
  if (r !== undefined && r['type'] === 'inet' && typeof r['host'] === 'string' && isIpv4Multicast(r['host'])) {
    const group = inet(owner, 'remote', r, 1);
    if (l !== undefined && l['type'] !== 'inet') throw new TypeError(`${owner}: multicast needs local of type inet (the interface address) or no local, got type ${String(l['type'])}`);
    // QEMU reads only local.host here (the interface to join and send on); the port is not used.
    const localHost = l === undefined ? null : inet(owner, 'local', { ...l, port: l['port'] ?? 0 }, 0).host;
    return { kind: 'mcast', group, localHost };
  }
  if (l === undefined) throw new TypeError(`${owner}: dgram needs local (QEMU: "dgram requires local= parameter")`);
  if (r === undefined) throw new TypeError(`${owner}: local of type ${String(l['type'])} needs remote`);
  if (l['type'] !== r['type']) throw new TypeError(`${owner}: remote and local types must be the same, got local ${String(l['type'])} and remote ${String(r['type'])}`);
  if (l['type'] === 'inet') return { kind: 'udp', local: inet(owner, 'local', l, 0), remote: inet(owner, 'remote', r, 1) };
  return { kind: 'unix', localPath: unixPath(owner, 'local', l), remotePath: unixPath(owner, 'remote', r) };
}

/** QEMU's info string for the netdev (`info network`): udp=L/R, mcast=G:P, or udp=LPATH:RPATH. */
export function dgramInfo(e: DgramEndpoints, localPort?: number): string {
  switch (e.kind) {
    case 'udp':
      return `udp=${e.local.host}:${localPort ?? e.local.port}/${e.remote.host}:${e.remote.port}`;
    case 'mcast':
      return `mcast=${e.group.host}:${e.group.port}`;
    case 'unix':
      return `udp=${e.localPath}:${e.remotePath}`;
  }
}
