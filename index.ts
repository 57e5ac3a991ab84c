// virtio-net-model: the package root. Everything API.md names is exported from here; the part that
// runs without Node is also `virtio-net-model/browser` (browser.ts).

// Guest memory and virtqueues (virtqueue/)
export * from './virtqueue/index.js';

// The virtio core and its transports (devices/virtio/)
export * from './devices/virtio/index.js';

// The network device (devices/virtio-net/)
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

// The netdev layer (lib/netdev/)
export { MemoryNetdev } from './lib/netdev/memory-netdev.js';
export type { MemoryNetdevOptions, MemoryNetdevStats } from './lib/netdev/memory-netdev.js';
export { TapNetdev } from './lib/netdev/tap-netdev.js';
export type { TapNetdevOptions } from './lib/netdev/tap-netdev.js';
export { MacvtapNetdev } from './lib/netdev/macvtap-netdev.js';
export type { MacvtapNetdevOptions } from './lib/netdev/macvtap-netdev.js';
export { DgramNetdev } from './lib/netdev/dgram-netdev.js';
export type { DgramNetdevOptions, DgramNetdevStats, DgramSocketAddress } from './lib/netdev/dgram-netdev.js';
export { VdeNetdev } from './lib/netdev/vde-netdev.js';
export type { VdeNetdevOptions, VdePlugExit } from './lib/netdev/vde-netdev.js';
export { StreamNetdev } from './lib/netdev/stream-netdev.js';
export type { StreamNetdevOptions, StreamNetdevStats, StreamSocketAddress } from './lib/netdev/stream-netdev.js';
export { PasstNetdev } from './lib/netdev/passt-netdev.js';
export type { PasstNetdevOptions } from './lib/netdev/passt-netdev.js';
export { HostError } from './lib/host/libc.js';
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

// Management (lib/qmp/)
export { QmpServer, QmpError, QMP_SCHEMA } from './lib/qmp/index.js';
export type { QmpServerOptions, QmpNic } from './lib/qmp/index.js';

// Net filters and COLO (lib/filters/, lib/colo/), the chardev sockets and the passthrough list
// they share (lib/chardev/, lib/passthrough/)
export * from './lib/chardev/index.js';
export * from './lib/passthrough/index.js';
export * from './lib/filters/index.js';
export * from './lib/colo/index.js';
