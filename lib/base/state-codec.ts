// The device state image: a small versioned, self-describing, checksummed binary container (no spec
// section: what `device.saveState()` returns and `device.restoreState()` takes, API.md "Device
// state"). Little-endian throughout.
//
//   offset  size  field
//   0       4     magic "VNST"
//   4       2     format version (STATE_FORMAT_VERSION)
//   6       2     flags (0; every other value is refused)
//   8       4     total length in bytes, this header and the checksum included
//   12      …     sections, each: tag (4 ASCII letters/digits), version u8, flags u8 (bit 0:
//                 required), reserved u16 (0), payload length u32, payload
//   total-4 4     CRC-32 (crc32.ts) of every byte before it
//
// The envelope (magic, version and length at fixed offsets, the checksum last) is the same in every
// format version; versions change what the sections hold. A reader skips optional sections it does
// not know (or knows only in an older version) and refuses required ones: that is how a newer writer
// adds state an older reader may ignore. JSON is not used: the bulk (queue indices, bitmaps, frames)
// is binary, and one encoding for everything keeps the bounds checks in one place.
//
// Reading is bounded: every length is checked against what is left before it is used, the image is
// capped at STATE_MAX_BYTES and STATE_MAX_SECTIONS, and nothing is allocated from a length in the
// input before that check. Every problem is a `DeviceStateError` with a stable code.

import { crc32 } from './crc32.js';

/** Why a state image was refused (API.md: stable codes). */
export type DeviceStateErrorCode =
  /** Damaged: bad magic, truncated, checksum mismatch, a malformed section or an impossible value. */
  | 'state.corrupt'
  /** Intact but written in a format (or with a required section) this version does not read. */
  | 'state.version'
  /** Intact and readable, but from a device that differs from this one (options, transport, memory). */
  | 'state.mismatch';

/** Thrown by `restoreState()` for bad input; the device is then exactly as before the call. */
export class DeviceStateError extends Error {
  constructor(
    readonly code: DeviceStateErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'DeviceStateError';
  }
}

/** "VNST" read as a little-endian u32. */
export const STATE_MAGIC = 0x54534e56;
/** The format version this code writes and reads. */
export const STATE_FORMAT_VERSION = 1;
/**
 * Largest image accepted: far above a full rx backlog (256 frames of up to 64 KiB, about 17 MiB)
 * plus the rest of the state, far below what would hurt a hypervisor process.
 */
export const STATE_MAX_BYTES = 32 * 1024 * 1024;
/** Most sections an image may have (the device writes about ten). */
export const STATE_MAX_SECTIONS = 64;
/** Envelope header: magic, version, flags, total length. */
const HEADER_BYTES = 12;
/** Section header: tag, version, flags, reserved, length. */
const SECTION_HEADER_BYTES = 12;
const CRC_BYTES = 4;
const SECTION_REQUIRED = 1;
/** Longest string a section may carry (ids, counter names). */
export const STATE_MAX_STRING = 256;

function corrupt(message: string): DeviceStateError {
  return new DeviceStateError('state.corrupt', message);
}

/** Appends little-endian values to a growing buffer. */
export class StateWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private at = 0;

  get length(): number {
    return this.at;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.room(1);
    this.view.setUint8(this.at, v);
    this.at += 1;
    return this;
  }
  u16(v: number): this {
    this.room(2);
    this.view.setUint16(this.at, v, true);
    this.at += 2;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    this.view.setUint32(this.at, v >>> 0, true);
    this.at += 4;
    return this;
  }
  u64(v: bigint): this {
    this.room(8);
    this.view.setBigUint64(this.at, BigInt.asUintN(64, v), true);
    this.at += 8;
    return this;
  }
  /** A non-negative integer up to 2^53 (counters), as an IEEE double. */
  f64(v: number): this {
    this.room(8);
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }
  /** u16 byte length, then UTF-8. */
  string(s: string): this {
    const b = new TextEncoder().encode(s);
    if (b.length > STATE_MAX_STRING) throw new RangeError(`StateWriter.string: ${b.length} bytes, more than ${STATE_MAX_STRING}`);
    return this.u16(b.length).bytes(b);
  }
  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
}

/** Reads little-endian values from `bytes[start, end)`; reading past the end is 'state.corrupt'. */
export class StateReader {
  private readonly view: DataView;
  private at: number;

  constructor(
    private readonly src: Uint8Array,
    start: number,
    private readonly end: number,
    /** Named in error messages. */
    readonly where: string,
  ) {
    this.view = new DataView(src.buffer, src.byteOffset, src.byteLength);
    this.at = start;
  }

  get remaining(): number {
    return this.end - this.at;
  }

  private take(n: number, what: string): number {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.end - this.at) throw corrupt(`${this.where}: ${what} needs ${n} byte(s), ${this.end - this.at} left`);
    const at = this.at;
    this.at += n;
    return at;
  }

  u8(what = 'u8'): number {
    return this.view.getUint8(this.take(1, what));
  }
  u16(what = 'u16'): number {
    return this.view.getUint16(this.take(2, what), true);
  }
  u32(what = 'u32'): number {
    return this.view.getUint32(this.take(4, what), true);
  }
  u64(what = 'u64'): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }
  /** A non-negative safe integer written with `f64` (anything else is corrupt). */
  count(what = 'count'): number {
    const v = this.view.getFloat64(this.take(8, what), true);
    if (!Number.isSafeInteger(v) || v < 0) throw corrupt(`${this.where}: ${what} is ${v}, not a count`);
    return v;
  }
  bool(what = 'flag'): boolean {
    const v = this.u8(what);
    if (v > 1) throw corrupt(`${this.where}: ${what} is ${v}, not 0 or 1`);
    return v === 1;
  }
  /** A view of the next `n` bytes (valid while the input is); `n` is checked before anything else. */
  bytes(n: number, what = 'bytes'): Uint8Array {
    const at = this.take(n, what);
    return this.src.subarray(at, at + n);
  }
  string(what = 'string'): string {
    const n = this.u16(`${what} length`);
    if (n > STATE_MAX_STRING) throw corrupt(`${this.where}: ${what} of ${n} bytes, more than ${STATE_MAX_STRING}`);
    const b = this.bytes(n, what);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      throw corrupt(`${this.where}: ${what} is not UTF-8`);
    }
  }
  /** Every byte of the section must have been read (a longer payload is corrupt, not ignored). */
  done(): void {
    if (this.at !== this.end) throw corrupt(`${this.where}: ${this.end - this.at} unread byte(s) at the end`);
  }
}

/** One section to write. */
export interface StateSection {
  /** Four ASCII capitals or digits, e.g. 'CORE'. */
  readonly tag: string;
  /** The section's own layout version (1..255). */
  readonly version: number;
  /** A reader that does not know the section (or this version of it) must refuse the image. */
  readonly required: boolean;
  readonly payload: Uint8Array;
}

const TAG = /^[A-Z0-9]{4}$/;

/** The envelope around `sections`. */
export function encodeStateImage(sections: readonly StateSection[]): Uint8Array {
  const w = new StateWriter();
  w.u32(STATE_MAGIC).u16(STATE_FORMAT_VERSION).u16(0).u32(0);
  for (const s of sections) {
    if (!TAG.test(s.tag)) throw new RangeError(`encodeStateImage: bad tag ${JSON.stringify(s.tag)}`);
    if (!Number.isInteger(s.version) || s.version < 1 || s.version > 255) throw new RangeError(`encodeStateImage: bad version ${s.version} of ${s.tag}`);
    for (let i = 0; i < 4; i++) w.u8(s.tag.charCodeAt(i));
    w.u8(s.version).u8(s.required ? SECTION_REQUIRED : 0).u16(0).u32(s.payload.length).bytes(s.payload);
  }
  w.u32(0); // checksum placeholder
  const out = w.finish();
  const dv = new DataView(out.buffer);
  dv.setUint32(8, out.length, true);
  dv.setUint32(out.length - CRC_BYTES, crc32(out, 0, out.length - CRC_BYTES), true);
  return out;
}

interface SectionEntry {
  readonly version: number;
  readonly required: boolean;
  readonly start: number;
  readonly end: number;
  taken: boolean;
}

/** A checked image: its sections, taken one by one by the device's decoder. */
export class StateImage {
  private constructor(
    private readonly bytes: Uint8Array,
    private readonly sections: Map<string, SectionEntry>,
  ) {}

  /**
   * Checks the envelope — in this order: length and magic, total length, checksum ('state.corrupt'),
   * format version ('state.version'), section framing ('state.corrupt') — and indexes the sections
   * of a private copy of `input`.
   */
  static parse(input: Uint8Array): StateImage {
    if (!(input instanceof Uint8Array)) throw new TypeError('restoreState: state must be a Uint8Array (what saveState() returned)');
    if (input.length > STATE_MAX_BYTES) throw corrupt(`${input.length} bytes, more than ${STATE_MAX_BYTES}`);
    // A private copy: what was checksummed is what is read, even if the caller's buffer is shared
    // and changes meanwhile.
    const bytes = input.slice();
    const n = bytes.length;
    if (n < HEADER_BYTES + CRC_BYTES) throw corrupt(`${n} byte(s) cannot hold a state image (at least ${HEADER_BYTES + CRC_BYTES})`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, n);
    if (dv.getUint32(0, true) !== STATE_MAGIC) throw corrupt('not a device state image (bad magic)');
    const total = dv.getUint32(8, true);
    if (total > STATE_MAX_BYTES) throw corrupt(`image claims ${total} bytes, more than ${STATE_MAX_BYTES}`);
    if (total !== n) throw corrupt(`image claims ${total} bytes but ${n} were given (truncated or padded)`);
    const want = dv.getUint32(n - CRC_BYTES, true);
    const got = crc32(bytes, 0, n - CRC_BYTES);
    if (want !== got) throw corrupt(`checksum mismatch (stored 0x${want.toString(16)}, computed 0x${got.toString(16)})`);
    const version = dv.getUint16(4, true);
    if (version !== STATE_FORMAT_VERSION) {
      throw new DeviceStateError('state.version', `format version ${version}; this device reads version ${STATE_FORMAT_VERSION}`);
    }
    if (dv.getUint16(6, true) !== 0) throw corrupt(`unknown header flags 0x${dv.getUint16(6, true).toString(16)}`);
    const sections = new Map<string, SectionEntry>();
    const end = n - CRC_BYTES;
    let at = HEADER_BYTES;
    while (at < end) {
      if (end - at < SECTION_HEADER_BYTES) throw corrupt(`section header at ${at} is cut short`);
      if (sections.size === STATE_MAX_SECTIONS) throw corrupt(`more than ${STATE_MAX_SECTIONS} sections`);
      const tag = String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
      if (!TAG.test(tag)) throw corrupt(`bad section tag at ${at}`);
      const sv = bytes[at + 4]!;
      const flags = bytes[at + 5]!;
      if (sv === 0 || (flags & ~SECTION_REQUIRED) !== 0 || dv.getUint16(at + 6, true) !== 0) throw corrupt(`section ${tag}: bad version or flags`);
      const len = dv.getUint32(at + 8, true);
      const start = at + SECTION_HEADER_BYTES;
      if (len > end - start) throw corrupt(`section ${tag}: ${len} byte(s) claimed, ${end - start} left`);
      if (sections.has(tag)) throw corrupt(`section ${tag} appears twice`);
      sections.set(tag, { version: sv, required: (flags & SECTION_REQUIRED) !== 0, start, end: start + len, taken: false });
      at = start + len;
    }
    return new StateImage(bytes, sections);
  }

  /**
   * The reader of section `tag` if present, written in a version this reader knows (1..`maxVersion`);
   * undefined when absent or (optional and) newer. A required section newer than `maxVersion` is
   * 'state.version'. Pass the version read to the section's decoder.
   */
  take(tag: string, maxVersion: number): { reader: StateReader; version: number } | undefined {
    const s = this.sections.get(tag);
    if (s === undefined) return undefined;
    s.taken = true;
    if (s.version > maxVersion) {
      if (s.required) throw new DeviceStateError('state.version', `section ${tag} is version ${s.version}; this device reads up to ${maxVersion}`);
      return undefined;
    }
    return { reader: new StateReader(this.bytes, s.start, s.end, `section ${tag}`), version: s.version };
  }

  /** Like `take`, but the section must be there ('state.corrupt' otherwise). */
  need(tag: string, maxVersion: number): { reader: StateReader; version: number } {
    const r = this.take(tag, maxVersion);
    if (r === undefined) throw corrupt(`section ${tag} is missing`);
    return r;
  }

  /** After the decoder took what it knows: a required section nobody took is 'state.version'. */
  finish(): void {
    for (const [tag, s] of this.sections) {
      if (!s.taken && s.required) throw new DeviceStateError('state.version', `required section ${tag} is unknown to this version`);
    }
  }

  /** Tags in the image, in order (for tests and tools). */
  get tags(): string[] {
    return [...this.sections.keys()];
  }
}
