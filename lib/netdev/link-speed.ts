// A host interface's speed and duplex as the kernel reports them (the ethtool link settings, shown
// in /sys/class/net/<if>/speed and /duplex). For a TAP the tun driver reports 10 Mb/s full duplex
// unless `ethtool -s <if> speed N duplex D` set other values; while the interface is down the files
// cannot be read (EINVAL), which is "unknown" here.

import { readFileSync } from 'node:fs';
import type { LinkSpeed } from './netdev.js';

/** The interface's speed (Mb/s) and duplex, unknown where the kernel does not say. Never throws. */
export function readLinkSpeed(ifname: string, sysfs = '/sys/class/net'): LinkSpeed {
  const speedText = readText(`${sysfs}/${ifname}/speed`);
  const n = speedText === null ? NaN : Number(speedText);
  // The kernel prints SPEED_UNKNOWN as -1.
  const speed = Number.isInteger(n) && n >= 0 && n <= 0x7fffffff ? n : undefined;
  const d = readText(`${sysfs}/${ifname}/duplex`);
  const duplex = d === 'full' ? 'full' : d === 'half' ? 'half' : undefined;
  return { speed, duplex };
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}
