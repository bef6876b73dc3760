// Runs before `npm test` and `npm run demo`: installs the locked dependencies on a fresh clone so each
// of the README's two commands works on its own. onnxruntime-node's postinstall would download CUDA
// provider libraries from NuGet (it fails offline), so it is skipped; see README "GPU".
//
// "Up to date" means node_modules was installed from a package-lock.json with the same content (a hash
// stamped after `npm ci`), not an older file time: a fresh checkout or a second work tree has new file
// times but the same lock, and must not wipe and reinstall a node_modules that is already right.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const lock = 'package-lock.json';
const stamp = 'node_modules/.llava-deps-stamp';
const lockHash = createHash('sha256').update(readFileSync(lock)).digest('hex');
if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === lockHash) process.exit(0);

console.log('[ensure-deps] installing locked dependencies (npm ci)...');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], {
  stdio: 'inherit',
  shell: process.platform === 'win32',
  env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: process.env.ONNXRUNTIME_NODE_INSTALL ?? 'skip' },
});
if (r.status === 0) writeFileSync(stamp, `${lockHash}\n`);
process.exit(r.status ?? 1);
