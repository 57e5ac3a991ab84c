// Issue #16's done-when: a v86 emulator whose own network adapter (v86's virtio NIC, `relay_url`)
// talks through `virtio-net relay` to the guest of this device. The chain, all real:
//   v86 Linux guest (v86's NIC, 192.168.77.2) → v86 NetworkAdapter → WebSocket → relay (RelayServer)
//   → stream netdev (unix socket, server) → `virtio-net run`'s StreamNetdev → VirtioNetDevice →
//   the scripted guest (192.168.77.15), which answers ARP and ping.
// v86 uses the global WebSocket; Node 20 has none, so this test process gets the `ws` package's.

import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { GuestVm } from '../../lib/cli/guest-vm.js';
import { parseGuestIp, parseNetdev } from '../../lib/cli/args.js';
import { run } from '../../lib/cli/run.js';
import type { RunResult } from '../../lib/cli/report.js';
import { guestImageOrSkip } from '../support/v86-guest.js';
import { startRelay, type StartedRelay } from '../support/relay.js';

describe('v86 network adapter through virtio-net relay (issue #16)', function () {
  this.timeout(300_000);
  let dir: string;
  let vm: GuestVm | null = null;
  const stopAll = new AbortController();
  let started: StartedRelay | null = null;
  let runJob: Promise<RunResult> | null = null;
  const savedWebSocket = (globalThis as { WebSocket?: unknown }).WebSocket;

  before(() => (dir = mkdtempSync(join(tmpdir(), 'vnm-v86-relay-'))));
  after(async () => {
    stopAll.abort();
    await vm?.stop();
    await runJob?.catch(() => undefined);
    await started?.stop().catch(() => undefined);
    (globalThis as { WebSocket?: unknown }).WebSocket = savedWebSocket;
    rmSync(dir, { recursive: true, force: true });
  });

  it('a_v86_guest_with_relay_url_pings_the_devices_guest', async function () {
    const image = guestImageOrSkip(this);
    const sock = join(dir, 'net.sock');
    started = await startRelay(`stream,addr.type=unix,addr.path=${sock},server=on`);
    const url = started.url;
    runJob = run({ durationMs: 280_000, scenario: 'linux', netdev: parseNetdev(`stream,addr.type=unix,addr.path=${sock}`), addressing: parseGuestIp('192.168.77.15/24', '192.168.77.2'), qmpPath: null, json: true, signal: stopAll.signal }, () => undefined);

    (globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;
    vm = await GuestVm.boot({ image, netDevice: { type: 'virtio', relay_url: url } });
    // v86's NIC is the interface whose MAC is not this device's (52:54:00:12:34:56).
    const find = await vm.run("for d in /sys/class/net/*; do n=${d##*/}; [ $n = lo ] && continue; [ \"$(cat $d/address)\" = 52:54:00:12:34:56 ] && continue; echo IF=$n; done");
    const m = /IF=(\S+)/.exec(find.output);
    expect(m, `v86's own NIC in the guest: ${find.output}`).to.not.equal(null);
    const ifname = m![1]!;
    const setup = await vm.run(`ip addr add 192.168.77.2/24 dev ${ifname} && ip link set ${ifname} up`);
    expect(setup.exitCode, setup.output).to.equal(0);
    const ping = await vm.run('ping -c 3 -W 5 192.168.77.15', 60_000);
    expect(ping.output, 'replies from the scripted guest').to.match(/, [1-3] received/);

    stopAll.abort();
    const relayStopped = started.stop();
    const runResult = await runJob;
    const relayResult = await relayStopped;
    expect(runResult.guest['echoRequestsAnswered'], JSON.stringify(runResult.guest)).to.be.greaterThan(0);
    expect(relayResult.relay.connections).to.be.greaterThan(0);
    expect(relayResult.relay.toBackend).to.be.greaterThan(0);
    expect(relayResult.relay.toClients).to.be.greaterThan(0);
  });
});
