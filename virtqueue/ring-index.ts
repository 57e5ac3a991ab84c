// The ring words that order the device against the driver (VIRTIO 1.2 §2.7.13, §2.8.21; Linux's
// virtio_ring barriers), read and written with `Atomics` when guest memory is a SharedArrayBuffer —
// a hypervisor whose vCPUs run in worker threads shares guest RAM that way, and the driver then
// runs concurrently with the device.
//
// JavaScript's memory model orders plain accesses to shared memory only through atomics on the same
// location: a driver's `Atomics.store` of avail.idx (or of a packed descriptor's flags) publishes the
// descriptors it wrote before, to a device that reads the index with `Atomics.load` (acquire); the
// device's `Atomics.store` of used.idx (or of used descriptor flags) publishes the used elements it
// wrote before (release). Atomics are sequentially consistent, so a store followed by a load on
// another word is also the full barrier §2.7.7 / §2.7.10 need around notification suppression:
// write used.idx then read used_event, write avail_event then read avail.idx again.
//
// The choice is made once per ring part when its view is fetched (activation, and again when
// `memory.generation` changes): `sharedWords()` gives a Uint16Array over the part when it lies in a
// SharedArrayBuffer at a 2-aligned offset, else null, and the queues keep their plain DataView path
// (no cost) when it is null. Rings are little-endian; Atomics use the host's byte order, so on a
// big-endian host the 16-bit values are byte-swapped around each atomic access (one atomic 16-bit
// access still, never two byte accesses that could tear).

/** True when this host stores a Uint16Array element little-endian (checked once). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * 16-bit words over the ring part `view` when it lies in a SharedArrayBuffer at an even byte
 * offset; null when it does not (plain ArrayBuffer: no other thread sees it, plain accesses are
 * exact). A shared part at an odd byte offset (a region whose guest address and buffer offset
 * differ in parity, which no embedder here makes) cannot be accessed atomically 16 bits at a time
 * and also gets null: plain accesses, unordered against another thread.
 */
export function sharedWords(view: Uint8Array): Uint16Array | null {
  if (typeof SharedArrayBuffer === 'undefined' || !(view.buffer instanceof SharedArrayBuffer)) return null;
  if (view.byteOffset % 2 !== 0) return null;
  return new Uint16Array(view.buffer, view.byteOffset, view.byteLength >>> 1);
}

function swap16(v: number): number {
  return ((v & 0xff) << 8) | (v >>> 8);
}

/** Atomic (acquire, and sequentially consistent) read of the little-endian u16 at `byteOffset` (even). */
export function loadU16(words: Uint16Array, byteOffset: number): number {
  const v = Atomics.load(words, byteOffset >>> 1);
  return HOST_LITTLE_ENDIAN ? v : swap16(v);
}

/** Atomic (release, and sequentially consistent) write of the little-endian u16 at `byteOffset` (even). */
export function storeU16(words: Uint16Array, byteOffset: number, value: number): void {
  Atomics.store(words, byteOffset >>> 1, HOST_LITTLE_ENDIAN ? value : swap16(value & 0xffff));
}
