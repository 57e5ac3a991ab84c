// The fuzzer's oracles catch what they claim to (VIRTIO 1.2 §2.7.4 the device writes only
// device-writable buffers, §2.7.8 each used element once): a simulated rogue device writes outside
// its grants, writes without reporting it, completes a head twice, or loops — and the oracle fires
// with its code. Without these, a green fuzz run would prove nothing.

import { expect } from 'chai';
import { GuardedMemory, WorkBudgetExceeded } from '../support/guarded-memory.js';
import { DriverRing } from '../support/driver-ring.js';
import { QueueLedger } from './ledger.js';
import { FuzzWorld, MEMORY_SIZE } from './world.js';
import { steps, stopCode, worldAfter } from './world-steps.js';
import { runCase, runWorld } from './oracle.js';
import type { FuzzOp, FuzzSetup, RawDesc } from './ops.js';
import { PackedDriverRing } from '../support/packed-driver-ring.js';

const SETUP: FuzzSetup = { transport: 'mmio', pairs: 1, disable: [], ringSize: 8 };


describe('fuzz: oracles', () => {
  it('device_write_outside_every_grant_is_caught', () => {
    const m = new GuardedMemory(0x10000);
    m.grant(0x1000, 16);
    m.device.writeU32(0x1000, 0xdeadbeef);
    expect(m.check()).to.equal(null);
    m.device.writeU8(0x2000, 7);
    expect(m.check()).to.deep.include({ code: 'guard.write-outside-grant', address: 0x2000, before: 0, after: 7, count: 1 });
  });

  it('device_write_through_a_view_without_reporting_it_is_caught', () => {
    const m = new GuardedMemory(0x10000);
    m.grant(0x3000, 64);
    const v = m.device.view(0x3000, 64)!;
    v[5] = 1;
    expect(m.check()).to.deep.include({ code: 'guard.write-unreported', address: 0x3005 });
    v[6] = 2;
    m.device.wrote(0x3000, 64);
    expect(m.check()).to.equal(null);
  });

  it('revoked_grant_no_longer_covers_a_write_and_driver_writes_are_never_flagged', () => {
    const m = new GuardedMemory(0x10000);
    m.grant(0x4000, 8);
    m.revoke(0x4000, 8);
    m.driver.write(0x5000, Uint8Array.of(1, 2, 3));
    expect(m.check()).to.equal(null);
    m.device.writeU16(0x4000, 0xffff);
    expect(m.check()).to.deep.include({ code: 'guard.write-outside-grant', address: 0x4000, count: 2 });
  });

  it('a_call_that_runs_past_its_work_budget_is_stopped', () => {
    const m = new GuardedMemory(0x1000, { budget: 1000 });
    m.beginCall();
    expect(() => {
      for (;;) m.device.readU8(0);
    }).to.throw(WorkBudgetExceeded);
    m.endCall();
    expect(m.overran).to.equal(true);
    expect(m.maxWork).to.equal(1001);
  });

  it('a_head_completed_twice_is_caught_by_the_ledger', () => {
    const m = new GuardedMemory(0x20000);
    const ring = new DriverRing(m.driver, { size: 8, base: 0x1000, heapEnd: 0x20000 });
    const ledger = new QueueLedger(m, ring, 0);
    const head = ring.addChain([{ len: 64, write: true }]);
    ledger.post(head, 'rx');
    // A rogue device: the same used element twice.
    for (let i = 0; i < 2; i++) {
      m.device.writeU32(ring.usedRing + 4 + 8 * i, head);
      m.device.writeU32(ring.usedRing + 8 + 8 * i, 10);
    }
    m.device.writeU16(ring.usedRing + 2, 2);
    const used = ledger.take();
    expect(ledger.complete(used[0]!)).to.equal(null);
    expect(ledger.complete(used[1]!)).to.include({ code: 'used.unknown-head' });
  });

  it('used_len_beyond_the_writable_buffers_is_caught', () => {
    const m = new GuardedMemory(0x20000);
    const ring = new DriverRing(m.driver, { size: 8, base: 0x1000, heapEnd: 0x20000 });
    const ledger = new QueueLedger(m, ring, 0);
    const head = ring.addChain([{ len: 16, write: true }]);
    ledger.post(head, 'rx');
    expect(ledger.complete({ id: head, len: 17 })).to.include({ code: 'used.len-too-large' });
  });

  it('the_world_stops_on_a_rogue_write_during_a_transmit', () => {
    const w = new FuzzWorld(SETUP);
    w.step = 0;
    w.apply({ t: 'init', drop: 0 });
    w.afterStep();
    // The backend, running inside the device's call, scribbles on guest memory through the device's face.
    w.netdev.on('transmit', () => w.memory.device.writeU8(MEMORY_SIZE - 1, 0x55));
    w.step = 1;
    w.apply({ t: 'tx', pair: 0, len: 60, hdr: 'ok', split: 1, indirect: false, writable: false });
    expect(stopCode(() => w.afterStep())).to.equal('guard.write-outside-grant');
  });

  it('the_world_stops_when_a_device_call_throws', () => {
    const w = new FuzzWorld(SETUP);
    w.step = 0;
    w.apply({ t: 'init', drop: 0 });
    w.afterStep();
    // A fault planted in the device's config read, which the transport calls without a guard.
    w.device.readConfig = () => {
      throw new Error('planted fault');
    };
    w.apply({ t: 'config', write: false, offset: 0, width: 1, value: 0 });
    expect(stopCode(() => w.afterStep())).to.equal('device.threw');
  });

  it('a_clean_sequence_passes_every_check', () => {
    const w = new FuzzWorld(SETUP);
    const ops: FuzzOp[] = [
      { t: 'init', drop: 0 },
      { t: 'rx', count: 4, len: 1526, split: 1, indirect: false },
      { t: 'inject', count: 3, len: 60, dst: 'main', vlan: -1 },
      { t: 'tx', pair: 0, len: 60, hdr: 'ok', split: 2, indirect: true, writable: false },
      { t: 'ctrl', cls: 0, cmd: 0, payload: [1], ack: 1, indirect: false, apart: true },
    ];
    ops.forEach((op, i) => {
      w.step = i;
      w.apply(op);
      w.afterStep();
    });
    const s = w.device.stats();
    expect(s.rx.frames).to.equal(3);
    expect(s.tx.frames).to.equal(1);
    expect(s.ctrl.ok).to.equal(1);
    expect(w.ledgers[0]!.outstanding).to.equal(1);
    expect(w.ledgers[1]!.outstanding).to.equal(0);
  });
});

// Every oracle code of world.ts, oracle.ts and stream-checks.ts fires on a planted bug: a device
// (or backend) patched to do the one wrong thing the code names, everything else as it is. The
// plants use the device's own interfaces or a rogue write through its memory face inside a
// metered call, so they keep working when the device's open bugs are fixed.

type Patchable = Record<string, unknown>;



/** The last step: `op`, then `rogue` inside a device call (a planted bug), then the checks. */
function lastStep(w: FuzzWorld, op: FuzzOp | null, rogue: () => void): string | null {
  return stopCode(() => {
    w.step++;
    if (op !== null) w.apply(op);
    w.call('planted', rogue);
    w.afterStep();
  });
}

/** Head of the used element in slot `slot` of queue `q`'s used ring. */
function usedHead(w: FuzzWorld, q: number, slot = 0): number {
  return w.memory.driver.readU32(w.ring(q)!.usedRing + 4 + 8 * slot);
}

const INIT: FuzzOp = { t: 'init', drop: 0 };
/** Without MRG_RXBUF (DROPPABLE bit 1): one frame per receive buffer. */
const INIT_NO_MRG: FuzzOp = { t: 'init', drop: 2 };
const TX: FuzzOp = { t: 'tx', pair: 0, len: 60, hdr: 'ok', split: 1, indirect: false, writable: false };
const RX1: FuzzOp = { t: 'rx', count: 1, len: 1526, split: 1, indirect: false };
const INJECT1: FuzzOp = { t: 'inject', count: 1, len: 60, dst: 'main', vlan: -1 };
const PROMISC: FuzzOp = { t: 'ctrl', cls: 0, cmd: 0, payload: [1], ack: 1, indirect: false, apart: true };

/** A received frame is waiting in receive buffer slot 0 (not taken yet); returns its buffer address. */
function deliveredBuffer(w: FuzzWorld): number {
  w.step++;
  w.apply(INJECT1);
  return w.ring(0)!.buffers(usedHead(w, 0))[0]!.addr;
}

describe('fuzz: every oracle code fires on a planted bug', () => {
  it('work_unbounded_a_call_looping_over_guest_memory', () => {
    const w = worldAfter(SETUP, [INIT]);
    w.device.readConfig = () => {
      for (;;) w.memory.device.readU8(0x1000);
    };
    expect(steps(w, [{ t: 'config', write: false, offset: 0, width: 1, value: 0 }])).to.equal('work.unbounded');
  });

  it('work_unbounded_ops_a_call_looping_over_backend_calls_without_touching_memory', () => {
    const w = worldAfter(SETUP, [INIT]);
    w.device.queryRxFilter = () => {
      for (;;) w.netdev.pauseReceive();
    };
    expect(steps(w, [{ t: 'query' }])).to.equal('work.unbounded-ops');
  });

  it('irq_not_a_change_the_transport_reports_the_same_level_twice', () => {
    const w = worldAfter(SETUP, [INIT]);
    const onInterrupt = (w.transport as unknown as { onInterrupt: (a: boolean) => void }).onInterrupt;
    expect(lastStep(w, null, () => onInterrupt(w.irqLevel))).to.equal('irq.not-a-change');
  });

  it('irq_lost_a_device_that_publishes_used_buffers_without_notifying', () => {
    const w = worldAfter(SETUP, [INIT, RX1]);
    (w.device.core as unknown as Patchable).raiseUsed = () => undefined;
    expect(steps(w, [INJECT1])).to.equal('irq.lost');
  });

  it('irq_spurious_a_used_buffer_interrupt_with_nothing_used', () => {
    const w = worldAfter(SETUP, [INIT, RX1]);
    expect(lastStep(w, null, () => w.device.core.raiseUsed(0))).to.equal('irq.spurious');
  });

  it('needs_reset_silent_a_device_that_stops_without_the_config_interrupt', () => {
    const w = worldAfter(SETUP, [INIT]);
    (w.device.core as unknown as Patchable).raiseConfig = () => undefined;
    const oob: FuzzOp = { t: 'raw', q: 1, descs: [{ len: 16, flags: 0, addr: 'heap', next: 'auto' }], table: [], head: 'oob' };
    expect(steps(w, [oob])).to.equal('needs-reset.silent');
  });

  it('used_index_jump_used_idx_moved_past_the_ring_size', () => {
    const w = worldAfter(SETUP, [INIT]);
    const ring = w.ring(0) as DriverRing;
    ring.setUsedEvent(0x8000); // the driver wants no interrupt yet, so only the jump is wrong
    expect(lastStep(w, null, () => w.memory.device.writeU16(ring.usedRing + 2, ring.size + 1))).to.equal('used.index-jump');
  });

  it('used_head_lost_a_popped_head_neither_returned_nor_held', () => {
    const w = worldAfter(SETUP, [INIT, RX1]);
    expect(
      lastStep(w, null, () => {
        // Pushed but never published: the guest never sees it, the device no longer holds it.
        const q = w.device.queues[0]!;
        const c = q.pop();
        if (c.kind === 'chain') q.pushUsed(c, 0);
      }),
    ).to.equal('used.head-lost');
  });

  it('used_tx_len_nonzero_a_transmit_chain_completed_with_a_length', () => {
    const w = worldAfter(SETUP, [INIT]);
    // A stray writable descriptor (8 bytes) makes a length of 5 fit the grant: only "tx" is wrong.
    expect(lastStep(w, { ...TX, writable: true } as FuzzOp, () => w.memory.device.writeU32(w.ring(1)!.usedRing + 8, 5))).to.equal('used.tx-len-nonzero');
  });

  it('used_ctrl_len_a_control_chain_completed_with_a_length_other_than_1', () => {
    const w = worldAfter(SETUP, [INIT]);
    // Two writable status bytes make a length of 2 fit the grant: only "not 1" is wrong.
    expect(lastStep(w, { ...PROMISC, ack: 2 } as FuzzOp, () => w.memory.device.writeU32(w.ring(2)!.usedRing + 8, 2))).to.equal('used.ctrl-len');
  });

  it('ctrl_ack_invalid_an_ack_that_is_neither_ok_nor_err', () => {
    const w = worldAfter(SETUP, [INIT]);
    expect(
      lastStep(w, PROMISC, () => {
        const bufs = w.ring(2)!.buffers(usedHead(w, 2));
        w.memory.device.writeU8(bufs[bufs.length - 1]!.addr, 7);
      }),
    ).to.equal('ctrl.ack-invalid');
  });

  function patchStats(w: FuzzWorld, dev: (s: ReturnType<FuzzWorld['device']['stats']>) => void, net?: (s: ReturnType<FuzzWorld['netdev']['stats']>) => void): void {
    const ds = w.device.stats.bind(w.device);
    w.device.stats = () => {
      const s = ds();
      const copy = { ...s, rx: { ...s.rx }, tx: { ...s.tx } };
      dev(copy);
      return copy;
    };
    if (net !== undefined) {
      const ns = w.netdev.stats.bind(w.netdev);
      w.netdev.stats = () => {
        const s = ns();
        net(s);
        return s;
      };
    }
  }

  it('stats_rx_unbalanced_an_offered_frame_in_no_counter', () => {
    const w = worldAfter(SETUP, [INIT]);
    patchStats(w, (s) => void s.rx.offered++);
    expect(steps(w, [{ t: 'query' }])).to.equal('stats.rx-unbalanced');
  });

  it('stats_netdev_unbalanced_a_backend_frame_in_no_counter', () => {
    const w = worldAfter(SETUP, [INIT]);
    patchStats(w, () => undefined, (n) => void n.injected++);
    expect(steps(w, [{ t: 'query' }])).to.equal('stats.netdev-unbalanced');
  });

  it('stats_offered_mismatch_the_device_counts_a_frame_the_backend_never_delivered', () => {
    const w = worldAfter(SETUP, [INIT]);
    patchStats(w, (s) => {
      s.rx.offered++;
      s.rx.frames++;
    });
    expect(steps(w, [{ t: 'query' }])).to.equal('stats.offered-mismatch');
  });

  it('rx_counted_not_visible_a_delivered_frame_the_guest_cannot_see', () => {
    const w = worldAfter(SETUP, [INIT_NO_MRG]);
    patchStats(
      w,
      (s) => {
        s.rx.offered++;
        s.rx.frames++;
        // The oracle compares receiveq1's own counter (frames may be steered to other queues).
        s.queues = s.queues.map((q) => (q.index === 0 ? { ...q, packets: q.packets + 1 } : q));
      },
      (n) => {
        n.injected++;
        n.delivered++;
      },
    );
    expect(steps(w, [{ t: 'query' }])).to.equal('rx.counted-not-visible');
  });

  it('stats_tx_mismatch_a_frame_counted_sent_that_the_backend_never_saw', () => {
    const w = worldAfter(SETUP, [INIT]);
    patchStats(w, (s) => void s.tx.frames++);
    expect(steps(w, [{ t: 'query' }])).to.equal('stats.tx-mismatch');
  });

  it('rx_frame_corrupt_a_byte_of_a_received_frame_changed', () => {
    const w = worldAfter(SETUP, [INIT_NO_MRG, RX1]);
    const addr = deliveredBuffer(w);
    expect(lastStep(w, null, () => w.memory.device.writeU8(addr + w.hdrLen + 20, 0x5a ^ w.memory.driver.readU8(addr + w.hdrLen + 20)))).to.equal('rx.frame-corrupt');
  });

  it('rx_num_buffers_num_buffers_2_without_mrg_rxbuf', () => {
    const w = worldAfter(SETUP, [INIT_NO_MRG, RX1]);
    const addr = deliveredBuffer(w);
    expect(lastStep(w, null, () => w.memory.device.writeU8(addr + 10, 2))).to.equal('rx.num-buffers');
  });

  it('rx_hdr_offload_needs_csum_handed_to_a_guest_without_guest_csum', () => {
    // The plain backend offers no offloads: GUEST_CSUM is not negotiated.
    const w = worldAfter(SETUP, [INIT_NO_MRG, RX1]);
    const addr = deliveredBuffer(w);
    expect(lastStep(w, null, () => w.memory.device.writeU8(addr, 1))).to.equal('rx.hdr-offload');
  });

  it('rx_hdr_csum_outside_frame_a_checksum_offset_past_the_frame', () => {
    const w = worldAfter(SETUP, [INIT_NO_MRG, RX1], { backend: 'vnet' });
    expect(w.has('GUEST_CSUM')).to.equal(true);
    const addr = deliveredBuffer(w);
    expect(lastStep(w, null, () => w.memory.device.write(addr, Uint8Array.of(1, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0)))).to.equal('rx.hdr-csum-outside-frame');
  });

  it('tx_frame_corrupt_the_backend_gets_a_changed_frame', () => {
    const w = worldAfter(SETUP, [INIT]);
    const n = w.netdev as unknown as Patchable;
    const send = (w.netdev.send as (f: Uint8Array, h?: Uint8Array) => unknown).bind(w.netdev);
    n.send = (f: Uint8Array, h?: Uint8Array) => {
      const g = f.slice();
      g[30] = g[30]! ^ 0xff;
      return send(g, h);
    };
    expect(steps(w, [TX])).to.equal('tx.frame-corrupt');
  });

  it('ctrl_offloads_acked_not_applied_the_host_told_something_else_than_acked', () => {
    const w = worldAfter(SETUP, [INIT], { backend: 'vnet' });
    const v = w.netdev.vnet!;
    const set = v.setOffloads.bind(v);
    v.setOffloads = (f) => set({ ...f, csum: !f.csum });
    const all: FuzzOp = { t: 'ctrl', cls: 5, cmd: 0, payload: [0x82, 0x07, 0, 0, 0, 0, 0, 0], ack: 1, indirect: false, apart: true };
    expect(steps(w, [all])).to.equal('ctrl.offloads-acked-not-applied');
  });

  it('host_offloads_not_negotiated_the_host_enables_what_the_guest_declined', () => {
    const w = new FuzzWorld({ ...SETUP, backend: 'vnet' });
    const v = w.netdev.vnet!;
    const set = v.setOffloads.bind(v);
    v.setOffloads = () => set({ csum: true, tso4: false, tso6: false, ecn: false, ufo: false });
    w.step = -1;
    // The guest declines GUEST_CSUM (DROPPABLE bit 11) and so everything that needs it.
    expect(steps(w, [{ t: 'init', drop: 1 << 11 }])).to.equal('host.offloads-not-negotiated');
  });

  it('reentry_touched_after_reset_guest_memory_read_after_a_reset_from_the_transmit_listener', () => {
    const w = worldAfter(SETUP, [INIT, { t: 'arm', at: 'transmit', action: { k: 'reset' }, times: 1 }]);
    w.netdev.on('transmit', () => {
      if (w.device.status === 0) w.memory.device.readU8(0x1000);
    });
    expect(steps(w, [TX])).to.equal('reentry.touched-after-reset');
  });

  it('reset_queues_still_running_a_device_that_keeps_its_queues_across_a_reset', () => {
    const w = worldAfter(SETUP, [INIT]);
    const running = w.device.queues;
    Object.defineProperty(w.device, 'queues', { get: () => running });
    expect(steps(w, [{ t: 'status', value: 0 }])).to.equal('reset.queues-still-running');
  });

  it('rx_taken_while_stopped_a_device_that_backlogs_frames_before_driver_ok', () => {
    const w = worldAfter(SETUP, []);
    patchStats(w, (s) => {
      s.rx.backlog++;
      s.rx.offered++; // balanced, and the backend "delivered" it
    }, (n) => {
      n.delivered++;
      n.injected++;
    });
    expect(steps(w, [{ t: 'query' }])).to.equal('rx.taken-while-stopped');
  });

  it('rx_backend_stalled_a_device_that_never_resumes_the_backend', () => {
    const w = worldAfter(SETUP, [INIT, RX1]);
    // The device says it has no room (the backend holds the frame and pauses) while it has a buffer.
    const rx = (w.device as unknown as Record<string, Patchable>)['rx']!;
    rx.receive = () => false;
    expect(steps(w, [INJECT1])).to.equal('rx.backend-stalled');
  });

  // The end-of-sequence oracles (oracle.ts), through runWorld with the bug planted at build time.
  function endCode(ops: FuzzOp[], plant: (w: FuzzWorld) => void, setup: Partial<FuzzSetup> = {}): string | null {
    return runWorld({ setup: { ...SETUP, ...setup }, ops }, undefined, {}, undefined, plant)?.code ?? null;
  }
  const priv = (w: FuzzWorld, part: 'tx' | 'rx' | 'ctrl'): Patchable => (w.device as unknown as Record<string, Patchable>)[part]!;
  /** Only during recovery (after the sequence and its flush). */
  const recovering = (w: FuzzWorld, ops: number): boolean => w.step >= ops && w.ledgers.length > 0 && w.clean && w.ring(1)?.availIdx !== 0;

  it('flush_not_completed_a_device_that_ignores_transmit_notifications', () => {
    expect(endCode([INIT, TX], (w) => void (priv(w, 'tx').process = () => undefined))).to.equal('flush.not-completed');
  });

  it('recover_init_refused_a_device_that_never_takes_driver_ok', () => {
    expect(
      endCode([INIT], (w) => {
        const ws = w.device.writeStatus.bind(w.device);
        w.device.writeStatus = (v, via) => ws(v & ~4, via);
      }),
    ).to.equal('recover.init-refused');
  });

  it('recover_needs_reset_a_device_that_breaks_at_driver_ok_after_the_reset', () => {
    expect(
      endCode([INIT], (w) => {
        const ws = w.device.writeStatus.bind(w.device);
        w.device.writeStatus = (v, via) => {
          ws(v, via);
          if ((v & 4) !== 0 && w.step >= 1) w.device.core.needsReset({ code: 'chain.head-out-of-range', head: 99, size: 8, queue: 0 } as never);
        };
      }),
    ).to.equal('recover.needs-reset');
  });

  it('recover_tx_a_device_that_stops_transmitting_after_the_reset', () => {
    expect(
      endCode([INIT], (w) => {
        const tx = priv(w, 'tx');
        const process = (tx.process as (q: unknown) => void).bind(tx);
        tx.process = (q: unknown) => (recovering(w, 1) ? undefined : process(q));
      }),
    ).to.equal('recover.tx');
  });

  it('recover_rx_a_device_that_stops_receiving_after_the_reset', () => {
    expect(
      endCode([INIT], (w) => {
        // After the sequence, every frame is taken for an oversize one: dropped and counted as
        // such, so every counter balances and only the end-to-end check can tell.
        const rx = priv(w, 'rx');
        const receive = (rx.receive as (f: Uint8Array, h?: Uint8Array) => boolean).bind(rx);
        const huge = new Uint8Array(70_000);
        rx.receive = (f: Uint8Array, h?: Uint8Array) => receive(w.step < 1 ? f : huge, h);
      }),
    ).to.equal('recover.rx');
  });

  it('recover_ctrl_a_device_that_stops_answering_control_commands_after_the_reset', () => {
    expect(
      endCode([INIT], (w) => {
        const ctrl = priv(w, 'ctrl');
        const process = (ctrl.process as (q: unknown) => void).bind(ctrl);
        ctrl.process = (q: unknown) => (w.step >= 1 ? undefined : process(q));
      }),
    ).to.equal('recover.ctrl');
  });

  it('setup_threw_a_device_that_cannot_be_built', () => {
    expect(runCase({ setup: { ...SETUP, pairs: 0 as never }, ops: [] })?.code).to.equal('setup.threw');
  });

  it('harness_threw_a_model_driver_fault_is_not_blamed_on_the_device', () => {
    expect(
      endCode([INIT], (w) => {
        w.apply = () => {
          throw new TypeError('planted model-driver fault');
        };
      }),
    ).to.equal('harness.threw');
  });
});

// The oracles that read the rings (interrupts, held heads, used descriptors, backend stalls,
// guard regions) over packed rings (§2.8): the same planted bugs, with the driver's rings packed.
describe('fuzz: the ring oracles fire on packed rings too', () => {
  const PACKED: Partial<FuzzSetup> = { ring: 'packed' };

  it('a_clean_packed_sequence_passes_every_check_on_packed_queues', () => {
    const w = worldAfter(SETUP, [INIT, { ...RX1, count: 3 }, INJECT1, TX, PROMISC, { t: 'cycle', dir: 'tx', n: 40, batch: 3 }], PACKED);
    expect(w.device.queues.map((q) => q?.ring)).to.deep.equal(['packed', 'packed', 'packed']);
    expect(w.has('RING_PACKED')).to.equal(true);
    expect(w.device.stats().tx.frames).to.equal(41);
    expect(w.ledgers[0]!.outstanding).to.equal(2);
  });

  it('irq_lost_packed', () => {
    const w = worldAfter(SETUP, [INIT, RX1], PACKED);
    (w.device.core as unknown as Patchable).raiseUsed = () => undefined;
    expect(steps(w, [INJECT1])).to.equal('irq.lost');
  });

  it('irq_lost_packed_event_descriptor_passed', () => {
    const w = worldAfter(SETUP, [INIT, { ...RX1, count: 2 }], { ...PACKED, disable: [] });
    // EVENT_IDX: an event at the first used descriptor (offset 0, wrap 1) is passed by the first frame.
    expect(steps(w, [{ t: 'event', q: 0, mode: 'used-event', value: 0x8000 }])).to.equal(null);
    (w.device.core as unknown as Patchable).raiseUsed = () => undefined;
    expect(steps(w, [INJECT1])).to.equal('irq.lost');
  });

  it('irq_lost_not_claimed_when_the_driver_disabled_events_packed', () => {
    const w = worldAfter(SETUP, [INIT, RX1, { t: 'event', q: 0, mode: 'no-interrupt', value: 0 }], PACKED);
    (w.device.core as unknown as Patchable).raiseUsed = () => undefined;
    expect(steps(w, [INJECT1])).to.equal(null);
    expect(w.ledgers[0]!.usedSeen).to.equal(1);
  });

  it('irq_spurious_packed', () => {
    const w = worldAfter(SETUP, [INIT, RX1], PACKED);
    expect(lastStep(w, null, () => w.device.core.raiseUsed(0))).to.equal('irq.spurious');
  });

  it('used_head_lost_packed', () => {
    const w = worldAfter(SETUP, [INIT, RX1], PACKED);
    expect(
      lastStep(w, null, () => {
        const q = w.device.queues[0]!;
        const c = q.pop();
        if (c.kind === 'chain') q.pushUsed(c, 0);
      }),
    ).to.equal('used.head-lost');
  });

  it('used_unknown_head_packed_a_used_descriptor_naming_no_outstanding_id', () => {
    const w = worldAfter(SETUP, [INIT, RX1, { t: 'event', q: 0, mode: 'no-interrupt', value: 0 }], PACKED);
    const ring = w.ring(0) as PackedDriverRing;
    expect(
      lastStep(w, null, () => {
        // A used descriptor at offset 0 (wrap 1) with an ID the driver never made available.
        w.memory.device.writeU16(ring.descAddr(0) + 12, 7);
        w.memory.device.writeU16(ring.descAddr(0) + 14, 0x8080);
      }),
    ).to.equal('used.unknown-head');
  });

  it('guard_write_outside_grant_packed_the_driver_event_structure', () => {
    const w = worldAfter(SETUP, [INIT, RX1], PACKED);
    const ring = w.ring(0) as PackedDriverRing;
    expect(lastStep(w, null, () => w.memory.device.writeU16(ring.driverEvent + 2, 1))).to.equal('guard.write-outside-grant');
  });

  it('rx_backend_stalled_packed', () => {
    const w = worldAfter(SETUP, [INIT, RX1], PACKED);
    const rx = (w.device as unknown as Record<string, Patchable>)['rx']!;
    rx.receive = () => false;
    expect(steps(w, [INJECT1])).to.equal('rx.backend-stalled');
  });

  it('flush_not_completed_packed', () => {
    const f = runWorld({ setup: { ...SETUP, ring: 'packed' }, ops: [INIT, TX] }, undefined, {}, undefined, (w) => {
      (w.device as unknown as Record<string, Patchable>)['tx']!.process = () => undefined;
    });
    expect(f?.code).to.equal('flush.not-completed');
  });

  it('packed_raw_lists_with_driver_mistakes_end_in_needs_reset_or_a_stall_never_a_failure', () => {
    const desc = (flags: number): RawDesc => ({ len: 64, flags, addr: 'heap', next: 'auto' });
    const cases: [string, FuzzOp][] = [
      ['unterminated', { t: 'raw', q: 1, descs: [desc(1), desc(1)], table: [], head: 'first' }],
      ['other wrap', { t: 'raw', q: 1, descs: [desc(0)], table: [], head: 'first', packed: { first: 'other-wrap', mid: false, id: 'free' } }],
      ['looks used', { t: 'raw', q: 1, descs: [desc(0)], table: [], head: 'first', packed: { first: 'looks-used', mid: false, id: 'free' } }],
      ['mid wrap', { t: 'raw', q: 1, descs: [desc(1), desc(0)], table: [], head: 'first', packed: { first: 'ok', mid: true, id: 'free' } }],
      ['indirect with next', { t: 'raw', q: 1, descs: [desc(5), desc(0)], table: [desc(0)], head: 'first' }],
      ['id beyond the ring', { t: 'raw', q: 1, descs: [desc(0)], table: [], head: 'oob' }],
    ];
    for (const [what, op] of cases) {
      const f = runCase({ setup: { ...SETUP, ring: 'packed' }, ops: [INIT, op, TX] });
      expect(f, `${what}: ${f?.code} ${f?.detail}`).to.equal(null);
    }
    // The first three leave the device running and the queue stalled; the list with NEXT at its end
    // and the one with the wrong bits mid-list are refused (DEVICE_NEEDS_RESET) when popped.
    const w = worldAfter(SETUP, [INIT, cases[0]![1]], PACKED);
    expect(w.needsReset).to.equal(true);
    const w2 = worldAfter(SETUP, [INIT, cases[1]![1], TX], PACKED);
    expect(w2.needsReset).to.equal(false);
    expect(w2.device.stats().tx.frames).to.equal(0);
    const w3 = worldAfter(SETUP, [INIT, cases[5]![1]], PACKED);
    expect(w3.needsReset).to.equal(false);
    expect(w3.ledgers[1]!.usedSeen).to.equal(1);
  });
});
