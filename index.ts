// virtio-net-model: the package root. Everything API.md names is exported from here: all of the
// browser entry (browser.ts, `virtio-net-model/browser`: what runs without Node), and below it
// the Node-only parts.

export * from './browser.js';

// The netdevs on host sockets, TAP, macvtap and passt (lib/netdev/), and their host errors
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

// Management (lib/qmp/)
export { QmpServer, QmpError, QMP_SCHEMA } from './lib/qmp/index.js';
export type { QmpServerOptions, QmpNic } from './lib/qmp/index.js';

// Net filters and COLO (lib/filters/, lib/colo/), the chardev sockets and the passthrough list
// they share (lib/chardev/, lib/passthrough/)
export * from './lib/chardev/index.js';
export * from './lib/passthrough/index.js';
export * from './lib/filters/index.js';
export * from './lib/colo/index.js';
