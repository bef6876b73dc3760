// Bundles the extension-host suite into dist/test/suite/index.js (inside the extension folder, as VS Code
// requires for extensionTestsPath). Mocha is bundled so the suite loads in any extension host; vscode is provided
// by the host.
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// --outdir=DIR builds the same suite into another extension folder (test/e2e uses it to prove the harness on a
// stand-in extension).
const outArg = process.argv.find((a) => a.startsWith('--outdir='));
const outdir = outArg ? path.resolve(outArg.slice('--outdir='.length)) : path.join(root, 'dist/test/suite');
await esbuild.build({
  absWorkingDir: root,
  // index.js exports run() (extensionTestsPath); tests.js registers at load time (for @vscode/test-cli's runner).
  entryPoints: { index: 'test/integration/suite/index.ts', tests: 'test/integration/suite/mochaFile.ts' },
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'inline',
  external: ['vscode'],
  logLevel: 'warning',
  // Those warnings concern mocha's parallel mode (worker files resolved at run time), which this suite never uses.
  logOverride: { 'require-resolve-not-external': 'silent' },
});
