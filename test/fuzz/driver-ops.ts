// The model driver's operations (VIRTIO 1.2 §3.1.1 initialisation, §4.1 / §4.2 registers, §2.7.13
// making buffers available, §2.7.5 descriptors incl. §2.7.5.3 indirect tables, §5.1.6.2 transmit,
// §5.1.6.3 receive buffers, §5.1.6.5 control commands): each FuzzOp (ops.ts) done to a FuzzWorld
// the way a driver — careful or not — would. A driver that cannot do one (ring full, heap
// exhausted, queue absent) skips it; world.ts runs the oracles after each.

import { VirtioMmioTransport } from '../../devices/virtio/mmio-transport.js';
import type { VirtioPciTransport } from '../../devices/virtio/pci-transport.js';
import { DriverRing } from '../support/driver-ring.js';
import type { BufferSpec, RawDescriptor } from '../support/driver-ring.js';
import { findVirtioCaps } from '../support/driver-transport.js';
import type { FuzzOp, RawDesc } from './ops.js';
import type { FuzzWorld } from './world.js';

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
  const ring = w.ring(0);
  if (ring === null || !w.room(0, op.count + (op.broken === true ? 1 : 0))) return;
  const indirect = op.indirect && (w.has('INDIRECT_DESC') || op.count === 7);
  w.kick(0, () => {
    try {
      for (let i = 0; i < op.count; i++) {
        const parts: BufferSpec[] = [];
        for (let k = 0; k < op.split; k++) parts.push({ len: Math.max(1, Math.floor(op.len / op.split)), write: true });
        w.post(0, ring.addChain(parts, { indirect, publish: false }), 'rx');
      }
      if (op.broken === true) w.post(0, ring.addRaw([{ len: 16, flags: 2 }], { head: ring.size + 1, publish: false }), 'raw');
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
  if (ring === null || (n <= ring.size && !w.room(q, n))) return;
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
