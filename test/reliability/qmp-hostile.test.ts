// Hostile management input against a real device (QEMU docs/interop/qmp-spec; lib/qmp/README.md
// "Hostile clients"), beyond test/lib/qmp/hostile-input.test.ts: random byte streams from many
// clients at once, messages cut into partial pieces delivered over many turns or abandoned
// mid-way, slow readers of long pipelined replies, and more clients than the server takes. The
// server never throws or stops, every well-formed request still gets its own reply in order, and
// the device's rx filter — which the guest, not management, owns — is unchanged by any of it.

import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpServer, type QmpDiagnostic } from '../../lib/qmp/index.js';
import { MAX_CLIENTS } from '../../lib/qmp/options.js';
import { NetRig } from '../support/net-rig.js';
import { RawQmpClient } from '../lib/qmp/raw-client.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Waits (bounded) until the server has noticed every closed client. */
async function drained(server: QmpServer, left = 0): Promise<void> {
  for (let i = 0; i < 500 && server.clientCount > left; i++) await new Promise((r) => setTimeout(r, 5));
  expect(server.clientCount, 'clients the server still holds').to.equal(left);
}

/** Reads lines until one with `id` arrives; every other line must be an error (or an event). */
async function untilId(c: RawQmpClient, id: string): Promise<Record<string, unknown>> {
  for (;;) {
    const line = await c.next(`reply ${id}`, 30_000);
    if (line['id'] === id) return line;
    if (!('event' in line)) expect(line, JSON.stringify(line)).to.have.property('error');
  }
}

describe('reliability: hostile QMP clients against a real device', function () {
  this.timeout(120_000);
  let dir: string;
  let server: QmpServer;
  let rig: NetRig;
  let filterBefore: string;
  const diagnostics: QmpDiagnostic[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-reliability-'));
    rig = new NetRig({ id: 'nic0', mac: '52:54:00:12:34:56' });
    server = new QmpServer({ devices: [rig.device], path: join(dir, 'qmp.sock') });
    server.on('diagnostic', (d) => diagnostics.push(d));
    await server.listen();
    filterBefore = JSON.stringify(rig.device.queryRxFilter());
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function goodClientIsServed(tag: string): Promise<void> {
    const good = await RawQmpClient.negotiated(server.address.path);
    const r = await good.execute('query-rx-filter', { name: 'nic0' }, tag);
    expect(r).to.have.property('id', tag);
    expect((r['return'] as { name: string; 'main-mac': string }[])[0]).to.include({ name: 'nic0', 'main-mac': '52:54:00:12:34:56' });
    good.close();
    await good.closed;
  }

  it('many_concurrent_clients_sending_random_bytes_each_resync_and_get_their_reply', async () => {
    const clients = 48;
    const streams = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { numRuns: clients, seed: 8 });
    const conns = await Promise.all(streams.map(() => RawQmpClient.negotiated(server.address.path)));
    await Promise.all(
      conns.map(async (c, i) => {
        const bytes = streams[i]!;
        // Random bytes in random pieces across turns, then 0xFF (resyncs the lexer) and a request.
        for (let at = 0; at < bytes.length; at += 1 + (bytes[at]! % 257)) {
          c.send(bytes.subarray(at, at + 1 + (bytes[at]! % 257)));
          await turn();
        }
        c.send(Buffer.from([0xff]));
        c.send(`{"execute":"query-version","id":"after-${i}"}`);
        const r = await untilId(c, `after-${i}`);
        expect(r, JSON.stringify(r)).to.have.property('return');
      }),
    );
    expect(server.clientCount).to.be.at.least(clients);
    for (const c of conns) c.close();
    await Promise.all(conns.map((c) => c.closed));
    await drained(server);
    await goodClientIsServed('random-bytes');
    expect(JSON.stringify(rig.device.queryRxFilter())).to.equal(filterBefore);
  });

  it('partial_messages_over_many_turns_are_answered_and_abandoned_ones_cost_nothing', async () => {
    const c = await RawQmpClient.negotiated(server.address.path);
    const msg = Buffer.from('{"execute": "query-rx-filter", "arguments": {"name": "nic0"}, "id": "slow-drip"}');
    for (const b of msg) {
      c.send(Buffer.from([b]));
      await turn();
    }
    const r = await untilId(c, 'slow-drip');
    expect((r['return'] as { name: string }[])[0]).to.include({ name: 'nic0' });
    // Clients that vanish in the middle of a message, a string, an escape, a number.
    const cuts = ['{"execute": "query-rx-fi', '{"execute": "query-version", "id": "\\u00', '{"execute": "query-version", "id": 12', '{"arguments": {"name": ['];
    for (const cut of cuts) {
      const d = await RawQmpClient.negotiated(server.address.path);
      d.send(cut);
      await turn();
      d.socket.destroy();
      await d.closed;
    }
    await drained(server, 1);
    expect(await c.execute('query-version', undefined, 'still')).to.have.property('id', 'still');
    c.close();
    await c.closed;
    await goodClientIsServed('partial');
  });

  it('slow_readers_of_long_pipelines_get_every_reply_in_order', async () => {
    const readers = 6;
    const requests = 1500;
    const conns = await Promise.all(Array.from({ length: readers }, () => RawQmpClient.negotiated(server.address.path)));
    await Promise.all(
      conns.map(async (c, k) => {
        const pipeline = Array.from({ length: requests }, (_, i) => `{"execute":"query-version","id":${i}}`).join('');
        c.socket.pause(); // reads nothing while the whole pipeline goes out
        c.send(pipeline);
        await new Promise((res) => setTimeout(res, 50));
        for (let i = 0; i < requests; i++) {
          if (i % 100 === 0) {
            // Read in short bursts with pauses: the server must queue, not drop or reorder.
            c.socket.resume();
            await turn();
            c.socket.pause();
            await new Promise((res) => setTimeout(res, 2 + k));
            c.socket.resume();
          }
          const line = await c.next(`reply ${i} on reader ${k}`, 30_000);
          expect(line).to.have.property('id', i);
          expect(line).to.have.property('return');
        }
      }),
    );
    for (const c of conns) c.close();
    await Promise.all(conns.map((c) => c.closed));
    await drained(server);
    expect(diagnostics.filter((d) => d.code === 'qmp.output-overflow')).to.have.length(0);
    await goodClientIsServed('slow-readers');
  });

  it('clients_beyond_the_limit_are_refused_cleanly_and_the_rest_keep_working', async () => {
    await drained(server);
    const conns: RawQmpClient[] = [];
    for (let i = 0; i < MAX_CLIENTS; i++) conns.push(await RawQmpClient.negotiated(server.address.path));
    const extra = net.connect(server.address.path);
    extra.on('error', () => undefined);
    const closed = new Promise<void>((r) => extra.once('close', () => r()));
    await closed;
    expect(diagnostics.map((d) => d.code)).to.include('qmp.too-many-clients');
    const replies = await Promise.all(conns.map((c, i) => c.execute('query-rx-filter', { name: 'nic0' }, `full-${i}`)));
    replies.forEach((r, i) => expect(r).to.have.property('id', `full-${i}`));
    // Events still reach all of them: the guest changes its filter (promiscuous on).
    expect(rig.cmd(0, 0, [1])).to.equal(0);
    for (const c of conns) expect(await c.next('NIC_RX_FILTER_CHANGED')).to.have.nested.property('data.name', 'nic0');
    for (const c of conns) c.close();
    await Promise.all(conns.map((c) => c.closed));
    await drained(server);
    await goodClientIsServed('after-limit');
    expect(rig.cmd(0, 0, [0])).to.equal(0);
    filterBefore = JSON.stringify(rig.device.queryRxFilter());
  });
});
