// Issue #14's done-when for device state, on the real guest: boot, make the rx filter non-default
// from the guest shell (MAC address, promisc, a VLAN, an IPv6 multicast group), hold frames in the
// device's rx backlog, `save_state()`, end the emulator; then restore in a NEW Node process
// (test/support/v86-state-restore.ts) into a fresh emulator with a freshly attached device, and
// check there: queryRxFilter() equals the value before saving, the backlog's frames reach the guest,
// the guest's ping works without the driver re-initialising (same ifindex, eth0 counters carried
// on, no rx-filter change), and the MAC is announced (the guest's own gratuitous ARP after
// VIRTIO_NET_S_ANNOUNCE, and V86BusNetdev's `net0-mac`).
//
// The backlog: v86 is stopped (the guest cannot refill its rx ring) and frames are injected until
// the ring is full and the device holds some in its backlog; the image is saved with them.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestVm } from '../../lib/cli/guest-vm.js';
import type { MemoryNetdev } from '../../lib/netdev/memory-netdev.js';
import type { RxFilterInfo } from '../../lib/base/rx-filter-info.js';
import { guestImageOrSkip, probeFrame } from '../support/v86-guest.js';

const NEW_MAC = '52:54:00:ab:cd:ef';
/** The IPv6 address's solicited-node group (33:33:ff + its last three bytes). */
const IPV6_GROUP = '33:33:ff:01:ab:cd';
/** Frames to leave in the device's backlog at save time. */
const BACKLOG_TARGET = 16;

interface ChildResult {
  rxFilterAfterRestore: RxFilterInfo;
  rxFilterAfterPing: RxFilterInfo;
  filterEvents: number;
  resets: number;
  arps: { src: string; at: number }[];
  rxPackets: number;
  ifindex: string;
  ping: { exitCode: number; output: string };
  deviceStats: { rx: { backlog: number; frames: number }; ctrl: { byClass: Record<string, { ok: number; err: number }> } };
  announcedMac: string | null;
}

describe('device state: a real guest saved in v86 and restored in another process', function () {
  this.timeout(900_000);
  let dir = '';
  let saved: { rxFilter: RxFilterInfo; ifindex: string; rxPackets: number; txPackets: number; backlog: number; injected: number } | null = null;
  let child: ChildResult | null = null;

  before(async function () {
    const image = guestImageOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'vnm-v86-state-'));
    const vm = await GuestVm.boot({ image, stateDisk: true, cmdline: 'vnm.ip=10.0.2.15/24', bootTimeoutMs: 400_000 });
    try {
      const sh = async (c: string): Promise<string> => {
        const r = await vm.run(c, 90_000);
        expect(r.exitCode, `${c}: ${r.output}`).to.equal(0);
        return r.output;
      };
      expect(await sh('ping -c 1 -W 3 10.0.2.2')).to.match(/, 1 received/);
      await sh(`ip link set eth0 address ${NEW_MAC}`);
      await sh('ip link set eth0 promisc on');
      await sh('ip link add link eth0 name eth0.5 type vlan id 5');
      await sh('ip link set eth0.5 up');
      await sh('ip -6 addr add 2001:db8::1:abcd/64 dev eth0');
      const rxFilter = vm.device.queryRxFilter();
      expect(rxFilter['main-mac']).to.equal(NEW_MAC);
      expect(rxFilter.promiscuous).to.equal(true);
      expect(rxFilter['vlan-table']).to.include(5);
      expect(rxFilter['multicast-table']).to.include(IPV6_GROUP);
      const ifindex = (await sh('cat /sys/class/net/eth0/ifindex')).trim();
      const rxPackets = Number((await sh('cat /sys/class/net/eth0/statistics/rx_packets')).trim());
      const txPackets = Number((await sh('cat /sys/class/net/eth0/statistics/tx_packets')).trim());

      // Fill the guest's rx ring while it cannot refill, then some frames into the backlog.
      await vm.emulator.stop();
      const netdev = vm.netdev as MemoryNetdev;
      const deliveredBefore = netdev.stats().delivered;
      let injected = 0;
      while (vm.device.stats().rx.backlog < BACKLOG_TARGET && injected < 4096) {
        netdev.inject(probeFrame(NEW_MAC));
        injected++;
      }
      const backlog = vm.device.stats().rx.backlog;
      expect(backlog, 'frames held in the backlog at save time').to.equal(BACKLOG_TARGET);
      // The device took every frame (none left in the MemoryNetdev, which is not saved).
      expect(netdev.stats().delivered - deliveredBefore).to.equal(injected);
      expect(vm.device.queryRxFilter(), 'the filter did not move while frames were injected').to.deep.equal(rxFilter);

      const state = await vm.saveState();
      writeFileSync(join(dir, 'state.bin'), state);
      saved = { rxFilter, ifindex, rxPackets, txPackets, backlog, injected };
    } finally {
      await vm.stop();
    }

    const out = await runNode(['--import', 'tsx', 'test/support/v86-state-restore.ts', join(dir, 'state.bin'), String(saved.rxPackets + saved.injected)]);
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, `the restoring process printed no result:\n${out}`).to.be.a('string');
    child = JSON.parse(line!.slice('RESULT '.length)) as ChildResult;
    console.log(`      saved: ${JSON.stringify({ ...saved, rxFilter: undefined })}; restored: rxPackets ${child.rxPackets}, ARPs ${JSON.stringify(child.arps)}, announced ${child.announcedMac}`);
  });

  after(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('query_rx_filter_after_restore_equals_the_value_before_saving', () => {
    expect(child!.rxFilterAfterRestore).to.deep.equal(saved!.rxFilter);
  });

  it('frames_held_in_the_backlog_are_delivered_after_restore', () => {
    // Every injected frame (those in the guest's ring and those in the backlog) reached eth0.
    expect(child!.rxPackets).to.be.at.least(saved!.rxPackets + saved!.injected);
    expect(child!.deviceStats.rx.backlog).to.equal(0);
  });

  it('the_guests_ping_resumes_without_the_driver_reinitialising', () => {
    expect(child!.ping.exitCode, child!.ping.output).to.equal(0);
    expect(child!.ping.output).to.match(/3 packets transmitted, 3 received/);
    expect(child!.ifindex, 'the same eth0').to.equal(saved!.ifindex);
    // No driver re-initialisation: that always begins with a device reset. (The rx-filter event
    // count is no proxy for it: the guest's own IPv6 timers may program its unchanged filter again
    // after the restore; the filter itself must still equal the saved one, below.)
    expect(child!.resets, `no device reset after the restore (rx-filter events: ${child!.filterEvents})`).to.equal(0);
    expect(child!.rxFilterAfterPing).to.deep.equal(saved!.rxFilter);
  });

  it('the_mac_is_announced_after_restore', () => {
    // Linux negotiates GUEST_ANNOUNCE: the device sets VIRTIO_NET_S_ANNOUNCE, the guest sends its
    // gratuitous ARP and acknowledges on the control queue.
    expect(child!.arps.map((a) => a.src)).to.include(NEW_MAC);
    expect(child!.deviceStats.ctrl.byClass['announce']?.ok ?? 0).to.be.at.least(1);
    // Over v86's network bus, V86BusNetdev announces the restored MAC as `net0-mac`.
    expect(child!.announcedMac).to.equal(NEW_MAC);
  });
});

function runNode(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`restoring process exited ${code}\n--- stdout ---\n${out}\n--- stderr ---\n${err.slice(-4000)}`));
    });
  });
}
