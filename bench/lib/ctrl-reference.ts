// The baseline of the `ctrl` figure (VIRTIO 1.2 §5.1.6.5 control virtqueue, §2.7 split ring): the
// same ring and memory traffic as a control command — the driver offers one 3-descriptor chain
// (class+command, data, ack) and reads used.idx and the ack; a "device" reads the avail entry and
// the three descriptors, copies the command bytes, writes the ack byte and the used element — with
// plain DataView accesses and no validation, parsing, state or transport. Linux's rx-mode burst at
// link up (PROMISC 0, ALLMULTI 0, MAC TABLE_SET 0 + 2), as bench/ctrl.bench.ts sends it.

import { GuestMemory } from '../../virtqueue/guest-memory.js';
import { GuestRing } from '../../lib/driver/guest-ring.js';
import { macTable } from '../../test/support/net-rig.js';
import { CtrlClass, CtrlMac, CtrlRx } from '../../devices/virtio-net/constants.js';
import type { Work } from './timing.js';

const RING = 256;

/** Commands of Linux's burst, as [class, command, payload]. */
export function linuxRxModeBurst(): [number, number, Uint8Array][] {
  return [
    [CtrlClass.RX, CtrlRx.PROMISC, Uint8Array.of(0)],
    [CtrlClass.RX, CtrlRx.ALLMULTI, Uint8Array.of(0)],
    [CtrlClass.MAC, CtrlMac.TABLE_SET, macTable([], ['01:00:5e:00:00:01', '33:33:00:00:00:01'])],
  ];
}

/** A Work doing n commands' worth of ring traffic; returns commands "acked". */
export function ctrlReference(): Work {
  const memory = new GuestMemory(1 << 20);
  const ring = new GuestRing(memory, { size: RING });
  const commands = linuxRxModeBurst();
  const heads: number[] = [];
  for (let i = 0; i < Math.floor(RING / 3); i++) {
    const [cls, cmd, payload] = commands[i % commands.length]!;
    heads.push(ring.addChain([{ len: 2, data: [cls, cmd] }, { len: payload.length, data: payload }, { len: 1, write: true }], { publish: false }));
  }
  const all = memory.view(0, 1 << 20)!;
  const m = new DataView(all.buffer, all.byteOffset, all.byteLength);
  const headList = Uint16Array.from(heads);
  const scratch = new Uint8Array(64 * 6 + 8);
  const mask = RING - 1;
  const desc = ring.descTable;
  const avail = ring.availRing;
  const used = ring.usedRing;
  let availIdx = 0;
  let lastAvail = 0;
  let usedIdx = 0;
  let k = 0;
  let sink = 0;
  return (n: number): number => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      // Driver: offer one chain.
      m.setUint16(avail + 4 + 2 * (availIdx & mask), headList[k]!, true);
      availIdx = (availIdx + 1) & 0xffff;
      m.setUint16(avail + 2, availIdx, true);
      // "Device": walk the chain, read the command, ack it.
      while (lastAvail !== m.getUint16(avail + 2, true)) {
        const head = m.getUint16(avail + 4 + 2 * (lastAvail & mask), true);
        let d = head;
        let ackAt = 0;
        for (let part = 0; part < 3; part++) {
          const o = desc + 16 * d;
          const addr = m.getUint32(o, true);
          const len = m.getUint32(o + 8, true);
          const next = m.getUint16(o + 14, true);
          if (part === 0) sink += m.getUint8(addr) + m.getUint8(addr + 1);
          else if (part === 1) for (let b = 0; b < len && b < scratch.length; b++) scratch[b] = m.getUint8(addr + b);
          else ackAt = addr;
          d = next;
        }
        m.setUint8(ackAt, 0);
        const uo = used + 4 + 8 * (usedIdx & mask);
        m.setUint32(uo, head, true);
        m.setUint32(uo + 4, 1, true);
        usedIdx = (usedIdx + 1) & 0xffff;
        m.setUint16(used + 2, usedIdx, true);
        lastAvail = (lastAvail + 1) & 0xffff;
        if (m.getUint8(ackAt) === 0) ok++;
      }
      k = k + 1 === headList.length ? 0 : k + 1;
    }
    if (sink < 0) throw new Error('unreachable');
    return ok;
  };
}
