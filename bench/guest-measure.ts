// What the guest throughput benchmark (guest.bench.ts) reads back, as pure functions (no spec
// section: the harness): iperf3's JSON report, the guest's /proc/interrupts and /proc/stat, the
// UDP request/response client's line, and v86's 32-bit instruction counter.

/** One iperf3 test as its receiver measured it. */
export interface IperfResult {
  /** Payload bytes the receiver got. */
  bytes: number;
  /** The receiver's measuring time, seconds. */
  seconds: number;
  bitsPerSecond: number;
  /** TCP retransmissions the sender counted (null when the report has none: the sender was the peer). */
  retransmits: number | null;
}

interface IperfSum {
  bytes?: unknown;
  seconds?: unknown;
  bits_per_second?: unknown;
  retransmits?: unknown;
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/**
 * The receiver's figures from `iperf3 -J` output of either end. iperf3 3.12 puts the receiver's
 * count in `end.sum_received` on the client (the server sends its results back) and on a receiving
 * server; a sending server has only `end.sum_sent` there, with `sum_received.bytes` 0 — bytes
 * still in flight would make the sender's count too high, so that is an error, not a fallback.
 */
export function parseIperfJson(text: string): IperfResult {
  let doc: { error?: unknown; end?: { sum_received?: IperfSum; sum_sent?: IperfSum } };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (e) {
    throw new Error(`iperf3 printed no JSON report (${(e as Error).message}): ${text.trim().slice(0, 200)}`);
  }
  if (doc === null || typeof doc !== 'object') throw new Error('iperf3 report is not an object');
  if (typeof doc.error === 'string') throw new Error(`iperf3: ${doc.error}`);
  const r = doc.end?.sum_received;
  if (r === undefined || !isCount(r.bytes) || !isCount(r.seconds)) throw new Error('iperf3 report has no end.sum_received with bytes and seconds');
  if (r.bytes === 0 || r.seconds === 0) throw new Error("iperf3 report's end.sum_received counts nothing (the report of a sending server?)");
  const s = doc.end?.sum_sent;
  return {
    bytes: r.bytes,
    seconds: r.seconds,
    bitsPerSecond: isCount(r.bits_per_second) ? r.bits_per_second : (r.bytes * 8) / r.seconds,
    retransmits: s !== undefined && isCount(s.retransmits) ? s.retransmits : null,
  };
}

/** Interrupts counted on the lines of /proc/interrupts that name a virtio device (every CPU column). */
export function virtioInterrupts(procInterrupts: string): number {
  let total = 0;
  let seen = false;
  for (const line of procInterrupts.split('\n')) {
    // " 10:       1234    XT-PIC      virtio0"  or  " 25:  10  20  PCI-MSI 49152-edge  virtio0-input.0"
    const m = /^\s*\d+:((?:\s+\d+)+)\s+\S.*\bvirtio\d/.exec(line);
    if (m === null) continue;
    seen = true;
    for (const n of m[1]!.trim().split(/\s+/)) total += Number(n);
  }
  if (!seen) throw new Error(`no virtio line in /proc/interrupts: ${procInterrupts.trim().slice(0, 200)}`);
  return total;
}

/** The first line of /proc/stat: busy and total jiffies (idle and iowait are not busy). */
export function cpuJiffies(procStat: string): { busy: number; total: number } {
  const m = /^cpu((?:\s+\d+){4,})/m.exec(procStat);
  if (m === null) throw new Error(`no cpu line in /proc/stat: ${procStat.trim().slice(0, 200)}`);
  const f = m[1]!.trim().split(/\s+/).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3]! + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** The request/response client's summary line: "rr <transactions> <seconds> <timeouts>". */
export function parseRrLine(text: string): { transactions: number; seconds: number; timeouts: number } {
  const m = /^rr (\d+) (\d+(?:\.\d+)?) (\d+)$/m.exec(text);
  if (m === null) throw new Error(`the request/response client printed no summary: ${text.trim().slice(0, 200)}`);
  const r = { transactions: Number(m[1]), seconds: Number(m[2]), timeouts: Number(m[3]) };
  if (r.seconds <= 0) throw new Error(`the request/response client ran for ${r.seconds} s`);
  return r;
}

/**
 * A running total of a counter that wraps at 2^32 (v86's `get_instruction_counter()`): feed it a
 * reading at least once per wrap (~10–40 s of emulation) and it adds the difference.
 */
export class WrappingCounter {
  private last: number | null = null;
  private sum = 0;

  update(raw: number): number {
    if (!Number.isInteger(raw) || raw < 0 || raw > 0xffffffff) throw new RangeError(`WrappingCounter: ${raw} is not a 32-bit count`);
    if (this.last !== null) this.sum += (raw - this.last + 0x1_0000_0000) % 0x1_0000_0000;
    this.last = raw;
    return this.sum;
  }

  get total(): number {
    return this.sum;
  }
}

/** A reading taken while a transfer runs: wall time (ms), the guest's instructions, bytes at the NIC. */
export interface TransferSample {
  ms: number;
  instructions: number;
  bytes: number;
}

/**
 * The steady part of a transfer: from the reading where 10% of its bytes had passed the NIC to the
 * first where 90% had, so the start-up of iperf3 (process, libraries, connection) and the drain
 * at the end are left out. Instructions per byte and bit/s over that window; null when fewer than
 * two readings fall in it (too few readings, or nothing moved).
 */
export function steadyWindow(samples: readonly TransferSample[]): { instructionsPerByte: number; bitsPerSecond: number; seconds: number } | null {
  if (samples.length < 2) return null;
  const b0 = samples[0]!.bytes;
  const total = samples[samples.length - 1]!.bytes - b0;
  if (total <= 0) return null;
  const a = samples.findIndex((s) => s.bytes - b0 >= 0.1 * total);
  const b = samples.findIndex((s) => s.bytes - b0 >= 0.9 * total);
  if (a < 0 || b <= a) return null;
  const first = samples[a]!;
  const last = samples[b]!;
  const bytes = last.bytes - first.bytes;
  const seconds = (last.ms - first.ms) / 1000;
  if (bytes <= 0 || seconds <= 0) return null;
  return { instructionsPerByte: (last.instructions - first.instructions) / bytes, bitsPerSecond: (bytes * 8) / seconds, seconds };
}
