// Hostile clients: more than 10,000 malformed messages (bad JSON, wrong types, unknown commands,
// non-object top level, random bytes, messages split at random points), a huge message and a
// client that never reads, over several connections at once. Each malformed message gets a QMP
// error (or the connection a clean close), and a well-formed client is served throughout.

import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpServer, type QmpDiagnostic } from '../../../lib/qmp/index.js';
import { FakeNic } from './fake-nic.js';
import { RawQmpClient, type Line } from './raw-client.js';

/** Malformed messages that each get exactly one error reply (after negotiation). */
const oneErrorEach = (n: fc.Arbitrary<number>, s: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constant('{"execute":"query-version",}'),
    fc.constant('{"execute" "query-version"}'),
    fc.constant('{execute:1}'),
    fc.constant('{"a":1 "b":2}'),
    fc.constant('[1 2]'),
    fc.constant('{"a":"\\q"}'),
    fc.constant('{"id":1,"id":2}'),
    fc.constant('{"x":"\\ud800"}'),
    fc.constant('}'),
    fc.constant(']'),
    fc.constant('@'),
    fc.constant('{"execute":"qmp_capabilities"}'),
    fc.constant('{"execute":"set_link","arguments":{"name":"net0"}}'),
    fc.constant('{"execute":"query-rx-filter","arguments":{"name":"hostnet0"}}'),
    fc.constant('{"execute":"query-version","arguments":[]}'),
    n.map((i) => `[${i}]`),
    n.map((i) => `${i} `),
    s.map((t) => `${JSON.stringify(t)}`),
    n.map((i) => `{"execute":${i}}`),
    n.map((i) => `{"id":${i}}`),
    n.map((i) => `{"execute":"set_link","arguments":{"name":${i},"up":true}}`),
    s.map((t) => `{"execute":"set_link","arguments":{"name":"net0","up":${JSON.stringify(t)}}}`),
    s.map((t) => `{"execute":${JSON.stringify(`no-such-${t}`)},"id":${JSON.stringify(t)}}`),
    s.map((t) => `{"execute":"query-rx-filter","arguments":{"name":${JSON.stringify(`x-${t}`)}}}`),
    s.map((t) => `{"execute":"query-version","arguments":{${JSON.stringify(t)}:1}}`),
    s.map((t) => `{"execute":"query-version",${JSON.stringify(`k${t}`)}:1}`),
  );

/**
 * Joins messages and cuts the bytes into random pieces, as a stream socket may deliver them. The
 * newline between messages matters only after a stray byte: error recovery skips input up to a
 * structural character or a line end, as QEMU's does, so without it the next message could be
 * skipped rather than answered.
 */
function chunked(messages: string[], cuts: number[]): Buffer[] {
  const bytes = Buffer.from(messages.join('\n'));
  const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}

async function linesUntil(c: RawQmpClient, count: number, what: string): Promise<Line[]> {
  const out: Line[] = [];
  while (out.length < count) out.push(await c.next(`${what} (${out.length + 1} of ${count})`, 20000));
  return out;
}

describe('lib/qmp hostile input', function () {
  this.timeout(60000);
  let dir: string;
  let server: QmpServer;
  let nic: FakeNic;
  const diagnostics: QmpDiagnostic[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-hostile-'));
    nic = new FakeNic('net0', {}, { id: 'hostnet0' });
    server = new QmpServer({ devices: [nic], path: join(dir, 'qmp.sock'), maxMessageBytes: 64 * 1024, maxOutputBytes: 256 * 1024 });
    server.on('diagnostic', (d) => diagnostics.push(d));
    await server.listen();
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The well-formed client's check: a query answers correctly and the event path works. */
  async function goodClientIsServed(good: RawQmpClient, round: number): Promise<void> {
    const reply = await good.execute('query-rx-filter', { name: 'net0' }, `good-${round}`);
    expect(reply).to.have.property('id', `good-${round}`);
    expect((reply['return'] as { name: string }[])[0]).to.include({ name: 'net0' });
    nic.change({ promiscuous: round % 2 === 0 });
    expect(await good.next(`event ${round}`)).to.have.nested.property('data.name', 'net0');
  }

  it('ten_thousand_malformed_messages_each_get_an_error_and_a_good_client_is_served', async () => {
    const path = server.address.path;
    const good = await RawQmpClient.negotiated(path);
    const perConnection = 3000;
    const connections = 4;
    const batches = fc.sample(
      fc.tuple(
        fc.array(oneErrorEach(fc.integer(), fc.string({ maxLength: 20 })), { minLength: perConnection, maxLength: perConnection }),
        fc.array(fc.nat(), { maxLength: 2000 }),
      ),
      { numRuns: connections, seed: 20240611 },
    );
    const hostile = await Promise.all(batches.map(() => RawQmpClient.negotiated(path)));
    let sent = 0;
    const replies = await Promise.all(
      hostile.map(async (c, i) => {
        const [messages, cuts] = batches[i]!;
        for (const piece of chunked(messages, cuts)) c.send(piece);
        sent += messages.length;
        return linesUntil(c, messages.length, `replies on connection ${i}`);
      }),
    );
    expect(sent).to.be.at.least(10000);
    for (const lines of replies) {
      for (const line of lines) {
        expect(line, JSON.stringify(line)).to.have.property('error');
        expect(['GenericError', 'CommandNotFound']).to.include((line['error'] as { class: string }).class);
      }
    }
    await goodClientIsServed(good, 1);
    for (const c of hostile) {
      expect(await c.execute('query-version', undefined, 'still-there')).to.have.property('id', 'still-there');
      c.close();
    }
    good.close();
  });

  it('random_bytes_get_only_errors_and_a_0xff_byte_resyncs_the_stream', async () => {
    const path = server.address.path;
    const good = await RawQmpClient.negotiated(path);
    const noise = fc.sample(fc.uint8Array({ minLength: 20000, maxLength: 20000 }), { numRuns: 3, seed: 7 });
    const clients = await Promise.all(noise.map(() => RawQmpClient.negotiated(path)));
    await Promise.all(
      clients.map(async (c, i) => {
        // One piece of noise, then 0xFF (never valid UTF-8: it resets QEMU's and our lexer) and a
        // good request, whose reply must come after errors only. Waiting for it each round keeps
        // the client's unread output within the bound (every stray byte costs an error line).
        for (let at = 0, round = 0; at < noise[i]!.length; at += 997, round++) {
          c.send(noise[i]!.subarray(at, at + 997));
          c.send(Buffer.from([0xff]));
          c.send(`{"execute":"query-version","id":"after-noise-${round}"}`);
          for (;;) {
            const line = await c.next(`reply after noise round ${round} on ${i}`, 20000);
            if (line['id'] === `after-noise-${round}` && 'return' in line) break;
            expect(line, JSON.stringify(line)).to.have.property('error');
          }
        }
        c.close();
      }),
    );
    await goodClientIsServed(good, 2);
    good.close();
  });

  it('oversized_message_gets_an_error_then_a_clean_close', async () => {
    const good = await RawQmpClient.negotiated(server.address.path);
    const c = await RawQmpClient.negotiated(server.address.path);
    c.send(`{"execute":"query-version","id":"${'z'.repeat(200 * 1024)}"}`);
    expect(await c.next('size error')).to.deep.equal({
      error: { class: 'GenericError', desc: 'JSON message size limit exceeded (65536 bytes)' },
    });
    await c.closed;
    expect(diagnostics.map((d) => d.code)).to.include('qmp.message-too-large');
    await goodClientIsServed(good, 3);
    good.close();
  });

  it('client_that_never_reads_is_disconnected_at_the_output_bound', async () => {
    const good = await RawQmpClient.negotiated(server.address.path);
    const before = server.clientCount;
    const lazy = net.connect(server.address.path);
    lazy.on('error', () => undefined);
    await new Promise<void>((r) => lazy.once('connect', () => r()));
    lazy.pause(); // never reads: the kernel buffer fills, then the server's queue
    const dropped = new Promise<void>((r) =>
      server.on('diagnostic', (d) => {
        if (d.code === 'qmp.output-overflow') r();
      }),
    );
    lazy.write('{"execute":"qmp_capabilities"}');
    const request = Buffer.from('{"execute":"query-rx-filter"}'.repeat(1000));
    for (let i = 0; i < 100 && !lazy.destroyed; i++) lazy.write(request);
    await dropped;
    for (let i = 0; i < 100 && server.clientCount > before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.clientCount).to.equal(before);
    lazy.destroy();
    await goodClientIsServed(good, 4);
    good.close();
  });

  it('unnegotiated_client_gets_errors_and_no_events', async () => {
    const good = await RawQmpClient.negotiated(server.address.path);
    const c = await RawQmpClient.connect(server.address.path);
    await c.next('greeting');
    const messages = fc.sample(
      oneErrorEach(fc.integer(), fc.string({ maxLength: 8 })).filter((m) => !m.includes('qmp_capabilities')),
      { numRuns: 500, seed: 99 },
    );
    c.send(messages.join('\n'));
    nic.change({ unicast: 'all' });
    const lines = await linesUntil(c, messages.length, 'unnegotiated replies');
    expect(lines.every((l) => 'error' in l && !('event' in l))).to.equal(true);
    await goodClientIsServed(good, 5);
    c.close();
    good.close();
  });
});
