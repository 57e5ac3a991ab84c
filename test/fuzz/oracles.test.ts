// The fuzzer's oracles catch what they claim to (VIRTIO 1.2 §2.7.4 the device writes only
// device-writable buffers, §2.7.8 each used element once): a simulated rogue device writes outside
// its grants, writes without reporting it, completes a head twice, or loops — and the oracle fires
// with its code. Without these, a green fuzz run would prove nothing.

import { expect } from 'chai';
import { GuardedMemory, WorkBudgetExceeded } from '../support/guarded-memory.js';
import { DriverRing } from '../support/driver-ring.js';
import { QueueLedger } from './ledger.js';
import { FuzzStop, FuzzWorld, MEMORY_SIZE } from './world.js';
import type { FuzzOp, FuzzSetup } from './ops.js';

const SETUP: FuzzSetup = { transport: 'mmio', pairs: 1, disable: [], ringSize: 8 };

function stopCode(fn: () => void): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof FuzzStop) return e.failure.code;
    throw e;
  }
}

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
