// netdev_add / netdev_del with a real StreamNetdev over a real unix socket, and the stream events
// it makes QMP send (NETDEV_STREAM_CONNECTED with QEMU's SocketAddress, NETDEV_STREAM_DISCONNECTED).

import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpServer } from '../../../lib/qmp/index.js';
import { StreamNetdev } from '../../../lib/netdev/stream-netdev.js';
import { FakeNic } from './fake-nic.js';
import { RawQmpClient } from './raw-client.js';

describe('lib/qmp netdev_add / netdev_del (stream)', function () {
  this.timeout(10_000);
  let dir: string;
  let server: QmpServer;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-netdev-'));
    server = new QmpServer({ devices: [new FakeNic('vnet0', {}, { id: 'hostnet0' })], path: join(dir, 'qmp.sock') });
    await server.listen();
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an_added_stream_server_reports_its_peer_coming_and_going_and_netdev_del_removes_it', async () => {
    const c = await RawQmpClient.negotiated(server.address.path);
    closers.push(() => c.close());
    const path = join(dir, 'n1.sock');
    expect(await c.execute('netdev_add', { type: 'stream', id: 'n1', addr: { type: 'unix', path }, server: true })).to.deep.equal({ return: {} });
    expect(existsSync(path)).to.equal(true);
    const peer = net.connect(path);
    closers.push(() => peer.destroy());
    const up = await c.next('NETDEV_STREAM_CONNECTED');
    expect(up['data']).to.deep.equal({ 'netdev-id': 'n1', addr: { type: 'unix', path } });
    peer.destroy();
    const down = await c.next('NETDEV_STREAM_DISCONNECTED');
    expect(down['data']).to.deep.equal({ 'netdev-id': 'n1' });
    // It is a netdev now: set_link by its id works, query-rx-filter says it is not a NIC.
    expect(await c.execute('query-rx-filter', { name: 'n1' })).to.deep.equal({ error: { class: 'GenericError', desc: "net client(n1) isn't a NIC" } });
    expect(await c.execute('netdev_add', { type: 'stream', id: 'n1', addr: { type: 'unix', path: join(dir, 'x') }, server: true })).to.deep.equal({
      error: { class: 'GenericError', desc: "Duplicate ID 'n1'" },
    });
    expect(await c.execute('netdev_del', { id: 'n1' })).to.deep.equal({ return: {} });
    expect(existsSync(path), 'the socket file went with the netdev').to.equal(false);
    expect(await c.execute('netdev_del', { id: 'n1' })).to.deep.equal({ error: { class: 'DeviceNotFound', desc: "Device 'n1' not found" } });
  });

  it('a_client_without_reconnect_that_cannot_connect_is_an_error_and_leaves_nothing', async () => {
    const c = await RawQmpClient.negotiated(server.address.path);
    closers.push(() => c.close());
    const r = await c.execute('netdev_add', { type: 'stream', id: 'c1', addr: { type: 'unix', path: join(dir, 'nobody.sock') } });
    expect((r['error'] as { desc: string }).desc).to.match(/^StreamNetdev c1: cannot connect to .*nobody\.sock/);
    expect(await c.execute('netdev_del', { id: 'c1' })).to.deep.equal({ error: { class: 'DeviceNotFound', desc: "Device 'c1' not found" } });
    expect(await c.execute('netdev_add', { type: 'stream', id: 'c2', addr: { type: 'inet', host: '127.0.0.1' } })).to.deep.equal({
      error: { class: 'GenericError', desc: "Parameter 'addr.port' is missing" },
    });
    expect(await c.execute('netdev_add', { type: 'stream', id: 'c3', addr: { type: 'vsock', cid: '3' } })).to.deep.equal({
      error: { class: 'GenericError', desc: "Parameter 'addr.type' does not accept value 'vsock'" },
    });
  });

  it('a_client_with_reconnect_connects_when_the_peer_appears_and_a_given_netdevs_events_are_forwarded_too', async () => {
    const path = join(dir, 'later.sock');
    const given = new StreamNetdev({ id: 'g0', path: join(dir, 'g0.sock'), server: true });
    await given.open();
    closers.push(() => given.close());
    const s2 = new QmpServer({ devices: [], netdevs: [given], path: join(dir, 'qmp2.sock') });
    await s2.listen();
    closers.push(() => s2.close());
    const c = await RawQmpClient.negotiated(s2.address.path);
    closers.push(() => c.close());
    expect(await c.execute('netdev_add', { type: 'stream', id: 'rc', addr: { type: 'unix', path }, 'reconnect-ms': 50 })).to.deep.equal({ return: {} });
    const srv = net.createServer();
    closers.push(() => srv.close());
    await new Promise<void>((r) => srv.listen(path, r));
    const up = await c.next('NETDEV_STREAM_CONNECTED');
    expect(up['data']).to.deep.equal({ 'netdev-id': 'rc', addr: { type: 'unix', path } });
    const p = net.connect(join(dir, 'g0.sock'));
    closers.push(() => p.destroy());
    expect((await c.next('NETDEV_STREAM_CONNECTED'))['data']).to.deep.include({ 'netdev-id': 'g0' });
  });
});
