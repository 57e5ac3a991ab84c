// The QMP server (QEMU docs/interop/qmp-spec): a unix socket (mode 0600), optionally TCP, any
// number of clients up to MAX_CLIENTS, each with its own negotiation state; events go to every
// negotiated client.
//
// Data flow: NIC 'rx-filter-changed' → `emitEvent('NIC_RX_FILTER_CHANGED')` → one serialised line
// with a QMP timestamp → every negotiated connection. Requests: connection → dispatch → handlers
// (lib/qmp/commands.ts) → NIC methods.
//
// The unix socket never exists with wider permissions: it is bound inside a fresh private (0700)
// directory next to `path`, set to 0600, then renamed onto `path`; so no other user can connect
// in between, and it works the same in worker threads (no process-wide umask change).

import { EventEmitter } from 'node:events';
import type { PassthroughList } from '../passthrough/passthrough.js';
import net from 'node:net';
import { listenUnixPrivate, type UnixSocketFile } from '../chardev/unix-socket-file.js';
import type { QmpContext } from './commands.js';
import { QmpConnection, type ConnectionHost } from './connection.js';
import type { QmpDiagnostic } from './errors.js';
import { attachedNetdevId, type QmpNetdev, type QmpNic, type QmpRxFilterChanged } from './nic.js';
import { isStreamNetdev, openNetdevFromQmp, type NetdevAddArgs, type QmpNetdevAdmin } from './netdev-admin.js';
import { QmpError, genericError } from './errors.js';
import { MAX_CLIENTS, resolveOptions, type QmpServerOptions, type ResolvedOptions } from './options.js';
import { QMP_SCHEMA, type QmpEventName, type QmpSchema } from './schema.js';
import type { QmpMembersValue } from './schema-types.js';
import { projectStruct } from './validate.js';
import { ObjectRegistry } from '../colo/object-registry.js';
import type { CheckpointRequest } from '../colo/colo-compare.js';
import { objectAdminFor } from './object-admin.js';

/** Where the server listens (TCP only when asked for; its port is known once listening). */
export interface QmpServerAddress {
  path: string;
  tcp?: { host: string; port: number };
}

/** Data of an event, typed from the schema. */
export type QmpEventData<N extends QmpEventName> = QmpMembersValue<QmpSchema['events'][N]['data'], QmpSchema['types']>;

type State = 'new' | 'listening' | 'closed';

export class QmpServer extends EventEmitter<{ diagnostic: [QmpDiagnostic] }> {
  private readonly options: ResolvedOptions;
  private readonly context: Omit<QmpContext, 'session'>;
  private readonly connections = new Set<QmpConnection>();
  private readonly servers: net.Server[] = [];
  private readonly nicListeners: { nic: QmpNic; listener: (e: QmpRxFilterChanged) => void }[] = [];
  private state: State = 'new';
  private nextClient = 1;
  private socketFile: UnixSocketFile | undefined;
  private tcpAddress: { host: string; port: number } | undefined;
  /** Netdev ids management can name (grows with netdev_add, shrinks with netdev_del). */
  private readonly netdevIds: Set<string>;
  /** Netdev objects by id: given in options, attached to a NIC, or added by netdev_add. */
  private readonly netdevObjects = new Map<string, QmpNetdev>();
  /** Those netdev_add created: closed with the server. */
  private readonly ownedNetdevs = new Set<string>();
  /** Unsubscribers of stream netdevs' connection events, by netdev id. */
  private readonly netdevWatches = new Map<string, () => void>();
  /** The objects object-add / object-del manage. */
  readonly objects: ObjectRegistry;
  private readonly announceTimers = new Set<NodeJS.Timeout>();
  private readonly onCheckpoint = (r: CheckpointRequest): void => this.emitEvent('COLO_COMPARE_CHECKPOINT_REQUEST', { id: r.id, reason: r.reason, flow: r.flow });

  constructor(options: QmpServerOptions) {
    super();
    this.options = resolveOptions(options);
    const nics = new Map<string, QmpNic>(this.options.devices.map((nic) => [nic.id, nic]));
    const nicsOfNetdev = new Map<string, QmpNic[]>();
    const netdevIds = new Set<string>(this.options.netdevs.map((n) => n.id));
    for (const n of this.options.netdevs) this.netdevObjects.set(n.id, n);
    for (const nic of nics.values()) {
      const netdev = attachedNetdevId(nic);
      if (netdev === undefined) continue;
      netdevIds.add(netdev);
      nicsOfNetdev.set(netdev, [...(nicsOfNetdev.get(netdev) ?? []), nic]);
      if (!this.netdevObjects.has(netdev)) this.netdevObjects.set(netdev, (nic as unknown as { netdev: QmpNetdev }).netdev);
    }
    // A NIC's own name wins over a netdev of the same name.
    for (const id of nics.keys()) {
      netdevIds.delete(id);
      this.netdevObjects.delete(id);
    }
    this.netdevIds = netdevIds;
    const admin: QmpNetdevAdmin = { add: (args) => this.netdevAdd(args), del: (id) => this.netdevDel(id) };
    const objects = options.objects ?? new ObjectRegistry({ netdevs: new Map(), chardevs: new Map(), passthrough: this.options.passthrough });
    if (!(objects instanceof ObjectRegistry)) throw new TypeError('QmpServer: options.objects must be an ObjectRegistry (lib/colo/object-registry.ts)');
    this.objects = objects;
    const given = this.options.coloObjectIds;
    this.context = {
      nics,
      netdevIds,
      nicsOfNetdev,
      offeredCapabilities: [],
      version: this.options.version,
      passthrough: this.options.passthrough,
      coloObjectIds: { has: (id: string) => given.has(id) || objects.has(id) },
      netdevAdmin: admin,
      objectAdmin: objectAdminFor(objects),
      announceTimers: this.announceTimers,
    };
  }

  /** The COLO passthrough list the server's commands edit (`options.colo.passthrough`, or its own). */
  get passthrough(): PassthroughList {
    return this.options.passthrough;
  }

  /** The unix socket path and, once listening, the TCP address if TCP was asked for. */
  get address(): QmpServerAddress {
    return this.tcpAddress === undefined ? { path: this.options.path } : { path: this.options.path, tcp: { ...this.tcpAddress } };
  }

  /**
   * The netdev management names `id` (given in options, attached to a NIC, or added by
   * netdev_add), or undefined. An embedder attaches a device to one netdev_add made, as QEMU's
   * `device_add …,netdev=ID` does; netdev_del closes it.
   */
  netdev(id: string): QmpNetdev | undefined {
    return this.netdevIds.has(id) ? this.netdevObjects.get(id) : undefined;
  }

  /** Connected clients (negotiated or not). */
  get clientCount(): number {
    return this.connections.size;
  }

  /** Starts listening and forwarding NIC events. Call once. */
  async listen(): Promise<void> {
    if (this.state !== 'new') throw new Error(`QmpServer.listen(): the server is already ${this.state}`);
    this.state = 'listening';
    try {
      await this.listenUnix();
      if (this.options.tcp !== undefined) await this.listenTcp(this.options.tcp);
    } catch (err) {
      await this.close();
      throw err;
    }
    for (const nic of this.options.devices) {
      const listener = (e: QmpRxFilterChanged): void => this.emitEvent('NIC_RX_FILTER_CHANGED', { name: e.name, path: e.path });
      nic.on('rx-filter-changed', listener);
      this.nicListeners.push({ nic, listener });
    }
    for (const n of this.netdevObjects.values()) this.watchNetdev(n);
    this.objects.on('checkpoint-request', this.onCheckpoint);
  }

  /** Disconnects every client, stops listening and removes the socket file. Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const { nic, listener } of this.nicListeners) nic.off('rx-filter-changed', listener);
    this.nicListeners.length = 0;
    this.objects.off('checkpoint-request', this.onCheckpoint);
    for (const t of this.announceTimers) clearTimeout(t);
    this.announceTimers.clear();
    for (const unwatch of this.netdevWatches.values()) unwatch();
    this.netdevWatches.clear();
    for (const id of this.ownedNetdevs) await closeNetdev(this.netdevObjects.get(id));
    this.ownedNetdevs.clear();
    for (const conn of this.connections) conn.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
    this.servers.length = 0;
    // Only our own socket: another server may have replaced it at the same path since.
    await this.socketFile?.remove();
    this.socketFile = undefined;
  }

  /**
   * Sends an event from the schema to every negotiated client, with the current wall-clock time
   * as its QMP timestamp. Data that does not match the schema is not sent (a diagnostic instead).
   */
  emitEvent<N extends QmpEventName>(event: N, data: QmpEventData<N>): void {
    const projected = projectStruct(QMP_SCHEMA.events[event].data, data, QMP_SCHEMA.types, 'data');
    if (!projected.ok) {
      this.emit('diagnostic', { code: 'qmp.event-invalid', event, detail: projected.detail });
      return;
    }
    const line = JSON.stringify({ event, data: projected.value, timestamp: qmpTimestamp() });
    for (const conn of this.connections) conn.sendEvent(line);
  }

  // --- netdevs -----------------------------------------------------------------------------------

  /** Forwards a stream netdev's 'connected' / 'disconnected' as NETDEV_STREAM_CONNECTED / _DISCONNECTED. */
  private watchNetdev(n: QmpNetdev): void {
    if (!isStreamNetdev(n) || this.netdevWatches.has(n.id)) return;
    const id = n.id;
    const connected = (addr: object): void => this.emitEvent('NETDEV_STREAM_CONNECTED', { 'netdev-id': id, addr });
    const disconnected = (): void => this.emitEvent('NETDEV_STREAM_DISCONNECTED', { 'netdev-id': id });
    n.on('connected', connected);
    n.on('disconnected', disconnected);
    this.netdevWatches.set(id, () => {
      n.off('connected', connected);
      n.off('disconnected', disconnected);
    });
  }

  private async netdevAdd(args: NetdevAddArgs): Promise<void> {
    if (this.netdevIds.has(args.id) || this.context.nics.has(args.id)) throw genericError(`Duplicate ID '${args.id}'`);
    if (this.state !== 'listening') throw genericError('the QMP server is closing');
    const netdev = await openNetdevFromQmp(args);
    // Another netdev_add of the same id may have finished while this one was opening.
    if (this.netdevIds.has(args.id) || this.state !== 'listening') {
      await netdev.close();
      throw genericError(`Duplicate ID '${args.id}'`);
    }
    this.netdevIds.add(args.id);
    this.netdevObjects.set(args.id, netdev);
    this.ownedNetdevs.add(args.id);
    this.watchNetdev(netdev);
  }

  private async netdevDel(id: string): Promise<void> {
    if (this.context.nics.has(id)) throw genericError(`Device '${id}' is not a netdev`);
    if (!this.netdevIds.has(id)) throw new QmpError('DeviceNotFound', `Device '${id}' not found`);
    this.netdevIds.delete(id);
    this.ownedNetdevs.delete(id);
    this.netdevWatches.get(id)?.();
    this.netdevWatches.delete(id);
    const netdev = this.netdevObjects.get(id);
    this.netdevObjects.delete(id);
    await closeNetdev(netdev);
  }

  // --- sockets -----------------------------------------------------------------------------------

  private createServer(): net.Server {
    const host: ConnectionHost = {
      context: this.context,
      greetingLine: JSON.stringify({ QMP: { version: this.options.version, capabilities: this.context.offeredCapabilities } }),
      maxMessageBytes: this.options.maxMessageBytes,
      maxOutputBytes: this.options.maxOutputBytes,
      negotiationTimeoutMs: this.options.negotiationTimeoutMs,
      unnegotiatedIdleMs: this.options.unnegotiatedIdleMs,
      diagnostic: (d) => this.emit('diagnostic', d),
      closed: (conn) => this.connections.delete(conn),
    };
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined); // reported by the connection once it exists
      if (this.state !== 'listening') {
        socket.destroy();
        return;
      }
      if (this.connections.size >= MAX_CLIENTS) {
        this.emit('diagnostic', { code: 'qmp.too-many-clients', limit: MAX_CLIENTS });
        socket.destroy();
        return;
      }
      this.connections.add(new QmpConnection(this.nextClient++, socket, host));
    });
    this.servers.push(server);
    return server;
  }

  /** The socket file is 0600 and removed on close only while it is still ours (unix-socket-file.ts). */
  private async listenUnix(): Promise<void> {
    const server = this.createServer();
    this.socketFile = await listenUnixPrivate('QmpServer: options.path', this.options.path, (path) => this.listenOn(server, { path }));
  }

  private async listenTcp(tcp: { port: number; host: string }): Promise<void> {
    const server = this.createServer();
    await this.listenOn(server, { port: tcp.port, host: tcp.host });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('QmpServer: TCP listener has no address');
    this.tcpAddress = { host: addr.address, port: addr.port };
  }

  private listenOn(server: net.Server, where: net.ListenOptions): Promise<void> {
    return new Promise((done, failed) => {
      server.once('error', failed);
      server.listen(where, () => {
        server.off('error', failed);
        // From now on a listener error (e.g. EMFILE on accept) is reported, never thrown.
        server.on('error', (error) => this.emit('diagnostic', { code: 'qmp.listener-error', error }));
        done();
      });
    });
  }
}

/** QMP event timestamp: wall-clock time in seconds and microseconds (QEMU uses g_get_real_time). */
export function qmpTimestamp(): { seconds: number; microseconds: number } {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(us / 1_000_000), microseconds: us % 1_000_000 };
}

/** Closes a netdev object when it can be closed (QmpNetdev only promises an id). */
async function closeNetdev(n: QmpNetdev | undefined): Promise<void> {
  const close = (n as { close?: unknown } | undefined)?.close;
  if (typeof close === 'function') await (close as () => Promise<void>).call(n);
}
