// Property: whatever a guest does through the registers — any offset, width and value, in any
// order — nothing throws into the hypervisor, the interrupt callback only ever reports level
// changes, and a driver that then resets and initialises properly gets a working device.

import { expect } from 'chai';
import fc from 'fast-check';
import { featureBit, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import type { VirtioPciTransport } from '../../../devices/virtio/pci-transport.js';
import { DriverRing } from '../../support/driver-ring.js';
import { driverFor, initDevice, legacyDriver, notifyQueue, readIsr } from '../../support/driver-transport.js';
import type { DriverTransport } from '../../support/driver-transport.js';
import { ECHO_F_UPPER } from './echo-device.js';
import { bytes, mmioRig, pciRig, text } from './setup.js';
import type { IrqLine } from './setup.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);
const width = fc.constantFrom<1 | 2 | 4>(1, 2, 4);
const value = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 11, 15, 0x40, 0x80, 0xff, 0x1000, 0xffff_ffff), fc.nat({ max: 0xffff_ffff }));

/** Every change the line reports must be a real change of level. */
function checkEdges(irq: IrqLine): void {
  irq.changes.forEach((level, i) => expect(level).to.equal(i % 2 === 0));
}

function goodExchangeAfterReset(d: DriverTransport, memory: ReturnType<typeof mmioRig>['memory'], legacy: boolean): void {
  const r = legacy
    ? new DriverRing(memory, { size: 16, descTable: 0x20000, availRing: 0x20100, usedRing: 0x21000, heapStart: 0x30000 })
    : new DriverRing(memory, { size: 8, base: 0x20000 });
  const res = initDevice(d, { features: V1 | featureBit(ECHO_F_UPPER), queues: [r] });
  expect(res.ok).to.equal(true);
  const head = r.addChain([{ len: 2, data: bytes('ok') }, { len: 2, write: true }]);
  notifyQueue(d, 0);
  expect(r.takeUsed()).to.deep.equal([{ id: head, len: 2 }]);
  expect(text(r.writtenBytes(head, 2))).to.equal('OK');
  readIsr(d);
}

describe('devices/virtio/transport-fuzz', () => {
  it('random_mmio_register_traffic_never_throws_and_the_device_recovers', () => {
    const op = fc.record({ write: fc.boolean(), offset: fc.nat({ max: 0x11f }), width, value });
    fc.assert(
      fc.property(fc.boolean(), fc.array(op, { maxLength: 80 }), (startRunning, ops) => {
        const rig = mmioRig();
        if (startRunning) initDevice(rig.transport, { features: V1, queues: [new DriverRing(rig.memory, { size: 8, base: 0x1000 })] });
        for (const o of ops) {
          const off = o.offset - (o.offset % o.width);
          if (o.write) rig.transport.write(off, o.width, o.value);
          else rig.transport.read(off, o.width);
        }
        checkEdges(rig.irq);
        goodExchangeAfterReset(driverFor(rig.transport), rig.memory, false);
        checkEdges(rig.irq);
      }),
      { numRuns: 200 },
    );
  });

  it('random_pci_config_and_bar_traffic_never_throws_and_the_device_recovers', () => {
    // modern, transitional (legacy header + modern structures), legacy-only (legacy header only)
    for (const [legacy, modern] of [[false, true], [true, true], [true, false]] as const) {
      fc.assert(
        fc.property(
          fc.boolean(),
          fc.array(fc.record({ space: fc.constantFrom('config', 'bar', 'bar'), write: fc.boolean(), offset: fc.nat({ max: 255 }), width, value }), { maxLength: 80 }),
          (startRunning, ops) => {
            const rig = pciRig({ legacy, modern });
            const t: VirtioPciTransport = rig.transport;
            const driver = legacy ? legacyDriver(t) : driverFor(t); // capability walk before the traffic
            if (startRunning) initDevice(driver, { features: V1, queues: [new DriverRing(rig.memory, { size: 16, descTable: 0x1000, availRing: 0x1100, usedRing: 0x2000, heapStart: 0x3000 })] });
            for (const o of ops) {
              const limit = o.space === 'config' ? 256 : t.layout.barSize;
              const off = (o.offset % limit) - ((o.offset % limit) % o.width);
              if (off + o.width > limit) continue;
              if (o.space === 'config') {
                if (o.write) t.configWrite(off, o.width, o.value);
                else t.configRead(off, o.width);
              } else if (o.write) t.barWrite(0, off, o.width, o.value);
              else t.barRead(0, off, o.width);
            }
            checkEdges(rig.irq);
            t.configWrite(0x04, 2, 0x7); // the guest OS re-enables the function (INTx unmasked)
            goodExchangeAfterReset(driver, rig.memory, legacy);
            checkEdges(rig.irq);
          },
        ),
        { numRuns: 150 },
      );
    }
  });
});
