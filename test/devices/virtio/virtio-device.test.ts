import { expect } from 'chai';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import type { Virtqueue } from '../../../virtqueue/virtqueue.js';
import { VirtioMmioTransport } from '../../../devices/virtio/mmio-transport.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK } from '../../../devices/virtio/device-status.js';
import { DIAGNOSTIC_CAPACITY } from '../../../devices/virtio/diagnostics.js';
import { featureBit, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_RESET, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import { DriverRing } from '../../support/driver-ring.js';
import { ACKNOWLEDGE, DRIVER, FEATURES_OK, addStatus, driverFor, initDevice, notifyQueue, readIsr, readStatus, resetDevice } from '../../support/driver-transport.js';
import { EchoDevice, ECHO_F_UPPER } from './echo-device.js';
import { IrqLine, bytes, mmioRig, ring, text } from './setup.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);
const UPPER = featureBit(ECHO_F_UPPER);

/** One good exchange: a chain in, the uppercased echo out, a used interrupt. */
function goodExchange(rig: ReturnType<typeof mmioRig>, r: DriverRing): void {
  r.takeUsed();
  const head = r.addChain([{ len: 5, data: bytes('hello') }, { len: 16, write: true }]);
  notifyQueue(rig.transport, 0);
  expect(r.takeUsed()).to.deep.equal([{ id: head, len: 5 }]);
  expect(text(r.writtenBytes(head, 5))).to.equal('HELLO');
  expect(rig.irq.level).to.equal(true);
  expect(readIsr(rig.transport)).to.equal(1);
  expect(rig.irq.level).to.equal(false);
}

function running(rig = mmioRig(), features = V1 | UPPER): { rig: ReturnType<typeof mmioRig>; r: DriverRing } {
  const r = ring(rig.memory);
  expect(initDevice(rig.transport, { features, queues: [r] }).ok).to.equal(true);
  return { rig, r };
}

describe('devices/virtio/virtio-device', () => {
  it('echo_round_trip_over_mmio', () => {
    const { rig, r } = running();
    expect(rig.device.running).to.equal(true);
    expect(rig.device.driverOkQueues?.[0]).to.not.equal(null);
    goodExchange(rig, r);
    expect(rig.device.diagnostics()).to.deep.equal([]);
  });

  it('notify_before_driver_ok_is_remembered_and_delivered_at_driver_ok', () => {
    const rig = mmioRig();
    const r = ring(rig.memory);
    const d = driverFor(rig.transport);
    resetDevice(d);
    addStatus(d, ACKNOWLEDGE);
    addStatus(d, DRIVER);
    d.writeDriverFeatures(V1 | UPPER);
    addStatus(d, FEATURES_OK);
    d.setupQueue(0, r);
    d.enableQueue(0);
    const head = r.addChain([{ len: 2, data: bytes('ok') }, { len: 2, write: true }]);
    d.notify(0);
    expect(r.usedEntries()).to.deep.equal([]); // nothing consumed before DRIVER_OK (§2.1.2)
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.before-driver-ok', section: '3.1.1', queue: 0 });
    addStatus(d, STATUS_DRIVER_OK);
    expect(r.takeUsed()).to.deep.equal([{ id: head, len: 2 }]);
    expect(rig.device.events).to.include('notify:0');
  });

  it('notify_for_a_queue_the_device_does_not_have_is_ignored_and_recorded', () => {
    const { rig, r } = running();
    notifyQueue(rig.transport, 7);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.queue-out-of-range', queue: 7 });
    goodExchange(rig, r);
  });

  it('notify_for_a_queue_not_enabled_is_ignored_and_recorded', () => {
    const rig = mmioRig();
    initDevice(rig.transport, { features: V1 }); // no queue set up
    notifyQueue(rig.transport, 0);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.queue-not-ready', queue: 0 });
    expect(rig.device.events.filter((e) => e.startsWith('notify'))).to.deep.equal([]);
  });

  it('notify_on_a_running_device_reaches_the_handler_only_for_a_running_queue', () => {
    // VirtioCore.notify's fast path takes a running queue of a running device; every other kick
    // keeps its check and diagnostic. Each kick below leaves a chain waiting that must stay unused.
    const offer = UPPER | featureBit(VIRTIO_F_RING_RESET);
    const { rig, r } = running(mmioRig({ features: offer }), V1 | offer);
    const kicks = (): string[] => rig.device.events.filter((e) => e.startsWith('notify'));
    goodExchange(rig, r);
    expect(kicks()).to.deep.equal(['notify:0']);
    // Out of range while running (the fast path finds no queue there).
    for (const index of [1, 7, 0xffff_ffff]) {
      notifyQueue(rig.transport, index);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.queue-out-of-range', queue: index });
    }
    // The driver disabled the queue (QueueReady = 0): stopped, not ready.
    const d = driverFor(rig.transport);
    rig.transport.write(0x30, 4, 0);
    rig.transport.write(0x44, 4, 0);
    r.addChain([{ len: 1, data: [0x61] }, { len: 1, write: true }]);
    notifyQueue(rig.transport, 0);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.queue-not-ready', queue: 0 });
    expect(r.usedEntries()).to.deep.equal([]);
    // Reset and held in reset (§2.6.1): not ready either.
    rig.transport.write(0x44, 4, 1);
    d.resetQueue(0);
    const before = rig.device.diagnosticCount('notify.queue-not-ready');
    notifyQueue(rig.transport, 0);
    expect(rig.device.diagnosticCount('notify.queue-not-ready')).to.equal(before + 1);
    expect(kicks()).to.deep.equal(['notify:0']);
    expect(rig.device.running).to.equal(true);
  });

  it('notify_after_device_needs_reset_reaches_no_handler_and_records_nothing', () => {
    const { rig, r } = running();
    goodExchange(rig, r);
    // avail.idx moved past a whole ring: tier 1, the device stops until reset.
    r.bumpAvailIdx(r.size + 1);
    notifyQueue(rig.transport, 0);
    expect(readStatus(rig.transport) & STATUS_DEVICE_NEEDS_RESET).to.not.equal(0);
    const diagnostics = rig.device.diagnostics().length;
    const kicks = rig.device.events.filter((e) => e.startsWith('notify')).length;
    notifyQueue(rig.transport, 0);
    expect(rig.device.diagnostics()).to.have.length(diagnostics);
    expect(rig.device.events.filter((e) => e.startsWith('notify'))).to.have.length(kicks);
  });

  it('queue_programmed_while_enabled_is_ignored_and_recorded', () => {
    const { rig, r } = running();
    rig.transport.write(0x30, 4, 0);
    rig.transport.write(0x38, 4, 4);
    rig.transport.write(0x80, 4, 0x8000);
    expect(rig.device.queueConfig(0)).to.deep.include({ size: r.size, descTable: r.descTable });
    expect(rig.device.diagnosticCount('queue.config-while-enabled')).to.equal(2);
    expect(rig.device.diagnostics().at(-1)!.section).to.equal('4.2.2.2');
    goodExchange(rig, r);
  });

  it('queue_size_above_the_maximum_is_a_tier1_error_at_driver_ok', () => {
    const rig = mmioRig({ queueSize: 8 });
    const r = new DriverRing(rig.memory, { size: 16, base: 0x1000 });
    const d = driverFor(rig.transport);
    resetDevice(d);
    addStatus(d, ACKNOWLEDGE | DRIVER);
    d.writeDriverFeatures(V1);
    addStatus(d, FEATURES_OK);
    rig.transport.write(0x30, 4, 0);
    rig.transport.write(0x38, 4, 16); // QueueNumMax is 8
    rig.transport.write(0x80, 4, r.descTable);
    rig.transport.write(0x90, 4, r.availRing);
    rig.transport.write(0xa0, 4, r.usedRing);
    rig.transport.write(0x44, 4, 1);
    addStatus(d, STATUS_DRIVER_OK);
    expect(readStatus(d) & STATUS_DEVICE_NEEDS_RESET).to.equal(STATUS_DEVICE_NEEDS_RESET);
    const diag = rig.device.diagnostics().at(-1)!;
    expect(diag).to.deep.include({ code: 'queue.size-above-max', queue: 0 });
    expect(diag.error).to.deep.include({ size: 16, max: 8 });
  });

  it('ring_outside_memory_is_a_tier1_error_then_the_device_recovers_after_reset', () => {
    const rig = mmioRig();
    const events: { code: string }[] = [];
    rig.device.on('needs-reset', (e: { code: string }) => events.push(e));
    const bad = new DriverRing(rig.memory, { size: 8, base: 0x1000 });
    Object.defineProperty(bad, 'usedRing', { value: 0x200000 }); // past the 1 MiB of memory
    initDevice(rig.transport, { features: V1 | UPPER, queues: [bad] });
    const status = readStatus(rig.transport);
    expect(status & STATUS_DEVICE_NEEDS_RESET).to.not.equal(0);
    expect(status & STATUS_DRIVER_OK).to.not.equal(0);
    expect(events.map((e) => e.code)).to.deep.equal(['queue.ring-outside-memory']);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'queue.ring-outside-memory', section: '2.7', queue: 0 });
    expect(rig.irq.level).to.equal(true);
    expect(readIsr(rig.transport)).to.equal(2); // the config change notification (§2.1.2)
    expect(rig.device.queues[0]).to.equal(null);
    // A good driver resets and starts again: the same device works.
    const { r } = running(rig);
    goodExchange(rig, r);
  });

  it('malformed_chain_is_tier1_with_config_interrupt_and_queue_stopped_then_recovers', () => {
    const { rig, r } = running();
    const seen: string[] = [];
    rig.device.on('needs-reset', (e: { code: string }) => seen.push(e.code));
    r.bumpAvailIdx(r.size + 1); // avail.idx jumps by more than the queue size
    notifyQueue(rig.transport, 0);
    expect(seen).to.deep.equal(['avail.index-jump']);
    expect(readStatus(rig.transport) & STATUS_DEVICE_NEEDS_RESET).to.not.equal(0);
    expect(rig.device.running).to.equal(false);
    expect(r.usedEntries()).to.deep.equal([]);
    expect(rig.device.events).to.include('stopped');
    expect(readIsr(rig.transport)).to.equal(2);
    expect(rig.device.diagnosticCount('avail.index-jump')).to.equal(1);
    // Stopped: further notifications do nothing.
    notifyQueue(rig.transport, 0);
    expect(rig.device.events.filter((e) => e === 'notify:0')).to.have.length(1);
    const again = running(rig);
    goodExchange(rig, again.r);
  });

  it('indirect_chain_without_indirect_desc_negotiated_is_tier1', () => {
    const { rig, r } = running(mmioRig(), V1);
    r.addChain([{ len: 1, data: [0x61] }, { len: 1, write: true }], { indirect: true });
    notifyQueue(rig.transport, 0);
    expect(rig.device.diagnostics().at(-1)!.code).to.equal('chain.indirect-not-negotiated');
    const ok = running(mmioRig(), V1 | featureBit(VIRTIO_F_INDIRECT_DESC));
    const head = ok.r.addChain([{ len: 1, data: [0x61] }, { len: 1, write: true }], { indirect: true });
    notifyQueue(ok.rig.transport, 0);
    expect(ok.r.takeUsed()).to.deep.equal([{ id: head, len: 1 }]);
  });

  it('second_tier1_error_before_reset_is_recorded_but_not_signalled_again', () => {
    const { rig } = running();
    let signals = 0;
    rig.device.on('needs-reset', () => signals++);
    rig.device.fail({ code: 'test.one' });
    expect(readIsr(rig.transport)).to.equal(2);
    rig.device.fail({ code: 'test.two' });
    expect(signals).to.equal(1);
    expect(rig.irq.level).to.equal(false);
    expect(rig.device.diagnosticCount('test.two')).to.equal(1);
  });

  it('tier1_before_driver_ok_sets_the_bit_without_an_interrupt', () => {
    const rig = mmioRig();
    rig.device.fail({ code: 'test.early', section: '2.1.2' });
    expect(readStatus(rig.transport)).to.equal(STATUS_DEVICE_NEEDS_RESET);
    expect(rig.irq.changes).to.deep.equal([]);
    resetDevice(rig.transport);
  });

  it('driver_ok_after_a_tier1_error_starts_no_queue_until_reset', () => {
    const rig = mmioRig();
    rig.device.fail({ code: 'test.early' });
    const r = ring(rig.memory);
    const d = driverFor(rig.transport);
    // A driver that does not reset first (Linux always does): the device stays stopped.
    addStatus(d, ACKNOWLEDGE | DRIVER);
    d.writeDriverFeatures(V1);
    addStatus(d, FEATURES_OK);
    d.setupQueue(0, r);
    d.enableQueue(0);
    addStatus(d, STATUS_DRIVER_OK);
    expect(rig.device.running).to.equal(false);
    expect(rig.device.queues[0]).to.equal(null);
    expect(rig.device.driverOkQueues).to.equal(null);
    const again = running(rig);
    goodExchange(rig, again.r);
  });

  it('has_feature_reads_both_feature_words', () => {
    const { rig } = running();
    expect(rig.device.hasFeature(VIRTIO_F_VERSION_1)).to.equal(true);
    expect(rig.device.hasFeature(ECHO_F_UPPER)).to.equal(true);
    expect(rig.device.hasFeature(VIRTIO_F_INDIRECT_DESC)).to.equal(false);
    expect(rig.device.hasFeature(64)).to.equal(false);
  });

  it('a_hook_that_throws_becomes_tier1_not_an_exception_into_the_hypervisor', () => {
    class Throwing extends EchoDevice {
      protected override onQueueNotify(): void {
        throw new Error('device bug');
      }
    }
    const memory = new GuestMemory(1 << 20);
    const device = new Throwing({ memory });
    const irq = new IrqLine();
    const t = new VirtioMmioTransport(device, { onInterrupt: irq.onInterrupt });
    const r = new DriverRing(memory, { size: 8, base: 0x1000 });
    initDevice(t, { features: V1, queues: [r] });
    expect(() => notifyQueue(t, 0)).to.not.throw();
    expect(device.diagnostics().at(-1)).to.deep.include({ code: 'device.hook-threw' });
    expect(readStatus(t) & STATUS_DEVICE_NEEDS_RESET).to.not.equal(0);
  });

  it('reset_returns_queues_isr_and_features_to_defaults', () => {
    const { rig, r } = running();
    r.addChain([{ len: 1, data: [0x61] }, { len: 1, write: true }]);
    notifyQueue(rig.transport, 0);
    expect(rig.irq.level).to.equal(true);
    resetDevice(rig.transport);
    expect(rig.irq.level).to.equal(false);
    expect(rig.device.isr).to.equal(0);
    expect(rig.device.negotiatedFeatures).to.equal(0n);
    expect(rig.device.queueConfig(0)).to.deep.equal({ size: 16, descTable: 0, availRing: 0, usedRing: 0, ready: false });
    expect(rig.device.queues[0]).to.equal(null);
    expect(rig.device.events.slice(-2)).to.deep.equal(['stopped', 'reset']);
  });

  it('queue_enabled_after_driver_ok_starts_at_once_in_the_live_array', () => {
    const rig = mmioRig();
    const r = ring(rig.memory);
    initDevice(rig.transport, { features: V1 | UPPER });
    const live = rig.device.driverOkQueues!;
    expect(live[0]).to.equal(null);
    const d = driverFor(rig.transport);
    d.setupQueue(0, r);
    d.enableQueue(0);
    expect(live[0]).to.not.equal(null);
    goodExchange(rig, r);
  });

  it('used_interrupt_follows_the_queue_suppression_decision', () => {
    const { rig, r } = running();
    r.setNoInterrupt(true);
    r.addChain([{ len: 1, data: [0x61] }, { len: 1, write: true }]);
    notifyQueue(rig.transport, 0);
    expect(r.takeUsed()).to.have.length(1);
    expect(rig.irq.changes).to.deep.equal([]);
  });

  it('diagnostics_are_bounded_with_lifetime_counts', () => {
    const { rig } = running();
    const seen: number[] = [];
    rig.device.on('diagnostic', (d: { seq: number }) => seen.push(d.seq));
    for (let i = 0; i < DIAGNOSTIC_CAPACITY + 10; i++) notifyQueue(rig.transport, 9);
    expect(rig.device.diagnostics()).to.have.length(DIAGNOSTIC_CAPACITY);
    expect(rig.device.diagnosticCount('notify.queue-out-of-range')).to.equal(DIAGNOSTIC_CAPACITY + 10);
    expect(rig.device.diagnostics()[0]!.seq).to.equal(11);
    expect(seen).to.have.length(DIAGNOSTIC_CAPACITY + 10);
  });

  it('bad_embedder_input_throws_at_once', () => {
    expect(() => new EchoDevice({ memory: {} as GuestMemory })).to.throw(TypeError, /memory/);
    const rig = mmioRig();
    expect(() => new VirtioMmioTransport(rig.device, { onInterrupt: () => {} })).to.throw(/already attached/);
    expect(() => new VirtioMmioTransport(new EchoDevice({ memory: rig.memory }), {} as never)).to.throw(TypeError, /onInterrupt/);
    class NoQueues extends EchoDevice {
      override readonly queueMaxSizes = [3];
    }
    expect(() => new VirtioMmioTransport(new NoQueues({ memory: rig.memory }), { onInterrupt: () => {} })).to.throw(RangeError, /queueMaxSizes/);
  });

  it('driver_ok_hands_the_device_its_queues_and_features', () => {
    const { rig } = running();
    const q = rig.device.driverOkQueues as readonly (Virtqueue | null)[];
    expect(q).to.have.length(1);
    expect(q[0]!.size).to.equal(8);
    expect(rig.device.events).to.include(`driver-ok:${(V1 | UPPER).toString(16)}`);
  });
});
