// colo-passthrough-add/-del and passthrough-filter-add/-del over a real socket: an 'object-name'
// must name one of the objects the server was given (`options.colo.objects`: colo-compare and net
// filters), else a GenericError naming it in QEMU's words for an unknown object ("object '%s' not
// found", as object-del answers in QEMU 7.2), and the list is unchanged. Entries without an
// 'object-name' (colo-passthrough-*: for every object) need no object.

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColoCompare } from '../../../lib/colo/colo-compare.js';
import { PassthroughList } from '../../../lib/passthrough/passthrough.js';
import { QmpServer } from '../../../lib/qmp/index.js';
import { MAX_STRING_ARGUMENT_BYTES } from '../../../lib/qmp/options.js';
import { RawQmpClient } from './raw-client.js';

const notFound = (name: string) => ({ error: { class: 'GenericError', desc: `object '${name}' not found` } });

describe('lib/qmp passthrough commands', () => {
  let dir: string;
  let path: string;
  let server: QmpServer;
  let list: PassthroughList;
  let cc: ColoCompare;
  const clients: RawQmpClient[] = [];

  async function start(options: Partial<ConstructorParameters<typeof QmpServer>[0]>): Promise<RawQmpClient> {
    server = new QmpServer({ devices: [], path, ...options });
    await server.listen();
    const c = await RawQmpClient.negotiated(path);
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-passthrough-'));
    path = join(dir, 'qmp.sock');
    list = new PassthroughList();
    cc = new ColoCompare({ id: 'comp0', output: () => undefined, passthrough: list });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    await cc.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('passthrough_filter_add_and_del_naming_no_object_are_refused_naming_it', async () => {
    const c = await start({ colo: { passthrough: list, objects: [cc, { id: 'm0' }] } });
    expect(await c.execute('passthrough-filter-add', { protocol: 'tcp', 'object-name': 'nosuch' })).to.deep.equal(notFound('nosuch'));
    expect(list.size).to.equal(0);
    expect(await c.execute('passthrough-filter-add', { protocol: 'tcp', 'object-name': 'm0' })).to.deep.equal({ return: {} });
    expect(await c.execute('passthrough-filter-del', { protocol: 'tcp', 'object-name': 'nosuch' })).to.deep.equal(notFound('nosuch'));
    expect(list.list()).to.deep.equal([{ protocol: 'tcp', 'object-name': 'm0' }]);
    expect(await c.execute('passthrough-filter-del', { protocol: 'tcp', 'object-name': 'm0' })).to.deep.equal({ return: {} });
    expect(list.size).to.equal(0);
  });

  it('colo_passthrough_add_and_del_naming_no_object_are_refused_naming_it', async () => {
    const c = await start({ colo: { passthrough: list, objects: [cc] } });
    const spec = { protocol: 'udp', source: { host: '10.0.0.1', port: '53' } };
    expect(await c.execute('colo-passthrough-add', { ...spec, 'object-name': 'object0' }, 7)).to.deep.equal({ ...notFound('object0'), id: 7 });
    expect(list.size).to.equal(0);
    expect(await c.execute('colo-passthrough-add', { ...spec, 'object-name': 'comp0' })).to.deep.equal({ return: {} });
    expect(await c.execute('colo-passthrough-del', { ...spec, 'object-name': 'object0' })).to.deep.equal(notFound('object0'));
    expect(list.size).to.equal(1);
    expect(await c.execute('colo-passthrough-del', { ...spec, 'object-name': 'comp0' })).to.deep.equal({ return: {} });
    expect(list.size).to.equal(0);
  });

  it('unknown_object_is_named_before_the_entry_is_checked', async () => {
    const c = await start({ colo: { passthrough: list, objects: [cc] } });
    expect(await c.execute('colo-passthrough-add', { protocol: 'nosuchproto', 'object-name': 'gone' })).to.deep.equal(notFound('gone'));
  });

  it('server_given_no_objects_refuses_every_object_name_and_takes_entries_for_all_objects', async () => {
    const c = await start({});
    expect(await c.execute('passthrough-filter-add', { 'object-name': 'comp0' })).to.deep.equal(notFound('comp0'));
    expect(await c.execute('colo-passthrough-add', { protocol: 'udp' })).to.deep.equal({ return: {} });
    expect(await c.execute('colo-passthrough-del', { protocol: 'udp' })).to.deep.equal({ return: {} });
    expect(server.passthrough.size).to.equal(0);
  });

  it('object_name_longer_than_the_string_cap_is_refused_before_any_lookup', async () => {
    const c = await start({ colo: { passthrough: list, objects: [cc] } });
    expect(await c.execute('passthrough-filter-add', { 'object-name': 'x'.repeat(MAX_STRING_ARGUMENT_BYTES + 1) })).to.deep.equal({
      error: { class: 'GenericError', desc: `Parameter 'object-name' expects a string of at most ${MAX_STRING_ARGUMENT_BYTES} bytes` },
    });
    expect(list.size).to.equal(0);
  });

  it('bad_colo_objects_throw_naming_the_option', () => {
    const make = (colo: object) => () => new QmpServer({ devices: [], path, colo } as ConstructorParameters<typeof QmpServer>[0]);
    expect(make({ objects: 'comp0' })).to.throw(TypeError, /options\.colo\.objects must be an array/);
    expect(make({ objects: [{ id: '' }] })).to.throw(TypeError, /options\.colo\.objects\[0\]\.id must be a non-empty string/);
    expect(make({ objects: [cc, { id: 'comp0' }] })).to.throw(TypeError, /options\.colo\.objects\[1\]\.id must be unique/);
    expect(make({ passthrough: [] })).to.throw(TypeError, /options\.colo\.passthrough must be a PassthroughList/);
    expect(make({ objects: [cc] })).to.not.throw();
  });
});
