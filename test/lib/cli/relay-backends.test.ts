// `virtio-net relay --to …` with each real host backend behind it:
//   tap    — relay and client run inside a throwaway network namespace (as root) whose kernel owns
//            10.0.2.2 on the TAP: the scripted guest of `virtio-net run --netdev websocket,url=…`
//            ARPs for and pings Linux through the relay.
//   vde    — a real vde_switch; a second device (ScriptedNode on its own vde_plug) at 10.0.2.2.
//   dgram  — UDP on loopback; a second device on a DgramNetdev with the addresses swapped.
//   passt  — Debian's passt: a raw v86-protocol client asks passt for its gateway by ARP through
//            the relay and gets passt's answer.
// The relay's counters are checked against what crossed it.

import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { parseNetdev } from '../../../lib/cli/args.js';
import type { RelayResult } from '../../../lib/cli/relay.js';
import { run } from '../../../lib/cli/run.js';
import { DgramNetdev } from '../../../lib/netdev/dgram-netdev.js';
import { freeUdpPorts } from '../../support/udp-ports.js';
import { VdeNetdev } from '../../../lib/netdev/vde-netdev.js';
import { Netns, requireHost } from '../../support/netns.js';
import { ScriptedNode } from '../../support/scripted-node.js';
import { requireProgram } from '../../support/skip.js';
import { startRelay } from '../../support/relay.js';

const root = join(import.meta.dirname, '..', '..', '..');
const RUN_MAC = '52:54:00:12:34:56';
const PEER_MAC = '52:54:00:12:34:57';

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `virtio-net run`'s scripted guest (10.0.2.15) through the relay, against a second device at 10.0.2.2 on the backend. */
async function pingThroughRelay(to: string, peerNetdev: () => Promise<VdeNetdev | DgramNetdev>): Promise<void> {
  const r = await startRelay(to);
  let node: ScriptedNode | null = null;
  let other: VdeNetdev | DgramNetdev | null = null;
  let rr: RelayResult;
  let result;
  let quiet: NodeJS.Timeout | undefined;
  try {
    other = await peerNetdev();
    node = new ScriptedNode(other, PEER_MAC, [10, 0, 2, 2], [10, 0, 2, 15]);
    node.start();
    // The other device falls silent 500 ms before the run ends: a frame it sent after the run's
    // WebSocket began closing would be a counted client drop (one CI run saw exactly that: 1).
    const n = node;
    quiet = setTimeout(() => n.silence(), 2500);
    result = await run({ durationMs: 3000, scenario: 'traffic', netdev: parseNetdev(`websocket,url=${r.url}`), qmpPath: null, json: true }, () => undefined);
  } finally {
    if (quiet !== undefined) clearTimeout(quiet);
    node?.stop();
    rr = await r.stop();
    await other?.close();
  }
  expect(result.neighbour?.mac, "the run guest learned the other device's MAC through the relay").to.equal(PEER_MAC);
  expect(result.guest['echoReplies'], 'the other device answered pings through the relay').to.be.greaterThan(0);
  expect(result.guest['echoRequestsAnswered'], "the run guest answered the other device's pings").to.be.greaterThan(0);
  expect(node!.guest.tally.echoReplies).to.be.greaterThan(0);
  const s = rr.relay;
  expect(s.connections).to.equal(1);
  expect(s.toBackend, JSON.stringify(s)).to.be.greaterThan(0);
  expect(s.fromBackend, JSON.stringify(s)).to.be.greaterThan(0);
  expect(s.toClients, JSON.stringify(s)).to.be.greaterThan(0);
  expect(s.backendDrops + s.clientDrops, `nothing lost on an idle machine-local path: ${JSON.stringify(s)}`).to.equal(0);
}

describe('lib/cli/relay with real backends', function () {
  this.timeout(60_000);

  it('relays_to_a_tap_in_a_throwaway_namespace_whose_kernel_answers_arp_and_ping', async function () {
    requireHost(this);
    const ns = new Netns();
    let relayChild: ChildProcess | null = null;
    try {
      ns.ip(['tuntap', 'add', 'dev', 'vnmrtap0', 'mode', 'tap', 'vnet_hdr']);
      ns.ip(['addr', 'add', '10.0.2.2/24', 'dev', 'vnmrtap0']);
      ns.ip(['link', 'set', 'vnmrtap0', 'up']);
      const tapMac = /link\/ether ([0-9a-f:]{17})/.exec(ns.ip(['link', 'show', 'vnmrtap0']))![1]!;
      // A fresh namespace: its loopback port 8086 is free.
      const cli = join(root, 'bin', 'virtio-net.mjs');
      relayChild = spawn('ip', ['netns', 'exec', ns.name, process.execPath, cli, 'relay', '--listen', '127.0.0.1:8086', '--to', 'tap,ifname=vnmrtap0', '--duration', '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      relayChild.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
      relayChild.stderr!.setEncoding('utf8').on('data', (t: string) => (err += t));
      const exited = new Promise<number | null>((r) => relayChild!.once('exit', (c) => r(c)));
      await until('the relay to listen', () => out.includes('listening on ws://127.0.0.1:8086/') || relayChild!.exitCode !== null, 30_000);
      expect(out, err).to.include('backend tap vnmrtap0');
      const p = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, cli, 'run', '--netdev', 'websocket,url=ws://127.0.0.1:8086/', '--duration', '5', '--json'], { encoding: 'utf8', timeout: 50_000 });
      expect(p.status, p.stderr).to.equal(0);
      const res = JSON.parse(p.stdout) as { netdev: string; guest: Record<string, number>; neighbour: { mac: string } };
      expect(res.netdev).to.equal('websocket ws://127.0.0.1:8086/');
      expect(res.neighbour.mac, "the guest learned the TAP's MAC: Linux answered its ARP").to.equal(tapMac);
      expect(res.guest['echoReplies'], p.stdout).to.be.greaterThan(0);
      // Linux learned the guest too: its neighbour table has the guest's MAC on the TAP.
      expect(ns.ip(['neigh', 'show', 'dev', 'vnmrtap0'])).to.include(RUN_MAC);
      relayChild.kill('SIGTERM');
      expect(await exited).to.equal(130);
      const num = (row: string): number => Number(new RegExp(`^${row}\\s+(\\d+)$`, 'm').exec(out)?.[1] ?? NaN);
      expect(num('connections'), out).to.equal(1);
      expect(num('frames to backend'), out).to.be.greaterThan(0);
      expect(num('frames from backend'), out).to.be.greaterThan(0);
      expect(num('frames to clients'), out).to.be.greaterThan(0);
    } finally {
      if (relayChild !== null && relayChild.exitCode === null) relayChild.kill('SIGKILL');
      ns.destroy();
    }
  });

  describe('on a real vde_switch', () => {
    let dir: string;
    let sock: string;
    let sw: ChildProcess | null = null;

    before(async function () {
      requireProgram(this, 'vde_switch');
      requireProgram(this, 'vde_plug');
      dir = mkdtempSync(join(tmpdir(), 'vnm-relay-vde-'));
      sock = join(dir, 'switch');
      sw = spawn('vde_switch', ['-s', sock], { stdio: ['pipe', 'ignore', 'pipe'] });
      await until('the switch socket', () => existsSync(join(sock, 'ctl')));
    });
    after(async () => {
      if (sw !== null && sw.exitCode === null && sw.signalCode === null) {
        const gone = once(sw, 'exit');
        sw.kill('SIGTERM');
        const t = setTimeout(() => sw!.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      }
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    it('relays_to_vde_and_the_guest_pings_a_second_device_on_the_switch', async () => {
      await pingThroughRelay(`vde,sock=${sock}`, async () => new VdeNetdev({ id: 'other', sock }));
    });
  });

  it('relays_to_dgram_and_the_guest_pings_a_device_at_the_other_udp_end', async () => {
    const [relayPort, peerPort] = await freeUdpPorts(2);
    await pingThroughRelay(`dgram,local.type=inet,local.host=127.0.0.1,local.port=${relayPort},remote.type=inet,remote.host=127.0.0.1,remote.port=${peerPort}`, async () => {
      const n = new DgramNetdev({ id: 'other', local: { type: 'inet', host: '127.0.0.1', port: peerPort! }, remote: { type: 'inet', host: '127.0.0.1', port: relayPort! } });
      await n.ready;
      return n;
    });
  });

  it('relays_to_passt_which_answers_a_clients_arp_through_the_relay', async function () {
    requireProgram(this, 'passt');
    const r = await startRelay('passt');
    const ws = new WebSocket(r.url);
    const got: Buffer[] = [];
    ws.on('message', (d, isBinary) => {
      if (isBinary) got.push(d as Buffer);
    });
    let rr: RelayResult;
    const mac = [0x52, 0x54, 0, 0x12, 0x34, 0x99];
    try {
      await once(ws, 'open');
      const who = Buffer.from([...new Array(6).fill(0xff), ...mac, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, ...mac, 10, 9, 9, 9, 0, 0, 0, 0, 0, 0, 10, 9, 9, 1, ...new Array(18).fill(0)]);
      const isReply = (f: Buffer): boolean => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2;
      ws.send(who);
      await until('passt to answer through the relay', () => got.some(isReply));
      const reply = got.find(isReply)!;
      expect([...reply.subarray(0, 6)], 'to the asking client').to.deep.equal(mac);
      expect([...reply.subarray(28, 32)], 'for the address asked about').to.deep.equal([10, 9, 9, 1]);
      expect([...reply.subarray(38, 42)]).to.deep.equal([10, 9, 9, 9]);
    } finally {
      ws.terminate();
      rr = await r.stop();
    }
    expect(rr.backend).to.match(/^passt \(pid \d+/);
    expect(rr.relay.toBackend).to.equal(1);
    expect(rr.relay.fromBackend).to.be.greaterThan(0);
    expect(rr.relay.toClients).to.be.greaterThan(0);
    const pid = Number(/pid (\d+)/.exec(rr.backend)![1]);
    expect(() => process.kill(pid, 0), 'passt stopped with the relay').to.throw(/ESRCH/);
  });
});
