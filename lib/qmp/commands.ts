// The handlers of the commands in lib/qmp/schema.ts, one per table entry (the mapped type below
// makes a missing or mistyped handler a compile error). Semantics and error texts are QEMU 7.2's
// for the same command names (net/net.c qmp_query_rx_filter and qmp_set_link,
// monitor/qmp-cmds-control.c), checked against a running QEMU 7.2.

import { PassthroughError, type IPFlowSpec, type PassthroughList } from '../passthrough/passthrough.js';
import { QmpError, genericError } from './errors.js';
import type { QmpNetdevAdmin } from './netdev-admin.js';
import type { QmpObjectAdmin } from './object-admin.js';
import { announceSelf } from './announce.js';
import { introspect } from './schema-introspect.js';
import type { QmpNic } from './nic.js';
import { QMP_SCHEMA, type QmpCommandName, type QmpSchema } from './schema.js';
import type { QmpMembersValue, QmpValueOf } from './schema-types.js';

type Types = QmpSchema['types'];
type Commands = QmpSchema['commands'];

/** Decoded arguments of a command, typed from its `data`. */
export type QmpArgs<N extends QmpCommandName> = Commands[N] extends { readonly data: infer M }
  ? QmpMembersValue<M, Types>
  : Record<string, never>;

/** Result of a command, typed from its `returns` (void: the wire reply is `{}`). */
export type QmpResult<N extends QmpCommandName> = Commands[N] extends { readonly returns: infer R }
  ? QmpValueOf<R, Types>
  : void;

/** Per-connection state a handler may change. */
export interface QmpSession {
  /** False until `qmp_capabilities` succeeds: only negotiation commands run, no events are sent. */
  negotiated: boolean;
}

/** What handlers see of the server. */
export interface QmpContext {
  readonly session: QmpSession;
  /** NICs by net client name, in the order given to the server. */
  readonly nics: ReadonlyMap<string, QmpNic>;
  /** Netdev ids (net clients that are not NICs). */
  readonly netdevIds: ReadonlySet<string>;
  /** For each netdev id, the NICs attached to it. */
  readonly nicsOfNetdev: ReadonlyMap<string, readonly QmpNic[]>;
  /** Capabilities offered in the greeting (none today). */
  readonly offeredCapabilities: readonly string[];
  readonly version: QmpResult<'query-version'>;
  /** The COLO passthrough list the colo-passthrough-* / passthrough-filter-* commands edit. */
  readonly passthrough: PassthroughList;
  /** Ids of the colo-compare and filter objects a passthrough entry's 'object-name' may name (given, or added by object-add). */
  readonly coloObjectIds: { has(id: string): boolean };
  /** object-add / object-del (lib/qmp/object-admin.ts). */
  readonly objectAdmin: QmpObjectAdmin;
  /** announce-self's pending rounds (cleared when the server closes). */
  readonly announceTimers: Set<NodeJS.Timeout>;
  /** netdev_add / netdev_del (lib/qmp/netdev-admin.ts). */
  readonly netdevAdmin: QmpNetdevAdmin;
}

export type QmpHandler<N extends QmpCommandName> = (
  args: QmpArgs<N>,
  ctx: QmpContext,
) => QmpResult<N> | Promise<QmpResult<N>>;

/**
 * The NICs a `name` argument selects, with QEMU's errors: a netdev name is "not a NIC", an unknown
 * name is invalid; without a name, every NIC (possibly none).
 */
function selectNics(name: string | undefined, ctx: QmpContext): QmpNic[] {
  if (name === undefined) return [...ctx.nics.values()];
  const nic = ctx.nics.get(name);
  if (nic !== undefined) return [nic];
  if (ctx.netdevIds.has(name)) throw genericError(`net client(${name}) isn't a NIC`);
  throw genericError(`invalid net client name: ${name}`);
}

/**
 * Runs a passthrough-list edit: an 'object-name' that names no object is refused first, in the
 * words QEMU 7.2 uses for an unknown object id (object-del: "object '%s' not found"); the list's
 * own refusals become GenericErrors with its message.
 */
function editPassthrough(edit: (spec: IPFlowSpec) => void, args: IPFlowSpec, ctx: QmpContext): void {
  const objectName = args['object-name'];
  if (objectName !== undefined && !ctx.coloObjectIds.has(objectName)) throw genericError(`object '${objectName}' not found`);
  try {
    edit(args);
  } catch (err) {
    if (err instanceof PassthroughError) throw genericError(err.message);
    throw err;
  }
}

export const QMP_HANDLERS: { readonly [N in QmpCommandName]: QmpHandler<N> } = {
  qmp_capabilities(args, ctx) {
    if (ctx.session.negotiated) {
      throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
    }
    const unavailable = (args.enable ?? []).filter((c) => !ctx.offeredCapabilities.includes(c));
    if (unavailable.length > 0) throw genericError(`Capability ${unavailable.join(', ')} not available`);
    ctx.session.negotiated = true;
  },

  'query-version'(_args, ctx) {
    return ctx.version;
  },

  'query-commands'() {
    return Object.keys(QMP_SCHEMA.commands).map((name) => ({ name }));
  },

  'query-rx-filter'(args, ctx) {
    // Each query re-arms that NIC's change event (QEMU: rxfilter_notify_enabled = 1).
    return selectNics(args.name, ctx).map((nic) => nic.queryRxFilter());
  },

  set_link(args, ctx) {
    const nic = ctx.nics.get(args.name);
    if (nic !== undefined) {
      nic.setLink(args.up);
      return;
    }
    if (ctx.netdevIds.has(args.name)) {
      // QEMU sets the netdev's link and its peer NIC's; our netdevs have no link of their own.
      for (const peer of ctx.nicsOfNetdev.get(args.name) ?? []) peer.setLink(args.up);
      return;
    }
    throw new QmpError('DeviceNotFound', `Device '${args.name}' not found`);
  },

  'x-query-virtio-net-stats'(args, ctx) {
    return selectNics(args.name, ctx).map((nic) => ({ name: nic.id, stats: nic.stats() }));
  },

  'colo-passthrough-add'(args, ctx) {
    editPassthrough((spec) => ctx.passthrough.add(spec), args, ctx);
  },

  'colo-passthrough-del'(args, ctx) {
    editPassthrough((spec) => ctx.passthrough.delete(spec), args, ctx);
  },

  'passthrough-filter-add'(args, ctx) {
    editPassthrough((spec) => ctx.passthrough.add(spec), args, ctx);
  },

  'passthrough-filter-del'(args, ctx) {
    editPassthrough((spec) => ctx.passthrough.delete(spec), args, ctx);
  },

  async netdev_add(args, ctx) {
    await ctx.netdevAdmin.add(args);
  },

  async netdev_del(args, ctx) {
    await ctx.netdevAdmin.del(args.id);
  },

  async 'object-add'(args, ctx) {
    await ctx.objectAdmin.add(args);
  },

  async 'object-del'(args, ctx) {
    await ctx.objectAdmin.del(args.id);
  },

  'announce-self'(args, ctx) {
    announceSelf(args, ctx.nics, ctx.announceTimers);
  },

  'query-qmp-schema'() {
    return introspect();
  },
};
