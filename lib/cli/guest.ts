// `virtio-net guest`: boots a real Linux guest in v86 with the device attached (VIRTIO 1.2 §4.1
// virtio-pci via lib/hypervisors/v86.ts, §5.1 the device) and either gives its serial console on
// the terminal or runs a script of shell commands in it.
//
// Data flow: flags → guest image (built or reused from the cache, guest-image.ts) → netdev
// (memory + SimPeer by default, or tap / macvtap) → GuestVm.boot → QMP server on the device →
//   interactive: terminal bytes ⇄ ttyS0 (Ctrl-] quits); eth0 is up as 10.0.2.15/24 via 10.0.2.2
//   --script FILE: each non-empty line that is not a `#` comment runs in order, waiting for it
//     (eth0 starts down: the script decides); per step a line of text, or with --json one object
//     { step, exitCode, output, rxFilter, linkUp, backend } where rxFilter is queryRxFilter() after
//     the step (in QEMU's form with --compat qemu), linkUp the guest's link and backend the
//     backend's host link and host errors (report.ts BackendReport); in text, a `[backend: …]` line
//     after a step that changed them. Exit code 0 when every step exited 0, else 1.
//   Either way a host link change (TAP / macvtap) is a line on stderr when it happens.
//   --save FILE: v86's state image of the machine (device state included, attachToV86) written to
//     FILE on SIGUSR1 (any time; the guest keeps running) and, with --script, after the last step.
//   --restore FILE: instead of booting, the machine saved in FILE continues (same image; give the
//     flags that shape the device — --legacy / --legacy-only, --mac — as when it was saved).
//   --legacy-only: a transitional device without the modern interface (no virtio capabilities,
//     only the legacy header in BAR0; QEMU's disable-modern=on), so any driver takes its legacy
//     path (iPXE and Linux otherwise prefer the modern one of a transitional device).
//   --nic builtin: v86's own virtio-net device on the same backend instead of this project's
//     (V86BuiltinNic); no rx filter (rxFilter null), no diagnostics, no QMP socket.
//   --guest-kernel 6.5: bookworm-backports' kernel instead of bookworm's 6.1 (guest-image.ts).
//   --kernel FILE / --initrd FILE: a driver developer's own kernel (bzImage) and/or initramfs in
//     place of the image's; a foreign initramfs must print READY_MARKER on ttyS0 once its shell
//     reads commands, or the command waits for it until the boot timeout.
//   --diagnostics FILE: device.diagnostics() as a JSON array, written at exit; with --json each
//     step's object also carries the diagnostics recorded during that step.
//   --kernel ipxe: Debian's iPXE (/boot/ipxe.lkrn) instead of Linux (ipxe.ts): --script lines are
//     iPXE commands, reported per step the same way (exitCode 0 or iPXE's error number; the output
//     read from the VGA screen, iPXE paused between steps); no interactive console, no state.

import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Netdev } from '../netdev/netdev.js';
import { hasLinkState } from '../netdev/netdev.js';
import { backendReport } from './report.js';
import type { BackendReport } from './report.js';
import { QmpServer } from '../qmp/server.js';
import { parseFlags, parseNetdev, UsageError } from './args.js';
import type { FlagSpec, NetdevSpec } from './args.js';
import { GuestImageError, buildGuestImage } from './guest-image.js';
import type { GuestImage, GuestKernel } from './guest-image.js';
import { GUEST_IP, GuestVm, PEER_IP } from './guest-vm.js';
import type { GuestNic } from './guest-vm.js';
import type { Diagnostic } from '../../devices/virtio/diagnostics.js';
import { IPXE_LKRN, IpxeSteps, SEABIOS_BIN, SEABIOS_VGA, ipxeFiles } from './ipxe.js';

export const GUEST_FLAGS: readonly FlagSpec[] = [
  { name: 'script', kind: 'string', help: 'run each line of FILE as a guest shell command, then exit' },
  { name: 'json', kind: 'boolean', help: 'with --script: one JSON object per step' },
  { name: 'compat', kind: 'string', choices: ['qemu'], help: "report the rx filter in QEMU's form" },
  { name: 'netdev', kind: 'string', help: 'memory (default), tap[,ifname=NAME][,io=inline|uring], macvtap,ifname=NAME[,sync=on|off], dgram,local.type=…,remote.type=…, vde,sock=DIR, stream,addr.type=unix|inet,…[,server=on|off], passt[,tcp=SPEC][,udp=SPEC], websocket,url=ws://HOST:PORT' },
  { name: 'qmp', kind: 'string', help: 'QMP socket path (default: a fresh path in the temp directory)' },
  { name: 'legacy', kind: 'boolean', help: 'a transitional device driven by the legacy virtio-pci driver' },
  { name: 'legacy-only', kind: 'boolean', help: "a legacy-only device (no modern interface, QEMU's disable-modern=on): every driver takes its legacy path" },
  { name: 'mac', kind: 'string', help: 'the NIC\'s MAC address (default 52:54:00:12:34:56)' },
  { name: 'step-timeout', kind: 'number', min: 1, max: 3600, help: 'seconds one script step may take (default 60)' },
  { name: 'save', kind: 'string', help: "write the machine's state to FILE on SIGUSR1 and after --script" },
  { name: 'restore', kind: 'string', help: 'continue the machine saved in FILE instead of booting' },
  { name: 'nic', kind: 'string', choices: ['model', 'builtin'], help: "model (default): this project's device; builtin: v86's own virtio-net on the same backend" },
  { name: 'guest-kernel', kind: 'string', choices: ['6.1', '6.5'], help: "6.1 (default): bookworm's kernel; 6.5: bookworm-backports'" },
  { name: 'kernel', kind: 'string', help: "boot this kernel (bzImage) instead of the image's; ipxe: Debian's iPXE, --script lines are iPXE commands" },
  { name: 'initrd', kind: 'string', help: "use this initramfs instead of the image's (it must print VIRTIO-NET-GUEST-READY on ttyS0)" },
  { name: 'diagnostics', kind: 'string', help: "write the device's diagnostics (the driver's mistakes) to FILE as JSON at exit" },
];

/** Ctrl-] ends the interactive console, as in telnet. */
const ESCAPE_BYTE = 0x1d;
const DEFAULT_MAC = '52:54:00:12:34:56';

interface GuestOptions {
  script: string | null;
  json: boolean;
  compat: 'qemu' | undefined;
  netdev: NetdevSpec;
  qmpPath: string | null;
  legacy: boolean;
  legacyOnly: boolean;
  mac: string;
  stepTimeoutMs: number;
  save: string | null;
  restore: string | null;
  nic: GuestNic;
  guestKernel: GuestKernel;
  kernel: string | null;
  initrd: string | null;
  diagnostics: string | null;
}

export function parseGuestArgs(argv: readonly string[]): GuestOptions {
  const f = parseFlags('guest', argv, GUEST_FLAGS);
  const script = (f['script'] as string | undefined) ?? null;
  if (f['json'] === true && script === null) throw new UsageError('virtio-net guest: --json needs --script FILE (the interactive console prints no JSON)');
  const mac = (f['mac'] as string | undefined) ?? DEFAULT_MAC;
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) throw new UsageError(`virtio-net guest: --mac must look like 52:54:00:12:34:56, got ${JSON.stringify(mac)}`);
  const nic = f['nic'] === 'builtin' ? 'builtin' : 'model';
  if (nic === 'builtin') {
    for (const flag of ['legacy', 'legacy-only', 'compat', 'save', 'restore', 'diagnostics', 'qmp']) {
      if (f[flag] !== undefined) throw new UsageError(`virtio-net guest: --${flag} does not apply to --nic builtin (v86's own virtio-net: modern only, no rx filter, no state, no diagnostics, no QMP)`);
    }
  }
  const kernel = (f['kernel'] as string | undefined) ?? null;
  if (kernel === 'ipxe') {
    if (script === null) throw new UsageError("virtio-net guest: --kernel ipxe needs --script FILE (iPXE commands; Debian's iPXE has no serial console to type into)");
    for (const flag of ['initrd', 'save', 'restore']) {
      if (f[flag] !== undefined) throw new UsageError(`virtio-net guest: --${flag} does not go with --kernel ipxe (the script is the initrd; no state is saved)`);
    }
  }
  if (kernel !== null && f['guest-kernel'] !== undefined) throw new UsageError('virtio-net guest: --guest-kernel chooses the image\'s kernel; it does not go with --kernel FILE');
  return {
    script,
    json: f['json'] === true,
    nic,
    guestKernel: f['guest-kernel'] === '6.5' ? '6.5' : '6.1',
    kernel,
    initrd: (f['initrd'] as string | undefined) ?? null,
    diagnostics: (f['diagnostics'] as string | undefined) ?? null,
    compat: f['compat'] === 'qemu' ? 'qemu' : undefined,
    netdev: parseNetdev((f['netdev'] as string | undefined) ?? 'memory'),
    qmpPath: (f['qmp'] as string | undefined) ?? null,
    legacy: f['legacy'] === true,
    legacyOnly: f['legacy-only'] === true,
    mac,
    stepTimeoutMs: ((f['step-timeout'] as number | undefined) ?? 60) * 1000,
    save: (f['save'] as string | undefined) ?? null,
    restore: (f['restore'] as string | undefined) ?? null,
  };
}

/** Where the command writes (default: the process's stdout and stderr). */
export interface GuestOutput {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/** The `guest` subcommand. Resolves with the exit code; never calls process.exit. */
export async function runGuest(args: string[], output: GuestOutput = {}): Promise<number> {
  const options = parseGuestArgs(args);
  const steps = options.script === null ? null : readScript(options.script);
  const restore = options.restore === null ? undefined : readState(options.restore);
  const out = output.stdout ?? ((text: string): void => void process.stdout.write(text));
  const stderr = output.stderr ?? ((text: string): void => void process.stderr.write(text));
  const err = (line: string): void => stderr(`${line}\n`);
  const ipxe = options.kernel === 'ipxe';
  for (const [flag, path] of [['kernel', ipxe ? null : options.kernel], ['initrd', options.initrd]] as const) {
    if (path !== null && !existsSync(path)) throw new UsageError(`virtio-net guest: --${flag} ${JSON.stringify(path)} does not exist`);
  }
  if (ipxe) {
    const missing = [IPXE_LKRN, SEABIOS_BIN, SEABIOS_VGA].filter((p) => !existsSync(p));
    if (missing.length > 0) {
      err(`virtio-net guest: --kernel ipxe needs ${missing.join(' and ')} (Debian packages ipxe and seabios: apt-get install ipxe seabios)`);
      return 1;
    }
  }
  let image: GuestImage;
  const ipxeRun = ipxe ? { files: ipxeFiles(steps!), steps: new IpxeSteps() } : null;
  try {
    image = ipxeRun !== null ? ipxeRun.files.image : withOwnFiles(buildGuestImage({ log: err, kernel: options.guestKernel }), options.kernel, options.initrd);
  } catch (e) {
    if (e instanceof GuestImageError) {
      err(`virtio-net guest: cannot build the guest image (${e.code}): ${e.message}`);
      return 1;
    }
    throw e;
  }
  const { netdev, label } = await openNetdev(options.netdev, options.nic === 'builtin').catch((e: unknown) => {
    ipxeRun?.files.remove();
    throw e;
  });
  const interactive = steps === null;
  let vm: GuestVm;
  try {
    const what = restore !== undefined ? `restoring ${options.restore}` : ipxe ? `booting iPXE (${IPXE_LKRN})` : `booting ${options.kernel ?? `Linux ${image.kernelRelease}`}`;
    const nicName = options.nic === 'builtin' ? "v86's own virtio-net" : `${options.legacyOnly ? 'legacy-only' : options.legacy ? 'legacy' : 'modern'} virtio-pci`;
    err(`virtio-net guest: ${what} in v86 (${nicName}) on ${label}`);
    vm = await GuestVm.boot({
      image,
      nic: options.nic,
      stateDisk: options.save !== null || restore !== undefined,
      ...(restore !== undefined ? { restore } : {}),
      legacy: options.legacy || options.legacyOnly,
      ...(options.legacyOnly ? { modern: false } : {}),
      ...(netdev !== null ? { netdev } : {}),
      mac: options.mac,
      ...(options.compat !== undefined ? { compat: options.compat } : {}),
      // iPXE: no ne2k of v86's own for it to find first (v86 builds one unless told otherwise).
      ...(ipxeRun !== null ? { bare: true, onScreenChar: (r: number, c: number, ch: number) => ipxeRun.steps.putChar(r, c, ch), ...(options.nic === 'model' ? { netDevice: { type: 'none' } } : {}) } : {}),
      ...(interactive ? { cmdline: `vnm.ip=${GUEST_IP}/24 vnm.gw=${PEER_IP}`, onSerialByte: (b: number) => process.stdout.write(Uint8Array.of(b)) } : {}),
    });
  } catch (e) {
    ipxeRun?.files.remove();
    await netdev?.close();
    throw e;
  }
  const model = vm.nic === 'model';
  ipxeRun?.steps.attach(vm.emulator);
  let qmp: QmpServer | null = null;
  if (model) {
    const tmp = options.qmpPath === null ? mkdtempSync(join(tmpdir(), 'virtio-net-guest-')) : null;
    const qmpPath = options.qmpPath ?? join(tmp!, 'qmp.sock');
    qmp = new QmpServer({ devices: [vm.device], netdevs: [vm.netdev], path: qmpPath });
    await qmp.listen();
    err(`virtio-net guest: ${restore !== undefined ? 'restored' : 'booted'} in ${vm.bootMs} ms; QMP socket ${qmpPath}`);
  } else err(`virtio-net guest: booted in ${vm.bootMs} ms (v86's own NIC: no QMP socket)`);
  const save = async (): Promise<void> => {
    if (options.save === null) return;
    try {
      await saveTo(vm, options.save);
      err(`virtio-net guest: state saved to ${options.save}`);
    } catch (e) {
      err(`virtio-net guest: cannot save the state to ${options.save}: ${(e as Error).message}`);
    }
  };
  const onSignal = (): void => void save();
  if (options.save !== null) process.on('SIGUSR1', onSignal);
  if (hasLinkState(vm.netdev)) {
    const device = model ? vm.device : null;
    vm.netdev.onLinkChange((c) => err(`virtio-net guest: host link ${c.up ? 'up' : 'down'} (${c.reason})${device !== null ? `; the guest's link is ${device.linkUp ? 'up' : 'down'}` : ''}`));
  }
  try {
    if (steps === null) {
      err('virtio-net guest: serial console attached; Ctrl-] quits');
      await attachTerminal(vm);
      return 0;
    }
    let failed = 0;
    let lastBackend = JSON.stringify(backendReport(vm.netdev));
    let seen = model ? diagnosticTotal(vm) : 0;
    for (const [n, step] of steps.entries()) {
      const r = ipxeRun !== null ? await ipxeRun.steps.next(n, options.stepTimeoutMs) : await vm.run(step, options.stepTimeoutMs);
      if (r.exitCode !== 0) failed++;
      const rxFilter = model ? vm.device.queryRxFilter() : null;
      const linkUp = model ? vm.device.linkUp : null;
      const backend = backendReport(vm.netdev);
      let diagnostics: readonly Diagnostic[] = [];
      if (model) {
        const total = diagnosticTotal(vm);
        const all = vm.device.diagnostics();
        diagnostics = total === seen ? [] : all.slice(Math.max(0, all.length - (total - seen)));
        seen = total;
      }
      if (options.json) out(`${JSON.stringify({ step, exitCode: r.exitCode, output: r.output, rxFilter, linkUp, backend, ...(model ? { diagnostics } : {}) })}\n`);
      else {
        const code = ipxe && r.exitCode !== 0 ? `0x${r.exitCode.toString(16)}` : String(r.exitCode); // iPXE's error numbers read in hex
        out(`${ipxe ? 'iPXE> ' : '$ '}${step}\n${r.output}${r.output.endsWith('\n') || r.output === '' ? '' : '\n'}[exit ${code}]\n`);
        for (const d of diagnostics) out(`[diagnostic ${d.code} (§${d.section}): ${d.message}]\n`);
        const now = JSON.stringify(backend);
        if (now !== lastBackend) out(`${backendLine(backend, linkUp)}\n`);
        lastBackend = now;
      }
    }
    if (options.save !== null) {
      await saveTo(vm, options.save); // after the script: a failure here fails the command
      err(`virtio-net guest: state saved to ${options.save}`);
    }
    return failed === 0 ? 0 : 1;
  } finally {
    process.off('SIGUSR1', onSignal);
    if (options.diagnostics !== null && model) {
      writeFileSync(options.diagnostics, `${JSON.stringify(vm.device.diagnostics(), null, 2)}\n`);
      err(`virtio-net guest: ${vm.device.diagnostics().length} diagnostics written to ${options.diagnostics}`);
    }
    await qmp?.close();
    ipxeRun?.steps.close();
    await vm.stop();
    ipxeRun?.files.remove();
  }
}

/** Diagnostics recorded over the device's life (the log itself is bounded). */
function diagnosticTotal(vm: GuestVm): number {
  let n = 0;
  for (const c of vm.device.diagnosticCounts().values()) n += c;
  return n;
}

/** The image with a driver developer's own kernel and/or initramfs in place of its own. */
function withOwnFiles(image: GuestImage, kernel: string | null, initrd: string | null): GuestImage {
  return { ...image, ...(kernel !== null ? { bzimage: kernel } : {}), ...(initrd !== null ? { initrd } : {}) };
}

/** The text-mode line after a step that changed the backend's link or errors. */
function backendLine(b: BackendReport, guestLinkUp: boolean | null): string {
  const parts = guestLinkUp === null ? [] : [`guest link ${guestLinkUp ? 'up' : 'down'}`];
  if (b.link !== null) parts.push(`host link ${b.link.up ? 'up' : 'down'} (${b.link.downs} down, ${b.link.ups} up${b.link.last === null ? '' : `; last ${b.link.last.reason}`})`);
  if (b.errors !== null) parts.push(`errors ${b.errors.count}${b.errors.last === null ? '' : ` (last: ${b.errors.last})`}`);
  return `[backend: ${parts.join('; ')}]`;
}

function readState(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UsageError(`virtio-net guest: --restore ${JSON.stringify(path)} cannot be read: ${(e as Error).message}`);
  }
}

/** The state image, written whole (a temporary file renamed over FILE). */
async function saveTo(vm: GuestVm, path: string): Promise<void> {
  const bytes = await vm.saveState();
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

function readScript(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`virtio-net guest: --script ${JSON.stringify(path)} cannot be read: ${(e as Error).message}`);
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

/** Terminal ⇄ serial console until Ctrl-] or the end of stdin. */
function attachTerminal(vm: GuestVm): Promise<void> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    const raw = stdin.isTTY === true;
    if (raw) stdin.setRawMode(true);
    const done = (): void => {
      stdin.off('data', onData);
      stdin.off('end', done);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      const at = chunk.indexOf(ESCAPE_BYTE);
      const text = (at === -1 ? chunk : chunk.subarray(0, at)).toString('latin1');
      if (text.length > 0) vm.send(text);
      if (at !== -1) done();
    };
    stdin.on('data', onData);
    stdin.on('end', done);
    stdin.resume();
  });
}

/** null for the default: GuestVm then builds a MemoryNetdev with a SimPeer. */
async function openNetdev(spec: NetdevSpec, bareFrames = false): Promise<{ netdev: Netdev | null; label: string }> {
  switch (spec.kind) {
    case 'memory':
      return { netdev: null, label: `memory (simulated host peer ${PEER_IP})` };
    case 'tap': {
      const { TapNetdev } = await import('../netdev/tap-netdev.js');
      // v86's own NIC exchanges bare frames: no virtio-net header on the TAP then.
      const tap = new TapNetdev({ id: 'hostnet0', ...(spec.ifname !== undefined ? { ifname: spec.ifname } : {}), ...(bareFrames ? { vnetHdr: false } : {}), ...(spec.io !== undefined ? { io: spec.io } : {}) });
      return { netdev: tap, label: `tap ${tap.ifname}${tap.io === 'uring' ? ' (io_uring)' : ''}` };
    }
    case 'macvtap': {
      const { MacvtapNetdev } = await import('../netdev/macvtap-netdev.js');
      return { netdev: new MacvtapNetdev({ id: 'hostnet0', ifname: spec.ifname, syncRxFilter: spec.sync }), label: `macvtap ${spec.ifname}` };
    }
    case 'dgram': {
      const { openDgram } = await import('./run.js');
      const netdev = await openDgram(spec);
      return { netdev, label: `dgram ${netdev.info}` };
    }
    case 'vde': {
      const { VdeNetdev } = await import('../netdev/vde-netdev.js');
      return { netdev: new VdeNetdev({ id: 'hostnet0', sock: spec.sock }), label: `vde ${spec.sock}` };
    }
    case 'stream':
    case 'passt': {
      const { openSocketNetdev } = await import('./socket-netdev.js');
      return openSocketNetdev(spec);
    }
    case 'websocket': {
      const { openWebSocketNetdev } = await import('./socket-netdev.js');
      return openWebSocketNetdev(spec.url);
    }
  }
}
