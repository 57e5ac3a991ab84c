// What the QMP server needs from a NIC and from a netdev: structural interfaces, so lib/qmp does
// not depend on the device's module. `VirtioNetDevice` satisfies `QmpNic` (its rx filter is the
// state behind QEMU's query-rx-filter and NIC_RX_FILTER_CHANGED, see devices/virtio-net/).

import type { ReadonlyRxFilterInfo, RxState } from '../base/rx-filter-info.js';

/** A MAC/VLAN receive mode, as QEMU's `RxState` enum names it. */
export type QmpRxState = RxState;

/**
 * One NIC's rx filter with the member names of QEMU's `RxFilterInfo` (query-rx-filter; the shape's
 * home is lib/base/rx-filter-info.ts). Lists are readonly here only so that a device may hand out
 * readonly arrays; the server copies them.
 */
export type QmpRxFilterInfo = ReadonlyRxFilterInfo;

/** Payload of a NIC's 'rx-filter-changed' event (and of QMP's NIC_RX_FILTER_CHANGED). */
export interface QmpRxFilterChanged {
  name: string;
  path: string;
}

export type QmpRxFilterListener = (e: QmpRxFilterChanged) => void;

/** A NIC as management sees it. */
export interface QmpNic {
  /** Net client name: `name` in query-rx-filter and in events. */
  readonly id: string;
  /**
   * The rx-filter state. Calling it re-arms the change event: 'rx-filter-changed' fires at most
   * once between two calls.
   */
  queryRxFilter(): QmpRxFilterInfo;
  on(event: 'rx-filter-changed', listener: QmpRxFilterListener): unknown;
  off(event: 'rx-filter-changed', listener: QmpRxFilterListener): unknown;
  /** Link status as the guest sees it. */
  setLink(up: boolean): void;
  readonly linkUp: boolean;
  /** Counters, e.g. `{ 'tx-frames': 3, … }`; must be JSON-serialisable (no BigInt, no cycles). */
  stats(): object;
}

/**
 * The id of the netdev a NIC is attached to, when the NIC exposes it as a public `netdev` object
 * with a string `id` (as the device does). A capability read at run time rather than a member of
 * `QmpNic`, so that NIC classes keeping their netdev private still satisfy the interface.
 */
export function attachedNetdevId(nic: QmpNic): string | undefined {
  const netdev = (nic as { netdev?: unknown }).netdev;
  if (typeof netdev !== 'object' || netdev === null) return undefined;
  const id = (netdev as { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
}

/** A netdev (host backend) known to management only by its net client id. */
export interface QmpNetdev {
  readonly id: string;
}
