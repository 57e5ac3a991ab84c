// TapNetdev.sendSpan (Netdev.sendSpan: a frame handed over as a range of a larger array, guest
// memory) against the real kernel in throwaway namespaces, on both datapaths — 'inline' (one
// writev(2) of header + the frame where it lies) and 'uring' (copied as words into the slot, queued
// with send()'s frames): frames at every alignment arrive intact and in order interleaved with
// send(), from an ArrayBuffer and a SharedArrayBuffer, with and without the vnet header; the
// header passed is the one written (a header the TAP refuses is counted, the next frame goes);
// multiqueue spans go to their queue's fd; a range outside the array is a RangeError; the device's
// transmit path (NetRig) uses sendSpan on a TAP and its frames arrive. MacvtapNetdev shares the
// inline path (FdNetdev): its spans leave through the lower device.

import { expect } from 'chai';
import { Netns, deleteLink, hostCleanups, linkName, run, trackLink } from '../../support/netns.js';
import { requireIoUring } from '../../support/io-uring.js';
import { MacvtapNetdev } from '../../../lib/netdev/macvtap-netdev.js';
import { TapNetdev } from '../../../lib/netdev/tap-netdev.js';
import type { TapIo } from '../../../lib/netdev/tap-fd.js';
import { NetRig } from '../../support/net-rig.js';
import sinon from 'sinon';
import type { NetdevPeer } from '../../../lib/netdev/netdev.js';
import { captureTestFrames } from '../../support/tap-capture.js';

/** A test frame: broadcast, ethertype 0x88b5 (local experimental), the sequence number and a pattern made from it. */
function frame(seq: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, 1, 0x88, 0xb5, seq >> 8, seq & 0xff], 6);
  for (let i = 16; i < len; i++) f[i] = (seq * 13 + i * 7) & 0xff;
  return f;
}
const hex = (f: Uint8Array): string => Buffer.from(f).toString('hex');


const idle: NetdevPeer = { receive: () => true, writable: () => {} };

/** Lays `frames` out in a fresh "guest memory" at offsets of every alignment; returns the memory and each frame's offset. */
function guestMemory(frames: Uint8Array[], shared: boolean): { ram: Uint8Array; offsets: number[] } {
  const size = 1 << 20;
  const ram = new Uint8Array(shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size)).subarray(3); // a view that does not start the buffer
  ram.fill(0xee); // what lies around each frame must not be written
  const offsets: number[] = [];
  let at = 5;
  for (const f of frames) {
    ram.set(f, at);
    offsets.push(at);
    at += f.length + 1 + (f.length % 3); // every offset mod 4 comes up
  }
  return { ram, offsets };
}

for (const io of ['inline', 'uring'] as TapIo[]) {
  describe(`TapNetdev.sendSpan, io: ${io} (real kernel, throwaway netns)`, function () {
    this.timeout(30_000);
    const cleanups = hostCleanups();
    before(function () {
      if (io === 'uring') requireIoUring(this);
    });

    function setup(options: { vnetHdr?: boolean; queues?: number } = {}): { ns: Netns; tap: TapNetdev } {
      const ns = new Netns();
      cleanups.push(() => ns.destroy());
      ns.disableIpv6();
      const tap = new TapNetdev({ id: 'taps', ifname: linkName('s'), io, ...options });
      trackLink(tap.ifname);
      cleanups.push(() => tap.close());
      ns.adopt(tap.ifname);
      ns.ip(['link', 'set', tap.ifname, 'up']);
      tap.attach(idle);
      return { ns, tap };
    }

    for (const vnetHdr of [true, false]) {
      for (const shared of [false, true]) {
        it(`spans_interleaved_with_send_arrive_intact_and_in_order (${vnetHdr ? 'vnet header' : 'no header'}, ${shared ? 'SharedArrayBuffer' : 'ArrayBuffer'})`, async () => {
          const { ns, tap } = setup({ vnetHdr });
          expect(tap.io).to.equal(io);
          const n = 300; // more than the uring path's 128 slots: batches written mid-burst
          const frames = Array.from({ length: n }, (_, i) => frame(i, 60 + ((i * 37) % 1440)));
          const { ram, offsets } = guestMemory(frames, shared);
          const before = ram.slice();
          const header = vnetHdr ? new Uint8Array(tap.vnetHeaderLength) : undefined; // no flags, no GSO
          const cap = await captureTestFrames(ns, tap.ifname, n);
          for (let i = 0; i < n; i++) {
            const r = i % 3 === 0 ? tap.send(frames[i]!, header) : tap.sendSpan(ram, offsets[i]!, frames[i]!.length, header);
            expect(r, `frame ${i}`).to.equal('sent');
          }
          const got = await cap.done;
          expect(got.length).to.equal(n);
          expect(got).to.deep.equal(frames.map(hex));
          expect(hex(ram)).to.equal(hex(before)); // read, never written
          const s = tap.stats();
          expect(s.txFrames).to.equal(n);
          expect(s.txBytes).to.equal(frames.reduce((a, f) => a + f.length, 0));
          expect(s.txErrors).to.equal(0);
        });
      }
    }

    it('the_header_passed_with_a_span_is_the_one_written: a GSO type the TAP refuses is counted, the next span goes', async () => {
      const { ns, tap } = setup();
      const frames = [frame(1, 100), frame(2, 101), frame(3, 102)];
      const { ram, offsets } = guestMemory(frames, false);
      const good = new Uint8Array(tap.vnetHeaderLength);
      const bad = new Uint8Array(tap.vnetHeaderLength);
      bad[1] = 0x7f; // gso_type no kernel knows: tun_get_user answers EINVAL
      const cap = await captureTestFrames(ns, tap.ifname, 2);
      expect(tap.sendSpan(ram, offsets[0]!, frames[0]!.length, good)).to.equal('sent');
      // inline: the write's EINVAL is the answer; uring: answered 'sent' when queued, counted when written
      expect(tap.sendSpan(ram, offsets[1]!, frames[1]!.length, bad)).to.equal(io === 'inline' ? 'dropped' : 'sent');
      expect(tap.sendSpan(ram, offsets[2]!, frames[2]!.length, good)).to.equal('sent');
      expect(await cap.done).to.deep.equal([hex(frames[0]!), hex(frames[2]!)]);
      expect(tap.stats().txErrors).to.equal(1);
      expect(tap.stats().txFrames).to.equal(2);
      expect(tap.hostErrors().last?.errnoName).to.equal('EINVAL');
    });

    it('multiqueue_spans_go_to_the_fd_of_their_queue', async () => {
      const { ns, tap } = setup({ queues: 2 });
      const frames = [frame(10, 70), frame(11, 71), frame(12, 72), frame(13, 73)];
      const { ram, offsets } = guestMemory(frames, false);
      const cap = await captureTestFrames(ns, tap.ifname, frames.length);
      frames.forEach((f, i) => expect(tap.sendSpan(ram, offsets[i]!, f.length, undefined, i % 2)).to.equal('sent'));
      tap.flush();
      const got = await cap.done;
      expect([...got].sort()).to.deep.equal(frames.map(hex).sort());
      const q = tap.queueStats();
      expect(q.map((s) => s.txFrames)).to.deep.equal([2, 2]);
    });

    it('the_devices_transmit_path_hands_its_frames_to_the_tap_as_spans_and_they_arrive', async () => {
      const { ns, tap } = setup();
      tap.detach(); // the rig's device attaches itself
      const rig = new NetRig({ netdev: tap, mac: '52:54:00:12:34:56' });
      const span = sinon.spy(tap, 'sendSpan');
      const send = sinon.spy(tap, 'send');
      const frames = [frame(20, 64), frame(21, 1000), frame(22, 1514)];
      const cap = await captureTestFrames(ns, tap.ifname, frames.length);
      for (const f of frames) rig.send(f, { split: 'one' }); // header and frame in one descriptor: sent in place
      tap.flush();
      expect(await cap.done).to.deep.equal(frames.map(hex));
      expect(span.callCount).to.equal(frames.length);
      expect(send.callCount).to.equal(0);
    });

    it('a_range_outside_the_array_is_a_RangeError_and_sends_nothing', () => {
      const { tap } = setup();
      const ram = new Uint8Array(4096);
      expect(() => tap.sendSpan(ram, 4000, 97)).to.throw(RangeError, /not a range/);
      expect(() => tap.sendSpan(ram, -1, 10)).to.throw(RangeError, /not a range/);
      expect(() => tap.sendSpan(ram, 1.5, 10)).to.throw(RangeError, /not a range/);
      tap.flush();
      expect(tap.stats().txFrames + tap.stats().txErrors).to.equal(0);
    });
  });
}

describe('MacvtapNetdev.sendSpan (FdNetdev inline path, real kernel, throwaway netns)', function () {
  this.timeout(30_000);
  const cleanups = hostCleanups();

  it('spans_interleaved_with_send_leave_through_the_lower_device_intact_and_in_order', async () => {
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    ns.disableIpv6();
    const lower = linkName('l');
    const mv = linkName('m');
    run('ip', ['link', 'add', lower, 'type', 'veth', 'peer', 'name', 'p0', 'netns', ns.name]);
    trackLink(lower);
    cleanups.push(() => deleteLink(lower)); // takes the macvtap with it
    run('ip', ['link', 'add', 'link', lower, 'name', mv, 'type', 'macvtap', 'mode', 'bridge']);
    trackLink(mv);
    for (const l of [lower, mv]) {
      run('sysctl', ['-qw', `net.ipv6.conf.${l}.disable_ipv6=1`]);
      run('ip', ['link', 'set', l, 'up']);
    }
    ns.ip(['link', 'set', 'p0', 'up']);
    const netdev = new MacvtapNetdev({ id: 'mvs', ifname: mv });
    cleanups.push(() => netdev.close());
    netdev.attach(idle);
    const n = 120;
    const frames = Array.from({ length: n }, (_, i) => frame(i, 60 + ((i * 53) % 1440)));
    const { ram, offsets } = guestMemory(frames, false);
    const header = new Uint8Array(netdev.vnetHeaderLength);
    const cap = await captureTestFrames(ns, 'p0', n);
    for (let i = 0; i < n; i++) {
      const r = i % 2 === 0 ? netdev.send(frames[i]!, header) : netdev.sendSpan(ram, offsets[i]!, frames[i]!.length, header);
      expect(r, `frame ${i}`).to.equal('sent');
    }
    expect(await cap.done).to.deep.equal(frames.map(hex));
    expect(netdev.stats().txFrames).to.equal(n);
  });
});
