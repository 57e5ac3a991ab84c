// filter-mirror (QEMU net/filter-mirror.c, "-object filter-mirror,id=,netdev=,queue=,outdev=,
// vnet_hdr_support"): every frame the filter sees is copied to the output socket, framed as
// lib/chardev/framing.ts says, and goes on unchanged. Flows on the passthrough list for this
// filter (lib/passthrough/passthrough.ts) are not copied.

import type { PassthroughList } from '../passthrough/passthrough.js';
import { newPacketInfo, parsePacket } from '../packet/parse.js';
import type { ChardevSocket } from '../chardev/chardev-socket.js';
import { checkFilterOptions, PASS, type Direction, type FilterQueue, type NetFilter, type Verdict } from './filter.js';

export interface MirrorFilterOptions {
  id: string;
  /** Default 'all'. */
  queue?: FilterQueue;
  status?: boolean;
  /** Where copies go; its `vnetHdrSupport` decides whether the vnet header travels too. */
  outdev: ChardevSocket;
  /** Flows not to copy. */
  passthrough?: PassthroughList;
}

export interface MirrorStats {
  mirrored: number;
  /** Copies the socket dropped (nobody connected, or not reading). */
  dropped: number;
  /** Frames on the passthrough list, not copied. */
  passedThrough: number;
}

export class MirrorFilter implements NetFilter {
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly outdev: ChardevSocket;
  private readonly passthrough: PassthroughList | undefined;
  private readonly info = newPacketInfo();
  private readonly counters: MirrorStats = { mirrored: 0, dropped: 0, passedThrough: 0 };

  constructor(options: MirrorFilterOptions) {
    const base = checkFilterOptions('MirrorFilter', options);
    if (options.outdev === null || typeof options.outdev?.write !== 'function') {
      throw new TypeError(`MirrorFilter ${base.id}: options.outdev must be a ChardevSocket`);
    }
    this.id = base.id;
    this.queue = base.queue;
    this.status = base.status;
    this.outdev = options.outdev;
    this.passthrough = options.passthrough;
  }

  process(_direction: Direction, frame: Uint8Array, vnetHeader: Uint8Array | undefined): Verdict {
    const pt = this.passthrough;
    if (pt !== undefined && pt.size > 0 && parsePacket(frame, this.info) === 'ip' && pt.matches(this.id, frame, this.info)) {
      this.counters.passedThrough++;
      return PASS;
    }
    if (this.outdev.write(frame, vnetHeader)) this.counters.mirrored++;
    else this.counters.dropped++;
    return PASS;
  }

  stats(): MirrorStats {
    return { ...this.counters };
  }

  close(): Promise<void> {
    return this.outdev.close();
  }
}
