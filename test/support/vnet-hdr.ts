// struct virtio_net_hdr (VIRTIO 1.2 §5.1.6) built field by field for tests, independently of the
// device's own header code: what a driver writes before a transmitted frame or a backend hands over
// with a received one.

/** The header's fields; an omitted one is 0. */
export interface HeaderFields {
  flags?: number;
  gso?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
  numBuffers?: number;
}

/** The header as bytes: 12 (with num_buffers: VERSION_1 or MRG_RXBUF) or 10 (legacy without MRG_RXBUF), little-endian. */
export function hdr(h: HeaderFields, length: 10 | 12 = 12): Uint8Array {
  const b = new Uint8Array(length);
  const dv = new DataView(b.buffer);
  b[0] = h.flags ?? 0;
  b[1] = h.gso ?? 0;
  dv.setUint16(2, h.hdrLen ?? 0, true);
  dv.setUint16(4, h.gsoSize ?? 0, true);
  dv.setUint16(6, h.csumStart ?? 0, true);
  dv.setUint16(8, h.csumOffset ?? 0, true);
  if (length === 12) dv.setUint16(10, h.numBuffers ?? 0, true);
  return b;
}
