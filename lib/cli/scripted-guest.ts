// The built-in scripted guest of `virtio-net run`: what a Linux guest's virtio_net driver does to a
// NIC (facts in shared/design/REAL-GUEST.md), replayed through GuestNetDriver — negotiate, bring the
// link up (PROMISC 0, ALLMULTI 0, MAC TABLE_SET, VLAN 0), join multicast groups, add a VLAN
// sub-interface, resolve the host peer and ping it, and keep changing its rx filter. Its small host
// stack (lib/driver/guest-stack.ts) answers ARP, ICMP echo and IPv6 neighbour solicitations from
// the first frame on and keeps the peer's neighbour entry the way Linux does.

import { writeLe16 } from '../base/endian.js';
import { parseMac } from '../base/mac.js';
import { GuestNetDriver } from '../driver/guest-net-driver.js';
import type { MmioRegisters } from '../driver/guest-net-driver.js';
import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { CtrlAck, CtrlClass } from '../../devices/virtio-net/constants.js';
import { GuestStack } from '../driver/guest-stack.js';
import type { GuestStackTally } from '../driver/guest-stack.js';
import type { Clock } from '../driver/clock.js';
import type { NeighbourParams, NeighbourState } from '../driver/neighbour.js';
import type { GuestAddressing } from './guest-frames.js';
import { GuestTcp } from './guest-tcp.js';

// Command numbers within their class (VIRTIO 1.2 §5.1.6.5); kept here as the driver's own copy.
const RX_PROMISC = 0;
const RX_ALLMULTI = 1;
const MAC_TABLE_SET = 0;
const VLAN_ADD = 0;

export type Scenario = 'linux' | 'traffic' | 'filter';
export const SCENARIOS: readonly Scenario[] = ['linux', 'traffic', 'filter'];

export interface GuestTally extends GuestStackTally {
  ctrlOk: number;
  ctrlErr: number;
  framesSent: number;
  framesReceived: number;
}

export interface ScriptedGuestOptions {
  clock?: Clock;
  neighbour?: Partial<NeighbourParams>;
  random?: () => number;
  /** A TCP echo service on this port (guest-tcp.ts); `diverge`: requests holding it are answered differently. */
  tcp?: { port: number; diverge?: string };
}

/** The peer's neighbour entry, for the status line and `--json`. */
export interface PeerStatus {
  ip: string;
  state: NeighbourState;
  /** The MAC the pings go to, or null while unresolved. */
  mac: string | null;
  /** How long ARP requests for the peer have gone unanswered, or null when it answered. */
  noAnswerMs: number | null;
}

const BASE_GROUPS = ['01:00:5e:00:00:01', '33:33:00:00:00:01'];

export class ScriptedGuest {
  readonly driver: GuestNetDriver;
  readonly stack: GuestStack;
  /** The TCP echo service, when asked for. */
  readonly tcp: GuestTcp | undefined;
  private readonly counts = { ctrlOk: 0, ctrlErr: 0, framesSent: 0, framesReceived: 0 };
  private readonly onFrame = (frame: Uint8Array): void => {
    this.counts.framesReceived++;
    if (this.tcp?.handle(frame) === true) return;
    this.stack.handle(frame);
  };
  private allmulti = false;
  private groups = [...BASE_GROUPS];
  private step = 0;

  constructor(
    regs: MmioRegisters,
    memory: GuestMemoryAccess,
    addressing: GuestAddressing,
    peerIp: readonly [number, number, number, number],
    options: ScriptedGuestOptions = {},
  ) {
    this.driver = new GuestNetDriver(regs, memory);
    this.stack = new GuestStack({
      mac: addressing.mac,
      ip: addressing.ip,
      peerIp,
      send: (frame) => this.send(frame),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.neighbour === undefined ? {} : { neighbour: options.neighbour }),
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    this.tcp = options.tcp === undefined
      ? undefined
      : new GuestTcp({ mac: addressing.mac, ip: addressing.ip, port: options.tcp.port, send: (frame) => this.send(frame), ...(options.tcp.diverge === undefined ? {} : { diverge: options.tcp.diverge }) });
  }

  /** Every counter: the driver's (control commands, frames) and the stack's (ARP, echo, NS). */
  get tally(): GuestTally {
    return { ...this.counts, ...this.stack.tally };
  }

  /** The peer's neighbour entry now. */
  peerStatus(): PeerStatus {
    const n = this.stack.neighbour;
    const mac = n.mac;
    return {
      ip: this.stack.peerIp.join('.'),
      state: n.state,
      mac: mac === null ? null : [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':'),
      noAnswerMs: n.noAnswerMs(),
    };
  }

  /** Stops the stack's timers (neighbour resolution). */
  close(): void {
    this.stack.close();
  }

  /** Probe: negotiate everything the device offers that Linux 6.1 understands, fill rx. */
  start(): boolean {
    return this.driver.init((1n << 64n) - 1n).ok;
  }

  /** `ip link set eth0 up` on Linux: the rx-mode burst. */
  linkUp(): void {
    this.ctrl(CtrlClass.RX, RX_PROMISC, Uint8Array.of(0));
    this.ctrl(CtrlClass.RX, RX_ALLMULTI, Uint8Array.of(0));
    this.setTable();
    this.ctrl(CtrlClass.VLAN, VLAN_ADD, le16(0));
  }

  /** Joins a few more groups and adds VLAN 100 (a sub-interface adds 01:80:c2:00:00:21). */
  programFilter(): void {
    this.groups.push('01:00:5e:00:00:fb', '33:33:ff:12:34:56');
    this.setTable();
    this.ctrl(CtrlClass.VLAN, VLAN_ADD, le16(100));
    this.groups.push('01:80:c2:00:00:21');
    this.setTable();
  }

  /** One unit of filter churn: toggles allmulti (as `ip link set eth0 allmulticast on/off`). */
  churn(): void {
    this.allmulti = !this.allmulti;
    this.ctrl(CtrlClass.RX, RX_ALLMULTI, Uint8Array.of(this.allmulti ? 1 : 0));
  }

  /** One unit of traffic: an echo request once the peer is resolved (resolution runs on its own timers). */
  traffic(): void {
    this.stack.ping();
  }

  /** Runs the scenario's next step; called on a timer. */
  tick(scenario: Scenario): void {
    this.step++;
    if (scenario !== 'filter') this.traffic();
    if (scenario !== 'traffic' && this.step % 5 === 0) this.churn();
  }

  /** The interrupt handler: each received frame goes through the stack (which may answer it). */
  service(): void {
    this.driver.service(this.onFrame);
  }

  private send(frame: Uint8Array): boolean {
    if (!this.driver.transmit(frame)) return false;
    this.counts.framesSent++;
    return true;
  }

  private setTable(): void {
    const mac = (s: string): number[] => [...parseMac(s)];
    const n = this.groups.length;
    const bytes = Uint8Array.from([0, 0, 0, 0, n & 0xff, 0, 0, 0, ...this.groups.flatMap(mac)]);
    this.ctrl(CtrlClass.MAC, MAC_TABLE_SET, bytes);
  }

  private ctrl(ctrlClass: number, command: number, payload: Uint8Array): void {
    const ack = this.driver.command(ctrlClass, command, payload);
    if (ack === CtrlAck.OK) this.counts.ctrlOk++;
    else this.counts.ctrlErr++;
  }
}

/** A control payload of one le16 (a VLAN id). */
function le16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  writeLe16(b, 0, v);
  return b;
}
