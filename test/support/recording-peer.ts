// A device side for netdev tests (the NetdevPeer a netdev delivers to), with no device behind it.

import type { NetdevPeer } from '../../lib/netdev/netdev.js';

/** Takes frames while `room` lasts (Infinity by default), keeps copies of them as byte arrays (the netdev only lends the buffer) and counts writable() calls. */
export class RecordingPeer implements NetdevPeer {
  readonly received: number[][] = [];
  writableCalls = 0;
  constructor(public room = Infinity) {}
  receive(frame: Uint8Array): boolean {
    if (this.room <= 0) return false;
    this.room--;
    this.received.push([...frame]);
    return true;
  }
  writable(): void {
    this.writableCalls++;
  }
}
