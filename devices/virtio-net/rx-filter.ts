// The receive filter (VIRTIO 1.2 §5.1.6.5.1 rx modes, §5.1.6.5.2 MAC filtering, §5.1.6.5.3 VLAN
// filtering), with QEMU 7.2's decision order (hw/net/virtio-net.c receive_filter): one state object
// the control queue writes and the query reads, and one pure accept function the RX path calls for
// every frame from the backend.
//
// The accept function is the hot path: it reads the frame bytes directly, compares the main MAC as
// two integers, looks MAC-table addresses up in a small open-addressing hash keyed by the 48-bit
// address, and returns a small integer verdict. It allocates nothing.

import { ETH_ALEN, ETH_HLEN, ETH_P_8021Q, ETH_VLAN_HLEN, MAC_TABLE_ENTRIES, VLAN_ID_COUNT } from './constants.js';
import { macHigh, macLow } from './mac.js';

// The verdicts and Ethernet sizes as module-local constants: acceptFrame reads them on every frame,
// and V8 folds module-local consts into the code while reads of imported bindings and of object
// properties stay loads (measured: the same function ran about 4x slower under tsx with them).
const ACCEPT = 0;
const DROP_VLAN = 1;
const DROP_UNICAST = 2;
const DROP_MULTICAST = 3;
const DROP_BROADCAST = 4;
const DROP_RUNT = 5;
const HLEN = ETH_HLEN;
const VLAN_HLEN = ETH_VLAN_HLEN;
const TPID_8021Q = ETH_P_8021Q;
const ALEN = ETH_ALEN;

/** What `acceptFrame` decided: 0 accepts, anything else is the reason the frame was dropped. */
export const RxVerdict = {
  ACCEPT,
  /** 802.1Q-tagged with a VLAN id the table does not hold. */
  DROP_VLAN,
  /** Unicast to an address neither the main MAC nor in the unicast list (or NOUNI is on). */
  DROP_UNICAST,
  /** Multicast not in the multicast list (or NOMULTI is on). */
  DROP_MULTICAST,
  /** Broadcast while NOBCAST is on. */
  DROP_BROADCAST,
  /** Shorter than an Ethernet header (14), or than a tagged one (18) when tagged. */
  DROP_RUNT,
} as const;
export type RxVerdict = (typeof RxVerdict)[keyof typeof RxVerdict];

/** Counter names of the drop reasons, indexed by verdict (index 0, accept, is not a drop). */
export const RX_DROP_REASONS = ['accept', 'vlan', 'unicast', 'multicast', 'broadcast', 'runt'] as const;
export type RxDropReason = Exclude<(typeof RX_DROP_REASONS)[number], 'accept'>;

/** Slots of a MAC hash set: a power of two at least twice the table size, so probing always ends. */
const MAC_SET_SLOTS = 128;
const MAC_SET_MASK = MAC_SET_SLOTS - 1;
/** Never a key: keys are in [0, 2^48). */
const EMPTY_SLOT = -1;

/** Open-addressing (linear probing) set of 48-bit addresses; at most MAC_TABLE_ENTRIES keys. */
export class MacSet {
  private readonly keys = new Float64Array(MAC_SET_SLOTS).fill(EMPTY_SLOT);
  private count = 0;
  /** The slot of each key, in insertion order: clear() empties those, not every slot. */
  private readonly filled = new Uint8Array(MAC_SET_SLOTS);

  get size(): number {
    return this.count;
  }

  clear(): void {
    const keys = this.keys;
    const filled = this.filled;
    for (let i = 0; i < this.count; i++) keys[filled[i]!] = EMPTY_SLOT;
    this.count = 0;
  }

  /** Adds the address (high 16 bits, low 32 bits as from macHigh/macLow); duplicates are kept once. */
  add(high: number, low: number): void {
    const key = high * 0x1_0000_0000 + (low >>> 0); // macKey(), inlined (imported bindings stay loads)
    const keys = this.keys;
    let i = slotOf(high, low);
    for (;;) {
      const k = keys[i]!;
      if (k === key) return;
      if (k === EMPTY_SLOT) {
        // Callers add at most MAC_TABLE_ENTRIES (64) keys into 128 slots, so an empty slot exists.
        keys[i] = key;
        this.filled[this.count++] = i;
        return;
      }
      i = (i + 1) & MAC_SET_MASK;
    }
  }

  has(high: number, low: number): boolean {
    const key = high * 0x1_0000_0000 + (low >>> 0); // macKey(), inlined for the per-frame lookup
    const keys = this.keys;
    let i = slotOf(high, low);
    for (;;) {
      const k = keys[i]!;
      if (k === key) return true;
      if (k === EMPTY_SLOT) return false;
      i = (i + 1) & MAC_SET_MASK;
    }
  }
}

/** macHigh / macLow (mac.ts), module-local for the table-building loop. */
function high16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function low32(b: Uint8Array, o: number): number {
  return (b[o + 2]! << 24) | (b[o + 3]! << 16) | (b[o + 4]! << 8) | b[o + 5]!;
}

function slotOf(high: number, low: number): number {
  // Multiplicative hash of both halves; the top 7 bits index the 128 slots.
  return Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> 25;
}

/**
 * The guest's MAC filter table (§5.1.6.5.2): a unicast and a multicast list in guest order, sharing
 * MAC_TABLE_ENTRIES entries, each with its overflow flag (a list too long to keep is replaced by
 * "accept all of that kind", as QEMU does). Lists keep duplicates, as the guest sent them.
 */
export class MacTable {
  uniCount = 0;
  multiCount = 0;
  uniOverflow = false;
  multiOverflow = false;
  /** uniCount addresses, 6 bytes each, guest order. */
  readonly uniBytes = new Uint8Array(MAC_TABLE_ENTRIES * ETH_ALEN);
  /** multiCount addresses, 6 bytes each, guest order. */
  readonly multiBytes = new Uint8Array(MAC_TABLE_ENTRIES * ETH_ALEN);
  readonly uniSet = new MacSet();
  readonly multiSet = new MacSet();

  clear(): void {
    this.uniCount = 0;
    this.multiCount = 0;
    this.uniOverflow = false;
    this.multiOverflow = false;
    this.uniSet.clear();
    this.multiSet.clear();
  }

  /** Appends a unicast entry (reads `src` once); the caller keeps uniCount + multiCount <= MAC_TABLE_ENTRIES. */
  addUnicast(src: Uint8Array, offset: number): void {
    const bytes = this.uniBytes;
    const at = this.uniCount * ALEN;
    for (let i = 0; i < ALEN; i++) bytes[at + i] = src[offset + i]!;
    this.uniCount++;
    this.uniSet.add(high16(bytes, at), low32(bytes, at)); // from the copy: src is read once (it may be guest memory)
  }

  /** Appends a multicast entry (reads `src` once); the caller keeps uniCount + multiCount <= MAC_TABLE_ENTRIES. */
  addMulticast(src: Uint8Array, offset: number): void {
    const bytes = this.multiBytes;
    const at = this.multiCount * ALEN;
    for (let i = 0; i < ALEN; i++) bytes[at + i] = src[offset + i]!;
    this.multiCount++;
    this.multiSet.add(high16(bytes, at), low32(bytes, at)); // from the copy: src is read once (it may be guest memory)
  }
}

/**
 * The whole rx-filter state. Flags are stored in the guest's sense (`noBcast` is the NOBCAST flag);
 * rx-filter-query.ts is the one place that converts them into query-rx-filter's fields.
 */
export class RxFilterState {
  /** PROMISC; on at creation and after reset ("compatibility mode" for drivers without CTRL_RX). */
  promiscuous = true;
  allMulti = false;
  allUni = false;
  noMulti = false;
  noUni = false;
  noBcast = false;
  /** The committed MAC table. Replaced as a whole by `commitMacTable()`, never edited in place. */
  macTable = new MacTable();
  /** Where MAC_TABLE_SET builds the next table; swapped in by `commitMacTable()`. */
  private scratch = new MacTable();
  /** 4096 bits, bit `vid` set = VLAN `vid` accepted. */
  readonly vlans = new Uint32Array(VLAN_ID_COUNT / 32);
  /** Whether CTRL_VLAN is negotiated: decides what the table means when (re)initialised. */
  private ctrlVlan = false;
  /** The main MAC (config `mac`), 6 bytes; also kept as two integers for the hot path. */
  readonly mainMac = new Uint8Array(ETH_ALEN);
  mainHigh = 0;
  mainLow = 0;
  /** The configured MAC the device returns to on reset. */
  private readonly defaultMac = new Uint8Array(ETH_ALEN);

  constructor(mac: Uint8Array) {
    if (!(mac instanceof Uint8Array) || mac.length !== ETH_ALEN) {
      throw new TypeError('RxFilterState: mac must be a Uint8Array of 6 bytes');
    }
    this.defaultMac.set(mac);
    this.setMainMac(mac, 0);
    this.vlans.fill(0xffffffff); // CTRL_VLAN not negotiated yet: every VLAN passes.
  }

  /** True when CTRL_VLAN was negotiated at the last `setCtrlVlanNegotiated()`. */
  get ctrlVlanNegotiated(): boolean {
    return this.ctrlVlan;
  }

  /**
   * Device reset (§2.4): rx modes back to promiscuous only, empty MAC table (§5.1.6.5.2.1 "empty
   * MAC filtering table on reset"), main MAC back to the configured one. Reset clears the
   * negotiated features, so CTRL_VLAN becomes un-negotiated: the VLAN table is re-initialised to
   * allow-all if CTRL_VLAN was negotiated before (see `setCtrlVlanNegotiated`).
   */
  reset(): void {
    this.promiscuous = true;
    this.allMulti = false;
    this.allUni = false;
    this.noMulti = false;
    this.noUni = false;
    this.noBcast = false;
    this.macTable.clear();
    this.setMainMac(this.defaultMac, 0);
    this.setCtrlVlanNegotiated(false);
  }

  /**
   * Call with the CTRL_VLAN bit of the features the driver sets. The VLAN table is re-initialised
   * only when the bit changes: empty when CTRL_VLAN becomes negotiated (§5.1.6.5.3, the driver adds
   * what it wants), allow-all when it stops being negotiated (nobody can program it). Writing the
   * same bit again keeps the table. This is QEMU's behaviour since "virtio-net: Fix VLAN filter
   * table reset timing" (QEMU commit 6071d13c, also in stable branches); before it, a 7.2 build
   * cleared the table on reset and filled it on every feature write without CTRL_VLAN.
   */
  setCtrlVlanNegotiated(on: boolean): void {
    if (on === this.ctrlVlan) return;
    this.ctrlVlan = on;
    this.vlans.fill(on ? 0 : 0xffffffff);
  }

  setMainMac(src: Uint8Array, offset: number): void {
    const mac = this.mainMac;
    for (let i = 0; i < ETH_ALEN; i++) mac[i] = src[offset + i]!;
    this.mainHigh = macHigh(mac, 0); // from the copy: src is read once (it may be guest memory)
    this.mainLow = macLow(mac, 0);
  }

  /** A cleared table to build the next MAC table into; `commitMacTable()` makes it current. */
  beginMacTable(): MacTable {
    this.scratch.clear();
    return this.scratch;
  }

  /** Makes the table from `beginMacTable()` current (the old one becomes the next scratch). */
  commitMacTable(): void {
    const old = this.macTable;
    this.macTable = this.scratch;
    this.scratch = old;
  }

  vlanAdd(vid: number): void {
    this.vlans[vid >>> 5]! |= 1 << (vid & 31);
  }

  vlanDel(vid: number): void {
    this.vlans[vid >>> 5]! &= ~(1 << (vid & 31));
  }

  hasVlan(vid: number): boolean {
    return ((this.vlans[vid >>> 5]! >>> (vid & 31)) & 1) === 1;
  }
}

/**
 * Decides whether a frame from the backend reaches the guest. `frame[offset .. offset + length)` is
 * the Ethernet frame (no virtio-net header). Decision order (QEMU 7.2 receive_filter, plus length
 * checks QEMU leaves to its padding):
 * 1. promiscuous → accept;
 * 2. shorter than 14 bytes → runt;
 * 3. TPID 0x8100: shorter than 18 → runt; VLAN id not in the table → vlan (other TPIDs unchecked);
 * 4. group address: broadcast → accept unless NOBCAST; NOMULTI → drop; ALLMULTI or multicast
 *    overflow → accept; else accept iff in the multicast list;
 * 5. unicast: NOUNI → drop (even the main MAC); ALLUNI or unicast overflow → accept; main MAC →
 *    accept; else accept iff in the unicast list.
 */
export function acceptFrame(state: RxFilterState, frame: Uint8Array, offset: number, length: number): RxVerdict {
  if (state.promiscuous) return ACCEPT;
  if (length < HLEN) return DROP_RUNT;

  if (((frame[offset + 12]! << 8) | frame[offset + 13]!) === TPID_8021Q) {
    if (length < VLAN_HLEN) return DROP_RUNT;
    const vid = ((frame[offset + 14]! & 0x0f) << 8) | frame[offset + 15]!;
    if (((state.vlans[vid >>> 5]! >>> (vid & 31)) & 1) === 0) return DROP_VLAN;
  }

  const high = (frame[offset]! << 8) | frame[offset + 1]!;
  const low = (frame[offset + 2]! << 24) | (frame[offset + 3]! << 16) | (frame[offset + 4]! << 8) | frame[offset + 5]!;
  const table = state.macTable;

  if ((high & 0x100) !== 0) {
    // I/G bit (bit 0 of byte 0) set: a group address.
    if (high === 0xffff && low === -1) return state.noBcast ? DROP_BROADCAST : ACCEPT;
    if (state.noMulti) return DROP_MULTICAST;
    if (state.allMulti || table.multiOverflow) return ACCEPT;
    return table.multiCount !== 0 && table.multiSet.has(high, low) ? ACCEPT : DROP_MULTICAST;
  }

  if (state.noUni) return DROP_UNICAST;
  if (state.allUni || table.uniOverflow) return ACCEPT;
  if (high === state.mainHigh && low === state.mainLow) return ACCEPT;
  return table.uniCount !== 0 && table.uniSet.has(high, low) ? ACCEPT : DROP_UNICAST;
}
