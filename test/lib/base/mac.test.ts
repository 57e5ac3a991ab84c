import { expect } from 'chai';
import { formatMac, isGroupMac, macFromText, parseMac } from '../../../lib/base/mac.js';

describe('lib/base/mac', () => {
  it('text_round_trips_in_lowercase', () => {
    const m = macFromText('52:54:00:AB:cd:0F')!;
    expect([...m]).to.deep.equal([0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
    expect(formatMac(m)).to.equal('52:54:00:ab:cd:0f');
    expect(formatMac(Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7), 2)).to.equal('02:03:04:05:06:07');
  });

  it('anything_but_six_hex_pairs_is_not_a_mac', () => {
    for (const bad of ['', '52:54:00:12:34', '52:54:00:12:34:56:78', '52-54-00-12-34-56', '5:54:00:12:34:56', 'zz:54:00:12:34:56', ' 52:54:00:12:34:56', 42, undefined]) {
      expect(macFromText(bad), String(bad)).to.equal(undefined);
    }
    expect(() => parseMac('nope', 'options.mac')).to.throw(TypeError, /options\.mac must be a MAC address.*"nope"/);
  });

  it('group_bit_is_bit_0_of_the_first_byte', () => {
    expect(isGroupMac(parseMac('01:00:5e:00:00:01'))).to.equal(true);
    expect(isGroupMac(parseMac('ff:ff:ff:ff:ff:ff'))).to.equal(true);
    expect(isGroupMac(parseMac('52:54:00:12:34:56'))).to.equal(false);
    expect(isGroupMac(Uint8Array.of(0, 0, 0x33), 2)).to.equal(true);
  });
});
