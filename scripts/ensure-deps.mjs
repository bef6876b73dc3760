// Runs before `npm test` and `npm run demo`: installs the locked dependencies on a fresh clone so each
// of the README's two commands works on its own. onnxruntime-node's postinstall would download CUDA
// provider libraries from NuGet (it fails offline), so it is skipped; see README "GPU".
import { existsSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const lock = 'package-lock.json';
const installed = 'node_modules/.package-lock.json';
if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) process.exit(0);

console.log('[ensure-deps] installing locked dependencies (npm ci)...');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], {
  stdio: 'inherit',
  shell: process.platform === 'win32',
  env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: process.env.ONNXRUNTIME_NODE_INSTALL ?? 'skip' },
});
process.exit(r.status ?? 1);
