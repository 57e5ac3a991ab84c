// Debian's package index as the guest image builder uses it (guest-image.ts; no VIRTIO section:
// Debian packaging, REAL-GUEST.md): a private index per architecture (and one of
// bookworm-backports alone) that leaves the system's package configuration untouched, the
// candidate entries of named packages, the library packages a program's Depends reach, downloads
// checked against the index's SHA256, and the kernel package a metapackage (or, in backports, the
// newest package of a kernel line) names. Also the two process helpers the builder shares:
// `run` (a program's output, or an error naming it) and `onPath`.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GuestArch, GuestKernel } from './guest-image.js';
import { GuestImageError } from './guest-image-error.js';

/** The kernel metapackage of each architecture and the flavour its kernel packages end in. */
const KERNEL_META: Record<GuestArch, { meta: string; flavour: string }> = {
  i386: { meta: 'linux-image-686', flavour: '686' },
  amd64: { meta: 'linux-image-amd64', flavour: 'amd64' },
};

/**
 * apt options for a private index of `arch` in `dir`, without touching dpkg's architectures or
 * the system's lists (REAL-GUEST.md). `source` null: the system's sources; else that one line only.
 */
export function privateIndex(dir: string, arch: GuestArch, source: string | null): string[] {
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
export function downloadVerified(aptOptions: string[], metas: ReadonlyMap<string, IndexEntry>, work: string): string[] {
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
export function libraryClosure(aptOptions: string[], roots: readonly string[]): string[] {
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

export interface IndexEntry {
  version: string;
  sha256: string;
  section: string;
  /** Package names of Depends and Pre-Depends, first alternative of each group. */
  depends: string[];
}

/** The index's candidate entry of each of `names` (one apt-cache call); `strict`: a missing one is an error. */
export function indexEntries(aptOptions: string[], names: readonly string[], strict = true): Map<string, IndexEntry> {
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
 * The newest `linux-image-<kernel>.N-…-<flavour>` package in the index (bookworm-backports has no
 * `linux-image-686` metapackage): names only, newest by apt's version order of the package names'
 * ABI part.
 */
export function resolveKernelLine(aptOptions: string[], arch: GuestArch, kernel: GuestKernel, updateErrors: string): string {
  const { flavour } = KERNEL_META[arch];
  const out = run('apt-cache', [...aptOptions, 'pkgnames', `linux-image-${kernel}.`], { allowFailure: true }).stdout;
  const pattern = new RegExp(`^linux-image-${kernel.replace('.', '\\.')}\\.[0-9]+-[0-9a-z.~+]+-${flavour}$`);
  const names = out.split('\n').map((l) => l.trim()).filter((l) => pattern.test(l)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (names.length === 0) {
    throw new GuestImageError('guest-image.index', `no linux-image-${kernel}.*-${flavour} in the ${arch} bookworm-backports index (apt-get update: ${updateErrors.trim() || 'ok'})`);
  }
  return names[names.length - 1]!;
}

export function resolveKernel(aptOptions: string[], arch: GuestArch, updateErrors: string): string {
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

export function onPath(tool: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d.length > 0 && existsSync(join(d, tool)));
}

export function run(cmd: string, args: string[], opts: { cwd?: string; allowFailure?: boolean } = {}): { stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    return { stdout, stderr: '' };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    if (opts.allowFailure === true) return { stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    throw new Error(`${cmd} ${args.filter((a) => !a.startsWith('-o') && !a.includes('::')).join(' ')} exited ${String(err.status)}: ${(err.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  }
}
