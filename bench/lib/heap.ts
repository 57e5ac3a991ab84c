// Bytes the JavaScript heap allocates over a piece of work (no spec section: the harness). V8 has
// no allocation counter, so: force a full GC, note `used_heap_size`, run the work under a
// `v8.GCProfiler`, and add back what every collection in between freed:
//   allocated = used(after) - used(before) + Σ (used before GC - used after GC).
// The forced GC first makes the garbage a collection frees during the window (almost) all garbage
// the window made. Typed-array backing stores (off-heap) are not counted: the hot paths create
// views, never stores, and a view object is on the heap.

import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
/** V8's gc(), reachable without starting node with --expose-gc. */
export const gc = vm.runInNewContext('gc') as () => void;

export interface Allocation {
  bytes: number;
  /** Collections V8 ran on its own during the work. */
  gcs: number;
}

interface GcHeapStats {
  usedHeapSize?: number;
  used_heap_size?: number;
}

function used(s: GcHeapStats): number {
  return s.usedHeapSize ?? s.used_heap_size ?? 0;
}

export function measureAllocation(work: () => void): Allocation {
  gc();
  gc();
  const profiler = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  work();
  const after = v8.getHeapStatistics().used_heap_size;
  const stats = profiler.stop();
  let freed = 0;
  for (const s of stats.statistics) {
    freed += used(s.beforeGC.heapStatistics as GcHeapStats) - used(s.afterGC.heapStatistics as GcHeapStats);
  }
  return { bytes: Math.max(0, after - before + freed), gcs: stats.statistics.length };
}
