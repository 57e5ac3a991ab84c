// `virtio-net guest --netdev passt` without root: the command runs as `nobody` (setpriv, when the
// test runs as root; as the test's own unprivileged user otherwise), starts Debian's passt, and the
// real Linux guest in v86 gets its address by DHCP from passt and fetches a page with wget from an
// HTTP server on this host's loopback, which passt reaches for the gateway address (passt(1):
// the gateway maps to the host). Afterwards passt is gone and its socket directory removed.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestImageOrSkip } from '../support/v86-guest.js';
import { requireProgram } from '../support/skip.js';
import { expectDhcpWget, startTokenServer, writeDhcpWgetScript, type TokenServer } from '../support/guest-dhcp-wget.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('virtio-net guest --netdev passt (rootless)', function () {
  this.timeout(900_000);
  let dir: string | undefined;
  let http: TokenServer | undefined;

  afterEach(async () => {
    await http?.close();
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

    http = await startTokenServer('hello-through-passt');
    const script = writeDhcpWgetScript(dir, http.port);
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

    const { address, gateway } = expectDhcpWget(stdout, context, http);
    // passt hands the guest the host's own address (of its default-route interface).
    const hostAddresses = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
    expect(hostAddresses, `leased ${address}`).to.include(address);

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
    console.log(`      guest leased ${address} from ${gateway} and fetched the page through passt${asRoot ? ' (as nobody)' : ''}`);
  });
});
