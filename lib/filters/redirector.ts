// filter-redirector (QEMU net/filter-mirror.c, "-object filter-redirector,id=,netdev=,queue=,
// indev=,outdev=,vnet_hdr_support"):
// - with `outdev`: every frame the filter sees goes to the output socket INSTEAD of going on
//   (consumed), except flows on the passthrough list for this filter, which go on untouched;
// - with `indev`: frames read from the input socket enter the chain just after this filter, going
//   to the guest for queue 'tx', to the host for 'rx', both for 'all' (QEMU redirector_to_filter);
// - with neither socket the filter is refused (as QEMU refuses it); without `outdev` frames pass.
// Bad framing on the input: the socket reports it (a typed diagnostic) and drops that connection;
// frames read before it were injected. While the filter is off, input frames are dropped (counted).

import type { PassthroughList } from '../passthrough/passthrough.js';
import { newPacketInfo, parsePacket } from '../packet/parse.js';
import type { ChardevSocket } from '../chardev/chardev-socket.js';
import {
  checkFilterOptions,
  CONSUME,
  PASS,
  queueSees,
  type Direction,
  type FilterQueue,
  type FilterSink,
  type NetFilter,
  type Verdict,
} from './filter.js';

export interface RedirectorFilterOptions {
  id: string;
  queue?: FilterQueue;
  status?: boolean;
  outdev?: ChardevSocket;
  indev?: ChardevSocket;
  passthrough?: PassthroughList;
}

export interface RedirectorStats {
  redirected: number;
  /** Redirected frames the output socket dropped. */
  outDropped: number;
  injected: number;
  /** Input frames dropped: filter off, not on a chain, or the far end full. */
  inDropped: number;
  passedThrough: number;
}

export class RedirectorFilter implements NetFilter {
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly outdev: ChardevSocket | undefined;
  readonly indev: ChardevSocket | undefined;
  private readonly passthrough: PassthroughList | undefined;
  private sink: FilterSink | undefined;
  private readonly info = newPacketInfo();
  private readonly counters: RedirectorStats = { redirected: 0, outDropped: 0, injected: 0, inDropped: 0, passedThrough: 0 };
  private readonly onInput = (frame: Uint8Array, vnetHeader: Uint8Array | undefined): void => this.inject(frame, vnetHeader);

  constructor(options: RedirectorFilterOptions) {
    const base = checkFilterOptions('RedirectorFilter', options);
    const { outdev, indev } = options;
    if (outdev === undefined && indev === undefined) {
      throw new TypeError(`RedirectorFilter ${base.id}: needs options.indev or options.outdev (or both)`);
    }
    if (outdev !== undefined && indev !== undefined && outdev === indev) {
      throw new TypeError(`RedirectorFilter ${base.id}: options.indev and options.outdev must be different sockets`);
    }
    this.id = base.id;
    this.queue = base.queue;
    this.status = base.status;
    this.outdev = outdev;
    this.indev = indev;
    this.passthrough = options.passthrough;
    indev?.on('frame', this.onInput);
  }

  attached(sink: FilterSink): void {
    this.sink = sink;
  }

  detached(): void {
    this.sink = undefined;
  }

  process(_direction: Direction, frame: Uint8Array, vnetHeader: Uint8Array | undefined): Verdict {
    const out = this.outdev;
    if (out === undefined) return PASS;
    const pt = this.passthrough;
    if (pt !== undefined && pt.size > 0 && parsePacket(frame, this.info) === 'ip' && pt.matches(this.id, frame, this.info)) {
      this.counters.passedThrough++;
      return PASS;
    }
    if (out.write(frame, vnetHeader)) this.counters.redirected++;
    else this.counters.outDropped++;
    return CONSUME;
  }

  stats(): RedirectorStats {
    return { ...this.counters };
  }

  /**
   * Stops reading the input socket without closing either socket (QMP object-del: the chardevs
   * outlive the filter, as QEMU's do). Frames read after this are the socket's, not counted here.
   */
  release(): void {
    this.indev?.off('frame', this.onInput);
  }

  async close(): Promise<void> {
    this.indev?.off('frame', this.onInput);
    await this.indev?.close();
    await this.outdev?.close();
  }

  private inject(frame: Uint8Array, vnetHeader: Uint8Array | undefined): void {
    const sink = this.sink;
    if (!this.status || sink === undefined) {
      this.counters.inDropped++;
      return;
    }
    let ok = true;
    if (queueSees(this.queue, 'tx')) ok = sink.passToNext(this, 'tx', frame, vnetHeader) && ok;
    if (queueSees(this.queue, 'rx')) ok = sink.passToNext(this, 'rx', frame, vnetHeader) && ok;
    if (ok) this.counters.injected++;
    else this.counters.inDropped++;
  }
}
