// Guest memory over v86's RAM (VIRTIO 1.2 §2.7: ring and buffer addresses are guest-physical; here
// they index v86's `cpu.mem8`). Implements the device's `GuestMemoryAccess`.
//
// Two v86 facts shape it (shared/design/REAL-GUEST.md, v86 0.5.462):
// - `cpu.mem8` is NOT a plain Uint8Array in the npm build: it is a Proxy that builds a fresh typed
//   array over `wasm_memory.buffer` on every property access (so its identity never changes, and
//   each access allocates). The wasm memory can grow during a run (observed while booting Linux),
//   which detaches the old buffer. So every access re-reads `cpu.wasm_memory.buffer` (falling back
//   to `cpu.mem8.buffer`) and compares identities; on a change the adapter rebuilds its own view
//   and DataView (offset and length from `mem8`) and bumps `generation`, so holders of views
//   (the split queue's ring views) re-fetch them.
// - v86 compiles guest code to wasm and caches it per page: every range the device writes (ring
//   entries, frames, the ack byte) must be reported with `cpu.jit_dirty_cache(start, end)`, or the
//   guest could run stale code that lived in a page now holding DMA data.
// Guest RAM is one region at 0 of `mem8.length` bytes; addresses are 32-bit.

import { GuestMemoryError } from '../../virtqueue/guest-memory.js';
import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';

/** The part of v86's CPU object this adapter uses. */
export interface V86CpuMemory {
  /** A Uint8Array, or v86's Proxy standing for one (byteOffset, length, buffer are read). */
  mem8: Uint8Array;
  /** The WebAssembly.Memory behind mem8 (present in v86 0.5.462). */
  wasm_memory?: { buffer: ArrayBuffer };
  jit_dirty_cache(start: number, end: number): void;
}

export class V86GuestMemory implements GuestMemoryAccess {
  private buffer: ArrayBufferLike | null = null;
  private mem: Uint8Array = new Uint8Array(0);
  private data: DataView = new DataView(new ArrayBuffer(0));
  private memLength = 0;
  private gen = 0;

  constructor(private readonly cpu: V86CpuMemory) {
    if (cpu === null || typeof cpu !== 'object' || typeof cpu.jit_dirty_cache !== 'function') {
      throw new TypeError('V86GuestMemory: cpu must be v86\'s CPU object (emulator.v86.cpu) with mem8 and jit_dirty_cache');
    }
    this.refresh();
  }

  /** Bumped whenever v86's RAM array changed since the last access. */
  get generation(): number {
    this.refresh();
    return this.gen;
  }

  /** Bytes of guest RAM. */
  get size(): number {
    return this.refresh().length;
  }

  readU8(address: number): number {
    const m = this.refresh();
    this.check(address, 1);
    return m[address]!;
  }
  readU16(address: number): number {
    this.refresh();
    this.check(address, 2);
    return this.data.getUint16(address, true);
  }
  readU32(address: number): number {
    this.refresh();
    this.check(address, 4);
    return this.data.getUint32(address, true);
  }
  readU64(address: number): bigint {
    this.refresh();
    this.check(address, 8);
    return this.data.getBigUint64(address, true);
  }
  writeU8(address: number, value: number): void {
    const m = this.refresh();
    this.check(address, 1);
    m[address] = value;
    this.cpu.jit_dirty_cache(address, address + 1);
  }
  writeU16(address: number, value: number): void {
    this.refresh();
    this.check(address, 2);
    this.data.setUint16(address, value, true);
    this.cpu.jit_dirty_cache(address, address + 2);
  }
  writeU32(address: number, value: number): void {
    this.refresh();
    this.check(address, 4);
    this.data.setUint32(address, value >>> 0, true);
    this.cpu.jit_dirty_cache(address, address + 4);
  }
  writeU64(address: number, value: bigint): void {
    this.refresh();
    this.check(address, 8);
    this.data.setBigUint64(address, BigInt.asUintN(64, value), true);
    this.cpu.jit_dirty_cache(address, address + 8);
  }

  read(address: number, dest: Uint8Array): void {
    const m = this.refresh();
    this.check(address, dest.length);
    dest.set(m.subarray(address, address + dest.length));
  }

  write(address: number, src: Uint8Array): void {
    const m = this.refresh();
    this.check(address, src.length);
    m.set(src, address);
    if (src.length > 0) this.cpu.jit_dirty_cache(address, address + src.length);
  }

  view(address: number, length: number): Uint8Array {
    const m = this.refresh();
    this.check(address, length);
    return m.subarray(address, address + length);
  }

  contains(address: number, length: number): boolean {
    const n = this.refresh().length;
    return Number.isInteger(address) && Number.isInteger(length) && address >= 0 && length >= 0 && address + length <= n;
  }

  wrote(address: number, length: number): void {
    if (length > 0) this.cpu.jit_dirty_cache(address, address + length);
  }

  /** Re-reads the RAM's buffer; rebuilds the views and bumps generation when it changed. */
  private refresh(): Uint8Array {
    const cpu = this.cpu;
    const buffer = cpu.wasm_memory !== undefined ? cpu.wasm_memory.buffer : cpu.mem8.buffer;
    if (buffer !== this.buffer) {
      const m = cpu.mem8;
      const offset = m.byteOffset;
      const length = m.length;
      this.buffer = buffer;
      this.mem = new Uint8Array(buffer, offset, length);
      this.data = new DataView(buffer, offset, length);
      this.memLength = length;
      this.gen++;
    }
    return this.mem;
  }

  private check(address: number, length: number): void {
    if (!(Number.isInteger(address) && Number.isInteger(length) && address >= 0 && length >= 0 && address + length <= this.memLength)) {
      throw new GuestMemoryError(address, length, `outside v86 RAM (${this.memLength} bytes)`);
    }
  }
}
