// Guest memory in a SharedArrayBuffer with the driver in another thread (issue #20): the driver
// (test/support/shared-memory-driver.ts) runs in a worker thread as a vCPU would, the device queue
// runs here in the main thread, and they meet only through guest memory and two notification
// counters. Every frame crosses both ways (the driver's frame read from its readable buffer, the
// device's reply written into its writable buffer) and is checked by sequence number, length and
// checksum; the driver sleeps in Atomics.wait for each used buffer notification the device raises
// (through the queue's publishUsed() verdict, as the device's interrupt callback would), and the
// device waits for each kick, so a lost notification on either side ends in a bounded wait that
// fails with what it saw — never a hang.
//
// FRAMES sets the split-ring count (default 10^6); `SHARED_MEMORY_FRAMES=... npx mocha
// test/virtqueue/shared-memory.test.ts` runs another (test/README.md).

import { expect } from 'chai';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { PackedQueue } from '../../virtqueue/packed-queue.js';
import { SplitQueue } from '../../virtqueue/split-queue.js';
import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import {
  CTL_IRQ,
  CTL_KICK,
  CTL_RECEIVED,
  CTL_STATE,
  CTL_WORDS,
  RX_SALT,
  STATE_FAILED,
  STATE_RUNNING,
  TX_SALT,
  checkFrame,
  fillFrame,
  frameLength,
  sharedLayout,
} from '../support/shared-frames.js';
import type { SharedDriverData, SharedRingLayout } from '../support/shared-frames.js';

const FRAMES = Number(process.env.SHARED_MEMORY_FRAMES ?? 1_000_000);
const PACKED_FRAMES = Number(process.env.SHARED_MEMORY_PACKED_FRAMES ?? 200_000);
/** Longest wait for one notification on either side (a loaded CI machine can stall a thread for seconds). */
const WAIT_MS = 15_000;

/** `Atomics.waitAsync` (Node 16+; ES2024, later than this project's TypeScript lib setting). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeout: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync;

interface RunResult {
  frames: number;
  kicks: number;
  irqs: number;
  driverWaits: number;
  deviceWaits: number;
  ms: number;
}

/** Runs `frames` frames through a queue of `layout` with the driver in a worker; rejects on any failure. */
async function run(layout: SharedRingLayout, frames: number): Promise<RunResult> {
  const start = performance.now();
  const sab = new SharedArrayBuffer(layout.memorySize);
  const control = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(control);
  const memory = GuestMemory.fromRegions([{ guestAddress: 0, buffer: sab }]);
  const config = { size: layout.size, descTable: layout.descTable, availRing: layout.availRing, usedRing: layout.usedRing, ready: true };
  const features = { indirectDesc: false, eventIdx: layout.eventIdx };
  const q: Virtqueue | { code: string } =
    layout.ring === 'split' ? SplitQueue.activate(memory, config, features, 0) : PackedQueue.activate(memory, config, features, 0);
  if (!('pop' in q)) throw new Error(`activation failed: ${q.code}`);

  const data: SharedDriverData = { memory: sab, control, layout, frames, waitMs: WAIT_MS };
  // The driver is TypeScript, as the tests are: the worker registers tsx's loader itself (Node 20
  // does not apply the parent's `--import tsx` to a worker's entry point).
  const entry = new URL('../support/shared-memory-driver.ts', import.meta.url).href;
  const worker = new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`, { eval: true, workerData: data });
  let driverMessage: { ok: boolean; message?: string; kicks?: number; waits?: number } | null = null;
  let workerError: Error | null = null;
  const exited = new Promise<void>((resolve) => {
    worker.on('message', (m: typeof driverMessage) => (driverMessage = m));
    // Either ends the device's wait for a kick at once (Atomics.notify wakes waitAsync too).
    const wake = (): void => {
      Atomics.add(ctl, CTL_KICK, 1);
      Atomics.notify(ctl, CTL_KICK);
    };
    worker.on('error', (e: Error) => {
      workerError = e;
      wake();
    });
    worker.on('exit', () => {
      wake();
      resolve();
    });
  });
  const driverFailed = (): boolean => workerError !== null || Atomics.load(ctl, CTL_STATE) === STATE_FAILED;
  /** The driver's failure, once its message has arrived (it posts it, then exits). */
  const driverFailure = async (): Promise<Error> => {
    await Promise.race([exited, new Promise((r) => setTimeout(r, WAIT_MS))]);
    if (workerError !== null) return new Error(`driver worker threw: ${String(workerError)}`);
    return new Error(`driver: ${(driverMessage as { message?: string } | null)?.message ?? '(failed; no message within the wait)'}`);
  };

  const tx = new Uint8Array(layout.bufSize);
  const reply = new Uint8Array(layout.bufSize);
  let done = 0;
  let irqs = 0;
  let deviceWaits = 0;
  let sinceYield = 0;
  const publish = (): void => {
    if (q.publishUsed()) {
      irqs++;
      Atomics.add(ctl, CTL_IRQ, 1);
      Atomics.notify(ctl, CTL_IRQ);
    }
  };
  try {
    q.setNotifications(false);
    while (done < frames) {
      let batch = 0;
      for (;;) {
        const c = q.pop();
        if (c.kind === 'empty') break;
        if (c.kind === 'violation') throw new Error(`queue violation: ${JSON.stringify(c.error)}`);
        if (c.readableCount !== 1 || c.writableCount !== 1) throw new Error(`frame ${done}: chain of ${c.readableCount} readable and ${c.writableCount} writable buffers`);
        const len = c.readableLength;
        if (len > tx.length) throw new Error(`frame ${done}: ${len} readable bytes`);
        const got = c.reader().read(tx);
        const bad = checkFrame(tx, 0, got, done, TX_SALT);
        if (bad !== null) throw new Error(`device: ${bad}`);
        const rlen = frameLength(done, RX_SALT);
        fillFrame(reply, 0, done, rlen, RX_SALT);
        if (c.writer().write(reply.subarray(0, rlen)) !== rlen) throw new Error(`frame ${done}: reply did not fit`);
        q.pushUsed(c, rlen);
        done++;
        if (++batch === 32) {
          publish();
          batch = 0;
        }
      }
      publish();
      if (done === frames) break;
      if (driverFailed()) throw await driverFailure();
      if (++sinceYield === 256) {
        sinceYield = 0;
        await yieldToLoop(); // let the worker's messages in
      }
      // Nothing available: ask for a kick, look again (enableNotification), then wait for it.
      const kickSeen = Atomics.load(ctl, CTL_KICK);
      if (q.enableNotification()) {
        q.setNotifications(false);
        continue;
      }
      deviceWaits++;
      const w = waitAsync(ctl, CTL_KICK, kickSeen, WAIT_MS);
      const outcome = w.async ? await w.value : w.value;
      q.setNotifications(false);
      if (outcome === 'timed-out') {
        if (driverFailed()) throw await driverFailure();
        const n = q.available();
        throw new Error(
          typeof n === 'number' && n > 0
            ? `lost notification: ${n} chain(s) available, no kick in ${WAIT_MS} ms after the device asked for one (frame ${done} of ${frames})`
            : `the driver made no progress in ${WAIT_MS} ms (frame ${done} of ${frames}, driver took back ${Atomics.load(ctl, CTL_RECEIVED)})`,
        );
      }
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, WAIT_MS))]);
    if (driverFailed()) throw await driverFailure();
    const m = driverMessage as { ok: boolean; kicks?: number; waits?: number } | null;
    expect(m, 'the driver worker did not finish').to.not.equal(null);
    expect(m!.ok).to.equal(true);
    expect(Atomics.load(ctl, CTL_RECEIVED), 'frames the driver took back and checked').to.equal(frames);
    return { frames: done, kicks: m!.kicks ?? -1, irqs, driverWaits: m!.waits ?? -1, deviceWaits, ms: Math.round(performance.now() - start) };
  } finally {
    if (Atomics.load(ctl, CTL_STATE) === STATE_RUNNING) await worker.terminate();
    await exited;
  }
}

describe('virtqueue over SharedArrayBuffer guest memory, driver in a worker thread', function () {
  this.timeout(600_000);

  it(`split ring, EVENT_IDX: ${FRAMES} frames both ways intact, no lost notification`, async () => {
    const r = await run(sharedLayout('split', 256, true), FRAMES);
    expect(r.frames).to.equal(FRAMES);
    // Both sides slept and were woken: the notification paths were exercised, not bypassed.
    expect(r.driverWaits, 'driver sleeps').to.be.greaterThan(0);
    expect(r.irqs, 'used buffer notifications').to.be.greaterThan(0);
    console.log(`      split/event-idx: ${JSON.stringify(r)}`);
  });

  it('split ring, flags (no EVENT_IDX): frames both ways intact, no lost notification', async () => {
    const r = await run(sharedLayout('split', 256, false), PACKED_FRAMES);
    expect(r.frames).to.equal(PACKED_FRAMES);
    expect(r.irqs).to.be.greaterThan(0);
    console.log(`      split/flags: ${JSON.stringify(r)}`);
  });

  it('packed ring, EVENT_IDX: frames both ways intact, no lost notification', async () => {
    const r = await run(sharedLayout('packed', 256, true), PACKED_FRAMES);
    expect(r.frames).to.equal(PACKED_FRAMES);
    expect(r.irqs).to.be.greaterThan(0);
    console.log(`      packed/event-idx: ${JSON.stringify(r)}`);
  });

  it('packed ring, flags (no EVENT_IDX): frames both ways intact, no lost notification', async () => {
    const r = await run(sharedLayout('packed', 256, false), PACKED_FRAMES);
    expect(r.frames).to.equal(PACKED_FRAMES);
    expect(r.irqs).to.be.greaterThan(0);
    console.log(`      packed/flags: ${JSON.stringify(r)}`);
  });
});
