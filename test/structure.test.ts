// The layering of the source tree (issue #21), checked on its imports. Every .ts file under
// index.ts, virtqueue/, devices/ and lib/ is parsed (TypeScript's parser: static imports and
// re-exports, `import type`, dynamic `import()`), relative specifiers are resolved to folders,
// and these rules are enforced:
//   1. Every source folder has a layer (LAYERS below); a new folder must be placed on purpose.
//   2. Imports go to the same layer or a lower one: below-the-device lib/ folders never import
//      devices/ or an above-the-device folder, virtqueue/ imports only lib/base/, and lib/base/
//      imports nothing of the project.
//   3. No import cycle between folders (a subfolder counts as its LAYERS folder).
//   4. Nothing under lib/base/, virtqueue/ or devices/ imports a Node builtin (`node:x` or a bare
//      `events`, `net`, …) or the FFI (koffi), and neither does any lib/ file they load at run time.
//   5. Source never imports test/, bench/ or scripts/.
//   6. The browser entry (browser.ts, `virtio-net-model/browser`) and every file it loads at run
//      time import no Node-only module and name no Node global (Buffer, process, setImmediate,
//      require, …) as a value. test/browser-bundle.test.ts checks the same on the esbuild bundle.
// A failure names the edge: the importing file, the specifier and the rule it breaks.

import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..');
const SOURCE_ROOTS = ['index.ts', 'browser.ts', 'virtqueue', 'devices', 'lib'];

/**
 * The layers, lowest first. A folder may import its own layer or a lower one. `devices/` stands
 * on virtqueue/ and on the Netdev interface (lib/netdev/netdev.ts), so the netdev layer and
 * everything it uses sit below the device; what drives, embeds or manages the device sits above.
 */
const LAYERS: readonly { readonly name: string; readonly folders: readonly string[] }[] = [
  // Helpers and shapes every layer shares (endian, MAC text, frame limits, frame holders, the
  // query-rx-filter shape): no project import, no Node builtin, so browser-safe.
  { name: 'foundation', folders: ['lib/base'] },
  { name: 'ring mechanics', folders: ['virtqueue'] },
  {
    name: 'below the device',
    folders: ['lib/host', 'lib/packet', 'lib/netlink', 'lib/netdev', 'lib/chardev', 'lib/passthrough', 'lib/filters', 'lib/colo'],
  },
  { name: 'the device', folders: ['devices/virtio', 'devices/virtio-net'] },
  { name: 'above the device', folders: ['lib/driver', 'lib/hypervisors', 'lib/qmp', 'lib/cli'] },
  { name: 'package root', folders: ['.'] },
];

/** Folders whose files (and what they load at run time) must run without Node: see rule 4. */
const NODE_FREE = ['lib/base', 'virtqueue', 'devices'];
/** The browser entry (rule 6). */
const BROWSER_ENTRY = 'browser.ts';
/** Node's globals that a browser lacks (rule 6). */
const NODE_GLOBALS = new Set(['Buffer', 'process', 'setImmediate', 'clearImmediate', 'require', 'module', 'exports', '__dirname', '__filename', 'global']);
/** Packages that are Node-only although not builtins. */
const NODE_ONLY_PACKAGES = ['koffi'];

/**
 * Node imports under NODE_FREE allowed for now, each with its reason. Empty: the last one
 * (`node:events` in devices/virtio) went with the composed core. An entry that no longer matches
 * an import fails the test, so none can linger.
 */
const KNOWN_NODE_IMPORTS: readonly { readonly file: string; readonly specifier: string }[] = [];

/** One import as written in a source file. */
interface ImportEdge {
  /** Importing file, relative to the root, '/'-separated. */
  readonly file: string;
  readonly specifier: string;
  /** Erased at run time (`import type`, `export type`, `typeof import()`). */
  readonly typeOnly: boolean;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(ROOT, rel);
    if (statSync(abs).isDirectory()) {
      for (const e of readdirSync(abs).sort()) walk(posix.join(rel, e));
    } else if (rel.endsWith('.ts')) {
      out.push(rel);
    }
  };
  for (const r of SOURCE_ROOTS) walk(r);
  return out;
}

/** The imports of one file, by TypeScript's parser (so comments and strings never count). */
function parseImports(file: string, text: string): ImportEdge[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const edges: ImportEdge[] = [];
  const add = (spec: ts.Expression | undefined, typeOnly: boolean): void => {
    if (spec !== undefined && ts.isStringLiteralLike(spec)) edges.push({ file, specifier: spec.text, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(node.moduleSpecifier, node.importClause?.isTypeOnly === true);
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

/** The LAYERS folder a file or folder belongs to (longest prefix), or undefined. */
function layerFolder(path: string): string | undefined {
  const dir = path.endsWith('.ts') ? posix.dirname(path) : path;
  let best: string | undefined;
  for (const l of LAYERS) {
    for (const f of l.folders) {
      const inside = f === '.' ? dir === '.' : dir === f || dir.startsWith(f + '/');
      if (inside && (best === undefined || f.length > best.length)) best = f;
    }
  }
  return best;
}

function rank(folder: string): number {
  return LAYERS.findIndex((l) => l.folders.includes(folder));
}

/** A relative specifier resolved to a root-relative .ts path; undefined for packages. */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const target = posix.normalize(posix.join(posix.dirname(from), specifier));
  return target.replace(/\.js$/, '.ts');
}

function isNodeOnly(specifier: string): boolean {
  const bare = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  return specifier.startsWith('node:') || builtinModules.includes(bare.split('/')[0]!) || builtinModules.includes(bare) || NODE_ONLY_PACKAGES.includes(specifier);
}

function describeEdge(e: ImportEdge): string {
  return `${e.file} imports '${e.specifier}'${e.typeOnly ? ' (type only)' : ''}`;
}

/** Rules 1, 2 and 5: every edge between folders goes down or sideways, inside the source tree. */
function layerViolations(edges: readonly ImportEdge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const target = resolveSpecifier(e.file, e.specifier);
    if (target === undefined) continue;
    const from = layerFolder(e.file);
    if (from === undefined) {
      out.push(`${e.file}: its folder has no layer in LAYERS (decide where it sits and add it)`);
      continue;
    }
    if (target.startsWith('../') || /^(test|bench|scripts)\//.test(target)) {
      out.push(`${describeEdge(e)}: source must not import outside the source tree (${target})`);
      continue;
    }
    const to = layerFolder(target);
    if (to === undefined) {
      out.push(`${describeEdge(e)}: ${target} is in a folder with no layer in LAYERS`);
      continue;
    }
    if (rank(to) > rank(from)) {
      out.push(`${from} → ${to}: ${describeEdge(e)} — '${LAYERS[rank(from)]!.name}' must not import '${LAYERS[rank(to)]!.name}'`);
    }
  }
  return [...new Set(out)];
}

/** Rule 3: each folder-level cycle, as its folders and one import per hop. */
function folderCycles(edges: readonly ImportEdge[]): string[] {
  const graph = new Map<string, Map<string, ImportEdge>>();
  for (const e of edges) {
    const target = resolveSpecifier(e.file, e.specifier);
    const from = layerFolder(e.file);
    const to = target === undefined ? undefined : layerFolder(target);
    if (from === undefined || to === undefined || from === to) continue;
    if (!graph.has(from)) graph.set(from, new Map());
    if (!graph.get(from)!.has(to)) graph.get(from)!.set(to, e);
  }
  // Tarjan's strongly connected components; every component of more than one folder is a cycle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) components.push(c);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  // For each component, the shortest cycle through its first folder, found breadth-first.
  return components.map((c) => {
    const members = new Set(c);
    const start = [...c].sort()[0]!;
    const prev = new Map<string, string>();
    const queue = [start];
    let end: string | undefined;
    while (queue.length > 0 && end === undefined) {
      const v = queue.shift()!;
      for (const w of graph.get(v)?.keys() ?? []) {
        if (!members.has(w)) continue;
        if (w === start) {
          end = v;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = end!; v !== start; v = prev.get(v)!) path.splice(1, 0, v);
    path.push(start);
    const hops = path.slice(1).map((to, i) => `    ${path[i]} → ${to}: ${describeEdge(graph.get(path[i]!)!.get(to)!)}`);
    return `cycle ${path.join(' → ')}\n${hops.join('\n')}`;
  });
}

/**
 * Rule 4: Node-only imports in NODE_FREE folders, directly or through the lib/ files they load at
 * run time (value imports followed; type-only imports are erased and do not load anything).
 */
function nodeImportViolations(
  edges: readonly ImportEdge[],
  allowed: readonly { file: string; specifier: string }[],
): { violations: string[]; unusedAllowances: string[] } {
  const byFile = new Map<string, ImportEdge[]>();
  for (const e of edges) byFile.set(e.file, [...(byFile.get(e.file) ?? []), e]);
  const inNodeFree = (f: string): boolean => NODE_FREE.some((d) => f.startsWith(d + '/'));
  const violations: string[] = [];
  const used = new Set<string>();
  for (const [file, list] of byFile) {
    if (!inNodeFree(file)) continue;
    for (const e of list) {
      if (e.typeOnly || !isNodeOnly(e.specifier)) continue;
      const ok = allowed.find((a) => a.file === file && a.specifier === e.specifier);
      if (ok !== undefined) used.add(`${ok.file} ${ok.specifier}`);
      else violations.push(`${describeEdge(e)}: ${NODE_FREE.join('/ and ')}/ must run without Node (no builtins, no FFI)`);
    }
    // What this file loads outside the node-free folders, breadth-first, with the path kept.
    const seen = new Set<string>([file]);
    const queue: string[][] = [[file]];
    while (queue.length > 0) {
      const chain = queue.shift()!;
      for (const e of byFile.get(chain[chain.length - 1]!) ?? []) {
        if (e.typeOnly) continue;
        const target = resolveSpecifier(e.file, e.specifier);
        if (target === undefined) {
          if (chain.length > 1 && isNodeOnly(e.specifier)) {
            violations.push(`${chain.join(' → ')} imports '${e.specifier}': ${chain[0]} loads a Node-only module at run time`);
          }
          continue;
        }
        if (inNodeFree(target) || seen.has(target)) continue;
        seen.add(target);
        queue.push([...chain, target]);
      }
    }
  }
  const unusedAllowances = allowed
    .filter((a) => !used.has(`${a.file} ${a.specifier}`))
    .map((a) => `${a.file} no longer imports '${a.specifier}': remove it from KNOWN_NODE_IMPORTS`);
  return { violations: [...new Set(violations)], unusedAllowances };
}

/**
 * The Node globals `text` uses as values (identifiers outside types, not property names): what a
 * browser would fail on at run time.
 */
function nodeGlobalUses(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: string[] = [];
  const isName = (node: ts.Identifier): boolean => {
    const p = node.parent;
    return (
      (ts.isPropertyAccessExpression(p) && p.name === node) ||
      ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isMethodDeclaration(p) || ts.isGetAccessor(p) || ts.isSetAccessor(p)) && p.name === node) ||
      ((ts.isImportSpecifier(p) || ts.isExportSpecifier(p) || ts.isBindingElement(p)) && p.propertyName === node) ||
      (ts.isEnumMember(p) && p.name === node) ||
      ts.isLabeledStatement(p)
    );
  };
  const visit = (node: ts.Node): void => {
    if (ts.isTypeNode(node) || ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) return; // erased
    if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text) && !isName(node)) {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      out.push(`${file}:${line + 1} uses the Node global '${node.text}'`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Rule 6: the browser entry's run-time closure, each file with the chain that loads it, checked. */
function browserViolations(edges: readonly ImportEdge[], textOf: (file: string) => string, entry = BROWSER_ENTRY): { violations: string[]; files: string[] } {
  const byFile = new Map<string, ImportEdge[]>();
  for (const e of edges) byFile.set(e.file, [...(byFile.get(e.file) ?? []), e]);
  const violations: string[] = [];
  const chains = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const chain = chains.get(file)!;
    for (const v of nodeGlobalUses(file, textOf(file))) violations.push(`${v} (loaded by ${chain.join(' → ')})`);
    for (const e of byFile.get(file) ?? []) {
      if (e.typeOnly) continue;
      const target = resolveSpecifier(e.file, e.specifier);
      if (target === undefined) {
        if (isNodeOnly(e.specifier)) violations.push(`${chain.join(' → ')} imports '${e.specifier}': the browser entry loads a Node-only module`);
        continue;
      }
      if (chains.has(target)) continue;
      chains.set(target, [...chain, target]);
      queue.push(target);
    }
  }
  return { violations, files: [...chains.keys()] };
}

describe('source layering (issue #21)', () => {
  const files = sourceFiles();
  const edges = files.flatMap((f) => parseImports(f, readFileSync(join(ROOT, f), 'utf8')));

  it('every_source_folder_has_a_layer_and_every_layer_folder_exists', () => {
    const dirs = [...new Set(files.map((f) => posix.dirname(f)))];
    const unplaced = dirs.filter((d) => layerFolder(d) === undefined).map((d) => `${d}/ has no layer in LAYERS`);
    const stale = LAYERS.flatMap((l) => l.folders)
      .filter((f) => !dirs.some((d) => layerFolder(d) === f))
      .map((f) => `LAYERS names ${f}, which holds no source file`);
    const all = [...unplaced, ...stale];
    expect(all, '\n' + all.join('\n')).to.deep.equal([]);
  });

  it('imports_go_down_the_layers_never_up', () => {
    const v = layerViolations(edges);
    expect(v, '\n' + v.join('\n')).to.deep.equal([]);
  });

  it('no_import_cycle_between_folders', () => {
    const c = folderCycles(edges);
    expect(c, '\n' + c.join('\n')).to.deep.equal([]);
  });

  it('virtqueue_and_devices_import_no_node_builtin_or_ffi', () => {
    const { violations, unusedAllowances } = nodeImportViolations(edges, KNOWN_NODE_IMPORTS);
    const all = [...violations, ...unusedAllowances];
    expect(all, '\n' + all.join('\n')).to.deep.equal([]);
  });

  it('the_browser_entry_loads_no_node_module_and_uses_no_node_global', () => {
    const { violations, files } = browserViolations(edges, (f) => readFileSync(join(ROOT, f), 'utf8'));
    expect(violations, '\n' + violations.join('\n')).to.deep.equal([]);
    // The closure is the real one: the device and the three node-free netdevs are in it.
    expect(files).to.include.members(['devices/virtio-net/virtio-net-device.ts', 'lib/netdev/memory-netdev.ts', 'lib/netdev/v86-bus-netdev.ts', 'lib/netdev/websocket-netdev.ts']);
  });

  it('the_parser_sees_every_kind_of_import_and_nothing_in_comments_or_strings', () => {
    const text = [
      "import a from './a.js';",
      "import type { B } from './b.js';",
      "export { c } from './c.js';",
      "export type { D } from './d.js';",
      "export * from './e.js';",
      "const f = await import('./f.js');",
      "let g: typeof import('./g.js');",
      "// import x from './comment.js';",
      "const s = \"import y from './string.js'\";",
    ].join('\n');
    expect(parseImports('lib/x/x.ts', text).map((e) => [e.specifier, e.typeOnly])).to.deep.equal([
      ['./a.js', false],
      ['./b.js', true],
      ['./c.js', false],
      ['./d.js', true],
      ['./e.js', false],
      ['./f.js', false],
      ['./g.js', true],
    ]);
  });

  // The checks fire: each rule on a small made-up tree, with the edge named in the message.
  describe('the checks name the edge that breaks a rule', () => {
    const edge = (file: string, specifier: string, typeOnly = false): ImportEdge => ({ file, specifier, typeOnly });

    it('an_import_from_below_the_device_into_devices_or_above_is_reported', () => {
      const v = layerViolations([
        edge('lib/netdev/x.ts', '../../devices/virtio-net/constants.js', true),
        edge('lib/packet/y.ts', '../qmp/server.js'),
        edge('virtqueue/z.ts', '../lib/packet/parse.js'),
        edge('lib/cli/ok.ts', '../../devices/virtio/index.js'),
      ]);
      expect(v).to.have.length(3);
      expect(v[0]).to.contain("lib/netdev → devices/virtio-net: lib/netdev/x.ts imports '../../devices/virtio-net/constants.js' (type only)");
      expect(v[0]).to.contain("'below the device' must not import 'the device'");
      expect(v[1]).to.contain('lib/packet → lib/qmp');
      expect(v[2]).to.contain('virtqueue → lib/packet');
    });

    it('an_unplaced_folder_and_an_import_of_test_code_are_reported', () => {
      const v = layerViolations([edge('lib/newthing/a.ts', '../packet/parse.js'), edge('lib/qmp/b.ts', '../../test/support/netns.js')]);
      expect(v[0]).to.contain('lib/newthing/a.ts: its folder has no layer');
      expect(v[1]).to.contain('outside the source tree (test/support/netns.ts)');
    });

    it('a_folder_cycle_is_reported_with_one_import_per_hop', () => {
      const c = folderCycles([
        edge('lib/filters/mirror.ts', '../colo/passthrough.js'),
        edge('lib/colo/colo-compare.ts', '../filters/chardev-socket.js'),
        edge('lib/netlink/socket.ts', '../netdev/host/libc.js'),
        edge('lib/netdev/rx-filter-sync.ts', '../netlink/rtnetlink.js'),
        edge('lib/qmp/a.ts', '../colo/passthrough.js'),
      ]);
      expect(c).to.deep.equal([
        "cycle lib/colo → lib/filters → lib/colo\n" +
          "    lib/colo → lib/filters: lib/colo/colo-compare.ts imports '../filters/chardev-socket.js'\n" +
          "    lib/filters → lib/colo: lib/filters/mirror.ts imports '../colo/passthrough.js'",
        "cycle lib/netdev → lib/netlink → lib/netdev\n" +
          "    lib/netdev → lib/netlink: lib/netdev/rx-filter-sync.ts imports '../netlink/rtnetlink.js'\n" +
          "    lib/netlink → lib/netdev: lib/netlink/socket.ts imports '../netdev/host/libc.js'",
      ]);
    });

    it('a_node_global_or_import_reached_from_the_browser_entry_is_reported_and_names_and_types_are_not', () => {
      const texts: Record<string, string> = {
        'browser.ts': "export * from './lib/a.js';\nexport type { T } from './lib/t.js';",
        'lib/a.ts': [
          "import { b } from './b.js';",
          'interface G { setImmediate?: () => void; process: number }',
          'let t: typeof setImmediate;',
          'const o = { require: 1, Buffer: 2 };',
          'g.setImmediate(f);',
          'Buffer.from(x);',
          'setImmediate(() => {});',
          'const { process: p } = g;',
        ].join('\n'),
        'lib/b.ts': "import { EventEmitter } from 'node:events';\nconsole.log(process.env);",
        'lib/t.ts': "import 'koffi';",
      };
      const es = Object.entries(texts).flatMap(([f, t]) => parseImports(f, t));
      const { violations, files } = browserViolations(es, (f) => texts[f]!, 'browser.ts');
      expect(files).to.deep.equal(['browser.ts', 'lib/a.ts', 'lib/b.ts']);
      expect(violations).to.deep.equal([
        "lib/a.ts:6 uses the Node global 'Buffer' (loaded by browser.ts → lib/a.ts)",
        "lib/a.ts:7 uses the Node global 'setImmediate' (loaded by browser.ts → lib/a.ts)",
        "lib/b.ts:2 uses the Node global 'process' (loaded by browser.ts → lib/a.ts → lib/b.ts)",
        "browser.ts → lib/a.ts → lib/b.ts imports 'node:events': the browser entry loads a Node-only module",
      ]);
    });

    it('a_node_import_in_devices_directly_or_through_lib_is_reported_and_a_stale_allowance_too', () => {
      const { violations, unusedAllowances } = nodeImportViolations(
        [
          edge('devices/virtio/a.ts', 'node:events'),
          edge('devices/virtio/b.ts', 'events'),
          edge('virtqueue/c.ts', 'koffi'),
          edge('devices/virtio-net/d.ts', '../../lib/netdev/netdev.js'),
          edge('lib/netdev/netdev.ts', 'node:events'),
          edge('devices/virtio-net/e.ts', '../../lib/netdev/types.js', true),
          edge('lib/netdev/types.ts', 'node:net'),
          edge('devices/virtio/allowed.ts', 'node:events'),
        ],
        [
          { file: 'devices/virtio/allowed.ts', specifier: 'node:events' },
          { file: 'devices/virtio/gone.ts', specifier: 'node:events' },
        ],
      );
      expect(violations).to.have.length(4);
      expect(violations[0]).to.contain("devices/virtio/a.ts imports 'node:events'");
      expect(violations[1]).to.contain("devices/virtio/b.ts imports 'events'");
      expect(violations[2]).to.contain("virtqueue/c.ts imports 'koffi'");
      expect(violations[3]).to.contain("devices/virtio-net/d.ts → lib/netdev/netdev.ts imports 'node:events'");
      expect(unusedAllowances).to.deep.equal([
        "devices/virtio/gone.ts no longer imports 'node:events': remove it from KNOWN_NODE_IMPORTS",
      ]);
    });
  });
});
