// Running one fuzz case and its end-of-sequence oracles (VIRTIO 1.2 §2.1.2 DEVICE_NEEDS_RESET and
// recovery by reset §2.4; §5.1.6.2 / §5.1.6.4 / §5.1.6.5 the exchanges a working device completes).
//
// After the operations:
// 1. Flush: with a clean initialisation still in force and the device running, the host raises
//    the link, lets the backend take frames, and the driver notifies every queue. Unless that
//    makes the device enter DEVICE_NEEDS_RESET (a broken chain was still waiting), every head on
//    the control queue and on the transmit queues in use must now be in the used ring: exactly
//    once (the ledger already refused a second time).
// 2. Recovery: the driver resets and initialises the device; it must accept DRIVER_OK and
//    complete a good exchange — a frame sent, a frame received, a control command acked OK.

import type { FuzzCase } from './ops.js';
import { FuzzStop, FuzzWorld } from './world.js';
import type { FuzzFailure, FuzzOracles } from './world.js';

const MARK = [0xfa, 0xce, 0xb0, 0x0c];
/** Receive rounds of the recovery exchange: the backend may still hold NETDEV_BACKLOG frames. */
const RX_ROUNDS = 80;
const RX_BUFFER = 4096;

/**
 * Runs a case; null when every oracle held. `onOp` is called after each operation (progress);
 * `counts` (when given) gets the world's per-kind operation counts added.
 */
export function runCase(c: FuzzCase, onOp?: () => void, oracles: FuzzOracles = {}, counts?: Record<string, number>): FuzzFailure | null {
  return runWorld(c, onOp, oracles, (w) => {
    if (counts !== undefined) for (const [k, n] of Object.entries(w.counts)) counts[k] = (counts[k] ?? 0) + n;
  });
}

/**
 * Runs a case like runCase; `plant` (oracles.test.ts: a planted bug) gets the world once it is
 * built; `done` gets it at the end, pass or fail.
 */
export function runWorld(c: FuzzCase, onOp: (() => void) | undefined, oracles: FuzzOracles, done?: (w: FuzzWorld) => void, plant?: (w: FuzzWorld) => void): FuzzFailure | null {
  let world: FuzzWorld;
  try {
    world = new FuzzWorld(c.setup, oracles);
    plant?.(world);
  } catch (e) {
    return { step: -1, code: 'setup.threw', detail: String(e instanceof Error ? e.stack : e) };
  }
  try {
    for (let i = 0; i < c.ops.length; i++) {
      world.step = i;
      world.apply(c.ops[i]!);
      world.afterStep();
      onOp?.();
    }
    world.step = c.ops.length;
    flush(world);
    recover(world);
  } catch (e) {
    if (e instanceof FuzzStop) return e.failure;
    return { step: world.step, code: 'harness.threw', detail: String(e instanceof Error ? e.stack : e) };
  } finally {
    done?.(world);
  }
  return null;
}

function flush(w: FuzzWorld): void {
  if (!w.clean || !w.driverOk || w.needsReset) return;
  w.call('setLink', () => w.device.setLink(true));
  w.call('netdev.setWritable', () => w.netdev.setWritable(true));
  w.afterStep();
  for (let q = 0; q < w.ledgers.length; q++) {
    if (w.ring(q) !== null) w.driver.notify(q);
    w.afterStep();
  }
  if (w.needsReset) return;
  // The calls above run the device, whose callbacks may run armed re-entrant driver operations
  // (e.g. a queue disabled from the transmit listener when the backend turns writable): then the
  // driver itself gave up those heads, as `clean` records.
  if (!w.clean) return;
  const pairs = w.device.activeQueuePairs;
  for (const l of w.ledgers) {
    if (l === null || l.dead) continue;
    const served = l.index === w.ctrlIndex || (l.index % 2 === 1 && (l.index - 1) / 2 < pairs);
    if (served && l.outstanding > 0) {
      w.fail('flush.not-completed', `queue ${l.index}: ${l.outstanding} head(s) made available and notified are still not in the used ring on a running device`);
    }
  }
}

function recover(w: FuzzWorld): void {
  // A fresh driver after the reset: what the sequence armed in callbacks is gone (a re-entrant
  // reset would otherwise cut the good exchange short, which proves nothing about the device).
  w.disarm();
  w.call('setLink', () => w.device.setLink(true));
  w.call('netdev.setWritable', () => w.netdev.setWritable(true));
  if (!w.init(0)) w.fail('recover.init-refused', `initialisation after reset ended with status 0x${w.device.status.toString(16)}`);
  w.afterStep();
  if (w.needsReset) w.fail('recover.needs-reset', 'device needs a reset right after a good initialisation');

  // Transmit one frame.
  const sent: Uint8Array[] = [];
  const listener = (f: Uint8Array): void => void sent.push(f);
  w.netdev.on('transmit', listener);
  const frame = w.frame(64, '52:54:00:99:99:99', -1);
  frame.set(MARK, 20);
  w.expectTx(0, frame);
  const tx = w.ring(1)!;
  const whole = new Uint8Array(w.hdrLen + frame.length);
  whole.set(frame, w.hdrLen);
  w.kick(1, () => w.post(1, tx.addChain([{ len: whole.length, data: whole }]), 'tx'), true);
  w.netdev.off('transmit', listener);
  w.afterStep();
  if (sent.length !== 1 || !sameBytes(sent[0]!, frame)) w.fail('recover.tx', `after reset the device sent ${sent.length} frame(s) instead of the one posted`);
  if (w.ledgers[1]!.outstanding !== 0) w.fail('recover.tx', 'the transmitted chain was not completed');

  // Receive one frame (after whatever the backend still held).
  const rx = w.ring(0)!;
  const marker = w.frame(80, 'ff:ff:ff:ff:ff:ff', -1);
  marker.set(MARK, 20);
  w.injectFrame(marker);
  // A fixed pool of buffers (a bump allocator would starve while the device holds some).
  const pool: number[] = [];
  for (let a = rx.heapStart; a + RX_BUFFER <= rx.heapEnd; a += RX_BUFFER) pool.push(a);
  const addrOf = new Map<number, number>();
  let found = false;
  for (let round = 0; round < RX_ROUNDS && !found; round++) {
    const n = Math.min(rx.freeDescriptors, pool.length);
    w.kick(0, () => {
      for (let i = 0; i < n; i++) {
        const addr = pool.pop()!;
        const head = rx.addChain([{ len: RX_BUFFER, write: true, addr }], { publish: false });
        addrOf.set(head, addr);
        w.post(0, head, 'rx');
      }
      rx.publish();
    }, true);
    for (const e of rx.usedEntries()) {
      const bytes = rx.writtenBytes(e.id, e.len);
      if (e.len === w.hdrLen + marker.length && sameBytes(bytes.subarray(w.hdrLen), marker)) found = true;
      pool.push(addrOf.get(e.id)!);
    }
    w.afterStep();
  }
  if (!found) w.fail('recover.rx', `after reset the device did not deliver a broadcast frame within ${RX_ROUNDS} rounds of buffers`);

  // One control command, when there is a control queue with CTRL_RX.
  const q = w.ctrlIndex;
  if (q >= 0 && w.has('CTRL_RX')) {
    const ring = w.ring(q)!;
    let head = -1;
    w.kick(q, () => {
      head = ring.addChain([{ len: 2, data: [0, 0] }, { len: 1, data: [1] }, { len: 1, write: true, data: [0xff] }], { publish: false });
      w.post(q, head, 'ctrl', ring.buffers(head)[2]!.addr);
      ring.publish();
    });
    const ack = ring.bufferBytes(head, 2)[0];
    w.afterStep();
    if (ack !== 0) w.fail('recover.ctrl', `RX PROMISC on after reset was acked ${String(ack)}, not VIRTIO_NET_OK`);
  }
  if (w.needsReset) w.fail('recover.needs-reset', 'the good exchange after reset put the device in DEVICE_NEEDS_RESET');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
