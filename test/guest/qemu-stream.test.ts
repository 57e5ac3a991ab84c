// QEMU 7.2 and this device on QEMU's `-netdev stream`, both roles (REAL-GUEST.md: TCG, Debian's
// amd64 kernel with the project's initramfs): a Linux guest on QEMU's virtio-net-pci at one end of
// a unix stream socket, `virtio-net run`'s scripted guest (run(), in process) at the other. They
// ARP for and ping each other; killing QEMU gives NETDEV_STREAM_DISCONNECTED on our QMP socket, a
// new QEMU gives NETDEV_STREAM_CONNECTED again (our client reconnecting, or our server taking the
// next peer). Needs QEMU and the amd64 image (built by the setup step); no root.

import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestImage } from '../../lib/cli/guest-image.js';
import { parseNetdev } from '../../lib/cli/args.js';
import { run } from '../../lib/cli/run.js';
import type { RunResult } from '../../lib/cli/report.js';
import { QmpClient, type QmpEvent } from '../support/qemu-qmp.js';
import { QemuGuest } from './qemu-guest.js';

const QEMU_MAC = '52:54:00:ab:cd:02';
/** The scripted guest is 10.0.2.15 and pings 10.0.2.2 (lib/cli/run.ts): QEMU's guest takes 10.0.2.2. */
const CONFIGURE = 'ip link set eth0 up && ip addr add 10.0.2.2/24 dev eth0';

async function waitEvent(qmp: QmpClient, name: string, after: number, timeoutMs: number): Promise<QmpEvent> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const e = qmp.events.slice(after).find((x) => x.event === name);
    if (e !== undefined) return e;
    if (Date.now() > end) throw new Error(`no ${name} within ${timeoutMs} ms; events: ${JSON.stringify(qmp.events.map((x) => x.event))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Our side: `virtio-net run --netdev <spec> --qmp <path>` until stopped. */
async function startRun(spec: string, qmpPath: string): Promise<{ qmp: QmpClient; stop: () => Promise<RunResult> }> {
  const abort = new AbortController();
  const job = run({ durationMs: 3_600_000, scenario: 'traffic', netdev: parseNetdev(spec), qmpPath, json: true, signal: abort.signal }, () => undefined);
  job.catch(() => undefined);
  let qmp: QmpClient | undefined;
  for (let i = 0; i < 200 && qmp === undefined; i++) {
    qmp = await QmpClient.connect(qmpPath, { timeoutMs: 5000, context: () => 'virtio-net run (in process)' }).catch(() => undefined);
    if (qmp === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  if (qmp === undefined) {
    abort.abort();
    await job;
    throw new Error(`our QMP socket ${qmpPath} never answered`);
  }
  const q = qmp;
  return {
    qmp: q,
    stop: async () => {
      abort.abort();
      q.close();
      return job;
    },
  };
}

/** QEMU's guest pings ours; returns the ping output. */
async function pingOurs(qemu: QemuGuest): Promise<string> {
  const r = await qemu.run('ping -c 3 -W 5 10.0.2.15', 60_000);
  expect(r.exitCode, `ping from QEMU's guest:\n${r.output}`).to.equal(0);
  return r.output;
}

describe('QEMU 7.2 and this device on -netdev stream (unix socket)', function () {
  this.timeout(900_000);
  let image: GuestImage;
  let dir: string;
  const qemus: QemuGuest[] = [];
  const runs: { stop: () => Promise<RunResult> }[] = [];

  before(function () {
    image = QemuGuest.imageOrSkip(this);
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'vnm-qemu-stream-'))));
  afterEach(async () => {
    for (const r of runs.splice(0)) await r.stop().catch(() => undefined);
    for (const q of qemus.splice(0)) await q.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function bootQemu(netdev: string): Promise<QemuGuest> {
    const q = await QemuGuest.bootWith(image, { netdev, mac: QEMU_MAC });
    qemus.push(q);
    console.log(`      QEMU booted in ${q.bootMs} ms`);
    const r = await q.run(CONFIGURE);
    expect(r.exitCode, r.output).to.equal(0);
    return q;
  }

  async function stopQemu(q: QemuGuest): Promise<void> {
    qemus.splice(qemus.indexOf(q), 1);
    await q.stop();
  }

  it('qemu_server_and_our_client_with_reconnect_ping_each_other_and_reconnect_after_qemu_restarts', async () => {
    const sock = join(dir, 'qemu.sock');
    const ours = await startRun(`stream,addr.type=unix,addr.path=${sock},reconnect=1`, join(dir, 'qmp.sock'));
    runs.push(ours);
    const qemuNetdev = `stream,id=hostnet0,server=on,addr.type=unix,addr.path=${sock}`;
    let q = await bootQemu(qemuNetdev);
    const up = await waitEvent(ours.qmp, 'NETDEV_STREAM_CONNECTED', 0, 30_000);
    expect(up.data).to.deep.equal({ 'netdev-id': 'hostnet0', addr: { type: 'unix', path: sock } });
    console.log(`      ping from QEMU's guest: ${(await pingOurs(q)).split('\n').filter((l) => l.includes('packets')).join('')}`);

    let mark = ours.qmp.events.length;
    await stopQemu(q);
    await waitEvent(ours.qmp, 'NETDEV_STREAM_DISCONNECTED', mark, 30_000);
    mark = ours.qmp.events.length;
    q = await bootQemu(qemuNetdev);
    const again = await waitEvent(ours.qmp, 'NETDEV_STREAM_CONNECTED', mark, 30_000);
    expect(again.data).to.deep.equal({ 'netdev-id': 'hostnet0', addr: { type: 'unix', path: sock } });
    await pingOurs(q);

    runs.splice(runs.indexOf(ours), 1);
    const result = await ours.stop();
    console.log(`      our guest: ${JSON.stringify(result.guest)}; backend link ${JSON.stringify(result.backend.link && { ups: result.backend.link.ups, downs: result.backend.link.downs })}`);
    // Learned from QEMU's guest's ARP request or its reply, whichever came first (as Linux).
    expect(result.neighbour?.mac, "our guest learned QEMU's guest's MAC").to.equal(QEMU_MAC);
    expect(result.guest['echoReplies'], "QEMU's guest answered our pings").to.be.greaterThan(0);
    expect(result.guest['arpRequestsAnswered'], "we answered QEMU's guest's ARP").to.be.greaterThan(0);
    expect(result.guest['echoRequestsAnswered'], "we answered QEMU's guest's pings").to.be.at.least(6);
    expect(result.backend.link).to.deep.include({ ups: 2, downs: 1 });
  });

  it('our_server_and_qemu_client_ping_each_other_and_the_server_takes_a_restarted_qemu', async () => {
    const sock = join(dir, 'ours.sock');
    const ours = await startRun(`stream,addr.type=unix,addr.path=${sock},server=on`, join(dir, 'qmp.sock'));
    runs.push(ours);
    const qemuNetdev = `stream,id=hostnet0,server=off,addr.type=unix,addr.path=${sock}`;
    let q = await bootQemu(qemuNetdev);
    const up = await waitEvent(ours.qmp, 'NETDEV_STREAM_CONNECTED', 0, 30_000);
    // A unix server reports its own path, as QEMU's does.
    expect(up.data).to.deep.equal({ 'netdev-id': 'hostnet0', addr: { type: 'unix', path: sock } });
    await pingOurs(q);

    let mark = ours.qmp.events.length;
    await stopQemu(q);
    await waitEvent(ours.qmp, 'NETDEV_STREAM_DISCONNECTED', mark, 30_000);
    mark = ours.qmp.events.length;
    q = await bootQemu(qemuNetdev);
    await waitEvent(ours.qmp, 'NETDEV_STREAM_CONNECTED', mark, 30_000);
    await pingOurs(q);

    runs.splice(runs.indexOf(ours), 1);
    const result = await ours.stop();
    console.log(`      our guest: ${JSON.stringify(result.guest)}`);
    expect(result.guest['echoReplies'], "QEMU's guest answered our pings").to.be.greaterThan(0);
    expect(result.guest['echoRequestsAnswered'], "we answered QEMU's guest's pings").to.be.at.least(6);
    expect(result.backend.link).to.deep.include({ ups: 2, downs: 1 });
  });
});
