// The driver operations the fuzzer sequences (VIRTIO 1.2 §3.1.1 initialisation, §2.7.13 supplying
// buffers, §2.7.5 descriptors incl. §2.7.5.3 indirect ones, §5.1.6 the network device's queues and
// §5.1.6.5 its control commands), as plain JSON values — so a shrunk sequence is a fixture file —
// and their fast-check generators.

import fc from 'fast-check';

/** The device and transport a sequence runs against. */
export interface FuzzSetup {
  transport: 'mmio' | 'pci' | 'pci-legacy';
  /** Queue pairs the device offers (2 offers MQ). */
  pairs: 1 | 2;
  /** Features the device does not offer (names as `features.disable` takes them). */
  disable: string[];
  /** Ring size the driver programs on the modern interfaces (the device's maximum is 32). */
  ringSize: 8 | 16 | 32;
}

/** How a raw descriptor's address is chosen. */
export type RawAddr = 'heap' | 'zero' | 'outside' | 'straddle' | 'ring' | 'huge';
/** How a raw descriptor's next is chosen. */
export type RawNext = 'auto' | 'self' | 'first' | 'oob';

export interface RawDesc {
  len: number;
  /** VIRTQ_DESC_F_NEXT 1, WRITE 2, INDIRECT 4. */
  flags: number;
  addr: RawAddr;
  next: RawNext;
}

export type FuzzOp =
  /** Linux's initialisation, the driver accepting the offer minus `drop` (bit i: DROPPABLE[i]). */
  | { t: 'init'; drop: number }
  | { t: 'status'; value: number }
  /** One raw transport register access (mmio window, pci common cfg / config space, legacy header). */
  | { t: 'reg'; space: 0 | 1; write: boolean; offset: number; width: 1 | 2 | 4; value: number }
  /** Program and enable one queue with (possibly bad) layout values. */
  | { t: 'queue'; q: number; size: number; layout: 'model' | 'misaligned' | 'outside' | 'overlap' | 'zero' }
  | { t: 'tx'; pair: 0 | 1; len: number; hdr: 'ok' | 'short' | 'none'; split: number; indirect: boolean; writable: boolean }
  /** `broken`: a chain with an out-of-range head goes out in the same avail.idx update, last. */
  | { t: 'rx'; count: number; len: number; split: number; indirect: boolean; broken?: boolean }
  | { t: 'ctrl'; cls: number; cmd: number; payload: number[]; ack: 0 | 1 | 2; indirect: boolean; apart: boolean }
  | { t: 'raw'; q: number; descs: RawDesc[]; table: RawDesc[]; head: 'first' | 'oob' }
  | { t: 'bump'; q: number; n: number }
  | { t: 'kick'; q: number }
  | { t: 'inject'; count: number; len: number; dst: 'main' | 'bcast' | 'mcast' | 'other'; vlan: number }
  | { t: 'link'; up: boolean }
  | { t: 'writable'; on: boolean }
  | { t: 'isr' }
  | { t: 'config'; write: boolean; offset: number; width: 1 | 2 | 4; value: number }
  | { t: 'event'; q: number; mode: 'no-interrupt' | 'interrupt' | 'used-event'; value: number }
  | { t: 'query' }
  | { t: 'announce' };

/** A sequence: setup plus operations. */
export interface FuzzCase {
  setup: FuzzSetup;
  ops: FuzzOp[];
}

/** Features a driver may decline at init (bit i of `drop`). */
export const DROPPABLE = ['VERSION_1', 'MRG_RXBUF', 'EVENT_IDX', 'INDIRECT_DESC', 'CTRL_VQ', 'CTRL_RX', 'CTRL_VLAN', 'MQ', 'MAC', 'STATUS'] as const;

/** Features a setup may leave out of the offer; the CTRL_VQ dependants go with it. */
const DISABLEABLE = ['MRG_RXBUF', 'EVENT_IDX', 'INDIRECT_DESC', 'CTRL_VQ', 'CTRL_VLAN', 'CTRL_RX_EXTRA', 'GUEST_ANNOUNCE'] as const;
const NEEDS_CTRL_VQ = ['CTRL_RX', 'CTRL_VLAN', 'CTRL_RX_EXTRA', 'GUEST_ANNOUNCE', 'MQ', 'CTRL_MAC_ADDR'];

const setupArb: fc.Arbitrary<FuzzSetup> = fc
  .record({
    transport: fc.constantFrom('mmio', 'pci', 'pci-legacy') as fc.Arbitrary<FuzzSetup['transport']>,
    pairs: fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>,
    disable: fc.subarray([...DISABLEABLE]),
    ringSize: fc.constantFrom(8, 16, 32) as fc.Arbitrary<8 | 16 | 32>,
  })
  .map((s) => {
    let disable: string[] = [...s.disable];
    if (s.pairs === 2) disable = disable.filter((d) => d !== 'CTRL_VQ');
    if (disable.includes('CTRL_VQ')) disable = [...new Set([...disable, ...NEEDS_CTRL_VQ])];
    return { ...s, disable };
  });

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

const opArb: fc.Arbitrary<FuzzOp> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('init' as const), drop: fc.oneof(fc.constant(0), fc.nat({ max: 1023 })) }), weight: 3 },
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
    }),
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
    }),
    weight: 6,
  },
  { arbitrary: goodCtrl, weight: 4 },
  {
    arbitrary: fc.record({
      t: fc.constant('ctrl' as const),
      cls: fc.oneof(fc.nat({ max: 6 }), fc.constant(255)),
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
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ t: fc.constant('bump' as const), q: queueIndex, n: fc.constantFrom(1, 2, 33, 0x8000, 0xffff) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('kick' as const), q: fc.nat({ max: 6 }) }), weight: 3 },
  {
    arbitrary: fc.record({
      t: fc.constant('inject' as const),
      count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 80 })),
      len: fc.oneof(fc.constantFrom(14, 60, 64, 1514), fc.nat({ max: 1600 }), fc.constantFrom(3000, 9000, 70000)),
      dst: fc.constantFrom('main', 'main', 'bcast', 'mcast', 'other') as fc.Arbitrary<'main' | 'bcast' | 'mcast' | 'other'>,
      vlan: fc.oneof(fc.constant(-1), fc.constant(-1), fc.nat({ max: 4095 })),
    }),
    weight: 6,
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

/** A sequence starting with a good initialisation most of the time (so deep states are reached). */
export function caseArb(maxOps = 120): fc.Arbitrary<FuzzCase> {
  return fc.record({
    setup: setupArb,
    ops: fc.tuple(fc.boolean(), fc.array(opArb, { maxLength: maxOps, size: 'max' })).map(([start, ops]) => (start ? [{ t: 'init', drop: 0 } as FuzzOp, ...ops] : ops)),
  });
}
