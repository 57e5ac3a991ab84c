// query-qmp-schema says what the server accepts: a client that knows nothing but the introspection
// walks it and, for every command, builds an argument object from the declared types (a few
// commands get values that also make sense, e.g. an address netdev_add can listen on) and sends it
// — the server must not refuse it for its arguments (a `return`, or one of the command's declared
// errors) — then sends the same with one member of the wrong JSON type (or an undeclared member
// when there is none to get wrong) and must get QEMU's argument error naming that member; each
// optional member is tried the same way, with a value of its type and with a wrong one. Every
// event's example data must fit the event's declared argument object.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpServer } from '../../../lib/qmp/index.js';
import { QMP_SCHEMA } from '../../../lib/qmp/schema.js';
import { ObjectRegistry } from '../../../lib/colo/object-registry.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { QmpCommandDef } from '../../../lib/qmp/schema-types.js';
import { FakeNic } from './fake-nic.js';
import { RawQmpClient } from './raw-client.js';

interface Info {
  name: string;
  'meta-type': string;
  'arg-type'?: string;
  members?: { name: string; type: string; default?: null }[];
  values?: string[];
  'element-type'?: string;
  'json-type'?: string;
}

describe('lib/qmp query-qmp-schema walked by a client', function () {
  this.timeout(60_000);
  let dir: string;
  let server: QmpServer;
  let registry: ObjectRegistry;
  let chain: FilterChain;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-walk-'));
    chain = new FilterChain(new MemoryNetdev({ id: 'hostnet0' }));
    registry = new ObjectRegistry({ netdevs: new Map([['hostnet0', chain]]), chardevs: new Map() });
    const nic = new FakeNic('vnet0', {}, { id: 'hostnet0' });
    server = new QmpServer({ devices: [nic], path: join(dir, 'qmp.sock'), objects: registry, colo: { objects: [{ id: 'comp0' }] } });
    await server.listen();
  });

  after(async () => {
    await server.close();
    await registry.close();
    await chain.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('every_command_takes_arguments_of_the_introspected_types_and_refuses_a_wrong_type_naming_the_member', async () => {
    const c = await RawQmpClient.negotiated(server.address.path);
    const reply = await c.execute('query-qmp-schema');
    const infos = reply['return'] as Info[];
    const byName = new Map(infos.map((i) => [i.name, i]));
    const commands = infos.filter((i) => i['meta-type'] === 'command');
    expect(commands.map((i) => i.name).sort()).to.deep.equal(Object.keys(QMP_SCHEMA.commands).sort());

    /** A value of the type, from the introspection alone. */
    const valueOf = (type: string): unknown => {
      const t = byName.get(type);
      if (t === undefined) throw new Error(`type ${type} is not in the schema`);
      switch (t['meta-type']) {
        case 'builtin':
          return { string: 'x', int: 1, boolean: true, number: 1.5, value: {} }[t['json-type']!];
        case 'enum':
          return t.values![0];
        case 'array':
          return [valueOf(t['element-type']!)];
        case 'object':
          return Object.fromEntries(t.members!.filter((m) => !('default' in m)).map((m) => [m.name, valueOf(m.type)]));
        default:
          throw new Error(`unexpected meta-type ${t['meta-type']}`);
      }
    };
    /** A value of another JSON type than `type` takes, with the word QEMU uses for what it expected. */
    const wrongFor = (type: string): { value: unknown; expected: string } | undefined => {
      const t = byName.get(type)!;
      if (t['meta-type'] === 'builtin') {
        const jt = t['json-type']!;
        if (jt === 'value') return undefined;
        if (jt === 'string') return { value: 5, expected: 'string' };
        if (jt === 'boolean') return { value: 'x', expected: 'boolean' };
        if (jt === 'number') return { value: 'x', expected: 'number' };
        return { value: 'x', expected: t.name === 'int' ? 'integer' : 'uint64' };
      }
      if (t['meta-type'] === 'enum') return { value: 5, expected: 'string' };
      if (t['meta-type'] === 'array') return { value: 'x', expected: 'array' };
      return { value: 'x', expected: 'object' };
    };
    // Values that also make sense (the generic ones are well typed but name nothing real).
    const sensible: Record<string, Record<string, unknown>> = {
      netdev_add: { type: 'stream', id: 'walk0', addr: { type: 'inet', host: '127.0.0.1', port: '0' }, server: true },
      netdev_del: { id: 'walk0' },
      'object-add': { 'qom-type': 'filter-dump', id: 'walkdump', netdev: 'hostnet0', file: join(dir, 'walk.pcap') },
      'object-del': { id: 'walkdump' },
      'colo-passthrough-add': { protocol: 'tcp', 'object-name': 'comp0' },
      'colo-passthrough-del': { protocol: 'tcp', 'object-name': 'comp0' },
      'passthrough-filter-add': { protocol: 'udp', 'object-name': 'walkdump' },
      'passthrough-filter-del': { protocol: 'udp', 'object-name': 'walkdump' },
      set_link: { name: 'vnet0', up: true },
      'announce-self': { rounds: 1 },
    };

    // Table order, so that each *-add comes before its *-del.
    for (const name of Object.keys(QMP_SCHEMA.commands)) {
      const info = byName.get(name)!;
      const argType = byName.get(info['arg-type']!)!;
      expect(argType['meta-type'], name).to.equal('object');
      const members = argType.members!;
      const valid = (sensible[name] ?? valueOf(argType.name)) as Record<string, unknown>;
      const ok = await c.execute(name, valid);
      const def = (QMP_SCHEMA.commands as Record<string, QmpCommandDef>)[name]!;
      if ('error' in ok) {
        const desc = (ok['error'] as { desc: string }).desc;
        const declared = (def.errors ?? []).some((e) => new RegExp(`^${e.desc.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%s/g, '.+')}$`).test(desc));
        expect(declared, `${name} ${JSON.stringify(valid)} was refused with an undeclared error: ${desc}`).to.equal(true);
        expect(desc, `${name}: a well-typed argument refused as ill-typed`).to.not.match(/Invalid parameter type|is unexpected/);
      }
      // Each member in turn, optional ones too: of its declared type it is not refused as ill-typed;
      // of another JSON type it is refused naming it.
      for (const m of members) {
        const typed = await c.execute(name, { ...valid, [m.name]: valueOf(m.type) });
        if ('error' in typed) {
          expect((typed['error'] as { desc: string }).desc, `${name}.${m.name} = ${JSON.stringify(valueOf(m.type))}`).to.not.match(/Invalid parameter type|expects uint|does not accept value/);
        }
        const wrong = wrongFor(m.type);
        if (wrong === undefined) continue;
        const refused = await c.execute(name, { ...valid, [m.name]: wrong.value });
        expect(refused, `${name}.${m.name} = ${JSON.stringify(wrong.value)}`).to.have.property('error');
        const desc = (refused['error'] as { desc: string }).desc;
        if (wrong.expected === 'uint64') expect(desc, name).to.equal(`Parameter '${m.name}' expects uint64`);
        else expect(desc, name).to.equal(`Invalid parameter type for '${m.name}', expected: ${wrong.expected}`);
      }
      const extra = await c.execute(name, { ...valid, 'no-such-member': 1 });
      expect((extra['error'] as { desc: string } | undefined)?.desc, name).to.equal("Parameter 'no-such-member' is unexpected");
    }

    // Events: the example data of each fits its declared argument object.
    const events = infos.filter((i) => i['meta-type'] === 'event');
    expect(events.map((e) => e.name).sort()).to.deep.equal(Object.keys(QMP_SCHEMA.events).sort());
    for (const e of events) {
      const members = byName.get(e['arg-type']!)!.members!;
      const data = ((QMP_SCHEMA.events as Record<string, { example: { data: Record<string, unknown> } }>)[e.name]!.example.data);
      for (const k of Object.keys(data)) expect(members.map((m) => m.name), `${e.name}.${k}`).to.include(k);
      for (const m of members) if (!('default' in m)) expect(data, `${e.name} requires ${m.name}`).to.have.property(m.name);
    }
    c.close();
  });
});
