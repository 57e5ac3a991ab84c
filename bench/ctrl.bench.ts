// Control commands per second through the real control queue (VIRTIO 1.2 §5.1.6.5): a
// VirtioNetDevice on a MemoryNetdev behind the virtio-mmio transport, driven the way Linux drives
// it — each command is a chain of three descriptors (class+command, data, ack byte), offered alone
// and announced with one QueueNotify register write, the device parses, applies, acks and
// publishes, the driver reads used.idx. The loop re-offers prebuilt chains, so the driver side
// allocates nothing. Cases: Linux's rx-mode burst at link up (PROMISC 0, ALLMULTI 0, TABLE_SET with
// 0 unicast + 2 multicast), each of its commands alone, and a full-table TABLE_SET (16 + 48).
// Each case runs REPEATS times; the table gives the median, the min..max spread, and the bytes
// each command allocates (young-generation growth over 20 x 1000 commands, see allocation()).
//
//   npx tsx bench/ctrl.bench.ts            (or --quick for a smoke run)
// Goal (issue): >= 500k commands/s.

import v8 from 'node:v8';
import vm from 'node:vm';
import os from 'node:os';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { NetRig, le16, macTable } from '../test/support/net-rig.js';
import { CtrlClass, CtrlMac, CtrlRx, CtrlVlan } from '../devices/virtio-net/constants.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const QUICK = process.argv.includes('--quick');
const TARGET_MS = QUICK ? 100 : 300;
const REPEATS = QUICK ? 3 : 9;
const RING = 256;
const MMIO_QUEUE_NOTIFY = 0x050;
const MMIO_INTERRUPT_STATUS = 0x060;
const MMIO_INTERRUPT_ACK = 0x064;

const multicast = (n: number): string[] => Array.from({ length: n }, (_, i) => `01:00:5e:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`);
const unicast = (n: number): string[] => Array.from({ length: n }, (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`);

interface Case {
  name: string;
  /** The goal applies to this case: >= 500k commands/s. */
  goal?: boolean;
  /** Commands as [class, command, payload]; the loop cycles through them. */
  commands: [number, number, Uint8Array][];
}

const cases: Case[] = [
  {
    name: 'Linux link-up burst (PROMISC, ALLMULTI, TABLE_SET 0+2)',
    goal: true,
    commands: [
      [CtrlClass.RX, CtrlRx.PROMISC, Uint8Array.of(0)],
      [CtrlClass.RX, CtrlRx.ALLMULTI, Uint8Array.of(0)],
      [CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], ['01:00:5e:00:00:01', '33:33:00:00:00:01'])],
    ],
  },
  { name: 'RX PROMISC alone', commands: [[CtrlClass.RX, CtrlRx.PROMISC, Uint8Array.of(0)]] },
  { name: 'MAC TABLE_SET 0+2 alone', commands: [[CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], ['01:00:5e:00:00:01', '33:33:00:00:00:01'])]] },
  { name: 'MAC TABLE_SET 16+48 (full table)', commands: [[CtrlClass.MAC, CtrlMac.TABLE_SET, macTable(unicast(16), multicast(48))]] },
  { name: 'VLAN ADD', commands: [[CtrlClass.VLAN, CtrlVlan.ADD, Uint8Array.from(le16(100))]] },
];

interface Bench {
  /** Runs `n` commands; returns how many were acked OK. */
  run(n: number): number;
}

function setup(c: Case): Bench {
  const rig = new NetRig({ transport: 'mmio', ringSize: RING, mac: '52:54:00:12:34:56' });
  if (rig.init === null || !rig.init.ok) throw new Error('device did not initialise');
  const ring = rig.ctrl;
  const memory = rig.memory;
  // Prebuilt chains, one per ring slot's worth of descriptors, cycling through the case's commands.
  const chains = Math.floor(RING / 3);
  const heads: number[] = [];
  const ackAddr: number[] = [];
  for (let i = 0; i < chains; i++) {
    const [cls, cmd, payload] = c.commands[i % c.commands.length]!;
    const head = ring.addChain([{ len: 2, data: [cls, cmd] }, { len: payload.length, data: payload }, { len: 1, write: true }], { publish: false });
    heads.push(head);
    ackAddr.push(ring.buffers(head)[2]!.addr);
  }
  // From here on the loop writes the avail ring itself (the heads above are placed, never published).
  const availView = memory.view(ring.availRing, 6 + 2 * RING)!;
  const avail = new DataView(availView.buffer, availView.byteOffset, availView.byteLength);
  const usedView = memory.view(ring.usedRing, 6 + 8 * RING)!;
  const used = new DataView(usedView.buffer, usedView.byteOffset, usedView.byteLength);
  const headList = Uint16Array.from(heads);
  const acks = Float64Array.from(ackAddr);
  const transport = rig.transport as unknown as { read(o: number, w: 4): number; write(o: number, w: 4, v: number): void };
  const ctrlIndex = rig.ctrlIndex;
  let availIdx = ring.availIdx;
  let k = 0;
  return {
    run(n: number): number {
      let ok = 0;
      for (let i = 0; i < n; i++) {
        // Driver (virtnet_send_command): offer one chain, kick, wait for it to be used.
        avail.setUint16(4 + 2 * (availIdx & (RING - 1)), headList[k]!, true);
        availIdx = (availIdx + 1) & 0xffff;
        avail.setUint16(2, availIdx, true);
        transport.write(MMIO_QUEUE_NOTIFY, 4, ctrlIndex);
        if (used.getUint16(2, true) !== availIdx) throw new Error('command not completed synchronously');
        if (memory.readU8(acks[k]!) === 0) ok++;
        const isr = transport.read(MMIO_INTERRUPT_STATUS, 4);
        if (isr !== 0) transport.write(MMIO_INTERRUPT_ACK, 4, isr);
        k = k + 1 === headList.length ? 0 : k + 1;
      }
      return ok;
    },
  };
}

let gcCount = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const flags = (e as unknown as { detail?: { flags?: number } }).detail?.flags ?? 0;
    if ((flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) === 0) gcCount++;
  }
}).observe({ entryTypes: ['gc'] });
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

const ALLOC_CHUNK = 1000;
const ALLOC_CHUNKS = 20;

function newSpaceUsed(): number {
  for (const sp of v8.getHeapSpaceStatistics()) if (sp.space_name === 'new_space') return sp.space_used_size;
  throw new Error('no new_space in v8.getHeapSpaceStatistics()');
}

/** Timed run of `n` commands. */
function sample(b: Bench, n: number): number {
  const t0 = process.hrtime.bigint();
  const ok = b.run(n);
  const ns = Number(process.hrtime.bigint() - t0);
  if (ok !== n) throw new Error(`${n - ok} commands were not acked OK`);
  return (n * 1e9) / ns;
}

/**
 * Bytes allocated per command: young-generation growth over chunks small enough that no scavenge
 * runs inside one, a forced GC before each (code the JIT makes is not in the young generation, so
 * it does not blur the figure). `gcs` counts scavenges inside chunks: it should be 0.
 */
async function allocation(b: Bench): Promise<{ bytesPer: number; gcs: number }> {
  let bytes = 0;
  let gcs = 0;
  for (let i = 0; i < ALLOC_CHUNKS; i++) {
    gc();
    await settle();
    const g0 = gcCount;
    const h0 = newSpaceUsed();
    b.run(ALLOC_CHUNK);
    bytes += Math.max(0, newSpaceUsed() - h0);
    await settle();
    gcs += gcCount - g0;
  }
  return { bytesPer: bytes / (ALLOC_CHUNKS * ALLOC_CHUNK), gcs };
}

function calibrate(b: Bench): number {
  let n = 1000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    b.run(n);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > TARGET_MS / 5) return Math.max(1000, Math.round((n * TARGET_MS) / ms));
    n *= 2;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  const benches = cases.map(setup);
  // Warm every case first, so the first one measured does not pay for the JIT's later deopts.
  const sizes = benches.map(calibrate);
  benches.forEach((b, i) => b.run(sizes[i]!)); // one more untimed pass each, after every case is compiled
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]!;
    const b = benches[i]!;
    const n = sizes[i]!;
    const rates: number[] = [];
    for (let r = 0; r < REPEATS; r++) rates.push(sample(b, n) / 1e3);
    const med = median(rates);
    const alloc = await allocation(b);
    rows.push([
      c.name,
      med.toFixed(0),
      `${Math.min(...rates).toFixed(0)}..${Math.max(...rates).toFixed(0)}`,
      (1e6 / med).toFixed(0),
      alloc.bytesPer.toFixed(1),
      String(alloc.gcs),
      c.goal === true ? (med >= 500 ? 'yes' : 'NO') : '',
    ]);
  }
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, load ${os.loadavg()[0]!.toFixed(1)}, ${new Date().toISOString().slice(0, 10)}, ${REPEATS} repeats`);
  console.log(table([['case (mmio, one notify per command)', 'k cmd/s (median)', 'spread', 'ns/cmd', 'heap B/cmd', 'GCs', 'goal >= 500k'], ...rows]));
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  return [line(rows[0]!), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}

await main();
