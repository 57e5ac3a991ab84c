// The virtio-net header a driver puts in front of a transmitted frame, checked against the
// negotiated features (VIRTIO 1.2 §5.1.6.2 Packet Transmission and its driver requirements
// §5.1.6.2.1, device requirements §5.1.6.2.2). The frame's length against the MTU (§5.1.4.2) is
// mtu-limit.ts.
//
// The rules, each a fault bit with its diagnostic code (net-diagnostics.ts has the sections):
//
//   fault                    code                           rule broken
//   NEEDS_CSUM_NO_CSUM       tx.needs-csum-not-negotiated   §5.1.6.2.1: without CSUM, flags MUST be 0
//   FLAGS_RX_ONLY            tx.flags-rx-only               §5.1.6.2.1: MUST NOT set DATA_VALID, RSC_INFO
//   FLAGS_UNKNOWN            tx.flags-unknown               bits 3..7 undefined; §5.1.6.2.2: the device MUST ignore them
//   GSO_NOT_NEGOTIATED       tx.gso-not-negotiated          §5.1.6.2.1: TCPV4/TCPV6/UDP/UDP_L4 only with HOST_TSO4/TSO6/UFO/USO
//   GSO_TYPE_UNKNOWN         tx.gso-type-unknown            §5.1.6.2: a type §5.1.6 does not define, or ECN with no type
//   GSO_ECN_NOT_NEGOTIATED   tx.gso-ecn-not-negotiated      §5.1.6.2.1: ECN without HOST_ECN (SHOULD NOT)
//   GSO_WITHOUT_NEEDS_CSUM   tx.gso-without-needs-csum      §5.1.6.2.1: GSO MUST come with NEEDS_CSUM
//   GSO_SIZE_ZERO            tx.gso-size-zero               §5.1.6.2.1: GSO MUST set gso_size (the MSS)
//   CSUM_OUTSIDE_FRAME       tx.csum-outside-frame          §5.1.6.2.1: csum_start + csum_offset + 2 within the frame
//   HDR_LEN_OUTSIDE_FRAME    tx.hdr-len-outside-frame       §5.1.6.2.1: a GSO frame's hdr_len past the frame
//   NUM_BUFFERS_NONZERO      tx.num-buffers-nonzero         §5.1.6.2.1: num_buffers MUST be 0
//
// Not checked, and why:
// - `hdr_len` of a non-GSO frame: the SHOULD ("not less than the headers") is one Linux itself
//   does not keep (it sends 0), and the device MUST NOT rely on it (§5.1.6.2.2).
// - `hdr_len` equal to the exact header length (the MUST with VIRTIO_NET_F_GUEST_HDRLEN): this
//   device never offers GUEST_HDRLEN, so `hdr_len` is always a hint; only one past the frame is a
//   mistake (no header is longer than its packet; Linux's tun refuses such a frame too).
// - `csum_start` / `csum_offset` without NEEDS_CSUM: the device MUST NOT use them (§5.1.6.2.2).
// - GSO frames against the MTU: §5.1.4.2 limits frames with gso_type NONE (or ECN alone); a GSO
//   frame's segments are bounded by its gso_size.
//
// What the device does (tx-path.ts): by default what QEMU 7.2 does — it forwards the frame with
// the header as the driver wrote it (QEMU copies the header to its backend unchecked, and the
// host kernel decides) — and records a diagnostic per rule broken. With `strict: true` a frame
// breaking any rule but FLAGS_UNKNOWN (which the device MUST ignore) is refused: completed with
// used length 0, not passed on, counted `tx.errors['bad-header']`. A frame above the MTU is never
// passed on (a driver MUST NOT send it; counted `tx.errors['above-mtu']`).
//
// Cost: a frame whose flags, gso_type and num_buffers are all 0 (every frame of a driver without
// offloads) costs one test; an offloaded frame a few integer tests. Nothing allocates.

import { NetFeature, VnetHdrFlag, VnetHdrGso, hasFeature } from './constants.js';
import { OffloadBit, VnetHdrOffset } from './vnet-header.js';

/** One bit per rule; `check` returns the OR of the rules the header breaks (0: none). */
export const TxHeaderFault = {
  NEEDS_CSUM_NO_CSUM: 1 << 0,
  FLAGS_RX_ONLY: 1 << 1,
  FLAGS_UNKNOWN: 1 << 2,
  GSO_NOT_NEGOTIATED: 1 << 3,
  GSO_TYPE_UNKNOWN: 1 << 4,
  GSO_ECN_NOT_NEGOTIATED: 1 << 5,
  GSO_WITHOUT_NEEDS_CSUM: 1 << 6,
  GSO_SIZE_ZERO: 1 << 7,
  CSUM_OUTSIDE_FRAME: 1 << 8,
  HDR_LEN_OUTSIDE_FRAME: 1 << 9,
  NUM_BUFFERS_NONZERO: 1 << 10,
} as const;

/** The diagnostic code of each fault bit, in bit order (the order diagnostics are recorded in). */
export const TX_HEADER_FAULT_CODES = [
  [TxHeaderFault.NEEDS_CSUM_NO_CSUM, 'tx.needs-csum-not-negotiated'],
  [TxHeaderFault.FLAGS_RX_ONLY, 'tx.flags-rx-only'],
  [TxHeaderFault.FLAGS_UNKNOWN, 'tx.flags-unknown'],
  [TxHeaderFault.GSO_NOT_NEGOTIATED, 'tx.gso-not-negotiated'],
  [TxHeaderFault.GSO_TYPE_UNKNOWN, 'tx.gso-type-unknown'],
  [TxHeaderFault.GSO_ECN_NOT_NEGOTIATED, 'tx.gso-ecn-not-negotiated'],
  [TxHeaderFault.GSO_WITHOUT_NEEDS_CSUM, 'tx.gso-without-needs-csum'],
  [TxHeaderFault.GSO_SIZE_ZERO, 'tx.gso-size-zero'],
  [TxHeaderFault.CSUM_OUTSIDE_FRAME, 'tx.csum-outside-frame'],
  [TxHeaderFault.HDR_LEN_OUTSIDE_FRAME, 'tx.hdr-len-outside-frame'],
  [TxHeaderFault.NUM_BUFFERS_NONZERO, 'tx.num-buffers-nonzero'],
] as const;

export type TxHeaderFaultCode = (typeof TX_HEADER_FAULT_CODES)[number][1];

/** Faults that `strict: true` refuses the frame for: all but unknown flag bits, which §5.1.6.2.2 says the device MUST ignore. */
export const STRICT_REFUSED_FAULTS = ~TxHeaderFault.FLAGS_UNKNOWN & 0x7ff;

/** The transmit offloads negotiated (vnet-header.ts OffloadBit; USO: HOST_USO). */
export const TxOffload = OffloadBit;

/** The TxOffload bits for a negotiated feature word. */
export function txOffloadBits(features: bigint): number {
  let bits = 0;
  if (hasFeature(features, NetFeature.CSUM)) bits |= TxOffload.CSUM;
  if (hasFeature(features, NetFeature.HOST_TSO4)) bits |= TxOffload.TSO4;
  if (hasFeature(features, NetFeature.HOST_TSO6)) bits |= TxOffload.TSO6;
  if (hasFeature(features, NetFeature.HOST_UFO)) bits |= TxOffload.UFO;
  if (hasFeature(features, NetFeature.HOST_ECN)) bits |= TxOffload.ECN;
  if (hasFeature(features, NetFeature.HOST_USO)) bits |= TxOffload.USO;
  return bits;
}

/** Flag bits §5.1.6 defines; the others are unknown. */
const DEFINED_FLAGS = VnetHdrFlag.NEEDS_CSUM | VnetHdrFlag.DATA_VALID | VnetHdrFlag.RSC_INFO;
/** Flags only a device sets (§5.1.6.2.1: the driver MUST NOT). */
const RX_ONLY_FLAGS = VnetHdrFlag.DATA_VALID | VnetHdrFlag.RSC_INFO;

function le16(h: Uint8Array, at: number): number {
  return h[at]! | (h[at + 1]! << 8);
}

/** One per transmit path: what the driver negotiated, set at DRIVER_OK (and after a restore). */
export class TxHeaderCheck {
  /** TxOffload bits negotiated (txOffloadBits). */
  offloads = 0;
  /** The header has `num_buffers` (12 bytes). */
  hasNumBuffers = true;

  /** The faults (TxHeaderFault bits) of header `h` for a frame of `frameLength` bytes; 0 when it keeps every rule. */
  check(h: Uint8Array, frameLength: number): number {
    const flags = h[VnetHdrOffset.FLAGS]!;
    const gso = h[VnetHdrOffset.GSO_TYPE]!;
    const numBuffers = this.hasNumBuffers ? h[VnetHdrOffset.NUM_BUFFERS]! | h[VnetHdrOffset.NUM_BUFFERS + 1]! : 0;
    if ((flags | gso | numBuffers) === 0) return 0;
    const offloads = this.offloads;
    let faults = 0;
    if (numBuffers !== 0) faults |= TxHeaderFault.NUM_BUFFERS_NONZERO;
    const needsCsum = (flags & VnetHdrFlag.NEEDS_CSUM) !== 0;
    if (flags !== 0) {
      if (needsCsum && (offloads & TxOffload.CSUM) === 0) faults |= TxHeaderFault.NEEDS_CSUM_NO_CSUM;
      if ((flags & RX_ONLY_FLAGS) !== 0) faults |= TxHeaderFault.FLAGS_RX_ONLY;
      if ((flags & ~DEFINED_FLAGS) !== 0) faults |= TxHeaderFault.FLAGS_UNKNOWN;
      if (needsCsum && le16(h, VnetHdrOffset.CSUM_START) + le16(h, VnetHdrOffset.CSUM_OFFSET) + 2 > frameLength) {
        faults |= TxHeaderFault.CSUM_OUTSIDE_FRAME;
      }
    }
    if (gso !== VnetHdrGso.NONE) faults |= this.checkGso(h, gso, needsCsum, frameLength);
    return faults;
  }

  private checkGso(h: Uint8Array, gso: number, needsCsum: boolean, frameLength: number): number {
    const offloads = this.offloads;
    let needs: number;
    switch (gso & ~VnetHdrGso.ECN) {
      case VnetHdrGso.TCPV4: needs = TxOffload.TSO4; break;
      case VnetHdrGso.TCPV6: needs = TxOffload.TSO6; break;
      case VnetHdrGso.UDP: needs = TxOffload.UFO; break;
      case VnetHdrGso.UDP_L4: needs = TxOffload.USO; break;
      default: {
        // An undefined type, or the ECN bit with no type.
        let f: number = TxHeaderFault.GSO_TYPE_UNKNOWN;
        if ((gso & VnetHdrGso.ECN) !== 0 && (offloads & TxOffload.ECN) === 0) f |= TxHeaderFault.GSO_ECN_NOT_NEGOTIATED;
        return f;
      }
    }
    let faults = 0;
    if ((offloads & needs) === 0) faults |= TxHeaderFault.GSO_NOT_NEGOTIATED;
    if ((gso & VnetHdrGso.ECN) !== 0 && (offloads & TxOffload.ECN) === 0) faults |= TxHeaderFault.GSO_ECN_NOT_NEGOTIATED;
    if (!needsCsum) faults |= TxHeaderFault.GSO_WITHOUT_NEEDS_CSUM;
    if (le16(h, VnetHdrOffset.GSO_SIZE) === 0) faults |= TxHeaderFault.GSO_SIZE_ZERO;
    if (le16(h, VnetHdrOffset.HDR_LEN) > frameLength) faults |= TxHeaderFault.HDR_LEN_OUTSIDE_FRAME;
    return faults;
  }
}

/** A sentence for the diagnostic of `code` (the mistake path only: it builds a string). */
export function txFaultMessage(code: TxHeaderFaultCode, h: Uint8Array, frameLength: number, head: number): string {
  const flags = h[VnetHdrOffset.FLAGS]!;
  const gso = h[VnetHdrOffset.GSO_TYPE]!;
  const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;
  const at = `transmit chain ${head}`;
  switch (code) {
    case 'tx.needs-csum-not-negotiated':
      return `${at}: flags NEEDS_CSUM without VIRTIO_NET_F_CSUM negotiated (flags must be 0)`;
    case 'tx.flags-rx-only':
      return `${at}: flags ${hex(flags)} set DATA_VALID or RSC_INFO, which a driver must not set`;
    case 'tx.flags-unknown':
      return `${at}: flags ${hex(flags)} set bits the spec does not define (ignored)`;
    case 'tx.gso-not-negotiated':
      return `${at}: gso_type ${hex(gso)} without its HOST_TSO4 / HOST_TSO6 / HOST_UFO / HOST_USO feature negotiated`;
    case 'tx.gso-type-unknown':
      return `${at}: gso_type ${hex(gso)} is not a defined segmentation type`;
    case 'tx.gso-ecn-not-negotiated':
      return `${at}: gso_type ${hex(gso)} has the ECN bit without VIRTIO_NET_F_HOST_ECN negotiated`;
    case 'tx.gso-without-needs-csum':
      return `${at}: gso_type ${hex(gso)} without NEEDS_CSUM in flags`;
    case 'tx.gso-size-zero':
      return `${at}: gso_type ${hex(gso)} with gso_size 0`;
    case 'tx.csum-outside-frame':
      return `${at}: csum_start ${le16(h, VnetHdrOffset.CSUM_START)} + csum_offset ${le16(h, VnetHdrOffset.CSUM_OFFSET)} + 2 passes the ${frameLength}-byte frame`;
    case 'tx.hdr-len-outside-frame':
      return `${at}: hdr_len ${le16(h, VnetHdrOffset.HDR_LEN)} is longer than the ${frameLength}-byte frame`;
    case 'tx.num-buffers-nonzero':
      return `${at}: num_buffers ${le16(h, VnetHdrOffset.NUM_BUFFERS)} (must be 0 on transmit)`;
  }
}

/** The offending header value a fault's diagnostic carries. */
export function txFaultValue(code: TxHeaderFaultCode, h: Uint8Array): number {
  switch (code) {
    case 'tx.needs-csum-not-negotiated':
    case 'tx.flags-rx-only':
    case 'tx.flags-unknown':
      return h[VnetHdrOffset.FLAGS]!;
    case 'tx.gso-size-zero':
      return 0;
    case 'tx.csum-outside-frame':
      return le16(h, VnetHdrOffset.CSUM_START) + le16(h, VnetHdrOffset.CSUM_OFFSET);
    case 'tx.hdr-len-outside-frame':
      return le16(h, VnetHdrOffset.HDR_LEN);
    case 'tx.num-buffers-nonzero':
      return le16(h, VnetHdrOffset.NUM_BUFFERS);
    default:
      return h[VnetHdrOffset.GSO_TYPE]!;
  }
}
