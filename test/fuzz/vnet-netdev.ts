// The fuzzer's header-carrying in-memory backend (no VIRTIO section of its own: it is the host side,
// lib/netdev/netdev.ts; the header it carries is struct virtio_net_hdr, VIRTIO 1.2 §5.1.6): what a
// TAP with IFF_VNET_HDR is to the device, without a kernel. Every frame the fuzzer injects comes
// with a header the fuzzer chose — hostile ones included (NEEDS_CSUM, GSO types, bogus offsets) —
// and the backend can refuse an offload setting (a TUNSETOFFLOAD that fails).
//
// It implements exactly Netdev + VnetHeaderCapable + OffloadCapable, with MemoryNetdev's counters
// and 'transmit' event, so the world can take either (`makeFuzzNetdev`). Until lib/netdev has a
// header-carrying MemoryNetdev this lives here; swapping is one line in `makeFuzzNetdev`.
//
// Refusal: `setOffloads` leaves the applied offloads unchanged and returns false (the interface's
// return type is void today; a device that wants to know reads `offloads` back, as it would read
// TUNGETFEATURES). The world's oracle compares `offloads` with what an OK-acked GUEST_OFFLOADS_SET
// promised the guest.

import { EventEmitter } from 'node:events';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import type { MemoryNetdevStats, TransmitListener } from '../../lib/netdev/memory-netdev.js';
import type { Netdev, NetdevPeer, OffloadCapable, OffloadFlags, SendResult, VnetHeaderCapable } from '../../lib/netdev/netdev.js';

/** What the world needs of a backend, header-carrying or not. */
export interface FuzzNetdev extends Netdev {
  /** Offers a frame (and, to a header-carrying backend, its header) to the device. */
  inject(frame: Uint8Array, header?: Uint8Array): boolean;
  setWritable(writable: boolean): void;
  stats(): MemoryNetdevStats;
  on(event: 'transmit', listener: TransmitListener): unknown;
  off(event: 'transmit', listener: TransmitListener): unknown;
  listenerCount(event: 'transmit'): number;
}

/** The plain MemoryNetdev (headers dropped), or the header-carrying one below. */
export function makeFuzzNetdev(kind: 'plain' | 'vnet', backlogLimit: number): FuzzNetdev & { vnet: VnetMemoryNetdev | null } {
  if (kind === 'vnet') {
    const n = new VnetMemoryNetdev({ id: 'fuzz-net', backlogLimit });
    return Object.assign(n, { vnet: n });
  }
  // The plain backend carries no header (world.ts passes none to it).
  return Object.assign(new MemoryNetdev({ id: 'fuzz-net', backlogLimit }), { vnet: null });
}

export const NO_OFFLOADS: OffloadFlags = Object.freeze({ csum: false, tso4: false, tso6: false, ecn: false, ufo: false });

export class VnetMemoryNetdev extends EventEmitter implements Netdev, VnetHeaderCapable, OffloadCapable {
  readonly id: string;
  private readonly backlogLimit: number;
  private peer: NetdevPeer | null = null;
  private readonly held: { frame: Uint8Array; header: Uint8Array }[] = [];
  private paused = false;
  private draining = false;
  /** A frame is being offered by inject() (see there). */
  private offering = false;
  /** Frames injected while `offering`: they wait behind the frame on offer. */
  private readonly late: { frame: Uint8Array; header: Uint8Array }[] = [];
  private writableNow = true;
  private headerLength = 10;
  private applied: OffloadFlags = NO_OFFLOADS;
  /** While true, setOffloads refuses (the host cannot do what the guest asks). */
  refuseOffloads = false;
  /** setOffloads calls, and how many were refused. */
  offloadCalls = 0;
  offloadRefusals = 0;
  /** The last setOffloads call was refused. */
  lastRefused = false;
  private readonly counters: MemoryNetdevStats = { injected: 0, delivered: 0, backlog: 0, dropped: 0, transmitted: 0 };

  constructor(options: { id: string; backlogLimit: number }) {
    super();
    this.id = options.id;
    this.backlogLimit = options.backlogLimit;
  }

  get vnetHeaderLength(): number {
    return this.headerLength;
  }

  setVnetHeaderLength(length: 10 | 12): void {
    this.headerLength = length;
  }

  /** The offloads in effect on the host (what the last accepted setOffloads asked for). */
  get offloads(): OffloadFlags {
    return this.applied;
  }

  setOffloads(flags: OffloadFlags): boolean {
    this.offloadCalls++;
    this.lastRefused = this.refuseOffloads;
    if (this.refuseOffloads) {
      this.offloadRefusals++;
      return false;
    }
    this.applied = Object.freeze({ csum: flags.csum, tso4: flags.tso4, tso6: flags.tso6, ecn: flags.ecn, ufo: flags.ufo, uso4: flags.uso4 === true, uso6: flags.uso6 === true });
    return true;
  }

  attach(peer: NetdevPeer): void {
    if (this.peer !== null) throw new Error(`VnetMemoryNetdev ${this.id}: a device is already attached`);
    this.peer = peer;
    this.paused = false;
    this.drain();
  }

  detach(): void {
    this.peer = null;
  }

  /** A frame with its header (a header of the backend's current length when none is given). */
  inject(frame: Uint8Array, header?: Uint8Array): boolean {
    this.counters.injected++;
    const h = header ?? new Uint8Array(this.headerLength);
    // Injected from inside the device's handling of an offer (re-entrancy: its interrupt, pause
    // callback …): it came later, so it must not overtake the frame on offer (whose fate is not
    // known yet); it waits until then, as MemoryNetdev's do.
    if (this.offering) return this.keep(this.late, frame, h);
    const peer = this.peer;
    if (peer !== null && !this.paused && !this.draining && this.held.length === 0) {
      this.offering = true;
      let taken: boolean;
      try {
        taken = peer.receive(frame, h);
      } finally {
        this.offering = false;
      }
      let kept = true;
      if (taken) this.counters.delivered++;
      else {
        this.paused = true;
        kept = this.keep(this.held, frame, h);
      }
      if (this.late.length > 0) {
        for (const f of this.late) {
          if (this.held.length >= this.backlogLimit) this.counters.dropped++;
          else this.held.push(f);
        }
        this.late.length = 0;
        this.drain();
      }
      return kept;
    }
    return this.keep(this.held, frame, h);
  }

  /** Holds a copy of the frame in `list`, within the backlog limit (else dropped and counted). */
  private keep(list: { frame: Uint8Array; header: Uint8Array }[], frame: Uint8Array, header: Uint8Array): boolean {
    if (list.length >= this.backlogLimit) {
      this.counters.dropped++;
      return false;
    }
    list.push({ frame: frame.slice(), header: header.slice() });
    return true;
  }

  send(frame: Uint8Array, vnetHeader?: Uint8Array): SendResult {
    if (!this.writableNow) return 'busy';
    this.counters.transmitted++;
    if (this.listenerCount('transmit') > 0) this.emit('transmit', frame.slice(), vnetHeader?.slice());
    return 'sent';
  }

  pauseReceive(): void {
    this.paused = true;
  }

  resumeReceive(): void {
    this.paused = false;
    this.drain();
  }

  setWritable(writable: boolean): void {
    const was = this.writableNow;
    this.writableNow = writable;
    if (writable && !was && this.peer !== null) this.peer.writable();
  }

  stats(): MemoryNetdevStats {
    return { ...this.counters, backlog: this.held.length + this.late.length };
  }

  close(): Promise<void> {
    this.counters.dropped += this.held.length;
    this.held.length = 0;
    this.peer = null;
    return Promise.resolve();
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.held.length > 0 && !this.paused && this.peer !== null) {
        const { frame, header } = this.held[0]!;
        if (!this.peer.receive(frame, header)) {
          this.paused = true;
          break;
        }
        this.held.shift();
        this.counters.delivered++;
      }
    } finally {
      this.draining = false;
    }
  }
}
