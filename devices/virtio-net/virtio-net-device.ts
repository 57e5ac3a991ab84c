// The network device (VIRTIO 1.2 §5.1): wires the virtio core to the NIC's parts — feature set and
// config space (net-options.ts, net-config.ts), control queue (ctrl-queue.ts), rx filter with its
// once-per-query change event (rx-filter.ts, change-latch.ts, rx-filter-query.ts), and the TX/RX
// datapath (tx-path.ts, rx-path.ts) over a pluggable netdev.
//
// Queue layout (§5.1.2): receiveq1, transmitq1, …, receiveqN, transmitqN, then controlq. Without
// MQ negotiated the control queue is queue 2 whatever N is.
//
// Multiqueue (§5.1.6.5.6, §5.1.6.5.7): VQ_PAIRS_SET (or RSS_CONFIG's max_tx_vq) decides which
// transmit queues are served (1 pair until the driver says otherwise); each received frame goes to
// the receive queue steering.ts picks (RSS table, the backend's queue, or a flow hash).
//
// Composition: the NIC owns its virtio core (`this.core`, devices/virtio/virtio-core.ts), built last
// in the constructor from the NIC's spec and handlers; `VirtioDevice` is only the facade transports
// call. Events: 'rx-filter-changed' ({ name, path }), plus the core's 'diagnostic', 'needs-reset',
// 'status' (`NetEvents`). Every driver mistake, ring-level ones included, is a diagnostic
// (`device.diagnostics()`), its code in `NetDiagnosticCode` or the core's table.

import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import { defer, hostTimers } from '../../lib/base/schedule.js';
import { VirtioDevice } from '../virtio/virtio-device.js';
import { VirtioCore } from '../virtio/virtio-core.js';
import type { CoreEvents, CoreHandlers, DeviceSpec, RunningQueues } from '../virtio/core-types.js';
import type { QueueFault } from '../virtio/core-errors.js';
import { STATUS_DRIVER_OK } from '../virtio/device-status.js';
import type { Netdev, NetdevPeer } from '../../lib/netdev/netdev.js';
import { hasLinkSpeed, hasLinkState, hasOffloads, hasVnetHeader, isMultiQueue, syncsRxFilter } from '../../lib/netdev/netdev.js';
import { CtrlClass, GUEST_OFFLOAD_FEATURES, NetFeature, NetStatus, VIRTIO_ID_NET, VirtioFeature, featureName, hasFeature } from './constants.js';
import type { CtrlContext, CtrlOutcome, CtrlState } from './ctrl-apply.js';
import type { CtrlDiagnostic } from './ctrl-command.js';
import { CtrlQueue } from './ctrl-queue.js';
import { ChangeLatch, rxFilterChangedEvent } from './change-latch.js';
import type { RxFilterChangedEvent } from './change-latch.js';
import { NET_DIAGNOSTIC_SECTIONS } from './net-diagnostics.js';
import type { NetDeviceError, NetDiagnosticCode, PathReport } from './net-diagnostics.js';
import { RxFilterState, RxVerdict } from './rx-filter.js';
import { queryRxFilter } from './rx-filter-query.js';
import type { RxFilterInfo } from './rx-filter-query.js';
import { netConfigFields } from './net-config.js';
import { checkOptions, unmetRequirement } from './net-options.js';
import type { NetConfig, VirtioNetOptions } from './net-options.js';
import { NetCounters, QueueField } from './net-stats.js';
import { Coalescer, handleCoalCommand } from './coalescing.js';
import { handleStatsCommand } from './device-stats.js';
import { SpeedDuplex } from './speed-duplex.js';
import { AnnounceRounds, ONE_ROUND, checkAnnounceParams } from './announce-rounds.js';
import type { AnnounceParams } from './announce-rounds.js';
import type { NetStats } from './net-stats.js';
import { RxPath } from './rx-path.js';
import { TxPath } from './tx-path.js';
import { guestHeaderLength, vnetHeaderLength } from './vnet-header.js';
import { RssState } from './rss-config.js';
import { formatMac } from './mac.js';
import { gratuitousArp } from './announce.js';
import { applyNetState, loadNetState, saveNetState } from './net-state.js';
import type { NetStateHost } from './net-state.js';

const FILTER_CODES = {
  vlan: RxVerdict.DROP_VLAN,
  unicast: RxVerdict.DROP_UNICAST,
  multicast: RxVerdict.DROP_MULTICAST,
  broadcast: RxVerdict.DROP_BROADCAST,
  runt: RxVerdict.DROP_RUNT,
} as const;

/** The NIC's events: the core's, and the rx-filter change (API.md). */
export interface NetEvents extends CoreEvents<NetDeviceError> {
  'rx-filter-changed': RxFilterChangedEvent;
}

export class VirtioNetDevice extends VirtioDevice<NetEvents> {
  /** The virtio core this NIC owns. */
  readonly core: VirtioCore<NetDeviceError>;
  /** The net client name (`name` in queryRxFilter() and events). */
  readonly id: string;
  readonly netdev: Netdev;

  private readonly cfg: NetConfig;
  private readonly filter: RxFilterState;
  private readonly latch = new ChangeLatch();
  private readonly counters: NetCounters;
  /** RSS / hash configuration (RSS_CONFIG, HASH_CONFIG), read by the receive path per frame. */
  private readonly rss = new RssState();
  /** Notification coalescing of the data queues (coalescing.ts). */
  private readonly coal: Coalescer;
  /** Config `speed` / `duplex` (speed-duplex.ts). */
  private readonly speedDuplex: SpeedDuplex;
  /** Self-announcement rounds (announce-rounds.ts); `announceArp`: the device may announce for the guest. */
  private readonly announceRounds: AnnounceRounds;
  private announceArp = false;
  private readonly ctrlState: CtrlState;
  private ctrlContext: CtrlContext;
  /** LINK_UP as the guest sees it: `adminLink && hostLink`. */
  private link = true;
  /** What management said (set_link). */
  private adminLink = true;
  /** What the backend's host link says (LinkStateCapable; always up without it). */
  private hostLink = true;
  private readonly rx: RxPath;
  private readonly tx: TxPath;
  private readonly ctrl: CtrlQueue;
  /** Index of the control queue for the negotiated features, or -1. */
  private ctrlIndex = -1;

  constructor(options: VirtioNetOptions) {
    const cfg = checkOptions(options);
    super();
    this.cfg = cfg;
    this.id = cfg.id;
    this.netdev = cfg.netdev;
    this.filter = new RxFilterState(cfg.mac);
    const netdev = cfg.netdev;
    this.speedDuplex = new SpeedDuplex(cfg.speed, cfg.duplex, hasLinkSpeed(netdev) ? () => netdev.linkSpeed() : null);
    this.announceRounds = new AnnounceRounds({ round: () => this.announceRound(), timers: hostTimers });
    const dataQueues = cfg.queuePairs * 2;
    this.counters = new NetCounters(dataQueues);
    this.coal = new Coalescer(dataQueues, {
      notify: (i) => this.used(i),
      isEnabledDataQueue: (i) => i < this.negotiatedDataQueues() && this.core.queues[i] != null,
      timers: hostTimers,
    });
    this.ctrlState = {
      rxFilter: this.filter,
      announcePending: false,
      queuePairs: 1,
      guestOffloads: 0n,
      applyHostOffloads: (offloads) => this.applyOffloads(offloads),
      rss: this.rss,
      isEnabledRxQueue: (k) => k < this.usablePairs(this.negotiatedFeatures) && this.core.queues[2 * k] != null,
      otherClass: (bytes, ctx, room) => {
        if (bytes[0] === CtrlClass.NOTF_COAL) return handleCoalCommand(bytes, ctx, this.coal, room);
        if (bytes[0] === CtrlClass.STATS) {
          return handleStatsCommand(bytes, ctx, { stats: () => this.stats(), ctrlIndex: this.ctrlIndex, dataQueues: this.negotiatedDataQueues() }, room);
        }
        return null;
      },
    };
    this.ctrlContext = { features: 0n, strict: cfg.strict, maxQueuePairs: cfg.queuePairs };
    // What the three datapaths report, written once.
    const report: PathReport = {
      epoch: () => this.core.epoch,
      isRunning: (q) => this.core.isRunning(q),
      raiseUsed: (i) => this.used(i),
      usedPublished: (i, packets, wanted) => this.coal.published(i, packets, wanted),
      violation: (e) => this.violation(e),
      mistake: (code, message, queue, value) => this.mistake(code, message, queue, value),
    };
    this.rx = new RxPath({
      ...report,
      counters: this.counters,
      filter: this.filter,
      rss: this.rss,
      pauseBackend: () => this.netdev.pauseReceive(),
      resumeBackend: () => this.netdev.resumeReceive(),
    });
    const backendHeader = hasVnetHeader(cfg.netdev);
    this.tx = new TxPath({
      ...report,
      counters: this.counters,
      send: isMultiQueue(cfg.netdev)
        ? backendHeader
          ? (f, h, k) => this.netdev.send(f, h, k)
          : (f, _h, k) => this.netdev.send(f, undefined, k)
        : backendHeader
          ? (f, h) => this.netdev.send(f, h)
          : (f) => this.netdev.send(f),
      // The frame as a span of guest memory when the backend takes one (Netdev.sendSpan), else a view.
      sendSpan: isMultiQueue(cfg.netdev)
        ? backendHeader
          ? (b, o, l, h, k) => (this.netdev.sendSpan !== undefined ? this.netdev.sendSpan(b, o, l, h, k) : this.netdev.send(b.subarray(o, o + l), h, k))
          : (b, o, l, _h, k) => (this.netdev.sendSpan !== undefined ? this.netdev.sendSpan(b, o, l, undefined, k) : this.netdev.send(b.subarray(o, o + l), undefined, k))
        : backendHeader
          ? (b, o, l, h) => (this.netdev.sendSpan !== undefined ? this.netdev.sendSpan(b, o, l, h) : this.netdev.send(b.subarray(o, o + l), h))
          : (b, o, l) => (this.netdev.sendSpan !== undefined ? this.netdev.sendSpan(b, o, l) : this.netdev.send(b.subarray(o, o + l))),
      defer,
      strict: cfg.strict,
    });
    this.ctrl = new CtrlQueue({
      ...report,
      context: () => this.ctrlContext,
      state: this.ctrlState,
      completed: (c, o) => this.ctrlCompleted(c, o),
      ctrlMistake: (d) => this.ctrlMistake(d),
    });
    this.core = new VirtioCore<NetDeviceError>(this.spec(), cfg.memory, this.handlers(), this);
    const peer: NetdevPeer = {
      receive: (frame, vnetHeader, queue) => this.rx.receive(frame, vnetHeader, queue ?? -1),
      writable: () => this.tx.writable(),
    };
    cfg.netdev.attach(peer);
    // A backend that mirrors the guest's rx filter onto the host (macvtap with syncRxFilter) follows
    // this device's rx-filter-changed events from now on, as libvirt follows QEMU's.
    if (syncsRxFilter(cfg.netdev)) cfg.netdev.bindRxFilterSource(this);
    // A backend with a host link (TAP, macvtap) moves the guest's link with it (see setLink).
    if (hasLinkState(cfg.netdev)) {
      const netdev = cfg.netdev;
      this.hostLink = netdev.linkUp;
      this.applyLink();
      netdev.onLinkChange((change) => {
        this.hostLink = change.up;
        this.applyLink();
      });
    }
  }

  // ---- public API (API.md) ----

  /** The rx-filter state with the fields of QEMU's query-rx-filter. Re-arms 'rx-filter-changed'. */
  queryRxFilter(): RxFilterInfo {
    this.latch.rearm();
    return queryRxFilter(this.filter, this.id, this.cfg.compat);
  }

  /**
   * Management's link state (QMP set_link). The guest sees LINK_UP (config `status`, with a config
   * change interrupt when it changes) only while management and the backend's host link both say
   * up. QEMU keeps one `link_down` flag that whoever speaks last sets (set_link, or a vhost-user
   * backend's chardev events); here neither can override the other: set_link(true) does not raise
   * a link whose host side is down, and a host link coming back does not undo set_link(false).
   */
  setLink(up: boolean): void {
    if (typeof up !== 'boolean') throw new TypeError(`VirtioNetDevice.setLink: up must be a boolean, got ${String(up)}`);
    this.adminLink = up;
    this.applyLink();
  }

  /**
   * Re-entry: the rx path's call-out (resuming the backend it paused) and the config interrupt run
   * embedder code that may change the link again. So every part takes the new state before
   * anything calls out, and nothing is written after a call-out: a nested call then finds the
   * device consistent and has the last word (a captured `up` applied after a call-out once left
   * the tx path down with `linkUp` true, dropping every frame for good).
   */
  private applyLink(): void {
    const up = this.adminLink && this.hostLink;
    if (up === this.link) return;
    // §5.1.4.1: speed and duplex change only while the link is down; read them as it comes up.
    if (up) this.speedDuplex.refresh();
    this.setPathsLink(up);
    // QEMU notifies a config change whenever the status value changes (§5.1.4 `status`); the core
    // raises it only once DRIVER_OK is set (§2.1.2).
    this.notifyConfig();
  }

  /** The link flag and both paths' copies; the tx path's first: the rx path's may call out (see applyLink). */
  private setPathsLink(up: boolean): void {
    this.link = up;
    this.tx.setLink(up);
    this.rx.setLink(up);
  }

  get linkUp(): boolean {
    return this.link;
  }

  /**
   * Asks the guest to announce itself (after a migration; §5.1.6.5.4): sets VIRTIO_NET_S_ANNOUNCE and
   * raises a config change interrupt; the driver sends its gratuitous packets and answers
   * ANNOUNCE_ACK, which clears the bit. Returns false (and changes nothing) unless the driver is
   * running with GUEST_ANNOUNCE and CTRL_VQ negotiated (QEMU's condition).
   */
  announce(params?: Partial<AnnounceParams>): boolean {
    const p = params === undefined ? ONE_ROUND : checkAnnounceParams(params, 'VirtioNetDevice.announce');
    if (!this.guestCanAnnounce()) return false;
    this.announceArp = false;
    return this.announceRounds.start(p);
  }

  private guestCanAnnounce(): boolean {
    return this.running && this.hasFeature(NetFeature.GUEST_ANNOUNCE) && this.hasFeature(NetFeature.CTRL_VQ);
  }

  /** One announcement round (announce-rounds.ts): the guest's, else a gratuitous ARP when allowed. */
  private announceRound(): 'guest' | 'device' | 'none' {
    if (this.guestCanAnnounce()) {
      this.ctrlState.announcePending = true;
      this.notifyConfig();
      return 'guest';
    }
    if (!this.announceArp) return 'none';
    if (this.link) this.sendGratuitousArp();
    return 'device';
  }

  /**
   * Notification coalescing of data queue `index` as the driver set it (VIRTIO 1.3 §5.1.6.5.9):
   * `active` when both bounds are non-zero (notifications may then be held), `holding` when one is
   * held now. Undefined for an index that is not a data queue.
   */
  coalescing(index: number): { maxPackets: number; maxUsecs: number; active: boolean; holding: boolean } | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.coal.dataQueues) return undefined;
    const p = this.coal.params(index);
    return { ...p, active: p.maxPackets !== 0 && p.maxUsecs !== 0, holding: this.coal.holding(index) };
  }

  /** The guest's MAC address as it reads config `mac` now. */
  get mac(): string {
    return formatMac(this.filter.mainMac);
  }

  /** Queue pairs the driver enabled (VQ_PAIRS_SET), 1 without MQ. */
  get activeQueuePairs(): number {
    return this.ctrlState.queuePairs;
  }

  stats(): NetStats {
    return this.counters.snapshot(FILTER_CODES, this.rx.backlog.length);
  }

  // ---- device state (net-state.ts, devices/virtio/core-state.ts; API.md "Device state") ----

  /**
   * Everything this device and its transport hold that a running guest depends on, as a versioned,
   * self-describing, checksummed image (net-state.ts lists the sections). Changes nothing.
   */
  saveState(): Uint8Array {
    return saveNetState(this.stateHost());
  }

  /**
   * Takes the state `saveState()` returned, on a device built with compatible options (same `id`,
   * queue pairs, mtu, offered features, transport kind) over guest memory holding the saved guest's
   * rings. Bad input throws `DeviceStateError` (`'state.corrupt' | 'state.version' |
   * 'state.mismatch'`) and changes nothing: the image is parsed and checked completely, running
   * queues re-activated against this memory, before the device is touched. After a restore the
   * device announces itself: VIRTIO_NET_S_ANNOUNCE with a config interrupt when the driver runs with
   * GUEST_ANNOUNCE, else a gratuitous ARP from the guest's MAC through the netdev (link up only).
   */
  restoreState(state: Uint8Array): void {
    const plan = loadNetState(this.stateHost(), state);
    // From here on nothing throws for the input: it was all checked.
    this.rx.stop();
    this.tx.stop();
    this.coal.stop();
    plan.commitCore();
    applyNetState(this.stateHost(), plan.net, (up) => this.setPathsLink(up));
    const driverOk = (this.status & STATUS_DRIVER_OK) !== 0;
    const features = this.negotiatedFeatures;
    const hdrLen = guestHeaderLength(features);
    if (driverOk) {
      try {
        this.useFeatures(features);
      } catch (e) {
        // The backend refused its header length or offloads: what a throwing hook at DRIVER_OK
        // does (tier 1) — the state is in, the guest resets the device and starts again.
        this.core.needsReset({ code: 'device.hook-threw', section: '2.1.2', hook: 'restoreState', message: e instanceof Error ? e.message : String(e) });
      }
    } else {
      this.ctrlContext = { features: 0n, strict: this.cfg.strict, maxQueuePairs: this.cfg.queuePairs };
      this.ctrlIndex = -1;
    }
    if (this.running) {
      const queues = this.queues;
      this.rx.resume(queues, hdrLen, hasFeature(features, NetFeature.MRG_RXBUF), this.usablePairs(features));
      this.rx.setActivePairs(this.ctrlState.queuePairs);
      this.rx.holdRestored(plan.net.held, plan.net.steering.heldQueue);
      this.rx.steering.hashReportWanted = hasFeature(features, NetFeature.HASH_REPORT);
      this.backendPairs(this.ctrlState.queuePairs);
      this.tx.resume(queues, hdrLen, hasVnetHeader(this.netdev), this.ctrlState.queuePairs, plan.net.txPending);
    }
    this.core.resendIsr();
    this.announceAfterRestore();
  }

  /** The parts a state reads and writes. */
  private stateHost(): NetStateHost {
    return {
      core: this.core,
      id: this.id,
      queuePairs: this.cfg.queuePairs,
      mtu: this.cfg.mtu,
      filter: this.filter,
      ctrlState: this.ctrlState,
      latch: this.latch,
      counters: this.counters,
      rx: this.rx,
      tx: this.tx,
      linkUp: this.link,
      coal: this.coal,
    };
  }

  /** After a restore: the guest announces (GUEST_ANNOUNCE), or the device sends a gratuitous ARP. */
  private announceAfterRestore(): void {
    this.announceArp = true;
    this.announceRounds.start(this.cfg.announce);
  }

  private sendGratuitousArp(): void {
    const frame = gratuitousArp(this.filter.mainMac);
    const netdev = this.netdev;
    try {
      if (hasVnetHeader(netdev)) netdev.send(frame, new Uint8Array(netdev.vnetHeaderLength));
      else netdev.send(frame);
    } catch {
      // Best effort: the restore is complete, and a backend failing to send must not undo it.
    }
  }

  // ---- the core's spec and handlers ----

  /** What this NIC is (§5.1.2 queues, §5.1.3 features, §5.1.4 config space). */
  private spec(): DeviceSpec {
    const cfg = this.cfg;
    const queues = cfg.queuePairs * 2 + (hasFeature(cfg.offered, NetFeature.CTRL_VQ) ? 1 : 0);
    return {
      deviceType: VIRTIO_ID_NET,
      queueMaxSizes: new Array<number>(queues).fill(cfg.queueSize),
      offeredFeatures: cfg.offered,
      configFields: netConfigFields({
        mac: this.filter,
        status: () => (this.link ? NetStatus.LINK_UP : 0) | (this.ctrlState.announcePending ? NetStatus.ANNOUNCE : 0),
        maxQueuePairs: cfg.queuePairs,
        mtu: cfg.mtu,
        hashOffered: hasFeature(cfg.offered, NetFeature.RSS) || hasFeature(cfg.offered, NetFeature.HASH_REPORT),
        speed: () => this.speedDuplex.speed,
        duplex: () => this.speedDuplex.duplex,
        legacyMacWrite: (bytes) => this.legacyMacWrite(bytes),
      }),
      validateFeatures: (features) => {
        const u = unmetRequirement(features);
        if (u === null) return null;
        return `${featureName(u.feature) ?? u.feature} requires ${u.requires.map((r) => featureName(r) ?? r).join(' or ')} (§5.1.3.1)`;
      },
    };
  }

  private handlers(): CoreHandlers {
    return {
      // §5.1.6.5.3: the VLAN table's meaning follows the negotiated CTRL_VLAN bit, fixed here.
      onFeaturesOk: (features) => this.filter.setCtrlVlanNegotiated(hasFeature(features, NetFeature.CTRL_VLAN)),
      onDriverOk: (queues, features) => this.driverOk(queues, features),
      onQueueStarted: (index, q) => {
        this.rx.queueStarted(index, q);
        this.tx.queueStarted(index, q);
      },
      onQueueNotify: (index, q) => this.queueNotify(index, q),
      onQueuesStopped: () => {
        this.rx.stop();
        this.tx.stop();
        this.coal.stop();
      },
      onQueueStopped: (index) => {
        this.rx.queueStopped(index);
        this.tx.queueStopped(index);
        this.coal.queueStopped(index);
      },
      onReset: () => this.reset(),
    };
  }

  private driverOk(queues: RunningQueues, features: bigint): void {
    this.filter.setCtrlVlanNegotiated(hasFeature(features, NetFeature.CTRL_VLAN));
    this.ctrlState.queuePairs = 1;
    this.ctrlState.guestOffloads = features & GUEST_OFFLOAD_FEATURES;
    const hdrLen = this.useFeatures(features);
    if (hdrLen === null) return;
    // The backend's calls may also have stopped a single queue (re-entry): start what still runs.
    const run = this.core.state;
    const running = run.kind === 'running' ? run.queues : queues;
    this.tx.start(running, hdrLen, hasVnetHeader(this.netdev));
    this.rx.setActivePairs(1);
    this.rx.steering.hashReportWanted = hasFeature(features, NetFeature.HASH_REPORT);
    this.backendPairs(1);
    this.rx.start(running, hdrLen, hasFeature(features, NetFeature.MRG_RXBUF), this.usablePairs(features)); // delivers what waits
  }

  /** Receive queues the driver may use: max_virtqueue_pairs with MQ or RSS negotiated, else 1 (§5.1.2). */
  private usablePairs(features: bigint): number {
    return hasFeature(features, NetFeature.MQ) || hasFeature(features, NetFeature.RSS) ? this.cfg.queuePairs : 1;
  }

  /** A multiqueue backend follows the pairs in use (TUNSETQUEUE); a throwing backend is ignored here. */
  private backendPairs(pairs: number): void {
    const netdev = this.netdev;
    if (!isMultiQueue(netdev)) return;
    netdev.setActiveQueues(Math.min(pairs, netdev.queues));
  }

  /**
   * What follows from the negotiated features at DRIVER_OK (and after a restore): the control
   * queue's context and index, the backend's header length and offloads. Returns the header length,
   * or null when the backend's calls reset the device (then nothing may start; a queue they only
   * stopped is left out by the caller).
   */
  private useFeatures(features: bigint): 10 | 12 | 20 | null {
    this.ctrlContext = { features, strict: this.cfg.strict, maxQueuePairs: this.cfg.queuePairs };
    // §5.1.2: N = max_virtqueue_pairs when MQ or RSS is negotiated, else 1.
    const mq = hasFeature(features, NetFeature.MQ) || hasFeature(features, NetFeature.RSS);
    this.ctrlIndex = hasFeature(features, NetFeature.CTRL_VQ) ? (mq ? this.cfg.queuePairs * 2 : 2) : -1;
    const hdrLen = guestHeaderLength(features);
    const netdev = this.netdev;
    if (hasVnetHeader(netdev)) netdev.setVnetHeaderLength(vnetHeaderLength(features));
    // No ack to refuse at DRIVER_OK: a host that refuses is left to rx-header.ts, which enforces
    // the negotiated (or restored) offloads on every frame.
    this.applyOffloads(this.ctrlState.guestOffloads);
    this.rx.setGuestOffloads(this.ctrlState.guestOffloads);
    // §5.1.6.2.1 header rules and the §5.1.4 MTU, from the negotiated features.
    const mtu = hasFeature(features, NetFeature.MTU) ? this.cfg.mtu : undefined;
    this.tx.setFeatures(features, mtu);
    this.rx.setMtu(mtu);
    // The backend's calls may have reset the device (re-entry): then there is nothing to start.
    return this.core.state.kind === 'running' ? hdrLen : null;
  }

  private queueNotify(index: number, q: Virtqueue): void {
    if (index !== this.ctrlIndex) this.counters.queueAdd(index, QueueField.NOTIFICATIONS, 1);
    if (index === this.ctrlIndex) {
      this.ctrl.process(q);
    } else if ((index & 1) === 0) {
      this.rx.refill(); // buffers on any receive queue: the frames waiting may go there
    } else if (this.tx.isActive(index)) {
      this.tx.process(q);
    } else {
      this.mistake(
        'tx.queue-inactive',
        `driver notified transmitq${(index + 1) / 2}, beyond the ${this.ctrlState.queuePairs} queue pair(s) in use; its chains wait until VQ_PAIRS_SET enables it`,
        index,
      );
    }
  }

  private reset(): void {
    // The core stops the paths (onQueuesStopped) only when queues ran; a device that reached
    // DRIVER_OK with none (a legacy driver may set it first) must not go on as running after it.
    this.rx.stop();
    this.tx.stop();
    this.rx.reset();
    this.coal.reset();
    this.announceRounds.cancel();
    this.filter.reset();
    this.ctrlState.announcePending = false;
    this.ctrlState.queuePairs = 1;
    this.ctrlState.guestOffloads = 0n;
    this.rss.disable();
    this.rx.setActivePairs(1);
    this.ctrlContext = { features: 0n, strict: this.cfg.strict, maxQueuePairs: this.cfg.queuePairs };
    this.ctrlIndex = -1;
  }

  // ---- internals ----

  private notifyConfig(): void {
    this.core.configChanged(true);
    if ((this.status & STATUS_DRIVER_OK) !== 0) this.counters.configInterrupts++;
  }

  /** Data queues for the negotiated features: every pair's with MQ or RSS (N = max_virtqueue_pairs), else receiveq1 and transmitq1 (§5.1.2). */
  private negotiatedDataQueues(): number {
    return this.hasFeature(NetFeature.MQ) || this.hasFeature(NetFeature.RSS) ? this.cfg.queuePairs * 2 : 2;
  }

  private used(index: number): void {
    this.counters.usedInterrupts++;
    if (index !== this.ctrlIndex) this.counters.queueAdd(index, QueueField.INTERRUPTS, 1);
    this.core.raiseUsed(index);
  }

  private violation(error: QueueFault | NetDeviceError): void {
    this.counters.needsReset++;
    this.core.needsReset(error);
  }

  private mistake(code: NetDiagnosticCode, message: string, queue: number | undefined, value?: number): void {
    const section = NET_DIAGNOSTIC_SECTIONS[code];
    this.core.reportDriverMistake(code, message, {
      section,
      ...(queue === undefined ? {} : { queue }),
      ...(value === undefined ? {} : { value }),
    });
  }

  private ctrlMistake(d: CtrlDiagnostic): void {
    this.core.reportDriverMistake(d.code, d.message, { section: d.section, queue: this.ctrlIndex });
  }

  private ctrlCompleted(ctrlClass: number, outcome: CtrlOutcome): void {
    this.counters.countCtrl(ctrlClass, outcome.ack === 0);
    const epoch = this.core.epoch;
    switch (outcome.effect) {
      case 'queue-pairs':
        this.rx.setActivePairs(this.ctrlState.queuePairs);
        this.backendPairs(this.ctrlState.queuePairs);
        this.tx.setActivePairs(this.ctrlState.queuePairs);
        break;
      case 'guest-offloads':
        // The backend took them already (applyHostOffloads, before the ack was decided).
        this.rx.setGuestOffloads(this.ctrlState.guestOffloads);
        break;
      case 'announce':
        // ANNOUNCE_ACK: the next round of an announcement in progress (QEMU steps on the ack).
        this.announceRounds.acked();
        break;
      case 'coalescing':
        // New parameters: windows already due close now (VIRTIO 1.3 §5.1.6.5.9.4).
        this.coal.recheck();
        break;
      default:
        break;
    }
    // The effect called out (backend, transmit queues): a reset there wiped what the event reports.
    if (this.core.epoch !== epoch) return;
    if (outcome.rxFilterChanged && this.latch.trigger()) {
      this.emit('rx-filter-changed', rxFilterChangedEvent(this.id));
    }
  }

  /** Tells the backend the guest's receive offloads; false when the host refused them (see ctrl-apply.ts). */
  private applyOffloads(o: bigint): boolean {
    const netdev = this.netdev;
    if (!hasOffloads(netdev)) return true;
    return netdev.setOffloads({
      csum: hasFeature(o, NetFeature.GUEST_CSUM),
      tso4: hasFeature(o, NetFeature.GUEST_TSO4),
      tso6: hasFeature(o, NetFeature.GUEST_TSO6),
      ecn: hasFeature(o, NetFeature.GUEST_ECN),
      ufo: hasFeature(o, NetFeature.GUEST_UFO),
      uso4: hasFeature(o, NetFeature.GUEST_USO4),
      uso6: hasFeature(o, NetFeature.GUEST_USO6),
    }) !== false; // anything but false is success (a JavaScript backend may return nothing)
  }

  /**
   * A driver wrote config `mac` (all six bytes merged by the config space). §5.1.4.3 (legacy
   * interface): a legacy driver without CTRL_MAC_ADDR sets its address this way. QEMU 7.2 takes the
   * write exactly when neither VERSION_1 nor CTRL_MAC_ADDR is negotiated, and so does this device;
   * otherwise the write is ignored and recorded (§5.1.4.2: the driver MUST NOT write `mac`). Like
   * QEMU, it does not count as an rx-filter change event.
   */
  private legacyMacWrite(bytes: Uint8Array): void {
    if (this.hasFeature(VirtioFeature.VERSION_1) || this.hasFeature(NetFeature.CTRL_MAC_ADDR)) {
      this.mistake('config.mac-write', 'driver wrote config mac with VERSION_1 or CTRL_MAC_ADDR negotiated; ignored (use MAC ADDR_SET)', undefined);
      return;
    }
    this.filter.setMainMac(bytes, 0);
  }
}
