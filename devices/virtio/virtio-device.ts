// What a transport attaches to (VIRTIO 1.2 §4.1 PCI, §4.2 MMIO): a device that owns a `VirtioCore`
// (virtio-core.ts) and shows it. `VirtioDevice` holds no state and no hooks: every member forwards
// to `core`, which the concrete device builds in its own constructor once its fields exist —
// composition, not a base class with a lazy core. It is also the device's event emitter: the core
// emits its events ('diagnostic', 'needs-reset', 'status') on it, beside the device's own.
//
// Transports call the members below, never `core` directly, so an embedder (or a test) that wraps
// a device method sees every access.

import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';
import type { QueueConfig } from '../../virtqueue/virtqueue.js';
import { TypedEmitter } from '../../lib/base/events.js';
import type { CoreEvents, RunState, RunningQueues } from './core-types.js';
import type { DriverInterface } from './device-status.js';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';
import type { RingArea } from './queue-registers.js';
import type { TransportBinding } from './transport-binding.js';
import type { DiagnosticExtra, VirtioCore } from './virtio-core.js';

export type { DiagnosticExtra } from './virtio-core.js';
export type { DeviceError } from './core-errors.js';

export abstract class VirtioDevice<E extends CoreEvents = CoreEvents> extends TypedEmitter<E> {
  /** The virtio core this device owns (set in the concrete device's constructor). */
  abstract readonly core: VirtioCore;

  // ---- state, for the embedder and tests ----

  /** Guest memory the rings and buffers live in. */
  get memory(): GuestMemoryAccess {
    return this.core.memory;
  }
  /** Virtio device ID (§5). */
  get deviceType(): number {
    return this.core.deviceType;
  }
  /** Device status (§2.1). */
  get status(): number {
    return this.core.status;
  }
  /** DRIVER_OK is set and the device does not need a reset. */
  get running(): boolean {
    return this.core.running;
  }
  /** Stopped, or running with these queues. */
  get state(): RunState {
    return this.core.state;
  }
  get negotiatedFeatures(): bigint {
    return this.core.negotiatedFeatures;
  }
  get offered(): bigint {
    return this.core.offered;
  }
  hasFeature(bit: number): boolean {
    return this.core.hasFeature(bit);
  }
  get activeInterface(): DriverInterface {
    return this.core.activeInterface;
  }
  /** Running queues, index-aligned (all null unless running). */
  get queues(): RunningQueues {
    return this.core.queues;
  }
  /** The last diagnostics (bounded), oldest first. */
  diagnostics(): readonly Diagnostic[] {
    return this.core.diagnostics();
  }
  /** How many diagnostics with `code` were recorded over the device's life. */
  diagnosticCount(code: string): number {
    return this.core.diagnosticCount(code);
  }
  diagnosticCounts(): ReadonlyMap<string, number> {
    return this.core.diagnosticCounts();
  }

  // ---- transport-facing (see VirtioCore for each) ----

  reportDriverMistake(code: DiagnosticCode, message: string, extra?: DiagnosticExtra): void;
  reportDriverMistake(code: string, message: string, extra: DiagnosticExtra & { section: string }): void;
  reportDriverMistake(code: string, message: string, extra?: DiagnosticExtra): void {
    this.core.reportDriverMistake(code as DiagnosticCode, message, extra);
  }
  attachTransport(binding: TransportBinding): void {
    this.core.attachTransport(binding);
  }
  get numQueues(): number {
    return this.core.numQueues;
  }
  queueMaxSize(index: number): number {
    return this.core.queueMaxSize(index);
  }
  writeStatus(value: number, via: DriverInterface = 'modern'): void {
    this.core.writeStatus(value, via);
  }
  deviceFeatureWord(select: number): number {
    return this.core.deviceFeatureWord(select);
  }
  driverFeatureWord(select: number): number {
    return this.core.driverFeatureWord(select);
  }
  writeDriverFeatureWord(select: number, value: number): void {
    this.core.writeDriverFeatureWord(select, value);
  }
  legacyDeviceFeatures(): number {
    return this.core.legacyDeviceFeatures();
  }
  writeLegacyDriverFeatures(value: number): void {
    this.core.writeLegacyDriverFeatures(value);
  }
  queueConfig(index: number): Readonly<QueueConfig> | undefined {
    return this.core.queueConfig(index);
  }
  writeQueueSize(index: number, size: number): void {
    this.core.writeQueueSize(index, size);
  }
  queueAddressWord(index: number, area: RingArea, half: 0 | 1): number {
    return this.core.queueAddressWord(index, area, half);
  }
  writeQueueAddressWord(index: number, area: RingArea, half: 0 | 1, value: number): void {
    this.core.writeQueueAddressWord(index, area, half, value);
  }
  writeQueueLayout(index: number, layout: { size: number; descTable: number; availRing: number; usedRing: number } | null): void {
    this.core.writeQueueLayout(index, layout);
  }
  writeQueueReady(index: number, ready: boolean): void {
    this.core.writeQueueReady(index, ready);
  }
  notify(index: number): void {
    this.core.notify(index);
  }
  resetQueue(index: number): void {
    this.core.resetQueue(index);
  }
  get configGeneration(): number {
    return this.core.configGeneration;
  }
  get configSize(): number {
    return this.core.configSize;
  }
  readConfig(offset: number, width: number): number {
    return this.core.readConfig(offset, width);
  }
  writeConfig(offset: number, width: number, value: number): void {
    this.core.writeConfig(offset, width, value);
  }
  get isr(): number {
    return this.core.isr;
  }
  acknowledgeInterrupt(bits: number): void {
    this.core.acknowledgeInterrupt(bits);
  }
  readAndClearIsr(): number {
    return this.core.readAndClearIsr();
  }
}
