// Every outside program the tests and benchmarks execute must come from the host setup step: this
// scans the source tree for the ways a program is started (node's child_process functions, the
// `run` helpers, `Netns.exec`, `ip netns exec NS PROGRAM`, puppeteer's `executablePath:
// programPath(PROGRAM)`) and fails when a program is neither in
// scripts/host-requirements.ts nor one of the base commands every machine has. It also fails on a
// listed program nothing runs (a stale list hides nothing, but lies about what the tests need).

import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE_COMMANDS, HOST_FILES, HOST_PROGRAMS, hostPackages, onPath } from '../scripts/host-requirements.js';
import { mustNotSkip, skipBecause } from './support/skip.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCANNED = ['test', 'bench', 'lib', 'scripts'];
const SELF = fileURLToPath(import.meta.url);

/** The functions whose first argument is a program to execute. `exec` only as a method (Netns.exec). */
const STARTERS = String.raw`(?:(?<![.\w])(?:execFileSync|execFile|spawnSync|spawn|execSync|run|runCmd|child)|(?<=[\w\])])\.exec)`;
const QUOTED = String.raw`(['"\`])([^'"\`\s$]+)\1`;

/** Programs a source text executes, with constants (`const QEMU = 'qemu-system-x86_64'`) resolved. */
export function executedPrograms(text: string, constants: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(new RegExp(`${STARTERS}\\(\\s*${QUOTED}`, 'g'))) found.push(m[2]!);
  for (const m of text.matchAll(new RegExp(`${STARTERS}\\(\\s*([A-Z][A-Z0-9_]*)\\b`, 'g'))) {
    const value = constants.get(m[1]!);
    if (value !== undefined) found.push(value);
  }
  // A browser puppeteer starts: `executablePath: programPath('chromium')` (or a constant).
  for (const m of text.matchAll(new RegExp(String.raw`executablePath:\s*[\w.]+\(\s*(?:${QUOTED}|([A-Z][A-Z0-9_]*)\b)`, 'g'))) {
    const value = m[2] ?? constants.get(m[3]!);
    if (value !== undefined) found.push(value);
  }
  // `ip netns exec NS PROGRAM …` as an argument list: the program is the fourth word.
  for (const m of text.matchAll(new RegExp(String.raw`'netns',\s*'exec',\s*[^,]+,\s*${QUOTED}`, 'g'))) found.push(m[2]!);
  return found;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'fixtures') continue;
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith('.ts') && p !== SELF) out.push(p);
  }
  return out;
}

function scanTree(): Map<string, Set<string>> {
  const files = SCANNED.flatMap((d) => sourceFiles(join(root, d)));
  const texts = files.map((f) => [f, readFileSync(f, 'utf8')] as const);
  const constants = new Map<string, string>();
  for (const [, t] of texts) for (const m of t.matchAll(/const ([A-Z][A-Z0-9_]*) = '([^'\s]+)';/g)) constants.set(m[1]!, m[2]!);
  const where = new Map<string, Set<string>>();
  for (const [f, t] of texts) {
    // Only files that can start a program: those using child_process or the netns helpers.
    if (!/node:child_process|support\/netns\.js|puppeteer-core/.test(t)) continue;
    for (const program of executedPrograms(t, constants)) {
      if (!where.has(program)) where.set(program, new Set());
      where.get(program)!.add(relative(root, f));
    }
  }
  return where;
}

describe('host requirements (scripts/host-requirements.ts)', () => {
  const listed = new Set([...HOST_PROGRAMS.map((p) => p.command), ...BASE_COMMANDS]);
  const executed = scanTree();

  it('the_scanner_finds_each_way_a_test_starts_a_program', () => {
    const sample = [
      "execFileSync('alpha', []);",
      "const c = spawn('beta', ['-x']);",
      "ns.exec('gamma', ['-q']);",
      "run('ip', ['netns', 'exec', ns.name, 'delta', '-c', script]);",
      'spawnSync(BIN, []);',
      "launch({ executablePath: programPath('zeta') });",
      'launch({ executablePath: programPath(BROWSER) });',
      "console.run('guestonly');", // a guest shell command, not a host program
      "/x/.exec('notaprogram');", // a regular expression, not a program
    ].join('\n');
    expect(executedPrograms(sample, new Map([['BIN', 'epsilon'], ['BROWSER', 'eta']])).sort()).to.deep.equal(['alpha', 'beta', 'delta', 'epsilon', 'eta', 'gamma', 'ip', 'zeta']);
  });

  it('every_program_the_tests_execute_is_installed_by_the_setup_step', () => {
    const unlisted = [...executed].filter(([p]) => !listed.has(p)).map(([p, files]) => `${p} (run by ${[...files].join(', ')})`);
    expect(unlisted, 'programs executed but not in scripts/host-requirements.ts').to.deep.equal([]);
    // The scan is not vacuous: it sees the programs the host tests are known to run.
    for (const p of ['ip', 'ethtool', 'tshark', 'python3', 'qemu-system-x86_64', 'sysctl']) expect([...executed.keys()]).to.include(p);
  });

  it('every_listed_program_is_executed_somewhere', () => {
    const stale = HOST_PROGRAMS.map((p) => p.command).filter((c) => !executed.has(c));
    expect(stale, 'listed in scripts/host-requirements.ts but run by nothing').to.deep.equal([]);
  });

  it('after_the_setup_step_every_listed_program_and_file_is_present', function () {
    const absent = [
      ...HOST_PROGRAMS.filter((p) => !onPath(p.command)).map((p) => `${p.command} (${p.pkg})`),
      ...HOST_FILES.filter((f) => !existsSync(f.path)).map((f) => `${f.path} (${f.pkg})`),
    ];
    if (absent.length > 0 && !mustNotSkip()) skipBecause(this, `not installed here (run \`npm run setup\` as root): ${absent.join(', ')}`);
    expect(absent, `missing after the setup step (packages: ${hostPackages().join(' ')})`).to.deep.equal([]);
  });
});
