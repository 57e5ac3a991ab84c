// MAC address text for netlink attributes and ioctls: lib/base/mac.ts, with netlink's error for
// text that is not a MAC (a programmer or caller error).

import { macFromText } from '../base/mac.js';
import { NetlinkError } from './errors.js';

export function parseMacString(mac: string): Uint8Array {
  const bytes = macFromText(mac);
  if (bytes === undefined) throw new NetlinkError('netlink.bad-value', `MAC address must look like "52:54:00:12:34:56", got ${String(mac)}`);
  return bytes;
}
