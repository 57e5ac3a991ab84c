// The control virtqueue's chain handling (VIRTIO 1.2 §5.1.6.5): read the readable bytes, parse
// and apply them (ctrl-command.ts, ctrl-apply.ts), write the ack, complete the chain. A command
// whose header and payload each lie in one descriptor and one memory region (Linux sends them so)
// is read where it lies for the classes ctrl-command.ts `parsesInPlace` names; any other is first
// gathered into the device's buffer. Both ways read each guest byte once and answer alike.
//
// A chain with fewer than 2 readable bytes or no writable byte is a contract violation (tier 1:
// there is no place for the answer). Everything else gets an in-band ack — a Linux guest
// busy-waits for it — and the queue goes on.
//
// Re-entry: a command's diagnostics and its completion (the backend's offloads, transmit queues
// served at once, the 'rx-filter-changed' event) run the embedder's code. After them the pass
// compares the core's epoch; when the control queue stopped meanwhile it returns without writing
// the ack or the used ring. A kick of the control queue from inside its own pass does not recurse:
// the pass pops until the ring is empty and takes the new chains itself, in order.

import type { Virtqueue } from '../../virtqueue/virtqueue.js';
import { CTRL_HEADER_LENGTH, CtrlAck } from './constants.js';
import type { DescriptorChain } from '../../virtqueue/descriptor-chain.js';
import { handleCtrl, handleCtrlInPlace } from './ctrl-apply.js';
import type { CtrlContext, CtrlOutcome, CtrlState } from './ctrl-apply.js';
import { parsesInPlace } from './ctrl-command.js';
import type { CtrlDiagnostic, CtrlViolation } from './ctrl-command.js';
import type { PathReport } from './net-diagnostics.js';

/**
 * Largest control payload the device gathers. A MAC table of 2 × 87,000 entries fits; no guest
 * needs more (the table holds 64), and larger chains are answered VIRTIO_NET_ERR without copying.
 */
export const CTRL_GATHER_MAX = 1 << 20;
/** Payload lengths whose gather view is cached: a full 64-entry MAC table is 2 + 8 + 64 × 6 = 394. */
const GATHER_VIEW_CACHE_MAX = 512;

export interface CtrlHost extends PathReport {
  /** What was negotiated (fixed between DRIVER_OK and reset). */
  context(): CtrlContext;
  readonly state: CtrlState;
  /** A command completed (before its ack is visible to the driver: used.idx is published after). */
  completed(ctrlClass: number, outcome: CtrlOutcome): void;
  /** A driver mistake in a command (it carries the section of its command class). */
  ctrlMistake(d: CtrlDiagnostic): void;
}

export class CtrlQueue {
  private gatherBuffer = new Uint8Array(512);
  /** The queue whose pass is on the stack (re-entry: see the file comment). */
  private inPass: Virtqueue | null = null;
  /** gatherBuffer.subarray(0, n) by n (control payloads come in a few sizes). */
  private readonly gatherViews: (Uint8Array | undefined)[] = [];

  constructor(private readonly host: CtrlHost) {}

  process(q: Virtqueue): void {
    const outer = this.inPass;
    if (outer === q) return; // re-entered from this queue's own pass, which takes the new chains
    this.inPass = q;
    let publish = false;
    try {
      publish = this.pass(q);
    } finally {
      this.inPass = outer;
    }
    if (publish) this.host.raiseUsed(q.index);
  }

  /** One pass over `q`; true when it published used entries (and the queue still runs). */
  private pass(q: Virtqueue): boolean {
    const host = this.host;
    const epoch = host.epoch();
    // Bounded work per call: at most one ring's worth (a driver cannot make more available at once).
    let done = 0;
    while (done < q.size) {
      const c = q.pop();
      if (c.kind === 'empty') {
        // Ask for the next notification (§2.7.10; with EVENT_IDX this moves avail_event past what was
        // popped, else Linux, which checks avail_event, would stop notifying) and look once more.
        if (q.enableNotification()) continue;
        break;
      }
      if (c.kind === 'violation') {
        host.violation({ ...c.error, queue: q.index });
        return false;
      }
      done++;
      const readable = c.readableLength;
      if (readable < CTRL_HEADER_LENGTH || c.writableLength < 1) {
        host.violation({
          code: readable < CTRL_HEADER_LENGTH ? 'ctrl.missing-header' : 'ctrl.missing-ack',
          section: '5.1.6.5',
          queue: q.index,
          head: c.headIndex,
          readable,
          writable: c.writableLength,
        });
        return false;
      }
      let ack: number = CtrlAck.ERR;
      let result: Uint8Array | undefined;
      if (readable > CTRL_GATHER_MAX) {
        host.mistake('ctrl.payload-too-large', `control command of ${readable} bytes is larger than the device gathers; answered VIRTIO_NET_ERR`, q.index);
        if (this.stopped(q, epoch)) return false;
      } else {
        const r = c.reader();
        let outcome: CtrlOutcome | CtrlViolation;
        let ctrlClass: number;
        // Linux's layout: the header in one descriptor, the payload in the next (or with it). When
        // each lies in one memory region and the class is parsed in place, no byte is copied: the
        // header is read once, the payload where it lies (ctrl-command.ts: each byte read once).
        if (r.span(CTRL_HEADER_LENGTH)) {
          const h = r.spanRegion!.bytes;
          const at = r.spanOffset;
          ctrlClass = h[at]!;
          const command = h[at + 1]!;
          const payload = readable - CTRL_HEADER_LENGTH;
          if (parsesInPlace(ctrlClass) && (payload === 0 || r.span(payload))) {
            const bytes = payload === 0 ? h : r.spanRegion!.bytes;
            const from = payload === 0 ? at : r.spanOffset;
            outcome = handleCtrlInPlace(ctrlClass, command, bytes, from, from + payload, host.context(), host.state);
          } else {
            // Copied after all: the class the pass reports is the copy's (the one parsed).
            r.rewind();
            outcome = this.gathered(c, readable);
            ctrlClass = this.gatherBuffer[0]!;
          }
        } else {
          outcome = this.gathered(c, readable);
          ctrlClass = this.gatherBuffer[0]!;
        }
        if (outcome.kind === 'violation') {
          // Unreachable: readable >= 2 was checked above; kept total for the type.
          host.violation({ code: outcome.code, section: '5.1.6.5', queue: q.index, head: c.headIndex, readable, writable: c.writableLength });
          return false;
        }
        const diagnostics = outcome.diagnostics;
        for (let i = 0; i < diagnostics.length; i++) host.ctrlMistake(diagnostics[i]!);
        if (this.stopped(q, epoch)) return false;
        host.completed(ctrlClass, outcome);
        if (this.stopped(q, epoch)) return false;
        ack = outcome.ack;
        result = outcome.result;
      }
      const w = c.writer();
      w.writeU8(ack);
      // The command-specific result follows the ack (§5.1.6.5), cut to the room the chain has.
      q.pushUsed(c, result === undefined ? 1 : 1 + w.write(result));
    }
    return q.publishUsed();
  }

  /** The copying way: the readable part gathered into the device's buffer, then parsed and applied. */
  private gathered(c: DescriptorChain, readable: number): CtrlOutcome | CtrlViolation {
    const bytes = this.gather(readable);
    c.reader().read(bytes);
    return handleCtrl(bytes, this.host.context(), this.host.state, c.writableLength - 1);
  }

  /** After a call-out: whether `q` stopped meanwhile. */
  private stopped(q: Virtqueue, epoch: number): boolean {
    return this.host.epoch() !== epoch && !this.host.isRunning(q);
  }

  /** A view of the gather buffer of exactly `length` bytes; views up to GATHER_VIEW_CACHE_MAX are cached. */
  private gather(length: number): Uint8Array {
    if (this.gatherBuffer.length < length) {
      let n = this.gatherBuffer.length;
      while (n < length) n *= 2;
      this.gatherBuffer = new Uint8Array(n);
      this.gatherViews.length = 0;
    }
    if (length > GATHER_VIEW_CACHE_MAX) return this.gatherBuffer.subarray(0, length);
    return this.gatherViews[length] ?? (this.gatherViews[length] = this.gatherBuffer.subarray(0, length));
  }
}
