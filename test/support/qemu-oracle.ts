// QEMU 7.2's virtio-net-pci as a reference oracle for control-queue behaviour (VIRTIO 1.2
// §5.1.6.5 "Control Virtqueue"). No guest runs: QEMU is started with `-qtest stdio -S`, and this
// class plays the guest driver through qtest (device initialization §3.1.1, split ring §2.7),
// sends control chains made of caller-chosen bytes, and reads back what QEMU did: the used-ring
// entry, the ack byte, the device status, `query-rx-filter` and NIC_RX_FILTER_CHANGED events
// over QMP. A differential test sends the same bytes to the model and compares. With `packed: true`
// the NIC gets `packed=on`, the driver acknowledges VIRTIO_F_RING_PACKED and its rings are packed
// (§2.8, PackedQemuRing): the same chains go through packed rings.
//
// Facts this relies on (QEMU 7.2, measured by test/oracle/qemu-oracle.test.ts):
// - with `ioeventfd=off` and no KVM, a queue notify is handled synchronously inside the qtest
//   port/MMIO write, so the used ring is final when that write's `OK` comes back;
// - QMP writes an event before the reply to any command sent after the event was emitted, so
//   one QMP round trip after a chain makes the event list complete for that chain.

import { QemuProcess, QEMU_BINARY, findOnPath } from './qemu-process.js';
import { QtestChannel } from './qemu-qtest.js';
import { QmpClient, type QmpEvent } from './qemu-qmp.js';
import { findVirtioNet, openLegacy, openModern, type VirtioPciDriver } from './qemu-pci.js';
import { DriverRing, PackedQemuRing, legacyQueueLayout, packedQueueLayout, type RawDescriptor } from './qemu-ring.js';
import * as C from './qemu-virtio-constants.js';

export { QEMU_BINARY } from './qemu-process.js';
export type { RawDescriptor } from './qemu-ring.js';
export type { QmpEvent } from './qemu-qmp.js';
export { DEFAULT_GUEST_FEATURES, FEATURE_BITS, type FeatureName } from './qemu-virtio-constants.js';

export interface QemuOracleOptions {
  /** The NIC's MAC (`-device …,mac=`), "52:54:00:12:34:56" form. Default 52:54:00:12:34:56. */
  mac?: string;
  /** virtio-net-pci `-device` properties, e.g. `{ ctrl_vlan: false }` → `ctrl_vlan=off`. */
  features?: Record<string, boolean>;
  /** Feature names the driver accepts (negotiated = these ∩ offered). Default: DEFAULT_GUEST_FEATURES. */
  guestFeatures?: readonly C.FeatureName[];
  /** Drive the legacy I/O BAR instead of the modern interface (then VERSION_1 is not negotiated). */
  legacy?: boolean;
  /** Reply timeout of every qtest and QMP request. Default 5000 ms. */
  timeoutMs?: number;
  /** Packed virtqueues (§2.8): `packed=on`, RING_PACKED negotiated, packed driver rings (modern interface only). */
  packed?: boolean;
}

/** How QEMU handled one control chain. */
export type CtrlOutcome =
  /** A used-ring entry came back (the ack says OK or ERR). */
  | 'completed'
  /** No used entry; QEMU reported a virtio error and marked the device broken (reset() recovers). */
  | 'device-error'
  /** No used entry and no error report within the wait: QEMU silently kept the chain. */
  | 'no-completion';

export interface CtrlResult {
  outcome: CtrlOutcome;
  /** The writable bytes after completion (pre-filled with 0xff, so 0xff = not written); null when not completed or no writable part. */
  ack: number[] | null;
  /** used.len of the completion; 0 when there is none. */
  usedLen: number;
  /** The id QEMU put in the used entry (the head it consumed); null when there is none. */
  usedId: number | null;
  /** DEVICE_NEEDS_RESET in the status after the chain (only the modern interface can show it). */
  needsReset: boolean;
  /** QEMU's error report for this chain (its stderr line), if any. */
  deviceError: string | null;
  /** NIC_RX_FILTER_CHANGED events this chain produced. */
  rxFilterEvents: number;
}

/** A chain laid out by the caller, descriptor by descriptor (for malformed chains). */
export interface RawChain {
  descriptors: readonly RawDescriptor[];
  /** Head put in the avail ring. Default 0. */
  head?: number;
  /** Bytes to place in guest RAM first (addresses from `dataArea`). */
  memory?: readonly { address: number; bytes: Uint8Array }[];
  /** A region to read back as the ack after completion. */
  ack?: { address: number; length: number };
}

/** The sentinel the ack region is filled with before a chain, so "not written" is visible. */
export const ACK_SENTINEL = 0xff;
/** Where the rings start in guest RAM (above the real-mode area; nothing else uses RAM under -S). */
const RING_BASE = 0x1_0000;
/** Size of the area for chain payloads: room for a full 64-entry chain of MAC tables. */
const DATA_AREA_SIZE = 0x10_0000;
/** Guest RAM the machine gets (`-m`), MiB: rings + data area fit many times over. */
const GUEST_RAM_MIB = 64;
/** Longest wait for QEMU's error line when a chain did not complete (it is normally already there). */
const ERROR_REPORT_WAIT_MS = 2000;
/** Largest ack region a caller may ask for: the control ack is one byte; this allows oversizing. */
const MAX_ACK_LEN = 4096;
/** Queue pairs the oracle sets up (only the first pair; the control queue index follows MQ). */
const ONE_PAIR = 1;

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const PROPERTY_RE = /^[a-z][a-z0-9_-]*$/;

export class QemuOracle {
  /** Milliseconds from spawning QEMU to DRIVER_OK. */
  startupMs = 0;
  /** Feature bits the device offered, and the ones negotiated. */
  offeredFeatures = 0n;
  negotiatedFeatures = 0n;
  private driver!: VirtioPciDriver;
  private ctrlRing!: DriverRing | PackedQemuRing;
  private ctrlIndex = C.CTRL_QUEUE;
  private dataBase = 0;
  private broken = false;

  private constructor(
    private readonly proc: QemuProcess,
    private readonly qt: QtestChannel,
    private readonly qmpClient: QmpClient,
    private readonly opts: Required<Pick<QemuOracleOptions, 'legacy' | 'timeoutMs' | 'packed'>> & { guestFeatures: readonly C.FeatureName[] },
  ) {}

  /** True when `qemu-system-x86_64` is on PATH. */
  static available(): boolean {
    return findOnPath(QEMU_BINARY) !== null;
  }

  /** Spawns QEMU, connects qtest and QMP, and brings the NIC to DRIVER_OK. */
  static async start(options: QemuOracleOptions = {}): Promise<QemuOracle> {
    const began = Date.now();
    const mac = options.mac ?? '52:54:00:12:34:56';
    if (!MAC_RE.test(mac)) throw new TypeError(`QemuOracle: options.mac must look like "52:54:00:12:34:56", got ${JSON.stringify(mac)}`);
    const props: string[] = [];
    for (const [name, on] of Object.entries(options.features ?? {})) {
      if (!PROPERTY_RE.test(name) || typeof on !== 'boolean') {
        throw new TypeError(`QemuOracle: options.features must map virtio-net-pci property names (e.g. ctrl_vlan) to booleans, got ${name}=${String(on)}`);
      }
      props.push(`${name}=${on ? 'on' : 'off'}`);
    }
    const legacy = options.legacy ?? false;
    const packed = options.packed ?? false;
    if (packed && legacy) throw new TypeError('QemuOracle: packed: true needs the modern interface (legacy: false)');
    if (packed) props.push('packed=on');
    const guestFeatures = [...(options.guestFeatures ?? C.DEFAULT_GUEST_FEATURES), ...(packed ? (['RING_PACKED'] as const) : [])];
    for (const f of guestFeatures) {
      if (!(f in C.FEATURE_BITS)) {
        throw new TypeError(`QemuOracle: options.guestFeatures has unknown feature ${JSON.stringify(f)}; allowed: ${Object.keys(C.FEATURE_BITS).join(', ')}`);
      }
      if (legacy && C.FEATURE_BITS[f] >= 32) throw new TypeError(`QemuOracle: options.guestFeatures ${f} cannot be negotiated with legacy: true`);
    }
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new TypeError(`QemuOracle: options.timeoutMs must be a positive integer, got ${timeoutMs}`);
    const binary = findOnPath(QEMU_BINARY);
    if (binary === null) throw new Error(`QemuOracle: ${QEMU_BINARY} is not on PATH (the host setup step, scripts/setup-host.ts, installs it)`);

    const device = ['virtio-net-pci', 'netdev=n0', 'id=nic0', `mac=${mac}`, 'romfile=', 'ioeventfd=off', ...props].join(',');
    const proc = new QemuProcess(binary, (qmpPath) => [
      '-machine', 'pc', '-accel', 'tcg',
      '-qtest', 'stdio', '-qtest-log', '/dev/null', '-S',
      '-display', 'none', '-nodefaults', '-m', String(GUEST_RAM_MIB),
      // A hub port needs no host resources or privileges; QEMU warns that the hub has no host
      // link, which is true and harmless: the oracle never moves frames.
      '-netdev', 'hubport,id=n0,hubid=0',
      '-device', device,
      '-qmp', `unix:${qmpPath},server=on,wait=off`,
    ]);
    const context = (): string => proc.context();
    const qt = new QtestChannel(proc.child.stdin, proc.child.stdout, { timeoutMs, context });
    proc.child.once('exit', () => qt.close(proc.exitStatus ?? 'QEMU exited'));
    let oracle: QemuOracle | undefined;
    try {
      // The first reply proves QEMU finished initializing, so the QMP socket is listening.
      await qt.memRead(0, 1);
      const qmp = await QmpClient.connect(proc.qmpPath, { timeoutMs, context });
      oracle = new QemuOracle(proc, qt, qmp, { legacy, timeoutMs, guestFeatures, packed });
      await oracle.open();
      await oracle.initialize();
      oracle.startupMs = Date.now() - began;
      return oracle;
    } catch (err) {
      if (oracle !== undefined) await oracle.stop();
      else {
        qt.close('start failed');
        await proc.stop();
      }
      throw err;
    }
  }

  /** True after a chain made QEMU mark the device broken; `reset()` recovers. */
  get isBroken(): boolean {
    return this.broken;
  }

  /** QEMU's process id (for diagnostics and tests of cleanup). */
  get pid(): number | undefined {
    return this.proc.child.pid;
  }

  /** The QMP unix socket QEMU listens on; it lives in a private directory stop() removes. */
  get qmpSocketPath(): string {
    return this.proc.qmpPath;
  }

  /** Everything QEMU wrote to stderr so far. */
  get stderr(): string {
    return this.proc.stderrText;
  }

  /** First guest-physical address `ctrlRaw` callers may use for their bytes, and its size. */
  get dataArea(): { address: number; size: number } {
    return { address: this.dataBase, size: DATA_AREA_SIZE };
  }

  /**
   * Sends one control chain: each of `segments` is one device-readable descriptor, followed by
   * one device-writable descriptor of `ackLen` bytes (none when 0) pre-filled with 0xff.
   */
  async ctrl(segments: readonly Uint8Array[], ackLen = 1): Promise<CtrlResult> {
    if (!Number.isInteger(ackLen) || ackLen < 0 || ackLen > MAX_ACK_LEN) {
      throw new TypeError(`QemuOracle.ctrl: ackLen must be an integer 0..${MAX_ACK_LEN}, got ${ackLen}`);
    }
    const count = segments.length + (ackLen > 0 ? 1 : 0);
    if (count === 0) throw new TypeError('QemuOracle.ctrl: a chain needs at least one descriptor');
    const descriptors: RawDescriptor[] = [];
    const memory: { address: number; bytes: Uint8Array }[] = [];
    let at = this.dataBase;
    const place = (length: number, flags: number): number => {
      const address = at;
      descriptors.push({ addr: address, len: length, flags, next: descriptors.length + 1 });
      at += align8(length);
      return address;
    };
    for (const s of segments) memory.push({ address: place(s.length, 0), bytes: s });
    let ack: RawChain['ack'];
    if (ackLen > 0) {
      const address = place(ackLen, C.VIRTQ_DESC_F_WRITE);
      memory.push({ address, bytes: new Uint8Array(ackLen).fill(ACK_SENTINEL) });
      ack = { address, length: ackLen };
    }
    for (let i = 0; i < descriptors.length - 1; i++) descriptors[i]!.flags |= C.VIRTQ_DESC_F_NEXT;
    descriptors[descriptors.length - 1]!.next = 0;
    return this.ctrlRaw(ack === undefined ? { descriptors, memory } : { descriptors, memory, ack });
  }

  /** Sends a chain laid out descriptor by descriptor, exactly as given (no validation). */
  async ctrlRaw(chain: RawChain): Promise<CtrlResult> {
    if (this.broken) throw new Error('QemuOracle: QEMU marked the device broken on an earlier chain; call reset() first');
    if (chain.descriptors.length > this.ctrlRing.queue.size) {
      throw new TypeError(`QemuOracle.ctrlRaw: ${chain.descriptors.length} descriptors exceed the control queue size ${this.ctrlRing.queue.size}`);
    }
    for (const m of chain.memory ?? []) {
      if (m.address < this.dataBase || m.address + m.bytes.length > this.dataBase + DATA_AREA_SIZE) {
        throw new RangeError(`QemuOracle.ctrlRaw: memory at 0x${m.address.toString(16)} (+${m.bytes.length}) is outside dataArea`);
      }
      if (m.bytes.length > 0) await this.qt.memWrite(m.address, m.bytes);
    }
    const eventsBefore = this.countEvents('NIC_RX_FILTER_CHANGED');
    const stderrMark = this.proc.stderrText.length;
    await this.ctrlRing.writeDescriptors(chain.descriptors);
    await this.ctrlRing.publish(chain.head ?? 0);
    await this.driver.notify(this.ctrlIndex);
    const used = await this.ctrlRing.takeUsed();
    const needsReset = ((await this.driver.readStatus()) & C.STATUS_DEVICE_NEEDS_RESET) !== 0;
    let deviceError: string | null = null;
    if (used === null || needsReset) {
      deviceError = await this.proc.stderrLineAfter(stderrMark, ERROR_REPORT_WAIT_MS);
      // The chain stays in the avail ring (or the device stopped): nothing after it is meaningful.
      this.broken = true;
    }
    const ackBytes = used !== null && chain.ack !== undefined ? [...(await this.qt.memRead(chain.ack.address, chain.ack.length))] : null;
    await this.qmpClient.execute('query-status'); // barrier: every event of this chain is now in
    return {
      outcome: used !== null ? 'completed' : deviceError !== null ? 'device-error' : 'no-completion',
      ack: ackBytes,
      usedLen: used?.len ?? 0,
      usedId: used?.id ?? null,
      needsReset,
      deviceError,
      rxFilterEvents: this.countEvents('NIC_RX_FILTER_CHANGED') - eventsBefore,
    };
  }

  /** Resets the device (status 0, which also clears QEMU's broken flag) and initializes it again. */
  async reset(): Promise<void> {
    await this.initialize();
  }

  /** QMP `query-rx-filter` for one NIC; this also re-arms NIC_RX_FILTER_CHANGED in QEMU. */
  async queryRxFilter(name = 'nic0'): Promise<Record<string, unknown>> {
    const reply = await this.qmpClient.execute<Record<string, unknown>[]>('query-rx-filter', { name });
    const entry = reply[0];
    if (entry === undefined) throw new Error(`QemuOracle: query-rx-filter for ${name} returned nothing`);
    return entry;
  }

  /** Any QMP command (e.g. `announce-self`); resolves with its return value. */
  qmp<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    return this.qmpClient.execute<T>(command, args);
  }

  /** Events received so far, oldest first (complete up to the last ctrl()/qmp() call). */
  events(): { event: string; data: Record<string, unknown> }[] {
    return this.qmpClient.events.map((e: QmpEvent) => ({ event: e.event, data: e.data }));
  }

  countEvents(event: string): number {
    let n = 0;
    for (const e of this.qmpClient.events) if (e.event === event) n++;
    return n;
  }

  /** Reads the device-specific config space (virtio-net: mac at 0, status at 6, §5.1.4). */
  readConfig(offset: number, width: 1 | 2 | 4): Promise<number> {
    return this.driver.readConfig(offset, width);
  }

  /** The MAC in device config space, "52:54:00:12:34:56" form. */
  async readConfigMac(): Promise<string> {
    const bytes: string[] = [];
    for (let i = 0; i < 6; i++) bytes.push((await this.readConfig(C.NET_CONFIG_MAC + i, 1)).toString(16).padStart(2, '0'));
    return bytes.join(':');
  }

  /** The device status register (§2.1). */
  readStatus(): Promise<number> {
    return this.driver.readStatus();
  }

  /** Kills QEMU and removes its socket directory. Safe to call more than once, and after a failure. */
  async stop(): Promise<void> {
    this.qmpClient.close();
    this.qt.close('the oracle was stopped');
    await this.proc.stop();
  }

  private async open(): Promise<void> {
    const found = await findVirtioNet(this.qt);
    if (found === null) throw new Error(`QemuOracle: no virtio-net function on PCI bus 0\n${this.proc.context()}`);
    this.driver = this.opts.legacy ? await openLegacy(found.config, found.deviceId, this.qt) : await openModern(found.config, found.deviceId, this.qt);
  }

  /** Reset, ACKNOWLEDGE, DRIVER, features, [FEATURES_OK,] queues, DRIVER_OK (§3.1.1). */
  private async initialize(): Promise<void> {
    const d = this.driver;
    await d.writeStatus(0);
    await d.writeStatus(C.STATUS_ACKNOWLEDGE);
    await d.writeStatus(C.STATUS_ACKNOWLEDGE | C.STATUS_DRIVER);
    this.offeredFeatures = await d.readDeviceFeatures();
    let wanted = 0n;
    for (const f of this.opts.guestFeatures) wanted |= 1n << BigInt(C.FEATURE_BITS[f]);
    if (d.kind === 'modern') wanted |= 1n << BigInt(C.FEATURE_BITS.VERSION_1);
    this.negotiatedFeatures = wanted & this.offeredFeatures;
    await d.writeDriverFeatures(this.negotiatedFeatures);
    let status = C.STATUS_ACKNOWLEDGE | C.STATUS_DRIVER;
    if (d.kind === 'modern') {
      status |= C.STATUS_FEATURES_OK;
      await d.writeStatus(status);
      if (((await d.readStatus()) & C.STATUS_FEATURES_OK) === 0) {
        throw new Error(`QemuOracle: QEMU refused features 0x${this.negotiatedFeatures.toString(16)}\n${this.proc.context()}`);
      }
    }
    const mq = (this.negotiatedFeatures >> BigInt(C.FEATURE_BITS.MQ)) & 1n;
    // With MQ the control queue follows all 2*max_virtqueue_pairs data queues (§5.1.2).
    const pairs = mq === 1n ? await d.readConfig(8, 2) : ONE_PAIR;
    this.ctrlIndex = 2 * pairs;
    let base = RING_BASE;
    for (const index of [C.RX_QUEUE, C.TX_QUEUE, this.ctrlIndex]) {
      const size = await d.queueMaxSize(index);
      if (size === 0) throw new Error(`QemuOracle: queue ${index} does not exist\n${this.proc.context()}`);
      const layout = this.opts.packed ? packedQueueLayout(base, size) : legacyQueueLayout(base, size);
      const ring = this.opts.packed ? new PackedQemuRing(this.qt, layout) : new DriverRing(this.qt, layout);
      await ring.clear();
      await d.setupQueue(index, layout);
      if (index === this.ctrlIndex) this.ctrlRing = ring;
      base = layout.end;
    }
    this.dataBase = base;
    await d.writeStatus(status | C.STATUS_DRIVER_OK);
    this.broken = false;
  }
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
