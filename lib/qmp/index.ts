// lib/qmp: the QMP server (QEMU docs/interop/qmp-spec) — the public surface of this folder.

export { QmpServer, qmpTimestamp, type QmpServerAddress, type QmpEventData } from './server.js';
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_NEGOTIATION_TIMEOUT_MS,
  DEFAULT_UNNEGOTIATED_IDLE_MS,
  DEFAULT_VERSION,
  MAX_CLIENTS,
  MAX_STRING_ARGUMENT_BYTES,
  type QmpObject,
  type QmpServerOptions,
} from './options.js';
export { QmpError, genericError, type QmpErrorClass, type QmpDiagnostic } from './errors.js';
export {
  attachedNetdevId,
  type QmpNic,
  type QmpNetdev,
  type QmpRxFilterInfo,
  type QmpRxFilterChanged,
  type QmpRxState,
} from './nic.js';
export { QMP_SCHEMA, type QmpSchema, type QmpCommandName, type QmpEventName } from './schema.js';
export type {
  QmpBuiltin,
  QmpCommandDef,
  QmpEventDef,
  QmpExchange,
  QmpMembers,
  QmpSchemaDef,
  QmpTypeDef,
  QmpTypeRef,
} from './schema-types.js';
export { QMP_HANDLERS, type QmpArgs, type QmpResult, type QmpContext, type QmpHandler, type QmpSession } from './commands.js';
export {
  JsonMessageStream,
  MAX_INTEGER_DIGITS,
  MAX_NESTING,
  jsonText,
  type JsonStreamSink,
  type JsonValue,
  type JsonObject,
} from './json-stream.js';
export { introspect, type SchemaInfo } from './schema-introspect.js';
export { objectAdminFor, type QmpObjectAdmin } from './object-admin.js';
