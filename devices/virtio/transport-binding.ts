// How a transport attaches to a device (VIRTIO 1.2 §2.3 notifications; §4.1.4.5 the PCI ISR
// status, §4.2.2 the MMIO InterruptStatus: both carry the same two bits).
//
// The device owns the ISR bits; the transport owns the interrupt line and its level semantics
// (PCI INTx: asserted while ISR != 0, cleared by reading ISR; MMIO: asserted while InterruptStatus
// != 0, cleared by InterruptACK).

import type { StateReader, StateWriter } from '../../lib/base/state-codec.js';
import type { DiagnosticCode } from './diagnostics.js';

/** ISR bit 0: a used buffer notification (§4.1.4.5, §4.2.2 InterruptStatus). */
export const ISR_QUEUE = 1;
/** ISR bit 1: a configuration change notification. */
export const ISR_CONFIG = 2;

/** What a transport gives the device when it attaches. */
export interface TransportBinding {
  /** Called whenever the ISR value changes (raised, acknowledged, read-cleared, reset). */
  isrChanged(isr: number): void;
  /**
   * The section to record for a diagnostic code where this transport's rule differs from the
   * default in DIAGNOSTIC_SECTIONS (e.g. PCI register widths are §4.1.3.1, MMIO's §4.2.2.2).
   */
  readonly sections?: Partial<Record<DiagnosticCode, string>>;
  /** The transport's own registers in the device state (core-state.ts); absent: it has none. */
  readonly state?: TransportStateHooks;
}

/**
 * How a transport's registers (selectors, PCI configuration registers) go into the device state:
 * the device's `saveState()` stays the one entry point and calls these through the binding.
 */
export interface TransportStateHooks {
  /** The transport kind ('mmio', 'pci', 'pci-legacy', 'pci-legacy-only'); a state from another kind is 'state.mismatch'. */
  readonly kind: string;
  /** Writes the registers. */
  save(w: StateWriter): void;
  /**
   * Reads and checks what `save` wrote (throws `DeviceStateError`, changes nothing) and returns the
   * step that applies it. The interrupt line is not touched: the core re-sends the ISR afterwards.
   */
  load(r: StateReader): () => void;
}

/** Options every transport takes. */
export interface TransportOptions {
  /** Called with the new level of the device's interrupt line each time it changes. */
  onInterrupt: (asserted: boolean) => void;
}

/** Throws unless `options.onInterrupt` is a function (a programmer error by the embedder). */
export function checkTransportOptions(name: string, options: unknown): asserts options is TransportOptions {
  if (options === null || typeof options !== 'object' || typeof (options as TransportOptions).onInterrupt !== 'function') {
    throw new TypeError(`${name}: options.onInterrupt must be a function (asserted: boolean) => void`);
  }
}
