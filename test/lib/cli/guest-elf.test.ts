// The ELF reader the guest image builder follows to copy a tool's shared libraries: checked on
// hand-built ELF32 and ELF64 files (every field placed here, so each expectation is derived from
// the bytes written) and on the host's own /bin/sh.

import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { ElfFormatError, elfDeps, isElf } from '../../../lib/cli/guest-elf.js';

/** An ELF file with one PT_LOAD (file offset 0 at `base`), a PT_INTERP and a PT_DYNAMIC naming `needed`. */
function buildElf(is64: boolean, interpreter: string | null, needed: string[], base = 0x8048000): Uint8Array {
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phnum = 3;
  const strings = ['', ...(interpreter === null ? [] : [interpreter]), ...needed];
  const strtabOff = ehsize + phnum * phentsize;
  const enc = new TextEncoder();
  const offsets: number[] = [];
  const strBytes: number[] = [];
  for (const s of strings) {
    offsets.push(strBytes.length);
    strBytes.push(...enc.encode(s), 0);
  }
  const dynOff = strtabOff + strBytes.length + ((8 - ((strtabOff + strBytes.length) % 8)) % 8);
  const entSize = is64 ? 16 : 8;
  const dynEntries: [number, number][] = [...needed.map((_, i) => [1, offsets[(interpreter === null ? 1 : 2) + i]!] as [number, number]), [5, base + strtabOff], [0, 0]];
  const total = dynOff + dynEntries.length * entSize;
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, 1, 1]);
  const put = (off: number, val: number): void => (is64 ? v.setBigUint64(off, BigInt(val), true) : v.setUint32(off, val, true));
  put(is64 ? 0x20 : 0x1c, ehsize);
  v.setUint16(is64 ? 0x36 : 0x2a, phentsize, true);
  v.setUint16(is64 ? 0x38 : 0x2c, phnum, true);
  const ph = (i: number, type: number, offset: number, filesz: number): void => {
    const at = ehsize + i * phentsize;
    v.setUint32(at, type, true);
    put(at + (is64 ? 0x08 : 0x04), offset);
    put(at + (is64 ? 0x10 : 0x08), base + offset);
    put(at + (is64 ? 0x20 : 0x10), filesz);
  };
  ph(0, 1, 0, total);
  if (interpreter !== null) ph(1, 3, strtabOff + offsets[1]!, interpreter.length + 1);
  else ph(1, 6 /* PT_PHDR: ignored */, ehsize, phnum * phentsize);
  ph(2, 2, dynOff, dynEntries.length * entSize);
  b.set(strBytes, strtabOff);
  dynEntries.forEach(([tag, val], i) => {
    put(dynOff + i * entSize, tag);
    put(dynOff + i * entSize + entSize / 2, val);
  });
  return b;
}

describe('elfDeps (ELF interpreter and DT_NEEDED)', () => {
  it('reads_an_elf32_program', () => {
    const deps = elfDeps(buildElf(false, '/lib/ld-linux.so.2', ['libmnl.so.0', 'libc.so.6']));
    expect(deps).to.deep.equal({ interpreter: '/lib/ld-linux.so.2', needed: ['libmnl.so.0', 'libc.so.6'] });
  });

  it('reads_an_elf64_shared_library_without_interpreter', () => {
    const deps = elfDeps(buildElf(true, null, ['libc.so.6'], 0));
    expect(deps).to.deep.equal({ interpreter: null, needed: ['libc.so.6'] });
  });

  it('rejects_what_it_cannot_read', () => {
    expect(isElf(new TextEncoder().encode('#!/bin/sh\n'))).to.equal(false);
    expect(() => elfDeps(new TextEncoder().encode('#!/bin/sh\n'.repeat(8)), 'x')).to.throw(ElfFormatError, /x: not an ELF file/);
    const cut = buildElf(false, '/lib/ld-linux.so.2', ['libc.so.6']);
    expect(() => elfDeps(cut.subarray(0, 120))).to.throw(ElfFormatError, /truncated/);
    const big = buildElf(false, null, []);
    big[5] = 2;
    expect(() => elfDeps(big)).to.throw(ElfFormatError, /big-endian/);
  });

  it('finds_the_host_shells_loader_and_libc', () => {
    const deps = elfDeps(new Uint8Array(readFileSync('/bin/sh')), '/bin/sh');
    expect(deps.interpreter).to.be.a('string');
    expect(existsSync(deps.interpreter!), `${deps.interpreter} exists`).to.equal(true);
    expect(deps.needed).to.include('libc.so.6');
  });
});
