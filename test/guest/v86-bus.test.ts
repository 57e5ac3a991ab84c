// The real guest on v86's own network adapters: the device on a V86BusNetdev, v86 told to build no
// NIC of its own (`net_device.type: 'none'`). Needs no root.
//   - fetch: udhcpc gets its address from the adapter's DHCP server, and wget fetches a page from
//     an HTTP server on 127.0.0.1 through the adapter's `<port>.external` host names (its DNS
//     answers every name with 192.168.87.1; its TCP stack hands port 80 to `fetch()`, with the
//     request's Host header as the URL's host, and maps `N.external` to http://localhost:N).
//   - inbrowser: two emulators in this process on one BroadcastChannel ping each other.

import { expect } from 'chai';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GuestVm } from '../../lib/cli/guest-vm.js';
import { V86BusNetdev } from '../../lib/netdev/v86-bus-netdev.js';
import { guestImageOrSkip } from '../support/v86-guest.js';

const PAGE = 'hello from the host through v86 fetch\n';
/** The fetch adapter's defaults (src/browser/fetch_network.js): router, and the address its DHCP hands out. */
const ROUTER_IP = '192.168.86.1';
const LEASED_IP = '192.168.86.100';

/**
 * A udhcpc event script (busybox calls it with `bound` and the lease in the environment), written
 * one line at a time: the serial console takes one line per command.
 */
const DHCP_SCRIPT_LINES = [
  '#!/bin/sh',
  '[ "$1" = bound ] || exit 0',
  'ifconfig "$interface" "$ip" netmask "$subnet"',
  '[ -n "$router" ] && route add default gw "$router"',
  'echo "nameserver $dns" > /etc/resolv.conf',
];

/** The MAC v86's fetch adapter uses for the guest (it learns it from `<id>-mac`). */
function adapterMac(vm: GuestVm): Uint8Array {
  return (vm.emulator as unknown as { network_adapter: { vm_mac: Uint8Array } }).network_adapter.vm_mac;
}

async function sh(vm: GuestVm, command: string, timeoutMs = 90_000): Promise<string> {
  const r = await vm.run(command, timeoutMs);
  expect(r.exitCode, `${command}: ${r.output}`).to.equal(0);
  return r.output;
}

describe('real Linux guest in v86 on v86\'s fetch adapter through a V86BusNetdev', function () {
  this.timeout(180_000);
  let vm: GuestVm | undefined;
  let server: Server | undefined;
  let port = 0;
  let requests = 0;

  before(async function () {
    this.timeout(450_000);
    const image = guestImageOrSkip(this);
    server = createServer((req, res) => {
      requests++;
      if (req.url === '/page.txt') res.end(PAGE);
      else {
        res.statusCode = 404;
        res.end('no\n');
      }
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    vm = await GuestVm.boot({
      image,
      mac: '52:54:00:12:34:56',
      netDevice: { type: 'none', relay_url: 'fetch' },
      netdev: (emulator) => new V86BusNetdev({ emulator }),
      bootTimeoutMs: 400_000,
    });
  });

  after(async () => {
    await vm?.stop();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  });

  it('udhcpc_gets_an_address_from_the_fetch_adapter', async () => {
    await sh(vm!, 'rm -f /tmp/dhcp.sh');
    for (const line of DHCP_SCRIPT_LINES) await sh(vm!, `echo '${line}' >> /tmp/dhcp.sh`);
    await sh(vm!, 'chmod +x /tmp/dhcp.sh && ip link set eth0 up');
    await sh(vm!, 'udhcpc -i eth0 -n -q -t 5 -T 2 -s /tmp/dhcp.sh');
    expect(await sh(vm!, 'ip -4 addr show dev eth0')).to.include(`inet ${LEASED_IP}/24`);
    expect(await sh(vm!, 'ip route')).to.include(`default via ${ROUTER_IP}`);
    expect(await sh(vm!, 'ping -c 2 -W 3 ' + ROUTER_IP)).to.match(/2 packets transmitted, 2 received/);
  });

  it('wget_fetches_a_page_from_a_host_http_server', async () => {
    const host = `${port}.external`;
    // The adapter's DNS answers every name; busybox's nslookup asks it. The guest's static busybox
    // wget resolves through glibc, which has no DNS module in this initramfs, so the answer goes to
    // /etc/hosts. (Its `-T` option crashes busybox 1.35's static build, so no timeout flag.)
    const answer = await sh(vm!, `nslookup ${host} | awk '/^Address: /{print $2}' | tail -n 1`);
    expect(answer.trim()).to.match(/^\d+\.\d+\.\d+\.\d+$/);
    await sh(vm!, `echo "${answer.trim()} ${host}" > /etc/hosts`);
    const before = requests;
    let out = '';
    for (let i = 0; i < 5 && out !== PAGE; i++) {
      const r = await vm!.run(`wget -q -O - http://${host}/page.txt`, 90_000);
      out = r.exitCode === 0 ? r.output : '';
    }
    expect(out).to.equal(PAGE);
    expect(requests).to.be.greaterThan(before);
    const s = (vm!.netdev as V86BusNetdev).stats();
    console.log(`      bus: ${JSON.stringify(s)}`);
    expect(s.dropped).to.equal(0);
  });

  it('the_guests_mac_was_announced_on_the_bus', () => {
    expect((vm!.netdev as V86BusNetdev).announcedMac).to.equal('52:54:00:12:34:56');
    expect(Array.from(adapterMac(vm!))).to.deep.equal([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  });

  it('a_mac_change_in_the_guest_is_announced_to_the_adapter', async () => {
    await sh(vm!, 'ip link set eth0 address 52:54:00:65:43:21'); // MAC_ADDR_SET on the control queue
    expect((vm!.netdev as V86BusNetdev).announcedMac).to.equal('52:54:00:65:43:21');
    expect(Array.from(adapterMac(vm!)), "the fetch adapter's vm_mac").to.deep.equal([0x52, 0x54, 0x00, 0x65, 0x43, 0x21]);
    expect(await sh(vm!, 'ping -c 1 -W 3 ' + ROUTER_IP)).to.match(/, 1 received/);
  });
});

describe('two real Linux guests in v86 on v86\'s inbrowser adapter', function () {
  this.timeout(180_000);
  let a: GuestVm | undefined;
  let b: GuestVm | undefined;

  before(async function () {
    this.timeout(900_000);
    const image = guestImageOrSkip(this);
    const boot = (mac: string, ip: string): Promise<GuestVm> =>
      GuestVm.boot({
        image,
        mac,
        cmdline: `vnm.ip=${ip}/24`,
        netDevice: { type: 'none', relay_url: 'inbrowser' },
        netdev: (emulator) => new V86BusNetdev({ emulator }),
        bootTimeoutMs: 400_000,
      });
    // One after the other: two kernels booting at once on a loaded 2-core machine take too long.
    a = await boot('52:54:00:00:0a:01', '10.0.9.1');
    b = await boot('52:54:00:00:0a:02', '10.0.9.2');
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('each_guest_pings_the_other', async () => {
    expect(await sh(a!, 'ping -c 3 -W 3 10.0.9.2')).to.match(/3 packets transmitted, 3 received/);
    expect(await sh(b!, 'ping -c 3 -W 3 10.0.9.1')).to.match(/3 packets transmitted, 3 received/);
  });
});
