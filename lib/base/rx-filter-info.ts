// The reply of QEMU's query-rx-filter for one NIC (qapi/net.json `RxFilterInfo`, 12 members): the
// device builds it (devices/virtio-net/rx-filter-query.ts), the QMP server returns it
// (lib/qmp/nic.ts), the host rx-filter sync reads it (lib/netdev/rx-filter-sync.ts). One shape
// here, below all three, so none imports another's module for it.

/** QEMU's RxState: how frames of one kind are filtered. */
export type RxState = 'normal' | 'none' | 'all';

/** The reply of query-rx-filter for one NIC, with QEMU's field names (in QEMU's schema order). */
export interface RxFilterInfo {
  name: string;
  promiscuous: boolean;
  multicast: RxState;
  unicast: RxState;
  vlan: RxState;
  'broadcast-allowed': boolean;
  'multicast-overflow': boolean;
  'unicast-overflow': boolean;
  'main-mac': string;
  'vlan-table': number[];
  'unicast-table': string[];
  'multicast-table': string[];
}

/**
 * The same shape as a reader takes it: every member readonly and the lists readonly arrays, so a
 * NIC may hand out readonly lists (the QMP server copies them, the host sync only reads).
 */
export type ReadonlyRxFilterInfo = {
  readonly [K in keyof RxFilterInfo]: RxFilterInfo[K] extends readonly (infer T)[] ? readonly T[] : RxFilterInfo[K];
};
