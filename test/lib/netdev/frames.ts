// Small frame builders for the real-kernel netdev tests (lib/packet/ is another issue): ARP
// (RFC 826), IPv4 (RFC 791) with its header checksum, ICMP echo (RFC 792), UDP (RFC 768) with a
// complete checksum or, for checksum offload, only the pseudo-header sum (VIRTIO 1.2 §5.1.6.2:
// with VIRTIO_NET_HDR_F_NEEDS_CSUM the device completes it from csum_start / csum_offset).

export const mac = (s: string): number[] => s.split(':').map((h) => parseInt(h, 16));
export const ip4 = (s: string): number[] => s.split('.').map((d) => parseInt(d, 10));
const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];

/** One's-complement sum of 16-bit words (not inverted). */
export function onesSum(bytes: ArrayLike<number>, start = 0, end = bytes.length, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += ((bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0)) >>> 0;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
export const inetChecksum = (bytes: ArrayLike<number>, start = 0, end = bytes.length): number => ~onesSum(bytes, start, end) & 0xffff;

export function arpRequest(srcMac: string, srcIp: string, targetIp: string): Uint8Array {
  return Uint8Array.from([
    ...mac('ff:ff:ff:ff:ff:ff'), ...mac(srcMac), 0x08, 0x06,
    0, 1, 0x08, 0x00, 6, 4, 0, 1, // Ethernet/IPv4, request
    ...mac(srcMac), ...ip4(srcIp), 0, 0, 0, 0, 0, 0, ...ip4(targetIp),
    ...new Array<number>(18).fill(0), // pad to the 60-byte minimum
  ]);
}

/** Parses an ARP reply: sender MAC and IP, or null. */
export function parseArpReply(f: Uint8Array): { senderMac: string; senderIp: string } | null {
  if (f.length < 42 || f[12] !== 0x08 || f[13] !== 0x06 || f[20] !== 0 || f[21] !== 2) return null;
  const hex = [...f.subarray(22, 28)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  return { senderMac: hex, senderIp: [...f.subarray(28, 32)].join('.') };
}

function ipv4Header(src: string, dst: string, proto: number, payloadLen: number, id = 1): number[] {
  const h = [0x45, 0, ...be16(20 + payloadLen), ...be16(id), 0x40, 0, 64, proto, 0, 0, ...ip4(src), ...ip4(dst)];
  const c = inetChecksum(h);
  h[10] = c >> 8;
  h[11] = c & 0xff;
  return h;
}

export function icmpEcho(dstMac: string, srcMac: string, srcIp: string, dstIp: string, ident: number, seq: number): Uint8Array {
  const payload = Array.from({ length: 32 }, (_, i) => (i * 7) & 0xff);
  const icmp = [8, 0, 0, 0, ...be16(ident), ...be16(seq), ...payload];
  const c = inetChecksum(icmp);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  return Uint8Array.from([...mac(dstMac), ...mac(srcMac), 0x08, 0x00, ...ipv4Header(srcIp, dstIp, 1, icmp.length), ...icmp]);
}

/** Parses an ICMP echo reply: identifier and sequence, or null. */
export function parseEchoReply(f: Uint8Array): { ident: number; seq: number; from: string } | null {
  if (f.length < 42 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 1) return null;
  const ihl = (f[14]! & 0x0f) * 4;
  const icmp = 14 + ihl;
  if (f[icmp] !== 0) return null;
  return { ident: (f[icmp + 4]! << 8) | f[icmp + 5]!, seq: (f[icmp + 6]! << 8) | f[icmp + 7]!, from: [...f.subarray(26, 30)].join('.') };
}

/**
 * A UDP/IPv4 frame. `partial`: the UDP checksum field holds only the folded pseudo-header sum,
 * as a guest with checksum offload leaves it. Returns the frame and the checksum offsets.
 */
export function udpFrame(dstMac: string, srcMac: string, srcIp: string, dstIp: string, sport: number, dport: number, payload: Uint8Array, partial: boolean): { frame: Uint8Array; csumStart: number; csumOffset: number } {
  const udpLen = 8 + payload.length;
  const udp = [...be16(sport), ...be16(dport), ...be16(udpLen), 0, 0, ...payload];
  const pseudo = [...ip4(srcIp), ...ip4(dstIp), 0, 17, ...be16(udpLen)];
  const pseudoSum = onesSum(pseudo);
  const c = partial ? pseudoSum : ~onesSum(udp, 0, udp.length, pseudoSum) & 0xffff || 0xffff;
  udp[6] = c >> 8;
  udp[7] = c & 0xff;
  const frame = Uint8Array.from([...mac(dstMac), ...mac(srcMac), 0x08, 0x00, ...ipv4Header(srcIp, dstIp, 17, udpLen), ...udp]);
  return { frame, csumStart: 14 + 20, csumOffset: 6 };
}

/**
 * A 12-byte virtio_net_hdr (§5.1.6: flags u8, gso_type u8, hdr_len, gso_size, csum_start,
 * csum_offset, num_buffers, all le16) with NEEDS_CSUM (flags bit 0) and the given offsets.
 */
export function needsCsumHeader(csumStart: number, csumOffset: number): Uint8Array {
  const h = new Uint8Array(12);
  const v = new DataView(h.buffer);
  h[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
  v.setUint16(6, csumStart, true);
  v.setUint16(8, csumOffset, true);
  return h;
}
