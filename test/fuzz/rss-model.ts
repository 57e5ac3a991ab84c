// The fuzzer's reference for RSS and hash reports (VIRTIO 1.2 §5.1.6.5.7 RSS, §5.1.6.5.6.4
// HASH_CONFIG, §5.1.6.4.3 hash calculation, §5.1.6.4.4 hash reporting, §5.1.6.5.6 automatic
// receive steering), written from the spec and the decisions in devices/virtio-net/README.md, not
// from the device's code:
// - `FlowDesc`: what a fuzzed IP frame is (version, protocol, addresses, ports, fragment, VLAN tag,
//   IPv6 extension headers), built into bytes by test/devices/virtio-net/rss-frames.ts;
// - `refHash`: the hash and report type a frame described so must get, for given hash types and
//   key — from the description, never by parsing the bytes — with the reference Toeplitz;
// - `expectedRssAck`: OK or ERR for an RSS_CONFIG / HASH_CONFIG the driver sends (the validation
//   rules, in no particular order: any broken rule is ERR);
// - `RssModel`: the configuration in force as the driver knows it from OK acks (RSS_CONFIG,
//   HASH_CONFIG, VQ_PAIRS_SET), and the queue it steers a frame to.

import { MS_KEY, arpFrame, ipv4Bytes, ipv6Bytes, refToeplitz, v4Frame, v6Frame } from '../devices/virtio-net/rss-frames.js';
import type { V6Options } from '../devices/virtio-net/rss-frames.js';

/** Hash type bits (§5.1.6.4.3.1) and report values (§5.1.6.4.4), spelled here from the spec. */
const T = { IPv4: 1, TCPv4: 2, UDPv4: 4, IPv6: 8, TCPv6: 16, UDPv6: 32, IP_EX: 64, TCP_EX: 128, UDP_EX: 256 } as const;
export const REPORT = { NONE: 0, IPv4: 1, TCPv4: 2, UDPv4: 3, IPv6: 4, TCPv6: 5, UDPv6: 6, IPv6_EX: 7, TCPv6_EX: 8, UDPv6_EX: 9 } as const;
/** Config `supported_hash_types` (§5.1.4): all nine. */
export const SUPPORTED = 0x1ff;
/** Config `rss_max_key_size` and `rss_max_indirection_table_length` (§5.1.4). */
export const MAX_KEY = 40;
export const MAX_TABLE = 128;
/** The flow hash without RSS (README "Receive steering"): Toeplitz, Microsoft's key, 4-tuple or addresses, no _EX. */
const FLOW_TYPES = T.IPv4 | T.TCPv4 | T.UDPv4 | T.IPv6 | T.TCPv6 | T.UDPv6;

/** Addresses the fuzzed frames use (index into these). */
const V4 = ['10.0.2.15', '10.0.0.1', '192.168.7.33', '172.16.99.4', '66.9.149.187', '161.142.100.80'];
const V6 = ['fe80::1', '2001:db8::1:abcd', '3ffe:2501:200:1fff::7', '3ffe:501:8::260:97ff:fe40:efab', 'ff02::1', '2001:db8:99::5'];

/** One fuzzed frame for the RSS oracles (JSON: it is part of a fixture). */
export interface FlowDesc {
  /** 4: IPv4, 6: IPv6, 0: ARP (no IP: never hashed). */
  ip: 0 | 4 | 6;
  proto: 'tcp' | 'udp' | 'icmp';
  src: number;
  dst: number;
  sport: number;
  dport: number;
  /** IPv4: MF or an offset (no ports hashed); IPv6: a Fragment header (no ports hashed). */
  frag: boolean;
  /** IPv4 only: an 802.1Q tag. */
  vlan: boolean;
  /** IPv6 only: extension headers before the transport header; home / routing2 take an address index. */
  ext: ({ kind: 'hop' } | { kind: 'dest'; home?: number } | { kind: 'routing2'; address: number })[];
  /** Transport payload bytes. */
  payload: number;
}

/** The frame `d` describes, to destination MAC `mac` (bytes). */
export function flowFrame(d: FlowDesc, mac: readonly number[]): Uint8Array {
  let f: Uint8Array;
  if (d.ip === 0) f = arpFrame();
  else if (d.ip === 4) {
    f = v4Frame(V4[d.src % V4.length]!, V4[d.dst % V4.length]!, { proto: d.proto, sport: d.sport, dport: d.dport, payload: d.payload, ...(d.frag ? { fragment: d.sport % 2 === 0 ? 'more' : 'offset' } : {}), ...(d.vlan ? { vlan: d.dport & 0xfff } : {}) });
  } else {
    const ext: NonNullable<V6Options['ext']> = d.ext.map((e) =>
      e.kind === 'hop' ? { kind: 'hop' } : e.kind === 'dest' ? (e.home === undefined ? { kind: 'dest' } : { kind: 'dest', home: V6[e.home % V6.length]! }) : { kind: 'routing2', address: V6[e.address % V6.length]! },
    );
    if (d.frag) ext.push({ kind: 'fragment' });
    f = v6Frame(V6[d.src % V6.length]!, V6[d.dst % V6.length]!, { proto: d.proto, sport: d.sport, dport: d.dport, payload: d.payload, ext });
  }
  f.set(mac.slice(0, 6), 0);
  return f;
}

function be16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

/** §5.1.6.4.3: the hash (value, report) of the frame `d` describes for `types` and `key`. */
export function refHash(d: FlowDesc, types: number, key: Uint8Array): { value: number; report: number } {
  const none = { value: 0, report: REPORT.NONE };
  if (d.ip === 0 || (types & SUPPORTED) === 0) return none;
  const ports = d.proto !== 'icmp' && !d.frag ? [...be16(d.sport), ...be16(d.dport)] : null;
  const tcp = ports !== null && d.proto === 'tcp';
  const udp = ports !== null && d.proto === 'udp';
  const h = (bytes: number[], report: number): { value: number; report: number } => ({ value: refToeplitz(key, Uint8Array.from(bytes)) >>> 0, report });
  if (d.ip === 4) {
    const a = [...ipv4Bytes(V4[d.src % V4.length]!), ...ipv4Bytes(V4[d.dst % V4.length]!)];
    if (tcp && (types & T.TCPv4) !== 0) return h([...a, ...ports], REPORT.TCPv4);
    if (udp && (types & T.UDPv4) !== 0) return h([...a, ...ports], REPORT.UDPv4);
    if ((types & T.IPv4) !== 0) return h(a, REPORT.IPv4);
    return none;
  }
  const src = ipv6Bytes(V6[d.src % V6.length]!);
  const dst = ipv6Bytes(V6[d.dst % V6.length]!);
  // §5.1.6.4.3.4 (the README's reading): _EX types for packets with extension headers only, the
  // Home Address option and the type 2 Routing header's address in place of source / destination.
  if (d.ext.length > 0 || d.frag) {
    let exSrc = src;
    let exDst = dst;
    for (const e of d.ext) {
      if (e.kind === 'dest' && e.home !== undefined) exSrc = ipv6Bytes(V6[e.home % V6.length]!);
      if (e.kind === 'routing2') exDst = ipv6Bytes(V6[e.address % V6.length]!);
    }
    if (tcp && (types & T.TCP_EX) !== 0) return h([...exSrc, ...exDst, ...ports], REPORT.TCPv6_EX);
    if (udp && (types & T.UDP_EX) !== 0) return h([...exSrc, ...exDst, ...ports], REPORT.UDPv6_EX);
    if ((types & T.IP_EX) !== 0) return h([...exSrc, ...exDst], REPORT.IPv6_EX);
  }
  if (tcp && (types & T.TCPv6) !== 0) return h([...src, ...dst, ...ports], REPORT.TCPv6);
  if (udp && (types & T.UDPv6) !== 0) return h([...src, ...dst, ...ports], REPORT.UDPv6);
  if ((types & T.IPv6) !== 0) return h([...src, ...dst], REPORT.IPv6);
  return none;
}

const le16 = (b: readonly number[], at: number): number => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
const le32 = (b: readonly number[], at: number): number => (le16(b, at) | (le16(b, at + 2) << 16)) >>> 0;

/** What the device knows when it judges an RSS command. */
export interface RssAckContext {
  rss: boolean;
  hashReport: boolean;
  strict: boolean;
  /** max_virtqueue_pairs (the device's queue pairs option). */
  maxPairs: number;
}

/** A parsed RSS_CONFIG / HASH_CONFIG that the device must accept. */
export interface RssCommit {
  rss: boolean;
  types: number;
  table: number[];
  unclassified: number;
  maxTxVq: number;
  key: Uint8Array;
}

/**
 * OK (with what it sets) or ERR for class MQ command `cmd` (1 RSS_CONFIG, 2 HASH_CONFIG) with
 * `payload` (§5.1.6.5.7.1-2, §5.1.6.5.6.4; README "RSS_CONFIG / HASH_CONFIG": what QEMU refuses,
 * the table entries within the device's queue pairs, whatever max_tx_vq, the tolerated mistakes — unsupported
 * hash types, HASH_CONFIG's reserved, trailing bytes — refused in strict mode only).
 */
export function expectedRssAck(cmd: number, payload: readonly number[], c: RssAckContext): { ok: false } | { ok: true; commit: RssCommit } {
  const err = { ok: false } as const;
  const rss = cmd === 1;
  if (rss ? !c.rss : !c.hashReport) return err;
  if (payload.length < 8) return err;
  const types = le32(payload, 0);
  const length = rss ? le16(payload, 4) + 1 : 1;
  if ((length & (length - 1)) !== 0 || length > MAX_TABLE) return err;
  const unclassified = rss ? le16(payload, 6) : 0;
  if (unclassified >= c.maxPairs) return err;
  if (payload.length < 8 + 2 * length + 3) return err;
  const table = Array.from({ length }, (_, i) => le16(payload, 8 + 2 * i));
  const maxTxVq = rss ? le16(payload, 8 + 2 * length) : 0;
  const keyLength = payload[8 + 2 * length + 2]!;
  if (rss && (maxTxVq < 1 || maxTxVq > c.maxPairs)) return err;
  if (keyLength > MAX_KEY) return err;
  if (keyLength === 0 && types !== 0) return err;
  const keyAt = 8 + 2 * length + 3;
  if (payload.length < keyAt + keyLength) return err;
  const trailing = payload.length - keyAt - keyLength;
  // Entries name receive queues of the device (every one is enabled while the world is clean):
  // max_tx_vq counts transmit queues and does not limit them (Linux 6.1 sends max_tx_vq 1 with a
  // table over two queues; devices/virtio-net/README.md "RSS_CONFIG / HASH_CONFIG").
  if (rss && table.some((q) => q >= c.maxPairs)) return err;
  if (!rss && payload.slice(4, 12).some((b) => b !== 0) && c.strict) return err;
  if ((types & ~SUPPORTED) !== 0 && c.strict) return err;
  if (trailing > 0 && c.strict) return err;
  return { ok: true, commit: { rss, types: types & SUPPORTED, table, unclassified, maxTxVq, key: Uint8Array.from(payload.slice(keyAt, keyAt + keyLength)) } };
}

/** The RSS configuration in force and the queue pairs in use, as the driver's OK acks left them. */
export class RssModel {
  redirect = false;
  types = 0;
  table: number[] = [0];
  unclassified = 0;
  key: Uint8Array = new Uint8Array(0);
  pairs = 1;
  /** Bumped at every change: a frame injected under one configuration and delivered under another is not judged on its queue. */
  version = 0;

  private signature(): string {
    return JSON.stringify([this.redirect, this.types, this.table, this.unclassified, [...this.key], this.pairs]);
  }

  /** Runs `change`; bumps `version` when the configuration is not what it was. */
  private update(change: () => void): void {
    const before = this.signature();
    change();
    if (this.signature() !== before) this.version++;
  }

  reset(): void {
    this.update(() => {
      this.off();
      this.pairs = 1;
    });
  }

  private off(): void {
    this.redirect = false;
    this.types = 0;
    this.table = [0];
    this.unclassified = 0;
    this.key = new Uint8Array(0);
  }

  /** An OK-acked VQ_PAIRS_SET (it turns RSS off, as QEMU 7.2). */
  pairsSet(n: number): void {
    this.update(() => {
      this.off();
      this.pairs = n;
    });
  }

  /** An OK-acked RSS_CONFIG or HASH_CONFIG. */
  apply(c: RssCommit): void {
    this.update(() => {
      if (c.rss && c.types === 0 && c.key.length === 0) this.off();
      else {
        this.redirect = c.rss;
        this.types = c.types;
        this.table = c.rss ? c.table : [0];
        this.unclassified = c.unclassified;
        this.key = c.key;
      }
      if (c.rss) this.pairs = c.maxTxVq;
    });
  }

  /** The device took a command the reference would refuse (the world could not judge it): nothing is known any more. */
  unknown(): void {
    this.version++;
  }

  /**
   * The receive queue number (0 = receiveq1) a frame goes to (§5.1.6.5.7.3; else §5.1.6.5.6 one
   * pair: receiveq1; else the flow hash modulo the pairs), with `usable` receive queues (1 without
   * MQ or RSS) and the hash report `h`.
   */
  queueOf(d: FlowDesc, h: { value: number; report: number }, usable: number): number {
    const pairs = Math.min(this.pairs, usable);
    if (this.redirect) return h.report === REPORT.NONE ? this.unclassified : this.table[h.value & (this.table.length - 1)]!;
    if (pairs <= 1) return 0;
    const flow = refHash(d, FLOW_TYPES, MS_KEY);
    return flow.report === REPORT.NONE ? 0 : flow.value % pairs;
  }
}
