// The mirror / redirector world of the filter fuzzer, over real unix sockets (ChardevSocket
// servers, as QEMU's `-chardev socket,server`): a FilterChain holding
//   [filter-redirector queue=tx outdev=B indev=C (id obj0), filter-mirror queue=all outdev=A (id mirror0)]
// with the case's passthrough entries on both. Client frames ('c', host → guest) go to B unless
// passthrough for the redirector, and then on to the guest, copied to A unless passthrough for
// the mirror; guest frames ('g') are copied to A and go to the host; frames written into C ('i',
// in writes of `cut` bytes) enter after the redirector and reach the guest (and A); garbage on C
// ('junk') must drop that connection with a diagnostic, after which a new one works.
// The far ends read with their own framing reader (be32 length | [be32 vnet header length] |
// bytes, QEMU net/net.c): every frame out intact, in order, framed right.
//
// Oracles (codes): sockets.threw; mirror.stream and redirector.stream (what A / B received differs
// from the expected frames, or bad framing); redirector.inject (frames written into C did not
// reach the guest intact and in order); chain.delivery (what reached the guest or the host
// differs: a consumed frame passed on, a passthrough frame kept); redirector.junk-kept (garbage
// on C did not drop the connection with a diagnostic); sockets.stats (the filters' counters
// disagree with what happened).

import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChardevSocket } from '../../../lib/chardev/chardev-socket.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { MirrorFilter } from '../../../lib/filters/mirror.js';
import { RedirectorFilter } from '../../../lib/filters/redirector.js';
import type { Netdev, NetdevPeer, SendResult } from '../../../lib/netdev/netdev.js';
import { PassthroughList } from '../../../lib/passthrough/passthrough.js';
import { bump, FilterStop, OBJECT_ID, PASSTHROUGH_MENU, refPassthrough, type Counts, type FilterCase, type FilterFailure, type FilterOp } from './common.js';
import { bytesOf, hexOf } from './packets.js';
import { refParse } from './ref-packet.js';

const MIRROR_ID = 'mirror0';
const WAIT_MS = 5000;

/** A far end's frames as "header/frame" hex, read with this file's own framing reader. */
class WireEnd {
  readonly got: string[] = [];
  error: string | undefined;
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  constructor(readonly socket: net.Socket, private readonly vnet: boolean) {
    socket.on('data', (d: Buffer) => this.take(d));
    socket.on('error', () => undefined);
  }
  private take(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    const pre = this.vnet ? 8 : 4;
    while (this.buf.length >= pre) {
      const len = this.buf.readUInt32BE(0);
      const vlen = this.vnet ? this.buf.readUInt32BE(4) : 0;
      if (len === 0 || len > 4096 + 65536 || vlen >= len || ![0, 10, 12, 20].includes(vlen)) {
        this.error = `bad framing: length ${len}, vnet header length ${vlen}`;
        break;
      }
      if (this.buf.length < pre + len) break;
      const body = this.buf.subarray(pre, pre + len);
      this.got.push(`${hexOf(body.subarray(0, vlen))}/${hexOf(body.subarray(vlen))}`);
      this.buf = this.buf.subarray(pre + len);
    }
    this.wake?.();
  }
  async until(n: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.got.length < n && this.error === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((done) => {
        const t = setTimeout(done, left);
        this.wake = () => {
          clearTimeout(t);
          done();
        };
      });
    }
    return this.error === undefined;
  }
}

class HostEnd implements Netdev {
  readonly id = 'fuzz-host';
  peer: NetdevPeer | null = null;
  readonly sent: string[] = [];
  attach(peer: NetdevPeer): void {
    this.peer = peer;
  }
  detach(): void {
    this.peer = null;
  }
  send(frame: Uint8Array, hdr?: Uint8Array): SendResult {
    this.sent.push(`${hexOf(hdr ?? new Uint8Array(0))}/${hexOf(frame)}`);
    return 'sent';
  }
  pauseReceive(): void {}
  resumeReceive(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function connect(path: string): Promise<net.Socket> {
  const s = net.connect(path);
  await once(s, 'connect');
  return s;
}

export type SocketsPlant = (w: SocketsWorld) => void;

export class SocketsWorld {
  step = 0;
  /** How long a far end may take to show what it must (plants shorten it). */
  waitMs = WAIT_MS;
  readonly vnet: boolean;
  readonly dir = mkdtempSync(join(tmpdir(), 'fuzz-filters-'));
  readonly a: ChardevSocket;
  readonly b: ChardevSocket;
  readonly cdev: ChardevSocket;
  readonly mirror: MirrorFilter;
  readonly redirector: RedirectorFilter;
  readonly chain: FilterChain;
  readonly host = new HostEnd();
  readonly guest: string[] = [];
  endA!: WireEnd;
  endB!: WireEnd;
  endC!: net.Socket;
  diagnostics = 0;
  /** What each end must have received, in order. */
  readonly want = { a: [] as string[], b: [] as string[], guest: [] as string[], host: [] as string[] };
  readonly expectStats = { mirrored: 0, mirrorPassed: 0, redirected: 0, redirectPassed: 0, injected: 0 };
  private readonly menu: number[];
  private readonly counts: Counts | undefined;

  constructor(c: FilterCase, counts?: Counts) {
    this.counts = counts;
    this.vnet = c.setup.vnet === true;
    this.menu = c.passthrough;
    const pt = new PassthroughList();
    for (const i of c.passthrough) pt.add(PASSTHROUGH_MENU[i]!);
    const sock = (id: string): ChardevSocket => new ChardevSocket({ id, endpoint: { path: join(this.dir, `${id}.sock`) }, server: true, vnetHdrSupport: this.vnet, maxPendingBytes: 64 << 20 });
    this.a = sock('a');
    this.b = sock('b');
    this.cdev = sock('c');
    this.cdev.on('diagnostic', () => void this.diagnostics++);
    this.mirror = new MirrorFilter({ id: MIRROR_ID, queue: 'all', outdev: this.a, passthrough: pt });
    this.redirector = new RedirectorFilter({ id: OBJECT_ID, queue: 'tx', outdev: this.b, indev: this.cdev, passthrough: pt });
    this.chain = new FilterChain(this.host, { id: 'fuzz-chain' });
    this.chain.add(this.redirector);
    this.chain.add(this.mirror);
    this.chain.attach({
      receive: (frame, hdr) => {
        this.guest.push(`${hexOf(hdr ?? new Uint8Array(0))}/${hexOf(frame)}`);
        return true;
      },
      writable: () => undefined,
    });
  }

  async open(): Promise<void> {
    await Promise.all([this.a.open(), this.b.open(), this.cdev.open()]);
    const [sa, sb, sc] = await Promise.all([connect(join(this.dir, 'a.sock')), connect(join(this.dir, 'b.sock')), connect(join(this.dir, 'c.sock'))]);
    this.endA = new WireEnd(sa, this.vnet);
    this.endB = new WireEnd(sb, this.vnet);
    this.endC = sc;
    sc.on('error', () => undefined);
    // The servers adopt their client when they accept it: wait until all three have.
    await this.waitFor(() => this.a.connected && this.b.connected && this.cdev.connected, 'the sockets to connect');
  }

  async dispose(): Promise<void> {
    this.endA?.socket.destroy();
    this.endB?.socket.destroy();
    this.endC?.destroy();
    await this.chain.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  fail(code: string, detail: string): never {
    throw new FilterStop({ step: this.step, code, detail });
  }

  private async waitFor(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    while (!cond()) {
      if (Date.now() > deadline) this.fail('sockets.threw', `timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  private guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof FilterStop) throw e;
      this.fail('sockets.threw', `${what}: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }

  /** The header as it travels on a socket: only with vnet_hdr_support. */
  private wire(frame: Uint8Array, hdr: Uint8Array | undefined): string {
    return `${this.vnet && hdr !== undefined ? hexOf(hdr) : ''}/${hexOf(frame)}`;
  }

  private local(frame: Uint8Array, hdr: Uint8Array | undefined): string {
    return `${hexOf(hdr ?? new Uint8Array(0))}/${hexOf(frame)}`;
  }

  /** A frame reaching the mirror going either way. */
  private viaMirror(frame: Uint8Array, hdr: Uint8Array | undefined): void {
    if (refPassthrough(this.menu, MIRROR_ID, refParse(frame))) this.expectStats.mirrorPassed++;
    else {
      this.want.a.push(this.wire(frame, hdr));
      this.expectStats.mirrored++;
    }
  }

  async apply(op: FilterOp): Promise<void> {
    bump(this.counts, op.t);
    if (op.t === 'c') {
      const frame = bytesOf(op.f);
      const hdr = op.h === undefined ? undefined : bytesOf(op.h);
      if (refPassthrough(this.menu, OBJECT_ID, refParse(frame))) {
        this.expectStats.redirectPassed++;
        this.viaMirror(frame, hdr);
        this.want.guest.push(this.local(frame, hdr));
      } else {
        this.expectStats.redirected++;
        this.want.b.push(this.wire(frame, hdr));
      }
      this.guarded('client frame', () => this.host.peer!.receive(frame, hdr));
      bump(this.counts, 'frames');
    } else if (op.t === 'g') {
      const frame = bytesOf(op.f);
      const hdr = op.h === undefined ? undefined : bytesOf(op.h);
      this.viaMirror(frame, hdr);
      this.want.host.push(this.local(frame, hdr));
      this.guarded('guest frame', () => this.chain.send(frame, hdr));
      bump(this.counts, 'frames');
    } else if (op.t === 'i') {
      const parts: Buffer[] = [];
      for (const [k, h] of op.fs.entries()) {
        const frame = bytesOf(h);
        // With vnet_hdr_support every other injected frame carries a 12-byte header.
        const hdr = this.vnet && k % 2 === 1 ? Uint8Array.from({ length: 12 }, (_, j) => (j + k) & 0xff) : undefined;
        const hl = hdr?.length ?? 0;
        const pre = Buffer.alloc(this.vnet ? 8 : 4);
        pre.writeUInt32BE(hl + frame.length, 0);
        if (this.vnet) pre.writeUInt32BE(hl, 4);
        parts.push(pre, Buffer.from(hdr ?? []), Buffer.from(frame));
        this.viaMirror(frame, hdr);
        this.want.guest.push(this.local(frame, hdr));
        this.expectStats.injected++;
        bump(this.counts, 'frames');
      }
      const bytes = Buffer.concat(parts);
      for (let at = 0; at < bytes.length; at += op.cut) this.endC.write(bytes.subarray(at, at + op.cut));
      const n = this.want.guest.length;
      const deadline = Date.now() + this.waitMs;
      while (this.guest.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
      if (this.guest.length < n) this.fail('redirector.inject', `${n - this.guest.length} frame(s) written into the input socket never reached the guest`);
    } else if (op.t === 'junk') {
      const before = this.diagnostics;
      const old = this.endC;
      old.end(Buffer.from(op.bytes, 'hex'));
      const deadline = Date.now() + this.waitMs;
      while ((this.diagnostics === before || this.cdev.connected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
      if (this.diagnostics === before) this.fail('redirector.junk-kept', `garbage ${op.bytes} on the input socket gave no diagnostic`);
      if (this.cdev.connected) this.fail('redirector.junk-kept', `garbage ${op.bytes} on the input socket did not drop the connection`);
      old.destroy();
      this.endC = await connect(join(this.dir, 'c.sock'));
      this.endC.on('error', () => undefined);
      await this.waitFor(() => this.cdev.connected, 'a new input connection');
    }
    await this.check();
  }

  private async check(): Promise<void> {
    this.same('chain.delivery', 'the guest', this.guest, this.want.guest, undefined);
    this.same('chain.delivery', 'the host', this.host.sent, this.want.host, undefined);
    const okA = await this.endA.until(this.want.a.length, this.waitMs);
    const okB = await this.endB.until(this.want.b.length, this.waitMs);
    this.same('mirror.stream', 'the mirror socket', this.endA.got, this.want.a, okA ? undefined : this.endA.error ?? 'frames missing');
    this.same('redirector.stream', 'the redirector socket', this.endB.got, this.want.b, okB ? undefined : this.endB.error ?? 'frames missing');
    const m = this.mirror.stats();
    const r = this.redirector.stats();
    const e = this.expectStats;
    if (m.mirrored + m.dropped !== e.mirrored || m.passedThrough !== e.mirrorPassed || m.dropped !== 0) {
      this.fail('sockets.stats', `mirror counters ${JSON.stringify(m)}, expected ${e.mirrored} mirrored, ${e.mirrorPassed} passed through, none dropped`);
    }
    if (r.redirected !== e.redirected || r.passedThrough !== e.redirectPassed || r.injected !== e.injected || r.outDropped !== 0 || r.inDropped !== 0) {
      this.fail('sockets.stats', `redirector counters ${JSON.stringify(r)}, expected ${JSON.stringify(e)}`);
    }
  }

  private same(code: string, where: string, got: string[], want: string[], problem: string | undefined): void {
    const n = Math.max(got.length, want.length);
    for (let i = 0; i < n; i++) {
      if (got[i] !== want[i]) {
        this.fail(code, `${where}: frame ${i} ${got[i] === undefined ? 'missing' : want[i] === undefined ? 'extra' : 'differs'}${problem === undefined ? '' : ` (${problem})`}: got ${got[i]?.slice(0, 80) ?? '-'} want ${want[i]?.slice(0, 80) ?? '-'}`);
      }
    }
    if (problem !== undefined) this.fail(code, `${where}: ${problem}`);
  }
}

export async function runSockets(c: FilterCase, counts?: Counts, plant?: SocketsPlant): Promise<FilterFailure | null> {
  let w: SocketsWorld;
  try {
    w = new SocketsWorld(c, counts);
    await w.open();
    plant?.(w);
  } catch (e) {
    return { step: -1, code: 'setup.threw', detail: String(e instanceof Error ? e.stack : e) };
  }
  try {
    for (let i = 0; i < c.ops.length; i++) {
      w.step = i;
      await w.apply(c.ops[i]!);
    }
    return null;
  } catch (e) {
    if (e instanceof FilterStop) return e.failure;
    return { step: w.step, code: 'harness.threw', detail: String(e instanceof Error ? e.stack : e) };
  } finally {
    await w.dispose();
  }
}
