// attachToV86 against a real (not booted) v86 0.5.462: configuration cycles and BAR I/O go through
// v86's own port dispatch (0xCF8/0xCFC and the BAR's ports) exactly as guest IN/OUT would, so the
// function, its BAR relocation, the INTx hook and the memory adapter are checked without a guest.

import { expect } from 'chai';
import { createRequire } from 'node:module';
import { V86 } from 'v86';
import { attachToV86, v86GuestMemory } from '../../../lib/hypervisors/v86.js';
import type { V86Attachment, V86Cpu } from '../../../lib/hypervisors/v86.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';

const PCI_CONFIG_ADDRESS = 0xcf8;
const PCI_CONFIG_DATA = 0xcfc;
const MAC = '52:54:00:12:34:56';

type Io = V86Cpu['io'] & {
  port_write32(port: number, v: number): void;
  port_read32(port: number): number;
  port_read8(port: number): number;
  port_write8(port: number, v: number): void;
  port_read16(port: number): number;
};
type Emu = InstanceType<typeof V86> & { v86: { cpu: V86Cpu & { io: Io } } };

function wasmPath(): string {
  return createRequire(import.meta.url).resolve('v86').replace(/libv86\.m?js$/, 'v86.wasm');
}

async function loadedEmulator(): Promise<Emu> {
  const emu = new V86({ wasm_path: wasmPath(), memory_size: 32 << 20, autostart: false, disable_keyboard: true, disable_mouse: true, disable_speaker: true }) as Emu;
  await new Promise<void>((resolve) => emu.add_listener('emulator-loaded', () => resolve()));
  return emu;
}

describe('attachToV86 (real v86, no guest)', function () {
  this.timeout(20_000);
  let emu: Emu;
  let io: Io;
  afterEach(async () => {
    await emu?.destroy();
  });

  function cfgRead(pciId: number, offset: number): number {
    io.port_write32(PCI_CONFIG_ADDRESS, (0x80000000 | (pciId << 8) | offset) | 0);
    return io.port_read32(PCI_CONFIG_DATA) >>> 0;
  }
  function cfgWrite(pciId: number, offset: number, value: number): void {
    io.port_write32(PCI_CONFIG_ADDRESS, (0x80000000 | (pciId << 8) | offset) | 0);
    io.port_write32(PCI_CONFIG_DATA, value | 0);
  }
  async function attach(legacy = false, modern?: boolean): Promise<{ a: V86Attachment; device: VirtioNetDevice }> {
    emu = await loadedEmulator();
    io = emu.v86.cpu.io;
    let device!: VirtioNetDevice;
    const a = attachToV86(emu, (memory) => (device = new VirtioNetDevice({ id: 'nic0', mac: MAC, memory, netdev: new MemoryNetdev() })), { legacy, ...(modern !== undefined ? { modern } : {}) });
    return { a, device };
  }

  it('function_answers_config_cycles_with_the_virtio_identity', async () => {
    const { a } = await attach();
    expect(a.pciId).to.equal(13 << 3);
    expect(cfgRead(a.pciId, 0)).to.equal((0x1041 << 16) | 0x1af4);
    expect(cfgRead(a.pciId, 0x2c) >>> 16).to.equal(0x1100); // modern subsystem ID
    expect(cfgRead(a.pciId, 0x3c) >> 8 & 0xff).to.equal(1); // INTA#
  });

  it('legacy_option_gives_the_transitional_device_id', async () => {
    const { a } = await attach(true);
    expect(cfgRead(a.pciId, 0) >>> 16).to.equal(0x1000);
    expect(cfgRead(a.pciId, 0x2c) >>> 16).to.equal(1); // subsystem ID = device type (§4.1.2.3)
  });

  it('modern_false_gives_a_legacy_only_function_without_capabilities_and_a_small_bar0', async () => {
    const { a, device } = await attach(true, false);
    expect(cfgRead(a.pciId, 0) >>> 16).to.equal(0x1000);
    expect((cfgRead(a.pciId, 0x04) >>> 16) & 0x10, 'status: capability list').to.equal(0);
    expect(cfgRead(a.pciId, 0x34) & 0xff, 'capabilities pointer').to.equal(0);
    cfgWrite(a.pciId, 0x10, 0xffff_ffff);
    const size = (~(cfgRead(a.pciId, 0x10) & ~0x3) + 1) >>> 0;
    expect(size).to.equal(a.transport.layout.barSize);
    expect(size).to.be.at.least(20 + device.configSize).and.below(2 * (20 + device.configSize));
    cfgWrite(a.pciId, 0x10, 0xb000);
    const macAt = 0xb000 + 20; // the legacy header's device config (§4.1.4.10)
    expect([0, 1, 2, 3, 4, 5].map((i) => io.port_read8(macAt + i))).to.deep.equal(MAC.split(':').map((h) => parseInt(h, 16)));
  });

  it('bar0_sizes_and_moves_with_firmware_writes_and_the_ports_follow', async () => {
    const { a } = await attach();
    const size = a.transport.layout.barSize;
    cfgWrite(a.pciId, 0x10, 0xffffffff);
    expect(cfgRead(a.pciId, 0x10)).to.equal((~(size - 1) | 1) >>> 0);
    cfgWrite(a.pciId, 0x10, 0xc000);
    expect(cfgRead(a.pciId, 0x10)).to.equal(0xc001);
    expect(a.ioBase).to.equal(0xc000);
    expect(a.transport.bars()[0]!.address).to.equal(0xc000);
    // The MAC is the first field of the device config structure.
    const macAt = 0xc000 + a.transport.layout.device!.offset;
    const mac = [0, 1, 2, 3, 4, 5].map((i) => io.port_read8(macAt + i).toString(16).padStart(2, '0')).join(':');
    expect(mac).to.equal(MAC);
    expect(io.port_read8(0xb000 + a.transport.layout.device!.offset)).to.equal(0xff); // the old place is empty
  });

  it('command_register_writes_reach_the_transport', async () => {
    const { a } = await attach();
    cfgWrite(a.pciId, 0x04, 0x0405); // IO | MASTER | INTx disable
    expect(a.transport.configRead(0x04, 2)).to.equal(0x0405);
    expect(cfgRead(a.pciId, 0x04) & 0xffff).to.equal(0x0405);
  });

  it('a_config_interrupt_raises_intx_and_reading_isr_lowers_it', async () => {
    const { a, device } = await attach();
    cfgWrite(a.pciId, 0x10, 0xc000);
    const pci = emu.v86.cpu.devices.pci;
    const seen: string[] = [];
    const raise = pci.raise_irq.bind(pci);
    const lower = pci.lower_irq.bind(pci);
    pci.raise_irq = (id: number) => {
      seen.push(`raise ${id}`);
      raise(id);
    };
    pci.lower_irq = (id: number) => {
      seen.push(`lower ${id}`);
      lower(id);
    };
    // A minimal driver over the BAR's ports (§3.1.1): ACKNOWLEDGE, DRIVER, features (VERSION_1,
    // MAC, STATUS), FEATURES_OK, DRIVER_OK. Common config: driver_feature_select 0x08,
    // driver_feature 0x0c, device_status 0x14 (§4.1.4.3).
    const common = 0xc000 + a.transport.layout.common!.offset;
    io.port_write8(common + 0x14, 1);
    io.port_write8(common + 0x14, 3);
    io.port_write32(common + 0x08, 1);
    io.port_write32(common + 0x0c, 1); // VERSION_1 (bit 32)
    io.port_write32(common + 0x08, 0);
    io.port_write32(common + 0x0c, (1 << 5) | (1 << 16)); // MAC, STATUS
    io.port_write8(common + 0x14, 0x0b);
    io.port_write8(common + 0x14, 0x0f);
    expect(device.status).to.equal(0x0f);
    device.setLink(false); // STATUS negotiated: a configuration change interrupt
    expect(seen).to.deep.equal([`raise ${a.pciId}`]);
    expect(cfgRead(a.pciId, 0x04) >>> 16 & 0x08).to.equal(0x08); // status: interrupt pending
    expect(io.port_read8(0xc000 + a.transport.layout.isr!.offset)).to.equal(2);
    expect(seen).to.deep.equal([`raise ${a.pciId}`, `lower ${a.pciId}`]);
    expect(a.interruptChanges).to.equal(2);
  });

  it('device_memory_is_v86_ram_with_jit_invalidation', async () => {
    const { device } = await attach();
    const cpu = emu.v86.cpu;
    const dirty: [number, number][] = [];
    const orig = cpu.jit_dirty_cache.bind(cpu);
    cpu.jit_dirty_cache = (s: number, e: number) => {
      dirty.push([s, e]);
      orig(s, e);
    };
    device.memory.writeU32(0x1000, 0xcafef00d);
    expect(cpu.mem8[0x1000]).to.equal(0x0d);
    expect(dirty).to.deep.equal([[0x1000, 0x1004]]);
  });

  it('bad_options_and_a_foreign_memory_throw_at_once_naming_the_option', async () => {
    emu = await loadedEmulator();
    const make = (memory: GuestMemory | ReturnType<typeof v86GuestMemory>) => new VirtioNetDevice({ id: 'n', memory, netdev: new MemoryNetdev() });
    expect(() => attachToV86(emu, make(new GuestMemory(1 << 20)))).to.throw(TypeError, /v86GuestMemory/);
    expect(() => attachToV86(emu, make(v86GuestMemory(emu)), { slot: 5 })).to.throw(RangeError, /options\.slot/);
    expect(() => attachToV86(emu, make(v86GuestMemory(emu)), { slot: 32 })).to.throw(RangeError, /options\.slot/);
    expect(() => attachToV86(emu, make(v86GuestMemory(emu)), { ioBase: 0x100 })).to.throw(RangeError, /options\.ioBase/);
    expect(() => attachToV86({}, make(v86GuestMemory(emu)))).to.throw(TypeError, /emulator-loaded/);
    attachToV86(emu, make(v86GuestMemory(emu)), { slot: 14, ioBase: 0xa000 });
    expect(() => attachToV86(emu, make(v86GuestMemory(emu)), { slot: 14, ioBase: 0xa800 })).to.throw(RangeError, /slot 14 is already taken/);
    expect(() => attachToV86(emu, make(v86GuestMemory(emu)), { slot: 15, ioBase: 0xa000 })).to.throw(RangeError, /already in use/);
  });
});
