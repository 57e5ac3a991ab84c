// FilterChain when the far end calls back into the chain (found with the filter fuzzer's
// re-entrant operations, test/fuzz/filters/): a filter's replaced frame lives in that filter's own
// buffer until its next frame (filter-rewriter's scratch); if the device, while refusing a frame,
// sends one of its own through the chain (an interrupt handler transmitting), or the host's send
// delivers a frame back, that buffer is rewritten — and the frame the chain then keeps for later
// must still be the one the filters produced, not the re-entrant one.

import { expect } from 'chai';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { PASS, type Direction, type NetFilter, type ReplaceVerdict, type Verdict } from '../../../lib/filters/filter.js';
import type { Netdev, NetdevPeer, SendResult } from '../../../lib/netdev/netdev.js';

/** Replaces every frame with a copy whose last byte is bumped, in one scratch buffer reused for every frame (as filter-rewriter does). */
class ScratchFilter implements NetFilter {
  readonly queue = 'all';
  status = true;
  private readonly scratch = new Uint8Array(64);
  private readonly verdict: ReplaceVerdict = { kind: 'replace', frame: new Uint8Array(0), vnetHeader: undefined };
  constructor(readonly id: string) {}
  process(_d: Direction, frame: Uint8Array, hdr: Uint8Array | undefined): Verdict {
    if (frame.length > this.scratch.length) return PASS;
    this.scratch.set(frame);
    this.scratch[frame.length - 1] = (frame[frame.length - 1]! + 1) & 0xff;
    this.verdict.frame = this.scratch.subarray(0, frame.length);
    this.verdict.vnetHeader = hdr;
    return this.verdict;
  }
}

class Host implements Netdev {
  readonly id = 'host';
  peer: NetdevPeer | null = null;
  readonly sent: string[] = [];
  /** Called inside send(); its answer is send's. */
  onSend: ((frame: Uint8Array) => SendResult) | undefined;
  attach(peer: NetdevPeer): void {
    this.peer = peer;
  }
  detach(): void {
    this.peer = null;
  }
  send(frame: Uint8Array): SendResult {
    const hook = this.onSend;
    this.onSend = undefined;
    if (hook !== undefined) return hook(frame);
    this.sent.push(Buffer.from(frame).toString('hex'));
    return 'sent';
  }
  pauseReceive(): void {}
  resumeReceive(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const f = (...b: number[]): Uint8Array => Uint8Array.from(b);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('lib/filters FilterChain re-entry', () => {
  it('a_replaced_frame_the_device_refuses_while_sending_through_the_chain_is_delivered_intact_later', () => {
    const host = new Host();
    const chain = new FilterChain(host);
    chain.add(new ScratchFilter('s'));
    const got: string[] = [];
    let reenter = true;
    chain.attach({
      receive: (frame) => {
        if (reenter) {
          reenter = false;
          chain.send(f(9, 9, 9, 9)); // the guest transmits from inside the delivery, then has no room
          return false;
        }
        got.push(hex(frame));
        return true;
      },
      writable: () => undefined,
    });
    host.peer!.receive(f(1, 2, 3, 4));
    expect(host.sent).to.deep.equal([hex(f(9, 9, 9, 10))]);
    chain.resumeReceive();
    expect(got, 'the held frame is the client frame the filter rewrote').to.deep.equal([hex(f(1, 2, 3, 5))]);
  });

  it('a_replaced_frame_the_host_refuses_while_delivering_through_the_chain_is_sent_intact_later', () => {
    const host = new Host();
    const chain = new FilterChain(host);
    chain.add(new ScratchFilter('s'));
    const got: string[] = [];
    chain.attach({ receive: (frame) => (got.push(hex(frame)), true), writable: () => undefined });
    host.onSend = () => {
      host.peer!.receive(f(7, 7, 7, 7)); // the host hands a frame in from inside send, then is busy
      return 'busy';
    };
    expect(chain.send(f(1, 2, 3, 4))).to.equal('sent'); // taken: held by the chain
    expect(got).to.deep.equal([hex(f(7, 7, 7, 8))]);
    host.peer!.writable();
    expect(host.sent, 'the held frame is the guest frame the filter rewrote').to.deep.equal([hex(f(1, 2, 3, 5))]);
  });
});
