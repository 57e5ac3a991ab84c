// Config `speed` and `duplex` (VIRTIO 1.3 §5.1.4, feature SPEED_DUPLEX): the `speed` / `duplex`
// options when given (QEMU's virtio-net properties of the same names), else what the backend
// reports (LinkSpeedCapable: a TAP reads its interface's /sys/class/net/X/speed and duplex, the
// values `ethtool X` prints), else unknown.
//
// §5.1.4.1: the device SHOULD NOT change them while VIRTIO_NET_S_LINK_UP is set, so the backend's
// values are read at construction and again each time the guest's link comes up (the device then
// raises the config interrupt it raises for the link anyway), never while it is up.

import type { LinkSpeed } from '../../lib/netdev/netdev.js';

/** §5.1.4: speed unknown. */
export const SPEED_UNKNOWN = 0xffffffff;
/** §5.1.4: duplex values (1 full, 0 half: Linux's and QEMU's reading; net-config.ts says why). */
export const DUPLEX_FULL = 1;
export const DUPLEX_HALF = 0;
export const DUPLEX_UNKNOWN = 0xff;
const SPEED_MAX = 0x7fffffff;

export class SpeedDuplex {
  private speedValue = SPEED_UNKNOWN;
  private duplexValue = DUPLEX_UNKNOWN;

  constructor(
    private readonly speedOption: number | undefined,
    private readonly duplexOption: 'full' | 'half' | undefined,
    /** The backend's reading, or null when it has none. */
    private readonly backend: (() => LinkSpeed) | null,
  ) {
    this.refresh();
  }

  /** Config `speed` now. */
  get speed(): number {
    return this.speedValue;
  }

  /** Config `duplex` now. */
  get duplex(): number {
    return this.duplexValue;
  }

  /** Takes the options, else the backend's values (call only while the guest's link is down). */
  refresh(): void {
    let from: LinkSpeed | null = null;
    if (this.backend !== null && (this.speedOption === undefined || this.duplexOption === undefined)) {
      try {
        from = this.backend();
      } catch {
        from = null; // LinkSpeedCapable never throws; a backend that does reports nothing
      }
    }
    const speed = this.speedOption ?? from?.speed;
    this.speedValue = speed !== undefined && Number.isInteger(speed) && speed >= 0 && speed <= SPEED_MAX ? speed : SPEED_UNKNOWN;
    const duplex = this.duplexOption ?? from?.duplex;
    this.duplexValue = duplex === 'full' ? DUPLEX_FULL : duplex === 'half' ? DUPLEX_HALF : DUPLEX_UNKNOWN;
  }
}
