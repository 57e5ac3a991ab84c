// The message of the UsageError a CLI parse throws (test/lib/cli/*-args tests); fails the test when
// it throws something else or nothing.

import { expect } from 'chai';
import { UsageError } from '../../lib/cli/args.js';

export function usageMessage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(UsageError);
    return (e as Error).message;
  }
  return expect.fail('no UsageError');
}
