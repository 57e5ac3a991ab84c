// announce-self (QEMU net/announce.c qmp_announce_self, AnnounceParameters): each NIC announces
// itself `rounds` times — the first at once, the next after `initial` ms, each later gap `step` ms
// longer, capped at `max` ms. A NIC whose driver negotiated GUEST_ANNOUNCE is asked to
// (`announce()`: VIRTIO_NET_S_ANNOUNCE, VIRTIO 1.2 §5.1.6.5.4); otherwise the host side sends a
// gratuitous ARP from the NIC's MAC through its netdev (devices/virtio-net/announce.ts; QEMU sends
// RARP frames, which do the same for switches). Timers are unref'd and end with the server.

import { gratuitousArp } from '../../devices/virtio-net/announce.js';
import { macFromText } from '../base/mac.js';
import { genericError } from './errors.js';
import type { QmpNic } from './nic.js';

export interface AnnounceArgs {
  initial?: number;
  max?: number;
  rounds?: number;
  step?: number;
  interfaces?: readonly string[];
}

/** QEMU's defaults (qapi/net.json AnnounceParameters, migration's announce-* defaults). */
const DEFAULTS = { initial: 50, max: 550, rounds: 5, step: 100 };
const MAX_ROUNDS = 1000;
const MAX_MS = 100_000;

interface NetdevLike {
  send(frame: Uint8Array, vnetHeader?: Uint8Array): unknown;
  vnetHeaderLength?: number;
}

/** One announcement of one NIC. */
export function announceOnce(nic: QmpNic): void {
  const asked = (nic as { announce?: () => boolean }).announce?.call(nic) === true;
  if (asked || !nic.linkUp) return;
  const netdev = (nic as { netdev?: NetdevLike }).netdev;
  const mac = macFromText((nic as { mac?: unknown }).mac); // not queryRxFilter(): that re-arms NIC_RX_FILTER_CHANGED
  if (netdev === undefined || typeof netdev.send !== 'function' || mac === undefined) return;
  const frame = gratuitousArp(mac);
  try {
    if (typeof netdev.vnetHeaderLength === 'number') netdev.send(frame, new Uint8Array(netdev.vnetHeaderLength));
    else netdev.send(frame);
  } catch {
    // Best effort, as QEMU's: a backend that cannot send now misses one round.
  }
}

/** Checks the arguments and starts the rounds; `timers` collects what close() must clear. */
export function announceSelf(args: AnnounceArgs, nics: ReadonlyMap<string, QmpNic>, timers: Set<NodeJS.Timeout>): void {
  const p = { ...DEFAULTS };
  for (const k of ['initial', 'max', 'rounds', 'step'] as const) {
    const v = args[k];
    if (v === undefined) continue;
    const limit = k === 'rounds' ? MAX_ROUNDS : MAX_MS;
    if (v < 0 || v > limit) throw genericError(`Parameter '${k}' expects a value from 0 to ${limit}`);
    p[k] = v;
  }
  const selected: QmpNic[] = [];
  for (const name of args.interfaces ?? [...nics.keys()]) {
    const nic = nics.get(name);
    if (nic !== undefined) selected.push(nic); // QEMU skips names that are not NICs
  }
  let delay = p.initial;
  const round = (left: number): void => {
    for (const nic of selected) announceOnce(nic);
    if (left <= 1) return;
    const t = setTimeout(() => {
      timers.delete(t);
      round(left - 1);
    }, delay);
    t.unref();
    timers.add(t);
    delay = Math.min(p.max, delay + p.step);
  };
  if (p.rounds > 0) round(p.rounds);
}
