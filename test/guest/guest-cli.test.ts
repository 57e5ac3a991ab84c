// `virtio-net guest --script FILE --json`: a real guest runs the script's lines in order and each
// step reports its exit code, output and the rx filter afterwards (in QEMU's form with --compat qemu).
// `--save FILE` writes the machine's state after the script and, in a running `virtio-net guest`
// process, on SIGUSR1; `--restore FILE` continues that machine.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGuestArgs, runGuest } from '../../lib/cli/guest.js';
import { UsageError } from '../../lib/cli/args.js';
import { guestImageOrSkip } from '../support/v86-guest.js';

describe('virtio-net guest (CLI)', function () {
  it('bad_flags_are_usage_errors_naming_the_flag', () => {
    expect(() => parseGuestArgs(['--json'])).to.throw(UsageError, /--json needs --script/);
    expect(() => parseGuestArgs(['--compat', 'linux'])).to.throw(UsageError, /--compat must be one of qemu/);
    expect(() => parseGuestArgs(['--mac', '52:54'])).to.throw(UsageError, /--mac/);
    expect(() => parseGuestArgs(['--netdev', 'slirp'])).to.throw(UsageError, /unknown backend/);
    expect(() => parseGuestArgs(['--bogus'])).to.throw(UsageError, /unknown flag --bogus/);
  });

  it('nic_kernel_initrd_and_diagnostics_flags_parse', () => {
    expect(parseGuestArgs([])).to.include({ nic: 'model', guestKernel: '6.1', kernel: null, initrd: null, diagnostics: null });
    expect(parseGuestArgs(['--nic', 'builtin', '--guest-kernel', '6.5'])).to.include({ nic: 'builtin', guestKernel: '6.5' });
    expect(parseGuestArgs(['--kernel', 'bzImage', '--initrd', 'my.cpio', '--diagnostics', 'd.json'])).to.include({ kernel: 'bzImage', initrd: 'my.cpio', diagnostics: 'd.json' });
    expect(() => parseGuestArgs(['--nic', 'ne2k'])).to.throw(UsageError, /--nic must be one of model, builtin/);
    expect(() => parseGuestArgs(['--guest-kernel', '6.12'])).to.throw(UsageError, /--guest-kernel must be one of 6.1, 6.5/);
    expect(() => parseGuestArgs(['--nic', 'builtin', '--legacy'])).to.throw(UsageError, /--legacy does not apply to --nic builtin/);
    expect(() => parseGuestArgs(['--nic', 'builtin', '--diagnostics', 'd.json'])).to.throw(UsageError, /--diagnostics does not apply/);
    expect(() => parseGuestArgs(['--kernel', 'bzImage', '--guest-kernel', '6.5'])).to.throw(UsageError, /--guest-kernel/);
  });

  it('save_and_restore_flags_parse', async () => {
    expect(parseGuestArgs(['--save', 'vm.state'])).to.include({ save: 'vm.state', restore: null });
    expect(parseGuestArgs(['--restore', 'vm.state', '--script', 's.sh'])).to.include({ save: null, restore: 'vm.state', script: 's.sh' });
    expect(() => parseGuestArgs(['--save'])).to.throw(UsageError, /--save/);
    const missing = join(tmpdir(), `vnm-no-such-state-${process.pid}`);
    let error: unknown = null;
    await runGuest(['--restore', missing], { stdout: () => {}, stderr: () => {} }).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(UsageError);
    expect((error as Error).message).to.match(/--restore .* cannot be read/);
  });

  it('script_json_reports_every_step_with_the_rx_filter_in_qemu_form', async function () {
    this.timeout(300_000);
    guestImageOrSkip(this);
    const dir = mkdtempSync(join(tmpdir(), 'vnm-guest-cli-'));
    const script = join(dir, 'steps.sh');
    writeFileSync(script, ['# comments and blank lines are skipped', '', 'ip link set eth0 up', 'ifconfig eth0 allmulti', 'echo hello; false'].join('\n'));
    const lines: string[] = [];
    const code = await runGuest(['--script', script, '--json', '--compat', 'qemu', '--qmp', join(dir, 'qmp.sock')], {
      stdout: (t) => lines.push(...t.split('\n').filter((l) => l.length > 0)),
      stderr: () => {},
    });
    expect(code).to.equal(1); // the last step exited 1
    const steps = lines.map((l) => JSON.parse(l) as { step: string; exitCode: number; output: string; rxFilter: Record<string, unknown>; linkUp: boolean; backend: unknown });
    expect(steps.map((s) => [s.step, s.exitCode])).to.deep.equal([
      ['ip link set eth0 up', 0],
      ['ifconfig eth0 allmulti', 0],
      ['echo hello; false', 1],
    ]);
    expect(steps[2]!.output).to.equal('hello\n');
    const up = steps[0]!.rxFilter;
    expect(up['promiscuous']).to.equal(false);
    expect(up['broadcast-allowed']).to.equal(false); // QEMU reports the NOBCAST flag here
    expect(up['vlan-table']).to.deep.equal([0]);
    expect(steps[1]!.rxFilter['multicast']).to.equal('all');
    // The in-memory backend has no host link and no host errors to report; the guest's link is up.
    expect(steps[2]).to.deep.include({ linkUp: true, backend: { link: null, errors: null } });
  });

  it('legacy_only_device_linux_falls_back_to_its_legacy_driver_by_itself', async function () {
    // No virtio capabilities: virtio_pci's modern probe leaves the device to the legacy driver,
    // without virtio_pci.force_legacy=1 on the command line.
    this.timeout(300_000);
    guestImageOrSkip(this);
    const dir = mkdtempSync(join(tmpdir(), 'vnm-guest-cli-'));
    const script = join(dir, 'steps.sh');
    const diag = join(dir, 'diag.json');
    writeFileSync(script, ['cat /proc/cmdline', 'cat /sys/bus/pci/devices/0000:00:0d.0/device', 'readlink /sys/bus/virtio/devices/virtio0/driver', 'cat /sys/bus/virtio/devices/virtio0/features', 'ip link set eth0 up'].join('\n'));
    const lines: string[] = [];
    let stderr = '';
    const code = await runGuest(['--legacy-only', '--script', script, '--json', '--diagnostics', diag, '--qmp', join(dir, 'qmp.sock')], {
      stdout: (t) => lines.push(...t.split('\n').filter((l) => l.length > 0)),
      stderr: (t) => (stderr += t),
    });
    const steps = lines.map((l) => JSON.parse(l) as { step: string; exitCode: number; output: string; rxFilter: Record<string, unknown> });
    expect(code, JSON.stringify(steps)).to.equal(0);
    expect(stderr).to.contain('(legacy-only virtio-pci)');
    expect(steps[0]!.output).to.not.contain('force_legacy');
    expect(steps[1]!.output.trim()).to.equal('0x1000');
    expect(steps[2]!.output).to.match(/\/virtio_net\n$/);
    const bits = steps[3]!.output.trim();
    expect(bits[5], 'MAC (bit 5) negotiated').to.equal('1');
    expect(bits.slice(32)).to.not.contain('1'); // the legacy driver: no bit above 31, so no VERSION_1
    expect(steps[4]!.rxFilter['vlan-table']).to.deep.equal([0]); // the control queue works on the legacy interface
    expect(JSON.parse(readFileSync(diag, 'utf8'))).to.deep.equal([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('save_after_script_then_restore_continues_the_same_guest', async function () {
    this.timeout(600_000);
    guestImageOrSkip(this);
    const dir = mkdtempSync(join(tmpdir(), 'vnm-guest-cli-'));
    const setup = join(dir, 'setup.sh');
    const more = join(dir, 'more.sh');
    const state = join(dir, 'vm.state');
    writeFileSync(setup, ['ip link set eth0 up', 'ip link set eth0 promisc on', 'echo marker-from-before > /tmp/m'].join('\n'));
    writeFileSync(more, ['cat /tmp/m', 'cat /sys/class/net/eth0/flags'].join('\n'));
    const quiet = { stdout: () => {}, stderr: () => {} };
    expect(await runGuest(['--script', setup, '--save', state, '--qmp', join(dir, 'a.sock')], quiet)).to.equal(0);
    const lines: string[] = [];
    const code = await runGuest(['--restore', state, '--script', more, '--json', '--qmp', join(dir, 'b.sock')], {
      stdout: (t) => lines.push(...t.split('\n').filter((l) => l.length > 0)),
      stderr: () => {},
    });
    expect(code).to.equal(0);
    const steps = lines.map((l) => JSON.parse(l) as { output: string; rxFilter: Record<string, unknown> });
    expect(steps[0]!.output).to.equal('marker-from-before\n'); // the guest's own files: the same machine
    expect(Number(steps[1]!.output.trim()) & 0x100, 'IFF_PROMISC').to.equal(0x100);
    expect(steps[0]!.rxFilter['promiscuous'], 'the rx filter came with the state').to.equal(true);
  });

  it('sigusr1_saves_the_running_guest_and_the_file_restores', async function () {
    // The real command in its own process, interactive (serial console on stdin/stdout; /init
    // configures eth0 as 10.0.2.15/24 from the kernel command line): once booted, SIGUSR1, wait for
    // the save, quit with Ctrl-]; then `--restore` the file and use the network it had.
    this.timeout(600_000);
    guestImageOrSkip(this);
    const dir = mkdtempSync(join(tmpdir(), 'vnm-guest-sig-'));
    const state = join(dir, 'vm.state');
    try {
      const child = spawn(process.execPath, ['bin/virtio-net.mjs', 'guest', '--save', state, '--qmp', join(dir, 'a.sock')], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const waiters: { test: () => boolean; resolve: () => void }[] = [];
      const poke = (): void => {
        for (const w of waiters.splice(0)) {
          if (w.test()) w.resolve();
          else waiters.push(w);
        }
      };
      child.stdout.on('data', (b: Buffer) => ((out += b.toString('latin1')), poke()));
      child.stderr.on('data', (b: Buffer) => ((err += b.toString()), poke()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const until = (what: string, test: () => boolean, ms: number): Promise<void> =>
        Promise.race([
          new Promise<void>((resolve) => {
            if (test()) resolve();
            else waiters.push({ test, resolve });
          }),
          exited.then(() => Promise.reject(new Error(`the process ended before ${what}\n--- stderr ---\n${err}\n--- stdout (end) ---\n${out.slice(-2000)}`))),
          new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`no ${what} in ${ms} ms\n--- stderr ---\n${err}\n--- stdout (end) ---\n${out.slice(-2000)}`)), ms).unref()),
        ]);
      try {
        // The SIGUSR1 handler is installed before the console is attached; the shell's prompt
        // means the guest is idle. (Under heavy load, a SIGUSR1 sent as soon as the "booted" line
        // appeared once started Node's inspector instead of saving — not explained yet.)
        await until('the console', () => err.includes('serial console attached') && out.includes('/ # '), 400_000);
        expect(child.kill('SIGUSR1')).to.equal(true);
        await until('the save', () => err.includes(`state saved to ${state}`), 180_000);
        // Ctrl-] quits the console; the end of stdin lets the process exit (a pipe stays open else).
        child.stdin.end(Uint8Array.of(0x1d));
        const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running 120 s after Ctrl-]'), 120_000).unref())]);
        expect(code, err).to.equal(0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      expect(err).to.not.match(/cannot save/);
      // v86's state image (its magic first), written whole by the signal's save.
      expect(readFileSync(state).readUInt32LE(0).toString(16)).to.equal('86768676');

      const more = join(dir, 'more.sh');
      writeFileSync(more, ['ip -4 addr show dev eth0', 'ping -c 1 -W 5 10.0.2.2'].join('\n'));
      const lines: string[] = [];
      const code = await runGuest(['--restore', state, '--script', more, '--json', '--step-timeout', '180', '--qmp', join(dir, 'b.sock')], {
        stdout: (t) => lines.push(...t.split('\n').filter((l) => l.length > 0)),
        stderr: () => {},
      });
      const steps = lines.map((l) => JSON.parse(l) as { exitCode: number; output: string; rxFilter: Record<string, unknown> });
      expect(code, lines.join('\n')).to.equal(0);
      // The address the interactive boot configured: the saved machine, not a fresh one.
      expect(steps[0]!.output).to.match(/inet 10\.0\.2\.15\/24/);
      expect(steps[1]!.output).to.match(/, 1 received/); // the restored device carries traffic
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
