// What every virtio device shares, whatever its type and transport (VIRTIO 1.2 §2.1 device status,
// §2.2 feature bits, §2.3 notifications, §2.4 reset, §2.5 configuration space, §3.1 initialisation).
//
// A concrete device (virtio-net) extends `VirtioDevice` and fills in the hooks: its type, queue
// sizes, offered features, config field table, feature-dependency check, and what to do at
// DRIVER_OK, on a queue notification and on reset. A transport (virtio-mmio, virtio-pci) attaches
// to it and forwards the driver's register accesses to the transport-facing methods below.
//
// Guest mistakes never throw: they are ignored or refused and recorded as diagnostics. A broken
// contract that stops the device (tier 1) goes through `needsReset()`: DEVICE_NEEDS_RESET, config
// interrupt, queues stopped, a 'needs-reset' event — until the driver resets the device.
//
// Events: 'diagnostic' (Diagnostic), 'needs-reset' ({ code, ... }), 'status' (new status number).

import { EventEmitter } from 'node:events';
import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import { SplitQueue } from '../../virtqueue/split-queue.js';
import type { QueueConfig } from '../../virtqueue/split-queue.js';
import { QUEUE_ERROR_SECTIONS } from '../../virtqueue/queue-errors.js';
import { isValidQueueSize } from '../../virtqueue/ring-layout.js';
import { ConfigSpace } from './config-space.js';
import type { ConfigField } from './config-space.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK, STATUS_FEATURES_OK, nextStatus } from './device-status.js';
import type { DriverInterface } from './device-status.js';
import { DIAGNOSTIC_SECTIONS, DiagnosticLog } from './diagnostics.js';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';
import { FeatureNegotiation, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit } from './features.js';
import { QueueRegisters } from './queue-registers.js';
import type { RingArea } from './queue-registers.js';
import { ISR_CONFIG, ISR_QUEUE } from './transport-binding.js';
import type { TransportBinding } from './transport-binding.js';

/** A tier-1 error: anything with a stable code (queue errors, device-specific errors). */
export interface DeviceError {
  readonly code: string;
  /** The spec section it enforces, when the error knows it. */
  readonly section?: string;
  readonly [field: string]: unknown;
}

/** Extra fields a diagnostic may carry. */
export type DiagnosticExtra = Partial<Pick<Diagnostic, 'queue' | 'value' | 'offset' | 'width' | 'error' | 'section'>>;

/** Largest queue count a device may declare (PCI queue_select and MMIO QueueSel are 16-bit wide in practice). */
const MAX_QUEUES = 0x10000;

interface Core {
  readonly features: FeatureNegotiation;
  readonly config: ConfigSpace;
  readonly queues: QueueRegisters;
  /** Running queues (index-aligned); the same array is handed to `onDriverOk` and stays live. */
  readonly active: (SplitQueue | null)[];
  /** Notifications that arrived before DRIVER_OK, delivered at DRIVER_OK. */
  readonly pendingNotify: Uint8Array;
}

export abstract class VirtioDevice extends EventEmitter {
  // ---- hooks for the concrete device ----

  /** Virtio device ID (§5: 1 = network). */
  abstract readonly deviceType: number;
  /** Maximum size of each virtqueue; the length is the number of queues. Read once, at first use. */
  abstract readonly queueMaxSizes: readonly number[];
  /** Device-specific and ring feature bits offered (VERSION_1 is added by the core). Read once. */
  protected abstract offeredFeatures(): bigint;
  /** The device configuration space field table. Read once. */
  protected abstract configFields(): ConfigField[];
  /** Feature-dependency check at FEATURES_OK: null accepts, a sentence refuses (§2.2.2). */
  protected validateFeatures(_features: bigint): string | null {
    return null;
  }
  /** DRIVER_OK: `queues` is index-aligned (null for a queue the driver did not enable) and live. */
  protected abstract onDriverOk(queues: readonly (SplitQueue | null)[], features: bigint): void;
  /** The driver notified queue `index` (only while running, only for an active queue). */
  protected abstract onQueueNotify(index: number): void;
  /** The queues stopped (tier-1 error or reset): drop every reference to popped chains. */
  protected onQueuesStopped(): void {}
  /** After a reset (§2.4): return to the power-on state. */
  protected onReset(): void {}

  // ---- state ----

  /** Guest memory the rings and buffers live in. */
  readonly memory: GuestMemoryAccess;
  private coreState: Core | null = null;
  private statusValue = 0;
  private isrValue = 0;
  private generation = 0;
  private driverInterface: DriverInterface = 'modern';
  private binding: TransportBinding | null = null;
  private readonly log = new DiagnosticLog();

  constructor(memory: GuestMemoryAccess) {
    super();
    if (memory === null || typeof memory !== 'object' || typeof (memory as GuestMemoryAccess).readU16 !== 'function') {
      throw new TypeError('VirtioDevice: memory must be a GuestMemory (or an object implementing GuestMemoryAccess)');
    }
    this.memory = memory;
  }

  /** Built on first use, after the concrete device's constructor has set its fields. */
  private get core(): Core {
    if (this.coreState !== null) return this.coreState;
    const sizes = this.queueMaxSizes;
    if (!Array.isArray(sizes) || sizes.length > MAX_QUEUES || sizes.some((s) => !isValidQueueSize(s))) {
      throw new RangeError(`${this.constructor.name}: queueMaxSizes must be a list of at most ${MAX_QUEUES} powers of 2 in 1..32768`);
    }
    const offered = this.offeredFeatures() | featureBit(VIRTIO_F_VERSION_1);
    this.coreState = {
      features: new FeatureNegotiation(offered),
      config: new ConfigSpace(this.configFields()),
      queues: new QueueRegisters(sizes.slice()),
      active: sizes.map(() => null),
      pendingNotify: new Uint8Array(sizes.length),
    };
    return this.coreState;
  }

  // ---- for the concrete device ----

  /** Device status (§2.1). */
  get status(): number {
    return this.statusValue;
  }
  /** DRIVER_OK is set and the device does not need a reset: queues may be processed. */
  get running(): boolean {
    return (this.statusValue & (STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET)) === STATUS_DRIVER_OK;
  }
  /** The features the driver acknowledged (final after FEATURES_OK, or DRIVER_OK on legacy). */
  get negotiatedFeatures(): bigint {
    return this.core.features.acknowledged;
  }
  /** Everything the device offers through the modern interface (including VERSION_1). */
  get offered(): bigint {
    return this.core.features.offered;
  }
  /** Whether feature `bit` (0..63) was acknowledged. Allocation-free: fine on the hot path. */
  hasFeature(bit: number): boolean {
    return this.core.features.has(bit);
  }
  /** The interface the driver last used for status or features ('legacy' only on a transitional PCI device). */
  get activeInterface(): DriverInterface {
    return this.driverInterface;
  }
  /** Running queues, index-aligned (all null unless running). */
  get queues(): readonly (SplitQueue | null)[] {
    return this.core.active;
  }

  /** Raises a used buffer notification for `queueIndex` (only while running, §2.1.2). */
  raiseUsed(_queueIndex: number): void {
    if (!this.running) return;
    this.setIsr(this.isrValue | ISR_QUEUE);
  }

  /** Raises a configuration change notification (only once DRIVER_OK is set, §2.1.2 / §4.1.5.4). */
  raiseConfig(): void {
    if ((this.statusValue & STATUS_DRIVER_OK) === 0) return;
    this.setIsr(this.isrValue | ISR_CONFIG);
  }

  /** The device changed its configuration: bump the generation (§2.5) and optionally notify. */
  protected configChanged(notify: boolean): void {
    this.generation = (this.generation + 1) >>> 0;
    if (notify) this.raiseConfig();
  }

  /**
   * Tier 1 (§2.1.2): the device cannot go on. Sets DEVICE_NEEDS_RESET, raises the config interrupt
   * (when DRIVER_OK is set), stops every queue, records a diagnostic and emits 'needs-reset'. Never
   * throws. A second error before the reset is recorded but not re-signalled.
   */
  protected needsReset(error: DeviceError): void {
    const code = String(error.code);
    const section = error.section ?? (QUEUE_ERROR_SECTIONS as Record<string, string | undefined>)[code] ?? '2.1.2';
    const already = (this.statusValue & STATUS_DEVICE_NEEDS_RESET) !== 0;
    const queue = typeof error['queue'] === 'number' ? error['queue'] : undefined;
    this.record({ code, section, message: `device needs reset: ${code}${already ? ' (already needing reset)' : ''}`, error, queue });
    if (already) return;
    this.statusValue |= STATUS_DEVICE_NEEDS_RESET;
    this.stopQueues();
    this.raiseConfig();
    this.emit('needs-reset', error);
  }

  // ---- diagnostics ----

  /** The last diagnostics (bounded), oldest first. */
  diagnostics(): readonly Diagnostic[] {
    return this.log.entries();
  }
  /** How many diagnostics with `code` were recorded over the device's life. */
  diagnosticCount(code: string): number {
    return this.log.count(code);
  }
  /** Counts by code over the device's life. */
  diagnosticCounts(): ReadonlyMap<string, number> {
    return this.log.counts();
  }

  /** Records a driver mistake (for transports and the concrete device). */
  reportDriverMistake(code: DiagnosticCode, message: string, extra?: DiagnosticExtra): void;
  /** A concrete device's own code (e.g. `'ctrl.unknown-class'`) must name its section. */
  reportDriverMistake(code: string, message: string, extra: DiagnosticExtra & { section: string }): void;
  reportDriverMistake(code: string, message: string, extra: DiagnosticExtra = {}): void {
    const known = code as DiagnosticCode;
    const section = extra.section ?? this.binding?.sections?.[known] ?? DIAGNOSTIC_SECTIONS[known] ?? '2';
    this.record({ ...extra, code, section, message });
  }

  private record(input: Omit<Diagnostic, 'seq'>): void {
    const d = this.log.record(input);
    this.emit('diagnostic', d);
  }

  // ---- transport-facing: binding and identity ----

  /** Attaches a transport. A device has exactly one transport; a second attach throws. */
  attachTransport(binding: TransportBinding): void {
    if (this.binding !== null) throw new Error(`${this.constructor.name} is already attached to a transport`);
    void this.core; // build the tables now, so a bad table throws at construction time of the transport
    this.binding = binding;
  }

  get numQueues(): number {
    return this.core.queues.count;
  }
  /** Maximum size of queue `index`, 0 when the device has no such queue. */
  queueMaxSize(index: number): number {
    return this.core.queues.maxSize(index);
  }

  // ---- transport-facing: status and features ----

  /** A driver write of the status field through `via`. */
  writeStatus(value: number, via: DriverInterface = 'modern'): void {
    this.driverInterface = via;
    const features = this.core.features;
    const t = nextStatus(this.statusValue, value, via, () =>
      features.checkFeaturesOk(via, (f) => this.safeHook(() => this.validateFeatures(f), 'validateFeatures') ?? null),
    );
    if (t.kind === 'reset') {
      this.reset();
      return;
    }
    for (const m of t.mistakes) this.reportDriverMistake(m.code, m.message, { value: m.value });
    const before = this.statusValue;
    // A hook that threw during the feature check may have set DEVICE_NEEDS_RESET meanwhile.
    this.statusValue = t.status | (this.statusValue & STATUS_DEVICE_NEEDS_RESET);
    if ((t.newlySet & STATUS_FEATURES_OK) !== 0) features.freeze();
    if ((t.newlySet & STATUS_DRIVER_OK) !== 0) this.driverOk(via);
    if (this.statusValue !== before) this.emit('status', this.statusValue);
  }

  /** 32-bit window `select` of the offered features. */
  deviceFeatureWord(select: number): number {
    return this.core.features.deviceWord(select);
  }
  /** 32-bit window `select` of the driver's acknowledged features. */
  driverFeatureWord(select: number): number {
    return this.core.features.driverWord(select);
  }
  writeDriverFeatureWord(select: number, value: number): void {
    this.driverInterface = 'modern';
    const m = this.core.features.writeDriverWord(select, value);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { value: m.value });
  }
  /** Legacy interface: the 32 offered bits (never VERSION_1; ANY_LAYOUT always, §6.3). */
  legacyDeviceFeatures(): number {
    return Number(this.core.features.offeredLegacy & 0xffff_ffffn);
  }
  writeLegacyDriverFeatures(value: number): void {
    this.driverInterface = 'legacy';
    const m = this.core.features.writeLegacyDriverFeatures(value);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { value: m.value, section: m.code === 'features.not-offered' ? '4.1.4.10' : undefined });
  }

  // ---- transport-facing: queues ----

  queueConfig(index: number): Readonly<QueueConfig> | undefined {
    return this.core.queues.config(index);
  }
  writeQueueSize(index: number, size: number): void {
    if (this.queueRefused(index, 'size', size)) return;
    this.core.queues.setSize(index, size);
  }
  /** One 32-bit half of a ring area's address (the read-back is exactly what was written). */
  queueAddressWord(index: number, area: RingArea, half: 0 | 1): number {
    return this.core.queues.has(index) ? this.core.queues.addressWord(index, area, half) : 0;
  }
  writeQueueAddressWord(index: number, area: RingArea, half: 0 | 1, value: number): void {
    if (this.queueRefused(index, area, value)) return;
    this.core.queues.setAddressWord(index, area, half, value);
  }
  /**
   * Legacy interface (§4.1.4.10): the whole queue at once from its page number — size (fixed at the
   * maximum there), the three ring addresses, and enabled; `null` (page number 0) disables it.
   */
  writeQueueLayout(index: number, layout: { size: number; descTable: number; availRing: number; usedRing: number } | null): void {
    if (layout === null) return this.writeQueueReady(index, false);
    if (this.queueRefused(index, 'layout', layout.descTable)) return;
    const q = this.core.queues;
    q.setSize(index, layout.size);
    q.setAddress(index, 'descTable', layout.descTable);
    q.setAddress(index, 'availRing', layout.availRing);
    q.setAddress(index, 'usedRing', layout.usedRing);
    this.writeQueueReady(index, true);
  }

  /** The driver enables (true) or disables (false) a queue. */
  writeQueueReady(index: number, ready: boolean): void {
    const core = this.core;
    if (!core.queues.has(index)) {
      this.reportDriverMistake('queue.not-available', `driver enabled queue ${index}, which the device does not have`, { queue: index });
      return;
    }
    const config = core.queues.config(index)!;
    if (!ready) {
      if (core.active[index] !== null) {
        this.reportDriverMistake('queue.disable-unsupported', `driver disabled running queue ${index} (VIRTIO_F_RING_RESET is not offered); ignored`, { queue: index });
        return;
      }
      core.queues.setReady(index, false);
      core.pendingNotify[index] = 0;
      return;
    }
    core.queues.setReady(index, true);
    // A queue enabled after DRIVER_OK starts at once; `queues` (given to onDriverOk) is live.
    if (this.running && core.active[index] === null) this.activate(index, config);
  }

  /** An available buffer notification for queue `index` (§2.9). */
  notify(index: number): void {
    const core = this.core;
    if (!core.queues.has(index)) {
      this.reportDriverMistake('notify.queue-out-of-range', `driver notified queue ${index}, which the device does not have`, { queue: index });
      return;
    }
    if ((this.statusValue & STATUS_DEVICE_NEEDS_RESET) !== 0) return; // stopped until reset
    if (!core.queues.config(index)!.ready) {
      this.reportDriverMistake('notify.queue-not-ready', `driver notified queue ${index} before enabling it`, { queue: index });
      return;
    }
    if ((this.statusValue & STATUS_DRIVER_OK) === 0) {
      // §3.1.2: a legacy driver may use the device before DRIVER_OK; remember and deliver then.
      if (this.driverInterface === 'modern') {
        this.reportDriverMistake('notify.before-driver-ok', `driver notified queue ${index} before DRIVER_OK; delivered at DRIVER_OK`, { queue: index });
      }
      core.pendingNotify[index] = 1;
      return;
    }
    if (core.active[index] !== null) this.deliverNotify(index);
  }

  /** The hot path of a kick: the hook call without a closure (see `safeHook`). */
  private deliverNotify(index: number): void {
    try {
      this.onQueueNotify(index);
    } catch (e) {
      this.hookThrew(e, 'onQueueNotify');
    }
  }

  // ---- transport-facing: configuration space ----

  /** Config generation (§2.5); transports show all 32 bits (MMIO) or the low 8 (PCI). */
  get configGeneration(): number {
    return this.generation;
  }
  get configSize(): number {
    return this.core.config.size;
  }
  readConfig(offset: number, width: number): number {
    const r = this.core.config.read(offset, width, this.fieldExists);
    if (r.mistake !== null) this.reportDriverMistake(r.mistake.code, r.mistake.message, { offset, width });
    return r.value;
  }
  writeConfig(offset: number, width: number, value: number): void {
    const m = this.core.config.write(offset, width, value, this.fieldExists);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { offset, width, value });
  }
  /** §2.5.2: offered features decide existence until negotiation ends, negotiated ones after. */
  private readonly fieldExists = (mask: bigint): boolean => {
    const f = this.core.features;
    const set = f.frozen ? f.acknowledged : this.driverInterface === 'legacy' ? f.offeredLegacy : f.offered;
    return (set & mask) !== 0n;
  };

  // ---- transport-facing: interrupts ----

  /** ISR status bits (§4.1.4.5 / §4.2.2 InterruptStatus). */
  get isr(): number {
    return this.isrValue;
  }
  /** MMIO InterruptACK: clears the given bits. */
  acknowledgeInterrupt(bits: number): void {
    this.setIsr(this.isrValue & ~bits);
  }
  /** PCI ISR read: returns the bits and clears them (§4.1.4.5). */
  readAndClearIsr(): number {
    const v = this.isrValue;
    if (v !== 0) this.setIsr(0);
    return v;
  }

  private setIsr(value: number): void {
    if (value === this.isrValue) return;
    this.isrValue = value;
    this.binding?.isrChanged(value);
  }

  // ---- lifecycle ----

  /** Full reset (§2.4): status 0, features, queue registers, ISR, then the device's onReset(). */
  private reset(): void {
    const core = this.core;
    this.stopQueues();
    const was = this.statusValue;
    this.statusValue = 0;
    core.features.reset();
    core.queues.reset();
    core.pendingNotify.fill(0);
    this.setIsr(0);
    this.safeHook(() => this.onReset(), 'onReset');
    if (was !== 0) this.emit('status', 0);
  }

  private driverOk(via: DriverInterface): void {
    const core = this.core;
    if ((this.statusValue & STATUS_DEVICE_NEEDS_RESET) !== 0) return; // broken before DRIVER_OK: stays stopped
    if (via === 'legacy') {
      // §3.1.2: legacy negotiation ends at first use; there was no FEATURES_OK to refuse with.
      core.features.freeze();
      const reason = this.safeHook(() => this.validateFeatures(core.features.acknowledged), 'validateFeatures') ?? null;
      if (reason !== null) this.reportDriverMistake('features.rejected-by-device', reason, { value: core.features.acknowledged, section: '3.1.2' });
    }
    for (let i = 0; i < core.queues.count; i++) {
      const config = core.queues.config(i)!;
      if (config.ready && !this.activate(i, config)) return;
    }
    this.safeHook(() => this.onDriverOk(core.active, core.features.acknowledged), 'onDriverOk');
    for (let i = 0; i < core.queues.count; i++) {
      if (core.pendingNotify[i] === 0) continue;
      core.pendingNotify[i] = 0;
      if (this.running && core.active[i] !== null) this.deliverNotify(i);
    }
  }

  /** Activates one queue; a configuration that cannot run is a tier-1 error. */
  private activate(index: number, config: QueueConfig): boolean {
    const max = this.core.queues.maxSize(index);
    if (config.size > max) {
      this.needsReset({ code: 'queue.size-above-max', section: this.binding?.sections?.['queue.size-above-max'] ?? DIAGNOSTIC_SECTIONS['queue.size-above-max'], queue: index, size: config.size, max });
      return false;
    }
    const result = SplitQueue.activate(
      this.memory,
      config,
      { indirectDesc: this.hasFeature(VIRTIO_F_INDIRECT_DESC), eventIdx: this.hasFeature(VIRTIO_F_EVENT_IDX) },
      index,
    );
    if (!(result instanceof SplitQueue)) {
      this.needsReset({ ...result, queue: index });
      return false;
    }
    this.core.active[index] = result;
    return true;
  }

  private stopQueues(): void {
    const core = this.coreState;
    if (core === null) return;
    const hadQueues = core.active.some((q) => q !== null);
    core.active.fill(null);
    core.pendingNotify.fill(0);
    if (hadQueues) this.safeHook(() => this.onQueuesStopped(), 'onQueuesStopped');
  }

  /**
   * Runs a hook of the concrete device. An exception there is a device bug, but it must not reach
   * the hypervisor through a register access: it becomes a tier-1 'device.hook-threw' error.
   */
  private safeHook<T>(fn: () => T, hook: string): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.hookThrew(e, hook);
      return undefined;
    }
  }

  private hookThrew(e: unknown, hook: string): void {
    this.needsReset({ code: 'device.hook-threw', section: '2.1.2', hook, message: e instanceof Error ? e.message : String(e) });
  }

  private queueRefused(index: number, what: RingArea | 'size' | 'layout', value: number): boolean {
    const m = this.core.queues.refuseChange(index, what);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { queue: index, value });
    return m !== null;
  }
}
