// A real Linux guest (Debian's i686 6.1 kernel, stock virtio_net) drives the device in v86, over
// the modern virtio-pci transport (VIRTIO 1.2 §4.1) and the legacy one (§4.1.4.10, with
// virtio_pci.force_legacy=1). One boot per transport; the steps run in order against that guest,
// each checking what the driver did (decoded control commands, §5.1.6.5), what queryRxFilter()
// reports, and what the guest's own counters say.

import { expect } from 'chai';
import type { GuestImage } from '../../lib/cli/guest-image.js';
import { PEER_IP } from '../../lib/cli/guest-vm.js';
import { featureName } from '../../devices/virtio-net/constants.js';
import { CTRL, bootGuest, decodeMacTable, guestImageOrSkip, macText, probeFrame, rxPacketsReaching } from '../support/v86-guest.js';
import type { BootedGuest, CtrlCommand } from '../support/v86-guest.js';

const BOOT_TIMEOUT_MS = 180_000;
const STEP_TIMEOUT_MS = 60_000;
const NEW_MAC = '52:54:00:aa:bb:cc';
const OTHER_MAC = '52:54:00:de:ad:01';
const UNJOINED_GROUP = '01:00:5e:7f:01:02';
const VERSION_1_BIT = 32;

function names(cmds: CtrlCommand[]): string[] {
  return cmds.map((c) => {
    const cls = ['RX', 'MAC', 'VLAN'][c.cls] ?? `class${c.cls}`;
    const cmd =
      c.cls === CTRL.RX ? (['PROMISC', 'ALLMULTI'][c.cmd] ?? `cmd${c.cmd}`)
      : c.cls === CTRL.MAC ? (['TABLE_SET', 'ADDR_SET'][c.cmd] ?? `cmd${c.cmd}`)
      : c.cls === CTRL.VLAN ? (['ADD', 'DEL'][c.cmd] ?? `cmd${c.cmd}`)
      : `cmd${c.cmd}`;
    const arg =
      c.cls === CTRL.RX ? ` ${c.data[0]}`
      : c.cls === CTRL.VLAN ? ` ${c.data[0]! | (c.data[1]! << 8)}`
      : c.cls === CTRL.MAC && c.cmd === CTRL.MAC_ADDR_SET ? ` ${macText(c.data)}`
      : '';
    return `${cls} ${cmd}${arg}`;
  });
}

for (const transport of ['modern', 'legacy'] as const) {
  describe(`real Linux guest in v86, ${transport} virtio-pci`, function () {
    this.timeout(STEP_TIMEOUT_MS);
    let image: GuestImage;
    let g: BootedGuest;

    before(async function () {
      this.timeout(BOOT_TIMEOUT_MS + 120_000); // first run may build the image (~55 MB download)
      image = guestImageOrSkip(this);
      g = await bootGuest(image, transport === 'legacy');
      console.log(`      booted to the ready marker in ${g.vm.bootMs} ms`);
    });

    after(async function () {
      if (g !== undefined) await g.vm.stop();
    });

    /** Runs one guest command, expects exit status 0, returns its output. */
    async function sh(command: string): Promise<string> {
      const r = await g.vm.run(command, STEP_TIMEOUT_MS);
      expect(r.exitCode, `${command}: ${r.output}`).to.equal(0);
      return r.output;
    }

    it('driver_binds_and_sysfs_shows_negotiated_features', async function () {
      expect((await sh('ls /sys/bus/virtio/devices')).trim()).to.equal('virtio0');
      expect(await sh('readlink /sys/bus/virtio/devices/virtio0/driver')).to.match(/\/virtio_net\n$/);
      expect(await sh('cat /sys/bus/virtio/devices/virtio0/device')).to.equal('0x0001\n');
      const pciDevice = (await sh('cat /sys/bus/pci/devices/0000:00:0d.0/device')).trim();
      expect(pciDevice).to.equal(transport === 'legacy' ? '0x1000' : '0x1041');
      // sysfs prints feature bits as a string of 0/1, bit 0 first.
      const bits = (await sh('cat /sys/bus/virtio/devices/virtio0/features')).trim();
      let guestFeatures = 0n;
      for (let i = 0; i < bits.length; i++) if (bits[i] === '1') guestFeatures |= 1n << BigInt(i);
      expect(guestFeatures.toString(2)).to.equal(g.vm.device.negotiatedFeatures.toString(2));
      const negotiated = [...Array(64).keys()].filter((i) => (guestFeatures >> BigInt(i)) & 1n).map((i) => featureName(i) ?? String(i));
      expect(negotiated).to.include.members(['MAC', 'STATUS', 'CTRL_VQ', 'CTRL_RX', 'CTRL_VLAN', 'MRG_RXBUF']);
      // The legacy driver cannot negotiate bits above 31, so VERSION_1 tells which driver bound.
      expect(bits[VERSION_1_BIT] === '1', 'VERSION_1 negotiated').to.equal(transport === 'modern');
      expect(g.vm.device.stats().needsReset).to.equal(0);
    });

    it('link_up_sends_linux_burst_and_exactly_one_rx_filter_changed', async function () {
      g.vm.device.queryRxFilter(); // re-arm the event
      g.snoop.take();
      const before = g.events();
      await sh('ip link set eth0 up');
      const burst = g.snoop.take();
      const seen = names(burst);
      // virtnet_set_rx_mode: PROMISC, ALLMULTI, then the MAC table; 8021q adds VLAN 0.
      const firstRx = seen.indexOf('RX PROMISC 0');
      expect(firstRx, seen.join(', ')).to.be.at.least(0);
      expect(seen.slice(firstRx, firstRx + 3)).to.deep.equal(['RX PROMISC 0', 'RX ALLMULTI 0', 'MAC TABLE_SET']);
      expect(seen).to.include('VLAN ADD 0');
      // Every table has no unicast entry; the groups arrive as the stacks join them (IPv6's
      // all-nodes first, then IPv4's all-hosts in a later TABLE_SET of the same burst).
      const tables = burst.filter((c) => c.cls === CTRL.MAC && c.cmd === CTRL.MAC_TABLE_SET).map((c) => decodeMacTable(c.data));
      for (const t of tables) expect(t.unicast).to.deep.equal([]);
      expect(tables.at(-1)!.multicast).to.include.members(['01:00:5e:00:00:01', '33:33:00:00:00:01']);
      expect(g.events() - before).to.equal(1);
      const f = g.vm.device.queryRxFilter();
      expect(f.promiscuous).to.equal(false);
      expect(f.multicast).to.equal('normal');
      expect(f['vlan-table']).to.deep.equal([0]);
      expect(f['multicast-table']).to.include('01:00:5e:00:00:01');
      expect(f['main-mac']).to.equal(g.vm.device.mac);
    });

    it('address_change_sends_mac_addr_set_and_reads_back', async function () {
      g.vm.device.queryRxFilter(); // re-arm: the guest's own joins since the last query may have fired it
      g.snoop.take();
      const before = g.events();
      await sh(`ip link set eth0 address ${NEW_MAC}`);
      expect(names(g.snoop.take())).to.include(`MAC ADDR_SET ${NEW_MAC}`);
      expect(g.events() - before).to.equal(1);
      expect(g.vm.device.queryRxFilter()['main-mac']).to.equal(NEW_MAC);
    });

    it('allmulti_and_promisc_read_back_and_clear', async function () {
      await sh('ifconfig eth0 allmulti');
      expect(names(g.snoop.take())).to.include('RX ALLMULTI 1');
      expect(g.vm.device.queryRxFilter().multicast).to.equal('all');
      await sh('ifconfig eth0 -allmulti');
      expect(g.vm.device.queryRxFilter().multicast).to.equal('normal');
      await sh('ip link set eth0 promisc on');
      expect(names(g.snoop.take())).to.include('RX PROMISC 1');
      expect(g.vm.device.queryRxFilter().promiscuous).to.equal(true);
      await sh('ip link set eth0 promisc off');
      expect(names(g.snoop.take())).to.include('RX PROMISC 0');
      expect(g.vm.device.queryRxFilter().promiscuous).to.equal(false);
    });

    it('vlan_subinterface_adds_vid_and_mvrp_group', async function () {
      g.snoop.take();
      await sh('ip link add link eth0 name eth0.5 type vlan id 5');
      await sh('ip link set eth0.5 up');
      expect(names(g.snoop.take())).to.include('VLAN ADD 5');
      const f = g.vm.device.queryRxFilter();
      expect(f['vlan-table']).to.deep.equal([0, 5]);
      expect(f['multicast-table']).to.include('01:80:c2:00:00:21');
    });

    it('added_ipv6_address_joins_its_solicited_node_group', async function () {
      await sh('ip -6 addr add 2001:db8::1:abcd/64 dev eth0');
      expect(g.vm.device.queryRxFilter()['multicast-table']).to.include('33:33:ff:01:ab:cd');
    });

    it('frames_the_filter_drops_never_reach_the_guest_and_passing_ones_do', async function () {
      const mac = g.vm.device.mac;
      const dropsBefore = g.vm.device.stats().rx.drops;
      let expected = Number((await sh('cat /sys/class/net/eth0/statistics/rx_packets')).trim());
      // Should drop: another unicast address, an unjoined group, a VLAN not in the table.
      // Then a passing frame last: once it is counted, anything injected before it was handled.
      const send = (f: Uint8Array): void => {
        expect(g.netdev.inject(f)).to.equal(true);
      };
      send(probeFrame(OTHER_MAC));
      send(probeFrame(UNJOINED_GROUP));
      send(probeFrame(mac, { vlan: 7 }));
      send(probeFrame(mac));
      expected += 1;
      expect(await rxPacketsReaching(g.vm, expected)).to.equal(expected);
      const drops = g.vm.device.stats().rx.drops;
      expect(drops.unicast - dropsBefore.unicast).to.equal(1);
      expect(drops.multicast - dropsBefore.multicast).to.equal(1);
      expect(drops.vlan - dropsBefore.vlan).to.equal(1);
      // Should pass: broadcast, a joined group, the sub-interface's VLAN, our address.
      send(probeFrame('ff:ff:ff:ff:ff:ff'));
      send(probeFrame('01:00:5e:00:00:01'));
      send(probeFrame(mac, { vlan: 5 }));
      send(probeFrame(mac));
      expected += 4;
      expect(await rxPacketsReaching(g.vm, expected)).to.equal(expected);
      // Promiscuous: the other unicast address now passes too.
      await sh('ip link set eth0 promisc on');
      send(probeFrame(OTHER_MAC));
      expected += 1;
      expect(await rxPacketsReaching(g.vm, expected)).to.equal(expected);
      await sh('ip link set eth0 promisc off');
    });

    it('guest_pings_the_simulated_peer', async function () {
      await sh('ip addr add 10.0.2.15/24 dev eth0');
      const out = await sh(`ping -c 3 -W 2 ${PEER_IP}`);
      expect(out).to.match(/3 packets transmitted, 3 received/);
      expect(g.vm.peer!.stats().echoReplies).to.equal(3);
      expect(g.vm.device.stats().needsReset).to.equal(0);
    });
  });
}
