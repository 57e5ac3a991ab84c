// `virtio-net guest --netdev websocket,url=…` end to end (issue #16): the real Linux guest in v86
// on this device, its netdev a WebSocket (WebSocketNetdev, the `ws` package) to `virtio-net relay`
// (in process), whose backend is Debian's passt. The guest leases an address from passt's DHCP
// through the relay and wgets a page from an HTTP server on this host's loopback, which passt
// reaches for the gateway address. All of it crosses the relay both ways; afterwards passt is gone.

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseNetdev } from '../../lib/cli/args.js';
import { runGuest } from '../../lib/cli/guest.js';
import { relay } from '../../lib/cli/relay.js';
import type { RelayResult } from '../../lib/cli/relay.js';
import { guestImageOrSkip } from '../support/v86-guest.js';
import { requireProgram } from '../support/skip.js';

interface Step {
  step: string;
  exitCode: number;
  output: string;
  linkUp: boolean;
}

describe('virtio-net guest --netdev websocket through virtio-net relay (issue #16)', function () {
  this.timeout(900_000);
  let dir: string | undefined;
  let http: Server | undefined;
  const stopRelay = new AbortController();
  let relayJob: Promise<RelayResult> | null = null;

  afterEach(async () => {
    stopRelay.abort();
    await relayJob?.catch(() => undefined);
    await new Promise<void>((r) => (http === undefined ? r() : http.close(() => r())));
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the_v86_guest_leases_from_passt_and_wgets_a_host_page_through_the_relay', async function () {
    requireProgram(this, 'passt');
    guestImageOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'vnm-guest-ws-'));

    const token = `hello-through-the-relay-${randomBytes(6).toString('hex')}`;
    const peers: string[] = [];
    http = createServer((req, res) => {
      peers.push(req.socket.remoteAddress ?? '');
      res.end(`${token}\n`);
    });
    await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
    const port = (http.address() as { port: number }).port;

    let url = '';
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    relayJob = relay({ host: '127.0.0.1', port: 0, spec: parseNetdev('passt'), durationMs: null, json: true, signal: stopRelay.signal, onListening: (u) => ((url = u), listening()) }, () => undefined);
    await Promise.race([ready, relayJob]);
    expect(url).to.match(/^ws:\/\/127\.0\.0\.1:\d+\/$/);

    const script = join(dir, 'steps.sh');
    writeFileSync(
      script,
      [
        'ip link set eth0 up',
        // busybox udhcpc configures nothing itself: a two-line script applies the lease.
        `printf '#!/bin/sh\\n[ "$1" = bound ] || exit 0\\nip addr add $ip/$mask dev $interface\\nip route add default via $router\\n' > /tmp/dhcp.sh && chmod +x /tmp/dhcp.sh`,
        'udhcpc -i eth0 -n -q -t 5 -s /tmp/dhcp.sh',
        'ip route',
        `wget -q -O - http://$(ip route | awk '/default/ {print $3}'):${port}/`,
      ].join('\n'),
    );

    let stdout = '';
    let stderr = '';
    const code = await runGuest(['--netdev', `websocket,url=${url}`, '--script', script, '--json', '--step-timeout', '120', '--qmp', join(dir, 'qmp.sock')], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
    });
    const context = `exit ${code}\n--- stderr ---\n${stderr.slice(-3000)}\n--- stdout ---\n${stdout.slice(-3000)}`;
    expect(code, context).to.equal(0);
    expect(stderr, 'the guest ran on the websocket netdev').to.include(`websocket ${url}`);
    const steps = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Step);
    expect(steps.map((s) => s.exitCode), context).to.deep.equal([0, 0, 0, 0, 0]);
    expect(steps[0]!.linkUp, "the guest's link is up: the relay connection is open").to.equal(true);
    const lease = /lease of (\d+\.\d+\.\d+\.\d+) obtained from (\d+\.\d+\.\d+\.\d+)/.exec(steps[2]!.output);
    expect(lease, steps[2]!.output).to.not.equal(null);
    expect(steps[3]!.output).to.match(new RegExp(`default via ${lease![2]!.replace(/\./g, '\\.')} dev eth0`));
    expect(steps[4]!.output).to.equal(`${token}\n`);
    expect(peers.length, 'the HTTP server was reached').to.be.greaterThan(0);
    expect(peers.every((p) => p === '127.0.0.1' || p === '::ffff:127.0.0.1'), `peers ${peers.join(', ')}`).to.equal(true);

    stopRelay.abort();
    const r = await relayJob;
    relayJob = null;
    expect(r.backend).to.match(/^passt \(pid \d+/);
    expect(r.relay.connections, JSON.stringify(r.relay)).to.equal(1);
    expect(r.relay.toBackend, 'DHCP, ARP and TCP from the guest reached passt').to.be.greaterThan(5);
    expect(r.relay.toClients, "passt's answers reached the guest").to.be.greaterThan(5);
    expect(r.relay.forBackend).to.equal(r.relay.toBackend + r.relay.backendDrops + r.relay.backendOverflow + r.relay.backendHeld);
    const pid = Number(/pid (\d+)/.exec(r.backend)![1]);
    expect(() => process.kill(pid, 0), 'passt stopped with the relay').to.throw(/ESRCH/);
    console.log(`      guest leased ${lease![1]} from ${lease![2]} through the relay and fetched the page (relay: ${r.relay.toBackend} frames to passt, ${r.relay.toClients} back)`);
  });
});
