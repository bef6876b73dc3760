// Module boundaries from docs/ARCHITECTURE.md, checked on the source text. src/ has one folder per
// part of the product; each folder's index.ts is its only public door; folders depend on each other
// top-down (the table below, which ARCHITECTURE.md draws); only the VS Code host imports `vscode`;
// only the engine loads the native packages, and nothing the extension host loads reaches the
// engine (onnxruntime blocks and can abort its process: it lives in the forked engine process).
// Webview code is a browser bundle and may take only types from src/, plus the protocol's guards.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src');

/**
 * Which folders each folder may import (their doors), top-down. Adding an arrow is a design change:
 * update docs/ARCHITECTURE.md with it.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  files: ['core'],
  engine: ['core', 'files'],
  protocol: ['core'],
  grounding: ['core', 'protocol'],
  hub: ['core'],
  captioning: ['core', 'engine', 'files'],
  convert: ['core'],
  'engine-process': ['core', 'engine'],
  'convert-process': ['core'],
  server: ['core', 'engine'],
  remote: ['core', 'captioning'],
  eval: ['core', 'engine', 'grounding'],
  cli: ['core', 'engine', 'captioning', 'hub', 'server', 'eval', 'convert', 'convert-process', 'files'],
  extension: ['core', 'engine-process', 'convert-process', 'captioning', 'hub', 'grounding', 'protocol', 'remote', 'files'],
};

/** Program entry points inside a folder (bundled by esbuild.mjs); nothing may import them. */
const ENTRY_POINTS = ['src/engine-process/main.ts'];
/** Packages with native code: only the engine may load them. */
const NATIVE = ['onnxruntime-node', 'sharp'];

function files(dir: string, ext = /\.ts$/): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p, ext) : ext.test(p) && !p.endsWith('.d.ts') ? [p] : [];
  });
}

interface Import {
  spec: string;
  /** `import type` / `export type`: erased at build time */
  typeOnly: boolean;
  /** `import('…')`: loaded when called, not when the module loads */
  dynamic: boolean;
}

export function importsOf(source: string): Import[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const stat = [...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm)].map((m) => ({
    spec: m[2],
    typeOnly: !!m[1],
    dynamic: false,
  }));
  const dyn = [...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => ({ spec: m[1], typeOnly: false, dynamic: true }));
  return [...stat, ...dyn];
}

const rel = (p: string) => path.relative(ROOT, p).split(path.sep).join('/');
/** Top-level folder under src/ of a path, or undefined outside src/. */
const folderOf = (p: string) => (p.startsWith(SRC + path.sep) ? path.relative(SRC, p).split(path.sep)[0] : undefined);

/** Resolves a relative import to the .ts file it loads (a folder means its index.ts). */
function resolveTs(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base, `${base}.ts`, path.join(base, 'index.ts')]) if (existsSync(c) && statSync(c).isFile()) return c;
  return undefined;
}

interface Edge {
  from: string;
  to: string;
  imp: Import;
}

function srcEdges(): Edge[] {
  return files(SRC).flatMap((from) =>
    importsOf(readFileSync(from, 'utf8'))
      .filter((imp) => imp.spec.startsWith('.') && !imp.spec.endsWith('.json'))
      .map((imp) => {
        const to = resolveTs(from, imp.spec);
        assert.ok(to, `${rel(from)}: cannot resolve ${imp.spec}`);
        return { from, to, imp };
      }),
  );
}

export function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

test('every folder under src/ is in the dependency table and opens its index.ts door with what it owns', () => {
  const folders = readdirSync(SRC).filter((n) => statSync(path.join(SRC, n)).isDirectory());
  assert.deepEqual([...folders].sort(), Object.keys(ALLOWED).sort(), 'src/ folders and the ALLOWED table differ: update both (and ARCHITECTURE.md)');
  assert.deepEqual(readdirSync(SRC).filter((n) => !statSync(path.join(SRC, n)).isDirectory()), [], 'files directly under src/: put them in a folder');
  for (const f of folders) {
    const door = path.join(SRC, f, 'index.ts');
    assert.ok(existsSync(door), `src/${f} has no index.ts`);
    assert.match(readFileSync(door, 'utf8'), /^\/\/ \S/, `src/${f}/index.ts does not open with a comment saying what the folder owns`);
  }
});

test('folders import each other only through index.ts, only downward, and never an entry point', () => {
  const edges = srcEdges();
  assert.ok(edges.length > 100, `only ${edges.length} imports found: is the parser broken?`);
  for (const { from, to, imp } of edges) {
    assert.ok(!ENTRY_POINTS.includes(rel(to)), `${rel(from)} imports the entry point ${rel(to)}`);
    const a = folderOf(from)!;
    const b = folderOf(to);
    assert.ok(b, `${rel(from)} imports ${imp.spec}, outside src/`);
    if (a === b) continue;
    assert.equal(rel(to), `src/${b}/index.ts`, `${rel(from)} reaches into ${rel(to)}: import '${path.posix.relative(path.dirname(rel(from)), `src/${b}`)}' (the folder's door) instead`);
    assert.ok(ALLOWED[a]?.includes(b), `${rel(from)} imports src/${b}, but ${a} may depend only on [${ALLOWED[a]?.join(', ')}]`);
  }
});

test('no import cycles between folders (nor between the parts of the host), nor between files', () => {
  const edges = srcEdges();
  const folderGraph = new Map<string, Set<string>>();
  const fileGraph = new Map<string, Set<string>>();
  for (const { from, to, imp } of edges) {
    const a = folderOf(from)!;
    const b = folderOf(to)!;
    if (a !== b) (folderGraph.get(a) ?? folderGraph.set(a, new Set()).get(a)!).add(b);
    // a type-only import between two files of one folder is erased and cannot form a load-order cycle
    if (!imp.typeOnly) (fileGraph.get(rel(from)) ?? fileGraph.set(rel(from), new Set()).get(rel(from))!).add(rel(to));
  }
  assert.equal(findCycle(folderGraph)?.join(' -> '), undefined, 'folder cycle');
  // Inside the host too: its root files (ctx, config, model store, ...) are used by commands/ and
  // panels/ and use neither; index.ts, the composition root that wires them all, is left out.
  const hostPart = (p: string) => {
    const r = path.relative(path.join(SRC, 'extension'), p).split(path.sep);
    return r.length > 1 ? r[0] : '(root)';
  };
  const hostGraph = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    if (folderOf(from) !== 'extension' || folderOf(to) !== 'extension' || rel(from) === 'src/extension/index.ts') continue;
    const a = hostPart(from);
    const b = hostPart(to);
    if (a !== b) (hostGraph.get(a) ?? hostGraph.set(a, new Set()).get(a)!).add(b);
  }
  assert.ok(hostGraph.size >= 2, 'src/extension has no subfolders any more? update this test');
  assert.equal(findCycle(hostGraph)?.join(' -> '), undefined, 'cycle between parts of src/extension');
  assert.equal(findCycle(fileGraph)?.join(' -> '), undefined, 'file cycle');
});

test('the cycle and import checks themselves catch what they must', () => {
  const g = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])]]);
  assert.deepEqual(findCycle(g), ['a', 'b', 'c', 'a']);
  assert.equal(findCycle(new Map([['a', new Set(['b'])], ['b', new Set<string>()]])), undefined);
  const imps = importsOf("import type { A } from './a';\nimport {\n  b,\n} from '../b';\nexport * from './c';\nimport 'd';\nconst e = () => import('./e');\n// import x from './commented';");
  assert.deepEqual(imps.map((i) => `${i.spec}:${i.typeOnly ? 't' : ''}${i.dynamic ? 'd' : ''}`), ['./a:t', '../b:', './c:', 'd:', './e:d']);
});

test('only src/extension imports vscode; only src/engine loads the native packages', () => {
  for (const file of files(SRC)) {
    const folder = folderOf(file);
    for (const { spec } of importsOf(readFileSync(file, 'utf8'))) {
      if (spec === 'vscode') assert.equal(folder, 'extension', `${rel(file)} imports vscode`);
      if (NATIVE.includes(spec)) assert.equal(folder, 'engine', `${rel(file)} imports ${spec}`);
    }
  }
});

test('nothing the extension host loads reaches the engine (the host never loads onnxruntime)', () => {
  // the static, run-time closure of the host's entry point
  const seen = new Set<string>();
  const todo = [path.join(SRC, 'extension', 'index.ts')];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const imp of importsOf(readFileSync(f, 'utf8'))) {
      if (imp.typeOnly || imp.dynamic || !imp.spec.startsWith('.') || imp.spec.endsWith('.json')) continue;
      const to = resolveTs(f, imp.spec);
      if (to) todo.push(to);
    }
  }
  assert.ok(seen.size > 20, `host closure has only ${seen.size} files`);
  const engineFiles = [...seen].filter((f) => folderOf(f) === 'engine').map(rel);
  assert.deepEqual(engineFiles, [], 'the extension host loads engine code');
  // conversions run `llava convert` in a child (src/convert-process): the converter itself stays out of the host
  assert.ok(seen.has(path.join(SRC, 'convert-process', 'runner.ts')), 'the host does not reach the conversion runner');
  const converterFiles = [...seen].filter((f) => folderOf(f) === 'convert').map(rel);
  assert.deepEqual(converterFiles, [], 'the extension host loads converter code');
});

test('webview code takes only types from src/, except the dependency-free protocol guards', () => {
  for (const file of files(path.join(ROOT, 'webview'))) {
    for (const { typeOnly, spec } of importsOf(readFileSync(file, 'utf8'))) {
      assert.notEqual(spec, 'vscode', `${rel(file)} imports vscode`);
      if (!spec.includes('/src/')) continue;
      const target = rel(path.resolve(path.dirname(file), spec));
      if (target === 'src/protocol' || target === 'src/protocol/index') continue;
      assert.ok(typeOnly, `${rel(file)} imports values from ${spec}; use import type`);
    }
  }
  // the protocol is bundled into the browser: it may not pull in anything at run time
  for (const file of files(path.join(SRC, 'protocol'))) {
    for (const { typeOnly, spec } of importsOf(readFileSync(file, 'utf8'))) assert.ok(typeOnly, `${rel(file)} imports ${spec} at run time`);
  }
});
