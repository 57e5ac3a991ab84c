// The IPVS generic-netlink schema (no VIRTIO section: seed 004, "IPVS: Add Generic Netlink
// configuration interface", and Linux include/uapi/linux/ip_vs.h for the numbers and what later
// kernels added). One table of commands and one of attributes per nest, typed as the seed lists
// them (NLA_U16 / U32 / U64 / NUL_STRING / BINARY / NESTED).
//
// The seed's command names differ from the merged kernel's (ADD_SERVICE became NEW_SERVICE,
// EDIT_SERVICE SET_SERVICE, START_DAEMON NEW_DAEMON, SET_TIMEOUT SET_CONFIG, GET_SERVICES a dump
// of GET_SERVICE…); IPVS_CMD keeps the seed's names with the kernel's numbers. The seed's
// IPVS_ENTRY_ATTR_* are the kernel's IPVS_CMD_ATTR_*, and its IPVS_TIMEOUT_ATTR_* sit at the top
// level as IPVS_CMD_ATTR_TIMEOUT_*.
//
// Added after the seed, used by ipvsadm: IPv6 (IPVS_SVC_ATTR_AF = AF_INET6 with a 16-byte
// address), IPVS_SVC_ATTR_PE_NAME, IPVS_SVC_ATTR_STATS64 / IPVS_DEST_ATTR_STATS64 (every counter
// u64), IPVS_DEST_ATTR_ADDR_FAMILY, IPVS_DEST_ATTR_TUN_TYPE / TUN_PORT / TUN_FLAGS, and the
// daemon's SYNC_MAXLEN / MCAST_GROUP / MCAST_GROUP6 / MCAST_PORT / MCAST_TTL.

import type { AttrSchema } from '../attributes.js';

/** The generic-netlink family name and version (IPVS_GENL_NAME, IPVS_GENL_VERSION). */
export const IPVS_GENL_NAME = 'IPVS';
export const IPVS_GENL_VERSION = 1;

/** Commands: the seed's names, the kernel's numbers (ip_vs.h enum IPVS_CMD_*). */
export const IPVS_CMD = {
  ADD_SERVICE: 1, // kernel IPVS_CMD_NEW_SERVICE
  EDIT_SERVICE: 2, // IPVS_CMD_SET_SERVICE
  DEL_SERVICE: 3,
  GET_SERVICE: 4, // with NLM_F_DUMP: the seed's GET_SERVICES
  ADD_DEST: 5, // IPVS_CMD_NEW_DEST
  EDIT_DEST: 6, // IPVS_CMD_SET_DEST
  DEL_DEST: 7,
  GET_DESTS: 8, // IPVS_CMD_GET_DEST, a dump
  START_DAEMON: 9, // IPVS_CMD_NEW_DAEMON
  STOP_DAEMON: 10, // IPVS_CMD_DEL_DAEMON
  GET_DAEMON: 11, // a dump
  SET_TIMEOUT: 12, // IPVS_CMD_SET_CONFIG
  GET_TIMEOUT: 13, // IPVS_CMD_GET_CONFIG
  SET_INFO: 14, // only the kernel's GET_INFO reply
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

/** IPVS_STATS_ATTR_* (seed: CONNS, INPKTS, OUTPKTS u32; INBYTES, OUTBYTES u64; rates u32). */
export const STATS_ATTRS: AttrSchema = {
  conns: { type: 1, kind: 'u32' },
  inpkts: { type: 2, kind: 'u32' },
  outpkts: { type: 3, kind: 'u32' },
  inbytes: { type: 4, kind: 'u64' },
  outbytes: { type: 5, kind: 'u64' },
  cps: { type: 6, kind: 'u32' },
  inpps: { type: 7, kind: 'u32' },
  outpps: { type: 8, kind: 'u32' },
  inbps: { type: 9, kind: 'u32' },
  outbps: { type: 10, kind: 'u32' },
  /** IPVS_STATS_ATTR_PAD: the alignment filler nla_put_u64_64bit may add (no payload). */
  pad: { type: 11, kind: 'binary' },
};

/** The same numbers inside IPVS_*_ATTR_STATS64: every counter u64. */
export const STATS64_ATTRS: AttrSchema = Object.fromEntries(
  Object.entries(STATS_ATTRS).map(([name, spec]) => [name, name === 'pad' ? spec : { type: spec.type, kind: 'u64' as const }]),
);

/** IPVS_SVC_ATTR_* inside IPVS_ENTRY_ATTR_SERVICE. */
export const SERVICE_ATTRS: AttrSchema = {
  af: { type: 1, kind: 'u16' },
  protocol: { type: 2, kind: 'u16' },
  /** union nf_inet_addr: 16 bytes (IPv4 in the first 4), network order. */
  addr: { type: 3, kind: 'binary' },
  /** __be16 in an NLA_U16: byte-swapped by encode.ts / decode.ts. */
  port: { type: 4, kind: 'u16' },
  fwmark: { type: 5, kind: 'u32' },
  schedName: { type: 6, kind: 'string' },
  /** struct ip_vs_flags { __u32 flags; __u32 mask; } */
  flags: { type: 7, kind: 'binary' },
  timeout: { type: 8, kind: 'u32' },
  /** IPv4: a __be32 netmask (byte-swapped by encode.ts / decode.ts); IPv6: a prefix length. */
  netmask: { type: 9, kind: 'u32' },
  stats: { type: 10, kind: 'nested', nested: STATS_ATTRS },
  peName: { type: 11, kind: 'string' },
  stats64: { type: 12, kind: 'nested', nested: STATS64_ATTRS },
};

/** IPVS_DEST_ATTR_* inside IPVS_ENTRY_ATTR_DEST. */
export const DEST_ATTRS: AttrSchema = {
  addr: { type: 1, kind: 'binary' },
  /** __be16 in an NLA_U16. */
  port: { type: 2, kind: 'u16' },
  fwdMethod: { type: 3, kind: 'u32' },
  weight: { type: 4, kind: 'u32' },
  uThresh: { type: 5, kind: 'u32' },
  lThresh: { type: 6, kind: 'u32' },
  activeConns: { type: 7, kind: 'u32' },
  inactConns: { type: 8, kind: 'u32' },
  persistConns: { type: 9, kind: 'u32' },
  stats: { type: 10, kind: 'nested', nested: STATS_ATTRS },
  addrFamily: { type: 11, kind: 'u16' },
  stats64: { type: 12, kind: 'nested', nested: STATS64_ATTRS },
  tunType: { type: 13, kind: 'u8' },
  /** __be16 in an NLA_U16. */
  tunPort: { type: 14, kind: 'u16' },
  tunFlags: { type: 15, kind: 'u16' },
};

/** IPVS_DAEMON_ATTR_* inside IPVS_ENTRY_ATTR_DAEMON. */
export const DAEMON_ATTRS: AttrSchema = {
  state: { type: 1, kind: 'u32' },
  mcastIfn: { type: 2, kind: 'string' },
  syncId: { type: 3, kind: 'u32' },
  syncMaxlen: { type: 4, kind: 'u16' },
  /** __be32. */
  mcastGroup: { type: 5, kind: 'binary' },
  mcastGroup6: { type: 6, kind: 'binary' },
  mcastPort: { type: 7, kind: 'u16' },
  mcastTtl: { type: 8, kind: 'u8' },
};

/** Top-level attributes of every command (IPVS_CMD_ATTR_*; the seed's IPVS_ENTRY_ATTR_* and IPVS_TIMEOUT_ATTR_*). */
export const CMD_ATTRS: AttrSchema = {
  service: { type: 1, kind: 'nested', nested: SERVICE_ATTRS },
  dest: { type: 2, kind: 'nested', nested: DEST_ATTRS },
  daemon: { type: 3, kind: 'nested', nested: DAEMON_ATTRS },
  timeoutTcp: { type: 4, kind: 'u32' },
  timeoutTcpFin: { type: 5, kind: 'u32' },
  timeoutUdp: { type: 6, kind: 'u32' },
};

/** IPVS_INFO_ATTR_* of the GET_INFO reply. */
export const INFO_ATTRS: AttrSchema = {
  version: { type: 1, kind: 'u32' },
  connTabSize: { type: 2, kind: 'u32' },
};

/** Address families (socket.h). */
export const AF_INET = 2;
export const AF_INET6 = 10;
/** IP protocols (in.h). */
export const IPPROTO = { tcp: 6, udp: 17, sctp: 132 } as const;

/** Forwarding methods: conn_flags & IP_VS_CONN_F_FWD_MASK (ip_vs.h). */
export const FWD_METHOD = { masq: 0, local: 1, tunnel: 2, route: 3, bypass: 4 } as const;
export const IP_VS_CONN_F_FWD_MASK = 0x7;
/** Tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*) and GUE flags (IP_VS_TUNNEL_ENCAP_FLAG_*). */
export const TUN_TYPE = { ipip: 0, gue: 1, gre: 2 } as const;
export const TUN_FLAG = { csum: 1 << 0, remcsum: 1 << 1 } as const;

/** Service flags (IP_VS_SVC_F_*). */
export const SVC_FLAG = { persistent: 0x1, hashed: 0x2, onePacket: 0x4, sched1: 0x8, sched2: 0x10, sched3: 0x20 } as const;

/** Sync daemon states (IP_VS_STATE_*). */
export const DAEMON_STATE = { master: 1, backup: 2 } as const;

/** Limits (ip_vs.h): scheduler and PE names, the interface name of a sync daemon. */
export const IP_VS_SCHEDNAME_MAXLEN = 16;
export const IP_VS_PENAME_MAXLEN = 16;
export const IP_VS_IFNAME_MAXLEN = 16;
