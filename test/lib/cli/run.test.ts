import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../lib/cli/run.js';
import { parseFlags, parseGuestIp, parseNetdev, UsageError } from '../../../lib/cli/args.js';
import { neighbourReport, statusLine } from '../../../lib/cli/report.js';

const root = join(import.meta.dirname, '..', '..', '..');

describe('lib/cli/run', () => {
  it('scripted_guest_pings_the_peer_and_programs_its_filter', async () => {
    const lines: string[] = [];
    const r = await run({ durationMs: 400, scenario: 'linux', netdev: { kind: 'memory' }, qmpPath: null, json: false }, (l) => lines.push(l));
    expect(lines.join('')).to.match(/QMP socket \/.+qmp\.sock/);
    expect(r.guest['arpReplies']).to.equal(1);
    expect(r.guest['echoReplies']).to.be.greaterThan(0);
    expect(r.peer!['echoReplies']).to.equal(r.guest['echoReplies']);
    expect(r.device.tx.frames).to.equal(r.guest['framesSent']);
    expect(r.device.rx.drops.unicast + r.device.rx.drops.vlan).to.be.greaterThan(0); // host noise filtered
    expect(r.events).to.equal(1); // nobody queried in between: one event for many changes
    expect(r.rxFilterChanges).to.be.greaterThan(5);
    expect(r.rxFilter.promiscuous).to.equal(false);
    expect(r.rxFilter['vlan-table']).to.deep.equal([0, 100]);
    expect(r.rxFilter['multicast-table']).to.include('01:80:c2:00:00:21');
  });

  it('filter_scenario_sends_no_traffic', async () => {
    const r = await run({ durationMs: 200, scenario: 'filter', netdev: { kind: 'memory' }, qmpPath: null, json: true }, () => undefined);
    expect(r.guest['framesSent']).to.equal(0);
    expect(r.device.ctrl.err).to.equal(0);
  });

  it('bad_flags_name_the_flag_and_the_allowed_values', () => {
    const specs = [
      { name: 'duration', kind: 'number', min: 0.1, help: '' },
      { name: 'scenario', kind: 'string', choices: ['linux'], help: '' },
      { name: 'json', kind: 'boolean', help: '' },
    ] as const;
    expect(() => parseFlags('run', ['--bogus'], specs)).to.throw(UsageError, /unknown flag --bogus; flags: --duration, --scenario, --json/);
    expect(() => parseFlags('run', ['--duration', 'x'], specs)).to.throw(UsageError, /--duration must be a number >= 0.1, got "x"/);
    expect(() => parseFlags('run', ['--duration'], specs)).to.throw(UsageError, /--duration needs a value/);
    expect(() => parseFlags('run', ['--scenario=other'], specs)).to.throw(UsageError, /one of linux, got "other"/);
    expect(() => parseFlags('run', ['--json=1'], specs)).to.throw(UsageError, /takes no value/);
    expect(parseFlags('run', ['--duration=2', '--json'], specs)).to.deep.equal({ duration: 2, json: true });
    expect(() => parseNetdev('slirp')).to.throw(UsageError, /unknown backend "slirp"; allowed: memory, tap, macvtap, dgram, vde/);
    expect(() => parseNetdev('macvtap')).to.throw(UsageError, /needs ifname/);
    expect(() => parseNetdev('tap,ifname=a/b')).to.throw(UsageError, /ifname/);
    expect(parseNetdev('macvtap,ifname=mvt0,sync=off')).to.deep.equal({ kind: 'macvtap', ifname: 'mvt0', sync: false });
  });

  it('ip_and_peer_are_validated_with_clear_usage_errors', () => {
    expect(parseGuestIp()).to.deep.equal({ ip: [10, 0, 2, 15], prefixLength: 24, peer: [10, 0, 2, 2] });
    expect(parseGuestIp('192.168.7.10/30', '192.168.7.9')).to.deep.equal({ ip: [192, 168, 7, 10], prefixLength: 30, peer: [192, 168, 7, 9] });
    expect(() => parseGuestIp('10.0.2.15')).to.throw(UsageError, /--ip must be an IPv4 address and prefix length 1-31, e\.g\. 10\.0\.2\.15\/24, got "10\.0\.2\.15"/);
    expect(() => parseGuestIp('10.0.2.256/24')).to.throw(UsageError, /--ip must be/);
    expect(() => parseGuestIp('10.0.2.15/32')).to.throw(UsageError, /prefix length 1-31/);
    expect(() => parseGuestIp('10.0.2.15/24', 'gateway')).to.throw(UsageError, /--peer must be an IPv4 address, e\.g\. 10\.0\.2\.2, got "gateway"/);
    expect(() => parseGuestIp('10.0.2.15/24', '10.0.3.2')).to.throw(UsageError, /--peer 10\.0\.3\.2 is not on the guest's subnet 10\.0\.2\.0\/24/);
    expect(() => parseGuestIp('10.0.2.15/24', '10.0.2.15')).to.throw(UsageError, /the guest's own address/);
    expect(() => parseGuestIp('10.0.2.15/24', '10.0.2.255')).to.throw(UsageError, /--peer: 10\.0\.2\.255 is the subnet's broadcast address/);
    expect(() => parseGuestIp('10.0.2.0/24')).to.throw(UsageError, /--ip: 10\.0\.2\.0 is the subnet's network address/);
    expect(() => parseGuestIp('224.0.0.5/24', '224.0.0.6')).to.throw(UsageError, /multicast/);
  });

  it('the_guest_uses_the_given_address_and_peer', async () => {
    const r = await run({ durationMs: 400, scenario: 'traffic', netdev: { kind: 'memory' }, addressing: parseGuestIp('192.168.7.10/24', '192.168.7.1'), qmpPath: null, json: true }, () => undefined);
    expect(r.netdev).to.equal('memory (simulated host peer 192.168.7.1)');
    expect(r.neighbour).to.include({ ip: '192.168.7.1', state: 'reachable', mac: '52:55:0a:00:02:02', warning: null });
    expect(r.guest['echoReplies']).to.be.greaterThan(0);
    expect(r.guest['echoReplies']).to.equal(r.guest['echoRequests']); // the run waits for its last replies
  });

  it('the_status_line_says_when_the_peer_has_not_answered', () => {
    const peer = (noAnswerMs: number | null) => neighbourReport({ peerStatus: () => ({ ip: '10.0.2.2', state: 'failed', mac: null, noAnswerMs }) }, 'hostnet0');
    expect(peer(2999).warning).to.equal(null);
    expect(peer(5400).warning).to.equal('no answer from 10.0.2.2 on hostnet0 for 5 s');
    const stats = { tx: { frames: 0 }, rx: { frames: 0, drops: {} }, ctrl: { ok: 0, err: 0 } } as unknown as Parameters<typeof statusLine>[1];
    expect(statusLine(6000, stats, 0, 0, undefined, peer(5400))).to.match(/tx 0 {2}rx 0 .* {2}no answer from 10\.0\.2\.2 on hostnet0 for 5 s$/);
    expect(statusLine(6000, stats, 0, 0, undefined, peer(null))).not.to.contain('no answer');
  });

  it('dgram_and_vde_netdev_spellings_are_qemus_and_bad_ones_name_the_rule', () => {
    expect(parseNetdev('dgram,local.type=inet,local.host=127.0.0.1,local.port=5000,remote.type=inet,remote.host=127.0.0.1,remote.port=5001')).to.deep.equal({
      kind: 'dgram',
      local: { type: 'inet', host: '127.0.0.1', port: '5000' },
      remote: { type: 'inet', host: '127.0.0.1', port: '5001' },
    });
    expect(parseNetdev('dgram,remote.type=inet,remote.host=239.1.2.3,remote.port=5000')).to.deep.equal({ kind: 'dgram', remote: { type: 'inet', host: '239.1.2.3', port: '5000' } });
    expect(parseNetdev('dgram,local.type=unix,local.path=/tmp/a,remote.type=unix,remote.path=/tmp/b')).to.deep.equal({
      kind: 'dgram',
      local: { type: 'unix', path: '/tmp/a' },
      remote: { type: 'unix', path: '/tmp/b' },
    });
    expect(parseNetdev('vde,sock=/tmp/sw')).to.deep.equal({ kind: 'vde', sock: '/tmp/sw' });
    expect(() => parseNetdev('dgram')).to.throw(UsageError, /needs local/);
    expect(() => parseNetdev('dgram,local.type=inet,local.host=127.0.0.1,local.port=1')).to.throw(UsageError, /needs remote/);
    expect(() => parseNetdev('dgram,local.type=inet,local.host=127.0.0.1,local.port=1,remote.type=unix,remote.path=/x')).to.throw(UsageError, /types must be the same/);
    expect(() => parseNetdev('dgram,local.type=inet,local.host=localhost,local.port=1,remote.type=inet,remote.host=127.0.0.1,remote.port=2')).to.throw(UsageError, /IPv4 address/);
    expect(() => parseNetdev('dgram,local.type=inet,local.host=127.0.0.1,local.port=x,remote.type=inet,remote.host=127.0.0.1,remote.port=2')).to.throw(UsageError, /local\.port must be an integer/);
    expect(() => parseNetdev('dgram,local.type=unix,local.host=h,remote.type=unix,remote.path=/x')).to.throw(UsageError, /belong to type inet/);
    expect(() => parseNetdev('dgram,local.type=fd,remote.type=inet')).to.throw(UsageError, /must be inet or unix/);
    expect(() => parseNetdev('dgram,mcast=239.1.2.3:5000')).to.throw(UsageError, /unknown property mcast/);
  });

  it('npm_start_json_prints_valid_json_with_frame_counts_and_the_final_filter', function () {
    this.timeout(60000);
    const p = spawnSync('npm', ['start', '--silent', '--', '--duration', '1', '--json'], { cwd: root, encoding: 'utf8', timeout: 60000 });
    expect(p.status, p.stderr).to.equal(0);
    const out = JSON.parse(p.stdout) as { device: { tx: { frames: number }; rx: { frames: number } }; rxFilter: Record<string, unknown>; qmp: string };
    expect(out.device.tx.frames).to.be.greaterThan(0);
    expect(out.device.rx.frames).to.be.greaterThan(0);
    expect(Object.keys(out.rxFilter)).to.have.length(12);
    expect(out.qmp).to.match(/qmp\.sock$/);
  });

  it('ctrl_c_ends_the_run_with_its_summary_and_removes_its_temp_directory', async function () {
    this.timeout(60000);
    const tmp = mkdtempSync(join(tmpdir(), 'vnm-run-sigint-'));
    try {
      const child = spawn(process.execPath, [join(root, 'bin', 'virtio-net.mjs'), 'run', '--duration', '60', '--json'], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
      const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
      // The run is up once its QMP socket exists in its temp directory.
      const deadline = Date.now() + 30000;
      const socketUp = (): boolean => readdirSync(tmp).some((d) => d.startsWith('virtio-net-') && existsSync(join(tmp, d, 'qmp.sock')));
      while (!socketUp()) {
        if (Date.now() > deadline) throw new Error('the run did not create its QMP socket');
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGINT');
      expect(await exited, 'exit code of an interrupted run').to.equal(130);
      const result = JSON.parse(stdout) as { interrupted: boolean; durationMs: number };
      expect(result.interrupted).to.equal(true);
      expect(result.durationMs).to.be.lessThan(60000);
      // (tsx, which runs the command from source, keeps its own cache there: not ours.)
      expect(readdirSync(tmp).filter((d) => d.startsWith('virtio-net-')), 'temp directory left behind').to.deep.equal([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('help_prints_the_usage_of_every_command', function () {
    this.timeout(60000);
    const p = spawnSync(process.execPath, [join(root, 'bin', 'virtio-net.mjs'), 'run', '--help'], { encoding: 'utf8', timeout: 60000 });
    expect(p.status).to.equal(0);
    expect(p.stdout).to.contain('--scenario NAME').and.to.contain('--script FILE').and.to.contain('--ip ADDR/LEN').and.to.contain('--peer ADDR');
  });

  it('the_command_exits_2_with_a_clear_message_on_a_bad_flag', function () {
    this.timeout(60000);
    const p = spawnSync(process.execPath, [join(root, 'bin', 'virtio-net.mjs'), 'run', '--scenario', 'nope'], { encoding: 'utf8', timeout: 60000 });
    expect(p.status).to.equal(2);
    expect(p.stderr).to.contain('--scenario must be one of linux, traffic, filter, got "nope"');
    const q = spawnSync(process.execPath, [join(root, 'bin', 'virtio-net.mjs'), 'run', '--peer', '10.0.9.1'], { encoding: 'utf8', timeout: 60000 });
    expect(q.status).to.equal(2);
    expect(q.stderr).to.contain("--peer 10.0.9.1 is not on the guest's subnet 10.0.2.0/24 (--ip 10.0.2.15/24)");
  });
});
