// The one host setup step. `npm test` runs it first (the `pretest` script); `npm run setup` runs it
// alone. It makes this machine able to run every test:
//   1. As root with apt: installs every Debian package of scripts/host-requirements.ts whose
//      program or file is missing (`apt-get update` once, then one `apt-get install -y
//      --no-install-recommends …`). Nothing is installed when everything is present.
//   2. Fills the caches the tests read, under ${XDG_CACHE_HOME:-~/.cache}/virtio-net-model/: the
//      v86 guest image (i386) and, as root, the QEMU reference guest's image (amd64), built from
//      Debian packages by lib/cli/guest-image.ts; QEMU's python QMP client (setup-qemu-qmp.sh).
//      A cache that is present and current is reused without network.
// Without root it installs nothing and prints one line naming the tests that will skip and why.
// It never fails `npm test` by itself: what it could not provide is printed, and the tests that
// need it skip with that reason — or, under CI=true as root, fail naming it.
//
// Idempotent and fast when everything is present (a PATH lookup per program, a stat per file and
// per cache: well under a second besides tsx's start-up).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestImageError, buildGuestImage, type GuestArch, type GuestProfile } from '../lib/cli/guest-image.js';
import { DEBCONF_PRESEED, HOST_FILES, HOST_PROGRAMS, hostPackages, onPath } from './host-requirements.js';

const here = dirname(fileURLToPath(import.meta.url));
const started = Date.now();
const log = (line: string): void => console.log(`setup-host: ${line}`);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** What is missing now: program and file entries, each with its package. */
function missing(): { what: string; pkg: string; usedBy: string; rootOnly: boolean }[] {
  const out: { what: string; pkg: string; usedBy: string; rootOnly: boolean }[] = [];
  for (const p of HOST_PROGRAMS) if (!onPath(p.command)) out.push({ what: p.command, pkg: p.pkg, usedBy: p.usedBy, rootOnly: p.rootOnly === true });
  for (const f of HOST_FILES) if (!existsSync(f.path)) out.push({ what: f.path, pkg: f.pkg, usedBy: f.usedBy, rootOnly: false });
  return out;
}

function aptInstall(pkgs: readonly string[]): string | null {
  if (!onPath('apt-get')) return 'there is no apt-get on this machine';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('debconf-set-selections', [], { input: `${DEBCONF_PRESEED}\n`, env, stdio: ['pipe', 'ignore', 'ignore'] });
  for (const args of [['-qq', 'update'], ['install', '-y', '-qq', '--no-install-recommends', ...pkgs]]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) return `apt-get ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`;
  }
  return null;
}

function guestImage(arch: GuestArch, profile: GuestProfile = 'base'): string | null {
  try {
    const t0 = Date.now();
    const img = buildGuestImage({ arch, profile, log: (l) => log(l) });
    const took = Date.now() - t0;
    if (took > 1000) log(`guest image (${arch}${profile === 'base' ? '' : ` ${profile}`}) built in ${(took / 1000).toFixed(0)} s: ${img.dir}`);
    return null;
  } catch (e) {
    if (e instanceof GuestImageError) return `${e.code}: ${e.message}`;
    return (e as Error).message;
  }
}

function pythonQmp(): string | null {
  if (!onPath('python3')) return 'python3 is missing';
  try {
    execFileSync('bash', [join(here, 'setup-qemu-qmp.sh')], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 16 << 20 });
    return null;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return (err.stderr ?? '').trim().split('\n').slice(-2).join(' / ') || err.message;
  }
}

const problems: string[] = [];
let need = missing();
if (need.length > 0 && isRoot) {
  const pkgs = [...new Set(need.map((n) => n.pkg))].sort();
  log(`installing ${pkgs.join(' ')} (apt-get update, then apt-get install --no-install-recommends)`);
  const t0 = Date.now();
  const why = aptInstall(pkgs);
  if (why !== null) problems.push(why);
  else log(`installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  need = missing();
}
for (const n of need) {
  if (!isRoot && n.rootOnly) continue; // those tests need root anyway; the root line covers them
  problems.push(`${n.what} is missing (Debian package ${n.pkg}): ${n.usedBy} will skip`);
}

const caches: [string, () => string | null][] = [
  ['the v86 guest image', () => guestImage('i386')],
  ["QEMU's python QMP client", pythonQmp],
];
if (isRoot) {
  caches.splice(1, 0, ['the QEMU reference guest image', () => guestImage('amd64')], ['the QEMU IPVS guest image (ip_vs, ipvsadm, nlrelay)', () => guestImage('amd64', 'ipvs')]);
}
for (const [name, fill] of caches) {
  const why = fill();
  if (why !== null) problems.push(`${name} cannot be had (${why}): the tests that use it will skip`);
}

const secs = ((Date.now() - started) / 1000).toFixed(1);
if (!isRoot) {
  const list = hostPackages().join(' ');
  log(
    `not root: installed nothing; the host tests (network namespaces, TAP, macvtap, QEMU guest) will skip: they need root` +
      (problems.length > 0 ? `; also: ${problems.join('; ')}` : '') +
      ` (as root this step installs: ${list}) [${secs} s]`,
  );
} else if (problems.length > 0) {
  log(`NOT READY after ${secs} s: ${problems.join('; ')}`);
  if (process.env['CI'] === 'true') log('CI=true as root: the tests that need these will fail, naming what is missing');
} else {
  log(`ready in ${secs} s`);
}
