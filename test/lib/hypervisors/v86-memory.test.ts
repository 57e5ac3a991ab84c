// V86GuestMemory over a real WebAssembly.Memory laid out as v86 0.5.462 lays out its RAM: `mem8`
// is a Proxy that builds a fresh Uint8Array over `wasm_memory.buffer` on every access, and the
// memory can grow (detaching the old buffer) while the device holds views.

import { expect } from 'chai';
import { V86GuestMemory } from '../../../lib/hypervisors/v86-memory.js';
import type { V86CpuMemory } from '../../../lib/hypervisors/v86-memory.js';
import { GuestMemoryError } from '../../../virtqueue/guest-memory.js';

/** The part of WebAssembly.Memory used here (the project's tsconfig has no DOM/wasm lib types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const WasmMemoryCtor = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => WasmMemory } }).WebAssembly.Memory;

const PAGE = 65536;
const RAM_OFFSET = PAGE; // v86 puts guest RAM after its own state in the same wasm memory
const RAM_SIZE = 2 * PAGE;

/** A CPU object shaped like v86's: mem8 as the same kind of Proxy, and a recording jit_dirty_cache. */
function fakeV86Cpu(): V86CpuMemory & { wasm_memory: WasmMemory; dirty: [number, number][] } {
  const wasm = new WasmMemoryCtor({ initial: 3, maximum: 8 });
  const mem8 = new Proxy({} as Uint8Array, {
    get(_t, p) {
      const b = new Uint8Array(wasm.buffer, RAM_OFFSET, RAM_SIZE);
      const x = (b as unknown as Record<string | symbol, unknown>)[p];
      return typeof x === 'function' ? (x as (...a: unknown[]) => unknown).bind(b) : x;
    },
  });
  const dirty: [number, number][] = [];
  return { wasm_memory: wasm, mem8, dirty, jit_dirty_cache: (s: number, e: number) => dirty.push([s, e]) };
}

describe('V86GuestMemory', () => {
  it('every_write_reports_its_range_to_jit_dirty_cache', () => {
    const cpu = fakeV86Cpu();
    const m = new V86GuestMemory(cpu);
    m.writeU8(0x10, 1);
    m.writeU16(0x20, 0x1234);
    m.writeU32(0x30, 0xdeadbeef);
    m.writeU64(0x40, 0x0102030405060708n);
    m.write(0x100, new Uint8Array(300));
    m.wrote(0x500, 12);
    m.write(0x600, new Uint8Array(0));
    expect(cpu.dirty).to.deep.equal([
      [0x10, 0x11],
      [0x20, 0x22],
      [0x30, 0x34],
      [0x40, 0x48],
      [0x100, 0x100 + 300],
      [0x500, 0x50c],
    ]);
  });

  it('reads_and_writes_are_little_endian_at_the_ram_offset', () => {
    const cpu = fakeV86Cpu();
    const m = new V86GuestMemory(cpu);
    m.writeU32(8, 0x11223344);
    expect([...new Uint8Array(cpu.wasm_memory.buffer, RAM_OFFSET + 8, 4)]).to.deep.equal([0x44, 0x33, 0x22, 0x11]);
    expect(m.readU16(8)).to.equal(0x3344);
    expect(m.readU64(8)).to.equal(0x11223344n);
    const dest = new Uint8Array(4);
    m.read(8, dest);
    expect([...dest]).to.deep.equal([0x44, 0x33, 0x22, 0x11]);
    expect(m.size).to.equal(RAM_SIZE);
  });

  it('a_view_aliases_guest_ram_without_copying', () => {
    const cpu = fakeV86Cpu();
    const m = new V86GuestMemory(cpu);
    const v = m.view(0x40, 4);
    v[0] = 0xab;
    expect(new Uint8Array(cpu.wasm_memory.buffer, RAM_OFFSET + 0x40, 1)[0]).to.equal(0xab);
  });

  it('memory_growth_bumps_generation_and_accesses_keep_working', () => {
    const cpu = fakeV86Cpu();
    const m = new V86GuestMemory(cpu);
    m.writeU32(0x80, 7);
    const g0 = m.generation;
    const oldView = m.view(0x80, 4);
    cpu.wasm_memory.grow(1); // detaches the old ArrayBuffer, as v86's wasm memory growth does
    expect(oldView.byteLength).to.equal(0); // what held views would suffer from
    expect(m.generation).to.equal(g0 + 1);
    expect(m.readU32(0x80)).to.equal(7);
    m.writeU32(0x84, 9);
    expect(m.view(0x84, 4)[0]).to.equal(9);
    expect(m.generation).to.equal(g0 + 1); // unchanged while the buffer stays
  });

  it('out_of_range_access_throws_guest_memory_error_and_touches_nothing', () => {
    const cpu = fakeV86Cpu();
    const m = new V86GuestMemory(cpu);
    for (const f of [() => m.readU32(RAM_SIZE - 2), () => m.writeU8(RAM_SIZE, 1), () => m.write(RAM_SIZE - 1, new Uint8Array(2)), () => m.view(-1, 2), () => m.readU8(1.5)]) {
      expect(f).to.throw(GuestMemoryError);
    }
    expect(cpu.dirty).to.deep.equal([]);
    expect(m.contains(RAM_SIZE - 4, 4)).to.equal(true);
    expect(m.contains(RAM_SIZE - 4, 5)).to.equal(false);
  });

  it('rejects_an_object_that_is_not_a_v86_cpu', () => {
    expect(() => new V86GuestMemory({} as V86CpuMemory)).to.throw(TypeError, /jit_dirty_cache/);
  });
});
