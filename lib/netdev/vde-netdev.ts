// VdeNetdev: a VDE switch (Virtual Distributed Ethernet) through Debian's `vde_plug` (no VIRTIO
// section: vdeplug4's vde_plug(1) and libvdeplug's vdestream; QEMU's `-netdev vde,sock=DIR`).
//
// `vde_plug DIR` connects to the `vde_switch -s DIR` and turns its port into a byte stream on its
// stdin and stdout: each frame as a 2-byte big-endian length, then the frame. Its stdin reader
// (vdestream_recv) has a flaw with a pipe: a read that ends one byte into a length loses that byte
// (it only parses a length when two bytes are left), and the stream is out of step from there on —
// which happens as soon as frames queue up. So its stdin and stdout here are one end of a unix
// SOCK_SEQPACKET socketpair instead of pipes: every read(2) it makes returns exactly one record we
// sent (length + frame), and every writev(2) it makes arrives here as one record. Each record
// still carries the length, and a record whose length disagrees with its size is counted
// (`rxBadRecord`) and dropped.
//
// Limits: Debian's vde_switch (vde2 2.3.2) carries frames of at most 1518 bytes (an Ethernet header,
// 1500 bytes of payload and an 802.1Q tag) and cuts longer ones short — measured: a 2000-byte frame
// arrives as its first 1518 bytes. So a longer frame is not sent ('dropped', counted as
// txOversize). Received records are read up to vdeplug's VDE_ETHBUFSIZE (9234-byte frames); vde_plug
// forwards only frames of at least an Ethernet header.
// Backpressure: while the device cannot take frames the socket is not read; vde_plug then blocks
// in its write (its end is blocking) and stops reading the switch, which drops and counts what it
// cannot queue — the same as a slow VDE port. Sends answer 'busy' on EAGAIN (our end is
// non-blocking) until the socket is writable again.
// Lifetime: close() closes our end (vde_plug sees the hang-up and exits), then SIGTERM, then
// SIGKILL after a grace period. If vde_plug dies on its own (killed, or the switch went away) the
// backend fails for good: link down (`onLinkChange`, reason 'backend-failed'), a host error with
// its exit status and stderr, a 'plug-exit' event, and every later frame dropped and counted.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { DatagramNetdev } from './datagram-netdev.js';
import type { RecordTransport } from './datagram-netdev.js';
import type { LinkStateCapable, LinkStateChange, LinkStatus, SendResult } from './netdev.js';
import { SocketPort } from './socket-port.js';
import { Errno, HostError, closeFd, ioctlPtr, socketPair } from '../host/libc.js';
import { AF_UNIX, FIONBIO, SOCK_SEQPACKET, intArg } from '../host/structs.js';

/** The program (Debian package vdeplug). */
export const VDE_PLUG = 'vde_plug';
/** libvdeplug's VDE_ETHBUFSIZE: 9216 (VDE_MAXMTU) + Ethernet header + 802.1Q tag. */
export const VDE_ETHBUFSIZE = 9216 + 14 + 4;
/** Longest frame sent: what vde_switch carries whole (14 + 1500 + a 4-byte VLAN tag). */
export const VDE_TX_FRAME_MAX = 1518;
/** Stderr kept for messages. */
const STDERR_KEEP = 4096;
/** Grace period for vde_plug to exit after the hang-up and SIGTERM, before SIGKILL. */
const STOP_GRACE_MS = 2000;

export interface VdeNetdevOptions {
  /** Net client id (QEMU's `-netdev vde,id=`). */
  id: string;
  /** The switch's control directory (`vde_switch -s DIR`; QEMU's `sock=`). */
  sock: string;
}

/** What 'plug-exit' listeners get. */
export interface VdePlugExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of its stderr. */
  stderr: string;
}

export class VdeNetdev extends DatagramNetdev implements LinkStateCapable {
  readonly sock: string;
  private readonly child: ChildProcess;
  private readonly port: SocketPort;
  private readonly txBuf = new Uint8Array(2 + VDE_TX_FRAME_MAX);
  private stderr = '';
  private readonly exited: Promise<void>;
  private exitInfo: VdePlugExit | null = null;
  private readonly linkListeners = new Set<(change: LinkStateChange) => void>();
  private linkDowns = 0;
  private lastLinkChange: LinkStateChange | null = null;

  constructor(options: VdeNetdevOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('VdeNetdev: options must be an object { id, sock }');
    const { id, sock } = options;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`VdeNetdev: id must be a non-empty string, got ${String(id)}`);
    for (const k of Object.keys(options)) {
      if (k !== 'id' && k !== 'sock') throw new TypeError(`VdeNetdev ${id}: unknown option ${k} (id, sock)`);
    }
    if (typeof sock !== 'string' || sock.length === 0) throw new TypeError(`VdeNetdev ${id}: sock must be the switch's directory (vde_switch -s DIR), got ${String(sock)}`);
    const ctl = join(sock, 'ctl');
    if (!existsSync(ctl) || !statSync(ctl).isSocket()) {
      throw new Error(`VdeNetdev ${id}: no VDE switch at ${sock} (${ctl} is not a socket; start one with \`vde_switch -s ${sock}\`)`);
    }
    if (!onPath(VDE_PLUG)) throw new Error(`VdeNetdev ${id}: ${VDE_PLUG} is not installed (Debian package vdeplug)`);
    super(id, { maxFrameLength: VDE_ETHBUFSIZE, backlogLimit: 1, backlogBytes: VDE_ETHBUFSIZE });
    this.sock = sock;
    // Our end non-blocking; vde_plug's end stays blocking (it ignores a failed write).
    const [mine, theirs] = socketPair(AF_UNIX, SOCK_SEQPACKET);
    try {
      ioctlPtr(mine, FIONBIO, intArg(1), 4, 'FIONBIO');
      this.child = spawn(VDE_PLUG, [sock], { stdio: [theirs, theirs, 'pipe'] });
    } catch (e) {
      closeFd(mine);
      closeFd(theirs);
      throw e;
    }
    closeFd(theirs); // the child has its copies (stdin and stdout)
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP);
    });
    this.exited = new Promise<void>((resolve) => {
      this.child.once('error', (err) => {
        this.exitInfo ??= { code: null, signal: null, stderr: err.message };
        this.plugGone(new HostError('spawn', Errno.ENOENT, `${id}: ${VDE_PLUG} could not run: ${err.message}`));
        resolve();
      });
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal, stderr: this.stderr.trim() };
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        this.plugGone(new HostError('vde_plug', Errno.EPIPE, `${id}: ${VDE_PLUG} ${how}${this.stderr.trim() === '' ? '' : `: ${this.stderr.trim()}`}`));
        resolve();
      });
    });
    this.port = new SocketPort({ fd: mine, destination: null, readBytes: 2 + VDE_ETHBUFSIZE, connected: true, label: `VdeNetdev ${id}` }, this);
  }

  /** vde_plug's process id (undefined if it could not start). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** How vde_plug ended, or null while it runs. */
  get plugExit(): VdePlugExit | null {
    return this.exitInfo;
  }

  protected get transport(): RecordTransport | null {
    return this.port ?? null;
  }

  override send(frame: Uint8Array): SendResult {
    if (frame.length > VDE_TX_FRAME_MAX && !this.closed && !this.failed) {
      this.counters.txErrors++;
      this.counters.txOversize++;
      return 'dropped';
    }
    return super.send(frame);
  }

  protected transmit(frame: Uint8Array): number {
    const buf = this.txBuf;
    const n = frame.length;
    buf[0] = n >> 8;
    buf[1] = n & 0xff;
    buf.set(frame, 2);
    return this.port.send(buf, 2 + n);
  }

  /** One record from vde_plug: a 2-byte length that must match the record, then the frame. */
  override record(data: Uint8Array, length: number): void {
    const c = this.counters;
    if (length < 2 || length > data.length || ((data[0]! << 8) | data[1]!) !== length - 2) {
      c.rxDatagrams++;
      if (length > data.length) c.rxOversize++;
      else c.rxBadRecord++;
      return;
    }
    c.rxDatagrams++;
    this.offer(data.subarray(2, length), length - 2);
  }

  // ---- LinkStateCapable ----

  get linkUp(): boolean {
    return !this.failed && !this.closed;
  }

  onLinkChange(listener: (change: LinkStateChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`VdeNetdev ${this.id}: onLinkChange needs a function`);
    this.linkListeners.add(listener);
    return () => void this.linkListeners.delete(listener);
  }

  linkStatus(): LinkStatus {
    return { up: this.linkUp, downs: this.linkDowns, ups: 0, last: this.lastLinkChange };
  }

  override on(event: 'host-error', listener: (e: HostError) => void): this;
  override on(event: 'plug-exit', listener: (e: VdePlugExit) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  protected override onFailed(): void {
    // Down for good: counted now, delivered from a microtask (never inside a send()).
    this.linkDowns++;
    const change: LinkStateChange = { up: false, reason: 'backend-failed', atMs: Date.now() };
    this.lastLinkChange = change;
    queueMicrotask(() => {
      for (const l of [...this.linkListeners]) {
        try {
          l(change);
        } catch (err) {
          process.emitWarning(`VdeNetdev ${this.id}: a link-change listener threw: ${String(err)}`, 'NetdevWarning');
        }
      }
    });
  }

  protected override async onClosed(): Promise<void> {
    this.linkListeners.clear();
    if (this.exitInfo === null) {
      // Our end is closed: vde_plug sees the hang-up and exits; SIGTERM in case it is stuck.
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
  }

  private plugGone(e: HostError): void {
    if (this.closed) return;
    // A hang-up seen on the socket may have failed it first: the exit status is recorded either way.
    if (this.failed) this.hostError(e);
    else this.transportFailed(e);
    if (this.listenerCount('plug-exit') > 0) this.emit('plug-exit', this.exitInfo);
  }
}

/** True when `command` is an executable file in one of PATH's directories. */
function onPath(command: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
