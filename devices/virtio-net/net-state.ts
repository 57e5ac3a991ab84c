// The network device's state image (API.md "Device state — save, restore, migrate"; VIRTIO 1.2
// §5.1.4 config `mac` / `status`, §5.1.6.5 the control queue's state, §5.1.6.3–4 frames waiting
// for receive buffers). The virtio core and the transport write their own sections
// (devices/virtio/core-state.ts); this file adds the NIC's and builds the whole image
// (lib/base/state-codec.ts: magic, format version, tagged sections, CRC-32):
//
//   NETI v1 (required)  identity: id (string), queue pairs u16, mtu u16 (0: not offered)
//   CORE, TRNS          the core and its transport (core-state.ts)
//   NETF v1 (required)  rx filter: mode flags u8 (PROMISC, ALLMULTI, ALLUNI, NOMULTI, NOUNI, NOBCAST
//                       as bits 0..5), CTRL_VLAN negotiated u8, main MAC (6), unicast overflow u8,
//                       multicast overflow u8, unicast count u8 + 6 bytes each, multicast count u8 +
//                       6 bytes each (guest order), VLAN bitmap (512 bytes, bit `vid` of byte vid/8)
//   NETC v1 (required)  control and link: ANNOUNCE pending u8, queue pairs in use u16, guest
//                       offloads u64, change latch armed u8, link up u8, transmit work pending u8,
//                       backend paused by the device u8
//   NETB v1 (required)  rx backlog: frame count u16, each: frame length u32, header length u8,
//                       header, frame
//   NETR v1 (required)  receive chains held (MRG_RXBUF, popped for the frame at the head of the
//                       backlog while it waits for more buffers): count u16, each, oldest first:
//                       where it was popped u16 (split: available ring index; packed: ring
//                       position with the wrap counter), id u16 (split: head descriptor; packed:
//                       Buffer ID) — and on a packed receiveq1 the list as popped (Virtqueue
//                       `heldList`): ring descriptors u16, descriptors u16, indirect u8, buffer
//                       count u16, each: address u64, length u32, writable u8. A packed ring writes
//                       used descriptors over ring slots in completion order, so a held list older
//                       than a used one is no longer in the ring (a split ring's descriptor table
//                       keeps it: re-walked there). (NETR is unreleased and no image before this
//                       listed a packed chain: the packed record is part of v1.)
//   NETS v1 (optional)  counters: count u16, each: name (string), value (f64)
//   NRSS v1 (optional)  steering (rss-config.ts, steering.ts): the virtqueue index the NETR chains
//                       were popped from u16 (receiveq1 = 0 when absent), RSS steering by table u8,
//                       hash types u32, indirection table length u16 + entries u16 each,
//                       unclassified queue u16, key length u8 + key, backlog tags count u16 + each
//                       (backend queue + 1) u16 (0: none). Written only when something in it is not
//                       the reset value; an image without it (older ones) restores RSS off,
//                       chains held on receiveq1 and untagged backlog frames.
//   NCOA v1 (optional)  notification coalescing (coalescing.ts): last TX_SET max_packets u32,
//                       max_usecs u32; last RX_SET the same; data queue count u16, each:
//                       max_packets u32, max_usecs u32. Absent (an image written before it):
//                       every parameter 0, the device's state after a reset. Open windows are not
//                       saved: a notification held at the save is not sent by the restored device
//                       (coalescing is best-effort, VIRTIO 1.3 §5.1.6.5.9.6; the driver's own
//                       polling finds the used entries).
//
// Decisions:
// - Counters are carried: after a restore `stats()` continues from the saved values, so the
//   device's books still balance (`rx.offered = frames + drops + backlog` needs the restored
//   backlog's frames counted as offered). QEMU does not migrate its statistics; here they cost
//   little and the invariant is worth more. The diagnostics log is not state (it is the record of a
//   driver session, not something the guest depends on).
// - Backend flow control belongs to the backend, and a restored device may face a new one. Transmit
//   chains held back for a busy backend are saved as pending work, done on a later turn (a new
//   backend is not busy). Whether the device paused its backend is saved as it was: the restored
//   device resumes its backend at the same moment the saved one would have (harmless for a backend
//   that was never paused).
// - Chains popped and held (MRG_RXBUF waiting for more buffers) are saved as held (NETR), and the
//   restored device holds the same chains, re-walked in its memory, in the same order: it has
//   consumed the same available entries, so it waits for the same notification and drains its
//   backlog at the same moment as the saved one, stats included (issue #14). Their count is
//   `nextAvail - nextUsed` of receiveq1 (CORE v2); every other queue holds none between calls, so
//   `saveState()` called from inside one of the device's call-outs (a queue pass on the stack,
//   holding a chain) throws instead of writing an image no device could restore. Images written
//   before NETR existed (CORE v1) are refused with 'state.version' (core-state.ts says why).
// - RSS is optional state (NRSS): an older reader that skips it restores the device with RSS
//   off, which still delivers every frame (to the queues a flow hash picks). Coalescing parameters
//   are an optional section too (NCOA): a reader that does not know them loses only the coalescing
//   (best-effort anyway).
// - `compat`, `strict` and the configured `mac` option are not part of the identity: they do not
//   change what the guest sees of the saved state (the configured MAC is only where a reset returns).
//
// Restore = parse and check everything into values (throwing `DeviceStateError`, nothing changed),
// then commit in one step (virtio-net-device.ts `restoreState`).

import { DeviceStateError, StateImage, StateWriter, encodeStateImage } from '../../lib/base/state-codec.js';
import type { StateReader } from '../../lib/base/state-codec.js';
import type { StateSection } from '../../lib/base/state-codec.js';
import type { CoalParams, CoalState, Coalescer } from './coalescing.js';
import { coreSections, loadCoreSections } from '../virtio/core-state.js';
import { checkHeldChains } from '../virtio/core-state.js';
import type { CoreState } from '../virtio/core-state.js';
import type { DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import type { VirtioCore } from '../virtio/virtio-core.js';
import type { ChangeLatch } from './change-latch.js';
import { ETH_ALEN, GUEST_OFFLOAD_FEATURES, MAC_TABLE_ENTRIES, NetFeature, VLAN_ID_COUNT, hasFeature } from './constants.js';
import { guestHeaderLength } from './vnet-header.js';
import { RSS_MAX_KEY_SIZE, RSS_MAX_TABLE_LENGTH } from './rss-config.js';
import { SUPPORTED_HASH_TYPES } from './rss-hash.js';
import type { CtrlState } from './ctrl-apply.js';
import type { NetDeviceError } from './net-diagnostics.js';
import type { NetCounters } from './net-stats.js';
import { RX_BACKLOG_FRAMES } from './rx-backlog.js';
import type { RxFilterState } from './rx-filter.js';
import { RX_FRAME_MAX } from './rx-path.js';
import type { HeldList, Virtqueue } from '../../virtqueue/virtqueue.js';
import type { RxPath } from './rx-path.js';
import type { TxPath } from './tx-path.js';

/** The device's parts a state reads and writes (the device gives them; nothing else does). */
export interface NetStateHost {
  readonly core: VirtioCore<NetDeviceError>;
  readonly id: string;
  readonly queuePairs: number;
  readonly mtu: number | undefined;
  readonly filter: RxFilterState;
  readonly ctrlState: CtrlState;
  readonly latch: ChangeLatch;
  readonly counters: NetCounters;
  readonly rx: RxPath;
  readonly tx: TxPath;
  readonly linkUp: boolean;
  readonly coal: Coalescer;
}

/** The NIC's part of a checked state. */
export interface NetStateValue {
  readonly filter: {
    readonly modes: number;
    readonly ctrlVlan: boolean;
    readonly mainMac: Uint8Array;
    readonly uniOverflow: boolean;
    readonly multiOverflow: boolean;
    readonly unicast: Uint8Array;
    readonly multicast: Uint8Array;
    readonly vlans: Uint8Array;
  };
  readonly announcePending: boolean;
  readonly queuePairs: number;
  readonly guestOffloads: bigint;
  readonly latchArmed: boolean;
  readonly linkUp: boolean;
  readonly txPending: boolean;
  readonly backendPaused: boolean;
  readonly backlog: readonly { readonly frame: Uint8Array; readonly header: Uint8Array }[];
  /** The receive chains held, oldest first, popped again on the restored receiveq1 (not yet the device's). */
  readonly held: readonly DescriptorChain[];
  /** Absent when the image has no (readable) counters section: counters then restart at 0. */
  readonly counters: readonly (readonly [string, number])[];
  /** NRSS: virtqueue index of the held chains, RSS configuration, backlog tags. */
  readonly steering: SteeringValue;
  /** Coalescing parameters; all 0 when the image has none (NCOA). */
  readonly coal: CoalState;
}

/** The NRSS section's values (reset values when the image has none). */
export interface SteeringValue {
  readonly heldQueue: number;
  readonly redirect: boolean;
  readonly hashTypes: number;
  readonly table: Uint16Array;
  readonly unclassified: number;
  readonly key: Uint8Array;
  readonly tags: readonly number[];
}

/** A checked state: the core's commit step (core + transport) and the NIC's values. */
export interface NetRestorePlan {
  readonly core: CoreState;
  readonly commitCore: () => void;
  readonly net: NetStateValue;
}

const IDENTITY = 'NETI';
const FILTER = 'NETF';
const CONTROL = 'NETC';
const BACKLOG = 'NETB';
const COUNTERS = 'NETS';
const HELD = 'NETR';
const STEERING = 'NRSS';
const COALESCING = 'NCOA';
const V1 = 1;
/** Mode flag bits of NETF, in RxFilterState's field order. */
const MODES = ['promiscuous', 'allMulti', 'allUni', 'noMulti', 'noUni', 'noBcast'] as const;
const VLAN_BYTES = VLAN_ID_COUNT / 8;
/** The longest header the backlog keeps (rx-backlog.ts). */
const BACKLOG_HEADER_MAX = 12;
/** Most counters a state may name (the count is a u16): the device's ~40 plus 4 per queue pair used. */
const MAX_COUNTERS = 0xffff;

function corrupt(message: string): DeviceStateError {
  return new DeviceStateError('state.corrupt', message);
}
function mismatch(message: string): DeviceStateError {
  return new DeviceStateError('state.mismatch', message);
}

// ---- save ----

/** The whole device state image. */
export function saveNetState(h: NetStateHost): Uint8Array {
  h.core.queues.forEach((q, i) => {
    const held = i === h.rx.heldQueueIndex ? h.rx.heldCount : 0;
    if (q !== null && q.inFlight !== held) {
      throw new Error(`saveState: queue ${i} has a chain in use (called from inside one of the device's call-outs?); save from outside the device's callbacks`);
    }
  });
  const sections: StateSection[] = [];
  const add = (tag: string, required: boolean, fill: (w: StateWriter) => void): void => {
    const w = new StateWriter();
    fill(w);
    sections.push({ tag, version: V1, required, payload: w.finish() });
  };
  add(IDENTITY, true, (w) => void w.string(h.id).u16(h.queuePairs).u16(h.mtu ?? 0));
  sections.push(...coreSections(h.core));
  add(FILTER, true, (w) => writeFilter(w, h.filter));
  add(CONTROL, true, (w) => {
    const c = h.ctrlState;
    w.bool(c.announcePending).u16(c.queuePairs).u64(c.guestOffloads);
    w.bool(h.latch.armed).bool(h.linkUp).bool(h.tx.pendingWork).bool(h.rx.backendPaused);
  });
  add(BACKLOG, true, (w) => {
    const b = h.rx.backlog;
    w.u16(b.length);
    for (let i = 0; i < b.length; i++) {
      const frame = b.frameAt(i)!;
      const header = b.headerAt(i);
      w.u32(frame.length).u8(header?.length ?? 0);
      if (header !== undefined) w.bytes(header);
      w.bytes(frame);
    }
  });
  add(HELD, true, (w) => {
    const rx = h.rx;
    const q = h.core.queues[rx.heldQueueIndex] ?? null;
    const count = rx.heldCount;
    if (count > 0 && q === null) throw new Error(`saveState: receive chains held, but queue ${rx.heldQueueIndex} does not run`);
    w.u16(count);
    for (let i = 0; i < count; i++) {
      const c = rx.heldAt(i);
      // Where it was popped and its id; and where the ring may no longer describe it (packed), the
      // list as popped.
      w.u16(c.availIndex).u16(c.headIndex);
      const list = q!.heldList(c);
      if (list !== null) writeHeldList(w, list);
    }
  });
  const steering = steeringToSave(h);
  if (steering !== null) add(STEERING, false, steering);
  add(COALESCING, false, (w) => {
    const c = h.coal.exportState();
    w.u32(c.tx.maxPackets).u32(c.tx.maxUsecs).u32(c.rx.maxPackets).u32(c.rx.maxUsecs).u16(c.queues.length);
    for (const q of c.queues) w.u32(q.maxPackets).u32(q.maxUsecs);
  });
  add(COUNTERS, false, (w) => {
    const entries = h.counters.exportState().slice(0, MAX_COUNTERS);
    w.u16(entries.length);
    for (const [name, value] of entries) w.string(name).f64(value);
  });
  return encodeStateImage(sections);
}

/** NRSS's writer, or null when everything in it has its reset value (older readers then lose nothing). */
function steeringToSave(h: NetStateHost): ((w: StateWriter) => void) | null {
  const rss = h.ctrlState.rss;
  const rx = h.rx;
  const b = rx.backlog;
  let tagged = false;
  for (let i = 0; i < b.length; i++) if (b.tagAt(i) >= 0) tagged = true;
  const configured = rss !== undefined && (rss.redirect || rss.hashTypes !== 0 || rss.keyLength !== 0);
  if (!configured && !tagged && rx.heldQueueIndex === 0) return null;
  return (w) => {
    w.u16(rx.heldQueueIndex);
    w.bool(rss?.redirect ?? false).u32(rss?.hashTypes ?? 0);
    const n = rss?.tableLength ?? 1;
    w.u16(n);
    for (let i = 0; i < n; i++) w.u16(rss?.table[i] ?? 0);
    w.u16(rss?.unclassifiedQueue ?? 0);
    const keyLength = rss?.keyLength ?? 0;
    w.u8(keyLength);
    if (keyLength > 0) w.bytes(rss!.key.subarray(0, keyLength));
    w.u16(b.length);
    for (let i = 0; i < b.length; i++) w.u16(b.tagAt(i) + 1);
  };
}

/** NRSS, checked against the device (reset values when absent). */
function readSteering(image: StateImage, h: NetStateHost, backlogLength: number): SteeringValue {
  const s = image.take(STEERING, V1);
  if (s === undefined) return { heldQueue: 0, redirect: false, hashTypes: 0, table: new Uint16Array(1), unclassified: 0, key: new Uint8Array(0), tags: [] };
  const r = s.reader;
  const heldQueue = r.u16('held chains queue');
  if ((heldQueue & 1) !== 0 || heldQueue >>> 1 >= h.queuePairs) throw corrupt(`held chains on queue ${heldQueue}, not a receive queue of this device`);
  const redirect = r.bool('rss redirect');
  const hashTypes = r.u32('hash types');
  if ((hashTypes & ~SUPPORTED_HASH_TYPES) !== 0) throw corrupt(`hash types 0x${hashTypes.toString(16)}`);
  const n = r.u16('indirection table length');
  if (n === 0 || (n & (n - 1)) !== 0 || n > RSS_MAX_TABLE_LENGTH) throw corrupt(`indirection table of ${n} entries`);
  const table = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    table[i] = r.u16('indirection table entry');
    if (redirect && table[i]! >= h.queuePairs) throw corrupt(`indirection table entry ${table[i]} on a device of ${h.queuePairs} queue pair(s)`);
  }
  const unclassified = r.u16('unclassified queue');
  if (redirect && unclassified >= h.queuePairs) throw corrupt(`unclassified queue ${unclassified} on a device of ${h.queuePairs} queue pair(s)`);
  const keyLength = r.u8('key length');
  if (keyLength > RSS_MAX_KEY_SIZE) throw corrupt(`a ${keyLength}-byte RSS key`);
  const key = r.bytes(keyLength, 'key');
  const tagCount = r.u16('backlog tags');
  if (tagCount !== backlogLength) throw corrupt(`${tagCount} backlog tags for ${backlogLength} backlog frames`);
  const tags: number[] = [];
  for (let i = 0; i < tagCount; i++) tags.push(r.u16('backlog tag') - 1);
  r.done();
  if (h.ctrlState.rss === undefined && (redirect || hashTypes !== 0)) throw mismatch('state with RSS configured, this device has none');
  return { heldQueue, redirect, hashTypes, table, unclassified, key, tags };
}

/** A packed ring's held list (its ring descriptors may be overwritten): see NETR above. */
function writeHeldList(w: StateWriter, l: HeldList): void {
  w.u16(l.ringSlots).u16(l.descriptorCount).bool(l.indirect).u16(l.regions.length);
  for (const r of l.regions) w.u64(BigInt(r.addr)).u32(r.len).bool(r.writable);
}

function readHeldList(r: StateReader): HeldList {
  const ringSlots = r.u16('held list ring descriptors');
  const descriptorCount = r.u16('held list descriptors');
  const indirect = r.bool('held list indirect');
  const n = r.u16('held list buffers');
  const regions: { addr: number; len: number; writable: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    const addr = r.u64('held list buffer address');
    if (addr > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`held list buffer address 0x${addr.toString(16)}`);
    regions.push({ addr: Number(addr), len: r.u32('held list buffer length'), writable: r.bool('held list buffer writable') });
  }
  return { ringSlots, descriptorCount, indirect, regions };
}

function writeFilter(w: StateWriter, f: RxFilterState): void {
  let modes = 0;
  MODES.forEach((m, i) => {
    if (f[m]) modes |= 1 << i;
  });
  w.u8(modes).bool(f.ctrlVlanNegotiated).bytes(f.mainMac);
  const t = f.macTable;
  w.bool(t.uniOverflow).bool(t.multiOverflow);
  w.u8(t.uniCount).bytes(t.uniBytes.subarray(0, t.uniCount * ETH_ALEN));
  w.u8(t.multiCount).bytes(t.multiBytes.subarray(0, t.multiCount * ETH_ALEN));
  const vlans = new Uint8Array(VLAN_BYTES);
  for (let vid = 0; vid < VLAN_ID_COUNT; vid++) if (f.hasVlan(vid)) vlans[vid >>> 3]! |= 1 << (vid & 7);
  w.bytes(vlans);
}

// ---- load ----

/**
 * Parses and checks a state image against the device `h` (throws `DeviceStateError`; changes
 * nothing). Order: envelope (corrupt / version), identity (mismatch), core and transport, the NIC's
 * sections, then unknown required sections (version).
 */
export function loadNetState(h: NetStateHost, bytes: Uint8Array): NetRestorePlan {
  const image = StateImage.parse(bytes);
  const idr = image.need(IDENTITY, V1).reader;
  const id = idr.string('id');
  const pairs = idr.u16('queue pairs');
  const mtu = idr.u16('mtu');
  idr.done();
  if (id !== h.id) throw mismatch(`state of device '${id}', this is '${h.id}'`);
  if (pairs !== h.queuePairs) throw mismatch(`state of a device with ${pairs} queue pair(s), this one has ${h.queuePairs}`);
  if (mtu !== (h.mtu ?? 0)) throw mismatch(`state of a device with mtu ${mtu === 0 ? 'not offered' : mtu}, this one ${h.mtu === undefined ? 'offers none' : `offers ${h.mtu}`}`);

  const core = loadCoreSections(h.core, image);
  const filter = readFilter(image);

  const c = image.need(CONTROL, V1).reader;
  const announcePending = c.bool('announce pending');
  const queuePairs = c.u16('queue pairs in use');
  const guestOffloads = c.u64('guest offloads');
  const latchArmed = c.bool('latch armed');
  const linkUp = c.bool('link up');
  const txPending = c.bool('transmit work pending');
  const backendPaused = c.bool('backend paused');
  c.done();
  if (queuePairs < 1 || queuePairs > h.queuePairs) throw corrupt(`${queuePairs} queue pairs in use, the device has ${h.queuePairs}`);
  if ((guestOffloads & ~GUEST_OFFLOAD_FEATURES) !== 0n) throw corrupt(`guest offloads 0x${guestOffloads.toString(16)} are not offload bits`);

  const b = image.need(BACKLOG, V1).reader;
  const count = b.u16('backlog frames');
  if (count > RX_BACKLOG_FRAMES) throw corrupt(`${count} backlog frames, the backlog holds ${RX_BACKLOG_FRAMES}`);
  const backlog: { frame: Uint8Array; header: Uint8Array }[] = [];
  for (let i = 0; i < count; i++) {
    const len = b.u32('frame length');
    const hl = b.u8('header length');
    if (len > RX_FRAME_MAX) throw corrupt(`backlog frame ${i} of ${len} bytes, above ${RX_FRAME_MAX}`);
    if (hl > BACKLOG_HEADER_MAX) throw corrupt(`backlog frame ${i} with a ${hl}-byte header`);
    const header = b.bytes(hl, 'header');
    backlog.push({ header, frame: b.bytes(len, 'frame') });
  }
  b.done();

  const steering = readSteering(image, h, backlog.length);
  const held = readHeld(image, core.state, core.queues, steering.heldQueue);
  checkHeldChains(core.queues);

  const counters: [string, number][] = [];
  const s = image.take(COUNTERS, V1);
  if (s !== undefined) {
    const r = s.reader;
    const n = r.u16('counter count');
    // Plus the per-queue counters (net-stats.ts: six per data queue, the non-zero ones saved).
    if (n > MAX_COUNTERS + 6 * h.coal.dataQueues) throw corrupt(`${n} counters`);
    for (let i = 0; i < n; i++) counters.push([r.string('counter name'), r.count('counter value')]);
    r.done();
  }
  const coal = readCoalescing(image, h.coal.dataQueues);
  image.finish();
  return {
    core: core.state,
    commitCore: core.commit,
    net: { filter, announcePending, queuePairs, guestOffloads, latchArmed, linkUp, txPending, backendPaused, backlog, held, counters, steering, coal },
  };
}

/**
 * NETR: the receive chains held, popped again on the restored receiveq1 — walked and checked in this
 * memory like any popped chain, and as popChain accepts them (a writable part holding the header).
 */
function readHeld(image: StateImage, core: CoreState, queues: readonly (Virtqueue | null)[], heldQueue: number): DescriptorChain[] {
  const r = image.need(HELD, V1).reader;
  const count = r.u16('held chains');
  const held: DescriptorChain[] = [];
  if (count === 0) {
    r.done();
    return held;
  }
  const q = queues[heldQueue] ?? null;
  if (q === null) throw corrupt(`${count} receive chain(s) held, but queue ${heldQueue} does not run`);
  const features = core.negotiation.driver;
  if (!hasFeature(features, NetFeature.MRG_RXBUF)) throw corrupt(`${count} receive chain(s) held without MRG_RXBUF`);
  const hdrLen = guestHeaderLength(features);
  for (let i = 0; i < count; i++) {
    const seq = r.u16('held chain index');
    const head = r.u16('held chain head');
    const list = q.ring === 'packed' ? readHeldList(r) : null;
    const c = q.restoreHeld(head, seq, list);
    if (typeof c === 'string') throw corrupt(`receiveq1: held receive chain ${i}: ${c}`);
    // A chain the state says was held but this memory does not describe as one: the memory is not
    // the saved guest's (or the guest changed a chain it had given the device).
    if ('code' in c) throw mismatch(`receiveq1: held chain ${head} is not a valid chain in this memory (${c.code})`);
    if (c.writableCount === 0 || c.writableLength < hdrLen) throw mismatch(`receiveq1: held chain ${head} has ${c.writableLength} writable bytes in this memory, less than the ${hdrLen}-byte header`);
    held.push(c);
  }
  r.done();
  return held;
}

/** NCOA: the coalescing parameters, or all 0 when the image has none. */
function readCoalescing(image: StateImage, dataQueues: number): CoalState {
  const s = image.take(COALESCING, V1);
  if (s === undefined) return { tx: { maxPackets: 0, maxUsecs: 0 }, rx: { maxPackets: 0, maxUsecs: 0 }, queues: [] };
  const r = s.reader;
  const tx = { maxPackets: r.u32('TX_SET max_packets'), maxUsecs: r.u32('TX_SET max_usecs') };
  const rx = { maxPackets: r.u32('RX_SET max_packets'), maxUsecs: r.u32('RX_SET max_usecs') };
  const n = r.u16('coalescing queues');
  // The identity (queue pairs) matched already, so another count is a damaged image.
  if (n !== dataQueues) throw corrupt(`coalescing parameters for ${n} data queues, the device has ${dataQueues}`);
  const queues: CoalParams[] = [];
  for (let i = 0; i < n; i++) queues.push({ maxPackets: r.u32('max_packets'), maxUsecs: r.u32('max_usecs') });
  r.done();
  return { tx, rx, queues };
}

function readFilter(image: StateImage): NetStateValue['filter'] {
  const r = image.need(FILTER, V1).reader;
  const modes = r.u8('rx modes');
  if ((modes & ~((1 << MODES.length) - 1)) !== 0) throw corrupt(`rx modes 0x${modes.toString(16)}`);
  const ctrlVlan = r.bool('CTRL_VLAN negotiated');
  const mainMac = r.bytes(ETH_ALEN, 'main MAC');
  const uniOverflow = r.bool('unicast overflow');
  const multiOverflow = r.bool('multicast overflow');
  const uniCount = r.u8('unicast count');
  if (uniCount > MAC_TABLE_ENTRIES) throw corrupt(`${uniCount} unicast entries`);
  const unicast = r.bytes(uniCount * ETH_ALEN, 'unicast table');
  const multiCount = r.u8('multicast count');
  if (uniCount + multiCount > MAC_TABLE_ENTRIES) throw corrupt(`${uniCount} + ${multiCount} MAC table entries, the table holds ${MAC_TABLE_ENTRIES}`);
  const multicast = r.bytes(multiCount * ETH_ALEN, 'multicast table');
  const vlans = r.bytes(VLAN_BYTES, 'VLAN bitmap');
  r.done();
  return { modes, ctrlVlan, mainMac, uniOverflow, multiOverflow, unicast, multicast, vlans };
}

// ---- commit (the NIC's values; the device sequences it with the core's commit) ----

/** Sets the filter, control state, latch, link, counters and backlog from a checked value. */
export function applyNetState(h: NetStateHost, v: NetStateValue, setLink: (up: boolean) => void): void {
  const f = h.filter;
  const vf = v.filter;
  MODES.forEach((m, i) => {
    f[m] = (vf.modes & (1 << i)) !== 0;
  });
  f.setCtrlVlanNegotiated(vf.ctrlVlan);
  for (let vid = 0; vid < VLAN_ID_COUNT; vid++) {
    if ((vf.vlans[vid >>> 3]! & (1 << (vid & 7))) !== 0) f.vlanAdd(vid);
    else f.vlanDel(vid);
  }
  f.setMainMac(vf.mainMac, 0);
  const t = f.beginMacTable();
  for (let i = 0; i < vf.unicast.length; i += ETH_ALEN) t.addUnicast(vf.unicast, i);
  for (let i = 0; i < vf.multicast.length; i += ETH_ALEN) t.addMulticast(vf.multicast, i);
  t.uniOverflow = vf.uniOverflow;
  t.multiOverflow = vf.multiOverflow;
  f.commitMacTable();

  const c = h.ctrlState;
  c.announcePending = v.announcePending;
  c.queuePairs = v.queuePairs;
  c.guestOffloads = v.guestOffloads;
  h.latch.rearm();
  if (!v.latchArmed) h.latch.trigger();

  // Link first: taking it down empties the backlog, which is filled after.
  setLink(v.linkUp);
  const backlog = h.rx.backlog;
  backlog.clear();
  v.backlog.forEach(({ frame, header }, i) => backlog.push(frame, header.length > 0 ? header : undefined, v.steering.tags[i] ?? -1));
  const st = v.steering;
  const rss = h.ctrlState.rss;
  if (rss !== undefined) {
    if (st.redirect || st.hashTypes !== 0 || st.key.length > 0) rss.set(st.redirect, st.hashTypes, st.table, 0, st.table.length, st.unclassified, st.key, 0, st.key.length);
    else rss.disable();
  }
  h.rx.backendPaused = v.backendPaused;
  // The held chains go to the receive path when it resumes (virtio-net-device.ts restoreState).
  h.counters.importState(v.counters);
  h.coal.importState(v.coal);
}
