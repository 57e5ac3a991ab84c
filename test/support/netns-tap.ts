// A TAP for the real-kernel tests and a fresh namespace to move it into (support/netns.ts).

import { TapNetdev } from '../../lib/netdev/tap-netdev.js';
import type { TapNetdevOptions } from '../../lib/netdev/tap-netdev.js';
import { Netns, trackLink, type Cleanup } from './netns.js';

/**
 * A fresh namespace and a TapNetdev made with `options`, its link tracked for exit cleanup; pushed
 * onto `cleanups` so the TAP closes before the namespace goes. The link stays in this namespace:
 * the test moves it with `ns.adopt(tap.ifname)` when it is ready to.
 */
export function tapAndNetns(cleanups: Cleanup[], options: TapNetdevOptions): { ns: Netns; tap: TapNetdev } {
  const ns = new Netns();
  cleanups.push(() => ns.destroy());
  const tap = new TapNetdev(options);
  trackLink(tap.ifname);
  cleanups.push(() => tap.close());
  return { ns, tap };
}
