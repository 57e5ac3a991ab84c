// QMP object-add / object-del on a running `virtio-net run`, driven by QEMU's own python client
// (qemu.qmp): a filter-dump added at run time captures the traffic that flows (the scripted guest
// pinging the simulated host), the capture opens in tshark with every record the file holds,
// object-del takes the filter off (the file stops growing, traffic goes on), and refusals come back
// in QEMU's words. Skipped with the reason printed when qemu.qmp cannot be set up.
import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PythonQmpClient, requirePythonQmp } from '../../support/python-qmp.js';
import { requireProgram } from '../../support/skip.js';
import { waitFor } from '../../support/netns.js';

const root = join(import.meta.dirname, '..', '..', '..');

/** Records in a little-endian classic pcap file (24-byte header, 16-byte record headers). */
function pcapRecords(file: string): number {
  const b = readFileSync(file);
  expect(b.readUInt32LE(0)).to.equal(0xa1b2c3d4);
  let n = 0;
  for (let at = 24; at + 16 <= b.length; n++) at += 16 + b.readUInt32LE(at + 8);
  return n;
}

function socketExists(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

describe('virtio-net run: QMP object-add / object-del with qemu.qmp', function () {
  this.timeout(15 * 60 * 1000); // the first run may download QEMU's source package
  let setup: { pythonPath: string; python: string };
  let dir: string;
  let child: ChildProcessWithoutNullStreams | undefined;
  let py: PythonQmpClient | undefined;

  before(async function () {
    requireProgram(this, 'tshark');
    setup = await requirePythonQmp(this);
  });

  after(async () => {
    await py?.close().catch(() => undefined);
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('a_filter_dump_added_at_run_time_captures_a_pcap_tshark_reads_and_object_del_removes_it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'run-objects-'));
    const qmpPath = join(dir, 'qmp.sock');
    const pcap = join(dir, 'capture.pcap');
    let stdout = '';
    let stderr = '';
    child = spawn(process.execPath, [join(root, 'bin', 'virtio-net.mjs'), 'run', '--duration', '600', '--scenario', 'traffic', '--json', '--qmp', qmpPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const exited = new Promise<number | null>((done) => child!.on('exit', (code) => done(code)));
    await waitFor(`the QMP socket (stderr: ${stderr})`, () => socketExists(qmpPath), 30_000);
    py = await PythonQmpClient.start(qmpPath, setup);

    const added = await py.execute('object-add', { 'qom-type': 'filter-dump', id: 'dump0', netdev: 'hostnet0', file: pcap });
    expect(added).to.deep.equal({ ok: true, return: {} });
    // Traffic flows through it: pings out, replies in.
    await waitFor('ten frames in the capture', () => pcapRecords(pcap) >= 10, 20_000);

    // Refusals, in QEMU's words.
    expect(await py.execute('object-add', { 'qom-type': 'filter-dump', id: 'dump0', netdev: 'hostnet0', file: join(dir, 'other.pcap') })).to.deep.equal({
      ok: false, error: { class: 'GenericError', desc: "attempt to add duplicate property 'dump0' to object (type 'container')" },
    });
    expect(await py.execute('object-add', { 'qom-type': 'filter-dump', id: 'dump1', netdev: 'hostnet0', file: join(dir, 'x.pcap'), outdev: 'c0' })).to.deep.equal({
      ok: false, error: { class: 'GenericError', desc: "Parameter 'outdev' is unexpected" },
    });
    expect(await py.execute('object-add', { 'qom-type': 'filter-dump', id: 'dump1', netdev: 'nosuch', file: join(dir, 'x.pcap') })).to.deep.equal({
      ok: false, error: { class: 'GenericError', desc: "Parameter 'netdev' expects a network backend id" },
    });

    expect(await py.execute('object-del', { id: 'dump0' })).to.deep.equal({ ok: true, return: {} });
    const atDelete = pcapRecords(pcap);
    const stats = async (): Promise<number> => {
      const r = await py!.execute('x-query-virtio-net-stats', { name: 'net0' });
      if (!r.ok) expect.fail(JSON.stringify(r.error));
      return ((r.return as { stats: { tx: { frames: number } } }[])[0]!.stats.tx.frames);
    };
    const txAtDelete = await stats();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await stats(), 'traffic goes on without the filter').to.be.greaterThan(txAtDelete);
    expect(pcapRecords(pcap), 'the capture stopped growing').to.equal(atDelete);
    expect(await py.execute('object-del', { id: 'dump0' })).to.deep.equal({ ok: false, error: { class: 'GenericError', desc: "object 'dump0' not found" } });

    // tshark reads every record, and sees the ICMP the guest exchanged.
    const fields = execFileSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.protocols'], { encoding: 'utf8', timeout: 60_000 });
    const lines = fields.trim().split('\n');
    expect(lines.length).to.equal(atDelete);
    expect(lines.some((l) => l.includes('icmp')), fields).to.equal(true);

    await py.close();
    py = undefined;
    child.kill('SIGTERM');
    expect(await exited, stderr).to.equal(130);
    const out = JSON.parse(stdout) as { objects: Record<string, unknown> };
    expect(out.objects, 'no object left at the end').to.deep.equal({});
  });
});
