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
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, resetDevice } from '../../support/driver-transport.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { CtrlClass, CtrlMq, CtrlRx } from '../../../devices/virtio-net/constants.js';
import { RX_BACKLOG_FRAMES } from '../../../devices/virtio-net/rx-backlog.js';
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

/**
 * Runs `action` from inside the backend's next `pauseReceive()` / `resumeReceive()` (`at`), after the
 * backend's own handling of the call — as an embedder's wrapper or a backend with hooks would.
 */
function onBackend(netdev: MemoryNetdev, at: 'pauseReceive' | 'resumeReceive', action: () => void): void {
  const orig = netdev[at].bind(netdev);
  let fired = false;
  netdev[at] = (): void => {
    orig();
    if (fired) return;
    fired = true;
    action();
  };
}

/** Fills the device's rx backlog (no receive buffers posted): the next frame is refused and pauses the backend. */
function fillRxBacklog(rig: NetRig): void {
  for (let i = 0; i < RX_BACKLOG_FRAMES; i++) expect(rig.inject(numbered(i & 0xff, MAIN))).to.equal(true);
  expect(rig.device.stats().rx.backlog).to.equal(RX_BACKLOG_FRAMES);
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

  it('set_link_up_from_the_backend_resume_callback_inside_set_link_down_leaves_both_paths_up', () => {
    // setLink(false) drops the rx backlog and resumes the backend it had paused; the backend's
    // resume callback sets the link up again. The last word is "up": the guest sees LINK_UP, and
    // frames flow both ways (none dropped as link-down) — now and after a reset.
    const netdev = new MemoryNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev });
    fillRxBacklog(rig);
    expect(rig.inject(numbered(0xee, MAIN)), 'kept by the backend, which pauses').to.equal(true);
    expect(netdev.stats().backlog).to.equal(1);
    let resumed = 0;
    onBackend(netdev, 'resumeReceive', () => {
      resumed++;
      rig.device.setLink(true);
    });
    rig.device.setLink(false);
    expect(resumed).to.equal(1);
    expect(rig.device.linkUp).to.equal(true);
    expect(rig.readLinkStatus() & 1, 'config status LINK_UP').to.equal(1);
    const out = numbered(0x55);
    expect(rig.send(out), 'the transmit chain completes').to.not.equal(undefined);
    expect(rig.transmitted).to.deep.equal([out]);
    expect(rig.device.stats().tx.errors['link-down'], 'no transmit frame dropped as link-down').to.equal(0);
    rig.postRx(4);
    const back = numbered(0x56, MAIN);
    expect(rig.inject(back)).to.equal(true);
    expect(rig.received().map((r) => r.frame)).to.deep.equal([back]);
    expectGoodExchange(rig);
    expect(rig.device.stats().tx.errors['link-down']).to.equal(0);
  });

  it('reset_from_the_backend_pause_callback_with_no_queue_running_leaves_the_backend_resumed_at_the_next_start', () => {
    // A legacy driver sets DRIVER_OK before programming any queue (legal: §4.1.5.1.3.1 legacy
    // drivers program queues in any order); the backend's frame cannot be taken, the device pauses
    // the backend, and the driver resets the device from inside pauseReceive(). The backend must
    // not be left paused for good: after re-initialisation the held frame arrives.
    const netdev = new MemoryNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev, transport: 'pci-legacy', init: false });
    rig.driver.writeStatus(ACKNOWLEDGE | DRIVER | DRIVER_OK);
    expect(rig.device.running).to.equal(true);
    const mark = new AfterMark(rig);
    let pauses = 0;
    onBackend(netdev, 'pauseReceive', () => {
      pauses++;
      resetDevice(rig.driver);
      mark.arm();
    });
    const held = numbered(3, MAIN);
    expect(rig.inject(held), 'kept by the backend').to.equal(true);
    mark.expectNothing();
    expect(pauses).to.equal(1);
    expect(rig.device.stats().rx.backlog).to.equal(0);
    expect(netdev.stats()).to.deep.include({ delivered: 0, backlog: 1 });
    expect(rig.start().ok).to.equal(true);
    rig.postRx(2);
    expect(rig.received().map((r) => r.frame), 'the held frame after re-initialisation').to.deep.equal([held]);
    expect(netdev.stats()).to.deep.include({ delivered: 1, backlog: 0 });
    expectGoodExchange(rig);
  });

  it('rx_buffers_added_from_the_backend_pause_callback_keep_the_backend_flowing', () => {
    // The device, its backlog full, refuses a frame and pauses the backend; from inside
    // pauseReceive() the driver posts buffers and notifies, so the device drains its backlog and
    // resumes the backend — still inside the offer. The refused frame must not leave the backend
    // paused behind the device's back: every frame arrives, in order, as buffers come.
    const netdev = new MemoryNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev });
    fillRxBacklog(rig);
    onBackend(netdev, 'pauseReceive', () => rig.postRx(64));
    const extra = [numbered(0xa0, MAIN), numbered(0xa1, MAIN), numbered(0xa2, MAIN)];
    for (const f of extra) expect(rig.inject(f)).to.equal(true);
    const got: number[] = rig.received().map((r) => r.frame[14]!);
    for (let round = 0; round < 8 && got.length < RX_BACKLOG_FRAMES + extra.length; round++) {
      if (rig.rx.freeDescriptors > 0) rig.postRx(rig.rx.freeDescriptors); // a stalled device leaves the ring full
      got.push(...rig.received().map((r) => r.frame[14]!));
    }
    const want = [...Array.from({ length: RX_BACKLOG_FRAMES }, (_, i) => i & 0xff), 0xa0, 0xa1, 0xa2];
    expect(got, 'every frame once, in order').to.deep.equal(want);
    expect(netdev.stats()).to.deep.include({ backlog: 0 });
    expect(rig.device.stats().rx.backlog).to.equal(0);
    expectGoodExchange(rig);
  });

  it('reset_from_on_interrupt_while_a_full_rx_backlog_drains_takes_no_frame_across_the_reset', () => {
    // The backlog is full; buffers were posted without a notification. The next frame makes the
    // device look for buffers (§2.7.10) and deliver held frames, and the used interrupt reaches the
    // hypervisor, which resets the device. The frame being offered belongs to no run now: the
    // backend keeps it, and offers it after re-initialisation; the device holds nothing while reset.
    let onIrq: ((asserted: boolean) => void) | null = null;
    const netdev = new MemoryNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev, onInterrupt: (a) => onIrq?.(a) });
    fillRxBacklog(rig);
    for (let i = 0; i < 2; i++) rig.rx.addChain([{ len: 1526, write: true }]); // no notification
    const mark = new AfterMark(rig);
    onIrq = (asserted) => {
      if (!asserted) return;
      onIrq = null;
      resetDevice(rig.driver);
      mark.arm();
    };
    const late = numbered(0xbb, MAIN);
    expect(rig.inject(late), 'kept by the backend').to.equal(true);
    mark.expectNothing();
    expect(rig.device.status).to.equal(0);
    expect(rig.device.stats().rx.backlog, 'nothing taken across the reset').to.equal(0);
    expect(netdev.stats()).to.deep.include({ backlog: 1 });
    expect(rig.start().ok).to.equal(true);
    rig.postRx(2);
    expect(rig.received().map((r) => r.frame), 'the kept frame after re-initialisation').to.deep.equal([late]);
    expectGoodExchange(rig);
  });

  it('set_link_down_from_a_diagnostic_listener_mid_drain_completes_the_frame_in_delivery_and_drops_the_rest_once', () => {
    // Three frames wait in the backlog; the driver posts a buffer shorter than the header first,
    // and management sets the link down from the diagnostic that buffer raises, while frame 1 is
    // being delivered. Frame 1 completes (its delivery had begun); frames 2 and 3 are dropped and
    // counted 'link-down', each once: nothing is delivered after it, and the counters add up.
    const rig = new NetRig({ mac: MAIN });
    for (let i = 1; i <= 3; i++) expect(rig.inject(numbered(i, MAIN))).to.equal(true);
    let downs = 0;
    rig.device.on('diagnostic', (d) => {
      if (d.code === 'rx.buffer-shorter-than-header' && downs++ === 0) rig.device.setLink(false);
    });
    rig.kick(0, () => {
      rig.rx.addChain([{ len: 4, write: true }]);
      for (let i = 0; i < 4; i++) rig.rx.addChain([{ len: 1526, write: true }]);
    });
    expect(downs).to.equal(1);
    expect(rig.received().filter((r) => r.entries[0]!.len > 0).map((r) => r.frame[14])).to.deep.equal([1]);
    const rx = rig.device.stats().rx;
    expect(rx).to.deep.include({ offered: 3, frames: 1, backlog: 0 });
    expect(rx.drops['link-down']).to.equal(2);
    rig.device.setLink(true);
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
