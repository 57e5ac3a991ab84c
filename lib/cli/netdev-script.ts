// tap `script=` / `downscript=` (QEMU net/tap.c launch_script): the program runs with the TAP's
// interface name as its only argument; a failure (not executable, non-zero exit) is an error
// naming the script, as QEMU's "network script … failed with status N".

import { execFileSync } from 'node:child_process';

export function runNetdevScript(script: string, ifname: string | undefined): void {
  if (ifname === undefined) throw new Error(`--netdev: script=${script} needs a tap backend (it is run with the interface name)`);
  try {
    execFileSync(script, [ifname], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  } catch (e) {
    const err = e as { status?: number | null; message: string; stderr?: Buffer };
    const why = err.status != null ? `failed with status ${err.status}` : err.message;
    throw new Error(`network script ${script} ${why}${err.stderr?.length ? `: ${err.stderr.toString().trim()}` : ''}`);
  }
}
