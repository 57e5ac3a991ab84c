// Netlink messages (no VIRTIO section: RFC 3549 §2.3.2, include/uapi/linux/netlink.h): the
// 16-byte nlmsghdr, message framing with NLMSG_ALIGN, NLMSG_ERROR (errno, or 0 = ACK, with
// extended-ack TLVs), NLMSG_DONE ending a multipart (NLM_F_MULTI) dump. Fixed headers are
// described with `buffer-layout`; this is the control path, never per frame.

import BufferLayout from 'buffer-layout';
import { NetlinkError } from './errors.js';
import { NlWriter, decodeAttrs } from './attributes.js';
import type { AttrSchema } from './attributes.js';

export const NLMSG_HDRLEN = 16;
export const NLMSG_ALIGNTO = 4;
export const nlmsgAlign = (n: number): number => (n + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);

/** Control message types (netlink.h). */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

/** nlmsg_flags (netlink.h). */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** Flags of an NLMSG_ERROR ack: the request was cut from it, extended-ack TLVs follow. */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;
/** Extended ack attribute: a NUL-terminated message from the kernel. */
export const NLMSGERR_ATTR_MSG = 1;

export interface NlMsgHdr {
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

/** struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq; __u32 nlmsg_pid; } */
export const nlmsghdrLayout = BufferLayout.struct<NlMsgHdr>([
  BufferLayout.u32('len'),
  BufferLayout.u16('type'),
  BufferLayout.u16('flags'),
  BufferLayout.u32('seq'),
  BufferLayout.u32('pid'),
]);

/** A parsed message: header fields and a view of the payload (valid while the buffer is). */
export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly payload: Uint8Array;
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * Builds one message: header, a fixed family header written by `fixed` (may be absent), then
 * attributes written by `attrs`. The length is filled in at the end.
 */
export function buildMessage(
  header: { type: number; flags: number; seq: number; pid?: number },
  body: (w: NlWriter) => void = () => {},
): Uint8Array {
  const w = new NlWriter();
  w.bytes(new Uint8Array(NLMSG_HDRLEN));
  body(w);
  w.align();
  const out = w.finish();
  nlmsghdrLayout.encode({ len: out.length, type: header.type, flags: header.flags, seq: header.seq >>> 0, pid: header.pid ?? 0 }, asBuffer(out), 0);
  return out;
}

/** Splits a datagram into messages, validating every length. */
export function parseMessages(buf: Uint8Array): NlMessage[] {
  const out: NlMessage[] = [];
  const b = asBuffer(buf);
  let off = 0;
  while (off < buf.length) {
    const remain = buf.length - off;
    if (remain < NLMSG_HDRLEN) {
      throw new NetlinkError('netlink.truncated', `message header cut short: ${remain} bytes at offset ${off}, need ${NLMSG_HDRLEN}`, { offset: off });
    }
    const h = nlmsghdrLayout.decode(b, off);
    if (h.len < NLMSG_HDRLEN) throw new NetlinkError('netlink.malformed', `message at offset ${off} has nlmsg_len ${h.len} < ${NLMSG_HDRLEN}`, { offset: off, type: h.type });
    if (h.len > remain) {
      throw new NetlinkError('netlink.truncated', `message type ${h.type} at offset ${off} claims ${h.len} bytes, ${remain} remain`, { offset: off, type: h.type });
    }
    out.push({ type: h.type, flags: h.flags, seq: h.seq, pid: h.pid, payload: buf.subarray(off + NLMSG_HDRLEN, off + h.len) });
    off += nlmsgAlign(h.len);
  }
  return out;
}

/** What an NLMSG_ERROR carries: 0 = ACK, else a positive errno; the kernel's extack text. */
export interface NlError {
  readonly errno: number;
  /** The header of the request it answers. */
  readonly request: NlMsgHdr;
  readonly extack?: string;
}

const EXTACK_SCHEMA: AttrSchema = { msg: { type: NLMSGERR_ATTR_MSG, kind: 'string' } };

/** Decodes the payload of an NLMSG_ERROR message (struct nlmsgerr + optional extack TLVs). */
export function parseError(m: NlMessage): NlError {
  if (m.payload.length < 4 + NLMSG_HDRLEN) {
    throw new NetlinkError('netlink.truncated', `NLMSG_ERROR payload of ${m.payload.length} bytes, need ${4 + NLMSG_HDRLEN}`, { type: NLMSG_ERROR });
  }
  const b = asBuffer(m.payload);
  const error = b.readInt32LE(0);
  const request = nlmsghdrLayout.decode(b, 4);
  let extack: string | undefined;
  if ((m.flags & NLM_F_ACK_TLVS) !== 0) {
    // With NLM_F_CAPPED only the request header is echoed; otherwise the whole request is.
    const echoed = (m.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : Math.max(NLMSG_HDRLEN, request.len);
    const start = 4 + nlmsgAlign(echoed);
    if (start <= m.payload.length) {
      const tlv = decodeAttrs(m.payload.subarray(start), EXTACK_SCHEMA);
      if (typeof tlv.msg === 'string') extack = tlv.msg;
    }
  }
  return { errno: -error, request, ...(extack === undefined ? {} : { extack }) };
}

/** Makes the error a caller sees for a negative NLMSG_ERROR. */
export function errnoError(e: NlError, what: string): NetlinkError {
  const text = e.extack === undefined ? '' : `: ${e.extack}`;
  return new NetlinkError('netlink.errno', `${what} failed with errno ${e.errno}${text}`, { errno: e.errno, type: e.request.type, ...(e.extack === undefined ? {} : { extack: e.extack }) });
}
