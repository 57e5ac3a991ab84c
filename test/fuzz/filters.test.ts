// Fuzzing the net filters and COLO (issue #13, "Filter chain and COLO in the loop"), CI's bounded
// runs from fixed seeds: hostile frames (truncated headers, IP options, IPv4 fragments tiny and
// overlapping, IPv6 extension headers, VLAN stacks, bad checksums, random bytes), well-formed
// conversations (handshakes, data both ways cut differently, retransmissions, FIN / RST) and SYN
// floods through colo-compare (primary + secondary, passthrough list, fake clock), filter-rewriter
// (a reference model of its offsets; re-entrant frames sent through the chain from inside a delivery) and filter-mirror / filter-redirector over real unix sockets;
// every oracle of test/fuzz/filters/ on for the whole sequence; then every shrunk counterexample
// under test/fixtures/fuzz-filters/ replayed. Long runs: `npm run fuzz:filters -- --target T
// --frames N --seed S` (scripts/README.md).

import { expect } from 'chai';
import type { Target } from './filters/common.js';
import { fuzzFilters, loadFilterFixtures, runFilterCase, type FilterRunResult } from './filters/run.js';

/** Fixed seed: CI runs the same cases every time (long runs vary it). */
const CI_SEED = 20261204;
/** Frames per target: a few seconds each on the shared 2-core machine (sockets are real I/O, so fewer). */
const CI_FRAMES: Record<Target, number> = { colo: 15_000, rewriter: 20_000, sockets: 300 };

function expectClean(r: FilterRunResult, frames: number): void {
  const f = r.failure;
  expect(f, f === null ? '' : `${f.failure.code} at step ${f.failure.step}: ${f.failure.detail}\n${JSON.stringify(f.case)}`).to.equal(null);
  expect(r.frames).to.be.at.least(frames);
}

describe('fuzz: net filters and COLO', function () {
  this.timeout(120_000);

  it('colo_compare_keeps_every_oracle_under_hostile_frames_floods_and_agreeing_or_diverging_guests', async () => {
    const r = await fuzzFilters({ target: 'colo', frames: CI_FRAMES.colo, seed: CI_SEED });
    expectClean(r, CI_FRAMES.colo);
    // Every path ran: compared and matched, straight out, passthrough, and each kind of checkpoint a flood or a difference causes.
    for (const k of ['out released', 'out flushed', 'out straightOut', 'out passthrough', 'checkpoint mismatch', 'checkpoint table-full', 'checkpoint timeout', 'tick']) {
      expect(r.counts[k] ?? 0, k).to.be.greaterThan(0);
    }
  });

  it('filter_rewriter_matches_its_reference_model_under_hostile_frames_and_syn_floods', async () => {
    const r = await fuzzFilters({ target: 'rewriter', frames: CI_FRAMES.rewriter, seed: CI_SEED });
    expectClean(r, CI_FRAMES.rewriter);
    for (const k of ['frames rewritten', 'frames passed', 'reentrant frames', 'checkpoint', 'tick', 'c', 'g']) expect(r.counts[k] ?? 0, k).to.be.greaterThan(0);
  });

  it('mirror_and_redirector_over_unix_sockets_deliver_every_frame_intact_in_order', async () => {
    const r = await fuzzFilters({ target: 'sockets', frames: CI_FRAMES.sockets, seed: CI_SEED });
    expectClean(r, CI_FRAMES.sockets);
    for (const k of ['c', 'g', 'i', 'junk']) expect(r.counts[k] ?? 0, k).to.be.greaterThan(0);
  });

  for (const { file, fixture } of loadFilterFixtures()) {
    it(`replays_${file.replace(/\.json$/, '')}`, async () => {
      const f = await runFilterCase(fixture.case);
      expect(f, f === null ? '' : `${f.code} at step ${f.step}: ${f.detail}`).to.equal(null);
    });
  }
});
