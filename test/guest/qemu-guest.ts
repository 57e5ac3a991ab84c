// The reference guest: QEMU 7.2 (TCG) booting Debian's amd64 kernel with the same initramfs recipe
// (scripts/guest/init, built by lib/cli/guest-image.ts with arch amd64), its virtio-net-pci on a
// TAP, its serial console on stdio and QMP on a unix socket (shared/design/REAL-GUEST.md).
// Used by the guest-level comparisons (qemu-compare.test.ts, qemu-rss.test.ts).

import { GuestConsole } from '../../lib/cli/guest-console.js';
import type { CommandResult } from '../../lib/cli/guest-console.js';
import { GuestImageError, buildGuestImage } from '../../lib/cli/guest-image.js';
import type { GuestImage, GuestProfile } from '../../lib/cli/guest-image.js';
import { skipBecause } from '../support/skip.js';
import { READY_MARKER } from '../../lib/cli/guest-vm.js';
import type { RxFilterInfo } from '../../devices/virtio-net/rx-filter-query.js';
import { QEMU_BINARY, QemuProcess, findOnPath } from '../support/qemu-process.js';
import { QmpClient, type QmpEvent } from '../support/qemu-qmp.js';

/** The image carries iproute2, ethtool, iperf3 and their libraries (14 MiB of initramfs to unpack under TCG). */
const BOOT_TIMEOUT_MS = 300_000;
const QMP_TIMEOUT_MS = 10_000;

export class QemuGuest {
  private constructor(
    private readonly proc: QemuProcess,
    private readonly qmp: QmpClient,
    private readonly console: GuestConsole,
    readonly bootMs: number,
  ) {}

  /** Why QEMU cannot run here (the host setup step, scripts/setup-host.ts, installs it), or null. */
  static skipReason(): string | null {
    return findOnPath(QEMU_BINARY) === null ? `${QEMU_BINARY} is not installed (Debian package qemu-system-x86; \`npm run setup\` as root installs it)` : null;
  }

  /**
   * The amd64 reference image (of `profile`) for a QEMU test's `before`, or a skip naming why there
   * is none: QEMU missing or the image not buildable here.
   */
  static imageOrSkip(ctx: Mocha.Context, profile?: GuestProfile): GuestImage {
    const why = QemuGuest.skipReason();
    if (why !== null) skipBecause(ctx, why);
    try {
      return buildGuestImage({ arch: 'amd64', ...(profile === undefined ? {} : { profile }) });
    } catch (e) {
      if (!(e instanceof GuestImageError)) throw e;
      skipBecause(ctx, `the amd64${profile === undefined ? '' : ` ${profile}`} reference image cannot be built: ${e.message}`);
    }
  }

  /** Boots the guest with its NIC (id nic0) on TAP `ifname`, which QEMU creates. */
  static boot(image: GuestImage, ifname: string, mac: string): Promise<QemuGuest> {
    return QemuGuest.bootWith(image, { netdev: `tap,id=hostnet0,ifname=${ifname},script=no,downscript=no`, mac });
  }

  /**
   * Boots the guest with its NIC (id nic0) on `netdev` (a `-netdev` value whose id is hostnet0,
   * e.g. `dgram,id=hostnet0,local.type=inet,…`); `append` adds kernel command line words (e.g.
   * `vnm.ip=10.0.2.2/24`, which scripts/guest/init applies to eth0); `bootTimeoutMs` (default
   * 120 s) bounds the wait for the ready marker; `device` adds virtio-net-pci properties (e.g.
   * `mq=on,rss=on,hash=on,vectors=6`); `args` adds QEMU options (e.g. `-smp 2`, `-trace …`).
   */
  static async bootWith(image: GuestImage, options: { netdev: string; mac: string; append?: string; bootTimeoutMs?: number; device?: string; args?: string[] }): Promise<QemuGuest> {
    const { netdev, mac, append, device } = options;
    const started = Date.now();
    const proc = new QemuProcess(QEMU_BINARY, (qmpPath) => [
      '-accel', 'tcg', '-cpu', 'max', '-m', '256', '-nodefaults', '-no-user-config',
      '-display', 'none', '-serial', 'stdio',
      '-kernel', image.bzimage, '-initrd', image.initrd,
      '-append', `console=ttyS0 tsc=reliable mitigations=off${append === undefined ? '' : ` ${append}`}`,
      '-netdev', netdev,
      '-device', `virtio-net-pci,netdev=hostnet0,id=nic0,mac=${mac},romfile=${device === undefined ? '' : `,${device}`}`,
      '-qmp', `unix:${qmpPath},server=on,wait=off`,
      ...(options.args ?? []),
    ]);
    const console = new GuestConsole((text) => proc.child.stdin.write(text));
    proc.child.stdout.on('data', (chunk: Buffer) => {
      for (const b of chunk) console.feed(b);
    });
    try {
      await console.waitFor(READY_MARKER, options.bootTimeoutMs ?? BOOT_TIMEOUT_MS);
      const qmp = await QmpClient.connect(proc.qmpPath, { timeoutMs: QMP_TIMEOUT_MS, context: () => proc.context() });
      return new QemuGuest(proc, qmp, console, Date.now() - started);
    } catch (e) {
      await proc.stop();
      throw new Error(`QEMU guest did not boot: ${(e as Error).message}\n${proc.context()}\n--- console ---\n${console.transcript().slice(-2000)}`);
    }
  }

  run(command: string, timeoutMs?: number): Promise<CommandResult> {
    return this.console.run(command, timeoutMs);
  }

  /** What QEMU wrote to stderr so far (its warnings). */
  get stderrText(): string {
    return this.proc.stderrText;
  }

  /** QEMU's own QMP events so far, oldest first. */
  get events(): readonly QmpEvent[] {
    return this.qmp.events;
  }

  queryRxFilter(): Promise<RxFilterInfo> {
    return this.qmp.execute<RxFilterInfo[]>('query-rx-filter', { name: 'nic0' }).then((r) => r[0]!);
  }

  async stop(): Promise<void> {
    this.qmp.close();
    await this.proc.stop();
  }
}
