// Host rx-filter sync: the guest's rx filter (VIRTIO 1.2 §5.1.6.5.1 rx mode, §5.1.6.5.2 MAC
// table, §5.1.6.5.3 VLAN table, as query-rx-filter reports it) mirrored onto a macvtap link, the
// loop libvirt runs for QEMU, inside the library.
//
// On 'rx-filter-changed' a sync is scheduled (setImmediate): a burst of changes before it runs
// costs one sync, and one arriving while a sync runs leads to exactly one more. A sync calls
// queryRxFilter() (which re-arms the event), then applies, in order:
//   MAC       := main-mac (RTM_NEWLINK IFLA_ADDRESS, only when it differs);
//   multicast := the guest's multicast-table, in every mode (`none` included, as libvirt does:
//                the mode is carried by the flags below). SIOCADDMULTI the missing, SIOCDELMULTI
//                the stale ones this sync added earlier. After a delete, the kernel is forced to
//                recompute its filter with ALLMULTI on→off (measured: deleted groups kept arriving
//                until then);
//   PROMISC   := guest promiscuous, or any VLAN other than 0 in a CTRL_VLAN table (macvtap cannot
//                filter by VLAN; VLAN 0 is priority tagging that every Linux guest adds), or
//                unicast 'all' / unicast-overflow (the host filter must stay a superset);
//   ALLMULTI  := multicast 'all', or 'normal' with multicast-overflow; 'none' clears it;
//   MULTICAST := IFF_MULTICAST, cleared for multicast 'none' and set again when the mode leaves
//                it (libvirt clears ALLMULTI and MULTICAST for none and sets MULTICAST for normal;
//                for 'all' it leaves MULTICAST as it was, we set it: 'all' wants multicast);
//   unicast   := the guest's unicast-table as NTF_SELF fdb entries on passthru links; other modes
//                cannot take them (EOPNOTSUPP) and are skipped, reported in the result.
// Every host failure becomes a typed error in the result and a 'sync-error' event; the remaining
// steps still run and the device never sees an exception. The device keeps its own exact filter:
// the host filter only has to be a superset.

import { EventEmitter } from 'node:events';
import type { RxFilterSnapshot, RxFilterSource } from './netdev.js';
import { Rtnetlink, IFF_ALLMULTI, IFF_MULTICAST, IFF_PROMISC } from '../netlink/rtnetlink.js';
import type { LinkInfo } from '../netlink/rtnetlink.js';
import { MulticastList } from './multicast.js';
import { NetlinkError } from '../netlink/errors.js';
import { HostError } from '../host/libc.js';

/** What the host link should look like for a guest filter. */
export interface HostFilterPlan {
  mac: string;
  promisc: boolean;
  allmulti: boolean;
  /** IFF_MULTICAST: false only for multicast 'none'. */
  multicastFlag: boolean;
  /** The multicast list: the guest's table in every mode. */
  multicast: string[];
  unicast: string[];
}

/** The pure rule table above. */
export function planHostFilter(f: RxFilterSnapshot): HostFilterPlan {
  const vlans = f.vlan === 'normal' && f['vlan-table'].some((id) => id !== 0);
  const unicast = f.unicast === 'none' ? [] : unique(f['unicast-table']);
  return {
    mac: f['main-mac'].toLowerCase(),
    promisc: f.promiscuous || vlans || f.unicast === 'all' || f['unicast-overflow'],
    allmulti: f.multicast === 'all' || (f.multicast !== 'none' && f['multicast-overflow']),
    multicastFlag: f.multicast !== 'none',
    multicast: unique(f['multicast-table']),
    unicast,
  };
}

function unique(list: readonly string[]): string[] {
  return [...new Set(list.map((m) => m.toLowerCase()))];
}

export interface SyncError {
  readonly code: 'rx-filter-sync.host-error';
  /** The step that failed: 'mac', 'multicast-add', 'multicast-del', 'flags', 'unicast-add', 'unicast-del', 'link', 'query'. */
  readonly op: string;
  readonly ifname: string;
  readonly errno?: number;
  readonly message: string;
}

export interface SyncResult {
  readonly plan: HostFilterPlan;
  readonly errors: SyncError[];
  /** True when the link's mode cannot take unicast entries (not passthru) and some were wanted. */
  readonly unicastSkipped: boolean;
}

export interface RxFilterSyncStats {
  syncs: number;
  /** Change events folded into a sync already scheduled or running. */
  coalesced: number;
  errors: number;
}

export class RxFilterSync extends EventEmitter {
  private readonly rt: Rtnetlink;
  private readonly mcast: MulticastList;
  private source: RxFilterSource | null = null;
  private readonly listener = (): void => this.schedule();
  private scheduled: NodeJS.Immediate | null = null;
  private running = false;
  private again = false;
  private closed = false;
  /** Groups and unicast entries this sync put on the link (the kernel's own stay untouched). */
  private readonly addedGroups = new Set<string>();
  private readonly addedUnicast = new Set<string>();
  private readonly counters: RxFilterSyncStats = { syncs: 0, coalesced: 0, errors: 0 };

  constructor(readonly ifname: string) {
    super();
    this.rt = new Rtnetlink();
    try {
      this.mcast = new MulticastList();
    } catch (e) {
      this.rt.close();
      throw e;
    }
  }

  /** Starts mirroring `source`; schedules a first sync. Returns the unbind function. */
  bind(source: RxFilterSource): () => void {
    if (this.closed) throw new Error(`RxFilterSync ${this.ifname}: closed`);
    if (this.source !== null) throw new Error(`RxFilterSync ${this.ifname}: already bound to a device`);
    if (source === null || typeof source !== 'object' || typeof source.queryRxFilter !== 'function' || typeof source.on !== 'function') {
      throw new TypeError('bindRxFilterSource needs a device with queryRxFilter() and on("rx-filter-changed")');
    }
    this.source = source;
    source.on('rx-filter-changed', this.listener);
    this.schedule();
    return () => this.unbind();
  }

  unbind(): void {
    if (this.source === null) return;
    this.source.off('rx-filter-changed', this.listener);
    this.source = null;
    if (this.scheduled !== null) clearImmediate(this.scheduled);
    this.scheduled = null;
  }

  stats(): RxFilterSyncStats {
    return { ...this.counters };
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      this.counters.coalesced++;
      return;
    }
    if (this.scheduled !== null) {
      this.counters.coalesced++;
      return;
    }
    this.scheduled = setImmediate(() => {
      this.scheduled = null;
      this.run();
    });
  }

  private run(): void {
    if (this.closed || this.source === null) return;
    this.running = true;
    try {
      do {
        this.again = false;
        const result = this.syncNow();
        if (result !== null) this.emit('synced', result);
      } while (this.again && !this.closed && this.source !== null);
    } finally {
      this.running = false;
    }
  }

  /** Queries the device and applies the plan now. Null when unbound. */
  syncNow(): SyncResult | null {
    const source = this.source;
    if (source === null) return null;
    const plan = planHostFilter(source.queryRxFilter());
    const errors: SyncError[] = [];
    const step = (op: string, fn: () => void): boolean => {
      try {
        fn();
        return true;
      } catch (e) {
        const errno = e instanceof HostError ? e.errno : e instanceof NetlinkError ? e.errno : undefined;
        const err: SyncError = { code: 'rx-filter-sync.host-error', op, ifname: this.ifname, ...(errno === undefined ? {} : { errno }), message: e instanceof Error ? e.message : String(e) };
        errors.push(err);
        this.counters.errors++;
        if (this.listenerCount('sync-error') > 0) this.emit('sync-error', err);
        return false;
      }
    };
    this.counters.syncs++;
    let link: LinkInfo | null = null;
    step('link', () => {
      link = this.rt.getLink(this.ifname);
    });
    const l = link as LinkInfo | null;
    if (l === null) return { plan, errors, unicastSkipped: false };
    const index = l.index;

    if (l.address !== plan.mac) step('mac', () => this.rt.setAddress(index, plan.mac));

    const want = new Set(plan.multicast);
    for (const g of want) {
      if (!this.addedGroups.has(g) && step('multicast-add', () => this.mcast.add(this.ifname, g))) this.addedGroups.add(g);
    }
    let deleted = false;
    for (const g of [...this.addedGroups]) {
      if (want.has(g)) continue;
      if (step('multicast-del', () => this.mcast.delete(this.ifname, g))) deleted = true;
      this.addedGroups.delete(g); // a failed delete (group already gone) must not be retried forever
    }
    if (deleted && !plan.allmulti) {
      step('flags', () => {
        this.rt.setFlags(index, IFF_ALLMULTI, IFF_ALLMULTI);
        this.rt.setFlags(index, 0, IFF_ALLMULTI);
      });
    }
    const flags = (plan.promisc ? IFF_PROMISC : 0) | (plan.allmulti ? IFF_ALLMULTI : 0) | (plan.multicastFlag ? IFF_MULTICAST : 0);
    step('flags', () => this.rt.setFlags(index, flags, IFF_PROMISC | IFF_ALLMULTI | IFF_MULTICAST));

    let unicastSkipped = false;
    if (l.macvlanMode === 'passthru') {
      const wantUni = new Set(plan.unicast);
      for (const u of wantUni) {
        if (!this.addedUnicast.has(u) && step('unicast-add', () => this.rt.neighSelf('add', index, u))) this.addedUnicast.add(u);
      }
      for (const u of [...this.addedUnicast]) {
        if (wantUni.has(u)) continue;
        step('unicast-del', () => this.rt.neighSelf('del', index, u));
        this.addedUnicast.delete(u);
      }
    } else {
      unicastSkipped = plan.unicast.length > 0;
    }
    return { plan, errors, unicastSkipped };
  }

  /** Unbinds and releases the sockets (the link keeps its last state). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.unbind();
    this.closed = true;
    this.rt.close();
    this.mcast.close();
  }
}
