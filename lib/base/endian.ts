// Big- and little-endian integers in byte arrays: network byte order for packet headers and the
// chardev framing (RFC 1700), little-endian for virtio structures (VIRTIO 1.2 §1.4: le16, le32).
// Reads return unsigned numbers. Offsets must be in range — callers check lengths first (a byte
// past the end reads as undefined, which the arithmetic would quietly turn into 0).

/** Big-endian u16 at `o`. */
export function be16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

/** Big-endian u32 at `o` (unsigned). */
export function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Little-endian u16 at `o`. */
export function le16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

/** Little-endian u32 at `o` (unsigned; the top byte is added, so no sign to undo). */
export function le32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
}

/** Writes the low 16 bits of `v` big-endian at `o`. */
export function writeBe16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

/** Writes the low 32 bits of `v` big-endian at `o`. */
export function writeBe32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Writes the low 16 bits of `v` little-endian at `o`. */
export function writeLe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
