// IpvsClient and `virtio-net ipvs` against a real kernel's IPVS. This host's kernel has none
// (CONFIG_IP_VS unset), so the kernel is the QEMU guest's (Debian's amd64 kernel, TCG), booted
// once for the whole file from the "ipvs" image profile (lib/cli/guest-image.ts): ip_vs and its
// schedulers loaded by /init, Debian's ipvsadm, and nlrelay (scripts/guest/nlrelay.c), which
// carries each netlink request the client builds from the serial console to the guest kernel and
// prints the kernel's datagrams back (ShellRelayTransport). Every change is read back twice — by
// the client and by ipvsadm in the same guest — and the two must agree: `virtio-net ipvs -Ln`
// (and --stats) byte for byte with `ipvsadm -Ln`, the client's decoded values with what was set
// and with ipvsadm's --thresholds / --timeout / --daemon.

import { expect } from 'chai';
import { ipvsCommand } from '../../lib/cli/ipvs.js';
import { HostError } from '../../lib/host/libc.js';
import { IpvsClient } from '../../lib/netlink/ipvs/client.js';
import { formatDaemons, formatTimeouts } from '../../lib/netlink/ipvs/format.js';
import { ShellRelayTransport } from '../../lib/netlink/ipvs/relay-transport.js';
import type { IpvsServiceKey } from '../../lib/netlink/ipvs/types.js';
import { QemuGuest } from './qemu-guest.js';
import { freeUdpPorts } from '../support/udp-ports.js';

/** Two UDP ports free on 127.0.0.1 now. */
async function freePorts(): Promise<[number, number]> {
  const [a, b] = await freeUdpPorts(2);
  return [a!, b!];
}

const TCP80: IpvsServiceKey = { protocol: 'tcp', address: '10.0.0.1', port: 80 };

describe('IPVS over generic netlink on a real kernel (QEMU guest, cross-checked with ipvsadm)', function () {
  this.timeout(300_000);
  let qemu: QemuGuest | undefined;
  let client: IpvsClient;

  /** A guest shell command that must succeed; its output. */
  async function sh(command: string): Promise<string> {
    const r = await qemu!.run(command, 60_000);
    expect(r.exitCode, `${command}: ${r.output}`).to.equal(0);
    return r.output;
  }
  /** `virtio-net ipvs ARGS` against the guest kernel: status and output. */
  async function ours(argv: string[]): Promise<{ status: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const status = await ipvsCommand(argv, { client, out: (t) => (out += t), err: (t) => (err += t) });
    return { status, out, err };
  }
  /** `virtio-net ipvs -Ln [extra]` and `ipvsadm -Ln [extra]` print the same text. */
  async function sameListing(extra: string[] = []): Promise<string> {
    const theirs = await sh(['ipvsadm', '-Ln', ...extra].join(' '));
    const mine = await ours(['-Ln', ...extra]);
    expect(mine.status, mine.err).to.equal(0);
    expect(mine.out, `virtio-net ipvs -Ln ${extra.join(' ')} vs ipvsadm`).to.equal(theirs);
    return theirs;
  }
  /** ipvsadm's --thresholds view: "addr:port" → [upper, lower]. */
  async function thresholds(): Promise<Map<string, [number, number]>> {
    const out = new Map<string, [number, number]>();
    for (const line of (await sh('ipvsadm -Ln --thresholds')).split('\n')) {
      const m = /^ {2}-> (\S+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+/.exec(line);
      if (m !== null) out.set(m[1]!, [Number(m[2]), Number(m[3])]);
    }
    return out;
  }
  async function refusal(f: () => Promise<unknown>): Promise<HostError> {
    try {
      await f();
    } catch (e) {
      expect(e, String(e)).to.be.instanceOf(HostError);
      return e as HostError;
    }
    throw new Error('the kernel accepted what it should have refused');
  }

  before(async function () {
    this.timeout(1_000_000); // may build the image first (downloads, cc -static)
    const image = QemuGuest.imageOrSkip(this, 'ipvs');
    const [a, b] = await freePorts();
    qemu = await QemuGuest.bootWith(image, {
      netdev: `dgram,id=hostnet0,local.type=inet,local.host=127.0.0.1,local.port=${a},remote.type=inet,remote.host=127.0.0.1,remote.port=${b}`,
      mac: '52:54:00:12:34:23',
      // eth0 needs an IPv4 address for a master sync daemon (it sends from it).
      append: 'vnm.ip=10.0.2.15/24',
      // TCG on a loaded machine, and /init loads the IPVS module chain too.
      bootTimeoutMs: 400_000,
    });
    console.log(`      QEMU guest with IPVS booted in ${qemu.bootMs} ms`);
    client = new IpvsClient({ transport: new ShellRelayTransport((command) => qemu!.run(command, 60_000)) });
  });

  after(async () => {
    client?.close();
    await qemu?.stop();
  });

  beforeEach(async () => {
    await client.flush();
  });

  it('info: version and connection table size as ipvsadm reports them', async () => {
    const info = await client.info();
    const first = (await sh('ipvsadm -Ln')).split('\n')[0];
    expect(first).to.equal(`IP Virtual Server version ${info.version} (size=${info.connTableSize})`);
    expect(info.version).to.match(/^\d+\.\d+\.\d+$/);
    expect(info.connTableSize).to.be.greaterThan(0);
  });

  it('services: add TCP, UDP, SCTP and fwmark, IPv4 and IPv6; edit; delete — client and ipvsadm agree', async () => {
    await client.addService({ ...TCP80, scheduler: 'rr' });
    await client.addService({ protocol: 'udp', address: '10.0.0.1', port: 53, scheduler: 'wrr', persistent: 600, netmask: '255.255.255.0', onePacket: true });
    await client.addService({ protocol: 'sctp', address: '10.0.0.2', port: 9899, scheduler: 'lc' });
    await client.addService({ protocol: 'tcp', address: '2001:db8::1', port: 443, scheduler: 'lc', persistent: 300, netmask: 64 });
    await client.addService({ protocol: 'udp', address: 'fd00::53', port: 53 });
    await client.addService({ fwmark: 7, scheduler: 'sh', schedFlags: [1] });
    await client.addService({ fwmark: 8, family: 'inet6' });
    const all = await client.services();
    expect(all).to.have.length(7);
    expect(await client.service(TCP80)).to.include({ family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr', fwmark: 0, timeout: 0 });
    const udp = await client.service({ protocol: 'udp', address: '10.0.0.1', port: 53 });
    expect(udp).to.include({ scheduler: 'wrr', timeout: 600, netmask: '255.255.255.0' });
    expect(udp.flags & 0x5).to.equal(0x5); // persistent | one-packet
    expect(await client.service({ protocol: 'tcp', address: '2001:db8::1', port: 443 })).to.include({ family: 'inet6', netmask: 64, timeout: 300 });
    expect(await client.service({ protocol: 'udp', address: 'fd00::53', port: 53 })).to.include({ family: 'inet6', scheduler: 'wlc' });
    expect(await client.service({ fwmark: 7 })).to.include({ family: 'inet', fwmark: 7, scheduler: 'sh' });
    expect(await client.service({ fwmark: 8, family: 'inet6' })).to.include({ family: 'inet6', fwmark: 8, netmask: 128 });
    const listed = await sameListing();
    expect(listed).to.contain('SCTP 10.0.0.2:9899 lc').and.to.contain('FWM  8 IPv6 wlc');
    await sameListing(['--stats']);

    await client.editService({ ...TCP80, scheduler: 'wlc', persistent: 120 });
    expect(await client.service(TCP80)).to.include({ scheduler: 'wlc', timeout: 120 });
    await client.editService({ fwmark: 7, scheduler: 'rr' });
    expect(await client.service({ fwmark: 7 })).to.include({ scheduler: 'rr' });
    expect(await sameListing()).to.contain('TCP  10.0.0.1:80 wlc persistent 120');

    await client.deleteService(TCP80);
    await client.deleteService({ fwmark: 8, family: 'inet6' });
    const left = await client.services();
    expect(left.map((s) => s.fwmark || `${s.protocol} ${s.address}:${s.port}`).sort()).to.deep.equal([7, 'sctp 10.0.0.2:9899', 'tcp 2001:db8::1:443', 'udp 10.0.0.1:53', 'udp fd00::53:53'].sort());
    expect(await sameListing()).to.not.contain('TCP  10.0.0.1:80');
  });

  it('destinations: masq, route and tunnel; weights and thresholds; edit; delete — client and ipvsadm agree', async () => {
    await client.addService({ ...TCP80, scheduler: 'wrr' });
    await client.addDestination(TCP80, { address: '192.168.1.10', port: 8080, forwarding: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 10 });
    await client.addDestination(TCP80, { address: '192.168.1.11', forwarding: 'route', weight: 0 });
    await client.addDestination(TCP80, { address: '192.168.1.12', forwarding: 'tunnel', weight: 7, upperThreshold: 5 });
    const six = { protocol: 'tcp', address: '2001:db8::1', port: 443 } as const;
    await client.addService({ ...six, scheduler: 'rr' });
    await client.addDestination(six, { address: '2001:db8::10', port: 8443, forwarding: 'masq', weight: 2 });
    await client.addDestination(six, { address: '2001:db8::11', forwarding: 'route' });
    await client.addService({ fwmark: 3 });
    await client.addDestination({ fwmark: 3 }, { address: '192.168.1.20', forwarding: 'route', weight: 9 });

    const byAddr = new Map((await client.destinations(TCP80)).map((d) => [d.address, d]));
    expect(byAddr.get('192.168.1.10')).to.include({ port: 8080, forwarding: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 10 });
    expect(byAddr.get('192.168.1.11')).to.include({ port: 80, forwarding: 'route', weight: 0, upperThreshold: 0, lowerThreshold: 0 });
    expect(byAddr.get('192.168.1.12')).to.include({ port: 80, forwarding: 'tunnel', weight: 7, upperThreshold: 5 });
    const v6 = await client.destinations(six);
    expect(v6.map((d) => `${d.family} ${d.address} ${d.port} ${d.forwarding} ${d.weight}`).sort()).to.deep.equal(['inet6 2001:db8::10 8443 masq 2', 'inet6 2001:db8::11 443 route 1']);
    expect((await client.destinations({ fwmark: 3 }))[0]).to.include({ address: '192.168.1.20', port: 0, forwarding: 'route', weight: 9 });
    await sameListing();
    await sameListing(['--stats']);
    const th = await thresholds();
    expect(th.get('192.168.1.10:8080')).to.deep.equal([100, 10]);
    expect(th.get('192.168.1.12:80')).to.deep.equal([5, 0]);

    await client.editDestination(TCP80, { address: '192.168.1.10', port: 8080, forwarding: 'masq', weight: 5, upperThreshold: 200, lowerThreshold: 20 });
    await client.editDestination(TCP80, { address: '192.168.1.11', forwarding: 'tunnel', weight: 4 });
    const edited = new Map((await client.destinations(TCP80)).map((d) => [d.address, d]));
    expect(edited.get('192.168.1.10')).to.include({ weight: 5, upperThreshold: 200, lowerThreshold: 20 });
    expect(edited.get('192.168.1.11')).to.include({ forwarding: 'tunnel', weight: 4 });
    expect((await thresholds()).get('192.168.1.10:8080')).to.deep.equal([200, 20]);
    expect(await sameListing()).to.contain('  -> 192.168.1.11:80              Tunnel  4');

    await client.deleteDestination(TCP80, { address: '192.168.1.12' });
    await client.deleteDestination(six, { address: '2001:db8::10', port: 8443 });
    expect((await client.destinations(TCP80)).map((d) => d.address).sort()).to.deep.equal(['192.168.1.10', '192.168.1.11']);
    expect((await client.destinations(six)).map((d) => d.address)).to.deep.equal(['2001:db8::11']);
    await sameListing();
  });

  it('tunnel options (GUE port and checksum flag) read back as set', async () => {
    await client.addService({ ...TCP80 });
    await client.addDestination(TCP80, { address: '192.168.1.30', forwarding: 'tunnel', tunnel: { type: 'gue', port: 6080, csum: true } });
    await client.addDestination(TCP80, { address: '192.168.1.31', forwarding: 'tunnel', tunnel: { type: 'ipip' } });
    const byAddr = new Map((await client.destinations(TCP80)).map((d) => [d.address, d]));
    expect(byAddr.get('192.168.1.30')?.tunnel).to.deep.equal({ type: 'gue', port: 6080, flags: 1 });
    expect(byAddr.get('192.168.1.31')?.tunnel).to.deep.equal({ type: 'ipip', port: 0, flags: 0 });
    expect(await sameListing()).to.contain('  -> 192.168.1.30:80              Tunnel  1');
  });

  it('counters: a connection through a service shows in --stats, equal in both', async () => {
    // A VIP on eth0's subnet; the guest's own connection to it goes through IPVS's LOCAL_OUT hook
    // to the real server 10.0.2.15:8080 (6.1 reports the forwarding method as set, not as
    // LOCALNODE); no answer comes, but the service and destination count the connection and its
    // packets.
    const vip = { protocol: 'tcp', address: '10.0.2.100', port: 80 } as const;
    await client.addService({ ...vip, scheduler: 'rr' });
    await client.addDestination(vip, { address: '10.0.2.15', port: 8080, forwarding: 'route' });
    expect((await client.destinations(vip))[0]).to.include({ forwarding: 'route', port: 8080 });
    // busybox nc (its static wget crashes in this guest); it times out, the SYNs were counted.
    await qemu!.run('echo hi | nc -w 2 10.0.2.100 80', 60_000);
    // The kernel folds per-CPU counters into what it reports every 2 s.
    await sh('sleep 3');
    const svc = await client.service(vip);
    expect(Number(svc.stats?.conns ?? 0n), 'connections').to.be.at.least(1);
    expect(Number(svc.stats?.inpkts ?? 0n), 'packets in').to.be.at.least(1);
    expect(Number(svc.stats?.inbytes ?? 0n), 'bytes in').to.be.at.least(40);
    const [d] = await client.destinations(vip);
    expect(d!.stats?.conns).to.equal(svc.stats?.conns);
    expect(await sameListing(['--stats'])).to.match(/TCP {2}10\.0\.2\.100:80 +[1-9]/);
    expect(await sameListing()).to.contain('  -> 10.0.2.15:8080               Route   1');
  });

  it('what ipvsadm sets, the client reads; what `virtio-net ipvs` sets, ipvsadm reads', async () => {
    await sh('ipvsadm -A -u 10.9.9.9:5000 -s lc -p 60');
    await sh('ipvsadm -a -u 10.9.9.9:5000 -r 10.9.9.10:6000 -m -w 5 -x 50 -y 5');
    const [svc] = await client.services();
    expect(svc).to.include({ protocol: 'udp', address: '10.9.9.9', port: 5000, scheduler: 'lc', timeout: 60 });
    expect((await client.destinations(svc!))[0]).to.include({ address: '10.9.9.10', port: 6000, forwarding: 'masq', weight: 5, upperThreshold: 50, lowerThreshold: 5 });

    for (const argv of [
      ['-A', '-t', '[2001:db8::7]:25', '-s', 'sh'],
      ['-a', '-t', '[2001:db8::7]:25', '-r', '[2001:db8::8]', '-i', '-w', '2'],
      ['-A', '-f', '12', '-6', '-s', 'rr'],
      ['-e', '-u', '10.9.9.9:5000', '-r', '10.9.9.10:6000', '-m', '-w', '6', '-x', '60', '-y', '6'],
    ]) {
      const r = await ours(argv);
      expect(r.status, `${argv.join(' ')}: ${r.err}`).to.equal(0);
    }
    const text = await sameListing();
    expect(text).to.contain('TCP  [2001:db8::7]:25 sh').and.to.contain('  -> [2001:db8::8]:25             Tunnel  2').and.to.contain('FWM  12 IPv6 rr');
    expect((await thresholds()).get('10.9.9.10:6000')).to.deep.equal([60, 6]);
    const del = await ours(['-d', '-t', '[2001:db8::7]:25', '-r', '[2001:db8::8]:25']);
    expect(del.status, del.err).to.equal(0);
    expect(await sh('ipvsadm -Ln')).to.not.contain('2001:db8::8');
    expect((await ours(['-C'])).status).to.equal(0);
    expect(await client.services()).to.deep.equal([]);
  });

  it('timeouts: set by the client, read by ipvsadm; set by ipvsadm, read by the client', async () => {
    const before = await client.timeouts();
    try {
      await client.setTimeouts({ tcp: 1000, tcpFin: 60, udp: 200 });
      expect(await client.timeouts()).to.deep.equal({ tcp: 1000, tcpFin: 60, udp: 200 });
      expect(await sh('ipvsadm -Ln --timeout')).to.equal(formatTimeouts({ tcp: 1000, tcpFin: 60, udp: 200 }));
      await client.setTimeouts({ udp: 222 }); // the others stay
      expect(await client.timeouts()).to.deep.equal({ tcp: 1000, tcpFin: 60, udp: 222 });
      await sh('ipvsadm --set 800 100 250');
      expect(await client.timeouts()).to.deep.equal({ tcp: 800, tcpFin: 100, udp: 250 });
      const r = await ours(['-L', '--timeout']);
      expect(r.out).to.equal(await sh('ipvsadm -L --timeout'));
    } finally {
      await client.setTimeouts(before);
    }
  });

  it('sync daemons: start master and backup, list, stop — client and ipvsadm agree', async () => {
    await client.startDaemon({ state: 'master', interface: 'eth0', syncId: 5 });
    await client.startDaemon({ state: 'backup', interface: 'eth0', syncId: 6 });
    const ds = await client.daemons();
    expect(ds.map((d) => `${d.state} ${d.interface} ${d.syncId}`).sort()).to.deep.equal(['backup eth0 6', 'master eth0 5']);
    const theirs = await sh('ipvsadm -Ln --daemon');
    expect(theirs).to.match(/^master sync daemon \(mcast=eth0, syncid=5/);
    expect(formatDaemons(ds)).to.equal(theirs);
    expect((await ours(['-L', '--daemon'])).out).to.equal(theirs);
    // A second master is refused.
    expect((await refusal(() => client.startDaemon({ state: 'master', interface: 'eth0', syncId: 9 }))).errnoName).to.equal('EEXIST');
    await client.stopDaemon('master');
    expect((await client.daemons()).map((d) => d.state)).to.deep.equal(['backup']);
    expect(await sh('ipvsadm -Ln --daemon')).to.match(/^backup sync daemon \(mcast=eth0, syncid=6/);
    expect((await ours(['--stop-daemon', 'backup'])).status).to.equal(0);
    expect(await client.daemons()).to.deep.equal([]);
    expect(await sh('ipvsadm -Ln --daemon')).to.equal('');
  });

  it("kernel refusals come back as HostError with the kernel's errno", async () => {
    await client.addService({ ...TCP80, scheduler: 'rr' });
    expect((await refusal(() => client.addService({ ...TCP80, scheduler: 'rr' }))).errnoName, 'duplicate service').to.equal('EEXIST');
    expect((await refusal(() => client.addService({ protocol: 'tcp', address: '10.0.0.2', port: 80, scheduler: 'nosuch' }))).errnoName, 'unknown scheduler').to.equal('ENOENT');
    const missing = { protocol: 'tcp', address: '10.0.0.99', port: 1 } as const;
    expect((await refusal(() => client.deleteService(missing))).errnoName, 'deleting a missing service').to.equal('ESRCH');
    expect((await refusal(() => client.addDestination(missing, { address: '10.1.1.1' }))).errnoName, 'a destination of a missing service').to.equal('ESRCH');
    await client.addDestination(TCP80, { address: '10.1.1.1' });
    expect((await refusal(() => client.addDestination(TCP80, { address: '10.1.1.1' }))).errnoName, 'duplicate destination').to.equal('EEXIST');
    expect((await refusal(() => client.deleteDestination(TCP80, { address: '10.1.1.2' }))).errnoName, 'deleting a missing destination').to.equal('ENOENT');
    expect((await refusal(() => client.service(missing))).errnoName, 'getting a missing service').to.equal('ESRCH');
    // The command reports it and fails with status 1.
    const r = await ours(['-A', '-t', '10.0.0.1:80', '-s', 'rr']);
    expect(r.status).to.equal(1);
    expect(r.err).to.contain('EEXIST');
    // The refused requests changed nothing.
    expect(await client.services()).to.have.length(1);
    expect(await client.destinations(TCP80)).to.have.length(1);
    await sameListing();
  });

  it('flush removes every service and destination', async () => {
    await client.addService({ ...TCP80 });
    await client.addDestination(TCP80, { address: '192.168.1.10' });
    await client.addService({ fwmark: 4, family: 'inet6' });
    expect(await client.services()).to.have.length(2);
    await client.flush();
    expect(await client.services()).to.deep.equal([]);
    const text = await sameListing();
    expect(text.trim().split('\n')).to.have.length(3); // version line and the two title lines
  });
});
