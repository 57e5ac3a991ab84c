// lib/passthrough: the COLO passthrough list — the public surface of this folder.
export { PassthroughList, PassthroughError, MAX_PASSTHROUGH_ENTRIES, type IPFlowSpec, type InetSocketAddressBase, type PassthroughErrorCode } from './passthrough.js';
export { protocolByName, protocolName, portByName } from './protocols.js';
