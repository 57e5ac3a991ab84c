// The one way a test skips. A skip prints its reason (and the reporter counts it) — except under
// CI=true as root, where everything a test needs is the host setup step's job
// (scripts/setup-host.ts, run by `npm test`): there a skip would hide a missing install step, so
// the test fails instead, naming what is missing.

import { existsSync } from 'node:fs';
import { HOST_FILES, HOST_PROGRAMS, onPath } from '../../scripts/host-requirements.js';

/** True when nothing may skip: CI=true and root. */
export function mustNotSkip(): boolean {
  return process.env['CI'] === 'true' && typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Skips the test or suite of `ctx` with a printed reason; under CI=true as root, fails instead. */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  if (mustNotSkip()) {
    throw new Error(`would skip, but under CI=true as root nothing may: ${reason} (the host setup step, scripts/setup-host.ts, must provide it)`);
  }
  console.log(`      (skipped: ${reason})`);
  ctx.skip();
}

/** Skips (or fails, see above) unless `command` is on PATH. It must be listed in host-requirements. */
export function requireProgram(ctx: Mocha.Context, command: string): void {
  const entry = HOST_PROGRAMS.find((p) => p.command === command);
  if (entry === undefined) throw new Error(`requireProgram: ${command} is not listed in scripts/host-requirements.ts`);
  if (!onPath(command)) skipBecause(ctx, `${command} is not installed (Debian package ${entry.pkg}; \`npm run setup\` as root installs it)`);
}

/** Skips (or fails, see above) unless `path` exists. It must be listed in host-requirements. */
export function requireFile(ctx: Mocha.Context, path: string): void {
  const entry = HOST_FILES.find((f) => f.path === path);
  if (entry === undefined) throw new Error(`requireFile: ${path} is not listed in scripts/host-requirements.ts`);
  if (!existsSync(path)) skipBecause(ctx, `${path} is absent (Debian package ${entry.pkg}; \`npm run setup\` as root installs it)`);
}
