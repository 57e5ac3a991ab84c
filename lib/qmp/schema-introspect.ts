// query-qmp-schema: the table of lib/qmp/schema.ts as QEMU's SchemaInfo list (qapi/introspect.json;
// docs/devel/qapi-code-gen "Client JSON Protocol introspection"). Generated, never written by hand,
// so it always says what the server accepts: every command with its argument object and return
// type, every event with its data object, and each object, enum, array and builtin type they name
// (once, in first-use order). Argument objects are named `q_obj_<name>-arg`, the empty object
// `q_empty`; QEMU masks such names as numbers, which clients may not rely on either way.

import { membersOf } from './validate.js';
import { QMP_SCHEMA } from './schema.js';
import type { QmpMembers, QmpSchemaDef, QmpTypeRef } from './schema-types.js';

export interface SchemaInfo {
  name: string;
  'meta-type': 'builtin' | 'enum' | 'array' | 'object' | 'command' | 'event';
  'arg-type'?: string;
  'ret-type'?: string;
  'allow-oob'?: boolean;
  members?: unknown[];
  values?: string[];
  'element-type'?: string;
  'json-type'?: string;
}

const JSON_TYPE: Readonly<Record<string, string>> = {
  str: 'string', bool: 'boolean', int: 'int', uint8: 'int', uint16: 'int', uint32: 'int', number: 'number', any: 'value',
};

const EMPTY = 'q_empty';

export function introspect(schema: QmpSchemaDef = QMP_SCHEMA): SchemaInfo[] {
  const out: SchemaInfo[] = [];
  const seen = new Set<string>();
  const typeName = (t: QmpTypeRef): string => (typeof t === 'string' ? t : `[${typeName(t[0])}]`);
  const emitType = (t: QmpTypeRef): string => {
    const name = typeName(t);
    if (seen.has(name)) return name;
    seen.add(name);
    if (typeof t !== 'string') {
      out.push({ name, 'meta-type': 'array', 'element-type': emitType(t[0]) });
      return name;
    }
    if (Object.hasOwn(JSON_TYPE, t)) {
      out.push({ name, 'meta-type': 'builtin', 'json-type': JSON_TYPE[t]! });
      return name;
    }
    const def = schema.types[t];
    if (def === undefined) throw new Error(`query-qmp-schema: unknown type '${t}'`);
    if ('enum' in def) out.push({ name, 'meta-type': 'enum', values: [...def.enum], members: def.enum.map((v) => ({ name: v })) });
    else emitObject(name, def.struct);
    return name;
  };
  const emitObject = (name: string, members: QmpMembers): void => {
    const entry: SchemaInfo = { name, 'meta-type': 'object', members: [] };
    seen.add(name);
    out.push(entry);
    entry.members = membersOf(members).map((m) => (m.optional ? { name: m.name, type: emitType(m.type), default: null } : { name: m.name, type: emitType(m.type) }));
  };
  const argObject = (owner: string, members: QmpMembers | undefined): string => {
    if (members === undefined || Object.keys(members).length === 0) {
      if (!seen.has(EMPTY)) emitObject(EMPTY, {});
      return EMPTY;
    }
    const name = `q_obj_${owner}-arg`;
    emitObject(name, members);
    return name;
  };
  for (const [name, c] of Object.entries(schema.commands)) {
    const entry: SchemaInfo = { name, 'meta-type': 'command', 'arg-type': '', 'ret-type': '', 'allow-oob': false };
    out.push(entry);
    entry['arg-type'] = argObject(name, c.data);
    entry['ret-type'] = c.returns === undefined ? (seen.has(EMPTY) ? EMPTY : (emitObject(EMPTY, {}), EMPTY)) : emitType(c.returns);
  }
  for (const [name, e] of Object.entries(schema.events)) {
    const entry: SchemaInfo = { name, 'meta-type': 'event', 'arg-type': '' };
    out.push(entry);
    entry['arg-type'] = argObject(name, e.data);
  }
  return out;
}
