// The passthrough commands on the QMP server, driven by QEMU's own python client (qemu.qmp):
// colo-passthrough-add/-del (the seed's names) and passthrough-filter-add/-del (object-name
// required) edit the list a running colo-compare uses — a flow added is no longer compared, a
// flow deleted is compared again; duplicates and missing entries are errors naming the entry.
// Skipped, with the reason printed, when the python client cannot be set up.

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColoCompare, type CheckpointRequest } from '../../../lib/colo/colo-compare.js';
import { PassthroughList } from '../../../lib/passthrough/passthrough.js';
import { QmpServer } from '../../../lib/qmp/index.js';
import { PythonQmpClient, requirePythonQmp, type PythonQmpSetup } from '../../support/python-qmp.js';
import { streamBytes, udp } from './streams.js';

describe('lib/colo passthrough over QMP with QEMU python qemu.qmp client', function () {
  this.timeout(15 * 60 * 1000);
  let setup: PythonQmpSetup;
  let dir: string;
  let server: QmpServer;
  let py: PythonQmpClient | undefined;
  let list: PassthroughList;

  before(async function () {
    setup = { ok: true, ...(await requirePythonQmp(this)) };
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-colo-'));
    list = new PassthroughList();
    // The objects entries may name: comp0 (the colo-compare the first test builds) and a filter m0.
    server = new QmpServer({ devices: [], path: join(dir, 'qmp.sock'), colo: { passthrough: list, objects: [{ id: 'comp0' }, { id: 'm0' }] } });
    await server.listen();
    if (!setup.ok) throw new Error('unreachable');
    py = await PythonQmpClient.start(server.address.path, setup);
  });

  afterEach(async () => {
    await py?.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('colo_passthrough_add_and_del_change_what_colo_compare_compares', async () => {
    const requests: CheckpointRequest[] = [];
    const out: Uint8Array[] = [];
    const cc = new ColoCompare({ id: 'comp0', output: (f) => out.push(f.slice()), passthrough: list });
    cc.on('checkpoint-request', (r) => requests.push(r));
    const spec = { protocol: 'udp', 'object-name': 'comp0', source: { host: '192.168.7.2', port: '53' }, destination: { host: '192.168.7.100', port: '33333' } };
    expect(await py!.execute('colo-passthrough-add', spec)).to.deep.equal({ ok: true, return: {} });
    expect(server.passthrough).to.equal(list);
    expect(list.list()).to.deep.equal([spec]);
    // Different content on the two sides, yet no request: the flow is not compared.
    cc.primaryInput(udp(streamBytes(30, 1)));
    cc.secondaryInput(udp(streamBytes(30, 2)));
    expect(requests).to.deep.equal([]);
    expect(out).to.have.length(1);

    expect(await py!.execute('colo-passthrough-add', spec)).to.deep.equal({
      ok: false,
      error: {
        class: 'GenericError',
        desc: 'passthrough entry already exists: protocol=udp object-name=comp0 source=192.168.7.2:53 destination=192.168.7.100:33333',
      },
    });
    expect(await py!.execute('colo-passthrough-del', spec)).to.deep.equal({ ok: true, return: {} });
    expect(await py!.execute('colo-passthrough-del', spec)).to.deep.equal({
      ok: false,
      error: {
        class: 'GenericError',
        desc: 'passthrough entry not found: protocol=udp object-name=comp0 source=192.168.7.2:53 destination=192.168.7.100:33333',
      },
    });
    // Compared again.
    cc.primaryInput(udp(streamBytes(30, 1)));
    cc.secondaryInput(udp(streamBytes(30, 2)));
    expect(requests.map((r) => r.reason)).to.deep.equal(['mismatch']);
    await cc.close();
  });

  it('passthrough_filter_add_and_del_require_object_name', async () => {
    expect(await py!.execute('passthrough-filter-add', { protocol: 'tcp' })).to.deep.equal({
      ok: false,
      error: { class: 'GenericError', desc: "Parameter 'object-name' is missing" },
    });
    expect(await py!.execute('passthrough-filter-add', { 'object-name': 'm0', destination: { host: 'fd00::2', port: '22' } })).to.deep.equal({ ok: true, return: {} });
    expect(list.list()).to.deep.equal([{ 'object-name': 'm0', destination: { host: 'fd00::2', port: '22' } }]);
    expect(await py!.execute('passthrough-filter-del', { 'object-name': 'm0', destination: { host: 'fd00::2', port: '22' } })).to.deep.equal({ ok: true, return: {} });
    expect(list.size).to.equal(0);
    const cmds = (await py!.execute('query-commands')) as { ok: true; return: { name: string }[] };
    expect(cmds.return.map((c) => c.name)).to.include.members(['colo-passthrough-add', 'colo-passthrough-del', 'passthrough-filter-add', 'passthrough-filter-del']);
  });

  it('bad_entries_are_qmp_errors_and_the_list_is_unchanged', async () => {
    expect(await py!.execute('colo-passthrough-add', { protocol: 'nosuchproto' })).to.deep.equal({
      ok: false,
      error: { class: 'GenericError', desc: "unknown protocol 'nosuchproto' (not in the system's protocol table)" },
    });
    expect(await py!.execute('colo-passthrough-add', { source: { host: '10.0.0.1' } })).to.deep.equal({
      ok: false,
      error: { class: 'GenericError', desc: "Parameter 'source.port' is missing" },
    });
    expect(list.size).to.equal(0);
  });
});
