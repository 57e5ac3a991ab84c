// The objects `--object` and QMP `object-add` create (QEMU's qom-types of the same names, with
// QEMU's property names: qapi/qom.json NetfilterProperties, FilterMirrorProperties,
// FilterRedirectorProperties, FilterRewriterProperties, FilterDumpProperties,
// ColoCompareProperties, IothreadProperties). One table says, per type, which properties exist,
// their type and which are required; the command line (text values) and QMP (JSON values) are both
// checked against it, so a property a type does not take is refused in one place.
// `iothread` is accepted and does nothing (the model has no threads); its poll properties are
// checked and ignored.

export type ObjectType = 'filter-mirror' | 'filter-redirector' | 'filter-rewriter' | 'filter-dump' | 'colo-compare' | 'iothread';
export const OBJECT_TYPES: readonly ObjectType[] = ['filter-mirror', 'filter-redirector', 'filter-rewriter', 'filter-dump', 'colo-compare', 'iothread'];

/** What a property holds. `ref` values are ids of other things (checked when the object is made). */
export type PropertyKind =
  | { readonly kind: 'str' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'uint'; readonly max: number }
  /** `qmpWords`: QEMU's error for a value not in the list, where its schema types it as a plain string. */
  | { readonly kind: 'enum'; readonly values: readonly string[]; readonly qmpWords?: (value: string) => string }
  | { readonly kind: 'ref'; readonly to: 'chardev' | 'netdev' | 'iothread' };

export interface PropertySpec {
  readonly type: PropertyKind;
  readonly required?: boolean;
  readonly help: string;
}

const UINT32 = 0xffffffff;
const str = (help: string, required = false): PropertySpec => ({ type: { kind: 'str' }, help, required });
const bool = (help: string): PropertySpec => ({ type: { kind: 'bool' }, help });
const uint = (help: string, max = UINT32): PropertySpec => ({ type: { kind: 'uint', max }, help });
const ref = (to: 'chardev' | 'netdev' | 'iothread', help: string, required = false): PropertySpec => ({ type: { kind: 'ref', to }, help, required });
const oneOf = (values: readonly string[], help: string): PropertySpec => ({ type: { kind: 'enum', values }, help });

/** Every net filter's properties (QEMU NetfilterProperties). */
const NETFILTER: Readonly<Record<string, PropertySpec>> = {
  netdev: ref('netdev', 'the netdev the filter sits on', true),
  queue: oneOf(['all', 'rx', 'tx'], 'which frames it sees, named from the netdev (default all)'),
  // A plain string in QEMU's schema, checked by the property setter (net/filter.c netfilter_set_status).
  status: { type: { kind: 'enum', values: ['on', 'off'], qmpWords: (v) => `Invalid value ${v} for status, should be 'on' or 'off'` }, help: 'off: the filter is skipped (default on)' },
  position: str("'head', 'tail' (default) or 'id=<filter id>': where on the chain"),
  insert: oneOf(['behind', 'before'], "with position=id=…: behind (default) or before that filter"),
};
const VNET = { vnet_hdr_support: bool('frames on its sockets carry the vnet header length') };

export const OBJECT_PROPERTIES: Readonly<Record<ObjectType, Readonly<Record<string, PropertySpec>>>> = {
  'filter-mirror': { ...NETFILTER, outdev: ref('chardev', 'where copies go', true), ...VNET },
  'filter-redirector': { ...NETFILTER, indev: ref('chardev', 'frames read here enter the chain after the filter'), outdev: ref('chardev', 'frames the filter sees go here instead'), ...VNET },
  'filter-rewriter': { ...NETFILTER, ...VNET },
  'filter-dump': { ...NETFILTER, file: str('the capture file (pcap; created 0600, never over an existing file)', true), maxlen: uint('bytes kept per frame (default 65536)', 0x7fffffff) },
  'colo-compare': {
    primary_in: ref('chardev', "the primary guest's packets", true),
    secondary_in: ref('chardev', "the secondary guest's packets", true),
    outdev: ref('chardev', 'where compared primary packets go', true),
    iothread: ref('iothread', 'accepted (the model has no threads)'),
    notify_dev: ref('chardev', "gets 'DO_CHECKPOINT' on each checkpoint request (QEMU's Xen COLO notification)"),
    compare_timeout: uint('ms a primary packet waits for its match (default 3000)'),
    expired_scan_cycle: uint('ms between scans for expired packets (default 1000)'),
    max_queue_size: uint('packets per queue per connection (default 1024)'),
    ...VNET,
  },
  iothread: {
    'poll-max-ns': uint('accepted, ignored', Number.MAX_SAFE_INTEGER),
    'poll-grow': uint('accepted, ignored', Number.MAX_SAFE_INTEGER),
    'poll-shrink': uint('accepted, ignored', Number.MAX_SAFE_INTEGER),
    'aio-max-batch': uint('accepted, ignored', Number.MAX_SAFE_INTEGER),
  },
};

/** A property value once checked: text for str/enum/ref, a boolean, or a number. */
export type PropertyValue = string | number | boolean;
export type ObjectProps = Readonly<Record<string, PropertyValue>>;

/** An object's type, id and checked properties. */
export interface ObjectSpec {
  readonly type: ObjectType;
  readonly id: string;
  readonly props: ObjectProps;
}

/** A property or value the table refuses; the message names the object, the property and what is allowed. */
export class ObjectPropertyError extends Error {
  constructor(
    message: string,
    /** QEMU's words for the same mistake, for QMP replies. */
    readonly qmpMessage: string = message,
  ) {
    super(message);
    this.name = 'ObjectPropertyError';
  }
}

/** QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
export function objectIdWellFormed(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(id);
}

export function isObjectType(t: string): t is ObjectType {
  return (OBJECT_TYPES as readonly string[]).includes(t);
}

/** Every property name of every type (QMP object-add takes them flat). */
export function allPropertyNames(): string[] {
  const out = new Set<string>();
  for (const t of OBJECT_TYPES) for (const p of Object.keys(OBJECT_PROPERTIES[t])) out.add(p);
  return [...out];
}

function describeKind(k: PropertyKind): string {
  switch (k.kind) {
    case 'str': return 'a string';
    case 'bool': return 'on or off';
    case 'uint': return `an integer from 0 to ${k.max}`;
    case 'enum': return `one of ${k.values.join(', ')}`;
    case 'ref': return `the id of ${k.to === 'iothread' ? 'an iothread object' : `a ${k.to}`}`;
  }
}

/**
 * Checks one object's properties. `text`: values came from a command line (strings, converted
 * here: on/off/yes/no/true/false for booleans, decimal for integers; a bare `name` means on);
 * else they came from QMP JSON and must already have their type.
 */
export function checkObject(type: string, id: unknown, raw: Readonly<Record<string, unknown>>, text: boolean): ObjectSpec {
  if (!isObjectType(type)) {
    throw new ObjectPropertyError(`unknown object type '${type}'; allowed: ${OBJECT_TYPES.join(', ')}`, `Parameter 'qom-type' does not accept value '${type}'`);
  }
  if (typeof id !== 'string' || id === '') throw new ObjectPropertyError(`${type}: needs id=NAME`, "Parameter 'id' is missing");
  if (!objectIdWellFormed(id)) {
    throw new ObjectPropertyError(`${type} ${id}: id must start with a letter and hold only letters, digits, '-', '.', '_'`, "Parameter 'id' expects an identifier");
  }
  const table = OBJECT_PROPERTIES[type];
  const out: Record<string, PropertyValue> = {};
  for (const [name, value] of Object.entries(raw)) {
    const spec = Object.hasOwn(table, name) ? table[name] : undefined;
    if (spec === undefined) {
      const names = Object.keys(table);
      throw new ObjectPropertyError(
        `${type} ${id}: unknown property '${name}'; ${type} takes ${names.length === 0 ? 'no properties' : names.join(', ')} (and id)`,
        `Parameter '${name}' is unexpected`,
      );
    }
    out[name] = checkValue(type, id, name, spec.type, value, text);
  }
  for (const [name, spec] of Object.entries(table)) {
    if (spec.required === true && out[name] === undefined) {
      throw new ObjectPropertyError(`${type} ${id}: property '${name}' is required (${spec.help})`, `Parameter '${name}' is missing`);
    }
  }
  if (type === 'filter-redirector' && out['indev'] === undefined && out['outdev'] === undefined) {
    throw new ObjectPropertyError(`filter-redirector ${id}: needs indev=CHARDEV or outdev=CHARDEV (or both)`, 'filter-redirector needs \'indev\' or \'outdev\' at least one property set');
  }
  if (type === 'filter-redirector' && out['indev'] !== undefined && out['indev'] === out['outdev']) {
    throw new ObjectPropertyError(`filter-redirector ${id}: indev and outdev must be different chardevs, both are '${String(out['indev'])}'`, "'indev' and 'outdev' could not be same for filter-redirector");
  }
  if (type === 'filter-rewriter' && out['queue'] !== undefined && out['queue'] !== 'all') {
    throw new ObjectPropertyError(`filter-rewriter ${id}: queue must be all (it rewrites both directions), got '${String(out['queue'])}'`, "Parameter 'queue' expects all");
  }
  const position = out['position'];
  if (position !== undefined && position !== 'head' && position !== 'tail' && !/^id=./.test(String(position))) {
    throw new ObjectPropertyError(`${type} ${id}: position must be head, tail or id=<filter id>, got '${String(position)}'`, "Parameter 'position' expects 'head', 'tail' or 'id=<id>'");
  }
  return { type, id, props: out };
}

function checkValue(type: string, id: string, name: string, kind: PropertyKind, value: unknown, text: boolean): PropertyValue {
  const bad = (qmp: string): never => {
    throw new ObjectPropertyError(`${type} ${id}: property '${name}' must be ${describeKind(kind)}, got ${JSON.stringify(value)}`, qmp);
  };
  switch (kind.kind) {
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (text && typeof value === 'string') {
        if (['on', 'yes', 'true', ''].includes(value)) return true;
        if (['off', 'no', 'false'].includes(value)) return false;
      }
      return bad(`Invalid parameter type for '${name}', expected: boolean`);
    case 'uint': {
      let n: number;
      if (typeof value === 'number') n = value;
      else if (text && typeof value === 'string' && /^\d{1,16}$/.test(value)) n = Number(value);
      else return bad(`Invalid parameter type for '${name}', expected: integer`);
      if (!Number.isSafeInteger(n) || n < 0 || n > kind.max) return bad(`Parameter '${name}' expects a value between 0 and ${kind.max}`);
      return n;
    }
    case 'enum':
      if (typeof value !== 'string') return bad(`Invalid parameter type for '${name}', expected: string`);
      if (!kind.values.includes(value)) return bad(kind.qmpWords?.(value) ?? `Parameter '${name}' does not accept value '${value}'`);
      return value;
    case 'str':
    case 'ref':
      if (typeof value !== 'string') return bad(`Invalid parameter type for '${name}', expected: string`);
      if (value === '') return bad(`Parameter '${name}' expects a non-empty string`);
      return value;
  }
}
