// Issue #24's "done when": `virtio-net run --netdev tap,…` against a Linux host in a throwaway
// namespace whose address is configured 3 s after the device attached. The scripted guest must find
// the late peer and ping it, answer the host's pings (ARP and ICMP, and IPv6 NS for its link-local
// address), and keep pinging after the host changes its MAC. The host side is the kernel itself:
// its ICMP counters (nstat) count the guest's echo requests it answered; `ping` counts the guest's
// answers. The TAP is up from the start (writing to a TAP that is down fails with EIO, which the
// backend takes as fatal).
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Netns, requireHost, waitFor } from '../../support/netns.js';

const root = join(import.meta.dirname, '..', '..', '..');
const GUEST_LL = 'fe80::5054:ff:fe12:3456';

interface RunJson {
  guest: Record<string, number>;
  neighbour: { ip: string; state: string; mac: string | null; noAnswerMs: number | null; warning: string | null };
}

/** Starts the CLI inside `ns` on TAP `tap`; resolves once it attached (the TAP lost NO-CARRIER). */
async function startRun(ns: Netns, tap: string, extra: string[]): Promise<{ child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }> {
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, join(root, 'bin', 'virtio-net.mjs'), 'run', '--netdev', `tap,ifname=${tap}`, '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Node start-up under tsx on a loaded machine can take several seconds.
  await waitFor('the CLI to attach to the TAP', () => child.exitCode !== null || !ns.ip(['link', 'show', tap]).includes('NO-CARRIER'), 40_000);
  expect(child.exitCode, stderr).to.equal(null);
  return { child, out: () => stdout, err: () => stderr, exited };
}

/** The namespace kernel's ICMP counter `name` (absolute, from nstat). */
function icmpCounter(ns: Netns, name: string): number {
  const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(ns.exec('nstat', ['-asz', name]));
  if (m === null) throw new Error(`nstat printed no ${name}`);
  return Number(m[1]);
}

/** `ping` from the namespace: how many of `count` echo requests were answered. */
function pingFromHost(ns: Netns, args: string[], count: number): { received: number; text: string } {
  const p = spawnSync('ip', ['netns', 'exec', ns.name, 'ping', '-c', String(count), '-i', '0.2', '-W', '5', ...args], { encoding: 'utf8', timeout: 30_000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(p.stdout);
  return { received: m === null ? 0 : Number(m[2]), text: `${p.stdout}${p.stderr}` };
}

describe('lib/cli/run on a TAP whose host side is configured late', function () {
  this.timeout(120_000);
  let ns: Netns | undefined;
  let child: ChildProcess | undefined;

  before(function () {
    requireHost(this);
  });

  afterEach(() => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
    ns?.destroy();
    ns = undefined;
  });

  it('the_guest_finds_a_peer_configured_3_s_late_pings_it_answers_it_and_follows_its_new_mac', async () => {
    ns = new Netns();
    const tap = 'vnmlate0';
    ns.ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr']);
    ns.ip(['link', 'set', tap, 'up']);
    const run = await startRun(ns, tap, ['--duration', '300']);
    child = run.child;
    await new Promise((r) => setTimeout(r, 3000));
    ns.ip(['addr', 'add', '10.0.2.2/24', 'dev', tap]);

    // The host pings the guest (the kernel ARPs for it first) and reaches its link-local address.
    const v4 = pingFromHost(ns, ['10.0.2.15'], 12);
    expect(v4.received, v4.text).to.be.at.least(10);
    const v6 = pingFromHost(ns, ['-6', `${GUEST_LL}%${tap}`], 3);
    expect(v6.received, v6.text).to.equal(3);
    // The guest pings the host: the kernel answers its echo requests.
    await waitFor('10 of the guest\'s pings answered by the host', () => icmpCounter(ns!, 'IcmpOutEchoReps') >= 10, 15_000);

    // The host changes its MAC (its neighbour table is flushed; it ARPs for the guest again).
    const newMac = '02:00:00:00:aa:02';
    const answeredBefore = icmpCounter(ns, 'IcmpOutEchoReps');
    ns.ip(['link', 'set', tap, 'address', newMac]);
    const after = pingFromHost(ns, ['10.0.2.15'], 12);
    expect(after.received, after.text).to.be.at.least(10);
    await waitFor('10 more of the guest\'s pings answered after the MAC change', () => icmpCounter(ns!, 'IcmpOutEchoReps') >= answeredBefore + 10, 15_000);

    child.kill('SIGINT');
    expect(await run.exited, run.err()).to.equal(130);
    const out = JSON.parse(run.out()) as RunJson;
    expect(out.guest['echoReplies'], run.out()).to.be.at.least(20);
    expect(out.guest['echoRequestsAnswered'], run.out()).to.be.at.least(20 + 3);
    expect(out.guest['arpRequestsAnswered'], run.out()).to.be.at.least(2);
    expect(out.guest['neighbourSolicitationsAnswered'], run.out()).to.be.at.least(1);
    expect(out.guest['peerMacChanges'], run.out()).to.be.at.least(1);
    expect(out.neighbour.mac, run.out()).to.equal(newMac);
    expect(out.neighbour.warning).to.equal(null);
  });

  it('run_json_says_the_peer_has_not_answered_instead_of_showing_bare_zeros', async () => {
    ns = new Netns();
    const tap = 'vnmlate1';
    ns.ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr']);
    ns.ip(['link', 'set', tap, 'up']); // no address: nobody answers for 10.0.2.2
    const run = await startRun(ns, tap, ['--duration', '5']);
    child = run.child;
    expect(await run.exited, run.err()).to.equal(0);
    const out = JSON.parse(run.out()) as RunJson;
    expect(out.guest['echoRequests']).to.equal(0);
    expect(out.guest['arpRequestsSent'], run.out()).to.be.at.least(3);
    expect(out.neighbour.state).to.equal('failed');
    expect(out.neighbour.warning, run.out()).to.match(/^no answer from 10\.0\.2\.2 on hostnet0 for [3-9] s$/);
  });
});
