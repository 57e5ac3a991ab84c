import { expect } from 'chai';
import fc from 'fast-check';
import { NlWriter, decodeAttrs, encodeAttrs, splitAttrs, NLA_F_NESTED } from '../../../lib/netlink/attributes.js';
import type { AttrSchema } from '../../../lib/netlink/attributes.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  buildMessage,
  errnoError,
  parseError,
  parseMessages,
} from '../../../lib/netlink/message.js';
import { NetlinkError } from '../../../lib/netlink/errors.js';
import { IFLA, IF_OPER, IFF_LOWER_UP, RTM_DELLINK, RTM_NEWLINK, ifinfomsgLayout, parseLink, ndmsgLayout, IFINFOMSG_SIZE, NDMSG_SIZE } from '../../../lib/netlink/rtnetlink.js';
import { carrierUp } from '../../../lib/netlink/link-monitor.js';
import { GENL_HDRLEN, genlmsghdrLayout, parseFamily, writeGenlHeader, CTRL_ATTRS } from '../../../lib/netlink/genl.js';
import { formatMac as formatMacBytes, isGroupMac } from '../../../lib/base/mac.js';
import { parseMacString } from '../../../lib/netlink/mac-text.js';

const SCHEMA: AttrSchema = {
  a8: { type: 1, kind: 'u8' },
  a16: { type: 2, kind: 'u16' },
  a32: { type: 3, kind: 'u32' },
  a64: { type: 4, kind: 'u64' },
  s: { type: 5, kind: 'string' },
  bin: { type: 6, kind: 'binary' },
  flag: { type: 7, kind: 'flag' },
  n: { type: 8, kind: 'nested', nested: { x: { type: 1, kind: 'u32' }, name: { type: 2, kind: 'string' } } },
  i32: { type: 9, kind: 's32' },
};

function encoded(values: Parameters<typeof encodeAttrs>[2], schema = SCHEMA): Uint8Array {
  const w = new NlWriter();
  encodeAttrs(w, schema, values);
  return w.finish();
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof NetlinkError) return e.code;
    throw e;
  }
  return undefined;
}

describe('lib/netlink codec', () => {
  describe('attributes', () => {
    it('every_kind_round_trips', () => {
      const v = { a8: 7, a16: 0xbeef, a32: 0xdeadbeef, a64: 0x1234567890abcdefn, s: 'macvtap', bin: Uint8Array.of(1, 2, 3), flag: true as const, n: { x: 42, name: 'p0' }, i32: -5 };
      expect(decodeAttrs(encoded(v), SCHEMA)).to.deep.equal(v);
    });

    it('attributes_are_padded_to_four_bytes_and_lengths_exclude_padding', () => {
      const b = encoded({ a8: 1, bin: Uint8Array.of(9, 9, 9, 9, 9) });
      // a8: len 5 padded to 8; bin: len 9 padded to 12.
      expect(b.length).to.equal(20);
      expect([b[0], b[1], b[2], b[3]]).to.deep.equal([5, 0, 1, 0]);
      expect([b[5], b[6], b[7]]).to.deep.equal([0, 0, 0]);
      expect([b[8], b[9]]).to.deep.equal([9, 0]);
    });

    it('nested_attributes_carry_NLA_F_NESTED', () => {
      const b = encoded({ n: { x: 1 } });
      const raw = splitAttrs(b);
      expect(raw).to.have.length(1);
      expect(raw[0]!.type).to.equal(8);
      expect(raw[0]!.nested).to.equal(true);
      expect(new DataView(b.buffer).getUint16(2, true) & NLA_F_NESTED).to.equal(NLA_F_NESTED);
    });

    it('unknown_types_are_kept_by_number', () => {
      const w = new NlWriter();
      w.attr(200, Uint8Array.of(1, 2));
      w.attr(3, Uint8Array.of(1, 0, 0, 0));
      const d = decodeAttrs(w.finish(), SCHEMA);
      expect(d.a32).to.equal(1);
      expect(d.unknown).to.deep.equal({ 200: Uint8Array.of(1, 2) });
    });

    it('random_values_round_trip', () => {
      fc.assert(
        fc.property(
          fc.record(
            {
              a8: fc.integer({ min: 0, max: 255 }),
              a16: fc.integer({ min: 0, max: 0xffff }),
              a32: fc.integer({ min: 0, max: 0xffffffff }),
              a64: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
              s: fc.string().filter((x) => !x.includes('\0')),
              bin: fc.uint8Array({ maxLength: 300 }),
              i32: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
            },
            { requiredKeys: [] },
          ),
          (v) => {
            expect(decodeAttrs(encoded(v), SCHEMA)).to.deep.equal(v);
          },
        ),
      );
    });

    it('truncated_attribute_is_a_clear_error', () => {
      const b = encoded({ a32: 5 });
      expect(codeOf(() => decodeAttrs(b.subarray(0, 6), SCHEMA))).to.equal('netlink.truncated');
      expect(codeOf(() => decodeAttrs(b.subarray(0, 3), SCHEMA))).to.equal('netlink.truncated');
    });

    it('attribute_length_below_its_header_is_malformed', () => {
      const b = Uint8Array.of(2, 0, 1, 0);
      let err: NetlinkError | undefined;
      try {
        splitAttrs(b);
      } catch (e) {
        err = e as NetlinkError;
      }
      expect(err?.code).to.equal('netlink.malformed');
      expect(err?.details.offset).to.equal(0);
    });

    it('wrong_payload_size_for_its_kind_is_a_bad_attribute', () => {
      const w = new NlWriter();
      w.attr(3, Uint8Array.of(1, 2, 3)); // a u32 of 3 bytes
      expect(codeOf(() => decodeAttrs(w.finish(), SCHEMA))).to.equal('netlink.bad-attribute');
      const s = new NlWriter();
      s.attr(5, Uint8Array.of(0x61, 0x62)); // a string without NUL
      expect(codeOf(() => decodeAttrs(s.finish(), SCHEMA))).to.equal('netlink.bad-attribute');
    });

    it('bad_values_are_refused_when_encoding', () => {
      expect(codeOf(() => encoded({ a8: 256 }))).to.equal('netlink.bad-value');
      expect(codeOf(() => encoded({ s: 'a\0b' }))).to.equal('netlink.bad-value');
      expect(codeOf(() => encoded({ nope: 1 }))).to.equal('netlink.bad-value');
      expect(codeOf(() => encoded({ bin: new Uint8Array(70000) }))).to.equal('netlink.bad-value');
    });
  });

  describe('messages', () => {
    it('message_round_trips_with_header_fields_and_aligned_length', () => {
      const m = buildMessage({ type: RTM_NEWLINK, flags: NLM_F_REQUEST, seq: 77, pid: 5 }, (w) => w.bytes(Uint8Array.of(1, 2, 3)));
      expect(m.length).to.equal(20);
      const [p, ...rest] = parseMessages(m);
      expect(rest).to.deep.equal([]);
      expect(p).to.include({ type: RTM_NEWLINK, flags: NLM_F_REQUEST, seq: 77, pid: 5 });
      expect([...p!.payload]).to.deep.equal([1, 2, 3, 0]);
    });

    it('a_multipart_datagram_splits_into_its_messages_up_to_done', () => {
      const one = buildMessage({ type: RTM_NEWLINK, flags: NLM_F_MULTI, seq: 1 }, (w) => w.bytes(new Uint8Array(16)));
      const done = buildMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 1 }, (w) => w.s32(0));
      const dgram = new Uint8Array(one.length * 2 + done.length);
      dgram.set(one, 0);
      dgram.set(one, one.length);
      dgram.set(done, one.length * 2);
      expect(parseMessages(dgram).map((m) => m.type)).to.deep.equal([RTM_NEWLINK, RTM_NEWLINK, NLMSG_DONE]);
    });

    it('truncated_and_malformed_messages_are_clear_errors', () => {
      const m = buildMessage({ type: 16, flags: 0, seq: 1 }, (w) => w.bytes(new Uint8Array(8)));
      expect(codeOf(() => parseMessages(m.subarray(0, 10)))).to.equal('netlink.truncated');
      expect(codeOf(() => parseMessages(m.subarray(0, 20)))).to.equal('netlink.truncated');
      const bad = m.slice();
      new DataView(bad.buffer).setUint32(0, 8, true);
      expect(codeOf(() => parseMessages(bad))).to.equal('netlink.malformed');
    });

    it('nlmsg_error_decodes_ack_errno_and_extended_ack_text', () => {
      const req = buildMessage({ type: RTM_NEWLINK, flags: 5, seq: 9 });
      const ack = buildMessage({ type: NLMSG_ERROR, flags: NLM_F_CAPPED, seq: 9 }, (w) => {
        w.s32(0);
        w.bytes(req.subarray(0, 16));
      });
      const a = parseError(parseMessages(ack)[0]!);
      expect(a.errno).to.equal(0);
      expect(a.request).to.include({ type: RTM_NEWLINK, seq: 9 });

      const nak = buildMessage({ type: NLMSG_ERROR, flags: NLM_F_CAPPED | NLM_F_ACK_TLVS, seq: 9 }, (w) => {
        w.s32(-95);
        w.bytes(req.subarray(0, 16));
        w.attr(1, Buffer.from('Operation not supported here\0'));
      });
      const e = parseError(parseMessages(nak)[0]!);
      expect(e.errno).to.equal(95);
      expect(e.extack).to.equal('Operation not supported here');
      const err = errnoError(e, 'RTM_NEWNEIGH');
      expect(err.code).to.equal('netlink.errno');
      expect(err.errno).to.equal(95);
      expect(err.details.extack).to.equal('Operation not supported here');
    });

    it('short_nlmsg_error_is_truncated', () => {
      const m = buildMessage({ type: NLMSG_ERROR, flags: 0, seq: 1 }, (w) => w.s32(-1));
      expect(codeOf(() => parseError(parseMessages(m)[0]!))).to.equal('netlink.truncated');
    });
  });

  describe('family headers (buffer-layout) and typed replies', () => {
    it('fixed_headers_have_their_c_sizes', () => {
      expect(ifinfomsgLayout.span).to.equal(IFINFOMSG_SIZE).and.equal(16);
      expect(ndmsgLayout.span).to.equal(NDMSG_SIZE).and.equal(12);
      expect(genlmsghdrLayout.span).to.equal(GENL_HDRLEN).and.equal(4);
    });

    it('rtm_newlink_reply_decodes_into_link_info', () => {
      const m = buildMessage({ type: RTM_NEWLINK, flags: 0, seq: 1 }, (w) => {
        const b = Buffer.alloc(16);
        ifinfomsgLayout.encode({ family: 0, pad: 0, type: 1, index: 7, flags: 0x1103, change: 0 }, b, 0);
        w.bytes(b);
        encodeAttrs(w, IFLA, { ifname: 'mvt0', address: parseMacString('52:54:00:12:34:56'), mtu: 1500, link: 3, linkinfo: { kind: 'macvtap', data: { mode: 8 } } });
      });
      expect(parseLink(parseMessages(m)[0]!)).to.deep.equal({ index: 7, name: 'mvt0', flags: 0x1103, address: '52:54:00:12:34:56', mtu: 1500, kind: 'macvtap', macvlanMode: 'passthru', link: 3, family: 0 });
      expect(codeOf(() => parseLink({ type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, payload: new Uint8Array(8) }))).to.equal('netlink.truncated');
    });

    it('rtm_dellink_of_a_link_moving_namespace_carries_its_new_netnsid_and_operstate', () => {
      const m = buildMessage({ type: RTM_DELLINK, flags: 0, seq: 0 }, (w) => {
        const b = Buffer.alloc(16);
        ifinfomsgLayout.encode({ family: 0, pad: 0, type: 1, index: 9, flags: 0x11043, change: 0 }, b, 0);
        w.bytes(b);
        encodeAttrs(w, IFLA, { ifname: 'tap0', operstate: IF_OPER.up, newNetnsid: 2 });
      });
      const link = parseLink(parseMessages(m)[0]!);
      expect(link).to.include({ index: 9, name: 'tap0', operstate: 6, newNetnsid: 2, family: 0 });
      expect(carrierUp(link.flags)).to.equal(true); // IFF_UP | IFF_LOWER_UP
      expect(carrierUp(link.flags & ~IFF_LOWER_UP)).to.equal(false);
    });

    it('genl_family_reply_decodes_id_name_and_multicast_groups', () => {
      const w = new NlWriter();
      writeGenlHeader(w, 1, 2);
      encodeAttrs(w, CTRL_ATTRS, { familyId: 0x1d, familyName: 'ethtool', version: 1, maxAttr: 9 });
      const groups = w.beginAttr(7 | NLA_F_NESTED);
      const g1 = w.beginAttr(1 | NLA_F_NESTED);
      encodeAttrs(w, { name: { type: 1, kind: 'string' }, id: { type: 2, kind: 'u32' } }, { name: 'monitor', id: 11 });
      w.endAttr(g1);
      w.endAttr(groups);
      const f = parseFamily(w.finish());
      expect(f).to.deep.include({ id: 0x1d, name: 'ethtool', version: 1, maxAttr: 9 });
      expect([...f.multicastGroups]).to.deep.equal([['monitor', 11]]);
      expect(codeOf(() => parseFamily(Uint8Array.of(1, 2)))).to.equal('netlink.truncated');
    });
  });

  describe('mac text', () => {
    it('mac_text_parses_formats_and_checks_the_group_bit', () => {
      expect(formatMacBytes(parseMacString('01:00:5E:01:02:03'))).to.equal('01:00:5e:01:02:03');
      expect(isGroupMac(parseMacString('01:00:5e:01:02:03'))).to.equal(true);
      expect(isGroupMac(parseMacString('52:54:00:12:34:56'))).to.equal(false);
      expect(codeOf(() => parseMacString('52:54:00:12:34'))).to.equal('netlink.bad-value');
    });
  });
  it('NlWriter grows its buffer under integer writes (u32 past the first 256 bytes)', () => {
    const w = new NlWriter();
    for (let i = 0; i < 200; i++) w.u32(i);
    w.u16(0xbeef);
    w.u8(7);
    w.s32(-2);
    const b = w.finish();
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    expect(b.length).to.equal(200 * 4 + 2 + 1 + 4);
    expect(v.getUint32(199 * 4, true)).to.equal(199);
    expect(v.getUint16(800, true)).to.equal(0xbeef);
    expect(v.getUint8(802)).to.equal(7);
    expect(v.getInt32(803, true)).to.equal(-2);
  });
});
