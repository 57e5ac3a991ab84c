// The guest's initramfs (guest-image.ts builds the image; no VIRTIO section: REAL-GUEST.md) from
// the tree the downloaded packages were extracted into: busybox, the network tools with exactly
// the shared libraries their ELF DT_NEEDED lists reach (guest-elf.ts) and the dynamic loader at
// its PT_INTERP path, the virtio/8021q module chain and a profile's modules in dependency order
// (from each .ko's .modinfo `depends=`), /init — as a newc cpio (guest-cpio.ts). Files are read
// inside the extracted tree only: a symlink is followed within it, never to the host's file.

import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { cpioNewc } from './guest-cpio.js';
import type { CpioEntry } from './guest-cpio.js';
import { elfDeps, isElf } from './guest-elf.js';
import type { GuestArch } from './guest-image.js';
import { GuestImageError } from './guest-image-error.js';

/** Debian's multiarch directory of each architecture (where its dynamic loader looks first). */
const TRIPLET: Record<GuestArch, string> = { i386: 'i386-linux-gnu', amd64: 'x86_64-linux-gnu' };

/** What every image holds (guest-image.ts: GUEST_TOOLS, GUEST_MODULES). */
export interface InitramfsBase {
  /** Debian package → the programs taken from it, into /usr/local/bin. */
  readonly tools: Readonly<Record<string, readonly string[]>>;
  /** The module chain, in load order. */
  readonly modules: readonly string[];
}

/** What a profile adds to the initramfs: files, and modules loaded after the base chain. */
export interface ProfileExtra {
  /** Files; a dynamically linked program among them gets its shared libraries like the tools. */
  entries: CpioEntry[];
  /** Module names; their dependencies are resolved from the .ko files. */
  modules: readonly string[];
}

/**
 * The initramfs: busybox, the tools and the profile's programs with the shared libraries they
 * load, the module chain and the profile's modules (flattened into /lib/modules), /init,
 * /dev/console. One entry per path (the first wins).
 */
export function initramfs(root: string, arch: GuestArch, kernelRelease: string, init: string, base: InitramfsBase, extra: ProfileExtra): Uint8Array {
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
  for (const [pkg, programs] of Object.entries(base.tools)) {
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
  const modules = [...base.modules, ...loadOrder(extra.modules, base.modules, found, kernelRelease)];
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

export function readOrFail(path: string): Buffer {
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
