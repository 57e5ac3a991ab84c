// tshark (Wireshark's reader) as an independent judge of capture files and checksums. Tests that
// need it call `needTshark(this)` in `before` (the host setup step installs it).

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { requireProgram } from '../../support/skip.js';

const run = promisify(execFile);

/** Skips the suite (printing why; under CI=true as root, fails) when tshark is not installed. */
export function needTshark(ctx: Mocha.Context): void {
  requireProgram(ctx, 'tshark');
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
