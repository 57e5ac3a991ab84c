// A stand-in for the device in QMP tests (the real VirtioNetDevice is tested end to end elsewhere):
// an EventEmitter with a real change latch, as QEMU's NIC_RX_FILTER_CHANGED contract requires —
// 'rx-filter-changed' fires at most once until queryRxFilter() is called again.

import { EventEmitter } from 'node:events';
import type { QmpNic, QmpRxFilterInfo } from '../../../lib/qmp/index.js';
import { rxFilterInfo } from '../../support/rx-filter-info.js';

export class FakeNic extends EventEmitter implements QmpNic {
  linkUp = true;
  /** Times queryRxFilter() was called. */
  queries = 0;
  /** Times the event actually fired. */
  fired = 0;
  private armed = true;
  private filter: QmpRxFilterInfo;
  counters: Record<string, unknown> = { 'tx-frames': 0, 'rx-frames': 0 };
  readonly path: string;

  constructor(
    readonly id: string,
    init: Partial<QmpRxFilterInfo> = {},
    /** Exposed like the device exposes its netdev (lets set_link reach it by netdev id). */
    readonly netdev?: { id: string },
  ) {
    super();
    this.path = `/machine/peripheral/${id}/virtio-backend`;
    this.filter = rxFilterInfo({ name: id, ...init });
  }

  queryRxFilter(): QmpRxFilterInfo {
    this.queries++;
    this.armed = true;
    return structuredClone(this.filter);
  }

  /** What the guest does through the control queue: change the filter, notify if armed. */
  change(update: Partial<QmpRxFilterInfo>): void {
    this.filter = { ...this.filter, ...update };
    if (!this.armed) return;
    this.armed = false;
    this.fired++;
    this.emit('rx-filter-changed', { name: this.id, path: this.path });
  }

  setLink(up: boolean): void {
    this.linkUp = up;
  }

  stats(): Record<string, unknown> {
    return structuredClone(this.counters);
  }
}
