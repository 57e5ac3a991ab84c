// lib/host/io-uring.ts against the kernel: a linked batch of writes and a batch of reads on a unix
// SOCK_SEQPACKET pair (record boundaries like a TAP's frames), RWF_NOWAIT answering -EAGAIN at
// once, and the checks made before any call.

import { expect } from 'chai';
import { IORING_OP_READ, IORING_OP_WRITE, IOSQE_IO_LINK, IoUring, NativeMemory, RWF_NOWAIT } from '../../../lib/host/io-uring.js';
import { Errno, closeFd, recvFd, sendTo, socketPair } from '../../../lib/host/libc.js';
import { skipBecause } from '../../support/skip.js';

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;

describe('lib/host/io-uring (real kernel)', () => {
  let ring: IoUring;
  let mem: NativeMemory;
  let fds: [number, number];

  before(function () {
    if (process.platform !== 'linux') skipBecause(this, 'not Linux');
    try {
      new IoUring(1).close();
    } catch (e) {
      skipBecause(this, `io_uring is not available here: ${(e as Error).message}`);
    }
  });

  beforeEach(() => {
    ring = new IoUring(8);
    mem = new NativeMemory(4096);
    fds = socketPair(AF_UNIX, SOCK_SEQPACKET);
  });

  afterEach(() => {
    ring.close();
    ring.close(); // idempotent
    mem.free();
    closeFd(fds[0]);
    closeFd(fds[1]);
  });

  /** Completions as [tag, result], oldest first, consumed. */
  function reap(): [number, number][] {
    const out: [number, number][] = [];
    const n = ring.completions();
    for (let k = 0; k < n; k++) out.push([ring.completionTag(k), ring.completionResult(k)]);
    ring.consume(n);
    return out;
  }

  it('a_linked_batch_of_writes_is_one_call_whose_records_arrive_in_order', () => {
    for (let i = 0; i < 3; i++) {
      mem.bytes.fill(0x41 + i, i * 100, i * 100 + 10 + i);
      ring.prepare(IORING_OP_WRITE, fds[0], mem.address + i * 100, 10 + i, RWF_NOWAIT, i < 2 ? IOSQE_IO_LINK : 0, 7 + i);
    }
    expect(ring.space).to.equal(ring.entries - 3);
    expect(ring.submitAndWait()).to.equal(3);
    expect(reap()).to.deep.equal([[7, 10], [8, 11], [9, 12]]);
    const buf = new Uint8Array(64);
    for (let i = 0; i < 3; i++) {
      expect(recvFd(fds[1], buf, 0)).to.equal(10 + i);
      expect([...buf.subarray(0, 10 + i)].every((b) => b === 0x41 + i)).to.equal(true);
    }
  });

  it('nowait_reads_take_the_queued_records_and_answer_eagain_for_the_rest_without_waiting', () => {
    const rec = Uint8Array.from([1, 2, 3, 4, 5]);
    expect(sendTo(fds[1], rec, 5, null, 0)).to.equal(5);
    for (let i = 0; i < 3; i++) ring.prepare(IORING_OP_READ, fds[0], mem.address + i * 1000, 1000, RWF_NOWAIT, 0, i);
    expect(ring.submitAndWait()).to.equal(3);
    const got = reap();
    expect(got).to.deep.equal([[0, 5], [1, -Errno.EAGAIN], [2, -Errno.EAGAIN]]);
    expect([...mem.bytes.subarray(0, 5)]).to.deep.equal([...rec]);
    expect(ring.completions()).to.equal(0);
  });

  it('bad_sizes_and_a_full_queue_are_refused_before_any_call', () => {
    expect(() => new IoUring(3)).to.throw(RangeError, /power of two/);
    expect(() => new IoUring(0)).to.throw(RangeError);
    for (let i = 0; i < ring.entries; i++) ring.prepare(IORING_OP_READ, fds[0], mem.address, 16, RWF_NOWAIT, 0, i);
    expect(() => ring.prepare(IORING_OP_READ, fds[0], mem.address, 16, RWF_NOWAIT, 0, 99)).to.throw(RangeError, /full/);
    expect(ring.submitAndWait()).to.equal(ring.entries);
    expect(reap().every(([, r]) => r === -Errno.EAGAIN)).to.equal(true);
  });
});
