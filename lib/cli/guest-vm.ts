// A Linux guest in v86 with a VirtioNetDevice attached (VIRTIO 1.2 §4.1 via lib/hypervisors/v86.ts;
// §5.1 the device). Shared by `virtio-net guest` and the guest conformance tests.
//
// Data flow: image (guest-image.ts) → v86 boots SeaBIOS → bzImage + initramfs → /init loads the
// virtio chain and prints READY_MARKER on ttyS0 → GuestConsole runs shell commands over the serial
// line. The NIC is a VirtioNetDevice on `netdev` (default: a MemoryNetdev with a SimPeer answering
// ARP and ping at 10.0.2.2).
// With `bare`, the kernel is not Linux (iPXE: lib/cli/ipxe.ts): the same BIOS boots it with no
// Linux command line, boot() resolves once the machine runs, and `onScreenChar` reads its VGA text.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { V86 } from 'v86';
import { VirtioNetDevice } from '../../devices/virtio-net/virtio-net-device.js';
import type { VirtioNetOptions } from '../../devices/virtio-net/net-options.js';
import { MemoryNetdev } from '../netdev/memory-netdev.js';
import type { Netdev } from '../netdev/netdev.js';
import { SimPeer } from '../netdev/sim-peer.js';
import { attachToV86 } from '../hypervisors/v86.js';
import type { V86Attachment, V86EmulatorLike } from '../hypervisors/v86.js';
import { V86BuiltinNic } from '../hypervisors/v86-builtin-nic.js';
import type { V86BuiltinEmulator } from '../hypervisors/v86-builtin-nic.js';
import { macFromText } from '../base/mac.js';
import type { V86BusEmulator } from '../netdev/v86-bus-netdev.js';
import type { GuestImage } from './guest-image.js';
import { GuestConsole } from './guest-console.js';

/** What /init prints once eth0 exists and the shell is about to start. */
export const READY_MARKER = 'VIRTIO-NET-GUEST-READY';
/** Size of the blank disk `stateDisk` adds. */
const STATE_DISK_SIZE = 1 << 20;
/** Guest RAM: what REAL-GUEST.md measured with; the initramfs sits at 64 MiB. */
const MEMORY_SIZE = 256 << 20;
const BASE_CMDLINE = 'console=ttyS0 tsc=reliable mitigations=off';
/**
 * Boot to the ready marker takes ~10–15 s on an idle 2-core machine (the initramfs with the real
 * tools is 14 MiB); at load average 20–25 it was seen to take 100–280 s. Allow that.
 */
const BOOT_TIMEOUT_MS = 600_000;
/** The guest address the CLI configures (QEMU user-network's guest address). */
export const GUEST_IP = '10.0.2.15';
export const PEER_IP = '10.0.2.2';

/** Which NIC the guest gets: this project's device, or v86's own virtio-net (API.md `--nic`). */
export type GuestNic = 'model' | 'builtin';

export interface GuestVmOptions {
  image: GuestImage;
  /**
   * 'model' (default): the VirtioNetDevice on `netdev`. 'builtin': v86's own virtio-net device on
   * the same `netdev` (V86BuiltinNic); then `device` and `attachment` do not exist, and `legacy`,
   * `compat`, `restore` do not apply.
   */
  nic?: GuestNic;
  /**
   * Transitional device, driven by Linux's legacy driver (adds virtio_pci.force_legacy=1 unless
   * `modern` is false: then Linux finds no capabilities and falls back to its legacy driver itself).
   */
  legacy?: boolean;
  /**
   * Offer the modern interface (default true); `false` with `legacy: true` is a legacy-only device
   * (no virtio capabilities), so every driver takes its legacy path.
   */
  modern?: boolean;
  /**
   * Backend (default MemoryNetdev with a SimPeer), or a factory called with the emulator right after
   * it is constructed (for a V86BusNetdev, which needs the emulator's bus).
   */
  netdev?: Netdev | ((emulator: V86Instance) => Netdev);
  /**
   * v86's `net_device` option, e.g. `{ type: 'none', relay_url: 'fetch' }` to run one of v86's
   * network adapters without a NIC of v86's own. Default: absent, and v86 then builds its ne2k,
   * for which the guest's initramfs has no driver.
   */
  netDevice?: { type?: string; relay_url?: string; id?: number; [option: string]: unknown };
  mac?: string;
  compat?: 'qemu';
  /** The device's receive/transmit queue pairs (VirtioNetOptions.queuePairs; default 1). */
  queuePairs?: number;
  /** The device's `features` option (e.g. `{ enable: ['RSS'] }`). */
  features?: VirtioNetOptions['features'];
  /** Called with the device as soon as it exists, before the guest runs (tests hook its notify). */
  onDevice?: (device: VirtioNetDevice) => void;
  /** Net client id (default "nic0"). */
  id?: string;
  /** Extra kernel command line (e.g. `vnm.ip=10.0.2.15/24`). */
  cmdline?: string;
  /** How long the boot may take to reach READY_MARKER (default 600 s). */
  bootTimeoutMs?: number;
  /** Every byte the guest writes on its serial console. */
  onSerialByte?: (byte: number) => void;
  /**
   * Boot `image.bzimage` as a bare kernel that is not this image's Linux (iPXE, lib/cli/ipxe.ts):
   * no kernel command line but `cmdline`, and no READY_MARKER wait (boot() resolves once the
   * machine runs). Not with `restore`.
   */
  bare?: boolean;
  /** Every character written to the VGA text screen (v86's `screen-put-char`): row, column, code. */
  onScreenChar?: (row: number, col: number, code: number) => void;
  /**
   * Give the machine a blank primary IDE disk (`hda`, 1 MiB of zeros; the guest has no driver for
   * it). v86 0.5.462's restore_state() throws without one (lib/hypervisors/README.md), so a guest
   * that will be saved, and the machine a state is restored into, both need it. Implied by `restore`.
   */
  stateDisk?: boolean;
  /**
   * A state image from `saveState()` (of a guest booted with the same image and options, in this
   * process or another): restored right after the device is attached, instead of booting. The
   * guest then continues where it was saved (no READY_MARKER wait); the console starts afresh.
   */
  restore?: ArrayBuffer | Uint8Array;
}

export type V86Instance = InstanceType<typeof V86> & V86EmulatorLike & V86BusEmulator & V86BuiltinEmulator;

export class GuestVm {
  readonly nic: GuestNic;
  /** With nic 'builtin': the bridge between v86's NIC and the netdev; else null. */
  readonly builtin: V86BuiltinNic | null;
  readonly netdev: Netdev;
  readonly peer: SimPeer | null;
  readonly console: GuestConsole;
  readonly bootMs: number;

  private constructor(
    /** The v86 emulator (save_state / restore_state, its bus, …). */
    readonly emulator: V86Instance,
    parts: { device: VirtioNetDevice | null; attachment: V86Attachment | null; builtin: V86BuiltinNic | null; netdev: Netdev; peer: SimPeer | null; console: GuestConsole; bootMs: number },
  ) {
    this.nic = parts.builtin === null ? 'model' : 'builtin';
    this.builtin = parts.builtin;
    this.modelDevice = parts.device;
    this.modelAttachment = parts.attachment;
    this.netdev = parts.netdev;
    this.peer = parts.peer;
    this.console = parts.console;
    this.bootMs = parts.bootMs;
  }

  private readonly modelDevice: VirtioNetDevice | null;
  private readonly modelAttachment: V86Attachment | null;

  /** This project's device (nic 'model'); throws for v86's own NIC, which has no such object. */
  get device(): VirtioNetDevice {
    if (this.modelDevice === null) throw new Error("GuestVm: nic 'builtin' is v86's own virtio-net: it has no VirtioNetDevice (no rx filter, diagnostics or stats)");
    return this.modelDevice;
  }

  /** The device's PCI attachment (nic 'model'); throws for v86's own NIC. */
  get attachment(): V86Attachment {
    if (this.modelAttachment === null) throw new Error("GuestVm: nic 'builtin' is v86's own virtio-net: it is not attached through attachToV86");
    return this.modelAttachment;
  }

  /**
   * Boots the guest and resolves once /init printed READY_MARKER; with `restore`, restores the saved
   * machine instead and resolves once it runs again.
   */
  static async boot(options: GuestVmOptions): Promise<GuestVm> {
    const { image } = options;
    const started = Date.now();
    const legacy = options.legacy === true;
    const builtinNic = options.nic === 'builtin';
    if (options.nic !== undefined && options.nic !== 'model' && !builtinNic) throw new TypeError(`GuestVm.boot: nic must be 'model' or 'builtin', got ${String(options.nic)}`);
    if (builtinNic && (legacy || options.modern !== undefined || options.restore !== undefined || options.compat !== undefined)) {
      throw new TypeError("GuestVm.boot: nic 'builtin' (v86's own virtio-net, modern only) takes no legacy, modern, compat or restore");
    }
    const bare = options.bare === true;
    if (bare && options.restore !== undefined) throw new TypeError('GuestVm.boot: a bare kernel boots afresh; it takes no restore');
    const cmdline = (bare ? [options.cmdline ?? ''] : [BASE_CMDLINE, legacy && options.modern !== false ? 'virtio_pci.force_legacy=1' : '', options.cmdline ?? '']).filter((s) => s.length > 0).join(' ');
    const emulator = new V86({
      wasm_path: wasmPath(),
      bios: { buffer: arrayBuffer(image.bios) },
      vga_bios: { buffer: arrayBuffer(image.vgaBios) },
      bzimage: { buffer: arrayBuffer(image.bzimage, 4) },
      initrd: { buffer: arrayBuffer(image.initrd) },
      cmdline,
      memory_size: MEMORY_SIZE,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
      ...(options.stateDisk === true || options.restore !== undefined ? { hda: { buffer: new ArrayBuffer(STATE_DISK_SIZE) } } : {}),
      ...(options.netDevice !== undefined ? { net_device: options.netDevice } : builtinNic ? { net_device: { type: 'virtio' } } : {}),
    } as ConstructorParameters<typeof V86>[0]) as V86Instance;
    const given = options.netdev;
    const netdev = typeof given === 'function' ? given(emulator) : (given ?? new MemoryNetdev({ id: 'net0' }));
    const peer = given === undefined ? new SimPeer(netdev as MemoryNetdev) : null;
    const serial = new GuestConsole((text) => emulator.serial0_send(text));
    let device: VirtioNetDevice | null = null;
    let attachment: V86Attachment | null = null;
    let builtin: V86BuiltinNic | null = null;
    const loaded = new Promise<void>((resolve, reject) => {
      emulator.add_listener('emulator-loaded', () => {
        try {
          if (builtinNic) {
            builtin = new V86BuiltinNic(emulator, netdev, options.mac !== undefined ? macFromText(options.mac) : undefined);
            resolve();
            return;
          }
          attachment = attachToV86(emulator, (memory) => {
            device = new VirtioNetDevice({
              id: options.id ?? 'nic0',
              memory,
              netdev,
              ...(options.mac !== undefined ? { mac: options.mac } : {}),
              ...(options.compat !== undefined ? { compat: options.compat } : {}),
              ...(options.queuePairs !== undefined ? { queuePairs: options.queuePairs } : {}),
              ...(options.features !== undefined ? { features: options.features } : {}),
            });
            options.onDevice?.(device);
            return device;
          }, { legacy, ...(options.modern !== undefined ? { modern: options.modern } : {}) });
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    emulator.add_listener('serial0-output-byte', (byte: number) => {
      serial.feed(byte);
      options.onSerialByte?.(byte);
    });
    const onScreenChar = options.onScreenChar;
    if (onScreenChar !== undefined) emulator.add_listener('screen-put-char', ([row, col, code]: [number, number, number]) => onScreenChar(row, col, code));
    try {
      await loaded;
      if (options.restore !== undefined) {
        // After attachToV86 (the device's entry is taken back by the hooked cpu.set_state).
        const r = options.restore;
        await emulator.restore_state(r instanceof ArrayBuffer ? r : arrayBuffer(r));
        await emulator.run();
      } else if (bare) {
        await emulator.run();
      } else {
        const ready = serial.waitFor(READY_MARKER, options.bootTimeoutMs ?? BOOT_TIMEOUT_MS);
        await emulator.run();
        await ready;
      }
    } catch (e) {
      (builtin as V86BuiltinNic | null)?.close();
      await emulator.destroy().catch(() => undefined);
      throw new Error(`guest did not boot: ${(e as Error).message}\n--- serial console (last 2000 chars) ---\n${serial.transcript().slice(-2000)}`);
    }
    return new GuestVm(emulator, { device, attachment, builtin, netdev, peer, console: serial, bootMs: Date.now() - started });
  }

  /** Runs one shell command in the guest; resolves with its exit code and output. */
  run(command: string, timeoutMs?: number): Promise<{ exitCode: number; output: string }> {
    return this.console.run(command, timeoutMs);
  }

  /**
   * v86's state image of the whole machine with the device's state in it (attachToV86 adds it to
   * save_state). Restore it with `GuestVm.boot({ …same options, restore: bytes })`.
   */
  async saveState(): Promise<Uint8Array> {
    return new Uint8Array(await this.emulator.save_state());
  }

  /** Sends raw text to the serial console (interactive use). */
  send(text: string): void {
    this.emulator.serial0_send(text);
  }

  async stop(): Promise<void> {
    this.peer?.close();
    this.builtin?.close();
    await this.emulator.destroy();
    await this.netdev.close();
  }
}

/**
 * The bytes of `from` in a fresh ArrayBuffer, zero-padded to a multiple of `multiple` bytes (v86
 * 0.5.462 views the bzImage as 16- and 32-bit arrays and throws on a length that is not a multiple
 * of 4; Debian's ipxe.lkrn is 306521 bytes; the boot protocol's header gives the real size).
 */
function arrayBuffer(from: string | Uint8Array, multiple = 1): ArrayBuffer {
  const b = typeof from === 'string' ? readFileSync(from) : from;
  const padded = new Uint8Array(Math.ceil(b.byteLength / multiple) * multiple);
  padded.set(b);
  return padded.buffer;
}

function wasmPath(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve('v86');
  return main.replace(/libv86(-debug)?\.m?js$/, 'v86.wasm');
}
