// The rx-filter-changed event latch (QEMU's NIC_RX_FILTER_CHANGED contract; the changes it reports
// are VIRTIO 1.2 §5.1.6.5.1–§5.1.6.5.3 commands): at most one event until management queries the
// filter. Armed at creation; a change fires and disarms it; a query re-arms it. Device reset neither
// fires nor re-arms (QEMU keeps the flag across reset).

/** Payload of `rx-filter-changed`, as QEMU's NIC_RX_FILTER_CHANGED data. */
export interface RxFilterChangedEvent {
  /** The net client name (the device `id`). */
  name: string;
  /** QOM path of the virtio backend of a device created with `-device …,id=<id>`. */
  path: string;
}

/** The event payload for the device whose id is `id`. */
export function rxFilterChangedEvent(id: string): RxFilterChangedEvent {
  return { name: id, path: `/machine/peripheral/${id}/virtio-backend` };
}

export class ChangeLatch {
  private isArmed = true;

  /** True when the next change will fire. */
  get armed(): boolean {
    return this.isArmed;
  }

  /**
   * Records a change. Returns true exactly when the caller must emit the event now (the latch was
   * armed); the latch is then disarmed until `rearm()`.
   */
  trigger(): boolean {
    if (!this.isArmed) return false;
    this.isArmed = false;
    return true;
  }

  /** Called by every query of the rx filter. */
  rearm(): void {
    this.isArmed = true;
  }
}
