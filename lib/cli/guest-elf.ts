// What a dynamically linked program needs to run (no VIRTIO section: the System V ABI's ELF format,
// little-endian ELF32 for i386 and ELF64 for amd64): its program interpreter (PT_INTERP, the
// dynamic loader's path) and the shared libraries it names (DT_NEEDED sonames in PT_DYNAMIC).
// The guest image builder (guest-image.ts) follows these to copy exactly the libraries the guest's
// tools load, so the initramfs holds no library nobody uses.
//
// Data flow: file bytes → ELF header (class, program header table) → PT_INTERP's string,
// PT_DYNAMIC's entries → DT_STRTAB's address mapped to a file offset through the PT_LOAD segments
// → the DT_NEEDED strings.

export interface ElfDeps {
  /** PT_INTERP (e.g. "/lib/ld-linux.so.2"), or null for a shared library or a static program. */
  interpreter: string | null;
  /** DT_NEEDED sonames in file order. */
  needed: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;

/** Thrown for bytes that are not a little-endian ELF file this reader understands. */
export class ElfFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfFormatError';
  }
}

/** Whether `bytes` start with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** The interpreter and DT_NEEDED list of an ELF executable or shared library. */
export function elfDeps(bytes: Uint8Array, what = 'file'): ElfDeps {
  if (!isElf(bytes) || bytes.length < 52) throw new ElfFormatError(`${what}: not an ELF file`);
  const cls = bytes[4];
  if (cls !== ELFCLASS32 && cls !== ELFCLASS64) throw new ElfFormatError(`${what}: ELF class ${String(cls)} is neither 32- nor 64-bit`);
  if (bytes[5] !== ELFDATA2LSB) throw new ElfFormatError(`${what}: big-endian ELF is not supported`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const is64 = cls === ELFCLASS64;
  const word = (off: number): number => (is64 ? Number(v.getBigUint64(off, true)) : v.getUint32(off, true));
  const check = (off: number, len: number): void => {
    if (off < 0 || off + len > bytes.length) throw new ElfFormatError(`${what}: truncated (offset ${off} + ${len} beyond ${bytes.length} bytes)`);
  };
  const phoff = word(is64 ? 0x20 : 0x1c);
  const phentsize = v.getUint16(is64 ? 0x36 : 0x2a, true);
  const phnum = v.getUint16(is64 ? 0x38 : 0x2c, true);
  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let interpreter: string | null = null;
  let dynamic: { offset: number; size: number } | null = null;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    check(ph, is64 ? 56 : 32);
    const type = v.getUint32(ph, true);
    const offset = word(ph + (is64 ? 0x08 : 0x04));
    const vaddr = word(ph + (is64 ? 0x10 : 0x08));
    const filesz = word(ph + (is64 ? 0x20 : 0x10));
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_INTERP) {
      check(offset, filesz);
      interpreter = cString(bytes, offset, offset + filesz);
    } else if (type === PT_DYNAMIC) dynamic = { offset, size: filesz };
  }
  const needed: string[] = [];
  if (dynamic === null) return { interpreter, needed };
  const entSize = is64 ? 16 : 8;
  const neededOffsets: number[] = [];
  let strtab: number | null = null;
  for (let at = dynamic.offset; at + entSize <= dynamic.offset + dynamic.size; at += entSize) {
    check(at, entSize);
    const tag = word(at);
    const val = word(at + entSize / 2);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededOffsets.push(val);
    else if (tag === DT_STRTAB) strtab = val;
  }
  if (neededOffsets.length === 0) return { interpreter, needed };
  if (strtab === null) throw new ElfFormatError(`${what}: DT_NEEDED without DT_STRTAB`);
  const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.filesz);
  if (seg === undefined) throw new ElfFormatError(`${what}: DT_STRTAB 0x${strtab.toString(16)} lies in no PT_LOAD segment`);
  const strOff = seg.offset + (strtab - seg.vaddr);
  for (const o of neededOffsets) {
    check(strOff + o, 1);
    needed.push(cString(bytes, strOff + o, bytes.length));
  }
  return { interpreter, needed };
}

function cString(bytes: Uint8Array, from: number, end: number): string {
  let to = from;
  while (to < end && bytes[to] !== 0) to++;
  return new TextDecoder('latin1').decode(bytes.subarray(from, to));
}
