// Layout of struct virtio_net_hdr (VIRTIO 1.2 §5.1.6; legacy length rule §5.1.6.1). Flags and GSO
// types are in constants.ts. All multi-byte fields are little-endian (legacy: guest-endian; this
// model only runs little-endian guests).
//
//   0  u8   flags
//   1  u8   gso_type
//   2  le16 hdr_len
//   4  le16 gso_size
//   6  le16 csum_start
//   8  le16 csum_offset
//  10  le16 num_buffers   (present with VERSION_1, or with MRG_RXBUF on the legacy interface)
//  12  le32 hash_value    (HASH_REPORT negotiated: §5.1.6.4.4)
//  16  le16 hash_report
//  18  le16 padding_reserved
//
// The driver's header is 20 bytes with HASH_REPORT, on both directions (Linux and QEMU use one
// length); the backend keeps its 10 or 12 (`vnetHeaderLength`), as QEMU's host_hdr_len does.

import { NetFeature, VirtioFeature, hasFeature } from './constants.js';

export const VnetHdrOffset = {
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
  NUM_BUFFERS: 10,
} as const;

/** struct virtio_net_hdr without `num_buffers`: legacy device without MRG_RXBUF. */
/**
 * The offloads in effect on one path, as a small bit set (the per-frame test never touches a
 * bigint): what the driver accepts on receive (RxOffload, from GUEST_*) or negotiated for transmit
 * (TxOffload, from CSUM / HOST_*). USO is GUEST_USO4 or GUEST_USO6 on receive (the header does not
 * say which IP version; see rx-header.ts checkGso), HOST_USO on transmit.
 */
export const OffloadBit = {
  CSUM: 1,
  TSO4: 2,
  TSO6: 4,
  UFO: 8,
  ECN: 16,
  USO: 32,
} as const;

export const VNET_HDR_LEN = 10;
/** With `num_buffers` (struct virtio_net_hdr_mrg_rxbuf; every VERSION_1 device). */
export const VNET_HDR_MRG_LEN = 12;

export type VnetHeaderLength = typeof VNET_HDR_LEN | typeof VNET_HDR_MRG_LEN;

/**
 * Header length for the negotiated features: 12 with VERSION_1 (§5.1.6: num_buffers is always
 * present) or MRG_RXBUF (§5.1.6.1: legacy drivers only had it with MRG_RXBUF), else 10.
 */
export function vnetHeaderLength(features: bigint): VnetHeaderLength {
  return hasFeature(features, VirtioFeature.VERSION_1) || hasFeature(features, NetFeature.MRG_RXBUF)
    ? VNET_HDR_MRG_LEN
    : VNET_HDR_LEN;
}

/** With HASH_REPORT (struct virtio_net_hdr_v1_hash). */
export const VNET_HDR_HASH_LEN = 20;

/** The header length the driver uses: 20 with HASH_REPORT (modern only), else `vnetHeaderLength`. */
export function guestHeaderLength(features: bigint): VnetHeaderLength | typeof VNET_HDR_HASH_LEN {
  return hasFeature(features, NetFeature.HASH_REPORT) && hasFeature(features, VirtioFeature.VERSION_1) ? VNET_HDR_HASH_LEN : vnetHeaderLength(features);
}
