// Receive steering cost (VIRTIO 1.2 §5.1.6.5.7 RSS, §5.1.6.4.3 hash calculation): 1500-byte
// TCP/IPv4 frames of 64 flows through a device with RSS configured (RSS_CONFIG with TCPv4 | UDPv4
// | IPv4, Microsoft's 40-byte key, a 128-entry table) — each frame is parsed, Toeplitz-hashed over
// its 4-tuple and looked up in the indirection table before it is written — against the same frames
// through a device without RSS (the single-queue path, receiveq1 directly), both measured in the
// same run, alternating. One queue pair on both (the table points at receiveq1), so the buffers,
// copies and interrupts are the same and the difference is the steering.
//
//   npx tsx bench/rx-rss.bench.ts [--quick]

import type { Benchmark, BenchContext } from './lib/bench.js';
import { isMain, runStandalone } from './lib/bench.js';
import { NetLoop } from './lib/net-loop.js';
import { BENCH_MAC, PEER_MAC, macBytes, prng } from './lib/corpus.js';
import { measurePair } from './lib/timing.js';
import type { Work } from './lib/timing.js';
import type { BenchResult } from './lib/result.js';
import { fromPair } from './lib/result.js';
import type { MemoryNetdev } from '../lib/netdev/memory-netdev.js';
import { CtrlAck, CtrlClass, CtrlMq } from '../devices/virtio-net/constants.js';
import { HashType } from '../devices/virtio-net/rss-hash.js';
import { DEFAULT_RSS_KEY } from '../devices/virtio-net/steering.js';

const FRAME_BYTES = 1500;
const BUFFER_BYTES = 1536;
const FLOWS = 64;

/** `FLOWS` TCP/IPv4 frames of `length` bytes, each its own flow (source address and port), seeded payload. */
function tcpCorpus(length: number): Uint8Array[] {
  const next = prng(0x5eed);
  return Array.from({ length: FLOWS }, (_, i) => {
    const f = new Uint8Array(length);
    const ipLen = length - 14;
    f.set([...macBytes(BENCH_MAC), ...macBytes(PEER_MAC), 0x08, 0x00]);
    f.set([0x45, 0, ipLen >> 8, ipLen & 0xff, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 1, i >> 8, i & 0xff, 10, 0, 2, 15], 14);
    const sport = 30000 + 37 * i;
    f.set([sport >> 8, sport & 0xff, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0], 34);
    for (let k = 54; k < length; k++) f[k] = next() & 0xff;
    return f;
  });
}

function rssConfig(): number[] {
  const types = HashType.TCPv4 | HashType.UDPv4 | HashType.IPv4;
  const table = new Array<number>(128).fill(0);
  return [types & 0xff, types >> 8, 0, 0, 127, 0, 0, 0, ...table.flatMap((q) => [q & 0xff, q >> 8]), 1, 0, DEFAULT_RSS_KEY.length, ...DEFAULT_RSS_KEY];
}

/** A started device with every receive buffer posted; `work` delivers n frames in whole batches. */
function rig(name: string, rss: boolean, frames: readonly Uint8Array[]): { loop: NetLoop; work: Work } {
  const loop = new NetLoop({ eventIdx: true, mrgRxbuf: false, enable: rss ? ['RSS'] : [] });
  const netdev = loop.netdev as MemoryNetdev;
  const views = loop.prepareRx(BUFFER_BYTES);
  loop.start();
  if (rss && loop.command(CtrlClass.MQ, CtrlMq.RSS_CONFIG, rssConfig()) !== CtrlAck.OK) throw new Error(`${name}: RSS_CONFIG was refused`);
  const batch = views.length;
  let next = 0;
  const work: Work = (n) => {
    let done = 0;
    while (done < n) {
      for (let i = 0; i < batch; i++) {
        netdev.inject(frames[next]!);
        next = (next + 1) % frames.length;
      }
      const got = loop.rxRecycle();
      if (got !== batch) throw new Error(`${name}: the device used ${got} of ${batch} receive buffers`);
      done += batch;
    }
    return done;
  };
  return { loop, work };
}

/** The RSS device (work) and the plain one (baseline) on the same corpus: what alloc.bench.ts measures too. */
export function rssRig(): { loop: NetLoop; work: Work; baseline: Work; plain: NetLoop } {
  const frames = tcpCorpus(FRAME_BYTES);
  const withRss = rig('rx-rss-1500', true, frames);
  const plain = rig('rx-rss-1500 baseline', false, frames);
  return { loop: withRss.loop, work: withRss.work, baseline: plain.work, plain: plain.loop };
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  ctx.step(`rx-rss-1500 (${FRAME_BYTES} B TCP frames, ${FLOWS} flows, RSS steering vs the single-queue path)`);
  const r = rssRig();
  const withRss = { loop: r.loop, work: r.work };
  const plain = { loop: r.plain, work: r.baseline };
  const p = measurePair(withRss.work, plain.work, ctx.timing);
  const s = withRss.loop.device.stats();
  const out = [
    fromPair('rx-rss-1500', 'pps', p, 'the same frames without RSS (single-queue path) in the same run', {
      frameBytes: FRAME_BYTES,
      bufferBytes: BUFFER_BYTES,
      flows: FLOWS,
      frames: s.rx.frames,
      interruptsPerFrame: withRss.loop.interrupts / Math.max(1, s.rx.frames),
    }),
  ];
  await withRss.loop.netdev.close();
  await plain.loop.netdev.close();
  return out;
}

export const rxRss: Benchmark = {
  name: 'rx-rss',
  required: ['rx-rss-1500'],
  cases: () => 1,
  run,
};

if (isMain(import.meta.url)) await runStandalone(rxRss);
