// A device side for netdev tests (the NetdevPeer a netdev delivers to), with no device behind it.

import type { NetdevPeer } from '../../lib/netdev/netdev.js';

/**
 * Takes frames while it has room (`room` frames, Infinity by default), keeps copies of what it took
 * as byte arrays (the netdev only lends the buffer), counts every offer and writable() call, and
 * calls `onReceive` with each frame it takes (to act inside the delivery).
 */
export class RecordingPeer implements NetdevPeer {
  readonly received: number[][] = [];
  writableCalls = 0;
  offers = 0;
  onReceive: ((frame: Uint8Array) => void) | null = null;
  constructor(public room = Infinity) {}
  receive(frame: Uint8Array): boolean {
    this.offers++;
    if (this.room <= 0) return false;
    this.room--;
    this.received.push([...frame]);
    this.onReceive?.(frame);
    return true;
  }
  writable(): void {
    this.writableCalls++;
  }
}
