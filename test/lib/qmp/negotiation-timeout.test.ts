// Clients that never finish capabilities negotiation (QEMU docs/interop/qmp-spec, "Capabilities
// Negotiation") must not hold one of the MAX_CLIENTS slots forever: a deadline from connect to a
// successful `qmp_capabilities`, and a shorter limit on silence before it. Timing runs on sinon
// fake timers (setTimeout/clearTimeout only, so socket I/O is real): every "not yet" is asserted
// synchronously after a tick, every "now" on the socket's close event.

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sinon from 'sinon';
import { QmpServer, type QmpDiagnostic } from '../../../lib/qmp/index.js';
import { DEFAULT_NEGOTIATION_TIMEOUT_MS, DEFAULT_UNNEGOTIATED_IDLE_MS, MAX_CLIENTS } from '../../../lib/qmp/options.js';
import { RawQmpClient } from './raw-client.js';

const NEGOTIATION_MS = 5000;
const IDLE_MS = 2000;

describe('lib/qmp negotiation timeout', () => {
  let dir: string;
  let path: string;
  let server: QmpServer;
  let clock: sinon.SinonFakeTimers;
  const clients: RawQmpClient[] = [];
  const diagnostics: QmpDiagnostic[] = [];

  async function connect(): Promise<RawQmpClient> {
    const c = await RawQmpClient.connect(path);
    clients.push(c);
    await c.next('greeting'); // the server armed its timers before it wrote the greeting
    return c;
  }

  beforeEach(async () => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    dir = await mkdtemp(join(tmpdir(), 'qmp-negotiation-'));
    path = join(dir, 'qmp.sock');
    server = new QmpServer({ devices: [], path, negotiationTimeoutMs: NEGOTIATION_MS, unnegotiatedIdleMs: IDLE_MS });
    diagnostics.length = 0;
    server.on('diagnostic', (d) => diagnostics.push(d));
    await server.listen();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    clock.restore();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('unnegotiated_client_is_disconnected_after_the_negotiation_timeout', async () => {
    const c = await connect();
    // Never silent for the idle limit (each request gets its error reply), yet never negotiating.
    for (let elapsed = 0; elapsed < NEGOTIATION_MS; ) {
      expect(server.clientCount, `clients after ${elapsed} ms`).to.equal(1);
      expect(await c.execute('query-version')).to.have.nested.property('error.class', 'CommandNotFound');
      const step = Math.min(IDLE_MS - 1, NEGOTIATION_MS - elapsed);
      clock.tick(step);
      elapsed += step;
    }
    expect(server.clientCount).to.equal(0);
    await c.closed;
    expect(c.takeBuffered()).to.deep.equal([
      { error: { class: 'GenericError', desc: `Capabilities negotiation timed out: no 'qmp_capabilities' within ${NEGOTIATION_MS} ms` } },
    ]);
    expect(diagnostics).to.deep.equal([{ code: 'qmp.negotiation-timeout', client: 1, reason: 'deadline', limitMs: NEGOTIATION_MS }]);
  });

  it('silent_unnegotiated_client_is_disconnected_after_the_idle_limit', async () => {
    const c = await connect();
    clock.tick(IDLE_MS - 1);
    expect(server.clientCount).to.equal(1);
    // Any input restarts the idle limit (here a request that gets an error reply).
    expect(await c.execute('query-version')).to.have.nested.property('error.class', 'CommandNotFound');
    clock.tick(IDLE_MS - 1);
    expect(server.clientCount).to.equal(1);
    clock.tick(1);
    expect(server.clientCount).to.equal(0);
    await c.closed;
    expect(c.takeBuffered()).to.deep.equal([
      { error: { class: 'GenericError', desc: `Capabilities negotiation timed out: no input for ${IDLE_MS} ms` } },
    ]);
    expect(diagnostics).to.deep.equal([{ code: 'qmp.negotiation-timeout', client: 1, reason: 'idle', limitMs: IDLE_MS }]);
  });

  it('negotiated_client_is_never_timed_out', async () => {
    const c = await connect();
    expect(await c.execute('qmp_capabilities')).to.deep.equal({ return: {} });
    clock.tick(NEGOTIATION_MS * 10);
    expect(c.ended).to.equal(false);
    expect(await c.execute('query-version', undefined, 'later')).to.have.property('id', 'later');
    expect(diagnostics).to.deep.equal([]);
  });

  it('slots_held_by_unnegotiated_clients_are_freed_for_new_clients', async () => {
    const idle = await Promise.all(Array.from({ length: MAX_CLIENTS }, () => connect()));
    const refused = await RawQmpClient.connect(path);
    await refused.closed;
    expect(refused.rawLines).to.deep.equal([]);
    clock.tick(IDLE_MS);
    expect(server.clientCount).to.equal(0);
    await Promise.all(idle.map((c) => c.closed));
    const late = await connect();
    expect(await late.execute('qmp_capabilities')).to.deep.equal({ return: {} });
    expect(server.clientCount).to.equal(1);
  });

  it('timeouts_have_defaults_and_bad_values_throw_naming_the_option', () => {
    expect(DEFAULT_UNNEGOTIATED_IDLE_MS).to.be.lessThan(DEFAULT_NEGOTIATION_TIMEOUT_MS);
    const make = (o: object) => () => new QmpServer({ devices: [], path, ...o } as ConstructorParameters<typeof QmpServer>[0]);
    expect(make({ negotiationTimeoutMs: 0 })).to.throw(TypeError, /options\.negotiationTimeoutMs must be an integer from 1 to/);
    expect(make({ unnegotiatedIdleMs: 1.5 })).to.throw(TypeError, /options\.unnegotiatedIdleMs must be an integer from 1 to/);
    expect(make({})).to.not.throw();
  });
});
