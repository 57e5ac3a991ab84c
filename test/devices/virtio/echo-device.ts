// A tiny test-only virtio device (VIRTIO 1.2 §2 facilities only): one queue whose chains are
// answered by copying their readable bytes into their writable part. It lets the device core and
// both transports be tested without virtio-net.
//
// Features (device-specific bits 0..23, §2.2): ECHO_F_UPPER (0) uppercases ASCII, ECHO_F_EXTRA (1)
// requires ECHO_F_UPPER (the dependency check), ECHO_F_BIG (5) makes the `big` config field exist.

import type { GuestMemoryAccess } from '../../../virtqueue/guest-memory.js';
import type { Virtqueue } from '../../../virtqueue/virtqueue.js';
import { VirtioDevice } from '../../../devices/virtio/virtio-device.js';
import type { DeviceError } from '../../../devices/virtio/virtio-device.js';
import { VirtioCore } from '../../../devices/virtio/virtio-core.js';
import type { ConfigField, ConfigValue } from '../../../devices/virtio/config-space.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, featureBit } from '../../../devices/virtio/features.js';

export const ECHO_F_UPPER = 0;
export const ECHO_F_EXTRA = 1;
export const ECHO_F_BIG = 5;

/** Config layout: mac[6] @0 (ro), status u16 @6 (ro), counter u32 @8 (rw), tag u8 @12 (rw, needs BIG), big u64 @16 (ro, needs BIG). */
export const ECHO_CFG_MAC = 0;
export const ECHO_CFG_STATUS = 6;
export const ECHO_CFG_COUNTER = 8;
export const ECHO_CFG_TAG = 12;
export const ECHO_CFG_BIG = 16;
export const ECHO_BIG_VALUE = 0x0123_4567_89ab_cdefn;

export interface EchoOptions {
  memory: GuestMemoryAccess;
  /** Virtio device type to report (default 1, so PCI tests see the network IDs and class). */
  type?: number;
  queueSize?: number;
  /** Offered device features (default UPPER | EXTRA | BIG | INDIRECT_DESC | EVENT_IDX). */
  features?: bigint;
}

export class EchoDevice extends VirtioDevice {
  readonly echoType: number;
  readonly queueMaxSizes: readonly number[];
  readonly mac = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  linkStatus = 1;
  counter = 0;
  tag = 0;
  /** Observations for tests. */
  readonly events: string[] = [];
  /** The queues given at DRIVER_OK, kept up to date by queues started later. */
  driverOkQueues: (Virtqueue | null)[] | null = null;
  echoed = 0;
  private readonly offer: bigint;
  private readonly memoryGiven: GuestMemoryAccess;
  private coreValue: VirtioCore | null = null;

  constructor(options: EchoOptions) {
    super();
    this.memoryGiven = options.memory;
    this.echoType = options.type ?? 1;
    this.queueMaxSizes = [options.queueSize ?? 16];
    this.offer =
      options.features ??
      (featureBit(ECHO_F_UPPER) | featureBit(ECHO_F_EXTRA) | featureBit(ECHO_F_BIG) | featureBit(VIRTIO_F_INDIRECT_DESC) | featureBit(VIRTIO_F_EVENT_IDX));
    if (options.memory === null || typeof options.memory !== 'object' || typeof options.memory.readU16 !== 'function') {
      throw new TypeError('EchoDevice: memory must be a GuestMemory');
    }
  }

  /**
   * Built on first use (a transport attaching), so that test subclasses may override the fields
   * above. A real device builds its core at the end of its constructor (virtio-net does).
   */
  get core(): VirtioCore {
    if (this.coreValue !== null) return this.coreValue;
    const spec = {
      deviceType: this.echoType,
      queueMaxSizes: this.queueMaxSizes,
      offeredFeatures: this.offeredFeatures(),
      configFields: this.configFields(),
      validateFeatures: (f: bigint) => this.validateFeatures(f),
    };
    this.coreValue = new VirtioCore(spec, this.memoryGiven, {
      onDriverOk: (queues, features) => this.onDriverOk(queues, features),
      onQueueStarted: (index, q) => {
        if (this.driverOkQueues !== null) this.driverOkQueues[index] = q;
      },
      onQueueNotify: (index) => this.onQueueNotify(index),
      onQueuesStopped: () => this.onQueuesStopped(),
      onReset: () => this.onReset(),
    }, this);
    return this.coreValue;
  }

  protected offeredFeatures(): bigint {
    return this.offer;
  }

  protected configFields(): ConfigField[] {
    return [
      { name: 'mac', offset: ECHO_CFG_MAC, width: 6, access: 'ro', read: () => this.mac },
      { name: 'status', offset: ECHO_CFG_STATUS, width: 2, access: 'ro', read: () => this.linkStatus },
      { name: 'counter', offset: ECHO_CFG_COUNTER, width: 4, access: 'rw', read: () => this.counter, write: (v: ConfigValue) => void (this.counter = Number(v)) },
      { name: 'tag', offset: ECHO_CFG_TAG, width: 1, access: 'rw', feature: featureBit(ECHO_F_BIG), read: () => this.tag, write: (v: ConfigValue) => void (this.tag = Number(v)) },
      { name: 'big', offset: ECHO_CFG_BIG, width: 8, access: 'ro', feature: featureBit(ECHO_F_BIG), read: () => ECHO_BIG_VALUE },
    ];
  }

  protected validateFeatures(f: bigint): string | null {
    if ((f & featureBit(ECHO_F_EXTRA)) !== 0n && (f & featureBit(ECHO_F_UPPER)) === 0n) return 'ECHO_F_EXTRA requires ECHO_F_UPPER';
    return null;
  }

  protected onDriverOk(queues: readonly (Virtqueue | null)[], features: bigint): void {
    this.driverOkQueues = queues.slice();
    this.events.push(`driver-ok:${features.toString(16)}`);
  }

  protected onQueueNotify(index: number): void {
    this.events.push(`notify:${index}`);
    const q = this.queues[index];
    if (q === null || q === undefined) return;
    const upper = this.hasFeature(ECHO_F_UPPER);
    const scratch = new Uint8Array(256);
    for (;;) {
      const c = q.pop();
      if (c.kind === 'empty') break;
      if (c.kind === 'violation') {
        this.core.needsReset({ ...c.error, queue: index });
        return;
      }
      const r = c.reader();
      const w = c.writer();
      let n = 0;
      for (;;) {
        const got = r.read(scratch);
        if (got === 0) break;
        if (upper) for (let i = 0; i < got; i++) if (scratch[i]! >= 0x61 && scratch[i]! <= 0x7a) scratch[i] = scratch[i]! - 0x20;
        n += w.write(scratch.subarray(0, got));
      }
      q.pushUsed(c, n);
      this.echoed++;
    }
    if (q.publishUsed()) this.core.raiseUsed(index);
  }

  protected onQueuesStopped(): void {
    this.events.push('stopped');
  }

  protected onReset(): void {
    this.events.push('reset');
    this.counter = 0;
    this.driverOkQueues = null;
  }

  /** Test access to the protected tier-1 path. */
  fail(error: DeviceError): void {
    this.core.needsReset(error);
  }

  /** The link changes (a device-side config change with a notification). */
  setLink(up: boolean): void {
    this.linkStatus = up ? 1 : 0;
    this.core.configChanged(true);
  }
}
