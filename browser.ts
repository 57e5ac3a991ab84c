// virtio-net-model/browser: every export that runs without Node (API.md "v86's network bus and the
// browser"). Nothing reachable from here imports a `node:` module, FFI (koffi) or a Node global;
// test/browser-bundle.test.ts bundles this file for the browser and fails on any of them. The
// package root (index.ts) re-exports all of this and adds the Node-only parts (TAP, macvtap, the
// socket netdevs, QMP, chardevs, filters, COLO).

// Guest memory and virtqueues (virtqueue/)
export * from './virtqueue/index.js';

// The virtio core and its transports (devices/virtio/)
export * from './devices/virtio/index.js';

// The network device (devices/virtio-net/), its state save/restore (methods of the device)
export { VirtioNetDevice } from './devices/virtio-net/virtio-net-device.js';
export type { NetEvents } from './devices/virtio-net/virtio-net-device.js';
export { NET_DIAGNOSTIC_SECTIONS } from './devices/virtio-net/net-diagnostics.js';
export type { NetDiagnosticCode, NetDeviceError, NetError } from './devices/virtio-net/net-diagnostics.js';
export type { VirtioNetOptions } from './devices/virtio-net/net-options.js';
export type { RxFilterInfo, RxState } from './lib/base/rx-filter-info.js';
export type { RxFilterChangedEvent } from './devices/virtio-net/change-latch.js';
export type { NetStats, RxDropReason, TxErrorReason } from './devices/virtio-net/net-stats.js';
export { DeviceStateError } from './lib/base/state-codec.js';
export type { DeviceStateErrorCode } from './lib/base/state-codec.js';
export { NetFeature, VirtioFeature, FEATURE_BITS, CtrlClass, CtrlAck, NetStatus } from './devices/virtio-net/constants.js';
export type { FeatureName } from './devices/virtio-net/constants.js';

// The node-free netdevs (lib/netdev/)
export { MemoryNetdev } from './lib/netdev/memory-netdev.js';
export type { MemoryNetdevOptions, MemoryNetdevStats } from './lib/netdev/memory-netdev.js';
export { V86BusNetdev } from './lib/netdev/v86-bus-netdev.js';
export type { V86BusNetdevOptions, V86BusNetdevStats, V86BusConnector, V86BusEmulator } from './lib/netdev/v86-bus-netdev.js';
export { WebSocketNetdev } from './lib/netdev/websocket-netdev.js';
export type { WebSocketNetdevOptions, WebSocketNetdevStats, WebSocketNetdevEvents, WebSocketLike, WebSocketConstructor } from './lib/netdev/websocket-netdev.js';
export { SimPeer } from './lib/netdev/sim-peer.js';
export type { SimPeerOptions, SimPeerStats } from './lib/netdev/sim-peer.js';
export { hasVnetHeader, hasOffloads, hasLinkState, syncsRxFilter, reportsMtu } from './lib/netdev/netdev.js';
export type {
  Netdev,
  MtuCapable,
  NetdevPeer,
  SendResult,
  VnetHeaderCapable,
  OffloadCapable,
  OffloadFlags,
  LinkStateCapable,
  RxFilterSyncCapable,
  RxFilterSnapshot,
  RxFilterSource,
} from './lib/netdev/netdev.js';

// Hypervisor adapters (lib/hypervisors/)
export { attachToV86, v86GuestMemory } from './lib/hypervisors/v86.js';
export type { AttachToV86Options, V86Attachment, V86EmulatorLike } from './lib/hypervisors/v86.js';
export { V86GuestMemory } from './lib/hypervisors/v86-memory.js';
