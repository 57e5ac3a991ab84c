// Notification coalescing (VIRTIO 1.3 §5.1.6.5.9; class VIRTIO_NET_CTRL_NOTF_COAL): per data queue
// `max_packets` and `max_usecs`, and the used-buffer notifications held back until either bound is
// reached.
//
// Operation (§5.1.6.5.9.1): with both parameters non-zero, a queue's window opens at its first
// packet (a used buffer published: a frame delivered, a transmit chain completed); the window
// closes when `max_packets` packets were published in it or `max_usecs` elapsed, whichever comes
// first, and the next packet opens the next one. With either parameter 0, every publish is a
// notification point (the device's behaviour without coalescing).
//
// Suppression (§5.1.6.5.9.6: "SHOULD NOT send used buffer notifications … if the notifications are
// suppressed, even if the notification conditions are met"): the ring decides first. Each publish
// tells the coalescer whether the ring wanted a notification (split: NO_INTERRUPT clear, or
// EVENT_IDX's `used_event` crossed by this publish; packed: the driver's event suppression). A
// wanted notification inside a window is held; at the window's end it is sent only when one was
// held, so a window whose publishes the driver all suppressed ends silently. EVENT_IDX reports the
// crossing of `used_event` once, on the publish that crosses it: that is why the coalescer holds
// the answer instead of asking the ring again at the window's end (the ring would say no).
//
// Parameter changes (§5.1.6.5.9.4): after TX_SET / RX_SET / VQ_SET the open windows are checked
// against the new values at once: packets already at `max_packets`, `max_usecs` already elapsed, or
// coalescing switched off close the window (and send a held notification); otherwise its timer is
// re-armed for the time left. Re-enabling a queue (its reset, §2.6.1) gives it the last TX_SET /
// RX_SET values, or 0 (§5.1.6.5.9.6); a device reset sets everything to 0.
//
// Timers: `Timers` (lib/base/schedule.ts), millisecond resolution: `max_usecs` is rounded up to
// whole milliseconds for the timer (the spec lets the device notify more or less often than asked,
// §5.1.6.5.9.6 "best-effort"; rounding up only ever coalesces a little longer). One timer per
// queue with an open window; none otherwise.
//
// Commands (§5.1.6.5.9): TX_SET / RX_SET (struct virtio_net_ctrl_coal: le32 max_packets, le32
// max_usecs) need NOTF_COAL; VQ_SET / VQ_GET (struct virtio_net_ctrl_coal_vq: le16 vq_index, le16
// reserved, then the coal struct for VQ_SET) need VQ_NOTF_COAL; VQ_GET answers the coal struct in
// the command-specific result, after the ack. A `vq_index` that is not an enabled transmit or
// receive queue is VIRTIO_NET_ERR (device MUST); `reserved` is ignored (device MUST). QEMU 7.2 has
// no coalescing, so nothing here is tolerated: every mistake is refused in both modes, except
// trailing bytes, tolerated like every other class's.

import { le16, le32 } from '../../lib/base/endian.js';
import type { Timers } from '../../lib/base/schedule.js';
import { CtrlAck, CtrlClass, CtrlNotfCoal, NetFeature, featureMask } from './constants.js';
import type { CtrlDiagnostic, CtrlDiagnosticCode } from './ctrl-command.js';
import type { CtrlContext, CtrlOutcome } from './ctrl-apply.js';

/** Sections the coalescing diagnostics cite (VIRTIO 1.3 numbering). */
export const CoalSection = {
  COALESCING: '5.1.6.5.9',
  DRIVER: '5.1.6.5.9.5',
  DEVICE: '5.1.6.5.9.6',
} as const;

/** Bytes of struct virtio_net_ctrl_coal and of struct virtio_net_ctrl_coal_vq's head. */
const COAL_LENGTH = 8;
const COAL_VQ_HEAD = 4;

const NOTF_COAL_MASK = featureMask(NetFeature.NOTF_COAL);
const VQ_NOTF_COAL_MASK = featureMask(NetFeature.VQ_NOTF_COAL);

/** One queue's parameters as the driver set them. */
export interface CoalParams {
  readonly maxPackets: number;
  readonly maxUsecs: number;
}

/** What the coalescer needs from the device. */
export interface CoalHost {
  /** Sends the used-buffer notification of data queue `index` (the ring allowed it earlier). */
  notify(index: number): void;
  /** Whether `index` is a transmit or receive queue the driver enabled (running). */
  isEnabledDataQueue(index: number): boolean;
  readonly timers: Timers;
}

/** The coalescing state saved with the device (net-state.ts `COAL`). */
export interface CoalState {
  readonly tx: CoalParams;
  readonly rx: CoalParams;
  /** Per data queue (receiveq1, transmitq1, …). */
  readonly queues: readonly CoalParams[];
}

const ZERO: CoalParams = Object.freeze({ maxPackets: 0, maxUsecs: 0 });

export class Coalescer {
  private readonly maxPackets: Uint32Array;
  private readonly maxUsecs: Uint32Array;
  /** Packets published in the open window (0: no window). */
  private readonly count: Uint32Array;
  /** When the open window started (timers.now(), ms). */
  private readonly started: Float64Array;
  /** A notification the ring wanted is held until the window closes. */
  private readonly held: Uint8Array;
  private readonly timer: unknown[];
  /** Last TX_SET / RX_SET values: what a re-enabled queue gets (§5.1.6.5.9.6). */
  private txDefault: CoalParams = ZERO;
  private rxDefault: CoalParams = ZERO;
  /** A parameter change waits for `recheck()` (run after the command's ack is decided). */
  private dirty = false;
  /** Timer callbacks by queue, made once. */
  private readonly expire: (() => void)[];

  constructor(
    readonly dataQueues: number,
    private readonly host: CoalHost,
  ) {
    this.maxPackets = new Uint32Array(dataQueues);
    this.maxUsecs = new Uint32Array(dataQueues);
    this.count = new Uint32Array(dataQueues);
    this.started = new Float64Array(dataQueues);
    this.held = new Uint8Array(dataQueues);
    this.timer = new Array<unknown>(dataQueues).fill(null);
    this.expire = Array.from({ length: dataQueues }, (_, i) => () => this.timerFired(i));
  }

  /** The parameters in force for data queue `index`. */
  params(index: number): CoalParams {
    return { maxPackets: this.maxPackets[index]!, maxUsecs: this.maxUsecs[index]! };
  }

  /** Whether `index` is a transmit or receive queue the driver enabled. */
  isEnabled(index: number): boolean {
    return index < this.dataQueues && this.host.isEnabledDataQueue(index);
  }

  /** Whether queue `index` holds a notification back now. */
  holding(index: number): boolean {
    return this.held[index] === 1;
  }

  /**
   * Used entries of data queue `index` were published: `packets` of them, `wanted` when the ring
   * asked for a notification. Sends it now, or holds it until the window closes.
   */
  published(index: number, packets: number, wanted: boolean): void {
    if (index >= this.dataQueues) {
      if (wanted) this.host.notify(index);
      return;
    }
    const maxPackets = this.maxPackets[index]!;
    const maxUsecs = this.maxUsecs[index]!;
    if (maxPackets === 0 || maxUsecs === 0) {
      if (wanted) this.host.notify(index);
      return;
    }
    if (packets <= 0) {
      // Nothing new (a publish with no entries): a wanted notification joins the window if one is open.
      if (!wanted) return;
      if (this.count[index] === 0) {
        this.host.notify(index);
        return;
      }
      this.held[index] = 1;
      return;
    }
    if (wanted) this.held[index] = 1;
    const count = this.count[index]! + packets;
    if (count >= maxPackets) {
      this.close(index);
      return;
    }
    if (this.count[index] === 0) {
      this.started[index] = this.host.timers.now();
      this.arm(index, usecsToMs(maxUsecs));
    }
    this.count[index] = count;
  }

  // ---- control commands: parameters (applied by ctrl; re-checked after the ack, see recheck) ----

  setTx(p: CoalParams): void {
    this.txDefault = p;
    for (let i = 1; i < this.dataQueues; i += 2) this.set(i, p);
  }

  setRx(p: CoalParams): void {
    this.rxDefault = p;
    for (let i = 0; i < this.dataQueues; i += 2) this.set(i, p);
  }

  setQueue(index: number, p: CoalParams): void {
    this.set(index, p);
  }

  private set(index: number, p: CoalParams): void {
    this.maxPackets[index] = p.maxPackets;
    this.maxUsecs[index] = p.maxUsecs;
    this.dirty = true;
  }

  /**
   * After a parameter change (§5.1.6.5.9.4): every open window checked against its queue's
   * parameters now; closes (and notifies) what is due, re-arms the rest for the time left.
   */
  recheck(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const now = this.host.timers.now();
    for (let i = 0; i < this.dataQueues; i++) {
      if (this.count[i] === 0) continue;
      const maxPackets = this.maxPackets[i]!;
      const maxUsecs = this.maxUsecs[i]!;
      const left = this.started[i]! + maxUsecs / 1000 - now;
      if (maxPackets === 0 || maxUsecs === 0 || this.count[i]! >= maxPackets || left <= 0) {
        this.close(i);
      } else {
        this.arm(i, Math.ceil(left));
      }
    }
  }

  // ---- queue and device life cycle ----

  /**
   * Queue `index` stopped (its reset, or the device's): the window goes (the notification held
   * with it: the driver re-reads the ring when it re-enables), and a re-enabled queue starts from
   * the last TX_SET / RX_SET values (§5.1.6.5.9.6).
   */
  queueStopped(index: number): void {
    if (index >= this.dataQueues) return;
    this.drop(index);
    const p = (index & 1) === 0 ? this.rxDefault : this.txDefault;
    this.maxPackets[index] = p.maxPackets;
    this.maxUsecs[index] = p.maxUsecs;
  }

  /** Every window dropped (all queues stopped), parameters kept. */
  stop(): void {
    for (let i = 0; i < this.dataQueues; i++) this.drop(i);
  }

  /** Device reset: everything to 0 (§5.1.6.5.9.6 "Upon reset … MUST initialize all coalescing parameters to 0"). */
  reset(): void {
    this.stop();
    this.maxPackets.fill(0);
    this.maxUsecs.fill(0);
    this.txDefault = ZERO;
    this.rxDefault = ZERO;
    this.dirty = false;
  }

  /** For the device state: the parameters (windows are not state: a restore starts none). */
  exportState(): CoalState {
    const queues: CoalParams[] = [];
    for (let i = 0; i < this.dataQueues; i++) queues.push(this.params(i));
    return { tx: this.txDefault, rx: this.rxDefault, queues };
  }

  /** Takes `exportState()`'s value (checked by the caller: one entry per data queue). */
  importState(s: CoalState): void {
    this.stop();
    this.txDefault = s.tx;
    this.rxDefault = s.rx;
    for (let i = 0; i < this.dataQueues; i++) {
      const p = s.queues[i] ?? ZERO;
      this.maxPackets[i] = p.maxPackets;
      this.maxUsecs[i] = p.maxUsecs;
    }
    this.dirty = false;
  }

  // ---- windows ----

  /** Closes the window of `index`: the held notification goes out. */
  private close(index: number): void {
    const held = this.held[index] === 1;
    this.drop(index);
    if (held) this.host.notify(index);
  }

  private drop(index: number): void {
    const t = this.timer[index];
    if (t !== null) {
      this.host.timers.clear(t);
      this.timer[index] = null;
    }
    this.count[index] = 0;
    this.held[index] = 0;
  }

  private arm(index: number, ms: number): void {
    const t = this.timer[index];
    if (t !== null) this.host.timers.clear(t);
    this.timer[index] = this.host.timers.set(this.expire[index]!, ms);
  }

  private timerFired(index: number): void {
    this.timer[index] = null;
    if (this.count[index] === 0) return;
    // A queue the driver disabled meanwhile was dropped already (queueStopped); check anyway.
    if (!this.host.isEnabledDataQueue(index)) {
      this.drop(index);
      return;
    }
    this.close(index);
  }
}

/** `max_usecs` as a timer delay: whole milliseconds, rounded up (see the file comment). */
export function usecsToMs(usecs: number): number {
  return Math.ceil(usecs / 1000);
}

// ---- the class NOTF_COAL commands ----

/** The diagnostic codes of class NOTF_COAL. */
export type CoalDiagnosticCode = 'ctrl.coal-vq-not-data-queue' | 'ctrl.result-too-short';

function diag(code: CtrlDiagnosticCode, section: string, message: string, command: number, tolerated = false): CtrlDiagnostic {
  return { code, section, message, ctrlClass: CtrlClass.NOTF_COAL, command, tolerated };
}

function outcome(ack: number, diagnostics: readonly CtrlDiagnostic[], effect: 'none' | 'coalescing', result?: Uint8Array): CtrlOutcome {
  const o = { kind: 'ack', ack: ack === CtrlAck.OK ? CtrlAck.OK : CtrlAck.ERR, rxFilterChanged: false, effect, diagnostics } as const;
  return result === undefined ? o : { ...o, result };
}

const NONE: readonly CtrlDiagnostic[] = Object.freeze([]);

/**
 * One class NOTF_COAL command (`bytes`: class, command, data) against `coal`; `resultRoom` is the
 * chain's writable bytes after the ack. Changes parameters only when acking OK; the caller runs
 * `coal.recheck()` once the command completed (effect 'coalescing').
 */
export function handleCoalCommand(bytes: Uint8Array, ctx: CtrlContext, coal: Coalescer, resultRoom: number): CtrlOutcome {
  const command = bytes[1]!;
  const payload = bytes.length - 2;
  const isVq = command === CtrlNotfCoal.VQ_SET || command === CtrlNotfCoal.VQ_GET;
  if (command > CtrlNotfCoal.VQ_GET) {
    return outcome(CtrlAck.ERR, [diag('ctrl.unknown-command', CoalSection.COALESCING, `unknown command ${command} in control class ${CtrlClass.NOTF_COAL} (NOTF_COAL)`, command)], 'none');
  }
  const needs = isVq ? VQ_NOTF_COAL_MASK : NOTF_COAL_MASK;
  if ((ctx.features & needs) === 0n) {
    const name = isVq ? 'VQ_NOTF_COAL' : 'NOTF_COAL';
    return outcome(CtrlAck.ERR, [diag('ctrl.feature-not-negotiated', CoalSection.DRIVER, `NOTF_COAL command ${command} needs ${name}, which was not negotiated`, command)], 'none');
  }
  const need = command === CtrlNotfCoal.VQ_SET ? COAL_VQ_HEAD + COAL_LENGTH : command === CtrlNotfCoal.VQ_GET ? COAL_VQ_HEAD : COAL_LENGTH;
  if (payload < need) {
    return outcome(CtrlAck.ERR, [diag('ctrl.short-payload', CoalSection.COALESCING, `class ${CtrlClass.NOTF_COAL} command ${command} needs ${need} data bytes, got ${payload}`, command)], 'none');
  }
  let notes = NONE;
  if (payload > need) {
    notes = [diag('ctrl.trailing-bytes', CoalSection.COALESCING, `class ${CtrlClass.NOTF_COAL} command ${command} carries ${payload - need} bytes past its data`, command, true)];
    if (ctx.strict) return outcome(CtrlAck.ERR, notes, 'none');
  }
  if (!isVq) {
    const p: CoalParams = { maxPackets: le32(bytes, 2), maxUsecs: le32(bytes, 6) };
    if (command === CtrlNotfCoal.TX_SET) coal.setTx(p);
    else coal.setRx(p);
    return outcome(CtrlAck.OK, notes, 'coalescing');
  }
  const vq = le16(bytes, 2); // bytes 4..5: reserved, ignored (§5.1.6.5.9.6 MUST)
  if (!coal.isEnabled(vq)) {
    const d = diag('ctrl.coal-vq-not-data-queue', CoalSection.DRIVER, `NOTF_COAL command ${command}: vq_index ${vq} is not an enabled transmit or receive virtqueue`, command);
    return outcome(CtrlAck.ERR, notes.length === 0 ? [d] : [...notes, d], 'none');
  }
  if (command === CtrlNotfCoal.VQ_SET) {
    coal.setQueue(vq, { maxPackets: le32(bytes, 6), maxUsecs: le32(bytes, 10) });
    return outcome(CtrlAck.OK, notes, 'coalescing');
  }
  if (resultRoom < COAL_LENGTH) {
    const d = diag('ctrl.result-too-short', CoalSection.COALESCING, `VQ_GET needs ${COAL_LENGTH} writable bytes after the ack for its result, the chain has ${Math.max(0, resultRoom)}`, command);
    return outcome(CtrlAck.ERR, notes.length === 0 ? [d] : [...notes, d], 'none');
  }
  const p = coal.params(vq);
  const result = new Uint8Array(COAL_LENGTH);
  const dv = new DataView(result.buffer);
  dv.setUint32(0, p.maxPackets, true);
  dv.setUint32(4, p.maxUsecs, true);
  return outcome(CtrlAck.OK, notes, 'none', result);
}
