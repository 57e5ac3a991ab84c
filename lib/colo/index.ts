// lib/colo: colo-compare and the COLO passthrough list — the public surface of this folder.
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
export { PassthroughList, PassthroughError, MAX_PASSTHROUGH_ENTRIES, type IPFlowSpec, type InetSocketAddressBase, type PassthroughErrorCode } from './passthrough.js';
export { protocolByName, protocolName, portByName } from './protocols.js';
