// A guest driver running in a worker thread over guest memory in a SharedArrayBuffer, as a vCPU
// would run it: it offers `frames` two-descriptor chains (a readable frame, then a writable buffer
// for the device's reply) on a split (VIRTIO 1.2 §2.7.13) or packed (§2.8.21) ring, kicks only
// when the device's suppression says so, takes used buffers back and checks every reply (sequence
// number, length, checksum: shared-frames.ts), and sleeps in `Atomics.wait` for a used buffer
// notification when it has nothing to do. The ring words that order it against the device are
// accessed with Atomics as Linux's virtio_ring orders them with barriers: avail.idx / a list's
// first flags stored last (release), used.idx / used flags loaded first (acquire), and after every
// store that re-enables the other side's notifications a load that looks again (full barrier).
// Written from the spec, independently of virtqueue/. Any failure sets CTL_STATE to STATE_FAILED
// and posts the message; a wait longer than `waitMs` is a failure, never a hang.

import { parentPort, workerData } from 'node:worker_threads';
import {
  CTL_IRQ,
  CTL_KICK,
  CTL_RECEIVED,
  CTL_STATE,
  RX_SALT,
  STATE_DONE,
  STATE_FAILED,
  TX_SALT,
  checkFrame,
  fillFrame,
  frameLength,
  rxBuffer,
  txBuffer,
} from './shared-frames.js';
import type { SharedDriverData, SharedRingLayout } from './shared-frames.js';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const swap = (v: number): number => (LE ? v : ((v & 0xff) << 8) | (v >>> 8));

class DriverFailure extends Error {}

/** Split ring flags (§2.7.5, §2.7.6, §2.7.8). */
const F_NEXT = 1;
const F_WRITE = 2;
const AVAIL_F_NO_INTERRUPT = 1;
const USED_F_NO_NOTIFY = 1;
/** Packed ring flags (§2.8.1, §2.8.10). */
const P_AVAIL = 1 << 7;
const P_USED = 1 << 15;
const EV_ENABLE = 0;
const EV_DISABLE = 1;
const EV_DESC = 2;
/** Chains offered between two looks at the device's notification suppression. */
const BATCH = 32;

class Driver {
  readonly dv: DataView;
  readonly bytes: Uint8Array;
  readonly words: Uint16Array;
  readonly ctl: Int32Array;
  readonly l: SharedRingLayout;
  readonly chains: number;
  readonly free: Int32Array;
  top: number;
  readonly seqOf: Int32Array;
  sent = 0;
  received = 0;
  kicks = 0;
  waits = 0;

  constructor(readonly data: SharedDriverData) {
    this.dv = new DataView(data.memory);
    this.bytes = new Uint8Array(data.memory);
    this.words = new Uint16Array(data.memory);
    this.ctl = new Int32Array(data.control);
    this.l = data.layout;
    this.chains = this.l.size >>> 1;
    this.free = new Int32Array(this.chains);
    for (let k = 0; k < this.chains; k++) this.free[k] = this.chains - 1 - k;
    this.top = this.chains;
    this.seqOf = new Int32Array(this.chains).fill(-1);
  }

  load16(addr: number): number {
    return swap(Atomics.load(this.words, addr >>> 1));
  }
  store16(addr: number, v: number): void {
    Atomics.store(this.words, addr >>> 1, swap(v));
  }

  kick(): void {
    this.kicks++;
    Atomics.add(this.ctl, CTL_KICK, 1);
    Atomics.notify(this.ctl, CTL_KICK);
  }

  /** Writes frame `seq` into chain k's readable buffer; returns its length. */
  fill(k: number, seq: number): number {
    const len = frameLength(seq, TX_SALT);
    fillFrame(this.bytes, txBuffer(this.l, k), seq, len, TX_SALT);
    this.seqOf[k] = seq;
    return len;
  }

  /** Checks the reply in chain k's writable buffer and frees the chain. */
  take(k: number, len: number): void {
    if (k < 0 || k >= this.chains || this.seqOf[k] === -1) throw new DriverFailure(`used buffer id for chain ${k} that is not in flight`);
    const seq = this.seqOf[k]!;
    if (seq !== this.received) throw new DriverFailure(`reply to frame ${seq} came when ${this.received} was due`);
    if (len > this.l.bufSize) throw new DriverFailure(`used length ${len} for frame ${seq} is more than the buffer's ${this.l.bufSize}`);
    const bad = checkFrame(this.bytes, rxBuffer(this.l, k), len, seq, RX_SALT);
    if (bad !== null) throw new DriverFailure(`reply: ${bad}`);
    this.seqOf[k] = -1;
    this.free[this.top++] = k;
    this.received++;
  }

  /** Sleeps until the device's used buffer notification; a timeout is a failure naming what it saw. */
  sleep(irqSeen: number, describe: () => string): void {
    this.waits++;
    const r = Atomics.wait(this.ctl, CTL_IRQ, irqSeen, this.data.waitMs);
    if (r === 'timed-out') throw new DriverFailure(`no used buffer notification in ${this.data.waitMs} ms: ${describe()}`);
  }
}

function runSplit(d: Driver): void {
  const { l, dv } = d;
  const size = l.size;
  const mask = size - 1;
  const AVAIL_FLAGS = l.availRing;
  const AVAIL_IDX = l.availRing + 2;
  const AVAIL_RING = l.availRing + 4;
  const USED_EVENT = l.availRing + 4 + 2 * size;
  const USED_FLAGS = l.usedRing;
  const USED_IDX = l.usedRing + 2;
  const USED_RING = l.usedRing + 4;
  const AVAIL_EVENT = l.usedRing + 4 + 8 * size;
  // Chain k: descriptor 2k (readable frame, NEXT) then 2k + 1 (writable reply buffer).
  for (let k = 0; k < d.chains; k++) {
    const a = l.descTable + 32 * k;
    dv.setBigUint64(a, BigInt(txBuffer(l, k)), true);
    dv.setUint32(a + 8, 0, true);
    dv.setUint16(a + 12, F_NEXT, true);
    dv.setUint16(a + 14, 2 * k + 1, true);
    dv.setBigUint64(a + 16, BigInt(rxBuffer(l, k)), true);
    dv.setUint32(a + 24, l.bufSize, true);
    dv.setUint16(a + 28, F_WRITE, true);
    dv.setUint16(a + 30, 0, true);
  }
  // No used buffer notifications while the driver is busy (re-enabled before each sleep).
  if (!l.eventIdx) d.store16(AVAIL_FLAGS, AVAIL_F_NO_INTERRUPT);
  let availIdx = 0;
  let lastUsed = 0;
  const frames = d.data.frames;
  const harvest = (): number => {
    const usedIdx = d.load16(USED_IDX); // acquire: the used elements before it are visible
    if (((usedIdx - lastUsed) & 0xffff) > size) throw new DriverFailure(`used.idx ${usedIdx} is more than ${size} ahead of ${lastUsed}`);
    let n = 0;
    while (lastUsed !== usedIdx) {
      const e = USED_RING + 8 * (lastUsed & mask);
      const id = dv.getUint32(e, true);
      const len = dv.getUint32(e + 4, true);
      if (id % 2 !== 0) throw new DriverFailure(`used id ${id} is not a chain head`);
      d.take(id >>> 1, len);
      lastUsed = (lastUsed + 1) & 0xffff;
      n++;
    }
    return n;
  };
  while (d.received < frames) {
    const old = availIdx;
    while (d.top > 0 && d.sent < frames && availIdx - old < BATCH) {
      const k = d.free[--d.top]!;
      const len = d.fill(k, d.sent++);
      dv.setUint32(l.descTable + 32 * k + 8, len, true);
      dv.setUint16(AVAIL_RING + 2 * (availIdx & mask), 2 * k, true);
      availIdx = (availIdx + 1) & 0xffff;
    }
    if (availIdx !== old) {
      d.store16(AVAIL_IDX, availIdx); // release: ring entries and descriptors before it
      // Sequentially consistent store then load: the barrier before reading the suppression (§2.7.10).
      if (l.eventIdx) {
        const ev = d.load16(AVAIL_EVENT);
        if (((availIdx - ev - 1) & 0xffff) < ((availIdx - old) & 0xffff)) d.kick();
      } else if ((d.load16(USED_FLAGS) & USED_F_NO_NOTIFY) === 0) d.kick();
    }
    if (harvest() > 0) {
      Atomics.store(d.ctl, CTL_RECEIVED, d.received);
      continue;
    }
    if (d.top > 0 && d.sent < frames) continue;
    // Nothing to offer and nothing used: ask for a notification, look again, then sleep.
    const irqSeen = Atomics.load(d.ctl, CTL_IRQ);
    if (l.eventIdx) d.store16(USED_EVENT, lastUsed);
    else d.store16(AVAIL_FLAGS, 0);
    if (harvest() === 0) {
      d.sleep(irqSeen, () => {
        const u = d.load16(USED_IDX);
        return u !== lastUsed
          ? `lost notification: used.idx is ${u}, the driver is at ${lastUsed} and asked to be notified (${l.eventIdx ? `used_event ${lastUsed}` : 'avail.flags 0'})`
          : `the device made no progress (avail.idx ${availIdx}, used.idx ${u}, ${d.received} of ${frames} frames back)`;
      });
      harvest();
    }
    if (!l.eventIdx) d.store16(AVAIL_FLAGS, AVAIL_F_NO_INTERRUPT);
    Atomics.store(d.ctl, CTL_RECEIVED, d.received);
  }
}

function runPacked(d: Driver): void {
  const { l, dv } = d;
  const size = l.size;
  const DRIVER_OFF_WRAP = l.availRing;
  const DRIVER_FLAGS = l.availRing + 2;
  const DEVICE_OFF_WRAP = l.usedRing;
  const DEVICE_FLAGS = l.usedRing + 2;
  // Positions are counted mod 2 * size: offset = pos % size, wrap counter 1 for pos < size (§2.8.1).
  const period = 2 * size;
  const wrapOf = (pos: number): number => (pos < size ? 1 : 0);
  const descAt = (pos: number): number => l.descTable + 16 * (pos % size);
  const offWrap = (pos: number): number => (pos % size) | (wrapOf(pos) << 15);
  let availPos = 0;
  let usedPos = 0;
  const frames = d.data.frames;
  d.store16(DRIVER_FLAGS, EV_DISABLE);
  const harvest = (): number => {
    let n = 0;
    for (;;) {
      const a = descAt(usedPos);
      const flags = d.load16(a + 14); // acquire: id and len before it are visible
      const w = wrapOf(usedPos);
      const isUsed = ((flags & P_AVAIL) !== 0) === (w === 1) && ((flags & P_USED) !== 0) === (w === 1);
      if (!isUsed) return n;
      const id = dv.getUint16(a + 12, true);
      const len = dv.getUint32(a + 8, true);
      d.take(id, (flags & F_WRITE) !== 0 ? len : 0);
      usedPos = (usedPos + 2) % period; // every list takes two descriptors
      n++;
    }
  };
  while (d.received < frames) {
    const old = availPos;
    while (d.top > 0 && d.sent < frames && (availPos - old + period) % period < 2 * BATCH) {
      const k = d.free[--d.top]!;
      const len = d.fill(k, d.sent++);
      const head = availPos;
      const second = (availPos + 1) % period;
      const availBits = (w: number): number => (w === 1 ? P_AVAIL : P_USED);
      // The second descriptor first, whole; then the head's fields, its flags last (release, §2.8.21).
      const b = descAt(second);
      dv.setBigUint64(b, BigInt(rxBuffer(l, k)), true);
      dv.setUint32(b + 8, l.bufSize, true);
      dv.setUint16(b + 12, k, true);
      d.store16(b + 14, F_WRITE | availBits(wrapOf(second)));
      const h = descAt(head);
      dv.setBigUint64(h, BigInt(txBuffer(l, k)), true);
      dv.setUint32(h + 8, len, true);
      dv.setUint16(h + 12, k, true);
      d.store16(h + 14, F_NEXT | availBits(wrapOf(head)));
      availPos = (availPos + 2) % period;
    }
    if (availPos !== old) {
      const flags = d.load16(DEVICE_FLAGS) & 3;
      if (flags === EV_DESC && l.eventIdx) {
        const ow = d.load16(DEVICE_OFF_WRAP);
        const ev = (ow & 0x7fff) + ((ow >>> 15) === 1 ? 0 : size);
        if ((ev - old + period) % period < (availPos - old + period) % period) d.kick();
      } else if (flags !== EV_DISABLE) d.kick();
    }
    if (harvest() > 0) {
      Atomics.store(d.ctl, CTL_RECEIVED, d.received);
      continue;
    }
    if (d.top > 0 && d.sent < frames) continue;
    const irqSeen = Atomics.load(d.ctl, CTL_IRQ);
    if (l.eventIdx) {
      d.store16(DRIVER_OFF_WRAP, offWrap(usedPos));
      d.store16(DRIVER_FLAGS, EV_DESC);
    } else d.store16(DRIVER_FLAGS, EV_ENABLE);
    if (harvest() === 0) {
      d.sleep(irqSeen, () => {
        const f = d.load16(descAt(usedPos) + 14);
        return `the descriptor at the driver's next used position ${usedPos} has flags 0x${f.toString(16)} (${d.received} of ${frames} frames back, available position ${availPos}): ${
          (((f & P_USED) !== 0) === (wrapOf(usedPos) === 1)) ? 'lost notification: it is used' : 'the device made no progress'
        }`;
      });
      harvest();
    }
    d.store16(DRIVER_FLAGS, EV_DISABLE);
    Atomics.store(d.ctl, CTL_RECEIVED, d.received);
  }
}

const driver = new Driver(workerData as SharedDriverData);
try {
  if (driver.l.ring === 'split') runSplit(driver);
  else runPacked(driver);
  Atomics.store(driver.ctl, CTL_RECEIVED, driver.received);
  Atomics.store(driver.ctl, CTL_STATE, STATE_DONE);
  parentPort!.postMessage({ ok: true, received: driver.received, kicks: driver.kicks, waits: driver.waits });
} catch (e) {
  Atomics.store(driver.ctl, CTL_STATE, STATE_FAILED);
  parentPort!.postMessage({ ok: false, message: e instanceof Error ? e.message : String(e), received: driver.received });
}
// Wake the device side if it waits for a kick, so it sees the state now.
Atomics.add(driver.ctl, CTL_KICK, 1);
Atomics.notify(driver.ctl, CTL_KICK);
