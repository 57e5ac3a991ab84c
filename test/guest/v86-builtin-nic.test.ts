// `--nic builtin`: the same guest image on v86's own virtio-net device, bridged to this project's
// backends (lib/hypervisors/v86-builtin-nic.ts), and the real network tools of the image (iproute2,
// ethtool, iperf3, ping from Debian's i386 packages). One boot: frames offered from the start of
// the boot must wait for DRIVER_OK (v86's NIC would otherwise write them at guest address 0), and
// the guest must still come up and reach the simulated host peer. Needs no root.

import { expect } from 'chai';
import { GuestVm } from '../../lib/cli/guest-vm.js';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import { SimPeer } from '../../lib/netdev/sim-peer.js';
import { guestImageOrSkip, probeFrame } from '../support/v86-guest.js';

const MAC = '52:54:00:12:34:56';

async function sh(vm: GuestVm, command: string): Promise<string> {
  const r = await vm.run(command, 120_000);
  expect(r.exitCode, `${command}: ${r.output}`).to.equal(0);
  return r.output;
}

describe("real Linux guest on v86's own virtio-net (--nic builtin) with the image's real tools", function () {
  this.timeout(240_000);
  let vm: GuestVm | undefined;
  let netdev: MemoryNetdev;
  let offeredDuringBoot = 0;

  before(async function () {
    this.timeout(900_000);
    const image = guestImageOrSkip(this);
    netdev = new MemoryNetdev({ id: 'net0' });
    new SimPeer(netdev);
    // Broadcast frames from the very start of the boot, long before the driver exists.
    const flood = setInterval(() => {
      offeredDuringBoot++;
      netdev.inject(probeFrame('ff:ff:ff:ff:ff:ff'));
    }, 200);
    try {
      vm = await GuestVm.boot({ image, nic: 'builtin', netdev, mac: MAC, bootTimeoutMs: 850_000 });
    } finally {
      clearInterval(flood);
    }
  });

  after(async () => {
    await vm?.stop();
  });

  it('frames_offered_before_driver_ok_are_held_not_written_to_guest_memory', () => {
    expect(offeredDuringBoot).to.be.greaterThan(0);
    expect(vm!.nic).to.equal('builtin');
    expect(vm!.builtin!.driverReady).to.equal(true);
    expect(vm!.builtin!.stats().held, 'refusals while the driver was not ready').to.be.greaterThan(0);
    expect(() => vm!.device).to.throw(/no VirtioNetDevice/);
  });

  it('the_guest_sees_v86s_nic_with_the_given_mac', async () => {
    const info = await sh(vm!, 'ethtool -i eth0');
    expect(info).to.match(/^driver: virtio_net$/m);
    expect(info).to.match(/^bus-info: 0000:00:0a\.0$/m); // v86's virtio-net slot, not ours (0d)
    expect((await sh(vm!, 'cat /sys/class/net/eth0/address')).trim()).to.equal(MAC);
  });

  it('iproute2_joins_and_leaves_a_multicast_group', async () => {
    await sh(vm!, 'ip link set eth0 up');
    await sh(vm!, 'ip maddr add 01:00:5e:01:02:03 dev eth0');
    expect(await sh(vm!, 'ip maddr show dev eth0')).to.match(/link\s+01:00:5e:01:02:03 static/);
    await sh(vm!, 'ip maddr del 01:00:5e:01:02:03 dev eth0');
    expect(await sh(vm!, 'ip maddr show dev eth0')).not.to.match(/01:00:5e:01:02:03/);
  });

  it('iputils_ping_reaches_the_host_peer_through_the_bridge', async () => {
    await sh(vm!, 'ip addr add 10.0.2.15/24 dev eth0');
    const before = vm!.builtin!.stats();
    const out = await sh(vm!, 'ping -c 2 -W 10 10.0.2.2');
    expect(out).to.match(/2 packets transmitted, 2 received/);
    const after = vm!.builtin!.stats();
    expect(after.transmitted - before.transmitted).to.be.at.least(2);
    expect(after.delivered - before.delivered).to.be.at.least(2);
  });

  it('iperf3_and_ethtool_run_from_the_image', async () => {
    expect(await sh(vm!, 'iperf3 --version')).to.match(/^iperf 3\./);
    expect(await sh(vm!, 'ethtool -l eth0')).to.match(/Combined:\s+1/);
  });
});
