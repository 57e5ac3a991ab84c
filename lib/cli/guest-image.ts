// The Linux guest that `virtio-net guest` and the conformance tests boot in v86 (no VIRTIO section:
// Debian packaging; what the guest needs is in shared/design/REAL-GUEST.md).
//
// Data flow: apt's index for i386 (amd64 for the QEMU reference guest) with a private list
// directory and options, so the system's package configuration is untouched → resolve
// `linux-image-686` (`-amd64`) to the kernel package (bookworm's 6.1, or with kernel '6.5' the one
// in bookworm-backports, from a second private index of that suite only) → `apt-get download` the
// kernel, `busybox-static`, the network tools (GUEST_TOOLS: iproute2, ethtool, iperf3, iputils-ping)
// with every library package their Depends reach (Section libs, followed transitively) and, for
// v86, `seabios` → check each .deb's SHA256 against the index → `dpkg-deb -x` → an initramfs (newc
// cpio: busybox, the tools, the shared libraries their ELF DT_NEEDED lists reach (guest-elf.ts)
// in /lib/<multiarch triplet>, the dynamic loader at its PT_INTERP path, the virtio/8021q module
// chain, scripts/guest/init) → the cache directory `${XDG_CACHE_HOME:-~/.cache}/virtio-net-model/guest/`.
// One cache subdirectory per architecture, kernel and profile (`image-[amd64-][k65-][ipvs-]<recipe>`);
// a cached image whose recipe (init script, module list, tools, kernel, profile, builder version)
// is unchanged is reused without touching the network, and a new build removes only the earlier
// recipes of its own variant.
//
// The amd64 image has a second profile, "ipvs" (the IPVS tests, test/guest/qemu-ipvs.test.ts):
// the same image plus the kernel's ip_vs module and schedulers (their dependencies resolved
// from each module's .modinfo `depends=`, loaded by /init in that order), Debian's `ipvsadm`
// with the shared libraries its DT_NEEDED reach (the same closure as the tools'), and `nlrelay` (scripts/guest/nlrelay.c, compiled here with
// `cc -static`) which carries one netlink request from the serial console to the kernel.
//
// The parts: guest-apt.ts (the private package indexes, downloads, kernel resolution),
// guest-initramfs.ts (the initramfs from the extracted packages), guest-image-error.ts.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpioEntry } from './guest-cpio.js';
import { downloadVerified, indexEntries, libraryClosure, onPath, privateIndex, resolveKernel, resolveKernelLine, run } from './guest-apt.js';
import { GuestImageError } from './guest-image-error.js';
import { initramfs, readOrFail } from './guest-initramfs.js';
import type { ProfileExtra } from './guest-initramfs.js';

export { GuestImageError } from './guest-image-error.js';
export { moduleDepends, uniquePaths } from './guest-initramfs.js';

/** Modules in load order (no modules.dep in a `dpkg -x` tree; REAL-GUEST.md). */
export const GUEST_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_legacy_dev',
  'virtio_pci_modern_dev',
  'virtio_pci',
  'failover',
  'net_failover',
  'virtio_net',
  'llc',
  'stp',
  'garp',
  'mrp',
  '8021q',
] as const;

/** The image's contents beyond the base: 'ipvs' (amd64 only) adds IPVS, ipvsadm and nlrelay. */
export type GuestProfile = 'base' | 'ipvs';
/**
 * Modules the ipvs profile adds (their dependencies are found in the .ko files). crc32c_generic
 * comes first: libcrc32c (under nf_conntrack) asks the crypto API for "crc32c", which without
 * modprobe in the guest nobody loads on demand (it is a softdep, not a depends=).
 */
export const IPVS_MODULES = ['crc32c_generic', 'ip_vs', 'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_lc', 'ip_vs_wlc', 'ip_vs_sh'] as const;
/** Debian packages the ipvs profile adds: ipvsadm and the shared libraries it links. */
export const IPVS_PACKAGES = ['ipvsadm', 'libc6', 'libnl-3-200', 'libnl-genl-3-200', 'libpopt0'] as const;

/**
 * The real network tools in the guest: Debian package → the programs taken from it (searched in
 * bin, sbin, usr/bin, usr/sbin). They go to /usr/local/bin, which scripts/guest/init puts first on
 * PATH, ahead of busybox's applets of the same names.
 */
export const GUEST_TOOLS: Readonly<Record<string, readonly string[]>> = {
  iproute2: ['ip'],
  ethtool: ['ethtool'],
  iperf3: ['iperf3'],
  'iputils-ping': ['ping'],
};

/** Bump when the image layout changes, so cached images are rebuilt. */
const BUILDER_VERSION = 2;
/**
 * Guest architectures: i386 is what v86 runs; amd64 is what the QEMU reference guest runs
 * (REAL-GUEST.md). The metapackage names the current kernel; it is resolved from that
 * architecture's own index (the i386 index can lag amd64 by a revision).
 */
export type GuestArch = 'i386' | 'amd64';
/**
 * Guest kernels: bookworm's (default) or bookworm-backports' 6.5 (REAL-GUEST.md: NOTF_COAL and
 * VQ_NOTF_COAL). The backports index is a second private index of that suite alone.
 */
export type GuestKernel = '6.1' | '6.5';
export const GUEST_KERNELS: readonly GuestKernel[] = ['6.1', '6.5'];
const BACKPORTS_SOURCE = 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main';
const BUSYBOX = 'busybox-static';
const SEABIOS = 'seabios';
/** What the boot needs from seabios: the BIOS and the VGA option ROM v86 expects. */
const SEABIOS_FILES = { bios: 'usr/share/seabios/bios.bin', vgaBios: 'usr/share/seabios/vgabios-stdvga.bin' } as const;

/** A built guest image: absolute paths of what v86 boots. */
export interface GuestImage {
  arch: GuestArch;
  profile: GuestProfile;
  /** Which kernel line: '6.1' (bookworm) or '6.5' (bookworm-backports). */
  kernel: GuestKernel;
  dir: string;
  bzimage: string;
  initrd: string;
  bios: string;
  vgaBios: string;
  /** e.g. "6.1.0-50-686". */
  kernelRelease: string;
  /** Package name → version that went into the image. */
  packages: Record<string, string>;
  /** Size of the initramfs in bytes. */
  initrdBytes: number;
}

export interface BuildGuestImageOptions {
  /** Default i386 (v86). amd64 images carry no BIOS (QEMU has its own): bios/vgaBios are empty paths. */
  arch?: GuestArch;
  /** Default 'base'; 'ipvs' needs arch amd64 and a host C compiler (`cc`, Debian gcc + libc6-dev). */
  profile?: GuestProfile;
  /** Default '6.1' (bookworm); '6.5' takes bookworm-backports' kernel. */
  kernel?: GuestKernel;
  /** Rebuild even when a cached image matches. */
  force?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Cache directory (default `${XDG_CACHE_HOME:-~/.cache}/virtio-net-model/guest`). */
  cacheDir?: string;
}

/** `${XDG_CACHE_HOME:-~/.cache}/virtio-net-model/guest`. */
export function guestCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  const base = xdg !== undefined && xdg.length > 0 ? xdg : join(homedir(), '.cache');
  return join(base, 'virtio-net-model', 'guest');
}

/** A file shipped in scripts/guest/ (searched from the source and the built layouts). */
function guestScriptFile(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const p = join(here, up, 'scripts', 'guest', name);
    if (existsSync(p)) return p;
  }
  throw new GuestImageError('guest-image.content', `scripts/guest/${name} not found above ${here}`);
}

/** The init script shipped in scripts/guest/. */
export function guestInitScript(): string {
  return readFileSync(guestScriptFile('init'), 'utf8');
}

/** Hash of everything that decides the image's content apart from the downloaded packages. */
function recipe(init: string, profile: GuestProfile, kernel: GuestKernel): string {
  const tools = Object.entries(GUEST_TOOLS).map(([p, bins]) => `${p}:${bins.join(',')}`).join(' ');
  const h = createHash('sha256').update(`${BUILDER_VERSION}\n${GUEST_MODULES.join(' ')}\n${tools}\nkernel ${kernel}\n${init}`);
  if (profile === 'ipvs') h.update(`\nipvs ${IPVS_MODULES.join(' ')} ${IPVS_PACKAGES.join(' ')}\n${readFileSync(guestScriptFile('nlrelay.c'), 'utf8')}`);
  return h.digest('hex').slice(0, 16);
}

/**
 * What a cache directory's name starts with for this architecture, kernel and profile (the
 * 16-digit recipe hash follows): i386 with the default kernel and profile keeps the original
 * "image-". Each part ends in '-' and the hash has none, so no prefix plus a hash is another's name.
 */
function imagePrefix(arch: GuestArch, profile: GuestProfile, kernel: GuestKernel): string {
  return `image-${arch === 'i386' ? '' : `${arch}-`}${kernel === '6.1' ? '' : `k${kernel.replace('.', '')}-`}${profile === 'base' ? '' : `${profile}-`}`;
}

/**
 * Whether cache entry `name` is an image of this architecture, profile and kernel (of any recipe):
 * what a new build of that variant may delete. Another variant's image never matches.
 */
export function isImageOf(name: string, arch: GuestArch, profile: GuestProfile, kernel: GuestKernel): boolean {
  const prefix = imagePrefix(arch, profile, kernel);
  return name.startsWith(prefix) && /^[0-9a-f]{16}$/.test(name.slice(prefix.length));
}

function imageDirName(arch: GuestArch, profile: GuestProfile, kernel: GuestKernel, init: string): string {
  return imagePrefix(arch, profile, kernel) + recipe(init, profile, kernel);
}

/** The cached image for the current recipe, or null (nothing is downloaded). */
export function findGuestImage(cacheDir = guestCacheDir(), arch: GuestArch = 'i386', profile: GuestProfile = 'base', kernel: GuestKernel = '6.1'): GuestImage | null {
  const dir = join(cacheDir, imageDirName(arch, profile, kernel, guestInitScript()));
  const manifest = join(dir, 'image.json');
  if (!existsSync(manifest)) return null;
  try {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as Pick<GuestImage, 'kernelRelease' | 'packages'>;
    const img = imageAt(arch, profile, kernel, dir, m.kernelRelease, m.packages);
    for (const f of [img.bzimage, img.initrd, img.bios, img.vgaBios]) if (f !== '' && !existsSync(f)) return null;
    return img;
  } catch {
    return null;
  }
}

function imageAt(arch: GuestArch, profile: GuestProfile, kernel: GuestKernel, dir: string, kernelRelease: string, packages: Record<string, string>): GuestImage {
  const initrd = join(dir, 'initrd.cpio');
  return {
    arch,
    profile,
    kernel,
    dir,
    bzimage: join(dir, 'bzImage'),
    initrd,
    bios: arch === 'i386' ? join(dir, 'bios.bin') : '',
    vgaBios: arch === 'i386' ? join(dir, 'vgabios.bin') : '',
    kernelRelease,
    packages,
    initrdBytes: existsSync(initrd) ? lstatSync(initrd).size : 0,
  };
}

/** The cached image, or builds it (downloads about 70 MB once). */
export function buildGuestImage(options: BuildGuestImageOptions = {}): GuestImage {
  const cacheDir = options.cacheDir ?? guestCacheDir();
  const arch = options.arch ?? 'i386';
  if (arch !== 'i386' && arch !== 'amd64') throw new TypeError(`buildGuestImage: options.arch must be i386 or amd64, got ${String(arch)}`);
  const profile = options.profile ?? 'base';
  if (profile !== 'base' && !(profile === 'ipvs' && arch === 'amd64')) {
    throw new TypeError(`buildGuestImage: options.profile must be base, or ipvs with arch amd64, got ${String(profile)} (${arch})`);
  }
  const kernel = options.kernel ?? '6.1';
  if (!GUEST_KERNELS.includes(kernel)) throw new TypeError(`buildGuestImage: options.kernel must be one of ${GUEST_KERNELS.join(', ')}, got ${String(kernel)}`);
  const log = options.log ?? ((): void => {});
  if (options.force !== true) {
    const cached = findGuestImage(cacheDir, arch, profile, kernel);
    if (cached !== null) return cached;
  }
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb']) {
    if (!onPath(tool)) throw new GuestImageError('guest-image.no-apt', `${tool} is not on PATH: the guest image is built from Debian packages`);
  }
  const init = guestInitScript();
  mkdirSync(cacheDir, { recursive: true });
  const aptOptions = privateIndex(join(cacheDir, arch === 'i386' ? 'apt' : `apt-${arch}`), arch, null);
  log(`guest image: updating a private ${arch} package index`);
  // A failed secondary index (e.g. a mirror mid-sync) is not fatal: what matters is that the
  // packages below resolve, which the next steps check.
  const update = run('apt-get', [...aptOptions, '-q', 'update'], { allowFailure: true });
  let kernelOptions = aptOptions;
  let kernelErrors = update.stderr;
  if (kernel === '6.5') {
    kernelOptions = privateIndex(join(cacheDir, `apt-${arch}-backports`), arch, BACKPORTS_SOURCE);
    log(`guest image: updating a private ${arch} bookworm-backports index`);
    kernelErrors = run('apt-get', [...kernelOptions, '-q', 'update'], { allowFailure: true }).stderr;
  }
  const kernelPkg = kernel === '6.1' ? resolveKernel(kernelOptions, arch, kernelErrors) : resolveKernelLine(kernelOptions, arch, kernel, kernelErrors);
  const kernelRelease = kernelPkg.replace(/^linux-image-/, '');
  if (!kernelRelease.startsWith(`${kernel}.`)) {
    throw new GuestImageError('guest-image.index', `asked for kernel ${kernel}, but the ${kernel === '6.1' ? 'bookworm' : 'bookworm-backports'} ${arch} index names ${kernelPkg}`);
  }
  const work = mkdtempSync(join(cacheDir, 'build-'));
  try {
    const tools = Object.keys(GUEST_TOOLS);
    const programs = profile === 'ipvs' ? [...tools, 'ipvsadm'] : tools;
    const fromMain = [...new Set([
      BUSYBOX,
      ...programs,
      ...(profile === 'ipvs' ? IPVS_PACKAGES : []),
      ...libraryClosure(aptOptions, programs),
      ...(arch === 'i386' ? [SEABIOS] : []),
    ])];
    const packages: Record<string, string> = {};
    const debs: string[] = [];
    for (const [opts, names] of [[kernelOptions, [kernelPkg]], [aptOptions, fromMain]] as const) {
      const metas = indexEntries(opts, names);
      log(`guest image: downloading ${names.map((n) => `${n} ${metas.get(n)!.version}`).join(', ')}`);
      debs.push(...downloadVerified(opts, metas, work));
      for (const [n, m] of metas) packages[n] = m.version;
    }
    const root = join(work, 'root');
    mkdirSync(root);
    for (const deb of debs) run('dpkg-deb', ['-x', deb, root]);
    const out = join(work, 'out');
    mkdirSync(out);
    const img = imageAt(arch, profile, kernel, out, kernelRelease, packages);
    copyFrom(root, `boot/vmlinuz-${kernelRelease}`, img.bzimage);
    if (arch === 'i386') {
      copyFrom(root, SEABIOS_FILES.bios, img.bios);
      copyFrom(root, SEABIOS_FILES.vgaBios, img.vgaBios);
    }
    const extra = profile === 'ipvs' ? ipvsEntries(root, work) : { entries: [], modules: [] };
    const cpio = initramfs(root, arch, kernelRelease, init, { tools: GUEST_TOOLS, modules: GUEST_MODULES }, extra);
    writeFileSync(img.initrd, cpio);
    log(`guest image: initramfs ${(cpio.length / 1024 / 1024).toFixed(1)} MiB`);
    writeFileSync(join(out, 'image.json'), JSON.stringify({ arch, profile, kernel, kernelRelease, packages, recipe: recipe(init, profile, kernel) }, null, 2) + '\n');
    const final = join(cacheDir, imageDirName(arch, profile, kernel, init));
    // Another process (a parallel test run) may have finished the same image meanwhile: keep
    // that one, which may be in use, rather than replacing it under its feet.
    const raced = findGuestImage(cacheDir, arch, profile, kernel);
    if (raced !== null && options.force !== true) return raced;
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    // Images of earlier recipes (same architecture, profile and kernel) are never used again.
    for (const d of readdirSync(cacheDir)) {
      if (isImageOf(d, arch, profile, kernel) && join(cacheDir, d) !== final) rmSync(join(cacheDir, d), { recursive: true, force: true });
    }
    log(`guest image: ready in ${final}`);
    return imageAt(arch, profile, kernel, final, kernelRelease, packages);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The ipvs profile: ipvsadm (its shared libraries and the loader come with the tools', by the
 * same ELF closure), nlrelay, the IPVS modules.
 */
function ipvsEntries(root: string, work: string): ProfileExtra {
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'sbin' },
    { kind: 'file', path: 'sbin/ipvsadm', data: readOrFail(join(root, 'sbin', 'ipvsadm')), mode: 0o755 },
  ];
  const relay = join(work, 'nlrelay');
  try {
    execFileSync('cc', ['-static', '-Os', '-Wall', '-o', relay, guestScriptFile('nlrelay.c')], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new GuestImageError('guest-image.compile', `cc -static scripts/guest/nlrelay.c failed (Debian gcc and libc6-dev): ${err.stderr?.toString().trim() || err.message}`);
  }
  entries.push({ kind: 'file', path: 'bin/nlrelay', data: readFileSync(relay), mode: 0o755 });
  return { entries, modules: IPVS_MODULES };
}

function copyFrom(root: string, rel: string, dest: string): void {
  writeFileSync(dest, readOrFail(join(root, rel)));
}
