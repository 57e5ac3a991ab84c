// What every virtio device shares and its transports (VIRTIO 1.2 §2, §3.1, §4.1 PCI, §4.2 MMIO).

export { VirtioDevice } from './virtio-device.js';
export { VirtioCore } from './virtio-core.js';
export type { DiagnosticExtra } from './virtio-core.js';
export type { DeviceSpec, CoreHandlers, CoreEvents, RunState, RunningQueues } from './core-types.js';
export { deviceErrorSection } from './core-errors.js';
export type { DeviceError, CoreError, QueueFault, SpecificError } from './core-errors.js';
export { VirtioMmioTransport, MMIO_CONFIG, MMIO_MAGIC, MMIO_VENDOR_QEMU } from './mmio-transport.js';
export { VirtioPciTransport } from './pci-transport.js';
export type { PciTransportOptions, PciBarInfo } from './pci-transport.js';
export type { TransportOptions, TransportBinding } from './transport-binding.js';
export { ISR_QUEUE, ISR_CONFIG } from './transport-binding.js';
export { ConfigSpace } from './config-space.js';
export type { ConfigField, ConfigValue } from './config-space.js';
export {
  STATUS_ACKNOWLEDGE,
  STATUS_DRIVER,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_FAILED,
  nextStatus,
  statusBitNames,
} from './device-status.js';
export type { DriverInterface, StatusTransition, StatusMistake } from './device-status.js';
export {
  featureBit,
  describeBits,
  VIRTIO_F_NOTIFY_ON_EMPTY,
  VIRTIO_F_ANY_LAYOUT,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_ORDER_PLATFORM,
  VIRTIO_F_SR_IOV,
  VIRTIO_F_NOTIFICATION_DATA,
  VIRTIO_F_NOTIF_CONFIG_DATA,
  VIRTIO_F_RING_RESET,
} from './features.js';
export { DIAGNOSTIC_SECTIONS, DIAGNOSTIC_CAPACITY } from './diagnostics.js';
export type { Diagnostic, DiagnosticCode } from './diagnostics.js';
export type { RingArea } from './queue-registers.js';
