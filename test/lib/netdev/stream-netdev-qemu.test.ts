// The connection events against QEMU 7.2's own: the same kind of peer connects to a QEMU stream
// netdev (created with netdev_add on a QEMU that runs no guest: -machine none -S) and to a
// StreamNetdev, and the NETDEV_STREAM_CONNECTED `addr` each reports must be the same (QEMU's
// SocketAddress: a unix server its own path, a TCP server its peer with the family flag, a client
// the server). QEMU as a client of our server, and we of QEMU's, see each other's events too.

import { expect } from 'chai';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamNetdev, type StreamSocketAddress } from '../../../lib/netdev/stream-netdev.js';
import { QEMU_BINARY, QemuProcess } from '../../support/qemu-process.js';
import { QmpClient, type QmpEvent } from '../../support/qemu-qmp.js';
import { requireProgram } from '../../support/skip.js';

async function waitEvent(qmp: QmpClient, name: string, after: number): Promise<QmpEvent> {
  const end = Date.now() + 10_000;
  for (;;) {
    const e = qmp.events.slice(after).find((x) => x.event === name);
    if (e !== undefined) return e;
    if (Date.now() > end) throw new Error(`QEMU sent no ${name}; events: ${JSON.stringify(qmp.events)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether something on this machine listens on 127.0.0.1:port (IPv4 table of /proc/net/tcp, state 0A). */
function listening(port: number): boolean {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === hex && f[3] === '0A';
  });
}

/**
 * `netdev_add` of a QEMU stream server on a free 127.0.0.1 port, returned once QEMU listens there.
 * QEMU 7.2 listens asynchronously after netdev_add returns, and a failed listen is not an error of
 * netdev_add: it only turns the netdev's info string into "connection error". The port comes from
 * freePort(), so another socket on this busy machine can take it in between (one CI run: QEMU never
 * listened and every connect was refused for 30 s); then the netdev is deleted and added again on
 * another port, at most 3 times. Nothing connects before QEMU listens, so QEMU sees only the test's
 * own peers.
 */
async function qemuStreamServer(qmp: QmpClient, id: string): Promise<number> {
  let info = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    await qmp.execute('netdev_add', { type: 'stream', id, addr: { type: 'inet', host: '127.0.0.1', port: String(port) }, server: true });
    const end = Date.now() + 30_000;
    for (;;) {
      if (listening(port)) return port;
      info = await qmp.execute<string>('human-monitor-command', { 'command-line': 'info network' });
      if (info.includes('connection error')) break;
      if (Date.now() > end) throw new Error(`QEMU's stream server ${id} did not listen on ${port} in 30 s; info network:\n${info}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await qmp.execute('netdev_del', { id });
  }
  throw new Error(`QEMU's stream server ${id} failed to listen on 3 free ports; info network:\n${info}`);
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('lib/netdev/stream-netdev against QEMU 7.2 (events)', function () {
  this.timeout(60_000);
  let proc: QemuProcess | undefined;
  let qmp: QmpClient | undefined;
  let dir: string;
  const closers: (() => unknown)[] = [];

  beforeEach(async function () {
    requireProgram(this, QEMU_BINARY);
    dir = mkdtempSync(join(tmpdir(), 'vnm-stream-qemu-'));
    proc = new QemuProcess(QEMU_BINARY, (qmpPath) => ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-qmp', `unix:${qmpPath},server=on,wait=off`]);
    const p = proc;
    for (let i = 0; i < 200 && qmp === undefined; i++) {
      qmp = await QmpClient.connect(p.qmpPath, { timeoutMs: 5000, context: () => p.context() }).catch(() => undefined);
      if (qmp === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    if (qmp === undefined) throw new Error(`QEMU's QMP socket never answered\n${p.context()}`);
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    qmp?.close();
    qmp = undefined;
    await proc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a_tcp_server_reports_its_peer_as_qemu_does_with_the_family_flag', async () => {
    const qport = await qemuStreamServer(qmp!, 'q0');
    const mark = qmp!.events.length;
    const a = net.connect(qport, '127.0.0.1');
    closers.push(() => a.destroy());
    await once(a, 'connect');
    const theirs = await waitEvent(qmp!, 'NETDEV_STREAM_CONNECTED', mark);
    expect(theirs.data).to.deep.equal({ 'netdev-id': 'q0', addr: { type: 'inet', host: '127.0.0.1', port: String(a.localPort), ipv4: true } });

    const ours = new StreamNetdev({ id: 'q0', host: '127.0.0.1', port: 0, server: true });
    closers.push(() => ours.close());
    await ours.open();
    const ev = once(ours, 'connected') as Promise<[StreamSocketAddress]>;
    const b = net.connect(ours.port, '127.0.0.1');
    closers.push(() => b.destroy());
    await once(b, 'connect');
    const [addr] = await ev;
    expect({ 'netdev-id': ours.id, addr }).to.deep.equal({ 'netdev-id': 'q0', addr: { type: 'inet', host: '127.0.0.1', port: String(b.localPort), ipv4: true } });

    const gone = qmp!.events.length;
    a.destroy();
    expect((await waitEvent(qmp!, 'NETDEV_STREAM_DISCONNECTED', gone)).data).to.deep.equal({ 'netdev-id': 'q0' });
  });

  it('a_unix_server_reports_its_own_path_as_qemu_does', async () => {
    const qpath = join(dir, 'q.sock');
    await qmp!.execute('netdev_add', { type: 'stream', id: 'u0', addr: { type: 'unix', path: qpath }, server: true });
    const mark = qmp!.events.length;
    // QEMU 7.2 listens asynchronously after netdev_add returns.
    for (let i = 0; i < 200 && !existsSync(qpath); i++) await new Promise((r) => setTimeout(r, 20));
    const a = net.connect(qpath);
    closers.push(() => a.destroy());
    await once(a, 'connect');
    expect((await waitEvent(qmp!, 'NETDEV_STREAM_CONNECTED', mark)).data).to.deep.equal({ 'netdev-id': 'u0', addr: { type: 'unix', path: qpath } });
    const opath = join(dir, 'o.sock');
    const ours = new StreamNetdev({ id: 'u0', path: opath, server: true });
    closers.push(() => ours.close());
    await ours.open();
    const ev = once(ours, 'connected') as Promise<[StreamSocketAddress]>;
    const b = net.connect(opath);
    closers.push(() => b.destroy());
    expect((await ev)[0]).to.deep.equal({ type: 'unix', path: opath });
  });

  it('qemu_as_client_of_our_tcp_server_and_we_as_client_of_qemus_report_each_other', async () => {
    const ours = new StreamNetdev({ id: 's0', host: '127.0.0.1', port: 0, server: true });
    closers.push(() => ours.close());
    await ours.open();
    const ev = once(ours, 'connected') as Promise<[StreamSocketAddress]>;
    const mark = qmp!.events.length;
    await qmp!.execute('netdev_add', { type: 'stream', id: 'c0', addr: { type: 'inet', host: '127.0.0.1', port: String(ours.port) } });
    const theirs = await waitEvent(qmp!, 'NETDEV_STREAM_CONNECTED', mark);
    // QEMU's client reports the server: our address.
    expect(theirs.data).to.deep.equal({ 'netdev-id': 'c0', addr: { type: 'inet', host: '127.0.0.1', port: String(ours.port), ipv4: true } });
    const [peer] = await ev;
    expect(peer).to.include({ type: 'inet', host: '127.0.0.1', ipv4: true });

    const qport = await qemuStreamServer(qmp!, 'q1');
    const client = new StreamNetdev({ id: 'c1', host: '127.0.0.1', port: qport, reconnectMs: 50 });
    closers.push(() => client.close());
    const up = once(client, 'connected') as Promise<[StreamSocketAddress]>;
    await client.open();
    // Our client reports the server, in the form QEMU's client used above.
    expect((await up)[0]).to.deep.equal({ type: 'inet', host: '127.0.0.1', port: String(qport), ipv4: true });
  });
});
