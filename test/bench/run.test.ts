// The benchmark harness as CI runs it (bench/run.ts, issue 7): `npm run bench -- --quick --json
// FILE` must produce a complete JSON report. Only the shape is checked — never the figures, which
// depend on the machine and its load.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostSkipReason } from '../support/netns.js';

/** The names issue 7 requires, with their units. */
const REQUIRED: Record<string, string> = {
  'tx-memory-64': 'pps',
  'tx-memory-1500': 'pps',
  'rx-memory-1500': 'pps',
  'rx-memory-1500-mrg': 'pps',
  'rx-filter': 'decisions/s',
  ctrl: 'commands/s',
  'tap-tx-64': 'pps',
  'tap-rx-64': 'pps',
  alloc: 'bytes/frame',
};
const TAP = ['tap-tx-64', 'tap-rx-64'];

interface Result {
  name: string;
  unit: string;
  value: number | null;
  baseline: number | null;
  ratio: number | null;
  samples: number[];
  skipped?: string;
}
interface Report {
  node: string;
  cpu: string;
  date: string;
  results: Result[];
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: path.resolve(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

describe('bench: npm run bench -- --quick --json', function () {
  this.timeout(300_000);
  let dir: string;
  let report: Report;
  let stdout: string;

  before(async function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vnm-bench-test-'));
    const file = path.join(dir, 'out.json');
    const r = await run('npm', ['run', '--silent', 'bench', '--', '--quick', '--json', file], 240_000);
    expect(r.code, `npm run bench failed:\n${r.stderr.slice(-2000)}`).to.equal(0);
    stdout = r.stdout;
    report = JSON.parse(readFileSync(file, 'utf8')) as Report;
  });

  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('report_names_node_cpu_and_date', () => {
    expect(report.node).to.equal(process.version);
    expect(report.cpu).to.be.a('string').and.not.equal('');
    expect(Number.isNaN(Date.parse(report.date))).to.equal(false);
    expect(report.results).to.be.an('array');
  });

  it('every_required_name_is_present_with_unit_value_baseline_ratio_samples', () => {
    for (const [name, unit] of Object.entries(REQUIRED)) {
      const r = report.results.find((x) => x.name === name);
      expect(r, `${name} missing from the JSON`).to.not.equal(undefined);
      expect(r!.unit, name).to.equal(unit);
      for (const key of ['value', 'baseline', 'ratio', 'samples']) expect(r!, name).to.have.property(key);
      expect(r!.samples, name).to.be.an('array');
    }
  });

  it('measured_results_carry_numbers_and_ratio_is_value_over_baseline', () => {
    for (const r of report.results.filter((x) => x.skipped === undefined)) {
      expect(isNumber(r.value), `${r.name} value`).to.equal(true);
      expect(isNumber(r.baseline), `${r.name} baseline`).to.equal(true);
      expect(r.samples.length, `${r.name} samples`).to.be.greaterThan(0);
      expect(r.samples.every(isNumber), `${r.name} samples`).to.equal(true);
      if (r.baseline === 0) expect(r.ratio, r.name).to.equal(null);
      else expect(r.ratio!, r.name).to.be.closeTo(r.value! / r.baseline!, 1e-9 * Math.max(1, Math.abs(r.value! / r.baseline!)));
    }
  });

  it('memory_datapath_filter_ctrl_and_alloc_are_measured_not_skipped', () => {
    for (const name of Object.keys(REQUIRED).filter((n) => !TAP.includes(n))) {
      const r = report.results.find((x) => x.name === name)!;
      expect(r.skipped, `${name} was skipped`).to.equal(undefined);
    }
  });

  it('tap_results_are_measured_with_root_else_skipped_with_a_reason', () => {
    const canRun = hostSkipReason() === null;
    for (const name of TAP) {
      const r = report.results.find((x) => x.name === name)!;
      if (canRun) {
        expect(r.skipped, `${name}: ${r.skipped}`).to.equal(undefined);
      } else {
        expect(r.skipped, name).to.be.a('string').and.not.equal('');
        expect(r.value, name).to.equal(null);
        expect(r.samples, name).to.deep.equal([]);
      }
    }
  });

  it('table_on_stdout_lists_every_result', () => {
    for (const r of report.results) expect(stdout, r.name).to.include(`| ${r.name} `);
  });

  it('unknown_option_is_refused_naming_the_allowed_ones', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--fast'], 60_000);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('unknown option --fast').and.include('--only NAME').and.include('--quick').and.include('--json FILE');
  });

  it('only_with_an_unknown_name_is_refused_listing_the_benchmarks', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--only', 'nosuch'], 60_000);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('--only nosuch').and.include('tx-memory').and.include('tap');
  });
});
