// The readers of bench/guest-measure.ts (what the guest throughput benchmark parses): iperf3 3.12's
// JSON from each end, the guest's /proc/interrupts and /proc/stat, the request/response line and
// the 32-bit instruction counter. The benchmark itself runs only on request, never in `npm test`.

import { expect } from 'chai';
import { WrappingCounter, cpuJiffies, parseIperfJson, parseRrLine, steadyWindow, virtioInterrupts } from '../../bench/guest-measure.js';
import type { TransferSample } from '../../bench/guest-measure.js';

/** The shape iperf3 3.12 prints with -J (trimmed to the fields the reader uses). */
function report(sent: Record<string, number | boolean>, received: Record<string, number | boolean>): string {
  return JSON.stringify({ start: { test_start: { protocol: 'TCP' } }, intervals: [], end: { streams: [], sum_sent: sent, sum_received: received } });
}

describe('bench/guest-measure: iperf3 JSON', () => {
  it('takes_the_receivers_count_from_a_client_report', () => {
    const text = report(
      { start: 0, end: 10, seconds: 10, bytes: 30_000_000, bits_per_second: 24_000_000, retransmits: 7, sender: true },
      { start: 0, end: 10.4, seconds: 10.4, bytes: 29_000_000, bits_per_second: 22_307_692.3, sender: true },
    );
    expect(parseIperfJson(text)).to.deep.equal({ bytes: 29_000_000, seconds: 10.4, bitsPerSecond: 22_307_692.3, retransmits: 7 });
  });

  it('takes_a_receiving_servers_own_count_without_retransmits', () => {
    const text = report(
      { start: 0, end: 7.85, seconds: 7.85, bytes: 0, bits_per_second: 0, sender: false },
      { start: 0, end: 7.85, seconds: 7.85, bytes: 2_750_000, bits_per_second: 2_802_547.8, sender: false },
    );
    const r = parseIperfJson(text);
    expect(r.bytes).to.equal(2_750_000);
    expect(r.retransmits).to.equal(null);
  });

  it('computes_the_rate_when_the_report_lacks_it', () => {
    const text = report({ bytes: 0, seconds: 2 }, { bytes: 1000, seconds: 2 });
    expect(parseIperfJson(text).bitsPerSecond).to.equal(4000);
  });

  it('refuses_a_sending_servers_report_whose_received_sum_is_zero', () => {
    const text = report({ seconds: 1, bytes: 1_000_000, retransmits: 0, sender: true }, { seconds: 1, bytes: 0, sender: true });
    expect(() => parseIperfJson(text)).to.throw(/counts nothing/);
  });

  it('reports_iperf3s_own_error_and_text_that_is_not_json', () => {
    expect(() => parseIperfJson(JSON.stringify({ start: {}, intervals: [], end: {}, error: 'unable to connect to server: Connection refused' }))).to.throw(/iperf3: unable to connect.*refused/);
    expect(() => parseIperfJson('iperf3: error - the server is busy running a test. try again later\n')).to.throw(/no JSON report.*server is busy/);
    expect(() => parseIperfJson(JSON.stringify({ end: {} }))).to.throw(/no end.sum_received/);
  });
});

describe('bench/guest-measure: guest counters', () => {
  const PROC_INTERRUPTS = [
    '           CPU0       ',
    '  0:       4096    XT-PIC      timer',
    '  4:        240    XT-PIC      ttyS0',
    ' 10:         15    XT-PIC      virtio0',
    ' 11:          3    XT-PIC      virtio1, uhci_hcd',
    'NMI:          0   Non-maskable interrupts',
    'LOC:          0   Local timer interrupts',
  ].join('\n');

  it('sums_the_virtio_lines_of_proc_interrupts', () => {
    expect(virtioInterrupts(PROC_INTERRUPTS)).to.equal(18);
  });

  it('sums_every_cpu_column', () => {
    expect(virtioInterrupts(' 25:         10         20   PCI-MSI 49152-edge      virtio0-input.0\n 26: 1 2 PCI-MSI 49153-edge virtio0-output.0')).to.equal(33);
  });

  it('fails_when_no_line_names_virtio', () => {
    expect(() => virtioInterrupts('  0:       4096    XT-PIC      timer\n')).to.throw(/no virtio line/);
  });

  it('reads_busy_and_total_jiffies_from_proc_stat', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    expect(cpuJiffies('cpu  34 0 2908 199 5 0 7 0 0 0\ncpu0 34 0 2908 199 5 0 7 0 0 0\n')).to.deep.equal({ busy: 2949, total: 3153 });
    expect(() => cpuJiffies('intr 1 2 3')).to.throw(/no cpu line/);
  });

  it('reads_the_request_response_line', () => {
    expect(parseRrLine('rr 812 3.000417 2\n')).to.deep.equal({ transactions: 812, seconds: 3.000417, timeouts: 2 });
    expect(() => parseRrLine('Traceback (most recent call last):')).to.throw(/no summary/);
    expect(() => parseRrLine('rr 0 0 0')).to.throw(/0 s/);
  });

  it('adds_a_32_bit_counter_across_wraps', () => {
    const c = new WrappingCounter();
    expect(c.update(0xffff_ff00)).to.equal(0);
    expect(c.update(0xffff_fff0)).to.equal(0xf0);
    expect(c.update(0x10)).to.equal(0xf0 + 0x20);
    expect(c.update(0x10)).to.equal(0x110);
    expect(c.total).to.equal(0x110);
    expect(() => c.update(2 ** 32)).to.throw(RangeError);
    expect(() => c.update(-1)).to.throw(RangeError);
  });
});

describe('bench/guest-measure: steady window', () => {
  it('measures_between_10_and_90_percent_of_the_bytes', () => {
    // Start-up: 5 M instructions and no bytes; then 1 MB per 100 ms at 2 instructions per byte.
    const s: TransferSample[] = [{ ms: 0, instructions: 0, bytes: 0 }, { ms: 100, instructions: 5e6, bytes: 0 }];
    for (let i = 1; i <= 10; i++) s.push({ ms: 100 + 100 * i, instructions: 5e6 + 2e6 * i, bytes: 1e6 * i });
    s.push({ ms: 1300, instructions: 25.5e6, bytes: 10e6 });
    const w = steadyWindow(s)!;
    expect(w.instructionsPerByte).to.equal(2);
    expect(w.seconds).to.be.closeTo(0.8, 1e-9);
    expect(w.bitsPerSecond).to.be.closeTo(80e6, 1e-3);
  });

  it('is_null_when_nothing_moved_or_the_window_is_one_reading', () => {
    expect(steadyWindow([{ ms: 0, instructions: 0, bytes: 5 }, { ms: 100, instructions: 10, bytes: 5 }])).to.equal(null);
    expect(steadyWindow([{ ms: 0, instructions: 0, bytes: 0 }, { ms: 100, instructions: 10, bytes: 100 }])).to.equal(null);
    expect(steadyWindow([])).to.equal(null);
  });
});
