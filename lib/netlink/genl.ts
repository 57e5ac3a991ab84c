// Generic netlink (no VIRTIO section: include/uapi/linux/genetlink.h): the 4-byte genlmsghdr
// after nlmsghdr, and family resolution by name through the "nlctrl" family (GENL_ID_CTRL,
// CTRL_CMD_GETFAMILY), which answers with the family id, version and multicast groups.

import BufferLayout from 'buffer-layout';
import { NetlinkError } from './errors.js';
import { decodeAttrs, encodeAttrs, splitAttrs } from './attributes.js';
import type { AttrSchema, NlWriter } from './attributes.js';
import type { NetlinkSocket } from './socket.js';

export const GENL_HDRLEN = 4;
export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_GETFAMILY = 3;

export interface GenlMsgHdr {
  cmd: number;
  version: number;
  reserved: number;
}

/** struct genlmsghdr { __u8 cmd; __u8 version; __u16 reserved; } */
export const genlmsghdrLayout = BufferLayout.struct<GenlMsgHdr>([BufferLayout.u8('cmd'), BufferLayout.u8('version'), BufferLayout.u16('reserved')]);

/** CTRL_ATTR_* (genetlink.h). */
export const CTRL_ATTRS: AttrSchema = {
  familyId: { type: 1, kind: 'u16' },
  familyName: { type: 2, kind: 'string' },
  version: { type: 3, kind: 'u32' },
  hdrSize: { type: 4, kind: 'u32' },
  maxAttr: { type: 5, kind: 'u32' },
  ops: { type: 6, kind: 'nested' },
  mcastGroups: { type: 7, kind: 'nested' },
};

/** CTRL_ATTR_MCAST_GRP_* inside each entry of CTRL_ATTR_MCAST_GROUPS. */
const MCAST_GRP_ATTRS: AttrSchema = {
  name: { type: 1, kind: 'string' },
  id: { type: 2, kind: 'u32' },
};

export interface GenlFamily {
  readonly id: number;
  readonly name: string;
  readonly version: number;
  readonly maxAttr: number;
  readonly multicastGroups: ReadonlyMap<string, number>;
}

/** Writes a genlmsghdr. */
export function writeGenlHeader(w: NlWriter, cmd: number, version: number): void {
  const b = Buffer.alloc(GENL_HDRLEN);
  genlmsghdrLayout.encode({ cmd, version, reserved: 0 }, b, 0);
  w.bytes(b);
}

/** Decodes a CTRL_CMD_NEWFAMILY reply payload (genlmsghdr + attributes). */
export function parseFamily(payload: Uint8Array): GenlFamily {
  if (payload.length < GENL_HDRLEN) throw new NetlinkError('netlink.truncated', `genetlink payload of ${payload.length} bytes, need ${GENL_HDRLEN}`);
  const a = decodeAttrs(payload.subarray(GENL_HDRLEN), CTRL_ATTRS, GENL_HDRLEN);
  if (typeof a.familyId !== 'number' || typeof a.familyName !== 'string') {
    throw new NetlinkError('netlink.malformed', 'CTRL_CMD_GETFAMILY reply without family id or name');
  }
  const groups = new Map<string, number>();
  const raw = a.mcastGroups;
  if (raw !== undefined) {
    // CTRL_ATTR_MCAST_GROUPS is an array: entries typed 1..n, each a nested (name, id) pair.
    const inner = payload.subarray(GENL_HDRLEN);
    for (const top of splitAttrs(inner)) {
      if (top.type !== CTRL_ATTRS.mcastGroups!.type) continue;
      for (const entry of splitAttrs(top.payload)) {
        const g = decodeAttrs(entry.payload, MCAST_GRP_ATTRS);
        if (typeof g.name === 'string' && typeof g.id === 'number') groups.set(g.name, g.id);
      }
    }
  }
  return {
    id: a.familyId,
    name: a.familyName,
    version: typeof a.version === 'number' ? a.version : 0,
    maxAttr: typeof a.maxAttr === 'number' ? a.maxAttr : 0,
    multicastGroups: groups,
  };
}

/** Resolves a generic-netlink family by name on a NETLINK_GENERIC socket. */
export function resolveFamily(sock: NetlinkSocket, name: string): GenlFamily {
  let replies;
  try {
    replies = sock.request({
      type: GENL_ID_CTRL,
      what: `CTRL_CMD_GETFAMILY ${name}`,
      body: (w) => {
        writeGenlHeader(w, CTRL_CMD_GETFAMILY, 1);
        encodeAttrs(w, CTRL_ATTRS, { familyName: name });
      },
    });
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'netlink.errno' && e.errno === 2) {
      throw new NetlinkError('netlink.unknown-family', `generic netlink family "${name}" is not known to this kernel`, { errno: 2 });
    }
    throw e;
  }
  const first = replies[0];
  if (first === undefined) throw new NetlinkError('netlink.malformed', `CTRL_CMD_GETFAMILY ${name}: no reply message`);
  return parseFamily(first.payload);
}
