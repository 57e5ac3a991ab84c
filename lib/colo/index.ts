// lib/colo: colo-compare — the public surface of this folder.
export {
  ColoCompare,
  DEFAULT_COMPARE_TIMEOUT_MS,
  DEFAULT_EXPIRED_SCAN_CYCLE_MS,
  DEFAULT_MAX_QUEUE_SIZE,
  type ColoCompareOptions,
  type ColoCompareStats,
  type CheckpointRequest,
  type CheckpointReason,
} from './colo-compare.js';
export { ObjectRegistry, type ObjectRegistryOptions, type RegisteredObject } from './object-registry.js';
export {
  checkObject,
  ObjectPropertyError,
  OBJECT_PROPERTIES,
  OBJECT_TYPES,
  type ObjectType,
  type ObjectSpec,
  type ObjectProps,
  type PropertySpec,
} from './object-table.js';
