// announce-self on a real device over a MemoryNetdev: a NIC whose driver did not negotiate
// GUEST_ANNOUNCE gets a gratuitous ARP sent for it, from its MAC, once per round — the first at
// once, the rest after `initial` ms growing by `step` — and only the NICs `interfaces` names.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { QmpServer } from '../../../lib/qmp/index.js';
import { RawQmpClient } from './raw-client.js';

describe('lib/qmp announce-self', function () {
  this.timeout(20_000);
  let dir: string;
  let server: QmpServer;
  const sent: { a: Uint8Array[]; b: Uint8Array[] } = { a: [], b: [] };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-announce-'));
    const memory = new GuestMemory(1 << 20);
    const na = new MemoryNetdev({ id: 'hna' });
    const nb = new MemoryNetdev({ id: 'hnb' });
    na.on('transmit', (f) => sent.a.push(f.slice()));
    nb.on('transmit', (f) => sent.b.push(f.slice()));
    const a = new VirtioNetDevice({ id: 'neta', mac: '52:54:00:00:00:0a', memory, netdev: na });
    const b = new VirtioNetDevice({ id: 'netb', mac: '52:54:00:00:00:0b', memory, netdev: nb });
    server = new QmpServer({ devices: [a, b], path: join(dir, 'qmp.sock') });
    await server.listen();
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends_one_gratuitous_arp_per_round_from_each_named_nics_mac', async () => {
    const c = await RawQmpClient.negotiated(server.address.path);
    const started = Date.now();
    expect(await c.execute('announce-self', { initial: 50, max: 100, rounds: 3, step: 50, interfaces: ['neta', 'nosuch'] })).to.deep.equal({ return: {} });
    expect(sent.a.length, 'the first round is at once').to.equal(1);
    while (sent.a.length < 3 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(sent.a.length).to.equal(3);
    // Rounds at 0, 50 and 50 + 100 (initial, then capped at max) ms.
    expect(Date.now() - started).to.be.at.least(150);
    await new Promise((r) => setTimeout(r, 300));
    expect(sent.a.length, 'no fourth round').to.equal(3);
    expect(sent.b.length, 'netb was not named').to.equal(0);
    for (const f of sent.a) {
      expect(Buffer.from(f.subarray(0, 6)).toString('hex')).to.equal('ffffffffffff');
      expect(Buffer.from(f.subarray(6, 12)).toString('hex')).to.equal('52540000000a');
      expect(Buffer.from(f.subarray(12, 14)).toString('hex')).to.equal('0806');
    }
    expect(await c.execute('announce-self', { rounds: -1 })).to.deep.equal({ error: { class: 'GenericError', desc: "Parameter 'rounds' expects a value from 0 to 1000" } });
    c.close();
  });
});
