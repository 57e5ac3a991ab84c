// A TCP service for the scripted guest (`virtio-net run --tcp-echo PORT`): enough of RFC 9293 for
// a client to hold a session with the guest — SYN → SYN/ACK, each in-order data segment answered
// with one segment `echo: <data>` (which also ACKs it), FIN → FIN/ACK, RST forgets. IPv4, no
// options, window 65535. A retransmitted request is answered with the same response at the same
// sequence number (the client's retransmission means ours was lost); other out-of-window segments
// get a bare ACK. The initial sequence number is random, as a real stack's is (on a COLO
// secondary the filter-rewriter maps it).
// `diverge`: a request containing that text is answered `DIVERGED: <data>` instead — a planted
// difference between a COLO primary and secondary (colo-compare must notice it).
// Not the hot path: each answer is a freshly built frame (lib/packet/build.ts).

import { buildFrame } from '../packet/build.js';
import { formatAddress, newPacketInfo, parsePacket, TCP_FLAG } from '../packet/parse.js';

export interface GuestTcpOptions {
  mac: Uint8Array;
  ip: readonly number[];
  port: number;
  diverge?: string;
  send: (frame: Uint8Array) => boolean;
  random?: () => number;
}

export interface GuestTcpTally {
  tcpConnections: number;
  tcpRequests: number;
  tcpDiverged: number;
}

interface Conn {
  peerMac: string;
  peerIp: string;
  peerPort: number;
  /** Our next sequence number. */
  sndNxt: number;
  /** The client's next sequence number. */
  rcvNxt: number;
  /** The last request's sequence number and our answer to it (resent on a retransmission). */
  lastReqSeq: number;
  lastReqLen: number;
  lastAnswer: Uint8Array | undefined;
  lastAnswerSeq: number;
  finSent: boolean;
}

const MAX_CONNECTIONS = 64;

function macText(b: Uint8Array, at: number): string {
  return [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export class GuestTcp {
  readonly tally: GuestTcpTally = { tcpConnections: 0, tcpRequests: 0, tcpDiverged: 0 };
  private readonly info = newPacketInfo();
  private readonly conns = new Map<string, Conn>();
  private readonly ipText: string;
  private readonly macText: string;
  private readonly random: () => number;
  private readonly encoder = new TextEncoder();

  constructor(private readonly options: GuestTcpOptions) {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new TypeError(`GuestTcp: port must be 1-65535, got ${String(options.port)}`);
    this.ipText = options.ip.join('.');
    this.macText = macText(options.mac, 0);
    this.random = options.random ?? Math.random;
  }

  /** True when the frame was a TCP segment for the service (handled here). */
  handle(frame: Uint8Array): boolean {
    const i = this.info;
    if (parsePacket(frame, i) !== 'ip' || i.ipVersion !== 4 || i.protocol !== 6 || i.fragment || i.vlanTags !== 0) return false;
    if (i.dstPort !== this.options.port || formatAddress(frame, i.dstOffset, 4) !== this.ipText) return false;
    const peerIp = formatAddress(frame, i.srcOffset, 4);
    const key = `${peerIp}:${i.srcPort}`;
    const flags = i.tcpFlags;
    let c = this.conns.get(key);
    if ((flags & TCP_FLAG.RST) !== 0) {
      this.conns.delete(key);
      return true;
    }
    if ((flags & TCP_FLAG.SYN) !== 0) {
      if (c === undefined) {
        if (this.conns.size >= MAX_CONNECTIONS) return true;
        c = {
          peerMac: macText(frame, i.ethOffset + 6), peerIp, peerPort: i.srcPort,
          sndNxt: Math.floor(this.random() * 0x100000000) >>> 0, rcvNxt: (i.tcpSeq + 1) >>> 0,
          lastReqSeq: -1, lastReqLen: 0, lastAnswer: undefined, lastAnswerSeq: 0, finSent: false,
        };
        this.conns.set(key, c);
        this.tally.tcpConnections++;
        this.segment(c, (c.sndNxt - 1) >>> 0, TCP_FLAG.SYN | TCP_FLAG.ACK); // ISS, then sndNxt = ISS + 1
        return true;
      }
      // A retransmitted SYN: the SYN/ACK again.
      this.segment(c, (c.sndNxt - 1) >>> 0, TCP_FLAG.SYN | TCP_FLAG.ACK);
      return true;
    }
    if (c === undefined) return true; // no connection: ignored (a real stack would RST)
    const len = i.payloadLength;
    if (len > 0) {
      if (i.tcpSeq === c.rcvNxt) {
        const data = frame.subarray(i.payloadOffset, i.payloadOffset + len);
        c.lastReqSeq = i.tcpSeq;
        c.lastReqLen = len;
        c.rcvNxt = (c.rcvNxt + len) >>> 0;
        const text = new TextDecoder().decode(data);
        const diverge = this.options.diverge;
        const diverged = diverge !== undefined && diverge !== '' && text.includes(diverge);
        if (diverged) this.tally.tcpDiverged++;
        this.tally.tcpRequests++;
        const answer = this.encoder.encode(`${diverged ? 'DIVERGED' : 'echo'}: ${text}`);
        c.lastAnswer = answer;
        c.lastAnswerSeq = c.sndNxt;
        this.segment(c, c.sndNxt, TCP_FLAG.ACK | TCP_FLAG.PSH, answer);
        c.sndNxt = (c.sndNxt + answer.length) >>> 0;
      } else if (i.tcpSeq === c.lastReqSeq && len === c.lastReqLen && c.lastAnswer !== undefined) {
        this.segment(c, c.lastAnswerSeq, TCP_FLAG.ACK | TCP_FLAG.PSH, c.lastAnswer);
      } else {
        this.segment(c, c.sndNxt, TCP_FLAG.ACK);
      }
    }
    if ((flags & TCP_FLAG.FIN) !== 0 && ((i.tcpSeq + len) >>> 0) === c.rcvNxt) {
      c.rcvNxt = (c.rcvNxt + 1) >>> 0;
      if (!c.finSent) {
        this.segment(c, c.sndNxt, TCP_FLAG.FIN | TCP_FLAG.ACK);
        c.sndNxt = (c.sndNxt + 1) >>> 0;
        c.finSent = true;
      } else this.segment(c, c.sndNxt, TCP_FLAG.ACK);
    } else if (len === 0 && c.finSent && i.tcpAck === c.sndNxt) {
      this.conns.delete(key); // the ACK of our FIN
    }
    return true;
  }

  private segment(c: Conn, seq: number, flags: number, payload?: Uint8Array): void {
    this.options.send(buildFrame({
      srcMac: this.macText, dstMac: c.peerMac, src: this.ipText, dst: c.peerIp, protocol: 'tcp',
      srcPort: this.options.port, dstPort: c.peerPort, seq, ack: c.rcvNxt, flags, window: 65535,
      ...(payload === undefined ? {} : { payload }),
    }));
  }
}
