// ObjectRegistry: the objects of `--object` and QMP object-add, over real loopback chardevs and a
// FilterChain on a MemoryNetdev. Filters join in creation order (or where position= says);
// object-del takes a filter off between frames with none lost; colo-compare's object-del sends
// out the primary packets it held; chardevs outlive their object and serve the next one; a
// checkpoint request reaches 'checkpoint-request' and notify_dev as QEMU's DO_CHECKPOINT.
import { expect } from 'chai';
import { ChardevSocket } from '../../../lib/chardev/chardev-socket.js';
import { encodeFrame } from '../../../lib/chardev/framing.js';
import { ObjectRegistry } from '../../../lib/colo/object-registry.js';
import { checkObject, ObjectPropertyError } from '../../../lib/colo/object-table.js';
import type { CheckpointRequest } from '../../../lib/colo/colo-compare.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { buildFrame } from '../../../lib/packet/build.js';
import { TCP_FLAG } from '../../../lib/packet/parse.js';
import { SocketPeer } from '../filters/socket-peer.js';

const spec = (type: string, id: string, props: Record<string, unknown>) => checkObject(type, id, props, false);
const tcp = (payload: string, seq = 1000) =>
  buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: 80, dstPort: 5000, seq, ack: 1, flags: TCP_FLAG.ACK | TCP_FLAG.PSH, payload: new TextEncoder().encode(payload) });

describe('lib/colo ObjectRegistry', function () {
  this.timeout(20_000);
  let host: MemoryNetdev;
  let chain: FilterChain;
  let chardevs: Map<string, ChardevSocket>;
  let registry: ObjectRegistry;
  const peers: SocketPeer[] = [];
  const toGuest: Uint8Array[] = [];
  const toHost: Uint8Array[] = [];

  async function chardev(id: string): Promise<{ sock: ChardevSocket; peer: SocketPeer }> {
    const sock = new ChardevSocket({ id, endpoint: { port: 0 }, server: true });
    await sock.open();
    chardevs.set(id, sock);
    const peer = await SocketPeer.connect({ port: sock.port! });
    peers.push(peer);
    await new Promise<void>((done) => (sock.connected ? done() : sock.once('connect', () => done())));
    return { sock, peer };
  }

  beforeEach(() => {
    host = new MemoryNetdev({ id: 'hostnet0' });
    host.on('transmit', (f) => toHost.push(f.slice()));
    chain = new FilterChain(host);
    chain.attach({ receive: (f) => (toGuest.push(f.slice()), true), writable: () => undefined });
    chardevs = new Map();
    registry = new ObjectRegistry({ netdevs: new Map([['hostnet0', chain]]), chardevs });
    toGuest.length = 0;
    toHost.length = 0;
  });

  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    await registry.close();
    await chain.close();
  });

  it('filters_join_their_chain_in_creation_order_or_where_position_says', async () => {
    await chardev('c0');
    registry.add(spec('filter-rewriter', 'a', { netdev: 'hostnet0' }));
    registry.add(spec('filter-mirror', 'b', { netdev: 'hostnet0', outdev: 'c0' }));
    registry.add(spec('filter-rewriter', 'c', { netdev: 'hostnet0', position: 'head' }));
    registry.add(spec('filter-rewriter', 'd', { netdev: 'hostnet0', position: 'id=a', insert: 'before' }));
    registry.add(spec('iothread', 'io0', {}));
    expect(chain.filters.map((f) => f.id)).to.deep.equal(['c', 'd', 'a', 'b']);
    expect(registry.ids()).to.deep.equal(['a', 'b', 'c', 'd', 'io0']);
  });

  it('refuses_unknown_references_busy_chardevs_and_duplicate_ids_in_qemus_words', async () => {
    await chardev('c0');
    registry.add(spec('filter-mirror', 'm0', { netdev: 'hostnet0', outdev: 'c0' }));
    const refusal = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        expect(e).to.be.instanceOf(ObjectPropertyError);
        return (e as ObjectPropertyError).qmpMessage;
      }
      return expect.fail('not refused');
    };
    expect(refusal(() => registry.add(spec('filter-mirror', 'm1', { netdev: 'hostnet0', outdev: 'c0' })))).to.equal("Device 'c0' is in use");
    expect(refusal(() => registry.add(spec('filter-mirror', 'm1', { netdev: 'hostnet0', outdev: 'c9' })))).to.equal("Device 'c9' not found");
    expect(refusal(() => registry.add(spec('filter-mirror', 'm1', { netdev: 'hn9', outdev: 'c0' })))).to.equal("Parameter 'netdev' expects a network backend id");
    expect(refusal(() => registry.add(spec('filter-rewriter', 'm0', { netdev: 'hostnet0' })))).to.equal("attempt to add duplicate property 'm0' to object (type 'container')");
    expect(refusal(() => registry.add(spec('filter-mirror', 'm1', { netdev: 'hostnet0', outdev: 'c0', vnet_hdr_support: true })))).to.equal("Device 'c0' is in use");
    expect(chain.filters.map((f) => f.id)).to.deep.equal(['m0']);
  });

  it('object_del_of_a_redirector_in_use_loses_no_frame_and_frees_its_chardev', async () => {
    const { peer } = await chardev('out0');
    registry.add(spec('filter-redirector', 'r0', { netdev: 'hostnet0', queue: 'rx', outdev: 'out0' }));
    // Guest frames (direction rx) go to the socket while the filter is on, to the host after.
    for (let i = 0; i < 50; i++) expect(chain.send(tcp(`a${i}`, 1000 + i))).to.equal('sent');
    await registry.delete('r0');
    for (let i = 50; i < 100; i++) expect(chain.send(tcp(`a${i}`, 1000 + i))).to.equal('sent');
    const redirected = await peer.waitFrames(50);
    expect(redirected.length).to.equal(50);
    expect(toHost.length).to.equal(50);
    expect(chain.filters).to.deep.equal([]);
    // The chardev stays open and serves the next object.
    registry.add(spec('filter-mirror', 'm1', { netdev: 'hostnet0', outdev: 'out0' }));
    chain.send(tcp('after'));
    expect((await peer.waitFrames(51)).length).to.equal(51);
    expect(chardevs.get('out0')!.connected).to.equal(true);
  });

  it('object_del_of_colo_compare_sends_out_the_primary_packets_it_held', async () => {
    const pri = await chardev('pri');
    await chardev('sec');
    const out = await chardev('out');
    registry.add(spec('colo-compare', 'comp0', { primary_in: 'pri', secondary_in: 'sec', outdev: 'out' }));
    pri.peer.write(encodeFrame(tcp('held-1'), undefined, false));
    pri.peer.write(encodeFrame(tcp('held-2', 1006), undefined, false));
    const compare = registry.get('comp0')!.instance as { stats(): { primaryQueued: number } };
    const deadline = Date.now() + 5000;
    while (compare.stats().primaryQueued < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(compare.stats().primaryQueued).to.equal(2);
    expect(out.peer.frames.length).to.equal(0);
    await registry.delete('comp0');
    const sent = await out.peer.waitFrames(2);
    expect(sent.map((f) => Buffer.from(f.frame).toString('hex'))).to.deep.equal([tcp('held-1'), tcp('held-2', 1006)].map((f) => Buffer.from(f).toString('hex')));
    // Its chardevs are free again.
    registry.add(spec('colo-compare', 'comp1', { primary_in: 'pri', secondary_in: 'sec', outdev: 'out' }));
  });

  it('a_checkpoint_request_is_emitted_and_written_to_notify_dev_as_do_checkpoint', async () => {
    const pri = await chardev('pri');
    const sec = await chardev('sec');
    await chardev('out');
    const notify = await chardev('notify');
    registry.add(spec('iothread', 'io1', {}));
    registry.add(spec('colo-compare', 'comp0', { primary_in: 'pri', secondary_in: 'sec', outdev: 'out', notify_dev: 'notify', iothread: 'io1' }));
    const requests: CheckpointRequest[] = [];
    registry.on('checkpoint-request', (r) => requests.push(r));
    pri.peer.write(encodeFrame(tcp('same?'), undefined, false));
    sec.peer.write(encodeFrame(tcp('nope!'), undefined, false));
    const frames = await notify.peer.waitFrames(1);
    expect(new TextDecoder().decode(frames[0]!.frame)).to.equal('DO_CHECKPOINT');
    expect(requests).to.deep.equal([{ id: 'comp0', reason: 'mismatch', flow: 'tcp 10.0.0.1:80 <-> 10.0.0.2:5000' }]);
    // The iothread is held by the compare.
    let refused: unknown;
    await registry.delete('io1').catch((e: unknown) => (refused = e));
    expect((refused as Error).message).to.equal("object 'io1' is in use by 'comp0', can not be deleted");
  });
});
