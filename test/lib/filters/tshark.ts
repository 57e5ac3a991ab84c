// tshark (Wireshark's reader) as an independent judge of capture files and checksums. Tests that
// need it call `needTshark(this)` in `before`: it installs tshark through
// scripts/setup-filter-tests.sh when possible (root + apt), else skips with the printed reason.

import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SETUP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'scripts', 'setup-filter-tests.sh');
let availability: Promise<string | undefined> | undefined;

/** undefined when tshark runs; else why not. */
export function tsharkMissing(): Promise<string | undefined> {
  availability ??= (async () => {
    try {
      await run('tshark', ['--version']);
      return undefined;
    } catch {
      /* try to install it */
    }
    try {
      await run('bash', [SETUP], { timeout: 10 * 60 * 1000 });
      await run('tshark', ['--version']);
      return undefined;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      return `tshark is not available: ${(e.stderr ?? '').trim().split('\n').pop() || e.message}`;
    }
  })();
  return availability;
}

/** Skips the suite (printing why) when tshark is unavailable. */
export async function needTshark(ctx: Mocha.Context): Promise<void> {
  ctx.timeout(10 * 60 * 1000);
  const why = await tsharkMissing();
  if (why !== undefined) {
    console.log(`      skipped: ${why}`);
    ctx.skip();
  }
}

/**
 * One row per frame of `file`, with the given fields (tshark -T fields), checksum validation of
 * IPv4, TCP and UDP switched on. `filter` is a display filter.
 */
export async function tsharkFields(file: string, fields: readonly string[], filter?: string): Promise<string[][]> {
  const args = [
    '-r', file,
    '-o', 'tcp.check_checksum:TRUE',
    '-o', 'udp.check_checksum:TRUE',
    '-o', 'ip.check_checksum:TRUE',
    '-o', 'tcp.relative_sequence_numbers:FALSE',
    '-T', 'fields',
    '-E', 'separator=|',
    ...fields.flatMap((f) => ['-e', f]),
  ];
  if (filter !== undefined) args.push('-Y', filter);
  const { stdout } = await run('tshark', args, { maxBuffer: 64 << 20 });
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
}

/** Frames tshark reads from `file` (`capinfos`-free: counts tshark's own rows). */
export async function tsharkFrameCount(file: string): Promise<number> {
  return (await tsharkFields(file, ['frame.number'])).length;
}
