// What every virtio device shares, whatever its type and transport (VIRTIO 1.2 §2.1 device status,
// §2.2 feature bits, §2.3 notifications, §2.4 reset, §2.5 configuration space, §3.1 initialisation),
// as a value a concrete device owns: `new VirtioCore(spec, memory, handlers, events)`.
//
// The device declares what it is (`DeviceSpec`: type, queue sizes, offered features, config field
// table, feature check) and what it does at the core's moments (`CoreHandlers`); the core keeps the
// status machine, negotiation, queue registers, config generation, ISR and diagnostics, and the
// running state (`RunState`). A transport reaches it through the device's facade (virtio-device.ts).
//
// Guest mistakes never throw: they are ignored or refused and recorded as diagnostics. A broken
// contract that stops the device (tier 1) goes through `needsReset()`: DEVICE_NEEDS_RESET, config
// interrupt, queues stopped, a 'needs-reset' event — until the driver resets the device.
//
// Re-entry. Every call-out (a handler, an event listener, the transport's interrupt line, and
// whatever the device itself calls: its backend) may come back into the transport and reset the
// device or stop a queue before it returns. The core counts such moments in `epoch`: it moves
// whenever running queues stop (reset, tier 1, the driver disabling a queue), before the device is
// told. A device loop reads it before a call-out and, when it moved, asks `isRunning(queue)`; if
// not, it returns at once, touching neither guest memory nor its backend. One integer compare per
// call-out on the hot path, no allocation.

//
// The cold parts live beside it, each named for what it holds: core-checks.ts (the constructor's
// embedder checks), core-hooks.ts (the device's handlers, guarded), core-run-state.ts (queue
// activation and the RunState values), core-diagnostics.ts (how mistakes and tier-1 errors are
// filed), core-state-build.ts (device state). The hot path — notify, raiseUsed, the ISR, epoch and
// isRunning — stays here as direct methods.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import type { QueueConfig, Virtqueue } from '../../virtqueue/virtqueue.js';
import type { EventSink } from '../../lib/base/events.js';
import { TypedEmitter } from '../../lib/base/events.js';
import { ConfigSpace } from './config-space.js';
import { checkCoreArguments } from './core-checks.js';
import { mistakeSection, needsResetDiagnostic } from './core-diagnostics.js';
import type { DiagnosticExtra } from './core-diagnostics.js';
import type { CoreError, DeviceError, QueueFault, SpecificError } from './core-errors.js';
import { GuardedHandlers, hookThrewError } from './core-hooks.js';
import { STOPPED, activateEnabled, activateQueueUnder, hasRunningQueue, runningWith, withQueueAt } from './core-run-state.js';
import type { Running } from './core-run-state.js';
import type { CoreEvents, CoreHandlers, DeviceSpec, RunState, RunningQueues } from './core-types.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK, STATUS_FEATURES_OK, nextStatus } from './device-status.js';
import type { DriverInterface } from './device-status.js';
import { DiagnosticLog } from './diagnostics.js';
import type { Diagnostic, DiagnosticCode, DiagnosticInput } from './diagnostics.js';
import { FeatureNegotiation, VIRTIO_F_RING_RESET, VIRTIO_F_VERSION_1, featureBit } from './features.js';
import { QueueRegisters } from './queue-registers.js';
import type { RingArea } from './queue-registers.js';
import { ISR_CONFIG, ISR_QUEUE } from './transport-binding.js';
import type { TransportBinding, TransportStateHooks } from './transport-binding.js';
import type { CoreState, PreparedCoreState } from './core-state.js';
import { commitCoreParts, exportCoreState, prepareCoreState } from './core-state-build.js';
import type { CoreStateParts } from './core-state-build.js';

export type { DiagnosticExtra } from './core-diagnostics.js';

export class VirtioCore<D extends SpecificError = SpecificError> {
  /** Guest memory the rings and buffers live in. */
  readonly memory: GuestMemoryAccess;
  /** Virtio device ID (§5). */
  readonly deviceType: number;
  /** Where the core's events go (the owning device, usually). */
  readonly events: EventSink<CoreEvents<D>>;

  /** The device's handlers: `onQueueNotify` is called directly (the hot path), the others through `hooks`. */
  private readonly handlers: CoreHandlers;
  private readonly hooks: GuardedHandlers;
  private readonly features: FeatureNegotiation;
  private readonly config: ConfigSpace;
  private readonly queueRegs: QueueRegisters;
  /** Notifications that arrived before DRIVER_OK, delivered at DRIVER_OK. */
  private readonly pendingNotify: Uint8Array;
  /** What `queues` shows while stopped: all null. */
  private readonly noQueues: RunningQueues;
  private run: RunState = STOPPED;
  private statusValue = 0;
  private isrValue = 0;
  private generation = 0;
  /** Moves whenever running queues stop (see `epoch`). */
  private epochValue = 0;
  /** Resets so far: a reset nested in a status write's hooks already reported its status. */
  private resets = 0;
  private driverInterface: DriverInterface = 'modern';
  private binding: TransportBinding | null = null;
  private readonly log = new DiagnosticLog();

  /** Throws (programmer error) for a bad memory or spec. */
  constructor(spec: DeviceSpec, memory: GuestMemoryAccess, handlers: CoreHandlers, events: EventSink<CoreEvents<D>> = new TypedEmitter<CoreEvents<D>>()) {
    checkCoreArguments(spec, memory);
    const sizes = spec.queueMaxSizes;
    this.memory = memory;
    this.deviceType = spec.deviceType;
    this.handlers = handlers;
    this.hooks = new GuardedHandlers(handlers, spec.validateFeatures ?? (() => null), (error) => this.needsReset(error));
    this.events = events;
    this.features = new FeatureNegotiation(spec.offeredFeatures | featureBit(VIRTIO_F_VERSION_1));
    this.config = new ConfigSpace([...spec.configFields]);
    this.queueRegs = new QueueRegisters(sizes.slice());
    this.pendingNotify = new Uint8Array(sizes.length);
    this.noQueues = Object.freeze(sizes.map(() => null));
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
  /** Stopped, or running with these queues. */
  get state(): RunState {
    return this.run;
  }
  /** The features the driver acknowledged (final after FEATURES_OK, or DRIVER_OK on legacy). */
  get negotiatedFeatures(): bigint {
    return this.features.acknowledged;
  }
  /** Everything the device offers through the modern interface (including VERSION_1). */
  get offered(): bigint {
    return this.features.offered;
  }
  /** Whether feature `bit` (0..63) was acknowledged. Allocation-free: fine on the hot path. */
  hasFeature(bit: number): boolean {
    return this.features.has(bit);
  }
  /** The interface the driver last used for status or features ('legacy' only on a transitional PCI device). */
  get activeInterface(): DriverInterface {
    return this.driverInterface;
  }
  /** Running queues, index-aligned (all null unless running). */
  get queues(): RunningQueues {
    const run = this.run;
    return run.kind === 'running' ? run.queues : this.noQueues;
  }
  /**
   * A 32-bit counter that moves whenever running queues stop: reset, a tier-1 stop, the driver
   * disabling one queue. It moves before the device's `onQueuesStopped` / `onQueueStopped` run, so a
   * loop that captured it before a call-out sees the change when the call-out returns.
   */
  get epoch(): number {
    return this.epochValue;
  }
  /** Whether `queue` is still the running queue at its index (false once stopped, reset or replaced). */
  isRunning(queue: Virtqueue): boolean {
    const run = this.run;
    return run.kind === 'running' && run.queues[queue.index] === queue;
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
  configChanged(notify: boolean): void {
    this.generation = (this.generation + 1) >>> 0;
    if (notify) this.raiseConfig();
  }

  /**
   * Tier 1 (§2.1.2): the device cannot go on. Records a diagnostic, sets DEVICE_NEEDS_RESET, stops
   * every queue, emits 'needs-reset' and raises the config interrupt (when DRIVER_OK is still set).
   * Never throws. A second error before the reset is recorded but not re-signalled.
   */
  needsReset(error: DeviceError<D>): void {
    const already = (this.statusValue & STATUS_DEVICE_NEEDS_RESET) !== 0;
    this.record(needsResetDiagnostic(error, already));
    if (already) return;
    this.statusValue |= STATUS_DEVICE_NEEDS_RESET;
    // Used elements other queues completed before the violation were completed properly: publish
    // them before the queues stop (as the failing queue does for its own, SplitQueue / PackedQueue
    // fail), so every used ring agrees with the device's counters (a receive pass that filled
    // receiveq1 and then met a broken chain on receiveq2). No interrupt: the config one follows.
    const run = this.run;
    if (run.kind === 'running') for (const q of run.queues) if (q !== null && !q.broken) q.publishUsed();
    this.stopQueues();
    // The event before the interrupt: a hypervisor that resets from onInterrupt does so after the
    // listeners heard of the error, and a listener that resets gets no interrupt after it.
    this.events.emit('needs-reset', error);
    this.raiseConfig();
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
    this.record({ ...extra, code, section: mistakeSection(code, extra, this.binding?.sections), message });
  }

  private record(input: DiagnosticInput): void {
    const d = this.log.record(input);
    this.events.emit('diagnostic', d);
  }

  // ---- transport-facing: binding and identity ----

  /** Attaches a transport. A device has exactly one transport; a second attach throws. */
  attachTransport(binding: TransportBinding): void {
    if (this.binding !== null) throw new Error('this device is already attached to a transport');
    this.binding = binding;
  }

  get numQueues(): number {
    return this.queueRegs.count;
  }
  /** Maximum size of queue `index`, 0 when the device has no such queue. */
  queueMaxSize(index: number): number {
    return this.queueRegs.maxSize(index);
  }

  // ---- transport-facing: status and features ----

  /** A driver write of the status field through `via`. */
  writeStatus(value: number, via: DriverInterface = 'modern'): void {
    this.driverInterface = via;
    const features = this.features;
    const t = nextStatus(this.statusValue, value, via, () => features.checkFeaturesOk(via, (f) => this.hooks.validateFeatures(f)));
    if (t.kind === 'reset') {
      this.reset();
      return;
    }
    for (const m of t.mistakes) this.reportDriverMistake(m.code, m.message, { value: m.value });
    const before = this.statusValue;
    const resets = this.resets;
    // A hook that threw during the feature check may have set DEVICE_NEEDS_RESET meanwhile.
    this.statusValue = t.status | (this.statusValue & STATUS_DEVICE_NEEDS_RESET);
    if ((t.newlySet & STATUS_FEATURES_OK) !== 0) {
      features.freeze();
      this.hooks.featuresOk(features.acknowledged);
    }
    if ((t.newlySet & STATUS_DRIVER_OK) !== 0) this.driverOk(via);
    // A hook (or a listener it triggered) that reset the device has reported status 0 already.
    if (this.statusValue !== before && this.resets === resets) this.events.emit('status', this.statusValue);
  }

  /** 32-bit window `select` of the offered features. */
  deviceFeatureWord(select: number): number {
    return this.features.deviceWord(select);
  }
  /** 32-bit window `select` of the driver's acknowledged features. */
  driverFeatureWord(select: number): number {
    return this.features.driverWord(select);
  }
  writeDriverFeatureWord(select: number, value: number): void {
    this.driverInterface = 'modern';
    const m = this.features.writeDriverWord(select, value);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { value: m.value });
  }
  /** Legacy interface: the 32 offered bits (never VERSION_1; ANY_LAYOUT always, §6.3). */
  legacyDeviceFeatures(): number {
    return Number(this.features.offeredLegacy & 0xffff_ffffn);
  }
  writeLegacyDriverFeatures(value: number): void {
    this.driverInterface = 'legacy';
    const m = this.features.writeLegacyDriverFeatures(value);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { value: m.value, section: m.code === 'features.not-offered' ? '4.1.4.10' : undefined });
  }

  // ---- transport-facing: queues ----

  queueConfig(index: number): Readonly<QueueConfig> | undefined {
    return this.queueRegs.config(index);
  }
  writeQueueSize(index: number, size: number): void {
    if (this.queueRefused(index, 'size', size)) return;
    this.queueRegs.setSize(index, size);
  }
  /** One 32-bit half of a ring area's address (the read-back is exactly what was written). */
  queueAddressWord(index: number, area: RingArea, half: 0 | 1): number {
    return this.queueRegs.has(index) ? this.queueRegs.addressWord(index, area, half) : 0;
  }
  writeQueueAddressWord(index: number, area: RingArea, half: 0 | 1, value: number): void {
    if (this.queueRefused(index, area, value)) return;
    this.queueRegs.setAddressWord(index, area, half, value);
  }
  /**
   * Legacy interface (§4.1.4.10): the whole queue at once from its page number — size (fixed at the
   * maximum there), the three ring addresses, and enabled; `null` (page number 0) disables it.
   */
  writeQueueLayout(index: number, layout: { size: number; descTable: number; availRing: number; usedRing: number } | null): void {
    if (layout === null) return this.writeQueueReady(index, false);
    if (this.queueRefused(index, 'layout', layout.descTable)) return;
    const q = this.queueRegs;
    q.setSize(index, layout.size);
    q.setAddress(index, 'descTable', layout.descTable);
    q.setAddress(index, 'availRing', layout.availRing);
    q.setAddress(index, 'usedRing', layout.usedRing);
    this.writeQueueReady(index, true);
  }

  /** The driver enables (true) or disables (false) a queue. */
  writeQueueReady(index: number, ready: boolean): void {
    const regs = this.queueRegs;
    if (this.noSuchQueue(index, 'enabled')) return;
    const config = regs.config(index)!;
    const run = this.run;
    if (!ready) {
      regs.setReady(index, false);
      this.pendingNotify[index] = 0;
      if (run.kind === 'running' && run.queues[index] !== null) this.stopQueue(run, index);
      return;
    }
    regs.setReady(index, true);
    // A queue enabled after DRIVER_OK starts at once: a new running state, and the device is told.
    if (!this.running || run.kind !== 'running' || run.queues[index] !== null) return;
    const q = this.activate(index, config);
    if (q === null) return;
    this.run = withQueueAt(run, index, q);
    this.hooks.queueStarted(index, q);
  }

  /**
   * The driver resets queue `index` (VIRTIO_F_RING_RESET, §2.6.1; MMIO QueueReset, PCI queue_reset):
   * the device stops it — no request executed, no notification, its chains dropped without a used
   * entry (§2.6.1.1.1) — and its registers return to their reset values (size = maximum, addresses
   * 0, not enabled), so the driver re-enables it as during initialisation (§2.6.1.2). The other
   * queues run on. Completes at once: the transport's reset register reads 0 afterwards.
   */
  resetQueue(index: number): void {
    const regs = this.queueRegs;
    if (this.noSuchQueue(index, 'reset')) return;
    if (!this.features.has(VIRTIO_F_RING_RESET)) {
      this.reportDriverMistake('queue.reset-not-negotiated', `driver reset queue ${index}, but VIRTIO_F_RING_RESET was not negotiated; ignored`, { queue: index });
      return;
    }
    regs.resetQueue(index);
    this.pendingNotify[index] = 0;
    const run = this.run;
    if (run.kind === 'running' && run.queues[index] !== null) this.stopQueue(run, index);
  }

  /** An available buffer notification for queue `index` (§2.9). */
  notify(index: number): void {
    // Fast path: the device runs (DRIVER_OK, no DEVICE_NEEDS_RESET) and queue `index` is running.
    // A running queue exists and is enabled (disabling or resetting it stops it), so the checks
    // below would all pass: every other case takes them and keeps its diagnostic.
    const run = this.run;
    if (run.kind === 'running' && (this.statusValue & (STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET)) === STATUS_DRIVER_OK) {
      const q = run.queues[index];
      if (q !== null && q !== undefined) {
        this.callNotify(index, q);
        return;
      }
    }
    const regs = this.queueRegs;
    if (!regs.has(index)) {
      this.reportDriverMistake('notify.queue-out-of-range', `driver notified queue ${index}, which the device does not have`, { queue: index });
      return;
    }
    if ((this.statusValue & STATUS_DEVICE_NEEDS_RESET) !== 0) return; // stopped until reset
    if (!regs.config(index)!.ready) {
      this.reportDriverMistake('notify.queue-not-ready', `driver notified queue ${index} before enabling it`, { queue: index });
      return;
    }
    if ((this.statusValue & STATUS_DRIVER_OK) === 0) {
      // §3.1.2: a legacy driver may use the device before DRIVER_OK; remember and deliver then.
      if (this.driverInterface === 'modern') {
        this.reportDriverMistake('notify.before-driver-ok', `driver notified queue ${index} before DRIVER_OK; delivered at DRIVER_OK`, { queue: index });
      }
      this.pendingNotify[index] = 1;
      return;
    }
    this.deliverNotify(index);
  }

  /** The hot path of a kick: the handler called directly, guarded as in core-hooks.ts. */
  private deliverNotify(index: number): void {
    const run = this.run;
    if (run.kind !== 'running') return;
    const q = run.queues[index];
    if (q === null || q === undefined) return;
    this.callNotify(index, q);
  }

  private callNotify(index: number, q: Virtqueue): void {
    try {
      this.handlers.onQueueNotify(index, q);
    } catch (e) {
      this.needsReset(hookThrewError('onQueueNotify', e));
    }
  }

  // ---- transport-facing: configuration space ----

  /** Config generation (§2.5); transports show all 32 bits (MMIO) or the low 8 (PCI). */
  get configGeneration(): number {
    return this.generation;
  }
  get configSize(): number {
    return this.config.size;
  }
  readConfig(offset: number, width: number): number {
    const r = this.config.read(offset, width, this.fieldExists);
    if (r.mistake !== null) this.reportDriverMistake(r.mistake.code, r.mistake.message, { offset, width });
    return r.value;
  }
  writeConfig(offset: number, width: number, value: number): void {
    const m = this.config.write(offset, width, value, this.fieldExists);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { offset, width, value });
  }
  /** §2.5.2: offered features decide existence until negotiation ends, negotiated ones after. */
  private readonly fieldExists = (mask: bigint): boolean => {
    const f = this.features;
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

  /** Full reset (§2.4): status 0, features, queue registers, ISR, then the device's onReset. */
  private reset(): void {
    this.resets++;
    this.stopQueues();
    const was = this.statusValue;
    this.statusValue = 0;
    this.features.reset();
    this.queueRegs.reset();
    this.pendingNotify.fill(0);
    this.setIsr(0);
    this.hooks.reset();
    if (was !== 0) this.events.emit('status', 0);
  }

  private driverOk(via: DriverInterface): void {
    if ((this.statusValue & STATUS_DEVICE_NEEDS_RESET) !== 0) return; // broken before DRIVER_OK: stays stopped
    const features = this.features;
    if (via === 'legacy') {
      // §3.1.2: legacy negotiation ends at first use; there was no FEATURES_OK to refuse with.
      features.freeze();
      const reason = this.hooks.validateFeatures(features.acknowledged);
      if (reason !== null) this.reportDriverMistake('features.rejected-by-device', reason, { value: features.acknowledged, section: '3.1.2' });
      this.hooks.featuresOk(features.acknowledged);
      if ((this.statusValue & STATUS_DEVICE_NEEDS_RESET) !== 0) return;
    }
    const regs = this.queueRegs;
    const queues = activateEnabled(regs, this.noQueues, (i, config) => this.activate(i, config));
    if (queues === null) return;
    const run = runningWith(queues);
    this.run = run;
    this.hooks.driverOk(run.queues, features.acknowledged);
    for (let i = 0; i < regs.count; i++) {
      if (this.pendingNotify[i] === 0) continue;
      this.pendingNotify[i] = 0;
      if (this.running) this.deliverNotify(i);
    }
  }

  /**
   * The driver stopped using running queue `index` (MMIO QueueReady = 0, §4.2.2.2; a legacy queue
   * page number of 0, §4.1.4.10; a queue reset, §2.6.1): the device forgets it and its chains; the other queues go on.
   * Enabling it again activates it afresh from what the driver programs then. (The modern PCI
   * interface has no such write without VIRTIO_F_RING_RESET: its transport refuses it.)
   */
  private stopQueue(run: Running, index: number): void {
    this.run = withQueueAt(run, index, null);
    this.epochValue = (this.epochValue + 1) >>> 0;
    this.hooks.queueStopped(index);
  }

  /** Activates one queue; a configuration that cannot run is a tier-1 error (null). */
  private activate(index: number, config: QueueConfig): Virtqueue | null {
    const result = this.tryActivate(index, config, this.features.acknowledged);
    if (!('code' in result)) return result;
    this.needsReset(result);
    return null;
  }

  /** Configuration → running queue under `features`, or why not (core-run-state.ts). Changes nothing. */
  private tryActivate(index: number, config: Readonly<QueueConfig>, features: bigint): Virtqueue | QueueFault | CoreError {
    const sizeSection = this.binding?.sections?.['queue.size-above-max'];
    return activateQueueUnder(this.memory, index, config, features, this.queueRegs.maxSize(index), sizeSection);
  }

  // ---- device state (core-state.ts encodes and checks; API.md "Device state") ----

  /** Everything the core holds that the driver depends on, as a value (core-state-build.ts). */
  exportState(): CoreState {
    return exportCoreState(this.stateParts());
  }

  /**
   * Checks `state` against this core and builds its running queues (core-state-build.ts). Throws
   * `DeviceStateError`; changes nothing.
   */
  prepareState(state: CoreState): PreparedCoreState {
    return prepareCoreState(state, this.stateParts(), this.noQueues, STOPPED, (i, config, features) => this.tryActivate(i, config, features));
  }

  /**
   * Applies a prepared state. Calls no handler (the concrete device re-wires its own paths) and
   * leaves the interrupt line alone until `resendIsr()`.
   */
  commitState(p: PreparedCoreState): void {
    const s = p.state;
    commitCoreParts(s, this.queueRegs, this.pendingNotify, this.features);
    this.statusValue = s.status;
    this.isrValue = s.isr;
    this.generation = s.generation;
    this.driverInterface = s.driverInterface;
    this.run = p.run;
  }

  private stateParts(): CoreStateParts {
    return {
      deviceType: this.deviceType,
      features: this.features,
      regs: this.queueRegs,
      pendingNotify: this.pendingNotify,
      run: this.run,
      status: this.statusValue,
      isr: this.isrValue,
      generation: this.generation,
      driverInterface: this.driverInterface,
    };
  }

  /** Tells the transport the ISR (its interrupt line follows): the last step of a restore. */
  resendIsr(): void {
    this.binding?.isrChanged(this.isrValue);
  }

  /** The attached transport's state hooks (undefined: no transport, or one without registers). */
  get transportState(): TransportStateHooks | undefined {
    return this.binding?.state;
  }

  private stopQueues(): void {
    const hadQueues = hasRunningQueue(this.run);
    this.run = STOPPED;
    this.epochValue = (this.epochValue + 1) >>> 0;
    this.pendingNotify.fill(0);
    if (hadQueues) this.hooks.queuesStopped();
  }

  /** Records 'queue.not-available' when the device has no queue `index` (the driver `verb` it). */
  private noSuchQueue(index: number, verb: 'enabled' | 'reset'): boolean {
    if (this.queueRegs.has(index)) return false;
    this.reportDriverMistake('queue.not-available', `driver ${verb} queue ${index}, which the device does not have`, { queue: index });
    return true;
  }

  private queueRefused(index: number, what: RingArea | 'size' | 'layout', value: number): boolean {
    const m = this.queueRegs.refuseChange(index, what);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { queue: index, value });
    return m !== null;
  }
}
