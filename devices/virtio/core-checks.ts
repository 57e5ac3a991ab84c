// The embedder's mistakes `new VirtioCore(spec, memory, …)` refuses at once (programmer errors, not
// guest input: they throw): memory that is not a `GuestMemoryAccess`, and a queue list that is not
// at most MAX_QUEUES valid queue sizes (VIRTIO 1.2 §2.7: a power of 2, at most 32768).

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { isValidQueueSize } from '../../virtqueue/ring-layout.js';
import type { DeviceSpec } from './core-types.js';

/** Largest queue count a device may declare (PCI queue_select and MMIO QueueSel are 16-bit wide in practice). */
export const MAX_QUEUES = 0x10000;

/** Throws (TypeError, RangeError) for a bad memory or spec. */
export function checkCoreArguments(spec: DeviceSpec, memory: GuestMemoryAccess): void {
  if (memory === null || typeof memory !== 'object' || typeof (memory as GuestMemoryAccess).readU16 !== 'function') {
    throw new TypeError('VirtioCore: memory must be a GuestMemory (or an object implementing GuestMemoryAccess)');
  }
  const sizes = spec.queueMaxSizes;
  if (!Array.isArray(sizes) || sizes.length > MAX_QUEUES || sizes.some((s) => !isValidQueueSize(s))) {
    throw new RangeError(`VirtioCore: queueMaxSizes must be a list of at most ${MAX_QUEUES} powers of 2 in 1..32768`);
  }
}
