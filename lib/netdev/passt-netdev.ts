// `--netdev passt`: Debian's passt (user-mode networking without privileges, passt(1)) started for
// this device and reached as a QEMU `-netdev stream` peer: passt speaks exactly that framing on its
// unix socket. `PasstNetdev.start()` runs `passt -f -1 -s SOCKET [-t SPEC]… [-u SPEC]…` (foreground,
// one client, then exit), waits until the socket listens (the kernel's /proc/net/unix, so no probe
// connection uses up passt's one client), and connects. passt gives the guest DHCP (the host's
// address and gateway), DNS and NDP, and maps the gateway address to the host's loopback.
//
// The socket lives in a fresh private directory. Started as root, passt drops to `nobody` before
// it creates the socket, so the directory is handed to nobody (still mode 0700: only nobody and
// root can enter it). close() — and process exit, for a passt still running then — stops passt
// (SIGTERM, SIGKILL after a grace period) and removes the directory.

import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamNetdev } from './stream-netdev.js';

/** The passt program (Debian package passt). */
export const PASST = 'passt';
/** How long passt may take to listen. */
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2000;
/** passt's stderr kept for error messages. */
const STDERR_KEEP = 8192;

export interface PasstNetdevOptions {
  id: string;
  /** passt `-t` specs (TCP ports forwarded to the guest, passt(1) syntax, e.g. `8080:80`), one each. */
  tcp?: readonly string[];
  /** passt `-u` specs (UDP). */
  udp?: readonly string[];
}

const live = new Set<PasstNetdev>();
let exitHook = false;

/** A forward spec as passt(1) takes it: ports, ranges, `:` targets, `~` exclusions, `/addr`, `%if`, or none/all. */
const SPEC = /^[0-9A-Za-z:.,~%/_-]+$/;

export class PasstNetdev extends StreamNetdev {
  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly exited: Promise<void>;
  private stopped = false;

  private constructor(id: string, path: string, child: ChildProcess, dir: string, exited: Promise<void>) {
    super({ id, path });
    this.child = child;
    this.dir = dir;
    this.exited = exited;
  }

  /** passt's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts passt and connects to it. Throws (having stopped passt and removed its directory) when either fails. */
  static async start(options: PasstNetdevOptions): Promise<PasstNetdev> {
    if (options === null || typeof options !== 'object') throw new TypeError('PasstNetdev: options must be an object { id, tcp?, udp? }');
    const { id, tcp = [], udp = [] } = options;
    if (typeof id !== 'string' || id === '') throw new TypeError(`PasstNetdev: id must be a non-empty string, got ${String(id)}`);
    for (const [flag, list] of [['tcp', tcp], ['udp', udp]] as const) {
      if (!Array.isArray(list)) throw new TypeError(`PasstNetdev ${id}: ${flag} must be an array of passt port specs`);
      for (const s of list) {
        if (typeof s !== 'string' || !SPEC.test(s)) throw new TypeError(`PasstNetdev ${id}: ${flag} spec ${JSON.stringify(s)} is not a passt port spec (e.g. 8080:80, 22, 1000-1010)`);
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'virtio-net-passt-'));
    const path = join(dir, 'passt.sock');
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    if (root) {
      const nobody = nobodyIds();
      chownSync(dir, nobody.uid, nobody.gid);
    }
    const args = ['-f', '-1', '-s', path, ...tcp.flatMap((s) => ['-t', s]), ...udp.flatMap((s) => ['-u', s])];
    const child = spawn(PASST, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exitInfo: string | null = null;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => (stderr = (stderr + t).slice(-STDERR_KEEP)));
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
      child.once('error', (e) => {
        exitInfo = `could not run ${PASST} (Debian package passt): ${e.message}`;
        resolve();
      });
    });
    const netdev = new PasstNetdev(id, path, child, dir, exited);
    live.add(netdev);
    installExitHook();
    const why = (): string => `${exitInfo ?? 'still running'}${stderr.trim() === '' ? '' : `; its stderr:\n${passtLog(stderr)}`}`;
    try {
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (!unixSocketListening(path)) {
        if (exitInfo !== null) throw new Error(`PasstNetdev ${id}: passt ended before listening (${why()})`);
        if (Date.now() > deadline) throw new Error(`PasstNetdev ${id}: passt did not listen on ${path} within ${START_TIMEOUT_MS} ms (${why()})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await netdev.open();
    } catch (e) {
      await netdev.close();
      throw e;
    }
    return netdev;
  }

  /** Closes the connection, stops passt and removes its directory. Idempotent. */
  override async close(): Promise<void> {
    await super.close();
    if (this.stopped) return;
    this.stopped = true;
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  /** Synchronous kill and cleanup, for process exit. */
  killNow(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const p of [...live]) p.killNow();
  });
}

/** nobody's uid and gid from /etc/passwd (65534 when it is not listed). */
function nobodyIds(): { uid: number; gid: number } {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === 'nobody' && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no passwd file: the conventional ids
  }
  return { uid: 65534, gid: 65534 };
}

/** True once a unix socket bound at `path` is listening (flag __SO_ACCEPTCON in /proc/net/unix). */
export function unixSocketListening(path: string): boolean {
  let text: string;
  try {
    text = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return false;
  }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path
    if (f.length >= 8 && f[7] === path && (parseInt(f[3]!, 16) & 0x10000) !== 0) return true;
  }
  return false;
}

/** passt's stderr without the syslog noise it prints when it has no system logger. */
function passtLog(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('Failed to send'))
    .slice(-20)
    .join('\n');
}
