// Connection tracking keyed by the transport 5-tuple (protocol, addresses, ports), the same in
// both directions: the key orders the two endpoints, and `flowKey` says which side sent the
// packet. Lookups hash a caller-owned scratch key and compare bytes: nothing is allocated per
// frame; an entry copies its key once, when the connection is created.

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

function hashKey(key: Uint8Array): number {
  let h = 0x811c9dc5; // FNV-1a 32
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  return h >>> 0;
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
    const bucket = this.buckets.get(hashKey(key));
    if (bucket === undefined) return undefined;
    for (const e of bucket) if (sameKey(e.key, key)) return e.value;
    return undefined;
  }

  /** Adds a flow (the key is copied). False when the table is full. */
  add(key: Uint8Array, value: T): boolean {
    if (this.count >= this.limit) return false;
    const h = hashKey(key);
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
    const h = hashKey(key);
    const bucket = this.buckets.get(h);
    if (bucket === undefined) return false;
    const i = bucket.findIndex((e) => sameKey(e.key, key));
    if (i < 0) return false;
    bucket.splice(i, 1);
    if (bucket.length === 0) this.buckets.delete(h);
    this.count--;
    return true;
  }

  *entries(): IterableIterator<FlowEntry<T>> {
    for (const bucket of this.buckets.values()) yield* bucket;
  }

  clear(): void {
    this.buckets.clear();
    this.count = 0;
  }
}
