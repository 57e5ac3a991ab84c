// The COLO setup of shared/seeds/001_* (and the passthrough list of 000_*) run as written: two
// `virtio-net run` processes, the primary and the secondary, each on a TAP in its own throwaway
// network namespace, wired with the seed's own `-chardev` / `-object` lines (`--` spelling; the
// seed's hosts 3.3.3.3 and 3.3.3.8 are a veth pair between the two namespaces; the TAPs are set up
// by script=/downscript= programs as /etc/qemu-ifup would). A client in a third namespace, bridged
// to the primary's TAP, holds one TCP session with the primary's scripted guest (--tcp-echo 7):
//   1. identical answers from both guests pass colo-compare and reach the client, no checkpoint;
//   2. the secondary was started with a planted divergence (--tcp-diverge boom): the answer to
//      'boom' differs, and colo-compare asks for a checkpoint (QMP COLO_COMPARE_CHECKPOINT_REQUEST,
//      reason mismatch, naming the flow) — the client still gets the primary's answer;
//   3. after colo-passthrough-add for that flow (seed 000) its packets bypass comparison: answers
//      arrive with no further checkpoint request, and colo-compare counts them as passthrough.
import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, requireHost, waitFor } from '../../support/netns.js';
import { requireProgram } from '../../support/skip.js';
import { RawQmpClient } from '../qmp/raw-client.js';

const root = join(import.meta.dirname, '..', '..', '..');
const CLI = join(root, 'bin', 'virtio-net.mjs');

/** The seed's primary lines (the vnet_hdr_support variant, which lists every chardev), with its iothread. */
const PRIMARY = [
  '--chardev', 'socket,id=mirror0,host=3.3.3.3,port=9003,server,nowait',
  '--chardev', 'socket,id=compare1,host=3.3.3.3,port=9004,server,nowait',
  '--chardev', 'socket,id=compare0,host=3.3.3.3,port=9001,server,nowait',
  '--chardev', 'socket,id=compare0-0,host=3.3.3.3,port=9001',
  '--chardev', 'socket,id=compare_out,host=3.3.3.3,port=9005,server,nowait',
  '--chardev', 'socket,id=compare_out0,host=3.3.3.3,port=9005',
  '--object', 'iothread,id=iothread1',
  '--object', 'filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0,vnet_hdr_support',
  '--object', 'filter-redirector,netdev=hn0,id=redire0,queue=rx,indev=compare_out,vnet_hdr_support',
  '--object', 'filter-redirector,netdev=hn0,id=redire1,queue=rx,outdev=compare0,vnet_hdr_support',
  '--object', 'colo-compare,id=comp0,primary_in=compare0-0,secondary_in=compare1,outdev=compare_out0,iothread=iothread1,vnet_hdr_support',
];
const SECONDARY = [
  '--chardev', 'socket,id=red0,host=3.3.3.3,port=9003',
  '--chardev', 'socket,id=red1,host=3.3.3.3,port=9004',
  '--object', 'filter-redirector,id=f1,netdev=hn0,queue=tx,indev=red0,vnet_hdr_support',
  '--object', 'filter-redirector,id=f2,netdev=hn0,queue=rx,outdev=red1,vnet_hdr_support',
  '--object', 'filter-rewriter,id=f3,netdev=hn0,queue=all,vnet_hdr_support',
];

/** A `virtio-net run` inside a namespace (ip netns exec execs it: the pid is node's). */
class RunProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8').on('data', (t: string) => (this.stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (this.stderr += t));
    this.exited = new Promise((done) => child.on('exit', (code) => done(code)));
  }
  static start(ns: Netns, args: readonly string[]): RunProcess {
    return new RunProcess(spawn('ip', ['netns', 'exec', ns.name, process.execPath, CLI, 'run', ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }
  /** SIGTERM: the run ends as after its duration, prints its JSON and exits 130. */
  async stop(): Promise<Record<string, unknown>> {
    this.child.kill('SIGTERM');
    const code = await this.exited;
    expect(code, this.stderr).to.equal(130);
    return JSON.parse(this.stdout) as Record<string, unknown>;
  }
}

/** A TCP client in a namespace: one session, one request per stdin line, one answer per stdout line. */
const CLIENT_PY = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('10.0.2.2', 40000))
s.settimeout(20)
s.connect(('10.0.2.15', 7))
print('connected', flush=True)
for line in sys.stdin:
    s.sendall(line.strip().encode())
    print(s.recv(4096).decode(), flush=True)
s.close()
`;

class Client {
  private out = '';
  private readonly answers: string[] = [];
  private err = '';
  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8').on('data', (t: string) => {
      this.out += t;
      let nl: number;
      while ((nl = this.out.indexOf('\n')) >= 0) {
        this.answers.push(this.out.slice(0, nl));
        this.out = this.out.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (t: string) => (this.err += t));
  }
  async line(timeoutMs = 20_000): Promise<string> {
    await waitFor(`a line from the TCP client (stderr: ${this.err})`, () => this.answers.length > 0, timeoutMs);
    return this.answers.shift()!;
  }
  async ask(text: string): Promise<string> {
    this.child.stdin.write(`${text}\n`);
    return this.line();
  }
  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

describe('COLO: the seed 001 primary and secondary as two virtio-net run processes', function () {
  this.timeout(120_000);
  const spaces: Netns[] = [];
  const procs: RunProcess[] = [];
  let client: Client | undefined;
  let qmp: RawQmpClient | undefined;
  let dir: string;

  before(function () {
    requireHost(this);
    requireProgram(this, 'python3');
  });

  after(async () => {
    client?.close();
    qmp?.close();
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    for (const ns of spaces) ns.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('identical_answers_pass_a_planted_divergence_requests_a_checkpoint_and_a_passthrough_flow_bypasses_comparison', async () => {
    dir = mkdtempSync(join(tmpdir(), 'colo-run-'));
    const primaryNs = new Netns();
    const secondaryNs = new Netns();
    const clientNs = new Netns();
    spaces.push(primaryNs, secondaryNs, clientNs);
    for (const ns of spaces) ns.disableIpv6();
    // The seed's hosts: 3.3.3.3 (primary) and 3.3.3.8 (secondary).
    primaryNs.ip(['link', 'add', 'colo0', 'type', 'veth', 'peer', 'name', 'colo1']);
    primaryNs.ip(['link', 'set', 'colo1', 'netns', secondaryNs.name]);
    primaryNs.ip(['addr', 'add', '3.3.3.3/24', 'dev', 'colo0']);
    secondaryNs.ip(['addr', 'add', '3.3.3.8/24', 'dev', 'colo1']);
    primaryNs.ip(['link', 'set', 'colo0', 'up']);
    secondaryNs.ip(['link', 'set', 'colo1', 'up']);
    // The client: 10.0.2.2 in its own namespace, bridged to the primary's TAP.
    primaryNs.ip(['link', 'add', 'br0', 'type', 'bridge']);
    primaryNs.ip(['link', 'add', 'cli0', 'type', 'veth', 'peer', 'name', 'cli1']);
    primaryNs.ip(['link', 'set', 'cli1', 'netns', clientNs.name]);
    primaryNs.ip(['link', 'set', 'cli0', 'master', 'br0']);
    for (const l of ['cli0', 'br0']) primaryNs.ip(['link', 'set', l, 'up']);
    clientNs.ip(['addr', 'add', '10.0.2.2/24', 'dev', 'cli1']);
    clientNs.ip(['link', 'set', 'cli1', 'up']);
    // What /etc/qemu-ifup and /etc/qemu-ifdown do on such hosts: the TAP joins the bridge / comes up.
    const script = (name: string, body: string): string => {
      const p = join(dir, name);
      writeFileSync(p, `#!/bin/sh\nset -e\n${body}\n`);
      chmodSync(p, 0o755);
      return p;
    };
    const ifupPrimary = script('ifup-primary', 'ip link set "$1" master br0\nip link set "$1" up');
    const ifupSecondary = script('ifup-secondary', 'ip link set "$1" up');
    const ifdown = script('ifdown', 'ip link set "$1" down');
    const common = ['--scenario', 'filter', '--duration', '600', '--json', '--tcp-echo', '7'];
    const qmpPath = join(dir, 'primary-qmp.sock');

    const primary = RunProcess.start(primaryNs, [
      '--netdev', `tap,id=hn0,vhost=off,script=${ifupPrimary},downscript=${ifdown}`, ...PRIMARY, ...common, '--qmp', qmpPath,
    ]);
    procs.push(primary);
    await waitFor(`the primary's QMP socket (stderr: ${primary.stderr})`, () => existsSocket(qmpPath), 20_000);
    qmp = await RawQmpClient.negotiated(qmpPath);
    const secondary = RunProcess.start(secondaryNs, [
      '--netdev', `tap,id=hn0,vhost=off,script=${ifupSecondary},downscript=${ifdown}`, ...SECONDARY, ...common, '--tcp-diverge', 'boom',
      '--qmp', join(dir, 'secondary-qmp.sock'),
    ]);
    procs.push(secondary);
    await waitFor(`the secondary's QMP socket (stderr: ${secondary.stderr})`, () => existsSocket(join(dir, 'secondary-qmp.sock')), 20_000);

    client = new Client(spawn('ip', ['netns', 'exec', clientNs.name, 'python3', '-c', CLIENT_PY], { stdio: ['pipe', 'pipe', 'pipe'] }));
    expect(await client.line()).to.equal('connected');

    // 1. Identical answers: compared, released, no checkpoint.
    expect(await client.ask('hello')).to.equal('echo: hello');
    expect(await client.ask('again')).to.equal('echo: again');

    // 2. The planted divergence: the client gets the primary's answer; colo-compare asks for a checkpoint.
    expect(await client.ask('boom')).to.equal('echo: boom');
    const ev = await qmp.next('COLO_COMPARE_CHECKPOINT_REQUEST', 15_000);
    expect(ev['data']).to.deep.equal({ id: 'comp0', reason: 'mismatch', flow: 'tcp 10.0.2.15:7 <-> 10.0.2.2:40000' });

    // 3. The flow on the passthrough list: its packets are no longer compared.
    const added = await qmp.execute('colo-passthrough-add', {
      protocol: 'tcp', 'object-name': 'comp0',
      source: { host: '10.0.2.15', port: '7' }, destination: { host: '10.0.2.2', port: '40000' },
    });
    expect(added).to.deep.equal({ return: {} });
    for (const text of ['after1', 'boom2', 'after3']) expect(await client.ask(text)).to.equal(`echo: ${text}`);

    client.close();
    const p = await primary.stop();
    const s = await secondary.stop();
    qmp.close();
    // Every checkpoint request was an event; only the planted one happened.
    const comp = (p['objects'] as Record<string, Record<string, unknown>>)['comp0']!;
    expect(comp['checkpointRequests'], JSON.stringify(comp)).to.equal(1);
    expect((comp['checkpointsByReason'] as Record<string, number>)['mismatch']).to.equal(1);
    // The three answers after colo-passthrough-add went out uncompared (data segments; ACKs may add more).
    expect(comp['passthrough'] as number, JSON.stringify(comp)).to.be.at.least(3);
    // Before it, answers were released by comparison: hello and again.
    expect(comp['released'] as number).to.be.at.least(2);
    // The secondary did answer (its guest saw the mirrored client), and diverged twice (boom, boom2).
    expect((s['guest'] as Record<string, number>)['tcpRequests']).to.equal(6);
    expect((s['guest'] as Record<string, number>)['tcpDiverged']).to.equal(2);
    expect((p['guest'] as Record<string, number>)['tcpRequests']).to.equal(6);
  });
});

function existsSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
