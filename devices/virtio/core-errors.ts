// Tier-1 errors of a virtio device (VIRTIO 1.2 §2.1.2: the device sets DEVICE_NEEDS_RESET), as
// one typed union: the queue's own errors (virtqueue/queue-errors.ts, with the queue they broke),
// the core's, and a concrete device's (which carry their section: the core has no table for them).
//
// `DeviceError<D>` is what `needsReset()` takes and what the 'needs-reset' event and a
// diagnostic's `error` carry. virtio-net instantiates it with its own errors (net-diagnostics.ts).

import type { ChainError, QueueActivationError } from '../../virtqueue/queue-errors.js';
import { QUEUE_ERROR_SECTIONS } from '../../virtqueue/queue-errors.js';

/** A queue error (chain or activation), with the index of the queue it broke. */
export type QueueFault = (ChainError | QueueActivationError) & { readonly queue: number };

/** Errors the core itself raises. */
export type CoreError =
  /** §4.2.2.2 / §4.1.4.3: at activation, the driver's queue size is above the device's maximum. */
  | { readonly code: 'queue.size-above-max'; readonly section: string; readonly queue: number; readonly size: number; readonly max: number }
  /** §2.1.2: a hook of the concrete device threw (a device bug, kept from reaching the hypervisor). */
  | { readonly code: 'device.hook-threw'; readonly section: '2.1.2'; readonly hook: string; readonly message: string };

/**
 * A concrete device's own tier-1 error: a stable code, the section it enforces (recorded as
 * '2.1.2', the needs-reset rule itself, when it names none), maybe a queue.
 */
export interface SpecificError {
  readonly code: string;
  readonly section?: string;
  readonly queue?: number;
}

/** Every tier-1 error of a device whose own errors are `D`. */
export type DeviceError<D extends SpecificError = SpecificError> = QueueFault | CoreError | D;

/** The section a tier-1 error enforces: its own when it names one, else the queue table's. */
export function deviceErrorSection(error: DeviceError): string {
  if ('section' in error && typeof error.section === 'string') return error.section;
  return QUEUE_ERROR_SECTIONS[(error as QueueFault).code] ?? '2.1.2';
}
