// Throwaway network namespaces and host links for the real-kernel netdev tests.
//
// Names carry this process's pid: namespaces `vnm-<pid>-<n>`, links `vnm<pid><tag><n>` (at most
// 15 bytes). Everything created is deleted in every outcome: by the test's own after hook, by a
// process 'exit' hook, and at load time for leftovers of processes that no longer run (cleaning
// by name and PID). Deleting a namespace deletes the veth pairs that have an end in it, and with
// them any macvtap on the other end.

import { execFileSync } from 'node:child_process';
import { accessSync, constants, openSync, closeSync, readdirSync, readlinkSync } from 'node:fs';
import { skipBecause } from './skip.js';

const PID = process.pid;
let counter = 0;
const liveNamespaces = new Set<string>();
const liveLinks = new Set<string>();

/** Why the host tests cannot run here, or null when they can. */
export function hostSkipReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root (network namespaces, TAP and macvtap links)';
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return 'no usable /dev/net/tun';
  }
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'no `ip` command (iproute2)';
  }
  return null;
}

/** In a mocha `before`: skips the suite with the printed reason when the host cannot run it (fails under CI=true as root). */
export function requireHost(ctx: Mocha.Context): void {
  const reason = hostSkipReason();
  if (reason !== null) skipBecause(ctx, reason);
}

/** Something a test undoes after it (a namespace, a link, a netdev to close). */
export type Cleanup = () => Promise<void> | void;

/**
 * For a describe() of tests on the real kernel: registers a `before` that skips them where the
 * host cannot run them (requireHost) and an `afterEach` that runs, last first, the cleanups each
 * test pushed onto the returned list. Call it at the top of the describe body, before its own hooks.
 */
export function hostCleanups(): Cleanup[] {
  const cleanups: Cleanup[] = [];
  before(function () {
    requireHost(this);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

export function run(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) });
}

/** A unique link name for this process: `vnm<pid><tag><n>`. */
export function linkName(tag: string): string {
  if (!/^[a-z]$/.test(tag)) throw new Error('linkName: tag is one lower-case letter');
  const name = `vnm${PID}${tag}${counter++}`;
  if (name.length > 15) throw new Error(`linkName: ${name} is longer than 15 bytes`);
  return name;
}

/** Remembers a link created in the root namespace, so exit cleanup deletes it. */
export function trackLink(name: string): void {
  liveLinks.add(name);
}

export function deleteLink(name: string): void {
  liveLinks.delete(name);
  try {
    execFileSync('ip', ['link', 'del', name], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // already gone (deleted with its namespace or its lower device)
  }
}

export class Netns {
  readonly name: string;
  private deleted = false;

  constructor() {
    this.name = `vnm-${PID}-${counter++}`;
    run('ip', ['netns', 'add', this.name]);
    liveNamespaces.add(this.name);
    this.ip(['link', 'set', 'lo', 'up']);
  }

  /** IPv6 off in the namespace (`all` and `default`: the links here and those moved in later), so no router or neighbour solicitations reach a test's capture. */
  disableIpv6(): void {
    this.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }

  /** Runs `ip -n <ns> …`. */
  ip(args: readonly string[]): string {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Runs a command inside the namespace. */
  exec(cmd: string, args: readonly string[], input?: string): string {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], input);
  }

  /** Opens the namespace file (for IFLA_NET_NS_FD); the caller closes it. */
  openFd(): number {
    return openSync(`/var/run/netns/${this.name}`, 'r');
  }

  /** Moves a root-namespace link into this namespace. */
  adopt(link: string): void {
    run('ip', ['link', 'set', link, 'netns', this.name]);
    liveLinks.delete(link);
  }

  /**
   * Sends raw Ethernet frames out of `ifname` inside the namespace (an AF_PACKET socket, via
   * python3 so the test process keeps its own namespace).
   */
  sendFrames(ifname: string, frames: readonly Uint8Array[]): void {
    const hex = frames.map((f) => Buffer.from(f).toString('hex'));
    const script = 'import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\nfor h in sys.argv[2:]: s.send(bytes.fromhex(h))\ns.close()\n';
    this.exec('python3', ['-c', script, ifname, ...hex]);
  }

  destroy(): void {
    if (this.deleted) return;
    this.deleted = true;
    liveNamespaces.delete(this.name);
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // already gone
    }
  }
}

/** Runs `fn` with a namespace file descriptor, closing it in every outcome. */
export function withNetnsFd<T>(ns: Netns, fn: (fd: number) => T): T {
  const fd = ns.openFd();
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes namespaces and links of test processes that no longer run. */
export function cleanStale(): void {
  let names: string[] = [];
  try {
    names = readdirSync('/var/run/netns');
  } catch {
    // no namespaces at all
  }
  for (const n of names) {
    const m = /^vnm-(\d+)-\d+$/.exec(n);
    if (m !== null && Number(m[1]) !== PID && !pidAlive(Number(m[1]))) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // raced with another cleaner
      }
    }
  }
  let links: string[] = [];
  try {
    links = readdirSync('/sys/class/net');
  } catch {
    // no sysfs
  }
  for (const l of links) {
    const m = /^vnm(\d+)[a-z]\d+$/.exec(l);
    if (m !== null && Number(m[1]) !== PID && !pidAlive(Number(m[1]))) deleteLink(l);
  }
}

function cleanAll(): void {
  for (const l of [...liveLinks]) deleteLink(l);
  for (const n of [...liveNamespaces]) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // already gone
    }
    liveNamespaces.delete(n);
  }
}

process.on('exit', cleanAll);
if (hostSkipReason() === null) cleanStale();

/** Waits for `cond` to hold, checking every 20 ms, failing after `timeoutMs` with `what`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Open file descriptors of this process whose target contains `kind` (e.g. '/dev/net/tun',
 * 'socket:', 'eventfd'), or all of them: to check that close() leaves none behind.
 */
export function openFds(kind?: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    if (kind === undefined) {
      n++;
      continue;
    }
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).includes(kind)) n++;
    } catch {
      // closed while we looked (the readdir fd itself)
    }
  }
  return n;
}
