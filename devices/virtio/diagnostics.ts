// Driver mistakes and device errors as data (VIRTIO 1.2: every code names the section whose
// requirement the driver broke — §2.1 status, §2.2 features, §2.5 config space, §3.1 init, §4.1 PCI,
// §4.2 MMIO — or, for tier-1 errors, the section of the broken queue rule).
//
// A guest mistake never throws: the device ignores or refuses it, records a `Diagnostic` here and
// goes on. The log is bounded (a ring of the last `DIAGNOSTIC_CAPACITY` entries) and keeps a count
// per code for the device's whole life, so a guest that repeats a mistake in a loop costs memory
// only once.

/** One recorded driver mistake or device error. */
export interface Diagnostic {
  /** Stable code, e.g. `'status.bit-cleared'`, `'features.not-offered'`, or a queue error code. */
  readonly code: string;
  /** The VIRTIO 1.2 section whose rule was broken, e.g. `'2.1.1'`. */
  readonly section: string;
  /** A human sentence (tests assert on `code` and fields, not on this). */
  readonly message: string;
  /** The queue the mistake concerns, when there is one. */
  readonly queue?: number;
  /** The offending value the driver wrote, when there is one. */
  readonly value?: number | bigint;
  /** Register offset (transport mistakes) or config-space offset (config mistakes). */
  readonly offset?: number;
  /** Access width in bytes, for register and config accesses. */
  readonly width?: number;
  /** For tier-1 errors: the typed error that made the device need a reset. */
  readonly error?: { readonly code: string };
  /** Monotonic sequence number across the device's life (the first diagnostic is 1). */
  readonly seq: number;
}

/** What a recorder supplies; `seq` is assigned by the log. */
export type DiagnosticInput = Omit<Diagnostic, 'seq'>;

/**
 * Every code the device core and the transports record, with the section it enforces. Queue
 * errors (tier 1) keep their own codes and sections (virtqueue/queue-errors.ts).
 */
export const DIAGNOSTIC_SECTIONS = Object.freeze({
  // §2.1 device status
  'status.bit-cleared': '2.1.1', // "The driver MUST NOT clear a device status bit"
  'status.device-bit-set': '2.1', // DEVICE_NEEDS_RESET is the device's to set
  'status.after-failed': '2.1.1', // after FAILED the driver must reset before re-initialising
  'status.driver-before-acknowledge': '3.1.1', // init order: ACKNOWLEDGE, then DRIVER
  'status.features-ok-before-driver': '3.1.1', // init order: DRIVER, then FEATURES_OK
  'status.driver-ok-before-features-ok': '3.1.1', // modern: FEATURES_OK before DRIVER_OK
  'status.features-ok-on-legacy': '3.1.2', // legacy interface has no FEATURES_OK step
  // §2.2 feature negotiation
  'features.not-offered': '2.2.1', // "MUST NOT accept a feature which the device did not offer"
  'features.version-1-missing': '6.1', // "A driver MUST accept VIRTIO_F_VERSION_1 if it is offered"
  'features.rejected-by-device': '2.2.2', // device-specific dependency check refused the set
  'features.write-after-features-ok': '3.1.1', // "MUST NOT accept new feature bits after this step"
  // notifications
  'notify.before-driver-ok': '3.1.1', // "MUST NOT send any buffer available notifications ... before DRIVER_OK"
  'notify.queue-out-of-range': '2.9', // a notification names a virtqueue the device does not have
  'notify.queue-not-ready': '2.9', // ... or one the driver has not enabled
  'notify.value-mismatch': '4.1.5.2', // PCI: the index written differs from the queue of the address
  // §2.5 device configuration space
  'config.out-of-range': '2.5', // access past the end of the device configuration space
  'config.field-absent': '2.5.1', // field whose feature was not offered / negotiated
  'config.write-read-only': '2.5', // write to a field the device defines as read-only
  // queue programming through a transport
  'queue.not-available': '4.1.5.1.3', // programming a queue the device does not have
  'queue.config-while-enabled': '4.2.2.2', // changing size/addresses of an enabled queue
  'queue.disable-unsupported': '4.1.4.3.2', // disabling a running queue (no RING_RESET)
  'queue.reset-not-negotiated': '2.6.1', // queue reset without VIRTIO_F_RING_RESET
  'queue.reset-bad-value': '4.1.4.3.1', // a queue reset register written with something other than 1
  'queue.size-above-max': '4.2.2.2', // queue size larger than the device's maximum
  // transport registers
  'register.access-width': '4.2.2.2', // wrong width or alignment for a register
  'register.read-write-only': '4.2.2.2', // read of a write-only register
  'register.write-read-only': '4.2.2.2', // write to a read-only register
  'register.unknown-offset': '4.2.2.2', // access outside every defined register
  'pci.capability-write': '4.1.4.1', // write to a virtio capability other than PCI_CFG
  'pci.cfg-window-bad-access': '4.1.4.9.2', // PCI_CFG window access with a bad bar/offset/length
});

/** A code from the table above. */
export type DiagnosticCode = keyof typeof DIAGNOSTIC_SECTIONS;

/** How many diagnostics the log keeps (older ones are dropped; counts are kept for all). */
export const DIAGNOSTIC_CAPACITY = 64;

/** Bounded diagnostic log: the last `capacity` entries plus a count per code. */
export class DiagnosticLog {
  private readonly ring: (Diagnostic | undefined)[];
  private next = 0;
  private total = 0;
  private readonly byCode = new Map<string, number>();

  constructor(readonly capacity: number = DIAGNOSTIC_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`DiagnosticLog: capacity must be a positive integer, got ${String(capacity)}`);
    }
    this.ring = new Array<Diagnostic | undefined>(capacity);
  }

  /** Records one entry and returns it (with its sequence number). */
  record(input: DiagnosticInput): Diagnostic {
    this.total++;
    const d: Diagnostic = Object.freeze({ ...input, seq: this.total });
    this.ring[this.next] = d;
    this.next = (this.next + 1) % this.capacity;
    this.byCode.set(d.code, (this.byCode.get(d.code) ?? 0) + 1);
    return d;
  }

  /** The kept entries, oldest first. */
  entries(): readonly Diagnostic[] {
    const out: Diagnostic[] = [];
    for (let i = 0; i < this.capacity; i++) {
      const d = this.ring[(this.next + i) % this.capacity];
      if (d !== undefined) out.push(d);
    }
    return out;
  }

  /** How many entries were recorded with `code` over the log's life (0 if none). */
  count(code: string): number {
    return this.byCode.get(code) ?? 0;
  }

  /** Counts by code over the log's life. */
  counts(): ReadonlyMap<string, number> {
    return new Map(this.byCode);
  }

  /** Entries recorded over the log's life, kept or dropped. */
  get recorded(): number {
    return this.total;
  }
}
