// The harness's own pieces (bench/lib/): statistics, the fixed corpora, the table reader used for
// the scripts run in their own process, and number formatting.

import { expect } from 'chai';
import { median, ratio, summarize } from '../../bench/lib/stats.js';
import { BENCH_MAC, frameCorpus, macBytes } from '../../bench/lib/corpus.js';
import { cell, num, parseTables, range } from '../../bench/lib/external.js';
import { si } from '../../bench/lib/table.js';

describe('bench/lib', () => {
  it('median_of_odd_and_even_counts', () => {
    expect(median([5, 1, 3])).to.equal(3);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
    expect(() => median([])).to.throw(RangeError);
  });

  it('spread_is_range_over_median', () => {
    const s = summarize([90, 100, 110]);
    expect(s).to.deep.equal({ median: 100, min: 90, max: 110, spread: 0.2 });
    expect(summarize([7]).spread).to.equal(0);
  });

  it('ratio_to_a_zero_baseline_is_null', () => {
    expect(ratio(3, 2)).to.equal(1.5);
    expect(ratio(3, 0)).to.equal(null);
  });

  it('corpus_is_the_same_bytes_on_every_call_and_addressed_to_the_device', () => {
    const a = frameCorpus(64);
    const b = frameCorpus(64);
    expect(a).to.have.length(64);
    expect(a.every((f) => f.length === 64)).to.equal(true);
    expect(a.map((f) => Buffer.from(f).toString('hex'))).to.deep.equal(b.map((f) => Buffer.from(f).toString('hex')));
    expect([...a[0]!.subarray(0, 6)]).to.deep.equal(macBytes(BENCH_MAC));
    expect(Buffer.from(a[0]!).equals(Buffer.from(a[1]!))).to.equal(false);
    expect(() => frameCorpus(13)).to.throw(RangeError, 'length');
  });

  it('printed_tables_are_read_back_by_row_prefix_and_column', () => {
    const text = [
      'node v20, some cpu',
      '| case | k cmd/s (median) | spread |',
      '|------|-----------------:|-------:|',
      '| Linux link-up burst (x) | 1740 | 1200..1900 |',
      '| RX PROMISC alone | 2100 | 2000..2200 |',
      '',
      'verdict mix: accept 40%',
    ].join('\n');
    const tables = parseTables(text);
    expect(tables).to.have.length(1);
    expect(cell(tables, 'Linux link-up', 'k cmd/s')).to.equal('1740');
    expect(range(cell(tables, 'RX PROMISC', 'spread'))).to.deep.equal([2000, 2200]);
    expect(cell(tables, 'nothing', 'spread')).to.equal(undefined);
    expect(num('7.23x')).to.equal(7.23);
    expect(Number.isNaN(num('—'))).to.equal(true);
  });

  it('si_rounds_before_choosing_the_prefix', () => {
    expect(si(999_950)).to.equal('1.00 M');
    expect(si(12_345_678)).to.equal('12.3 M');
    expect(si(232)).to.equal('232');
    expect(si(0)).to.equal('0');
    expect(si(0.0017)).to.equal('1.7e-3');
  });
});
