// Repeated self-announcement (devices/virtio-net/announce-rounds.ts): QEMU's announce timer
// (initial, max, rounds, step) for the guest's announcement (GUEST_ANNOUNCE: each next round after
// the driver's ANNOUNCE_ACK) and for the device's gratuitous ARP after a restore; under sinon's
// fake clock for exact times.

import { expect } from 'chai';
import sinon from 'sinon';
import { NetRig } from '../../support/net-rig.js';
import type { NetRigOptions } from '../../support/net-rig.js';
import { CtrlAck, CtrlAnnounce, CtrlClass, NetStatus } from '../../../devices/virtio-net/constants.js';

const MAIN = '52:54:00:12:34:56';

function configInterrupts(rig: NetRig): number {
  return rig.device.stats().interrupts.config;
}

function ack(rig: NetRig): void {
  expect(rig.cmd(CtrlClass.ANNOUNCE, CtrlAnnounce.ACK)).to.equal(CtrlAck.OK);
}

function announcing(rig: NetRig): boolean {
  return (rig.readLinkStatus() & NetStatus.ANNOUNCE) !== 0;
}

/** A fresh device restored from `from`'s state (over a copy of its memory). */
function restored(from: NetRig, options: NetRigOptions): NetRig {
  const b = new NetRig({ mac: MAIN, init: false, ...options });
  b.memory.write(0, from.memory.bytes(0, from.memory.size));
  b.device.restoreState(from.device.saveState());
  return b;
}

function arps(rig: NetRig): number {
  return rig.transmitted.filter((f) => f[12] === 0x08 && f[13] === 0x06).length;
}

describe('devices/virtio-net repeated announcement', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => clock.restore());

  it('guest_rounds_follow_qemus_steps_each_after_the_ack', () => {
    const rig = new NetRig({ mac: MAIN });
    const base = configInterrupts(rig);
    expect(rig.device.announce({ rounds: 3, initial: 50, step: 100, max: 550 })).to.equal(true);
    expect(announcing(rig)).to.equal(true);
    expect(configInterrupts(rig) - base).to.equal(1);
    ack(rig);
    expect(announcing(rig)).to.equal(false);
    clock.tick(49);
    expect(configInterrupts(rig) - base).to.equal(1);
    clock.tick(1); // round 2 after `initial`
    expect(announcing(rig)).to.equal(true);
    expect(configInterrupts(rig) - base).to.equal(2);
    ack(rig);
    clock.tick(149);
    expect(configInterrupts(rig) - base).to.equal(2);
    clock.tick(1); // round 3 after initial + step
    expect(configInterrupts(rig) - base).to.equal(3);
    ack(rig);
    clock.tick(10_000);
    expect(configInterrupts(rig) - base).to.equal(3);
    expect(clock.countTimers()).to.equal(0);
  });

  it('a_guest_that_never_acks_is_asked_once', () => {
    const rig = new NetRig({ mac: MAIN });
    const base = configInterrupts(rig);
    expect(rig.device.announce({ rounds: 5 })).to.equal(true);
    clock.tick(10_000);
    expect(configInterrupts(rig) - base).to.equal(1);
    expect(clock.countTimers()).to.equal(0);
  });

  it('announce_without_parameters_is_one_round', () => {
    const rig = new NetRig({ mac: MAIN });
    const base = configInterrupts(rig);
    expect(rig.device.announce()).to.equal(true);
    ack(rig);
    clock.tick(10_000);
    expect(configInterrupts(rig) - base).to.equal(1);
  });

  it('a_reset_ends_the_announcement', () => {
    const rig = new NetRig({ mac: MAIN });
    expect(rig.device.announce({ rounds: 4 })).to.equal(true);
    ack(rig);
    expect(clock.countTimers()).to.equal(1);
    rig.start();
    const base = configInterrupts(rig);
    clock.tick(10_000);
    expect(configInterrupts(rig)).to.equal(base);
    expect(announcing(rig)).to.equal(false);
  });

  it('after_a_restore_without_guest_announce_the_device_sends_qemus_arp_rounds', () => {
    const opts: NetRigOptions = { features: { disable: ['GUEST_ANNOUNCE'] }, announce: {} };
    const a = new NetRig({ mac: MAIN, ...opts });
    const b = restored(a, opts);
    expect(arps(b)).to.equal(1);
    // QEMU's defaults: 50, then +100 each round, 5 rounds.
    for (const [wait, total] of [[50, 2], [150, 3], [250, 4], [350, 5]] as const) {
      clock.tick(wait - 1);
      expect(arps(b)).to.equal(total - 1);
      clock.tick(1);
      expect(arps(b)).to.equal(total);
    }
    clock.tick(10_000);
    expect(arps(b)).to.equal(5);
  });

  it('after_a_restore_with_guest_announce_the_rounds_wait_for_the_acks', () => {
    const opts: NetRigOptions = { announce: { rounds: 2, initial: 20 } };
    const a = new NetRig({ mac: MAIN, ...opts });
    const b = restored(a, opts);
    expect(b.device.stats().interrupts.config).to.be.greaterThan(0);
    expect((b.driver.readConfig(6, 2) & NetStatus.ANNOUNCE) !== 0).to.equal(true);
    expect(arps(b)).to.equal(0);
    expect(clock.countTimers()).to.equal(0); // waits for the guest's ack
  });

  it('bad_parameters_throw_naming_them', () => {
    const rig = new NetRig({ mac: MAIN });
    expect(() => rig.device.announce({ rounds: 0 })).to.throw(RangeError, /announce\.rounds must be an integer in 1\.\.1000/);
    expect(() => rig.device.announce({ initial: 600, max: 550 })).to.throw(RangeError, /initial \(600\) must not exceed max \(550\)/);
    expect(() => rig.device.announce({ stepp: 1 } as never)).to.throw(TypeError, /unknown key\(s\) stepp/);
    expect(() => new NetRig({ mac: MAIN, announce: { step: -1 } })).to.throw(RangeError, /VirtioNetDevice: announce\.step must be an integer number of ms/);
  });
});
