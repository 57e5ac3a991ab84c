// The objects of one run: filters on netdevs and colo-compare, made from checked specs
// (object-table.ts) and the chardevs and netdevs they name — what QEMU's `-object` and QMP
// `object-add` / `object-del` do for the same qom-types.
//
//   spec ─▶ references checked (netdev, chardevs free, iothread) ─▶ filter / ColoCompare ─▶
//           FilterChain.add (creation order, or position=/insert=) / compare.start()
//
// Chardevs belong to the registry, not to the objects: deleting an object releases its chardevs
// (they stay open, free for another object), as QEMU's chardev frontends do. A chardev serves one
// object at a time (QEMU: "Device '%s' is in use"). Deleting a filter takes it off its chain
// between two frames (the chain walks synchronously, so no frame is inside it); colo-compare's
// queued primary packets go out before it goes. A colo-compare checkpoint request is re-emitted
// as 'checkpoint-request' and, with notify_dev, written to that chardev as QEMU's notification
// ("DO_CHECKPOINT", framed like a packet).

import { EventEmitter } from 'node:events';
import type { ChardevSocket } from '../chardev/chardev-socket.js';
import type { FilterChain } from '../filters/filter-chain.js';
import type { NetFilter } from '../filters/filter.js';
import { MirrorFilter } from '../filters/mirror.js';
import { RedirectorFilter } from '../filters/redirector.js';
import { RewriterFilter } from '../filters/rewriter.js';
import { DumpFilter } from '../filters/dump.js';
import type { PassthroughList } from '../passthrough/passthrough.js';
import { ColoCompare, type CheckpointRequest } from './colo-compare.js';
import { ObjectPropertyError, OBJECT_PROPERTIES, type ObjectSpec, type ObjectType } from './object-table.js';

/** QEMU's notify_dev message (net/colo-compare.c). */
const DO_CHECKPOINT = new TextEncoder().encode('DO_CHECKPOINT');

export interface ObjectRegistryOptions {
  /** Netdevs filters may sit on, by id (the FilterChain wrapping each). */
  netdevs: ReadonlyMap<string, FilterChain>;
  /** Chardevs by id (opened by the caller; closed by `close()`). */
  chardevs: ReadonlyMap<string, ChardevSocket>;
  /** The passthrough list filters and colo-compare consult. */
  passthrough?: PassthroughList;
}

/** One live object. */
export interface RegisteredObject {
  readonly type: ObjectType;
  readonly id: string;
  /** The filter or ColoCompare (undefined for an iothread). */
  readonly instance: NetFilter | ColoCompare | undefined;
  /** The chain a filter is on. */
  readonly chain: FilterChain | undefined;
  /** Chardev ids it uses. */
  readonly chardevs: readonly string[];
  /** colo-compare: its iothread's id. */
  readonly iothread: string | undefined;
}

export class ObjectRegistry extends EventEmitter<{ 'checkpoint-request': [CheckpointRequest] }> {
  private readonly objects = new Map<string, RegisteredObject>();
  /** chardev id → id of the object using it. */
  private readonly chardevUser = new Map<string, string>();
  private closed = false;

  constructor(private readonly options: ObjectRegistryOptions) {
    super();
  }

  has(id: string): boolean {
    return this.objects.has(id);
  }

  get(id: string): RegisteredObject | undefined {
    return this.objects.get(id);
  }

  /** Ids in creation order. */
  ids(): string[] {
    return [...this.objects.keys()];
  }

  /**
   * The reference errors `add` would raise for `spec`, checked without making anything (the
   * command line checks every object before it opens a socket). `pending`: objects checked before
   * this one in the same batch (their ids and chardevs count as taken).
   */
  checkReferences(spec: ObjectSpec, pending: readonly ObjectSpec[] = []): void {
    const { type, id, props } = spec;
    if (this.objects.has(id) || pending.some((p) => p.id === id)) {
      throw new ObjectPropertyError(`${type} ${id}: an object with id '${id}' already exists`, `attempt to add duplicate property '${id}' to object (type 'container')`);
    }
    const table = OBJECT_PROPERTIES[type];
    const vnet = props['vnet_hdr_support'] === true;
    const mine = new Map<string, string>();
    for (const [name, spec0] of Object.entries(table)) {
      const value = props[name];
      if (value === undefined || spec0.type.kind !== 'ref') continue;
      const v = String(value);
      if (spec0.type.to === 'netdev') {
        if (!this.options.netdevs.has(v)) {
          const known = [...this.options.netdevs.keys()].join(', ') || '(none)';
          throw new ObjectPropertyError(`${type} ${id}: netdev '${v}' does not exist; netdevs: ${known}`, `Parameter 'netdev' expects a network backend id`);
        }
      } else if (spec0.type.to === 'iothread') {
        const o = this.objects.get(v);
        const p = pending.find((x) => x.id === v);
        if ((o === undefined || o.type !== 'iothread') && (p === undefined || p.type !== 'iothread')) {
          throw new ObjectPropertyError(`${type} ${id}: ${name} '${v}' is not an iothread object (create it first: iothread,id=${v})`, `Property '${type}.${name}' can't find value '${v}'`);
        }
      } else {
        const c = this.options.chardevs.get(v);
        if (c === undefined) {
          const known = [...this.options.chardevs.keys()].join(', ') || '(none)';
          throw new ObjectPropertyError(`${type} ${id}: ${name} '${v}' is not a chardev; chardevs: ${known}`, `Device '${v}' not found`);
        }
        const twice = mine.get(v);
        if (twice !== undefined) throw new ObjectPropertyError(`${type} ${id}: chardev '${v}' is both its ${twice} and its ${name}`, `Device '${v}' is in use`);
        mine.set(v, name);
        const user = this.chardevUser.get(v) ?? pending.find((p) => usesChardev(p, v))?.id;
        if (user !== undefined) throw new ObjectPropertyError(`${type} ${id}: chardev '${v}' is already used by '${user}'`, `Device '${v}' is in use`);
        if (name !== 'notify_dev' && c.vnetHdrSupport !== vnet) {
          throw new ObjectPropertyError(
            `${type} ${id}: chardev '${v}' carries ${c.vnetHdrSupport ? '' : 'no '}vnet header length but the object has vnet_hdr_support=${vnet ? 'on' : 'off'}`,
            `chardev '${v}' was opened with vnet_hdr_support=${c.vnetHdrSupport ? 'on' : 'off'}`,
          );
        }
      }
    }
  }

  /** Makes the object and puts it to work. Errors are ObjectPropertyErrors; nothing is left half-made. */
  add(spec: ObjectSpec): RegisteredObject {
    if (this.closed) throw new ObjectPropertyError('the run is ending', 'the run is ending');
    this.checkReferences(spec);
    const { type, id, props } = spec;
    const chardev = (name: string): ChardevSocket | undefined => {
      const v = props[name];
      return v === undefined ? undefined : this.options.chardevs.get(String(v));
    };
    const passthrough = this.options.passthrough;
    const pt = passthrough === undefined ? {} : { passthrough };
    let instance: NetFilter | ColoCompare | undefined;
    let chain: FilterChain | undefined;
    try {
      if (type === 'colo-compare') {
        const notify = chardev('notify_dev');
        const compare = new ColoCompare({
          id,
          primaryIn: chardev('primary_in')!,
          secondaryIn: chardev('secondary_in')!,
          outdev: chardev('outdev')!,
          ...pt,
          ...(props['compare_timeout'] !== undefined ? { compareTimeout: Math.max(1, props['compare_timeout'] as number) } : {}),
          ...(props['expired_scan_cycle'] !== undefined ? { expiredScanCycle: Math.max(1, props['expired_scan_cycle'] as number) } : {}),
          ...(props['max_queue_size'] !== undefined ? { maxQueueSize: Math.max(1, props['max_queue_size'] as number) } : {}),
        });
        compare.on('checkpoint-request', (r) => {
          notify?.write(DO_CHECKPOINT);
          this.emit('checkpoint-request', r);
        });
        compare.start();
        instance = compare;
      } else if (type !== 'iothread') {
        chain = this.options.netdevs.get(String(props['netdev']))!;
        const base = {
          id,
          ...(props['queue'] !== undefined ? { queue: props['queue'] as 'all' | 'rx' | 'tx' } : {}),
          status: props['status'] !== 'off',
        };
        let filter: NetFilter;
        if (type === 'filter-mirror') filter = new MirrorFilter({ ...base, outdev: chardev('outdev')!, ...pt });
        else if (type === 'filter-redirector') {
          const indev = chardev('indev');
          const outdev = chardev('outdev');
          filter = new RedirectorFilter({ ...base, ...(indev ? { indev } : {}), ...(outdev ? { outdev } : {}), ...pt });
        } else if (type === 'filter-rewriter') filter = new RewriterFilter(base);
        else filter = new DumpFilter({ ...base, file: String(props['file']), ...(props['maxlen'] !== undefined ? { maxlen: Math.max(1, props['maxlen'] as number) } : {}) });
        const position = props['position'] === undefined ? 'tail' : String(props['position']);
        const where = position.startsWith('id=') ? position.slice(3) : position;
        try {
          chain.add(filter, { position: where, insert: (props['insert'] as 'before' | 'behind' | undefined) ?? 'behind' });
        } catch (e) {
          void release(filter);
          throw e;
        }
        instance = filter;
      }
    } catch (e) {
      if (e instanceof ObjectPropertyError) throw e;
      throw new ObjectPropertyError(`${type} ${id}: ${(e as Error).message}`, (e as Error).message);
    }
    const used = Object.entries(OBJECT_PROPERTIES[type])
      .filter(([name, s]) => s.type.kind === 'ref' && s.type.to === 'chardev' && props[name] !== undefined)
      .map(([name]) => String(props[name]));
    for (const c of used) this.chardevUser.set(c, id);
    const entry: RegisteredObject = { type, id, instance, chain, chardevs: used, iothread: props['iothread'] === undefined ? undefined : String(props['iothread']) };
    this.objects.set(id, entry);
    return entry;
  }

  /**
   * Takes an object away: a filter leaves its chain, colo-compare sends out what it queued from
   * the primary, files and timers are closed, chardevs are released (not closed). An iothread in
   * use by a colo-compare is refused (QEMU refuses to delete an object something holds).
   */
  async delete(id: string): Promise<void> {
    const o = this.objects.get(id);
    if (o === undefined) throw new ObjectPropertyError(`object '${id}' not found`);
    if (o.type === 'iothread') {
      for (const other of this.objects.values()) {
        if (other.type === 'colo-compare' && other.iothread === id) {
          throw new ObjectPropertyError(`object '${id}' is in use by '${other.id}', can not be deleted`);
        }
      }
    }
    this.objects.delete(id);
    for (const c of o.chardevs) this.chardevUser.delete(c);
    if (o.chain !== undefined) o.chain.remove(id);
    if (o.instance !== undefined) await release(o.instance);
  }

  /** Every object's counters that has some, by id. */
  stats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [id, o] of this.objects) {
      const s = (o.instance as { stats?: () => unknown } | undefined)?.stats;
      if (typeof s === 'function') out[id] = { type: o.type, ...(s.call(o.instance) as object) };
    }
    return out;
  }

  /** Deletes every object (newest first) and closes every chardev. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.objects.keys()].reverse()) await this.delete(id);
    for (const c of this.options.chardevs.values()) await c.close();
  }
}

/** True when `spec` names chardev `id` in one of its chardev properties. */
function usesChardev(spec: ObjectSpec, id: string): boolean {
  for (const [name, s] of Object.entries(OBJECT_PROPERTIES[spec.type])) {
    if (s.type.kind === 'ref' && s.type.to === 'chardev' && spec.props[name] === id) return true;
  }
  return false;
}

/** Stops an object without closing the chardevs it reads or writes. */
async function release(o: NetFilter | ColoCompare): Promise<void> {
  if (o instanceof ColoCompare) o.release();
  else if (o instanceof RedirectorFilter) o.release();
  else if (o instanceof MirrorFilter) return;
  else await o.close?.();
}
