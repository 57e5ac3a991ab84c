// The two sides of the control-queue differential test (VIRTIO 1.2 §5.1.6.5): plays one corpus
// case (ctrl-corpus.ts) as a guest driver on QEMU 7.2's virtio-net-pci (QemuOracle, modern
// interface) and on this project's VirtioNetDevice (NetRig over the PCI transport, compat 'qemu'),
// and records the same observations on both: per chain the used entry, the ack bytes, the
// DEVICE_NEEDS_RESET bit and the NIC_RX_FILTER_CHANGED events it caused; per case every
// query-rx-filter reply, the config `mac` and `status` fields (§5.1.4) and the final status.

import { QemuOracle, FEATURE_BITS, type FeatureName, type RawDescriptor } from '../support/qemu-oracle.js';
import { NetRig } from '../support/net-rig.js';
import { NEEDS_RESET, notifyQueue, readConfig, readConfigBytes, readStatus } from '../support/driver-transport.js';
import { NIC_ID, NIC_MAC, type CtrlCase, type CtrlStep } from './ctrl-corpus.js';

/** What one control chain did. */
export interface ChainResult {
  label: string;
  /** A used-ring entry came back for the chain. */
  completed: boolean;
  /** The writable bytes after completion (pre-filled with 0xff); null when not completed or no ack. */
  ack: number[] | null;
  usedLen: number;
  /** NIC_RX_FILTER_CHANGED events the chain caused. */
  events: number;
  /** DEVICE_NEEDS_RESET (0x40) in the device status after the chain. */
  needsReset: boolean;
}

/** What one case did, in a form both sides fill identically (deep-equal comparable). */
export interface CaseResult {
  /** Negotiated feature names (VERSION_1 included), ascending by bit. */
  negotiated: string[];
  chains: ChainResult[];
  /** query-rx-filter replies: at the start (after reset), at each query step, at the end. */
  queries: Record<string, unknown>[];
  /** Config `status` (§5.1.4: LINK_UP, ANNOUNCE) after each announce, query and reset step. */
  statusAfterSteps: number[];
  /** Config `mac` and `status` (§5.1.4) at the end. */
  configMac: string;
  configStatus: number;
  /** DEVICE_NEEDS_RESET at the end. */
  needsReset: boolean;
}

/** announce-self arguments: one round, so QEMU's announce timer never needs the (stopped) clock. */
const ANNOUNCE_SELF_ARGS = { initial: 50, max: 550, rounds: 1, step: 100 };
const VRING_DESC_F_NEXT = 1;
const VRING_DESC_F_WRITE = 2;
const VRING_DESC_F_INDIRECT = 4;
const DESC_SIZE = 16;
/** Device status bit DEVICE_NEEDS_RESET (§2.1), the oracle's own copy. */
const STATUS_NEEDS_RESET = 0x40;
const ACK_SENTINEL = 0xff;
/** Offset of the 16-bit `status` field in virtio-net config space (§5.1.4). */
const NET_CONFIG_STATUS = 6;
const VERSION_1 = 1n << BigInt(FEATURE_BITS.VERSION_1);

function featureWord(names: readonly FeatureName[]): bigint {
  let f = 0n;
  for (const n of names) f |= 1n << BigInt(FEATURE_BITS[n]);
  return f;
}

function featureNames(word: bigint): string[] {
  return (Object.entries(FEATURE_BITS) as [FeatureName, number][])
    .filter(([, bit]) => ((word >> BigInt(bit)) & 1n) === 1n)
    .sort((a, b) => a[1] - b[1])
    .map(([name]) => name);
}

/** A plain-data copy (the QMP reply is parsed JSON; the model's reply goes through the same). */
function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/**
 * QEMU 7.2 side: one QEMU process per driver feature set (the oracle fixes the guest features at
 * start), reused for every case with that set and reset before each case.
 */
export class QemuSide {
  private readonly oracles = new Map<string, QemuOracle>();
  startupMs = 0;

  /** `packed`: QEMU's NIC with `packed=on`, driven over packed rings (§2.8). */
  constructor(readonly packed = false) {}

  /** QEMU processes started so far. */
  get processes(): number {
    return this.oracles.size;
  }

  async run(c: CtrlCase): Promise<CaseResult> {
    const o = await this.oracleFor(c.features);
    await o.reset();
    const chains: ChainResult[] = [];
    const queries = [await o.queryRxFilter()]; // also re-arms NIC_RX_FILTER_CHANGED after the reset
    const statusAfterSteps: number[] = [];
    for (const step of c.steps) {
      switch (step.kind) {
        case 'chain': {
          if (o.isBroken) throw new Error(`corpus: case ${c.name} sends "${step.label}" after a chain that broke QEMU's device, without a reset`);
          const r = step.indirect ? await this.indirect(o, step) : await o.ctrl(step.segments, step.ackLen);
          chains.push({ label: step.label, completed: r.outcome === 'completed', ack: r.ack, usedLen: r.usedLen, events: r.rxFilterEvents, needsReset: r.needsReset });
          break;
        }
        case 'announce':
          await o.qmp('announce-self', ANNOUNCE_SELF_ARGS);
          break;
        case 'query':
          queries.push(await o.queryRxFilter());
          break;
        case 'reset':
          await o.reset();
          break;
      }
      if (step.kind !== 'chain') statusAfterSteps.push(await o.readConfig(NET_CONFIG_STATUS, 2));
    }
    queries.push(await o.queryRxFilter());
    return {
      negotiated: featureNames(o.negotiatedFeatures),
      chains,
      queries: plain(queries),
      statusAfterSteps,
      configMac: await o.readConfigMac(),
      configStatus: await o.readConfig(NET_CONFIG_STATUS, 2),
      needsReset: ((await o.readStatus()) & STATUS_NEEDS_RESET) !== 0,
    };
  }

  async stop(): Promise<void> {
    for (const o of this.oracles.values()) await o.stop();
    this.oracles.clear();
  }

  private async oracleFor(features: readonly FeatureName[]): Promise<QemuOracle> {
    const key = features.join(',');
    let o = this.oracles.get(key);
    if (o === undefined) {
      // virtio-net-pci offers MQ only with mq=on; its one queue pair comes from the hubport. RSS and
      // HASH_REPORT with rss=on / hash=on: a hubport cannot take QEMU's eBPF program, so this is
      // QEMU's software RSS.
      const props = { ...(features.includes('MQ') ? { mq: true } : {}), ...(features.includes('RSS') ? { rss: true } : {}), ...(features.includes('HASH_REPORT') ? { hash: true } : {}) };
      o = await QemuOracle.start({ mac: NIC_MAC, guestFeatures: features, features: props, packed: this.packed });
      this.startupMs += o.startupMs;
      this.oracles.set(key, o);
    }
    return o;
  }

  /** The chain through one INDIRECT descriptor (§2.7.5.3): table, then the buffers, then the ack. */
  private indirect(o: QemuOracle, step: Extract<CtrlStep, { kind: 'chain' }>) {
    const base = o.dataArea.address;
    const n = step.segments.length + 1;
    const table = new Uint8Array(n * DESC_SIZE);
    const view = new DataView(table.buffer);
    const memory: { address: number; bytes: Uint8Array }[] = [{ address: base, bytes: table }];
    let at = base + table.length;
    const parts = [...step.segments, new Uint8Array(step.ackLen).fill(ACK_SENTINEL)];
    let ackAddress = 0;
    parts.forEach((bytes, i) => {
      const last = i === n - 1;
      view.setBigUint64(i * DESC_SIZE, BigInt(at), true);
      view.setUint32(i * DESC_SIZE + 8, bytes.length, true);
      // A packed table's entries follow each other: only WRITE, no next (§2.8.7).
      view.setUint16(i * DESC_SIZE + 12, last ? VRING_DESC_F_WRITE : this.packed ? 0 : VRING_DESC_F_NEXT, true);
      view.setUint16(i * DESC_SIZE + 14, last || this.packed ? 0 : i + 1, true);
      memory.push({ address: at, bytes });
      if (last) ackAddress = at;
      at += Math.ceil(bytes.length / 8) * 8;
    });
    const head: RawDescriptor = { addr: base, len: table.length, flags: VRING_DESC_F_INDIRECT, next: 0 };
    return o.ctrlRaw({ descriptors: [head], memory, ack: { address: ackAddress, length: step.ackLen } });
  }
}

/** The model side: a fresh device per case (as QEMU's is reset), same MAC, features and bytes; `packed`: over packed rings. */
export function runModel(c: CtrlCase, packed = false): CaseResult {
  const rig = new NetRig({
    ...(packed ? { ring: 'packed' as const } : {}),
    id: NIC_ID,
    mac: NIC_MAC,
    compat: 'qemu',
    transport: 'pci',
    init: false,
    // The model offers MQ only with more than one pair; QEMU's max_virtqueue_pairs is 1, so the
    // corpus never asks for a pair count the two would judge differently (2).
    queuePairs: c.features.includes('MQ') ? 2 : 1,
    // RSS and HASH_REPORT are off by default in the model (QEMU: rss=off, hash=off).
    features: { enable: (['RSS', 'HASH_REPORT'] as const).filter((f) => c.features.includes(f)) },
  });
  const wanted = featureWord(c.features) | VERSION_1 | (packed ? 1n << BigInt(FEATURE_BITS.RING_PACKED) : 0n);
  const init = rig.start(wanted);
  let events = 0;
  rig.device.on('rx-filter-changed', () => events++);
  const needsReset = (): boolean => (readStatus(rig.driver) & NEEDS_RESET) !== 0;
  const chains: ChainResult[] = [];
  const queries: unknown[] = [rig.device.queryRxFilter()];
  const statusAfterSteps: number[] = [];
  for (const step of c.steps) {
    switch (step.kind) {
      case 'chain': {
        const before = events;
        const buffers = [
          ...step.segments.map((s) => ({ len: s.length, data: s })),
          ...(step.ackLen > 0 ? [{ len: step.ackLen, write: true, data: new Array<number>(step.ackLen).fill(ACK_SENTINEL) }] : []),
        ];
        const ctrl = rig.ringAt(rig.ctrlIndex);
        const head = ctrl.addChain(buffers, { indirect: step.indirect });
        notifyQueue(rig.driver, rig.ctrlIndex);
        const used = ctrl.takeUsed().find((u) => u.id === head);
        chains.push({
          label: step.label,
          completed: used !== undefined,
          ack: used !== undefined && step.ackLen > 0 ? [...ctrl.bufferBytes(head, step.segments.length)] : null,
          usedLen: used?.len ?? 0,
          events: events - before,
          needsReset: needsReset(),
        });
        break;
      }
      case 'announce':
        rig.device.announce();
        break;
      case 'query':
        queries.push(rig.device.queryRxFilter());
        break;
      case 'reset':
        rig.start(wanted);
        break;
    }
    if (step.kind !== 'chain') statusAfterSteps.push(readConfig(rig.driver, NET_CONFIG_STATUS, 2));
  }
  queries.push(rig.device.queryRxFilter());
  const macBytes = readConfigBytes(rig.driver, 0, 6);
  return {
    negotiated: featureNames(init.negotiated),
    chains,
    queries: plain(queries) as Record<string, unknown>[],
    statusAfterSteps,
    configMac: [...macBytes].map((b) => b.toString(16).padStart(2, '0')).join(':'),
    configStatus: readConfig(rig.driver, NET_CONFIG_STATUS, 2),
    needsReset: needsReset(),
  };
}
