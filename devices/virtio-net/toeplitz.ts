// The Toeplitz hash that RSS uses (VIRTIO 1.2 §5.1.6.4.3: "Toeplitz hash calculation"; the
// algorithm is Microsoft's "RSS hashing functions"): for every bit of the input that is set, from
// the first byte's most significant bit on, the 32 bits of the key that start at that bit position
// are XOR-ed into the result.
//
// Per frame this costs one table lookup per input byte: `setKey` precomputes, for each input byte
// position and each byte value, the XOR of the key windows that value selects (TOEPLITZ_INPUT_MAX
// positions × 256 values, 36 KiB, built once per key). Key bits past the key's length count as
// zero (a driver may send a key shorter than the 40 bytes an IPv6 4-tuple needs).
//
// No allocation after construction: the table is reused for every key.

/** Longest hash input (§5.1.6.4.3.3: two IPv6 addresses and two ports). */
export const TOEPLITZ_INPUT_MAX = 36;
/** Longest key the table covers: every bit of the longest input needs 32 bits of key. */
export const TOEPLITZ_KEY_MAX = TOEPLITZ_INPUT_MAX + 4;

export class Toeplitz {
  /** table[pos * 256 + v]: the hash contribution of byte value v at input position pos. */
  private readonly table = new Int32Array(TOEPLITZ_INPUT_MAX * 256);
  private readonly keyBytes = new Uint8Array(TOEPLITZ_KEY_MAX + 4);
  private readonly windows = new Int32Array(8);

  /** Uses `key[0 .. length)` (bytes beyond TOEPLITZ_KEY_MAX are never reached by an input). */
  setKey(key: Uint8Array, offset = 0, length = key.length): void {
    const k = this.keyBytes;
    k.fill(0);
    const n = Math.min(length, TOEPLITZ_KEY_MAX);
    for (let i = 0; i < n; i++) k[i] = key[offset + i]!;
    const w = this.windows;
    const t = this.table;
    for (let pos = 0; pos < TOEPLITZ_INPUT_MAX; pos++) {
      // The 32-bit key window starting at bit 8*pos + b, for b = 0 (MSB of the byte) .. 7.
      const hi = ((k[pos]! << 24) | (k[pos + 1]! << 16) | (k[pos + 2]! << 8) | k[pos + 3]!) >>> 0;
      const next = k[pos + 4]!;
      for (let b = 0; b < 8; b++) w[b] = b === 0 ? hi | 0 : ((hi << b) | (next >>> (8 - b))) | 0;
      const base = pos * 256;
      t[base] = 0;
      for (let v = 1; v < 256; v++) {
        const low = v & -v; // lowest set bit; bit 7 - log2(low) counted from the MSB
        t[base + v] = t[base + (v ^ low)]! ^ w[7 - (31 - Math.clz32(low))]!;
      }
    }
  }

  /**
   * Hashes `bytes[at .. at + length)` as input positions `pos ..`: a hash input made of pieces
   * that are not contiguous in the frame (addresses, then ports) is hashed piece by piece, each
   * result XOR-ed into `acc`. Returns the new accumulator (a signed 32-bit value; `>>> 0` for
   * the unsigned hash). `pos + length` must not exceed TOEPLITZ_INPUT_MAX.
   */
  update(acc: number, bytes: Uint8Array, at: number, length: number, pos: number): number {
    const t = this.table;
    let base = pos * 256;
    for (let i = 0; i < length; i++, base += 256) acc ^= t[base + bytes[at + i]!]!;
    return acc;
  }
}
