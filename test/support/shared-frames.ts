// What the shared-memory test's driver (a worker thread, shared-memory-driver.ts) and device (the
// test's main thread) agree on: the guest memory layout, the control words, and the frames — each
// carries its sequence number and length and ends with an FNV-1a checksum of everything before it,
// so a frame read before it was wholly written, from a stale buffer, or out of order is caught.

/** Control words (an Int32Array over their own SharedArrayBuffer). */
export const CTL_KICK = 0; // available buffer notifications, driver → device (counter, Atomics.notify)
export const CTL_IRQ = 1; // used buffer notifications, device → driver (counter, Atomics.notify)
export const CTL_STATE = 2; // driver: 0 running, 1 done, 2 failed (message posted)
export const CTL_RECEIVED = 3; // frames the driver has taken back and checked
export const CTL_WORDS = 4;

export const STATE_RUNNING = 0;
export const STATE_DONE = 1;
export const STATE_FAILED = 2;

export interface SharedRingLayout {
  /** 'split': descriptor table, avail ring, used ring; 'packed': descriptor ring, driver event, device event. */
  readonly ring: 'split' | 'packed';
  readonly size: number;
  readonly eventIdx: boolean;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  /** Chain k (2 descriptors: a readable frame buffer, then a writable one) uses bufBase + k * 2 * bufSize. */
  readonly bufBase: number;
  readonly bufSize: number;
  /** Bytes of guest memory. */
  readonly memorySize: number;
}

/** What the worker gets as workerData. */
export interface SharedDriverData {
  readonly memory: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly layout: SharedRingLayout;
  readonly frames: number;
  /** Longest wait for a used buffer notification before the driver fails (never hangs). */
  readonly waitMs: number;
}

export function sharedLayout(ring: 'split' | 'packed', size: number, eventIdx: boolean): SharedRingLayout {
  const bufSize = 512;
  const bufBase = 0x10000;
  return {
    ring,
    size,
    eventIdx,
    descTable: 0x0000,
    availRing: 0x8000,
    usedRing: 0xc000,
    bufBase,
    bufSize,
    memorySize: bufBase + size * bufSize, // size / 2 chains of two buffers
  };
}

export function txBuffer(l: SharedRingLayout, chain: number): number {
  return l.bufBase + chain * 2 * l.bufSize;
}
export function rxBuffer(l: SharedRingLayout, chain: number): number {
  return txBuffer(l, chain) + l.bufSize;
}

/** Salts: the device's reply differs from the driver's frame of the same sequence number. */
export const TX_SALT = 0x5a;
export const RX_SALT = 0xc3;

/** Length of frame `seq` in one direction: 16..256 bytes, varying. */
export function frameLength(seq: number, salt: number): number {
  return 16 + ((seq * 7919 + salt * 13) % 241);
}

/** Writes frame `seq` of `len` bytes at `bytes[at..]`: seq (u32 LE), len (u16 LE), payload, FNV-1a. */
export function fillFrame(bytes: Uint8Array, at: number, seq: number, len: number, salt: number): void {
  bytes[at] = seq & 0xff;
  bytes[at + 1] = (seq >>> 8) & 0xff;
  bytes[at + 2] = (seq >>> 16) & 0xff;
  bytes[at + 3] = seq >>> 24;
  bytes[at + 4] = len & 0xff;
  bytes[at + 5] = len >>> 8;
  const body = len - 4;
  let x = (seq * 31 + salt) & 0xff;
  for (let i = 6; i < body; i++) {
    bytes[at + i] = x;
    x = (x * 5 + i + 1) & 0xff;
  }
  const h = fnv(bytes, at, body);
  bytes[at + body] = h & 0xff;
  bytes[at + body + 1] = (h >>> 8) & 0xff;
  bytes[at + body + 2] = (h >>> 16) & 0xff;
  bytes[at + body + 3] = h >>> 24;
}

/** Null when `bytes[at..at+len)` is frame `seq` intact, else what is wrong. */
export function checkFrame(bytes: Uint8Array, at: number, len: number, seq: number, salt: number): string | null {
  const want = frameLength(seq, salt);
  if (len !== want) return `frame ${seq}: length ${len}, want ${want}`;
  const got = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  if (got !== seq) return `frame ${seq}: carries sequence number ${got}`;
  const innerLen = bytes[at + 4]! | (bytes[at + 5]! << 8);
  if (innerLen !== len) return `frame ${seq}: carries length ${innerLen}, used length ${len}`;
  const body = len - 4;
  const h = fnv(bytes, at, body);
  const stored = (bytes[at + body]! | (bytes[at + body + 1]! << 8) | (bytes[at + body + 2]! << 16) | (bytes[at + body + 3]! << 24)) >>> 0;
  if (h !== stored) return `frame ${seq}: checksum 0x${stored.toString(16)}, contents hash to 0x${h.toString(16)}`;
  return null;
}

function fnv(bytes: Uint8Array, at: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ bytes[at + i]!, 0x01000193);
  return h >>> 0;
}
