// The pluggable netdev layer: the small interface every host backend implements, the side the
// device implements, and optional capabilities detected with type guards.
//
// Ownership rule for frames crossing this boundary: a `Uint8Array` passed to `send()` or
// `receive()` is only valid for the duration of that call (it is often a view into guest memory
// or a reused read buffer). Whoever needs it longer copies it.

import type { ReadonlyRxFilterInfo } from '../base/rx-filter-info.js';

/** Result of `Netdev.send()`. */
export type SendResult =
  /** The backend took the frame (it may have copied it). */
  | 'sent'
  /**
   * The host cannot take it now (e.g. EAGAIN). The frame was NOT taken: the device keeps it, stops
   * popping TX chains, and retries after `NetdevPeer.writable()`.
   */
  | 'busy'
  /**
   * The backend could not send it and never will (its host fd failed, the frame was too large, or
   * the host wrote only part of it): the frame is consumed, counted by the backend as an error, and
   * the device counts it too (`tx.errors.backend`). Never retried.
   */
  | 'dropped';

/** What the device (the one thing attached to a netdev) offers the backend. */
export interface NetdevPeer {
  /**
   * A frame from the host for the guest. `vnetHeader`, when the backend carries headers, is the
   * virtio-net header that came with it. Returns false when the device cannot take the frame now:
   * the backend keeps it, stops delivering, and offers it again after `resumeReceive()`.
   * `queue`: the backend queue it came from, for a `MultiQueueCapable` backend (the device steers
   * it to that receive queue when RSS is off); absent for a single-queue backend.
   */
  receive(frame: Uint8Array, vnetHeader?: Uint8Array, queue?: number): boolean;
  /** The backend can accept `send()` again after it answered 'busy'. */
  writable(): void;
}

/** A host backend. */
export interface Netdev {
  /** Net client id of the backend (QEMU's `-netdev id=`). */
  readonly id: string;
  /** Attaches the device. A netdev has at most one peer; attaching a second one throws. */
  attach(peer: NetdevPeer): void;
  /** Detaches the current peer (frames are no longer delivered). */
  detach(): void;
  /**
   * Sends a guest frame to the host; `vnetHeader` only when the backend carries headers. `queue`:
   * the device's transmit queue (0 = transmitq1); a `MultiQueueCapable` backend sends it on that
   * queue of its own, a single-queue backend ignores it.
   */
  send(frame: Uint8Array, vnetHeader?: Uint8Array, queue?: number): SendResult;
  /**
   * Optional: `send()` for the frame `bytes[offset, offset + length)`, so the device hands over a
   * frame in guest memory without making a view of it per frame (`bytes` is often all of a guest
   * RAM region: the backend reads only that range, and only during the call). Same results and
   * contract as `send()`. A backend without it gets `send(bytes.subarray(offset, offset + length), …)`.
   */
  sendSpan?(bytes: Uint8Array, offset: number, length: number, vnetHeader?: Uint8Array, queue?: number): SendResult;
  /** The device has no room: stop delivering until `resumeReceive()`. */
  pauseReceive(): void;
  /** The device has room again: deliver held frames, then new ones. */
  resumeReceive(): void;
  /** Releases host resources. Idempotent. */
  close(): Promise<void>;
}

/** Capability: the backend carries a virtio-net header with each frame (TAP with IFF_VNET_HDR). */
export interface VnetHeaderCapable {
  /** Current header length the host expects (10 or 12). */
  readonly vnetHeaderLength: number;
  /** Sets the header length (the device uses 12 with VERSION_1 or MRG_RXBUF, else 10). */
  setVnetHeaderLength(length: 10 | 12): void;
}

/** Guest offload flags a backend can be told about (TUNSETOFFLOAD). */
export interface OffloadFlags {
  csum: boolean;
  tso4: boolean;
  tso6: boolean;
  ecn: boolean;
  ufo: boolean;
  /** UDP segmentation offload (VIRTIO 1.3 GUEST_USO4 / GUEST_USO6; TUN_F_USO4 / TUN_F_USO6). */
  uso4?: boolean;
  uso6?: boolean;
}

/** A link's speed and duplex as the host reports them (ethtool; /sys/class/net/X/speed, duplex). */
export interface LinkSpeed {
  /** Mb/s, or undefined when unknown. */
  readonly speed: number | undefined;
  readonly duplex: 'full' | 'half' | undefined;
}

/** Capability: the backend knows its link's speed and duplex (TAP: the interface's, from sysfs). */
export interface LinkSpeedCapable {
  /** Read now; never throws (unknown values when the host cannot say). */
  linkSpeed(): LinkSpeed;
}

export function hasLinkSpeed(n: Netdev): n is Netdev & LinkSpeedCapable {
  return typeof (n as Partial<LinkSpeedCapable>).linkSpeed === 'function';
}

/** Capability: the host can hand the guest frames with offloads pending (checksum, TSO, UFO). */
export interface OffloadCapable {
  /**
   * Tells the host which offloads the guest accepts (TUNSETOFFLOAD). False when the host refused
   * them: its previous offloads stay in force (the device then acks GUEST_OFFLOADS_SET with
   * VIRTIO_NET_ERR). Never throws for a host failure.
   */
  setOffloads(flags: OffloadFlags): boolean;
}

/** Why a backend's host link state changed. */
export type LinkChangeReason =
  /** The host interface's IFF_UP / IFF_LOWER_UP changed (rtnetlink RTM_NEWLINK). */
  | 'host-link'
  /** The host interface was deleted (RTM_DELLINK). */
  | 'host-link-deleted'
  /** The interface left this network namespace: no longer observable, so no longer followed. */
  | 'host-link-unobserved'
  /** The backend's fd failed (POLLERR, EBADFD, ENODEV, EIO, …): down for good. */
  | 'backend-failed'
  /** A socket backend's connection opened (WebSocketNetdev: the relay). */
  | 'connected'
  /** A socket backend's connection closed or failed to open; it may reconnect. */
  | 'disconnected'

  /** A socket backend's peer connected or went away (StreamNetdev: up exactly while connected). */
  | 'peer-connection';

/** One change of a backend's host link state. */
export interface LinkStateChange {
  readonly up: boolean;
  readonly reason: LinkChangeReason;
  /** Date.now() when the backend saw it. */
  readonly atMs: number;
}

/** A backend's host link state with its history, for reports. */
export interface LinkStatus {
  readonly up: boolean;
  /** Changes to down and to up since the backend was created. */
  readonly downs: number;
  readonly ups: number;
  readonly last: LinkStateChange | null;
}

/**
 * Capability: the host link has a carrier the device follows (TAP, macvtap, a WebSocket relay). `linkUp` is false
 * while the host link is down or the backend failed; each change is delivered once to every
 * `onLinkChange` listener, never from inside a call into the backend (so never re-entrantly from
 * `send()`).
 */
export interface LinkStateCapable {
  readonly linkUp: boolean;
  /** Subscribes to changes of `linkUp`; returns the function that unsubscribes. */
  onLinkChange(listener: (change: LinkStateChange) => void): () => void;
  linkStatus(): LinkStatus;
}

/** A host error as recorded for reports (HostError's fields, JSON-friendly). */
export interface HostErrorRecord {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;
  readonly message: string;
  readonly atMs: number;
}

export interface HostErrorLog {
  /** Host errors since the backend was created (each also a 'host-error' event if anyone listens). */
  readonly count: number;
  readonly last: HostErrorRecord | null;
}

/** Capability: the backend records its host errors whether or not anyone listens for them. */
export interface HostErrorLogCapable {
  hostErrors(): HostErrorLog;
}

/** Capability: the backend mirrors the guest's rx filter onto the host (macvtap). */
export interface RxFilterSyncCapable {
  readonly syncsRxFilter: true;
  /**
   * Gives the backend the device whose rx filter it mirrors (the device is not reachable through
   * `attach()`, which only passes a `NetdevPeer`). Returns a function that unbinds it.
   */
  bindRxFilterSource(source: RxFilterSource): () => void;
}

/**
 * Capability: the backend has several queues (a TAP opened with IFF_MULTI_QUEUE: one fd per queue
 * pair). Frames it delivers carry their queue (`NetdevPeer.receive`'s third argument), `send`
 * takes one, and the device tells it how many pairs the guest uses (VQ_PAIRS_SET, RSS_CONFIG,
 * reset): queues from `pairs` on are detached (TUNSETQUEUE IFF_DETACH_QUEUE), so the host steers
 * only to the ones the guest reads.
 */
export interface MultiQueueCapable {
  /** Queues the backend has (>= 1). */
  readonly queues: number;
  /** The guest uses queues [0, pairs): the others are detached, these attached. */
  setActiveQueues(pairs: number): void;
}

/**
 * Capability: the host link has an MTU (TAP). A device built without `mtu` offers this one
 * (VIRTIO_NET_F_MTU) when it is within 68..65535, read once when the device is built.
 */
export interface MtuCapable {
  /** The host interface's MTU now, or undefined when it cannot be read. Never throws. */
  hostMtu(): number | undefined;
}

/** Capability: the backend can announce the device's MAC again on demand (V86BusNetdev: `net0-mac`; attachToV86 calls it after a restore). */
export interface MacAnnounceCapable {
  announceMac(): void;
}

/** The rx-filter fields a host sync reads: QEMU's query-rx-filter reply (lib/base/rx-filter-info.ts) but its name and broadcast flag. */
export type RxFilterSnapshot = Omit<ReadonlyRxFilterInfo, 'name' | 'broadcast-allowed'>;

/** What the device offers a syncing backend: the query (which re-arms the event) and the event. */
export interface RxFilterSource {
  queryRxFilter(): RxFilterSnapshot;
  on(event: 'rx-filter-changed', listener: (e: { name: string; path: string }) => void): unknown;
  off(event: 'rx-filter-changed', listener: (e: { name: string; path: string }) => void): unknown;
}

export function hasVnetHeader(n: Netdev): n is Netdev & VnetHeaderCapable {
  return typeof (n as Partial<VnetHeaderCapable>).setVnetHeaderLength === 'function';
}
export function hasOffloads(n: Netdev): n is Netdev & OffloadCapable {
  return typeof (n as Partial<OffloadCapable>).setOffloads === 'function';
}
export function hasLinkState(n: Netdev): n is Netdev & LinkStateCapable {
  const l = n as Partial<LinkStateCapable>;
  return typeof l.linkUp === 'boolean' && typeof l.onLinkChange === 'function' && typeof l.linkStatus === 'function';
}
export function reportsMtu(n: Netdev): n is Netdev & MtuCapable {
  return typeof (n as Partial<MtuCapable>).hostMtu === 'function';
}
export function logsHostErrors(n: Netdev): n is Netdev & HostErrorLogCapable {
  return typeof (n as Partial<HostErrorLogCapable>).hostErrors === 'function';
}
export function isMultiQueue(n: Netdev): n is Netdev & MultiQueueCapable {
  const m = n as Partial<MultiQueueCapable>;
  return typeof m.queues === 'number' && typeof m.setActiveQueues === 'function';
}
export function syncsRxFilter(n: Netdev): n is Netdev & RxFilterSyncCapable {
  return (n as Partial<RxFilterSyncCapable>).syncsRxFilter === true;
}
export function announcesMac(n: unknown): n is MacAnnounceCapable {
  return typeof n === 'object' && n !== null && typeof (n as Partial<MacAnnounceCapable>).announceMac === 'function';
}

/**
 * The check every backend's `attach` makes (embedder input: a TypeError naming the backend).
 * `owner` is how messages name the backend, e.g. `MemoryNetdev net0`.
 */
export function checkPeer(owner: string, peer: unknown): asserts peer is NetdevPeer {
  const p = peer as Partial<NetdevPeer> | null;
  if (p === null || typeof p !== 'object' || typeof p.receive !== 'function' || typeof p.writable !== 'function') {
    throw new TypeError(`${owner}: attach needs a NetdevPeer { receive(), writable() }`);
  }
}
