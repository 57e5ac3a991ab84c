// Parsers for the text ethtool prints in a guest (test/guest/v86-ethtool.test.ts and
// test/guest/qemu-rss.test.ts): `-x` (RSS table, key, hash functions) and `-S` (driver counters).

/** `ethtool -x` output: the indirection table, the key and the hash functions switched on. */
export function parseRxfh(out: string): { table: number[]; key: number[]; functions: string[] } {
  const table: number[] = [];
  for (const m of out.matchAll(/^\s*\d+:((?:\s+\d+)+)\s*$/gm)) table.push(...m[1]!.trim().split(/\s+/).map(Number));
  const keyLine = /RSS hash key:\s*\n([0-9a-f:]+)/.exec(out);
  const key = keyLine === null ? [] : keyLine[1]!.split(':').map((h) => parseInt(h, 16));
  const functions = [...out.matchAll(/^\s+(\w+): on$/gm)].map((m) => m[1]!);
  return { table, key, functions };
}

/** `ethtool -S` output as name → value. */
export function parseStats(out: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of out.matchAll(/^\s+(\w+): (\d+)$/gm)) m.set(x[1]!, Number(x[2]));
  return m;
}
