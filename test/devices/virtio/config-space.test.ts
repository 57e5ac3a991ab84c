import { expect } from 'chai';
import { ConfigSpace } from '../../../devices/virtio/config-space.js';
import { featureBit, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import { configGeneration, initDevice, readConfig, readConfigBytes, readIsr, writeConfig } from '../../support/driver-transport.js';
import { ECHO_BIG_VALUE, ECHO_CFG_BIG, ECHO_CFG_COUNTER, ECHO_CFG_MAC, ECHO_CFG_STATUS, ECHO_CFG_TAG, ECHO_F_BIG } from './echo-device.js';
import { mmioRig, pciRig } from './setup.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);
const none = (): boolean => false;

describe('devices/virtio/config-space', () => {
  it('mac_reads_byte_by_byte_as_linux_does', () => {
    for (const rig of [mmioRig(), pciRig()]) {
      expect([...readConfigBytes(rig.transport, ECHO_CFG_MAC, 6)]).to.deep.equal([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    }
  });

  it('reads_of_any_width_at_any_offset_are_little_endian_bytes', () => {
    const rig = mmioRig();
    expect(readConfig(rig.transport, 0, 4)).to.equal(0x12005452);
    expect(readConfig(rig.transport, 1, 2)).to.equal(0x0054);
    expect(readConfig(rig.transport, 3, 4)).to.equal(0x01563412); // mac[3..5] then status low byte
    expect(readConfig(rig.transport, ECHO_CFG_STATUS, 2)).to.equal(1);
    expect(rig.device.diagnostics()).to.deep.equal([]);
  });

  it('a_field_whose_feature_is_offered_exists_before_features_ok', () => {
    const rig = mmioRig();
    expect(readConfig(rig.transport, ECHO_CFG_BIG, 4)).to.equal(Number(ECHO_BIG_VALUE & 0xffff_ffffn));
    expect(readConfig(rig.transport, ECHO_CFG_BIG + 4, 4)).to.equal(Number(ECHO_BIG_VALUE >> 32n));
  });

  it('reading_a_field_whose_feature_was_not_negotiated_reads_zero_and_is_recorded', () => {
    const rig = mmioRig();
    initDevice(rig.transport, { features: V1 });
    expect(readConfig(rig.transport, ECHO_CFG_BIG, 4)).to.equal(0);
    const d = rig.device.diagnostics().at(-1)!;
    expect(d).to.deep.include({ code: 'config.field-absent', section: '2.5.1', offset: ECHO_CFG_BIG, width: 4 });
    const ok = mmioRig();
    initDevice(ok.transport, { features: V1 | featureBit(ECHO_F_BIG) });
    expect(readConfig(ok.transport, ECHO_CFG_BIG, 4)).to.equal(Number(ECHO_BIG_VALUE & 0xffff_ffffn));
  });

  it('reading_past_the_end_reads_zero_and_is_recorded', () => {
    const rig = mmioRig();
    expect(readConfig(rig.transport, 22, 4)).to.equal(Number((ECHO_BIG_VALUE >> 48n) & 0xffffn));
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'config.out-of-range', section: '2.5' });
    expect(readConfig(rig.transport, 0x400, 1)).to.equal(0);
  });

  it('padding_between_fields_reads_zero_without_a_mistake', () => {
    const rig = mmioRig();
    expect(readConfig(rig.transport, 13, 2)).to.equal(0); // bytes 13..14: after tag, before big
    expect(rig.device.diagnostics()).to.deep.equal([]);
  });

  it('driver_writes_merge_into_rw_fields_byte_by_byte', () => {
    const rig = pciRig();
    writeConfig(rig.transport, ECHO_CFG_COUNTER, 4, 0x11223344);
    expect(rig.device.counter).to.equal(0x11223344);
    writeConfig(rig.transport, ECHO_CFG_COUNTER + 2, 1, 0xaa);
    expect(rig.device.counter).to.equal(0x11aa3344);
    expect(readConfig(rig.transport, ECHO_CFG_COUNTER, 4)).to.equal(0x11aa3344);
  });

  it('writing_a_read_only_field_is_ignored_and_recorded', () => {
    const rig = mmioRig();
    writeConfig(rig.transport, ECHO_CFG_MAC, 1, 0xff);
    expect(rig.device.mac[0]).to.equal(0x52);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'config.write-read-only', section: '2.5' });
  });

  it('writing_an_absent_field_is_ignored_and_recorded', () => {
    const rig = mmioRig();
    initDevice(rig.transport, { features: V1 });
    writeConfig(rig.transport, ECHO_CFG_TAG, 1, 7);
    expect(rig.device.tag).to.equal(0);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'config.field-absent' });
  });

  it('device_config_change_bumps_generation_and_interrupts_only_after_driver_ok', () => {
    const rig = mmioRig();
    const g0 = configGeneration(rig.transport);
    rig.device.setLink(false);
    expect(configGeneration(rig.transport)).to.equal(g0 + 1);
    expect(rig.irq.changes).to.deep.equal([]); // no notification before DRIVER_OK (§2.1.2)
    initDevice(rig.transport, { features: V1 });
    rig.device.setLink(true);
    expect(configGeneration(rig.transport)).to.equal(g0 + 2);
    expect(rig.irq.level).to.equal(true);
    expect(readIsr(rig.transport)).to.equal(2);
    expect(rig.irq.level).to.equal(false);
    expect(readConfig(rig.transport, ECHO_CFG_STATUS, 2)).to.equal(1);
  });

  it('pci_generation_is_the_low_byte', () => {
    const rig = pciRig();
    for (let i = 0; i < 300; i++) rig.device.setLink(true);
    expect(configGeneration(rig.transport)).to.equal(300 & 0xff);
    expect(rig.device.configGeneration).to.equal(300);
  });

  it('malformed_field_tables_throw_at_construction', () => {
    const f = (name: string, offset: number, width: 1 | 2 | 4 | 6 | 8) => ({ name, offset, width, access: 'ro' as const, read: () => 0 });
    expect(() => new ConfigSpace([f('a', 0, 4), f('b', 2, 2)])).to.throw(RangeError, /overlap/);
    expect(() => new ConfigSpace([{ ...f('a', 0, 4), width: 3 as 4 }])).to.throw(RangeError, /width/);
    expect(() => new ConfigSpace([{ ...f('a', 0, 4), access: 'rw' }])).to.throw(TypeError, /write/);
    expect(new ConfigSpace([f('a', 4, 2)]).size).to.equal(6);
  });

  it('values_of_each_form_serialise_little_endian', () => {
    const cs = new ConfigSpace([
      { name: 'n', offset: 0, width: 2, access: 'ro', read: () => 0xbeef },
      { name: 'b', offset: 2, width: 8, access: 'ro', read: () => 0x1122334455667788n },
      { name: 'm', offset: 10, width: 6, access: 'ro', read: () => Uint8Array.from([1, 2, 3, 4, 5, 6]) },
    ]);
    expect(cs.read(0, 2, none).value).to.equal(0xbeef);
    expect(cs.read(2, 4, none).value).to.equal(0x55667788);
    expect(cs.read(6, 4, none).value).to.equal(0x11223344);
    expect(cs.read(10, 4, none).value).to.equal(0x04030201);
  });
});
