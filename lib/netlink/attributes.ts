// Netlink attributes (no VIRTIO section: RFC 3549 §2.3.2 and include/uapi/linux/netlink.h,
// struct nlattr): TLVs of { nla_len u16, nla_type u16 } + payload, each padded to 4 bytes;
// NLA_F_NESTED marks an attribute whose payload is itself a list of attributes.
//
// Attributes are typed by a schema (name → { type, kind }) the way the kernel's nla_policy types
// them: u8 / u16 / u32 / u64 / s32, NUL-terminated string, binary, flag, nested (with its own
// schema). Decoding validates every length against the buffer and the kind; unknown types are
// kept by number so a newer kernel's attributes never break a reply.

import { NetlinkError } from './errors.js';

export const NLA_HDRLEN = 4;
export const NLA_ALIGNTO = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export function nlaAlign(n: number): number {
  return (n + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
}

export type AttrKind = 'u8' | 'u16' | 'u32' | 'u64' | 's32' | 'string' | 'binary' | 'flag' | 'nested';

export interface AttrSpec {
  readonly type: number;
  readonly kind: AttrKind;
  /** For 'nested': the schema of the inner attributes. */
  readonly nested?: AttrSchema;
}

export type AttrSchema = { readonly [name: string]: AttrSpec };

export type AttrValue = number | bigint | string | Uint8Array | true | AttrValues;
export interface AttrValues {
  [name: string]: AttrValue | undefined;
}

/** A decoded attribute list: known names, plus `unknown` raw payloads by type number. */
export interface DecodedAttrs extends AttrValues {}

const FIXED_SIZE: Partial<Record<AttrKind, number>> = { u8: 1, u16: 2, u32: 4, u64: 8, s32: 4, flag: 0 };

/** A growing little-endian byte writer for building netlink messages (off the hot path). */
export class NlWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    const need = at + n;
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.length = need;
    return at;
  }

  /** Appends raw bytes (zero padding to 4 when `pad`). */
  bytes(src: Uint8Array, pad = false): number {
    const at = this.reserve(pad ? nlaAlign(src.length) : src.length);
    this.buf.set(src, at);
    return at;
  }
  // reserve() first, then this.view: growing replaces the view, and `this.view.setX(this.reserve(n))`
  // would write through the old one (out of bounds once the buffer grew).
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v >>> 0, true);
  }
  s32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  setU16(at: number, v: number): void {
    this.view.setUint16(at, v, true);
  }
  setU32(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0, true);
  }
  /** Pads with zeros to the next multiple of 4. */
  align(): void {
    this.reserve(nlaAlign(this.length) - this.length);
  }

  /** Starts an attribute; returns its offset for `endAttr`. */
  beginAttr(type: number): number {
    this.align();
    const at = this.reserve(NLA_HDRLEN);
    this.view.setUint16(at + 2, type, true);
    return at;
  }
  endAttr(at: number): void {
    const len = this.length - at;
    if (len > 0xffff) throw new NetlinkError('netlink.bad-value', `attribute of ${len} bytes exceeds nla_len (65535)`, { offset: at });
    this.view.setUint16(at, len, true);
    this.align();
  }
  attr(type: number, payload: Uint8Array): void {
    const at = this.beginAttr(type);
    this.bytes(payload);
    this.endAttr(at);
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Encodes `values` by `schema` into `w` (attributes in the schema's order). */
export function encodeAttrs(w: NlWriter, schema: AttrSchema, values: AttrValues): void {
  for (const name of Object.keys(values)) {
    if (!(name in schema)) throw new NetlinkError('netlink.bad-value', `attribute "${name}" is not in the schema (allowed: ${Object.keys(schema).join(', ')})`);
  }
  for (const [name, spec] of Object.entries(schema)) {
    const v = values[name];
    if (v === undefined) continue;
    encodeOne(w, name, spec, v);
  }
}

function encodeOne(w: NlWriter, name: string, spec: AttrSpec, v: AttrValue): void {
  const bad = (want: string): NetlinkError => new NetlinkError('netlink.bad-value', `attribute "${name}" (${spec.kind}) needs ${want}, got ${typeof v}`, { type: spec.type });
  const int = (max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw bad(`an integer 0..${max}`);
    return v;
  };
  const type = spec.kind === 'nested' ? spec.type | NLA_F_NESTED : spec.type;
  const at = w.beginAttr(type);
  switch (spec.kind) {
    case 'u8':
      w.u8(int(0xff));
      break;
    case 'u16':
      w.u16(int(0xffff));
      break;
    case 'u32':
      w.u32(int(0xffffffff));
      break;
    case 's32':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw bad('a 32-bit signed integer');
      w.s32(v);
      break;
    case 'u64': {
      const b = typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : v;
      if (typeof b !== 'bigint' || b < 0n || b > 0xffffffffffffffffn) throw bad('a 64-bit unsigned integer');
      w.u32(Number(b & 0xffffffffn));
      w.u32(Number(b >> 32n));
      break;
    }
    case 'string':
      if (typeof v !== 'string' || v.includes('\0')) throw bad('a string without NUL');
      w.bytes(Buffer.from(v + '\0', 'utf8'));
      break;
    case 'binary':
      if (!(v instanceof Uint8Array)) throw bad('a Uint8Array');
      w.bytes(v);
      break;
    case 'flag':
      if (v !== true) throw bad('true');
      break;
    case 'nested':
      if (v === null || typeof v !== 'object' || v instanceof Uint8Array) throw bad('an object of attributes');
      encodeAttrs(w, spec.nested ?? {}, v);
      break;
  }
  w.endAttr(at);
}

/** One raw attribute: type without flags, whether NLA_F_NESTED was set, and the payload view. */
export interface RawAttr {
  readonly type: number;
  readonly nested: boolean;
  readonly payload: Uint8Array;
}

/** Splits `buf` into attributes, validating each length. `base` is added to error offsets. */
export function splitAttrs(buf: Uint8Array, base = 0): RawAttr[] {
  const out: RawAttr[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLA_HDRLEN) {
      throw new NetlinkError('netlink.truncated', `attribute header cut short: ${buf.length - off} bytes at offset ${base + off}`, { offset: base + off });
    }
    const len = view.getUint16(off, true);
    const rawType = view.getUint16(off + 2, true);
    if (len < NLA_HDRLEN) throw new NetlinkError('netlink.malformed', `attribute at offset ${base + off} has nla_len ${len} < 4`, { offset: base + off, type: rawType & NLA_TYPE_MASK });
    if (off + len > buf.length) {
      throw new NetlinkError('netlink.truncated', `attribute type ${rawType & NLA_TYPE_MASK} at offset ${base + off} claims ${len} bytes, ${buf.length - off} remain`, {
        offset: base + off,
        type: rawType & NLA_TYPE_MASK,
      });
    }
    out.push({ type: rawType & NLA_TYPE_MASK, nested: (rawType & NLA_F_NESTED) !== 0, payload: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += nlaAlign(len);
  }
  return out;
}

/** Decodes `buf` by `schema`. Unknown types go to `unknown` (type → payload copy). */
export function decodeAttrs(buf: Uint8Array, schema: AttrSchema, base = 0): DecodedAttrs & { unknown?: Record<number, Uint8Array> } {
  const byType = new Map<number, [string, AttrSpec]>();
  for (const [name, spec] of Object.entries(schema)) byType.set(spec.type, [name, spec]);
  const out: DecodedAttrs & { unknown?: Record<number, Uint8Array> } = {};
  for (const a of splitAttrs(buf, base)) {
    const known = byType.get(a.type);
    if (known === undefined) {
      (out.unknown ??= {})[a.type] = a.payload.slice();
      continue;
    }
    const [name, spec] = known;
    out[name] = decodeOne(name, spec, a.payload, base + (a.payload.byteOffset - buf.byteOffset));
  }
  return out;
}

function decodeOne(name: string, spec: AttrSpec, p: Uint8Array, offset: number): AttrValue {
  const fixed = FIXED_SIZE[spec.kind];
  // The kernel's own policy checks are "at least" for integers in some families; we require the
  // exact size so a short or oversized field is never misread.
  if (fixed !== undefined && p.length !== fixed) {
    throw new NetlinkError('netlink.bad-attribute', `attribute "${name}" (${spec.kind}) has ${p.length} payload bytes, expected ${fixed}`, { offset, type: spec.type });
  }
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  switch (spec.kind) {
    case 'u8':
      return v.getUint8(0);
    case 'u16':
      return v.getUint16(0, true);
    case 'u32':
      return v.getUint32(0, true);
    case 's32':
      return v.getInt32(0, true);
    case 'u64':
      return v.getBigUint64(0, true);
    case 'flag':
      return true;
    case 'string': {
      const end = p.indexOf(0);
      if (end < 0) throw new NetlinkError('netlink.bad-attribute', `attribute "${name}" (string) has no terminating NUL`, { offset, type: spec.type });
      return Buffer.from(p.subarray(0, end)).toString('utf8');
    }
    case 'binary':
      return p.slice();
    case 'nested':
      return decodeAttrs(p, spec.nested ?? {}, offset);
  }
}
