// The second process of test/guest/v86-state.test.ts: restores a v86 state image saved by the test's
// own process into a fresh emulator with a freshly attached device (same options), and reports
// what it sees as one JSON line on stdout (prefixed RESULT). Run with `node --import tsx`.
//
//   node --import tsx test/support/v86-state-restore.ts STATE_FILE EXPECTED_RX_PACKETS
//
// 1. MemoryNetdev + SimPeer (10.0.2.2), as `virtio-net guest` uses: the rx filter right after the
//    restore, the ARP frames sent with the guest's MAC (the announcement), the guest's eth0
//    counters (the backlog delivered), ifindex, and a ping.
// 2. The same image into a second emulator on a V86BusNetdev: the MAC it announced on v86's bus.

import { readFileSync } from 'node:fs';
import { buildGuestImage } from '../../lib/cli/guest-image.js';
import { GuestVm } from '../../lib/cli/guest-vm.js';
import { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import { SimPeer } from '../../lib/netdev/sim-peer.js';
import { V86BusNetdev } from '../../lib/netdev/v86-bus-netdev.js';

const ETHERTYPE_ARP = 0x0806;

async function main(): Promise<void> {
  const [statePath, expectedRx] = process.argv.slice(2);
  const state = new Uint8Array(readFileSync(statePath!));
  const image = buildGuestImage({ log: (l) => process.stderr.write(`${l}\n`) });

  const netdev = new MemoryNetdev({ id: 'net0' });
  const arps: { src: string; at: number }[] = [];
  const t0 = Date.now();
  netdev.on('transmit', (frame: Uint8Array) => {
    if (frame.length >= 14 && ((frame[12]! << 8) | frame[13]!) === ETHERTYPE_ARP) arps.push({ src: mac(frame.subarray(6, 12)), at: Date.now() - t0 });
  });
  const peer = new SimPeer(netdev);
  const vm = await GuestVm.boot({ image, netdev, restore: state });
  const rxFilterAfterRestore = vm.device.queryRxFilter();
  let filterEvents = 0;
  vm.device.on('rx-filter-changed', () => filterEvents++);
  // A driver that initialises again starts with a device reset (status 0, VIRTIO 1.2 §3.1.1).
  let resets = 0;
  vm.device.on('status', (status: number) => {
    if (status === 0) resets++;
  });
  const sh = async (c: string): Promise<{ exitCode: number; output: string }> => vm.run(c, 90_000);
  // Frames the device held in its backlog at save time reach the guest once it refills its ring.
  let rxPackets = Number((await sh('cat /sys/class/net/eth0/statistics/rx_packets')).output.trim());
  for (let i = 0; i < 30 && rxPackets < Number(expectedRx); i++) rxPackets = Number((await sh('cat /sys/class/net/eth0/statistics/rx_packets')).output.trim());
  const ifindex = (await sh('cat /sys/class/net/eth0/ifindex')).output.trim();
  const ping = await sh('ping -c 3 -W 3 10.0.2.2');
  const result1 = {
    rxFilterAfterRestore,
    rxFilterAfterPing: vm.device.queryRxFilter(),
    filterEvents,
    resets,
    arps,
    rxPackets,
    ifindex,
    ping,
    deviceStats: vm.device.stats(),
    peer: peer.stats(),
  };
  peer.close();
  await vm.stop();

  // 2. The same image over v86's network bus: V86BusNetdev announces the restored MAC.
  let busNetdev: V86BusNetdev | null = null;
  const vm2 = await GuestVm.boot({
    image,
    restore: state,
    netDevice: { type: 'none' },
    netdev: (emulator) => (busNetdev = new V86BusNetdev({ emulator })),
  });
  const announcedMac = (busNetdev as V86BusNetdev | null)?.announcedMac ?? null;
  await vm2.stop();
  process.stdout.write(`RESULT ${JSON.stringify({ ...result1, announcedMac })}\n`);
}

function mac(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
