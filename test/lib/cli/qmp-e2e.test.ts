// End to end with the real device: the scripted guest keeps changing its rx filter over virtio-mmio
// while QEMU's own python client (qemu.qmp) talks to our QMP server. Skipped, with the reason
// printed, when the python client cannot be set up.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import { VirtioMmioTransport } from '../../../devices/virtio/mmio-transport.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { QmpServer } from '../../../lib/qmp/index.js';
import { ScriptedGuest } from '../../../lib/cli/scripted-guest.js';
import { PythonQmpClient, requirePythonQmp, type PythonQmpSetup } from '../../support/python-qmp.js';

describe('QMP end to end: qemu.qmp against a device driven by the scripted guest', function () {
  this.timeout(15 * 60 * 1000);
  let setup: PythonQmpSetup;
  let dir: string;
  let server: QmpServer;
  let device: VirtioNetDevice;
  let guest: ScriptedGuest;
  let py: PythonQmpClient | undefined;

  before(async function () {
    setup = { ok: true, ...(await requirePythonQmp(this)) };
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-e2e-'));
    const memory = new GuestMemory(8 << 20);
    const netdev = new MemoryNetdev({ id: 'hostnet0' });
    device = new VirtioNetDevice({ id: 'net0', mac: '52:54:00:12:34:56', memory, netdev });
    const mmio = new VirtioMmioTransport(device, { onInterrupt: () => undefined });
    guest = new ScriptedGuest(mmio, memory, { mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56), ip: [10, 0, 2, 15] }, [10, 0, 2, 2]);
    expect(guest.start()).to.equal(true);
    server = new QmpServer({ devices: [device], netdevs: [netdev], path: join(dir, 'qmp.sock') });
    await server.listen();
    if (!setup.ok) throw new Error('unreachable');
    py = await PythonQmpClient.start(server.address.path, setup);
  });

  afterEach(async () => {
    await py?.close();
    py = undefined;
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('one_event_per_query_cycle_while_the_guest_keeps_changing_its_filter', async () => {
    const c = py!;
    guest.linkUp(); // PROMISC 0, ALLMULTI 0, TABLE_SET, VLAN 0: one event
    const first = await c.waitEvent('NIC_RX_FILTER_CHANGED');
    expect(first?.data).to.deep.equal({ name: 'net0', path: '/machine/peripheral/net0/virtio-backend' });
    for (let cycle = 0; cycle < 4; cycle++) {
      const r = await c.execute('query-rx-filter', { name: 'net0' }); // re-arms
      if (!r.ok) expect.fail(JSON.stringify(r.error));
      const info = (r.return as Record<string, unknown>[])[0]!;
      expect(Object.keys(info)).to.have.length(12);
      expect(info['promiscuous']).to.equal(false);
      for (let i = 0; i < 5; i++) guest.churn(); // five changes
      const ev = await c.waitEvent('NIC_RX_FILTER_CHANGED');
      expect(ev, `event in cycle ${cycle}`).to.not.equal(undefined);
      const barrier = await c.execute('query-version');
      expect(barrier.ok).to.equal(true);
      expect(await c.events(), `only one event in cycle ${cycle}`).to.deep.equal([]);
    }
  });

  it('set_link_toggles_the_link_the_guest_sees', async () => {
    const c = py!;
    expect(guest.driver.readNetStatus() & 1).to.equal(1);
    expect(await c.execute('set_link', { name: 'net0', up: false })).to.deep.equal({ ok: true, return: {} });
    expect(guest.driver.readNetStatus() & 1).to.equal(0);
    guest.service();
    expect(guest.driver.configChanges).to.equal(1);
    expect(await c.execute('set_link', { name: 'hostnet0', up: true })).to.deep.equal({ ok: true, return: {} });
    expect(guest.driver.readNetStatus() & 1).to.equal(1);
  });
});
