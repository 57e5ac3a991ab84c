// Host → guest (VIRTIO 1.2 §5.1.6.3 setting up receive buffers, §5.1.6.4 processing of incoming
// packets, §2.7.10 available buffer notification suppression).
//
// A frame from the backend is delivered when receiveq1 has buffers: the rx filter decides first (a
// dropped frame consumes no buffer and raises no interrupt, and is counted by reason), then the
// device writes the virtio-net header and the frame into one chain — or, with MRG_RXBUF, into as
// many chains as it takes, filling each but the last completely and setting `num_buffers` (le16)
// to the count; without MRG_RXBUF `num_buffers` is 1 when the header has it. The backend's header
// (10 or 12 bytes; its num_buffers is ignored) is checked against the offloads in effect first
// (rx-header.ts, §5.1.6.4): a partial checksum the driver cannot take is completed in the guest's
// buffer, a GSO frame it did not enable or a malformed header is dropped and counted. With no buffers the
// frame waits in a bounded backlog (unfiltered: the filter runs only when the frame can be
// delivered) and the device asks the driver for a notification; when the backlog is full the
// backend is told to pause, and is resumed once the guest adds buffers. Nothing is dropped without
// a counter: `offered = delivered + drops by reason + backlog` at every moment.
//
// MTU (§5.1.4.1): with VIRTIO_NET_F_MTU negotiated, a frame the header does not mark GSO that is
// longer than the driver was told (mtu + Ethernet header, + one VLAN tag: mtu-limit.ts) is dropped
// at delivery and counted 'above-mtu' — host input, not the driver's mistake, so no diagnostic (and
// not the 'buffer-too-small' mistake it would otherwise become in a buffer sized for the MTU).
//
// Decisions (documented in devices/virtio-net/README.md):
// - Multiqueue: each frame goes to the receive queue steering.ts picks when it is delivered (RSS
//   table, the backend's own queue, or a flow hash over the pairs in use; receiveq1 with one pair).
//   The device takes frames while receiveq1 runs (as before multiqueue); a frame whose queue is
//   stopped (queue reset) goes to receiveq1, or — steered by the RSS table — is dropped and counted
//   'queue-reset' (§5.1.6.5.7.3 MUST). One backlog serves all queues, in arrival order: a frame
//   waiting for buffers on its queue holds back the frames behind it (QEMU's net queue does the
//   same with a single-queue backend). MRG_RXBUF chains held for the head frame stay on their queue.
// - Link down (setLink(false)): frames are dropped and counted 'link-down' (QEMU drops them too);
//   what the backlog held is dropped the same way at that moment (from a call-out mid-drain: when
//   the drain ends, after the frame whose delivery had begun), and a paused backend resumed.
// - Device reset: frames held in the backlog are dropped and counted 'reset'.
// - Before DRIVER_OK, and after a tier-1 stop until the reset, the device takes no frame: receive()
//   answers false and the backend holds them (QEMU's can_receive answers false then, and its
//   backend queues). So the backlog only ever holds frames that arrived while the device ran, and
//   the backend's own frames survive a reset, as in QEMU.
//
// Re-entry: a pass calls out (diagnostics, the used interrupt, the backend's pause/resume) and the
// embedder may reset the device or disable receiveq1 from there. After each call-out the pass
// checks that `queue` is still the one it works on (stop() / queueStopped() clear it) and otherwise
// returns without touching guest memory. A frame not delivered yet waits in the backlog like any
// other (dropped and counted at the reset after a tier-1 stop) — unless the device was reset during
// the call: then it is refused and the backend keeps it for the next run, as it keeps every frame
// offered while the device is not running. A refill from inside a drain returns: the drain in
// progress uses the new buffers.
//
// Hot path: no allocation per frame (headers go through a preallocated scratch; the frame is copied
// once into guest memory, through the regions the queue's walk looked up). A frame spanning several
// chains (MRG_RXBUF with buffers smaller than the frame) is first copied into a device-owned stage
// whose piece views are cached (rx-stage.ts): the chain writer takes whole arrays only, and a view
// per piece would be an allocation per chain.

import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import type { ChainWriter, DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import type { RxFilterState } from './rx-filter.js';
import { acceptFrame } from './rx-filter.js';
import type { PathReport } from './net-diagnostics.js';
import type { NetCounters } from './net-stats.js';
import { QueueField } from './net-stats.js';
import { RxBacklog } from './rx-backlog.js';
import { RxStage } from './rx-stage.js';
import { FRAME_MAX } from '../../lib/base/frame-limits.js';
import { VNET_HDR_HASH_LEN, VnetHdrOffset } from './vnet-header.js';
import { ETH_HLEN } from './constants.js';
import { RxHeaderCheck, RxHeaderVerdict, completedChecksum, rxOffloadBits } from './rx-header.js';
import type { RssState } from './rss-config.js';
import { RxSteering } from './steering.js';
import { aboveMtu, mtuApplies } from './mtu-limit.js';

/** Largest frame the device delivers (lib/base/frame-limits.ts says why). */
export const RX_FRAME_MAX = FRAME_MAX;

/** Offsets of the hash report in the 20-byte header (§5.1.6: HASH_REPORT). */
const HASH_VALUE_OFFSET = 12;
const HASH_REPORT_OFFSET = 16;

/** What the receive path needs from the device. */
export interface RxHost extends PathReport {
  readonly counters: NetCounters;
  readonly filter: RxFilterState;
  /** RSS / hash configuration (ctrl RSS_CONFIG, HASH_CONFIG). */
  readonly rss: RssState;
  /** Ask the backend to hold frames / to deliver again. */
  pauseBackend(): void;
  resumeBackend(): void;
}

export class RxPath {
  readonly backlog = new RxBacklog();
  /** Between start and stop (DRIVER_OK until a reset or a tier-1 stop). */
  private running = false;
  /** Receive queue k (virtqueue 2k) while running and enabled, else null; k < the usable pairs. */
  private readonly queues: (Virtqueue | null)[] = [];
  /** Receive queues usable with the negotiated features (max_virtqueue_pairs with MQ or RSS, else 1). */
  private maxPairs = 1;
  /** Picks each frame's queue and its reported hash. */
  readonly steering: RxSteering;
  /** The queue the last `deliver` chose (for publish and waiting). */
  private target: Virtqueue | null = null;
  /** The receive queue number (0 = receiveq1) the last `queueFor` / `deliver` steered to: a drop counts there. */
  private steered = 0;
  /** The queue the held chains (`pending`) were popped from. */
  private pendingQueue: Virtqueue | null = null;
  private hdrLen = 12;
  private mergeable = false;
  private linkUp = true;
  /** The device told the backend to pause and has not resumed it yet. */
  private paused = false;
  /** Header scratch: the backend's header or zeros, with num_buffers (and the hash report) filled in. */
  private readonly header = new Uint8Array(VNET_HDR_HASH_LEN);
  /** `header` as a DataView (zeroed in words before a frame when `headerDirty`). */
  private readonly headerData = new DataView(this.header.buffer, this.header.byteOffset, this.header.byteLength);
  /** `header` holds bytes of the last frame's backend header or hash report (zeroed before the next frame). */
  private headerDirty = true;
  /** `header` cut to the negotiated length (set at start, so the hot path makes no view). */
  private headerView = this.header;
  /** The backend's header against the offloads in effect (§5.1.6.4). */
  private readonly headerCheck = new RxHeaderCheck();
  /** The negotiated MTU (§5.1.4.1), 0 when VIRTIO_NET_F_MTU is not negotiated. */
  private mtu = 0;
  /** The frame being written needs its checksum completed: `csumValue` at packet offset `csumAt`. */
  private patchCsum = false;
  private csumAt = 0;
  private csumValue = 0;
  /**
   * MRG_RXBUF: chains popped for the frame at the head of the line, oldest first. When they cannot
   * hold it yet they stay popped (not given back) until more arrive: the device then has consumed
   * every available entry, so its request for a notification (`avail_event = nextAvail`, §2.7.10)
   * asks for the next buffer the driver adds — giving them back would ask for one already there.
   */
  private readonly pending: (DescriptorChain | null)[] = [];
  /** Chains in `pending` (the array only grows: shrinking and re-growing it allocated per frame). */
  private pendingCount = 0;
  /** A frame spanning several chains, staged so its pieces need no view each (rx-stage.ts). */
  private readonly stage = new RxStage(RX_FRAME_MAX);
  /** A drain is on the stack (re-entry: see the file comment). */
  private draining = false;
  /** Device resets so far: a frame whose delivery saw one is not taken into the next run. */
  private resets = 0;
  /** A refused frame is being offered once more (see refuse). */
  private reoffering = false;
  /** By pair: frames delivered to its receive queue since the last publish (notification coalescing counts them). */
  private unpublished = new Float64Array(1);

  /** `host.counters` and `host.filter` (the device's, for its lifetime): one load less per frame. */
  private readonly counters: NetCounters;
  private readonly filter: RxFilterState;

  constructor(private readonly host: RxHost) {
    this.steering = new RxSteering(host.rss);
    this.counters = host.counters;
    this.filter = host.filter;
  }

  /**
   * DRIVER_OK: the running queues, the header layout to use (20: HASH_REPORT) and the receive
   * queues usable (max_virtqueue_pairs with MQ or RSS, else 1). Delivers what waits.
   */
  start(queues: readonly (Virtqueue | null)[], hdrLen: 10 | 12 | 20, mergeable: boolean, maxPairs = 1): void {
    this.resume(queues, hdrLen, mergeable, maxPairs);
    this.refill();
  }

  /** Pairs in use (VQ_PAIRS_SET, RSS_CONFIG): frames go to receiveq1 .. receiveq{pairs}. */
  setActivePairs(pairs: number): void {
    this.steering.activePairs = Math.min(Math.max(pairs, 1), this.maxPairs);
  }

  /**
   * The receive offloads the driver accepts (negotiated GUEST_* bits at DRIVER_OK, then each
   * GUEST_OFFLOADS_SET). Applied to every frame delivered from now on, held ones included.
   */
  setGuestOffloads(offloads: bigint): void {
    this.headerCheck.offloads = rxOffloadBits(offloads);
  }

  /** The MTU frames are held to: `mtu` when VIRTIO_NET_F_MTU is negotiated, else undefined (DRIVER_OK, restore). */
  setMtu(mtu: number | undefined): void {
    this.mtu = mtu ?? 0;
  }

  /**
   * A restored device state (net-state.ts): like `start`, but delivers nothing now — the saved
   * device was waiting for buffers, and the restored one waits for the same notification.
   */
  resume(queues: readonly (Virtqueue | null)[], hdrLen: 10 | 12 | 20, mergeable: boolean, maxPairs = 1): void {
    this.running = true;
    this.maxPairs = maxPairs;
    this.queues.length = maxPairs;
    for (let k = 0; k < maxPairs; k++) this.queues[k] = queues[2 * k] ?? null;
    if (this.unpublished.length !== maxPairs) this.unpublished = new Float64Array(maxPairs);
    else this.unpublished.fill(0);
    this.hdrLen = hdrLen;
    this.headerView = this.header.subarray(0, hdrLen);
    this.headerDirty = true;
    this.mergeable = mergeable;
  }

  /**
   * Whether the device told its backend to pause and has not resumed it (device state). A restored
   * `true` only means the device will resume its backend at the next chance, as the saved one would:
   * a new backend that was never paused loses nothing by it (one that offers a frame the device
   * cannot take pauses itself, by the NetdevPeer contract).
   */
  get backendPaused(): boolean {
    return this.paused;
  }
  set backendPaused(paused: boolean) {
    this.paused = paused;
  }

  /** MRG_RXBUF chains popped and held for the frame at the head of the line (device state). */
  get heldCount(): number {
    return this.pendingCount;
  }
  /** The virtqueue index the held chains belong to (0 when none are held). */
  get heldQueueIndex(): number {
    return this.pendingCount === 0 || this.pendingQueue === null ? 0 : this.pendingQueue.index;
  }
  /** Held chain `i`, oldest first (0 <= i < heldCount). */
  heldAt(i: number): DescriptorChain {
    return this.pending[i]!;
  }
  /**
   * A restored device state, after `resume`: the chains the saved device held, oldest first, popped
   * again on the restored queue (Virtqueue.restoreHeld). They wait for more buffers as they did.
   */
  holdRestored(chains: readonly DescriptorChain[], queueIndex = 0): void {
    this.dropPending();
    this.pendingQueue = this.queues[queueIndex >>> 1] ?? null;
    chains.forEach((c, i) => {
      if (i === this.pending.length) this.pending.push(c);
      else this.pending[i] = c;
    });
    this.pendingCount = chains.length;
  }

  /** The queues stopped (reset or tier 1): hold frames from now on; popped chains are forgotten. */
  stop(): void {
    this.running = false;
    this.queues.fill(null);
    this.dropPending();
  }

  /** The driver enabled queue `index` after DRIVER_OK. */
  queueStarted(index: number, q: Virtqueue): void {
    if (this.running && (index & 1) === 0 && index >>> 1 < this.maxPairs) this.queues[index >>> 1] = q;
  }

  /** The driver stopped using queue `index`: frames wait (or are refused) until it is enabled again. */
  queueStopped(index: number): void {
    if ((index & 1) !== 0 || index >>> 1 >= this.maxPairs) return;
    const q = this.queues[index >>> 1];
    this.queues[index >>> 1] = null;
    if (q !== null && q === this.pendingQueue) this.dropPending();
  }

  /**
   * Device reset (after stop()): what the backlog holds is dropped and counted 'reset'. A paused
   * backend stays paused — the reset device takes nothing — and is resumed at the next start.
   */
  reset(): void {
    this.resets++;
    this.counters.rxReset += this.backlog.length;
    this.countHeldDrops();
    this.backlog.clear();
  }

  setLink(up: boolean): void {
    this.linkUp = up;
    if (up) return;
    // From a call-out of a drain (a diagnostic mid-delivery): the frame in delivery is the
    // backlog's head; it completes, and the drain drops the rest when it ends (dropHeld).
    if (this.draining) return;
    this.dropHeld();
  }

  /** Link down: what the backlog holds is dropped and counted 'link-down'; a paused backend resumed. */
  private dropHeld(): void {
    this.counters.rxLinkDown += this.backlog.length;
    this.countHeldDrops();
    this.backlog.clear();
    this.resumeIfRoom();
  }

  /**
   * The backend offers a frame; `tag` is the backend queue it came from (a multiqueue backend),
   * -1 for none. False: not taken, the backend holds it and pauses.
   */
  receive(frame: Uint8Array, vnetHeader: Uint8Array | undefined, tag = -1): boolean {
    const counters = this.counters;
    const resets = this.resets;
    if (!this.linkUp) return this.dropLinkDown(frame, tag);
    if (frame.length > RX_FRAME_MAX) {
      counters.rxOffered++;
      counters.rxOversize++;
      this.countDrop(this.pairOf(frame, tag));
      return true;
    }
    const q0 = this.rxQueue();
    if (q0 === null) return this.refuse(frame, vnetHeader, tag); // not running: the backend holds the frame
    if (this.backlog.length === 0) {
      const r = this.deliver(frame, vnetHeader, tag);
      if (r === DROPPED) this.countDrop(this.steered);
      const q = this.target;
      if (q !== null) this.publish(q); // also what a dropped frame's pass returned (buffers shorter than the header)
      if (r !== NO_BUFFERS) {
        counters.rxOffered++;
        return true;
      }
    } else if (this.backlog.full) {
      // No buffer for it now. Make room first if the driver added buffers meanwhile, so that a
      // full backlog refuses only when the guest really has nothing posted.
      this.waitForBuffers();
    }
    // Reset from a call-out above (a diagnostic, the used interrupt): the backend keeps it.
    if (this.resets !== resets) return this.refuse(frame, vnetHeader, tag);
    if (!this.linkUp) return this.dropLinkDown(frame, tag); // link down from a call-out: not held
    const taken = this.hold(frame, vnetHeader, tag);
    if (taken) this.waitForBuffers();
    return taken;
  }

  /** The guest added receive buffers (a notification on a receive queue), or the device started. */
  refill(): void {
    if (this.draining) return; // inside a drain, which uses the buffers
    const q = this.rxQueue();
    if (q !== null && this.backlog.length > 0) {
      this.drain();
      if (this.backlog.length > 0) this.waitForBuffers();
    }
    this.resumeIfRoom();
  }

  private dropLinkDown(frame: Uint8Array, tag: number): true {
    const counters = this.counters;
    counters.rxOffered++;
    counters.rxLinkDown++;
    this.countDrop(this.pairOf(frame, tag));
    return true;
  }

  /** A dropped frame counts on the receive queue it was steered to (`stats().queues`, DEVICE_STATS rx_drops). */
  private countDrop(pair: number): void {
    this.counters.queueAdd(2 * pair, QueueField.DROPS, 1);
  }

  /**
   * The receive queue number a frame not (yet) delivered is steered to now, for counting its drop:
   * as delivery would pick it (receiveq1 when its queue is stopped and the RSS table did not pick
   * it), the held chains' queue for the head of the backlog. Drop paths only: it hashes the frame.
   */
  private pairOf(frame: Uint8Array, tag: number, head = false): number {
    if (head && this.pendingCount > 0 && this.pendingQueue !== null) return this.pendingQueue.index >>> 1;
    const k = this.steering.select(frame, tag);
    if (!this.running || this.steering.byTable) return k;
    const q = this.queues[k];
    return q !== null && q !== undefined && !q.broken ? k : 0;
  }

  /** Every frame the backlog holds is being dropped (link down, reset): each counts on its queue. */
  private countHeldDrops(): void {
    const backlog = this.backlog;
    for (let i = 0; i < backlog.length; i++) this.countDrop(this.pairOf(backlog.frameAt(i)!, backlog.tagAt(i), i === 0));
  }

  /** receiveq1 while the device takes frames (running, enabled, not broken), else null. */
  private rxQueue(): Virtqueue | null {
    const q = this.queues[0] ?? null;
    return q === null || q.broken ? null : q;
  }

  /** Whether `q` is still the running queue at its place (not stopped from a call-out). */
  private live(q: Virtqueue): boolean {
    return this.queues[q.index >>> 1] === q && !q.broken;
  }

  /** Delivers held frames in order while buffers last. Never resumes the backend (see receive). */
  private drain(): void {
    const backlog = this.backlog;
    const outer = this.draining;
    const q0 = this.rxQueue();
    if (q0 === null) return;
    this.draining = true;
    try {
      while (backlog.length > 0 && this.queues[0] === q0 && !q0.broken && this.linkUp) {
        const r = this.deliver(backlog.peekFrame()!, backlog.peekHeader(), backlog.peekTag());
        if (r === NO_BUFFERS) break;
        if (r === DROPPED) this.countDrop(this.steered);
        backlog.shift();
      }
    } finally {
      this.draining = outer;
    }
    if (!this.linkUp && !outer && backlog.length > 0) this.dropHeld(); // link down from a call-out (see setLink)
    const queues = this.queues;
    for (let k = 0; k < queues.length; k++) {
      const q = queues[k];
      if (q !== null && q !== undefined) this.publish(q);
    }
  }

  /**
   * Frames wait: ask for an available-buffer notification on the queue the head frame waits for
   * (§2.7.10; with EVENT_IDX this moves `avail_event` to the next entry) and look once more, since
   * the driver may have added buffers before it saw the request and will then not notify. Loops
   * only while new chains appear.
   */
  private waitForBuffers(): void {
    for (;;) {
      const q = this.headQueue();
      if (q === null) return;
      if (!q.enableNotification()) return;
      this.drain();
      if (this.backlog.length === 0) return;
    }
  }

  /** The queue the frame at the head of the backlog goes to (null: none running). */
  private headQueue(): Virtqueue | null {
    if (this.rxQueue() === null || this.backlog.length === 0) return null;
    if (this.pendingCount > 0 && this.pendingQueue !== null) return this.pendingQueue;
    return this.queueFor(this.backlog.peekFrame()!, this.backlog.peekTag());
  }

  /**
   * The running queue `frame` goes to (steering.ts): its steered queue, or receiveq1 when that one
   * is stopped; null when the RSS table steered it to a stopped queue (the frame is dropped).
   */
  private queueFor(frame: Uint8Array, tag: number): Virtqueue | null {
    const steering = this.steering;
    const k = steering.select(frame, tag);
    const q = k < this.queues.length ? this.queues[k] : null;
    this.steered = k;
    if (q !== null && q !== undefined && !q.broken) return q;
    if (steering.byTable) return null;
    this.steered = 0;
    return this.rxQueue();
  }

  private hold(frame: Uint8Array, vnetHeader: Uint8Array | undefined, tag: number): boolean {
    if (this.backlog.full) return this.refuse(frame, vnetHeader, tag);
    this.backlog.push(frame, vnetHeader, tag);
    this.counters.rxOffered++;
    return true;
  }

  /**
   * Not taken: the backend keeps the frame and pauses until resumeBackend() (answering false pauses
   * it too: NetdevPeer). Re-entry: pauseBackend() runs the embedder's code, which may make the
   * device resume the backend from inside it — buffers added and notified, a reset and a restart,
   * the link going down. Answering false would then pause the backend again behind the device's
   * back, with nothing left to resume it. So when that happened the frame is offered once more to
   * the device as it is now; refused again, the device keeps it noted that the backend is paused
   * (and resumes it at the next start, refill or link change).
   */
  private refuse(frame: Uint8Array, vnetHeader: Uint8Array | undefined, tag: number): boolean {
    if (this.paused) return false;
    this.paused = true;
    this.counters.rxBackpressure++;
    this.host.pauseBackend();
    if (!this.paused && !this.reoffering) {
      this.reoffering = true;
      try {
        return this.receive(frame, vnetHeader, tag);
      } finally {
        this.reoffering = false;
      }
    }
    this.paused = true;
    return false;
  }

  /** Resumes a paused backend when the device runs and has room. */
  private resumeIfRoom(): void {
    if (this.paused && this.running && !this.backlog.full) {
      this.paused = false;
      this.host.resumeBackend();
    }
  }

  private publish(q: Virtqueue): void {
    const k = q.index >>> 1;
    const packets = k < this.unpublished.length ? this.unpublished[k]! : 0;
    if (packets !== 0) this.unpublished[k] = 0;
    if (this.queues[k] !== q) return; // stopped from a call-out: used.idx is no longer the device's
    this.host.usedPublished(q.index, packets, q.publishUsed());
  }

  /**
   * Steers, filters and writes one frame (counting a drop); `target` is the queue it went to.
   * NO_BUFFERS: nothing consumed, nothing counted.
   */
  private deliver(frame: Uint8Array, vnetHeader: Uint8Array | undefined, tag: number): Outcome {
    let q = this.queueFor(frame, tag);
    // Chains held for the head frame (MRG_RXBUF) keep it on their queue whatever steering says now.
    if (this.pendingCount > 0 && this.pendingQueue !== null) {
      q = this.pendingQueue;
      this.steered = q.index >>> 1;
    }
    this.target = q;
    if (q === null) {
      // §5.1.6.5.7.3: the RSS destination queue is being reset: the device MUST drop the packet.
      this.counters.rxQueueReset++;
      return DROPPED;
    }
    // A frame with no buffer to go to waits unfiltered (the file comment). Whether there is one is
    // asked here only before a drop: a frame that goes on learns it from the pop (popChain: null),
    // which reads avail.idx only when the entries it read last time are used up (QEMU's shadow).
    const verdict = acceptFrame(this.filter, frame, 0, frame.length);
    if (verdict !== 0) {
      if (!this.hasBuffers(q)) return NO_BUFFERS;
      const drops = this.counters.filterDrops;
      drops[verdict] = drops[verdict]! + 1;
      return DROPPED;
    }
    const header = this.header;
    // Bytes 0..9 and the hash report stay zero from frame to frame unless a backend header or a
    // hash was copied in; num_buffers is written for every frame (writeSingle / writeMerged).
    if (this.headerDirty) {
      zeroHeader(this.headerData);
      this.headerDirty = false;
    }
    this.patchCsum = false;
    if (vnetHeader !== undefined) {
      this.headerDirty = true;
      const n = Math.min(VnetHdrOffset.NUM_BUFFERS, vnetHeader.length); // num_buffers is the device's to write
      for (let i = 0; i < n; i++) header[i] = vnetHeader[i]!;
      // Checked on the device's copy: the backend's bytes are read once.
      const v = this.headerCheck.check(header, vnetHeader.length, frame.length);
      if (v !== RxHeaderVerdict.PASS) {
        if (!this.hasBuffers(q)) return NO_BUFFERS;
        if (!this.fixOrDrop(v, frame)) return DROPPED;
      }
    }
    const mtu = this.mtu;
    if (mtu !== 0 && frame.length > mtu + ETH_HLEN && mtuApplies(header[VnetHdrOffset.GSO_TYPE]!) && aboveMtu(frame, mtu)) {
      if (!this.hasBuffers(q)) return NO_BUFFERS;
      this.counters.rxAboveMtu++;
      return DROPPED;
    }
    if (this.hdrLen === VNET_HDR_HASH_LEN) {
      // §5.1.6.4.4: hash_value (le32) and hash_report (le16); NONE with value 0 when not hashed.
      this.headerDirty = true;
      const h = this.steering.hashValue;
      header[HASH_VALUE_OFFSET] = h & 0xff;
      header[HASH_VALUE_OFFSET + 1] = (h >>> 8) & 0xff;
      header[HASH_VALUE_OFFSET + 2] = (h >>> 16) & 0xff;
      header[HASH_VALUE_OFFSET + 3] = h >>> 24;
      header[HASH_REPORT_OFFSET] = this.steering.hashReport;
    }
    return this.mergeable ? this.writeMerged(q, frame) : this.writeSingle(q, frame);
  }

  /**
   * Whether `q` has a buffer for the frame in delivery (chains held for it, or entries the driver
   * made available): asked before a frame is dropped, so that a frame with nowhere to go waits
   * instead, unfiltered. A violation is reported (the queue breaks) and answers false.
   */
  private hasBuffers(q: Virtqueue): boolean {
    if (this.pendingCount > 0) return true;
    const avail = q.available();
    if (typeof avail !== 'number') {
      this.host.violation({ ...avail.error, queue: q.index });
      return false;
    }
    return avail > 0;
  }

  /**
   * A header the driver must not see as it is (rx-header.ts): true when the frame goes on with its
   * checksum to be completed, false when it was dropped and counted. Host input, not a driver
   * mistake: counted only, like 'oversize'.
   */
  private fixOrDrop(v: number, frame: Uint8Array): boolean {
    const counters = this.counters;
    switch (v) {
      case RxHeaderVerdict.COMPLETE_CSUM:
        this.patchCsum = true;
        this.csumAt = this.hdrLen + this.headerCheck.csumField;
        this.csumValue = completedChecksum(frame, this.headerCheck.csumStart);
        return true;
      case RxHeaderVerdict.GSO_NOT_NEGOTIATED:
        counters.rxGsoNotNegotiated++;
        return false;
      case RxHeaderVerdict.CSUM_OUT_OF_FRAME:
        counters.rxCsumOutOfFrame++;
        return false;
      default:
        counters.rxHeaderMalformed++;
        return false;
    }
  }

  /**
   * Stores the completed checksum (big-endian) where it falls in one chain that holds packet bytes
   * [from, from + len): before the chain is given back, so the driver never sees the partial sum.
   */
  private storeCsum(c: DescriptorChain, from: number, len: number): void {
    const w = c.writer();
    const at = this.csumAt - from;
    if (at >= 0 && at < len) w.writeU8At(at, this.csumValue >>> 8);
    if (at + 1 >= 0 && at + 1 < len) w.writeU8At(at + 1, this.csumValue & 0xff);
  }

  /**
   * A usable chain; null when the ring is empty; undefined after a tier-1 violation. A chain whose
   * writable part is shorter than the header can never hold a packet (§5.1.6.3.1: the driver MUST
   * make each buffer at least that long): it is returned at once with used length 0 (Linux counts
   * a length error and reposts it), recorded and counted, and the next chain is tried — waiting on
   * it would stall the queue, and giving it back would meet it again.
   */
  private popChain(q: Virtqueue): DescriptorChain | null | undefined {
    for (;;) {
      const c = q.pop();
      if (c.kind === 'chain') {
        if (c.writableLength === 0) {
          // §2.7.4.2 / §5.1.6.3: receive buffers are device-writable. A chain with none is unusable.
          // Tier 1 like QEMU ("receive queue contains no in buffers"): the device stops; reset forgets the chain.
          this.host.violation({ code: 'rx.no-writable-descriptor', section: '5.1.6.3.1', queue: q.index, head: c.headIndex });
          return undefined;
        }
        if (c.writableLength < this.hdrLen) {
          this.counters.rxShortBuffers++;
          this.host.mistake(
            'rx.buffer-shorter-than-header',
            `receive chain ${c.headIndex} has ${c.writableLength} writable bytes, less than the ${this.hdrLen}-byte header; returned unused`,
            q.index,
          );
          if (!this.live(q)) return undefined; // stopped from the diagnostic's listener
          q.pushUsed(c, 0);
          continue;
        }
        return c;
      }
      if (c.kind === 'violation') {
        this.host.violation({ ...c.error, queue: q.index });
        return undefined;
      }
      return null;
    }
  }

  private writeSingle(q: Virtqueue, frame: Uint8Array): Outcome {
    const c = this.popChain(q);
    if (c === null || c === undefined) return NO_BUFFERS;
    const hdrLen = this.hdrLen;
    const total = hdrLen + frame.length;
    if (c.writableLength < total) {
      // §5.1.6.3.1: without MRG_RXBUF each buffer must hold a whole packet. QEMU drops the frame
      // and gives the buffer back; so does this device, and it records the driver's mistake.
      q.unpop(1);
      this.counters.rxBufferTooSmall++;
      this.host.mistake(
        'rx.buffer-too-small',
        `receive buffer of ${c.writableLength} bytes cannot hold a ${total}-byte packet without MRG_RXBUF`,
        q.index,
      );
      return DROPPED;
    }
    // §5.1.6.4: without MRG_RXBUF, num_buffers (when the header has it) is 1.
    if (hdrLen >= 12) {
      this.header[VnetHdrOffset.NUM_BUFFERS] = 1;
      this.header[VnetHdrOffset.NUM_BUFFERS + 1] = 0;
    }
    if (!this.writeInPlace(c, frame, total)) {
      const w = c.writer();
      this.writeHeader(w);
      w.write(frame);
    }
    if (this.patchCsum) this.storeCsum(c, 0, total);
    q.pushUsed(c, total);
    this.countDelivered(q, frame.length);
    return DELIVERED;
  }

  /**
   * Header and frame written in place when they fit the chain's first writable descriptor in one
   * region (reported to the memory once); false: nothing written, the caller uses the writer.
   */
  private writeInPlace(c: DescriptorChain, frame: Uint8Array, total: number): boolean {
    const region = c.placeWritable(total);
    if (region === null) return false;
    const at = c.placedOffset;
    this.putHeader(region.data, at);
    region.bytes.set(frame, at + this.hdrLen);
    c.wrotePlaced(total);
    return true;
  }

  private writeMerged(q: Virtqueue, frame: Uint8Array): Outcome {
    const hdrLen = this.hdrLen;
    const total = hdrLen + frame.length;
    const pending = this.pending;
    let room = 0;
    let n = 0; // chains the frame takes: pending[0 .. n)
    while (room < total) {
      if (n === this.pendingCount) {
        if (n === q.size) {
          // Every entry of the ring is a buffer and together they cannot hold the frame: the
          // driver can add nothing more, so waiting would stall the queue. Drop the frame; the
          // buffers stay for the next one. (A driver whose descriptor table runs out first, with
          // multi-descriptor buffers, makes the device wait as QEMU does: it can still reset.)
          return this.tooSmall(q, `a ring of ${q.size} receive buffers (${room} bytes) cannot hold a ${total}-byte packet`);
        }
        const c = this.popChain(q);
        if (c === undefined) {
          this.dropPending(); // tier 1: the queue is stopped; popped chains are forgotten
          return NO_BUFFERS;
        }
        if (c === null) {
          // Not enough buffers yet: keep what was popped and wait for more (QEMU waits too).
          return NO_BUFFERS;
        }
        if (n === pending.length) pending.push(c);
        else pending[n] = c;
        this.pendingCount = n + 1;
        this.pendingQueue = q;
      }
      room += pending[n]!.writableLength;
      n++;
    }
    // Every chain holds at least the header (popChain returned shorter ones), so the first takes
    // the whole header with num_buffers.
    const header = this.header;
    header[VnetHdrOffset.NUM_BUFFERS] = n & 0xff;
    header[VnetHdrOffset.NUM_BUFFERS + 1] = n >>> 8;
    // Over several chains the frame's pieces come from a staged copy (no view made per piece).
    if (n === 1) {
      const c = pending[0]!;
      if (this.writeInPlace(c, frame, total)) {
        if (this.patchCsum) this.storeCsum(c, 0, total);
        q.pushUsed(c, total);
        this.takePending(1);
        this.countDelivered(q, frame.length);
        return DELIVERED;
      }
    }
    const stage = this.stage;
    if (n > 1) stage.load(frame);
    let offset = 0; // into the frame
    let from = 0; // into the packet (header + frame): where chain i starts
    for (let i = 0; i < n; i++) {
      const c = pending[i]!;
      const w = c.writer();
      let len = 0;
      if (i === 0) len += this.writeHeader(w);
      const want = Math.min(frame.length - offset, w.remaining);
      const k = w.write(n === 1 ? frame : stage.piece(offset, want));
      offset += k;
      len += k;
      if (this.patchCsum) this.storeCsum(c, from, len);
      from += len;
      q.pushUsed(c, len);
    }
    this.takePending(n);
    this.countDelivered(q, frame.length);
    return DELIVERED;
  }

  /** The first `n` held chains were used: chains popped beyond them (the frame replaced a larger one) wait for the next. */
  private takePending(n: number): void {
    const pending = this.pending;
    const rest = this.pendingCount - n;
    for (let i = 0; i < rest; i++) pending[i] = pending[n + i]!;
    for (let i = rest; i < this.pendingCount; i++) pending[i] = null;
    this.pendingCount = rest;
  }

  /** Writes the header (every chain holds it: popChain) in words where the memory lets it, else copies it. */
  private writeHeader(w: ChainWriter): number {
    const n = this.hdrLen;
    if (!w.span(n)) return w.write(this.headerView);
    this.putHeader(w.spanRegion!.data, w.spanOffset);
    return n;
  }

  /** Copies the header (`hdrLen` bytes) to `to` at `at` in words. */
  private putHeader(to: DataView, at: number): void {
    const n = this.hdrLen;
    const h = this.headerData;
    let i = 0;
    for (; i + 4 <= n; i += 4) to.setUint32(at + i, h.getUint32(i, true), true);
    if (i < n) to.setUint16(at + i, h.getUint16(i, true), true);
  }

  private dropPending(): void {
    this.pending.fill(null);
    this.pendingCount = 0;
    this.pendingQueue = null;
  }

  private tooSmall(q: Virtqueue, message: string): Outcome {
    this.counters.rxBufferTooSmall++;
    this.host.mistake(
        'rx.buffer-too-small', message, q.index);
    return DROPPED;
  }

  private countDelivered(q: Virtqueue, bytes: number): void {
    const counters = this.counters;
    counters.rxDelivered(q.index, bytes);
    this.unpublished[q.index >>> 1]!++;
    if (this.patchCsum) counters.rxCsumCompleted++;
  }
}

const DELIVERED = 0;
const DROPPED = 1;
const NO_BUFFERS = 2;
type Outcome = typeof DELIVERED | typeof DROPPED | typeof NO_BUFFERS;

/** Zeroes the 20-byte header scratch (five words: cheaper per frame than `fill`, a builtin call). */
function zeroHeader(h: DataView): void {
  h.setUint32(0, 0);
  h.setUint32(4, 0);
  h.setUint32(8, 0);
  h.setUint32(12, 0);
  h.setUint32(16, 0);
}
