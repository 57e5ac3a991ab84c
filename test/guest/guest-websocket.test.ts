// `virtio-net guest --netdev websocket,url=…` end to end (issue #16): the real Linux guest in v86
// on this device, its netdev a WebSocket (WebSocketNetdev, the `ws` package) to `virtio-net relay`
// (in process), whose backend is Debian's passt. The guest leases an address from passt's DHCP
// through the relay and wgets a page from an HTTP server on this host's loopback, which passt
// reaches for the gateway address. All of it crosses the relay both ways; afterwards passt is gone.

import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGuest } from '../../lib/cli/guest.js';
import { guestImageOrSkip } from '../support/v86-guest.js';
import { requireProgram } from '../support/skip.js';
import { startRelay, type StartedRelay } from '../support/relay.js';
import { expectDhcpWget, startTokenServer, writeDhcpWgetScript, type TokenServer } from '../support/guest-dhcp-wget.js';

describe('virtio-net guest --netdev websocket through virtio-net relay (issue #16)', function () {
  this.timeout(900_000);
  let dir: string | undefined;
  let http: TokenServer | undefined;
  let started: StartedRelay | undefined;

  afterEach(async () => {
    await started?.stop().catch(() => undefined);
    await http?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the_v86_guest_leases_from_passt_and_wgets_a_host_page_through_the_relay', async function () {
    requireProgram(this, 'passt');
    guestImageOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'vnm-guest-ws-'));

    http = await startTokenServer('hello-through-the-relay');
    started = await startRelay('passt');
    const url = started.url;
    expect(url).to.match(/^ws:\/\/127\.0\.0\.1:\d+\/$/);

    const script = writeDhcpWgetScript(dir, http.port);

    let stdout = '';
    let stderr = '';
    const code = await runGuest(['--netdev', `websocket,url=${url}`, '--script', script, '--json', '--step-timeout', '120', '--qmp', join(dir, 'qmp.sock')], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
    });
    const context = `exit ${code}\n--- stderr ---\n${stderr.slice(-3000)}\n--- stdout ---\n${stdout.slice(-3000)}`;
    expect(code, context).to.equal(0);
    expect(stderr, 'the guest ran on the websocket netdev').to.include(`websocket ${url}`);
    const { steps, address, gateway } = expectDhcpWget(stdout, context, http);
    expect(steps[0]!.linkUp, "the guest's link is up: the relay connection is open").to.equal(true);

    const r = await started.stop();
    expect(r.backend).to.match(/^passt \(pid \d+/);
    expect(r.relay.connections, JSON.stringify(r.relay)).to.equal(1);
    expect(r.relay.toBackend, 'DHCP, ARP and TCP from the guest reached passt').to.be.greaterThan(5);
    expect(r.relay.toClients, "passt's answers reached the guest").to.be.greaterThan(5);
    expect(r.relay.forBackend).to.equal(r.relay.toBackend + r.relay.backendDrops + r.relay.backendOverflow + r.relay.backendHeld);
    const pid = Number(/pid (\d+)/.exec(r.backend)![1]);
    expect(() => process.kill(pid, 0), 'passt stopped with the relay').to.throw(/ESRCH/);
    console.log(`      guest leased ${address} from ${gateway} through the relay and fetched the page (relay: ${r.relay.toBackend} frames to passt, ${r.relay.toClients} back)`);
  });
});
