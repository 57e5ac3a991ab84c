// A netdev on v86's network bus (no spec section: the host side of the device, see netdev.ts). Every
// network adapter v86 ships — fetch, wisp, the websocket relay, inbrowser — talks to its NIC only
// through three bus events, so a device on this netdev is that NIC for them. Facts from v86 0.5.462
// (src/bus.js, src/ne2k.js, src/virtio_net.js, src/browser/*network*.js):
//
//   - The bus is a pair of connectors: `emulator.bus` (the browser side, where the adapters
//     register) and `emulator.emulator_bus` (the device side, where v86's NICs register). `send` on
//     one connector calls the listeners registered on the other, synchronously.
//   - `<id>-send`: the NIC sends the guest's Ethernet frame (a Uint8Array, no virtio header) to the
//     adapter. `<id>-receive`: the adapter sends a frame (a Uint8Array; the inbrowser adapter's is a
//     structured clone) to the NIC. The adapters build the id as `"net" + (net_device.id || 0)`.
//   - `<id>-mac`: the NIC announces its MAC as text, "00:22:15:xx:xx:xx" (two lowercase hex digits
//     per byte); fetch and wisp use it as the guest's address in the replies they forge. v86's NICs
//     announce at construction, after MAC_ADDR_SET, and after a state restore.
//   - `eth-transmit-end` / `eth-receive-end` carry `[length]` for v86's UI counters.
//   - The bus has no flow control: an adapter sends whenever a frame arrives.
//
// Data flow:
//   guest → device.send → here: `<id>-send` with a copy (the device's frame is a view of guest
//           memory, valid only during the call; adapters keep frames), always 'sent'
//   adapter `<id>-receive` → here → peer.receive(frame); while the device has no room (it answered
//           false, or pauseReceive), frames wait in a bounded FrameFifo; past `backlogLimit` they
//           are dropped and counted. resumeReceive() delivers the held frames in order first.
//           A frame that arrives while this netdev is inside its own send() (fetch and wisp answer
//           ARP, DHCP and DNS synchronously from within `<id>-send`) is held and delivered on a
//           later turn, so the device's transmit path is never re-entered by its own receive path.
//   MAC: the device binds itself (RxFilterSyncCapable, as VirtioNetDevice does with every netdev
//           that mirrors the rx filter); the netdev announces `main-mac` at once and again after
//           every rx-filter change that moved it (MAC_ADDR_SET, a legacy config write). announceMac()
//           announces on demand (after a state restore).
//
// This file imports nothing from v86: it is typed against the three methods of a bus connector.

import { FrameFifo } from '../base/frame-fifo.js';
import { defer as defaultDefer } from '../base/schedule.js';
import type { Defer } from '../base/schedule.js';
import { formatMac, macFromText } from '../base/mac.js';
import type { Netdev, NetdevPeer, RxFilterSource, RxFilterSyncCapable, SendResult } from './netdev.js';
import { checkPeer } from './netdev.js';

/** One side of v86's bus (src/bus.js BusConnector): the methods this netdev uses. */
export interface V86BusConnector {
  register(name: string, fn: (value: unknown) => void, thisValue?: object): void;
  unregister(name: string, fn: (value: unknown) => void): void;
  send(name: string, value?: unknown): void;
}

/** What V86BusNetdev needs of the `V86` emulator object: its device-side bus connector. */
export interface V86BusEmulator {
  readonly emulator_bus?: V86BusConnector;
}

export interface V86BusNetdevOptions {
  /** The v86 emulator (`new V86(…)`); its bus exists as soon as it is constructed. */
  emulator: V86BusEmulator;
  /** Bus event prefix (default 'net0': v86's adapters use `"net" + (net_device.id || 0)`). */
  id?: string;
  /** Frames held while the device cannot take them (default 1024; 0 = hold none). */
  backlogLimit?: number;
  /** How a held frame is delivered later (tests pass their own). Default: lib/base/schedule.ts. */
  defer?: Defer;
}

export interface V86BusNetdevStats {
  /** Frames the adapter sent (`<id>-receive`), valid or not. */
  received: number;
  /** Frames the device accepted. */
  delivered: number;
  /** Frames waiting now. */
  backlog: number;
  /** Frames refused because the backlog was full, or discarded by close(). */
  dropped: number;
  /** `<id>-receive` payloads that were not bytes (counted, never delivered). */
  invalid: number;
  /** Guest frames sent on the bus (`<id>-send`). */
  transmitted: number;
  /** `<id>-mac` announcements made. */
  macAnnouncements: number;
}

/** Default backlog: a burst of a few hundred frames (an adapter's TCP window) without unbounded memory. */
const DEFAULT_BACKLOG_LIMIT = 1024;
const DEFAULT_ID = 'net0';

export class V86BusNetdev implements Netdev, RxFilterSyncCapable {
  readonly id: string;
  readonly backlogLimit: number;
  readonly syncsRxFilter = true as const;
  private readonly bus: V86BusConnector;
  private readonly events: { readonly send: string; readonly receive: string; readonly mac: string };
  private readonly defer: Defer;
  private readonly backlog: FrameFifo;
  private peer: NetdevPeer | null = null;
  private source: RxFilterSource | null = null;
  private paused = false;
  private draining = false;
  private sending = false;
  private drainScheduled = false;
  private closed = false;
  private announced: string | null = null;
  private readonly counters = { received: 0, delivered: 0, dropped: 0, invalid: 0, transmitted: 0, macAnnouncements: 0 };
  /** The `<id>-receive` listener (kept: v86's unregister matches by function identity). */
  private readonly onBusReceive = (value: unknown): void => this.busReceive(value);
  private readonly onRxFilterChanged = (): void => this.rxFilterChanged();

  constructor(options: V86BusNetdevOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('V86BusNetdev: options must be an object { emulator, id?, backlogLimit? }');
    }
    const { emulator, id, backlogLimit, defer } = options;
    const bus = (emulator as V86BusEmulator | null | undefined)?.emulator_bus;
    if (bus === null || typeof bus !== 'object' || typeof bus.register !== 'function' || typeof bus.unregister !== 'function' || typeof bus.send !== 'function') {
      throw new TypeError('V86BusNetdev: options.emulator must be a v86 emulator (new V86(…)) with its device-side bus `emulator_bus`');
    }
    if (id !== undefined && (typeof id !== 'string' || id.length === 0)) {
      throw new TypeError(`V86BusNetdev: id must be a non-empty string (the bus event prefix, e.g. 'net0'), got ${String(id)}`);
    }
    if (backlogLimit !== undefined && (!Number.isSafeInteger(backlogLimit) || backlogLimit < 0)) {
      throw new RangeError(`V86BusNetdev: backlogLimit must be an integer >= 0, got ${String(backlogLimit)}`);
    }
    if (defer !== undefined && typeof defer !== 'function') throw new TypeError('V86BusNetdev: defer must be a function');
    this.id = id ?? DEFAULT_ID;
    this.backlogLimit = backlogLimit ?? DEFAULT_BACKLOG_LIMIT;
    this.bus = bus;
    this.defer = defer ?? defaultDefer;
    this.events = { send: `${this.id}-send`, receive: `${this.id}-receive`, mac: `${this.id}-mac` };
    this.backlog = new FrameFifo({ maxFrames: this.backlogLimit });
    bus.register(this.events.receive, this.onBusReceive);
  }

  attach(peer: NetdevPeer): void {
    if (this.closed) throw new Error(`V86BusNetdev ${this.id}: closed`);
    if (this.peer !== null) throw new Error(`V86BusNetdev ${this.id}: a device is already attached`);
    checkPeer(`V86BusNetdev ${this.id}`, peer);
    this.peer = peer;
    this.paused = false;
    this.drain();
  }

  detach(): void {
    this.peer = null;
    this.unbindSource();
  }

  /** A guest frame onto the bus. The bus has no flow control: never 'busy'. */
  send(frame: Uint8Array): SendResult {
    if (this.closed) return 'sent'; // nowhere to go, as a NIC with no cable: the frame is gone
    this.counters.transmitted++;
    // The adapters keep frames (the relay queues them until its socket opens); the device's frame
    // is a view of guest memory that is only valid during this call.
    const copy = frame.slice();
    this.sending = true;
    try {
      this.bus.send(this.events.send, copy);
    } finally {
      this.sending = false;
    }
    this.bus.send('eth-transmit-end', [copy.length]);
    if (this.backlog.length > 0) this.scheduleDrain();
    return 'sent';
  }

  pauseReceive(): void {
    this.paused = true;
  }

  resumeReceive(): void {
    this.paused = false;
    this.drain();
  }

  /** Mirrors the device's main MAC on the bus from now on (announced at once). Returns the unbind function. */
  bindRxFilterSource(source: RxFilterSource): () => void {
    if (this.closed) throw new Error(`V86BusNetdev ${this.id}: closed`);
    if (this.source !== null) throw new Error(`V86BusNetdev ${this.id}: already bound to a device`);
    if (source === null || typeof source !== 'object' || typeof source.queryRxFilter !== 'function' || typeof source.on !== 'function' || typeof source.off !== 'function') {
      throw new TypeError(`V86BusNetdev ${this.id}: bindRxFilterSource needs a device with queryRxFilter(), on() and off()`);
    }
    this.source = source;
    source.on('rx-filter-changed', this.onRxFilterChanged);
    this.announceMac();
    return () => {
      if (this.source === source) this.unbindSource();
    };
  }

  /**
   * Announces `mac` (default: the bound device's main MAC) on `<id>-mac`, even when unchanged —
   * e.g. after a state restore, as v86's NICs do. Throws for text that is not a MAC address.
   */
  announceMac(mac?: string): void {
    if (this.closed) return;
    let text = mac;
    if (text === undefined) {
      if (this.source === null) return;
      text = this.source.queryRxFilter()['main-mac'];
    }
    const bytes = macFromText(text);
    if (bytes === undefined) throw new TypeError(`V86BusNetdev ${this.id}: announceMac needs a MAC address like "52:54:00:12:34:56", got ${String(text)}`);
    // v86's own form (src/ne2k.js format_mac): two lowercase hex digits per byte.
    const canonical = formatMac(bytes);
    this.announced = canonical;
    this.counters.macAnnouncements++;
    this.bus.send(this.events.mac, canonical);
  }

  /** The MAC last announced on the bus, or null before the first announcement. */
  get announcedMac(): string | null {
    return this.announced;
  }

  stats(): V86BusNetdevStats {
    return { ...this.counters, backlog: this.backlog.length, dropped: this.counters.dropped + this.backlog.dropped };
  }

  /** Stops listening on the bus, drops held frames (counted in `dropped`), detaches. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.bus.unregister(this.events.receive, this.onBusReceive);
      this.unbindSource();
      this.counters.dropped += this.backlog.clear(true);
      this.peer = null;
    }
    return Promise.resolve();
  }

  // ---- internals ----

  private busReceive(value: unknown): void {
    this.counters.received++;
    const frame = asBytes(value);
    if (frame === undefined) {
      this.counters.invalid++;
      return;
    }
    if (this.closed) {
      this.counters.dropped++;
      return;
    }
    this.bus.send('eth-receive-end', [frame.length]);
    const peer = this.peer;
    if (peer !== null && !this.paused && !this.draining && !this.sending && this.backlog.length === 0) {
      if (peer.receive(frame)) {
        this.counters.delivered++;
        return;
      }
      this.paused = true; // The device took none of it: hold it until resumeReceive().
    }
    // Held (a copy: the adapter may reuse its buffer); false means full, counted in backlog.dropped.
    this.backlog.push(frame);
    if (this.sending) this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    this.defer(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Delivers held frames in order until the device says false or pauses. Re-entrancy safe. */
  private drain(): void {
    if (this.draining || this.sending || this.closed) return;
    this.draining = true;
    try {
      const backlog = this.backlog;
      while (backlog.length > 0 && !this.paused && this.peer !== null) {
        if (!this.peer.receive(backlog.peekFrame()!)) {
          this.paused = true;
          break;
        }
        backlog.shift();
        this.counters.delivered++;
      }
    } finally {
      this.draining = false;
    }
  }

  private rxFilterChanged(): void {
    const source = this.source;
    if (source === null || this.closed) return;
    // The query also re-arms the device's event (QEMU's NIC_RX_FILTER_CHANGED contract), so every
    // later change reaches this listener too.
    const mac = source.queryRxFilter()['main-mac'];
    const bytes = macFromText(mac);
    if (bytes === undefined) return;
    const canonical = formatMac(bytes);
    if (canonical !== this.announced) this.announceMac(canonical);
  }

  private unbindSource(): void {
    const s = this.source;
    if (s === null) return;
    this.source = null;
    s.off('rx-filter-changed', this.onRxFilterChanged);
  }
}

/** The guest lives in netdev.ts with the other capability guards; re-exported here for existing imports. */
export { announcesMac } from './netdev.js';

/** The frame in a `<id>-receive` payload: a Uint8Array as is, other bytes as a view; else undefined. */
function asBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}
