// One QMP client connection (QEMU docs/interop/qmp-spec: greeting, capabilities negotiation,
// commands answered in order, asynchronous events once negotiated).
//
// Data flow: socket bytes → JsonMessageStream (messages, or QEMU's parse-error texts) → dispatch →
// one reply line each, in request order (a handler that returns a promise holds the messages after
// it, and the socket, until it settles). Every line the server sends ends in "\r\n", as QEMU's do.
//
// Bounds: a message over `maxMessageBytes` gets an error and the connection is closed; a client
// that lets more than `maxOutputBytes` of replies and events pile up unread is disconnected; a
// client that has not negotiated capabilities `negotiationTimeoutMs` after connecting, or that
// sends nothing for `unnegotiatedIdleMs` before negotiating, gets an error and is disconnected.
// None of it affects any other client; a client leaving frees its slot at once.

import type net from 'node:net';
import type { QmpContext, QmpSession } from './commands.js';
import { dispatch, type DispatchOutcome, type QmpReply } from './dispatch.js';
import type { QmpDiagnostic } from './errors.js';
import { JsonMessageStream, jsonText, type JsonStreamSink, type JsonValue } from './json-stream.js';

/** After the last reply to a client being dropped, how long it has to take it before a hard close. */
const CLOSE_GRACE_MS = 1000;

/** What a connection needs from its server. */
export interface ConnectionHost {
  /** The server's part of the handler context (the session is the connection's). */
  readonly context: Omit<QmpContext, 'session'>;
  readonly greetingLine: string;
  readonly maxMessageBytes: number;
  readonly maxOutputBytes: number;
  readonly negotiationTimeoutMs: number;
  readonly unnegotiatedIdleMs: number;
  diagnostic(d: QmpDiagnostic): void;
  closed(conn: QmpConnection): void;
}

type Pending = { kind: 'message'; value: JsonValue } | { kind: 'invalid'; desc: string };

export class QmpConnection implements JsonStreamSink {
  readonly session: QmpSession = { negotiated: false };
  private readonly ctx: QmpContext;
  private readonly stream: JsonMessageStream;
  /** Messages that arrived while an asynchronous handler was running, in order. */
  private readonly pending: Pending[] = [];
  private busy = false;
  private dropped = false;
  /** Until negotiation completes: the deadline from connect, and the limit on silence. */
  private negotiationTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    /** Client number, for diagnostics. */
    readonly id: number,
    private readonly socket: net.Socket,
    private readonly host: ConnectionHost,
  ) {
    this.ctx = { ...host.context, session: this.session };
    this.stream = new JsonMessageStream(this, host.maxMessageBytes);
    socket.on('data', (chunk: Buffer) => {
      if (this.dropped) return;
      if (this.idleTimer !== undefined) this.idleTimer = this.armTimer(this.idleTimer, 'idle');
      this.stream.feed(chunk);
    });
    socket.on('error', (error: Error) => {
      if (!this.dropped) host.diagnostic({ code: 'qmp.socket-error', client: id, error });
      this.drop();
    });
    socket.on('close', () => {
      this.dropped = true;
      this.stream.stop();
      this.stopNegotiationTimers();
      host.closed(this);
    });
    this.negotiationTimer = this.armTimer(undefined, 'deadline');
    this.idleTimer = this.armTimer(undefined, 'idle');
    this.writeLine(host.greetingLine);
  }

  /** Sends an event line (already serialised) if this client finished negotiation. */
  sendEvent(line: string): void {
    if (this.session.negotiated) this.writeLine(line);
  }

  /** Closes the connection now (server shutdown). */
  destroy(): void {
    this.drop();
  }

  /** Stops handling input (including the rest of the chunk being parsed) and closes the socket. */
  private drop(): void {
    this.stopInput();
    this.socket.destroy();
  }

  /** Like drop(), but lets the client read what was already written (then a hard close after a grace). */
  private dropAfterLastReply(): void {
    this.stopInput();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private stopInput(): void {
    this.dropped = true;
    this.stream.stop();
    this.pending.length = 0;
    this.stopNegotiationTimers();
    this.host.closed(this); // the slot is free now, not when the peer gets round to closing
  }

  // --- negotiation timeouts ----------------------------------------------------------------------

  private armTimer(previous: NodeJS.Timeout | undefined, reason: 'deadline' | 'idle'): NodeJS.Timeout {
    if (previous !== undefined) clearTimeout(previous);
    const limitMs = reason === 'deadline' ? this.host.negotiationTimeoutMs : this.host.unnegotiatedIdleMs;
    const timer = setTimeout(() => this.negotiationTimedOut(reason, limitMs), limitMs);
    timer.unref();
    return timer;
  }

  private stopNegotiationTimers(): void {
    clearTimeout(this.negotiationTimer);
    clearTimeout(this.idleTimer);
    this.negotiationTimer = undefined;
    this.idleTimer = undefined;
  }

  private negotiationTimedOut(reason: 'deadline' | 'idle', limitMs: number): void {
    if (this.dropped || this.session.negotiated) return;
    const desc =
      reason === 'deadline'
        ? `Capabilities negotiation timed out: no 'qmp_capabilities' within ${limitMs} ms`
        : `Capabilities negotiation timed out: no input for ${limitMs} ms`;
    this.writeReply({ error: { class: 'GenericError', desc } });
    this.host.diagnostic({ code: 'qmp.negotiation-timeout', client: this.id, reason, limitMs });
    this.dropAfterLastReply();
  }

  // --- JsonStreamSink --------------------------------------------------------------------------

  message(value: JsonValue): void {
    if (this.dropped) return;
    if (this.busy) this.pending.push({ kind: 'message', value });
    else this.handle(value);
  }

  invalid(desc: string): void {
    if (this.dropped) return;
    if (this.busy) this.pending.push({ kind: 'invalid', desc });
    else this.writeReply({ error: { class: 'GenericError', desc } });
  }

  tooLarge(limit: number): void {
    this.writeReply({ error: { class: 'GenericError', desc: `JSON message size limit exceeded (${limit} bytes)` } });
    this.host.diagnostic({ code: 'qmp.message-too-large', client: this.id, limit });
    this.dropAfterLastReply();
  }

  // --- requests and replies ----------------------------------------------------------------------

  private handle(value: JsonValue): void {
    const outcome = dispatch(value, this.ctx);
    if (!(outcome instanceof Promise)) {
      this.complete(outcome);
      return;
    }
    this.busy = true;
    this.socket.pause();
    void outcome.then((o) => {
      this.complete(o);
      this.busy = false;
      this.drain();
      if (!this.busy && !this.dropped) this.socket.resume();
    });
  }

  private drain(): void {
    while (!this.busy && !this.dropped) {
      const next = this.pending.shift();
      if (next === undefined) return;
      if (next.kind === 'message') this.handle(next.value);
      else this.writeReply({ error: { class: 'GenericError', desc: next.desc } });
    }
  }

  private complete(outcome: DispatchOutcome): void {
    if (outcome.fault !== undefined) this.host.diagnostic({ ...outcome.fault, client: this.id });
    if (this.session.negotiated && this.negotiationTimer !== undefined) this.stopNegotiationTimers();
    this.writeReply(outcome.reply, outcome.command);
  }

  private writeReply(reply: QmpReply, command = '(none)'): void {
    let line: string;
    try {
      line = replyText(reply);
    } catch (err) {
      // A handler result that JSON cannot carry (a BigInt or a cycle in `any`): a bug, reported.
      this.host.diagnostic({ code: 'qmp.reply-invalid', client: this.id, command, detail: String(err) });
      const desc = 'internal error: the reply cannot be serialised as JSON';
      line = replyText(reply.id === undefined ? { error: { class: 'GenericError', desc } } : { error: { class: 'GenericError', desc }, id: reply.id });
    }
    this.writeLine(line);
  }

  private writeLine(line: string): void {
    if (this.dropped || !this.socket.writable) return;
    this.socket.write(`${line}\r\n`);
    if (this.socket.writableLength > this.host.maxOutputBytes) {
      this.host.diagnostic({ code: 'qmp.output-overflow', client: this.id, limit: this.host.maxOutputBytes });
      this.drop();
    }
  }
}

/** A reply line: `return` or `error`, then the request's `id` exactly as the client wrote it. */
function replyText(reply: QmpReply): string {
  const { id, ...rest } = reply;
  const body = JSON.stringify(rest);
  return id === undefined ? body : `${body.slice(0, -1)},"id":${jsonText(id)}}`;
}
