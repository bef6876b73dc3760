// One build for every bundle: the extension host, the forked engine process, the CLI and the webview.
// Native packages (onnxruntime-node, sharp) stay external: they are shipped per platform in node_modules.
import * as esbuild from 'esbuild';
import { mkdirSync, copyFileSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
// --test-hooks compiles in what only the test suites use (the API activate() returns to the
// extension-host suite, the llava._test.* commands). Never in what users install: scripts/package.mjs
// builds without it and checks the bundles for it.
const testHooks = process.argv.includes('--test-hooks');

const nodeCommon = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  external: ['vscode', 'onnxruntime-node', 'sharp'],
  define: { __LLAVA_TEST_HOOKS__: String(testHooks) },
  logLevel: 'info',
};

const builds = [
  { ...nodeCommon, entryPoints: { extension: 'src/extension/index.ts' }, outdir: 'dist' },
  { ...nodeCommon, entryPoints: { engine: 'src/engine-process/main.ts' }, outdir: 'dist' },
  { ...nodeCommon, entryPoints: { cli: 'src/cli/index.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } },
  {
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    sourcemap: !production,
    minify: production,
    entryPoints: { chat: 'webview/chat/main.ts' },
    outdir: 'dist/webview',
    loader: { '.css': 'css', '.ttf': 'file' },
    logLevel: 'info',
  },
];

import { existsSync } from 'node:fs';
// Entry points appear as the issues land; build only those that exist so every commit stays buildable.
const present = builds.filter((b) => Object.values(b.entryPoints).every((p) => existsSync(p)));

mkdirSync('dist/webview', { recursive: true });
if (existsSync('node_modules/@vscode/codicons/dist/codicon.css')) {
  copyFileSync('node_modules/@vscode/codicons/dist/codicon.css', 'dist/webview/codicon.css');
  copyFileSync('node_modules/@vscode/codicons/dist/codicon.ttf', 'dist/webview/codicon.ttf');
}

if (watch) {
  const ctxs = await Promise.all(present.map((b) => esbuild.context(b)));
  await Promise.all(ctxs.map((c) => c.watch()));
} else {
  await Promise.all(present.map((b) => esbuild.build(b)));
}
