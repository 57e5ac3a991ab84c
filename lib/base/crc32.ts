// CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF) —
// the checksum of ZIP, PNG and Ethernet's FCS; "123456789" gives 0xCBF43926. No spec section of
// VIRTIO: the device state format (state-codec.ts) checksums its bytes with it.
//
// Byte-at-a-time with one 256-entry table, computed once on first use.

/** The reflected IEEE 802.3 polynomial. */
const POLYNOMIAL = 0xedb88320;

let table: Uint32Array | null = null;

function crcTable(): Uint32Array {
  if (table !== null) return table;
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  table = t;
  return t;
}

/** CRC-32 of `bytes[start, end)` (the whole array by default), as an unsigned 32-bit number. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const t = crcTable();
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
