// QMP input, layer 1: the byte-level JSON tokenizer (QMP specification, QEMU
// docs/interop/qmp-spec: "the server's input is a stream of JSON objects"; JSON per RFC 8259 §§2-7,
// plus QEMU's extensions: single-quoted strings and the `\'` escape).
//
// Incremental: bytes arrive in arbitrary pieces (a message split across socket reads, several
// messages in one read) and the lexer keeps its state between `feed()` calls. It allocates nothing
// per byte: the bytes of the token being read go into one reusable buffer.
//
// Like QEMU's lexer, a byte that cannot continue or start a token is an error *immediately*: the
// lexer reports the offending token text (QEMU's "stray '…'") and drops the message in progress.
// It then recovers as QEMU 7.2 does: it skips input up to the next promising point — a
// structural character ({ } [ ] : ,), an ASCII control character other than tab (so any line
// end), or 0xFE/0xFF — and lexes from there, so a run of garbage costs one error, and never
// swallows the good input after it. Bytes 0xC0, 0xC1 and 0xF5..0xFF can never appear in UTF-8, so
// they are errors even inside strings (QEMU's specification offers 0xFF to clients for resyncing).
// Whether string bytes form valid UTF-8 and escapes are valid is left to the parser, as in QEMU.

/** Kinds of token the lexer emits. */
export const enum TokenType {
  LCurly,
  RCurly,
  LSquare,
  RSquare,
  Colon,
  Comma,
  String,
  Number,
  Keyword,
}

/** What the lexer calls. Token bytes are only valid during the call (a reused buffer). */
export interface LexerSink {
  /** A complete token; `text` holds its bytes (strings include their quotes). */
  token(type: TokenType, text: Uint8Array): void;
  /** A byte that cannot start or continue a token; `text` is the token so far including it. */
  lexError(text: Uint8Array): void;
  /**
   * Called for every byte that belongs to a message (everything but whitespace between
   * messages); returns false to stop the lexer (the message grew past its limit).
   */
  countByte(): boolean;
  /** Whether a message is open (whitespace inside a message counts towards its size). */
  readonly inMessage: boolean;
}

const enum State {
  Start,
  String,
  StringEscape,
  Keyword,
  Minus, // after '-': a digit must follow
  Zero, // "0" or "-0": no more digits may follow
  Int,
  FracStart, // after '.': a digit must follow
  Frac,
  ExpStart, // after 'e'/'E': sign or digit
  ExpSign, // after the exponent's sign: a digit must follow
  Exp,
  Recovery, // after an error: skipping to a resynchronisation point
}

/** Initial size of the token buffer; it grows by doubling and shrinks back after a large token. */
const INITIAL_TOKEN_BYTES = 256;
/** A token buffer larger than this is dropped after use so an idle connection holds little. */
const RETAINED_TOKEN_BYTES = 64 * 1024;

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}
function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}
function isLowerLetter(b: number): boolean {
  return b >= 0x61 && b <= 0x7a;
}
/** Where recovery after an error stops: structural characters, control characters but tab, 0xFE, 0xFF. */
function isResyncPoint(b: number): boolean {
  return (
    (b < 0x20 && b !== 0x09) ||
    b === 0x7b ||
    b === 0x7d ||
    b === 0x5b ||
    b === 0x5d ||
    b === 0x3a ||
    b === 0x2c ||
    b >= 0xfe
  );
}

/** Bytes that are never part of UTF-8 text: they always reset the lexer. */
function isResyncByte(b: number): boolean {
  return b === 0xc0 || b === 0xc1 || b >= 0xf5;
}

export class JsonLexer {
  private state: State = State.Start;
  private quote = 0;
  private tok = new Uint8Array(INITIAL_TOKEN_BYTES);
  private tokLen = 0;
  private stopped = false;

  constructor(private readonly sink: LexerSink) {}

  /** True once `countByte()` refused a byte; the lexer then ignores all input. */
  get isStopped(): boolean {
    return this.stopped;
  }

  feed(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length && !this.stopped; i++) {
      const b = chunk[i]!;
      if (this.state === State.Start && isWhitespace(b) && !this.sink.inMessage) continue;
      if (!this.sink.countByte()) {
        this.stopped = true;
        return;
      }
      if (this.state === State.Recovery) {
        if (!isResyncPoint(b)) continue; // skipped input belongs to no message
        this.state = State.Start;
      }
      // A token that ends only when the next byte does not fit it (numbers, keywords) is
      // emitted first; then the byte is looked at again from the start state.
      if (!this.step(b)) this.step(b);
    }
  }

  /** Stops the lexer for good, even in the middle of a `feed()` (the connection is going away). */
  stop(): void {
    this.stopped = true;
  }

  /** Processes one byte; returns false when it ended a token without consuming the byte. */
  private step(b: number): boolean {
    switch (this.state) {
      case State.Start:
        return this.start(b);
      case State.String:
        if (b === this.quote) {
          this.push(b);
          this.emit(TokenType.String);
        } else if (b === 0x5c) {
          this.push(b);
          this.state = State.StringEscape;
        } else if (b < 0x20 || isResyncByte(b)) {
          this.error(b);
        } else {
          this.push(b);
        }
        return true;
      case State.StringEscape:
        // Any printable byte is taken here; the parser rejects invalid escapes by name.
        if (b < 0x20 || isResyncByte(b)) {
          this.error(b);
        } else {
          this.push(b);
          this.state = State.String;
        }
        return true;
      case State.Keyword:
        if (isLowerLetter(b)) return this.take(b, State.Keyword);
        return this.endBefore(TokenType.Keyword);
      case State.Minus:
        if (b === 0x30) return this.take(b, State.Zero);
        if (isDigit(b)) return this.take(b, State.Int);
        return this.error(b);
      case State.Zero:
        if (isDigit(b)) return this.error(b); // leading zeros are not JSON
        if (b === 0x2e) return this.take(b, State.FracStart);
        if (b === 0x65 || b === 0x45) return this.take(b, State.ExpStart);
        return this.endBefore(TokenType.Number);
      case State.Int:
        if (isDigit(b)) return this.take(b, State.Int);
        if (b === 0x2e) return this.take(b, State.FracStart);
        if (b === 0x65 || b === 0x45) return this.take(b, State.ExpStart);
        return this.endBefore(TokenType.Number);
      case State.FracStart:
        return isDigit(b) ? this.take(b, State.Frac) : this.error(b);
      case State.Frac:
        if (isDigit(b)) return this.take(b, State.Frac);
        if (b === 0x65 || b === 0x45) return this.take(b, State.ExpStart);
        return this.endBefore(TokenType.Number);
      case State.ExpStart:
        if (b === 0x2b || b === 0x2d) return this.take(b, State.ExpSign);
        return isDigit(b) ? this.take(b, State.Exp) : this.error(b);
      case State.ExpSign:
        return isDigit(b) ? this.take(b, State.Exp) : this.error(b);
      case State.Exp:
        if (isDigit(b)) return this.take(b, State.Exp);
        return this.endBefore(TokenType.Number);
      case State.Recovery:
        return true; // handled in feed()
    }
  }

  private start(b: number): boolean {
    switch (b) {
      case 0x7b:
        return this.single(b, TokenType.LCurly);
      case 0x7d:
        return this.single(b, TokenType.RCurly);
      case 0x5b:
        return this.single(b, TokenType.LSquare);
      case 0x5d:
        return this.single(b, TokenType.RSquare);
      case 0x3a:
        return this.single(b, TokenType.Colon);
      case 0x2c:
        return this.single(b, TokenType.Comma);
      case 0x22:
      case 0x27:
        this.quote = b;
        return this.take(b, State.String);
      case 0x2d:
        return this.take(b, State.Minus);
      case 0x30:
        return this.take(b, State.Zero);
      default:
        if (isWhitespace(b)) return true; // inside a message
        if (isDigit(b)) return this.take(b, State.Int);
        if (isLowerLetter(b)) return this.take(b, State.Keyword);
        return this.error(b);
    }
  }

  private single(b: number, type: TokenType): boolean {
    this.push(b);
    this.emit(type);
    return true;
  }

  private take(b: number, next: State): boolean {
    this.push(b);
    this.state = next;
    return true;
  }

  /** The byte does not belong to the current token: emit it, and have the byte re-read. */
  private endBefore(type: TokenType): boolean {
    this.emit(type);
    return false;
  }

  private emit(type: TokenType): void {
    const text = this.tok.subarray(0, this.tokLen);
    this.state = State.Start;
    this.tokLen = 0;
    this.sink.token(type, text);
    this.shrink();
  }

  private error(b: number): boolean {
    this.push(b);
    const text = this.tok.subarray(0, this.tokLen);
    this.state = State.Recovery;
    this.tokLen = 0;
    this.sink.lexError(text);
    this.shrink();
    return true;
  }

  private push(b: number): void {
    if (this.tokLen === this.tok.length) {
      // Bounded: every pushed byte was counted by `countByte()`, which stops the lexer at the
      // message size limit.
      const bigger = new Uint8Array(this.tok.length * 2);
      bigger.set(this.tok);
      this.tok = bigger;
    }
    this.tok[this.tokLen++] = b;
  }

  private shrink(): void {
    if (this.tokLen === 0 && this.tok.length > RETAINED_TOKEN_BYTES) {
      this.tok = new Uint8Array(INITIAL_TOKEN_BYTES);
    }
  }
}
