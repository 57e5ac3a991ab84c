// End-to-end frame oracles of the fuzzer (VIRTIO 1.2 §5.1.6.2 transmit, §5.1.6.4 receive with the
// header rules of §5.1.6.4.1 and the offload state of §5.1.6.5.8):
// - every frame the guest receives is a frame the backend injected, bytes intact, in injection
//   order (frames in between were dropped: filtered, link down, backlog full, reset);
// - its header carries no offload the guest does not have in effect (negotiated, narrowed by an
//   OK-acked GUEST_OFFLOADS_SET): flags zero without GUEST_CSUM, never RSC_INFO, gso_type NONE
//   unless the matching GUEST_TSO4 / TSO6 / UFO / USO4|6 (and ECN only with GUEST_ECN), NEEDS_CSUM and a
//   non-zero gso_size with any GSO type, and csum_start + csum_offset + 2 inside the frame when NEEDS_CSUM is set;
// - num_buffers is 1 without MRG_RXBUF, and with it the count of consecutive used elements;
// - every frame the backend is handed is a frame the driver posted, bytes intact.
// A device may complete a checksum the host left partial for a guest without GUEST_CSUM: the two
// bytes at the host's csum_start + csum_offset are then exempt from "intact" (and only those).

import { VnetHdrFlag, VnetHdrGso } from '../../devices/virtio-net/constants.js';

/** Expected frames kept (older ones were certainly dropped: backlogs are far smaller). */
const EXPECT_MAX = 4096;

export interface StreamProblem {
  code: string;
  detail: string;
}

export interface Offloads {
  csum: boolean;
  tso4: boolean;
  tso6: boolean;
  ecn: boolean;
  ufo: boolean;
  /** GUEST_USO4 or GUEST_USO6 (VIRTIO 1.3): GSO_UDP_L4 (the header does not say the IP version). */
  uso?: boolean;
}

export interface Expected {
  frame: Uint8Array;
  header: Uint8Array | undefined;
  /** What the world knows about the frame (its number, its RSS description): handed back by `take`. */
  info: unknown;
}

/** Frames in flight one way, oldest first; a delivered frame must match one, in order. */
export class FrameStream {
  private list: Expected[] = [];
  private head = 0;

  add(frame: Uint8Array, header?: Uint8Array, info?: unknown): void {
    this.list.push({ frame, header, info });
    if (this.list.length - this.head > EXPECT_MAX) this.head++;
    if (this.head > 1024) {
      this.list = this.list.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.list = [];
    this.head = 0;
  }

  get size(): number {
    return this.list.length - this.head;
  }

  /**
   * Takes the first expected frame equal to `got` (with the checksum exemption when `mayComplete`
   * says the device could have completed the host's partial checksum), dropping those before it.
   * Null when none matches.
   */
  take(got: Uint8Array, mayComplete: (h: Uint8Array | undefined) => boolean, skip?: (e: Expected) => boolean): Expected | null {
    for (let i = this.head; i < this.list.length; i++) {
      const e = this.list[i]!;
      if (e.frame.length !== got.length || skip?.(e) === true) continue;
      const exempt = mayComplete(e.header) && e.header !== undefined ? csumAt(e.header) : -1;
      if (equalExcept(e.frame, got, exempt)) {
        this.head = i + 1;
        return e;
      }
    }
    return null;
  }
}

/** The first waiting frame equal to `got` (as `take` compares), without taking anything. */
export function findIn(stream: FrameStream, got: Uint8Array, mayComplete: (h: Uint8Array | undefined) => boolean): Expected | null {
  let found: Expected | null = null;
  stream.take(got, mayComplete, (e) => {
    if (found === null && e.frame.length === got.length && equalExcept(e.frame, got, mayComplete(e.header) && e.header !== undefined ? csumAt(e.header) : -1)) found = e;
    return true; // skip everything: nothing is taken
  });
  return found;
}

function le16(b: Uint8Array, at: number): number {
  return (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
}

/** Where a header's checksum goes (csum_start + csum_offset), or -1 without NEEDS_CSUM. */
function csumAt(h: Uint8Array): number {
  if (h.length < 10 || ((h[0] ?? 0) & VnetHdrFlag.NEEDS_CSUM) === 0) return -1;
  return le16(h, 6) + le16(h, 8);
}

function equalExcept(a: Uint8Array, b: Uint8Array, exempt: number): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && (exempt < 0 || i < exempt || i > exempt + 1)) return false;
  }
  return true;
}

/** §5.1.6.4.1: what a received header may say to a guest with `o` in effect. */
export function checkRxHeader(h: Uint8Array, frameLen: number, o: Offloads): StreamProblem | null {
  const flags = h[0]!;
  const gso = h[1]!;
  const say = (code: string, what: string): StreamProblem => ({
    code,
    detail: `${what} (header ${Array.from(h.subarray(0, 10), (b) => b.toString(16).padStart(2, '0')).join(' ')}, frame ${frameLen} bytes, guest offloads ${JSON.stringify(o)})`,
  });
  if (!o.csum && flags !== 0) return say('rx.hdr-offload', `flags 0x${flags.toString(16)} handed to a guest without GUEST_CSUM in effect (must be 0)`);
  if ((flags & ~(VnetHdrFlag.NEEDS_CSUM | VnetHdrFlag.DATA_VALID)) !== 0) return say('rx.hdr-offload', `flags 0x${flags.toString(16)}: RSC_INFO or unknown bits, never negotiated`);
  const type = gso & ~VnetHdrGso.ECN;
  if (gso !== VnetHdrGso.NONE) {
    const allowed = (type === VnetHdrGso.TCPV4 && o.tso4) || (type === VnetHdrGso.TCPV6 && o.tso6) || (type === VnetHdrGso.UDP && o.ufo) || (type === VnetHdrGso.UDP_L4 && o.uso === true);
    if (!allowed) return say('rx.hdr-offload', `gso_type 0x${gso.toString(16)} without the matching GUEST_TSO4 / TSO6 / UFO / USO4|6 in effect`);
    if ((gso & VnetHdrGso.ECN) !== 0 && !o.ecn) return say('rx.hdr-offload', `gso_type 0x${gso.toString(16)} carries ECN without GUEST_ECN in effect`);
    if ((flags & VnetHdrFlag.NEEDS_CSUM) === 0) return say('rx.hdr-offload', `gso_type 0x${gso.toString(16)} without NEEDS_CSUM`);
    if (le16(h, 4) === 0) return say('rx.hdr-offload', `gso_type 0x${gso.toString(16)} with gso_size 0 (must be the MSS)`);
  }
  if ((flags & VnetHdrFlag.NEEDS_CSUM) !== 0) {
    const at = le16(h, 6) + le16(h, 8);
    if (at + 2 > frameLen) return say('rx.hdr-csum-outside-frame', `NEEDS_CSUM with csum_start + csum_offset = ${at}, past the ${frameLen}-byte frame`);
  }
  return null;
}
