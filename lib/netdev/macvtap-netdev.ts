// MacvtapNetdev: the /dev/tapN character device of an existing macvtap link as the backend (no
// VIRTIO section: the host side; the header it carries is VIRTIO 1.2 §5.1.6 virtio_net_hdr).
// The link is found by `ifname`: its ifindex and char device numbers come from sysfs
// (/sys/class/net/<ifname>/ifindex, …/macvtap/tap<ifindex>/dev), the node is /dev/tap<ifindex>
// and must carry those numbers. The device opens with IFF_VNET_HDR already on at 10 bytes; the
// device sets 12 at DRIVER_OK (TUNSETVNETHDRSZ) and its offloads (TUNSETOFFLOAD), as on a TAP.
//
// With `syncRxFilter: true` the guest's rx filter is mirrored onto the link (rx-filter-sync.ts):
// a VirtioNetDevice created on this netdev binds itself with `bindRxFilterSource(device)`.

import { readFileSync, statSync } from 'node:fs';
import { VnetFdNetdev, readVnetHeaderSize } from './vnet-fd-netdev.js';
import type { RxFilterSource, RxFilterSyncCapable } from './netdev.js';
import { Errno, HostError, O_CLOEXEC, O_NONBLOCK, O_RDWR, closeFd, openFile } from '../host/libc.js';
import { validIfname } from '../host/structs.js';
import { RxFilterSync } from './rx-filter-sync.js';

export interface MacvtapNetdevOptions {
  id: string;
  /** The macvtap link (e.g. `macvtap0`). */
  ifname: string;
  /** Mirror the guest's rx filter onto the link (default false). */
  syncRxFilter?: boolean;
}

/** Where a macvtap link's char device is: `/dev/tap<ifindex>` and its major:minor from sysfs. */
export function macvtapCharDevice(ifname: string): { path: string; ifindex: number; major: number; minor: number } {
  validIfname(ifname);
  const base = `/sys/class/net/${ifname}`;
  let ifindex: number;
  try {
    ifindex = Number.parseInt(readFileSync(`${base}/ifindex`, 'utf8').trim(), 10);
  } catch {
    throw new HostError('open', Errno.ENODEV, `${ifname}: no such link in this network namespace`);
  }
  let dev: string;
  try {
    dev = readFileSync(`${base}/macvtap/tap${ifindex}/dev`, 'utf8').trim();
  } catch {
    throw new HostError('open', Errno.ENODEV, `${ifname} is not a macvtap link (no ${base}/macvtap/tap${ifindex})`);
  }
  const m = /^(\d+):(\d+)$/.exec(dev);
  if (m === null) throw new HostError('open', Errno.EINVAL, `${ifname}: unexpected char device "${dev}"`);
  return { path: `/dev/tap${ifindex}`, ifindex, major: Number(m[1]), minor: Number(m[2]) };
}

export class MacvtapNetdev extends VnetFdNetdev implements RxFilterSyncCapable {
  readonly ifname: string;
  /** The char device opened (`/dev/tapN`). */
  readonly devicePath: string;
  declare readonly syncsRxFilter: true;
  /** The host rx-filter sync, when `syncRxFilter` is on. */
  readonly rxFilterSync: RxFilterSync | null;

  constructor(options: MacvtapNetdevOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('MacvtapNetdev: options must be an object { id, ifname, syncRxFilter? }');
    const { id, ifname, syncRxFilter = false } = options;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`MacvtapNetdev: id must be a non-empty string, got ${String(id)}`);
    if (typeof ifname !== 'string') throw new TypeError(`MacvtapNetdev: ifname must name a macvtap link, got ${String(ifname)}`);
    if (typeof syncRxFilter !== 'boolean') throw new TypeError(`MacvtapNetdev: syncRxFilter must be true or false, got ${String(syncRxFilter)}`);
    const cd = macvtapCharDevice(ifname);
    let st;
    try {
      st = statSync(cd.path);
    } catch {
      throw new HostError('open', Errno.ENOENT, `${cd.path} (char device ${cd.major}:${cd.minor} of ${ifname}) does not exist`);
    }
    // rdev = major << 8 | minor for the small numbers macvtap uses (new_encode_dev).
    const major = (st.rdev >> 8) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    if (!st.isCharacterDevice() || major !== cd.major || minor !== cd.minor) {
      throw new HostError('open', Errno.ENODEV, `${cd.path} is not the char device ${cd.major}:${cd.minor} of ${ifname}`);
    }
    const fd = openFile(cd.path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    const hdrLen = readVnetHeaderSize(fd);
    let sync: RxFilterSync | null = null;
    try {
      if (syncRxFilter) sync = new RxFilterSync(ifname);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    super(id, fd, hdrLen);
    this.ifname = ifname;
    this.devicePath = cd.path;
    this.rxFilterSync = sync;
    // The macvtap link itself: its carrier follows the lower device's, so the lower device losing
    // carrier (or being set down) takes the guest's link down, and back up.
    this.followHostLink(ifname, 'from-start');
    if (syncRxFilter) Object.defineProperty(this, 'syncsRxFilter', { value: true, enumerable: true });
    else Object.defineProperty(this, 'bindRxFilterSource', { value: undefined });
    if (sync !== null) {
      sync.on('sync-error', (e) => this.emit('sync-error', e));
      sync.on('synced', (r) => this.emit('synced', r));
    }
  }

  /** Mirrors `source` (the VirtioNetDevice on this netdev) onto the link. Needs `syncRxFilter`. */
  bindRxFilterSource(source: RxFilterSource): () => void {
    if (this.rxFilterSync === null) throw new Error(`MacvtapNetdev ${this.id}: created without syncRxFilter: true`);
    return this.rxFilterSync.bind(source);
  }

  protected override onClosed(): void {
    this.rxFilterSync?.close();
  }
}
