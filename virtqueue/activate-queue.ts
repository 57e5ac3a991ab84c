// One entry point from a driver-programmed `QueueConfig` to a running queue of the negotiated ring
// format (VIRTIO 1.2 §2.7 split, §2.8 packed, chosen by VIRTIO_F_RING_PACKED), so transports and the
// device core never name the formats.

import type { GuestMemoryAccess } from './guest-memory.js';
import { PackedQueue } from './packed-queue.js';
import type { QueueActivationError } from './queue-errors.js';
import { SplitQueue } from './split-queue.js';
import type { QueueConfig, QueueFeatures, Virtqueue } from './virtqueue.js';

/** A running queue of the format `features.ringPacked` names, or why `config` cannot run. */
export function activateQueue(memory: GuestMemoryAccess, config: Readonly<QueueConfig>, features: QueueFeatures, index: number): Virtqueue | QueueActivationError {
  return features.ringPacked === true ? PackedQueue.activate(memory, config, features, index) : SplitQueue.activate(memory, config, features, index);
}

/** True for a running queue (as opposed to an activation error). */
export function isVirtqueue(x: Virtqueue | QueueActivationError): x is Virtqueue {
  return x instanceof SplitQueue || x instanceof PackedQueue;
}
