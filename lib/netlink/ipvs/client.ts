// IpvsClient: IPVS configuration over generic netlink (no VIRTIO section: seed 004, Linux
// include/uapi/linux/ip_vs.h). Services, destinations, timeouts, sync daemons, flush, info; each
// call is one request (dumps are multipart replies ended by NLMSG_DONE), the family id is
// resolved once through nlctrl. Kernel refusals are HostError with the errno (EEXIST for a
// duplicate service, ENOENT for an unknown scheduler or service, ESRCH for an unknown
// destination…), the NetlinkError with the kernel's text as its cause; a reply that does not
// decode is a NetlinkError (decode.ts); a bad argument is NetlinkError('netlink.bad-value') before
// anything is sent.

import { NetlinkError } from '../errors.js';
import { encodeAttrs } from '../attributes.js';
import type { AttrValues } from '../attributes.js';
import { CTRL_ATTRS, CTRL_CMD_GETFAMILY, GENL_ID_CTRL, parseFamily, writeGenlHeader } from '../genl.js';
import { NLM_F_DUMP } from '../message.js';
import type { NlMessage } from '../message.js';
import { HostError } from '../../host/libc.js';
import { decodeDaemon, decodeDestination, decodeInfo, decodeService, decodeTimeouts, genlPayload } from './decode.js';
import { daemonAttrs, daemonState, destAttrs, destKeyAttrs, serviceAttrs, serviceFamily, serviceKeyAttrs, timeoutAttrs } from './encode.js';
import { CMD_ATTRS, INFO_ATTRS, IPVS_CMD, IPVS_GENL_NAME, IPVS_GENL_VERSION } from './schema.js';
import type { AttrSchema } from '../attributes.js';
import { LocalNetlinkTransport } from './transport.js';
import type { NetlinkTransport } from './transport.js';
import type {
  IpvsDaemon,
  IpvsDaemonSpec,
  IpvsDaemonState,
  IpvsDestination,
  IpvsDestinationSpec,
  IpvsInfo,
  IpvsService,
  IpvsServiceKey,
  IpvsServiceSpec,
  IpvsTimeouts,
} from './types.js';

/** The key of a service given as a key, a spec or a decoded service. */
export function serviceKey(s: IpvsServiceKey | IpvsService): IpvsServiceKey {
  if ('fwmark' in s && typeof s.fwmark === 'number' && s.fwmark !== 0) {
    return 'family' in s && s.family !== undefined ? { fwmark: s.fwmark, family: s.family } : { fwmark: s.fwmark };
  }
  const p = s as { protocol?: unknown; address?: unknown; port?: unknown };
  if (typeof p.protocol !== 'string' || typeof p.address !== 'string' || typeof p.port !== 'number') {
    throw new NetlinkError('netlink.bad-value', 'a service needs { protocol: tcp|udp|sctp, address, port } or { fwmark }');
  }
  return { protocol: p.protocol as 'tcp', address: p.address, port: p.port };
}

export class IpvsClient {
  private readonly transport: NetlinkTransport;
  private familyId: Promise<number> | null = null;

  /** Default transport: this host's kernel (LocalNetlinkTransport). */
  constructor(options: { transport?: NetlinkTransport } = {}) {
    this.transport = options.transport ?? new LocalNetlinkTransport({ timeoutMs: 50 });
  }

  close(): void {
    this.transport.close();
  }

  private family(): Promise<number> {
    this.familyId ??= this.transport
      .request({
        type: GENL_ID_CTRL,
        what: `CTRL_CMD_GETFAMILY ${IPVS_GENL_NAME}`,
        body: (w) => {
          writeGenlHeader(w, CTRL_CMD_GETFAMILY, 1);
          encodeAttrs(w, CTRL_ATTRS, { familyName: IPVS_GENL_NAME });
        },
      })
      .then(
        (replies) => {
          const first = replies[0];
          if (first === undefined) throw new NetlinkError('netlink.malformed', `CTRL_CMD_GETFAMILY ${IPVS_GENL_NAME}: no reply message`);
          return parseFamily(first.payload).id;
        },
        (e: unknown) => {
          this.familyId = null;
          if (e instanceof NetlinkError && e.code === 'netlink.errno' && e.errno === 2) {
            throw new NetlinkError('netlink.unknown-family', 'generic netlink family "IPVS" is not known to this kernel (no ip_vs module?)', { errno: 2 });
          }
          throw e;
        },
      );
    return this.familyId;
  }

  private async call(cmd: number, what: string, attrs: AttrValues = {}, dump = false): Promise<NlMessage[]> {
    const type = await this.family();
    try {
      return await this.transport.request({
        type,
        what,
        flags: dump ? NLM_F_DUMP : 0,
        body: (w) => {
          writeGenlHeader(w, cmd, IPVS_GENL_VERSION);
          encodeAttrs(w, CMD_ATTRS, attrs);
        },
      });
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'netlink.errno' && e.errno !== undefined) {
        throw new HostError('netlink', e.errno, `${what}${e.details.extack === undefined ? '' : `: ${e.details.extack}`}`, { cause: e });
      }
      throw e;
    }
  }

  private decodeEach<T>(messages: NlMessage[], cmd: number, what: string, decode: (a: ReturnType<typeof genlPayload>) => T, schema: AttrSchema = CMD_ATTRS): T[] {
    return messages.map((m) => decode(genlPayload(m.payload, cmd, what, schema)));
  }

  async info(): Promise<IpvsInfo> {
    const r = await this.call(IPVS_CMD.GET_INFO, 'IPVS_CMD_GET_INFO');
    const [info] = this.decodeEach(r, IPVS_CMD.SET_INFO, 'IPVS_CMD_GET_INFO', (a) => decodeInfo(a), INFO_ATTRS);
    if (info === undefined) throw new NetlinkError('netlink.malformed', 'IPVS_CMD_GET_INFO: no reply message');
    return info;
  }

  /** Every service (a dump: the seed's IPVS_CMD_GET_SERVICES). */
  async services(): Promise<IpvsService[]> {
    const r = await this.call(IPVS_CMD.GET_SERVICE, 'IPVS_CMD_GET_SERVICES', {}, true);
    return this.decodeEach(r, IPVS_CMD.ADD_SERVICE, 'IPVS_CMD_GET_SERVICES', (a) => decodeService(a));
  }

  /** One service (ENOENT, as HostError, when there is none). */
  async service(key: IpvsServiceKey): Promise<IpvsService> {
    const r = await this.call(IPVS_CMD.GET_SERVICE, 'IPVS_CMD_GET_SERVICE', { service: serviceKeyAttrs(serviceKey(key)) });
    const [svc] = this.decodeEach(r, IPVS_CMD.ADD_SERVICE, 'IPVS_CMD_GET_SERVICE', (a) => decodeService(a));
    if (svc === undefined) throw new NetlinkError('netlink.malformed', 'IPVS_CMD_GET_SERVICE: no reply message');
    return svc;
  }

  async addService(spec: IpvsServiceSpec): Promise<void> {
    await this.call(IPVS_CMD.ADD_SERVICE, 'IPVS_CMD_ADD_SERVICE', { service: serviceAttrs(spec) });
  }

  async editService(spec: IpvsServiceSpec): Promise<void> {
    await this.call(IPVS_CMD.EDIT_SERVICE, 'IPVS_CMD_EDIT_SERVICE', { service: serviceAttrs(spec) });
  }

  async deleteService(key: IpvsServiceKey | IpvsService): Promise<void> {
    await this.call(IPVS_CMD.DEL_SERVICE, 'IPVS_CMD_DEL_SERVICE', { service: serviceKeyAttrs(serviceKey(key)) });
  }

  /** The destinations of one service (a dump). */
  async destinations(service: IpvsServiceKey | IpvsService): Promise<IpvsDestination[]> {
    const key = serviceKey(service);
    const r = await this.call(IPVS_CMD.GET_DESTS, 'IPVS_CMD_GET_DESTS', { service: serviceKeyAttrs(key) }, true);
    return this.decodeEach(r, IPVS_CMD.ADD_DEST, 'IPVS_CMD_GET_DESTS', (a) => decodeDestination(a, serviceFamily(key)));
  }

  async addDestination(service: IpvsServiceKey | IpvsService, dest: IpvsDestinationSpec): Promise<void> {
    const key = serviceKey(service);
    await this.call(IPVS_CMD.ADD_DEST, 'IPVS_CMD_ADD_DEST', { service: serviceKeyAttrs(key), dest: destAttrs(key, dest) });
  }

  async editDestination(service: IpvsServiceKey | IpvsService, dest: IpvsDestinationSpec): Promise<void> {
    const key = serviceKey(service);
    await this.call(IPVS_CMD.EDIT_DEST, 'IPVS_CMD_EDIT_DEST', { service: serviceKeyAttrs(key), dest: destAttrs(key, dest) });
  }

  async deleteDestination(service: IpvsServiceKey | IpvsService, dest: { address: string; port?: number }): Promise<void> {
    const key = serviceKey(service);
    await this.call(IPVS_CMD.DEL_DEST, 'IPVS_CMD_DEL_DEST', { service: serviceKeyAttrs(key), dest: destKeyAttrs(key, dest) });
  }

  /** Removes every service and destination. */
  async flush(): Promise<void> {
    await this.call(IPVS_CMD.FLUSH, 'IPVS_CMD_FLUSH');
  }

  /** Zeroes the counters of one service, or of all. */
  async zero(service?: IpvsServiceKey | IpvsService): Promise<void> {
    await this.call(IPVS_CMD.ZERO, 'IPVS_CMD_ZERO', service === undefined ? {} : { service: serviceKeyAttrs(serviceKey(service)) });
  }

  async timeouts(): Promise<IpvsTimeouts> {
    const r = await this.call(IPVS_CMD.GET_TIMEOUT, 'IPVS_CMD_GET_TIMEOUT');
    const [t] = this.decodeEach(r, IPVS_CMD.SET_TIMEOUT, 'IPVS_CMD_GET_TIMEOUT', (a) => decodeTimeouts(a));
    if (t === undefined) throw new NetlinkError('netlink.malformed', 'IPVS_CMD_GET_TIMEOUT: no reply message');
    return t;
  }

  /** Sets the given timeouts (seconds); those left out (or 0) stay as they are. */
  async setTimeouts(t: Partial<IpvsTimeouts>): Promise<void> {
    await this.call(IPVS_CMD.SET_TIMEOUT, 'IPVS_CMD_SET_TIMEOUT', timeoutAttrs(t));
  }

  /** The running sync daemons (a dump). */
  async daemons(): Promise<IpvsDaemon[]> {
    const r = await this.call(IPVS_CMD.GET_DAEMON, 'IPVS_CMD_GET_DAEMON', {}, true);
    return this.decodeEach(r, IPVS_CMD.START_DAEMON, 'IPVS_CMD_GET_DAEMON', (a) => decodeDaemon(a));
  }

  async startDaemon(spec: IpvsDaemonSpec): Promise<void> {
    await this.call(IPVS_CMD.START_DAEMON, 'IPVS_CMD_START_DAEMON', { daemon: daemonAttrs(spec) });
  }

  async stopDaemon(state: IpvsDaemonState): Promise<void> {
    await this.call(IPVS_CMD.STOP_DAEMON, 'IPVS_CMD_STOP_DAEMON', { daemon: { state: daemonState(state) } });
  }
}
