// Guest memory with guard regions, for fuzzing the device (VIRTIO 1.2 §2.7.4: the device writes
// only device-writable buffers; §2.7.8: and the used ring, including `avail_event` §2.7.10).
//
// One real `GuestMemory` is seen through two `GuestMemoryAccess` faces:
// - `driver`: what the test's driver (DriverRing, NetRig-like code) writes through. Every write also
//   goes to a shadow copy, so the shadow is "memory as the driver left it".
// - `device`: what the device gets. It forwards to the real memory, counts every call (a work meter
//   for the "bounded work per call" oracle, which aborts a call that exceeds its budget) and records
//   every range the device reported writing (accessor writes and `wrote()`).
// `check()` compares real memory with the shadow page by page (native memcmp first) after each step:
// every byte that changed must lie in a range currently granted to the device (`grant()` /
// `revoke()`, counted: two grants of one byte need two revokes) and in a range the device reported
// (the embedder contract: a JIT must see every DMA write). Then the shadow takes the device's bytes.

import { GuestMemory, GuestMemoryError } from '../../virtqueue/guest-memory.js';
import type { GuestMemoryAccess } from '../../virtqueue/guest-memory.js';

/** Bytes compared at once before looking at single bytes. */
const PAGE = 4096;

/** A byte the device changed that it had no right to, or did not report. */
export interface GuardViolation {
  readonly code: 'guard.write-outside-grant' | 'guard.write-unreported';
  /** First offending byte, and how many offending bytes in all. */
  readonly address: number;
  readonly count: number;
  /** Value before (as the driver left it) and after. */
  readonly before: number;
  readonly after: number;
}

/** Thrown from a device memory access when one call used more than its work budget. */
export class WorkBudgetExceeded extends Error {
  constructor(readonly budget: number) {
    super(`device exceeded its work budget of ${budget} memory operations in one call`);
    this.name = 'WorkBudgetExceeded';
  }
}

export class GuardedMemory {
  readonly size: number;
  /** The real memory (what `device` and `driver` both reach). */
  private readonly real: GuestMemory;
  private readonly realBytes: Uint8Array;
  private readonly shadowBytes: Uint8Array;
  /** Grant counts per byte. */
  private readonly grants: Uint16Array;
  /** Step stamp per byte of the last report by the device. */
  private readonly reported: Uint32Array;
  private stamp = 1;
  /** Page-sized Buffer views of real memory and the shadow, made once (the check allocates nothing). */
  private readonly realPages: Buffer[] = [];
  private readonly shadowPages: Buffer[] = [];
  /** Work done in the current call, its budget, the most any call used, and whether one overran. */
  work = 0;
  budget: number;
  maxWork = 0;
  overran = false;
  readonly device: GuestMemoryAccess;
  readonly driver: GuestMemoryAccess;

  constructor(size: number, options: { budget?: number } = {}) {
    this.size = size;
    const buffer = new ArrayBuffer(size);
    this.real = GuestMemory.fromRegions([{ guestAddress: 0, buffer }]);
    this.realBytes = new Uint8Array(buffer);
    this.shadowBytes = new Uint8Array(size);
    this.grants = new Uint16Array(size);
    this.reported = new Uint32Array(size);
    this.budget = options.budget ?? 1_000_000;
    for (let p = 0; p < size; p += PAGE) {
      const len = Math.min(PAGE, size - p);
      this.realPages.push(Buffer.from(buffer, p, len));
      this.shadowPages.push(Buffer.from(this.shadowBytes.buffer, p, len));
    }
    this.device = new DeviceFace(this, this.real);
    this.driver = new DriverFace(this.real, this.shadowBytes);
  }

  /** Starts metering one device-facing call. */
  beginCall(): void {
    this.work = 0;
  }

  /** Ends metering; returns the work the call used. */
  endCall(): number {
    if (this.work > this.maxWork) this.maxWork = this.work;
    return this.work;
  }

  /** @internal one unit of device work. */
  tick(n = 1): void {
    this.work += n;
    if (this.work > this.budget) {
      this.overran = true;
      throw new WorkBudgetExceeded(this.budget);
    }
  }

  /** @internal the device says it wrote [address, address + length). */
  noteWrite(address: number, length: number): void {
    const end = Math.min(this.size, address + length);
    const s = this.stamp;
    for (let a = Math.max(0, address); a < end; a++) this.reported[a] = s;
  }

  /** Grants the device write access to [address, address + length) (clipped to memory). */
  grant(address: number, length: number): void {
    const end = Math.min(this.size, address + length);
    for (let a = Math.max(0, address); a < end; a++) this.grants[a]!++;
  }

  /** Takes back one grant of [address, address + length). */
  revoke(address: number, length: number): void {
    const end = Math.min(this.size, address + length);
    const g = this.grants;
    for (let a = Math.max(0, address); a < end; a++) if (g[a]! > 0) g[a]!--;
  }

  /** Whether every byte of the range is granted now. */
  granted(address: number, length: number): boolean {
    const end = address + length;
    if (address < 0 || end > this.size) return false;
    for (let a = address; a < end; a++) if (this.grants[a] === 0) return false;
    return true;
  }

  /** Drops every grant. */
  revokeAll(): void {
    this.grants.fill(0);
  }

  /**
   * Compares memory with the driver's shadow. Returns the first kind of violation found (null when
   * every changed byte was granted and reported), then accepts the device's bytes into the shadow
   * and starts a new reporting step. `extraGrant` also allows a range for this check only.
   */
  check(extraGrant?: (address: number) => boolean): GuardViolation | null {
    const real = this.realBytes;
    const shadow = this.shadowBytes;
    const s = this.stamp;
    let violation: GuardViolation | null = null;
    let count = 0;
    const realPages = this.realPages;
    const shadowPages = this.shadowPages;
    for (let k = 0; k < realPages.length; k++) {
      if (realPages[k]!.equals(shadowPages[k]!)) continue;
      const p = k * PAGE;
      const end = Math.min(this.size, p + PAGE);
      for (let i = p; i < end; i++) {
        if (real[i] === shadow[i]) continue;
        let code: GuardViolation['code'] | null = null;
        if (this.grants[i] === 0 && (extraGrant === undefined || !extraGrant(i))) code = 'guard.write-outside-grant';
        else if (this.reported[i] !== s) code = 'guard.write-unreported';
        if (code !== null) {
          count++;
          if (violation === null) violation = { code, address: i, count: 0, before: shadow[i]!, after: real[i]! };
        }
      }
      shadow.set(real.subarray(p, end), p);
    }
    this.stamp++;
    return violation === null ? null : { ...violation, count };
  }
}

/** The device's face: forwards, meters, records reported writes. */
class DeviceFace implements GuestMemoryAccess {
  constructor(
    private readonly g: GuardedMemory,
    private readonly m: GuestMemory,
  ) {}
  get generation(): number {
    this.g.tick();
    return this.m.generation;
  }
  readU8(a: number): number {
    this.g.tick();
    return this.m.readU8(a);
  }
  readU16(a: number): number {
    this.g.tick();
    return this.m.readU16(a);
  }
  readU32(a: number): number {
    this.g.tick();
    return this.m.readU32(a);
  }
  readU64(a: number): bigint {
    this.g.tick();
    return this.m.readU64(a);
  }
  writeU8(a: number, v: number): void {
    this.g.tick();
    this.m.writeU8(a, v);
    this.g.noteWrite(a, 1);
  }
  writeU16(a: number, v: number): void {
    this.g.tick();
    this.m.writeU16(a, v);
    this.g.noteWrite(a, 2);
  }
  writeU32(a: number, v: number): void {
    this.g.tick();
    this.m.writeU32(a, v);
    this.g.noteWrite(a, 4);
  }
  writeU64(a: number, v: bigint): void {
    this.g.tick();
    this.m.writeU64(a, v);
    this.g.noteWrite(a, 8);
  }
  read(a: number, dest: Uint8Array): void {
    this.g.tick(1 + (dest.length >>> 12));
    this.m.read(a, dest);
  }
  write(a: number, src: Uint8Array): void {
    this.g.tick(1 + (src.length >>> 12));
    this.m.write(a, src);
    this.g.noteWrite(a, src.length);
  }
  view(a: number, len: number): Uint8Array | undefined {
    this.g.tick();
    return this.m.view(a, len);
  }
  contains(a: number, len: number): boolean {
    this.g.tick();
    return this.m.contains(a, len);
  }
  wrote(a: number, len: number): void {
    this.g.tick();
    if (!this.m.contains(a, len)) throw new GuestMemoryError(a, len, 'reported as written but outside guest memory');
    this.g.noteWrite(a, len);
  }
}

/** The driver's face: forwards and keeps the shadow in step with every write. */
class DriverFace implements GuestMemoryAccess {
  readonly generation = 0;
  constructor(
    private readonly m: GuestMemory,
    private readonly shadow: Uint8Array,
  ) {}
  private sync(a: number, len: number): void {
    this.m.read(a, this.shadow.subarray(a, a + len));
  }
  readU8(a: number): number {
    return this.m.readU8(a);
  }
  readU16(a: number): number {
    return this.m.readU16(a);
  }
  readU32(a: number): number {
    return this.m.readU32(a);
  }
  readU64(a: number): bigint {
    return this.m.readU64(a);
  }
  writeU8(a: number, v: number): void {
    this.m.writeU8(a, v);
    this.sync(a, 1);
  }
  writeU16(a: number, v: number): void {
    this.m.writeU16(a, v);
    this.sync(a, 2);
  }
  writeU32(a: number, v: number): void {
    this.m.writeU32(a, v);
    this.sync(a, 4);
  }
  writeU64(a: number, v: bigint): void {
    this.m.writeU64(a, v);
    this.sync(a, 8);
  }
  read(a: number, dest: Uint8Array): void {
    this.m.read(a, dest);
  }
  write(a: number, src: Uint8Array): void {
    this.m.write(a, src);
    this.sync(a, src.length);
  }
  view(a: number, len: number): Uint8Array | undefined {
    return this.m.view(a, len);
  }
  contains(a: number, len: number): boolean {
    return this.m.contains(a, len);
  }
  wrote(a: number, len: number): void {
    this.sync(a, len);
  }
}
