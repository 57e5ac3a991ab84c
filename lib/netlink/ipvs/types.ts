// The typed shapes of IPVS objects as IpvsClient takes and returns them (no VIRTIO section:
// Linux include/uapi/linux/ip_vs.h, seed 004). Addresses are text; ports, weights and
// thresholds numbers; byte and packet counters bigint (the kernel's u64).

import type { IpFamily } from './address.js';

export type IpvsProtocol = 'tcp' | 'udp' | 'sctp';
export type IpvsForwarding = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';
export type IpvsTunnelType = 'ipip' | 'gue' | 'gre';

/** Which service: a protocol, address and port, or a firewall mark (of one family). */
export type IpvsServiceKey =
  | { readonly protocol: IpvsProtocol; readonly address: string; readonly port: number }
  | { readonly fwmark: number; readonly family?: IpFamily };

/** What addService / editService take. */
export type IpvsServiceSpec = IpvsServiceKey & {
  /** Default 'wlc' (ipvsadm's default). */
  readonly scheduler?: string;
  /** Persistence timeout in seconds; sets IP_VS_SVC_F_PERSISTENT. */
  readonly persistent?: number;
  /** Persistence granularity: an IPv4 netmask text, or an IPv6 prefix length. */
  readonly netmask?: string | number;
  /** One-packet scheduling (IP_VS_SVC_F_ONEPACKET, UDP). */
  readonly onePacket?: boolean;
  /** Scheduler flags IP_VS_SVC_F_SCHED1..3 (e.g. sh's fallback / port). */
  readonly schedFlags?: readonly (1 | 2 | 3)[];
  /** Persistence engine (e.g. 'sip'). */
  readonly persistenceEngine?: string;
};

export interface IpvsStats {
  conns: bigint;
  inpkts: bigint;
  outpkts: bigint;
  inbytes: bigint;
  outbytes: bigint;
  cps: bigint;
  inpps: bigint;
  outpps: bigint;
  inbps: bigint;
  outbps: bigint;
}

/** A service as the kernel reports it. */
export interface IpvsService {
  family: IpFamily;
  /** Absent for a fwmark service. */
  protocol?: IpvsProtocol | number;
  address?: string;
  port?: number;
  /** 0 when the service is not a fwmark service. */
  fwmark: number;
  scheduler: string;
  /** IP_VS_SVC_F_* as the kernel holds them (hashed included). */
  flags: number;
  /** Persistence timeout (seconds; meaningful with the persistent flag). */
  timeout: number;
  /** IPv4: netmask text; IPv6: prefix length. */
  netmask: string | number;
  persistenceEngine?: string;
  /** From IPVS_SVC_ATTR_STATS64, else the 32-bit IPVS_SVC_ATTR_STATS. */
  stats?: IpvsStats;
}

/** What addDestination / editDestination take. */
export interface IpvsDestinationSpec {
  readonly address: string;
  /** Default: the service's port (0 for a fwmark service). */
  readonly port?: number;
  /** Default 'route' (ipvsadm's -g). */
  readonly forwarding?: IpvsForwarding;
  /** Default 1. */
  readonly weight?: number;
  readonly upperThreshold?: number;
  readonly lowerThreshold?: number;
  /** For forwarding 'tunnel' (kernel 5.3+): type, GUE port and flags. */
  readonly tunnel?: { readonly type: IpvsTunnelType; readonly port?: number; readonly csum?: boolean; readonly remcsum?: boolean };
}

/** A destination (real server) as the kernel reports it. */
export interface IpvsDestination {
  family: IpFamily;
  address: string;
  port: number;
  forwarding: IpvsForwarding;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  tunnel?: { type: IpvsTunnelType | number; port: number; flags: number };
  stats?: IpvsStats;
}

export interface IpvsTimeouts {
  tcp: number;
  tcpFin: number;
  udp: number;
}

export type IpvsDaemonState = 'master' | 'backup';

export interface IpvsDaemonSpec {
  readonly state: IpvsDaemonState;
  /** The multicast interface (IPVS_DAEMON_ATTR_MCAST_IFN). */
  readonly interface: string;
  readonly syncId?: number;
}

export interface IpvsDaemon {
  state: IpvsDaemonState;
  interface: string;
  syncId: number;
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

export interface IpvsInfo {
  /** e.g. '1.2.1'. */
  version: string;
  versionCode: number;
  connTableSize: number;
}
