// Command-line parsing for `virtio-net` (no spec section: the command of the README's main job).
// Every bad flag or value is a `UsageError` saying what was given and what is allowed.

import { parsePasstNetdev, parseStreamNetdev, type PasstNetdevSpec, type StreamNetdevSpec } from './stream-args.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One flag of a subcommand. */
export interface FlagSpec {
  readonly name: string;
  /** 'boolean' flags take no value; the others take the next argument or `--name=value`. */
  readonly kind: 'boolean' | 'string' | 'number';
  readonly help: string;
  /** For 'string': the allowed values, when closed. */
  readonly choices?: readonly string[];
  /** For 'number': inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
}

export type ParsedFlags = Record<string, string | number | boolean | undefined>;

export function parseFlags(command: string, argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const out: ParsedFlags = {};
  const byName = new Map(specs.map((s) => [s.name, s]));
  const allowed = (): string => specs.map((s) => `--${s.name}`).join(', ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      throw new UsageError(`virtio-net ${command}: unexpected argument ${JSON.stringify(arg)}; flags: ${allowed()}`);
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new UsageError(`virtio-net ${command}: unknown flag --${name}; flags: ${allowed()}`);
    if (spec.kind === 'boolean') {
      if (eq !== -1) throw new UsageError(`virtio-net ${command}: --${name} takes no value, got ${JSON.stringify(arg.slice(eq + 1))}`);
      out[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || (eq === -1 && value.startsWith('--'))) {
      throw new UsageError(`virtio-net ${command}: --${name} needs a value (${describeValue(spec)})`);
    }
    if (spec.kind === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new UsageError(`virtio-net ${command}: --${name} must be ${describeValue(spec)}, got ${JSON.stringify(value)}`);
      }
      out[name] = n;
    } else {
      if (spec.choices !== undefined && !spec.choices.includes(value)) {
        throw new UsageError(`virtio-net ${command}: --${name} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(value)}`);
      }
      out[name] = value;
    }
  }
  return out;
}

function describeValue(spec: FlagSpec): string {
  if (spec.kind === 'number') return `a number${spec.min !== undefined ? ` >= ${spec.min}` : ''}${spec.max !== undefined ? ` and <= ${spec.max}` : ''}`;
  if (spec.choices !== undefined) return `one of ${spec.choices.join(', ')}`;
  return 'a string';
}

/** `--netdev tap,ifname=NAME` / `--netdev macvtap,ifname=NAME[,sync=on|off]` / `memory` / stream / passt (stream-args.ts). */
export type NetdevSpec =
  | { kind: 'memory' }
  | { kind: 'tap'; ifname?: string }
  | { kind: 'macvtap'; ifname: string; sync: boolean }
  | StreamNetdevSpec
  | PasstNetdevSpec;

export function parseNetdev(value: string): NetdevSpec {
  const [kind, ...rest] = value.split(',');
  if (kind === 'stream') return parseStreamNetdev(rest);
  if (kind === 'passt') return parsePasstNetdev(rest);
  const props = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--netdev: expected key=value after the backend, got ${JSON.stringify(p)} (e.g. tap,ifname=tap0)`);
    props.set(p.slice(0, eq), p.slice(eq + 1));
  }
  const only = (allowedKeys: string[]): void => {
    for (const k of props.keys()) {
      if (!allowedKeys.includes(k)) throw new UsageError(`--netdev ${kind}: unknown property ${k}; allowed: ${allowedKeys.join(', ') || '(none)'}`);
    }
  };
  switch (kind) {
    case 'memory':
      only([]);
      return { kind: 'memory' };
    case 'tap': {
      only(['ifname']);
      const ifname = props.get('ifname');
      if (ifname !== undefined) checkIfname(ifname);
      return ifname === undefined ? { kind: 'tap' } : { kind: 'tap', ifname };
    }
    case 'macvtap': {
      only(['ifname', 'sync']);
      const ifname = props.get('ifname');
      if (ifname === undefined) throw new UsageError('--netdev macvtap needs ifname=NAME (an existing macvtap link)');
      checkIfname(ifname);
      const sync = props.get('sync') ?? 'on';
      if (sync !== 'on' && sync !== 'off') throw new UsageError(`--netdev macvtap: sync must be on or off, got ${JSON.stringify(sync)}`);
      return { kind: 'macvtap', ifname, sync: sync === 'on' };
    }
    default:
      throw new UsageError(`--netdev: unknown backend ${JSON.stringify(kind)}; allowed: memory, tap, macvtap, stream, passt`);
  }
}

function checkIfname(name: string): void {
  // Linux IFNAMSIZ is 16 including the NUL; no '/', ':' or whitespace.
  if (name.length === 0 || name.length > 15 || /[\s/:]/.test(name)) {
    throw new UsageError(`--netdev: ifname must be 1-15 characters without spaces, '/' or ':', got ${JSON.stringify(name)}`);
  }
}
