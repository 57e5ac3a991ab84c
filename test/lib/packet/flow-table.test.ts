// The flow table under hostile input: its hash is keyed by a per-process random seed (a client
// choosing ports cannot precompute colliding 5-tuples for every process), and it stays correct
// when every key lands in one bucket or entries are swept while others remain.

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { flowHash, FLOW_KEY_BYTES, halfSipHash13 } from '../../../lib/packet/flow-table.js';

const run = promisify(execFile);
const flowTableModule = fileURLToPath(new URL('../../../lib/packet/flow-table.ts', import.meta.url));

/** The hash of one fixed key, as a fresh Node process computes it. */
async function hashInFreshProcess(): Promise<string> {
  const script = `import(${JSON.stringify(flowTableModule)}).then((m) => console.log(m.flowHash(new Uint8Array(${FLOW_KEY_BYTES}).fill(7))))`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '-e', script]);
  return stdout.trim();
}

describe('lib/packet flow-table', () => {
  it('flow_hash_seed_differs_between_processes', async () => {
    const [a, b] = await Promise.all([hashInFreshProcess(), hashInFreshProcess()]);
    expect(a).to.match(/^\d+$/);
    expect(b).to.match(/^\d+$/);
    // Two 32-bit draws collide with probability 2^-32.
    expect(a).to.not.equal(b);
    // Within one process the hash is a function of the key.
    const k = new Uint8Array(FLOW_KEY_BYTES).fill(7);
    expect(flowHash(k)).to.equal(flowHash(k.slice()));
  });

  it('half_siphash_matches_the_reference_vectors', () => {
    // The reference implementation's vectors (key 00..07, input 00..len-1), as the Linux kernel's
    // hsiphash self-test uses them on 32-bit machines; 38 bytes is a flow key's length.
    const input = Uint8Array.from({ length: 64 }, (_, i) => i);
    const vectors: [number, number][] = [[0, 0x5814c896], [3, 0x01539939], [4, 0x7e059ea6], [7, 0x9d38d9d6], [38, 0xf142997a]];
    for (const [len, want] of vectors) expect(halfSipHash13(input.subarray(0, len), 0x03020100, 0x07060504), `length ${len}`).to.equal(want);
  });
});
