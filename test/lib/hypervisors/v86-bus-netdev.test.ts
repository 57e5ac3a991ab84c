// V86BusNetdev on a real (not booted) v86 0.5.462: which `net_device` options build a NIC of v86's
// own and which start an adapter, and that v86's own adapters (fetch, inbrowser) exchange frames
// and the MAC with this netdev over the bus — the facts lib/hypervisors/README.md states.

import { expect } from 'chai';
import { createRequire } from 'node:module';
import { V86 } from 'v86';
import { V86BusNetdev } from '../../../lib/netdev/v86-bus-netdev.js';
import type { V86BusEmulator } from '../../../lib/netdev/v86-bus-netdev.js';
import type { NetdevPeer, RxFilterSnapshot, RxFilterSource } from '../../../lib/netdev/netdev.js';
import type { V86Cpu } from '../../../lib/hypervisors/v86.js';

type Emu = InstanceType<typeof V86> &
  V86BusEmulator & {
    v86: { cpu: V86Cpu & { devices: { net?: unknown; virtio_net?: unknown } } };
    network_adapter?: { vm_mac?: Uint8Array; router_mac?: Uint8Array };
  };

const ROUTER_MAC = [0x52, 0x54, 0x00, 0x01, 0x02, 0x03]; // fetch's default router_mac "52:54:0:1:2:3"
const GUEST_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const NE2K_PCI_ID = 5 << 3;
const V86_VIRTIO_NET_PCI_ID = 10 << 3;

function wasmPath(): string {
  return createRequire(import.meta.url).resolve('v86').replace(/libv86\.m?js$/, 'v86.wasm');
}

function emulator(extra: Record<string, unknown>): Emu {
  return new V86({
    wasm_path: wasmPath(),
    memory_size: 32 << 20,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    ...extra,
  } as ConstructorParameters<typeof V86>[0]) as Emu;
}

function loaded(emu: Emu): Promise<void> {
  return new Promise<void>((resolve) => emu.add_listener('emulator-loaded', () => resolve()));
}

class RecordingPeer implements NetdevPeer {
  readonly received: Uint8Array[] = [];
  receive(frame: Uint8Array): boolean {
    this.received.push(frame.slice());
    return true;
  }
  writable(): void {}
}

function macSource(mac: string): RxFilterSource {
  return {
    queryRxFilter: () => ({ 'main-mac': mac }) as RxFilterSnapshot,
    on: () => undefined,
    off: () => undefined,
  };
}

/** An ARP who-has for `tpa` from GUEST_MAC / 192.168.86.100 (RFC 826). */
function arpWhoHas(tpa: number[]): Uint8Array {
  return Uint8Array.from([
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...GUEST_MAC, 0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
    ...GUEST_MAC, 192, 168, 86, 100,
    0, 0, 0, 0, 0, 0, ...tpa,
    ...new Array<number>(18).fill(0),
  ]);
}

const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('V86BusNetdev on a real v86 (no guest)', function () {
  this.timeout(30_000);
  let emu: Emu | undefined;
  let netdev: V86BusNetdev | undefined;
  afterEach(async () => {
    await netdev?.close();
    await emu?.destroy();
    netdev = undefined;
    emu = undefined;
  });

  it('net_device_type_none_starts_the_adapter_and_builds_no_nic', async () => {
    emu = emulator({ net_device: { type: 'none', relay_url: 'fetch' } });
    await loaded(emu);
    expect(emu.network_adapter, 'the fetch adapter').to.not.equal(undefined);
    expect(emu.v86.cpu.devices.net).to.equal(undefined);
    expect(emu.v86.cpu.devices.virtio_net).to.equal(undefined);
    expect(emu.v86.cpu.devices.pci.devices[NE2K_PCI_ID]).to.equal(undefined);
    expect(emu.v86.cpu.devices.pci.devices[V86_VIRTIO_NET_PCI_ID]).to.equal(undefined);
  });

  it('net_device_without_a_type_builds_no_nic_either', async () => {
    // v86 0.5.462 builds a NIC only for type 'ne2k' or 'virtio'; the 'ne2k' default applies only
    // when `net_device` is absent altogether.
    emu = emulator({ net_device: { relay_url: 'fetch' } });
    await loaded(emu);
    expect(emu.network_adapter).to.not.equal(undefined);
    expect(emu.v86.cpu.devices.net).to.equal(undefined);
    expect(emu.v86.cpu.devices.virtio_net).to.equal(undefined);
  });

  it('network_relay_url_alone_builds_v86s_ne2k', async () => {
    emu = emulator({ network_relay_url: 'fetch' });
    await loaded(emu);
    expect(emu.network_adapter).to.not.equal(undefined);
    expect(emu.v86.cpu.devices.net, "v86's own ne2k").to.not.equal(undefined);
  });

  it('fetch_adapter_answers_arp_through_the_netdev', async () => {
    emu = emulator({ net_device: { type: 'none', relay_url: 'fetch' } });
    netdev = new V86BusNetdev({ emulator: emu }); // the bus exists as soon as the emulator does
    const peer = new RecordingPeer();
    netdev.attach(peer);
    await loaded(emu);
    expect(netdev.send(arpWhoHas([192, 168, 86, 1]))).to.equal('sent');
    await turn(); // answered from inside send(): delivered on a later turn
    expect(peer.received).to.have.length(1);
    const reply = peer.received[0]!;
    expect([...reply.subarray(0, 6)], 'to the guest').to.deep.equal(GUEST_MAC);
    expect([...reply.subarray(12, 14)], 'ARP').to.deep.equal([0x08, 0x06]);
    expect(reply[21], 'oper = reply').to.equal(2);
    expect([...reply.subarray(22, 28)], 'sha = the router').to.deep.equal(ROUTER_MAC);
    expect(netdev.stats()).to.include({ transmitted: 1, received: 1, delivered: 1 });
  });

  it('the_announced_mac_becomes_the_fetch_adapters_vm_mac', async () => {
    emu = emulator({ net_device: { type: 'none', relay_url: 'fetch' } });
    netdev = new V86BusNetdev({ emulator: emu });
    await loaded(emu);
    netdev.bindRxFilterSource(macSource('52:54:00:12:34:56'));
    expect([...emu.network_adapter!.vm_mac!]).to.deep.equal(GUEST_MAC);
    netdev.announceMac('02:00:00:00:00:07');
    expect([...emu.network_adapter!.vm_mac!]).to.deep.equal([2, 0, 0, 0, 0, 7]);
  });

  it('inbrowser_adapter_carries_frames_both_ways_over_broadcast_channel', async () => {
    // Node 20 has a global BroadcastChannel; v86's inbrowser adapter uses `v86-inbrowser-<id>`.
    emu = emulator({ net_device: { type: 'none', relay_url: 'inbrowser' } });
    netdev = new V86BusNetdev({ emulator: emu });
    const peer = new RecordingPeer();
    netdev.attach(peer);
    await loaded(emu);
    const hub = new BroadcastChannel('v86-inbrowser-0');
    try {
      const heard = new Promise<Uint8Array>((resolve) => {
        hub.onmessage = (ev) => resolve((ev as { data: Uint8Array }).data);
      });
      netdev.send(Uint8Array.of(1, 2, 3, 4));
      expect([...(await heard)]).to.deep.equal([1, 2, 3, 4]);
      hub.postMessage(Uint8Array.of(9, 8, 7));
      for (let i = 0; i < 100 && peer.received.length === 0; i++) await turn();
      expect(peer.received.map((f) => [...f])).to.deep.equal([[9, 8, 7]]);
    } finally {
      hub.close();
    }
  });
});
