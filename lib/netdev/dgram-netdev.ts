// DgramNetdev: QEMU's `-netdev dgram` (no VIRTIO section: QEMU net/dgram.c, qapi/net.json
// NetdevDgramOptions). One Ethernet frame per datagram, no length prefix and no virtio-net header,
// so it talks to QEMU's own `-netdev dgram` (and its older `-netdev socket,udp=` / `mcast=`) and to
// anything that sends raw frames in datagrams.
//
//   new DgramNetdev({ id, local: { type: 'inet', host, port }, remote: { type: 'inet', host, port } })  UDP
//   new DgramNetdev({ id, remote: { type: 'inet', host: '239.…', port }, local?: { type: 'inet', host } }) multicast
//   new DgramNetdev({ id, local: { type: 'unix', path }, remote: { type: 'unix', path } })           unix datagrams
//
// Addresses are checked as QEMU checks them (dgram-address.ts). UDP and multicast go through
// node:dgram (udp-port.ts); its bind completes asynchronously, so `ready` resolves once the socket
// is bound (a bind failure rejects it, and is also a host error after which every frame is dropped,
// counted). Unix datagram sockets go through lib/host's koffi wrappers on the shared poll loop
// (socket-port.ts): the local path is unlinked and bound at once (a failure throws a HostError
// from the constructor) and removed again by close().
// Frames, the backlog and the counters: datagram-netdev.ts.

import { lstatSync, unlinkSync } from 'node:fs';
import { DatagramNetdev } from './datagram-netdev.js';
import type { RecordTransport } from './datagram-netdev.js';
import { dgramEndpoints, dgramInfo } from './dgram-address.js';
import type { DgramEndpoints, DgramSocketAddress } from './dgram-address.js';
import { SocketPort } from './socket-port.js';
import { UdpPort } from './udp-port.js';
import { FRAME_MAX } from '../base/frame-limits.js';
import { Errno, HostError, SOCK_NONBLOCK, bindFd, closeFd, socketFd } from '../host/libc.js';
import { AF_UNIX, SOCK_DGRAM, sockaddrUn } from '../host/structs.js';

export type { DgramSocketAddress } from './dgram-address.js';
export type { DatagramNetdevStats as DgramNetdevStats } from './datagram-netdev.js';

export interface DgramNetdevOptions {
  /** Net client id (QEMU's `-netdev dgram,id=`). */
  id: string;
  /** Where this end is bound (QEMU `local.*`); optional for multicast. */
  local?: DgramSocketAddress;
  /** Where frames go (QEMU `remote.*`); a multicast group makes it multicast. */
  remote?: DgramSocketAddress;
  /** Longest frame either way, 14..FRAME_MAX (default FRAME_MAX: a 64 KiB frame and its headers). */
  maxFrameLength?: number;
  /** Frames held while the device cannot take them (default 256; UDP keeps reading meanwhile). */
  backlogLimit?: number;
  /** Bytes held at most (default 1 MiB). */
  backlogBytes?: number;
}

const DEFAULT_BACKLOG_LIMIT = 256;
const DEFAULT_BACKLOG_BYTES = 1 << 20;

function checkCount(name: string, v: unknown, min: number, max: number): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)) {
    throw new RangeError(`DgramNetdev: ${name} must be an integer ${min}-${max}, got ${String(v)}`);
  }
}

export class DgramNetdev extends DatagramNetdev {
  /** The checked endpoints. */
  readonly endpoints: DgramEndpoints;
  /** Resolves once the socket is ready for traffic (UDP: bound; unix: at once). */
  readonly ready: Promise<void>;
  private readonly port: RecordTransport;
  private readonly udp: UdpPort | null;
  private readonly unixPath: string | null;

  constructor(options: DgramNetdevOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('DgramNetdev: options must be an object { id, local?, remote? }');
    const { id, local, remote, maxFrameLength, backlogLimit, backlogBytes } = options;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`DgramNetdev: id must be a non-empty string, got ${String(id)}`);
    const owner = `DgramNetdev ${id}`;
    const endpoints = dgramEndpoints(owner, local, remote);
    checkCount('maxFrameLength', maxFrameLength, 14, FRAME_MAX);
    checkCount('backlogLimit', backlogLimit, 0, 1 << 20);
    checkCount('backlogBytes', backlogBytes, 0, 1 << 30);
    const max = maxFrameLength ?? FRAME_MAX;
    super(id, { maxFrameLength: max, backlogLimit: backlogLimit ?? DEFAULT_BACKLOG_LIMIT, backlogBytes: backlogBytes ?? DEFAULT_BACKLOG_BYTES });
    this.endpoints = endpoints;
    switch (endpoints.kind) {
      case 'udp':
      case 'mcast': {
        const udp =
          endpoints.kind === 'udp'
            ? new UdpPort({ bindHost: endpoints.local.host, bindPort: endpoints.local.port, sendHost: endpoints.remote.host, sendPort: endpoints.remote.port, multicast: null, label: owner }, this)
            : new UdpPort(
                {
                  bindHost: endpoints.group.host,
                  bindPort: endpoints.group.port,
                  sendHost: endpoints.group.host,
                  sendPort: endpoints.group.port,
                  multicast: { group: endpoints.group.host, interfaceHost: endpoints.localHost },
                  label: owner,
                },
                this,
              );
        this.udp = udp;
        this.port = udp;
        this.unixPath = null;
        this.ready = udp.ready;
        break;
      }
      case 'unix': {
        const bindAddr = sockaddrUn(endpoints.localPath);
        const dest = sockaddrUn(endpoints.remotePath);
        // As QEMU: a stale socket file at the local path is removed first (anything else is an error).
        try {
          unlinkSync(endpoints.localPath);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new HostError('unlink', Errno.EACCES, `${owner}: ${endpoints.localPath}: ${(e as Error).message}`);
        }
        const fd = socketFd(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        try {
          bindFd(fd, bindAddr.addr, bindAddr.len);
        } catch (e) {
          closeFd(fd);
          throw e;
        }
        this.udp = null;
        this.unixPath = endpoints.localPath;
        this.port = new SocketPort({ fd, destination: dest, readBytes: max, connected: false, label: owner }, this);
        this.ready = Promise.resolve();
        break;
      }
    }
  }

  protected get transport(): RecordTransport | null {
    // Read during super()'s construction paths only after the port exists.
    return this.port ?? null;
  }

  protected transmit(frame: Uint8Array): number {
    return this.port.send(frame, frame.length);
  }

  /** QEMU's info string: `udp=LHOST:LPORT/RHOST:RPORT`, `mcast=GROUP:PORT` or `udp=LPATH:RPATH`. */
  get info(): string {
    return dgramInfo(this.endpoints, this.udp !== null && this.udp.port !== 0 ? this.udp.port : undefined);
  }

  /** The local UDP port once bound (a `local.port` of 0 gets one from the kernel); null for unix. */
  get localPort(): number | null {
    return this.udp === null ? null : this.udp.port;
  }

  protected override async onClosed(): Promise<void> {
    const p = this.unixPath;
    if (p === null) return;
    try {
      if (lstatSync(p).isSocket()) unlinkSync(p);
    } catch {
      // already gone
    }
  }
}
