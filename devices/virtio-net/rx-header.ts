// The virtio-net header a backend hands over with a received frame, checked against what the driver
// accepts now (VIRTIO 1.2 §5.1.6.4, device requirements of "Processing of Incoming Packets"). The
// backend's header is host input: a TAP whose TUNSETOFFLOAD failed, a redirector input with
// vnet_hdr_support, any header-carrying netdev may send offloads the driver never enabled. So the
// device never copies it to the guest unchecked:
//
// - Without GUEST_CSUM the device MUST set `flags` to 0 and SHOULD supply a fully checksummed
//   packet. NEEDS_CSUM: the device completes the checksum itself — the ones' complement sum over
//   [csum_start, end of frame) stored big-endian at csum_start + csum_offset (0 stored as 0xffff,
//   as UDP requires and TCP allows) — and delivers flags 0 with csum_start / csum_offset 0.
//   DATA_VALID may be set only with GUEST_CSUM, so it is cleared (the frame is passed unchanged).
// - A GSO type whose GUEST_TSO4 / GUEST_TSO6 / GUEST_UFO is not in effect (§5.1.6.4: MUST NOT),
//   the ECN bit without GUEST_ECN (SHOULD NOT), and GSO_UDP_L4 without GUEST_USO4 or GUEST_USO6:
//   the frame is dropped and counted ('gso-not-negotiated'). Segmenting a 64 KiB super-frame in the
//   device would be a large feature of its own (IPv4 ids, TCP sequence numbers and flags, UDP
//   fragmentation); QEMU 7.2 does not segment either — it relies on TUNSETOFFLOAD to keep the host
//   from sending such frames, which is exactly what fails here.
// - NEEDS_CSUM whose csum_start + csum_offset + 2 passes the end of the frame: dropped and counted
//   ('csum-out-of-frame') whether or not the driver has GUEST_CSUM — the device MUST set offsets
//   that give a fully checksummed packet, and completing it would write outside the frame.
// - Anything else §5.1.6.4 forbids the device to deliver: dropped and counted ('header-malformed'):
//   a header shorter than struct virtio_net_hdr; flags beyond NEEDS_CSUM and DATA_VALID (RSC_INFO
//   needs RSC_EXT, never offered); an unknown GSO type, or ECN without one; a GSO frame without
//   NEEDS_CSUM or with gso_size 0 (the device MUST set both); a GSO frame whose hdr_len is longer
//   than the frame (hdr_len is a hint the driver MUST NOT rely on, but a header length past the
//   packet is no header length at all). A non-GSO frame's hdr_len and gso_size are passed as they
//   are: nothing in §5.1.6.4 constrains them and the driver does not read them.
// `num_buffers` is never taken from the backend: it is the device's to write (rx-path.ts).
//
// These are host problems, not the driver's: they are counted in `device.stats()` (rx.drops by
// reason, rx.csumCompleted) and never recorded as diagnostics, like the other backend-side drops
// ('oversize', 'link-down').
//
// Cost: a frame with flags and gso_type 0 (every frame of a backend without offloads) costs one
// test; an offloaded frame the driver accepts costs a few integer tests. Nothing allocates.

import { NetFeature, VnetHdrFlag, VnetHdrGso, hasFeature } from './constants.js';
import { OffloadBit, VNET_HDR_LEN, VnetHdrOffset } from './vnet-header.js';
import { finishChecksum, onesSum } from '../../lib/packet/checksum.js';

/** The receive offloads in effect (vnet-header.ts OffloadBit; USO: GUEST_USO4 or GUEST_USO6). */
export const RxOffload = OffloadBit;

/**
 * The offload bits for a guest-offloads word (feature bit numbers, as negotiated or as the last
 * GUEST_OFFLOADS_SET left them). A GSO frame must come with NEEDS_CSUM (§5.1.6.4), which needs
 * GUEST_CSUM, so TSO4 / TSO6 / UFO / ECN count only together with CSUM (GUEST_OFFLOADS_SET may
 * turn CSUM off and leave TSO4 on: QEMU does not check the combination).
 */
export function rxOffloadBits(offloads: bigint): number {
  if (!hasFeature(offloads, NetFeature.GUEST_CSUM)) return 0;
  let bits: number = RxOffload.CSUM;
  if (hasFeature(offloads, NetFeature.GUEST_TSO4)) bits |= RxOffload.TSO4;
  if (hasFeature(offloads, NetFeature.GUEST_TSO6)) bits |= RxOffload.TSO6;
  if (hasFeature(offloads, NetFeature.GUEST_UFO)) bits |= RxOffload.UFO;
  if (hasFeature(offloads, NetFeature.GUEST_ECN)) bits |= RxOffload.ECN;
  if (hasFeature(offloads, NetFeature.GUEST_USO4) || hasFeature(offloads, NetFeature.GUEST_USO6)) bits |= RxOffload.USO;
  return bits;
}

/** What to do with a frame given its backend header. */
export const RxHeaderVerdict = {
  /** Deliver it with the (possibly rewritten) header. */
  PASS: 0,
  /** Deliver it with flags 0, after storing `csumValue()` at frame offset `csumField`. */
  COMPLETE_CSUM: 1,
  GSO_NOT_NEGOTIATED: 2,
  CSUM_OUT_OF_FRAME: 3,
  MALFORMED: 4,
} as const;
export type RxHeaderVerdictValue = (typeof RxHeaderVerdict)[keyof typeof RxHeaderVerdict];

/** Flag bits a device may set on the receive side without RSC_EXT (§5.1.6.4). */
const KNOWN_FLAGS = VnetHdrFlag.NEEDS_CSUM | VnetHdrFlag.DATA_VALID;

function le16(h: Uint8Array, at: number): number {
  return h[at]! | (h[at + 1]! << 8);
}

/** One per receive path: the offloads in effect, and where the last COMPLETE_CSUM verdict puts the sum. */
export class RxHeaderCheck {
  /** RxOffload bits in effect (rxOffloadBits); 0 until the device starts. */
  offloads = 0;
  /** After COMPLETE_CSUM: frame offset where the sum starts. */
  csumStart = 0;
  /** After COMPLETE_CSUM: frame offset of the 2-byte checksum field (csumStart + csum_offset). */
  csumField = 0;

  /**
   * Checks `h` — the device's own copy of the backend's header (its first VNET_HDR_LEN bytes;
   * `sourceLength` is how long the backend's header was) — for a frame of `frameLength` bytes, and
   * rewrites in place what the driver must not see (flags the driver did not enable).
   */
  check(h: Uint8Array, sourceLength: number, frameLength: number): RxHeaderVerdictValue {
    if (sourceLength < VNET_HDR_LEN) return RxHeaderVerdict.MALFORMED;
    const flags = h[VnetHdrOffset.FLAGS]!;
    const gso = h[VnetHdrOffset.GSO_TYPE]!;
    if ((flags | gso) === 0) return RxHeaderVerdict.PASS;
    if ((flags & ~KNOWN_FLAGS) !== 0) return RxHeaderVerdict.MALFORMED;
    const offloads = this.offloads;
    if (gso !== VnetHdrGso.NONE) {
      const v = checkGso(h, flags, gso, frameLength, offloads);
      if (v !== RxHeaderVerdict.PASS) return v;
    }
    if ((flags & VnetHdrFlag.NEEDS_CSUM) !== 0) {
      const start = le16(h, VnetHdrOffset.CSUM_START);
      const field = start + le16(h, VnetHdrOffset.CSUM_OFFSET);
      if (field + 2 > frameLength) return RxHeaderVerdict.CSUM_OUT_OF_FRAME;
      if ((offloads & RxOffload.CSUM) !== 0) return RxHeaderVerdict.PASS;
      // No GUEST_CSUM (so no GSO either: checkGso dropped it). The device completes the sum.
      this.csumStart = start;
      this.csumField = field;
      h[VnetHdrOffset.FLAGS] = 0;
      h.fill(0, VnetHdrOffset.CSUM_START, VnetHdrOffset.CSUM_OFFSET + 2);
      return RxHeaderVerdict.COMPLETE_CSUM;
    }
    // DATA_VALID alone: only with GUEST_CSUM.
    if ((offloads & RxOffload.CSUM) === 0) h[VnetHdrOffset.FLAGS] = 0;
    return RxHeaderVerdict.PASS;
  }
}

function checkGso(h: Uint8Array, flags: number, gso: number, frameLength: number, offloads: number): RxHeaderVerdictValue {
  const type = gso & ~VnetHdrGso.ECN;
  let needs: number;
  switch (type) {
    case VnetHdrGso.TCPV4: needs = RxOffload.TSO4; break;
    case VnetHdrGso.TCPV6: needs = RxOffload.TSO6; break;
    case VnetHdrGso.UDP: needs = RxOffload.UFO; break;
    // USO (VIRTIO 1.3): GUEST_USO4 or GUEST_USO6. Which one the frame needs is its IP version,
    // which the header does not carry; the device accepts it with either (the host was told both).
    case VnetHdrGso.UDP_L4: needs = RxOffload.USO; break;
    default: return RxHeaderVerdict.MALFORMED; // unknown, or ECN without a type
  }
  if (
    (flags & VnetHdrFlag.NEEDS_CSUM) === 0 ||
    le16(h, VnetHdrOffset.GSO_SIZE) === 0 ||
    le16(h, VnetHdrOffset.HDR_LEN) > frameLength
  ) {
    return RxHeaderVerdict.MALFORMED;
  }
  if (needs === 0 || (offloads & needs) === 0) return RxHeaderVerdict.GSO_NOT_NEGOTIATED;
  if ((gso & VnetHdrGso.ECN) !== 0 && (offloads & RxOffload.ECN) === 0) return RxHeaderVerdict.GSO_NOT_NEGOTIATED;
  return RxHeaderVerdict.PASS;
}

/**
 * The checksum to store for a partially checksummed frame: the ones' complement of the ones'
 * complement sum of [start, end of frame), the field included as the host left it (it holds the
 * pseudo-header sum). A result of 0 is stored as 0xffff (the same value in ones' complement; UDP
 * reserves 0 for "no checksum").
 */
export function completedChecksum(frame: Uint8Array, start: number): number {
  const sum = finishChecksum(onesSum(frame, start, frame.length));
  return sum === 0 ? 0xffff : sum;
}
