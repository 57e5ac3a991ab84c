// The COLO passthrough list: flows that colo-compare does not compare (and that filter-mirror and
// filter-redirector leave alone). This never landed in QEMU; the entry type is the `IPFlowSpec` of
// the proposed QAPI (qapi/net.json, "Passthrough specific network traffic in COLO", v7): every
// field optional, absent = matches anything.
//   protocol     — resolved like getprotobyname(3) ('tcp', 'udp', 'icmp', … or a number);
//   object-name  — the id of the colo-compare or filter the entry is for; absent: all of them;
//   source, destination — { host, port }: an IP literal ('' = any) and a port number or service
//                  name ('' or '0' = any).
// A flow is a conversation: an entry matches packets in both directions (client → guest is seen
// by filter-mirror, guest → client by colo-compare; one entry must cover both).
// Entries are checked when added; duplicates are refused; deleting an entry that does not exist is
// an error naming it. Entries may name objects that do not exist yet (QEMU creates objects in
// command-line order; a rule may come first).

import { EventEmitter } from 'node:events';
import { bytesEqualAt, parseIpAddress } from '../packet/address.js';
import type { PacketInfo } from '../packet/parse.js';
import { portByName, protocolByName, protocolName } from './protocols.js';

/** QAPI InetSocketAddressBase: `port` is a string (a number or a service name). */
export interface InetSocketAddressBase {
  host: string;
  port: string;
}

/** QAPI IPFlowSpec (wire member names). */
export interface IPFlowSpec {
  protocol?: string;
  'object-name'?: string;
  source?: InetSocketAddressBase;
  destination?: InetSocketAddressBase;
}

export type PassthroughErrorCode =
  | 'passthrough.duplicate'
  | 'passthrough.not-found'
  | 'passthrough.unknown-protocol'
  | 'passthrough.bad-host'
  | 'passthrough.bad-port'
  | 'passthrough.bad-spec'
  | 'passthrough.full';

/** A refused add/delete: `code` is stable, `message` names the entry or the bad field. */
export class PassthroughError extends Error {
  constructor(
    readonly code: PassthroughErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PassthroughError';
  }
}

/** Entries a list holds: management adds a handful; this bounds the per-packet scan. */
export const MAX_PASSTHROUGH_ENTRIES = 1024;

interface Endpoint {
  /** undefined: any address. */
  addr: Uint8Array | undefined;
  /** 0: any port. */
  port: number;
}

/** A checked entry. */
interface Entry {
  readonly spec: IPFlowSpec;
  readonly protocol: number | undefined;
  readonly objectName: string | undefined;
  readonly source: Endpoint | undefined;
  readonly destination: Endpoint | undefined;
  readonly canonical: string;
  readonly text: string;
}

function endpointMatches(ep: Endpoint | undefined, frame: Uint8Array, addrOffset: number, addrLength: number, port: number): boolean {
  if (ep === undefined) return true;
  if (ep.port !== 0 && ep.port !== port) return false;
  if (ep.addr === undefined) return true;
  return ep.addr.length === addrLength && bytesEqualAt(frame, addrOffset, ep.addr);
}

function hex(b: Uint8Array | undefined): string {
  return b === undefined ? '*' : Buffer.from(b).toString('hex');
}

export class PassthroughList extends EventEmitter<{ change: [] }> {
  private entries: readonly Entry[] = [];

  /** The entries as given (normalised: absent members absent), in the order added. */
  list(): IPFlowSpec[] {
    return this.entries.map((e) => structuredClone(e.spec));
  }

  get size(): number {
    return this.entries.length;
  }

  /** Adds an entry; throws PassthroughError when it is invalid or already there. */
  add(spec: IPFlowSpec): void {
    const e = this.check(spec);
    if (this.entries.some((x) => x.canonical === e.canonical)) {
      throw new PassthroughError('passthrough.duplicate', `passthrough entry already exists: ${e.text}`);
    }
    if (this.entries.length >= MAX_PASSTHROUGH_ENTRIES) {
      throw new PassthroughError('passthrough.full', `passthrough list is full (${MAX_PASSTHROUGH_ENTRIES} entries)`);
    }
    this.entries = [...this.entries, e];
    this.emit('change');
  }

  /** Deletes the entry equal to `spec`; throws PassthroughError when there is none. */
  delete(spec: IPFlowSpec): void {
    const e = this.check(spec);
    const i = this.entries.findIndex((x) => x.canonical === e.canonical);
    if (i < 0) throw new PassthroughError('passthrough.not-found', `passthrough entry not found: ${e.text}`);
    this.entries = this.entries.filter((_, j) => j !== i);
    this.emit('change');
  }

  clear(): void {
    this.entries = [];
    this.emit('change');
  }

  /**
   * True when an entry for `objectName` (or for all objects) matches the IP packet `info`
   * describes, in either direction. Per frame: no allocation.
   */
  matches(objectName: string, frame: Uint8Array, info: PacketInfo): boolean {
    if (info.ipVersion === 0) return false;
    const list = this.entries;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.objectName !== undefined && e.objectName !== objectName) continue;
      if (e.protocol !== undefined && e.protocol !== info.protocol) continue;
      const len = info.addrLength;
      if (
        endpointMatches(e.source, frame, info.srcOffset, len, info.srcPort) &&
        endpointMatches(e.destination, frame, info.dstOffset, len, info.dstPort)
      ) {
        return true;
      }
      if (
        endpointMatches(e.source, frame, info.dstOffset, len, info.dstPort) &&
        endpointMatches(e.destination, frame, info.srcOffset, len, info.srcPort)
      ) {
        return true;
      }
    }
    return false;
  }

  private check(spec: IPFlowSpec): Entry {
    if (spec === null || typeof spec !== 'object') throw new PassthroughError('passthrough.bad-spec', 'an IPFlowSpec must be an object');
    const clean: IPFlowSpec = {};
    let protocol: number | undefined;
    if (spec.protocol !== undefined) {
      protocol = protocolByName(String(spec.protocol));
      if (protocol === undefined) {
        throw new PassthroughError('passthrough.unknown-protocol', `unknown protocol '${spec.protocol}' (not in the system's protocol table)`);
      }
      clean.protocol = spec.protocol;
    }
    const objectName = spec['object-name'];
    if (objectName !== undefined) {
      if (typeof objectName !== 'string' || objectName === '') throw new PassthroughError('passthrough.bad-spec', "'object-name' must be a non-empty string");
      clean['object-name'] = objectName;
    }
    const endpoint = (which: 'source' | 'destination'): Endpoint | undefined => {
      const a = spec[which];
      if (a === undefined) return undefined;
      if (a === null || typeof a !== 'object' || typeof a.host !== 'string' || typeof a.port !== 'string') {
        throw new PassthroughError('passthrough.bad-spec', `'${which}' must be { host: string, port: string }`);
      }
      let addr: Uint8Array | undefined;
      if (a.host !== '') {
        addr = parseIpAddress(a.host);
        if (addr === undefined) throw new PassthroughError('passthrough.bad-host', `'${which}.host' must be an IP address (or '' for any), got '${a.host}'`);
      }
      let port = 0;
      if (a.port !== '') {
        const p = portByName(a.port, protocol);
        if (p === undefined) throw new PassthroughError('passthrough.bad-port', `'${which}.port' must be a port number or service name (or '' for any), got '${a.port}'`);
        port = p;
      }
      clean[which] = { host: a.host, port: a.port };
      return { addr, port };
    };
    const source = endpoint('source');
    const destination = endpoint('destination');
    const ep = (e: Endpoint | undefined): string => (e === undefined ? '*' : `${hex(e.addr)}/${e.port}`);
    const canonical = [protocol ?? '*', objectName ?? '*', ep(source), ep(destination)].join('|');
    const show = (a: InetSocketAddressBase | undefined): string =>
      a === undefined ? 'any' : `${a.host === '' ? 'any' : a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port === '' ? 'any' : a.port}`;
    const text =
      `protocol=${protocol === undefined ? 'any' : protocolName(protocol)} object-name=${objectName ?? 'all'} ` +
      `source=${show(clean.source)} destination=${show(clean.destination)}`;
    return { spec: clean, protocol, objectName, source, destination, canonical, text };
  }
}
