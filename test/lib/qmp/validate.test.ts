// Argument checks on values as the JSON stream delivers them (lib/qmp/validate.ts): integers beyond
// 2^53 are refused rather than rounded, with QEMU 7.2's texts where QEMU refuses the same value
// (checked against a running QEMU 7.2: migrate-set-parameters' uint8, balloon's int) and in its
// "Parameter '%s' expects %s" style where QEMU would accept it; strings are capped.

import { expect } from 'chai';
import { JsonMessageStream, type JsonObject } from '../../../lib/qmp/index.js';
import { MAX_STRING_ARGUMENT_BYTES } from '../../../lib/qmp/options.js';
import type { QmpMembers } from '../../../lib/qmp/schema-types.js';
import { checkArguments } from '../../../lib/qmp/validate.js';

/** Parses one message exactly as a connection does. */
function parse(text: string): JsonObject {
  const out: unknown[] = [];
  const stream = new JsonMessageStream({ message: (v) => out.push(v), invalid: (d) => out.push(d), tooLarge: () => out.push('too large') }, 1 << 20);
  stream.feed(new TextEncoder().encode(text));
  expect(out).to.have.length(1);
  return out[0] as JsonObject;
}

function check(members: QmpMembers, argsText: string): string | undefined {
  return checkArguments(members, parse(argsText), {});
}

const SAFE = 'a value between -9007199254740991 and 9007199254740991';

describe('lib/qmp validate', () => {
  it('int_argument_beyond_2_53_is_refused_never_rounded', () => {
    expect(check({ n: 'int' }, '{"n":9007199254740991}')).to.equal(undefined);
    expect(check({ n: 'int' }, '{"n":-9007199254740991}')).to.equal(undefined);
    // Within int64 QEMU takes it; we cannot hold it exactly as a number, so: a clear refusal.
    expect(check({ n: 'int' }, '{"n":9007199254740993}')).to.equal(`Parameter 'n' expects ${SAFE}`);
    expect(check({ n: 'int' }, '{"n":-9223372036854775808}')).to.equal(`Parameter 'n' expects ${SAFE}`);
    // Beyond int64 QEMU refuses it as it does a double.
    expect(check({ n: 'int' }, '{"n":9223372036854775808}')).to.equal("Invalid parameter type for 'n', expected: integer");
    expect(check({ n: 'int' }, '{"n":-9223372036854775809}')).to.equal("Invalid parameter type for 'n', expected: integer");
  });

  it('number_argument_written_as_an_integer_beyond_2_53_is_refused_never_rounded', () => {
    expect(check({ x: 'number' }, '{"x":9007199254740991}')).to.equal(undefined);
    expect(check({ x: 'number' }, '{"x":1e300}')).to.equal(undefined);
    expect(check({ x: 'number' }, '{"x":9007199254740993}')).to.equal(`Parameter 'x' expects ${SAFE}`);
  });

  it('unsigned_argument_beyond_2_53_gets_qemus_range_texts', () => {
    expect(check({ u: 'uint8' }, '{"u":1152921504606846976}')).to.equal("Parameter 'u' expects uint8_t");
    expect(check({ u: 'uint32' }, '{"u":18446744073709551615}')).to.equal("Parameter 'u' expects uint32_t");
    expect(check({ u: 'uint16' }, '{"u":-9223372036854775808}')).to.equal("Parameter 'u' expects uint16_t");
    expect(check({ u: 'uint8' }, '{"u":18446744073709551616}')).to.equal("Parameter 'u' expects uint64");
    expect(check({ u: 'uint8' }, '{"u":-9223372036854775809}')).to.equal("Parameter 'u' expects uint64");
  });

  it('string_argument_longer_than_the_cap_is_refused_naming_it', () => {
    const atCap = 'é'.repeat(MAX_STRING_ARGUMENT_BYTES / 2);
    expect(check({ name: 'str' }, JSON.stringify({ name: atCap }))).to.equal(undefined);
    expect(check({ name: 'str' }, JSON.stringify({ name: `${atCap}x` }))).to.equal(
      `Parameter 'name' expects a string of at most ${MAX_STRING_ARGUMENT_BYTES} bytes`,
    );
    expect(check({ '*list': ['str'] }, JSON.stringify({ list: ['ok', 'y'.repeat(100_000)] }))).to.equal(
      `Parameter 'list[1]' expects a string of at most ${MAX_STRING_ARGUMENT_BYTES} bytes`,
    );
  });
});
