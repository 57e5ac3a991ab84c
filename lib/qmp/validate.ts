// Checking values against the schema's type language (lib/qmp/schema-types.ts), both ways:
// - input (command arguments): first error only, worded exactly as QEMU 7.2's QObject input
//   visitor words it (qapi/qobject-input-visitor.c; texts checked against a running QEMU 7.2):
//     "Parameter 'x' is missing", "Invalid parameter type for 'x', expected: string",
//     "Parameter 'x' is unexpected", "Parameter 'x' does not accept value 'v'",
//     "Parameter 'x' expects uint16_t" (out of range) / "... expects uint64" (not an integer).
//   Ours, in QEMU's "Parameter '%s' expects %s" form: an integer literal beyond ±(2^53 - 1) (a
//   bigint from the JSON stream) where QEMU would take it as an `int` or `number` — "Parameter 'x'
//   expects a value between -9007199254740991 and 9007199254740991" — since a number cannot hold
//   it exactly; and a string argument over MAX_STRING_ARGUMENT_BYTES — "Parameter 'x' expects a
//   string of at most 256 bytes".
//   Members are checked in schema order, unexpected members after them. Names are full paths
//   ('a.b', 'a[0]'), except in the enum text, which QEMU words with the member's own name and
//   'null' for a list element.
// - output (handler results): the value is checked and projected onto the declared members, so
//   only what the schema declares goes on the wire (as QEMU's output visitor does).

import type { JsonObject, JsonValue } from './json-stream.js';
import { MAX_STRING_ARGUMENT_BYTES } from './options.js';
import type { QmpMembers, QmpTypeDef, QmpTypeRef } from './schema-types.js';

type Types = { readonly [name: string]: QmpTypeDef };

const UINT_MAX = { uint8: 0xff, uint16: 0xffff, uint32: 0xffffffff } as const;
/** What QEMU's JSON parser keeps as an integer (beyond it: a double). */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Splits a members table into (wire name, optional, type) triples, in order. */
export function membersOf(members: QmpMembers): { name: string; optional: boolean; type: QmpTypeRef }[] {
  return Object.keys(members).map((key) => {
    const optional = key.startsWith('*');
    return { name: optional ? key.slice(1) : key, optional, type: members[key]! };
  });
}

/** Checks command arguments; returns QEMU's error text for the first problem, or undefined. */
export function checkArguments(members: QmpMembers | undefined, args: JsonObject, types: Types): string | undefined {
  return checkStruct(members ?? {}, args, '', types);
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

function checkStruct(members: QmpMembers, obj: JsonObject, prefix: string, types: Types): string | undefined {
  const declared = membersOf(members);
  for (const m of declared) {
    const full = join(prefix, m.name);
    if (!Object.hasOwn(obj, m.name)) {
      if (m.optional) continue;
      return `Parameter '${full}' is missing`;
    }
    const err = checkValue(m.type, obj[m.name]!, full, m.name, types);
    if (err !== undefined) return err;
  }
  for (const key of Object.keys(obj)) {
    if (!declared.some((m) => m.name === key)) return `Parameter '${join(prefix, key)}' is unexpected`;
  }
  return undefined;
}

/** `local` is the member's own name, or null for a list element (QEMU's enum wording uses it). */
function checkValue(type: QmpTypeRef, v: JsonValue, full: string, local: string | null, types: Types): string | undefined {
  const expected = (what: string): string => `Invalid parameter type for '${full}', expected: ${what}`;
  const inexact = (): string =>
    `Parameter '${full}' expects a value between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`;
  if (typeof type !== 'string') {
    if (!Array.isArray(v)) return expected('array');
    for (let i = 0; i < v.length; i++) {
      const err = checkValue(type[0], v[i]!, `${full}[${i}]`, null, types);
      if (err !== undefined) return err;
    }
    return undefined;
  }
  switch (type) {
    case 'str':
      if (typeof v !== 'string') return expected('string');
      // Cheap first test: a string of n UTF-16 units takes at least n UTF-8 bytes.
      return v.length <= MAX_STRING_ARGUMENT_BYTES / 3 || Buffer.byteLength(v) <= MAX_STRING_ARGUMENT_BYTES
        ? undefined
        : `Parameter '${full}' expects a string of at most ${MAX_STRING_ARGUMENT_BYTES} bytes`;
    case 'bool':
      return typeof v === 'boolean' ? undefined : expected('boolean');
    case 'number':
      if (typeof v === 'bigint') return inexact();
      return typeof v === 'number' ? undefined : expected('number');
    case 'int':
      // QEMU takes any int64; beyond that its parser made a double, which it refuses as such.
      if (typeof v === 'bigint') return v >= INT64_MIN && v <= INT64_MAX ? inexact() : expected('integer');
      return Number.isSafeInteger(v) ? undefined : expected('integer');
    case 'uint8':
    case 'uint16':
    case 'uint32':
      // QEMU reads an int64 or uint64 (a negative one wraps) and range-checks it; a double is not a uint64.
      if (typeof v === 'bigint') return v >= INT64_MIN && v <= UINT64_MAX ? `Parameter '${full}' expects ${type}_t` : `Parameter '${full}' expects uint64`;
      if (!Number.isSafeInteger(v)) return `Parameter '${full}' expects uint64`;
      return (v as number) >= 0 && (v as number) <= UINT_MAX[type] ? undefined : `Parameter '${full}' expects ${type}_t`;
    case 'any':
      return undefined;
    default: {
      const def = types[type];
      if (def === undefined) throw new Error(`QMP schema: unknown type '${type}'`);
      if ('enum' in def) {
        if (typeof v !== 'string') return expected('string');
        return def.enum.includes(v) ? undefined : `Parameter '${local ?? 'null'}' does not accept value '${v}'`;
      }
      if (!isJsonObject(v)) return expected('object');
      return checkStruct(def.struct, v, full, types);
    }
  }
}

/** Result of `projectOutput`. */
export type ProjectResult = { ok: true; value: unknown } | { ok: false; detail: string };

/**
 * Checks a handler's result against the declared return type and copies exactly the declared
 * members (in schema order). The detail names the path of the first mismatch.
 */
export function projectOutput(type: QmpTypeRef, v: unknown, types: Types, path = 'return'): ProjectResult {
  const bad = (what: string): ProjectResult => ({ ok: false, detail: `${path}: expected ${what}` });
  if (typeof type !== 'string') {
    if (!Array.isArray(v)) return bad('an array');
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      const r = projectOutput(type[0], v[i], types, `${path}[${i}]`);
      if (!r.ok) return r;
      out.push(r.value);
    }
    return { ok: true, value: out };
  }
  switch (type) {
    case 'str':
      return typeof v === 'string' ? { ok: true, value: v } : bad('a string');
    case 'bool':
      return typeof v === 'boolean' ? { ok: true, value: v } : bad('a boolean');
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? { ok: true, value: v } : bad('a finite number');
    case 'int':
      return Number.isSafeInteger(v) ? { ok: true, value: v } : bad('an integer');
    case 'uint8':
    case 'uint16':
    case 'uint32':
      return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= UINT_MAX[type]
        ? { ok: true, value: v }
        : bad(`a ${type}`);
    case 'any':
      return v === undefined ? bad('a value') : { ok: true, value: v };
    default: {
      const def = types[type];
      if (def === undefined) throw new Error(`QMP schema: unknown type '${type}'`);
      if ('enum' in def) {
        return typeof v === 'string' && def.enum.includes(v) ? { ok: true, value: v } : bad(`one of ${def.enum.join(', ')}`);
      }
      return projectStruct(def.struct, v, types, path);
    }
  }
}

/** `projectOutput` for a members table (a struct's members, an event's data). */
export function projectStruct(members: QmpMembers, v: unknown, types: Types, path: string): ProjectResult {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, detail: `${path}: expected an object` };
  const src = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const m of membersOf(members)) {
    const member = src[m.name];
    if (member === undefined) {
      if (m.optional) continue;
      return { ok: false, detail: `${path}.${m.name}: missing` };
    }
    const r = projectOutput(m.type, member, types, `${path}.${m.name}`);
    if (!r.ok) return r;
    out[m.name] = r.value;
  }
  return { ok: true, value: out };
}

/** Throws when a type reference in the table names no type (a programmer error in the table). */
export function assertTypeRefsResolve(type: QmpTypeRef, types: Types, where: string): void {
  if (typeof type !== 'string') return assertTypeRefsResolve(type[0], types, where);
  const builtin = ['str', 'bool', 'int', 'uint8', 'uint16', 'uint32', 'number', 'any'];
  if (builtin.includes(type)) return;
  const def = types[type];
  if (def === undefined) throw new Error(`QMP schema: ${where} refers to unknown type '${type}'`);
}
