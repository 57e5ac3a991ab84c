// filter-dump: the capture files it writes open in tshark with the right frame count and the
// frames intact, in pcap and pcapng; `maxlen` cuts frames but keeps their real length.

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DumpFilter } from '../../../lib/filters/dump.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { buildFrame, TCP_FLAG } from '../../../lib/packet/index.js';
import { needTshark, tsharkFields, tsharkFrameCount } from './tshark.js';

function frames(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, k) =>
    k % 3 === 2
      ? buildFrame({ src: 'fd00::1', dst: 'fd00::2', protocol: 'udp', srcPort: 4000 + k, dstPort: 53, payload: new Uint8Array(k) })
      : buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', srcPort: 4000 + k, dstPort: 80, seq: k * 1000, flags: TCP_FLAG.ACK, payload: new Uint8Array(k * 10).fill(k) }),
  );
}

describe('lib/filters dump (filter-dump)', () => {
  let dir: string;
  before(async function () {
    needTshark(this);
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filter-dump-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const format of ['pcap', 'pcapng'] as const) {
    it(`${format}_file_opens_in_tshark_with_every_frame_both_ways`, async () => {
      const file = join(dir, `cap.${format}`);
      const inner = new MemoryNetdev({ id: 'hn0' });
      const chain = new FilterChain(inner);
      chain.add(new DumpFilter({ id: 'dump0', file, format }));
      const got: Uint8Array[] = [];
      chain.attach({ receive: (f) => (got.push(f.slice()), true), writable: () => undefined });
      const fs = frames(25);
      fs.forEach((f, k) => (k % 2 === 0 ? chain.send(f) : inner.inject(f)));
      await chain.close();
      expect(await tsharkFrameCount(file)).to.equal(25);
      const rows = await tsharkFields(file, ['frame.len', 'frame.cap_len', 'tcp.srcport', 'udp.srcport', 'tcp.checksum.status', 'udp.checksum.status']);
      rows.forEach((r, k) => {
        expect(Number(r[0]), `frame ${k}`).to.equal(fs[k]!.length);
        expect(Number(r[1])).to.equal(fs[k]!.length);
        expect(Number(r[2] || r[3])).to.equal(4000 + k);
        expect(r[4] || r[5], `checksum of frame ${k}`).to.equal('1');
      });
      expect(got).to.have.length(12); // dump passes frames on
    });
  }

  it('capture_file_is_created_0600_whatever_the_umask', async () => {
    const file = join(dir, 'private.pcap');
    const old = process.umask(0o022);
    try {
      await new DumpFilter({ id: 'd', file }).close();
    } finally {
      process.umask(old);
    }
    expect(statSync(file).mode & 0o777).to.equal(0o600);
  });

  it('a_symbolic_link_at_the_capture_path_is_refused_and_its_target_untouched', async () => {
    const target = join(dir, 'victim');
    writeFileSync(target, 'precious');
    const link = join(dir, 'cap.pcap');
    symlinkSync(target, link);
    expect(() => new DumpFilter({ id: 'd', file: link })).to.throw(Error, /DumpFilter d: .*cap\.pcap is a symbolic link; refusing to follow it/);
    expect(() => new DumpFilter({ id: 'd', file: link, append: true })).to.throw(Error, /symbolic link/);
    expect(readFileSync(target, 'utf8')).to.equal('precious');
  });

  it('an_existing_file_is_refused_unless_append_and_append_continues_the_capture', async () => {
    const file = join(dir, 'twice.pcap');
    const f1 = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'udp', srcPort: 1, dstPort: 2, payload: new Uint8Array(10) });
    const first = new DumpFilter({ id: 'd', file });
    first.process('rx', f1, undefined);
    await first.close();
    expect(() => new DumpFilter({ id: 'd', file })).to.throw(Error, /already exists; refusing to overwrite it/);
    const second = new DumpFilter({ id: 'd', file, append: true });
    second.process('tx', f1, undefined);
    await second.close();
    expect(await tsharkFrameCount(file), 'one header, both records').to.equal(2);
    for (const format of ['pcap', 'pcapng'] as const) {
      const other = join(dir, `other-${format}`);
      writeFileSync(other, 'not a capture');
      expect(() => new DumpFilter({ id: 'd', file: other, format, append: true })).to.throw(Error, new RegExp(`is not a ${format} capture`));
      expect(readFileSync(other, 'utf8')).to.equal('not a capture');
    }
  });

  it('maxlen_cuts_frames_but_records_their_length', async () => {
    const file = join(dir, 'short.pcap');
    const dump = new DumpFilter({ id: 'd', file, maxlen: 60 });
    const big = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'udp', srcPort: 1, dstPort: 2, payload: new Uint8Array(500) });
    expect(dump.process('rx', big, undefined).kind).to.equal('pass');
    await dump.close();
    const rows = await tsharkFields(file, ['frame.len', 'frame.cap_len']);
    expect(rows).to.deep.equal([[String(big.length), '60']]);
  });

  it('bad_options_throw_naming_the_option', () => {
    expect(() => new DumpFilter({ id: 'd', file: '' })).to.throw(TypeError, /options\.file/);
    expect(() => new DumpFilter({ id: 'd', file: join(dir, 'x'), maxlen: 0 })).to.throw(TypeError, /options\.maxlen/);
    expect(() => new DumpFilter({ id: 'd', file: join(dir, 'x'), format: 'erf' as 'pcap' })).to.throw(TypeError, /options\.format must be 'pcap' or 'pcapng'/);
    expect(() => new DumpFilter({ id: 'd', file: join(dir, 'x'), queue: 'in' as 'rx' })).to.throw(TypeError, /options\.queue must be one of 'rx', 'tx', 'all'/);
  });
});
