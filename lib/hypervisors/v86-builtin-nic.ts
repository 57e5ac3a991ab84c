// v86's own virtio-net device (`net_device.type: 'virtio'`, v86 0.5.462 src/virtio_net.js) on one of
// this project's backends, for side-by-side comparison with the device (`virtio-net guest --nic
// builtin`). VIRTIO 1.2 §3.1.1: a device must not use the driver's queues before DRIVER_OK.
//
// Facts from v86 0.5.462 (the debug build's VirtioNet and VirtIO):
//   - The NIC lives at `emulator.v86.cpu.devices.virtio_net` and talks over the bus: it sends the
//     guest's frames as `net<id>-send` (no virtio header) and takes frames from `net<id>-receive`
//     (id 0 when v86 built no ne2k); the browser-side connector is `emulator.bus`.
//   - On `-receive` it writes the frame into the next receive buffer whatever the driver's state:
//     before DRIVER_OK the queue addresses are still 0, so a frame then lands at guest address 0
//     (low memory: the real-mode IVT, the BIOS data area) and boots hang. With no buffer posted it
//     drops the frame.
//   - Its MAC is random (00:22:15:xx:xx:xx) and sits in `nic.mac` (a Uint8Array it reads for the
//     config space); it announces it as `net<id>-mac`.
//
// Data flow:
//   guest → v86's NIC → `net0-send` on emulator.bus → here → netdev.send(frame)
//   netdev → peer.receive(frame) → here: while v86's driver is not at DRIVER_OK or its receive
//     queue has no buffer, answer false (the backend holds the frame, as with the device's own
//     flow control) and poll every POLL_MS for room, then resumeReceive(); else a copy goes as
//     `net0-receive` (v86 keeps no reference past the call, but a backend's frame is a view that
//     is only valid during receive()).

import type { Netdev, NetdevPeer } from '../netdev/netdev.js';

/** What this bridge reaches of v86's NIC. */
export interface V86VirtioNetLike {
  id: number;
  mac: Uint8Array;
  virtio: { device_status: number; queues: { has_request(): boolean }[] };
}

/** What the bridge needs of the `V86` emulator object. */
export interface V86BuiltinEmulator {
  readonly bus?: { register(name: string, fn: (value: unknown) => void, thisValue?: object): void; unregister(name: string, fn: (value: unknown) => void): void; send(name: string, value?: unknown): void };
  readonly v86?: { cpu?: { devices?: { virtio_net?: V86VirtioNetLike } } };
}

export interface V86BuiltinNicStats {
  /** Frames the guest sent (`-send`). */
  transmitted: number;
  /** Frames handed to v86's NIC. */
  delivered: number;
  /** Times a frame was refused because the driver was not ready or had no buffer. */
  held: number;
}

const DRIVER_OK = 4;
/** How often a paused backend is offered room again. */
const POLL_MS = 5;

export class V86BuiltinNic implements NetdevPeer {
  private readonly nic: V86VirtioNetLike;
  private readonly bus: NonNullable<V86BuiltinEmulator['bus']>;
  private readonly events: { send: string; receive: string };
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private readonly counters = { transmitted: 0, delivered: 0, held: 0 };
  private readonly onSend = (value: unknown): void => {
    if (!(value instanceof Uint8Array)) return;
    this.counters.transmitted++;
    this.netdev.send(value);
  };

  /**
   * Bridges v86's NIC of `emulator` (constructed with `net_device: { type: 'virtio' }`, before
   * `run()`) to `netdev`; `mac` replaces v86's random address (6 bytes).
   */
  constructor(emulator: V86BuiltinEmulator, readonly netdev: Netdev, mac?: Uint8Array) {
    const nic = emulator?.v86?.cpu?.devices?.virtio_net;
    const bus = emulator?.bus;
    if (nic === undefined || bus === undefined) {
      throw new TypeError("V86BuiltinNic: the emulator must be loaded and built with net_device: { type: 'virtio' } (v86's own virtio-net)");
    }
    if (mac !== undefined) {
      if (!(mac instanceof Uint8Array) || mac.length !== 6) throw new TypeError('V86BuiltinNic: mac must be 6 bytes');
      nic.mac = Uint8Array.from(mac);
    }
    this.nic = nic;
    this.bus = bus;
    this.events = { send: `net${nic.id}-send`, receive: `net${nic.id}-receive` };
    bus.register(this.events.send, this.onSend);
    netdev.attach(this);
  }

  /** Whether v86's driver set DRIVER_OK (its queues are live). */
  get driverReady(): boolean {
    return (this.nic.virtio.device_status & DRIVER_OK) !== 0;
  }

  get mac(): Uint8Array {
    return this.nic.mac;
  }

  stats(): V86BuiltinNicStats {
    return { ...this.counters };
  }

  receive(frame: Uint8Array): boolean {
    if (this.closed) return true;
    if (!this.driverReady || !this.nic.virtio.queues[0]!.has_request()) {
      this.counters.held++;
      this.startPolling();
      return false;
    }
    this.counters.delivered++;
    this.bus.send(this.events.receive, frame.slice());
    return true;
  }

  writable(): void {}

  /** Stops the bridge and detaches the backend (the backend is the caller's to close). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPolling();
    this.bus.unregister(this.events.send, this.onSend);
    this.netdev.detach();
  }

  private startPolling(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      if (!this.driverReady || !this.nic.virtio.queues[0]!.has_request()) return;
      this.stopPolling();
      this.netdev.resumeReceive();
    }, POLL_MS);
    this.timer.unref?.();
  }

  private stopPolling(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
