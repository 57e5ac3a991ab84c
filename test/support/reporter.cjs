// Mocha reporter: the spec reporter's output, then one closing line in the form CI reads,
// `N passed, N failed` (and `, N skipped` when any test was skipped or pending).
'use strict';
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class CiSummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? this.stats;
      const skipped = s.pending ?? 0;
      const line = `${s.passes} passed, ${s.failures} failed` + (skipped > 0 ? `, ${skipped} skipped` : '');
      // Printed after the spec reporter's epilogue.
      process.nextTick(() => process.stdout.write(`${line}\n`));
    });
  }
}
module.exports = CiSummaryReporter;
