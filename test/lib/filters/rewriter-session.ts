// A COLO TCP session as the secondary's filter-rewriter sees it, built frame by frame: the client
// talks to the primary (whose ISN it learns), the secondary guest answers with its own ISN. Both
// sides' frames carry correct checksums; `expect*` give what the rewriter must turn them into.

import { buildFrame, TCP_FLAG } from '../../../lib/packet/index.js';

const { SYN, ACK, PSH, FIN } = TCP_FLAG;

export interface SessionStep {
  /** 'tx': client → secondary guest (netdev transmits); 'rx': secondary guest → client. */
  direction: 'tx' | 'rx';
  frame: Uint8Array;
  /** seq/ack the frame must carry after the rewriter. */
  seq: number;
  ack: number;
  /** The primary's SYN/ACK the client really saw (for the client's-view capture). */
  primaryTwin?: Uint8Array;
}

export interface SessionSpec {
  client: string;
  guest: string;
  clientIsn: number;
  primaryIsn: number;
  secondaryIsn: number;
}

const u32 = (n: number): number => n >>> 0;

/** Guest is the server: handshake, request, response, FIN from the guest, FIN from the client, last ACK. */
export function serverSession(s: SessionSpec): SessionStep[] {
  const { client, guest } = s;
  const c = s.clientIsn;
  const P = s.primaryIsn;
  const S = s.secondaryIsn;
  const req = Buffer.from('GET /index.html HTTP/1.1\r\nHost: colo\r\n\r\n'.padEnd(100, '.'));
  const resp = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 160\r\n\r\n'.padEnd(200, '#'));
  const fromClient = (seq: number, ack: number, flags: number, payload?: Uint8Array): Uint8Array =>
    buildFrame({ src: client, dst: guest, protocol: 'tcp', srcPort: 40000, dstPort: 8080, seq: u32(seq), ack: u32(ack), flags, payload });
  const fromGuest = (seq: number, ack: number, flags: number, payload?: Uint8Array): Uint8Array =>
    buildFrame({ src: guest, dst: client, protocol: 'tcp', srcPort: 8080, dstPort: 40000, seq: u32(seq), ack: u32(ack), flags, payload });
  return [
    { direction: 'tx', frame: fromClient(c, 0, SYN), seq: u32(c), ack: u32(0) },
    { direction: 'rx', frame: fromGuest(S, c + 1, SYN | ACK), seq: u32(S), ack: u32(c + 1), primaryTwin: fromGuest(P, c + 1, SYN | ACK) },
    { direction: 'tx', frame: fromClient(c + 1, P + 1, ACK), seq: u32(c + 1), ack: u32(S + 1) },
    { direction: 'tx', frame: fromClient(c + 1, P + 1, PSH | ACK, req), seq: u32(c + 1), ack: u32(S + 1) },
    { direction: 'rx', frame: fromGuest(S + 1, c + 101, ACK), seq: u32(P + 1), ack: u32(c + 101) },
    { direction: 'rx', frame: fromGuest(S + 1, c + 101, PSH | ACK, resp), seq: u32(P + 1), ack: u32(c + 101) },
    { direction: 'tx', frame: fromClient(c + 101, P + 201, ACK), seq: u32(c + 101), ack: u32(S + 201) },
    { direction: 'rx', frame: fromGuest(S + 201, c + 101, FIN | ACK), seq: u32(P + 201), ack: u32(c + 101) },
    { direction: 'tx', frame: fromClient(c + 101, P + 202, FIN | ACK), seq: u32(c + 101), ack: u32(S + 202) },
    { direction: 'rx', frame: fromGuest(S + 202, c + 102, ACK), seq: u32(P + 202), ack: u32(c + 102) },
  ];
}
