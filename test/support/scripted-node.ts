// A device with the built-in scripted guest on any netdev, wired as `virtio-net run` wires it
// (lib/cli/run.ts): VirtioNetDevice behind virtio-mmio, the ScriptedGuest serviced on a later turn
// after each interrupt. For tests where two devices (or a device and a real guest) talk over a
// real wire: each side ARPs for and pings its peer, and answers the peer's ARP and pings.

import { parseMac } from '../../lib/base/mac.js';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import type { Netdev } from '../../lib/netdev/netdev.js';
import { ScriptedGuest } from '../../lib/cli/scripted-guest.js';

export type Ip4 = readonly [number, number, number, number];

export class ScriptedNode {
  readonly device: VirtioNetDevice;
  readonly guest: ScriptedGuest;
  private timer: NodeJS.Timeout | null = null;
  /** silence(): the interrupt no longer services the guest. */
  private silent = false;

  constructor(netdev: Netdev, mac: string, ip: Ip4, peerIp: Ip4) {
    const memory = new GuestMemory(8 << 20);
    this.device = new VirtioNetDevice({ id: `net-${mac.slice(-2)}`, mac, memory, netdev });
    let guest: ScriptedGuest | null = null;
    let pending = false;
    const transport = new VirtioMmioTransport(this.device, {
      onInterrupt: (asserted) => {
        if (!asserted || pending || this.silent) return;
        pending = true;
        setImmediate(() => {
          pending = false;
          guest?.service();
        });
      },
    });
    guest = new ScriptedGuest(transport, memory, { mac: parseMac(mac), ip }, peerIp);
    this.guest = guest;
    if (!guest.start()) throw new Error('the scripted guest could not negotiate features');
    guest.linkUp();
  }

  /** Starts the traffic scenario: one ARP or ping every `periodMs`. */
  start(periodMs = 20): void {
    this.timer ??= setInterval(() => this.guest.tick('traffic'), periodMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.guest.service();
  }

  /** Stops the traffic and answers nothing more: frames still reach its device, but its guest no longer reads or sends. */
  silence(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.silent = true;
  }
}
