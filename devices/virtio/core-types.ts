// The shapes around `VirtioCore` (virtio-core.ts): what a concrete device declares about itself
// (`DeviceSpec`), what it does at the core's moments (`CoreHandlers`), the core's events and its
// running state (VIRTIO 1.2 §2.1 status, §2.2 features, §2.5 config space, §3.1 initialisation).

import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import type { ConfigField } from './config-space.js';
import type { DeviceError, SpecificError } from './core-errors.js';
import type { Diagnostic } from './diagnostics.js';

/** What a concrete device is, fixed at construction. */
export interface DeviceSpec {
  /** Virtio device ID (§5: 1 = network). */
  readonly deviceType: number;
  /** Maximum size of each virtqueue; the length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Device-specific and ring feature bits offered (VERSION_1 is added by the core). */
  readonly offeredFeatures: bigint;
  /** The device configuration space field table (config-space.ts). */
  readonly configFields: readonly ConfigField[];
  /** Feature-dependency check at FEATURES_OK: null accepts, a sentence refuses (§2.2.2). */
  readonly validateFeatures?: (features: bigint) => string | null;
}

/** Index-aligned running queues: null for a queue the driver did not enable. */
export type RunningQueues = readonly (Virtqueue | null)[];

/**
 * Whether the device processes queues. A value that never changes under its holder: a queue the
 * driver enables after DRIVER_OK makes a new 'running' value (and `onQueueStarted`).
 */
export type RunState = { readonly kind: 'stopped' } | { readonly kind: 'running'; readonly queues: RunningQueues };

/**
 * What the concrete device does at the core's moments. Each call is guarded: an exception is a
 * device bug and becomes the tier-1 error 'device.hook-threw' instead of reaching the hypervisor.
 * A handler may be entered again from inside itself (its call-outs reach the transport): a device
 * loop that calls out checks `VirtioCore.epoch` / `isRunning(queue)` afterwards (virtio-core.ts).
 */
export interface CoreHandlers {
  /** Negotiation ended (FEATURES_OK accepted; on the legacy interface, at DRIVER_OK): `features` are final. */
  onFeaturesOk?(features: bigint): void;
  /** DRIVER_OK: the queues the driver enabled are running. Notifications that came early follow. */
  onDriverOk(queues: RunningQueues, features: bigint): void;
  /** The driver enabled queue `index` after DRIVER_OK and it runs now. */
  onQueueStarted?(index: number, queue: Virtqueue): void;
  /** The driver notified running queue `index` (§2.9). The hot path of a kick. */
  onQueueNotify(index: number, queue: Virtqueue): void;
  /** The queues stopped (tier-1 error or reset): drop every reference to them and their chains. */
  onQueuesStopped?(): void;
  /** The driver stopped using running queue `index`, or reset it (§2.6.1; the others run on): drop it and its chains. */
  onQueueStopped?(index: number): void;
  /** After a reset (§2.4): return to the power-on state. */
  onReset?(): void;
}

/** The core's events; a device's events map extends it. */
export interface CoreEvents<D extends SpecificError = SpecificError> {
  /** A driver mistake or device error was recorded. */
  diagnostic: Diagnostic;
  /** The device entered DEVICE_NEEDS_RESET (tier 1). */
  'needs-reset': DeviceError<D>;
  /** The status changed (the new value). */
  status: number;
}
