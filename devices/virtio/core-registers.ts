// The register side of the virtio core (VIRTIO 1.2 §2.2 feature bits, §2.5 configuration space,
// §2.6 virtqueue registers, §4.1.4.10 legacy interface): what a driver reads and programs through
// its transport — feature windows, queue size and ring addresses, configuration fields — and the
// diagnostic log its mistakes go to. None of it is on the notification or interrupt path.
//
// `CoreRegisters` is the base of `VirtioCore` (virtio-core.ts) and nothing else's: abstract, not
// exported from the package. A base class and not a composed part because these members are
// VirtioCore's own public surface (the facade and transports call `core.writeQueueSize` and the
// like), and because the hot path in virtio-core.ts reads the same fields (`features`, `binding`)
// with no object between. What the registers become — status, running queues, notifications,
// interrupts, tier 1, reset, device state — is virtio-core.ts.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import type { QueueConfig, Virtqueue } from '../../virtqueue/virtqueue.js';
import type { EventSink } from '../../lib/base/events.js';
import { ConfigSpace } from './config-space.js';
import { checkCoreArguments } from './core-checks.js';
import { mistakeSection } from './core-diagnostics.js';
import type { DiagnosticExtra } from './core-diagnostics.js';
import type { CoreError, QueueFault, SpecificError } from './core-errors.js';
import { activateQueueUnder } from './core-run-state.js';
import type { CoreEvents, DeviceSpec } from './core-types.js';
import type { DriverInterface } from './device-status.js';
import { DiagnosticLog } from './diagnostics.js';
import type { Diagnostic, DiagnosticCode, DiagnosticInput } from './diagnostics.js';
import { FeatureNegotiation, VIRTIO_F_VERSION_1, featureBit } from './features.js';
import { QueueRegisters } from './queue-registers.js';
import type { RingArea } from './queue-registers.js';
import type { TransportBinding, TransportStateHooks } from './transport-binding.js';

export abstract class CoreRegisters<D extends SpecificError = SpecificError> {
  /** Guest memory the rings and buffers live in. */
  readonly memory: GuestMemoryAccess;
  /** Virtio device ID (§5). */
  readonly deviceType: number;
  /** Where the core's events go (the owning device, usually). */
  readonly events: EventSink<CoreEvents<D>>;

  protected readonly features: FeatureNegotiation;
  protected readonly config: ConfigSpace;
  protected readonly queueRegs: QueueRegisters;
  protected generation = 0;
  protected driverInterface: DriverInterface = 'modern';
  protected binding: TransportBinding | null = null;
  private readonly log = new DiagnosticLog();

  /** Throws (programmer error) for a bad memory or spec. */
  protected constructor(spec: DeviceSpec, memory: GuestMemoryAccess, events: EventSink<CoreEvents<D>>) {
    checkCoreArguments(spec, memory);
    this.memory = memory;
    this.deviceType = spec.deviceType;
    this.events = events;
    this.features = new FeatureNegotiation(spec.offeredFeatures | featureBit(VIRTIO_F_VERSION_1));
    this.config = new ConfigSpace([...spec.configFields]);
    this.queueRegs = new QueueRegisters(spec.queueMaxSizes.slice());
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

  protected record(input: DiagnosticInput): void {
    const d = this.log.record(input);
    this.events.emit('diagnostic', d);
  }

  // ---- binding and identity ----

  /** Attaches a transport. A device has exactly one transport; a second attach throws. */
  attachTransport(binding: TransportBinding): void {
    if (this.binding !== null) throw new Error('this device is already attached to a transport');
    this.binding = binding;
  }
  /** The attached transport's state hooks (undefined: no transport, or one without registers). */
  get transportState(): TransportStateHooks | undefined {
    return this.binding?.state;
  }

  get numQueues(): number {
    return this.queueRegs.count;
  }
  /** Maximum size of queue `index`, 0 when the device has no such queue. */
  queueMaxSize(index: number): number {
    return this.queueRegs.maxSize(index);
  }

  // ---- features ----

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

  // ---- queue registers (enabling, disabling and resetting a queue: virtio-core.ts) ----

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

  /** Whether a write of `what` to queue `index` is refused (recorded); the registers are unchanged then. */
  protected queueRefused(index: number, what: RingArea | 'size' | 'layout', value: number): boolean {
    const m = this.queueRegs.refuseChange(index, what);
    if (m !== null) this.reportDriverMistake(m.code, m.message, { queue: index, value });
    return m !== null;
  }

  /** Configuration → running queue under `features`, or why not (core-run-state.ts). Changes nothing. */
  protected tryActivate(index: number, config: Readonly<QueueConfig>, features: bigint): Virtqueue | QueueFault | CoreError {
    const sizeSection = this.binding?.sections?.['queue.size-above-max'];
    return activateQueueUnder(this.memory, index, config, features, this.queueRegs.maxSize(index), sizeSection);
  }

  // ---- configuration space ----

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
}
