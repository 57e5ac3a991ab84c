// Operation-sequence fuzzing of the device's guest interface (VIRTIO 1.2 §2.7 rings, §3.1
// initialisation, §5.1.6 the network device), CI's bounded run: at least 10^5 driver operations
// over random sequences (setup: transport, queue pairs, offered features, ring size), every oracle
// of world.ts and oracle.ts checked after every operation; then every shrunk counterexample kept
// under test/fixtures/fuzz/ replayed. Long runs: `npm run fuzz -- --ops N --seed S`.

import { expect } from 'chai';
import { fuzz, loadFixtures } from './fixtures.js';
import { runCase } from './oracle.js';

/** CI budget: operations per run (the issue asks for at least 10^5). */
const CI_OPS = 100_000;
/** Fixed seed, so CI runs the same sequences every time (long runs vary it). */
const CI_SEED = 20261121;

describe('fuzz: guest operation sequences', function () {
  this.timeout(240_000);

  it('random_driver_operation_sequences_keep_every_oracle', () => {
    const r = fuzz({ ops: CI_OPS, seed: CI_SEED });
    const f = r.failure;
    expect(f, f === null ? '' : `${f.failure.code} at step ${f.failure.step}: ${f.failure.detail}\n${JSON.stringify(f.case)}`).to.equal(null);
    expect(r.ops).to.be.at.least(CI_OPS);
    expect(r.cases).to.be.greaterThan(100);
  });

  const fixtures = loadFixtures();
  for (const { file, fixture } of fixtures) {
    // A fixture whose bug is still open is skipped (the suite stays green) and says why.
    const test = fixture.openBug === undefined ? it : it.skip;
    const title = `replays_${file.replace(/\.json$/, '')}` + (fixture.openBug === undefined ? '' : ` (open bug: ${fixture.openBug})`);
    test(title, () => {
      const f = runCase(fixture.case, undefined, fixture.oracles ?? {});
      expect(f, f === null ? '' : `${f.code} at step ${f.step}: ${f.detail}`).to.equal(null);
    });
  }
});
