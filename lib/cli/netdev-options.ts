// The `--netdev` properties QEMU's `-netdev` lines carry besides the backend's own (so the COLO
// lines of shared/seeds/001_* run as written): `id=` names the netdev that `--object …,netdev=`
// refers to (default hostnet0); for tap, `vhost=off` is accepted (there is no vhost: on is
// refused) and `script=` / `downscript=` name programs run with the interface name after the TAP
// opens / before it closes, as QEMU runs them ('no', or absent, runs none — QEMU's default
// /etc/qemu-ifup is not assumed). The rest goes to parseNetdev (args.ts).

import { parseNetdev, UsageError, type NetdevSpec } from './args.js';
import { splitOptions } from './object-args.js';

export interface NetdevLine {
  id: string;
  spec: NetdevSpec;
  /** tap: run with the interface name after it opens / before it closes. */
  script?: string;
  downscript?: string;
}

export const DEFAULT_NETDEV_ID = 'hostnet0';

export function parseNetdevLine(value: string): NetdevLine {
  const [kind = '', ...rest] = splitOptions(value);
  let id = DEFAULT_NETDEV_ID;
  let script: string | undefined;
  let downscript: string | undefined;
  const keep: string[] = [kind];
  for (const p of rest) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const v = eq < 0 ? '' : p.slice(eq + 1);
    if (key === 'id') {
      if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(v)) throw new UsageError(`--netdev ${kind}: id must start with a letter and hold only letters, digits, '-', '.', '_', got ${JSON.stringify(v)}`);
      id = v;
    } else if (kind === 'tap' && key === 'vhost') {
      if (v !== 'off') throw new UsageError(`--netdev tap: vhost must be off (this model has no vhost), got ${JSON.stringify(v)}`);
    } else if (kind === 'tap' && (key === 'script' || key === 'downscript')) {
      if (v === '') throw new UsageError(`--netdev tap: ${key} needs a program path or no`);
      if (v !== 'no') {
        if (key === 'script') script = v;
        else downscript = v;
      }
    } else keep.push(p);
  }
  const spec = parseNetdev(keep.join(','));
  return { id, spec, ...(script === undefined ? {} : { script }), ...(downscript === undefined ? {} : { downscript }) };
}
