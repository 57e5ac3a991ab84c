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

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
    readonly code: 'guest-image.no-apt' | 'guest-image.index' | 'guest-image.download' | 'guest-image.checksum' | 'guest-image.content',
    message: string,
  ) {
    super(message);
    this.name = 'GuestImageError';
  }
}

export interface BuildGuestImageOptions {
  /** Default i386 (v86). amd64 images carry no BIOS (QEMU has its own): bios/vgaBios are empty paths. */
  arch?: GuestArch;
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

/** The init script shipped in scripts/guest/ (searched from the source and the built layouts). */
export function guestInitScript(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const p = join(here, up, 'scripts', 'guest', 'init');
    if (existsSync(p)) return readFileSync(p, 'utf8');
  }
  throw new GuestImageError('guest-image.content', `scripts/guest/init not found above ${here}`);
}

/** Hash of everything that decides the image's content apart from the downloaded packages. */
function recipe(init: string): string {
  return createHash('sha256').update(`${BUILDER_VERSION}\n${GUEST_MODULES.join(' ')}\n${init}`).digest('hex').slice(0, 16);
}

/** Cache subdirectory of an image: i386 keeps the original name. */
function imageDirName(arch: GuestArch, init: string): string {
  return arch === 'i386' ? `image-${recipe(init)}` : `image-${arch}-${recipe(init)}`;
}

/** The cached image for the current recipe, or null (nothing is downloaded). */
export function findGuestImage(cacheDir = guestCacheDir(), arch: GuestArch = 'i386'): GuestImage | null {
  const dir = join(cacheDir, imageDirName(arch, guestInitScript()));
  const manifest = join(dir, 'image.json');
  if (!existsSync(manifest)) return null;
  try {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as Pick<GuestImage, 'kernelRelease' | 'packages'>;
    const img = imageAt(arch, dir, m.kernelRelease, m.packages);
    for (const f of [img.bzimage, img.initrd, img.bios, img.vgaBios]) if (f !== '' && !existsSync(f)) return null;
    return img;
  } catch {
    return null;
  }
}

function imageAt(arch: GuestArch, dir: string, kernelRelease: string, packages: Record<string, string>): GuestImage {
  return {
    arch,
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
  const log = options.log ?? ((): void => {});
  if (options.force !== true) {
    const cached = findGuestImage(cacheDir, arch);
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
    const wanted = arch === 'i386' ? [kernelPkg, BUSYBOX, SEABIOS] : [kernelPkg, BUSYBOX];
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
    const img = imageAt(arch, out, kernelRelease, packages);
    copyFrom(root, `boot/vmlinuz-${kernelRelease}`, img.bzimage);
    if (arch === 'i386') {
      copyFrom(root, SEABIOS_FILES.bios, img.bios);
      copyFrom(root, SEABIOS_FILES.vgaBios, img.vgaBios);
    }
    writeFileSync(img.initrd, initramfs(root, kernelRelease, init));
    writeFileSync(join(out, 'image.json'), JSON.stringify({ arch, kernelRelease, packages, recipe: recipe(init) }, null, 2) + '\n');
    const final = join(cacheDir, imageDirName(arch, init));
    // Another process (a parallel test run) may have finished the same image meanwhile: keep
    // that one, which may be in use, rather than replacing it under its feet.
    const raced = findGuestImage(cacheDir, arch);
    if (raced !== null && options.force !== true) return raced;
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    // Images of earlier recipes (same architecture) are never used again.
    const sameArch = (d: string): boolean => (arch === 'i386' ? !/^image-[a-z0-9]+-/.test(d) : d.startsWith(`image-${arch}-`));
    for (const d of readdirSync(cacheDir)) {
      if (d.startsWith('image-') && sameArch(d) && join(cacheDir, d) !== final) rmSync(join(cacheDir, d), { recursive: true, force: true });
    }
    log(`guest image: ready in ${final}`);
    return imageAt(arch, final, kernelRelease, packages);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The initramfs: busybox, the module chain (flattened into /lib/modules), /init, /dev/console. */
function initramfs(root: string, kernelRelease: string, init: string): Uint8Array {
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
    { kind: 'file', path: 'etc/modules-order', data: new TextEncoder().encode(GUEST_MODULES.join('\n') + '\n') },
  ];
  const found = new Map<string, string>();
  walk(modRoot, (p) => {
    const base = p.slice(p.lastIndexOf('/') + 1);
    if (base.endsWith('.ko')) found.set(base.slice(0, -3), p);
  });
  for (const m of GUEST_MODULES) {
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
