// Frames and a reference Toeplitz for the RSS tests (rss-hash.test.ts, rss.test.ts): Ethernet
// frames carrying IPv4 / IPv6 (with extension headers) and TCP / UDP, built byte by byte, and the
// hash written straight from its definition (one key window per set input bit), independent of
// devices/virtio-net/toeplitz.ts's table.

/** Microsoft's RSS verification key ("Verifying the RSS Hash Calculation", learn.microsoft.com). */
export const MS_KEY = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
  0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
]);

/** The Toeplitz hash by its definition: for input bit i set, XOR the 32 key bits starting at bit i (missing key bits 0). */
export function refToeplitz(key: Uint8Array, input: Uint8Array): number {
  let result = 0;
  for (let i = 0; i < input.length * 8; i++) {
    if ((input[i >> 3]! & (0x80 >> (i & 7))) === 0) continue;
    let w = 0;
    for (let b = 0; b < 32; b++) {
      const bit = i + b;
      const kb = bit >> 3 < key.length ? (key[bit >> 3]! >> (7 - (bit & 7))) & 1 : 0;
      w = ((w << 1) | kb) >>> 0;
    }
    result = (result ^ w) >>> 0;
  }
  return result;
}

export function ipv4Bytes(a: string): number[] {
  return a.split('.').map(Number);
}

export function ipv6Bytes(a: string): number[] {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head === '' ? [] : head!.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

export function be16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

const MACS = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc];

/** L4 bytes: a 20-byte TCP header or an 8-byte UDP header with the two ports, then `payload` bytes. */
function l4(proto: 'tcp' | 'udp', sport: number, dport: number, payload: number): number[] {
  const hdr = proto === 'tcp' ? [...be16(sport), ...be16(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0] : [...be16(sport), ...be16(dport), ...be16(8 + payload), 0, 0];
  return [...hdr, ...new Array<number>(payload).fill(0x5a)];
}

export interface V4Options {
  proto?: 'tcp' | 'udp' | 'icmp';
  sport?: number;
  dport?: number;
  /** IPv4 fragment: 'more' sets MF, 'offset' a fragment offset. */
  fragment?: 'more' | 'offset';
  vlan?: number;
  payload?: number;
}

/** An Ethernet frame with an IPv4 packet from `src` to `dst` (default TCP 1000 → 80). */
export function v4Frame(src: string, dst: string, o: V4Options = {}): Uint8Array {
  const proto = o.proto ?? 'tcp';
  const body = proto === 'icmp' ? [8, 0, 0, 0, 0, 1, 0, 1] : l4(proto, o.sport ?? 1000, o.dport ?? 80, o.payload ?? 16);
  const frag = o.fragment === 'more' ? 0x2000 : o.fragment === 'offset' ? 0x0010 : 0x4000;
  const ip = [0x45, 0, ...be16(20 + body.length), 0, 1, ...be16(frag), 64, proto === 'tcp' ? 6 : proto === 'udp' ? 17 : 1, 0, 0, ...ipv4Bytes(src), ...ipv4Bytes(dst)];
  const tag = o.vlan === undefined ? [] : [0x81, 0x00, ...be16(o.vlan)];
  return Uint8Array.from([...MACS, ...tag, 0x08, 0x00, ...ip, ...body]);
}

export interface V6Options {
  proto?: 'tcp' | 'udp' | 'icmp';
  sport?: number;
  dport?: number;
  /** Extension headers in order: hop-by-hop, destination options (with a Home Address option when `home`), type 2 routing, fragment. */
  ext?: ({ kind: 'hop' } | { kind: 'dest'; home?: string } | { kind: 'routing2'; address: string } | { kind: 'fragment' })[];
  payload?: number;
}

/** An Ethernet frame with an IPv6 packet from `src` to `dst` (default TCP 1000 → 80). */
export function v6Frame(src: string, dst: string, o: V6Options = {}): Uint8Array {
  const proto = o.proto ?? 'tcp';
  const l4proto = proto === 'tcp' ? 6 : proto === 'udp' ? 17 : 58;
  const body = proto === 'icmp' ? [128, 0, 0, 0, 0, 1, 0, 1] : l4(proto, o.sport ?? 1000, o.dport ?? 80, o.payload ?? 16);
  const ext = o.ext ?? [];
  const codes = ext.map((e) => (e.kind === 'hop' ? 0 : e.kind === 'dest' ? 60 : e.kind === 'routing2' ? 43 : 44));
  const chain: number[] = [];
  ext.forEach((e, i) => {
    const next = i + 1 < ext.length ? codes[i + 1]! : l4proto;
    if (e.kind === 'hop') chain.push(next, 0, 1, 4, 0, 0, 0, 0); // PadN
    else if (e.kind === 'dest') {
      if (e.home === undefined) chain.push(next, 0, 1, 4, 0, 0, 0, 0);
      else chain.push(next, 2, 1, 2, 0, 0, 0xc9, 16, ...ipv6Bytes(e.home)); // PadN(2) then HAO: 24 bytes
    } else if (e.kind === 'routing2') chain.push(next, 2, 2, 1, 0, 0, 0, 0, ...ipv6Bytes(e.address));
    else chain.push(next, 0, 0, 0, 0, 0, 0, 1);
  });
  const first = codes[0] ?? l4proto;
  const payload = [...chain, ...body];
  const ip = [0x60, 0, 0, 0, ...be16(payload.length), first, 64, ...ipv6Bytes(src), ...ipv6Bytes(dst)];
  return Uint8Array.from([...MACS, 0x86, 0xdd, ...ip, ...payload]);
}

/** An ARP request (no IP header: never hashed). */
export function arpFrame(): Uint8Array {
  return Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc, 10, 0, 2, 2, 0, 0, 0, 0, 0, 0, 10, 0, 2, 15]);
}
