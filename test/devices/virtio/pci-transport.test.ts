import { expect } from 'chai';
import { featureBit, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import { VirtioPciTransport } from '../../../devices/virtio/pci-transport.js';
import {
  CAP_COMMON,
  CAP_DEVICE,
  CAP_ISR,
  CAP_NOTIFY,
  CAP_PCI_CFG,
  assignBars,
  driverFor,
  findVirtioCaps,
  initDevice,
  legacyDriver,
  legacyRingLayout,
  notifyQueue,
  pciCfgWindowRead,
  pciCfgWindowWrite,
  readConfigBytes,
  readIsr,
} from '../../support/driver-transport.js';
import { EchoDevice, ECHO_F_UPPER } from './echo-device.js';
import { DriverRing } from '../../support/driver-ring.js';
import { bytes, pciRig, ring, text } from './setup.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);
const UPPER = featureBit(ECHO_F_UPPER);

/** The common_cfg offset of a field, from the spec (§4.1.4.3). */
const C = { numQueues: 18, status: 20, qSelect: 22, qSize: 24, qMsix: 26, qEnable: 28, qNotifyOff: 30, qDescLo: 32, qDescHi: 36, qNotifyData: 56, qReset: 58, msixConfig: 16 };

function commonBase(t: VirtioPciTransport): number {
  return findVirtioCaps(t).common.offset;
}

describe('devices/virtio/pci-transport', () => {
  describe('configuration space', () => {
    it('modern_identity_registers', () => {
      const { transport: t } = pciRig();
      expect(t.configRead(0x00, 2)).to.equal(0x1af4);
      expect(t.configRead(0x02, 2)).to.equal(0x1041);
      expect(t.configRead(0x08, 4)).to.equal(0x0200_0001); // class 02/00/00, revision 1
      expect(t.configRead(0x0e, 1)).to.equal(0); // type-0 header, single function
      expect(t.configRead(0x2c, 2)).to.equal(0x1af4);
      expect(t.configRead(0x2e, 2)).to.equal(0x1100); // >= 0x40 for non-transitional (§4.1.2.1)
      expect(t.configRead(0x06, 2) & 0x10).to.equal(0x10); // capability list
      expect(t.configRead(0x34, 1)).to.equal(0x40);
      expect(t.configRead(0x3d, 1)).to.equal(1); // INTA
    });

    it('device_id_is_0x1040_plus_type_and_unknown_types_get_class_other', () => {
      const { transport: t } = pciRig({ type: 42 });
      expect(t.configRead(0x02, 2)).to.equal(0x1040 + 42);
      expect(t.configRead(0x08, 4) >>> 8).to.equal(0xff0000);
    });

    it('capability_walk_finds_every_structure_in_one_io_bar_as_linux_does', () => {
      const { transport: t, device } = pciRig();
      const caps = findVirtioCaps(t); // throws on anything Linux's vp_modern_probe would refuse
      for (const c of [caps.common, caps.notify, caps.isr, caps.device!, caps.pciCfg!]) expect(c.bar).to.equal(0);
      expect(caps.common.length).to.be.at.least(56);
      expect(caps.notify.multiplier).to.equal(4);
      expect(caps.device!.length).to.be.at.least(device.configSize);
      const types: number[] = [];
      let lens = 0;
      for (let pos = t.configRead(0x34, 1); pos !== 0; pos = t.configRead(pos + 1, 1)) {
        expect(t.configRead(pos, 1)).to.equal(0x09);
        types.push(t.configRead(pos + 3, 1));
        lens += t.configRead(pos + 2, 1);
      }
      expect(types).to.deep.equal([CAP_COMMON, CAP_NOTIFY, CAP_ISR, CAP_DEVICE, CAP_PCI_CFG]);
      expect(lens).to.equal(16 + 20 + 16 + 16 + 20);
      expect(t.bars()).to.deep.equal([{ index: 0, size: t.layout.barSize, kind: 'io', address: 0 }]);
    });

    it('bar_sizing_answers_the_size_mask_and_unused_bars_read_zero', () => {
      const { transport: t } = pciRig();
      const size = t.layout.barSize;
      t.configWrite(0x10, 4, 0xffff_ffff);
      expect(t.configRead(0x10, 4)).to.equal(((~(size - 1) & ~3) | 1) >>> 0);
      for (const reg of [0x14, 0x18, 0x1c, 0x20, 0x24, 0x30]) {
        t.configWrite(reg, 4, 0xffff_ffff);
        expect(t.configRead(reg, 4)).to.equal(0);
      }
    });

    it('bar_relocation_keeps_the_aligned_address_and_the_io_bit', () => {
      const { transport: t } = pciRig();
      const bars = assignBars(t, 0xc000);
      expect(bars).to.deep.equal([{ index: 0, kind: 'io', size: t.layout.barSize, address: 0xc000 }]);
      expect(t.configRead(0x10, 4)).to.equal(0xc001);
      t.configWrite(0x10, 4, 0xd000 + 3); // low bits are not writable
      expect(t.configRead(0x10, 4)).to.equal(0xd001);
      expect(t.bars()[0]!.address).to.equal(0xd000);
      t.configWrite(0x10, 2, 0xe000); // a 16-bit write moves it too
      expect(t.bars()[0]!.address).to.equal(0xe000);
      expect(t.configRead(0x04, 2)).to.equal(0x7);
    });

    it('command_register_stores_only_its_writable_bits_and_ids_are_read_only', () => {
      const { transport: t, device } = pciRig();
      t.configWrite(0x04, 2, 0xffff);
      expect(t.configRead(0x04, 2)).to.equal(0x0547);
      t.configWrite(0x00, 4, 0);
      expect(t.configRead(0x00, 2)).to.equal(0x1af4);
      t.configWrite(0x3c, 1, 11);
      expect(t.configRead(0x3c, 1)).to.equal(11);
      expect(device.diagnostics()).to.deep.equal([]);
    });

    it('writing_into_a_virtio_capability_is_a_mistake_and_changes_nothing', () => {
      const { transport: t, device } = pciRig();
      const common = findVirtioCaps(t).common;
      t.configWrite(common.cap + 8, 4, 0x80);
      expect(t.configRead(common.cap + 8, 4)).to.equal(common.offset);
      expect(device.diagnostics().at(-1)).to.deep.include({ code: 'pci.capability-write', section: '4.1.4.1' });
    });

    it('bad_hypervisor_arguments_throw', () => {
      const { transport: t } = pciRig();
      expect(() => t.configRead(255, 2)).to.throw(RangeError, /offset/);
      expect(() => t.barRead(1, 0, 4)).to.throw(RangeError, /bar/);
      expect(() => t.barWrite(0, t.layout.barSize, 1, 0)).to.throw(RangeError, /offset/);
      expect(() => t.barRead(0, 0, 8 as 4)).to.throw(RangeError, /width/);
      const memory = pciRig().memory;
      expect(() => new VirtioPciTransport(new EchoDevice({ memory }), { onInterrupt: () => {}, legacy: 'yes' as never })).to.throw(TypeError, /legacy/);
      expect(() => new VirtioPciTransport(new EchoDevice({ memory, type: 42 }), { onInterrupt: () => {}, legacy: true })).to.throw(RangeError, /transitional/);
    });
  });

  describe('device operation', () => {
    it('linux_modern_init_and_echo_over_the_io_bar', () => {
      const rig = pciRig();
      assignBars(rig.transport);
      const r = ring(rig.memory);
      expect(initDevice(rig.transport, { features: V1 | UPPER, queues: [r] }).ok).to.equal(true);
      const head = r.addChain([{ len: 3, data: bytes('abc') }, { len: 8, write: true }]);
      notifyQueue(rig.transport, 0);
      expect(r.takeUsed()).to.deep.equal([{ id: head, len: 3 }]);
      expect(text(r.writtenBytes(head, 3))).to.equal('ABC');
      expect(rig.device.diagnostics()).to.deep.equal([]);
      expect([...readConfigBytes(rig.transport, 0, 6)]).to.deep.equal([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    });

    it('intx_is_asserted_while_isr_is_nonzero_and_reading_isr_deasserts', () => {
      const rig = pciRig();
      const r = ring(rig.memory);
      initDevice(rig.transport, { features: V1, queues: [r] });
      r.addChain([{ len: 1, data: [1] }, { len: 1, write: true }]);
      notifyQueue(rig.transport, 0);
      rig.device.setLink(false);
      expect(rig.irq.changes).to.deep.equal([true]);
      expect(rig.transport.configRead(0x06, 2) & 0x08).to.equal(0x08); // PCI status: interrupt pending
      expect(readIsr(rig.transport)).to.equal(3);
      expect(rig.irq.changes).to.deep.equal([true, false]);
      expect(rig.transport.configRead(0x06, 2) & 0x08).to.equal(0);
      expect(readIsr(rig.transport)).to.equal(0); // read cleared it
    });

    it('intx_disable_masks_the_line_and_unmasking_restores_it', () => {
      const rig = pciRig();
      initDevice(rig.transport, { features: V1 });
      rig.transport.configWrite(0x04, 2, 0x0400 | 0x7);
      rig.device.setLink(false);
      expect(rig.irq.changes).to.deep.equal([]);
      expect(rig.transport.configRead(0x06, 2) & 0x08).to.equal(0x08); // still pending
      rig.transport.configWrite(0x04, 2, 0x7);
      expect(rig.irq.changes).to.deep.equal([true]);
    });

    it('common_cfg_queue_fields_for_the_selected_queue', () => {
      const { transport: t, device } = pciRig({ queueSize: 64 });
      const b = commonBase(t);
      expect(t.barRead(0, b + C.numQueues, 2)).to.equal(1);
      t.barWrite(0, b + C.qSelect, 2, 0);
      expect(t.barRead(0, b + C.qSize, 2)).to.equal(64);
      expect(t.barRead(0, b + C.qNotifyOff, 2)).to.equal(0);
      expect(t.barRead(0, b + C.qMsix, 2)).to.equal(0xffff);
      expect(t.barRead(0, b + C.msixConfig, 2)).to.equal(0xffff);
      t.barWrite(0, b + C.qMsix, 2, 0); // no MSI-X: the mapping fails and reads NO_VECTOR
      expect(t.barRead(0, b + C.qMsix, 2)).to.equal(0xffff);
      t.barWrite(0, b + C.qDescLo, 4, 0x1000);
      t.barWrite(0, b + C.qDescHi, 4, 2);
      expect(t.barRead(0, b + C.qDescLo, 4)).to.equal(0x1000);
      expect(t.barRead(0, b + C.qDescHi, 4)).to.equal(2);
      expect(device.queueConfig(0)!.descTable).to.equal(2 * 2 ** 32 + 0x1000);
      expect(t.barRead(0, b + C.qNotifyData, 2)).to.equal(0);
      expect(t.barRead(0, b + C.qReset, 2)).to.equal(0);
      t.barWrite(0, b + C.qSelect, 2, 5);
      expect(t.barRead(0, b + C.qSize, 2)).to.equal(0); // unavailable queue (§4.1.4.3.1)
      expect(t.barRead(0, b + C.qEnable, 2)).to.equal(0);
      expect(device.diagnostics()).to.deep.equal([]);
    });

    it('common_cfg_access_with_the_wrong_width_is_a_mistake', () => {
      const { transport: t, device } = pciRig();
      const b = commonBase(t);
      expect(t.barRead(0, b + C.numQueues, 4)).to.equal(0);
      t.barWrite(0, b + C.status, 2, 1);
      expect(device.status).to.equal(0);
      expect(device.diagnosticCount('register.access-width')).to.equal(2);
      expect(device.diagnostics().at(-1)!.section).to.equal('4.1.3.1');
      t.barRead(0, b + 61, 1); // padding after queue_reset
      expect(device.diagnostics().at(-1)!.code).to.equal('register.unknown-offset');
    });

    it('a_narrower_read_at_a_field_start_reads_its_low_bytes_as_in_qemu_and_is_still_a_mistake', () => {
      // Debian's iPXE (1.0.0+git-20190125) reads the 32-bit device_feature with 16-bit accesses.
      const { transport: t, device } = pciRig();
      const b = commonBase(t);
      t.barWrite(0, b + 0, 4, 1); // device_feature_select: bits 32..63
      const hi = t.barRead(0, b + 4, 4);
      expect(hi & 1).to.equal(1); // VIRTIO_F_VERSION_1
      expect(t.barRead(0, b + 4, 2)).to.equal(hi & 0xffff);
      expect(t.barRead(0, b + 4, 1)).to.equal(hi & 0xff);
      expect(device.diagnosticCount('register.access-width')).to.equal(2);
      expect(device.diagnostics().at(-1)).to.deep.include({ code: 'register.access-width', section: '4.1.3.1', offset: 4, width: 1 });
      expect(t.barRead(0, b + 6, 2)).to.equal(0); // not a field's start: 0, as in QEMU
      expect(device.diagnostics().at(-1)!.code).to.equal('register.unknown-offset');
      t.barWrite(0, b + 0, 2, 0); // a narrower write stays ignored
      expect(t.barRead(0, b + 0, 4)).to.equal(1);
      expect(device.diagnosticCount('register.access-width')).to.equal(3);
    });

    it('writing_a_read_only_common_cfg_field_is_a_mistake', () => {
      const { transport: t, device } = pciRig();
      const b = commonBase(t);
      t.barWrite(0, b + C.numQueues, 2, 9);
      expect(t.barRead(0, b + C.numQueues, 2)).to.equal(1);
      expect(device.diagnostics().at(-1)).to.deep.include({ code: 'register.write-read-only', section: '4.1.4.3.2' });
    });

    it('writing_zero_to_queue_enable_is_a_mistake', () => {
      const rig = pciRig();
      const r = ring(rig.memory);
      initDevice(rig.transport, { features: V1, queues: [r] });
      const b = commonBase(rig.transport);
      rig.transport.barWrite(0, b + C.qSelect, 2, 0);
      rig.transport.barWrite(0, b + C.qEnable, 2, 0);
      expect(rig.transport.barRead(0, b + C.qEnable, 2)).to.equal(1);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'queue.disable-unsupported', section: '4.1.4.3.2' });
      rig.transport.barWrite(0, b + C.qReset, 2, 1);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'queue.reset-not-negotiated' });
      expect(rig.device.running).to.equal(true);
    });

    it('notify_is_a_16_bit_write_at_the_queue_slot', () => {
      const rig = pciRig();
      const r = ring(rig.memory);
      initDevice(rig.transport, { features: V1, queues: [r] });
      const n = findVirtioCaps(rig.transport).notify;
      r.addChain([{ len: 1, data: [1] }, { len: 1, write: true }]);
      rig.transport.barWrite(0, n.offset, 4, 0); // wrong width: ignored
      expect(r.usedEntries()).to.deep.equal([]);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'register.access-width', section: '4.1.5.2' });
      rig.transport.barWrite(0, n.offset, 2, 3); // wrong value: the slot decides
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.value-mismatch', queue: 0, value: 3 });
      expect(r.takeUsed()).to.have.length(1);
      expect(rig.transport.barRead(0, n.offset, 2)).to.equal(0);
      expect(rig.device.diagnostics().at(-1)!.code).to.equal('register.read-write-only');
    });

    it('isr_has_one_byte_and_cannot_be_written', () => {
      const rig = pciRig();
      initDevice(rig.transport, { features: V1 });
      rig.device.setLink(false);
      const isr = findVirtioCaps(rig.transport).isr.offset;
      expect(rig.transport.barRead(0, isr, 4)).to.equal(0);
      expect(rig.irq.level).to.equal(true); // a wrong-width read does not clear it
      rig.transport.barWrite(0, isr, 1, 0);
      expect(rig.device.diagnosticCount('register.write-read-only')).to.equal(1);
      expect(rig.transport.barRead(0, isr, 1)).to.equal(2);
      expect(rig.irq.level).to.equal(false);
    });

    it('pci_cfg_window_reads_and_writes_bar_structures', () => {
      const rig = pciRig();
      const caps = findVirtioCaps(rig.transport);
      expect(pciCfgWindowRead(rig.transport, 0, caps.common.offset + C.numQueues, 2)).to.equal(1);
      pciCfgWindowWrite(rig.transport, 0, caps.common.offset + C.status, 1, 1);
      expect(rig.device.status).to.equal(1);
      expect(pciCfgWindowRead(rig.transport, 0, caps.device!.offset, 4)).to.equal(0x12005452);
      rig.device.fail({ code: 'test.x' });
      expect(pciCfgWindowRead(rig.transport, 0, caps.isr.offset, 1)).to.equal(0); // no DRIVER_OK: no interrupt
      expect(rig.device.diagnostics().filter((d) => d.code === 'pci.cfg-window-bad-access')).to.deep.equal([]);
    });

    it('pci_cfg_window_with_a_bad_target_is_a_mistake_and_reads_zero', () => {
      const rig = pciRig();
      const caps = findVirtioCaps(rig.transport);
      expect(pciCfgWindowRead(rig.transport, 0, caps.common.offset + 1, 2)).to.equal(0); // unaligned
      expect(pciCfgWindowRead(rig.transport, 3, 0, 4)).to.equal(0); // no such BAR
      expect(pciCfgWindowRead(rig.transport, 0, caps.common.offset, 3 as 4)).to.equal(0); // bad length
      pciCfgWindowWrite(rig.transport, 0, rig.transport.layout.barSize - 4, 4, 1); // outside every structure
      expect(rig.device.diagnosticCount('pci.cfg-window-bad-access')).to.equal(4);
      expect(rig.device.diagnostics().at(-1)!.section).to.equal('4.1.4.9.2');
    });

    it('a_config_dump_reads_the_unconfigured_window_as_zero_without_a_mistake', () => {
      const { transport: t, device } = pciRig();
      for (let off = 0; off < 256; off += 4) t.configRead(off, 4);
      expect(device.diagnostics()).to.deep.equal([]);
      expect(t.configRead(findVirtioCaps(t).pciCfg!.cap + 16, 4)).to.equal(0);
    });

    it('bar_offsets_outside_every_structure_are_mistakes', () => {
      const { transport: t, device } = pciRig();
      const gap = findVirtioCaps(t).isr.offset + 1;
      expect(t.barRead(0, gap, 1)).to.equal(0);
      t.barWrite(0, gap, 1, 0);
      expect(device.diagnosticCount('register.unknown-offset')).to.equal(2);
    });

    it('a_modern_driver_sees_the_same_device_through_driverFor', () => {
      const rig = pciRig();
      const d = driverFor(rig.transport);
      expect(d.kind).to.equal('pci');
      expect(d.queueMaxSize(0)).to.equal(16);
      expect(d.queueMaxSize(1)).to.equal(0);
      expect(d.readDeviceFeatures() & V1).to.equal(V1);
    });
  });

  describe('legacy-only device (legacy: true, modern: false; QEMU disable-modern=on)', () => {
    // Legacy header offsets from §4.1.4.10, written out here.
    const L = { hostFeatures: 0, queuePfn: 8, queueNum: 12, queueSel: 14, status: 18, config: 20 };

    it('has_the_transitional_identity_and_no_capability_list', () => {
      const { transport: t } = pciRig({ legacy: true, modern: false });
      expect(t.legacy).to.equal(true);
      expect(t.modern).to.equal(false);
      expect(t.configRead(0x00, 2)).to.equal(0x1af4);
      expect(t.configRead(0x02, 2)).to.equal(0x1000); // transitional network card (§4.1.2.1)
      expect(t.configRead(0x08, 4)).to.equal(0x0200_0000); // class 02/00/00, revision 0 (§4.1.2.3)
      expect(t.configRead(0x2c, 2)).to.equal(0x1af4);
      expect(t.configRead(0x2e, 2)).to.equal(1); // subsystem id = device type
      expect(t.configRead(0x06, 2) & 0x10).to.equal(0); // status: no capability list
      expect(t.configRead(0x34, 1)).to.equal(0); // capabilities pointer
      expect(t.configRead(0x3d, 1)).to.equal(1); // INTA
      for (let at = 0x40; at < 0x100; at += 4) expect(t.configRead(at, 4), `config 0x${at.toString(16)}`).to.equal(0);
      expect(() => findVirtioCaps(t)).to.throw(); // nothing a modern driver could use
    });

    it('bar0_holds_only_the_legacy_header_and_device_config', () => {
      const { transport: t, device } = pciRig({ legacy: true, modern: false });
      const end = 20 + device.configSize;
      let size = 1;
      while (size < end) size *= 2;
      expect(t.layout).to.deep.equal({ barSize: size, legacy: { offset: 0, length: end }, common: null, isr: null, notify: null, device: null });
      expect(t.bars()).to.deep.equal([{ index: 0, size, kind: 'io', address: 0 }]);
      // BAR sizing: only BAR0, an I/O BAR of `size` bytes; the others are unimplemented.
      t.configWrite(0x10, 4, 0xffff_ffff);
      expect(t.configRead(0x10, 4)).to.equal((~(size - 1) | 1) >>> 0);
      for (let i = 1; i < 6; i++) {
        t.configWrite(0x10 + 4 * i, 4, 0xffff_ffff);
        expect(t.configRead(0x10 + 4 * i, 4), `BAR${i}`).to.equal(0);
      }
      expect(assignBars(t)).to.deep.equal([{ index: 0, kind: 'io', size, address: 0xc000 }]);
      expect(() => t.barRead(0, size, 1)).to.throw(RangeError, /offset/);
      if (end < size) {
        expect(t.barRead(0, end, 1)).to.equal(0); // padding after the device config
        expect(device.diagnosticCount('register.unknown-offset')).to.equal(1);
      }
    });

    it('config_writes_past_the_header_change_nothing_and_are_no_mistake', () => {
      const { transport: t, device } = pciRig({ legacy: true, modern: false });
      t.configWrite(0x40, 4, 0x1234_5678);
      t.configWrite(0x50, 4, 0xffff_ffff);
      expect(t.configRead(0x40, 4)).to.equal(0);
      expect(t.configRead(0x50, 4)).to.equal(0);
      expect(device.diagnostics()).to.deep.equal([]);
    });

    it('a_legacy_driver_initialises_and_echoes_through_the_legacy_header', () => {
      const rig = pciRig({ legacy: true, modern: false });
      assignBars(rig.transport);
      const d = legacyDriver(rig.transport);
      expect(rig.transport.barRead(0, L.queueNum, 2)).to.equal(16);
      const layout = legacyRingLayout(0x10000, 16);
      const r = new DriverRing(rig.memory, { size: 16, descTable: layout.descTable, availRing: layout.availRing, usedRing: layout.usedRing, heapStart: 0x40000 });
      const res = initDevice(d, { features: UPPER | V1, queues: [r] });
      expect(res.ok).to.equal(true);
      expect(res.negotiated).to.equal(UPPER); // VERSION_1 is never offered on the legacy header
      expect(rig.device.activeInterface).to.equal('legacy');
      expect(rig.transport.barRead(0, L.queuePfn, 4)).to.equal(0x10);
      expect(rig.transport.barRead(0, L.status, 1) & 4).to.equal(4); // DRIVER_OK
      const head = r.addChain([{ len: 4, data: bytes('ping') }, { len: 4, write: true }]);
      notifyQueue(d, 0);
      expect(r.takeUsed()).to.deep.equal([{ id: head, len: 4 }]);
      expect(text(r.writtenBytes(head, 4))).to.equal('PING');
      expect(readIsr(d)).to.equal(1);
      expect(rig.irq.changes).to.deep.equal([true, false]);
      expect([...readConfigBytes(d, 0, 6)]).to.deep.equal([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
      expect(rig.device.diagnostics()).to.deep.equal([]);
    });

    it('options_are_checked_at_once', () => {
      const memory = pciRig().memory;
      const make = (options: object, type?: number) => () =>
        new VirtioPciTransport(new EchoDevice({ memory, ...(type !== undefined ? { type } : {}) }), { onInterrupt: () => {}, ...options });
      expect(make({ modern: false })).to.throw(TypeError, /modern: false needs options\.legacy: true/);
      expect(make({ legacy: false, modern: false })).to.throw(TypeError, /modern: false needs options\.legacy: true/);
      expect(make({ legacy: true, modern: 'no' })).to.throw(TypeError, /options\.modern must be true or false/);
      expect(make({ legacy: true, modern: false }, 42)).to.throw(RangeError, /transitional/);
      expect(make({ legacy: true, modern: true })().modern).to.equal(true);
      expect(make({})().modern).to.equal(true);
    });
  });
});
