// What `virtio-net run` shows: a live status line on a TTY and a summary table at the end, or one
// JSON object with `--json` (no spec section: the command's own output).

import type { NetStats } from '../../devices/virtio-net/net-stats.js';
import type { RxFilterInfo } from '../base/rx-filter-info.js';
import type { LinkStateChange, Netdev } from '../netdev/netdev.js';
import { hasLinkState, logsHostErrors } from '../netdev/netdev.js';
import type { PeerStatus } from './scripted-guest.js';

/** Unanswered ARP for this long is news on the status line and in `--json` (three 1-s requests). */
export const NO_ANSWER_REPORT_MS = 3000;

/** The scripted guest's peer: its neighbour entry and, when it has not answered for a while, why the counters stay put. */
export interface NeighbourReport extends PeerStatus {
  /** "no answer from 10.0.2.2 on hostnet0 for 5 s", or null. */
  warning: string | null;
}

export function neighbourReport(guest: { peerStatus(): PeerStatus }, netdevId: string): NeighbourReport {
  const p = guest.peerStatus();
  const warning = p.noAnswerMs !== null && p.noAnswerMs >= NO_ANSWER_REPORT_MS ? `no answer from ${p.ip} on ${netdevId} for ${Math.floor(p.noAnswerMs / 1000)} s` : null;
  return { ...p, warning };
}

/**
 * What the backend says about itself (issue #13 item 4): its host link (TAP / macvtap follow the
 * host interface; null for a backend without one) and its host errors (counted even when nobody
 * listens for 'host-error'; null for a backend that has none).
 */
export interface BackendReport {
  link: { up: boolean; downs: number; ups: number; last: LinkStateChange | null } | null;
  errors: { count: number; /** The last one's text (HostError message), or null. */ last: string | null; lastErrno: string | null } | null;
}

/** The backend's report (the guest's own link, both sides together, is RunResult.linkUp). */
export function backendReport(netdev: Netdev): BackendReport {
  let link: BackendReport['link'] = null;
  if (hasLinkState(netdev)) {
    const l = netdev.linkStatus();
    link = { up: l.up, downs: l.downs, ups: l.ups, last: l.last };
  }
  let errors: BackendReport['errors'] = null;
  if (logsHostErrors(netdev)) {
    const e = netdev.hostErrors();
    errors = { count: e.count, last: e.last?.message ?? null, lastErrno: e.last?.errnoName ?? null };
  }
  return { link, errors };
}

/** The status line's backend part ('' when the backend reports nothing). */
function backendStatus(b: BackendReport | undefined): string {
  if (b === undefined) return '';
  let out = '';
  if (b.link !== null) out += `  host link ${b.link.up ? 'up' : 'down'}${b.link.downs + b.link.ups > 0 ? ` (${b.link.downs} down, ${b.link.ups} up)` : ''}`;
  if (b.errors !== null) {
    out += `  backend errors ${b.errors.count}`;
    if (b.errors.last !== null) out += ` (last: ${b.errors.last})`;
  }
  return out;
}

export interface RunResult {
  scenario: string;
  netdev: string;
  durationMs: number;
  /** Ended early by Ctrl-C / SIGTERM rather than by its duration. */
  interrupted: boolean;
  qmp: string | null;
  device: NetStats;
  guest: Record<string, number>;
  /** The guest's neighbour entry for its peer at the end. */
  neighbour: NeighbourReport;
  peer: Record<string, number> | null;
  rxFilterChanges: number;
  events: number;
  diagnostics: number;
  rxFilter: RxFilterInfo;
  /** The guest's link at the end (config status LINK_UP: set_link and the host link together). */
  linkUp: boolean;
  backend: BackendReport;
  /** Counters of the --object / object-add objects that have some (filters, colo-compare), by id. */
  objects?: Record<string, unknown>;
}

/** One line, rewritten in place on a TTY. */
export function statusLine(elapsedMs: number, s: NetStats, changes: number, events: number, backend?: BackendReport, peer?: NeighbourReport): string {
  const drops = Object.values(s.rx.drops).reduce((a, b) => a + b, 0);
  return (
    `${(elapsedMs / 1000).toFixed(1).padStart(5)}s  tx ${s.tx.frames}  rx ${s.rx.frames}  drops ${drops}` +
    `  ctrl ${s.ctrl.ok}/${s.ctrl.ok + s.ctrl.err} ok  rx-filter changes ${changes}  events ${events}` +
    backendStatus(backend) +
    (peer?.warning != null ? `  ${peer.warning}` : '')
  );
}

/** The closing summary as an aligned two-column table. */
export function summaryTable(r: RunResult): string {
  const s = r.device;
  const drops = Object.entries(s.rx.drops)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const rows: [string, string][] = [
    ['scenario', r.scenario],
    ['netdev', r.netdev],
    ['duration', `${(r.durationMs / 1000).toFixed(2)} s`],
    ['qmp socket', r.qmp ?? '(none)'],
    ['tx frames / bytes', `${s.tx.frames} / ${s.tx.bytes}`],
    ['tx not sent', Object.entries(s.tx.errors).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || '0'],
    ['rx frames / bytes', `${s.rx.frames} / ${s.rx.bytes}`],
    ['rx drops', drops === '' ? '0' : drops],
    ['ctrl commands ok / err', `${s.ctrl.ok} / ${s.ctrl.err}`],
    ['rx-filter changes', String(r.rxFilterChanges)],
    ['rx-filter-changed events', String(r.events)],
    ['driver mistakes recorded', String(r.diagnostics)],
    ['guest', Object.entries(r.guest).map(([k, v]) => `${k} ${v}`).join(', ')],
  ];
  rows.push(['guest link', r.linkUp ? 'up' : 'down']);
  const n = r.neighbour;
  rows.push(['peer', `${n.ip} ${n.state}${n.mac === null ? '' : ` at ${n.mac}`}${n.warning === null ? '' : `; ${n.warning}`}`]);
  const b = r.backend;
  if (b.link !== null) {
    const last = b.link.last === null ? '' : `; last: ${b.link.last.up ? 'up' : 'down'} (${b.link.last.reason})`;
    rows.push(['host link', `${b.link.up ? 'up' : 'down'}, ${b.link.downs} down / ${b.link.ups} up${last}`]);
  }
  if (b.errors !== null) rows.push(['backend errors', b.errors.last === null ? String(b.errors.count) : `${b.errors.count} (last: ${b.errors.last})`]);
  if (r.peer !== null) rows.push(['host peer', Object.entries(r.peer).map(([k, v]) => `${k} ${v}`).join(', ')]);
  const f = r.rxFilter;
  rows.push(
    ['main-mac', f['main-mac']],
    ['promiscuous', String(f.promiscuous)],
    ['unicast / multicast / vlan', `${f.unicast} / ${f.multicast} / ${f.vlan}`],
    ['multicast-table', f['multicast-table'].join(' ') || '(empty)'],
    ['vlan-table', f.vlan === 'all' ? '(all)' : f['vlan-table'].join(' ') || '(empty)'],
  );
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
