// Re-entry from the device's call-outs (VIRTIO 1.2 §2.4: after a reset the device does not touch
// the driver's memory; §2.7: a queue the driver disabled is not used; §2.7.13: every chain is
// completed exactly once). The device calls out to the netdev (send, pause/resume), to listeners
// ('transmit' on the netdev, 'rx-filter-changed', 'diagnostic') and to the hypervisor (onInterrupt);
// an embedder may write the device's registers from any of them. Each test resets (or disables,
// or kicks) from one such call-out and checks concretely: no guest-memory write, no frame sent, no
// interrupt after it — and that the same device then passes a good exchange after re-initialising.

import { expect } from 'chai';
import { ALL_FEATURES, NetRig, ethFrame, le16 } from '../../support/net-rig.js';
import type { NetRigOptions, RigTransport } from '../../support/net-rig.js';
import { resetDevice } from '../../support/driver-transport.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { CtrlClass, CtrlMq, CtrlRx } from '../../../devices/virtio-net/constants.js';
import type { BufferSpec } from '../../support/driver-ring.js';
import type { VirtioMmioTransport } from '../../../devices/virtio/mmio-transport.js';
import type { VirtioPciTransport } from '../../../devices/virtio/pci-transport.js';

const MAIN = '52:54:00:12:34:56';
const PEER = '52:54:00:aa:bb:cc';
/**
 * How a driver stops using one queue, register by register, as Linux's del_vq does: MMIO QueueReady
 * = 0 read back (§4.2.2.2); legacy PCI queue page number 0 (§4.1.4.10). Modern PCI has no such write
 * without VIRTIO_F_RING_RESET.
 */
const DISABLE_QUEUE: Partial<Record<RigTransport, (rig: NetRig, index: number) => void>> = {
  mmio: (rig, index) => {
    const t = rig.transport as VirtioMmioTransport;
    t.write(0x030, 4, index); // QueueSel
    t.write(0x044, 4, 0); // QueueReady
    expect(t.read(0x044, 4)).to.equal(0);
  },
  'pci-legacy': (rig, index) => {
    const t = rig.transport as VirtioPciTransport;
    t.barWrite(0, 14, 2, index); // queue select
    t.barWrite(0, 8, 4, 0); // queue address (page number)
    expect(t.barRead(0, 8, 4)).to.equal(0);
  },
};

/** Frame i: its number in the payload, so order and identity can be checked. */
function numbered(i: number, dst = PEER): Uint8Array {
  const f = ethFrame(dst, MAIN, { payload: 60 });
  f[14] = i;
  return f;
}

/**
 * What the device does after `arm()`: guest-memory writes (through the memory's write observer:
 * only the device runs between arm() and the end of the outer call), frames sent, interrupts.
 */
class AfterMark {
  readonly writes: [number, number][] = [];
  private armed = false;
  private sent = 0;
  private raises = 0;
  constructor(private readonly rig: NetRig) {
    rig.memory.setWriteObserver((address, length) => {
      if (this.armed) this.writes.push([address, length]);
    });
  }
  arm(): void {
    this.armed = true;
    this.sent = (this.rig.netdev as MemoryNetdev).stats().transmitted;
    this.raises = this.rig.irqRaises;
  }
  /** Ends recording and checks that nothing happened since arm(). */
  expectNothing(): void {
    this.armed = false;
    expect(this.writes, 'guest-memory writes after the mark').to.deep.equal([]);
    expect((this.rig.netdev as MemoryNetdev).stats().transmitted, 'frames sent after the mark').to.equal(this.sent);
    expect(this.rig.irqRaises, 'interrupts raised after the mark').to.equal(this.raises);
  }
}

/** Places a transmit chain (header + frame in one descriptor) without notifying. */
function placeTx(rig: NetRig, frame: Uint8Array, queue = 1): number {
  const whole = new Uint8Array(rig.hdrLen + frame.length);
  whole.set(frame, rig.hdrLen);
  return rig.rings[queue]!.addChain([{ len: whole.length, data: whole }]);
}

/** Re-initialises the device and checks one frame each way. */
function expectGoodExchange(rig: NetRig, features = ALL_FEATURES): void {
  expect(rig.start(features).ok).to.equal(true);
  const out = numbered(0x77);
  const sentBefore = rig.transmitted.length;
  const used = rig.send(out);
  expect(used, 'the transmit chain completes').to.not.equal(undefined);
  expect(rig.transmitted.slice(sentBefore)).to.deep.equal([out]);
  rig.postRx(4);
  rig.received(); // whatever the backend held across the reset arrives first
  const back = numbered(0x78, MAIN);
  expect(rig.inject(back)).to.equal(true);
  expect(rig.received().map((r) => r.frame)).to.deep.equal([back]);
}

const TRANSPORTS: RigTransport[] = ['mmio', 'pci', 'pci-legacy'];

describe('devices/virtio-net re-entry from call-outs', () => {
  for (const transport of TRANSPORTS) {
    describe(transport, () => {
      it('reset_from_a_transmit_listener_stops_the_tx_burst', () => {
        const rig = new NetRig({ mac: MAIN, transport });
        const mark = new AfterMark(rig);
        for (let i = 0; i < 4; i++) placeTx(rig, numbered(i));
        let resets = 0;
        (rig.netdev as MemoryNetdev).on('transmit', () => {
          if (resets++ > 0) return;
          resetDevice(rig.driver);
          mark.arm();
        });
        rig.driver.notify(1);
        mark.expectNothing();
        expect(rig.transmitted.map((f) => f[14])).to.deep.equal([0]);
        expect(rig.tx.usedIdx(), 'used.idx untouched').to.equal(0);
        expect(rig.device.status).to.equal(0);
        expect(rig.device.isr).to.equal(0);
        expectGoodExchange(rig);
      });
    });
  }

  it('reset_from_on_interrupt_stops_further_used_ring_writes', () => {
    // VQ_PAIRS_SET 2 serves transmitq2 at once, from inside the control queue's pass: its used
    // interrupt reaches the hypervisor, which resets the device; the control chain must then not
    // get its ack or a used entry.
    let onIrq: ((asserted: boolean) => void) | null = null;
    const rig = new NetRig({ mac: MAIN, queuePairs: 2, onInterrupt: (a) => onIrq?.(a) });
    const mark = new AfterMark(rig);
    placeTx(rig, numbered(1), 3);
    placeTx(rig, numbered(2), 3);
    onIrq = (asserted) => {
      if (!asserted) return;
      onIrq = null;
      resetDevice(rig.driver);
      mark.arm();
    };
    const ctrl = rig.ctrl;
    const { used } = rig.ctrlCommand([[CtrlClass.MQ, CtrlMq.VQ_PAIRS_SET], le16(2)]);
    mark.expectNothing();
    expect(used, 'no used entry for the control chain after the reset').to.equal(undefined);
    expect(ctrl.usedIdx()).to.equal(0);
    expect(rig.transmitted.map((f) => f[14])).to.deep.equal([1, 2]);
    expect(rig.device.status).to.equal(0);
    expectGoodExchange(rig);
  });

  it('reset_from_an_rx_filter_changed_listener_is_safe', () => {
    const rig = new NetRig({ mac: MAIN });
    const mark = new AfterMark(rig);
    // Two commands before one notification: the pass would go on to the second.
    const command = (cmd: number): BufferSpec[] => [
      { len: 2, data: [CtrlClass.RX, cmd] },
      { len: 1, data: [1] },
      { len: 1, write: true, data: [0xff] },
    ];
    const promisc = rig.ctrl.addChain(command(CtrlRx.PROMISC));
    rig.ctrl.addChain(command(CtrlRx.ALLMULTI));
    let events = 0;
    rig.device.on('rx-filter-changed', () => {
      events++;
      resetDevice(rig.driver);
      mark.arm();
    });
    rig.driver.notify(rig.ctrlIndex);
    mark.expectNothing();
    expect(events).to.equal(1);
    expect(rig.ctrl.bufferBytes(promisc, 2)[0], 'no ack written after the reset').to.equal(0xff);
    expect(rig.ctrl.usedIdx()).to.equal(0);
    expect(rig.device.queryRxFilter().multicast, 'the second command (ALLMULTI) was not applied').to.equal('normal');
    expectGoodExchange(rig);
  });

  it('reset_from_a_netdev_receive_callback_is_safe', () => {
    // The netdev offers a frame; while the device handles it, it returns a buffer shorter than the
    // header and raises the used interrupt, from which the hypervisor resets the device. The frame
    // must not be taken across the reset: the backend keeps it and offers it again after
    // re-initialisation (as it does for any frame the device cannot take while not running).
    let onIrq: ((asserted: boolean) => void) | null = null;
    const netdev = new MemoryNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev, onInterrupt: (a) => onIrq?.(a) });
    const mark = new AfterMark(rig);
    rig.postRx(1, 4); // shorter than the 12-byte header: returned at once with length 0
    onIrq = (asserted) => {
      if (!asserted) return;
      onIrq = null;
      resetDevice(rig.driver);
      mark.arm();
    };
    const held = numbered(5, MAIN);
    expect(rig.inject(held)).to.equal(true);
    mark.expectNothing();
    expect(rig.device.stats().rx.backlog, 'the device holds nothing across the reset').to.equal(0);
    expect(rig.device.stats().rx.offered).to.equal(0);
    expect(netdev.stats()).to.deep.include({ delivered: 0, backlog: 1 });
    expect(rig.start().ok).to.equal(true);
    rig.postRx(2);
    expect(rig.received().map((r) => r.frame)).to.deep.equal([held]);
    expectGoodExchange(rig);
  });

  it('reset_from_a_diagnostic_listener_during_receive_is_safe', () => {
    const rig = new NetRig({ mac: MAIN });
    const mark = new AfterMark(rig);
    rig.postRx(1, 4); // short: recorded as a driver mistake (a 'diagnostic' event) mid-delivery
    rig.postRx(2);
    rig.device.on('diagnostic', (d) => {
      if (d.code !== 'rx.buffer-shorter-than-header') return;
      resetDevice(rig.driver);
      mark.arm();
    });
    rig.inject(numbered(6, MAIN));
    mark.expectNothing();
    expect(rig.rx.usedIdx()).to.equal(0);
    expect(rig.device.stats().rx.frames).to.equal(0);
    expectGoodExchange(rig);
  });

  it('rx_kick_from_inside_a_drain_delivers_each_frame_once_in_order', () => {
    const rig = new NetRig({ mac: MAIN });
    for (let i = 1; i <= 3; i++) expect(rig.inject(numbered(i, MAIN))).to.equal(true); // held: no buffers
    expect(rig.device.stats().rx.backlog).to.equal(3);
    let kicks = 0;
    rig.device.on('diagnostic', (d) => {
      if (d.code === 'rx.buffer-shorter-than-header' && kicks++ === 0) rig.driver.notify(0);
    });
    rig.kick(0, () => {
      rig.rx.addChain([{ len: 4, write: true }]); // short: reported mid-drain
      for (let i = 0; i < 6; i++) rig.rx.addChain([{ len: 1526, write: true }]);
    });
    expect(kicks).to.equal(1);
    const frames = rig.received().filter((r) => r.entries[0]!.len > 0); // the short buffer came back empty
    expect(frames.map((r) => r.frame[14]), 'each held frame once, in order').to.deep.equal([1, 2, 3]);
    expect(rig.device.stats().rx).to.deep.include({ frames: 3, backlog: 0 });
    expectGoodExchange(rig);
  });

  for (const [transport, disable] of Object.entries(DISABLE_QUEUE) as [RigTransport, (rig: NetRig, index: number) => void][]) {
    it(`queue_disable_mid_burst_stops_that_queue (${transport})`, () => {
      const rig = new NetRig({ mac: MAIN, transport });
      const mark = new AfterMark(rig);
      for (let i = 0; i < 4; i++) placeTx(rig, numbered(i));
      let disabled = 0;
      (rig.netdev as MemoryNetdev).on('transmit', () => {
        if (disabled++ > 0) return;
        disable(rig, 1);
        mark.arm();
      });
      rig.driver.notify(1);
      mark.expectNothing();
      expect(rig.transmitted.map((f) => f[14])).to.deep.equal([0]);
      expect(rig.tx.usedIdx()).to.equal(0);
      // Only that queue stopped: the device runs and receives.
      expect(rig.device.running).to.equal(true);
      rig.postRx(1);
      expect(rig.inject(numbered(9, MAIN))).to.equal(true);
      expect(rig.received().map((r) => r.frame[14])).to.deep.equal([9]);
      // A notification on the stopped queue is a driver mistake and does nothing.
      rig.driver.notify(1);
      expect(rig.transmitted).to.have.length(1);
      expect(rig.device.diagnostics().at(-1)).to.deep.include({ code: 'notify.queue-not-ready', queue: 1 });
      // The driver sets the queue up afresh and enables it: it runs from the new ring.
      rig.tx.reset();
      rig.driver.setupQueue(1, rig.tx);
      rig.driver.enableQueue(1);
      expect(rig.send(numbered(10))).to.not.equal(undefined);
      expect(rig.transmitted.map((f) => f[14])).to.deep.equal([0, 10]);
      expectGoodExchange(rig);
    });
  }

  for (const eventIdx of [true, false]) {
    it(`kick_from_inside_a_transmit_listener_is_processed_once_in_order${eventIdx ? '' : ' (no EVENT_IDX)'}`, () => {
      const options: NetRigOptions = { mac: MAIN, ...(eventIdx ? {} : { features: { disable: ['EVENT_IDX'] } }) };
      const rig = new NetRig(options);
      const a = placeTx(rig, numbered(1));
      let b = -1;
      (rig.netdev as MemoryNetdev).on('transmit', (f) => {
        if (f[14] !== 1) return;
        b = placeTx(rig, numbered(2));
        rig.driver.notify(1); // the driver may notify whatever the suppression flags say
      });
      rig.driver.notify(1);
      expect(rig.transmitted.map((f) => f[14])).to.deep.equal([1, 2]);
      expect(rig.tx.takeUsed().map((u) => u.id), 'each chain completed once, in order').to.deep.equal([a, b]);
      expect(rig.device.stats().tx.frames).to.equal(2);
      // Nothing left over: a later notification finds the ring empty.
      rig.driver.notify(1);
      expect(rig.transmitted).to.have.length(2);
      expect(rig.tx.takeUsed()).to.deep.equal([]);
      expectGoodExchange(rig);
    });
  }
});
