// The device-specific configuration space as a declarative field table (VIRTIO 1.2 §2.5; the
// transports place it at MMIO 0x100 (§4.2.2), behind the PCI DEVICE_CFG capability (§4.1.4.6) or
// after the legacy header (§4.1.4.10)).
//
// A concrete device lists its fields (name, offset, width, the feature that makes the field exist,
// access, read/write callbacks). Reads are byte-granular: any width at any offset, assembled
// little-endian from the bytes of the fields it covers (Linux reads the MAC one byte at a time;
// the legacy interface allows any width, §4.1.4.10). Bytes of absent fields and padding read 0.
// Writes to a read-write field merge the written bytes into the field's current value and hand the
// whole new value to the field's `write`.
//
// Field existence (§2.5.2): before FEATURES_OK a field exists when its feature is offered; after,
// when it was negotiated. The device core supplies that predicate on every access.

/** A field's value: a number for widths 1/2/4, a bigint for 8, six bytes for a MAC (width 6). */
export type ConfigValue = number | bigint | Uint8Array;

/** One field of the device configuration space. */
export interface ConfigField {
  readonly name: string;
  /** Byte offset from the start of the device configuration space. */
  readonly offset: number;
  /** Bytes; 6 is for a MAC address. */
  readonly width: 1 | 2 | 4 | 6 | 8;
  /** Feature mask (e.g. `featureBit(VIRTIO_NET_F_MTU)`) without which the field does not exist. */
  readonly feature?: bigint;
  readonly access: 'ro' | 'rw';
  /** Current value (called on every driver read that touches the field; never on the hot path). */
  read(): ConfigValue;
  /** New value after a driver write (only for `access: 'rw'`). Gets a number / bigint / 6-byte array by width. */
  write?(value: ConfigValue): void;
}

/** What went wrong with a config access (a `config.*` diagnostic). */
export interface ConfigMistake {
  readonly code: 'config.out-of-range' | 'config.field-absent' | 'config.write-read-only';
  readonly message: string;
  readonly field?: string;
}

/** Result of a config read: the value, and a mistake when the access was (partly) bad. */
export interface ConfigReadResult {
  value: number;
  mistake: ConfigMistake | null;
}

/**
 * The field table with byte-granular access. Throws at construction for a malformed table (a
 * programmer error in the concrete device): overlapping fields, bad widths or offsets.
 */
export class ConfigSpace {
  /** Bytes from 0 to the end of the last field. */
  readonly size: number;
  private readonly fields: readonly ConfigField[];
  /** Field index covering each byte, or -1 for padding. */
  private readonly owner: Int16Array;
  /** Scratch for assembling a field's bytes (reused: config reads are not per frame, but cheap anyway). */
  private readonly scratch = new Uint8Array(8);

  constructor(fields: readonly ConfigField[]) {
    let size = 0;
    for (const f of fields) {
      if (![1, 2, 4, 6, 8].includes(f.width)) throw new RangeError(`config field ${f.name}: width must be 1, 2, 4, 6 or 8`);
      if (!Number.isInteger(f.offset) || f.offset < 0) throw new RangeError(`config field ${f.name}: offset must be a non-negative integer`);
      if (f.access === 'rw' && typeof f.write !== 'function') throw new TypeError(`config field ${f.name}: access 'rw' needs a write()`);
      if (f.access !== 'rw' && f.access !== 'ro') throw new TypeError(`config field ${f.name}: access must be 'ro' or 'rw'`);
      size = Math.max(size, f.offset + f.width);
    }
    if (fields.length > 0x7fff) throw new RangeError('config space: too many fields');
    this.size = size;
    this.fields = fields.slice();
    this.owner = new Int16Array(size).fill(-1);
    this.fields.forEach((f, i) => {
      for (let b = f.offset; b < f.offset + f.width; b++) {
        const prev = this.owner[b]!;
        if (prev !== -1) throw new RangeError(`config fields ${this.fields[prev]!.name} and ${f.name} overlap at byte ${b}`);
        this.owner[b] = i;
      }
    });
  }

  /** The field with this name, for device code and tests. */
  field(name: string): ConfigField | undefined {
    return this.fields.find((f) => f.name === name);
  }

  /**
   * Reads `width` bytes at `offset`, little-endian. Bytes outside the space or in absent fields
   * read as 0, with a mistake reported.
   */
  read(offset: number, width: number, exists: (feature: bigint) => boolean): ConfigReadResult {
    let value = 0;
    let mistake: ConfigMistake | null = null;
    let lastField = -1;
    for (let i = 0; i < width; i++) {
      const at = offset + i;
      if (at >= this.size || at < 0) {
        mistake ??= { code: 'config.out-of-range', message: `config read of ${width} bytes at ${offset} goes past the end (${this.size} bytes)` };
        continue;
      }
      const fi = this.owner[at]!;
      if (fi === -1) continue; // padding between fields reads 0
      const f = this.fields[fi]!;
      if (f.feature !== undefined && !exists(f.feature)) {
        mistake ??= { code: 'config.field-absent', message: `config field ${f.name} does not exist with the current features`, field: f.name };
        continue;
      }
      if (fi !== lastField) {
        fieldBytes(f, this.scratch);
        lastField = fi;
      }
      value += this.scratch[at - f.offset]! * 2 ** (8 * i);
    }
    return { value, mistake };
  }

  /** Writes the low `width` bytes of `value` at `offset`, little-endian. */
  write(offset: number, width: number, value: number, exists: (feature: bigint) => boolean): ConfigMistake | null {
    let mistake: ConfigMistake | null = null;
    let i = 0;
    while (i < width) {
      const at = offset + i;
      if (at >= this.size || at < 0) {
        return mistake ?? { code: 'config.out-of-range', message: `config write of ${width} bytes at ${offset} goes past the end (${this.size} bytes)` };
      }
      const fi = this.owner[at]!;
      if (fi === -1) {
        i++;
        continue;
      }
      const f = this.fields[fi]!;
      // The bytes of this write that fall inside field f.
      const start = i;
      while (i < width && offset + i < f.offset + f.width) i++;
      if (f.feature !== undefined && !exists(f.feature)) {
        mistake ??= { code: 'config.field-absent', message: `config field ${f.name} does not exist with the current features`, field: f.name };
        continue;
      }
      if (f.access !== 'rw' || f.write === undefined) {
        mistake ??= { code: 'config.write-read-only', message: `config field ${f.name} is read-only`, field: f.name };
        continue;
      }
      fieldBytes(f, this.scratch);
      for (let k = start; k < i; k++) this.scratch[offset + k - f.offset] = Math.floor(value / 2 ** (8 * k)) & 0xff;
      f.write(valueFromBytes(this.scratch, f.width));
    }
    return mistake;
  }
}

/** Serialises a field's current value into `out[0 .. width)` little-endian. */
function fieldBytes(f: ConfigField, out: Uint8Array): void {
  const v = f.read();
  if (v instanceof Uint8Array) {
    for (let i = 0; i < f.width; i++) out[i] = v[i] ?? 0;
  } else if (typeof v === 'bigint') {
    let x = BigInt.asUintN(64, v);
    for (let i = 0; i < f.width; i++) {
      out[i] = Number(x & 0xffn);
      x >>= 8n;
    }
  } else {
    let x = Math.trunc(v);
    if (x < 0) x = x + 2 ** (8 * Math.min(f.width, 6)); // two's complement for small negative values
    for (let i = 0; i < f.width; i++) {
      out[i] = Math.floor(x / 2 ** (8 * i)) & 0xff;
    }
  }
}

function valueFromBytes(bytes: Uint8Array, width: number): ConfigValue {
  if (width === 6) return bytes.slice(0, 6);
  if (width === 8) {
    let x = 0n;
    for (let i = 7; i >= 0; i--) x = (x << 8n) | BigInt(bytes[i]!);
    return x;
  }
  let x = 0;
  for (let i = width - 1; i >= 0; i--) x = x * 256 + bytes[i]!;
  return x;
}
