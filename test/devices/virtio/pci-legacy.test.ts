import { expect } from 'chai';
import { featureBit, VIRTIO_F_ANY_LAYOUT, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import { DriverRing } from '../../support/driver-ring.js';
import {
  DRIVER_OK,
  assignBars,
  driverFor,
  findVirtioCaps,
  initDevice,
  legacyDriver,
  legacyRingLayout,
  notifyQueue,
  readConfigBytes,
  readIsr,
} from '../../support/driver-transport.js';
import { ECHO_F_EXTRA, ECHO_F_UPPER } from './echo-device.js';
import { bytes, pciRig, text } from './setup.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);
const UPPER = featureBit(ECHO_F_UPPER);

// Legacy header offsets from §4.1.4.10, written out here.
const L = { hostFeatures: 0, guestFeatures: 4, queuePfn: 8, queueNum: 12, queueSel: 14, queueNotify: 16, status: 18, isr: 19, config: 20 };

function legacyRing(rig: ReturnType<typeof pciRig>, size = 16, base = 0x10000): DriverRing {
  const layout = legacyRingLayout(base, size);
  return new DriverRing(rig.memory, { size, descTable: layout.descTable, availRing: layout.availRing, usedRing: layout.usedRing, heapStart: 0x40000 });
}

describe('devices/virtio/pci-legacy (transitional device)', () => {
  it('transitional_identity_registers', () => {
    const { transport: t } = pciRig({ legacy: true });
    expect(t.configRead(0x02, 2)).to.equal(0x1000);
    expect(t.configRead(0x08, 1)).to.equal(0); // revision 0 (§4.1.2.3)
    expect(t.configRead(0x2e, 2)).to.equal(1); // subsystem id = device type
    expect(t.configRead(0x10, 4) & 1).to.equal(1); // BAR0 is I/O
    expect(t.configRead(0x09, 4) >>> 8).to.equal(0x0200); // network, ethernet
  });

  it('legacy_header_shows_32_feature_bits_without_version_1_and_with_any_layout', () => {
    const rig = pciRig({ legacy: true });
    const host = rig.transport.barRead(0, L.hostFeatures, 4);
    expect(BigInt(host)).to.equal((rig.device.offered & 0xffff_ffffn) | featureBit(VIRTIO_F_ANY_LAYOUT));
    expect(rig.transport.barRead(0, L.queueNum, 2)).to.equal(16);
    rig.transport.barWrite(0, L.queueSel, 2, 1);
    expect(rig.transport.barRead(0, L.queueNum, 2)).to.equal(0);
    expect([...readConfigBytes(legacyDriver(rig.transport), 0, 6)]).to.deep.equal([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  });

  it('legacy_driver_init_and_echo_with_the_4096_aligned_layout', () => {
    const rig = pciRig({ legacy: true });
    assignBars(rig.transport);
    const d = legacyDriver(rig.transport);
    const r = legacyRing(rig);
    const res = initDevice(d, { features: UPPER | V1, queues: [r] });
    expect(res.ok).to.equal(true);
    expect(res.negotiated).to.equal(UPPER); // VERSION_1 is not visible here
    expect(rig.device.negotiatedFeatures).to.equal(UPPER);
    expect(rig.device.activeInterface).to.equal('legacy');
    expect(rig.device.queueConfig(0)).to.deep.equal({ size: 16, descTable: 0x10000, availRing: 0x10100, usedRing: 0x11000, ready: true });
    expect(rig.transport.barRead(0, L.queuePfn, 4)).to.equal(0x10);
    const head = r.addChain([{ len: 4, data: bytes('ping') }, { len: 4, write: true }]);
    notifyQueue(d, 0);
    expect(r.takeUsed()).to.deep.equal([{ id: head, len: 4 }]);
    expect(text(r.writtenBytes(head, 4))).to.equal('PING');
    expect(readIsr(d)).to.equal(1);
    expect(rig.irq.changes).to.deep.equal([true, false]);
    expect(rig.device.diagnostics()).to.deep.equal([]);
  });

  it('legacy_driver_may_notify_before_driver_ok_without_a_mistake', () => {
    const rig = pciRig({ legacy: true });
    const d = legacyDriver(rig.transport);
    const r = legacyRing(rig);
    d.writeStatus(0);
    d.writeStatus(1);
    d.writeStatus(3);
    d.writeDriverFeatures(UPPER);
    d.setupQueue(0, r);
    const head = r.addChain([{ len: 1, data: [0x61] }, { len: 1, write: true }]);
    d.notify(0);
    expect(r.usedEntries()).to.deep.equal([]);
    d.writeStatus(3 | DRIVER_OK);
    expect(r.takeUsed()).to.deep.equal([{ id: head, len: 1 }]);
    expect(rig.device.diagnostics()).to.deep.equal([]); // §3.1.2 allows it
  });

  it('legacy_features_freeze_at_driver_ok', () => {
    const rig = pciRig({ legacy: true });
    const d = legacyDriver(rig.transport);
    initDevice(d, { features: UPPER });
    rig.transport.barWrite(0, L.guestFeatures, 4, 0);
    expect(rig.device.negotiatedFeatures).to.equal(UPPER);
    expect(rig.device.diagnostics().at(-1)!.code).to.equal('features.write-after-features-ok');
  });

  it('legacy_feature_set_the_device_rejects_is_recorded_at_driver_ok', () => {
    const rig = pciRig({ legacy: true });
    const res = initDevice(legacyDriver(rig.transport), { features: featureBit(ECHO_F_EXTRA) });
    expect(res.ok).to.equal(true); // the legacy interface cannot refuse
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'features.rejected-by-device', section: '3.1.2' });
  });

  it('queue_page_number_zero_disables_the_queue_before_driver_ok', () => {
    const rig = pciRig({ legacy: true });
    const d = legacyDriver(rig.transport);
    d.setupQueue(0, legacyRing(rig));
    expect(rig.device.queueConfig(0)!.ready).to.equal(true);
    rig.transport.barWrite(0, L.queuePfn, 4, 0);
    expect(rig.device.queueConfig(0)!.ready).to.equal(false);
    expect(rig.transport.barRead(0, L.queuePfn, 4)).to.equal(0);
  });

  it('writing_the_read_only_queue_size_is_a_mistake', () => {
    const rig = pciRig({ legacy: true });
    rig.transport.barWrite(0, L.queueNum, 2, 8);
    expect(rig.transport.barRead(0, L.queueNum, 2)).to.equal(16);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'register.write-read-only', section: '4.1.4.10' });
    rig.transport.barRead(0, L.hostFeatures, 2);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'register.access-width', section: '4.1.4.10' });
  });

  it('features_ok_through_the_legacy_header_is_dropped_and_recorded', () => {
    const rig = pciRig({ legacy: true });
    rig.transport.barWrite(0, L.status, 1, 1 | 2 | 8);
    expect(rig.transport.barRead(0, L.status, 1)).to.equal(3);
    expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'status.features-ok-on-legacy', section: '3.1.2' });
  });

  it('the_transitional_device_also_serves_a_modern_driver', () => {
    const rig = pciRig({ legacy: true });
    const caps = findVirtioCaps(rig.transport);
    expect(caps.common.offset).to.be.at.least(L.config + rig.device.configSize);
    const r = new DriverRing(rig.memory, { size: 8, base: 0x1000 });
    const d = driverFor(rig.transport);
    expect(initDevice(d, { features: V1 | UPPER, queues: [r] }).ok).to.equal(true);
    expect(rig.device.activeInterface).to.equal('modern');
    const head = r.addChain([{ len: 2, data: bytes('hi') }, { len: 2, write: true }]);
    notifyQueue(d, 0);
    expect(text(r.writtenBytes(head, 2))).to.equal('HI');
  });
});
