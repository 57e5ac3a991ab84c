// The Linux guest that `virtio-net guest` and the conformance tests boot in v86 (no VIRTIO section:
// Debian packaging; what the guest needs is in shared/design/REAL-GUEST.md).
//
// Data flow: apt's index for i386 (amd64 for the QEMU reference guest) with a private list
// directory and options, so the system's package configuration is untouched → resolve
// `linux-image-686` (`-amd64`) to the kernel package → `apt-get download` the kernel,
// `busybox-static` and, for v86, `seabios` → check each .deb's SHA256 against
// the index → `dpkg-deb -x` → an initramfs (newc cpio: busybox, the virtio/8021q module chain,
// scripts/guest/init) → the cache directory `${XDG_CACHE_HOME:-~/.cache}/virtio-net-model/guest/`.
// A cached image whose recipe (init script, module list, builder version) is unchanged is reused
// without touching the network.
//
// The amd64 image has a second profile, "ipvs" (the IPVS tests, test/guest/qemu-ipvs.test.ts):
// the same image plus the kernel's ip_vs module and schedulers (their dependencies resolved
// from each module's .modinfo `depends=`, loaded by /init in that order), Debian's `ipvsadm`
// with its shared libraries, and `nlrelay` (scripts/guest/nlrelay.c, compiled here with
// `cc -static`) which carries one netlink request from the serial console to the kernel.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpioNewc } from './guest-cpio.js';
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

/** Bump when the image layout changes, so cached images are rebuilt. */
const BUILDER_VERSION = 1;
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
const BUSYBOX = 'busybox-static';
const SEABIOS = 'seabios';
/** What the boot needs from seabios: the BIOS and the VGA option ROM v86 expects. */
const SEABIOS_FILES = { bios: 'usr/share/seabios/bios.bin', vgaBios: 'usr/share/seabios/vgabios-stdvga.bin' } as const;

/** A built guest image: absolute paths of what v86 boots. */
export interface GuestImage {
  arch: GuestArch;
  profile: GuestProfile;
  dir: string;
  bzimage: string;
  initrd: string;
  bios: string;
  vgaBios: string;
  /** e.g. "6.1.0-50-686". */
  kernelRelease: string;
  /** Package name → version that went into the image. */
  packages: Record<string, string>;
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
function recipe(init: string, profile: GuestProfile): string {
  const h = createHash('sha256').update(`${BUILDER_VERSION}\n${GUEST_MODULES.join(' ')}\n${init}`);
  if (profile === 'ipvs') h.update(`\nipvs ${IPVS_MODULES.join(' ')} ${IPVS_PACKAGES.join(' ')}\n${readFileSync(guestScriptFile('nlrelay.c'), 'utf8')}`);
  return h.digest('hex').slice(0, 16);
}

/** The cache subdirectory name of an image without its recipe: i386 keeps the original name. */
function imagePrefix(arch: GuestArch, profile: GuestProfile): string {
  return `image-${arch === 'i386' ? '' : `${arch}-`}${profile === 'base' ? '' : `${profile}-`}`;
}

function imageDirName(arch: GuestArch, profile: GuestProfile, init: string): string {
  return imagePrefix(arch, profile) + recipe(init, profile);
}

/** The cached image for the current recipe, or null (nothing is downloaded). */
export function findGuestImage(cacheDir = guestCacheDir(), arch: GuestArch = 'i386', profile: GuestProfile = 'base'): GuestImage | null {
  const dir = join(cacheDir, imageDirName(arch, profile, guestInitScript()));
  const manifest = join(dir, 'image.json');
  if (!existsSync(manifest)) return null;
  try {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as Pick<GuestImage, 'kernelRelease' | 'packages'>;
    const img = imageAt(arch, profile, dir, m.kernelRelease, m.packages);
    for (const f of [img.bzimage, img.initrd, img.bios, img.vgaBios]) if (f !== '' && !existsSync(f)) return null;
    return img;
  } catch {
    return null;
  }
}

function imageAt(arch: GuestArch, profile: GuestProfile, dir: string, kernelRelease: string, packages: Record<string, string>): GuestImage {
  return {
    arch,
    profile,
    dir,
    bzimage: join(dir, 'bzImage'),
    initrd: join(dir, 'initrd.cpio'),
    bios: arch === 'i386' ? join(dir, 'bios.bin') : '',
    vgaBios: arch === 'i386' ? join(dir, 'vgabios.bin') : '',
    kernelRelease,
    packages,
  };
}

/** The cached image, or builds it (downloads about 55 MB once). */
export function buildGuestImage(options: BuildGuestImageOptions = {}): GuestImage {
  const cacheDir = options.cacheDir ?? guestCacheDir();
  const arch = options.arch ?? 'i386';
  if (arch !== 'i386' && arch !== 'amd64') throw new TypeError(`buildGuestImage: options.arch must be i386 or amd64, got ${String(arch)}`);
  const profile = options.profile ?? 'base';
  if (profile !== 'base' && !(profile === 'ipvs' && arch === 'amd64')) {
    throw new TypeError(`buildGuestImage: options.profile must be base, or ipvs with arch amd64, got ${String(profile)} (${arch})`);
  }
  const log = options.log ?? ((): void => {});
  if (options.force !== true) {
    const cached = findGuestImage(cacheDir, arch, profile);
    if (cached !== null) return cached;
  }
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb']) {
    if (!onPath(tool)) throw new GuestImageError('guest-image.no-apt', `${tool} is not on PATH: the guest image is built from Debian packages`);
  }
  const init = guestInitScript();
  mkdirSync(cacheDir, { recursive: true });
  const aptDir = join(cacheDir, arch === 'i386' ? 'apt' : `apt-${arch}`);
  mkdirSync(join(aptDir, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(aptDir, 'cache', 'archives', 'partial'), { recursive: true });
  // The guest's architecture without touching dpkg's architectures or the system's lists (REAL-GUEST.md).
  const aptOptions = [
    '-o', `APT::Architecture=${arch}`,
    '-o', `APT::Architectures=${arch}`,
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
    '-o', 'Debug::NoLocking=1',
  ];
  log(`guest image: updating a private ${arch} package index`);
  // A failed secondary index (e.g. a mirror mid-sync) is not fatal: what matters is that the
  // packages below resolve, which the next steps check.
  const update = run('apt-get', [...aptOptions, '-q', 'update'], { allowFailure: true });
  const kernelPkg = resolveKernel(aptOptions, arch, update.stderr);
  const work = mkdtempSync(join(cacheDir, 'build-'));
  try {
    const wanted = arch === 'i386' ? [kernelPkg, BUSYBOX, SEABIOS] : [kernelPkg, BUSYBOX, ...(profile === 'ipvs' ? IPVS_PACKAGES : [])];
    const packages: Record<string, string> = {};
    const debs: string[] = [];
    for (const name of wanted) {
      const meta = indexEntry(aptOptions, name);
      log(`guest image: downloading ${name} ${meta.version}`);
      try {
        run('apt-get', [...aptOptions, '-q', 'download', `${name}=${meta.version}`], { cwd: work });
      } catch (e) {
        throw new GuestImageError('guest-image.download', `apt-get download ${name}=${meta.version} failed: ${(e as Error).message}`);
      }
      const file = readdirSync(work).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
      if (file === undefined) throw new GuestImageError('guest-image.download', `apt-get download ${name} left no .deb in ${work}`);
      const path = join(work, file);
      const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (sha !== meta.sha256) {
        throw new GuestImageError('guest-image.checksum', `${file}: SHA256 ${sha} differs from apt's index (${meta.sha256})`);
      }
      packages[name] = meta.version;
      debs.push(path);
    }
    const root = join(work, 'root');
    mkdirSync(root);
    for (const deb of debs) run('dpkg-deb', ['-x', deb, root]);
    const kernelRelease = kernelPkg.replace(/^linux-image-/, '');
    const out = join(work, 'out');
    mkdirSync(out);
    const img = imageAt(arch, profile, out, kernelRelease, packages);
    copyFrom(root, `boot/vmlinuz-${kernelRelease}`, img.bzimage);
    if (arch === 'i386') {
      copyFrom(root, SEABIOS_FILES.bios, img.bios);
      copyFrom(root, SEABIOS_FILES.vgaBios, img.vgaBios);
    }
    const extra = profile === 'ipvs' ? ipvsEntries(root, work) : { entries: [], modules: [] };
    writeFileSync(img.initrd, initramfs(root, kernelRelease, init, extra));
    writeFileSync(join(out, 'image.json'), JSON.stringify({ arch, profile, kernelRelease, packages, recipe: recipe(init, profile) }, null, 2) + '\n');
    const final = join(cacheDir, imageDirName(arch, profile, init));
    // Another process (a parallel test run) may have finished the same image meanwhile: keep
    // that one, which may be in use, rather than replacing it under its feet.
    const raced = findGuestImage(cacheDir, arch, profile);
    if (raced !== null && options.force !== true) return raced;
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    // Images of earlier recipes (same architecture and profile) are never used again.
    const earlier = new RegExp(`^${imagePrefix(arch, profile)}[0-9a-f]{16}$`);
    for (const d of readdirSync(cacheDir)) {
      if (earlier.test(d) && join(cacheDir, d) !== final) rmSync(join(cacheDir, d), { recursive: true, force: true });
    }
    log(`guest image: ready in ${final}`);
    return imageAt(arch, profile, final, kernelRelease, packages);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** What a profile adds to the initramfs: files, and modules loaded after the base chain. */
interface ProfileExtra {
  entries: CpioEntry[];
  /** Module names; their dependencies are resolved from the .ko files. */
  modules: readonly string[];
}

/** Where the amd64 shared libraries live in a `dpkg -x` tree (before and after the /usr merge). */
const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu'];

/** The ipvs profile: ipvsadm, its shared libraries and the loader, nlrelay, the IPVS modules. */
function ipvsEntries(root: string, work: string): ProfileExtra {
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'sbin' },
    { kind: 'file', path: 'sbin/ipvsadm', data: readOrFail(join(root, 'sbin', 'ipvsadm')), mode: 0o755 },
    { kind: 'dir', path: 'lib64' },
    { kind: 'symlink', path: 'lib64/ld-linux-x86-64.so.2', target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' },
    { kind: 'dir', path: 'lib/x86_64-linux-gnu' },
  ];
  // Every shared object directly in the library directories (not gconv and the like), links kept.
  let loader = false;
  for (const rel of LIB_DIRS) {
    const dir = join(root, rel);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      if (!/\.so(\.|$)/.test(d.name)) continue;
      const path = `lib/x86_64-linux-gnu/${d.name}`;
      if (d.name === 'ld-linux-x86-64.so.2') loader = true;
      if (d.isSymbolicLink()) entries.push({ kind: 'symlink', path, target: readlinkSync(join(dir, d.name)) });
      else if (d.isFile()) entries.push({ kind: 'file', path, data: readFileSync(join(dir, d.name)), mode: 0o755 });
    }
  }
  if (!loader) throw new GuestImageError('guest-image.content', 'libc6 has no ld-linux-x86-64.so.2 in /lib/x86_64-linux-gnu or /usr/lib/x86_64-linux-gnu');
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

/** The initramfs: busybox, the module chain (flattened into /lib/modules), /init, /dev/console. */
function initramfs(root: string, kernelRelease: string, init: string, extra: ProfileExtra): Uint8Array {
  const modRoot = join(root, 'lib', 'modules', kernelRelease, 'kernel');
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'bin' },
    { kind: 'dir', path: 'dev' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'etc' },
    { kind: 'dir', path: 'lib' },
    { kind: 'dir', path: 'lib/modules' },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    { kind: 'file', path: 'bin/busybox', data: readOrFail(join(root, 'bin', 'busybox')), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: new TextEncoder().encode(init), mode: 0o755 },
  ];
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
  return cpioNewc(entries);
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

/** Version and SHA256 of the candidate of `name` in the private index. */
function indexEntry(aptOptions: string[], name: string): { version: string; sha256: string } {
  const out = run('apt-cache', [...aptOptions, 'show', '--no-all-versions', name], { allowFailure: true }).stdout;
  const version = /^Version: (.+)$/m.exec(out)?.[1];
  const sha256 = /^SHA256: ([0-9a-f]{64})$/m.exec(out)?.[1];
  if (version === undefined || sha256 === undefined) {
    throw new GuestImageError('guest-image.index', `${name} is not in the private package index (no Version/SHA256)`);
  }
  return { version, sha256 };
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
