// Shared fixtures for the device-core and transport tests: guest memory, an echo device, a
// transport, and a recorder of the interrupt line.

import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../../devices/virtio/mmio-transport.js';
import { VirtioPciTransport } from '../../../devices/virtio/pci-transport.js';
import { DriverRing } from '../../support/driver-ring.js';
import { EchoDevice } from './echo-device.js';
import type { EchoOptions } from './echo-device.js';

/** Records every level change of an interrupt line. */
export class IrqLine {
  level = false;
  readonly changes: boolean[] = [];
  readonly onInterrupt = (asserted: boolean): void => {
    this.level = asserted;
    this.changes.push(asserted);
  };
}

export const MEMORY_SIZE = 1 << 20;

export interface Rig<T> {
  memory: GuestMemory;
  device: EchoDevice;
  transport: T;
  irq: IrqLine;
}

export function mmioRig(options: Partial<EchoOptions> = {}): Rig<VirtioMmioTransport> {
  const memory = new GuestMemory(MEMORY_SIZE);
  const device = new EchoDevice({ memory, ...options });
  const irq = new IrqLine();
  return { memory, device, transport: new VirtioMmioTransport(device, { onInterrupt: irq.onInterrupt }), irq };
}

export function pciRig(options: Partial<EchoOptions> & { legacy?: boolean; modern?: boolean } = {}): Rig<VirtioPciTransport> {
  const memory = new GuestMemory(MEMORY_SIZE);
  const device = new EchoDevice({ memory, ...options });
  const irq = new IrqLine();
  const transport = new VirtioPciTransport(device, { onInterrupt: irq.onInterrupt, legacy: options.legacy ?? false, ...(options.modern !== undefined ? { modern: options.modern } : {}) });
  return { memory, device, transport, irq };
}

/** A ring for queue 0 at a fixed place (size 8 unless given). */
export function ring(memory: GuestMemory, size = 8, base = 0x1000): DriverRing {
  return new DriverRing(memory, { size, base });
}

/** Text helpers for echo chains. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
