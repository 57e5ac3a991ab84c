// Every example exchange in the schema table runs against the fixture schema.ts describes, over a
// real socket; and the table itself is consistent (types resolve, handlers exist, query-commands
// is the table, examples conform to their declared return types).

import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QMP_HANDLERS, QMP_SCHEMA, QmpServer, type QmpArgs, type QmpResult } from '../../../lib/qmp/index.js';
import type { QmpCommandDef, QmpMembers } from '../../../lib/qmp/schema-types.js';
import { assertTypeRefsResolve, membersOf, projectOutput, projectStruct } from '../../../lib/qmp/validate.js';
import { FakeNic } from './fake-nic.js';
import { RawQmpClient } from './raw-client.js';

/** The fixture the schema's examples are written against (see the header of lib/qmp/schema.ts). */
function fixtureNic(): FakeNic {
  const nic = new FakeNic(
    'vnet0',
    {
      promiscuous: true,
      'broadcast-allowed': false,
      'vlan-table': [0, 4],
      'multicast-table': ['01:00:5e:00:00:01', '33:33:00:00:00:01', '33:33:ff:4b:8f:84'],
    },
    { id: 'hostnet0' },
  );
  nic.counters = { 'tx-frames': 3, 'tx-bytes': 180, 'rx-frames': 5, 'rx-bytes': 300 };
  return nic;
}

const commands = QMP_SCHEMA.commands as Record<string, QmpCommandDef>;

describe('lib/qmp schema', () => {
  describe('table', () => {
    it('every_type_reference_resolves', () => {
      const check = (members: QmpMembers | undefined, where: string): void => {
        for (const m of membersOf(members ?? {})) assertTypeRefsResolve(m.type, QMP_SCHEMA.types, `${where}.${m.name}`);
      };
      for (const [name, def] of Object.entries(QMP_SCHEMA.types)) if ('struct' in def) check(def.struct, name);
      for (const [name, def] of Object.entries(commands)) {
        check(def.data, name);
        if (def.returns !== undefined) assertTypeRefsResolve(def.returns, QMP_SCHEMA.types, `${name}.returns`);
      }
      for (const [name, def] of Object.entries(QMP_SCHEMA.events)) check(def.data, name);
    });

    it('every_command_has_a_handler_and_an_example', () => {
      expect(Object.keys(QMP_HANDLERS).sort()).to.deep.equal(Object.keys(commands).sort());
      for (const [name, def] of Object.entries(commands)) {
        expect(def.examples.length, name).to.be.greaterThan(0);
        expect(def.examples.some((e) => e['->']['execute'] === name), name).to.equal(true);
      }
    });

    it('example_replies_conform_to_the_declared_return_types', () => {
      for (const [name, def] of Object.entries(commands)) {
        for (const ex of def.examples) {
          const reply = ex['<-'];
          if (!('return' in reply)) continue;
          if (def.returns === undefined) {
            expect(reply['return'], name).to.deep.equal({});
          } else {
            const r = projectOutput(def.returns, reply['return'], QMP_SCHEMA.types);
            expect(r.ok, `${name}: ${r.ok ? '' : r.detail}`).to.equal(true);
          }
        }
      }
      for (const [name, def] of Object.entries(QMP_SCHEMA.events)) {
        expect(def.example['event'], name).to.equal(name);
        expect(projectStruct(def.data, def.example['data'], QMP_SCHEMA.types, 'data').ok, name).to.equal(true);
      }
    });

    it('documented_errors_are_the_classes_examples_show', () => {
      for (const [name, def] of Object.entries(commands)) {
        for (const ex of def.examples) {
          const err = ex['<-']['error'] as { class: string; desc: string } | undefined;
          if (err === undefined || err.desc.startsWith('Parameter') || err.desc.startsWith('Invalid parameter')) continue;
          const documented = (def.errors ?? []).some(
            (e) => e.class === err.class && new RegExp(`^${e.desc.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('%s', '.+')}$`).test(err.desc),
          );
          expect(documented, `${name}: ${err.desc}`).to.equal(true);
        }
      }
    });

    it('handler_types_follow_the_table', () => {
      // Compile-time checks: these assignments fail to type-check if the derivation breaks.
      const args: QmpArgs<'set_link'> = { name: 'vnet0', up: true };
      const optional: QmpArgs<'query-rx-filter'> = {};
      const result: QmpResult<'query-version'> = { qemu: { major: 1, minor: 2, micro: 3 }, package: '' };
      // @ts-expect-error `up` is required by set_link's data
      const missing: QmpArgs<'set_link'> = { name: 'x' };
      // @ts-expect-error RxState has no 'some'
      const badEnum: QmpResult<'query-rx-filter'>[number]['unicast'] = 'some';
      expect([args, optional, result, missing, badEnum]).to.have.length(5);
    });
  });

  describe('examples', () => {
    let dir: string;
    let server: QmpServer;
    let nic: FakeNic;
    /** The fixture's stream netdev `netdev0`: what StreamNetdev emits, without a socket. */
    let stream: EventEmitter & { id: string; kind: 'stream' };

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'qmp-schema-'));
      nic = fixtureNic();
      stream = Object.assign(new EventEmitter(), { id: 'netdev0', kind: 'stream' as const });
      server = new QmpServer({ devices: [nic], netdevs: [stream], path: join(dir, 'qmp.sock'), colo: { objects: [{ id: 'object0' }, { id: 'comp0' }, { id: 'm0' }] } });
      await server.listen();
    });
    afterEach(async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    });

    for (const [name, def] of Object.entries(commands)) {
      def.examples.forEach((ex, i) => {
        it(`${name}_example_${i + 1}${ex.mode === 'negotiation' ? '_before_negotiation' : ''}`, async () => {
          const path = server.address.path;
          const c = ex.mode === 'negotiation' ? await RawQmpClient.connect(path) : await RawQmpClient.negotiated(path);
          try {
            if (ex.mode === 'negotiation') await c.next('greeting');
            c.send(JSON.stringify(ex['->']));
            const reply = await c.reply(name);
            if (ex.partial === true) {
              const listed = ex['<-']['return'] as unknown[];
              expect((reply['return'] as unknown[]).slice(0, listed.length)).to.deep.equal(listed);
            } else {
              expect(reply).to.deep.equal(ex['<-']);
            }
          } finally {
            c.close();
          }
        });
      });
    }

    it('query_commands_lists_exactly_the_table', async () => {
      const c = await RawQmpClient.negotiated(server.address.path);
      expect(await c.execute('query-commands')).to.deep.equal({ return: Object.keys(commands).map((name) => ({ name })) });
      c.close();
    });

    for (const [name, def] of Object.entries(QMP_SCHEMA.events)) {
      it(`${name}_example`, async () => {
        const c = await RawQmpClient.negotiated(server.address.path);
        try {
          const triggers: Record<string, () => void> = {
            NIC_RX_FILTER_CHANGED: () => nic.change({ promiscuous: false }),
            NETDEV_STREAM_CONNECTED: () => stream.emit('connected', { type: 'unix', path: '/tmp/qemu0' }),
            NETDEV_STREAM_DISCONNECTED: () => stream.emit('disconnected'),
            // What a colo-compare in the server's object registry reports (the real one: test/cli/colo-run.test.ts).
            COLO_COMPARE_CHECKPOINT_REQUEST: () => server.objects.emit('checkpoint-request', { id: 'comp0', reason: 'mismatch', flow: 'tcp 10.0.2.15:7 <-> 10.0.2.2:40000' }),
          };
          expect(triggers[name], `a trigger for ${name}`).to.be.a('function');
          triggers[name]!();
          const ev = await c.next(name);
          const { timestamp, ...rest } = ev;
          const { timestamp: _t, ...expected } = def.example;
          expect(rest).to.deep.equal(expected);
          expect(Object.keys(timestamp as object).sort()).to.deep.equal(['microseconds', 'seconds']);
        } finally {
          c.close();
        }
      });
    }
  });
});
