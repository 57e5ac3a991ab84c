// The receive filter's per-frame decision (VIRTIO 1.2 §5.1.6.5.1–§5.1.6.5.3; devices/virtio-net/
// rx-filter.ts `acceptFrame`) on a realistic frame mix, beside a straightforward linear-scan
// reference implemented here and measured in the same run; then the device datapath's heap
// allocation per frame (RX and TX through the real queues, 10^5 frames each).
//
// Filter state: promiscuous off (as Linux sets it at link up), a full 64-entry MAC table (16
// unicast + 48 multicast, QEMU's MAC_TABLE_ENTRIES), CTRL_VLAN negotiated with 8 VLANs. Frame mix
// (4096 frames, shuffled with a fixed seed) — what a guest behind a promiscuous host link sees:
//   30% unicast to the main MAC   25% unicast to other hosts (dropped)   5% unicast in the table
//   15% multicast in the table    10% multicast not in it (dropped)      5% broadcast
//   8% VLAN-tagged to the main MAC (half on a VLAN in the table)         2% runts
// The reference makes the same decisions in the same order with a linear scan of the MAC lists
// (6-byte compares) and of the VLAN id list; both are checked to agree on every frame first.
//
//   npx tsx bench/rx-filter.bench.ts            (or --quick for a smoke run)
// Goals (issue): >= 20 M decisions/s and >= 5x the linear scan.

import v8 from 'node:v8';
import vm from 'node:vm';
import os from 'node:os';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { RxFilterState, acceptFrame, RxVerdict } from '../devices/virtio-net/rx-filter.js';
import { parseMac } from '../devices/virtio-net/mac.js';
import { NetRig, ethFrame, le16 } from '../test/support/net-rig.js';
import type { GuestRing } from '../lib/driver/guest-ring.js';
import { MemoryNetdev } from '../lib/netdev/memory-netdev.js';
import { CtrlClass, CtrlRx, CtrlVlan } from '../devices/virtio-net/constants.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const QUICK = process.argv.includes('--quick');
const REPEATS = QUICK ? 3 : 9;
const TARGET_MS = QUICK ? 100 : 300;
const CORPUS = 4096;
const MAIN = '52:54:00:12:34:56';

// ---------------------------------------------------------------- corpus and state

let seed = 0x2545f491;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}
const hex = (n: number): string => Math.floor(n).toString(16).padStart(2, '0');
const uniTable = Array.from({ length: 16 }, (_, i) => `02:00:00:00:01:${hex(i)}`);
const multiTable = Array.from({ length: 48 }, (_, i) => `01:00:5e:00:${hex(i >> 4)}:${hex((i * 7) & 0xff)}`);
const vlans = [0, 10, 20, 30, 100, 200, 300, 4000];

function filterState(): RxFilterState {
  const s = new RxFilterState(parseMac(MAIN));
  s.setCtrlVlanNegotiated(true);
  s.promiscuous = false;
  for (const v of vlans) s.vlanAdd(v);
  const t = s.beginMacTable();
  for (const m of uniTable) t.addUnicast(parseMac(m), 0);
  for (const m of multiTable) t.addMulticast(parseMac(m), 0);
  s.commitMacTable();
  return s;
}

/** The corpus in one buffer (as a backend's read buffer would hold frames), with offsets and lengths. */
function corpus(): { buf: Uint8Array; off: Uint32Array; len: Uint32Array } {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < CORPUS; i++) {
    const r = rand() * 100;
    const payload = 46 + Math.floor(rand() * 100);
    if (r < 30) frames.push(ethFrame(MAIN, undefined, { payload }));
    else if (r < 55) frames.push(ethFrame(`52:54:00:${hex(rand() * 256)}:${hex(rand() * 256)}:${hex(rand() * 256)}`, undefined, { payload }));
    else if (r < 60) frames.push(ethFrame(uniTable[Math.floor(rand() * 16)]!, undefined, { payload }));
    else if (r < 75) frames.push(ethFrame(multiTable[Math.floor(rand() * 48)]!, undefined, { payload }));
    else if (r < 85) frames.push(ethFrame(`01:00:5e:7f:${hex(rand() * 256)}:${hex(rand() * 256)}`, undefined, { payload }));
    else if (r < 90) frames.push(ethFrame('ff:ff:ff:ff:ff:ff', undefined, { payload }));
    else if (r < 98) frames.push(ethFrame(MAIN, undefined, { payload, vlan: rand() < 0.5 ? vlans[Math.floor(rand() * 8)]! : 500 + Math.floor(rand() * 100) }));
    else frames.push(new Uint8Array(Math.floor(rand() * 14)).fill(0x52));
  }
  const total = frames.reduce((n, f) => n + f.length, 0);
  const buf = new Uint8Array(total);
  const off = new Uint32Array(CORPUS);
  const len = new Uint32Array(CORPUS);
  let at = 0;
  frames.forEach((f, i) => {
    buf.set(f, at);
    off[i] = at;
    len[i] = f.length;
    at += f.length;
  });
  return { buf, off, len };
}

// ---------------------------------------------------------------- the linear-scan reference

/** The same state as plain lists, scanned linearly: what a first implementation would do. */
class LinearFilter {
  promiscuous = false;
  allMulti = false;
  allUni = false;
  noMulti = false;
  noUni = false;
  noBcast = false;
  uniOverflow = false;
  multiOverflow = false;
  vlanNegotiated = true;
  readonly main: Uint8Array;
  readonly uni: Uint8Array[];
  readonly multi: Uint8Array[];
  readonly vlanIds: number[];
  constructor() {
    this.main = parseMac(MAIN);
    this.uni = uniTable.map((m) => parseMac(m));
    this.multi = multiTable.map((m) => parseMac(m));
    this.vlanIds = [...vlans];
  }
  decide(f: Uint8Array, o: number, n: number): number {
    if (this.promiscuous) return RxVerdict.ACCEPT;
    if (n < 14) return RxVerdict.DROP_RUNT;
    if (f[o + 12] === 0x81 && f[o + 13] === 0x00) {
      if (n < 18) return RxVerdict.DROP_RUNT;
      const vid = ((f[o + 14]! & 0x0f) << 8) | f[o + 15]!;
      if (this.vlanNegotiated && !this.vlanIds.includes(vid)) return RxVerdict.DROP_VLAN;
    }
    if ((f[o]! & 1) === 1) {
      if (isBroadcast(f, o)) return this.noBcast ? RxVerdict.DROP_BROADCAST : RxVerdict.ACCEPT;
      if (this.noMulti) return RxVerdict.DROP_MULTICAST;
      if (this.allMulti || this.multiOverflow) return RxVerdict.ACCEPT;
      for (const m of this.multi) if (same(m, f, o)) return RxVerdict.ACCEPT;
      return RxVerdict.DROP_MULTICAST;
    }
    if (this.noUni) return RxVerdict.DROP_UNICAST;
    if (this.allUni || this.uniOverflow) return RxVerdict.ACCEPT;
    if (same(this.main, f, o)) return RxVerdict.ACCEPT;
    for (const m of this.uni) if (same(m, f, o)) return RxVerdict.ACCEPT;
    return RxVerdict.DROP_UNICAST;
  }
}

function same(mac: Uint8Array, f: Uint8Array, o: number): boolean {
  for (let i = 0; i < 6; i++) if (mac[i] !== f[o + i]) return false;
  return true;
}

function isBroadcast(f: Uint8Array, o: number): boolean {
  for (let i = 0; i < 6; i++) if (f[o + i] !== 0xff) return false;
  return true;
}

// ---------------------------------------------------------------- timing helpers

let gcCount = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const flags = (e as unknown as { detail?: { flags?: number } }).detail?.flags ?? 0;
    if ((flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) === 0) gcCount++;
  }
}).observe({ entryTypes: ['gc'] });
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function timeRuns(run: (passes: number) => number, passes: number): number {
  const t0 = process.hrtime.bigint();
  const n = run(passes);
  return (n * 1e9) / Number(process.hrtime.bigint() - t0);
}

function calibrate(run: (passes: number) => number): number {
  let passes = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    run(passes);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > TARGET_MS / 5) return Math.max(1, Math.round((passes * TARGET_MS) / ms));
    passes *= 2;
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  return [line(rows[0]!), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------- part 1: decisions per second

function filterBench(): string {
  const { buf, off, len } = corpus();
  const state = filterState();
  const ref = new LinearFilter();
  const mix = new Uint32Array(8);
  for (let i = 0; i < CORPUS; i++) {
    const a = acceptFrame(state, buf, off[i]!, len[i]!);
    const b = ref.decide(buf, off[i]!, len[i]!);
    if (a !== b) throw new Error(`frame ${i}: acceptFrame says ${a}, the reference ${b}`);
    mix[a]!++;
  }
  let sink = 0;
  const fast = (passes: number): number => {
    for (let p = 0; p < passes; p++) for (let i = 0; i < CORPUS; i++) sink += acceptFrame(state, buf, off[i]!, len[i]!);
    return passes * CORPUS;
  };
  const linear = (passes: number): number => {
    for (let p = 0; p < passes; p++) for (let i = 0; i < CORPUS; i++) sink += ref.decide(buf, off[i]!, len[i]!);
    return passes * CORPUS;
  };
  const pf = calibrate(fast);
  const pl = calibrate(linear);
  const rf: number[] = [];
  const rl: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    // Interleaved, so both see the same machine load.
    rf.push(timeRuns(fast, pf) / 1e6);
    rl.push(timeRuns(linear, pl) / 1e6);
  }
  if (sink < 0) throw new Error('unreachable');
  const ratios = rf.map((f, i) => f / rl[i]!);
  const mf = median(rf);
  const ml = median(rl);
  const rows = [
    ['decision (64-entry table, 8 VLANs)', 'M decisions/s (median)', 'spread', 'ns/decision', 'goal'],
    ['acceptFrame (hash set)', mf.toFixed(1), `${Math.min(...rf).toFixed(1)}..${Math.max(...rf).toFixed(1)}`, (1e3 / mf).toFixed(1), mf >= 20 ? '>= 20 M/s: yes' : '>= 20 M/s: NO'],
    ['linear-scan reference', ml.toFixed(1), `${Math.min(...rl).toFixed(1)}..${Math.max(...rl).toFixed(1)}`, (1e3 / ml).toFixed(1), ''],
    ['ratio (per repeat)', median(ratios).toFixed(2) + 'x', `${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}x`, '', median(ratios) >= 5 ? '>= 5x: yes' : '>= 5x: NO'],
  ];
  const names = ['accept', 'vlan', 'unicast', 'multicast', 'broadcast', 'runt'];
  const verdicts = names.map((n, i) => `${n} ${((mix[i]! / CORPUS) * 100).toFixed(0)}%`).join(', ');
  return `${table(rows)}\nverdict mix: ${verdicts}`;
}

// ---------------------------------------------------------------- part 2: datapath allocation

const FRAMES = 99_840; // 10^5 rounded down to whole chunks
/** Frames per measured chunk (a multiple of the batch sizes below). */
const CHUNK = 640;

/** Writes avail entries for `heads` and the new idx, as a driver re-offering buffers does. */
function reoffer(ring: GuestRing, view: DataView, heads: Uint16Array, state: { idx: number }): void {
  const mask = ring.size - 1;
  for (let i = 0; i < heads.length; i++) view.setUint16(4 + 2 * ((state.idx + i) & mask), heads[i]!, true);
  state.idx = (state.idx + heads.length) & 0xffff;
  view.setUint16(2, state.idx, true);
}

function dv(rig: NetRig, addr: number, len: number): DataView {
  const u = rig.memory.view(addr, len)!;
  return new DataView(u.buffer, u.byteOffset, u.byteLength);
}

interface PathCase {
  name: string;
  /** Runs `n` frames through the path; returns frames the guest got / the backend got. */
  make(): (n: number) => number;
}

const BATCH = 128; // below TX_BURST, so a batch completes within one notification

function rxCase(name: string, opts: { mrg: boolean; bufLen: number; dropped: boolean; frameLen: number }): PathCase {
  return {
    name,
    make() {
      const netdev = new MemoryNetdev({ id: 'm' });
      const rig = new NetRig({ ringSize: 256, ringSpacing: 0x100000, memorySize: 8 << 20, mac: MAIN, netdev, recordTransmitted: false, features: { disable: opts.mrg ? [] : ['MRG_RXBUF'] } });
      rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0]);
      rig.cmd(CtrlClass.VLAN, CtrlVlan.ADD, le16(0));
      const heads = new Uint16Array(BATCH * 2);
      for (let i = 0; i < heads.length; i++) heads[i] = rig.rx.addChain([{ len: opts.bufLen, write: true }], { publish: false });
      const view = dv(rig, rig.rx.availRing, 6 + 2 * 256);
      const st = { idx: 0 };
      const frame = ethFrame(opts.dropped ? '52:54:00:99:99:99' : MAIN, undefined, { payload: opts.frameLen - 14 });
      const perFrame = opts.mrg && opts.bufLen < opts.frameLen + 12 ? 2 : 1;
      const slice = heads.subarray(0, BATCH * perFrame);
      let first = true;
      return (n: number): number => {
        const before = rig.device.stats().rx.frames;
        for (let done = 0; done < n; done += BATCH) {
          if (!opts.dropped || first) reoffer(rig.rx, view, slice, st);
          first = false;
          for (let i = 0; i < BATCH; i++) netdev.inject(frame);
        }
        return opts.dropped ? n : rig.device.stats().rx.frames - before;
      };
    },
  };
}

function txCase(name: string, split: 'one' | 'three'): PathCase {
  return {
    name,
    make() {
      const netdev = new MemoryNetdev({ id: 'm' });
      const rig = new NetRig({ ringSize: 256, ringSpacing: 0x100000, memorySize: 8 << 20, mac: MAIN, netdev, recordTransmitted: false });
      const frame = ethFrame('ff:ff:ff:ff:ff:ff', undefined, { payload: 1000 });
      const whole = new Uint8Array(12 + frame.length);
      whole.set(frame, 12);
      const batch = 64; // 3 descriptors each fit a 256-entry table
      const heads = new Uint16Array(batch);
      for (let i = 0; i < batch; i++) {
        const parts = split === 'one' ? [{ len: whole.length, data: whole }] : [0, 400, 800].map((a, k) => ({ len: k === 2 ? whole.length - 800 : 400, data: whole.subarray(a, k === 2 ? whole.length : a + 400) }));
        heads[i] = rig.tx.addChain(parts, { publish: false });
      }
      const view = dv(rig, rig.tx.availRing, 6 + 2 * 256);
      const st = { idx: 0 };
      const transport = rig.transport as unknown as { write(o: number, w: 4, v: number): void };
      return (n: number): number => {
        const before = netdev.stats().transmitted;
        for (let done = 0; done < n; done += batch) {
          reoffer(rig.tx, view, heads, st);
          transport.write(0x050, 4, 1);
        }
        return netdev.stats().transmitted - before;
      };
    },
  };
}

function newSpaceUsed(): number {
  for (const sp of v8.getHeapSpaceStatistics()) if (sp.space_name === 'new_space') return sp.space_used_size;
  throw new Error('no new_space in v8.getHeapSpaceStatistics()');
}

async function allocationBench(): Promise<string> {
  const cases: PathCase[] = [
    rxCase('rx: 1000-byte frame, one 1526-byte buffer (MRG_RXBUF)', { mrg: true, bufLen: 1526, dropped: false, frameLen: 1000 }),
    rxCase('rx: 1000-byte frame, one buffer (no MRG_RXBUF)', { mrg: false, bufLen: 1526, dropped: false, frameLen: 1000 }),
    rxCase('rx: 1000-byte frame over 2 buffers of 600 (MRG_RXBUF)', { mrg: true, bufLen: 600, dropped: false, frameLen: 1000 }),
    rxCase('rx: frame dropped by the filter', { mrg: true, bufLen: 1526, dropped: true, frameLen: 1000 }),
    txCase('tx: header + frame in one descriptor (view)', 'one'),
    txCase('tx: frame over 3 descriptors (gathered)', 'three'),
  ];
  const rows: string[][] = [['path (10^5 frames, mmio)', 'heap B/frame', 'GCs', 'M frames/s']];
  for (const c of cases) {
    const run = c.make();
    run(FRAMES); // warm up
    // Chunks small enough that no scavenge runs inside one, with a forced GC between them: the sum
    // of the young generation's growth is what the frames allocated (short-lived objects are born
    // there; code and feedback the JIT makes are not, so they do not blur it). GCs counts any
    // scavenge inside a chunk (it would hide allocation); it should be 0.
    let bytes = 0;
    let ns = 0;
    let got = 0;
    let gcs = 0;
    for (let done = 0; done < FRAMES; done += CHUNK) {
      gc();
      await settle();
      const g0 = gcCount;
      const h0 = newSpaceUsed();
      const t0 = process.hrtime.bigint();
      got += run(CHUNK);
      ns += Number(process.hrtime.bigint() - t0);
      bytes += Math.max(0, newSpaceUsed() - h0);
      await settle();
      gcs += gcCount - g0;
    }
    if (got < FRAMES) throw new Error(`${c.name}: only ${got} of ${FRAMES} frames went through`);
    rows.push([c.name, (bytes / FRAMES).toFixed(1), String(gcs), ((FRAMES * 1e9) / ns / 1e6).toFixed(2)]);
  }
  return table(rows);
}

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, load ${os.loadavg()[0]!.toFixed(1)}, ${new Date().toISOString().slice(0, 10)}, ${REPEATS} repeats`);
console.log(filterBench());
console.log();
console.log(await allocationBench());
