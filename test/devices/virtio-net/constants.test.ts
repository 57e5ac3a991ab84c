import { expect } from 'chai';
import {
  FEATURE_BITS,
  GUEST_OFFLOAD_FEATURES,
  NetFeature,
  VirtioFeature,
  featureBit,
  featureMask,
  featureMaskFromNames,
  featureName,
  hasFeature,
} from '../../../devices/virtio-net/constants.js';
import { VNET_HDR_LEN, VNET_HDR_MRG_LEN, VnetHdrOffset, vnetHeaderLength } from '../../../devices/virtio-net/vnet-header.js';

describe('devices/virtio-net/constants', () => {
  it('feature_bits_match_virtio_1_2', () => {
    // §5.1.3 (plus CTRL_RX_EXTRA, which the 1.2 list omits) and §6.
    expect(NetFeature).to.include({
      CSUM: 0, GUEST_CSUM: 1, CTRL_GUEST_OFFLOADS: 2, MTU: 3, MAC: 5, GUEST_TSO4: 7, GUEST_TSO6: 8, GUEST_ECN: 9,
      GUEST_UFO: 10, HOST_TSO4: 11, HOST_TSO6: 12, HOST_ECN: 13, HOST_UFO: 14, MRG_RXBUF: 15, STATUS: 16, CTRL_VQ: 17,
      CTRL_RX: 18, CTRL_VLAN: 19, CTRL_RX_EXTRA: 20, GUEST_ANNOUNCE: 21, MQ: 22, CTRL_MAC_ADDR: 23, HOST_USO: 56,
      HASH_REPORT: 57, GUEST_HDRLEN: 59, RSS: 60, RSC_EXT: 61, STANDBY: 62, SPEED_DUPLEX: 63,
    });
    expect(VirtioFeature).to.include({ INDIRECT_DESC: 28, EVENT_IDX: 29, VERSION_1: 32, ACCESS_PLATFORM: 33, RING_PACKED: 34, RING_RESET: 40 });
  });

  it('name_table_maps_both_ways_without_prefixes', () => {
    expect(featureBit('CTRL_VLAN')).to.equal(19);
    expect(featureBit('MRG_RXBUF')).to.equal(15);
    expect(featureBit('EVENT_IDX')).to.equal(29);
    expect(featureBit('VIRTIO_NET_F_CTRL_VLAN')).to.equal(undefined);
    expect(featureName(19)).to.equal('CTRL_VLAN');
    expect(featureName(4)).to.equal(undefined);
    const bits = [...FEATURE_BITS.values()];
    expect(new Set(bits).size, 'no two names share a bit').to.equal(bits.length);
    for (const [name, bit] of FEATURE_BITS) expect(featureName(bit)).to.equal(name);
  });

  it('feature_masks_are_64_bit_words', () => {
    const m = featureMask(NetFeature.MAC, VirtioFeature.VERSION_1, NetFeature.SPEED_DUPLEX);
    expect(m).to.equal((1n << 5n) | (1n << 32n) | (1n << 63n));
    expect(hasFeature(m, 32)).to.equal(true);
    expect(hasFeature(m, 31)).to.equal(false);
    expect(GUEST_OFFLOAD_FEATURES).to.equal(featureMask(1, 7, 8, 9, 10, 54, 55)); // GUEST_USO4/6: VIRTIO 1.3
  });

  it('unknown_feature_name_throws_naming_the_option_and_the_allowed_names', () => {
    expect(featureMaskFromNames(['CTRL_VLAN', 'EVENT_IDX'], 'features.disable')).to.equal(featureMask(19, 29));
    expect(() => featureMaskFromNames(['CTRL_VLAM'], 'features.disable')).to.throw(TypeError, /features\.disable.*"CTRL_VLAM".*CTRL_VLAN/);
    expect(() => featureMaskFromNames('CTRL_VLAN' as unknown as string[], 'features.disable')).to.throw(TypeError, /features\.disable must be an array/);
  });

  it('vnet_header_is_12_bytes_with_version_1_or_mrg_rxbuf_else_10', () => {
    expect(vnetHeaderLength(0n)).to.equal(VNET_HDR_LEN);
    expect(vnetHeaderLength(featureMask(VirtioFeature.VERSION_1))).to.equal(VNET_HDR_MRG_LEN);
    expect(vnetHeaderLength(featureMask(NetFeature.MRG_RXBUF))).to.equal(VNET_HDR_MRG_LEN);
    expect([VNET_HDR_LEN, VNET_HDR_MRG_LEN]).to.deep.equal([10, 12]);
    expect(VnetHdrOffset.NUM_BUFFERS).to.equal(VNET_HDR_LEN);
    expect(VnetHdrOffset.CSUM_OFFSET + 2).to.equal(VNET_HDR_LEN);
  });
});
