// The built-in scripted guest of `virtio-net run`: what a Linux guest's virtio_net driver does to a
// NIC (facts in shared/design/REAL-GUEST.md), replayed through GuestNetDriver — negotiate, bring the
// link up (PROMISC 0, ALLMULTI 0, MAC TABLE_SET, VLAN 0), join multicast groups, add a VLAN
// sub-interface, ARP for the host peer and ping it, and keep changing its rx filter. It answers ARP
// who-has and ICMP echo for its own address, so a real peer (QEMU's guest on a stream socket) can
// ping it too.

import { writeLe16 } from '../base/endian.js';
import { parseMac } from '../base/mac.js';
import { GuestNetDriver } from '../driver/guest-net-driver.js';
import type { MmioRegisters } from '../driver/guest-net-driver.js';
import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { CtrlAck, CtrlClass } from '../../devices/virtio-net/constants.js';
import { arpRequest, arpSenderMac, classifyReply, icmpEcho } from './guest-frames.js';
import { answerArpOrEcho } from '../netdev/sim-peer.js';
import type { GuestAddressing } from './guest-frames.js';

// Command numbers within their class (VIRTIO 1.2 §5.1.6.5); kept here as the driver's own copy.
const RX_PROMISC = 0;
const RX_ALLMULTI = 1;
const MAC_TABLE_SET = 0;
const VLAN_ADD = 0;

export type Scenario = 'linux' | 'traffic' | 'filter';
export const SCENARIOS: readonly Scenario[] = ['linux', 'traffic', 'filter'];

export interface GuestTally {
  ctrlOk: number;
  ctrlErr: number;
  framesSent: number;
  framesReceived: number;
  arpReplies: number;
  echoRequests: number;
  echoReplies: number;
  /** ARP who-has for the guest's address that it answered (a real peer asking, e.g. QEMU's guest). */
  arpAnswered: number;
  /** ICMP echo requests to the guest's address that it answered (a real peer pinging it). */
  echoAnswered: number;
}

const BASE_GROUPS = ['01:00:5e:00:00:01', '33:33:00:00:00:01'];

export class ScriptedGuest {
  readonly driver: GuestNetDriver;
  readonly tally: GuestTally = { ctrlOk: 0, ctrlErr: 0, framesSent: 0, framesReceived: 0, arpReplies: 0, echoRequests: 0, echoReplies: 0, arpAnswered: 0, echoAnswered: 0 };
  private peerMac: Uint8Array | null = null;
  private seq = 0;
  private allmulti = false;
  private groups = [...BASE_GROUPS];
  private step = 0;
  private readonly ip: Uint8Array;

  constructor(
    regs: MmioRegisters,
    memory: GuestMemoryAccess,
    private readonly addressing: GuestAddressing,
    private readonly peerIp: readonly [number, number, number, number],
  ) {
    this.driver = new GuestNetDriver(regs, memory);
    this.ip = Uint8Array.from(addressing.ip);
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

  /** One unit of traffic: ARP until the peer answered, then an ICMP echo. */
  traffic(): void {
    if (this.peerMac === null) {
      this.send(arpRequest(this.addressing, this.peerIp));
    } else {
      this.seq = (this.seq + 1) & 0xffff;
      this.tally.echoRequests++;
      this.send(icmpEcho(this.addressing, this.peerMac, this.peerIp, 0x4242, this.seq));
    }
  }

  /** Runs the scenario's next step; called on a timer. */
  tick(scenario: Scenario): void {
    this.step++;
    if (scenario !== 'filter') this.traffic();
    if (scenario !== 'traffic' && this.step % 5 === 0) this.churn();
  }

  /** The interrupt handler: receive frames and account for them. */
  service(): void {
    this.driver.service();
    for (const r of this.driver.takeReceived()) {
      this.tally.framesReceived++;
      const kind = classifyReply(r.frame);
      if (kind === 'arp-reply') {
        this.tally.arpReplies++;
        this.peerMac = arpSenderMac(r.frame);
      } else if (kind === 'echo-reply') {
        this.tally.echoReplies++;
      } else {
        // A peer that ARPs for or pings this guest gets its answer, as a Linux guest gives it.
        const answer = answerArpOrEcho(r.frame, this.addressing.mac, this.ip);
        if (answer !== null) {
          if (answer.kind === 'arp') this.tally.arpAnswered++;
          else this.tally.echoAnswered++;
          this.send(answer.reply);
        }
      }
    }
  }

  private send(frame: Uint8Array): void {
    if (this.driver.transmit(frame)) this.tally.framesSent++;
  }

  private setTable(): void {
    const mac = (s: string): number[] => [...parseMac(s)];
    const n = this.groups.length;
    const bytes = Uint8Array.from([0, 0, 0, 0, n & 0xff, 0, 0, 0, ...this.groups.flatMap(mac)]);
    this.ctrl(CtrlClass.MAC, MAC_TABLE_SET, bytes);
  }

  private ctrl(ctrlClass: number, command: number, payload: Uint8Array): void {
    const ack = this.driver.command(ctrlClass, command, payload);
    if (ack === CtrlAck.OK) this.tally.ctrlOk++;
    else this.tally.ctrlErr++;
  }
}

/** A control payload of one le16 (a VLAN id). */
function le16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  writeLe16(b, 0, v);
  return b;
}
