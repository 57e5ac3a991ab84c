// `virtio-net run`: the main job. A VirtioNetDevice behind a virtio-mmio transport, driven by the
// built-in scripted guest; a netdev (the in-process MemoryNetdev with a simulated host peer by
// default); a QMP socket serving query-rx-filter and NIC_RX_FILTER_CHANGED; a live status line on a
// TTY and a summary at the end (or JSON with --json).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMac } from '../base/mac.js';
import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import { MemoryNetdev } from '../netdev/memory-netdev.js';
import type { Netdev } from '../netdev/netdev.js';
import { hasLinkState } from '../netdev/netdev.js';
import { SimPeer } from '../netdev/sim-peer.js';
import { TapNetdev } from '../netdev/tap-netdev.js';
import { MacvtapNetdev } from '../netdev/macvtap-netdev.js';
import { DgramNetdev } from '../netdev/dgram-netdev.js';
import { VdeNetdev } from '../netdev/vde-netdev.js';
import { openSocketNetdev, openWebSocketNetdev } from './socket-netdev.js';
import { QmpServer } from '../qmp/server.js';
import { isStreamNetdev } from '../qmp/netdev-admin.js';
import { parseFlags, parseGuestIp, UsageError } from './args.js';
import type { FlagSpec, GuestIpSpec, NetdevSpec } from './args.js';
import { FilterChain } from '../filters/filter-chain.js';
import { PassthroughList } from '../passthrough/passthrough.js';
import type { ObjectRegistry } from '../colo/object-registry.js';
import { DEFAULT_NETDEV_ID, parseNetdevLine } from './netdev-options.js';
import { openObjectSetup, parseObjectSetup, type ObjectSetup } from './object-setup.js';
import { runNetdevScript } from './netdev-script.js';
import { SCENARIOS, ScriptedGuest } from './scripted-guest.js';
import type { Scenario } from './scripted-guest.js';
import { backendReport, neighbourReport, statusLine, summaryTable } from './report.js';
import type { RunResult } from './report.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'duration', kind: 'number', min: 0.1, max: 86400, help: 'seconds to run' },
  { name: 'scenario', kind: 'string', choices: SCENARIOS, help: 'what the scripted guest does' },
  { name: 'netdev', kind: 'string', help: 'memory | tap[,ifname=NAME][,io=inline|uring] | macvtap,ifname=NAME | dgram,local.type=…,remote.type=… | vde,sock=DIR | stream,addr.type=unix|inet,… | passt[,tcp=SPEC] | websocket,url=ws://HOST:PORT' },
  { name: 'ip', kind: 'string', help: "the scripted guest's IPv4 address/prefix (default 10.0.2.15/24)" },
  { name: 'peer', kind: 'string', help: 'the host it pings, on its subnet (default 10.0.2.2)' },
  { name: 'qmp', kind: 'string', help: 'QMP socket path' },
  { name: 'json', kind: 'boolean', help: 'machine-readable output' },
  { name: 'chardev', kind: 'string', repeatable: true, help: 'socket,id=ID,host=H,port=N[,server=on,wait=off] | socket,id=ID,path=P[,…] (repeatable; QEMU -chardev)' },
  { name: 'object', kind: 'string', repeatable: true, help: 'TYPE,id=ID,… : filter-mirror | filter-redirector | filter-rewriter | filter-dump | colo-compare | iothread (repeatable; QEMU -object)' },
  { name: 'tcp-echo', kind: 'number', min: 1, max: 65535, help: "the scripted guest answers TCP on this port ('echo: <data>')" },
  { name: 'tcp-diverge', kind: 'string', help: "with --tcp-echo: requests holding this text get 'DIVERGED: <data>' (a planted COLO difference)" },
];

const GUEST_MAC = '52:54:00:12:34:56';
/** After the run, how long the guest waits for the replies to its last pings (as ping does). */
const LINGER_MS = 2000;
/** Scripted-guest step period: fast enough to show traffic, slow enough to watch. */
const TICK_MS = 20;
const STATUS_MS = 250;
/** Background frames from the host side: to a MAC that is not the guest's, and on VLAN 200. */
const NOISE_UNICAST = Uint8Array.from([0x52, 0x54, 0, 0x99, 0x99, 0x99, 0x52, 0x55, 10, 0, 2, 2, 0x08, 0x00, ...new Array<number>(46).fill(0)]);
const NOISE_VLAN = Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x55, 10, 0, 2, 2, 0x81, 0x00, 0, 200, 0x08, 0x00, ...new Array<number>(46).fill(0)]);

export interface RunOptions {
  durationMs: number;
  scenario: Scenario;
  netdev: NetdevSpec;
  /** The guest's address and its peer (default 10.0.2.15/24 and 10.0.2.2). */
  addressing?: GuestIpSpec;
  qmpPath: string | null;
  json: boolean;
  /** Ends the run early (Ctrl-C): the summary is still made and everything is cleaned up. */
  signal?: AbortSignal;
  /** The netdev's id (`--netdev …,id=`; default hostnet0): what `--object …,netdev=` names. */
  netdevId?: string;
  /** tap: `script=` / `downscript=` programs, run with the interface name. */
  script?: string;
  downscript?: string;
  /** `--chardev` / `--object` lines, checked (object-setup.ts). */
  objects?: ObjectSetup;
  /** The scripted guest's TCP echo service. */
  tcp?: { port: number; diverge?: string };
}

export async function runCommand(argv: readonly string[]): Promise<number> {
  const f = parseFlags('run', argv, FLAGS);
  const line = parseNetdevLine((f['netdev'] as string | undefined) ?? 'memory');
  const tcpPort = f['tcp-echo'] as number | undefined;
  if (tcpPort !== undefined && !Number.isInteger(tcpPort)) throw new UsageError(`virtio-net run: --tcp-echo must be a whole port number, got ${tcpPort}`);
  if (f['tcp-diverge'] !== undefined && tcpPort === undefined) throw new UsageError('virtio-net run: --tcp-diverge needs --tcp-echo PORT');
  const options: RunOptions = {
    durationMs: ((f['duration'] as number | undefined) ?? 5) * 1000,
    scenario: ((f['scenario'] as Scenario | undefined) ?? 'linux'),
    netdev: line.spec,
    netdevId: line.id,
    ...(line.script === undefined ? {} : { script: line.script }),
    ...(line.downscript === undefined ? {} : { downscript: line.downscript }),
    objects: parseObjectSetup((f['chardev'] as string[] | undefined) ?? [], (f['object'] as string[] | undefined) ?? [], line.id),
    ...(tcpPort === undefined ? {} : { tcp: { port: tcpPort, ...(f['tcp-diverge'] === undefined ? {} : { diverge: f['tcp-diverge'] as string }) } }),
    addressing: parseGuestIp(f['ip'] as string | undefined, f['peer'] as string | undefined),
    qmpPath: (f['qmp'] as string | undefined) ?? null,
    json: f['json'] === true,
  };
  // Ctrl-C (or SIGTERM) ends the run as the duration would: summary printed, temp directory and
  // QMP socket removed, backends closed. Exit code 130, the shell's for an interrupted command.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: RunResult;
  try {
    result = await run({ ...options, signal: stop.signal }, (line) => process.stdout.write(line));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`\n${summaryTable(result)}\n`);
  return result.interrupted ? 130 : 0;
}

/** Runs the job; `print` receives the human-readable progress (nothing with json). */
export async function run(options: RunOptions, print: (text: string) => void): Promise<RunResult> {
  const memory = new GuestMemory(8 << 20);
  const addressing = options.addressing ?? parseGuestIp();
  const { netdev, peer, label } = await openNetdev(options.netdev, addressing.peer.join('.'));
  // Filters (--object, QMP object-add) sit on a chain around the backend, named as --netdev id= says.
  const chain = new FilterChain(netdev, { id: options.netdevId ?? DEFAULT_NETDEV_ID });
  const ifname = netdev instanceof TapNetdev ? netdev.ifname : undefined;
  const passthrough = new PassthroughList();
  let objects: ObjectRegistry;
  try {
    if (options.script !== undefined) runNetdevScript(options.script, ifname);
    objects = await openObjectSetup(options.objects ?? parseObjectSetup([], [], chain.id), chain, passthrough, options.signal);
  } catch (e) {
    peer?.close();
    await netdev.close();
    throw e;
  }
  const device = new VirtioNetDevice({ id: 'net0', mac: GUEST_MAC, memory, netdev: chain });
  let events = 0;
  device.on('rx-filter-changed', () => events++);
  // Host link changes (TAP / macvtap) are news: a line each, besides the status line and the summary.
  if (hasLinkState(netdev) && !options.json) {
    netdev.onLinkChange((c) => print(`\nvirtio-net run: host link ${c.up ? 'up' : 'down'} (${c.reason}); the guest's link is ${device.linkUp ? 'up' : 'down'}\n`));
  }

  let guest: ScriptedGuest | null = null;
  let servicePending = false;
  /** Called after each interrupt was serviced (the linger at the end waits on it). */
  let afterService: (() => void) | null = null;
  const transport = new VirtioMmioTransport(device, {
    onInterrupt: (asserted) => {
      // A real CPU takes the interrupt after the device returns: service it on a later turn.
      if (!asserted || servicePending) return;
      servicePending = true;
      setImmediate(() => {
        servicePending = false;
        guest?.service();
        afterService?.();
      });
    },
  });
  guest = new ScriptedGuest(transport, memory, { mac: parseMac(GUEST_MAC), ip: addressing.ip }, addressing.peer, options.tcp === undefined ? {} : { tcp: options.tcp });

  // Everything opened from here on is closed on every exit path (an error, Ctrl-C): the temp
  // directory holding the QMP socket never outlives the run.
  const tmp = options.qmpPath === null ? mkdtempSync(join(tmpdir(), 'virtio-net-')) : null;
  let qmp: QmpServer | null = null;
  try {
    const qmpPath = options.qmpPath ?? join(tmp!, 'qmp.sock');
    // A stream backend's connection events are its own: QMP watches it directly when it carries the name.
    const qmpNetdev = isStreamNetdev(netdev) && netdev.id === chain.id ? netdev : chain;
    qmp = new QmpServer({ devices: [device], netdevs: [qmpNetdev], path: qmpPath, objects, colo: { passthrough } });
    await qmp.listen();
    if (!options.json) print(`virtio-net run: scenario ${options.scenario} on ${label}; QMP socket ${qmpPath}\n`);

    /** rx-filter changes = successful RX, MAC and VLAN commands (each counts, even a no-op). */
    const filterCommands = (): number => {
      const c = device.stats().ctrl.byClass;
      return (c['rx']?.ok ?? 0) + (c['mac']?.ok ?? 0) + (c['vlan']?.ok ?? 0);
    };

    const noise = netdev instanceof MemoryNetdev ? netdev : null;
    const started = Date.now();
    if (!guest.start()) throw new Error('the scripted guest could not negotiate features with the device');
    guest.linkUp();
    if (options.scenario !== 'traffic') guest.programFilter();

    const tty = process.stdout.isTTY === true && !options.json;
    let interrupted = false;
    await new Promise<void>((resolve) => {
      let n = 0;
      const tick = setInterval(() => {
        guest!.tick(options.scenario);
        // Host-side background traffic the guest's filter should drop: every 4th tick a frame to
        // another station, every 8th one on a VLAN the guest did not add.
        if (noise !== null && ++n % 4 === 0) noise.inject(n % 8 === 0 ? NOISE_VLAN : NOISE_UNICAST);
      }, TICK_MS);
      const status = tty
        ? setInterval(() => print(`\r${statusLine(Date.now() - started, device.stats(), filterCommands(), events, backendReport(netdev), neighbourReport(guest!, netdev.id))}\x1b[K`), STATUS_MS)
        : null;
      const finish = (): void => {
        clearInterval(tick);
        if (status !== null) clearInterval(status);
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        interrupted = true;
        finish();
      };
      const timer = setTimeout(finish, options.durationMs);
      if (options.signal?.aborted === true) onAbort();
      else options.signal?.addEventListener('abort', onAbort);
    });
    const durationMs = Date.now() - started;
    // Let the last replies arrive: pings sent in the last LINGER_MS get up to LINGER_MS to be
    // answered, as ping waits for its last replies (not after Ctrl-C).
    const g = guest;
    await new Promise<void>((resolve) => {
      if (interrupted || g.stack.awaitingReplies(LINGER_MS) === 0) return resolve();
      const done = (): void => {
        clearTimeout(limit);
        afterService = null;
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      // Ctrl-C while waiting ends the wait (the run is then reported as interrupted).
      const onAbort = (): void => {
        interrupted = true;
        done();
      };
      options.signal?.addEventListener('abort', onAbort);
      const limit = setTimeout(done, LINGER_MS);
      afterService = () => {
        if (g.stack.awaitingReplies(LINGER_MS) === 0) done();
      };
    });
    await new Promise((r) => setImmediate(r));
    guest.service();

    return {
      scenario: options.scenario,
      netdev: label,
      durationMs,
      interrupted,
      qmp: qmpPath,
      device: device.stats(),
      guest: { ...guest.tally, ...(guest.tcp?.tally ?? {}) },
      neighbour: neighbourReport(guest, netdev.id),
      peer: peer === null ? null : { ...peer.stats() },
      rxFilterChanges: filterCommands(),
      events,
      diagnostics: device.diagnostics().length,
      rxFilter: device.queryRxFilter(),
      linkUp: device.linkUp,
      backend: backendReport(netdev),
      objects: objects.stats(),
    };
  } finally {
    guest?.close();
    await qmp?.close();
    await objects.close();
    peer?.close();
    if (options.downscript !== undefined) {
      // Reported, not thrown: the backend must still be closed (QEMU reports it and goes on too).
      try {
        runNetdevScript(options.downscript, ifname);
      } catch (e) {
        process.stderr.write(`virtio-net run: ${(e as Error).message}\n`);
      }
    }
    await chain.close();
    if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
  }
}

/** The backend a NetdevSpec names, as `hostnet0` (also the relay's backend); memory comes with a SimPeer at `peerIp`. */
export async function openNetdev(spec: NetdevSpec, peerIp: string): Promise<{ netdev: Netdev; peer: SimPeer | null; label: string }> {
  switch (spec.kind) {
    case 'memory': {
      const netdev = new MemoryNetdev({ id: 'hostnet0' });
      return { netdev, peer: new SimPeer(netdev, { ip: peerIp }), label: `memory (simulated host peer ${peerIp})` };
    }
    case 'tap': {
      const netdev = new TapNetdev({ id: 'hostnet0', ...(spec.ifname === undefined ? {} : { ifname: spec.ifname }), ...(spec.io === undefined ? {} : { io: spec.io }) });
      return { netdev, peer: null, label: `tap ${netdev.ifname}${netdev.io === 'uring' ? ' (io_uring)' : ''}` };
    }
    case 'macvtap': {
      const netdev = new MacvtapNetdev({ id: 'hostnet0', ifname: spec.ifname, syncRxFilter: spec.sync });
      return { netdev, peer: null, label: `macvtap ${spec.ifname}${spec.sync ? ' (rx filter mirrored to the host)' : ''}` };
    }
    case 'dgram': {
      const netdev = await openDgram(spec);
      return { netdev, peer: null, label: `dgram ${netdev.info}` };
    }
    case 'vde': {
      const netdev = new VdeNetdev({ id: 'hostnet0', sock: spec.sock });
      return { netdev, peer: null, label: `vde ${spec.sock} (vde_plug pid ${netdev.pid ?? '?'})` };
    }
    case 'stream':
    case 'passt':
      return { ...(await openSocketNetdev(spec)), peer: null };
    case 'websocket':
      return { ...(await openWebSocketNetdev(spec.url)), peer: null };
  }
}

/** A DgramNetdev once its socket is bound (a bind failure closes it and throws the HostError). */
export async function openDgram(spec: Extract<NetdevSpec, { kind: 'dgram' }>): Promise<DgramNetdev> {
  const netdev = new DgramNetdev({ id: 'hostnet0', ...(spec.local !== undefined ? { local: spec.local } : {}), ...(spec.remote !== undefined ? { remote: spec.remote } : {}) });
  try {
    await netdev.ready;
  } catch (e) {
    await netdev.close();
    throw e;
  }
  return netdev;
}
