// One QMP request to one reply (QEMU docs/interop/qmp-spec, "Commands Responses"; checks in the
// order QEMU 7.2's qapi/qmp-dispatch.c makes them, texts checked against a running QEMU 7.2):
//   1. the message must be an object            "QMP input must be a JSON object"
//   2. each member: `execute` a string, `arguments` an object, `id` anything, nothing else
//                                               "QMP input member 'execute' must be a string", …
//   3. `execute` present                        "QMP input lacks member 'execute'"
//   4. the command exists and is available      CommandNotFound "The command X has not been found",
//      (in negotiation mode: "Expecting capabilities negotiation with 'qmp_capabilities'")
//   5. the arguments match the schema           GenericError, lib/qmp/validate.ts
//   6. the handler runs; a QmpError it throws becomes the reply's error.
// `id` is echoed in every reply to a request object that has one, errors included.

import { QmpError, type QmpErrorClass } from './errors.js';
import { QMP_HANDLERS, type QmpContext, type QmpHandler } from './commands.js';
import type { JsonObject, JsonValue } from './json-stream.js';
import { QMP_SCHEMA, type QmpCommandName } from './schema.js';
import type { QmpCommandDef } from './schema-types.js';
import { checkArguments, isJsonObject, projectOutput } from './validate.js';

/** A reply as it goes on the wire. */
export type QmpReply =
  | { return: unknown; id?: JsonValue }
  | { error: { class: QmpErrorClass; desc: string }; id?: JsonValue };

/** A handler bug, reported through the server's diagnostics; the client gets a GenericError. */
export type QmpDispatchFault =
  | { code: 'qmp.handler-threw'; command: string; error: unknown }
  | { code: 'qmp.reply-invalid'; command: string; detail: string };

export interface DispatchOutcome {
  reply: QmpReply;
  /** The command that ran, when the request got as far as its handler. */
  command?: string;
  fault?: QmpDispatchFault;
}

const NEGOTIATION_DESC = "Expecting capabilities negotiation with 'qmp_capabilities'";

function errorReply(errorClass: QmpErrorClass, desc: string, id: JsonValue | undefined): QmpReply {
  return id === undefined ? { error: { class: errorClass, desc } } : { error: { class: errorClass, desc }, id };
}

function lookup(name: string): QmpCommandDef | undefined {
  return Object.hasOwn(QMP_SCHEMA.commands, name) ? (QMP_SCHEMA.commands as Record<string, QmpCommandDef>)[name] : undefined;
}

/**
 * Handles one parsed message. Synchronous unless the handler returns a promise; the caller keeps
 * replies in request order.
 */
export function dispatch(msg: JsonValue, ctx: QmpContext): DispatchOutcome | Promise<DispatchOutcome> {
  if (!isJsonObject(msg)) return { reply: errorReply('GenericError', 'QMP input must be a JSON object', undefined) };
  const id = Object.hasOwn(msg, 'id') ? msg['id'] : undefined;
  const fail = (errorClass: QmpErrorClass, desc: string): DispatchOutcome => ({ reply: errorReply(errorClass, desc, id) });

  let command: string | undefined;
  let args: JsonObject | undefined;
  for (const key of Object.keys(msg)) {
    const v = msg[key]!;
    if (key === 'execute') {
      if (typeof v !== 'string') return fail('GenericError', "QMP input member 'execute' must be a string");
      command = v;
    } else if (key === 'arguments') {
      if (!isJsonObject(v)) return fail('GenericError', "QMP input member 'arguments' must be an object");
      args = v;
    } else if (key !== 'id') {
      return fail('GenericError', `QMP input member '${key}' is unexpected`);
    }
  }
  if (command === undefined) return fail('GenericError', "QMP input lacks member 'execute'");

  const def = lookup(command);
  if (def === undefined || (!ctx.session.negotiated && def.negotiation !== true)) {
    return fail('CommandNotFound', ctx.session.negotiated ? `The command ${command} has not been found` : NEGOTIATION_DESC);
  }
  const argError = checkArguments(def.data, args ?? (Object.create(null) as JsonObject), QMP_SCHEMA.types);
  if (argError !== undefined) return fail('GenericError', argError);

  const name = command as QmpCommandName;
  // The arguments were just checked against this command's `data`, so they have its type.
  const handler = QMP_HANDLERS[name] as QmpHandler<QmpCommandName>;
  let result: unknown;
  try {
    result = handler((args ?? {}) as never, ctx);
  } catch (err) {
    return thrown(name, err, id);
  }
  if (result instanceof Promise) {
    return result.then(
      (value: unknown) => finish(name, def, value, id),
      (err: unknown) => thrown(name, err, id),
    );
  }
  return finish(name, def, result, id);
}

function finish(name: string, def: QmpCommandDef, value: unknown, id: JsonValue | undefined): DispatchOutcome {
  if (def.returns === undefined) return { command: name, reply: id === undefined ? { return: {} } : { return: {}, id } };
  const projected = projectOutput(def.returns, value, QMP_SCHEMA.types);
  if (!projected.ok) {
    return {
      command: name,
      reply: errorReply('GenericError', `internal error: the reply to '${name}' does not match its schema`, id),
      fault: { code: 'qmp.reply-invalid', command: name, detail: projected.detail },
    };
  }
  return { command: name, reply: id === undefined ? { return: projected.value } : { return: projected.value, id } };
}

function thrown(name: string, err: unknown, id: JsonValue | undefined): DispatchOutcome {
  if (err instanceof QmpError) return { command: name, reply: errorReply(err.errorClass, err.desc, id) };
  const message = err instanceof Error ? err.message : String(err);
  return {
    command: name,
    reply: errorReply('GenericError', `internal error in '${name}': ${message}`, id),
    fault: { code: 'qmp.handler-threw', command: name, error: err },
  };
}
