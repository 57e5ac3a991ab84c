// QEMU's own python QMP client (`qemu.qmp`) as a test driver for our QMP server: real clients are
// what the server must satisfy. `setupPythonQmp()` makes the client available (through
// scripts/setup-qemu-qmp.sh, which caches it outside the repository) or says why it cannot;
// `PythonQmpClient` runs test/support/qmp_driver.py and talks to it in JSON lines.

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { skipBecause } from './skip.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const DRIVER = join(here, 'qmp_driver.py');
const SETUP = join(repoRoot, 'scripts', 'setup-qemu-qmp.sh');
/** The setup downloads ~40 MiB from Debian on first use; allow slow mirrors. */
const SETUP_TIMEOUT_MS = 10 * 60 * 1000;
const REQUEST_TIMEOUT_MS = 10_000;

export type PythonQmpSetup = { ok: true; pythonPath: string; python: string } | { ok: false; reason: string };

/** Makes `qemu.qmp` importable, or returns the reason it cannot be (for a printed skip). */
export async function setupPythonQmp(): Promise<PythonQmpSetup> {
  const run = promisify(execFile);
  const python = 'python3';
  try {
    await run(python, ['-c', 'import sys; assert sys.version_info >= (3, 6)']);
  } catch {
    return { ok: false, reason: 'python3 (3.6 or later) is not available' };
  }
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [SETUP], { timeout: SETUP_TIMEOUT_MS, maxBuffer: 1 << 20 }));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const why = (e.stderr ?? '').trim().split('\n').slice(-3).join(' / ') || e.message;
    return { ok: false, reason: `scripts/setup-qemu-qmp.sh could not fetch QEMU's python QMP client: ${why}` };
  }
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('PYTHONPATH='));
  if (line === undefined) return { ok: false, reason: 'scripts/setup-qemu-qmp.sh printed no PYTHONPATH' };
  const pythonPath = line.slice('PYTHONPATH='.length);
  try {
    await run(python, ['-c', 'import qemu.qmp, qemu.qmp.legacy'], { env: { ...process.env, PYTHONPATH: pythonPath } });
  } catch (err) {
    return { ok: false, reason: `qemu.qmp does not import from ${pythonPath}: ${(err as Error).message}` };
  }
  return { ok: true, pythonPath, python };
}

/**
 * In a mocha `before`: sets the client up, or skips the suite with the printed reason. Returns the
 * setup (always ok when it returns to a running suite).
 */
export async function requirePythonQmp(ctx: Mocha.Context): Promise<{ pythonPath: string; python: string }> {
  const setup = await setupPythonQmp();
  if (!setup.ok) {
    skipBecause(ctx, setup.reason);
  }
  return setup as { ok: true; pythonPath: string; python: string };
}

export interface QmpEventLine {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}
export type ExecuteResult = { ok: true; return: unknown } | { ok: false; error: { class: string; desc: string } };

export class PythonQmpClient {
  private buffer = '';
  private readonly lines: string[] = [];
  private wake: (() => void) | undefined;
  private stderr = '';
  private exited = false;
  /** The greeting as qemu.qmp parsed it. */
  greeting: Record<string, unknown> = {};

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (t: string) => {
      this.buffer += t;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.notify();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (t: string) => {
      this.stderr = (this.stderr + t).slice(-4000);
    });
    child.on('exit', () => {
      this.exited = true;
      this.notify();
    });
  }

  /** Starts the driver against a unix socket path or `host:port`, and waits until it negotiated. */
  static async start(address: string, setup: { pythonPath: string; python: string }): Promise<PythonQmpClient> {
    const child = spawn(setup.python, [DRIVER, address], {
      env: { ...process.env, PYTHONPATH: setup.pythonPath, PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const client = new PythonQmpClient(child);
    const ready = (await client.nextLine('ready')) as { ready?: boolean; greeting?: Record<string, unknown> };
    if (ready.ready !== true) throw new Error(`qmp_driver.py did not start: ${JSON.stringify(ready)}`);
    client.greeting = ready.greeting ?? {};
    return client;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async nextLine(what: string): Promise<unknown> {
    const deadline = Date.now() + REQUEST_TIMEOUT_MS;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return JSON.parse(line);
      if (this.exited) throw new Error(`qmp_driver.py exited while waiting for ${what}; stderr: ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`qmp_driver.py: no answer for ${what} in ${REQUEST_TIMEOUT_MS} ms; stderr: ${this.stderr}`);
      await new Promise<void>((done) => {
        const t = setTimeout(done, left);
        this.wake = () => {
          clearTimeout(t);
          done();
        };
      });
    }
  }

  private async request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.child.stdin.write(`${JSON.stringify(req)}\n`);
    return (await this.nextLine(JSON.stringify(req))) as Record<string, unknown>;
  }

  /** `QMPClient.execute()`; a QMP error reply comes back as `{ ok: false, error }`. */
  async execute(cmd: string, args?: Record<string, unknown>): Promise<ExecuteResult> {
    return (await this.request({ op: 'execute', cmd, args: args ?? null })) as ExecuteResult;
  }

  /** Events the client's EventListener collected and nobody took yet (drained). */
  async events(): Promise<QmpEventLine[]> {
    return ((await this.request({ op: 'events' })) as { events: QmpEventLine[] }).events;
  }

  /** The next event with this name (others before it are dropped), or undefined after `timeoutS`. */
  async waitEvent(name: string, timeoutS = 5): Promise<QmpEventLine | undefined> {
    const r = (await this.request({ op: 'wait_event', name, timeout: timeoutS })) as { ok: boolean; event?: QmpEventLine };
    return r.ok ? r.event : undefined;
  }

  /** A second connection with the legacy synchronous client: negotiate and query-version. */
  async legacyQueryVersion(): Promise<{ greeting: unknown; return: unknown }> {
    return (await this.request({ op: 'legacy' })) as { greeting: unknown; return: unknown };
  }

  /** Disconnects and waits for the driver to exit (kills it if it does not). */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((done) => this.child.once('exit', () => done()));
    this.child.stdin.write(`${JSON.stringify({ op: 'close' })}\n`);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
