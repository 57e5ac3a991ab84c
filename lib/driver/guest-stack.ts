// The scripted guest's small host stack (no VIRTIO section: Ethernet II, ARP (RFC 826), IPv4
// (RFC 791), ICMP echo (RFC 792), IPv6 neighbour discovery (RFC 4861 §4.3, §4.4, §7.1.1, §7.2.4)
// and ICMPv6 echo (RFC 4443 §4.1)): what a Linux guest answers on its link from its first frame on,
// plus the ARP resolution of its one peer and its pings to it.
//
//   handle(frame) ─▶ ARP request for our address        ─▶ ARP reply (to the asker)
//                    any ARP from the peer              ─▶ Neighbour.heard() (learn / follow its MAC)
//                    ICMP echo request to us            ─▶ echo reply
//                    ICMP echo reply from the peer      ─▶ ping accounting, Neighbour.confirm()
//                    NS for our link-local address      ─▶ NA (unicast, or all-nodes for DAD)
//                    ICMPv6 echo request to it          ─▶ echo reply
//   ping()          ─▶ Neighbour.resolve(): an echo request to its MAC, or nothing while unresolved
//
// Frames are parsed with lib/packet into one reused PacketInfo and answered from preallocated
// buffers: nothing is allocated per frame but the view handed to `send`. Tagged frames (the guest's
// VLAN sub-interface has no address), broadcast pings (Linux ignores them by default) and anything
// with a bad checksum are ignored.

import { be16, writeBe16 } from '../base/endian.js';
import { ETHERTYPE, IPPROTO, newPacketInfo, parsePacket } from '../packet/parse.js';
import { finishChecksum, inetChecksum, onesSum, pseudoHeaderSum } from '../packet/checksum.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { Neighbour } from './neighbour.js';
import type { NeighbourParams } from './neighbour.js';

export interface GuestStackOptions {
  mac: Uint8Array;
  ip: Uint8Array | readonly number[];
  peerIp: Uint8Array | readonly number[];
  /** Sends one frame (a view valid during the call); false when it could not be queued. */
  send: (frame: Uint8Array) => boolean;
  clock?: Clock;
  neighbour?: Partial<NeighbourParams>;
  random?: () => number;
  /** ICMP echo identifier of the pings (default 0x4242). */
  pingId?: number;
}

export interface GuestStackTally {
  /** ARP replies received from the peer. */
  arpReplies: number;
  /** ARP requests (broadcast and unicast) sent for the peer. */
  arpRequestsSent: number;
  /** ARP requests for our address answered. */
  arpRequestsAnswered: number;
  /** Echo requests sent / matching replies received. */
  echoRequests: number;
  echoReplies: number;
  /** Echo requests (v4 and v6) from others answered. */
  echoRequestsAnswered: number;
  /** IPv6 neighbour solicitations for our link-local address answered. */
  neighbourSolicitationsAnswered: number;
  /** The peer's MAC changed under a valid entry and was followed. */
  peerMacChanges: number;
}

const ARP_LEN = 28;
const PING_PAYLOAD = 56;
const PING_FRAME = 14 + 20 + 8 + PING_PAYLOAD;
/** Largest echo answered: a full 1500-byte IP packet (longer ones are not answered). */
const ECHO_MAX = 14 + 1500;
const NA_FRAME = 14 + 40 + 24 + 8;
/** Pings remembered for matching replies (older unanswered ones are lost). */
const PING_WINDOW = 1024;
const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

export class GuestStack {
  readonly neighbour: Neighbour;
  readonly tally: GuestStackTally = {
    arpReplies: 0, arpRequestsSent: 0, arpRequestsAnswered: 0, echoRequests: 0, echoReplies: 0,
    echoRequestsAnswered: 0, neighbourSolicitationsAnswered: 0, peerMacChanges: 0,
  };
  readonly mac: Uint8Array;
  readonly ip: Uint8Array;
  readonly peerIp: Uint8Array;
  /** fe80::/64 with the modified EUI-64 of the MAC (RFC 4291 §2.5.1), as Linux forms it. */
  readonly linkLocal: Uint8Array;
  private readonly send: (frame: Uint8Array) => boolean;
  private readonly clock: Clock;
  private readonly info = newPacketInfo();
  private readonly arpOut = new Uint8Array(14 + ARP_LEN);
  private readonly arpAsk = new Uint8Array(14 + ARP_LEN);
  private readonly echoOut = new Uint8Array(ECHO_MAX);
  private readonly naOut = new Uint8Array(NA_FRAME);
  private readonly pingOut = new Uint8Array(PING_FRAME);
  private readonly pingId: number;
  private seq = 0;
  private readonly sentSeq = new Int32Array(PING_WINDOW).fill(-1);
  private readonly sentAt = new Float64Array(PING_WINDOW);

  constructor(options: GuestStackOptions) {
    this.mac = Uint8Array.from(options.mac);
    this.ip = Uint8Array.from(options.ip);
    this.peerIp = Uint8Array.from(options.peerIp);
    if (this.mac.length !== 6 || this.ip.length !== 4 || this.peerIp.length !== 4) throw new RangeError('GuestStack: mac is 6 bytes, ip and peerIp 4');
    this.send = options.send;
    this.clock = options.clock ?? systemClock;
    this.pingId = (options.pingId ?? 0x4242) & 0xffff;
    this.linkLocal = new Uint8Array(16);
    this.linkLocal.set([0xfe, 0x80]);
    this.linkLocal.set([this.mac[0]! ^ 0x02, this.mac[1]!, this.mac[2]!, 0xff, 0xfe, this.mac[3]!, this.mac[4]!, this.mac[5]!], 8);
    this.neighbour = new Neighbour({
      solicit: (to) => this.solicit(to),
      clock: this.clock,
      ...(options.neighbour === undefined ? {} : { params: options.neighbour }),
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    this.prepareTemplates();
  }

  /** Sends one echo request to the peer when its MAC is known (else resolution goes on); true if sent. */
  ping(): boolean {
    const mac = this.neighbour.resolve();
    if (mac === null) return false;
    const f = this.pingOut;
    const seq = (this.seq = (this.seq + 1) & 0xffff);
    f.set(mac, 0);
    writeBe16(f, 18, seq); // IP identification
    writeBe16(f, 24, 0);
    writeBe16(f, 24, inetChecksum(f, 14, 20));
    writeBe16(f, 40, seq);
    writeBe16(f, 36, 0);
    writeBe16(f, 36, inetChecksum(f, 34, 8 + PING_PAYLOAD));
    if (!this.send(f)) return false;
    this.tally.echoRequests++;
    const slot = seq % PING_WINDOW;
    this.sentSeq[slot] = seq;
    this.sentAt[slot] = this.clock.now();
    return true;
  }

  /** Echo requests sent within the last `windowMs` and not answered yet. */
  awaitingReplies(windowMs: number): number {
    const since = this.clock.now() - windowMs;
    let n = 0;
    for (let i = 0; i < PING_WINDOW; i++) if (this.sentSeq[i]! >= 0 && this.sentAt[i]! >= since) n++;
    return n;
  }

  /** One received frame (read during the call, not kept). */
  handle(frame: Uint8Array): void {
    const info = this.info;
    const kind = parsePacket(frame, info);
    if (info.vlanTags !== 0) return;
    if (kind === 'not-ip') {
      if (info.ethertype === ETHERTYPE.ARP) this.arp(frame);
    } else if (kind === 'ip' && !info.fragment) {
      if (info.ipVersion === 4 && info.protocol === IPPROTO.ICMP) this.icmp(frame);
      else if (info.ipVersion === 6 && info.protocol === IPPROTO.ICMPV6) this.icmp6(frame);
    }
    this.tally.peerMacChanges = this.neighbour.stats.macChanges;
  }

  close(): void {
    this.neighbour.close();
  }

  private arp(f: Uint8Array): void {
    const a = this.info.l3Offset;
    if (f.length < a + ARP_LEN) return;
    if (be16(f, a) !== 1 || be16(f, a + 2) !== ETHERTYPE.IPV4 || f[a + 4] !== 6 || f[a + 5] !== 4) return;
    const op = be16(f, a + 6);
    const sha = a + 8;
    const sip = a + 14;
    const tip = a + 24;
    if ((f[sha]! & 1) !== 0 || equalAt(f, sha, this.mac)) return; // a group or our own address as sender
    if (equalAt(f, sip, this.peerIp)) {
      const how = equalAt(f, tip, this.peerIp) ? 'gratuitous' : op === 2 && equalAt(f, 0, this.mac) ? 'solicited' : 'unsolicited';
      if (op === 2) this.tally.arpReplies++;
      this.neighbour.heard(f.subarray(sha, sha + 6), how);
      this.tally.peerMacChanges = this.neighbour.stats.macChanges;
    }
    if (op === 1 && equalAt(f, tip, this.ip)) {
      const r = this.arpOut;
      r.set(f.subarray(sha, sha + 6), 0); // to the asker
      r.set(f.subarray(sha, sha + 10), 14 + 18); // target: the asker's MAC and IP
      if (this.send(r)) this.tally.arpRequestsAnswered++;
    }
  }

  private icmp(f: Uint8Array): void {
    const info = this.info;
    const l3 = info.l3Offset;
    const l4 = info.l4Offset;
    if (info.l4Length < 8 || inetChecksum(f, l3, info.l3HeaderLength) !== 0 || inetChecksum(f, l4, info.l4Length) !== 0) return;
    if (!equalAt(f, info.dstOffset, this.ip) || !equalAt(f, 0, this.mac)) return;
    const type = f[l4]!;
    if (type === 8 && f[l4 + 1] === 0) {
      const end = info.ipEnd;
      if (end > ECHO_MAX) return;
      const r = this.echoOut;
      r.set(f.subarray(0, end));
      r.set(f.subarray(6, 12), 0);
      r.set(this.mac, 6);
      r.set(f.subarray(info.srcOffset, info.srcOffset + 4), l3 + 16);
      r.set(this.ip, l3 + 12);
      r[l3 + 8] = 64;
      writeBe16(r, l3 + 10, 0);
      writeBe16(r, l3 + 10, inetChecksum(r, l3, info.l3HeaderLength));
      r[l4] = 0;
      writeBe16(r, l4 + 2, 0);
      writeBe16(r, l4 + 2, inetChecksum(r, l4, info.l4Length));
      if (this.send(r.subarray(0, end))) this.tally.echoRequestsAnswered++;
    } else if (type === 0 && equalAt(f, info.srcOffset, this.peerIp) && be16(f, l4 + 4) === this.pingId) {
      const seq = be16(f, l4 + 6);
      const slot = seq % PING_WINDOW;
      if (this.sentSeq[slot] !== seq) return; // a duplicate, or older than the window
      this.sentSeq[slot] = -1;
      this.tally.echoReplies++;
      this.neighbour.confirm(f.subarray(6, 12));
    }
  }

  private icmp6(f: Uint8Array): void {
    const info = this.info;
    const l3 = info.l3Offset;
    const l4 = info.l4Offset;
    const len = info.l4Length;
    if (len < 8 || finishChecksum(onesSum(f, l4, l4 + len, pseudoHeaderSum(f, info))) !== 0) return;
    const type = f[l4]!;
    if (f[l4 + 1] !== 0) return;
    if (type === 135) {
      // RFC 4861 §7.1.1: hop limit 255, at least 24 bytes, for our address.
      if (f[l3 + 7] !== 255 || len < 24 || !equalAt(f, l4 + 8, this.linkLocal)) return;
      const dad = isZero(f, info.srcOffset, 16);
      const r = this.naOut;
      if (dad) {
        r.set([0x33, 0x33, 0, 0, 0, 1], 0);
        r.set(ALL_NODES, 14 + 24);
      } else {
        r.set(f.subarray(6, 12), 0);
        r.set(f.subarray(info.srcOffset, info.srcOffset + 16), 14 + 24);
      }
      r[54 + 4] = dad ? 0x20 : 0x60; // Solicited (not for DAD) and Override (§7.2.4)
      writeBe16(r, 54 + 2, 0);
      writeBe16(r, 54 + 2, finishChecksum(onesSum(r, 22, 54, IPPROTO.ICMPV6 + 32) + onesSum(r, 54, 54 + 32)));
      if (this.send(r)) this.tally.neighbourSolicitationsAnswered++;
    } else if (type === 128) {
      if (!equalAt(f, info.dstOffset, this.linkLocal) || !equalAt(f, 0, this.mac)) return;
      const end = info.ipEnd;
      if (end > ECHO_MAX) return;
      const r = this.echoOut;
      r.set(f.subarray(0, end));
      r.set(f.subarray(6, 12), 0);
      r.set(this.mac, 6);
      r.set(f.subarray(info.srcOffset, info.srcOffset + 16), l3 + 24);
      r.set(this.linkLocal, l3 + 8);
      r[l3 + 7] = 64;
      r[l4] = 129;
      writeBe16(r, l4 + 2, 0);
      writeBe16(r, l4 + 2, finishChecksum(onesSum(r, l4, l4 + len, pseudoHeaderSum(r, info))));
      if (this.send(r.subarray(0, end))) this.tally.echoRequestsAnswered++;
    }
  }

  /** The neighbour wants a who-has sent: broadcast (`to` null) or unicast to the known MAC. */
  private solicit(to: Uint8Array | null): void {
    const r = this.arpAsk;
    if (to === null) r.fill(0xff, 0, 6);
    else r.set(to, 0);
    if (this.send(r)) this.tally.arpRequestsSent++;
  }

  /** Fills the fixed parts of every frame this stack sends. */
  private prepareTemplates(): void {
    // ARP: reply (op 2) and request (op 1), both from us.
    for (const [r, op] of [[this.arpOut, 2], [this.arpAsk, 1]] as const) {
      r.set(this.mac, 6);
      writeBe16(r, 12, ETHERTYPE.ARP);
      writeBe16(r, 14, 1);
      writeBe16(r, 16, ETHERTYPE.IPV4);
      r[18] = 6;
      r[19] = 4;
      writeBe16(r, 20, op);
      r.set(this.mac, 22);
      r.set(this.ip, 28);
    }
    this.arpAsk.set(this.peerIp, 38);
    // Echo request to the peer: 56 bytes of payload, as ping sends by default.
    const p = this.pingOut;
    p.set(this.mac, 6);
    writeBe16(p, 12, ETHERTYPE.IPV4);
    p[14] = 0x45;
    writeBe16(p, 16, 20 + 8 + PING_PAYLOAD);
    p[22] = 64;
    p[23] = IPPROTO.ICMP;
    p.set(this.ip, 26);
    p.set(this.peerIp, 30);
    p[34] = 8;
    writeBe16(p, 38, this.pingId);
    for (let i = 0; i < PING_PAYLOAD; i++) p[42 + i] = i & 0xff;
    // Neighbour advertisement for our link-local address, with the target link-layer option.
    const n = this.naOut;
    n.set(this.mac, 6);
    writeBe16(n, 12, ETHERTYPE.IPV6);
    n[14] = 0x60;
    writeBe16(n, 18, 32);
    n[20] = IPPROTO.ICMPV6;
    n[21] = 255;
    n.set(this.linkLocal, 22);
    n[54] = 136;
    n.set(this.linkLocal, 54 + 8);
    n[54 + 24] = 2;
    n[54 + 25] = 1;
    n.set(this.mac, 54 + 26);
  }
}

function equalAt(f: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (f[at + i] !== bytes[i]) return false;
  return true;
}

function isZero(f: Uint8Array, at: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (f[at + i] !== 0) return false;
  return true;
}
