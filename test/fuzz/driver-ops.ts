// The model driver's operations (VIRTIO 1.2 §3.1.1 initialisation, §4.1 / §4.2 registers, §2.7.13
// making buffers available, §2.7.5 descriptors incl. §2.7.5.3 indirect tables, §5.1.6.2 transmit,
// §5.1.6.3 receive buffers, §5.1.6.5 control commands): each FuzzOp (ops.ts) done to a FuzzWorld
// the way a driver — careful or not — would. A driver that cannot do one (ring full, heap
// exhausted, queue absent) skips it; world.ts runs the oracles after each. On packed rings (§2.8)
// the same operations use the packed layout: raw lists carry the packed mistakes (§2.8.1 AVAIL/USED
// bits and wrap counters, §2.8.6 chains, §2.8.7 indirect tables, §2.8.13 Buffer IDs), an index
// jump becomes skipped positions or a flipped wrap counter, event suppression is §2.8.10's.

import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import type { VirtioPciTransport } from '../../devices/virtio/pci-transport.js';
import { DriverRing } from '../support/driver-ring.js';
import type { BufferSpec, RawDescriptor } from '../support/driver-ring.js';
import { findVirtioCaps } from '../support/driver-transport.js';
import { EVENT_DESC, EVENT_DISABLE, EVENT_ENABLE, PACKED_F_AVAIL, PACKED_F_USED, PackedDriverRing } from '../support/packed-driver-ring.js';
import type { RawPackedDescriptor, RawPackedEntry } from '../support/packed-driver-ring.js';
import type { FuzzOp, RawDesc } from './ops.js';
import { flowFrame } from './rss-model.js';
import type { FuzzWorld } from './world.js';
import type { QueueLedger } from './ledger.js';

export function applyOp(w: FuzzWorld, op: FuzzOp): void {
  switch (op.t) {
    case 'init':
      w.init(op.drop);
      return;
    case 'status':
      w.clean = false;
      w.driver.writeStatus(op.value);
      return;
    case 'reg':
      w.clean = false;
      return reg(w, op);
    case 'queue':
      w.clean = false;
      return queueOp(w, op);
    case 'tx':
      return tx(w, op);
    case 'rx':
      return rx(w, op);
    case 'ctrl':
      return ctrl(w, op);
    case 'raw':
      return raw(w, op);
    case 'bump':
      return bump(w, op.q, op.n);
    case 'kick':
      w.driver.notify(op.q);
      return;
    case 'inject':
      return inject(w, op);
    case 'link':
      w.call('setLink', () => w.device.setLink(op.up));
      return;
    case 'writable':
      w.call('netdev.setWritable', () => w.netdev.setWritable(op.on));
      return;
    case 'isr':
      w.driver.readIsr();
      return;
    case 'config': {
      // PCI: a hypervisor forwards only accesses inside the BAR, so stay inside the device area.
      const room = w.driver.kind === 'mmio' ? 0x100 : w.device.configSize - op.width + 1;
      if (room <= 0) return;
      const off = op.offset % room;
      if (op.write) w.driver.writeConfig(off, op.width, op.value);
      else w.driver.readConfig(off, op.width);
      return;
    }
    case 'event': {
      const ring = w.ring(op.q);
      if (ring === null) return;
      if (ring instanceof PackedDriverRing) {
        if (op.mode === 'used-event') ring.setDriverEvent(EVENT_DESC, op.value);
        else ring.setDriverEvent(op.mode === 'no-interrupt' ? EVENT_DISABLE : EVENT_ENABLE);
        return;
      }
      if (op.mode === 'used-event') ring.setUsedEvent(op.value);
      else ring.setNoInterrupt(op.mode === 'no-interrupt');
      return;
    }
    case 'query':
      w.call('queryRxFilter', () => w.device.queryRxFilter());
      return;
    case 'announce':
      w.call('announce', () => w.device.announce());
      return;
    case 'refuse':
      if (w.netdev.vnet !== null) w.netdev.vnet.refuseOffloads = op.on;
      return;
    case 'arm':
      w.arm(op.at, op.action, op.times);
      return;
    case 'cycle':
      return cycle(w, op);
    case 'flow': {
      const mac = w.device.mac.split(':').map((h) => parseInt(h, 16));
      for (const d of op.flows) w.injectFrame(flowFrame(d, mac), undefined, d);
      return;
    }
  }
}

export function reg(w: FuzzWorld, op: Extract<FuzzOp, { t: 'reg' }>): void {
  const t = w.transport;
  const width = op.width;
  if (t instanceof VirtioMmioTransport) {
    const off = (op.offset % (0x100 + 24 - width + 1)) & ~(width === 1 ? 0 : width - 1);
    if (op.write) w.call('mmio write', () => t.write(off, width, op.value));
    else w.call('mmio read', () => t.read(off, width));
    return;
  }
  if (op.space === 1) {
    const off = op.offset % (256 - width + 1);
    if (op.write) w.call('pci config write', () => t.configWrite(off, width, op.value));
    else w.call('pci config read', () => t.configRead(off, width));
    return;
  }
  let bar = 0;
  let off = op.offset % 0x40;
  if (w.setup.transport === 'pci') {
    const caps = findVirtioCaps(w.guardTransport(t) as VirtioPciTransport);
    bar = caps.common.bar;
    off = caps.common.offset + (op.offset % 56);
  }
  off = Math.min(off, off - (off % width));
  if (op.write) w.call('pci bar write', () => t.barWrite(bar, off, width, op.value));
  else w.call('pci bar read', () => t.barRead(bar, off, width));
}

export function queueOp(w: FuzzWorld, op: Extract<FuzzOp, { t: 'queue' }>): void {
  const base = w.scratchArea(op.q % 5);
  let desc = base;
  let avail = base + 0x1000;
  let used = base + 0x2000;
  if (op.layout === 'misaligned') {
    desc += 8;
    used += 2;
  } else if (op.layout === 'outside') used = w.memory.size - 16;
  else if (op.layout === 'overlap') used = desc;
  else if (op.layout === 'zero') desc = avail = used = 0;
  const size = op.size;
  if (op.layout !== 'outside' && op.layout !== 'zero') {
    // The driver zeroes the rings it is about to hand over, as a fresh allocation would be.
    void new DriverRing(w.memory.driver, { size: Math.max(1, Math.min(size, 64)), descTable: desc, availRing: avail, usedRing: used, heapStart: base + 0x4000, heapEnd: base + 0x8000 });
  }
  w.programmed.push([used, 6 + 8 * Math.min(size, 0x8000)]);
  if (w.driver.kind === 'pci-legacy') {
    w.call('legacy queue', () => w.device.writeQueueLayout(op.q, op.layout === 'zero' ? null : { size: w.queueMax, descTable: desc, availRing: avail, usedRing: used }));
    return;
  }
  w.call('queue size', () => w.device.writeQueueSize(op.q, size));
  w.call('queue desc', () => w.device.writeQueueAddressWord(op.q, 'descTable', 0, desc));
  w.call('queue avail', () => w.device.writeQueueAddressWord(op.q, 'availRing', 0, avail));
  w.call('queue used', () => w.device.writeQueueAddressWord(op.q, 'usedRing', 0, used));
  w.call('queue ready', () => w.device.writeQueueReady(op.q, true));
}

function tx(w: FuzzWorld, op: Extract<FuzzOp, { t: 'tx' }>): void {
  const q = 2 * op.pair + 1;
  const ring = w.ring(q);
  if (ring === null || q === w.ctrlIndex || !w.room(q, 1)) return;
  const hdrLen = w.hdrLen;
  const frame = w.frame(op.len, '52:54:00:99:99:99', -1);
  let whole: Uint8Array;
  if (op.hdr === 'ok') {
    whole = new Uint8Array(hdrLen + frame.length);
    if (op.vhdr !== undefined) whole.set(op.vhdr.slice(0, hdrLen));
    whole.set(frame, hdrLen);
  } else if (op.hdr === 'short') whole = new Uint8Array(Math.max(0, hdrLen - 1 - (op.len % hdrLen)));
  else whole = frame;
  const parts: BufferSpec[] = splitBytes(whole, op.split);
  if (op.writable) parts.push({ len: 8, write: true });
  if (parts.length === 0) parts.push({ len: 0 });
  const indirect = op.indirect && (w.has('INDIRECT_DESC') || op.len % 7 === 0);
  if (whole.length >= hdrLen) w.expectTx(op.pair, whole.slice(hdrLen));
  w.kick(q, () => w.post(q, ring.addChain(parts, { indirect }), 'tx'));
}

function rx(w: FuzzWorld, op: Extract<FuzzOp, { t: 'rx' }>): void {
  // `pair`: buffers for receiveq{pair + 1} (RSS and flow steering use every receive queue in use).
  const q = 2 * (op.pair ?? 0);
  if (q !== 0 && (q >= 2 * w.usablePairs || q === w.ctrlIndex)) return;
  const ring = w.ring(q);
  if (ring === null || !w.room(q, op.count + (op.broken === true ? 1 : 0))) return;
  const indirect = op.indirect && (w.has('INDIRECT_DESC') || op.count === 7);
  w.kick(q, () => {
    try {
      for (let i = 0; i < op.count; i++) {
        const parts: BufferSpec[] = [];
        for (let k = 0; k < op.split; k++) parts.push({ len: Math.max(1, Math.floor(op.len / op.split)), write: true });
        w.post(q, ring.addChain(parts, { indirect, publish: false }), 'rx');
      }
      if (op.broken === true) {
        if (ring instanceof PackedDriverRing) {
          // An INDIRECT descriptor whose length is no multiple of 16 (§2.8.7), or indirect not negotiated.
          const id = ring.peekFreeId();
          if (id !== undefined) {
            const at = ring.addRaw([{ len: 8, id, flags: 4 | 2, addr: ring.alloc(16) }]);
            ring.trackRaw(id, 1, []);
            w.post(q, id, 'raw', undefined, undefined, packedGrant(w, w.ledgers[q]!, ring, at, 1));
          }
        } else w.post(q, ring.addRaw([{ len: 16, flags: 2 }], { head: ring.size + 1, publish: false }), 'raw');
      }
    } finally {
      ring.publish();
    }
  });
}

function ctrl(w: FuzzWorld, op: Extract<FuzzOp, { t: 'ctrl' }>): void {
  const q = w.ctrlIndex;
  const ring = q < 0 ? null : w.ring(q);
  if (ring === null || !w.room(q, 1)) return;
  const specs: BufferSpec[] = op.apart
    ? [{ len: 2, data: [op.cls, op.cmd] }, ...(op.payload.length > 0 ? [{ len: op.payload.length, data: op.payload }] : [])]
    : [{ len: 2 + op.payload.length, data: [op.cls, op.cmd, ...op.payload] }];
  if (op.ack > 0) specs.push({ len: op.ack, write: true, data: new Array<number>(op.ack).fill(0xff) });
  const indirect = op.indirect && (w.has('INDIRECT_DESC') || op.cls === 255);
  w.kick(q, () => {
    const head = ring.addChain(specs, { indirect, publish: false });
    const ack = op.ack > 0 ? ring.buffers(head)[specs.length - 1]!.addr : undefined;
    w.post(q, head, op.ack > 0 ? 'ctrl' : 'raw', ack, [op.cls, op.cmd, ...op.payload]);
    ring.publish();
  });
}

function raw(w: FuzzWorld, op: Extract<FuzzOp, { t: 'raw' }>): void {
  const ring = w.ring(op.q);
  if (ring === null || !w.room(op.q, 1)) return;
  if (ring instanceof PackedDriverRing) return rawPacked(w, ring, op);
  const free = (ring as unknown as { freeDescs: number[] }).freeDescs;
  if (free.length < op.descs.length) return;
  const indices = free.slice(0, op.descs.length);
  const descs = op.descs.map((d, i) => rawDesc(w, ring, d, indices[i]!, indices[0]!, ring.size + 3, op.table.length > 0));
  const table = op.table.map((d, i) => rawDesc(w, ring, d, i, 0, 99, false));
  w.kick(op.q, () => {
    const head = ring.addRaw(descs, { ...(table.length > 0 ? { indirectTable: table } : {}), ...(op.head === 'oob' ? { head: ring.size + 1 } : {}), publish: false });
    w.post(op.q, head, 'raw');
    ring.publish();
  });
}

/**
 * A raw list on a packed ring: the descriptors at the next ring positions as given (kind bits from
 * `descs`, a table for INDIRECT ones), one Buffer ID in all of them, and the mistakes `op.packed`
 * asks for. The device reads the ring as it stands when it pops, and a packed ring's slots are
 * reused, so the books follow what the device will see:
 * - a list it sees whole (first descriptor available, the last without NEXT, an ID not outstanding)
 *   is tracked like a well-formed one;
 * - a first descriptor not available (other wrap counter; zero) stalls the queue there: the driver
 *   posts nothing more on it until a reset (dead);
 * - one list whose last descriptor has NEXT (it runs into descriptors not made available) or
 *   carries the other wrap counter's bits: the device must refuse it when it pops (dead);
 * - anything the driver itself can no longer read its used descriptors after — a first descriptor
 *   that looks used to it (AVAIL and USED both its wrap counter), an ID an outstanding list has,
 *   descriptors without NEXT inside what it meant as one list (several lists, one ID): dead, and
 *   only the guard regions judge that queue (tainted).
 */
function rawPacked(w: FuzzWorld, ring: PackedDriverRing, op: Extract<FuzzOp, { t: 'raw' }>): void {
  const n = op.descs.length;
  if (ring.freeDescriptors < n) return;
  const l = w.ledgers[op.q]!;
  const mistake = op.packed ?? { first: 'ok', mid: false, id: op.head === 'oob' ? 'oob' : 'free' };
  let id: number | undefined;
  if (mistake.id === 'free') id = ring.peekFreeId();
  else if (mistake.id === 'oob') id = ring.size + 1 + (n % 3);
  else id = ring.heldId();
  if (id === undefined) return;
  const wrap = ring.wrapCounter;
  const good = wrap === 1 ? PACKED_F_AVAIL : PACKED_F_USED;
  const other = wrap === 1 ? PACKED_F_USED : PACKED_F_AVAIL;
  const firstBits = mistake.first === 'ok' ? good : mistake.first === 'other-wrap' ? other : mistake.first === 'looks-used' ? (wrap === 1 ? PACKED_F_AVAIL | PACKED_F_USED : 0) : 0;
  const table: RawPackedEntry[] = op.table.map((d) => packedEntry(w, ring, d));
  const midWrong = mistake.mid && n > 1;
  const descs: RawPackedDescriptor[] = op.descs.map((d, i) => {
    const kind = d.flags & 7;
    const bits = i === 0 ? firstBits : midWrong && i === n - 1 ? other : good;
    const out: RawPackedDescriptor = { id, flags: kind, rawFlags: kind | bits };
    if ((kind & 4) !== 0 && table.length > 0 && d.addr === 'heap') return out; // the table, with its own length
    out.len = d.len;
    const addr = packedAddr(w, ring, d);
    if (addr !== undefined) out.addr = addr;
    return out;
  });
  const theId = id;
  w.kick(op.q, () => {
    let at: number;
    try {
      at = ring.addRaw(descs, table.length > 0 ? { indirectTable: table } : {});
    } catch (e) {
      // Heap exhausted part way: what was written stays, unpublished or not; the driver gives up the queue.
      l.dead = l.tainted = true;
      throw e;
    }
    const granted = packedGrant(w, l, ring, at, n);
    w.bump(`packed raw first=${mistake.first} id=${mistake.id}${midWrong ? ' mid-wrap' : ''}`);
    const terminated = (op.descs[n - 1]!.flags & 1) === 0;
    const oneList = op.descs.every((d, i) => i === n - 1 || (d.flags & 1) !== 0);
    const looksUsed = mistake.first === 'looks-used' || (mistake.first === 'zero' && wrap === 0);
    if (looksUsed || mistake.id === 'held' || !oneList) {
      w.post(op.q, theId, 'raw', undefined, undefined, granted);
      l.dead = l.tainted = true;
      return;
    }
    if (mistake.first !== 'ok' || !terminated || midWrong) {
      w.post(op.q, theId, 'raw', undefined, undefined, granted); // never completed: the device sees no list, or refuses it
      l.dead = true;
      return;
    }
    ring.trackRaw(theId, n, granted.map(([addr, len]) => ({ addr, len, write: true })));
    w.post(op.q, theId, 'raw', undefined, undefined, granted);
  });
}

function packedAddr(w: FuzzWorld, ring: PackedDriverRing, d: RawDesc): number | bigint | undefined {
  switch (d.addr) {
    case 'heap':
      return d.len > 4096 ? ring.heapStart : undefined;
    case 'zero':
      return 0;
    case 'outside':
      return w.memory.size + 16;
    case 'straddle':
      return w.memory.size - 8;
    case 'ring':
      return (d.flags & 2) !== 0 ? ring.deviceEvent : ring.descRing;
    case 'huge':
      return 1n << 63n;
  }
}

function packedEntry(w: FuzzWorld, ring: PackedDriverRing, d: RawDesc): RawPackedEntry {
  const addr = packedAddr(w, ring, d);
  return { len: d.len, flags: d.flags, ...(addr === undefined ? {} : { addr }) };
}

/**
 * The writable ranges of `slots` ring descriptors from offset `at` as they stand (written just now):
 * WRITE descriptors, and the WRITE entries of the tables INDIRECT ones point at — generous, like the
 * split walk: it grants what the device must refuse too.
 */
function packedGrant(w: FuzzWorld, l: QueueLedger, ring: PackedDriverRing, at: number, slots: number): [number, number][] {
  const m = w.memory.driver;
  const out: [number, number][] = [];
  for (let k = 0; k < slots; k++) {
    const d = ring.descAddr((at + k) % ring.size);
    const addr = m.readU64(d);
    const len = m.readU32(d + 8);
    const flags = m.readU16(d + 14);
    if ((flags & 4) !== 0) {
      const entries = Math.min(Math.floor(len / 16), 4096);
      const base = Number(addr);
      if (addr >= BigInt(w.memory.size) || entries === 0 || !m.contains(base, entries * 16)) continue;
      for (let i = 0; i < entries; i++) {
        if ((m.readU16(base + 16 * i + 12) & 2) !== 0) l.push(out, m.readU64(base + 16 * i), m.readU32(base + 16 * i + 8));
      }
    } else if ((flags & 2) !== 0) l.push(out, addr, len);
  }
  return out;
}

function rawDesc(w: FuzzWorld, ring: DriverRing, d: RawDesc, self: number, first: number, oob: number, tableGiven: boolean): RawDescriptor {
  const out: RawDescriptor = { len: d.len, flags: d.flags };
  if (d.next === 'self') out.next = self;
  else if (d.next === 'first') out.next = first;
  else if (d.next === 'oob') out.next = oob;
  switch (d.addr) {
    case 'heap':
      if ((d.flags & 4) !== 0 && tableGiven) {
        delete out.len; // the table's own length
      } else if (d.len > 4096) out.addr = ring.heapStart;
      break;
    case 'zero':
      out.addr = 0;
      break;
    case 'outside':
      out.addr = w.memory.size + 16;
      break;
    case 'straddle':
      out.addr = w.memory.size - 8;
      break;
    case 'ring':
      out.addr = (d.flags & 2) !== 0 ? ring.usedRing : ring.descTable;
      break;
    case 'huge':
      out.addr = 1n << 63n;
      break;
  }
  return out;
}

function bump(w: FuzzWorld, q: number, n: number): void {
  const ring = w.ring(q);
  if (ring === null) return;
  if (ring instanceof PackedDriverRing) {
    // The driver loses count: it skips positions (the device waits at the first one, not available),
    // or flips its wrap counter (its later descriptors carry the other wrap counter's bits). Either
    // way the queue stalls where the device is: the driver posts nothing more on it (dead).
    if (ring.freeDescriptors < 1) return;
    if (n <= ring.size) ring.skip(n);
    else ring.flipWrap();
    w.bump(n <= ring.size ? 'packed bump skip' : 'packed bump wrap-flip');
    const l = w.ledgers[q]!;
    w.kick(q, () => {
      const id = ring.addChain([{ len: 64, write: true }]);
      w.post(q, id, 'raw');
    });
    l.dead = true;
    return;
  }
  if (n <= ring.size && !w.room(q, n)) return;
  const from = ring.availIdx;
  ring.bumpAvailIdx(n);
  if (n > ring.size) w.ledgers[q]!.dead = true;
  // Entries re-exposed by a jump within the ring are postings of whatever head the slot holds.
  if (n <= ring.size) {
    for (let k = 0; k < n; k++) w.post(q, w.memory.driver.readU16(ring.availRing + 4 + 2 * ((from + k) % ring.size)), 'raw');
  }
}

function inject(w: FuzzWorld, op: Extract<FuzzOp, { t: 'inject' }>): void {
  const dst = op.dst === 'main' ? w.device.mac : op.dst === 'bcast' ? 'ff:ff:ff:ff:ff:ff' : op.dst === 'mcast' ? '01:00:5e:00:00:01' : '52:54:00:99:99:98';
  const count = op.len > 2048 ? Math.min(op.count, 4) : op.count; // big frames: a few are enough
  for (let i = 0; i < count; i++) w.injectFrame(w.frame(op.len, dst, op.vlan), op.hdr);
}

/**
 * `n` frames round trip through pair 0, `batch` at a time, the way a busy driver does it: post,
 * notify as Linux decides (§2.7.10), handle the interrupt (read ISR, take the used ring). The
 * ring indices run on naturally — across 65535 → 0 for n > 65536. Ends early when the device
 * stops making progress (link down, backend busy, queue broken): the ops after it go on.
 */
function cycle(w: FuzzWorld, op: Extract<FuzzOp, { t: 'cycle' }>): void {
  const q = op.dir === 'tx' ? 1 : 0;
  const ring = w.ring(q);
  if (ring === null || w.ledgers[q]!.rawSeen) return;
  const hdrLen = w.hdrLen;
  const bufLen = hdrLen + 64;
  // A fixed pool, used round robin: the bump allocator restarts only when nothing is outstanding,
  // which a long cycle never reaches. Both queues complete in order, and the driver never has more
  // than the ring size outstanding, so a buffer comes round again only after it was completed.
  const poolSize = Math.min(ring.size, 256) + op.batch;
  let base: number;
  try {
    base = ring.alloc(poolSize * bufLen, 64);
  } catch {
    return; // heap exhausted: the driver cannot do it
  }
  let next = 0;
  const buffer = (): number => base + bufLen * (next++ % poolSize);
  // The ring's bump allocator restarts whenever nothing is outstanding — which a batch that
  // completes everything reaches — and does not know the pool: keep the heap above the pool, or the
  // next allocation (a later op's buffers) overlaps pool buffers still posted (a merged frame's
  // chains the device holds), and the device's writes into one land in the other.
  const poolEnd = base + poolSize * bufLen;
  const keepPool = (): void => {
    const top = ring.alloc(0, 1);
    if (top < poolEnd) ring.alloc(poolEnd - top, 1);
  };
  let done = 0;
  while (done < op.n) {
    const l = w.ledgers[q];
    if (l === null || l === undefined || l.dead || w.ring(q) !== ring || w.needsReset) return;
    let k = Math.min(op.batch, op.n - done);
    while (k > 0 && !w.room(q, k)) k--;
    if (k === 0) return;
    const before = l.usedSeen;
    w.irqMark();
    if (op.dir === 'tx') {
      w.kick(q, () => {
        try {
          for (let i = 0; i < k; i++) {
            const frame = w.frame(60, '52:54:00:99:99:99', -1);
            const whole = new Uint8Array(hdrLen + frame.length);
            whole.set(frame, hdrLen);
            w.expectTx(0, frame);
            w.post(q, ring.addChain([{ len: whole.length, data: whole, addr: buffer() }], { publish: false }), 'tx');
          }
        } finally {
          ring.publish(); // what was placed is posted, so the books and the ring agree
        }
      });
    } else {
      w.kick(q, () => {
        try {
          for (let i = 0; i < k; i++) w.post(q, ring.addChain([{ len: bufLen, write: true, addr: buffer() }], { publish: false }), 'rx');
        } finally {
          ring.publish();
        }
      });
      for (let i = 0; i < k; i++) w.injectFrame(w.frame(60, w.device.mac, -1));
    }
    // Per batch, as after every op: the indices wrap within this op, and the driver reuses buffers.
    w.checkInterrupts(); // before the driver reads ISR
    w.checkGuards(); // before taking the used ring takes the grants back
    w.noteIsr();
    w.driver.readIsr();
    w.consumeUsed();
    keepPool();
    w.irqMark();
    const progress = l.usedSeen - before;
    w.bump(`cycle ${op.dir} frames`, progress);
    if (progress === 0) return;
    done += progress;
  }
}

function splitBytes(bytes: Uint8Array, n: number): BufferSpec[] {
  const out: BufferSpec[] = [];
  const step = Math.max(1, Math.ceil(bytes.length / n));
  for (let at = 0; at < bytes.length; at += step) {
    const part = bytes.subarray(at, Math.min(bytes.length, at + step));
    out.push({ len: part.length, data: part });
  }
  return out;
}
