// Fixed frame corpora (IEEE 802.3 frames as VIRTIO 1.2 §5.1.6 carries them): the same bytes on
// every run and every machine, from a seeded generator, so two runs compare like with like.

/** The device's MAC in every benchmark (frames of the corpora are addressed to it). */
export const BENCH_MAC = '52:54:00:12:34:56';
/** The host peer's MAC (source of received frames, destination of transmitted ones). */
export const PEER_MAC = '52:54:00:ab:cd:ef';
/** Frames per corpus: enough distinct buffers that nothing is cached per frame by accident. */
export const CORPUS_FRAMES = 64;

/** mulberry32: a tiny deterministic PRNG (uniform 32-bit outputs from a 32-bit seed). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

/**
 * `count` Ethernet frames of exactly `length` bytes (header included, no FCS): `dst`, `src`,
 * EtherType IPv4, then seeded payload bytes. Each frame differs in its payload.
 */
export function frameCorpus(length: number, options: { dst?: string; src?: string; count?: number; seed?: number } = {}): Uint8Array[] {
  if (!Number.isInteger(length) || length < 14) throw new RangeError(`frameCorpus: length must be an integer >= 14, got ${length}`);
  const { dst = BENCH_MAC, src = PEER_MAC, count = CORPUS_FRAMES, seed = length } = options;
  const next = prng(seed);
  const head = [...macBytes(dst), ...macBytes(src), 0x08, 0x00];
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const f = new Uint8Array(length);
    f.set(head);
    for (let k = head.length; k < length; k++) f[k] = next() & 0xff;
    out.push(f);
  }
  return out;
}
