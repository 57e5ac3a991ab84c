// Skipping a test where io_uring is unavailable (a kernel built without it, or
// /proc/sys/kernel/io_uring_disabled set), with the probe's own reason.

import { probeIoUring } from '../../lib/netdev/tap-fd.js';
import { skipBecause } from './skip.js';

/** Skips (or, under CI=true as root, fails: skip.ts) unless an io_uring can be set up here. */
export function requireIoUring(ctx: Mocha.Context): void {
  try {
    probeIoUring();
  } catch (e) {
    skipBecause(ctx, `io_uring is not available here: ${(e as Error).message}`);
  }
}
