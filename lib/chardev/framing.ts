// The byte framing QEMU's filter-mirror, filter-redirector and colo-compare use on a chardev
// socket (QEMU net/net.c SocketReadState / net_fill_rstate, net/filter-mirror.c filter_send):
//   be32 length | [be32 vnet header length, only with vnet_hdr_support] | length bytes
// The length counts the vnet header too: the bytes are the header (vnet header length of them)
// followed by the Ethernet frame.
//
// `FrameReader` is incremental (any split across reads, many frames per read) and reuses one
// buffer: a delivered frame is a view valid only during the callback. Bad framing is a typed
// error; the reader then stops (the caller drops the connection) — frames completed before it
// were already delivered, nothing after it is guessed at. The length is checked against
// MAX_FRAMED_LENGTH before any buffer grows, so a hostile length never allocates.
//
// Backpressure (QEMU's `-netdev stream` uses the same framing without the vnet word, net/stream.c):
// a callback that returns `false` did not take the frame. The reader then holds it in its buffer
// (no copy) with whatever bytes followed it (views of the pushed chunks; the caller stops reading
// its socket, so they are bounded), and `resume()` offers that frame again, then goes on.

import { be32 } from '../base/endian.js';
import { NET_BUFSIZE } from '../base/frame-limits.js';

/** The largest frame a chardev frame may carry: QEMU's NET_BUFSIZE. */
export const MAX_FRAMED_LENGTH = NET_BUFSIZE;
/** virtio-net header lengths that exist (VIRTIO 1.2 §5.1.6: 10 legacy, 12 with VERSION_1/MRG_RXBUF, 20 with HASH_REPORT), and 0. */
export const VNET_HEADER_LENGTHS: readonly number[] = [0, 10, 12, 20];

export type FramingError =
  | { code: 'framing.empty-frame' }
  | { code: 'framing.length-too-large'; length: number; limit: number }
  | { code: 'framing.vnet-header-length'; vnetHeaderLength: number; length: number }
  | { code: 'framing.truncated'; expected: number; got: number };

/** Returns `false` when it cannot take the frame now: the reader holds it until `resume()`. */
export type FrameCallback = (frame: Uint8Array, vnetHeader: Uint8Array | undefined) => boolean | void;

/** Encodes one frame for the wire (one allocation: the socket keeps the bytes after the call). */
export function encodeFrame(frame: Uint8Array, vnetHeader: Uint8Array | undefined, vnetHdrSupport: boolean): Buffer {
  const hdrLen = vnetHdrSupport && vnetHeader !== undefined ? vnetHeader.length : 0;
  const prefix = vnetHdrSupport ? 8 : 4;
  const out = Buffer.allocUnsafe(prefix + hdrLen + frame.length);
  out.writeUInt32BE(hdrLen + frame.length, 0);
  if (vnetHdrSupport) out.writeUInt32BE(hdrLen, 4);
  if (hdrLen > 0) out.set(vnetHeader!, prefix);
  out.set(frame, prefix + hdrLen);
  return out;
}

export class FrameReader {
  private readonly prefix = new Uint8Array(8);
  private prefixGot = 0;
  private buffer = new Uint8Array(2048);
  private length = 0;
  private vnetLength = 0;
  private got = 0;
  private inFrame = false;
  private failed: FramingError | undefined;
  /** A complete frame was refused and waits in `buffer` for resume(). */
  private stalled = false;
  /** Bytes pushed after the refused frame, in order (views of the callers' chunks). */
  private readonly after: Uint8Array[] = [];

  constructor(
    private readonly vnetHdrSupport: boolean,
    private readonly onFrame: FrameCallback,
  ) {}

  /** The error that stopped the reader, if any. */
  get error(): FramingError | undefined {
    return this.failed;
  }

  /** A refused frame is held (see resume()). */
  get holding(): boolean {
    return this.stalled;
  }

  /** Bytes kept after a refused frame, not yet parsed. */
  get heldBytes(): number {
    let n = 0;
    for (const c of this.after) n += c.length;
    return n;
  }

  /**
   * Feeds bytes; returns the framing error if they contain one (the reader stops there). While a
   * refused frame is held, the bytes are kept (a view) and parsed after it.
   */
  push(chunk: Uint8Array): FramingError | undefined {
    if (this.failed !== undefined) return this.failed;
    if (this.stalled) {
      if (chunk.length > 0) this.after.push(chunk);
      return undefined;
    }
    return this.consume(chunk);
  }

  /**
   * Offers the held frame again; when taken, parses the bytes kept after it (which may stop at
   * another refusal). Returns the framing error found in them, if any. A no-op when nothing is held.
   */
  resume(): FramingError | undefined {
    if (this.failed !== undefined) return this.failed;
    if (!this.stalled || !this.deliver()) return undefined;
    this.stalled = false;
    while (this.after.length > 0 && !this.stalled) {
      const e = this.consume(this.after.shift()!);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  private deliver(): boolean {
    const v = this.vnetLength;
    return this.onFrame(this.buffer.subarray(v, this.length), v === 0 ? undefined : this.buffer.subarray(0, v)) !== false;
  }

  private consume(chunk: Uint8Array): FramingError | undefined {
    const prefixLen = this.vnetHdrSupport ? 8 : 4;
    let i = 0;
    while (i < chunk.length) {
      if (!this.inFrame) {
        const take = Math.min(prefixLen - this.prefixGot, chunk.length - i);
        this.prefix.set(chunk.subarray(i, i + take), this.prefixGot);
        this.prefixGot += take;
        i += take;
        if (this.prefixGot < prefixLen) break;
        const p = this.prefix;
        const length = be32(p, 0);
        const vlen = this.vnetHdrSupport ? be32(p, 4) : 0;
        this.prefixGot = 0;
        if (length === 0) return this.fail({ code: 'framing.empty-frame' });
        if (length > MAX_FRAMED_LENGTH) return this.fail({ code: 'framing.length-too-large', length, limit: MAX_FRAMED_LENGTH });
        if (!VNET_HEADER_LENGTHS.includes(vlen) || vlen >= length) {
          return this.fail({ code: 'framing.vnet-header-length', vnetHeaderLength: vlen, length });
        }
        if (this.buffer.length < length) this.buffer = new Uint8Array(Math.max(length, this.buffer.length * 2));
        this.length = length;
        this.vnetLength = vlen;
        this.got = 0;
        this.inFrame = true;
      }
      const take = Math.min(this.length - this.got, chunk.length - i);
      this.buffer.set(chunk.subarray(i, i + take), this.got);
      this.got += take;
      i += take;
      if (this.got === this.length) {
        this.inFrame = false;
        if (!this.deliver()) {
          this.stalled = true;
          if (i < chunk.length) this.after.unshift(chunk.subarray(i)); // before anything pushed later
          return undefined;
        }
      }
    }
    return undefined;
  }

  /** The stream ended: an error when it stopped inside a frame (a held frame is not one). */
  end(): FramingError | undefined {
    if (this.failed !== undefined) return this.failed;
    if (this.stalled) return undefined;
    if (this.inFrame) return this.fail({ code: 'framing.truncated', expected: this.length, got: this.got });
    if (this.prefixGot > 0) return this.fail({ code: 'framing.truncated', expected: this.vnetHdrSupport ? 8 : 4, got: this.prefixGot });
    return undefined;
  }

  private fail(e: FramingError): FramingError {
    this.failed = e;
    return e;
  }
}
