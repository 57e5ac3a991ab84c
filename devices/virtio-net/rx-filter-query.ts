// query-rx-filter (QEMU's QMP command; the state it reports is VIRTIO 1.2 §5.1.6.5.1–§5.1.6.5.3):
// derives the 12 fields of QEMU's RxFilterInfo from the rx-filter state, in two reporting modes.
//
// Default: fields mean what QEMU's schema documentation says — `broadcast-allowed` is true when
// broadcast frames are received, MAC lists in the order the guest gave them, `vlan-table` ascending.
// compat 'qemu': byte-for-byte what QEMU 7.2's virtio_net_query_rxfilter builds — it assigns the
// NOBCAST flag to `broadcast-allowed`, and builds every list by prepending while walking forward,
// so MAC lists come newest first and VLAN ids descending.
//
// `vlan-table` lists every id the table holds in both modes. When CTRL_VLAN is not negotiated the
// table is allow-all, so it lists all 4096 ids (QEMU does the same once its table is filled) and
// `vlan` says 'all'.
//
// This is a pure derivation. Re-arming the change event is the caller's job (change-latch.ts).

import { ETH_ALEN, VLAN_ID_COUNT } from './constants.js';
import { formatMac } from './mac.js';
import type { RxFilterState } from './rx-filter.js';
import type { RxFilterInfo } from '../../lib/base/rx-filter-info.js';

/** The reply's shape has one home below every user (lib/base/rx-filter-info.ts); re-exported here for the device. */
export type { RxFilterInfo, RxState } from '../../lib/base/rx-filter-info.js';

export type RxFilterCompat = 'qemu' | undefined;

/** Builds the query reply for the NIC named `name`. `compat: 'qemu'` reproduces QEMU 7.2's quirks. */
export function queryRxFilter(state: RxFilterState, name: string, compat?: RxFilterCompat): RxFilterInfo {
  const qemu = compat === 'qemu';
  const table = state.macTable;
  const vlanTable = vlanIds(state, qemu);
  // Key order is QEMU's schema order, so JSON.stringify matches QEMU's reply field for field.
  return {
    name,
    promiscuous: state.promiscuous,
    multicast: state.noMulti ? 'none' : state.allMulti ? 'all' : 'normal',
    unicast: state.noUni ? 'none' : state.allUni ? 'all' : 'normal',
    vlan: !state.ctrlVlanNegotiated ? 'all' : vlanTable.length === 0 ? 'none' : 'normal',
    // The one place the guest's NOBCAST flag becomes the reported field.
    'broadcast-allowed': qemu ? state.noBcast : !state.noBcast,
    'multicast-overflow': table.multiOverflow,
    'unicast-overflow': table.uniOverflow,
    'main-mac': formatMac(state.mainMac),
    'vlan-table': vlanTable,
    'unicast-table': macList(table.uniBytes, table.uniCount, qemu),
    'multicast-table': macList(table.multiBytes, table.multiCount, qemu),
  };
}

function macList(bytes: Uint8Array, count: number, reversed: boolean): string[] {
  const out: string[] = new Array<string>(count);
  for (let i = 0; i < count; i++) out[reversed ? count - 1 - i : i] = formatMac(bytes, i * ETH_ALEN);
  return out;
}

function vlanIds(state: RxFilterState, descending: boolean): number[] {
  const out: number[] = [];
  const words = state.vlans;
  for (let w = 0; w < VLAN_ID_COUNT / 32; w++) {
    const word = words[w]!;
    if (word === 0) continue;
    for (let bit = 0; bit < 32; bit++) if ((word >>> bit) & 1) out.push(w * 32 + bit);
  }
  return descending ? out.reverse() : out;
}
