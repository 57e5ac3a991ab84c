// Guest throughput (issue 19; VIRTIO 1.2 §5.1.6 the datapath as a real Linux driver drives it):
// iperf3 between the Linux guest in v86 and iperf3 on the host, with this project's device and,
// as the baseline in the same run, v86's own virtio-net (lib/hypervisors/v86-builtin-nic.ts), both
// on a TapNetdev in the same throwaway network namespace. Root only; only on request
// (`npm run bench -- --only guest`: two guest boots, 4–12 min), never in `npm test`.
//
// Data flow (one netns, two TAPs, one guest per NIC, both alive for the whole run):
//   model:   guest 10.0.3.15 ─ VirtioNetDevice ─ TapNetdev (vnet header, offloads) ─ 10.0.3.1 host
//   builtin: guest 10.0.4.15 ─ v86's VirtioNet ─ V86BuiltinNic ─ TapNetdev (bare frames) ─ 10.0.4.1
// Each row alternates the NICs (model, builtin; then builtin, model), so load drift hits both alike:
//   guest-tcp-tx   guest `iperf3 -c -Z` (sendfile) → host `iperf3 -s -1 -J` (the receiver's count)
//   guest-tcp-rx   host `iperf3 -c -J` → guest `iperf3 -s -1 -D` (the guest's count, sent back)
//   guest-udp-rr   host python3: one UDP datagram to a closed guest port, wait for the guest
//                  kernel's ICMP port-unreachable, repeat (the guest has no UDP echo program:
//                  busybox nc has no -u): one frame each way per transaction
//   -no-offload    the same with the device offloads off in the guest: tx `ethtool -K eth0 tx off
//                  sg off tso off`, rx `rx-gro-hw off` (GUEST_OFFLOADS_SET: no GSO frames in);
//                  on v86's NIC those are fixed off already, so its runs are the same config
// One unmeasured warm-up run per row and NIC comes first (v86 compiles hot guest code late).
// Beside each rate (detail, per NIC): guest instructions per byte over the steady middle of the
// transfer (v86's instruction counter and the TAP's byte count read every 200 ms, guest-measure.ts
// steadyWindow), guest interrupts per MB (/proc/interrupts, virtio lines), frames per MB at the
// TAP, the guest's busy share (/proc/stat), host CPU per MB; for the device also its per-queue
// interrupts and driver kicks. bench/README.md has the numbers and what limits them.
//
//   npx tsx bench/guest.bench.ts [--quick]      (as root; XDG_CACHE_HOME for the guest image)

import { spawn } from 'node:child_process';
import type { Benchmark, BenchContext } from './lib/bench.js';
import { isMain, runStandalone } from './lib/bench.js';
import type { BenchResult } from './lib/result.js';
import { fromSamples, skipped } from './lib/result.js';
import { ratio, summarize } from './lib/stats.js';
import { WrappingCounter, cpuJiffies, parseIperfJson, parseRrLine, steadyWindow, virtioInterrupts } from './guest-measure.js';
import type { TransferSample } from './guest-measure.js';
import { Netns, hostSkipReason, linkName, trackLink } from '../test/support/netns.js';
import { onPath } from '../scripts/host-requirements.js';
import type { GuestNic, GuestVm } from '../lib/cli/guest-vm.js';
import type { TapNetdev } from '../lib/netdev/tap-netdev.js';

const IPERF3 = 'iperf3';
const BASELINE_IS = "v86's own virtio-net, same guest and TAP";
const NICS: readonly GuestNic[] = ['model', 'builtin'];
const SUBNET: Record<GuestNic, number> = { model: 3, builtin: 4 };
const PORT = 5201;
const RR_PORT = 9; // discard: closed in the guest
const RR_BYTES = 64;
/** How often a transfer's instruction count and TAP bytes are read (steadyWindow). */
const SAMPLE_MS = 200;

interface Sizes {
  seconds: number;
  repeats: number;
  /** The unmeasured warm-up run per row and NIC. */
  warmSeconds: number;
}
const QUICK_SIZES: Sizes = { seconds: 3, repeats: 1, warmSeconds: 2 };
const FULL_SIZES: Sizes = { seconds: 8, repeats: 2, warmSeconds: 5 };

type Kind = 'tx' | 'rx' | 'rr';
interface Row {
  name: string;
  kind: Kind;
  /** Guest commands before the row (offloads off) and after it (back on). */
  before: string[];
  after: string[];
}
const TX_OFF = ['tx', 'sg', 'tso'];
const RX_OFF = ['rx-gro-hw'];
const ethtool = (features: readonly string[], state: 'on' | 'off') => features.map((f) => `ethtool -K eth0 ${f} ${state} 2>/dev/null; true`);
const ROWS: readonly Row[] = [
  { name: 'guest-tcp-tx', kind: 'tx', before: [], after: [] },
  { name: 'guest-tcp-rx', kind: 'rx', before: [], after: [] },
  { name: 'guest-udp-rr', kind: 'rr', before: [], after: [] },
  { name: 'guest-tcp-tx-no-offload', kind: 'tx', before: ethtool(TX_OFF, 'off'), after: ethtool(TX_OFF, 'on') },
  { name: 'guest-tcp-rx-no-offload', kind: 'rx', before: ethtool(RX_OFF, 'off'), after: ethtool(RX_OFF, 'on') },
];
export const GUEST_ROWS = ROWS.map((r) => r.name);

/** Host side of the UDP request/response: closed-port datagrams, each answered by ICMP. */
const RR_CLIENT = [
  'import socket,sys,time',
  's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.connect((sys.argv[1],int(sys.argv[2]))); s.settimeout(1.0)',
  'msg=b"x"*int(sys.argv[4]); n=0; lost=0; t0=time.monotonic(); end=t0+float(sys.argv[3])',
  'while time.monotonic()<end:',
  '  s.send(msg)',
  '  try: s.recv(2048)',
  '  except ConnectionRefusedError: n+=1',
  '  except socket.timeout: lost+=1',
  'print("rr %d %.6f %d" % (n, time.monotonic()-t0, lost))',
].join('\n');

interface Side {
  nic: GuestNic;
  vm: GuestVm;
  tap: TapNetdev;
  hostIp: string;
  guestIp: string;
  instructions: WrappingCounter;
}

interface Env {
  ns: Netns;
  sides: Side[];
  sampler: ReturnType<typeof setInterval>;
}

/** One measured run of one NIC. */
interface Run {
  /** bit/s (tx, rx) or transactions/s (rr). */
  rate: number;
  /** Bytes (tx, rx) or transactions (rr) the rate counts. */
  units: number;
  seconds: number;
  hostCpuS: number;
  instructions: number;
  interrupts: number;
  frames: number;
  busy: number;
  retransmits: number | null;
  held: number;
  /** The middle 80% of the transfer's bytes (guest-measure.ts steadyWindow); null for rr. */
  steady: ReturnType<typeof steadyWindow>;
  /** The device's per-queue interrupts and kicks (zero for v86's NIC, which counts none). */
  queues: ReturnType<typeof queueCounters>;
}

interface Child {
  kill(): void;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Asynchronous: v86 runs on this event loop, a synchronous child would stop the guest. */
function start(cmd: string, args: readonly string[], timeoutMs: number): Child {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { kill: () => p.kill(), done };
}

async function guest(side: Side, command: string, timeoutMs = 120_000): Promise<string> {
  const r = await side.vm.run(command, timeoutMs);
  if (r.exitCode !== 0) throw new Error(`${side.nic} guest: \`${command}\` exited ${r.exitCode}: ${r.output.trim().slice(-300)}`);
  return r.output;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function setup(ctx: BenchContext): Promise<Env> {
  const { buildGuestImage } = await import('../lib/cli/guest-image.js');
  const { GuestVm } = await import('../lib/cli/guest-vm.js');
  const { TapNetdev } = await import('../lib/netdev/tap-netdev.js');
  const image = buildGuestImage({});
  const ns = new Netns();
  const taps: TapNetdev[] = [];
  const vms: GuestVm[] = [];
  try {
    ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    for (const nic of NICS) {
      const tap = new TapNetdev({ id: `bench-${nic}`, ifname: linkName(nic === 'model' ? 'm' : 'n'), vnetHdr: nic === 'model' });
      trackLink(tap.ifname);
      taps.push(tap);
    }
    // Both boots at once: the one thread runs both emulators, the waits overlap.
    ctx.step('guest: boot both guests (model, builtin)');
    const booted = await Promise.allSettled(NICS.map((nic, i) => GuestVm.boot({ image, nic, netdev: taps[i]! })));
    for (const b of booted) if (b.status === 'fulfilled') vms.push(b.value);
    const failed = booted.find((b) => b.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    const sides: Side[] = NICS.map((nic, i) => ({
      nic,
      vm: vms[i]!,
      tap: taps[i]!,
      hostIp: `10.0.${SUBNET[nic]}.1`,
      guestIp: `10.0.${SUBNET[nic]}.15`,
      instructions: new WrappingCounter(),
    }));
    // The TAP goes up only now: a guest frame written to a TAP that is down fails the backend (EIO).
    for (const s of sides) {
      ns.adopt(s.tap.ifname);
      ns.ip(['addr', 'add', `${s.hostIp}/24`, 'dev', s.tap.ifname]);
      ns.ip(['link', 'set', s.tap.ifname, 'up']);
    }
    for (const s of sides) {
      await guest(s, 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 0 > /proc/sys/net/ipv4/icmp_ratelimit; echo 1000000 > /proc/sys/net/ipv4/icmp_msgs_per_sec');
      await guest(s, `ip link set eth0 up && ip addr add ${s.guestIp}/24 dev eth0`);
      await guest(s, `ping -c 1 -W 5 ${s.hostIp} >/dev/null || ping -c 3 -W 5 ${s.hostIp}`);
    }
    const sampler = setInterval(() => {
      for (const s of sides) s.instructions.update(s.vm.emulator.get_instruction_counter());
    }, 1000);
    sampler.unref();
    for (const s of sides) s.instructions.update(s.vm.emulator.get_instruction_counter());
    return { ns, sides, sampler };
  } catch (e) {
    for (const vm of vms) await vm.stop().catch(() => undefined);
    for (const t of taps.slice(vms.length)) await t.close().catch(() => undefined);
    ns.destroy();
    throw e;
  }
}

async function teardown(env: Env): Promise<void> {
  clearInterval(env.sampler);
  for (const s of env.sides) await s.vm.stop().catch(() => undefined);
  env.ns.destroy();
}

/** Frames and bytes at the TAP in the direction `kind` loads (tx: guest → host), and refusals. */
function tapCounters(s: Side, kind: Kind): { frames: number; bytes: number; held: number } {
  const t = s.tap.stats();
  // Refusals: the bridge's (v86's NIC had no buffer or no DRIVER_OK), the TAP's pauses (the device's backlog).
  const held = s.nic === 'builtin' ? s.vm.builtin!.stats().held : t.rxPaused;
  return kind === 'tx' ? { frames: t.txFrames, bytes: t.txBytes, held } : { frames: t.rxFrames, bytes: t.rxBytes, held };
}

/** The device's own per-queue counters (model only): used-buffer interrupts and driver kicks. */
function queueCounters(s: Side): { rxqIrq: number; txqIrq: number; rxqKicks: number; txqKicks: number } {
  if (s.nic === 'builtin') return { rxqIrq: 0, txqIrq: 0, rxqKicks: 0, txqKicks: 0 };
  const q = s.vm.device.stats().queues;
  return { rxqIrq: q[0]!.interrupts, txqIrq: q[1]!.interrupts, rxqKicks: q[0]!.notifications, txqKicks: q[1]!.notifications };
}

async function guestCounters(s: Side): Promise<{ interrupts: number; busy: number; total: number }> {
  const out = await guest(s, 'cat /proc/interrupts; head -1 /proc/stat');
  return { interrupts: virtioInterrupts(out), ...cpuJiffies(out) };
}

async function withRetry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  let last: Error | null = null;
  for (let i = 0; i < 5; i++) {
    try {
      return await attempt();
    } catch (e) {
      last = e as Error;
      // The listening side may not be up yet ("Connection refused"): try again shortly.
      if (!/refused|unable to connect|No route/i.test(last.message)) break;
      await pause(500 + i * 500);
    }
  }
  throw new Error(`${what}: ${last!.message}`);
}

async function measure(env: Env, s: Side, kind: Kind, seconds: number): Promise<Run> {
  const g0 = await guestCounters(s);
  const n0 = tapCounters(s, kind);
  const q0 = queueCounters(s);
  const reading = (): TransferSample => ({ ms: performance.now(), instructions: s.instructions.update(s.vm.emulator.get_instruction_counter()), bytes: tapCounters(s, kind).bytes });
  const trace: TransferSample[] = [reading()];
  const sampler = setInterval(() => trace.push(reading()), SAMPLE_MS);
  const i0 = trace[0]!.instructions;
  const c0 = cpuSeconds();
  const limit = (seconds + 60) * 1000;
  let units: number;
  let rate: number;
  let measured: number;
  let retransmits: number | null = null;
  if (kind === 'tx') {
    const r = await withRetry('guest iperf3 -c', async () => {
      const server = start('ip', ['netns', 'exec', env.ns.name, 'iperf3', '-s', '-1', '-J', '-B', s.hostIp, '-p', String(PORT)], limit);
      await pause(300);
      const c = await s.vm.run(`${IPERF3} -c ${s.hostIp} -p ${PORT} -t ${seconds} -i 0 -Z > /tmp/iperf.out 2>&1; e=$?; tail -3 /tmp/iperf.out; [ $e = 0 ]`, limit);
      if (c.exitCode !== 0) {
        server.kill();
        await server.done;
        throw new Error(c.output.trim());
      }
      const out = await server.done;
      return parseIperfJson(out.stdout);
    });
    units = r.bytes;
    measured = r.seconds;
    rate = r.bitsPerSecond;
    retransmits = r.retransmits;
  } else if (kind === 'rx') {
    await guest(s, `${IPERF3} -s -1 -D -B ${s.guestIp} -p ${PORT}`);
    const r = await withRetry('host iperf3 -c', async () => {
      const c = await start('ip', ['netns', 'exec', env.ns.name, 'iperf3', '-c', s.guestIp, '-p', String(PORT), '-t', String(seconds), '-J'], limit).done;
      return parseIperfJson(c.stdout);
    });
    units = r.bytes;
    measured = r.seconds;
    rate = r.bitsPerSecond;
    retransmits = r.retransmits;
  } else {
    const c = await start('ip', ['netns', 'exec', env.ns.name, 'python3', '-c', RR_CLIENT, s.guestIp, String(RR_PORT), String(seconds), String(RR_BYTES)], limit).done;
    if (c.code !== 0) throw new Error(`request/response client exited ${c.code}: ${c.stderr.trim().slice(-300)}`);
    const r = parseRrLine(c.stdout);
    units = r.transactions;
    measured = r.seconds;
    rate = r.transactions / r.seconds;
  }
  const c1 = cpuSeconds();
  clearInterval(sampler);
  trace.push(reading());
  const i1 = trace[trace.length - 1]!.instructions;
  const n1 = tapCounters(s, kind);
  const q1 = queueCounters(s);
  const g1 = await guestCounters(s);
  return {
    rate,
    units,
    seconds: measured,
    hostCpuS: c1 - c0,
    instructions: i1 - i0,
    interrupts: g1.interrupts - g0.interrupts,
    frames: n1.frames - n0.frames,
    busy: (g1.busy - g0.busy) / Math.max(1, g1.total - g0.total),
    retransmits,
    held: n1.held - n0.held,
    steady: kind === 'rr' ? null : steadyWindow(trace),
    queues: { rxqIrq: q1.rxqIrq - q0.rxqIrq, txqIrq: q1.txqIrq - q0.txqIrq, rxqKicks: q1.rxqKicks - q0.rxqKicks, txqKicks: q1.txqKicks - q0.txqKicks },
  };
}

const round = (x: number, digits = 3) => Number(x.toPrecision(digits));

/** Per-NIC figures beside the rate: medians over the repeats. */
function perNic(prefix: string, runs: Run[], kind: Kind): Record<string, number> {
  const med = (f: (r: Run) => number) => round(summarize(runs.map(f)).median);
  const mb = (r: Run) => r.units / 1e6;
  const d: Record<string, number> = {};
  if (kind === 'rr') {
    d[`${prefix}InstructionsPerTransaction`] = med((r) => r.instructions / Math.max(1, r.units));
    d[`${prefix}InterruptsPerTransaction`] = med((r) => r.interrupts / Math.max(1, r.units));
  } else {
    // Over the whole command, and over the steady window (no iperf3 start-up): the guest's CPU per byte.
    d[`${prefix}InstructionsPerByteAll`] = med((r) => r.instructions / Math.max(1, r.units));
    const steady = runs.map((r) => r.steady).filter((w): w is NonNullable<typeof w> => w !== null);
    if (steady.length > 0) {
      d[`${prefix}InstructionsPerByte`] = round(summarize(steady.map((w) => w.instructionsPerByte)).median);
      d[`${prefix}SteadyBitsPerSecond`] = round(summarize(steady.map((w) => w.bitsPerSecond)).median);
    }
    d[`${prefix}InterruptsPerMB`] = med((r) => r.interrupts / Math.max(1e-9, mb(r)));
    d[`${prefix}FramesPerMB`] = med((r) => r.frames / Math.max(1e-9, mb(r)));
    d[`${prefix}HostCpuMsPerMB`] = med((r) => (r.hostCpuS * 1000) / Math.max(1e-9, mb(r)));
    const re = runs.map((r) => r.retransmits).filter((x): x is number => x !== null);
    if (re.length > 0) d[`${prefix}Retransmits`] = Math.max(...re);
  }
  d[`${prefix}GuestBusy`] = med((r) => r.busy);
  d[`${prefix}GuestMips`] = med((r) => r.instructions / 1e6 / Math.max(1e-9, r.seconds));
  d[`${prefix}Held`] = runs.reduce((a, r) => a + r.held, 0);
  if (prefix === 'model') {
    const per = kind === 'rr' ? (r: Run) => Math.max(1, r.units) : (r: Run) => Math.max(1e-9, mb(r));
    const unit = kind === 'rr' ? 'PerTransaction' : 'PerMB';
    for (const k of ['rxqIrq', 'txqIrq', 'rxqKicks', 'txqKicks'] as const) d[`model${k[0]!.toUpperCase()}${k.slice(1)}${unit}`] = med((r) => r.queues[k] / per(r));
  }
  return d;
}

function result(row: Row, model: Run[], builtin: Run[], seconds: number): BenchResult {
  const unit = row.kind === 'rr' ? 'trans/s' : 'bit/s';
  // Per CPU-second of this process (both emulators, the device, the bridge): steadier under load.
  const perCpu = (r: Run) => (row.kind === 'rr' ? r.units : r.units * 8) / Math.max(1e-9, r.hostCpuS);
  const cv = summarize(model.map(perCpu)).median;
  const cb = summarize(builtin.map(perCpu)).median;
  return fromSamples(
    row.name,
    unit,
    model.map((r) => r.rate),
    builtin.map((r) => r.rate),
    BASELINE_IS,
    {
      perCpuSecond: { value: cv, baseline: cb, ratio: ratio(cv, cb) },
      detail: { seconds, ...(row.before.length > 0 ? { guestSetup: row.before.map((c) => c.split(' 2>')[0]).join('; ') } : {}), ...perNic('model', model, row.kind), ...perNic('builtin', builtin, row.kind) },
    },
  );
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const sizes = ctx.quick ? QUICK_SIZES : FULL_SIZES;
  const skipAll = (why: string) => ROWS.map((r) => skipped(r.name, r.kind === 'rr' ? 'trans/s' : 'bit/s', why, BASELINE_IS));
  const reason = hostSkipReason() ?? (onPath(IPERF3) ? null : 'iperf3 is not installed (Debian iperf3)') ?? (onPath('python3') ? null : 'python3 is not installed');
  if (reason !== null) {
    for (let i = 0; i <= ROWS.length; i++) ctx.step('guest: skipped');
    return skipAll(reason);
  }
  let env: Env;
  try {
    env = await setup(ctx);
  } catch (e) {
    for (let i = 0; i < ROWS.length; i++) ctx.step('guest: skipped');
    return skipAll(`setup failed: ${(e as Error).message.split('\n')[0]}`);
  }
  const out: BenchResult[] = [];
  try {
    for (const row of ROWS) {
      ctx.step(`${row.name} (${sizes.seconds} s x ${sizes.repeats} x 2 NICs)`);
      try {
        const runs: Record<GuestNic, Run[]> = { model: [], builtin: [] };
        for (const s of env.sides) for (const c of row.before) await guest(s, c);
        // Warm-up, one unmeasured run per NIC: v86 compiles the guest's hot code to WebAssembly
        // only after it ran a while, and a row's code paths (TSO or not, GRO or not) are new to it;
        // on a loaded machine the first run of a row was seen 5–10x slower per CPU-second.
        for (const s of env.sides) await measure(env, s, row.kind, sizes.warmSeconds);
        for (let i = 0; i < sizes.repeats; i++) {
          // Alternate which NIC goes first, so a drift in load favours neither.
          const order = i % 2 === 0 ? env.sides : [...env.sides].reverse();
          for (const s of order) runs[s.nic].push(await measure(env, s, row.kind, sizes.seconds));
        }
        for (const s of env.sides) for (const c of row.after) await guest(s, c);
        out.push(result(row, runs.model, runs.builtin, sizes.seconds));
      } catch (e) {
        out.push(skipped(row.name, row.kind === 'rr' ? 'trans/s' : 'bit/s', `failed: ${(e as Error).message.split('\n')[0]}`, BASELINE_IS));
      }
    }
  } finally {
    await teardown(env);
  }
  return out;
}

export const guestBench: Benchmark = {
  name: 'guest',
  required: GUEST_ROWS,
  cases: () => ROWS.length + 1,
  run,
};

if (isMain(import.meta.url)) await runStandalone(guestBench);
