// The QMP input stream: message boundaries by brace counting (no newline needed), any split of the
// bytes across reads, QEMU's error texts and recovery, and the limits.

import { expect } from 'chai';
import fc from 'fast-check';
import { JsonMessageStream, MAX_INTEGER_DIGITS, MAX_NESTING, jsonText, type JsonValue } from '../../../lib/qmp/index.js';

type Event = { message: JsonValue } | { invalid: string } | { tooLarge: number };

function collect(maxBytes = 1 << 20): { stream: JsonMessageStream; events: Event[] } {
  const events: Event[] = [];
  const stream = new JsonMessageStream(
    {
      message: (v) => events.push({ message: v }),
      invalid: (desc) => events.push({ invalid: desc }),
      tooLarge: (limit) => events.push({ tooLarge: limit }),
    },
    maxBytes,
  );
  return { stream, events };
}

const enc = new TextEncoder();
function run(text: string | Uint8Array, maxBytes?: number): Event[] {
  const { stream, events } = collect(maxBytes);
  stream.feed(typeof text === 'string' ? enc.encode(text) : text);
  return events;
}

/**
 * Plain objects for comparison (the stream builds null-prototype objects). A bigint (an integer
 * literal beyond 2^53) becomes the number JSON.parse would make of the same text.
 */
function plain(events: Event[]): unknown {
  return JSON.parse(JSON.stringify(events, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)));
}

describe('lib/qmp json-stream', () => {
  it('merged_messages_without_newlines_come_out_one_by_one', () => {
    expect(plain(run('{"a":1}{"b":[2,3]}  {"c":{}}\n[]'))).to.deep.equal([
      { message: { a: 1 } },
      { message: { b: [2, 3] } },
      { message: { c: {} } },
      { message: [] },
    ]);
  });

  it('top_level_scalars_are_messages_of_their_own', () => {
    expect(plain(run('1 "s" true null -2.5e3 '))).to.deep.equal([
      { message: 1 },
      { message: 's' },
      { message: true },
      { message: null },
      { message: -2500 },
    ]);
  });

  it('a_number_at_the_end_of_input_waits_for_its_delimiter', () => {
    const { stream, events } = collect();
    stream.feed(enc.encode('12'));
    expect(events).to.deep.equal([]);
    stream.feed(enc.encode('3 '));
    expect(events).to.deep.equal([{ message: 123 }]);
  });

  it('integers_beyond_2_53_parse_exactly_and_print_back_unchanged', () => {
    const text = '[9007199254740993,-9223372036854775809,18446744073709551615,9007199254740991,-9007199254740992,1e20,0.5,-0]';
    const [e] = run(`${text} `) as { message: JsonValue[] }[];
    expect(e!.message).to.deep.equal([9007199254740993n, -9223372036854775809n, 18446744073709551615n, 9007199254740991, -9007199254740992n, 1e20, 0.5, -0]);
    // Other numbers are doubles, written as JSON.stringify writes them (the same values).
    expect(jsonText(e!.message)).to.equal(text.replace('1e20', '100000000000000000000').replace('-0]', '0]'));
    // Every integer literal a client may send as an id (any length up to the limit) comes back as sent.
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 60n), max: 10n ** 60n }), (n) => {
        const [m] = run(`{"id":${n}} `) as { message: { id: JsonValue } }[];
        expect(jsonText(m!.message.id)).to.equal(String(n));
      }),
      { numRuns: 300 },
    );
  });

  it('integer_longer_than_the_digit_limit_is_a_parse_error_not_a_rounded_number', () => {
    const limit = '7'.repeat(MAX_INTEGER_DIGITS);
    expect(run(`[${limit},-${limit}] `)).to.deep.equal([{ message: [BigInt(limit), -BigInt(limit)] }]);
    expect(run(`{"id":${limit}7}{"id":1}`)).to.deep.equal([
      { invalid: `JSON parse error, integer with more than ${MAX_INTEGER_DIGITS} digits` },
      { message: { id: 1 } },
    ]);
  });

  it('strings_decode_escapes_utf8_and_surrogate_pairs', () => {
    const [e] = run(String.raw`["a\"b\\c\/d\b\f\n\r\t", 'it\'s "q"', "\u00e9\ud83d\ude00", "é€😀", "\u0000"]`) as { message: string[] }[];
    expect(e!.message).to.deep.equal(['a"b\\c/d\b\f\n\r\t', `it's "q"`, 'é😀', 'é€😀', '\0']);
  });

  it('objects_have_no_prototype_so_proto_keys_are_plain_data', () => {
    const [e] = run('{"__proto__":{"polluted":1},"constructor":2}') as { message: Record<string, unknown> }[];
    const v = e!.message;
    expect(Object.getPrototypeOf(v)).to.equal(null);
    expect(Object.keys(v)).to.deep.equal(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
  });

  it('grammar_errors_are_reported_once_when_the_message_ends', () => {
    expect(run('{"a":1,}{"a" 1}{"a":1 "b":2}[1 2]{1:2}{"a":tru}{"a":1,"a":2}{,}[,]')).to.deep.equal([
      { invalid: 'JSON parse error, expecting value' },
      { invalid: 'JSON parse error, missing : in object pair' },
      { invalid: 'JSON parse error, expected separator in dict' },
      { invalid: 'JSON parse error, expected separator in list' },
      { invalid: 'JSON parse error, key is not a string in object' },
      { invalid: "JSON parse error, invalid keyword 'tru'" },
      { invalid: 'JSON parse error, duplicate key' },
      { invalid: 'JSON parse error, expecting value' },
      { invalid: 'JSON parse error, expecting value' },
    ]);
  });

  it('closing_brackets_at_top_level_are_each_an_error_like_qemu', () => {
    expect(plain(run('{"a":1}}]'))).to.deep.equal([
      { message: { a: 1 } },
      { invalid: 'JSON parse error, expecting value' },
      { invalid: 'JSON parse error, expecting value' },
    ]);
  });

  it('mismatched_brackets_wait_for_both_counts_then_error', () => {
    const { stream, events } = collect();
    stream.feed(enc.encode('{"a":[1,2}'));
    expect(events).to.deep.equal([]); // a bracket is still open, as in QEMU
    stream.feed(enc.encode(']'));
    expect(events).to.deep.equal([{ invalid: 'JSON parse error, expected separator in list' }]);
  });

  it('a_stray_byte_costs_one_error_and_input_from_the_next_structural_character_parses', () => {
    expect(plain(run('@@{"a":1} 01 {"b":2} -x {"c":3} \x01{"d":4} ab@cd {"e":5}'))).to.deep.equal([
      { invalid: "JSON parse error, stray '@'" },
      { message: { a: 1 } },
      { invalid: "JSON parse error, stray '01'" },
      { message: { b: 2 } },
      { invalid: "JSON parse error, stray '-x'" },
      { message: { c: 3 } },
      { invalid: "JSON parse error, stray '\u0001'" },
      { message: { d: 4 } },
      { invalid: "JSON parse error, invalid keyword 'ab'" },
      { invalid: "JSON parse error, stray '@'" },
      { message: { e: 5 } },
    ]);
  });

  it('recovery_skips_spaces_and_values_but_stops_at_structure_and_line_ends', () => {
    // Each as QEMU 7.2 answers it: the rest of the bad token is skipped, the '}' is an error.
    expect(plain(run('{"a":TRUE} {"a":.5} {"a":+1}'))).to.deep.equal([
      { invalid: "JSON parse error, stray 'T'" },
      { invalid: 'JSON parse error, expecting value' },
      { invalid: "JSON parse error, stray '.'" },
      { invalid: 'JSON parse error, expecting value' },
      { invalid: "JSON parse error, stray '+'" },
      { invalid: 'JSON parse error, expecting value' },
    ]);
    expect(plain(run('@ "swallowed" 12 true\n"kept" '))).to.deep.equal([
      { invalid: "JSON parse error, stray '@'" },
      { message: 'kept' },
    ]);
  });

  it('a_0xff_byte_aborts_a_partial_message', () => {
    expect(plain(run(new Uint8Array([...enc.encode('{"execute":'), 0xff, ...enc.encode('{"ok":true}')])))).to.deep.equal([
      { invalid: "JSON parse error, stray '\uFFFD'" },
      { message: { ok: true } },
    ]);
  });

  it('control_character_inside_a_string_is_stray', () => {
    expect(run('"a\nb"')[0]).to.deep.equal({ invalid: 'JSON parse error, stray \'"a\n\'' });
  });

  it('invalid_utf8_and_bad_unicode_escapes_in_strings_are_parse_errors', () => {
    expect(run(new Uint8Array([0x22, 0xe2, 0x82, 0x22]))).to.deep.equal([{ invalid: 'JSON parse error, invalid UTF-8 sequence in string' }]);
    expect(run(String.raw`"\udc00"`)).to.deep.equal([{ invalid: String.raw`JSON parse error, \udc00 is not a valid Unicode character` }]);
    expect(run(String.raw`"\ud800\u0041"`)).to.deep.equal([{ invalid: String.raw`JSON parse error, \ud800 is not a valid Unicode character` }]);
    expect(run(String.raw`"\uZZZZ"`)).to.deep.equal([{ invalid: String.raw`JSON parse error, \uZZZZ is not a valid Unicode character` }]);
    expect(run(String.raw`"\q"`)).to.deep.equal([{ invalid: 'JSON parse error, invalid escape sequence in string' }]);
  });

  it('long_bad_token_is_quoted_short', () => {
    const [e] = run(`"${'x'.repeat(5000)}\x02"`) as { invalid: string }[];
    expect(e!.invalid.length).to.be.lessThan(120);
    expect(e!.invalid).to.match(/^JSON parse error, stray '"x+\.\.\.'$/);
  });

  it('nesting_deeper_than_qemus_limit_is_an_error_and_the_stream_goes_on', () => {
    expect(run('['.repeat(MAX_NESTING) + ']'.repeat(MAX_NESTING))).to.have.length(1);
    const events = run('['.repeat(MAX_NESTING + 1) + ' {"after":1}');
    expect(events[0]).to.deep.equal({ invalid: 'JSON nesting depth limit exceeded' });
    expect(plain(events.slice(-1))).to.deep.equal([{ message: { after: 1 } }]);
  });

  it('message_over_the_byte_limit_stops_the_stream', () => {
    const { stream, events } = collect(1024);
    stream.feed(enc.encode(`{"a":"${'y'.repeat(2000)}"}`));
    expect(events).to.deep.equal([{ tooLarge: 1024 }]);
    expect(stream.stopped).to.equal(true);
    stream.feed(enc.encode('{"b":1}'));
    expect(events).to.have.length(1);
  });

  it('whitespace_between_messages_does_not_count_towards_the_limit', () => {
    const { stream, events } = collect(1024);
    for (let i = 0; i < 100; i++) stream.feed(enc.encode(`${' '.repeat(100)}{"i":${i}}\n`));
    expect(events).to.have.length(100);
    expect(stream.stopped).to.equal(false);
  });

  it('any_split_of_the_bytes_gives_the_same_events', () => {
    const message = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.constantFrom('{"a":1,}', '@', '[1 2]', "{'k':'v'}", '{"x":"\\ud800"}', '01', '}'),
    );
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (messages, cuts) => {
        // A separator after each message so trailing numbers and keywords end.
        const bytes = enc.encode(messages.join(' ') + ' ');
        const whole = plain(run(bytes));
        const { stream, events } = collect();
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        let from = 0;
        for (const p of [...points, bytes.length]) {
          stream.feed(bytes.subarray(from, p));
          from = p;
        }
        expect(plain(events)).to.deep.equal(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('valid_json_values_round_trip', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const events = run(`${JSON.stringify(v)} `);
        expect(plain(events)).to.deep.equal([{ message: JSON.parse(JSON.stringify(v)) }]);
      }),
      { numRuns: 300 },
    );
  });

  it('random_bytes_never_throw_and_every_event_is_well_formed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const events = run(bytes, 4096);
        for (const e of events) {
          if ('invalid' in e) expect(e.invalid).to.be.a('string');
        }
      }),
      { numRuns: 500 },
    );
  });
});
