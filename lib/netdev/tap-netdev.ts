// TapNetdev: a Linux TAP interface as the backend (no VIRTIO section: the host side; the header
// it carries is VIRTIO 1.2 §5.1.6 struct virtio_net_hdr). Opens /dev/net/tun with
// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (creating the interface, or attaching to an existing
// persistent one named `ifname`), sets the header length the device negotiated
// (TUNSETVNETHDRSZ 10 or 12) and the guest's offloads (TUNSETOFFLOAD). The datapath is FdNetdev's.
//
// The TAP's MTU (SIOCGIFMTU) is the `MtuCapable` capability: a device built without `mtu` offers
// it to the guest (VIRTIO_NET_F_MTU).
//
// With `vnetHdr: false` the fd carries bare frames, and the backend does not offer the header or
// offload capabilities (the device then sends and receives without them).
//
// With `queues: N` (> 1) the interface is opened with IFF_MULTI_QUEUE, one fd per queue pair (the
// kernel steers each received flow to one queue): MultiQueueCapable. The first fd is this object's
// own datapath, the others are `TapQueue`s sharing its device peer: a frame read from fd i reaches
// the device as from backend queue i (receiveq i+1 while RSS is off), a frame from transmitq i+1 is
// written to fd i. `setActiveQueues(n)` — the device's VQ_PAIRS_SET — attaches fds [0, n) and
// detaches the others (TUNSETQUEUE IFF_ATTACH_QUEUE / IFF_DETACH_QUEUE), so the kernel steers only
// to queues the guest reads; a detached fd is not polled (the kernel reports POLLERR on it) and
// nothing is written to it. Pause and resume, the header length and the offloads apply to every
// fd. The host link is followed once, on the interface.
//
// With `io: 'uring'` every fd moves its frames through io_uring batches instead of one read(2) /
// write(2) per frame (tap-fd.ts, tap-uring.ts): same contract, fewer system calls. Sends are then
// written at the end of the turn (or once 64 are queued): `flush()` writes them at once.

import { readVnetHeaderSize } from './vnet-fd-netdev.js';
import { TapFd, probeIoUring } from './tap-fd.js';
import type { TapIo } from './tap-fd.js';
import type { FdNetdevStats } from './fd-netdev.js';
import type { LinkSpeed, LinkSpeedCapable, MtuCapable, MultiQueueCapable, NetdevPeer, OffloadFlags, SendResult } from './netdev.js';
import { readLinkSpeed } from './link-speed.js';
import { HostError, O_CLOEXEC, O_NONBLOCK, O_RDWR, closeFd, ioctlPtr, openFile, socketFd } from '../host/libc.js';
import {
  AF_INET,
  IFF_ATTACH_QUEUE,
  IFF_DETACH_QUEUE,
  IFF_MULTI_QUEUE,
  SIOCGIFMTU,
  SOCK_DGRAM,
  ifreqMtu,
  IFF_NO_PI,
  IFF_TAP,
  IFF_VNET_HDR,
  IFREQ_SIZE,
  TUNGETIFF,
  TUNSETIFF,
  TUNSETQUEUE,
  ifreq,
  ifreqFlags,
  ifreqName,
  setIfreqFlags,
  validIfname,
} from '../host/structs.js';

export const TUN_DEVICE = '/dev/net/tun';
/** The kernel's limit on a multiqueue TAP's queues (MAX_TAP_QUEUES). */
export const TAP_QUEUES_MAX = 256;

export interface TapNetdevOptions {
  /** Net client id. */
  id: string;
  /** Interface to create or attach to; default: the kernel picks `tapN`. */
  ifname?: string;
  /** Carry virtio-net headers (IFF_VNET_HDR; default true). */
  vnetHdr?: boolean;
  /** Queue pairs: more than 1 opens the interface with IFF_MULTI_QUEUE, one fd per pair (default 1). */
  queues?: number;
  /**
   * `'inline'` (default): one read(2) / write(2) per frame. `'uring'`: the same reads and writes
   * batched through io_uring, one system call per batch (tap-uring.ts); a kernel without io_uring
   * (or with it disabled) is a HostError from the constructor.
   */
  io?: TapIo;
}

/** Opens a TAP fd; returns the fd and the interface name actually used. */
export function openTap(ifname: string | undefined, vnetHdr: boolean, multiQueue = false): { fd: number; ifname: string } {
  const fd = openFile(TUN_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  try {
    const req = ifreq(ifname ?? 'tap%d');
    setIfreqFlags(req, IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0) | (multiQueue ? IFF_MULTI_QUEUE : 0));
    ioctlPtr(fd, TUNSETIFF, req, IFREQ_SIZE, `TUNSETIFF ${ifname ?? 'tap%d'}`);
    const got = ifreq('x');
    ioctlPtr(fd, TUNGETIFF, got, IFREQ_SIZE, 'TUNGETIFF');
    const flags = ifreqFlags(got);
    if ((flags & IFF_TAP) === 0) throw new HostError('TUNSETIFF', 22, `${ifreqName(got)} is not a TAP interface`);
    return { fd, ifname: ifreqName(got) };
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

/** TUNSETQUEUE: attach (true) or detach a multiqueue TAP fd. */
function setQueueAttached(fd: number, attached: boolean, ifname: string): void {
  const req = ifreq(ifname); // the kernel reads only ifr_flags
  setIfreqFlags(req, attached ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE);
  ioctlPtr(fd, TUNSETQUEUE, req, IFREQ_SIZE, `TUNSETQUEUE ${attached ? 'IFF_ATTACH_QUEUE' : 'IFF_DETACH_QUEUE'}`);
}

/** Queue i > 0 of a multiqueue TapNetdev: one more fd of the same interface. */
class TapQueue extends TapFd {
  /** Detached (TUNSETQUEUE): not polled, nothing written. */
  detachedQueue = false;

  constructor(id: string, fd: number, hdrLen: number, io: TapIo) {
    super(id, fd, hdrLen, io);
  }

  override interest(): number {
    return this.detachedQueue ? 0 : super.interest();
  }
}

/** The device's peer as one queue sees it: frames tagged with the queue. */
function queuePeer(peer: NetdevPeer, queue: number): NetdevPeer {
  return {
    receive: (frame, vnetHeader) => peer.receive(frame, vnetHeader, queue),
    writable: () => peer.writable(),
  };
}

export class TapNetdev extends TapFd implements Partial<MultiQueueCapable>, MtuCapable, LinkSpeedCapable {
  /** The interface actually used. */
  readonly ifname: string;
  readonly vnetHdr: boolean;
  /** Queue pairs (fds). */
  readonly queues: number;
  /** Fds 1 .. queues-1 (multiqueue only). */
  private readonly extra: TapQueue[] = [];
  private active: number;

  constructor(options: TapNetdevOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('TapNetdev: options must be an object { id, ifname?, vnetHdr?, queues?, io? }');
    const { id, ifname, vnetHdr = true, queues = 1, io = 'inline' } = options;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`TapNetdev: id must be a non-empty string, got ${String(id)}`);
    if (ifname !== undefined) validIfname(ifname);
    if (typeof vnetHdr !== 'boolean') throw new TypeError(`TapNetdev: vnetHdr must be true or false, got ${String(vnetHdr)}`);
    if (!Number.isInteger(queues) || queues < 1 || queues > TAP_QUEUES_MAX) throw new RangeError(`TapNetdev: queues must be an integer in 1..${TAP_QUEUES_MAX}, got ${String(queues)}`);
    if (io !== 'inline' && io !== 'uring') throw new TypeError(`TapNetdev: io must be 'inline' or 'uring', got ${String(io)}`);
    if (io === 'uring') probeIoUring(); // before any fd is open
    const multi = queues > 1;
    const opened = openTap(ifname, vnetHdr, multi);
    const hdrLen = vnetHdr ? readVnetHeaderSize(opened.fd) : 0;
    // The other queues' fds, opened before super() so a failure leaks nothing.
    const more: { fd: number; hdrLen: number }[] = [];
    try {
      for (let i = 1; i < queues; i++) {
        const q = openTap(opened.ifname, vnetHdr, true);
        more.push({ fd: q.fd, hdrLen: vnetHdr ? readVnetHeaderSize(q.fd) : 0 });
      }
    } catch (e) {
      for (const q of more) closeFd(q.fd);
      closeFd(opened.fd);
      throw e;
    }
    super(id, opened.fd, hdrLen, io);
    this.ifname = opened.ifname;
    this.vnetHdr = vnetHdr;
    this.queues = queues;
    this.active = queues;
    try {
      more.forEach((q, i) => this.extra.push(new TapQueue(`${id}.q${i + 1}`, q.fd, q.hdrLen, io)));
    } catch (e) {
      // A queue's ring could not be set up (it closed its own fd): close the rest and this one.
      for (const q of more.slice(this.extra.length + 1)) closeFd(q.fd);
      for (const q of this.extra) void q.close();
      void super.close();
      throw e;
    }
    // The TAP's own link: down when it is set down or deleted after it was up (host-link.ts says
    // why a TAP that was never up does not count as down).
    this.followHostLink(this.ifname, 'once-up');
    if (!vnetHdr) {
      // Hide the capabilities from the type guards (hasVnetHeader / hasOffloads look for these).
      Object.defineProperty(this, 'setVnetHeaderLength', { value: undefined });
      Object.defineProperty(this, 'setOffloads', { value: undefined });
    }
    // Single-queue: not MultiQueueCapable (isMultiQueue looks for setActiveQueues).
    if (!multi) Object.defineProperty(this, 'setActiveQueues', { value: undefined });
  }

  override attach(peer: NetdevPeer): void {
    if (this.extra.length === 0) {
      super.attach(peer);
      return;
    }
    super.attach(queuePeer(peer, 0));
    this.extra.forEach((q, i) => q.attach(queuePeer(peer, i + 1)));
  }

  override detach(): void {
    super.detach();
    for (const q of this.extra) q.detach();
  }

  /** Sends on fd `queue` (folded into the attached queues); fd 0 without a queue. */
  override send(frame: Uint8Array, vnetHeader?: Uint8Array, queue = 0): SendResult {
    const k = queue < this.active ? queue : queue % this.active;
    return k === 0 ? super.send(frame, vnetHeader) : this.extra[k - 1]!.send(frame, vnetHeader);
  }

  /** Netdev.sendSpan on fd `queue` (as send()): no view of the frame is made. */
  override sendSpan(bytes: Uint8Array, offset: number, length: number, vnetHeader?: Uint8Array, queue = 0): SendResult {
    const k = queue < this.active ? queue : queue % this.active;
    return k === 0 ? super.sendSpan(bytes, offset, length, vnetHeader) : this.extra[k - 1]!.sendSpan(bytes, offset, length, vnetHeader);
  }

  override pauseReceive(): void {
    super.pauseReceive();
    for (const q of this.extra) q.pauseReceive();
  }

  override resumeReceive(): void {
    super.resumeReceive();
    for (const q of this.extra) q.resumeReceive();
  }

  override setVnetHeaderLength(length: 10 | 12): void {
    super.setVnetHeaderLength(length);
    for (const q of this.extra) q.setVnetHeaderLength(length);
  }

  override setOffloads(flags: OffloadFlags): boolean {
    let ok = super.setOffloads(flags);
    for (const q of this.extra) ok = q.setOffloads(flags) && ok;
    return ok;
  }

  /**
   * MultiQueueCapable: the guest uses queues [0, pairs). TUNSETQUEUE attaches those fds and
   * detaches the others (a failure is a 'host-error' of that queue; it stays as it was).
   */
  setActiveQueues(pairs: number): void {
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > this.queues) throw new RangeError(`TapNetdev ${this.id}: active queues must be in 1..${this.queues}, got ${String(pairs)}`);
    this.extra.forEach((q, i) => {
      const attach = i + 1 < pairs;
      if (attach === !q.detachedQueue) return;
      try {
        setQueueAttached(q.fd, attach, this.ifname);
        q.detachedQueue = !attach;
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
        this.emit('host-error', e);
      }
    });
    this.active = pairs;
  }

  /** Queues attached now (setActiveQueues; all until the device says otherwise). */
  get activeQueues(): number {
    return this.active;
  }

  /** Per-queue datapath counters, fd 0 first (`stats()` is fd 0's alone). */
  queueStats(): FdNetdevStats[] {
    return [this.stats(), ...this.extra.map((q) => q.stats())];
  }

  /** Writes the frames queued for io_uring batches on every queue now (nothing with `io: 'inline'`). */
  override flush(): void {
    super.flush();
    for (const q of this.extra) q.flush();
  }

  override async close(): Promise<void> {
    await Promise.all([super.close(), ...this.extra.map((q) => q.close())]);
  }

  /**
   * The TAP's MTU now: SIOCGIFMTU on a datagram socket (a tun fd does not answer it), by name in
   * this process's network namespace. Undefined when it cannot be read — e.g. the interface was
   * moved to another namespace already — and then the device offers no MTU.
   */
  hostMtu(): number | undefined {
    let sock = -1;
    try {
      sock = socketFd(AF_INET, SOCK_DGRAM, 0);
      const req = ifreq(this.ifname);
      ioctlPtr(sock, SIOCGIFMTU, req, IFREQ_SIZE, `SIOCGIFMTU ${this.ifname}`);
      return ifreqMtu(req);
    } catch {
      return undefined;
    } finally {
      if (sock >= 0) closeFd(sock);
    }
  }

  /** The TAP's speed and duplex (sysfs; config `speed` / `duplex` with SPEED_DUPLEX). */
  linkSpeed(): LinkSpeed {
    return readLinkSpeed(this.ifname);
  }
}
