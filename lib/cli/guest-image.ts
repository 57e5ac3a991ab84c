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

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpioNewc } from './guest-cpio.js';
import { elfDeps, isElf } from './guest-elf.js';
import type { CpioEntry } from './guest-cpio.js';

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
const KERNEL_META: Record<GuestArch, { meta: string; flavour: string }> = {
  i386: { meta: 'linux-image-686', flavour: '686' },
  amd64: { meta: 'linux-image-amd64', flavour: 'amd64' },
};
/** Debian's multiarch directory of each architecture (where its dynamic loader looks first). */
const TRIPLET: Record<GuestArch, string> = { i386: 'i386-linux-gnu', amd64: 'x86_64-linux-gnu' };
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

/** Why the image could not be built: a stable code and a sentence for the user. */
export class GuestImageError extends Error {
  constructor(
    readonly code: 'guest-image.no-apt' | 'guest-image.index' | 'guest-image.download' | 'guest-image.checksum' | 'guest-image.content' | 'guest-image.compile',
    message: string,
  ) {
    super(message);
    this.name = 'GuestImageError';
  }
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
    const cpio = initramfs(root, arch, kernelRelease, init, extra);
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

/** What a profile adds to the initramfs: files, and modules loaded after the base chain. */
interface ProfileExtra {
  /** Files; a dynamically linked program among them gets its shared libraries like the tools. */
  entries: CpioEntry[];
  /** Module names; their dependencies are resolved from the .ko files. */
  modules: readonly string[];
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

/** A module's `depends=` from its .modinfo section (comma-separated names; empty: none). */
export function moduleDepends(ko: Uint8Array): string[] {
  const key = new TextEncoder().encode('depends=');
  for (let i = ko.indexOf(key[0]!); i >= 0; i = ko.indexOf(key[0]!, i + 1)) {
    if (i > 0 && ko[i - 1] !== 0) continue;
    let hit = true;
    for (let k = 1; k < key.length && hit; k++) hit = ko[i + k] === key[k];
    if (!hit) continue;
    const end = ko.indexOf(0, i);
    const value = new TextDecoder().decode(ko.subarray(i + key.length, end < 0 ? ko.length : end));
    return value.split(',').filter((m) => m.length > 0);
  }
  return [];
}

/** `wanted` and their dependencies, each after what it depends on, none of `loaded` repeated. */
function loadOrder(wanted: readonly string[], loaded: readonly string[], found: ReadonlyMap<string, string>, kernelRelease: string): string[] {
  const order: string[] = [];
  const done = new Set(loaded);
  const visit = (m: string, path: string[]): void => {
    if (done.has(m)) return;
    if (path.includes(m)) throw new GuestImageError('guest-image.content', `module dependency cycle: ${[...path, m].join(' -> ')}`);
    const p = found.get(m);
    if (p === undefined) throw new GuestImageError('guest-image.content', `module ${m}.ko not found in the ${kernelRelease} package`);
    for (const d of moduleDepends(readFileSync(p))) visit(d, [...path, m]);
    done.add(m);
    order.push(m);
  };
  for (const m of wanted) visit(m, []);
  return order;
}

/**
 * apt options for a private index of `arch` in `dir`, without touching dpkg's architectures or
 * the system's lists (REAL-GUEST.md). `source` null: the system's sources; else that one line only.
 */
function privateIndex(dir: string, arch: GuestArch, source: string | null): string[] {
  mkdirSync(join(dir, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  const options = [
    '-o', `APT::Architecture=${arch}`,
    '-o', `APT::Architectures=${arch}`,
    '-o', `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o', `Dir::Cache=${join(dir, 'cache')}`,
    '-o', 'Debug::NoLocking=1',
  ];
  if (source === null) return options;
  const list = join(dir, 'sources.list');
  const parts = join(dir, 'sources.list.d');
  mkdirSync(parts, { recursive: true });
  writeFileSync(list, `${source}\n`);
  return [...options, '-o', `Dir::Etc::SourceList=${list}`, '-o', `Dir::Etc::SourceParts=${parts}`];
}

/** Downloads every package of `metas` at its version into `work` and checks each SHA256 against the index; the .debs' paths. */
function downloadVerified(aptOptions: string[], metas: ReadonlyMap<string, IndexEntry>, work: string): string[] {
  const specs = [...metas].map(([n, m]) => `${n}=${m.version}`);
  try {
    run('apt-get', [...aptOptions, '-q', 'download', ...specs], { cwd: work });
  } catch (e) {
    throw new GuestImageError('guest-image.download', `apt-get download ${specs.join(' ')} failed: ${(e as Error).message}`);
  }
  const files = readdirSync(work);
  const paths: string[] = [];
  for (const [name, meta] of metas) {
    const file = files.find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
    if (file === undefined) throw new GuestImageError('guest-image.download', `apt-get download ${name} left no .deb in ${work}`);
    const path = join(work, file);
    const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
    if (sha !== meta.sha256) {
      throw new GuestImageError('guest-image.checksum', `${file}: SHA256 ${sha} differs from apt's index (${meta.sha256})`);
    }
    paths.push(path);
  }
  return paths;
}

/**
 * Every library package (index Section `libs`) the Depends and Pre-Depends of `roots` reach,
 * transitively, first alternative of each `|` group; other packages (debconf, adduser, …) are
 * not followed: the guest runs the programs, not their maintainer scripts. One index query per
 * level of the dependency tree.
 */
function libraryClosure(aptOptions: string[], roots: readonly string[]): string[] {
  const seen = new Set<string>(roots);
  const libs: string[] = [];
  let level = [...roots];
  while (level.length > 0) {
    const deps = new Set<string>();
    for (const entry of indexEntries(aptOptions, level).values()) for (const d of entry.depends) if (!seen.has(d)) deps.add(d);
    for (const d of deps) seen.add(d);
    const entries = indexEntries(aptOptions, [...deps], false);
    level = [...deps].filter((d) => entries.get(d)?.section === 'libs');
    libs.push(...level);
  }
  return libs;
}

interface IndexEntry {
  version: string;
  sha256: string;
  section: string;
  /** Package names of Depends and Pre-Depends, first alternative of each group. */
  depends: string[];
}

/** The index's candidate entry of each of `names` (one apt-cache call); `strict`: a missing one is an error. */
function indexEntries(aptOptions: string[], names: readonly string[], strict = true): Map<string, IndexEntry> {
  const found = new Map<string, IndexEntry>();
  if (names.length === 0) return found;
  const out = run('apt-cache', [...aptOptions, 'show', '--no-all-versions', ...names], { allowFailure: true }).stdout;
  for (const stanza of out.split(/\n\s*\n/)) {
    const name = /^Package: (.+)$/m.exec(stanza)?.[1];
    const version = /^Version: (.+)$/m.exec(stanza)?.[1];
    const sha256 = /^SHA256: ([0-9a-f]{64})$/m.exec(stanza)?.[1];
    if (name === undefined || version === undefined || sha256 === undefined || found.has(name)) continue;
    const depends: string[] = [];
    for (const field of ['Depends', 'Pre-Depends']) {
      const line = new RegExp(`^${field}: (.+)$`, 'm').exec(stanza)?.[1];
      if (line === undefined) continue;
      for (const group of line.split(',')) {
        const first = group.split('|')[0]!.trim().split(/[\s(:]/)[0]!;
        if (first.length > 0) depends.push(first);
      }
    }
    found.set(name, { version, sha256, section: /^Section: (.+)$/m.exec(stanza)?.[1] ?? '', depends });
  }
  if (strict) {
    const missing = names.filter((n) => !found.has(n));
    if (missing.length > 0) throw new GuestImageError('guest-image.index', `${missing.join(', ')} not in the private package index (no Version/SHA256)`);
  }
  return found;
}

/**
 * The initramfs: busybox, the tools and the profile's programs with the shared libraries they
 * load, the module chain and the profile's modules (flattened into /lib/modules), /init,
 * /dev/console. One entry per path (the first wins).
 */
function initramfs(root: string, arch: GuestArch, kernelRelease: string, init: string, extra: ProfileExtra): Uint8Array {
  const modRoot = join(root, 'lib', 'modules', kernelRelease, 'kernel');
  const libDir = `lib/${TRIPLET[arch]}`;
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'bin' },
    { kind: 'dir', path: 'dev' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'etc' },
    { kind: 'dir', path: 'lib' },
    { kind: 'dir', path: libDir },
    { kind: 'dir', path: 'lib/modules' },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    { kind: 'dir', path: 'usr' },
    { kind: 'dir', path: 'usr/local' },
    { kind: 'dir', path: 'usr/local/bin' },
    { kind: 'file', path: 'bin/busybox', data: readOrFail(join(root, 'bin', 'busybox')), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: new TextEncoder().encode(init), mode: 0o755 },
  ];
  // Shared libraries by soname, from the library directories of the extracted packages.
  const sonames = new Map<string, string>();
  for (const dir of [`lib/${TRIPLET[arch]}`, `usr/lib/${TRIPLET[arch]}`, 'lib', 'usr/lib', 'lib64']) {
    const d = join(root, dir);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) if (f.includes('.so') && !sonames.has(f)) sonames.set(f, join(d, f));
  }
  const wanted = new Set<string>();
  let interpreter: string | null = null;
  const need = (bytes: Uint8Array, what: string): void => {
    const deps = elfDeps(bytes, what);
    if (deps.interpreter !== null) interpreter ??= deps.interpreter;
    for (const so of deps.needed) {
      if (wanted.has(so)) continue;
      const path = sonames.get(so);
      if (path === undefined) throw new GuestImageError('guest-image.content', `${what} needs ${so}, which no downloaded library package holds`);
      wanted.add(so);
      need(resolvedRead(root, path), so);
    }
  };
  for (const [pkg, programs] of Object.entries(GUEST_TOOLS)) {
    for (const prog of programs) {
      const found = ['bin', 'sbin', 'usr/bin', 'usr/sbin'].map((d) => join(root, d, prog)).find((p) => existsSync(p));
      if (found === undefined) throw new GuestImageError('guest-image.content', `${prog} not found in the ${pkg} package`);
      const data = resolvedRead(root, found);
      if (!isElf(data)) throw new GuestImageError('guest-image.content', `${prog} from ${pkg} is not an ELF program`);
      need(data, prog);
      entries.push({ kind: 'file', path: `usr/local/bin/${prog}`, data, mode: 0o755 });
    }
  }
  for (const e of extra.entries) if (e.kind === 'file' && isElf(e.data)) need(e.data, e.path);
  if (interpreter !== null) {
    // The loader lives with the libraries; its PT_INTERP path is a link there.
    const interp = posix.normalize(interpreter).replace(/^\/+/, '');
    const base = posix.basename(interp);
    if (!sonames.has(base)) throw new GuestImageError('guest-image.content', `the dynamic loader ${interpreter} is in no downloaded package`);
    wanted.add(base);
    if (interp !== `${libDir}/${base}`) {
      const parent = posix.dirname(interp);
      if (parent !== 'lib') entries.push({ kind: 'dir', path: parent });
      entries.push({ kind: 'symlink', path: interp, target: `/${libDir}/${base}` });
    }
  }
  for (const so of [...wanted].sort()) entries.push({ kind: 'file', path: `${libDir}/${so}`, data: resolvedRead(root, sonames.get(so)!), mode: 0o755 });
  const found = new Map<string, string>();
  walk(modRoot, (p) => {
    const base = p.slice(p.lastIndexOf('/') + 1);
    // Dependencies name modules with '_' where the file may have '-'.
    if (base.endsWith('.ko')) found.set(base.slice(0, -3).replace(/-/g, '_'), p);
  });
  const modules = [...GUEST_MODULES, ...loadOrder(extra.modules, GUEST_MODULES, found, kernelRelease)];
  entries.push({ kind: 'file', path: 'etc/modules-order', data: new TextEncoder().encode(modules.join('\n') + '\n') }, ...extra.entries);
  for (const m of modules) {
    const p = found.get(m);
    if (p === undefined) throw new GuestImageError('guest-image.content', `module ${m}.ko not found in the ${kernelRelease} package`);
    entries.push({ kind: 'file', path: `lib/modules/${m}.ko`, data: readFileSync(p) });
  }
  return cpioNewc(uniquePaths(entries));
}

/** `entries` with each path once: the first entry of a path wins (a directory two parts create). */
export function uniquePaths(entries: readonly CpioEntry[]): CpioEntry[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    if (seen.has(e.path)) return false;
    seen.add(e.path);
    return true;
  });
}

/**
 * The bytes of `path` inside the extracted tree, following symlinks within `root` (an absolute
 * link target means root-relative there, never the host's file).
 */
function resolvedRead(root: string, path: string): Buffer {
  let p = path;
  for (let hops = 0; hops < 16; hops++) {
    if (!existsSync(p) && !isLink(p)) throw new GuestImageError('guest-image.content', `${p} missing from the extracted packages`);
    if (!isLink(p)) return readFileSync(p);
    const target = readlinkSync(p);
    p = target.startsWith('/') ? join(root, target) : join(dirname(p), target);
    if (!p.startsWith(root)) throw new GuestImageError('guest-image.content', `${path} links outside the extracted packages`);
  }
  throw new GuestImageError('guest-image.content', `${path}: too many symbolic links`);
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The newest `linux-image-<kernel>.N-…-<flavour>` package in the index (bookworm-backports has no
 * `linux-image-686` metapackage): names only, newest by apt's version order of the package names'
 * ABI part.
 */
function resolveKernelLine(aptOptions: string[], arch: GuestArch, kernel: GuestKernel, updateErrors: string): string {
  const { flavour } = KERNEL_META[arch];
  const out = run('apt-cache', [...aptOptions, 'pkgnames', `linux-image-${kernel}.`], { allowFailure: true }).stdout;
  const pattern = new RegExp(`^linux-image-${kernel.replace('.', '\\.')}\\.[0-9]+-[0-9a-z.~+]+-${flavour}$`);
  const names = out.split('\n').map((l) => l.trim()).filter((l) => pattern.test(l)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (names.length === 0) {
    throw new GuestImageError('guest-image.index', `no linux-image-${kernel}.*-${flavour} in the ${arch} bookworm-backports index (apt-get update: ${updateErrors.trim() || 'ok'})`);
  }
  return names[names.length - 1]!;
}

function resolveKernel(aptOptions: string[], arch: GuestArch, updateErrors: string): string {
  const { meta, flavour } = KERNEL_META[arch];
  let out: string;
  try {
    out = run('apt-cache', [...aptOptions, 'depends', meta]).stdout;
  } catch (e) {
    throw new GuestImageError('guest-image.index', `cannot resolve ${meta} from the ${arch} index: ${(e as Error).message}\n${updateErrors}`);
  }
  const m = new RegExp(`Depends:\\s*(linux-image-[0-9][^\\s]*-${flavour})\\b`).exec(out);
  if (m === null) throw new GuestImageError('guest-image.index', `${meta} names no kernel in the ${arch} index (apt-get update: ${updateErrors.trim() || 'ok'})`);
  return m[1]!;
}

function copyFrom(root: string, rel: string, dest: string): void {
  writeFileSync(dest, readOrFail(join(root, rel)));
}

function readOrFail(path: string): Buffer {
  if (!existsSync(path)) throw new GuestImageError('guest-image.content', `${path} missing from the extracted packages`);
  return readFileSync(path);
}

function walk(dir: string, each: (path: string) => void): void {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) walk(p, each);
    else each(p);
  }
}

function onPath(tool: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d.length > 0 && existsSync(join(d, tool)));
}

function run(cmd: string, args: string[], opts: { cwd?: string; allowFailure?: boolean } = {}): { stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    return { stdout, stderr: '' };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    if (opts.allowFailure === true) return { stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    throw new Error(`${cmd} ${args.filter((a) => !a.startsWith('-o') && !a.includes('::')).join(' ')} exited ${String(err.status)}: ${(err.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  }
}
