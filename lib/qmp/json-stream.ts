// QMP input, layer 2: cutting the token stream into messages and building each message's value
// (QMP specification, QEMU docs/interop/qmp-spec; JSON grammar per RFC 8259 §§2-5).
//
// Message boundaries follow QEMU's JSON streamer: it counts braces and brackets, and a message ends
// at the token that brings both counts back to zero (so a top-level scalar is a message of its own)
// or makes either negative. No newline is needed between messages. The value is built as tokens
// arrive; after the first grammar error the rest of the message is only counted, and the error is
// reported when the message ends — one error per message, worded as QEMU words it.
//
// Numbers: an integer literal (no fraction, no exponent) outside ±(2^53 - 1) becomes a bigint, so
// an `id` goes back exactly as it came (`jsonText`) and an argument beyond what a number holds is
// refused, never rounded (QEMU keeps int64/uint64 exactly and turns larger ones into doubles).
//
// Limits (each a QEMU behaviour unless noted): nesting deeper than MAX_NESTING reports
// "JSON nesting depth limit exceeded" and drops the message; a message larger than
// `maxMessageBytes` stops the stream for good (ours: the connection is then closed, where QEMU
// would go on with a 64 MiB token limit); ours: an integer literal of more than MAX_INTEGER_DIGITS
// digits is a parse error (QEMU would make it a double, or inf).

import { JsonLexer, TokenType, type LexerSink } from './json-lexer.js';

/**
 * A parsed JSON value. Objects have a null prototype (no `__proto__` or inherited keys). Integer
 * literals beyond ±(2^53 - 1) are bigints (exact); every other number is a number.
 */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** QEMU's limit on brace + bracket depth (qobject/json-streamer.c MAX_NESTING). */
export const MAX_NESTING = 1024;
/**
 * Longest integer literal taken (digits, without the sign): 64-bit values need 20; this bounds the
 * cost of converting one to a bigint and back (superlinear in its length).
 */
export const MAX_INTEGER_DIGITS = 1024;
/** Longest token text quoted back in a "stray" error, so the reply stays small. */
const MAX_QUOTED_TOKEN_CHARS = 64;

/** What the stream reports, in input order. */
export interface JsonStreamSink {
  /** A complete message. */
  message(value: JsonValue): void;
  /** A message that failed to lex or parse; `desc` is QEMU's text ("JSON parse error, …"). */
  invalid(desc: string): void;
  /** The current message passed `maxMessageBytes`; the stream accepts nothing more. */
  tooLarge(limit: number): void;
}

type Frame =
  | { kind: 'object'; value: JsonObject; key: string; phase: ObjectPhase }
  | { kind: 'array'; value: JsonValue[]; phase: ArrayPhase };
/** Object: after '{', after ',', after a key, after ':', after a member. */
type ObjectPhase = 'key-or-end' | 'key' | 'colon' | 'value' | 'comma-or-end';
/** Array: after '[', after ',', after an element. */
type ArrayPhase = 'value-or-end' | 'value' | 'comma-or-end';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');

export class JsonMessageStream implements LexerSink {
  private readonly lexer = new JsonLexer(this);
  private braces = 0;
  private brackets = 0;
  private messageBytes = 0;
  private readonly stack: Frame[] = [];
  private top: JsonValue | undefined = undefined;
  private failure: string | undefined = undefined;

  constructor(
    private readonly sink: JsonStreamSink,
    private readonly maxMessageBytes: number,
  ) {}

  /** Feeds bytes as they arrive; complete messages are reported before this returns. */
  feed(chunk: Uint8Array): void {
    this.lexer.feed(chunk);
  }

  /** True after a message passed the size limit, or after `stop()`. */
  get stopped(): boolean {
    return this.lexer.isStopped;
  }

  /** Ignores all further input, starting with the rest of the chunk being fed now. */
  stop(): void {
    this.lexer.stop();
  }

  // --- LexerSink -------------------------------------------------------------------------------

  get inMessage(): boolean {
    return this.braces > 0 || this.brackets > 0;
  }

  countByte(): boolean {
    if (++this.messageBytes <= this.maxMessageBytes) return true;
    this.resetMessage();
    this.sink.tooLarge(this.maxMessageBytes);
    return false;
  }

  lexError(text: Uint8Array): void {
    this.resetMessage();
    this.sink.invalid(`JSON parse error, stray '${quoteToken(text)}'`);
  }

  token(type: TokenType, text: Uint8Array): void {
    switch (type) {
      case TokenType.LCurly:
        this.braces++;
        break;
      case TokenType.RCurly:
        this.braces--;
        break;
      case TokenType.LSquare:
        this.brackets++;
        break;
      case TokenType.RSquare:
        this.brackets--;
        break;
      default:
        break;
    }
    if (this.braces + this.brackets > MAX_NESTING) {
      this.resetMessage();
      this.sink.invalid('JSON nesting depth limit exceeded');
      return;
    }
    if (this.failure === undefined) this.parse(type, text);
    if (this.braces < 0 || this.brackets < 0 || (this.braces === 0 && this.brackets === 0)) {
      this.endMessage();
    }
  }

  // --- message assembly ------------------------------------------------------------------------

  private endMessage(): void {
    const failure = this.failure;
    const value = this.top;
    const complete = this.stack.length === 0 && value !== undefined;
    this.resetMessage();
    if (failure !== undefined) this.sink.invalid(failure);
    else if (!complete) this.sink.invalid('JSON parse error, premature EOI');
    else this.sink.message(value);
  }

  private resetMessage(): void {
    this.braces = 0;
    this.brackets = 0;
    this.messageBytes = 0;
    this.stack.length = 0;
    this.top = undefined;
    this.failure = undefined;
  }

  private fail(detail: string): void {
    this.failure ??= `JSON parse error, ${detail}`;
  }

  // --- the grammar, one token at a time --------------------------------------------------------

  private parse(type: TokenType, text: Uint8Array): void {
    const frame = this.stack[this.stack.length - 1];
    if (frame === undefined) {
      // Top level: exactly one value (the message ends as soon as it is complete).
      this.value(type, text);
      return;
    }
    if (frame.kind === 'object') {
      switch (frame.phase) {
        case 'key-or-end':
        case 'key':
          if (type === TokenType.String) {
            const key = decodeString(text);
            if (typeof key !== 'string') return this.fail(key.error);
            frame.key = key;
            frame.phase = 'colon';
          } else if (type === TokenType.RCurly && frame.phase === 'key-or-end') {
            this.close();
          } else if (type === TokenType.Keyword && keyword(text) === undefined) {
            this.fail(`invalid keyword '${quoteToken(text)}'`);
          } else if (isValueStart(type)) {
            this.fail('key is not a string in object');
          } else {
            this.fail('expecting value');
          }
          return;
        case 'colon':
          if (type === TokenType.Colon) frame.phase = 'value';
          else this.fail('missing : in object pair');
          return;
        case 'value':
          this.value(type, text);
          return;
        case 'comma-or-end':
          if (type === TokenType.Comma) frame.phase = 'key';
          else if (type === TokenType.RCurly) this.close();
          else this.fail('expected separator in dict');
          return;
      }
    }
    switch (frame.phase) {
      case 'value-or-end':
        if (type === TokenType.RSquare) this.close();
        else this.value(type, text);
        return;
      case 'value':
        this.value(type, text);
        return;
      case 'comma-or-end':
        if (type === TokenType.Comma) frame.phase = 'value';
        else if (type === TokenType.RSquare) this.close();
        else this.fail('expected separator in list');
        return;
    }
  }

  /** A token where a value must start. */
  private value(type: TokenType, text: Uint8Array): void {
    switch (type) {
      case TokenType.LCurly:
        this.stack.push({ kind: 'object', value: Object.create(null) as JsonObject, key: '', phase: 'key-or-end' });
        return;
      case TokenType.LSquare:
        this.stack.push({ kind: 'array', value: [], phase: 'value-or-end' });
        return;
      case TokenType.String: {
        const s = decodeString(text);
        if (typeof s !== 'string') return this.fail(s.error);
        return this.deliver(s);
      }
      case TokenType.Number:
        return this.number(utf8Lossy.decode(text));
      case TokenType.Keyword: {
        const k = keyword(text);
        if (k === undefined) return this.fail(`invalid keyword '${quoteToken(text)}'`);
        return this.deliver(k);
      }
      default:
        return this.fail('expecting value');
    }
  }

  /**
   * The lexer only lets RFC 8259 numbers through, which Number() reads as JSON does; an integer
   * literal it cannot hold exactly becomes a bigint instead.
   */
  private number(s: string): void {
    const n = Number(s);
    if (Number.isSafeInteger(n) || s.includes('.') || s.includes('e') || s.includes('E')) return this.deliver(n);
    if (s.length - (s.startsWith('-') ? 1 : 0) > MAX_INTEGER_DIGITS) {
      return this.fail(`integer with more than ${MAX_INTEGER_DIGITS} digits`);
    }
    this.deliver(BigInt(s));
  }

  private close(): void {
    const frame = this.stack.pop()!;
    this.deliver(frame.value);
  }

  /** A finished value goes to the enclosing container, or becomes the message. */
  private deliver(v: JsonValue): void {
    const parent = this.stack[this.stack.length - 1];
    if (parent === undefined) {
      this.top = v;
    } else if (parent.kind === 'array') {
      parent.value.push(v);
      parent.phase = 'comma-or-end';
    } else {
      if (Object.hasOwn(parent.value, parent.key)) return this.fail('duplicate key');
      parent.value[parent.key] = v;
      parent.phase = 'comma-or-end';
    }
  }
}

/**
 * The JSON text of a parsed value, compact: a bigint exactly as its digits, everything else as
 * JSON.stringify writes it. What a request's `id` is echoed with.
 */
export function jsonText(v: JsonValue): string {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return `[${v.map(jsonText).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .map((k) => `${JSON.stringify(k)}:${jsonText(v[k]!)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function isValueStart(type: TokenType): boolean {
  return (
    type === TokenType.LCurly ||
    type === TokenType.LSquare ||
    type === TokenType.Number ||
    type === TokenType.Keyword ||
    type === TokenType.String
  );
}

function keyword(text: Uint8Array): boolean | null | undefined {
  const s = utf8Lossy.decode(text);
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (s === 'null') return null;
  return undefined;
}

/** Token text for an error message: lossy UTF-8, capped so a huge bad token makes a small reply. */
function quoteToken(text: Uint8Array): string {
  const s = utf8Lossy.decode(text.subarray(0, MAX_QUOTED_TOKEN_CHARS * 4));
  return s.length > MAX_QUOTED_TOKEN_CHARS ? `${s.slice(0, MAX_QUOTED_TOKEN_CHARS)}...` : s;
}

function hex4(text: Uint8Array, at: number): number {
  if (at + 4 > text.length) return -1;
  let v = 0;
  for (let i = at; i < at + 4; i++) {
    const c = text[i]!;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

/**
 * Decodes a string token (quotes included): RFC 8259 §7 escapes plus `\'`; the raw bytes must be
 * UTF-8 and every `\u` escape a Unicode scalar value (a surrogate only as a proper pair).
 */
function decodeString(text: Uint8Array): string | { error: string } {
  const end = text.length - 1; // the closing quote
  let out = '';
  let runStart = 1;
  let i = 1;
  const flushRun = (upTo: number): boolean => {
    if (upTo > runStart) {
      try {
        out += utf8.decode(text.subarray(runStart, upTo));
      } catch {
        return false;
      }
    }
    return true;
  };
  while (i < end) {
    if (text[i] !== 0x5c) {
      i++;
      continue;
    }
    if (!flushRun(i)) return { error: 'invalid UTF-8 sequence in string' };
    const esc = text[i + 1]!;
    let next = i + 2;
    switch (esc) {
      case 0x22: out += '"'; break;
      case 0x27: out += "'"; break;
      case 0x5c: out += '\\'; break;
      case 0x2f: out += '/'; break;
      case 0x62: out += '\b'; break;
      case 0x66: out += '\f'; break;
      case 0x6e: out += '\n'; break;
      case 0x72: out += '\r'; break;
      case 0x74: out += '\t'; break;
      case 0x75: {
        let cp = hex4(text, i + 2);
        next = i + 6;
        if (cp >= 0xd800 && cp <= 0xdbff && text[next] === 0x5c && text[next + 1] === 0x75) {
          const low = hex4(text, next + 2);
          if (low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            next += 6;
          } else {
            cp = -1;
          }
        }
        if (cp < 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
          const shown = utf8Lossy.decode(text.subarray(i, Math.min(next, end)));
          return { error: `${shown} is not a valid Unicode character` };
        }
        out += String.fromCodePoint(cp);
        break;
      }
      default:
        return { error: 'invalid escape sequence in string' };
    }
    i = next;
    runStart = next;
  }
  if (!flushRun(end)) return { error: 'invalid UTF-8 sequence in string' };
  return out;
}
