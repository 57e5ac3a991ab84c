// Notification coalescing (VIRTIO 1.3 §5.1.6.5.9, devices/virtio-net/coalescing.ts): used-buffer
// interrupts per frame with and without coalescing, for the same traffic, and what the coalescer
// costs per frame. Interrupt counts are counts, not timings: the traffic is paced on sinon's fake
// clock (bursts of `burst` frames every millisecond), so they are exact and repeatable. The cost is
// timed on the real clock: receive frames/s with coalescing off and on (RX_SET 64 packets, 1 ms),
// same rig, same run.
//
//   npx tsx bench/coalescing.bench.ts [--quick]

import sinon from 'sinon';
import { performance } from 'node:perf_hooks';
import { NetRig, ethFrame } from '../test/support/net-rig.js';
import { CtrlClass, CtrlNotfCoal } from '../devices/virtio-net/constants.js';

const MAIN = '52:54:00:12:34:56';
const quick = process.argv.includes('--quick');

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

interface Case {
  name: string;
  dir: 'rx' | 'tx';
  /** [max_packets, max_usecs], or null: no coalescing command. */
  coal: [number, number] | null;
  burst: number;
  eventIdx: boolean;
}

const CASES: Case[] = [
  { name: 'rx, no coalescing', dir: 'rx', coal: null, burst: 8, eventIdx: false },
  { name: 'rx, EVENT_IDX, used_event kept at the next entry', dir: 'rx', coal: null, burst: 8, eventIdx: true },
  { name: 'rx, 16 packets / 1000 us', dir: 'rx', coal: [16, 1000], burst: 8, eventIdx: false },
  { name: 'rx, 64 packets / 50 us (ethtool -C rx-usecs 50)', dir: 'rx', coal: [64, 50], burst: 8, eventIdx: false },
  { name: 'rx, 64 packets / 50 us', dir: 'rx', coal: [64, 50], burst: 32, eventIdx: false },
  { name: 'tx, no coalescing', dir: 'tx', coal: null, burst: 8, eventIdx: false },
  { name: 'tx, 32 packets / 100 us', dir: 'tx', coal: [32, 100], burst: 8, eventIdx: false },
];

function interruptsPerFrame(c: Case, frames: number): number {
  const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  try {
    const rig = new NetRig({ mac: MAIN, recordTransmitted: false, ringSize: 256, ...(c.eventIdx ? {} : { features: { disable: ['EVENT_IDX'] } }) });
    if (c.coal !== null) {
      const cmd = c.dir === 'rx' ? CtrlNotfCoal.RX_SET : CtrlNotfCoal.TX_SET;
      if (rig.cmd(CtrlClass.NOTF_COAL, cmd, [...le32(c.coal[0]), ...le32(c.coal[1])]) !== 0) throw new Error(`${c.name}: command refused`);
    }
    const q = c.dir === 'rx' ? 0 : 1;
    const before = rig.device.stats().queues[q]!.interrupts;
    const frame = ethFrame(MAIN, '52:54:00:aa:bb:cc', { payload: 1000 });
    let sent = 0;
    while (sent < frames) {
      if (c.dir === 'rx') {
        rig.postRx(c.burst);
        // The driver (NAPI-like) keeps used_event at the next entry it has not seen.
        if (c.eventIdx) rig.rx.setUsedEvent(rig.rx.usedIdx());
        for (let i = 0; i < c.burst; i++) rig.inject(frame);
        rig.received();
      } else {
        for (let i = 0; i < c.burst; i++) rig.send(frame);
      }
      sent += c.burst;
      clock.tick(1);
    }
    clock.tick(1000);
    return (rig.device.stats().queues[q]!.interrupts - before) / sent;
  } finally {
    clock.restore();
  }
}

/** Receive frames/s over the real clock, coalescing off or on. */
function rxRate(coal: boolean, frames: number): number {
  const rig = new NetRig({ mac: MAIN, recordTransmitted: false, ringSize: 256, features: { disable: ['EVENT_IDX'] } });
  if (coal && rig.cmd(CtrlClass.NOTF_COAL, CtrlNotfCoal.RX_SET, [...le32(64), ...le32(1000)]) !== 0) throw new Error('RX_SET refused');
  const frame = ethFrame(MAIN, '52:54:00:aa:bb:cc', { payload: 1000 });
  const batch = 128;
  const t0 = performance.now();
  for (let done = 0; done < frames; done += batch) {
    rig.postRx(batch);
    for (let i = 0; i < batch; i++) rig.inject(frame);
    rig.received();
  }
  return frames / ((performance.now() - t0) / 1000);
}

const frames = quick ? 512 : 8192;
console.log('| traffic (bursts every 1 ms) | interrupts / frame |');
console.log('| --- | --- |');
for (const c of CASES) console.log(`| ${c.name}, bursts of ${c.burst} | ${interruptsPerFrame(c, frames).toFixed(3)} |`);
const n = quick ? 4096 : 65536;
const rounds = quick ? 1 : 5;
let off = 0;
let on = 0;
for (let r = 0; r < rounds; r++) {
  off = Math.max(off, rxRate(false, n));
  on = Math.max(on, rxRate(true, n));
}
console.log('');
console.log('| receive path (1014-byte frames, best of ' + String(rounds) + ') | frames/s |');
console.log('| --- | --- |');
console.log(`| coalescing off | ${Math.round(off)} |`);
console.log(`| RX_SET 64 packets / 1 ms | ${Math.round(on)} (${(on / off).toFixed(2)}x) |`);
