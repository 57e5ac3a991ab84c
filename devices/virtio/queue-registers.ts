// What the driver programs for each virtqueue before the device runs it (VIRTIO 1.2 §2.6: size
// and the three ring areas; §4.1.4.3 queue_size / queue_desc / queue_driver / queue_device /
// queue_enable; §4.2.2 QueueNum / QueueDesc* / QueueDriver* / QueueDevice* / QueueReady).
//
// Values are stored as written and not validated here: they become a running `SplitQueue` only
// through activation (virtqueue/activate-queue.ts, split or packed) at DRIVER_OK. 64-bit addresses are kept as their two 32-bit
// halves so a driver reads back exactly what it wrote; the `QueueConfig` carries the combined
// number (exact below 2^53, and anything above is outside every guest memory and fails activation).

import { newQueueConfig } from '../../virtqueue/virtqueue.js';
import type { QueueConfig } from '../../virtqueue/virtqueue.js';

/** The three ring areas, in register order: descriptor, driver (avail), device (used). */
export type RingArea = 'descTable' | 'availRing' | 'usedRing';
export const RING_AREAS: readonly RingArea[] = Object.freeze(['descTable', 'availRing', 'usedRing']);
const AREAS = RING_AREAS;
/** 32-bit words per queue: lo/hi for each of the three areas. */
const WORDS_PER_QUEUE = 6;

/** A refused queue-programming write. */
export interface QueueProgrammingMistake {
  readonly code: 'queue.not-available' | 'queue.config-while-enabled';
  readonly message: string;
}

export class QueueRegisters {
  readonly count: number;
  private readonly configs: QueueConfig[];
  private readonly words: Uint32Array;

  constructor(readonly maxSizes: readonly number[]) {
    this.count = maxSizes.length;
    this.configs = maxSizes.map((m) => newQueueConfig(m));
    this.words = new Uint32Array(this.count * WORDS_PER_QUEUE);
  }

  has(index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index < this.count;
  }

  /** The device's maximum size for queue `index`; 0 for a queue the device does not have. */
  maxSize(index: number): number {
    return this.has(index) ? this.maxSizes[index]! : 0;
  }

  config(index: number): QueueConfig | undefined {
    return this.has(index) ? this.configs[index] : undefined;
  }

  setSize(index: number, size: number): void {
    this.configs[index]!.size = size;
  }

  setReady(index: number, ready: boolean): void {
    this.configs[index]!.ready = ready;
  }

  /** One 32-bit half (0 = low, 1 = high) of a ring area's address. */
  addressWord(index: number, area: RingArea, half: 0 | 1): number {
    return this.words[index * WORDS_PER_QUEUE + AREAS.indexOf(area) * 2 + half]!;
  }

  setAddressWord(index: number, area: RingArea, half: 0 | 1, value: number): void {
    const base = index * WORDS_PER_QUEUE + AREAS.indexOf(area) * 2;
    this.words[base + half] = value >>> 0;
    this.configs[index]![area] = this.words[base + 1]! * 2 ** 32 + this.words[base]!;
  }

  /** Sets a whole address (the legacy interface computes all three from one page number). */
  setAddress(index: number, area: RingArea, address: number): void {
    this.setAddressWord(index, area, 0, address % 2 ** 32);
    this.setAddressWord(index, area, 1, Math.floor(address / 2 ** 32));
  }

  /**
   * Why the driver may not change `what` of queue `index` now (the queue does not exist, or is
   * enabled: §4.2.2.2 / §4.1.4.3.2 "configure ... before enabling"), or null.
   */
  refuseChange(index: number, what: RingArea | 'size' | 'layout'): QueueProgrammingMistake | null {
    if (!this.has(index)) {
      return { code: 'queue.not-available', message: `driver programmed ${what} of queue ${index}, which the device does not have` };
    }
    if (this.configs[index]!.ready) {
      return { code: 'queue.config-while-enabled', message: `driver changed ${what} of queue ${index} while it is enabled; ignored` };
    }
    return null;
  }

  /** Queue `index` back to its reset values (a queue reset, §2.6.1.1.1): size = max, addresses 0, not ready. */
  resetQueue(index: number): void {
    Object.assign(this.configs[index]!, newQueueConfig(this.maxSizes[index]!));
    this.words.fill(0, index * WORDS_PER_QUEUE, (index + 1) * WORDS_PER_QUEUE);
  }

  /** Back to reset values (§2.4): size = max, addresses 0, not ready. */
  reset(): void {
    const fresh = this.maxSizes.map((m) => newQueueConfig(m));
    fresh.forEach((c, i) => Object.assign(this.configs[i]!, c));
    this.words.fill(0);
  }
}
