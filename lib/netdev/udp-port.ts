// UDP through node:dgram (no VIRTIO section: the host side; udp(7), ip(7) IP_ADD_MEMBERSHIP,
// IP_MULTICAST_LOOP, IP_MULTICAST_IF): DgramNetdev's inet and multicast modes, set up as QEMU's
// net/dgram.c sets up its socket (dgram-address.ts says how).
//
// Reading: node:dgram delivers every datagram as it arrives and cannot be paused, so each one goes
// to the sink at once; a sink that cannot take it holds it in its bounded backlog or counts the drop
// (UDP has no backpressure: a real peer loses frames the same way on a full socket buffer).
// Writing: node:dgram keeps the buffer until its send completes, so frames are copied into a small
// pool of send buffers, reused (no allocation per frame once warm); while every buffer is in
// flight, send() answers -EAGAIN and the sink hears writable() when one comes back. A send that
// fails later (its callback's error) is recorded as a host error.

import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { Errno, HostError } from '../host/libc.js';
import type { RecordSink, RecordTransport } from './datagram-netdev.js';

/** Sends in flight at most (one device transmit burst fits; more waits for a completion). */
export const UDP_SEND_SLOTS = 64;
/** Initial size of a send buffer (a larger frame grows its buffer once). */
const SLOT_BYTES = 2048;

export interface UdpPortOptions {
  /** Bind address and port (unicast: `local`; multicast: the group). */
  bindHost: string;
  bindPort: number;
  /** Where every frame goes. */
  sendHost: string;
  sendPort: number;
  /** Multicast: the group to join and the interface address (null: any). */
  multicast: { group: string; interfaceHost: string | null } | null;
  label: string;
}

const NODE_ERRNO: Record<string, number> = { EADDRINUSE: 98, EADDRNOTAVAIL: 99, EACCES: 13, EPERM: 1, EINVAL: 22, ENETUNREACH: 101, EHOSTUNREACH: 113, EMSGSIZE: 90, ENOBUFS: 105, ECONNREFUSED: 111 };

/** A Node error from node:dgram as a HostError (errno from its code). */
function asHostError(syscall: string, e: unknown, label: string): HostError {
  const err = e as NodeJS.ErrnoException;
  const errno = typeof err.errno === 'number' ? Math.abs(err.errno) : (NODE_ERRNO[err.code ?? ''] ?? Errno.EIO);
  return new HostError(err.syscall ?? syscall, errno, `${label}: ${err.message}`, { cause: e });
}

export class UdpPort implements RecordTransport {
  private readonly socket: Socket;
  private readonly slots: Uint8Array[] = [];
  /** Indexes of slots not in flight (a stack). */
  private readonly free: number[] = [];
  private waiting = false;
  private closed = false;
  private boundPort = 0;
  /** Resolves once the socket is bound (and has joined its group); rejects with the HostError. */
  readonly ready: Promise<void>;
  private readonly completions: ((err: Error | null) => void)[] = [];

  constructor(
    private readonly options: UdpPortOptions,
    private readonly sink: RecordSink,
  ) {
    for (let i = UDP_SEND_SLOTS - 1; i >= 0; i--) this.free.push(i);
    for (let i = 0; i < UDP_SEND_SLOTS; i++) this.completions.push((err) => this.completed(i, err));
    this.socket = createSocket({ type: 'udp4', reuseAddr: true });
    this.socket.on('message', (msg) => this.sink.record(msg, msg.length));
    this.ready = new Promise<void>((resolve, reject) => {
      let bound = false;
      this.socket.on('error', (e) => {
        const he = asHostError('bind', e, options.label);
        if (!bound) {
          bound = true;
          reject(he);
          this.sink.transportFailed(he);
        } else this.sink.hostError(he);
      });
      this.socket.bind(options.bindPort, options.bindHost, () => {
        try {
          const m = options.multicast;
          if (m !== null) {
            if (m.interfaceHost === null) this.socket.addMembership(m.group);
            else this.socket.addMembership(m.group, m.interfaceHost);
            this.socket.setMulticastLoopback(true);
            if (m.interfaceHost !== null) this.socket.setMulticastInterface(m.interfaceHost);
          }
          this.boundPort = this.socket.address().port;
        } catch (e) {
          const he = asHostError('setsockopt', e, options.label);
          bound = true;
          reject(he);
          this.sink.transportFailed(he);
          return;
        }
        bound = true;
        resolve();
      });
    });
    // A caller that never awaits `ready` must not see an unhandled rejection: the failure is
    // already on the sink's error path (transportFailed).
    this.ready.catch(() => undefined);
  }

  /** The local port once bound (0 before). */
  get port(): number {
    return this.boundPort;
  }

  send(data: Uint8Array, length: number): number {
    if (this.closed) return -Errno.EBADF;
    const i = this.free.pop();
    if (i === undefined) {
      this.waiting = true;
      return -Errno.EAGAIN;
    }
    let slot = this.slots[i];
    if (slot === undefined || slot.length < length) {
      slot = new Uint8Array(Math.max(SLOT_BYTES, length));
      this.slots[i] = slot;
    }
    slot.set(length === data.length ? data : data.subarray(0, length));
    try {
      this.socket.send(slot, 0, length, this.options.sendPort, this.options.sendHost, this.completions[i]);
    } catch (e) {
      this.free.push(i);
      return -asHostError('send', e, this.options.label).errno;
    }
    return length;
  }

  update(): void {
    // node:dgram reads regardless: the sink's backlog takes what the device cannot.
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // never bound (its bind failed): nothing to close
      }
    });
  }

  private completed(i: number, err: Error | null): void {
    this.free.push(i);
    if (err !== null && !this.closed) this.sink.hostError(asHostError('send', err, this.options.label));
    if (this.waiting) {
      this.waiting = false;
      this.sink.writable();
    }
  }
}
