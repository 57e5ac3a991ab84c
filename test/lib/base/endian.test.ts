import { expect } from 'chai';
import { be16, be32, le16, le32, writeBe16, writeBe32, writeLe16 } from '../../../lib/base/endian.js';

describe('lib/base/endian', () => {
  const b = Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 0x01);

  it('reads_are_unsigned_in_both_orders', () => {
    expect(be16(b, 0)).to.equal(0xdead);
    expect(be32(b, 0)).to.equal(0xdeadbeef);
    expect(be32(b, 1)).to.equal(0xadbeef01);
    expect(le16(b, 0)).to.equal(0xadde);
    expect(le32(b, 0)).to.equal(0xefbeadde);
    expect(le32(b, 1)).to.equal(0x01efbead);
  });

  it('writes_put_the_low_bits_in_the_right_order', () => {
    const o = new Uint8Array(6);
    writeBe16(o, 0, 0x1234);
    writeLe16(o, 2, 0x1234);
    expect([...o.subarray(0, 4)]).to.deep.equal([0x12, 0x34, 0x34, 0x12]);
    writeBe32(o, 1, 0xcafebabe);
    expect([...o]).to.deep.equal([0x12, 0xca, 0xfe, 0xba, 0xbe, 0]);
    writeBe16(o, 0, 0x12345);
    expect(be16(o, 0)).to.equal(0x2345);
  });
});
