// The device's state inside v86's own state image (API.md "Device state — save, restore, migrate";
// v86 0.5.462 src/state.js, src/cpu.js, src/pci.js).
//
// How v86 saves a machine: `emulator.save_state()` → save_object(cpu) → `cpu.get_state()`, one array
// with a fixed index per part (0..91 in 0.5.462; e.g. 48 = the PCI bus, 83 = v86's virtio-net),
// walked recursively: typed arrays go to the image's buffer block, arrays are recursed, numbers and
// strings go to its JSON block. `restore_state(image)` rebuilds the typed arrays and calls
// `cpu.set_state(array)`, which hands each index to its device. There is no registry for a foreign
// device, so the attachment wraps `get_state` / `set_state` on this CPU instance (chained: several
// attached devices each keep their own index) and keeps one entry at V86_STATE_INDEX_BASE + slot:
//
//   [STATE_TAG, STATE_FORMAT, pciId, device bytes, config bytes]
//
// The device bytes are device.saveState(). The config bytes are the function's 256-byte
// configuration space as the transport answers it. PCI placement stays v86's: v86 saves its own copy
// of the space with the PCI bus and, on restore, moves the I/O BAR's ports to the saved BAR0; the
// attachment then gives the transport BAR0 from v86's copy, and the command register and interrupt
// line from the config bytes — v86's copy is not the truth for those: its pci_write32 drops 32-bit
// writes to the command register (only 8/16-bit writes land there).
//
// Restore order: the entry is checked before v86 touches anything (a missing or malformed entry
// rejects restore_state with the emulator unchanged); then v86 restores the machine (guest RAM
// included), then device.restoreState(bytes), then `restored(config)`. With a device that cannot
// save, nothing is added to the image and v86 restores the rest as usual. A DeviceStateError from
// restoreState (API.md: the device is left exactly as it was) rejects restore_state too — by then
// v86 itself is restored.
//
// Use `await emulator.restore_state(image)` after attachToV86. v86's `initial_state` option restores
// before 'emulator-loaded', so before any device can be attached: it cannot carry this state.

/** The two calls API.md fixes for device state (implemented by the device; checked with hasDeviceState). */
export interface DeviceStateParticipant {
  saveState(): Uint8Array;
  restoreState(state: Uint8Array): void;
}

export function hasDeviceState(d: unknown): d is DeviceStateParticipant {
  const p = d as Partial<DeviceStateParticipant> | null;
  return typeof p === 'object' && p !== null && typeof p.saveState === 'function' && typeof p.restoreState === 'function';
}

/** The CPU methods v86's state machinery goes through (src/cpu.js; names kept in the minified build). */
export interface V86StateCpu {
  get_state(): unknown[];
  set_state(state: unknown[]): void;
}

/**
 * First index of the CPU state array this package uses (index = base + PCI slot). v86 0.5.462 uses
 * 0..91; 0x100 leaves room for v86 to grow, and a collision is detected (V86StateError).
 */
export const V86_STATE_INDEX_BASE = 0x100;
/** Marks an entry as this package's (an image is also readable by people: it is in the JSON block). */
export const STATE_TAG = 'virtio-net-model';
/** Layout of the entry above; bumped if the entry (not the device's bytes, which are versioned themselves) changes. */
export const STATE_FORMAT = 1;

export type V86StateErrorCode =
  /** The image has no entry for this device (saved before it was attached, or without state support). */
  | 'v86-state.missing'
  /** The entry is not [tag, format, pciId, device bytes, config bytes] as written above. */
  | 'v86-state.malformed'
  /** The entry was saved for a function at another PCI slot. */
  | 'v86-state.slot'
  /** The image carries device state but this device cannot restore it (no restoreState). */
  | 'v86-state.unsupported'
  /** v86 already uses the index this slot maps to. */
  | 'v86-state.index-taken';

export class V86StateError extends Error {
  override readonly name = 'V86StateError';
  constructor(
    readonly code: V86StateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface V86StateHook {
  /** Index in the CPU state array. */
  readonly index: number;
  readonly pciId: number;
  /** The device, or null when it cannot save (then nothing is added, and an image with an entry is refused). */
  readonly device: DeviceStateParticipant | null;
  /** The function's configuration space as the transport answers it (saved with the device). */
  readonly saveConfig: () => Uint8Array;
  /** After v86 and the device are restored, with the saved config bytes: resync the transport, re-announce, … */
  readonly restored: (config: Uint8Array) => void;
}

/** Wraps `cpu.get_state` / `cpu.set_state` so the device's state travels in v86's image. */
export function hookV86State(cpu: V86StateCpu, hook: V86StateHook): void {
  const { index, pciId, device, saveConfig, restored } = hook;
  const getState = cpu.get_state;
  const setState = cpu.set_state;
  cpu.get_state = function (this: V86StateCpu): unknown[] {
    const state = getState.call(this);
    if (device === null) return state;
    if (state[index] !== undefined) {
      throw new V86StateError('v86-state.index-taken', `attachToV86: v86 already uses index ${index} of its CPU state; this v86 is not the pinned 0.5.462`);
    }
    state[index] = [STATE_TAG, STATE_FORMAT, pciId, device.saveState(), saveConfig()];
    return state;
  };
  cpu.set_state = function (this: V86StateCpu, state: unknown[]): void {
    const entry = entryOf(state, index, pciId, device !== null);
    setState.call(this, state);
    if (device === null || entry === undefined) return;
    device.restoreState(entry.device);
    restored(entry.config);
  };
}

/** Bytes of a PCI configuration space. */
const PCI_CONFIG_SIZE = 256;

/** The entry at `index`, checked before anything is restored. */
function entryOf(state: unknown[], index: number, pciId: number, canRestore: boolean): { device: Uint8Array; config: Uint8Array } | undefined {
  const entry = Array.isArray(state) ? state[index] : undefined;
  if (entry === undefined || entry === null) {
    if (!canRestore) return undefined;
    throw new V86StateError('v86-state.missing', `restore_state: the image has no state for the virtio function at PCI slot ${pciId >> 3} (saved before attachToV86, or by a device without saveState)`);
  }
  if (!canRestore) {
    throw new V86StateError('v86-state.unsupported', `restore_state: the image carries state for the virtio function at PCI slot ${pciId >> 3}, but the attached device has no restoreState`);
  }
  if (
    !Array.isArray(entry) ||
    entry.length !== 5 ||
    entry[0] !== STATE_TAG ||
    entry[1] !== STATE_FORMAT ||
    !(entry[3] instanceof Uint8Array) ||
    !(entry[4] instanceof Uint8Array) ||
    entry[4].length !== PCI_CONFIG_SIZE
  ) {
    throw new V86StateError('v86-state.malformed', `restore_state: index ${index} of the image is not a ${STATE_TAG} entry of format ${STATE_FORMAT}`);
  }
  if (entry[2] !== pciId) {
    throw new V86StateError('v86-state.slot', `restore_state: the entry was saved for PCI slot ${Number(entry[2]) >> 3}, this function is at slot ${pciId >> 3}`);
  }
  return { device: entry[3], config: entry[4] };
}
