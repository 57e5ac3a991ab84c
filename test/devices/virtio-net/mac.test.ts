import { expect } from 'chai';
import { defaultMac, formatMac, isBroadcastMac, isGroupMac, macHigh, macKey, macLow, parseMac } from '../../../devices/virtio-net/mac.js';

describe('devices/virtio-net/mac', () => {
  it('parses_colon_form_in_any_case_and_formats_lowercase', () => {
    const m = parseMac('52:54:00:AB:cd:0F');
    expect([...m]).to.deep.equal([0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
    expect(formatMac(m)).to.equal('52:54:00:ab:cd:0f');
    const padded = Uint8Array.of(9, 9, ...m);
    expect(formatMac(padded, 2)).to.equal('52:54:00:ab:cd:0f');
  });

  for (const bad of ['52:54:00:12:34', '52-54-00-12-34-56', '52:54:00:12:34:5g', ' 52:54:00:12:34:56', '525400123456', '']) {
    it(`malformed_mac_${JSON.stringify(bad)}_throws_naming_the_option`, () => {
      expect(() => parseMac(bad, 'options.mac')).to.throw(TypeError, /options\.mac must be a MAC address/);
    });
  }

  it('non_string_mac_throws', () => {
    expect(() => parseMac(42 as unknown as string)).to.throw(TypeError, /mac must be a MAC address.*42/);
  });

  it('splits_into_a_16_bit_and_a_32_bit_integer_and_a_48_bit_key', () => {
    const m = parseMac('ff:fe:80:00:00:01');
    expect(macHigh(m, 0)).to.equal(0xfffe);
    expect(macLow(m, 0)).to.equal(0x80000001 | 0);
    expect(macKey(macHigh(m, 0), macLow(m, 0))).to.equal(0xfffe80000001);
  });

  it('group_and_broadcast_bits', () => {
    expect(isGroupMac(parseMac('01:00:5e:00:00:01'))).to.equal(true);
    expect(isGroupMac(parseMac('52:54:00:12:34:56'))).to.equal(false);
    expect(isBroadcastMac(parseMac('ff:ff:ff:ff:ff:ff'))).to.equal(true);
    expect(isBroadcastMac(parseMac('ff:ff:ff:ff:ff:fe'))).to.equal(false);
  });

  it('default_mac_is_locally_administered_unicast_in_qemus_scheme', () => {
    expect(formatMac(defaultMac())).to.equal('52:54:00:12:34:56');
    expect(formatMac(defaultMac(1))).to.equal('52:54:00:12:34:57');
    const first = defaultMac()[0]!;
    expect(first & 0b10, 'locally administered').to.equal(0b10);
    expect(first & 0b01, 'unicast').to.equal(0);
    expect(() => defaultMac(256)).to.throw(RangeError, /index/);
  });
});
