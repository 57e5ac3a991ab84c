// One TAP fd as a datapath (no VIRTIO section: the host side of the VIRTIO 1.2 §5.1.6 header):
// FdNetdev's inline read(2)/write(2) per frame (`io: 'inline'`, the default), or the same reads and
// writes batched through io_uring (`io: 'uring'`, tap-uring.ts). TapNetdev's first fd and each
// further queue of a multiqueue TAP are one of these. The Netdev contract is the same either way:
// 'busy' and writable() for a full host queue, pause / resume without losing or reordering a frame,
// a dead fd failing the backend for good (link down, typed host error), close() releasing
// everything (ring, mapped slots, fd).

import { VnetFdNetdev } from './vnet-fd-netdev.js';
import type { LinkChangeReason, NetdevPeer, SendResult } from './netdev.js';
import { TapUring } from './tap-uring.js';
import { Errno, HostError, closeFd } from '../host/libc.js';
import { POLLIN, POLLOUT } from '../host/structs.js';
import { POLL_ERROR_MASK } from '../host/poller.js';
import { IoUring } from '../host/io-uring.js';

/** How a TAP fd moves frames: one system call per frame, or batches through io_uring. */
export type TapIo = 'inline' | 'uring';

/** Throws the HostError io_uring_setup gives when this kernel cannot batch through io_uring (ENOSYS, EPERM when disabled). */
export function probeIoUring(): void {
  new IoUring(1).close();
}

export class TapFd extends VnetFdNetdev {
  private readonly uring: TapUring | null = null;

  protected constructor(id: string, fd: number, hdrLen: number, io: TapIo) {
    super(id, fd, hdrLen);
    if (io !== 'uring') return;
    try {
      this.uring = new TapUring({
        id,
        counters: this.counters,
        get fd() {
          return fd;
        },
        headerLength: () => this.headerLength,
        failed: () => this.hasFailed,
        fail: (e) => this.fail(e),
        hostError: (e) => this.hostError(e),
        update: () => this.poller.update(),
        threw: (e) => {
          void this.poller.remove(this);
          this.pollFailed(e);
        },
      });
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  /** 'uring' when frames go through io_uring batches. */
  get io(): TapIo {
    return this.uring === null ? 'inline' : 'uring';
  }

  override attach(peer: NetdevPeer): void {
    super.attach(peer);
    this.uring?.attach(peer);
  }

  override detach(): void {
    super.detach();
    this.uring?.detach();
  }

  override send(frame: Uint8Array, vnetHeader?: Uint8Array): SendResult {
    return this.uring === null ? super.send(frame, vnetHeader) : this.uring.send(frame, vnetHeader);
  }

  /** Netdev.sendSpan: the frame copied from `bytes` without a view (io_uring: into its slot; inline: FdNetdev's writev). */
  override sendSpan(bytes: Uint8Array, offset: number, length: number, vnetHeader?: Uint8Array): SendResult {
    return this.uring === null ? super.sendSpan(bytes, offset, length, vnetHeader) : this.uring.sendSpan(bytes, offset, length, vnetHeader);
  }

  /** Writes the frames queued for the next io_uring batch now (inline: nothing is ever queued). */
  flush(): void {
    this.uring?.flush();
  }

  override pauseReceive(): void {
    if (this.uring === null) super.pauseReceive();
    else this.uring.pause();
  }

  override resumeReceive(): void {
    if (this.uring === null) super.resumeReceive();
    else this.uring.resume();
  }

  override setVnetHeaderLength(length: 10 | 12): void {
    this.uring?.flush(); // queued frames were gathered with the old header length
    super.setVnetHeaderLength(length);
  }

  override interest(): number {
    const u = this.uring;
    if (u === null) return super.interest();
    if (this.hasFailed || this.fd < 0) return 0;
    return (u.wantsRead() ? POLLIN : 0) | (u.writeBlocked ? POLLOUT : 0);
  }

  override ready(revents: number): void {
    const u = this.uring;
    if (u === null) {
      super.ready(revents);
      return;
    }
    if (this.fd < 0) return;
    if ((revents & POLLOUT) !== 0) u.writable();
    if ((revents & POLLIN) !== 0) u.readBatch();
    else if ((revents & POLL_ERROR_MASK) !== 0) this.fail(new HostError('poll', Errno.EIO, `${this.id}: revents 0x${revents.toString(16)}`));
  }

  protected override fail(e: HostError, reason?: LinkChangeReason): void {
    const was = this.hasFailed;
    super.fail(e, reason);
    if (!was) this.uring?.ownerFailed();
  }

  override async close(): Promise<void> {
    this.uring?.close(); // writes what is queued while the fd is open, then frees the ring and slots
    await super.close();
  }
}
