#!/usr/bin/env node
// `npm run package` — builds the production bundles and makes one VSIX per platform target.
//
//   node scripts/package.mjs [--target linux-x64,win32-x64] [--skip-build] [--keep-staging] [--test-hooks]
//
// --test-hooks makes the test build the e2e suite runs (llava-vscode-<target>-<version>-test.vsix):
// the same staging with the test-only API and llava._test.* commands compiled in. Without it (what
// users install) the test hooks are left out of the bundles and the manifest, and verify() fails if
// any trace of them remains.
//
// Why staging: onnxruntime-node ships every platform's binaries in one npm package (~290 MB), and
// sharp's native parts come as per-platform optional packages (@img/sharp-<platform>-<arch>, of
// which npm installs only the host's). A VSIX made from the repo root would carry all of the first
// and only the host's share of the second. So for each target we stage a copy of the extension
// (out/package/<target>/) whose node_modules holds only the runtime closure of the native externals
// (everything else is bundled by esbuild), with only that target's binaries, fetching the other
// platforms' @img packages from the npm registry with `npm pack` (cached in out/native-cache/).
// The result is verified from the VSIX itself: no other platform's binaries, no devDependencies,
// every module the bundles require() is present, and linux-x64 stays under SIZE_LIMIT_MB.
//
// GPU (CUDA) on Linux x64: the VSIX holds only the CPU build of onnxruntime. onnxruntime-node's
// postinstall downloads the CUDA provider libraries from NuGet (they are too large for npm, and
// far too large for a VSIX), and VS Code never runs postinstall scripts. A Linux GPU user needs:
//   - an NVIDIA driver, CUDA 12.x runtime and cuDNN 9.x on the library path (LD_LIBRARY_PATH or
//     ldconfig), and
//   - onnxruntime's provider libraries for the same version (1.30.0):
//     libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so from the NuGet
//     package Microsoft.ML.OnnxRuntime.Gpu.Linux (runtimes/linux-x64/native/), copied next to
//     libonnxruntime.so.1 in <extension>/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/.
// Without them the engine falls back to the CPU provider and says why in the status bar.
// DirectML (win32) and CoreML (darwin-arm64) are built into the bundled onnxruntime binaries.

import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'out');
const STAGING_ROOT = path.join(OUT, 'package');
const NATIVE_CACHE = path.join(OUT, 'native-cache');
const VSIX_DIR = path.join(OUT, 'vsix');
/** The README users see (the Marketplace page): shipped as the VSIX's README.md. */
const USER_README = 'docs/marketplace/README.md';
const SIZE_LIMIT_MB = { 'linux-x64': 40 };
/** The built-in demo model, shipped in every VSIX when the repository has it (verify() then requires its ONNX files). */
const BUILTIN_MODEL_DIR = 'models/builtin';

/** vsce target -> Node's process.platform / process.arch on it. */
const TARGETS = {
  'linux-x64': { platform: 'linux', arch: 'x64' },
  'linux-arm64': { platform: 'linux', arch: 'arm64' },
  'win32-x64': { platform: 'win32', arch: 'x64' },
  'darwin-arm64': { platform: 'darwin', arch: 'arm64' },
};

/** Packages esbuild leaves external because they load native code (see esbuild.mjs). */
const NATIVE_EXTERNALS = ['onnxruntime-node', 'sharp'];

/**
 * Per-package pruning. `dropDeps`: dependencies used only by install scripts (onnxruntime-node's
 * postinstall needs adm-zip and global-agent to fetch CUDA libraries; nothing at runtime requires
 * them). `skipDirs`: folders (relative to the package) never needed at runtime. `keepBinary`: for a
 * path under a per-platform binary folder, whether it belongs to the target.
 */
const PACKAGE_RULES = {
  'onnxruntime-node': {
    dropDeps: ['adm-zip', 'global-agent'],
    dropScripts: true,
    skipDirs: ['script', 'lib'],
    keepBinary: (rel, t) => {
      const m = /^bin\/napi-v\d+\/([^/]+)\/([^/]+)\//.exec(rel);
      return !m || (m[1] === t.platform && m[2] === t.arch);
    },
  },
  sharp: { skipDirs: ['src', 'install', 'lib'], dropScripts: true },
};

/** Files no runtime needs: sources, maps, type declarations, docs (licences are kept). */
const SKIP_FILE = /(\.map|\.ts|\.cts|\.mts|\.md|\.markdown)$/i;
const KEEP_FILE = /^(licen[cs]e|notice|third[-_]party)/i;

/** An optional dependency is a platform package for this target when its name ends in -<platform>-<arch>. */
const isTargetPlatformPackage = (name, t) => name.endsWith(`-${t.platform}-${t.arch}`);

// ---------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const args = { targets: Object.keys(TARGETS), build: true, keepStaging: false, testHooks: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--skip-build') args.build = false;
    else if (a === '--keep-staging') args.keepStaging = true;
    else if (a === '--test-hooks') args.testHooks = true;
    else if (a === '--target' || a.startsWith('--target=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      args.targets = String(v).split(',').map((s) => s.trim()).filter(Boolean);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const t of args.targets) if (!TARGETS[t]) throw new Error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(', ')}`);
  return args;
}

function run(cmd, args, opts = {}) {
  // npm is a .cmd shim on Windows, which spawn only finds through a shell.
  const shell = process.platform === 'win32' && !cmd.endsWith('.exe') && cmd !== process.execPath;
  const r = spawnSync(cmd, args, { stdio: 'inherit', shell, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
  return r;
}

const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const writeJson = (p, v) => fs.writeFileSync(p, JSON.stringify(v, null, 2) + '\n');

/** Node's lookup: <dir>/node_modules/<name>, then each parent's, up to the repo root. */
function findInstalled(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.relative(ROOT, dir) === '' || dir === path.dirname(dir)) return undefined;
  }
}

/** A platform package that npm did not install here (another OS's): `npm pack` it once into the cache. */
function fetchPackage(name, version) {
  const dest = path.join(NATIVE_CACHE, `${name.replace('/', '+')}@${version}`);
  if (fs.existsSync(path.join(dest, 'package.json'))) return dest;
  fs.mkdirSync(NATIVE_CACHE, { recursive: true });
  const r = spawnSync('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', NATIVE_CACHE], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: process.platform === 'win32',
  });
  if (r.status !== 0) throw new Error(`npm pack ${name}@${version} failed (status ${r.status})`);
  const tarball = path.join(NATIVE_CACHE, JSON.parse(r.stdout)[0].filename);
  const tmp = `${dest}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  // npm tarballs hold everything under package/.
  run('tar', ['-xzf', tarball, '-C', tmp, '--strip-components=1']);
  fs.rmSync(tarball);
  fs.renameSync(tmp, dest);
  return dest;
}

function copyTree(src, dest, filter) {
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name);
    const d = path.join(dest, ent.name);
    if (!filter(s, ent)) continue;
    if (ent.isDirectory()) copyTree(s, d, filter);
    else if (ent.isFile()) {
      fs.mkdirSync(dest, { recursive: true });
      fs.copyFileSync(s, d);
    }
  }
}

/**
 * Copies the runtime closure of `names` into <stage>/node_modules, pruned for target `t`.
 * Returns the staged package names (top-level and nested) for the verification step.
 */
function stageNodeModules(stage, names, t) {
  const staged = new Set();
  const queue = names.map((name) => ({ name, from: ROOT, optional: false }));
  const seenDirs = new Set();
  while (queue.length) {
    const { name, from, optional, version } = queue.shift();
    let src = findInstalled(name, from);
    // Keep npm's layout: a nested node_modules/<dep> stays nested under its parent; a fetched
    // platform package is hoisted to the top, where sharp's require('@img/...') finds it.
    let rel = src && path.relative(ROOT, src);
    if (!src) {
      if (!optional) throw new Error(`${name} (needed at runtime) is not installed; run npm install`);
      src = fetchPackage(name, version);
      rel = path.join('node_modules', name);
    }
    if (seenDirs.has(src)) continue;
    seenDirs.add(src);
    const dest = path.join(stage, rel);
    const rules = PACKAGE_RULES[name] ?? {};
    copyTree(src, dest, (p, ent) => {
      const r = path.relative(src, p).split(path.sep).join('/');
      if (ent.isDirectory()) {
        if (ent.name === 'node_modules') return false;
        if (rules.skipDirs?.includes(r)) return false;
        return rules.keepBinary ? rules.keepBinary(r + '/', t) : true;
      }
      if (KEEP_FILE.test(ent.name)) return true;
      if (SKIP_FILE.test(ent.name)) return false;
      return rules.keepBinary ? rules.keepBinary(r, t) : true;
    });
    staged.add(name);

    const pkg = readJson(path.join(src, 'package.json'));
    const deps = Object.keys(pkg.dependencies ?? {}).filter((d) => !rules.dropDeps?.includes(d));
    const optionals = Object.entries(pkg.optionalDependencies ?? {}).filter(([d]) => isTargetPlatformPackage(d, t));
    for (const d of deps) if (!pkg.optionalDependencies?.[d]) queue.push({ name: d, from: src, optional: false });
    for (const [d, v] of optionals) queue.push({ name: d, from: src, optional: true, version: v });

    // The staged package.json must describe the staged tree, or `npm ls` (which vsce runs) fails.
    const stagedPkg = { ...pkg };
    if (rules.dropDeps) stagedPkg.dependencies = Object.fromEntries(Object.entries(pkg.dependencies ?? {}).filter(([d]) => !rules.dropDeps.includes(d)));
    if (pkg.optionalDependencies) {
      stagedPkg.optionalDependencies = Object.fromEntries(optionals);
      if (stagedPkg.dependencies) for (const d of Object.keys(pkg.optionalDependencies)) if (!optionals.some(([o]) => o === d)) delete stagedPkg.dependencies[d];
    }
    if (rules.dropScripts) delete stagedPkg.scripts;
    writeJson(path.join(dest, 'package.json'), stagedPkg);
  }
  return staged;
}

/** Test-only command ids (package.json declares them for the e2e test build). */
const isTestCommand = (id) => typeof id === 'string' && id.startsWith('llava._test.');

/** The manifest without the test-only commands and their menu entries. */
function withoutTestHooks(manifest) {
  const contributes = { ...manifest.contributes };
  contributes.commands = (contributes.commands ?? []).filter((c) => !isTestCommand(c.command));
  contributes.menus = Object.fromEntries(
    Object.entries(contributes.menus ?? {}).map(([menu, items]) => [menu, items.filter((i) => !isTestCommand(i.command))]),
  );
  return { ...manifest, contributes };
}

function stageExtension(target, rootPkg, testHooks) {
  const t = TARGETS[target];
  const stage = path.join(STAGING_ROOT, target);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });

  // The manifest as published: no scripts (vsce would run vscode:prepublish in the staging copy),
  // no devDependencies, and only the dependencies that are not bundled.
  const manifest = testHooks ? { ...rootPkg } : withoutTestHooks(rootPkg);
  delete manifest.devDependencies;
  delete manifest.scripts;
  manifest.dependencies = Object.fromEntries(NATIVE_EXTERNALS.map((d) => [d, rootPkg.dependencies[d]]));
  // vsce insists on the key when "main" is set; VS Code >= 1.74 infers the events from "contributes".
  manifest.activationEvents ??= [];
  writeJson(path.join(stage, 'package.json'), manifest);

  for (const f of ['README.md', 'LICENSE', 'LICENSE.md', 'LICENSE.txt', 'CHANGELOG.md', '.vscodeignore']) {
    if (fs.existsSync(path.join(ROOT, f))) fs.copyFileSync(path.join(ROOT, f), path.join(stage, f));
  }
  // users get the user guide as the extension's README (the Marketplace page); the repository's README.md opens
  // with the developer set-up commands
  if (fs.existsSync(path.join(ROOT, USER_README))) fs.copyFileSync(path.join(ROOT, USER_README), path.join(stage, 'README.md'));
  // the README's screenshots, so the extension's details page shows them from inside the VSIX
  if (fs.existsSync(path.join(ROOT, 'docs/images'))) copyTree(path.join(ROOT, 'docs/images'), path.join(stage, 'docs/images'), () => true);
  const noMaps = (p, ent) => ent.isDirectory() || !p.endsWith('.map');
  copyTree(path.join(ROOT, 'dist'), path.join(stage, 'dist'), noMaps);
  if (fs.existsSync(path.join(ROOT, 'media'))) copyTree(path.join(ROOT, 'media'), path.join(stage, 'media'), (p, ent) => !(ent.isDirectory() && ent.name === 'samples'));
  if (fs.existsSync(path.join(ROOT, 'models/catalog.json'))) {
    fs.mkdirSync(path.join(stage, 'models'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'models/catalog.json'), path.join(stage, 'models/catalog.json'));
  }
  // the built-in demo model (`llava.model` = `builtin`): the same files on every platform. The
  // tools' own leftovers (.llava-convert.json / .llava-download.json manifests, locks, .part files) never ship.
  if (fs.existsSync(path.join(ROOT, BUILTIN_MODEL_DIR))) {
    copyTree(path.join(ROOT, BUILTIN_MODEL_DIR), path.join(stage, BUILTIN_MODEL_DIR), (p, ent) => ent.isDirectory() || !/^\.llava-|\.(part|lock)$/.test(ent.name));
  }
  const staged = stageNodeModules(stage, NATIVE_EXTERNALS, t);
  return { stage, staged };
}

/** Entry names and sizes from a zip's central directory (a VSIX is a zip). */
function listZip(file) {
  const buf = fs.readFileSync(file);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip`);
  const count = buf.readUInt16LE(eocd + 10);
  let off = buf.readUInt32LE(eocd + 16);
  const entries = [];
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(off) !== 0x02014b50) throw new Error(`${file}: bad central directory`);
    const size = buf.readUInt32LE(off + 24);
    const nameLen = buf.readUInt16LE(off + 28);
    const extraLen = buf.readUInt16LE(off + 30);
    const commentLen = buf.readUInt16LE(off + 32);
    entries.push({ name: buf.toString('utf8', off + 46, off + 46 + nameLen), size });
    off += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Bare module names the bundles load at runtime (esbuild leaves externals as require("x")). */
function requiredModules(distDir) {
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
  const found = new Set();
  for (const f of fs.readdirSync(distDir).filter((f) => f.endsWith('.js'))) {
    const src = fs.readFileSync(path.join(distDir, f), 'utf8');
    for (const m of src.matchAll(/require\(\s*["']([^"'./][^"']*)["']\s*\)/g)) {
      const name = m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0];
      if (!builtins.has(m[1]) && !builtins.has(name) && name !== 'vscode') found.add(name);
    }
  }
  return found;
}

const NATIVE_FILE = /\.(node|dll|dylib|so)(\.\d+)*$/i;

/** Traces of the test hooks in the staged bundles and manifest (what users install must have none). */
function testHookTraces(stage) {
  const traces = [];
  const dist = path.join(stage, 'dist');
  for (const f of fs.readdirSync(dist).filter((f) => f.endsWith('.js'))) {
    const src = fs.readFileSync(path.join(dist, f), 'utf8');
    for (const needle of ['llava._test.', 'LLAVA_TEST_HOOKS', 'llava.testHooks']) if (src.includes(needle)) traces.push(`dist/${f} contains "${needle}"`);
  }
  if (fs.readFileSync(path.join(stage, 'package.json'), 'utf8').includes('llava._test.')) traces.push('package.json declares llava._test.* commands');
  return traces;
}

function verify(target, vsix, rootPkg, stage, testHooks) {
  const t = TARGETS[target];
  const entries = listZip(vsix);
  const problems = [];
  const traces = testHookTraces(stage);
  if (!testHooks) problems.push(...traces.map((x) => `test hook in the VSIX: ${x}`));
  else if (traces.length === 0) problems.push('--test-hooks build without its test hooks');
  const nm = 'extension/node_modules/';
  const packages = new Set(
    entries.filter((e) => e.name.startsWith(nm)).map((e) => {
      const parts = e.name.slice(nm.length).split('/');
      return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    }),
  );
  for (const dev of Object.keys(rootPkg.devDependencies ?? {})) {
    if (packages.has(dev)) problems.push(`devDependency ${dev} is in the VSIX`);
  }
  for (const m of requiredModules(path.join(ROOT, 'dist'))) {
    if (!packages.has(m)) problems.push(`the bundles require("${m}") but it is not in the VSIX`);
  }
  for (const e of entries.filter((e) => NATIVE_FILE.test(e.name))) {
    const ortDir = /\/bin\/napi-v\d+\/([^/]+)\/([^/]+)\//.exec(e.name);
    const imgPkg = /\/@img\/sharp-(?:libvips-)?([a-z0-9]+)-([a-z0-9]+)\//.exec(e.name);
    const m = ortDir ?? imgPkg;
    if (!m) problems.push(`native file of unknown platform: ${e.name}`);
    else if (m[1] !== t.platform || m[2] !== t.arch) problems.push(`${m[1]}-${m[2]} binary in the ${target} VSIX: ${e.name}`);
  }
  const hasOrt = entries.some((e) => new RegExp(`onnxruntime-node/bin/napi-v\\d+/${t.platform}/${t.arch}/onnxruntime_binding\\.node$`).test(e.name));
  const hasSharp = entries.some((e) => e.name.includes(`@img/sharp-${t.platform}-${t.arch}/`) && e.name.endsWith('.node'));
  if (fs.existsSync(path.join(ROOT, BUILTIN_MODEL_DIR, 'onnx'))) {
    const want = fs.readdirSync(path.join(ROOT, BUILTIN_MODEL_DIR, 'onnx')).filter((f) => f.endsWith('.onnx'));
    const shipped = new Set(entries.map((e) => e.name));
    for (const f of ['config.json', ...want.map((f) => `onnx/${f}`)]) {
      if (!shipped.has(`extension/${BUILTIN_MODEL_DIR}/${f}`)) problems.push(`built-in model file ${BUILTIN_MODEL_DIR}/${f} is not in the VSIX`);
    }
  }
  if (!hasOrt) problems.push(`onnxruntime binding for ${target} missing`);
  if (!hasSharp) problems.push(`sharp binding for ${target} missing`);
  const sizeMB = fs.statSync(vsix).size / 1024 / 1024;
  if (SIZE_LIMIT_MB[target] && sizeMB > SIZE_LIMIT_MB[target]) problems.push(`${sizeMB.toFixed(1)} MB exceeds the ${SIZE_LIMIT_MB[target]} MB budget`);
  const unpackedMB = entries.reduce((s, e) => s + e.size, 0) / 1024 / 1024;
  return { target, sizeMB, unpackedMB, files: entries.length, packages: [...packages].sort(), problems };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const rootPkg = readJson(path.join(ROOT, 'package.json'));
  for (const d of NATIVE_EXTERNALS) if (!rootPkg.dependencies?.[d]) throw new Error(`package.json dependencies lack ${d}`);

  // dist/ is not wiped first (others may be using it); stale dev .map files are left out when staging.
  if (args.build) run(process.execPath, ['esbuild.mjs', '--production', ...(args.testHooks ? ['--test-hooks'] : [])], { cwd: ROOT });
  if (!fs.existsSync(path.join(ROOT, 'dist/extension.js'))) throw new Error('dist/extension.js missing: the build did not produce the extension bundle');

  const vsce = path.join(ROOT, 'node_modules/@vscode/vsce/vsce');
  fs.mkdirSync(VSIX_DIR, { recursive: true });
  const results = [];
  for (const target of args.targets) {
    console.log(`\n== ${target}: staging`);
    const { stage } = stageExtension(target, rootPkg, args.testHooks);
    const vsix = path.join(VSIX_DIR, `${rootPkg.name}-${target}-${rootPkg.version}${args.testHooks ? '-test' : ''}.vsix`);
    fs.rmSync(vsix, { force: true });
    const extra = [];
    if (!['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((f) => fs.existsSync(path.join(stage, f)))) extra.push('--skip-license');
    // without a repository vsce cannot make the README's relative image links absolute: keep them relative
    // (they resolve inside the installed extension, where docs/images ships)
    if (!rootPkg.repository) extra.push('--allow-missing-repository', '--no-rewrite-relative-links');
    run(process.execPath, [vsce, 'package', '--target', target, '--out', vsix, ...extra], { cwd: stage });
    results.push(verify(target, vsix, rootPkg, stage, args.testHooks));
    if (!args.keepStaging) fs.rmSync(stage, { recursive: true, force: true });
  }

  console.log('\n| target | VSIX MB | unpacked MB | files | node_modules packages |');
  console.log('| --- | ---: | ---: | ---: | --- |');
  for (const r of results) {
    console.log(`| ${r.target} | ${r.sizeMB.toFixed(1)} | ${r.unpackedMB.toFixed(1)} | ${r.files} | ${r.packages.join(', ')} |`);
  }
  const failed = results.filter((r) => r.problems.length);
  for (const r of failed) for (const p of r.problems) console.error(`✗ ${r.target}: ${p}`);
  if (failed.length) process.exit(1);
  console.log(`\nVSIX files in ${path.relative(ROOT, VSIX_DIR)}/ — each verified: only its own platform's binaries, no devDependencies.`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
