// QEMU 7.2 and this device on one UDP wire, without root: a Linux guest in QEMU (TCG, Debian's
// amd64 kernel, scripts/guest/init) on `-netdev dgram` over 127.0.0.1, and `virtio-net run
// --netdev dgram` (in process: the same run() the command runs, its spelling parsed by the CLI
// parser) with the scripted guest at the other end. The scripted guest (10.0.2.15) ARPs for and
// pings the Linux guest (10.0.2.2); the Linux guest pings the scripted guest with busybox `ping`.
// Both must get their answers.

import { expect } from 'chai';
import { parseNetdev } from '../../lib/cli/args.js';
import { run } from '../../lib/cli/run.js';
import type { RunResult } from '../../lib/cli/report.js';
import { QemuGuest } from './qemu-guest.js';
import { freeUdpPorts } from '../support/udp-ports.js';

/** Two UDP ports free on 127.0.0.1 now. */
async function freePorts(): Promise<[number, number]> {
  const [a, b] = await freeUdpPorts(2);
  return [a!, b!];
}

describe('QEMU 7.2 on -netdev dgram and virtio-net run on --netdev dgram (UDP on 127.0.0.1)', function () {
  this.timeout(180_000);
  let qemu: QemuGuest | undefined;
  let ours = 0;
  let theirs = 0;

  before(async function () {
    this.timeout(1_000_000); // may build the amd64 image first
    const image = QemuGuest.imageOrSkip(this);
    [ours, theirs] = await freePorts();
    qemu = await QemuGuest.bootWith(image, {
      netdev: `dgram,id=hostnet0,local.type=inet,local.host=127.0.0.1,local.port=${theirs},remote.type=inet,remote.host=127.0.0.1,remote.port=${ours}`,
      mac: '52:54:00:12:34:02',
      append: 'vnm.ip=10.0.2.2/24',
    });
    console.log(`      QEMU guest booted in ${qemu.bootMs} ms (udp 127.0.0.1:${theirs} <-> 127.0.0.1:${ours})`);
  });

  after(async () => {
    await qemu?.stop();
  });

  it('they_arp_for_and_ping_each_other', async () => {
    const spec = parseNetdev(`dgram,local.type=inet,local.host=127.0.0.1,local.port=${ours},remote.type=inet,remote.host=127.0.0.1,remote.port=${theirs}`);
    const running: Promise<RunResult> = run({ durationMs: 8000, scenario: 'traffic', netdev: spec, qmpPath: null, json: true }, () => undefined);
    // Meanwhile the Linux guest pings the scripted guest (its ARP first).
    await new Promise((r) => setTimeout(r, 500));
    const ping = await qemu!.run('ping -c 3 -W 3 10.0.2.15', 30_000);
    const r = await running;
    console.log(`      scripted guest: ${JSON.stringify(r.guest)}; QEMU guest: ${ping.output.trim().split('\n').slice(-2).join(' / ')}`);
    expect(r.netdev).to.equal(`dgram udp=127.0.0.1:${ours}/127.0.0.1:${theirs}`);
    // The scripted guest's side: it learned the Linux guest's MAC and got echo replies.
    expect(r.guest['arpReplies'], 'ARP replies from the Linux guest').to.be.greaterThan(0);
    expect(r.guest['echoReplies'], 'echo replies from the Linux guest').to.be.greaterThan(0);
    // The Linux guest's side: its ARP and its three pings were answered.
    expect(r.guest['arpRequestsAnswered'], 'ARP requests from the Linux guest answered').to.be.greaterThan(0);
    expect(r.guest['echoRequestsAnswered'], 'pings from the Linux guest answered').to.be.at.least(3);
    expect(ping.exitCode, ping.output).to.equal(0);
    expect(ping.output).to.match(/3 packets transmitted, 3 received/);
    expect(r.device.rx.frames).to.equal(r.guest['framesReceived']);
    expect(r.backend.errors?.count, `backend errors: ${r.backend.errors?.last}`).to.equal(0);
  });
});
