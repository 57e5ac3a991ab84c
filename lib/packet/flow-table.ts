// Connection tracking keyed by the transport 5-tuple (protocol, addresses, ports), the same in
// both directions: the key orders the two endpoints, and `flowKey` says which side sent the
// packet. Lookups hash a caller-owned scratch key and compare bytes: nothing is allocated per
// frame; an entry copies its key once, when the connection is created. The hash is keyed by a
// per-process random seed (HalfSipHash), so which flows share a bucket cannot be chosen from outside.

import { randomBytes } from 'node:crypto';
import type { PacketInfo } from './parse.js';

/** protocol(1) + address length(1) + two endpoints of (16-byte address + 2-byte port). */
export const FLOW_KEY_BYTES = 2 + 2 * 18;

/** A scratch key: write it with `flowKey`, then look it up. */
export function newFlowKey(): Uint8Array {
  return new Uint8Array(FLOW_KEY_BYTES);
}

function cmpEndpoint(frame: Uint8Array, a: number, ap: number, b: number, bp: number, len: number): number {
  for (let i = 0; i < len; i++) {
    const d = frame[a + i]! - frame[b + i]!;
    if (d !== 0) return d;
  }
  return ap - bp;
}

/**
 * Writes the direction-independent key of the packet's flow into `key`. Returns true when the
 * packet's source is the key's first endpoint ("forward"), false when it is the second.
 * For protocols without ports the ports are 0.
 */
export function flowKey(frame: Uint8Array, info: PacketInfo, key: Uint8Array): boolean {
  const len = info.addrLength;
  const forward = cmpEndpoint(frame, info.srcOffset, info.srcPort, info.dstOffset, info.dstPort, len) <= 0;
  key.fill(0);
  key[0] = info.protocol;
  key[1] = len;
  const a = forward ? info.srcOffset : info.dstOffset;
  const ap = forward ? info.srcPort : info.dstPort;
  const b = forward ? info.dstOffset : info.srcOffset;
  const bp = forward ? info.dstPort : info.srcPort;
  for (let i = 0; i < len; i++) {
    key[2 + i] = frame[a + i]!;
    key[20 + i] = frame[b + i]!;
  }
  key[18] = ap >>> 8;
  key[19] = ap & 0xff;
  key[36] = bp >>> 8;
  key[37] = bp & 0xff;
  return forward;
}

/**
 * The hash key, drawn once per process: a client choosing addresses and ports cannot know which
 * 5-tuples share a bucket, so it cannot pile every connection into one chain (hash flooding).
 */
const SEED = randomBytes(8);
const SEED0 = SEED.readUInt32LE(0);
const SEED1 = SEED.readUInt32LE(4);

// HalfSipHash state: module-level so hashing allocates nothing (no closure per call).
let v0 = 0;
let v1 = 0;
let v2 = 0;
let v3 = 0;

function sipRound(): void {
  v0 = (v0 + v1) | 0;
  v1 = (v1 << 5) | (v1 >>> 27);
  v1 ^= v0;
  v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0;
  v3 = (v3 << 8) | (v3 >>> 24);
  v3 ^= v2;
  v0 = (v0 + v3) | 0;
  v3 = (v3 << 7) | (v3 >>> 25);
  v3 ^= v0;
  v2 = (v2 + v1) | 0;
  v1 = (v1 << 13) | (v1 >>> 19);
  v1 ^= v2;
  v2 = (v2 << 16) | (v2 >>> 16);
}

/**
 * HalfSipHash-1-3 (Aumasson and Bernstein's 32-bit SipHash variant, the one the Linux kernel uses
 * as hsiphash for its hash tables) of `data` under the 64-bit key (k0, k1).
 */
export function halfSipHash13(data: Uint8Array, k0: number, k1: number): number {
  v0 = k0 | 0;
  v1 = k1 | 0;
  v2 = (0x6c796765 ^ k0) | 0;
  v3 = (0x74656462 ^ k1) | 0;
  const n = data.length;
  const whole = n & ~3;
  for (let i = 0; i < whole; i += 4) {
    const m = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    v3 ^= m;
    sipRound();
    v0 ^= m;
  }
  let b = n << 24;
  for (let i = whole; i < n; i++) b |= data[i]! << (8 * (i - whole));
  v3 ^= b;
  sipRound();
  v0 ^= b;
  v2 ^= 0xff;
  sipRound();
  sipRound();
  sipRound();
  return (v1 ^ v3) >>> 0;
}

/** The table's hash of a key: keyed by this process's random seed. */
export function flowHash(key: Uint8Array): number {
  return halfSipHash13(key, SEED0, SEED1);
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < FLOW_KEY_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface FlowEntry<T> {
  readonly key: Uint8Array;
  readonly value: T;
}

/** A bounded table of flows. */
export class FlowTable<T> {
  private readonly buckets = new Map<number, FlowEntry<T>[]>();
  private count = 0;

  constructor(readonly limit: number) {}

  get size(): number {
    return this.count;
  }

  get(key: Uint8Array): T | undefined {
    const bucket = this.buckets.get(flowHash(key));
    if (bucket === undefined) return undefined;
    for (const e of bucket) if (sameKey(e.key, key)) return e.value;
    return undefined;
  }

  /** Adds a flow (the key is copied). False when the table is full. */
  add(key: Uint8Array, value: T): boolean {
    if (this.count >= this.limit) return false;
    const h = flowHash(key);
    let bucket = this.buckets.get(h);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(h, bucket);
    }
    bucket.push({ key: key.slice(), value });
    this.count++;
    return true;
  }

  delete(key: Uint8Array): boolean {
    const h = flowHash(key);
    const bucket = this.buckets.get(h);
    if (bucket === undefined) return false;
    const i = bucket.findIndex((e) => sameKey(e.key, key));
    if (i < 0) return false;
    bucket.splice(i, 1);
    if (bucket.length === 0) this.buckets.delete(h);
    this.count--;
    return true;
  }

  /**
   * Deletes every entry for which `remove` returns true (ageing); returns how many. Safe while
   * walking: `remove` may not add or delete entries itself.
   */
  sweep(remove: (value: T) => boolean): number {
    let n = 0;
    for (const [h, bucket] of this.buckets) {
      let w = 0;
      for (let r = 0; r < bucket.length; r++) {
        const e = bucket[r]!;
        if (remove(e.value)) n++;
        else bucket[w++] = e;
      }
      bucket.length = w;
      if (w === 0) this.buckets.delete(h);
    }
    this.count -= n;
    return n;
  }

  *entries(): IterableIterator<FlowEntry<T>> {
    for (const bucket of this.buckets.values()) yield* bucket;
  }

  clear(): void {
    this.buckets.clear();
    this.count = 0;
  }
}
