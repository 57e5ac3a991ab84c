// MAC addresses as text (IEEE 802 48-bit addresses, VIRTIO 1.2 §5.1.4 `mac`): the API's and the
// host tools' "52:54:00:12:34:56" form to bytes and back (QEMU's lowercase `%.2x:…` form, as
// query-rx-filter reports it), and the group bit. Callers that report bad text with their own
// error type use `macFromText`; API options use `parseMac`, which throws a TypeError naming them.

/** Bytes in a MAC address. */
export const MAC_LENGTH = 6;

const MAC_TEXT = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/** The 6 bytes of six colon-separated hex pairs (any case), or undefined for anything else. */
export function macFromText(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string' || !MAC_TEXT.test(text)) return undefined;
  const out = new Uint8Array(MAC_LENGTH);
  for (let i = 0; i < MAC_LENGTH; i++) out[i] = parseInt(text.slice(i * 3, i * 3 + 2), 16);
  return out;
}

/**
 * Parses `"52:54:00:12:34:56"` into 6 bytes. Throws a TypeError naming `option` for anything else:
 * this is for API input, never for guest data.
 */
export function parseMac(text: string, option = 'mac'): Uint8Array {
  const bytes = macFromText(text);
  if (bytes === undefined) {
    throw new TypeError(
      `${option} must be a MAC address of six hex pairs separated by colons, like "52:54:00:12:34:56"; got ${
        typeof text === 'string' ? JSON.stringify(text) : String(text)
      }`,
    );
  }
  return bytes;
}

/** Lowercase colon form of the 6 bytes at `offset`. */
export function formatMac(bytes: Uint8Array, offset = 0): string {
  let s = '';
  for (let i = 0; i < MAC_LENGTH; i++) {
    const b = bytes[offset + i]!;
    s += (i === 0 ? '' : ':') + (b < 16 ? '0' : '') + b.toString(16);
  }
  return s;
}

/** Group (multicast or broadcast) address: the I/G bit, bit 0 of the first byte. */
export function isGroupMac(bytes: Uint8Array, offset = 0): boolean {
  return (bytes[offset]! & 1) === 1;
}
