// A simulated host on the far side of a MemoryNetdev (no VIRTIO section: Ethernet II, ARP
// (RFC 826), IPv4 (RFC 791) and ICMP echo (RFC 792)). It answers ARP who-has for its address and
// ICMP echo requests sent to it, like the gateway of QEMU's user network, so a real guest can
// `ping` something with no host networking at all.
//
// Data flow: guest TX → device → MemoryNetdev 'transmit' → SimPeer.handle() → a reply built in a
// fresh buffer → queued → MemoryNetdev.inject() from a later macrotask (lib/base/schedule.ts defer) (never from inside the
// guest's transmit, which runs inside a CPU port write in v86). Everything else is ignored.

import type { MemoryNetdev } from './memory-netdev.js';
import { be16, writeBe16 } from '../base/endian.js';
import { macFromText } from '../base/mac.js';
import { inetChecksum } from '../packet/checksum.js';
import { defer } from '../base/schedule.js';

export interface SimPeerOptions {
  /** The peer's MAC (default 52:55:0a:00:02:02, QEMU's user-network gateway). */
  mac?: string;
  /** The peer's IPv4 address (default 10.0.2.2). */
  ip?: string;
}

export interface SimPeerStats {
  arpReplies: number;
  echoReplies: number;
  /** Frames the guest sent that the peer did not answer. */
  ignored: number;
}

const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;
const ARP_LEN = 28;
const ARP_REQUEST = 1;
const ARP_REPLY = 2;
const IPPROTO_ICMP = 1;
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
/** Replies waiting for delivery; past it, the oldest requests go unanswered (a busy host). */
const MAX_PENDING = 256;

export class SimPeer {
  readonly mac: Uint8Array;
  readonly ip: Uint8Array;
  private readonly counters: SimPeerStats = { arpReplies: 0, echoReplies: 0, ignored: 0 };
  private readonly pending: Uint8Array[] = [];
  private scheduled = false;
  private closed = false;
  private readonly listener = (frame: Uint8Array): void => this.handle(frame);

  constructor(
    private readonly netdev: MemoryNetdev,
    options: SimPeerOptions = {},
  ) {
    this.mac = parseMacText(options.mac ?? '52:55:0a:00:02:02', 'mac');
    this.ip = parseIpv4(options.ip ?? '10.0.2.2', 'ip');
    netdev.on('transmit', this.listener);
  }

  stats(): SimPeerStats {
    return { ...this.counters };
  }

  /** Stops answering (pending replies are dropped). */
  close(): void {
    this.closed = true;
    this.pending.length = 0;
    this.netdev.off('transmit', this.listener);
  }

  /** Looks at one guest frame; queues a reply when it is addressed to the peer. */
  handle(frame: Uint8Array): void {
    const reply = this.replyTo(frame);
    if (reply === null) {
      this.counters.ignored++;
      return;
    }
    if (this.pending.length >= MAX_PENDING) this.pending.shift();
    this.pending.push(reply);
    if (!this.scheduled) {
      this.scheduled = true;
      defer(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.closed) return;
    for (const f of this.pending.splice(0)) this.netdev.inject(f);
  }

  private replyTo(f: Uint8Array): Uint8Array | null {
    const a = answerArpOrEcho(f, this.mac, this.ip);
    if (a === null) return null;
    if (a.kind === 'arp') this.counters.arpReplies++;
    else this.counters.echoReplies++;
    return a.reply;
  }
}

/**
 * The answer a station with `mac` and `ip` gives to `f`: an ARP reply to a who-has for `ip`, an
 * ICMP echo reply to an echo request sent to `ip` (a fresh buffer), or null. SimPeer's host and
 * the scripted guest of `virtio-net run` (which real peers ping) both answer with it.
 */
export function answerArpOrEcho(f: Uint8Array, mac: Uint8Array, ip: Uint8Array): { kind: 'arp' | 'echo'; reply: Uint8Array } | null {
  if (f.length < ETH_HLEN) return null;
  const type = (f[12]! << 8) | f[13]!;
  const station = { mac, ip };
  let reply: Uint8Array | null = null;
  if (type === ETH_P_ARP) reply = arpReply(station, f);
  else if (type === ETH_P_IP) reply = echoReply(station, f);
  return reply === null ? null : { kind: type === ETH_P_ARP ? 'arp' : 'echo', reply };
}

function arpReply(self: { mac: Uint8Array; ip: Uint8Array }, f: Uint8Array): Uint8Array | null {
  if (f.length < ETH_HLEN + ARP_LEN) return null;
  const a = ETH_HLEN;
  const op = (f[a + 6]! << 8) | f[a + 7]!;
  // Ethernet/IPv4 request for our address only.
  if (be16(f, a) !== 1 || be16(f, a + 2) !== ETH_P_IP || f[a + 4] !== 6 || f[a + 5] !== 4 || op !== ARP_REQUEST) return null;
  if (!equal(f.subarray(a + 24, a + 28), self.ip)) return null;
  const r = new Uint8Array(ETH_HLEN + ARP_LEN);
  r.set(f.subarray(6, 12), 0); // to the asker
  r.set(self.mac, 6);
  r[12] = ETH_P_ARP >> 8;
  r[13] = ETH_P_ARP & 0xff;
  r.set(f.subarray(a, a + 6), a); // htype, ptype, hlen, plen as asked
  r[a + 6] = 0;
  r[a + 7] = ARP_REPLY;
  r.set(self.mac, a + 8);
  r.set(self.ip, a + 14);
  r.set(f.subarray(a + 8, a + 18), a + 18); // target = the asker's MAC and IP
  return r;
}

function echoReply(self: { mac: Uint8Array; ip: Uint8Array }, f: Uint8Array): Uint8Array | null {
  const ip = ETH_HLEN;
  if (f.length < ip + 20 || f[ip]! >> 4 !== 4) return null;
  const ihl = (f[ip]! & 0x0f) * 4;
  const total = be16(f, ip + 2);
  if (ihl < 20 || total < ihl + 8 || ip + total > f.length) return null;
  if (f[ip + 9] !== IPPROTO_ICMP || !equal(f.subarray(ip + 16, ip + 20), self.ip)) return null;
  if ((be16(f, ip + 6) & 0x3fff) !== 0) return null; // fragments: not answered
  const icmp = ip + ihl;
  if (f[icmp] !== ICMP_ECHO_REQUEST || f[icmp + 1] !== 0) return null;
  const r = new Uint8Array(ip + total);
  r.set(f.subarray(0, ip + total));
  r.set(f.subarray(6, 12), 0);
  r.set(self.mac, 6);
  // IPv4: swap addresses, fresh TTL, recompute the header checksum.
  r.set(f.subarray(ip + 16, ip + 20), ip + 12);
  r.set(f.subarray(ip + 12, ip + 16), ip + 16);
  r[ip + 8] = 64;
  r[ip + 10] = 0;
  r[ip + 11] = 0;
  writeBe16(r, ip + 10, inetChecksum(r, ip, ihl));
  r[icmp] = ICMP_ECHO_REPLY;
  r[icmp + 2] = 0;
  r[icmp + 3] = 0;
  writeBe16(r, icmp + 2, inetChecksum(r, icmp, total - ihl));
  return r;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function parseMacText(text: string, option: string): Uint8Array {
  const mac = macFromText(text);
  if (mac === undefined) throw new TypeError(`SimPeer: options.${option} must be a MAC like "52:55:0a:00:02:02", got ${JSON.stringify(text)}`);
  return mac;
}

/** "a.b.c.d" → 4 bytes. */
export function parseIpv4(text: string, option = 'ip'): Uint8Array {
  const parts = text.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((n) => !(n >= 0 && n <= 255))) {
    throw new TypeError(`SimPeer: options.${option} must be an IPv4 address like "10.0.2.2", got ${JSON.stringify(text)}`);
  }
  return Uint8Array.from(bytes);
}
