// The QMP wire protocol over a real unix socket (and TCP when asked for): greeting, negotiation,
// id echo, QEMU's error texts, events with timestamps to several clients, socket permissions.

import { expect } from 'chai';
import { link, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { QMP_HANDLERS, QmpServer, attachedNetdevId, type QmpDiagnostic, type QmpNic, type QmpRxFilterInfo } from '../../../lib/qmp/index.js';
import { FakeNic } from './fake-nic.js';
import { RawQmpClient } from './raw-client.js';

describe('lib/qmp protocol', () => {
  let dir: string;
  let server: QmpServer;
  let nic: FakeNic;
  let path: string;
  const clients: RawQmpClient[] = [];
  const diagnostics: QmpDiagnostic[] = [];

  async function client(negotiate = true): Promise<RawQmpClient> {
    const c = negotiate ? await RawQmpClient.negotiated(path) : await RawQmpClient.connect(path);
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-proto-'));
    path = join(dir, 'qmp.sock');
    nic = new FakeNic('net0', {}, { id: 'hostnet0' });
    server = new QmpServer({ devices: [nic], path, netdevs: [{ id: 'hub0port' }] });
    server.on('diagnostic', (d) => diagnostics.push(d));
    diagnostics.length = 0;
    await server.listen();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('greeting_has_qemu_version_and_no_capabilities', async () => {
    const c = await client(false);
    const greeting = await c.next('greeting');
    expect(greeting).to.deep.equal({
      QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'virtio-net-model' }, capabilities: [] },
    });
    expect(c.rawLines[0]).to.match(/^\{"QMP":/);
  });

  it('lines_end_in_crlf_like_qemu', async () => {
    const raw = await new Promise<string>((done) => {
      const s = net.connect(path);
      s.setEncoding('utf8');
      s.once('data', (t: string) => {
        s.destroy();
        done(t);
      });
    });
    expect(raw.endsWith('}\r\n')).to.equal(true);
  });

  it('commands_before_negotiation_get_qemus_negotiation_error', async () => {
    const c = await client(false);
    await c.next('greeting');
    for (const cmd of ['query-version', 'query-rx-filter', 'no-such-command']) {
      expect(await c.execute(cmd, undefined, cmd)).to.deep.equal({
        error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
        id: cmd,
      });
    }
    expect(await c.execute('qmp_capabilities')).to.deep.equal({ return: {} });
    expect(await c.execute('query-version')).to.have.property('return');
  });

  it('negotiating_twice_is_command_not_found', async () => {
    const c = await client();
    expect(await c.execute('qmp_capabilities')).to.deep.equal({
      error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' },
    });
  });

  it('enabling_an_unoffered_capability_fails_and_stays_in_negotiation', async () => {
    const c = await client(false);
    await c.next('greeting');
    expect(await c.execute('qmp_capabilities', { enable: ['oob'] })).to.deep.equal({
      error: { class: 'GenericError', desc: 'Capability oob not available' },
    });
    expect(await c.execute('qmp_capabilities', { enable: ['turbo'] })).to.deep.equal({
      error: { class: 'GenericError', desc: "Parameter 'null' does not accept value 'turbo'" },
    });
    expect((await c.execute('query-version')) as { error: { class: string } }).to.have.nested.property('error.class', 'CommandNotFound');
    expect(await c.execute('qmp_capabilities', { enable: [] })).to.deep.equal({ return: {} });
  });

  it('id_of_any_json_type_is_echoed_on_success_and_error', async () => {
    const c = await client();
    for (const id of [7, 'abc', { x: [1, null] }, null, true]) {
      expect(await c.execute('query-version', undefined, id)).to.have.deep.property('id', id);
      expect(await c.execute('nope', undefined, id)).to.deep.equal({
        error: { class: 'CommandNotFound', desc: 'The command nope has not been found' },
        id,
      });
    }
    expect(await c.execute('query-version')).to.not.have.property('id');
  });

  it('id_with_integers_beyond_2_53_is_echoed_exactly', async () => {
    const c = await client();
    const ids = [
      '18446744073709551615',
      '-9223372036854775808',
      '-18446744073709551617',
      '9007199254740993',
      '123456789012345678901234567890',
      '[9007199254740993,{"a":-9007199254740993,"b":"9007199254740993"}]',
    ];
    for (const id of ids) {
      for (const command of ['query-version', 'nope']) {
        c.send(`{"execute":"${command}","id":${id}}`);
        await c.reply(command);
        expect(c.rawLines.at(-1)).to.match(/^\{"(return|error)":/);
        expect(c.rawLines.at(-1)!.endsWith(`,"id":${id}}`), c.rawLines.at(-1)).to.equal(true);
      }
    }
  });

  it('malformed_requests_get_qemus_texts', async () => {
    const c = await client();
    const cases: [string, unknown][] = [
      ['[1]', { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } }],
      ['"x"', { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } }],
      ['{"id":1}', { error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" }, id: 1 }],
      ['{"execute":1,"id":5}', { error: { class: 'GenericError', desc: "QMP input member 'execute' must be a string" }, id: 5 }],
      ['{"execute":"query-version","arguments":[]}', { error: { class: 'GenericError', desc: "QMP input member 'arguments' must be an object" } }],
      ['{"execute":"query-version","arguments":null}', { error: { class: 'GenericError', desc: "QMP input member 'arguments' must be an object" } }],
      ['{"execute":"query-version","foo":1}', { error: { class: 'GenericError', desc: "QMP input member 'foo' is unexpected" } }],
      ['{"exec-oob":"query-version"}', { error: { class: 'GenericError', desc: "QMP input member 'exec-oob' is unexpected" } }],
      ['{"execute":"query-version","arguments":{"a":1}}', { error: { class: 'GenericError', desc: "Parameter 'a' is unexpected" } }],
      ['{"execute":"query-rx-filter","arguments":{"name":null}}', { error: { class: 'GenericError', desc: "Invalid parameter type for 'name', expected: string" } }],
      ['{"execute":"set_link","arguments":{"up":"yes"}}', { error: { class: 'GenericError', desc: "Parameter 'name' is missing" } }],
      ['{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}', { error: { class: 'GenericError', desc: "Invalid parameter type for 'enable', expected: array" } }],
      ['{"execute":"qmp_capabilities","arguments":{"enable":[1]}}', { error: { class: 'GenericError', desc: "Invalid parameter type for 'enable[0]', expected: string" } }],
      ['{"execute":"query-version",}', { error: { class: 'GenericError', desc: 'JSON parse error, expecting value' } }],
      ['{"execute" "x"}', { error: { class: 'GenericError', desc: 'JSON parse error, missing : in object pair' } }],
      ['{execute:1}', { error: { class: 'GenericError', desc: "JSON parse error, invalid keyword 'execute'" } }],
      ['{"execute":"query-version","id":1,"id":2}', { error: { class: 'GenericError', desc: 'JSON parse error, duplicate key' } }],
      ['{"a":1 "b":2}', { error: { class: 'GenericError', desc: 'JSON parse error, expected separator in dict' } }],
      ['[1 2]', { error: { class: 'GenericError', desc: 'JSON parse error, expected separator in list' } }],
      ['{1:2}', { error: { class: 'GenericError', desc: 'JSON parse error, key is not a string in object' } }],
      ['{"id":"\\x"}', { error: { class: 'GenericError', desc: 'JSON parse error, invalid escape sequence in string' } }],
      ['{"id":"\\ud800"}', { error: { class: 'GenericError', desc: 'JSON parse error, \\ud800 is not a valid Unicode character' } }],
      ['@', { error: { class: 'GenericError', desc: "JSON parse error, stray '@'" } }],
    ];
    for (const [raw, expected] of cases) {
      c.send(raw);
      expect(await c.reply(raw), raw).to.deep.equal(expected);
    }
    // The connection still works after all of that.
    expect(await c.execute('query-version', undefined, 'after')).to.have.property('id', 'after');
  });

  it('single_quoted_strings_are_accepted_as_qemu_does', async () => {
    const c = await client();
    c.send("{'execute':'query-version','id':'sq'}");
    expect(await c.reply('sq')).to.have.property('id', 'sq');
  });

  it('messages_split_across_writes_and_merged_in_one_write_without_newlines', async () => {
    const c = await client();
    const text = '{"execute":"query-version","id":1}{"execute":"query-version","id":2} {"execute":"query-version","id":3}';
    for (const ch of text.slice(0, 40)) {
      c.send(ch);
      await new Promise((r) => setImmediate(r));
    }
    c.send(text.slice(40));
    expect((await c.reply('1'))['id']).to.equal(1);
    expect((await c.reply('2'))['id']).to.equal(2);
    expect((await c.reply('3'))['id']).to.equal(3);
  });

  it('rx_filter_event_reaches_every_negotiated_client_with_a_timestamp', async () => {
    const a = await client();
    const b = await client();
    const unnegotiated = await client(false);
    await unnegotiated.next('greeting');
    const before = Date.now() / 1000;
    nic.change({ promiscuous: true });
    for (const c of [a, b]) {
      const ev = await c.next('event');
      expect(ev).to.have.property('event', 'NIC_RX_FILTER_CHANGED');
      expect(ev['data']).to.deep.equal({ name: 'net0', path: '/machine/peripheral/net0/virtio-backend' });
      const ts = ev['timestamp'] as { seconds: number; microseconds: number };
      expect(Number.isInteger(ts.seconds) && Number.isInteger(ts.microseconds)).to.equal(true);
      expect(ts.microseconds).to.be.within(0, 999_999);
      expect(ts.seconds + ts.microseconds / 1e6).to.be.within(before - 1, Date.now() / 1000 + 1);
    }
    // The unnegotiated client got nothing: its next line is the reply to this command.
    expect(await unnegotiated.execute('qmp_capabilities')).to.deep.equal({ return: {} });
    expect(unnegotiated.events).to.deep.equal([]);
  });

  it('event_fires_once_until_query_rx_filter_rearms_it', async () => {
    const c = await client();
    nic.change({ promiscuous: true });
    nic.change({ 'multicast-table': ['01:00:5e:00:00:01'] });
    nic.change({ unicast: 'all' });
    expect((await c.next('first event'))['event']).to.equal('NIC_RX_FILTER_CHANGED');
    // Barrier: a round trip; any further event would arrive before its reply.
    const reply = await c.execute('query-rx-filter', { name: 'net0' });
    expect(c.events).to.deep.equal([]);
    const [info] = reply['return'] as Record<string, unknown>[];
    expect(info).to.include({ promiscuous: true, unicast: 'all' });
    nic.change({ promiscuous: false });
    expect((await c.next('event after re-arm'))['event']).to.equal('NIC_RX_FILTER_CHANGED');
    expect(nic.fired).to.equal(2);
  });

  it('query_rx_filter_without_name_lists_and_rearms_every_nic', async () => {
    await server.close();
    const second = new FakeNic('net1');
    server = new QmpServer({ devices: [nic, second], path });
    await server.listen();
    const c = await client();
    nic.change({ promiscuous: true });
    second.change({ promiscuous: true });
    await c.next('event 1');
    await c.next('event 2');
    const reply = await c.execute('query-rx-filter');
    expect((reply['return'] as { name: string }[]).map((r) => r.name)).to.deep.equal(['net0', 'net1']);
    expect([nic.queries, second.queries]).to.deep.equal([1, 1]);
    second.change({ vlan: 'all' });
    expect(await c.next('re-armed event')).to.have.nested.property('data.name', 'net1');
  });

  it('set_link_by_nic_id_or_netdev_id_and_unknown_is_device_not_found', async () => {
    const c = await client();
    expect(await c.execute('set_link', { name: 'net0', up: false })).to.deep.equal({ return: {} });
    expect(nic.linkUp).to.equal(false);
    expect(await c.execute('set_link', { name: 'hostnet0', up: true })).to.deep.equal({ return: {} });
    expect(nic.linkUp).to.equal(true);
    expect(await c.execute('set_link', { name: 'hub0port', up: false })).to.deep.equal({ return: {} });
    expect(nic.linkUp).to.equal(true);
    expect(await c.execute('set_link', { name: 'eth7', up: false })).to.deep.equal({
      error: { class: 'DeviceNotFound', desc: "Device 'eth7' not found" },
    });
  });

  it('query_rx_filter_names_a_netdev_or_nothing', async () => {
    const c = await client();
    expect(await c.execute('query-rx-filter', { name: 'hostnet0' })).to.deep.equal({
      error: { class: 'GenericError', desc: "net client(hostnet0) isn't a NIC" },
    });
    expect(await c.execute('query-rx-filter', { name: 'hub0port' })).to.deep.equal({
      error: { class: 'GenericError', desc: "net client(hub0port) isn't a NIC" },
    });
    expect(await c.execute('query-rx-filter', { name: 'zz' })).to.deep.equal({
      error: { class: 'GenericError', desc: 'invalid net client name: zz' },
    });
  });

  it('reply_sends_only_schema_members_of_a_nic_that_returns_more', async () => {
    const c = await client();
    const original = nic.queryRxFilter.bind(nic);
    nic.queryRxFilter = () => ({ ...original(), secret: 'internal' }) as ReturnType<FakeNic['queryRxFilter']>;
    const [info] = (await c.execute('query-rx-filter'))['return'] as Record<string, unknown>[];
    expect(Object.keys(info!)).to.have.length(12);
    expect(info).to.not.have.property('secret');
  });

  it('nic_returning_a_bad_value_gives_a_generic_error_and_a_diagnostic', async () => {
    const c = await client();
    nic.queryRxFilter = () => ({ name: 'net0' }) as ReturnType<FakeNic['queryRxFilter']>;
    const reply = await c.execute('query-rx-filter', undefined, 9);
    expect(reply).to.deep.equal({
      error: { class: 'GenericError', desc: "internal error: the reply to 'query-rx-filter' does not match its schema" },
      id: 9,
    });
    expect(diagnostics.map((d) => d.code)).to.include('qmp.reply-invalid');
    nic.stats = () => {
      throw new Error('counter store gone');
    };
    expect(await c.execute('x-query-virtio-net-stats')).to.deep.equal({
      error: { class: 'GenericError', desc: "internal error in 'x-query-virtio-net-stats': counter store gone" },
    });
    expect(diagnostics.map((d) => d.code)).to.include('qmp.handler-threw');
    nic.stats = () => ({ big: 1n });
    expect(await c.execute('x-query-virtio-net-stats')).to.have.nested.property('error.class', 'GenericError');
    expect(await c.execute('query-version', undefined, 'alive')).to.have.property('id', 'alive');
  });

  it('malformed_event_payload_is_not_sent_and_is_reported', async () => {
    const c = await client();
    nic.emit('rx-filter-changed', { name: 42 });
    expect(diagnostics).to.deep.include({ code: 'qmp.event-invalid', event: 'NIC_RX_FILTER_CHANGED', detail: 'data.name: expected a string' });
    await c.execute('query-version');
    expect(c.events).to.deep.equal([]);
  });

  it('socket_file_is_mode_0600_and_removed_on_close', async () => {
    const st = await stat(path);
    expect(st.isSocket()).to.equal(true);
    expect(st.mode & 0o777).to.equal(0o600);
    await server.close();
    await stat(path).then(
      () => expect.fail('socket file still there'),
      (err: NodeJS.ErrnoException) => expect(err.code).to.equal('ENOENT'),
    );
  });

  it('stale_socket_is_replaced_but_a_regular_file_is_not', async () => {
    await server.close();
    // A stale socket: a socket file whose server is gone (a second name for a socket, kept after
    // its server closed and removed the first name).
    const origin = join(dir, 'origin.sock');
    const gone = net.createServer();
    await new Promise<void>((r) => gone.listen(origin, r));
    await link(origin, path);
    await new Promise<void>((r) => gone.close(() => r()));
    const staleIno = (await stat(path)).ino;
    expect((await stat(path)).isSocket()).to.equal(true);
    server = new QmpServer({ devices: [nic], path });
    await server.listen();
    expect((await stat(path)).ino).to.not.equal(staleIno);
    const c = await client();
    expect(await c.execute('query-version')).to.have.property('return');
    await server.close();

    const file = join(dir, 'not-a-socket');
    await writeFile(file, 'precious');
    const other = new QmpServer({ devices: [], path: file });
    let error: Error | undefined;
    await other.listen().catch((e: Error) => (error = e));
    expect(error?.message).to.match(/exists and is not a socket/);
    expect((await stat(file)).isFile()).to.equal(true);
  });

  it('no_tcp_listener_unless_asked_and_then_on_loopback', async () => {
    expect(server.address).to.deep.equal({ path });
    await server.close();
    server = new QmpServer({ devices: [nic], path, tcp: { port: 0 } });
    await server.listen();
    const tcp = server.address.tcp!;
    expect(tcp.host).to.equal('127.0.0.1');
    expect(tcp.port).to.be.greaterThan(0);
    const c = await RawQmpClient.negotiated(tcp);
    clients.push(c);
    expect(await c.execute('query-rx-filter', { name: 'net0' })).to.have.property('return');
  });

  it('bad_options_throw_naming_the_option', () => {
    const make = (o: object) => () => new QmpServer({ devices: [], path, ...o } as ConstructorParameters<typeof QmpServer>[0]);
    expect(make({ path: '' })).to.throw(TypeError, /options\.path/);
    expect(make({ path: `/tmp/${'x'.repeat(200)}` })).to.throw(/options\.path must be at most 107 bytes/);
    expect(make({ devices: [{ id: 'x' }] })).to.throw(/options\.devices\[0\] must be a NIC/);
    expect(make({ devices: [new FakeNic('a'), new FakeNic('a')] })).to.throw(/options\.devices\[1\]\.id must be unique/);
    expect(make({ tcp: { port: 70000 } })).to.throw(/options\.tcp\.port must be an integer from 0 to 65535/);
    expect(make({ maxMessageBytes: 10 })).to.throw(/options\.maxMessageBytes must be an integer from 1024/);
    expect(make({ netdevs: [{}] })).to.throw(/options\.netdevs\[0\]\.id/);
    expect(make({ version: { qemu: { major: 1 } } })).to.throw(/options\.version\.qemu\.minor/);
  });

  it('listen_twice_throws_and_close_is_idempotent', async () => {
    let error: Error | undefined;
    await server.listen().catch((e: Error) => (error = e));
    expect(error?.message).to.match(/already listening/);
    await server.close();
    await server.close();
  });

  it('close_disconnects_clients', async () => {
    const c = await client();
    expect(server.clientCount).to.equal(1);
    await server.close();
    await c.closed;
    expect(c.ended).to.equal(true);
  });

  it('async_handler_holds_later_requests_so_replies_stay_in_order', async () => {
    // Handlers may return promises (commands added later may wait on I/O). Swap one in for the test.
    const handlers = QMP_HANDLERS as unknown as Record<string, (...a: unknown[]) => unknown>;
    const original = handlers['query-version']!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    handlers['query-version'] = async (...a: unknown[]) => {
      await gate;
      return original(...a);
    };
    try {
      const c = await client();
      c.send('{"execute":"query-version","id":"slow"}{"execute":"query-commands","id":"fast"}@\n{"execute":"nope","id":"err"}');
      // The first reply is pending until the gate opens; the first line must still be its reply.
      setImmediate(release);
      expect(await c.reply('slow')).to.have.property('id', 'slow');
      expect(await c.reply('fast')).to.have.property('id', 'fast');
      expect(await c.reply('stray')).to.deep.equal({ error: { class: 'GenericError', desc: "JSON parse error, stray '@'" } });
      expect(await c.reply('err')).to.have.nested.property('error.class', 'CommandNotFound');
    } finally {
      handlers['query-version'] = original;
    }
  });

  it('a_device_shaped_class_satisfies_qmp_nic', () => {
    // Compile-time: the shapes a real device class may have (interface-typed counters, readonly
    // lists, overloaded on(), a private netdev) still satisfy QmpNic.
    interface Counters {
      'tx-frames': number;
    }
    interface Filter extends Omit<QmpRxFilterInfo, 'vlan-table'> {
      readonly 'vlan-table': readonly number[];
    }
    class DeviceLike extends EventEmitter {
      readonly linkUp = true;
      private readonly netdev = { id: 'tap0' };
      constructor(readonly id: string) {
        super();
      }
      override on(event: 'rx-filter-changed', l: (e: { name: string; path: string }) => void): this;
      override on(event: 'needs-reset', l: (e: { code: string }) => void): this;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the EventEmitter signature
      override on(event: string, l: (...a: any[]) => void): this {
        return super.on(event, l);
      }
      queryRxFilter(): Filter {
        return { ...new FakeNic(this.id).queryRxFilter(), 'vlan-table': [this.netdev.id.length] };
      }
      setLink(_up: boolean): void {}
      stats(): Counters {
        return { 'tx-frames': 1 };
      }
    }
    const nic: QmpNic = new DeviceLike('d0');
    expect(nic.queryRxFilter()['vlan-table']).to.deep.equal([4]);
    // A private (TypeScript-private) netdev field is still found at run time; an ES #private one is not.
    expect(attachedNetdevId(nic)).to.equal('tap0');
    expect(attachedNetdevId(new FakeNic('x'))).to.equal(undefined);
  });

  it('custom_version_is_in_greeting_and_query_version', async () => {
    await server.close();
    const version = { qemu: { major: 8, minor: 1, micro: 3 }, package: 'test build' };
    server = new QmpServer({ devices: [], path, version });
    await server.listen();
    const c = await client(false);
    expect(await c.next('greeting')).to.deep.equal({ QMP: { version, capabilities: [] } });
    await c.execute('qmp_capabilities');
    expect(await c.execute('query-version')).to.deep.equal({ return: version });
  });
});
