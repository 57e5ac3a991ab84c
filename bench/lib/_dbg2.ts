import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { measureAllocation } from './heap.js';
const m = new GuestMemory(1 << 20);
const hdr = new Uint8Array(12), fr = new Uint8Array(1500);
const seg = new Float64Array([4096, 8192]);
function w1(n: number) { for (let i = 0; i < n; i++) { m.write(4096, hdr); } }
function w2(n: number) { for (let i = 0; i < n; i++) { m.write(seg[i & 1]! + 12, fr); } }
function r1(n: number) { for (let i = 0; i < n; i++) { m.read(4096, hdr); } }
function v1(n: number) { let s = 0; for (let i = 0; i < n; i++) { s += m.view(4096, 64)!.length; } return s; }
for (const [name, f] of [['write12', w1], ['write1500 f64addr', w2], ['read12', r1], ['view64', v1]] as const) {
  f(200000);
  const a = measureAllocation(() => f(1000000));
  console.log(name, a.bytes / 1e6, a.gcs);
}
