// What `virtio-net run` shows: a live status line on a TTY and a summary table at the end, or one
// JSON object with `--json` (no spec section: the command's own output).

import type { NetStats } from '../../devices/virtio-net/net-stats.js';
import type { RxFilterInfo } from '../base/rx-filter-info.js';

export interface RunResult {
  scenario: string;
  netdev: string;
  durationMs: number;
  /** Ended early by Ctrl-C / SIGTERM rather than by its duration. */
  interrupted: boolean;
  qmp: string | null;
  device: NetStats;
  guest: Record<string, number>;
  peer: Record<string, number> | null;
  rxFilterChanges: number;
  events: number;
  diagnostics: number;
  rxFilter: RxFilterInfo;
}

/** One line, rewritten in place on a TTY. */
export function statusLine(elapsedMs: number, s: NetStats, changes: number, events: number): string {
  const drops = Object.values(s.rx.drops).reduce((a, b) => a + b, 0);
  return (
    `${(elapsedMs / 1000).toFixed(1).padStart(5)}s  tx ${s.tx.frames}  rx ${s.rx.frames}  drops ${drops}` +
    `  ctrl ${s.ctrl.ok}/${s.ctrl.ok + s.ctrl.err} ok  rx-filter changes ${changes}  events ${events}`
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
    ['rx frames / bytes', `${s.rx.frames} / ${s.rx.bytes}`],
    ['rx drops', drops === '' ? '0' : drops],
    ['ctrl commands ok / err', `${s.ctrl.ok} / ${s.ctrl.err}`],
    ['rx-filter changes', String(r.rxFilterChanges)],
    ['rx-filter-changed events', String(r.events)],
    ['driver mistakes recorded', String(r.diagnostics)],
    ['guest', Object.entries(r.guest).map(([k, v]) => `${k} ${v}`).join(', ')],
  ];
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
