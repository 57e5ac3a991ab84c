// The assembled device over packed rings (VIRTIO 1.2 §2.8) and per-queue reset (§2.6.1,
// VIRTIO_F_RING_RESET) through MMIO QueueReset and PCI queue_reset: a malformed packed list is
// tier 1 like a malformed split chain; a reset queue drops what the device held of it, the others run
// on, and re-enabled with a new ring it works again. The datapath and control tests run over packed
// rings too (datapath.test.ts, device-control.test.ts).

import { expect } from 'chai';
import { CtrlAck, CtrlClass, CtrlRx } from '../../../devices/virtio-net/constants.js';
import { NetRig, ethFrame } from '../../support/net-rig.js';
import { PACKED_F_NEXT, PACKED_F_WRITE } from '../../support/packed-driver-ring.js';
import { NEEDS_RESET } from '../../support/driver-transport.js';
import { PackedQueue } from '../../../virtqueue/packed-queue.js';

const MAIN = '52:54:00:12:34:56';

describe('devices/virtio-net over packed rings', () => {
  for (const transport of ['mmio', 'pci'] as const) {
    describe(transport, () => {
      it('a transmit list with a readable descriptor after a writable one is tier 1, and a reset recovers', () => {
        const rig = new NetRig({ transport, ring: 'packed', mac: MAIN });
        const tx = rig.packedRing(1);
        const head = tx.addRaw([{ len: 4, flags: PACKED_F_WRITE | PACKED_F_NEXT }, { len: 60, id: 0 }]);
        rig.driver.notify(1);
        // code and section, status bit, counter, nothing used, nothing sent
        const d = rig.device.diagnostics().find((x) => x.code === 'packed.readable-after-writable');
        expect(d).to.deep.include({ section: '2.8.17', queue: 1 });
        expect(d!.error).to.deep.include({ code: 'packed.readable-after-writable', head, index: head + 1, indirect: false });
        expect(rig.readStatus() & NEEDS_RESET).to.equal(NEEDS_RESET);
        expect(rig.device.diagnosticCount('packed.readable-after-writable')).to.equal(1);
        expect(rig.device.stats().needsReset).to.equal(1);
        expect(tx.usedEntries()).to.deep.equal([]);
        expect(rig.transmitted).to.have.length(0);
        // The driver resets and initialises again: the same device carries frames.
        rig.start();
        expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
        const f = ethFrame('52:54:00:00:00:01');
        expect(rig.send(f)).to.deep.include({ len: 0 });
        expect(rig.transmitted.map((x) => [...x])).to.deep.equal([[...f]]);
      });

      it('a receive list that runs into descriptors the device still holds is tier 1, and a reset recovers', () => {
        const rig = new NetRig({ transport, ring: 'packed', mac: MAIN, ringSize: 4 });
        expect(rig.has('MRG_RXBUF')).to.equal(true);
        rig.postRx(3, 100);
        // A 1400-byte frame takes the three 100-byte buffers and waits for more: the device holds them.
        expect(rig.inject(ethFrame(MAIN, undefined, { payload: 1400 }))).to.equal(true);
        const rx = rig.packedRing(0);
        expect(rx.usedEntries()).to.deep.equal([]);
        // A two-descriptor list at offsets 3 and 0 (next lap): offset 0 was never marked used.
        rx.addRaw([{ len: 1600, id: 3, flags: PACKED_F_WRITE | PACKED_F_NEXT }, { len: 1600, id: 3, flags: PACKED_F_WRITE }]);
        rig.driver.notify(0);
        const d = rig.device.diagnostics().find((x) => x.code === 'packed.in-flight-exceeded');
        expect(d).to.deep.include({ section: '2.8.16', queue: 0 });
        expect(d!.error).to.deep.include({ head: 3, index: 0, inFlight: 5, size: 4 });
        expect(rig.readStatus() & NEEDS_RESET).to.equal(NEEDS_RESET);
        expect(rig.device.diagnosticCount('packed.in-flight-exceeded')).to.equal(1);
        expect(rig.device.stats().needsReset).to.equal(1);
        expect(rx.usedEntries()).to.deep.equal([]);
        rig.start();
        rig.postRx(2, 1600);
        rig.inject(ethFrame(MAIN));
        expect(rig.received()).to.have.length(1);
      });
    });
  }

  describe('queue reset (§2.6.1)', () => {
    for (const transport of ['mmio', 'pci'] as const) {
      for (const ring of ['split', 'packed'] as const) {
        describe(`${transport}, ${ring} ring`, () => {
          it('resetting the receive queue drops the buffers the device held and the other queues run on', () => {
            const rig = new NetRig({ transport, ring, mac: MAIN });
            expect(rig.has('RING_RESET')).to.equal(true);
            const old = rig.ringAt(0);
            rig.postRx(4, 1600);
            const diagnostics = rig.device.diagnostics().length;
            rig.resetQueue(0, { reenable: false });
            expect(rig.device.diagnostics().length, 'a negotiated reset is not a driver mistake').to.equal(diagnostics);
            // While the queue is reset, frames wait in the backlog; nothing reaches the old ring.
            expect(rig.inject(ethFrame(MAIN, undefined, { fill: 1 }))).to.equal(true);
            expect(old.usedEntries()).to.deep.equal([]);
            // Transmit and control queues are unaffected.
            const f = ethFrame('52:54:00:00:00:02');
            expect(rig.send(f)).to.not.equal(undefined);
            expect(rig.transmitted).to.have.length(1);
            expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [1])).to.equal(CtrlAck.OK);
            // Re-enabled with a new ring: the waiting frame lands there.
            rig.driver.setupQueue(0, rig.ringAt(0));
            rig.driver.enableQueue(0);
            rig.postRx(2, 1600);
            const got = rig.received();
            expect(got).to.have.length(1);
            expect(got[0]!.frame[14]).to.equal(1);
            expect(old.usedEntries()).to.deep.equal([]);
            expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
          });

          it('resetting the receive queue while a merged frame waits on popped buffers releases them', () => {
            const rig = new NetRig({ transport, ring, mac: MAIN });
            expect(rig.has('MRG_RXBUF')).to.equal(true);
            const old = rig.ringAt(0);
            rig.postRx(1, 600);
            const big = ethFrame(MAIN, undefined, { payload: 1400, fill: 7 });
            expect(rig.inject(big)).to.equal(true); // pops the one buffer, waits for more
            expect(old.usedEntries()).to.deep.equal([]);
            rig.resetQueue(0);
            rig.postRx(3, 600);
            const got = rig.received();
            expect(got).to.have.length(1);
            expect(got[0]!.numBuffers).to.equal(3);
            expect([...got[0]!.frame]).to.deep.equal([...big]);
            expect(old.usedEntries(), 'nothing written to the reset ring').to.deep.equal([]);
          });

          it('a transmit list made available before the reset is never sent; the re-enabled queue transmits', () => {
            const rig = new NetRig({ transport, ring, mac: MAIN });
            const stale = ethFrame('52:54:00:00:00:03');
            const zeros = new Uint8Array(rig.hdrLen + stale.length);
            zeros.set(stale, rig.hdrLen);
            rig.ringAt(1).addChain([{ len: zeros.length, data: zeros }]); // not notified
            rig.resetQueue(1);
            const f = ethFrame('52:54:00:00:00:04');
            expect(rig.send(f)).to.not.equal(undefined);
            expect(rig.transmitted.map((x) => [...x])).to.deep.equal([[...f]]);
          });

          it('a queue reset without VIRTIO_F_RING_RESET negotiated is a recorded mistake and the queue runs on', () => {
            const rig = new NetRig({ transport, ring, mac: MAIN, features: { disable: ['RING_RESET'] } });
            expect(() => rig.driver.resetQueue(1)).to.throw(/did not finish its reset/);
            expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'queue.reset-not-negotiated', queue: 1, section: transport === 'mmio' ? '4.2.2.1' : '4.1.4.3.2' });
            expect(rig.send(ethFrame('52:54:00:00:00:05'))).to.not.equal(undefined);
            expect(rig.transmitted).to.have.length(1);
          });

          it('the reset queue reads back its reset values: size the maximum, addresses 0', () => {
            const rig = new NetRig({ transport, ring, mac: MAIN, ringSize: 16 });
            rig.resetQueue(2, { reenable: false });
            expect(rig.driver.queueMaxSize(2)).to.equal(256);
            const c = rig.device.queueConfig(2)!;
            expect(c).to.deep.equal({ size: 256, descTable: 0, availRing: 0, usedRing: 0, ready: false });
            expect(rig.device.queues[2]).to.equal(null);
            expect(rig.device.queues[1]).to.not.equal(null);
          });
        });
      }
    }
  });
});

describe('devices/virtio-net packed ring state', () => {
  for (const transport of ['mmio', 'pci'] as const) {
    it(`the packed positions travel in the state image and the restored device goes on where it was (${transport})`, () => {
      const rig = new NetRig({ transport, ring: 'packed', mac: MAIN, ringSize: 8 });
      // Move both rings away from their first position, across a wrap.
      for (let i = 0; i < 11; i++) {
        rig.postRx(1, 1600);
        rig.inject(ethFrame(MAIN, undefined, { fill: i }));
        expect(rig.received()).to.have.length(1);
        expect(rig.send(ethFrame('52:54:00:00:00:09', undefined, { fill: i }))).to.not.equal(undefined);
      }
      rig.postRx(3, 1600);
      const image = rig.device.saveState();
      // A fresh device over a copy of the memory takes the same positions; this device, restored,
      // goes on from them (from the first position it would find no buffer available).
      const positions = (r: NetRig): number[] => r.device.queues.map((q) => (q instanceof PackedQueue ? q.nextAvail * 0x10000 + q.nextUsed : -1));
      const before = positions(rig);
      expect(before.filter((p) => p > 0x10000 * 8)).to.have.length.greaterThan(0);
      const fresh = new NetRig({ transport, ring: 'packed', mac: MAIN, ringSize: 8, init: false });
      fresh.memory.write(0, rig.memory.bytes(0, rig.memory.size));
      fresh.device.restoreState(image);
      expect(positions(fresh)).to.deep.equal(before);
      rig.device.restoreState(image);
      for (let i = 0; i < 3; i++) rig.inject(ethFrame(MAIN, undefined, { fill: 100 + i }));
      const got = rig.received();
      expect(got.map((f) => f.frame[14])).to.deep.equal([100, 101, 102]);
      const f = ethFrame('52:54:00:00:00:0a');
      expect(rig.send(f)).to.not.equal(undefined);
      expect([...rig.transmitted.at(-1)!]).to.deep.equal([...f]);
      expect(rig.readStatus() & NEEDS_RESET).to.equal(0);
    });
  }
});
