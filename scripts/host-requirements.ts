// Everything outside Node and npm that the tests and benchmarks use, in one list: the programs
// they execute and the files they read, each with the Debian package that provides it, and the
// caches they fill. `scripts/setup-host.ts` (run by `npm test` before any test) installs and
// fetches exactly this; `test/host-requirements.test.ts` fails when a test executes a program
// that is not listed here, so a missing install step cannot hide behind a skip.

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A program some test or benchmark runs, and the Debian package that provides it. */
export interface HostProgram {
  readonly command: string;
  readonly pkg: string;
  /** Which tests need it and for what: printed in skip lines. */
  readonly usedBy: string;
  /** True when the tests that use it need root anyway (namespaces, TAP): no skip line without root. */
  readonly rootOnly?: boolean;
}

/** A file some test reads, and the Debian package that provides it. */
export interface HostFile {
  readonly path: string;
  readonly pkg: string;
  readonly usedBy: string;
}

export const HOST_PROGRAMS: readonly HostProgram[] = [
  { command: 'ip', pkg: 'iproute2', usedBy: 'the host tests (namespaces, veth, TAP, macvtap)', rootOnly: true },
  { command: 'bridge', pkg: 'iproute2', usedBy: 'the netlink tests (fdb and mdb readback)', rootOnly: true },
  { command: 'tc', pkg: 'iproute2', usedBy: 'the io_uring TAP test (a slow tbf queue that holds the TAP\'s writes: EAGAIN)', rootOnly: true },
  { command: 'nstat', pkg: 'iproute2', usedBy: 'the COLO real-stack test (TCP retransmission counters)', rootOnly: true },
  { command: 'ping', pkg: 'iputils-ping', usedBy: 'the scripted-guest TAP test (the host kernel pings the guest)', rootOnly: true },
  { command: 'sysctl', pkg: 'procps', usedBy: 'the TAP and COLO tests (forwarding, IPv6 off in a namespace)', rootOnly: true },
  { command: 'ethtool', pkg: 'ethtool', usedBy: 'the TAP checksum-offload test (tx checksumming off on a veth)', rootOnly: true },
  { command: 'tshark', pkg: 'tshark', usedBy: 'the filter, dump, rewriter and TAP offload checks (an independent pcap and checksum reader)' },
  { command: 'python3', pkg: 'python3', usedBy: "the raw-frame sender, the COLO peers and QEMU's python QMP client" },
  { command: 'qemu-system-x86_64', pkg: 'qemu-system-x86', usedBy: 'the QEMU 7.2 oracle, the differential test, the QMP wording test and the QEMU guest comparison' },
  { command: 'vde_switch', pkg: 'vde-switch', usedBy: 'the VDE tests (a switch in a temporary directory)' },
  { command: 'vde_plug', pkg: 'vdeplug', usedBy: 'VdeNetdev (--netdev vde) and its tests' },
  { command: 'chromium', pkg: 'chromium', usedBy: 'the `virtio-net web` page test (the page in headless Chromium through puppeteer-core)' },
  { command: 'cc', pkg: 'gcc', usedBy: 'the TAP benchmark (the C write()/read() baseline) and the IPVS guest image (nlrelay, `cc -static`)', rootOnly: true },
  { command: 'iperf3', pkg: 'iperf3', usedBy: 'the guest throughput benchmark (bench/guest.bench.ts, `npm run bench -- --only guest`: the host end of iperf3)', rootOnly: true },
  { command: 'passt', pkg: 'passt', usedBy: '`--netdev passt` (lib/netdev/passt-netdev.ts) and its real-guest test (DHCP and HTTP through passt)' },
  { command: 'setpriv', pkg: 'util-linux', usedBy: 'the passt test (runs `virtio-net guest --netdev passt` as nobody)', rootOnly: true },
];

export const HOST_FILES: readonly HostFile[] = [
  { path: '/etc/services', pkg: 'netbase', usedBy: 'the passthrough-list test (service names such as ssh)' },
  { path: '/usr/share/seabios/bios-256k.bin', pkg: 'seabios', usedBy: "QEMU's BIOS for the oracle and the QEMU guest" },
  { path: '/usr/include/stdio.h', pkg: 'libc6-dev', usedBy: 'the TAP benchmark (compiling the C baseline) and the IPVS guest image (nlrelay, linked statically)' },
  { path: '/boot/ipxe.lkrn', pkg: 'ipxe', usedBy: '`virtio-net guest --kernel ipxe` and its test (Debian\'s iPXE as a second real driver)' },
  { path: '/usr/share/seabios/bios.bin', pkg: 'seabios', usedBy: 'the BIOS v86 boots iPXE with (`--kernel ipxe`)' },
  { path: '/usr/share/seabios/vgabios-stdvga.bin', pkg: 'seabios', usedBy: 'the VGA BIOS v86 boots iPXE with (`--kernel ipxe`; iPXE prints to the screen)' },
];

/**
 * Programs every machine that runs this project has without a setup step: Node and npm
 * themselves, and Debian's essential and required packages (dash/bash, apt, dpkg, debconf, coreutils, tar). Executing one of
 * these needs no entry above.
 */
export const BASE_COMMANDS: readonly string[] = ['node', 'npm', 'sh', 'bash', 'apt-get', 'apt-cache', 'dpkg-deb', 'debconf-set-selections', 'uname', 'tar', 'mkfifo'];

/** Debian's answer to tshark's install-time question (no setuid dumpcap: the tests only read files). */
export const DEBCONF_PRESEED = 'wireshark-common wireshark-common/install-setuid boolean false';

/** The distinct Debian packages of everything above, sorted. */
export function hostPackages(): string[] {
  return [...new Set([...HOST_PROGRAMS.map((p) => p.pkg), ...HOST_FILES.map((f) => f.pkg)])].sort();
}

/** True when `command` is an executable file in one of PATH's directories. */
export function onPath(command: string): boolean {
  return programPath(command) !== null;
}

/** The first executable `command` in PATH's directories, or null. */
export function programPath(command: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not in this directory
    }
  }
  return null;
}
