// What the NIC records and reports (VIRTIO 1.2 §5.1): one union of its diagnostic codes with the
// section each enforces, its tier-1 errors, and the one interface through which the transmit,
// receive and control paths report to the device.
//
// Control-command codes (ctrl-command.ts) are listed with the control queue's section; each such
// diagnostic carries the section of the command class it breaks (e.g. '5.1.6.5.3' for VLAN), which
// is more precise and is what gets recorded.

import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import type { DeviceError, QueueFault } from '../virtio/core-errors.js';
import type { CtrlDiagnosticCode } from './ctrl-command.js';
import type { TxHeaderFaultCode } from './tx-header.js';

/** Every code the NIC records, with the section it enforces. */
export const NET_DIAGNOSTIC_SECTIONS = Object.freeze({
  // transmit (§5.1.6.2)
  'tx.writable-descriptor': '2.7.4.2', // a device-writable descriptor in a transmit chain (ignored)
  'tx.header-short': '5.1.6.2', // fewer readable bytes than the virtio-net header
  'tx.frame-too-large': '5.1.6.2', // a frame above TX_FRAME_MAX
  'tx.queue-inactive': '5.1.6.5.6.1', // a notification on a transmitq beyond the pairs in use
  // the transmit header against the negotiated features (tx-header.ts): forwarded, refused in strict mode
  'tx.needs-csum-not-negotiated': '5.1.6.2.1', // NEEDS_CSUM without VIRTIO_NET_F_CSUM (flags must be 0)
  'tx.flags-rx-only': '5.1.6.2.1', // DATA_VALID or RSC_INFO on transmit
  'tx.flags-unknown': '5.1.6.2.2', // flag bits no section defines: ignored, even in strict mode
  'tx.gso-not-negotiated': '5.1.6.2.1', // gso_type without its HOST_TSO4 / TSO6 / UFO / USO
  'tx.gso-type-unknown': '5.1.6.2', // a gso_type §5.1.6 does not define, or ECN with no type
  'tx.gso-ecn-not-negotiated': '5.1.6.2.1', // the ECN bit without HOST_ECN (a SHOULD NOT)
  'tx.gso-without-needs-csum': '5.1.6.2.1', // GSO MUST come with NEEDS_CSUM
  'tx.gso-size-zero': '5.1.6.2.1', // GSO MUST set gso_size
  'tx.csum-outside-frame': '5.1.6.2.1', // NEEDS_CSUM with csum_start + csum_offset + 2 past the frame
  'tx.hdr-len-outside-frame': '5.1.6.2.1', // a GSO frame whose hdr_len is longer than the frame
  'tx.num-buffers-nonzero': '5.1.6.2.1', // num_buffers MUST be 0 on transmit
  // the MTU (§5.1.4, VIRTIO_NET_F_MTU negotiated)
  'tx.frame-above-mtu': '5.1.4.2', // a non-GSO frame longer than mtu + Ethernet header: not passed on
  // receive (§5.1.6.3)
  'rx.buffer-shorter-than-header': '5.1.6.3.1', // returned unused
  'rx.buffer-too-small': '5.1.6.3.1', // the frame is dropped, the buffer kept
  'rx.no-writable-descriptor': '5.1.6.3.1', // tier 1: a receive chain with nothing to write
  // control queue (§5.1.6.5)
  'ctrl.missing-header': '5.1.6.5', // tier 1: no room for class and command
  'ctrl.missing-ack': '5.1.6.5', // tier 1: no room for the ack
  'ctrl.payload-too-large': '5.1.6.5', // larger than the device gathers: VIRTIO_NET_ERR
  'ctrl.unknown-class': '5.1.6.5',
  'ctrl.unknown-command': '5.1.6.5',
  'ctrl.short-payload': '5.1.6.5',
  'ctrl.trailing-bytes': '5.1.6.5',
  'ctrl.feature-not-negotiated': '5.1.6.5',
  'ctrl.rx-value-not-boolean': '5.1.6.5.1',
  'ctrl.mac-addr-length': '5.1.6.5.2',
  'ctrl.mac-table-malformed': '5.1.6.5.2',
  'ctrl.mac-table-wrong-kind': '5.1.6.5.2',
  'ctrl.vlan-out-of-range': '5.1.6.5.3',
  'ctrl.announce-not-pending': '5.1.6.5.4',
  'ctrl.mq-pairs-out-of-range': '5.1.6.5.6',
  'ctrl.offloads-not-negotiated': '5.1.6.5.8.1',
  'ctrl.rss-table-length': '5.1.6.5.7.2',
  'ctrl.rss-queue-out-of-range': '5.1.6.5.7.2',
  'ctrl.rss-max-tx-vq-out-of-range': '5.1.6.5.7.1',
  'ctrl.rss-key-length': '5.1.6.5.7.1',
  'ctrl.rss-key-missing': '5.1.6.5.7.1',
  'ctrl.rss-hash-types-unsupported': '5.1.6.5.7.2',
  'ctrl.hash-config-reserved': '5.1.6.5.6.4',
  // VIRTIO 1.3 / 1.4 control classes (their own numbering: coalescing.ts, device-stats.ts)
  'ctrl.coal-vq-not-data-queue': '5.1.6.5.9.5', // VIRTIO 1.3: VQ_SET / VQ_GET vq_index not an enabled data queue
  'ctrl.result-too-short': '5.1.6.5', // no room after the ack for the command's result
  'ctrl.stats-request-malformed': '5.1.6.5.11.2', // VIRTIO 1.4: GET data not a whole number of 16-byte entries
  'ctrl.stats-vq-out-of-range': '5.1.6.5.11.12', // VIRTIO 1.4: vq_index past the device's queues
  'ctrl.stats-type-invalid': '5.1.6.5.11.12', // VIRTIO 1.4: unknown type, or not valid for that queue, or not supported
  // configuration space (§5.1.4)
  'config.mac-write': '5.1.4.2', // a modern driver wrote config `mac` (ignored)
} as const);

/** A code the NIC records (the core's and the transports' are in devices/virtio/diagnostics.ts). */
export type NetDiagnosticCode = keyof typeof NET_DIAGNOSTIC_SECTIONS;

// Every control-command code has a row (a compile-time check).
type MissingCtrlCodes = Exclude<CtrlDiagnosticCode, NetDiagnosticCode>;
const _everyCtrlCodeListed: [MissingCtrlCodes] extends [never] ? true : MissingCtrlCodes = true;
void _everyCtrlCodeListed;
// … and every transmit header fault.
type MissingTxCodes = Exclude<TxHeaderFaultCode, NetDiagnosticCode>;
const _everyTxCodeListed: [MissingTxCodes] extends [never] ? true : MissingTxCodes = true;
void _everyTxCodeListed;

/** The NIC's own tier-1 errors (the driver left no place for the device's answer). */
export type NetDeviceError =
  /** §5.1.6.3.1: a receive chain with no device-writable descriptor. */
  | { readonly code: 'rx.no-writable-descriptor'; readonly section: '5.1.6.3.1'; readonly queue: number; readonly head: number }
  /** §5.1.6.5: a control chain with no room for class and command, or for the ack. */
  | {
      readonly code: 'ctrl.missing-header' | 'ctrl.missing-ack';
      readonly section: '5.1.6.5';
      readonly queue: number;
      readonly head: number;
      readonly readable: number;
      readonly writable: number;
    };

/** Every tier-1 error of the NIC: its queues', the core's, its own. */
export type NetError = DeviceError<NetDeviceError>;

/**
 * What a datapath (transmit, receive, control) reports to the device, and how it learns that its
 * queue stopped during one of its own call-outs (every method here, the backend, listeners can
 * reach the transport and reset the device): it captures `epoch()` before a call-out and, when it
 * moved, stops at once unless `isRunning(queue)`.
 */
export interface PathReport {
  /** The core's run epoch (VirtioCore.epoch): moves whenever running queues stop. */
  epoch(): number;
  /** Whether `queue` is still the running queue at its index (VirtioCore.isRunning). */
  isRunning(queue: Virtqueue): boolean;
  /** A used-buffer notification for queue `index` (the core decides the interrupt). */
  raiseUsed(index: number): void;
  /**
   * A data queue published used entries: `packets` frames (receive: delivered; transmit: chains
   * completed), `wanted` the ring's answer (the driver wants a notification). The device sends,
   * or holds it back while coalescing (coalescing.ts).
   */
  usedPublished(index: number, packets: number, wanted: boolean): void;
  /** Tier 1: the driver broke the contract on a queue. */
  violation(error: QueueFault | NetDeviceError): void;
  /** A driver mistake (recorded with the code's section; `value`: the offending value, when there is one). */
  mistake(code: NetDiagnosticCode, message: string, queue: number, value?: number): void;
}
