// A query-rx-filter reply for tests that need one without a device: a quiet Linux guest's filter
// (promiscuous off, every mode normal, the default MAC, empty tables), with `over` on top.

import type { ReadonlyRxFilterInfo } from '../../lib/base/rx-filter-info.js';

export function rxFilterInfo(over: Partial<ReadonlyRxFilterInfo> = {}): ReadonlyRxFilterInfo {
  return {
    name: 'nic0',
    promiscuous: false,
    multicast: 'normal',
    unicast: 'normal',
    vlan: 'normal',
    'broadcast-allowed': true,
    'multicast-overflow': false,
    'unicast-overflow': false,
    'main-mac': '52:54:00:12:34:56',
    'vlan-table': [],
    'unicast-table': [],
    'multicast-table': [],
    ...over,
  };
}
