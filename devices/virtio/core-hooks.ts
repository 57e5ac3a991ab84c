// The concrete device's handlers as the core calls them at its cold moments (VIRTIO 1.2 §2.1.2: a
// device that cannot go on sets DEVICE_NEEDS_RESET): FEATURES_OK, DRIVER_OK, a queue started or
// stopped, the queues stopped, reset, and the feature check. Each call is guarded: an exception
// there is a device bug, and it must not reach the hypervisor through a register access, so it
// becomes the tier-1 error 'device.hook-threw' handed to the core. (The kick, `onQueueNotify`, is
// called by the core directly on its hot path, with the same guard written out there.)

import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import type { CoreError } from './core-errors.js';
import type { CoreHandlers, RunningQueues } from './core-types.js';

/** The tier-1 error for a handler `hook` that threw `e`. */
export function hookThrewError(hook: string, e: unknown): CoreError {
  return { code: 'device.hook-threw', section: '2.1.2', hook, message: e instanceof Error ? e.message : String(e) };
}

export class GuardedHandlers {
  constructor(
    private readonly handlers: CoreHandlers,
    private readonly validate: (features: bigint) => string | null,
    /** Where an exception goes, as a tier-1 error (the core's `needsReset`). */
    private readonly threw: (error: CoreError) => void,
  ) {}

  /** The device's feature check (`DeviceSpec.validateFeatures`): null accepts, also after a throw. */
  validateFeatures(features: bigint): string | null {
    try {
      return this.validate(features) ?? null;
    } catch (e) {
      this.threw(hookThrewError('validateFeatures', e));
      return null;
    }
  }
  featuresOk(features: bigint): void {
    try {
      this.handlers.onFeaturesOk?.(features);
    } catch (e) {
      this.threw(hookThrewError('onFeaturesOk', e));
    }
  }
  driverOk(queues: RunningQueues, features: bigint): void {
    try {
      this.handlers.onDriverOk(queues, features);
    } catch (e) {
      this.threw(hookThrewError('onDriverOk', e));
    }
  }
  queueStarted(index: number, queue: Virtqueue): void {
    try {
      this.handlers.onQueueStarted?.(index, queue);
    } catch (e) {
      this.threw(hookThrewError('onQueueStarted', e));
    }
  }
  queueStopped(index: number): void {
    try {
      this.handlers.onQueueStopped?.(index);
    } catch (e) {
      this.threw(hookThrewError('onQueueStopped', e));
    }
  }
  queuesStopped(): void {
    try {
      this.handlers.onQueuesStopped?.();
    } catch (e) {
      this.threw(hookThrewError('onQueuesStopped', e));
    }
  }
  reset(): void {
    try {
      this.handlers.onReset?.();
    } catch (e) {
      this.threw(hookThrewError('onReset', e));
    }
  }
}
