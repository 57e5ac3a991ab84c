// QEMU's own python QMP client (qemu.qmp, as libvirt-era tooling and QEMU's tests use it) against
// our server: it connects and negotiates, reads query-rx-filter with all 12 members and their
// types, sees NIC_RX_FILTER_CHANGED once per query cycle while the NIC keeps changing, and
// toggles the link with set_link. Skipped, with the reason printed, when the client cannot be set
// up (no python3, or no Debian mirror to fetch QEMU's source package from).

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpServer } from '../../../lib/qmp/index.js';
import { PythonQmpClient, requirePythonQmp, type PythonQmpSetup } from '../../support/python-qmp.js';
import { FakeNic } from './fake-nic.js';

const RX_FILTER_MEMBER_TYPES: Record<string, string> = {
  name: 'string',
  promiscuous: 'boolean',
  multicast: 'rxstate',
  unicast: 'rxstate',
  vlan: 'rxstate',
  'broadcast-allowed': 'boolean',
  'multicast-overflow': 'boolean',
  'unicast-overflow': 'boolean',
  'main-mac': 'mac',
  'vlan-table': 'int[]',
  'unicast-table': 'mac[]',
  'multicast-table': 'mac[]',
};

function kindOf(v: unknown): string {
  const mac = (x: unknown): boolean => typeof x === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(x);
  if (mac(v)) return 'mac';
  if (v === 'normal' || v === 'none' || v === 'all') return 'rxstate';
  if (Array.isArray(v)) {
    if (v.every((x) => Number.isInteger(x))) return v.length === 0 ? 'empty[]' : 'int[]';
    if (v.every(mac)) return 'mac[]';
    return 'mixed[]';
  }
  return typeof v;
}

describe('lib/qmp with QEMU python qemu.qmp client', function () {
  this.timeout(15 * 60 * 1000); // the first run may download QEMU's source package
  let setup: PythonQmpSetup;
  let dir: string;
  let server: QmpServer;
  let nic: FakeNic;
  let py: PythonQmpClient | undefined;

  before(async function () {
    setup = { ok: true, ...(await requirePythonQmp(this)) };
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-python-'));
    nic = new FakeNic(
      'vnet0',
      { 'vlan-table': [1, 100], 'unicast-table': ['52:54:00:aa:bb:cc'], 'multicast-table': ['01:00:5e:00:00:01'] },
      { id: 'hostnet0' },
    );
    server = new QmpServer({ devices: [nic], path: join(dir, 'qmp.sock'), tcp: { port: 0 } });
    await server.listen();
  });

  afterEach(async () => {
    await py?.close();
    py = undefined;
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function connect(address = server.address.path): Promise<PythonQmpClient> {
    if (!setup.ok) throw new Error('unreachable: skipped');
    py = await PythonQmpClient.start(address, setup);
    return py;
  }

  it('connects_negotiates_and_reads_all_12_rx_filter_members_with_their_types', async () => {
    const c = await connect();
    expect(c.greeting).to.deep.equal({
      QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'virtio-net-model' }, capabilities: [] },
    });
    const r = await c.execute('query-rx-filter', { name: 'vnet0' });
    if (!r.ok) expect.fail(JSON.stringify(r.error));
    const [info] = r.return as Record<string, unknown>[];
    expect(Object.keys(info!).sort()).to.deep.equal(Object.keys(RX_FILTER_MEMBER_TYPES).sort());
    for (const [member, kind] of Object.entries(RX_FILTER_MEMBER_TYPES)) {
      expect(kindOf(info![member]), member).to.equal(kind);
    }
    expect(info).to.include({ name: 'vnet0', 'main-mac': '52:54:00:12:34:56' });
  });

  it('nic_rx_filter_changed_arrives_once_per_query_cycle_while_the_nic_keeps_changing', async () => {
    const c = await connect();
    const armed = await c.execute('query-rx-filter');
    expect(armed.ok).to.equal(true);
    for (let cycle = 1; cycle <= 5; cycle++) {
      for (let i = 0; i < 10; i++) nic.change({ promiscuous: i % 2 === 0, 'multicast-table': [`01:00:5e:00:00:${(cycle * 10 + i).toString(16).padStart(2, '0')}`] });
      const ev = await c.waitEvent('NIC_RX_FILTER_CHANGED');
      expect(ev, `event in cycle ${cycle}`).to.not.equal(undefined);
      expect(ev!.data).to.deep.equal({ name: 'vnet0', path: '/machine/peripheral/vnet0/virtio-backend' });
      expect(Number.isInteger(ev!.timestamp.seconds) && Number.isInteger(ev!.timestamp.microseconds)).to.equal(true);
      // The reply is a barrier: every event sent before it is in the listener when it returns.
      const r = await c.execute('query-rx-filter', { name: 'vnet0' });
      if (!r.ok) expect.fail(JSON.stringify(r.error));
      expect((r.return as Record<string, unknown>[])[0]!['multicast-table']).to.deep.equal([
        `01:00:5e:00:00:${(cycle * 10 + 9).toString(16).padStart(2, '0')}`,
      ]);
      expect(await c.events(), `extra events in cycle ${cycle}`).to.deep.equal([]);
    }
    expect(nic.fired).to.equal(5);
  });

  it('set_link_toggles_the_nic_by_its_id_and_by_its_netdev_id', async () => {
    const c = await connect();
    expect(await c.execute('set_link', { name: 'vnet0', up: false })).to.deep.equal({ ok: true, return: {} });
    expect(nic.linkUp).to.equal(false);
    expect(await c.execute('set_link', { name: 'vnet0', up: true })).to.deep.equal({ ok: true, return: {} });
    expect(nic.linkUp).to.equal(true);
    expect(await c.execute('set_link', { name: 'hostnet0', up: false })).to.deep.equal({ ok: true, return: {} });
    expect(nic.linkUp).to.equal(false);
    expect(await c.execute('set_link', { name: 'nope', up: true })).to.deep.equal({
      ok: false,
      error: { class: 'DeviceNotFound', desc: "Device 'nope' not found" },
    });
  });

  it('errors_reach_the_client_as_execute_errors_with_qemus_texts', async () => {
    const c = await connect();
    expect(await c.execute('query-rx-filter', { name: 'hostnet0' })).to.deep.equal({
      ok: false,
      error: { class: 'GenericError', desc: "net client(hostnet0) isn't a NIC" },
    });
    expect(await c.execute('no-such-command')).to.deep.equal({
      ok: false,
      error: { class: 'CommandNotFound', desc: 'The command no-such-command has not been found' },
    });
    expect(await c.execute('set_link', { name: 'vnet0' })).to.deep.equal({
      ok: false,
      error: { class: 'GenericError', desc: "Parameter 'up' is missing" },
    });
    const commands = await c.execute('query-commands');
    expect(commands.ok && (commands.return as { name: string }[]).map((x) => x.name)).to.include('query-rx-filter');
  });

  it('legacy_sync_client_and_tcp_work_too', async () => {
    const tcp = server.address.tcp!;
    const c = await connect(`${tcp.host}:${tcp.port}`);
    const legacy = await c.legacyQueryVersion();
    expect(legacy.return).to.deep.equal({ qemu: { major: 7, minor: 2, micro: 0 }, package: 'virtio-net-model' });
    expect(legacy.greeting).to.have.nested.property('QMP.capabilities').that.deep.equals([]);
    expect(await c.execute('query-version')).to.have.property('ok', true);
  });
});
