// Helpers for the real-guest tests (test/guest/): the image (built or reused by the project's own
// builder, or a skip with the reason), a booted GuestVm per transport, a snoop that decodes every
// control command the guest's driver posts (VIRTIO 1.2 §5.1.6.5) straight from guest memory, and
// frames to inject.

import type { Context } from 'mocha';
import { GuestImageError, buildGuestImage } from '../../lib/cli/guest-image.js';
import type { GuestImage, GuestKernel } from '../../lib/cli/guest-image.js';
import { GuestVm } from '../../lib/cli/guest-vm.js';
import type { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import type { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import { skipBecause } from './skip.js';

const imageResults = new Map<GuestKernel, { image: GuestImage } | { reason: string }>();

/**
 * The guest image (with bookworm's 6.1 kernel, or `kernel` '6.5': bookworm-backports'), built on
 * first use; skips the suite (printing why) when it cannot be had.
 */
export function guestImageOrSkip(ctx: Context, kernel: GuestKernel = '6.1'): GuestImage {
  let imageResult = imageResults.get(kernel);
  if (imageResult === undefined) {
    try {
      imageResult = { image: buildGuestImage({ kernel, log: (l) => console.log(`      ${l}`) }) };
    } catch (e) {
      if (!(e instanceof GuestImageError)) throw e;
      imageResult = { reason: `${e.code}: ${e.message}` };
    }
    imageResults.set(kernel, imageResult);
  }
  if ('reason' in imageResult) {
    skipBecause(ctx, `real-guest tests: the guest image cannot be built (${imageResult.reason})`);
  }
  return imageResult.image;
}

/** One decoded control command: class, command, and the command-specific data. */
export interface CtrlCommand {
  cls: number;
  cmd: number;
  data: Uint8Array;
}

export const CTRL = {
  RX: 0,
  RX_PROMISC: 0,
  RX_ALLMULTI: 1,
  MAC: 1,
  MAC_TABLE_SET: 0,
  MAC_ADDR_SET: 1,
  VLAN: 2,
  VLAN_ADD: 0,
  VLAN_DEL: 1,
} as const;

const VIRTQ_DESC_F_NEXT = 1;
const VIRTQ_DESC_F_WRITE = 2;
const VIRTQ_DESC_F_INDIRECT = 4;
const DESC_SIZE = 16;
/** VIRTIO_F_RING_PACKED: the control queue is a packed ring (§2.8). */
const RING_PACKED_BIT = 34;

/**
 * Records every control command the guest makes available, decoded from the rings in guest memory
 * at the moment it notifies the control queue (before the device processes it). Observation only:
 * it reads, never writes, and then lets the device's own notify run.
 */
export class CtrlSnoop {
  readonly commands: CtrlCommand[] = [];
  private seen = 0;

  constructor(private readonly device: VirtioNetDevice, private readonly ctrlIndex = 2) {
    const original = device.notify.bind(device);
    device.notify = (index: number): void => {
      if (index === this.ctrlIndex) this.capture();
      original(index);
    };
  }

  /** Commands since the last call, and forgets them. */
  take(): CtrlCommand[] {
    return this.commands.splice(0);
  }

  private capture(): void {
    const q = this.device.queueConfig(this.ctrlIndex);
    if (q === undefined) return;
    if (this.device.hasFeature(RING_PACKED_BIT)) {
      this.capturePacked(q.descTable, q.size);
      return;
    }
    const mem = this.device.memory;
    const availIdx = mem.readU16(q.availRing + 2);
    while (this.seen !== availIdx) {
      const head = mem.readU16(q.availRing + 4 + 2 * (this.seen % q.size));
      this.seen = (this.seen + 1) & 0xffff;
      const bytes = this.readable(q.descTable, q.size, head);
      if (bytes.length >= 2) this.commands.push({ cls: bytes[0]!, cmd: bytes[1]!, data: bytes.slice(2) });
    }
  }

  /** Packed ring (VIRTIO 1.2 §2.8): every list made available since the last look, read with the
   *  snoop's own position and wrap counter (reset when the ring's address changes). */
  private capturePacked(ring: number, size: number): void {
    if (this.packedRing !== ring) {
      this.packedRing = ring;
      this.packedOffset = 0;
      this.packedWrap = 1;
    }
    const mem = this.device.memory;
    for (let guard = 0; guard < size; guard++) {
      const d = ring + DESC_SIZE * this.packedOffset;
      const flags = mem.readU16(d + 14);
      const avail = (flags >> 7) & 1;
      const used = (flags >> 15) & 1;
      if (avail !== this.packedWrap || used === this.packedWrap) return;
      const parts: Uint8Array[] = [];
      for (let n = 0; n < size; n++) {
        const e = ring + DESC_SIZE * this.packedOffset;
        const f = mem.readU16(e + 14);
        const addr = Number(mem.readU64(e));
        const len = mem.readU32(e + 8);
        if ((f & VIRTQ_DESC_F_INDIRECT) !== 0) {
          for (let i = 0; i < len / DESC_SIZE; i++) {
            const t = addr + DESC_SIZE * i;
            if ((mem.readU16(t + 14) & VIRTQ_DESC_F_WRITE) === 0) parts.push(this.bytes(Number(mem.readU64(t)), mem.readU32(t + 8)));
          }
        } else if ((f & VIRTQ_DESC_F_WRITE) === 0) {
          parts.push(this.bytes(addr, len));
        }
        this.packedOffset++;
        if (this.packedOffset === size) {
          this.packedOffset = 0;
          this.packedWrap ^= 1;
        }
        if ((f & VIRTQ_DESC_F_NEXT) === 0) break;
      }
      const bytes = Uint8Array.from(parts.flatMap((p) => [...p]));
      if (bytes.length >= 2) this.commands.push({ cls: bytes[0]!, cmd: bytes[1]!, data: bytes.slice(2) });
    }
  }
  private packedRing = -1;
  private packedOffset = 0;
  private packedWrap = 1;

  private bytes(addr: number, len: number): Uint8Array {
    const b = new Uint8Array(len);
    this.device.memory.read(addr, b);
    return b;
  }

  /** Concatenates the device-readable buffers of the chain at `head` (following one indirect table). */
  private readable(table: number, size: number, head: number): Uint8Array {
    const mem = this.device.memory;
    const parts: Uint8Array[] = [];
    let index = head;
    for (let n = 0; n < size; n++) {
      const d = table + DESC_SIZE * index;
      const addr = Number(mem.readU64(d));
      const len = mem.readU32(d + 8);
      const flags = mem.readU16(d + 12);
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) return this.readable(addr, len / DESC_SIZE, 0);
      if ((flags & VIRTQ_DESC_F_WRITE) === 0) {
        const b = new Uint8Array(len);
        mem.read(addr, b);
        parts.push(b);
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      index = mem.readU16(d + 14);
    }
    return Uint8Array.from(parts.flatMap((p) => [...p]));
  }
}

/** Decodes a MAC TABLE_SET payload (§5.1.6.5.2: two tables, each a le32 count then 6-byte entries). */
export function decodeMacTable(data: Uint8Array): { unicast: string[]; multicast: string[] } {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const read = (at: number): { list: string[]; next: number } => {
    const n = dv.getUint32(at, true);
    const list: string[] = [];
    for (let i = 0; i < n; i++) list.push(macText(data.subarray(at + 4 + 6 * i, at + 10 + 6 * i)));
    return { list, next: at + 4 + 6 * n };
  };
  const uc = read(0);
  const mc = read(uc.next);
  return { unicast: uc.list, multicast: mc.list };
}

export function macText(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function macBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}

/** An Ethernet frame of 60 bytes (plus 4 with a VLAN tag) with a local experimental ethertype. */
export function probeFrame(dst: string, options: { vlan?: number; src?: string } = {}): Uint8Array {
  const tagged = options.vlan !== undefined;
  const f = new Uint8Array(tagged ? 64 : 60);
  f.set(macBytes(dst), 0);
  f.set(macBytes(options.src ?? '52:55:0a:00:02:99'), 6);
  let at = 12;
  if (tagged) {
    f[12] = 0x81;
    f[13] = 0x00;
    f[14] = (options.vlan! >> 8) & 0x0f;
    f[15] = options.vlan! & 0xff;
    at = 16;
  }
  f[at] = 0x88; // 0x88b5: IEEE 802 local experimental ethertype, which no guest stack consumes
  f[at + 1] = 0xb5;
  return f;
}

/** A booted guest on a MemoryNetdev with its control-command snoop. */
export interface BootedGuest {
  vm: GuestVm;
  snoop: CtrlSnoop;
  netdev: MemoryNetdev;
  /** rx-filter-changed events seen so far. */
  events: () => number;
}

export async function bootGuest(image: GuestImage, legacy: boolean): Promise<BootedGuest> {
  const vm = await GuestVm.boot({ image, legacy });
  let events = 0;
  vm.device.on('rx-filter-changed', () => events++);
  return { vm, snoop: new CtrlSnoop(vm.device), netdev: vm.netdev as MemoryNetdev, events: () => events };
}

/** The guest's eth0 rx_packets counter. */
export async function rxPackets(vm: GuestVm): Promise<number> {
  const r = await vm.run('cat /sys/class/net/eth0/statistics/rx_packets');
  return Number(r.output.trim());
}

/**
 * Waits until the guest's rx_packets reaches `atLeast` (the guest handles the interrupt on its own
 * time; each probe is a shell command, bounded), then returns the value.
 */
export async function rxPacketsReaching(vm: GuestVm, atLeast: number, attempts = 50): Promise<number> {
  let n = await rxPackets(vm);
  for (let i = 0; i < attempts && n < atLeast; i++) n = await rxPackets(vm);
  return n;
}
