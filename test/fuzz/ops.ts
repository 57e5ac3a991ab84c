// The driver operations the fuzzer sequences (VIRTIO 1.2 §3.1.1 initialisation, §2.7.13 supplying
// buffers, §2.7.5 descriptors incl. §2.7.5.3 indirect ones, §5.1.6 the network device's queues and
// §5.1.6.5 its control commands), as plain JSON values — so a shrunk sequence is a fixture file —
// and their fast-check generators.

import fc from 'fast-check';
import type { FlowDesc } from './rss-model.js';

/** The device and transport a sequence runs against. */
export interface FuzzSetup {
  transport: 'mmio' | 'pci' | 'pci-legacy';
  /** Queue pairs the device offers (2 offers MQ). */
  pairs: 1 | 2;
  /** Features the device does not offer (names as `features.disable` takes them). */
  disable: string[];
  /**
   * Ring size the driver programs on the modern interfaces. Up to 32 the device's maximum is 32;
   * above, the device's maximum is the ring size (legacy rings are the maximum), in larger memory.
   */
  ringSize: RingSize;
  /** The backend: MemoryNetdev (no header), or one carrying virtio-net headers (offloads offered). Default plain. */
  backend?: 'plain' | 'vnet';
  /** The device's `strict` option (refuses transmit headers breaking §5.1.6.2.1). Default false. */
  strict?: boolean;
  /** The device's `mtu` option (VIRTIO_NET_F_MTU offered; frames above it kept from both sides). Default none. */
  mtu?: number;
  /**
   * The driver's ring layout (default split): `packed` rings (§2.8) make the driver acknowledge
   * VIRTIO_F_RING_PACKED. Modern interfaces only (the legacy interface has no packed ring).
   */
  ring?: 'split' | 'packed';
  /**
   * Features off by default that the device offers (`features.enable`): RSS, HASH_REPORT (§5.1.6.5.7,
   * §5.1.6.4.4), GUEST_USO4/6 and HOST_USO (VIRTIO 1.3; header-carrying backend only), SPEED_DUPLEX.
   */
  enable?: string[];
}

export type RingSize = 8 | 16 | 32 | 256 | 4096 | 32768;

/** Where a driver operation runs from inside a device call (re-entrancy, see world.ts `arm`). */
export type Hook = 'transmit' | 'interrupt' | 'rx-filter' | 'pause' | 'resume' | 'offloads' | 'needs-reset';

/** What the driver does from inside a callback. */
export type ReentryAction =
  | { k: 'reset' }
  | { k: 'status'; value: number }
  | { k: 'kick'; q: number }
  | { k: 'queue'; q: number; size: number; layout: 'model' | 'misaligned' | 'outside' | 'overlap' | 'zero' }
  | { k: 'reg'; space: 0 | 1; offset: number; width: 1 | 2 | 4; value: number }
  | { k: 'inject'; len: number }
  | { k: 'isr' }
  | { k: 'link'; up: boolean };

/** How a raw descriptor's address is chosen. */
export type RawAddr = 'heap' | 'zero' | 'outside' | 'straddle' | 'ring' | 'huge';
/** How a raw descriptor's next is chosen. */
export type RawNext = 'auto' | 'self' | 'first' | 'oob';

export interface RawDesc {
  len: number;
  /** VIRTQ_DESC_F_NEXT 1, WRITE 2, INDIRECT 4. */
  flags: number;
  addr: RawAddr;
  /** Split rings only (packed lists continue at the next ring position, §2.8.6). */
  next: RawNext;
}

/**
 * The packed-ring mistakes of a raw list (§2.8.1 AVAIL/USED and the wrap counter, §2.8.6 chains,
 * §2.8.13 Buffer IDs); split rings ignore them. `first`: the first descriptor's AVAIL/USED bits —
 * right, for the other wrap counter, looking used (both equal to the wrap counter), or zero. `mid`:
 * a later descriptor of the list gets the other wrap counter's bits. `id`: a free Buffer ID, one
 * beyond the ring size, or one an outstanding list uses.
 */
export interface PackedMistake {
  first: 'ok' | 'other-wrap' | 'looks-used' | 'zero';
  mid: boolean;
  id: 'free' | 'oob' | 'held';
}

export type FuzzOp =
  /** Linux's initialisation, the driver accepting the offer minus `drop` (bit i: DROPPABLE[i]). */
  | { t: 'init'; drop: number }
  | { t: 'status'; value: number }
  /** One raw transport register access (mmio window, pci common cfg / config space, legacy header). */
  | { t: 'reg'; space: 0 | 1; write: boolean; offset: number; width: 1 | 2 | 4; value: number }
  /** Program and enable one queue with (possibly bad) layout values. */
  | { t: 'queue'; q: number; size: number; layout: 'model' | 'misaligned' | 'outside' | 'overlap' | 'zero' }
  /** `vhdr`: the first bytes of the virtio-net header the driver writes (else zeros); any values. */
  | { t: 'tx'; pair: 0 | 1; len: number; hdr: 'ok' | 'short' | 'none'; split: number; indirect: boolean; writable: boolean; vhdr?: number[] }
  /** `broken`: a chain with an out-of-range head goes out in the same avail.idx update, last. */
  | { t: 'rx'; count: number; len: number; split: number; indirect: boolean; broken?: boolean; pair?: 0 | 1 }
  /** `ack`: writable bytes after the command (0: none; above 1: room for a result — VQ_GET, STATS). */
  | { t: 'ctrl'; cls: number; cmd: number; payload: number[]; ack: number; indirect: boolean; apart: boolean }
  /** `packed`: the mistakes on a packed ring (else a list as the descriptors say, with a free Buffer ID; `head: 'oob'` an ID beyond the ring). */
  | { t: 'raw'; q: number; descs: RawDesc[]; table: RawDesc[]; head: 'first' | 'oob'; packed?: PackedMistake }
  /** Split: avail.idx moved on by `n` without new entries. Packed: the driver skips `n` ring positions (n > size: flips its wrap counter). */
  | { t: 'bump'; q: number; n: number }
  | { t: 'kick'; q: number }
  /** `hdr`: the header a header-carrying backend hands over with each frame (hostile values too). */
  | { t: 'inject'; count: number; len: number; dst: 'main' | 'bcast' | 'mcast' | 'other'; vlan: number; hdr?: number[] }
  /** The header-carrying backend refuses (true) or accepts offload settings from now on. */
  | { t: 'refuse'; on: boolean }
  /** From the next `times` callbacks at `at` (inside device calls), the driver does `action`. */
  | { t: 'arm'; at: Hook; action: ReentryAction; times: number }
  /**
   * `n` frames round trip through queue pair 0 (`tx`: posted and sent; `rx`: buffers posted and
   * frames injected), `batch` at a time: the indices run on across the natural 16-bit wrap.
   */
  | { t: 'cycle'; dir: 'tx' | 'rx'; n: number; batch: number }
  | { t: 'link'; up: boolean }
  | { t: 'writable'; on: boolean }
  | { t: 'isr' }
  | { t: 'config'; write: boolean; offset: number; width: 1 | 2 | 4; value: number }
  | { t: 'event'; q: number; mode: 'no-interrupt' | 'interrupt' | 'used-event'; value: number }
  | { t: 'query' }
  | { t: 'announce' }
  /** The backend offers IP frames (rss-model.ts FlowDesc) to the guest's MAC: the RSS steering and hash-report oracles judge them. */
  | { t: 'flow'; flows: FlowDesc[] };

/** A sequence: setup plus operations. */
export interface FuzzCase {
  setup: FuzzSetup;
  ops: FuzzOp[];
}

/** Features a driver may decline at init (bit i of `drop`). */
export const DROPPABLE = [
  'VERSION_1', 'MRG_RXBUF', 'EVENT_IDX', 'INDIRECT_DESC', 'CTRL_VQ', 'CTRL_RX', 'CTRL_VLAN', 'MQ', 'MAC', 'STATUS',
  // Offered only with a header-carrying backend (bits 10..20).
  'CSUM', 'GUEST_CSUM', 'GUEST_TSO4', 'GUEST_TSO6', 'GUEST_ECN', 'GUEST_UFO', 'HOST_TSO4', 'HOST_TSO6', 'HOST_ECN', 'HOST_UFO', 'CTRL_GUEST_OFFLOADS',
  // Bit 21 is DROP_KEEP_UNMET. Bits 22..30: the VIRTIO 1.2-1.4 features (offered by default or with `setup.enable`).
  'DROP_KEEP_UNMET', 'RSS', 'HASH_REPORT', 'NOTF_COAL', 'VQ_NOTF_COAL', 'DEVICE_STATS', 'GUEST_USO4', 'GUEST_USO6', 'HOST_USO', 'SPEED_DUPLEX',
] as const;
/**
 * Bit of `drop` that keeps a feature set whose requirements (§5.1.3.1) are unmet; without it the
 * driver also declines what depends on a declined feature, as Linux does.
 */
export const DROP_KEEP_UNMET = 1 << 21;
/** Features off by default a setup may have the device offer (`features.enable`); USO with a header-carrying backend only. */
const ENABLEABLE = ['RSS', 'HASH_REPORT', 'GUEST_USO4', 'GUEST_USO6', 'HOST_USO', 'SPEED_DUPLEX'] as const;
const NEEDS_VNET = ['GUEST_USO4', 'GUEST_USO6', 'HOST_USO'];

/** Features a setup may leave out of the offer; the CTRL_VQ dependants go with it. */
const DISABLEABLE = ['MRG_RXBUF', 'EVENT_IDX', 'INDIRECT_DESC', 'CTRL_VQ', 'CTRL_VLAN', 'CTRL_RX_EXTRA', 'GUEST_ANNOUNCE'] as const;
const NEEDS_CTRL_VQ = ['CTRL_RX', 'CTRL_VLAN', 'CTRL_RX_EXTRA', 'GUEST_ANNOUNCE', 'MQ', 'CTRL_MAC_ADDR'];

/**
 * What a run leans on: `all` (every kind at its everyday weight), or one of the new kinds made
 * frequent — CI runs a bounded run of each (fuzz.test.ts).
 */
export type Focus = 'all' | 'vnet' | 'reentry' | 'wrap' | 'big-ring' | 'packed' | 'rss';
export const FOCUSES: readonly Focus[] = ['all', 'vnet', 'reentry', 'wrap', 'big-ring', 'packed', 'rss'];

const setupArb = (focus: Focus): fc.Arbitrary<FuzzSetup> => fc
  .record({
    transport: fc.constantFrom('mmio', 'pci', 'pci-legacy') as fc.Arbitrary<FuzzSetup['transport']>,
    pairs: fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>,
    disable: fc.subarray([...DISABLEABLE]),
    ringSize: (focus === 'big-ring'
      ? fc.constantFrom(256, 4096, 32768)
      : fc.oneof({ arbitrary: fc.constantFrom(8, 16, 32), weight: 20 }, { arbitrary: fc.constantFrom(256, 4096, 32768), weight: 1 })) as fc.Arbitrary<RingSize>,
    backend: (focus === 'vnet' ? fc.constant('vnet') : fc.constantFrom('plain', 'vnet')) as fc.Arbitrary<'plain' | 'vnet'>,
    ring: (focus === 'packed' ? fc.constant('packed') : fc.constantFrom('split', 'packed')) as fc.Arbitrary<'split' | 'packed'>,
    // The rss focus always offers RSS and HASH_REPORT; everyday runs offer each half of the time.
    enable: focus === 'rss' ? fc.subarray([...ENABLEABLE]).map((e) => [...new Set(['RSS', 'HASH_REPORT', ...e])]) : fc.subarray([...ENABLEABLE]),
  })
  .map((s0) => {
    // Packed rings exist only on the modern interfaces (§2.8, §4.1.4.10): a packed run uses them.
    const s = s0.ring === 'packed' && s0.transport === 'pci-legacy' ? (focus === 'packed' ? { ...s0, transport: 'pci' as const } : { ...s0, ring: 'split' as const }) : s0;
    let disable: string[] = [...s.disable];
    if (s.pairs === 2 || focus === 'rss') disable = disable.filter((d) => d !== 'CTRL_VQ');
    if (disable.includes('CTRL_VQ')) disable = [...new Set([...disable, ...NEEDS_CTRL_VQ])];
    // strict and mtu follow from choices already drawn, so a seed's sequences stay what they were.
    const mtu = MTUS[s.disable.length % MTUS.length];
    const enable = s.enable.filter((e) => s.backend === 'vnet' || !NEEDS_VNET.includes(e));
    const { enable: _, ...rest } = s;
    // The rss focus mostly runs two pairs (steering has somewhere to go), in both modes.
    const pairs = focus === 'rss' && s.disable.length % 4 !== 0 ? 2 : s.pairs;
    return { ...rest, pairs, disable, strict: focus === 'rss' ? s.disable.length % 2 === 1 : s.pairs === 2, ...(mtu === undefined ? {} : { mtu }), ...(enable.length > 0 ? { enable } : {}) };
  });

/** The `mtu` options setups use: none, the smallest (§5.1.4.1: 68), Ethernet's. */
const MTUS = [undefined, 68, 1500] as const;

const width = fc.constantFrom(1, 2, 4) as fc.Arbitrary<1 | 2 | 4>;
const value32 = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 11, 15, 0x40, 0x80, 0xff, 0xffff, 0xffff_ffff), fc.nat({ max: 0xffff_ffff }));
const queueIndex = fc.nat({ max: 5 });

const rawDesc: fc.Arbitrary<RawDesc> = fc.record({
  len: fc.oneof(fc.constantFrom(0, 1, 2, 12, 16, 64), fc.nat({ max: 2048 }), fc.constantFrom(0x7fff_ffff, 0xffff_ffff)),
  flags: fc.nat({ max: 7 }),
  addr: fc.constantFrom('heap', 'heap', 'heap', 'zero', 'outside', 'straddle', 'ring', 'huge') as fc.Arbitrary<RawAddr>,
  next: fc.constantFrom('auto', 'auto', 'self', 'first', 'oob') as fc.Arbitrary<RawNext>,
});

/** Control payloads: random bytes, or shaped like the spec's structures with odd counts. */
const ctrlPayload: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.nat({ max: 255 }), { maxLength: 24 }),
  fc.constantFrom<number[]>([0], [1], [2], [0, 0], [1, 0], [0x10, 0], [0xff, 0x0f], [0, 0x10]),
  fc.tuple(fc.nat({ max: 70 }), fc.nat({ max: 70 }), fc.nat({ max: 3 })).map(([u, m, cut]) => {
    const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
    const mac = (i: number, multicast: boolean): number[] => [multicast ? 1 : 0x52, 0x54, 0, 0, i >> 8, i & 0xff];
    const bytes = [...le32(u), ...Array.from({ length: u }, (_, i) => mac(i, false)).flat(), ...le32(m), ...Array.from({ length: m }, (_, i) => mac(i, true)).flat()];
    return bytes.slice(0, bytes.length - cut * 5);
  }),
  fc.constant<number[]>([0xff, 0xff, 0xff, 0xff]),
);

const le16 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff];
const macBytes = (i: number, multicast: boolean): number[] => [multicast ? 1 : 0x52, 0x54, 0, 0x12, (i >> 8) & 0xff, i & 0xff];

/** Well-formed commands as Linux sends them (§5.1.6.5.1-8), so the rx filter really changes. */
const goodCtrl: fc.Arbitrary<FuzzOp> = fc
  .oneof(
    fc.tuple(fc.constant(0), fc.nat({ max: 5 }), fc.nat({ max: 1 }).map((b) => [b])),
    fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 3 })).map(([u, m]): [number, number, number[]] => [
      1,
      0,
      [...[u, 0, 0, 0], ...Array.from({ length: u }, (_, i) => macBytes(i, false)).flat(), ...[m, 0, 0, 0], ...Array.from({ length: m }, (_, i) => macBytes(i, true)).flat()],
    ]),
    fc.nat({ max: 3 }).map((i): [number, number, number[]] => [1, 1, macBytes(i, false)]),
    fc.tuple(fc.constant(2), fc.nat({ max: 1 }), fc.constantFrom(0, 1, 5, 4095).map(le16)),
    fc.constant<[number, number, number[]]>([3, 0, []]),
    fc.constantFrom(1, 2).map((n): [number, number, number[]] => [4, 0, le16(n)]),
    fc.constantFrom(0, 1, 0x81).map((b): [number, number, number[]] => [5, 0, [b, 0, 0, 0, 0, 0, 0, 0]]),
    // NOTF_COAL TX_SET / RX_SET (VIRTIO 1.3 §5.1.6.5.9): max_packets, max_usecs (0 switches it off).
    fc.tuple(fc.nat({ max: 1 }), fc.constantFrom(0, 1, 4), fc.constantFrom(0, 1, 3000)).map(([c, p, u]): [number, number, number[]] => [6, c, [p, 0, 0, 0, u & 0xff, u >> 8, 0, 0]]),
  )
  .chain(([cls, cmd, payload]) =>
    fc.record({
      t: fc.constant('ctrl' as const),
      cls: fc.constant(cls),
      cmd: fc.constant(cmd),
      payload: fc.constant(payload),
      ack: fc.constant(1 as const),
      indirect: fc.boolean(),
      apart: fc.constant(true),
    }),
  );

const le16b = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff];
/** struct virtio_net_hdr values (§5.1.6) as a host or driver may send them, hostile ones included. */
const vnetHdr: fc.Arbitrary<number[]> = fc.oneof(
  fc.constant<number[]>([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  // NEEDS_CSUM / DATA_VALID with plausible or bogus offsets
  fc.tuple(fc.constantFrom(1, 2, 3, 4, 0xff), fc.nat({ max: 200 }), fc.constantFrom(6, 10, 16, 0xffff)).map(([f, cs, off]) => [f, 0, 0, 0, 0, 0, ...le16b(cs), ...le16b(off)]),
  // GSO types (TCPV4, UDP, TCPV6, UDP_L4, ECN, junk) with and without NEEDS_CSUM
  fc
    .tuple(fc.constantFrom(0, 1), fc.constantFrom(1, 3, 4, 5, 0x81, 0x84, 0x80, 0x7f, 0xff), fc.nat({ max: 128 }), fc.constantFrom(0, 1, 536, 1448, 0xffff), fc.nat({ max: 80 }))
    .map(([f, g, hl, mss, cs]) => [f, g, ...le16b(hl), ...le16b(mss), ...le16b(cs), ...le16b(16)]),
  fc.array(fc.nat({ max: 255 }), { minLength: 10, maxLength: 10 }),
  // The wrong length: a short one, one with num_buffers set, a long one.
  fc.array(fc.nat({ max: 255 }), { minLength: 0, maxLength: 16 }),
);

/** IP frames for the RSS oracles: every protocol and hash-type case (§5.1.6.4.3), ARP too. */
const flowDesc: fc.Arbitrary<FlowDesc> = fc.record({
  ip: fc.constantFrom(4, 4, 6, 6, 0) as fc.Arbitrary<0 | 4 | 6>,
  proto: fc.constantFrom('tcp', 'tcp', 'udp', 'udp', 'icmp') as fc.Arbitrary<FlowDesc['proto']>,
  src: fc.nat({ max: 5 }),
  dst: fc.nat({ max: 5 }),
  sport: fc.oneof(fc.constantFrom(80, 443, 2794, 14230, 1766), fc.nat({ max: 0xffff })),
  dport: fc.oneof(fc.constantFrom(80, 1766, 4739, 38024, 44251), fc.nat({ max: 0xffff })),
  frag: fc.nat({ max: 5 }).map((n) => n === 0),
  vlan: fc.nat({ max: 5 }).map((n) => n === 0),
  ext: fc.oneof(
    { arbitrary: fc.constant([]), weight: 3 },
    {
      arbitrary: fc.subarray([0, 1, 2]).chain((kinds) =>
        fc.tuple(...kinds.map((k) => (k === 0 ? fc.constant({ kind: 'hop' as const }) : k === 1 ? fc.option(fc.nat({ max: 5 }), { nil: undefined }).map((home) => (home === undefined ? { kind: 'dest' as const } : { kind: 'dest' as const, home })) : fc.nat({ max: 5 }).map((address) => ({ kind: 'routing2' as const, address }))))),
      ),
      weight: 2,
    },
  ) as fc.Arbitrary<FlowDesc['ext']>,
  payload: fc.constantFrom(0, 1, 16, 200),
});

const le32b = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
/** Hash types: subsets of the nine, sometimes with unsupported bits (§5.1.6.5.7.2 MUST NOT, tolerated unless strict). */
const hashTypes: fc.Arbitrary<number> = fc.oneof(
  { arbitrary: fc.nat({ max: 0x1ff }), weight: 6 },
  { arbitrary: fc.constantFrom(0, 0x1ff, 0x2, 0x12, 0x3f, 0x1c0), weight: 3 },
  { arbitrary: fc.nat({ max: 0xffff_ffff }), weight: 1 },
);
/** Hash keys: Microsoft's (20 and 40 bytes), random ones, none, one too long (41). */
const rssKey: fc.Arbitrary<number[]> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<number[]>([0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa]) },
  { weight: 3, arbitrary: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constant<number[]>([]) },
  { weight: 1, arbitrary: fc.array(fc.nat({ max: 255 }), { minLength: 41, maxLength: 41 }) },
);
/**
 * RSS_CONFIG and HASH_CONFIG (§5.1.6.5.7.1, §5.1.6.5.6.4): well formed (table length a power of two
 * up to 128, queues within max_tx_vq) most of the time, then with one field made hostile — mask not
 * 2^n - 1 or above 127, a queue or unclassified_queue at or past max_tx_vq (out of range when past
 * the device's pairs), max_tx_vq 0 or above the pairs,
 * reserved bytes, the payload cut short or with bytes after the key. Acks are judged by rss-model.ts.
 */
const rssCtrl: fc.Arbitrary<FuzzOp> = fc
  .record({
    cmd: fc.constantFrom(1, 1, 1, 2),
    types: hashTypes,
    log: fc.nat({ max: 7 }),
    maxTxVq: fc.constantFrom(1, 2, 2),
    entries: fc.array(fc.nat({ max: 1 }), { minLength: 128, maxLength: 128 }),
    unclassified: fc.nat({ max: 1 }),
    key: rssKey,
    hostile: fc.oneof(
      { arbitrary: fc.constant('none'), weight: 8 },
      { arbitrary: fc.constantFrom('mask', 'mask-big', 'entry', 'unclassified', 'max-tx-vq-0', 'max-tx-vq-big', 'reserved', 'cut', 'trailing', 'no-key'), weight: 4 },
    ),
    cut: fc.nat({ max: 300 }),
    ackLen: fc.constantFrom(1, 1, 1, 2),
    indirect: fc.boolean(),
    apart: fc.boolean(),
  })
  .map((r): FuzzOp => {
    const n = 1 << r.log;
    let maxTxVq: number = r.maxTxVq;
    let mask = n - 1;
    let unclassified = Math.min(r.unclassified, maxTxVq - 1);
    const table = r.entries.slice(0, n).map((q) => Math.min(q, maxTxVq - 1));
    let key = r.key;
    if (r.hostile === 'mask') mask = n === 1 ? 2 : n; // a length that is not a power of two
    if (r.hostile === 'mask-big') mask = 255;
    if (r.hostile === 'entry') table[r.cut % n] = maxTxVq + (r.cut % 3);
    if (r.hostile === 'unclassified') unclassified = maxTxVq + (r.cut % 2);
    if (r.hostile === 'max-tx-vq-0') maxTxVq = 0;
    if (r.hostile === 'max-tx-vq-big') maxTxVq = 3 + (r.cut % 0xfffd);
    if (r.hostile === 'no-key') key = [];
    let payload: number[];
    if (r.cmd === 1) {
      const entries = Array.from({ length: mask + 1 }, (_, i) => table[i % n]!);
      payload = [...le32b(r.types), ...le16(mask), ...le16(unclassified), ...entries.flatMap(le16), ...le16(maxTxVq), key.length, ...key];
    } else {
      payload = [...le32b(r.types), ...(r.hostile === 'reserved' ? [0, r.cut & 0xff, 0, 0, 0, 0, 0, 1] : new Array<number>(8).fill(0)), key.length, ...key];
    }
    if (r.hostile === 'cut') payload = payload.slice(0, r.cut % payload.length);
    if (r.hostile === 'trailing') payload = [...payload, ...new Array<number>(1 + (r.cut % 5)).fill(r.cut & 0xff)];
    return { t: 'ctrl', cls: 4, cmd: r.cmd, payload, ack: r.ackLen, indirect: r.indirect, apart: r.apart };
  });

/** RSS_CONFIG as Linux sends it: hash types, a table over both queues, Microsoft's key. */
const goodRss: fc.Arbitrary<FuzzOp> = fc
  .record({ types: fc.constantFrom(0x3f, 0x1ff, 0x12, 0x3, 0x9), log: fc.nat({ max: 7 }), entries: fc.array(fc.nat({ max: 1 }), { minLength: 128, maxLength: 128 }), hashOnly: fc.nat({ max: 4 }).map((n) => n === 0) })
  .map(({ types, log, entries, hashOnly }): FuzzOp => {
    const n = 1 << log;
    const key = [0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa];
    const payload = hashOnly
      ? [...le32b(types), 0, 0, 0, 0, 0, 0, 0, 0, key.length, ...key]
      : [...le32b(types), ...le16(n - 1), ...le16(0), ...entries.slice(0, n).flatMap(le16), ...le16(2), key.length, ...key];
    return { t: 'ctrl', cls: 4, cmd: hashOnly ? 2 : 1, payload, ack: 1, indirect: false, apart: true };
  });

/** Declining some of the VIRTIO 1.2-1.4 features at init (DROPPABLE bits 22..30), nothing else. */
const newFeatureDrops: fc.Arbitrary<number> = fc.subarray([22, 23, 24, 25, 26, 27, 28, 29, 30]).map((b) => b.reduce((a, x) => a | (1 << x), 0));

/**
 * NOTF_COAL VQ_SET / VQ_GET (VIRTIO 1.3 §5.1.6.5.9.2: le16 vq_index, le16 reserved, le32
 * max_usecs, le32 max_packets) on data queues, the control queue and beyond; STATS QUERY and GET
 * (VIRTIO 1.4 §5.1.6.5.11) with entries for each queue, and their result buffers (8 bytes for
 * VQ_GET, room for the replies, or too little). Well formed, so the commands reach their checks.
 */
const coalStatsCtrl: fc.Arbitrary<FuzzOp> = fc
  .oneof(
    fc.tuple(fc.nat({ max: 5 }), fc.constantFrom(0, 1, 50, 3000), fc.constantFrom(0, 1, 4, 64)).map(([vq, usecs, packets]): [number, number, number[], number] => [6, 2, [...le16(vq), 0, 0, ...le32b(usecs), ...le32b(packets)], 1]),
    fc.tuple(fc.nat({ max: 5 }), fc.constantFrom(9, 9, 4)).map(([vq, ack]): [number, number, number[], number] => [6, 3, [...le16(vq), 0, 0], ack]),
    fc.constantFrom(1, 9, 33).map((ack): [number, number, number[], number] => [8, 0, [], ack]),
    fc
      .tuple(fc.array(fc.tuple(fc.nat({ max: 5 }), fc.constantFrom(1, 2, 4, 3, 0x8, 0x100)), { minLength: 1, maxLength: 3 }), fc.constantFrom(9, 64, 200))
      .map(([entries, ack]): [number, number, number[], number] => [8, 1, [entries.length, 0, ...entries.flatMap(([vq, types]) => [...le16(vq), 0, 0, 0, 0, 0, 0, ...le32b(types), 0, 0, 0, 0])], ack]),
  )
  .chain(([cls, cmd, payload, ack]) =>
    fc.record({ t: fc.constant('ctrl' as const), cls: fc.constant(cls), cmd: fc.constant(cmd), payload: fc.constant(payload), ack: fc.constant(ack), indirect: fc.boolean(), apart: fc.constant(true) }),
  );

const packedMistake: fc.Arbitrary<PackedMistake> = fc.record({
  first: fc.constantFrom('ok', 'ok', 'other-wrap', 'looks-used', 'zero') as fc.Arbitrary<PackedMistake['first']>,
  mid: fc.nat({ max: 3 }).map((n) => n === 0),
  id: fc.constantFrom('free', 'free', 'free', 'oob', 'held') as fc.Arbitrary<PackedMistake['id']>,
});

const REENTRY_HOOKS: Hook[] = ['transmit', 'interrupt', 'rx-filter', 'pause', 'resume', 'offloads', 'needs-reset'];
const reentryAction: fc.Arbitrary<ReentryAction> = fc.oneof(
  { arbitrary: fc.constant({ k: 'reset' as const }), weight: 5 },
  { arbitrary: fc.record({ k: fc.constant('status' as const), value: fc.constantFrom(0, 1, 3, 7, 11, 15, 0x40, 0x80) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('kick' as const), q: fc.nat({ max: 5 }) }), weight: 3 },
  {
    arbitrary: fc.record({
      k: fc.constant('queue' as const),
      q: fc.nat({ max: 4 }),
      size: fc.constantFrom(0, 1, 8, 16, 32),
      layout: fc.constantFrom('model', 'misaligned', 'outside', 'overlap', 'zero') as fc.Arbitrary<'model' | 'misaligned' | 'outside' | 'overlap' | 'zero'>,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ k: fc.constant('reg' as const), space: fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>, offset: fc.nat({ max: 0x11f }), width: fc.constantFrom(1, 2, 4) as fc.Arbitrary<1 | 2 | 4>, value: fc.nat({ max: 0xffff_ffff }) }),
    weight: 2,
  },
  { arbitrary: fc.constant({ k: 'isr' as const }), weight: 1 },
  // The host re-entering from a callback: a frame from the backend, a link change (management).
  { arbitrary: fc.record({ k: fc.constant('inject' as const), len: fc.constantFrom(0, 14, 60, 1514) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('link' as const), up: fc.boolean() }), weight: 1 },
);

/** GUEST_OFFLOADS_SET bitmaps (§5.1.6.5.8): the GUEST_* offload bits in any combination (USO4/6 of VIRTIO 1.3 too). */
const offloadBitmap: fc.Arbitrary<number[]> = fc
  .subarray([1, 7, 8, 9, 10, 54, 55])
  .map((bits) => {
    const b = [0, 0, 0, 0, 0, 0, 0, 0];
    for (const bit of bits) b[bit >> 3]! |= 1 << (bit & 7);
    return b;
  });

function opArb(focus: Focus): fc.Arbitrary<FuzzOp> {
  const w = (kind: Focus, base: number, focused: number): number => (focus === kind ? focused : base);
  return fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant('init' as const),
      // Bits 22..30 decline the VIRTIO 1.2-1.4 features (RSS, HASH_REPORT, coalescing, stats, USO, speed).
      drop:
        focus === 'rss'
          ? fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: newFeatureDrops, weight: 2 }, { arbitrary: fc.nat({ max: 1023 }), weight: 1 })
          : fc.oneof(fc.constant(0), fc.nat({ max: 1023 }), fc.nat({ max: (1 << 22) - 1 }), fc.nat({ max: 0x7fff_ffff }), newFeatureDrops),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ t: fc.constant('status' as const), value: fc.oneof(fc.constantFrom(0, 1, 3, 7, 11, 15, 0x40, 0x80, 0x4f), fc.nat({ max: 255 })) }), weight: 1 },
  {
    arbitrary: fc.record({ t: fc.constant('reg' as const), space: fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>, write: fc.boolean(), offset: fc.nat({ max: 0x11f }), width, value: value32 }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      t: fc.constant('queue' as const),
      q: queueIndex,
      size: fc.constantFrom(0, 1, 3, 8, 16, 32, 64, 0x8000),
      layout: fc.constantFrom('model', 'misaligned', 'outside', 'overlap', 'zero') as fc.Arbitrary<'model' | 'misaligned' | 'outside' | 'overlap' | 'zero'>,
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      t: fc.constant('tx' as const),
      pair: fc.constantFrom(0, 0, 0, 1) as fc.Arbitrary<0 | 1>,
      len: fc.oneof(fc.constantFrom(0, 14, 60, 1514), fc.nat({ max: 1600 })),
      hdr: fc.constantFrom('ok', 'ok', 'ok', 'short', 'none') as fc.Arbitrary<'ok' | 'short' | 'none'>,
      split: fc.integer({ min: 1, max: 4 }),
      indirect: fc.boolean(),
      writable: fc.nat({ max: 4 }).map((n) => n === 0),
      vhdr: fc.option(vnetHdr, { nil: undefined, freq: 2 }),
    }).map((op) => (op.vhdr === undefined ? (({ vhdr: _, ...rest }) => rest)(op) : op)),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      t: fc.constant('rx' as const),
      count: fc.integer({ min: 1, max: 12 }),
      len: fc.constantFrom(1, 12, 64, 256, 1526, 2048),
      split: fc.integer({ min: 1, max: 3 }),
      indirect: fc.boolean(),
      broken: fc.nat({ max: 15 }).map((n) => n === 0),
      pair: fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>,
    }).map((op) => (op.pair === 0 ? (({ pair: _, ...rest }) => rest)(op) : op)),
    weight: w('rss', 6, 40),
  },
  { arbitrary: fc.record({ t: fc.constant('flow' as const), flows: fc.array(flowDesc, { minLength: 1, maxLength: 8 }) }), weight: w('rss', 3, 40) },
  { arbitrary: rssCtrl, weight: w('rss', 3, 12) },
  { arbitrary: coalStatsCtrl, weight: w('rss', 2, 3) },
  { arbitrary: goodCtrl, weight: w('rss', 4, 6) },
  {
    arbitrary: fc.record({
      t: fc.constant('ctrl' as const),
      cls: fc.oneof(fc.nat({ max: 8 }), fc.constant(255)), // 6 NOTF_COAL, 8 STATS (VIRTIO 1.3 / 1.4)
      cmd: fc.oneof(fc.nat({ max: 6 }), fc.constant(255)),
      payload: ctrlPayload,
      ack: fc.constantFrom(1, 1, 1, 1, 2, 0) as fc.Arbitrary<0 | 1 | 2>,
      indirect: fc.boolean(),
      apart: fc.boolean(),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      t: fc.constant('raw' as const),
      q: queueIndex,
      descs: fc.array(rawDesc, { minLength: 1, maxLength: 4 }),
      table: fc.array(rawDesc, { maxLength: 4 }),
      head: fc.constantFrom('first', 'first', 'first', 'oob') as fc.Arbitrary<'first' | 'oob'>,
      packed: fc.option(packedMistake, { nil: undefined, freq: 2 }),
    }).map((op) => (op.packed === undefined ? (({ packed: _, ...rest }) => rest)(op) : op)),
    weight: w('packed', 2, 5),
  },
  { arbitrary: fc.record({ t: fc.constant('bump' as const), q: queueIndex, n: fc.constantFrom(1, 2, 33, 0x8000, 0xffff) }), weight: w('packed', 1, 2) },
  { arbitrary: fc.record({ t: fc.constant('kick' as const), q: fc.nat({ max: 6 }) }), weight: 3 },
  {
    arbitrary: fc.record({
      t: fc.constant('inject' as const),
      count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 80 })),
      len: fc.oneof(fc.constantFrom(14, 60, 64, 1514), fc.nat({ max: 1600 }), fc.constantFrom(3000, 9000, 70000)),
      dst: fc.constantFrom('main', 'main', 'bcast', 'mcast', 'other') as fc.Arbitrary<'main' | 'bcast' | 'mcast' | 'other'>,
      vlan: fc.oneof(fc.constant(-1), fc.constant(-1), fc.nat({ max: 4095 })),
      hdr: fc.option(vnetHdr, { nil: undefined, freq: 2 }),
    }).map((op) => (op.hdr === undefined ? (({ hdr: _, ...rest }) => rest)(op) : op)),
    weight: w('vnet', 6, 12),
  },
  { arbitrary: fc.record({ t: fc.constant('refuse' as const), on: fc.boolean() }), weight: w('vnet', 1, 3) },
  {
    arbitrary: offloadBitmap.chain((payload) =>
      fc.record({ t: fc.constant('ctrl' as const), cls: fc.constant(5), cmd: fc.constant(0), payload: fc.constant(payload), ack: fc.constant(1 as const), indirect: fc.boolean(), apart: fc.constant(true) }),
    ),
    weight: w('vnet', 1, 6),
  },
  {
    arbitrary: fc.record({ t: fc.constant('arm' as const), at: fc.constantFrom(...REENTRY_HOOKS), action: reentryAction, times: fc.constantFrom(1, 1, 2, 5) }),
    weight: w('reentry', 2, 12),
  },
  {
    arbitrary: fc.record({
      t: fc.constant('cycle' as const),
      dir: fc.constantFrom('tx', 'rx') as fc.Arbitrary<'tx' | 'rx'>,
      // Everyday runs cycle a little; the wrap focus takes the indices across 65535 and back to 0.
      n: focus === 'wrap' ? fc.constantFrom(300, 5000, 65536 + 40, 70000) : fc.constantFrom(20, 20, 300, 300, 5000),
      batch: fc.constantFrom(1, 3, 8, 32, 200),
    }),
    weight: w('wrap', 1, 3),
  },
  { arbitrary: fc.record({ t: fc.constant('link' as const), up: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('writable' as const), on: fc.boolean() }), weight: 1 },
  { arbitrary: fc.constant({ t: 'isr' as const }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('config' as const), write: fc.boolean(), offset: fc.nat({ max: 40 }), width, value: value32 }), weight: 1 },
  {
    arbitrary: fc.record({
      t: fc.constant('event' as const),
      q: queueIndex,
      mode: fc.constantFrom('no-interrupt', 'interrupt', 'used-event') as fc.Arbitrary<'no-interrupt' | 'interrupt' | 'used-event'>,
      value: fc.nat({ max: 0xffff }),
    }),
    weight: 1,
  },
  { arbitrary: fc.constant({ t: 'query' as const }), weight: 1 },
  { arbitrary: fc.constant({ t: 'announce' as const }), weight: 1 },
  );
}

/**
 * A sequence starting with a good initialisation most of the time (so deep states are reached);
 * the rss focus then configures RSS (a well-formed RSS_CONFIG) in most cases.
 */
export function caseArb(maxOps = 120, focus: Focus = 'all'): fc.Arbitrary<FuzzCase> {
  return fc.record({
    setup: setupArb(focus),
    ops: fc
      .tuple(fc.boolean(), fc.array(opArb(focus), { maxLength: maxOps, size: 'max' }), focus === 'rss' ? fc.option(goodRss, { freq: 4, nil: undefined }) : fc.constant(undefined))
      .map(([start, ops, rss]) => (start || focus !== 'all' ? [{ t: 'init', drop: 0 } as FuzzOp, ...(rss === undefined ? [] : [rss]), ...ops] : ops)),
  });
}
