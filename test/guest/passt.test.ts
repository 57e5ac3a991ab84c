// `virtio-net guest --netdev passt` without root: the command runs as `nobody` (setpriv, when the
// test runs as root; as the test's own unprivileged user otherwise), starts Debian's passt, and the
// real Linux guest in v86 gets its address by DHCP from passt and fetches a page with wget from an
// HTTP server on this host's loopback, which passt reaches for the gateway address (passt(1):
// the gateway maps to the host). Afterwards passt is gone and its socket directory removed.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { guestImageOrSkip } from '../support/v86-guest.js';
import { requireProgram } from '../support/skip.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Step {
  step: string;
  exitCode: number;
  output: string;
}

describe('virtio-net guest --netdev passt (rootless)', function () {
  this.timeout(900_000);
  let dir: string | undefined;
  let http: Server | undefined;

  afterEach(async () => {
    await new Promise<void>((r) => (http === undefined ? r() : http.close(() => r())));
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the_guest_gets_an_address_from_passts_dhcp_and_wgets_a_page_from_the_hosts_loopback_as_nobody', async function () {
    requireProgram(this, 'passt');
    const asRoot = process.getuid?.() === 0;
    if (asRoot) requireProgram(this, 'setpriv');
    const image = guestImageOrSkip(this);

    // A cache and script `nobody` can read: a copy of the image under a world-readable directory.
    dir = mkdtempSync(join(tmpdir(), 'vnm-passt-'));
    chmodSync(dir, 0o755);
    const cache = join(dir, 'virtio-net-model', 'guest');
    mkdirSync(cache, { recursive: true });
    cpSync(image.dir, join(cache, basename(image.dir)), { recursive: true });

    const token = `hello-through-passt-${randomBytes(6).toString('hex')}`;
    const peers: string[] = [];
    http = createServer((req, res) => {
      peers.push(req.socket.remoteAddress ?? '');
      res.end(`${token}\n`);
    });
    await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
    const port = (http.address() as { port: number }).port;

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
    chmodSync(script, 0o644);

    const cli = [join(root, 'bin', 'virtio-net.mjs'), 'guest', '--netdev', 'passt', '--script', script, '--json', '--step-timeout', '120'];
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, XDG_CACHE_HOME: dir };
    const child = asRoot
      ? spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, ...cli], { env, cwd: dir })
      : spawn(process.execPath, cli, { env, cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    const context = `exit ${code}\n--- stderr ---\n${stderr.slice(-3000)}\n--- stdout ---\n${stdout.slice(-3000)}`;
    expect(code, context).to.equal(0);

    const steps = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Step);
    expect(steps.map((s) => s.exitCode), context).to.deep.equal([0, 0, 0, 0, 0]);
    const lease = /lease of (\d+\.\d+\.\d+\.\d+) obtained from (\d+\.\d+\.\d+\.\d+)/.exec(steps[2]!.output);
    expect(lease, steps[2]!.output).to.not.equal(null);
    // passt hands the guest the host's own address (of its default-route interface).
    const hostAddresses = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
    expect(hostAddresses, `leased ${lease![1]}`).to.include(lease![1]);
    expect(steps[3]!.output).to.match(new RegExp(`default via ${lease![2]!.replace(/\./g, '\\.')} dev eth0`));
    expect(steps[4]!.output).to.equal(`${token}\n`);
    expect(peers.length, 'the HTTP server was reached').to.be.greaterThan(0);
    expect(peers.every((p) => p === '127.0.0.1' || p === '::ffff:127.0.0.1'), `peers ${peers.join(', ')}`).to.equal(true);

    // passt was stopped with the device and its private directory removed.
    const started = /on passt \(pid (\d+), socket (\S+)\/passt\.sock/.exec(stderr);
    expect(started, stderr).to.not.equal(null);
    expect(existsSync(started![2]!), 'passt socket directory removed').to.equal(false);
    let alive = true;
    try {
      process.kill(Number(started![1]), 0);
    } catch {
      alive = false;
    }
    expect(alive, `passt pid ${started![1]} still running`).to.equal(false);
    console.log(`      guest leased ${lease![1]} from ${lease![2]} and fetched the page through passt${asRoot ? ' (as nobody)' : ''}`);
  });
});
