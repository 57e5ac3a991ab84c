// One QEMU process for the oracle: finding the binary, spawning it with qtest on stdio and QMP on
// a private unix socket, capturing its stderr (included in every error), and killing it and
// removing its files in every outcome — on stop(), and for anything still alive when Node exits.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The QEMU system emulator the oracle runs (Debian package qemu-system-x86). */
export const QEMU_BINARY = 'qemu-system-x86_64';
/** Captured stderr kept in memory: QEMU's messages are short, this bounds a chatty failure. */
const STDERR_KEEP = 64 * 1024;
/** How much of stderr an error message quotes. */
const STDERR_QUOTE = 2000;
/** Grace period for QEMU to exit on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3000;

/** The absolute path of `name` on PATH, or null. */
export function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

const live = new Set<QemuProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort (a test that never reached its after hook): synchronous kill and cleanup.
  process.on('exit', () => {
    for (const p of live) p.killNow();
  });
}

export class QemuProcess {
  readonly dir: string;
  readonly qmpPath: string;
  readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';
  private exitInfo: string | null = null;
  private readonly exited: Promise<void>;
  private stderrWaiters: (() => void)[] = [];

  constructor(binary: string, args: (qmpPath: string) => string[]) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qemu-oracle-'));
    this.qmpPath = path.join(this.dir, 'qmp.sock');
    this.child = spawn(binary, args(this.qmpPath), { stdio: ['pipe', 'pipe', 'pipe'] });
    installExitHook();
    live.add(this);
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP);
      for (const w of this.stderrWaiters.splice(0)) w();
    });
    this.exited = new Promise<void>((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = signal !== null ? `QEMU was killed by ${signal}` : `QEMU exited with code ${code}`;
        resolve();
      });
      this.child.once('error', (err) => {
        this.exitInfo = `QEMU could not run: ${err.message}`;
        resolve();
      });
    });
  }

  /** Everything QEMU wrote to stderr so far (the last 64 KiB). */
  get stderrText(): string {
    return this.stderr;
  }

  /** Why the process is gone, or null while it runs. */
  get exitStatus(): string | null {
    return this.exitInfo;
  }

  /** Text for error messages: exit status and the tail of stderr. */
  context(): string {
    const parts: string[] = [];
    if (this.exitInfo !== null) parts.push(this.exitInfo);
    if (this.stderr.trim() !== '') parts.push(`QEMU stderr:\n${this.stderr.slice(-STDERR_QUOTE).trimEnd()}`);
    return parts.join('\n');
  }

  /**
   * Resolves with the stderr text written after `mark` (a length of `stderrText`) once it holds a
   * complete line, or with null after `timeoutMs`. QEMU writes its error report before it answers
   * the qtest request that caused it, so the line is normally already in the pipe.
   */
  async stderrLineAfter(mark: number, timeoutMs: number): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fresh = this.stderr.length >= mark ? this.stderr.slice(mark) : this.stderr;
      if (fresh.includes('\n')) return fresh.trimEnd();
      const left = deadline - Date.now();
      if (left <= 0 || this.exitInfo !== null) return fresh === '' ? null : fresh.trimEnd();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.stderrWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** SIGTERM, then SIGKILL after a grace period; removes the private directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.exitInfo === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    this.removeFiles();
    live.delete(this);
  }

  /** Synchronous kill and cleanup, for process exit. */
  killNow(): void {
    if (this.exitInfo === null) this.child.kill('SIGKILL');
    this.removeFiles();
    live.delete(this);
  }

  private removeFiles(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
