import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { NetRig } from '../../support/net-rig.js';
import { requireProgram } from '../../support/skip.js';
import { CtrlAck, CtrlClass, CtrlRx } from '../../../devices/virtio-net/constants.js';
import { notifyQueue } from '../../support/driver-transport.js';
import { Netns, hostCleanups, linkName, openFds, run, trackLink, deleteLink, waitFor } from '../../support/netns.js';
import { tapAndNetns } from '../../support/netns-tap.js';
import { TapNetdev } from '../../../lib/netdev/tap-netdev.js';
import { hasOffloads, hasVnetHeader } from '../../../lib/netdev/netdev.js';
import { HostError } from '../../../lib/host/libc.js';
import { TUN_F_CSUM, TUN_F_USO4, TUN_F_USO6 } from '../../../lib/host/structs.js';
import { newPacketInfo, parsePacket } from '../../../lib/packet/parse.js';
import { transportChecksumValid } from '../../../lib/packet/checksum.js';
import { arpRequest, icmpEcho, needsCsumHeader, parseArpReply, parseEchoReply, udpFrame } from './frames.js';

const GUEST_MAC = '52:54:00:12:34:56';

/** Collects what the guest received, reposting a buffer for each one taken. */
function collector(rig: NetRig): { frames: Uint8Array[]; poll(): void } {
  const frames: Uint8Array[] = [];
  return {
    frames,
    poll(): void {
      const got = rig.received();
      for (const r of got) frames.push(r.frame);
      if (got.length > 0) rig.postRx(got.length);
    },
  };
}

function tapMac(ns: Netns, ifname: string): string {
  const m = /link\/ether ([0-9a-f:]{17})/.exec(ns.ip(['link', 'show', ifname]));
  if (m === null) throw new Error(`no MAC on ${ifname}`);
  return m[1]!;
}

describe('lib/netdev/tap-netdev (real kernel, throwaway netns)', function () {
  this.timeout(20_000);
  const cleanups = hostCleanups();

  /** A device on a TAP that lives in a fresh namespace with `addr` (cidr) on it, up. */
  function setup(addr: string): { ns: Netns; tap: TapNetdev; rig: NetRig } {
    const { ns, tap } = tapAndNetns(cleanups, { id: 'tap0', ifname: linkName('t') });
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC });
    ns.adopt(tap.ifname);
    ns.ip(['addr', 'add', addr, 'dev', tap.ifname]);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    rig.postRx(32);
    return { ns, tap, rig };
  }

  it('tap_offers_vnet_header_and_offload_capabilities_and_device_sets_12_bytes_and_csum', () => {
    const { tap } = setup('10.200.1.1/24');
    expect(hasVnetHeader(tap)).to.equal(true);
    expect(hasOffloads(tap)).to.equal(true);
    expect(tap.vnetHeaderLength).to.equal(12); // VERSION_1 negotiated: set at DRIVER_OK
    expect(tap.offloads & TUN_F_CSUM).to.equal(TUN_F_CSUM); // GUEST_CSUM negotiated
  });

  it('guest_arps_for_and_pings_an_address_on_the_tap_and_gets_the_replies', async () => {
    const { ns, tap, rig } = setup('10.200.2.1/24');
    const rx = collector(rig);
    const hostMac = tapMac(ns, tap.ifname);

    rig.send(arpRequest(GUEST_MAC, '10.200.2.2', '10.200.2.1'));
    let arp: ReturnType<typeof parseArpReply> = null;
    await waitFor('the ARP reply in the guest rx ring', () => {
      rx.poll();
      arp = rx.frames.map(parseArpReply).find((a) => a !== null && a.senderIp === '10.200.2.1') ?? null;
      return arp !== null;
    });
    expect(arp!.senderMac).to.equal(hostMac);

    for (let seq = 1; seq <= 3; seq++) rig.send(icmpEcho(hostMac, GUEST_MAC, '10.200.2.2', '10.200.2.1', 0x4242, seq));
    await waitFor('three echo replies', () => {
      rx.poll();
      return rx.frames.map(parseEchoReply).filter((e) => e !== null && e.ident === 0x4242).length === 3;
    });
    const seqs = rx.frames.map(parseEchoReply).filter((e) => e !== null).map((e) => e!.seq);
    expect(seqs).to.deep.equal([1, 2, 3]);
    expect(tap.stats().txFrames).to.be.at.least(4);
    expect(rig.device.stats().tx.frames).to.equal(tap.stats().txFrames);
  });

  it('frames_to_a_mac_the_guest_filters_out_are_dropped_by_the_device_and_counted', async () => {
    const { ns, tap, rig } = setup('10.200.3.1/24');
    expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0])).to.equal(CtrlAck.OK); // the device starts promiscuous, as QEMU's
    const rx = collector(rig);
    const before = rig.device.stats().rx.drops.unicast;
    const other = Uint8Array.from([0x52, 0x54, 0, 0x99, 0x99, 0x99, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5, ...new Array<number>(46).fill(0xaa)]);
    const mine = Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5, ...new Array<number>(46).fill(0xbb)]);
    ns.sendFrames(tap.ifname, [other, mine]);
    await waitFor('the frame addressed to the guest', () => {
      rx.poll();
      return rx.frames.some((f) => f[12] === 0x88 && f[13] === 0xb5 && f[20] === 0xbb);
    });
    expect(rx.frames.some((f) => f[12] === 0x88 && f[13] === 0xb5 && f[20] === 0xaa)).to.equal(false);
    expect(rig.device.stats().rx.drops.unicast - before).to.equal(1);
  });

  it('checksum_offloaded_tx_frames_arrive_with_valid_checksums_according_to_tshark', async function () {
    requireProgram(this, 'tshark');
    requireProgram(this, 'ethtool');
    // guest 10.201.0.2 → tap (ns A, 10.201.0.1) → routed → veth0 (tx checksumming off: the kernel
    // completes the checksum in software) → veth1 (ns B, 10.202.0.2) where tshark captures.
    const { ns: a, tap, rig } = setup('10.201.0.1/24');
    const b = new Netns();
    cleanups.push(() => b.destroy());
    a.ip(['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', b.name]);
    a.ip(['addr', 'add', '10.202.0.1/24', 'dev', 'veth0']);
    a.ip(['link', 'set', 'veth0', 'up']);
    a.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    a.exec('ethtool', ['-K', 'veth0', 'tx', 'off']);
    b.ip(['addr', 'add', '10.202.0.2/24', 'dev', 'veth1']);
    b.ip(['link', 'set', 'veth1', 'up']);
    b.ip(['route', 'add', 'default', 'via', '10.202.0.1']);
    const hostMac = tapMac(a, tap.ifname);
    const hostErrors: unknown[] = [];
    tap.on('host-error', (e) => hostErrors.push(e));

    const tshark: ChildProcess = spawn('ip', ['netns', 'exec', b.name, 'tshark', '-l', '-n', '-i', 'veth1', '-f', 'udp port 9999', '-c', '2', '-a', 'duration:10',
      '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-e', 'udp.checksum.status', '-e', 'ip.checksum.status', '-e', 'udp.length'], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => {
      if (tshark.exitCode === null) tshark.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    tshark.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    tshark.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((resolve) => tshark.on('exit', () => resolve()));
    await waitFor('tshark to start capturing', () => err.includes('Capture started'), 8000);

    // Send until tshark has seen two frames (its capture child may start a moment after it says so).
    const payloads = [Uint8Array.from({ length: 100 }, (_, i) => i), Uint8Array.from({ length: 333 }, (_, i) => 255 - (i & 0xff))];
    const lines = (): string[] => out.trim().split('\n').filter((l) => l.length > 0);
    let sent = 0;
    await waitFor('tshark to report two offloaded frames', () => {
      if (lines().length >= 2 || tshark.exitCode !== null) return true;
      const u = udpFrame(hostMac, '52:54:00:12:34:56', '10.201.0.2', '10.202.0.2', 40000, 9999, payloads[sent++ % 2]!, true);
      const hdr = needsCsumHeader(u.csumStart, u.csumOffset);
      const head = rig.tx.addChain([{ len: 12, data: hdr }, { len: u.frame.length, data: u.frame }]);
      notifyQueue(rig.driver, 1);
      expect(rig.tx.takeUsed().some((e) => e.id === head)).to.equal(true);
      return false;
    }, 8000);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    expect(hostErrors).to.deep.equal([]);
    expect(tap.stats().txErrors).to.equal(0);
    expect(lines(), `tshark said: ${out}\n${err}`).to.have.length(2);
    for (const l of lines()) {
      const [udp, ip] = l.split('\t');
      // Wireshark's checksum status enum: 0 bad, 1 good, 2 unverified.
      expect(udp, `udp checksum status in "${l}"`).to.equal('1');
      expect(ip, `ip checksum status in "${l}"`).to.equal('1');
    }
  });

  it('device_without_rx_buffers_pauses_the_tap_and_resumes_when_the_guest_posts_buffers', async () => {
    const { ns, tap } = tapAndNetns(cleanups, { id: 'tap0', ifname: linkName('t') });
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC });
    ns.adopt(tap.ifname);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    // No rx buffers: frames fill the device's backlog, then the device pauses the TAP.
    const frames = Array.from({ length: 300 }, (_, i) => Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5, i >> 8, i & 0xff, ...new Array<number>(44).fill(0)]));
    ns.sendFrames(tap.ifname, frames);
    await waitFor('the device to pause the TAP', () => tap.stats().rxPaused > 0);
    const backpressure = rig.device.stats().rx.backpressure;
    expect(backpressure).to.be.at.least(1);
    const rx = collector(rig);
    rig.postRx(32);
    await waitFor('all 300 frames in the guest, in order', () => {
      rx.poll();
      return rx.frames.filter((f) => f[12] === 0x88 && f[13] === 0xb5).length >= 300;
    }, 5000);
    const order = rx.frames.filter((f) => f[12] === 0x88 && f[13] === 0xb5).map((f) => (f[14]! << 8) | f[15]!);
    expect(order).to.deep.equal(frames.map((_, i) => i));
  });

  it('close_releases_the_fd_and_the_interface_and_is_idempotent', async () => {
    const fds = openFds('/dev/net/tun');
    const name = linkName('t');
    const tap = new TapNetdev({ id: 'tap0', ifname: name });
    trackLink(name);
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC });
    expect(rig.device.mac).to.equal(GUEST_MAC);
    expect(openFds('/dev/net/tun')).to.equal(fds + 1);
    await tap.close();
    await tap.close();
    expect(openFds('/dev/net/tun')).to.equal(fds);
    expect(() => run('ip', ['link', 'show', name])).to.throw(); // a non-persistent TAP goes with its fd
    deleteLink(name);
  });

  it('attaches_to_an_existing_persistent_tap_by_name', async () => {
    const name = linkName('p');
    run('ip', ['tuntap', 'add', 'mode', 'tap', 'name', name, 'vnet_hdr']);
    trackLink(name);
    cleanups.push(() => deleteLink(name));
    const tap = new TapNetdev({ id: 'tap2', ifname: name });
    cleanups.push(() => tap.close());
    expect(tap.ifname).to.equal(name);
    expect(tap.vnetHeaderLength).to.equal(10); // the kernel's default until the device sets it
    tap.setVnetHeaderLength(12);
    expect(tap.vnetHeaderLength).to.equal(12);
  });

  it('the_guest_reads_the_taps_speed_and_duplex_in_config_while_the_tap_is_in_this_namespace', () => {
    // The TAP stays in this process's namespace (sysfs shows only that namespace's interfaces).
    const name = linkName('s');
    const tap = new TapNetdev({ id: 'tap3', ifname: name });
    trackLink(name);
    cleanups.push(() => tap.close());
    expect(tap.linkSpeed()).to.deep.equal({ speed: undefined, duplex: undefined }); // down: the kernel says EINVAL
    run('ip', ['link', 'set', name, 'up']);
    // What the kernel reports now (tun: its ethtool link settings).
    const kernelSpeed = Number(readFileSync(`/sys/class/net/${name}/speed`, 'utf8').trim());
    const kernelDuplex = readFileSync(`/sys/class/net/${name}/duplex`, 'utf8').trim();
    expect(Number.isInteger(kernelSpeed) && kernelSpeed > 0).to.equal(true);
    expect(tap.linkSpeed()).to.deep.equal({ speed: kernelSpeed, duplex: kernelDuplex });
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC });
    expect(rig.has('SPEED_DUPLEX')).to.equal(true);
    expect(rig.driver.readConfig(12, 4)).to.equal(kernelSpeed);
    expect(rig.driver.readConfig(16, 1)).to.equal(kernelDuplex === 'full' ? 1 : 0);
  });

  it('guest_uso_reaches_the_tap_as_tun_f_uso4_and_uso6_on_a_kernel_that_has_them', function () {
    const [major, minor] = run('uname', ['-r']).split('.').map((x) => parseInt(x, 10));
    const kernelHasUso = major! > 6 || (major === 6 && minor! >= 2);
    const { ns, tap } = tapAndNetns(cleanups, { id: 'tap0', ifname: linkName('u') });
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC, features: { enable: ['GUEST_USO4', 'GUEST_USO6', 'HOST_USO'] } });
    expect(rig.has('GUEST_USO4') && rig.has('GUEST_USO6') && rig.has('HOST_USO')).to.equal(true);
    expect(tap.usoRefused).to.equal(!kernelHasUso);
    const uso = TUN_F_USO4 | TUN_F_USO6;
    expect(tap.offloads & uso).to.equal(kernelHasUso ? uso : 0);
    expect(tap.offloads & TUN_F_CSUM).to.equal(TUN_F_CSUM);
    // GUEST_OFFLOADS_SET without USO takes the bits away again.
    const csumOnly = [2, 0, 0, 0, 0, 0, 0, 0];
    expect(rig.cmd(CtrlClass.GUEST_OFFLOADS, 0, csumOnly)).to.equal(CtrlAck.OK);
    expect(tap.offloads).to.equal(TUN_F_CSUM);
  });

  it('rx_partial_checksums_a_tap_sends_to_a_guest_without_guest_csum_arrive_completed_with_flags_zero', async function () {
    requireProgram(this, 'python3');
    // The guest declines GUEST_CSUM (so the device set TUNSETOFFLOAD 0), then the TAP is given
    // TUN_F_CSUM behind the device's back — what a failed TUNSETOFFLOAD leaves behind. The kernel
    // then hands over locally generated UDP with NEEDS_CSUM; the device must complete it (§5.1.6.4).
    const { ns, tap } = tapAndNetns(cleanups, { id: 'tap3', ifname: linkName('t') });
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC, features: { disable: ['GUEST_CSUM'] } });
    expect(rig.has('GUEST_CSUM')).to.equal(false);
    expect(tap.offloads).to.equal(0);
    expect(tap.setOffloads({ csum: true, tso4: false, tso6: false, ecn: false, ufo: false })).to.equal(true);
    ns.adopt(tap.ifname);
    ns.ip(['addr', 'add', '10.203.0.1/24', 'dev', tap.ifname]);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    ns.ip(['neigh', 'replace', '10.203.0.2', 'lladdr', GUEST_MAC, 'dev', tap.ifname, 'nud', 'permanent']);
    rig.postRx(32);
    const rx = collector(rig);
    const headers: Uint8Array[] = [];
    ns.exec('python3', ['-c', "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(bytes(range(200)), ('10.203.0.2', 9999))"]);
    const isOurs = (f: Uint8Array): boolean => f.length >= 42 && f[12] === 0x08 && f[13] === 0x00 && f[23] === 17 && ((f[36]! << 8) | f[37]!) === 9999;
    await waitFor('the UDP datagram in the guest', () => {
      const got = rig.received();
      for (const r of got) {
        rx.frames.push(r.frame);
        headers.push(r.header);
      }
      if (got.length > 0) rig.postRx(got.length);
      return rx.frames.some(isOurs);
    });
    const i = rx.frames.findIndex(isOurs);
    const frame = rx.frames[i]!;
    expect(headers[i]![0], 'flags').to.equal(0);
    expect(rig.device.stats().rx.csumCompleted, 'the host did send a partial checksum').to.be.at.least(1);
    const info = newPacketInfo();
    expect(parsePacket(frame, info)).to.equal('ip');
    expect(transportChecksumValid(frame, info), 'the UDP checksum is complete').to.equal(true);
    expect((frame[40]! << 8) | frame[41]!, 'a UDP checksum, not "none"').to.not.equal(0);
  });

  it('bad_options_throw_at_once_naming_the_option', () => {
    expect(() => new TapNetdev({ id: '' })).to.throw(TypeError, /id/);
    expect(() => new TapNetdev({ id: 'x', ifname: 'a-name-that-is-too-long' })).to.throw(RangeError, /at most 15/);
    expect(() => new TapNetdev({ id: 'x', vnetHdr: 'yes' as unknown as boolean })).to.throw(TypeError, /vnetHdr/);
  });

  it('the_taps_mtu_is_offered_to_a_device_built_without_mtu_and_enforced', () => {
    const { ns, tap } = tapAndNetns(cleanups, { id: 'tap0', ifname: linkName('t') });
    run('ip', ['link', 'set', 'dev', tap.ifname, 'mtu', '1400']);
    expect(tap.hostMtu()).to.equal(1400); // SIOCGIFMTU
    const rig = new NetRig({ netdev: tap, mac: GUEST_MAC });
    expect(rig.has('MTU')).to.equal(true);
    expect(rig.driver.readConfig(10, 2)).to.equal(1400);
    ns.adopt(tap.ifname);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    // In another namespace the name no longer answers here: no MTU to read (a device built now offers none).
    expect(tap.hostMtu()).to.equal(undefined);
    // The driver MUST NOT send above mtu + the Ethernet header: the device does not write it to the TAP.
    const frame = (len: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i < 6 ? 0xff : i === 12 ? 0x88 : i === 13 ? 0xb5 : i & 0xff));
    const before = tap.stats().txFrames;
    expect(rig.send(frame(1415))).to.deep.include({ len: 0 });
    expect(tap.stats().txFrames).to.equal(before);
    expect(rig.device.stats().tx.errors['above-mtu']).to.equal(1);
    expect(rig.device.diagnosticCount('tx.frame-above-mtu')).to.equal(1);
    expect(rig.send(frame(1414))).to.deep.include({ len: 0 });
    expect(tap.stats().txFrames).to.equal(before + 1);
  });

  it('tap_without_vnet_header_hides_the_header_and_offload_capabilities', async () => {
    const tap = new TapNetdev({ id: 'tap1', ifname: linkName('t'), vnetHdr: false });
    trackLink(tap.ifname);
    cleanups.push(() => tap.close());
    expect(hasVnetHeader(tap)).to.equal(false);
    expect(hasOffloads(tap)).to.equal(false);
  });

  it('attaching_to_a_name_that_is_not_a_tap_is_a_host_error_with_the_errno', () => {
    const ns = new Netns();
    cleanups.push(() => ns.destroy());
    const veth = linkName('v');
    run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'p0', 'netns', ns.name]);
    trackLink(veth);
    cleanups.push(() => deleteLink(veth));
    let err: unknown;
    try {
      new TapNetdev({ id: 'x', ifname: veth });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(HostError);
    expect((err as HostError).code).to.equal('host.errno');
    expect((err as HostError).errno).to.be.greaterThan(0);
  });
});
