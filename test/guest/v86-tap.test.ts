// The real guest on a real host link: the device on a TapNetdev whose interface lives in a
// throwaway network namespace (needs root; skips with the reason otherwise). With a TAP the device
// offers the checksum and segmentation offloads (VIRTIO 1.2 §5.1.6.2 / §5.1.6.4), so Linux sends
// and receives partially checksummed and GSO frames: a ping, and a TCP transfer each way.

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GuestVm } from '../../lib/cli/guest-vm.js';
import { TapNetdev } from '../../lib/netdev/tap-netdev.js';
import { featureName } from '../../devices/virtio-net/constants.js';
import { Netns, linkName, requireHost, trackLink } from '../support/netns.js';
import { guestImageOrSkip } from '../support/v86-guest.js';

const run = promisify(execFile);
const HOST_IP = '10.0.3.1';
const GUEST_IP = '10.0.3.15';
const PAYLOAD_BYTES = 256 * 1024;

describe('real Linux guest in v86 on a TapNetdev in a network namespace', function () {
  this.timeout(60_000);
  let vm: GuestVm | undefined;
  let ns: Netns | undefined;
  let dir: string;

  before(async function () {
    this.timeout(300_000);
    requireHost(this);
    const image = guestImageOrSkip(this);
    ns = new Netns();
    const tap = new TapNetdev({ id: 'hostnet0', ifname: linkName('g') });
    trackLink(tap.ifname);
    vm = await GuestVm.boot({ image, netdev: tap });
    ns.adopt(tap.ifname);
    ns.ip(['addr', 'add', `${HOST_IP}/24`, 'dev', tap.ifname]);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    dir = mkdtempSync(join(tmpdir(), 'vnm-guest-tap-'));
  });

  after(async () => {
    await vm?.stop();
    ns?.destroy();
  });

  async function sh(command: string, timeoutMs = 60_000): Promise<string> {
    const r = await vm!.run(command, timeoutMs);
    expect(r.exitCode, `${command}: ${r.output}`).to.equal(0);
    return r.output;
  }

  /** Runs a command in the namespace without blocking the event loop (v86 runs on it). */
  function inNs(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ stdout: string }> {
    return run('ip', ['netns', 'exec', ns!.name, cmd, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
  }

  it('offloads_are_negotiated_with_a_tap_backend', async () => {
    const names = [...Array(64).keys()].filter((i) => (vm!.device.negotiatedFeatures >> BigInt(i)) & 1n).map((i) => featureName(i));
    expect(names).to.include.members(['CSUM', 'GUEST_CSUM', 'HOST_TSO4', 'GUEST_TSO4']);
  });

  it('guest_pings_the_host_address_in_the_namespace', async () => {
    await sh('ip link set eth0 up');
    await sh(`ip addr add ${GUEST_IP}/24 dev eth0`);
    expect(await sh(`ping -c 3 -W 2 ${HOST_IP}`)).to.match(/3 packets transmitted, 3 received/);
  });

  it('tcp_download_into_the_guest_arrives_intact', async () => {
    const data = randomBytes(PAYLOAD_BYTES);
    writeFileSync(join(dir, 'blob'), data);
    const before = vm!.device.stats().rx;
    const server = execFile('ip', ['netns', 'exec', ns!.name, 'python3', '-m', 'http.server', '8000', '--bind', HOST_IP, '--directory', dir]);
    try {
      let out = '';
      for (let i = 0; i < 20; i++) {
        const r = await vm!.run(`wget -q -O - http://${HOST_IP}:8000/blob | sha256sum`);
        out = r.output;
        if (r.exitCode === 0 && /^[0-9a-f]{64}/.test(out)) break;
      }
      expect(out.slice(0, 64)).to.equal(createHash('sha256').update(data).digest('hex'));
      // The host handed the guest GSO frames (GUEST_TSO4): on average far above one MTU.
      const rx = vm!.device.stats().rx;
      console.log(`      download: ${rx.frames - before.frames} frames, ${rx.bytes - before.bytes} bytes`);
    } finally {
      server.kill();
    }
  });

  it('tcp_upload_from_the_guest_arrives_intact', async () => {
    await sh(`dd if=/dev/urandom of=/tmp/up bs=1024 count=${PAYLOAD_BYTES / 1024} 2>/dev/null`);
    const guestSum = (await sh('sha256sum /tmp/up')).slice(0, 64);
    const script = [
      'import socket,hashlib,sys',
      's=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind((sys.argv[1],9000)); s.listen(1)',
      'open(sys.argv[2],"w").close()',
      'c,_=s.accept(); h=hashlib.sha256(); n=0',
      'while True:',
      '  b=c.recv(65536)',
      '  if not b: break',
      '  h.update(b); n+=len(b)',
      'print(n, h.hexdigest())',
    ].join('\n');
    const before = vm!.device.stats().tx;
    // The receiver says when it listens (a file): on a loaded machine python3 can take seconds to start.
    const listening = join(mkdtempSync(join(tmpdir(), 'vnm-up-')), 'listening');
    const receiver = inNs('python3', ['-c', script, HOST_IP, listening]);
    for (let i = 0; i < 600 && !existsSync(listening); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(listening), 'the receiver listens').to.equal(true);
    let sent = false;
    for (let i = 0; i < 20 && !sent; i++) sent = (await vm!.run(`nc ${HOST_IP} 9000 < /tmp/up`)).exitCode === 0;
    expect(sent, 'nc connected and sent').to.equal(true);
    const { stdout } = await receiver;
    expect(stdout.trim()).to.equal(`${PAYLOAD_BYTES} ${guestSum}`);
    const tx = vm!.device.stats().tx;
    console.log(`      upload: ${tx.frames - before.frames} frames, ${tx.bytes - before.bytes} bytes`);
  });
});
