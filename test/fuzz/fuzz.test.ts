// Operation-sequence fuzzing of the device's guest interface (VIRTIO 1.2 §2.7 rings, §3.1
// initialisation, §5.1.6 the network device), CI's bounded runs: at least 10^5 driver operations
// over random sequences of every kind (setup: transport, queue pairs, offered features, ring size,
// backend with or without virtio-net headers, strict mode, an MTU), then a bounded run leaning on each new kind — the
// header-carrying backend with hostile headers and offloads, re-entrant driver operations from
// callbacks, packed rings (§2.8) with the packed-ring driver mistakes, RSS and HASH_REPORT
// (§5.1.6.5.7) with random and hostile RSS_CONFIG / HASH_CONFIG and described IP frames, rings up to 32768, and a long run across the natural 16-bit index wrap — every oracle
// of world.ts and oracle.ts checked after every operation; then every shrunk counterexample kept
// under test/fixtures/fuzz/ replayed. Long runs: `npm run fuzz -- --ops N --seed S [--focus F]`.

import { expect } from 'chai';
import { fuzz, loadFixtures } from './fixtures.js';
import type { FuzzRunResult } from './fixtures.js';
import { runCase } from './oracle.js';
import type { Focus, FuzzCase } from './ops.js';

/** CI budget: operations per run (the issue asks for at least 10^5). */
const CI_OPS = 100_000;
/** Operations of each focused run (each a few seconds to half a minute on the shared 2-core machine). */
const FOCUS_OPS: Record<Exclude<Focus, 'all' | 'wrap'>, number> = { vnet: 3_000, reentry: 3_000, 'big-ring': 600, packed: 4_000, rss: 6_000 };
/** Fixed seed, so CI runs the same sequences every time (long runs vary it). */
const CI_SEED = 20261121;
/**
 * Failure codes of device bugs that are open while this suite runs: a case failing with one of
 * these is counted, not failed on (the runs go on and find everything else). None is open: the
 * received-header, offload-ack, re-entrant reset, pause-callback and resume-callback fixes of
 * issue #13 are in. A new finding whose fix has to wait goes here with its shrunk case kept in
 * test/fixtures/fuzz-open/ (test/README.md), never in test/fixtures/fuzz.
 */
const OPEN_BUG_CODES: string[] = [];

function expectClean(r: FuzzRunResult, ops: number): void {
  const f = r.failure;
  expect(f, f === null ? '' : `${f.failure.code} at step ${f.failure.step}: ${f.failure.detail}\n${JSON.stringify(f.case)}`).to.equal(null);
  expect(r.ops).to.be.at.least(ops);
}

describe('fuzz: guest operation sequences', function () {
  this.timeout(240_000);

  it('random_driver_operation_sequences_keep_every_oracle', () => {
    const r = fuzz({ ops: CI_OPS, seed: CI_SEED, known: OPEN_BUG_CODES });
    expectClean(r, CI_OPS);
    expect(r.cases).to.be.greaterThan(100);
    // Every kind ran, the new ones included.
    for (const kind of ['init', 'tx', 'rx', 'ctrl', 'raw', 'inject', 'refuse', 'arm', 'cycle', 'flow']) expect(r.counts[kind] ?? 0, kind).to.be.greaterThan(0);
    // The VIRTIO 1.2-1.4 features are negotiated at random (offered by default, or by the setup's `enable`).
    for (const f of ['RSS', 'HASH_REPORT', 'NOTF_COAL', 'VQ_NOTF_COAL', 'DEVICE_STATS', 'GUEST_USO4', 'HOST_USO', 'SPEED_DUPLEX']) expect(r.counts[`init negotiated ${f}`] ?? 0, f).to.be.greaterThan(0);
    // The ring layout is chosen per case: both ran.
    expect(r.counts['setup ring split'] ?? 0).to.be.greaterThan(0);
    expect(r.counts['setup ring packed'] ?? 0).to.be.greaterThan(0);
  });

  it('header_carrying_backend_with_hostile_headers_and_random_offloads_keeps_every_oracle', () => {
    const r = fuzz({ ops: FOCUS_OPS.vnet, seed: CI_SEED, focus: 'vnet', known: OPEN_BUG_CODES });
    expectClean(r, FOCUS_OPS.vnet);
    expect(r.counts.inject ?? 0).to.be.greaterThan(FOCUS_OPS.vnet / 20);
    expect(r.counts.refuse ?? 0).to.be.greaterThan(0);
  });

  it('reentrant_driver_operations_from_callbacks_keep_every_oracle', () => {
    const r = fuzz({ ops: FOCUS_OPS.reentry, seed: CI_SEED, focus: 'reentry', known: OPEN_BUG_CODES });
    expectClean(r, FOCUS_OPS.reentry);
    const fired = Object.entries(r.counts).filter(([k]) => k.startsWith('reentry '));
    // Resets, queue writes and kicks from inside callbacks really happened, from several hooks.
    for (const action of ['reset', 'queue', 'kick']) expect(fired.some(([k]) => k.endsWith(`→${action}`)), action).to.equal(true);
    expect(new Set(fired.map(([k]) => k.split('→')[0])).size).to.be.at.least(4);
  });

  it('packed_rings_with_packed_driver_mistakes_keep_every_oracle', () => {
    const r = fuzz({ ops: FOCUS_OPS.packed, seed: CI_SEED, focus: 'packed', known: OPEN_BUG_CODES });
    expectClean(r, FOCUS_OPS.packed);
    expect(r.counts['setup ring packed'] ?? 0).to.equal(r.cases);
    // The packed mistakes really went out: wrong AVAIL/USED bits, IDs beyond the ring or in use, skipped positions.
    const kinds = Object.keys(r.counts);
    for (const k of ['first=other-wrap', 'first=looks-used', 'first=zero', 'id=oob', 'id=held', 'mid-wrap']) expect(kinds.some((x) => x.startsWith('packed raw') && x.includes(k)), k).to.equal(true);
    expect(r.counts['packed bump skip'] ?? 0).to.be.greaterThan(0);
    expect(r.counts['packed bump wrap-flip'] ?? 0).to.be.greaterThan(0);
  });

  it('rss_and_hash_report_with_random_and_hostile_configurations_keep_every_oracle', () => {
    const r = fuzz({ ops: FOCUS_OPS.rss, seed: CI_SEED, focus: 'rss', known: OPEN_BUG_CODES });
    expectClean(r, FOCUS_OPS.rss);
    // The RSS oracles judged something: acks both ways, hashes, frames steered by the table to both queues and by flow.
    for (const k of ['rss ack judged RSS_CONFIG OK', 'rss ack judged RSS_CONFIG ERR', 'rss ack judged HASH_CONFIG OK', 'rss ack judged HASH_CONFIG ERR', 'rss hash judged', 'rss queue judged table receiveq1', 'rss queue judged table receiveq2', 'rss queue judged flow receiveq1']) {
      expect(r.counts[k] ?? 0, k).to.be.greaterThan(0);
    }
    expect(r.counts['init negotiated RSS'] ?? 0).to.be.greaterThan((r.counts['init ok'] ?? 0) / 2);
  });

  it('rings_up_to_32768_keep_every_oracle', () => {
    const r = fuzz({ ops: FOCUS_OPS['big-ring'], seed: CI_SEED, focus: 'big-ring', known: OPEN_BUG_CODES });
    expectClean(r, FOCUS_OPS['big-ring']);
  });

  // The natural wrap: 65,576 frames each way through pair 0 move every index across 65535 → 0
  // (no avail-index jump), on the smallest ring and on the largest; the oracles run per batch.
  for (const ringSize of [8, 32768] as const) {
    it(`long_runs_across_the_natural_16_bit_index_wrap_ring_${ringSize}`, () => {
      const c: FuzzCase = {
        setup: { transport: 'pci', pairs: 1, disable: [], ringSize, backend: 'plain' },
        ops: [
          { t: 'init', drop: 0 },
          { t: 'cycle', dir: 'rx', n: 65536 + 40, batch: ringSize === 8 ? 8 : 200 },
          { t: 'cycle', dir: 'tx', n: 65536 + 40, batch: ringSize === 8 ? 7 : 200 },
        ],
      };
      const counts: Record<string, number> = {};
      const f = runCase(c, undefined, {}, counts);
      expect(f, f === null ? '' : `${f.code} at step ${f.step}: ${f.detail}`).to.equal(null);
      expect(counts['cycle rx frames']).to.equal(65536 + 40);
      expect(counts['cycle tx frames']).to.equal(65536 + 40);
    });
  }

  const fixtures = loadFixtures();
  for (const { file, fixture } of fixtures) {
    it(`replays_${file.replace(/\.json$/, '')}`, () => {
      // Nothing here is skipped: a case whose bug is still open belongs in fixtures/fuzz-open/.
      expect(fixture.openBug, `${file} is marked open (${String(fixture.openBug)}): move it to test/fixtures/fuzz-open/ until the fix`).to.equal(undefined);
      const f = runCase(fixture.case, undefined, fixture.oracles ?? {});
      expect(f, f === null ? '' : `${f.code} at step ${f.step}: ${f.detail}`).to.equal(null);
    });
  }
});
