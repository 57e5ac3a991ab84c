import { expect } from 'chai';
import { FeatureNegotiation, VIRTIO_F_ANY_LAYOUT, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit } from '../../../devices/virtio/features.js';
import { initDevice } from '../../support/driver-transport.js';
import { ECHO_F_BIG, ECHO_F_EXTRA, ECHO_F_UPPER } from './echo-device.js';
import { mmioRig, pciRig } from './setup.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);
const OFFER = featureBit(ECHO_F_UPPER) | featureBit(ECHO_F_EXTRA) | featureBit(ECHO_F_BIG) | featureBit(VIRTIO_F_INDIRECT_DESC) | featureBit(VIRTIO_F_EVENT_IDX) | V1;

describe('devices/virtio/features', () => {
  it('device_feature_windows_show_32_bits_per_select_and_zero_beyond_63', () => {
    const rig = mmioRig();
    const t = rig.transport;
    const word = (sel: number): number => {
      t.write(0x14, 4, sel);
      return t.read(0x10, 4);
    };
    expect(word(0)).to.equal(Number(OFFER & 0xffff_ffffn));
    expect(word(1)).to.equal(1); // VERSION_1 is bit 32
    expect(word(2)).to.equal(0);
    expect(word(0xffff_ffff)).to.equal(0);
  });

  it('the_core_always_offers_version_1', () => {
    const rig = mmioRig({ features: 0n });
    expect(rig.device.offered).to.equal(V1);
  });

  it('driver_feature_windows_read_back_what_was_written', () => {
    const rig = pciRig();
    const common = 0; // modern BAR0 starts with common_cfg
    const t = rig.transport;
    t.barWrite(0, common + 8, 4, 1);
    t.barWrite(0, common + 12, 4, 1);
    t.barWrite(0, common + 8, 4, 0);
    t.barWrite(0, common + 12, 4, 0x3000_0001);
    expect(t.barRead(0, common + 12, 4)).to.equal(0x3000_0001);
    t.barWrite(0, common + 8, 4, 1);
    expect(t.barRead(0, common + 12, 4)).to.equal(1);
    expect(rig.device.negotiatedFeatures).to.equal(V1 | 0x3000_0001n);
  });

  it('linux_negotiation_acks_the_intersection', () => {
    const rig = mmioRig();
    const res = initDevice(rig.transport, { features: V1 | featureBit(ECHO_F_UPPER) | featureBit(40) });
    expect(res.ok).to.equal(true);
    expect(res.offered).to.equal(OFFER);
    expect(rig.device.negotiatedFeatures).to.equal(V1 | featureBit(ECHO_F_UPPER));
    expect(rig.device.hasFeature(ECHO_F_UPPER)).to.equal(true);
    expect(rig.device.hasFeature(ECHO_F_BIG)).to.equal(false);
  });

  it('driver_acking_bits_beyond_63_is_refused_at_features_ok', () => {
    const f = new FeatureNegotiation(OFFER);
    expect(f.writeDriverWord(2, 1)?.code).to.equal('features.not-offered');
    f.writeDriverWord(1, 1);
    expect(f.checkFeaturesOk('modern', () => null)?.code).to.equal('features.not-offered');
  });

  it('writing_zero_beyond_63_is_harmless', () => {
    const f = new FeatureNegotiation(OFFER);
    expect(f.writeDriverWord(3, 0)).to.equal(null);
    f.writeDriverWord(1, 1);
    expect(f.checkFeaturesOk('modern', () => null)).to.equal(null);
  });

  it('legacy_window_offers_low_bits_plus_any_layout_and_never_version_1', () => {
    const f = new FeatureNegotiation(OFFER);
    expect(f.offeredLegacy).to.equal((OFFER & 0xffff_ffffn) | featureBit(VIRTIO_F_ANY_LAYOUT));
    expect(f.offeredLegacy & V1).to.equal(0n);
  });

  it('legacy_driver_acking_unoffered_bits_has_them_dropped', () => {
    const f = new FeatureNegotiation(OFFER);
    const m = f.writeLegacyDriverFeatures(Number(featureBit(ECHO_F_UPPER) | featureBit(7)));
    expect(m).to.deep.include({ code: 'features.not-offered', value: 0x80 });
    expect(f.acknowledged).to.equal(featureBit(ECHO_F_UPPER));
  });

  it('reset_reopens_negotiation', () => {
    const f = new FeatureNegotiation(OFFER);
    f.writeDriverWord(1, 1);
    f.freeze();
    expect(f.writeDriverWord(0, 1)?.code).to.equal('features.write-after-features-ok');
    f.reset();
    expect(f.acknowledged).to.equal(0n);
    expect(f.writeDriverWord(0, 1)).to.equal(null);
  });

  it('offer_wider_than_64_bits_is_a_programmer_error', () => {
    expect(() => new FeatureNegotiation(1n << 64n)).to.throw(RangeError, /64-bit/);
  });
});
