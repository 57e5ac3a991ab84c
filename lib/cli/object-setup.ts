// `--chardev` and `--object` of `virtio-net run`, from text to running objects:
//   1. parseObjectSetup: every line parsed (chardev-args.ts, object-args.ts) and every reference
//      checked — ids unique, chardevs exist and serve one object each, netdev= names the run's
//      netdev, iothread= an iothread made before — with a UsageError naming the object and property,
//      before any socket or TAP opens;
//   2. openObjectSetup: chardevs opened in the order given (servers listen; wait=on servers wait
//      for their first client; clients connect), then objects made in the order given, so filters
//      join the netdev's chain in creation order (QEMU's order).
// A chardev carries the vnet header length when the object using it has vnet_hdr_support.

import { ChardevSocket } from '../chardev/chardev-socket.js';
import { ObjectRegistry } from '../colo/object-registry.js';
import { ObjectPropertyError, OBJECT_PROPERTIES, type ObjectSpec } from '../colo/object-table.js';
import { FilterChain } from '../filters/filter-chain.js';
import { MemoryNetdev } from '../netdev/memory-netdev.js';
import type { PassthroughList } from '../passthrough/passthrough.js';
import { UsageError } from './args.js';
import { parseChardev, type ChardevSpec } from './chardev-args.js';
import { parseObject } from './object-args.js';

export interface ObjectSetup {
  chardevs: ChardevSpec[];
  objects: ObjectSpec[];
  /** chardev id → its frames carry the vnet header length. */
  vnet: Map<string, boolean>;
}

export function parseObjectSetup(chardevArgs: readonly string[], objectArgs: readonly string[], netdevId: string): ObjectSetup {
  const chardevs = chardevArgs.map(parseChardev);
  const seen = new Set<string>();
  for (const c of chardevs) {
    if (seen.has(c.id)) throw new UsageError(`--chardev socket,id=${c.id}: a chardev with id '${c.id}' was given before`);
    seen.add(c.id);
  }
  const objects = objectArgs.map(parseObject);
  const vnet = new Map<string, boolean>();
  for (const o of objects) {
    for (const [name, spec] of Object.entries(OBJECT_PROPERTIES[o.type])) {
      const v = o.props[name];
      if (v !== undefined && spec.type.kind === 'ref' && spec.type.to === 'chardev' && name !== 'notify_dev') vnet.set(String(v), o.props['vnet_hdr_support'] === true);
    }
  }
  // References, checked by the registry's own rules against stand-ins that open nothing.
  const standIns = new Map(chardevs.map((c) => [c.id, new ChardevSocket({ id: c.id, endpoint: c.endpoint, server: c.server, vnetHdrSupport: vnet.get(c.id) ?? false })]));
  const check = new ObjectRegistry({ netdevs: new Map([[netdevId, new FilterChain(new MemoryNetdev({ id: netdevId }))]]), chardevs: standIns });
  const done: ObjectSpec[] = [];
  for (const o of objects) {
    try {
      check.checkReferences(o, done);
    } catch (e) {
      if (e instanceof ObjectPropertyError) throw new UsageError(`--object ${e.message}`);
      throw e;
    }
    done.push(o);
  }
  return { chardevs, objects, vnet };
}

/**
 * Opens the chardevs and makes the objects on `chain`. On a failure everything opened so far is
 * closed and the error is thrown (a socket that cannot listen or connect names the chardev).
 */
export async function openObjectSetup(setup: ObjectSetup, chain: FilterChain, passthrough: PassthroughList, signal?: AbortSignal): Promise<ObjectRegistry> {
  const chardevs = new Map<string, ChardevSocket>();
  const registry = new ObjectRegistry({ netdevs: new Map([[chain.id, chain]]), chardevs, passthrough });
  try {
    for (const c of setup.chardevs) {
      const sock = new ChardevSocket({ id: c.id, endpoint: c.endpoint, server: c.server, vnetHdrSupport: setup.vnet.get(c.id) ?? false });
      chardevs.set(c.id, sock);
      try {
        await sock.open();
      } catch (e) {
        const where = 'path' in c.endpoint ? c.endpoint.path : `${c.endpoint.host}:${c.endpoint.port}`;
        throw new Error(`--chardev ${c.id}: cannot ${c.server ? 'listen on' : 'connect to'} ${where}: ${(e as Error).message}`);
      }
      if (c.server && c.wait && !sock.connected) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(new Error(`--chardev ${c.id}: interrupted while waiting for a client (wait=on)`));
          signal?.addEventListener('abort', onAbort, { once: true });
          sock.once('connect', () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          });
        });
      }
    }
    for (const o of setup.objects) registry.add(o);
  } catch (e) {
    await registry.close();
    throw e;
  }
  return registry;
}
