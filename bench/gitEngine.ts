// Before/after measurements in one run: the engine as committed at a git ref, written out beside the
// working tree (under bench/results, which is gitignored, so node_modules still resolves). Read-only
// for the repository: only `git rev-parse`, `git ls-tree` and `git show`.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..');
const RESULTS = path.join(HERE, 'results');

/** Writes src/engine (with src/core and src/files, which it imports, and the catalog) as committed at `ref`; returns that src/engine folder. */
export function exportEngineAt(ref: string): string {
  const sha = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const base = path.join(RESULTS, `.engine-${sha}`);
  const files = execFileSync('git', ['ls-tree', '-r', '--name-only', sha, 'src/engine/', 'src/core/', 'src/files/', 'models/catalog.json'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  for (const file of files) {
    mkdirSync(path.dirname(path.join(base, file)), { recursive: true });
    writeFileSync(path.join(base, file), execFileSync('git', ['show', `${sha}:${file}`], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }));
  }
  return path.join(base, 'src', 'engine');
}
