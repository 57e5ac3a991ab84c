// QMP error replies (QEMU docs/interop/qmp-spec, "error" response: `{ "error": { "class", "desc" } }`)
// and the server's own diagnostics.

/**
 * QMP error classes (QEMU's `QapiErrorClass`). Almost every error is `GenericError`; the others
 * exist for clients that predate free-form `desc` texts.
 */
export type QmpErrorClass =
  | 'GenericError'
  | 'CommandNotFound'
  | 'DeviceNotActive'
  | 'DeviceNotFound'
  | 'KVMMissingCap';

/** Thrown by a command handler to answer with a QMP error; anything else thrown is a bug. */
export class QmpError extends Error {
  constructor(
    /** The wire `class`. */
    readonly errorClass: QmpErrorClass,
    /** The wire `desc`, worded as QEMU words the same error. */
    readonly desc: string,
  ) {
    super(desc);
    this.name = 'QmpError';
  }
}

/** Shorthand for the common case. */
export function genericError(desc: string): QmpError {
  return new QmpError('GenericError', desc);
}

/**
 * What the server reports through its 'diagnostic' event. None of these stop the server: a
 * client is dropped, or a reply is replaced by a GenericError, and every other client goes on.
 */
export type QmpDiagnostic =
  /** A client sent a message larger than `maxMessageBytes`: it got an error, then was closed. */
  | { code: 'qmp.message-too-large'; client: number; limit: number }
  /** A client did not read its replies and events: more than `maxOutputBytes` were queued. */
  | { code: 'qmp.output-overflow'; client: number; limit: number }
  /**
   * A client did not complete capabilities negotiation in time: `deadline` — not within
   * `negotiationTimeoutMs` of connecting; `idle` — no input for `unnegotiatedIdleMs`. It got an
   * error and was disconnected.
   */
  | { code: 'qmp.negotiation-timeout'; client: number; reason: 'deadline' | 'idle'; limitMs: number }
  /** A connection beyond `MAX_CLIENTS` was refused. */
  | { code: 'qmp.too-many-clients'; limit: number }
  /** The socket of a client failed (reset by peer, …). */
  | { code: 'qmp.socket-error'; client: number; error: Error }
  /** A command handler threw something other than a `QmpError` (a bug); the client got a GenericError. */
  | { code: 'qmp.handler-threw'; client: number; command: string; error: unknown }
  /** A handler's result did not match the command's return type (a bug); the client got a GenericError. */
  | { code: 'qmp.reply-invalid'; client: number; command: string; detail: string }
  /** An event's data did not match the schema (e.g. a NIC sent a malformed payload); not sent. */
  | { code: 'qmp.event-invalid'; event: string; detail: string }
  /** A listening socket failed after it started listening (e.g. out of file descriptors). */
  | { code: 'qmp.listener-error'; error: Error };
