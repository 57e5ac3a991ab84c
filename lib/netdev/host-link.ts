// A backend's host link as the guest should see it (no VIRTIO section: the host side of §5.1.4
// `status` LINK_UP): follows one interface through the shared LinkMonitor (rtnetlink RTNLGRP_LINK)
// and tells its backend (FdNetdev) up / down / deleted.
//
// Start: the ifindex is looked up by name, the watch is set up (so no change is missed), then the
// link's state is read once (two RTM_GETLINK requests of at most milliseconds each, the rtnetlink
// rule of lib/netlink/README.md). Up means IFF_UP and IFF_LOWER_UP (`carrierUp`).
// Two policies:
//   - 'from-start' (macvtap): the link's state is followed from the first reading: a macvtap link
//     whose lower device has no carrier starts the guest's link down.
//   - 'once-up' (TAP): followed from the first time the link is seen up. A TAP has carrier while its
//     fd is attached, and one this process just created is down until someone configures it; that
//     is not a cable pulled, so the guest's link stays up until the TAP has been up and goes down
//     (set down, or deleted).
// A link that moves to another network namespace can no longer be observed: it stops being
// followed and counts as up (its fd still works; deletion there still fails the fd: POLLERR).

import type { LinkChangeReason } from './netdev.js';
import { LinkMonitor, carrierUp } from '../netlink/link-monitor.js';
import type { LinkNotice } from '../netlink/link-monitor.js';
import { Rtnetlink } from '../netlink/rtnetlink.js';
import { NetlinkError } from '../netlink/errors.js';
import { Errno, HostError } from '../host/libc.js';

export type HostLinkPolicy = 'from-start' | 'once-up';

/** What the follower tells its backend. */
export interface HostLinkSink {
  /** The host link's state; `initial` for the first reading (not a change). */
  hostLink(up: boolean, reason: LinkChangeReason, initial: boolean): void;
  /** The interface was deleted: the backend is dead for good. */
  hostLinkDeleted(): void;
  /** Following could not start (the backend records it and runs without it). */
  hostError(e: HostError): void;
}

export class HostLinkFollower {
  private armed: boolean;
  private unwatch: (() => Promise<void>) | null = null;

  private constructor(
    readonly ifname: string,
    private readonly policy: HostLinkPolicy,
    private readonly sink: HostLinkSink,
  ) {
    this.armed = policy === 'from-start';
  }

  /** Starts following `ifname`; null (after telling `sink.hostError`) when it cannot. */
  static start(ifname: string, policy: HostLinkPolicy, sink: HostLinkSink, monitor: LinkMonitor = LinkMonitor.shared()): HostLinkFollower | null {
    const f = new HostLinkFollower(ifname, policy, sink);
    let rt: Rtnetlink | null = null;
    try {
      rt = new Rtnetlink();
      const index = rt.getLink(ifname).index;
      f.unwatch = monitor.watch(index, (n) => f.notice(n));
      let flags: number | null;
      try {
        flags = rt.getLink(index).flags;
      } catch (e) {
        if (!(e instanceof NetlinkError && e.errno === Errno.ENODEV)) throw e;
        flags = null; // deleted between the two readings
      }
      if (flags === null) {
        void f.stop();
        sink.hostLinkDeleted();
        return f;
      }
      const up = carrierUp(flags);
      if (f.policy === 'once-up' && up) f.armed = true;
      if (f.armed) sink.hostLink(up, 'host-link', true);
      return f;
    } catch (e) {
      void f.stop();
      sink.hostError(asHostError(e, ifname));
      return null;
    } finally {
      rt?.close();
    }
  }

  /** Stops following; resolves once the monitor let go (its socket closed if this was the last). */
  async stop(): Promise<void> {
    const u = this.unwatch;
    this.unwatch = null;
    await u?.();
  }

  private notice(n: LinkNotice): void {
    if (this.unwatch === null) return;
    switch (n.kind) {
      case 'changed': {
        const up = carrierUp(n.flags);
        if (!this.armed) {
          if (!up) return;
          this.armed = true;
        }
        this.sink.hostLink(up, 'host-link', false);
        return;
      }
      case 'deleted':
        void this.stop();
        this.sink.hostLinkDeleted();
        return;
      case 'unobserved':
        void this.stop();
        this.sink.hostLink(true, 'host-link-unobserved', false);
        return;
    }
  }
}

function asHostError(e: unknown, ifname: string): HostError {
  if (e instanceof HostError) return e;
  const errno = e instanceof NetlinkError && e.errno !== undefined ? e.errno : Errno.EIO;
  return new HostError('rtnetlink', errno, `following the host link of ${ifname}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
