// What every filter-fuzzer world shares: the case format (plain JSON: a shrunk case is a fixture),
// the failure type, the passthrough entries a world installs and an independent matcher for them
// (the COLO passthrough list of the proposed QAPI IPFlowSpec: a flow in either direction), and
// the work meter that counts connection-table operations per call (bounded work, in operations).

import { FlowTable } from '../../../lib/packet/flow-table.js';
import type { IPFlowSpec } from '../../../lib/passthrough/passthrough.js';
import type { RefPacket } from './ref-packet.js';

export type Target = 'colo' | 'rewriter' | 'sockets';
export const TARGETS: readonly Target[] = ['colo', 'rewriter', 'sockets'];

/** One operation. Frames and vnet headers are hex. */
export type FilterOp =
  /** colo-compare: a frame from the primary / the secondary guest. */
  | { t: 'p' | 's'; f: string; h?: string }
  /**
   * A frame from the client (host → guest, direction 'tx') / from the guest (guest → host, 'rx').
   * rewriter `re`: re-entry — while the far end takes this frame it sends `re` the other way
   * through the chain (the guest transmitting from inside a delivery / the host delivering from
   * inside send) and refuses this one; then it is ready again (resume / writable).
   */
  | { t: 'c' | 'g'; f: string; h?: string; re?: string }
  /** sockets: frames written to the redirector's input socket, in `cut`-byte writes. */
  | { t: 'i'; fs: string[]; cut: number }
  /** sockets: garbage on the redirector's input socket (the connection must be dropped, then a new one works). */
  | { t: 'junk'; bytes: string }
  /** The fake clock moves on (timers fire in scan-cycle steps). */
  | { t: 'tick'; ms: number }
  /** colo: flush(); rewriter: checkpoint(). */
  | { t: 'checkpoint' };

export interface FilterCase {
  target: Target;
  /** Limits and options of the object under test (see each world). */
  setup: Record<string, number | boolean>;
  /** Indexes into PASSTHROUGH_MENU. */
  passthrough: number[];
  ops: FilterOp[];
}

export interface FilterFailure {
  /** Index of the operation after which an oracle failed (ops.length: end-of-case checks). */
  step: number;
  code: string;
  detail: string;
}

export class FilterStop extends Error {
  constructor(readonly failure: FilterFailure) {
    super(`${failure.code} at step ${failure.step}: ${failure.detail}`);
  }
}

/** The object id every world gives the object under test (passthrough entries may name it). */
export const OBJECT_ID = 'obj0';

/** Entries a case may install, each with the reference's reading of it. */
export const PASSTHROUGH_MENU: IPFlowSpec[] = [
  { protocol: 'udp', destination: { host: '', port: '53' } },
  { protocol: 'tcp', 'object-name': OBJECT_ID, source: { host: '192.168.7.2', port: '8080' } },
  { protocol: 'icmp' },
  { protocol: 'tcp', 'object-name': 'someone-else' },
  { destination: { host: 'fd00::7:100', port: '' } },
  { protocol: 'tcp', source: { host: '', port: '40003' }, destination: { host: '10.0.0.1', port: '' } },
];

interface RefEndpoint {
  addr: number[] | undefined;
  port: number;
}
interface RefEntry {
  proto: number | undefined;
  obj: string | undefined;
  src: RefEndpoint | undefined;
  dst: RefEndpoint | undefined;
}

/** The menu as the reference reads it (written out by hand, not parsed by lib/passthrough). */
const REF_MENU: RefEntry[] = [
  { proto: 17, obj: undefined, src: undefined, dst: { addr: undefined, port: 53 } },
  { proto: 6, obj: OBJECT_ID, src: { addr: [192, 168, 7, 2], port: 8080 }, dst: undefined },
  { proto: 1, obj: undefined, src: undefined, dst: undefined },
  { proto: 6, obj: 'someone-else', src: undefined, dst: undefined },
  { proto: undefined, obj: undefined, src: undefined, dst: { addr: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 1, 0], port: 0 } },
  { proto: 6, obj: undefined, src: { addr: undefined, port: 40003 }, dst: { addr: [10, 0, 0, 1], port: 0 } },
];

function epOk(e: RefEndpoint | undefined, addr: Uint8Array, port: number): boolean {
  if (e === undefined) return true;
  if (e.port !== 0 && e.port !== port) return false;
  return e.addr === undefined || (e.addr.length === addr.length && e.addr.every((b, i) => b === addr[i]));
}

/** True when an installed entry for `objectId` (or for everyone) covers this IP packet, either way round. */
export function refPassthrough(menu: readonly number[], objectId: string, p: RefPacket): boolean {
  if (p.kind !== 'ip') return false;
  for (const i of menu) {
    const e = REF_MENU[i]!;
    if (e.obj !== undefined && e.obj !== objectId) continue;
    if (e.proto !== undefined && e.proto !== p.proto) continue;
    if (epOk(e.src, p.src, p.sport) && epOk(e.dst, p.dst, p.dport)) return true;
    if (epOk(e.src, p.dst, p.dport) && epOk(e.dst, p.src, p.sport)) return true;
  }
  return false;
}

// --- work meter --------------------------------------------------------------------------------

/** Connection-table operations since the last reset (every FlowTable in the process). */
export const tableWork = { lookups: 0, changes: 0, visited: 0 };

let meterInstalled = false;

/** Wraps FlowTable's methods once so every table operation is counted (the fuzzer's process only). */
export function installTableMeter(): void {
  if (meterInstalled) return;
  meterInstalled = true;
  const proto = FlowTable.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const wrap = (name: string, count: (a: unknown[]) => void): void => {
    const orig = proto[name]!;
    proto[name] = function (this: unknown, ...a: unknown[]) {
      count(a);
      return orig.apply(this, a);
    };
  };
  wrap('get', () => void tableWork.lookups++);
  wrap('add', () => void tableWork.changes++);
  wrap('delete', () => void tableWork.changes++);
  const sweep = proto.sweep!;
  proto.sweep = function (this: unknown, remove: unknown) {
    const f = remove as (v: unknown) => boolean;
    return sweep.call(this, (v: unknown) => {
      tableWork.visited++;
      return f(v);
    });
  };
  const entries = proto.entries!;
  proto.entries = function* (this: unknown) {
    for (const e of entries.call(this) as Iterable<unknown>) {
      tableWork.visited++;
      yield e;
    }
  };
}

export function resetTableWork(): void {
  tableWork.lookups = 0;
  tableWork.changes = 0;
  tableWork.visited = 0;
}

/** Counts per operation kind, for the run's record (test/README.md). */
export type Counts = Record<string, number>;

export function bump(counts: Counts | undefined, key: string, n = 1): void {
  if (counts !== undefined) counts[key] = (counts[key] ?? 0) + n;
}
