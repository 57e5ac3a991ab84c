// `virtio-net guest --kernel ipxe`: Debian's iPXE (package `ipxe`, /boot/ipxe.lkrn) as a second real
// driver of the device (iPXE's virtio-net driver: VIRTIO 1.2 §4.1 virtio-pci modern, §5.1 the
// device), its `--script` lines run as iPXE commands and reported per step like the Linux guest's.
//
// Facts about Debian's build (ipxe 1.0.0+git-20190125.36a4c85-5.1, bookworm):
//   - Its console is the BIOS screen only (no serial console in the build), so the steps are read
//     from v86's VGA text screen (ipxe-screen.ts), not from ttyS0.
//   - Loaded as a Linux kernel, iPXE runs the initrd it is given as a script when it starts with
//     `#!ipxe`, and a non-empty kernel command line as a script of its own first: the command line
//     stays empty (GuestVm `bare`).
//   - Its virtio-net driver takes the modern interface whenever the device has a common_cfg
//     capability, so a transitional device (`--legacy`) is driven by the modern driver too; its
//     legacy driver would need a legacy-only device, which this project's device does not offer.
//   - It reads 32-bit common_cfg fields with 16-bit accesses (vpm_ioread32, fixed upstream in
//     2023: ipxe/ipxe pull request #1028): recorded by the device as register.access-width
//     (§4.1.3.1); the device answers with the field's low bytes, as QEMU does.
//
// Data flow: script lines → `ipxeScript()`: per line `echo VNM-BEGIN <n> .`, then
//   `<line> && echo VNM-END <n> 0 . || echo VNM-END <n> ${errno} .` (a failing command sets iPXE's
//   errno and does not end the script) → a temporary file given as the initrd → GuestVm.boot(bare)
//   with v86's own NIC left out (net_device none: no ne2k for iPXE to find first) → IpxeSteps:
//   each screen character is checked for a completed END marker, which stops v86 (at the end of
//   its current time slice), so the device's state after a step is read while iPXE waits; `next()` resumes it and resolves
//   with the next step's output (the screen lines between its markers) and exit code (0, or
//   iPXE's error number, e.g. 0x2d0c613b).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestImage } from './guest-image.js';
import type { CommandResult } from './guest-console.js';
import { VgaTextScreen } from './ipxe-screen.js';

/** Debian's iPXE as a Linux-loadable kernel (package ipxe). */
export const IPXE_LKRN = '/boot/ipxe.lkrn';
/** SeaBIOS and its VGA ROM from the host's seabios package (what the Linux image takes from the same package). */
export const SEABIOS_BIN = '/usr/share/seabios/bios.bin';
export const SEABIOS_VGA = '/usr/share/seabios/vgabios-stdvga.bin';

const BEGIN = /VNM-BEGIN (\d+) \.$/;
const END = /VNM-END (\d+) (0|0x[0-9a-f]+) \.$/;

/** The iPXE script (the initrd) that runs `steps` in order with a marker before and after each. */
export function ipxeScript(steps: readonly string[]): string {
  const lines = ['#!ipxe'];
  steps.forEach((step, n) => {
    if (/[\r\n]/.test(step)) throw new TypeError(`ipxeScript: step ${n} spans lines`);
    lines.push(`echo VNM-BEGIN ${n} .`, `${step} && echo VNM-END ${n} 0 . || echo VNM-END ${n} \${errno} .`);
  });
  return `${lines.join('\n')}\n`;
}

/** The files v86 boots for iPXE: the host's SeaBIOS, ipxe.lkrn, and `script` as the initrd. */
export interface IpxeFiles {
  image: GuestImage;
  /** Removes the temporary script. */
  remove(): void;
}

export function ipxeFiles(steps: readonly string[]): IpxeFiles {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-net-ipxe-'));
  const initrd = join(dir, 'script.ipxe');
  writeFileSync(initrd, ipxeScript(steps));
  const image: GuestImage = {
    arch: 'i386',
    profile: 'base',
    kernel: '6.1',
    dir,
    bzimage: IPXE_LKRN,
    initrd,
    bios: SEABIOS_BIN,
    vgaBios: SEABIOS_VGA,
    kernelRelease: 'iPXE',
    packages: {},
    initrdBytes: 0,
  };
  return { image, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What IpxeSteps needs of the machine: pause and resume (v86's stop() and run()). */
export interface PausableMachine {
  stop(): Promise<void>;
  run(): Promise<void>;
}

/** How often the screen is looked at for scrolled rows (ipxe-screen.ts). */
const SNAPSHOT_MS = 10;
/** A screen that keeps changing is looked at anyway after this long. */
const SNAPSHOT_FORCE_MS = 100;

/**
 * Steps of an iPXE script as the screen shows them; one at a time, the machine paused between.
 * The screen is snapshotted when it was quiet for one SNAPSHOT_MS tick (a BIOS scroll is never
 * caught half done then), at the latest every SNAPSHOT_FORCE_MS, and at each END marker (where
 * iPXE is paused). A step's output is taken from the screen at its END marker, so output that
 * fits on one screen is exact; a longer one relies on the scroll inference.
 */
export class IpxeSteps {
  readonly screen = new VgaTextScreen();
  private machine: PausableMachine | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private changed = false;
  private quietSince = 0;
  private lastSnapshot = 0;
  /** Highest step whose END marker was seen. */
  private ended = -1;
  private paused: Promise<void> | null = null;
  private waiter: { step: number; resolve: () => void } | null = null;

  /** v86's `screen-put-char` (GuestVm `onScreenChar`). */
  putChar(row: number, col: number, code: number): void {
    this.screen.putChar(row, col, code);
    this.changed = true;
    if (code !== 0x2e /* '.' ends a marker */) return;
    const m = END.exec(this.screen.rows()[row]!.trimEnd());
    if (m === null || Number(m[1]) <= this.ended) return;
    this.ended = Number(m[1]);
    this.screen.snapshot();
    if (this.machine !== null) this.paused = this.machine.stop();
    const w = this.waiter;
    if (w !== null && this.ended >= w.step) {
      this.waiter = null;
      w.resolve();
    }
  }

  /** The machine to pause after each step (set once it is booted). */
  attach(machine: PausableMachine): void {
    this.machine = machine;
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), SNAPSHOT_MS);
    this.timer.unref?.();
  }

  /** Stops looking at the screen. */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const now = Date.now();
    if (this.changed) {
      this.changed = false;
      this.quietSince = now;
      if (now - this.lastSnapshot < SNAPSHOT_FORCE_MS) return;
    } else if (this.quietSince === 0) return;
    this.quietSince = 0;
    this.lastSnapshot = now;
    this.screen.snapshot();
  }

  /** Resumes the machine and resolves with step `n`'s result once its END marker is on screen. */
  async next(n: number, timeoutMs: number): Promise<CommandResult> {
    if (this.machine === null) throw new Error('IpxeSteps: no machine attached');
    if (this.paused !== null) {
      await this.paused;
      this.paused = null;
    }
    if (this.ended < n) {
      const seen = new Promise<void>((resolve) => (this.waiter = { step: n, resolve }));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          this.waiter = null;
          reject(new Error(`timed out after ${timeoutMs} ms waiting for iPXE step ${n}; screen:\n${this.screen.lines().slice(-25).join('\n')}`));
        }, timeoutMs);
      });
      await this.machine.run();
      try {
        await Promise.race([seen, timeout]);
      } finally {
        clearTimeout(timer);
      }
      if (this.paused !== null) {
        await this.paused;
        this.paused = null;
      }
    }
    return this.result(n);
  }

  /** Step `n`'s output and exit code from the transcript: the last END marker of step n, and the BEGIN before it. */
  result(n: number): CommandResult {
    const lines = this.screen.lines();
    for (let i = lines.length - 1; i >= 0; i--) {
      const e = END.exec(lines[i]!);
      if (e === null || Number(e[1]) !== n) continue;
      let from = i - 1;
      while (from >= 0 && !isBegin(lines[from]!, n)) from--;
      if (from < 0) break;
      const out = lines.slice(from + 1, i);
      // A marker after output with no line end shares its row: keep the text before it.
      const before = lines[i]!.slice(0, e.index);
      if (before.trim() !== '') out.push(before.trimEnd());
      return { exitCode: e[2] === '0' ? 0 : Number.parseInt(e[2]!, 16), output: out.length === 0 ? '' : `${out.join('\n')}\n` };
    }
    throw new Error(`IpxeSteps: no markers of step ${n} on screen:\n${lines.slice(-25).join('\n')}`);
  }
}

function isBegin(line: string, n: number): boolean {
  const b = BEGIN.exec(line);
  return b !== null && Number(b[1]) === n;
}
