import { expect } from 'chai';
import { featureBit, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import { initDevice, notifyQueue, readIsr } from '../../support/driver-transport.js';
import { ECHO_CFG_COUNTER, ECHO_F_UPPER } from './echo-device.js';
import { bytes, mmioRig, ring } from './setup.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);

// Offsets from the spec's table (§4.2.2), written out here on purpose.
const R = {
  magic: 0x000, version: 0x004, deviceId: 0x008, vendorId: 0x00c, deviceFeatures: 0x010, deviceFeaturesSel: 0x014,
  driverFeatures: 0x020, driverFeaturesSel: 0x024, queueSel: 0x030, queueNumMax: 0x034, queueNum: 0x038,
  queueReady: 0x044, queueNotify: 0x050, interruptStatus: 0x060, interruptAck: 0x064, status: 0x070,
  descLow: 0x080, descHigh: 0x084, driverLow: 0x090, driverHigh: 0x094, deviceLow: 0x0a0, deviceHigh: 0x0a4,
  shmSel: 0x0ac, shmLenLow: 0x0b0, shmLenHigh: 0x0b4, shmBaseLow: 0x0b8, shmBaseHigh: 0x0bc, queueReset: 0x0c0,
  configGeneration: 0x0fc, config: 0x100,
};

describe('devices/virtio/mmio-transport', () => {
  it('identity_registers', () => {
    const { transport: t } = mmioRig({ type: 42 });
    expect(t.read(R.magic, 4)).to.equal(0x74726976);
    expect(t.read(R.version, 4)).to.equal(2);
    expect(t.read(R.deviceId, 4)).to.equal(42);
    expect(t.read(R.vendorId, 4)).to.equal(0x554d4551);
  });

  it('queue_registers_program_the_selected_queue', () => {
    const { transport: t, device } = mmioRig({ queueSize: 32 });
    t.write(R.queueSel, 4, 0);
    expect(t.read(R.queueNumMax, 4)).to.equal(32);
    t.write(R.queueNum, 4, 16);
    t.write(R.descLow, 4, 0x1000);
    t.write(R.descHigh, 4, 0);
    t.write(R.driverLow, 4, 0x2000);
    t.write(R.driverHigh, 4, 0);
    t.write(R.deviceLow, 4, 0x3000);
    t.write(R.deviceHigh, 4, 1);
    expect(t.read(R.queueReady, 4)).to.equal(0);
    t.write(R.queueReady, 4, 1);
    expect(t.read(R.queueReady, 4)).to.equal(1);
    expect(device.queueConfig(0)).to.deep.equal({ size: 16, descTable: 0x1000, availRing: 0x2000, usedRing: 0x1_0000_3000, ready: true });
    expect(device.queueAddressWord(0, 'usedRing', 1)).to.equal(1);
    t.write(R.queueReady, 4, 0); // before DRIVER_OK the driver may take it back
    expect(t.read(R.queueReady, 4)).to.equal(0);
    t.write(R.queueSel, 4, 1);
    expect(t.read(R.queueNumMax, 4)).to.equal(0); // queue 1 does not exist
    expect(t.read(R.queueReady, 4)).to.equal(0);
    t.write(R.queueNum, 4, 8);
    expect(device.diagnostics().at(-1)).to.deep.include({ code: 'queue.not-available', section: '4.2.3.2', queue: 1 });
  });

  it('shared_memory_registers_report_no_region', () => {
    const { transport: t, device } = mmioRig();
    t.write(R.shmSel, 4, 0);
    for (const r of [R.shmLenLow, R.shmLenHigh, R.shmBaseLow, R.shmBaseHigh]) expect(t.read(r, 4)).to.equal(0xffff_ffff);
    expect(device.diagnostics()).to.deep.equal([]);
  });

  it('queue_reset_without_ring_reset_is_ignored_and_recorded', () => {
    const { transport: t, device } = mmioRig();
    expect(t.read(R.queueReset, 4)).to.equal(0);
    t.write(R.queueReset, 4, 1);
    expect(device.diagnostics().at(-1)).to.deep.include({ code: 'queue.reset-not-negotiated', section: '4.2.2.1' });
  });

  it('interrupt_line_is_asserted_while_interrupt_status_is_nonzero', () => {
    const rig = mmioRig();
    const r = ring(rig.memory);
    initDevice(rig.transport, { features: V1 | featureBit(ECHO_F_UPPER), queues: [r] });
    r.addChain([{ len: 1, data: bytes('a') }, { len: 1, write: true }]);
    notifyQueue(rig.transport, 0);
    expect(rig.irq.changes).to.deep.equal([true]);
    rig.device.setLink(false);
    expect(rig.transport.read(R.interruptStatus, 4)).to.equal(3);
    expect(rig.irq.changes).to.deep.equal([true]); // already asserted: no second edge
    rig.transport.write(R.interruptAck, 4, 1);
    expect(rig.irq.level).to.equal(true); // config bit still pending
    rig.transport.write(R.interruptAck, 4, 2);
    expect(rig.irq.changes).to.deep.equal([true, false]);
    expect(rig.transport.interruptAsserted).to.equal(false);
    r.addChain([{ len: 1, data: bytes('b') }, { len: 1, write: true }]);
    notifyQueue(rig.transport, 0);
    expect(readIsr(rig.transport)).to.equal(1); // read + ack, as virtio_mmio's handler does
    expect(rig.irq.changes).to.deep.equal([true, false, true, false]);
  });

  it('config_space_at_0x100_is_byte_granular', () => {
    const { transport: t, device } = mmioRig();
    expect(t.read(R.config, 1)).to.equal(0x52);
    expect(t.read(R.config + 1, 2)).to.equal(0x0054);
    t.write(R.config + ECHO_CFG_COUNTER, 2, 0xbeef);
    expect(device.counter).to.equal(0xbeef);
    expect(t.windowSize).to.equal(0x100 + 24);
  });

  it('config_generation_register_follows_device_changes', () => {
    const { transport: t, device } = mmioRig();
    const g = t.read(R.configGeneration, 4);
    device.setLink(false);
    expect(t.read(R.configGeneration, 4)).to.equal(g + 1);
  });

  it('non_32_bit_register_access_is_a_mistake_read_zero_write_ignored', () => {
    const { transport: t, device } = mmioRig();
    expect(t.read(R.magic, 2)).to.equal(0);
    expect(device.diagnostics().at(-1)).to.deep.include({ code: 'register.access-width', section: '4.2.2.2', offset: 0, width: 2 });
    t.write(R.status, 1, 1);
    expect(t.read(R.status, 4)).to.equal(0);
    expect(t.read(R.version + 1, 4)).to.equal(0); // unaligned
    expect(device.diagnosticCount('register.access-width')).to.equal(3);
  });

  it('reading_a_write_only_register_is_a_mistake', () => {
    const { transport: t, device } = mmioRig();
    for (const r of [R.deviceFeaturesSel, R.driverFeatures, R.driverFeaturesSel, R.queueSel, R.queueNum, R.queueNotify, R.interruptAck, R.descLow, R.shmSel]) {
      expect(t.read(r, 4)).to.equal(0);
    }
    expect(device.diagnosticCount('register.read-write-only')).to.equal(9);
    expect(device.diagnostics().at(-1)!.section).to.equal('4.2.2.2');
  });

  it('writing_a_read_only_register_is_a_mistake_and_changes_nothing', () => {
    const { transport: t, device } = mmioRig();
    for (const r of [R.magic, R.version, R.deviceId, R.vendorId, R.deviceFeatures, R.queueNumMax, R.interruptStatus, R.shmLenLow, R.configGeneration]) {
      t.write(r, 4, 0x1234);
    }
    expect(device.diagnosticCount('register.write-read-only')).to.equal(9);
    expect(t.read(R.magic, 4)).to.equal(0x74726976);
    expect(t.read(R.queueNumMax, 4)).to.equal(16);
  });

  it('offsets_that_are_no_register_are_mistakes', () => {
    const { transport: t, device } = mmioRig();
    for (const off of [0x018, 0x028, 0x03c, 0x040, 0x0f8]) expect(t.read(off, 4)).to.equal(0);
    t.write(0x040, 4, 1); // the legacy QueuePFN does not exist in version 2
    expect(device.diagnosticCount('register.unknown-offset')).to.equal(6);
  });

  it('feature_selects_pick_the_32_bit_window', () => {
    const { transport: t, device } = mmioRig();
    t.write(R.deviceFeaturesSel, 4, 1);
    expect(t.read(R.deviceFeatures, 4)).to.equal(1);
    t.write(R.driverFeaturesSel, 4, 1);
    t.write(R.driverFeatures, 4, 1);
    expect(device.negotiatedFeatures).to.equal(V1);
  });

  it('only_a_whole_zero_status_write_resets', () => {
    const { transport: t, device } = mmioRig();
    t.write(R.status, 4, 1);
    t.write(R.status, 4, 0x100); // undefined upper bits: not a reset, and it clears ACKNOWLEDGE
    expect(t.read(R.status, 4)).to.equal(1);
    expect(device.diagnostics().at(-1)!.code).to.equal('status.bit-cleared');
    t.write(R.status, 4, 0);
    expect(t.read(R.status, 4)).to.equal(0);
  });

  it('bad_hypervisor_arguments_throw', () => {
    const { transport: t } = mmioRig();
    expect(() => t.read(0, 3 as 4)).to.throw(RangeError, /width/);
    expect(() => t.write(-4, 4, 0)).to.throw(RangeError, /offset/);
  });
});
