// Driver-side builders for control-queue payloads (VIRTIO 1.2 §5.1.6.5), laid out the way a guest
// driver lays them out, and a small harness around parse → apply → change latch.

import { ChangeLatch } from '../../../devices/virtio-net/change-latch.js';
import { CtrlClass, CtrlMac, NetFeature, VirtioFeature, featureMask } from '../../../devices/virtio-net/constants.js';
import { handleCtrl, type CtrlContext, type CtrlOutcome, type CtrlState } from '../../../devices/virtio-net/ctrl-apply.js';
import type { CtrlViolation } from '../../../devices/virtio-net/ctrl-command.js';
import { parseMac } from '../../../devices/virtio-net/mac.js';
import { RxFilterState } from '../../../devices/virtio-net/rx-filter.js';

export const DEVICE_MAC = '52:54:00:12:34:56';

/** Every control feature a Linux guest negotiates with QEMU's default virtio-net-pci. */
export const CTRL_FEATURES = featureMask(
  VirtioFeature.VERSION_1,
  NetFeature.MAC,
  NetFeature.STATUS,
  NetFeature.CTRL_VQ,
  NetFeature.CTRL_RX,
  NetFeature.CTRL_VLAN,
  NetFeature.CTRL_RX_EXTRA,
  NetFeature.GUEST_ANNOUNCE,
  NetFeature.MQ,
  NetFeature.CTRL_MAC_ADDR,
  NetFeature.CTRL_GUEST_OFFLOADS,
  NetFeature.GUEST_CSUM,
  NetFeature.GUEST_TSO4,
);

export function bytes(...parts: (number | readonly number[] | Uint8Array)[]): Uint8Array {
  const flat: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') flat.push(p);
    else flat.push(...p);
  }
  return Uint8Array.from(flat);
}

export function le16(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff];
}

export function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

export function le64(n: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((n >> (8n * i)) & 0xffn));
  return out;
}

export function mac(text: string): number[] {
  return [...parseMac(text)];
}

/** class, command, then the payload. */
export function ctrl(ctrlClass: number, command: number, ...payload: (number | readonly number[] | Uint8Array)[]): Uint8Array {
  return bytes(ctrlClass, command, ...payload);
}

/** MAC TABLE_SET with the given lists (§5.1.6.5.2 layout). */
export function macTableSet(unicast: readonly string[], multicast: readonly string[]): Uint8Array {
  return ctrl(
    CtrlClass.MAC,
    CtrlMac.TABLE_SET,
    le32(unicast.length),
    ...unicast.map(mac),
    le32(multicast.length),
    ...multicast.map(mac),
  );
}

/** `count` distinct addresses of one kind: unicast 02:00:00:00:hi:lo, multicast 01:00:5e:00:hi:lo. */
export function macs(count: number, kind: 'unicast' | 'multicast', base = 0): string[] {
  const out: string[] = [];
  for (let i = base; i < base + count; i++) {
    const tail = `${hex((i >> 8) & 0xff)}:${hex(i & 0xff)}`;
    out.push(kind === 'unicast' ? `02:00:00:00:${tail}` : `01:00:5e:00:${tail}`);
  }
  return out;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export interface CtrlHarness {
  readonly ctx: CtrlContext;
  readonly state: CtrlState;
  readonly latch: ChangeLatch;
  /** Events fired so far (each successful rx-filter command while armed). */
  readonly events: number;
  run(payload: Uint8Array): CtrlOutcome;
  runRaw(payload: Uint8Array): CtrlOutcome | CtrlViolation;
}

export function harness(options: { features?: bigint; strict?: boolean; maxQueuePairs?: number } = {}): CtrlHarness {
  const features = options.features ?? CTRL_FEATURES;
  const ctx: CtrlContext = { features, strict: options.strict ?? false, maxQueuePairs: options.maxQueuePairs ?? 4 };
  const rxFilter = new RxFilterState(parseMac(DEVICE_MAC));
  rxFilter.setCtrlVlanNegotiated((features & featureMask(NetFeature.CTRL_VLAN)) !== 0n);
  const state: CtrlState = { rxFilter, announcePending: false, queuePairs: 1, guestOffloads: 0n };
  const latch = new ChangeLatch();
  let events = 0;
  const runRaw = (payload: Uint8Array): CtrlOutcome | CtrlViolation => {
    const out = handleCtrl(payload, ctx, state);
    if (out.kind !== 'violation' && out.rxFilterChanged && latch.trigger()) events++;
    return out;
  };
  return {
    ctx,
    state,
    latch,
    get events() {
      return events;
    },
    runRaw,
    run(payload: Uint8Array): CtrlOutcome {
      const out = runRaw(payload);
      if (out.kind === 'violation') throw new Error(`unexpected tier-1 violation ${out.code}`);
      return out;
    },
  };
}
