// `--model builtin`: the demo model shipped with the program, found next to it — `<package root>/models/builtin`,
// where the package root is the nearest folder above the program holding package.json (dist/cli.js in the
// installed extension or the repository; src/cli under tsx). Resolution is tested on made-up package layouts;
// the real program is run once against this repository's own models/builtin.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { builtinModelDir, modelFolderFor, packageRootOf } from '../../src/cli/hubModel';
import { ensureFixtures } from '../fixtures/index';

const ROOT = path.resolve(__dirname, '..', '..');
const noLog = () => {};

describe('--model builtin resolution', () => {
  let tmp: string;
  let tiny: string;
  before(async () => {
    [tiny] = await ensureFixtures(['tiny-llava']);
    tmp = mkdtempSync(path.join(tmpdir(), 'llava-builtin-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** An installed extension: <ext>/package.json, <ext>/dist/cli.js, and (optionally) <ext>/models/builtin. */
  function extensionFolder(name: string, withModel: boolean): string {
    const ext = path.join(tmp, name);
    mkdirSync(path.join(ext, 'dist'), { recursive: true });
    writeFileSync(path.join(ext, 'package.json'), '{"name":"llava-vscode"}');
    writeFileSync(path.join(ext, 'dist', 'cli.js'), '');
    if (withModel) cpSync(tiny, path.join(ext, 'models', 'builtin'), { recursive: true });
    return ext;
  }

  test('the bundle (dist/) and the sources (src/cli) both resolve to <package root>/models/builtin', () => {
    const ext = extensionFolder('llava.llava-vscode-9.9.9', false);
    assert.equal(packageRootOf(path.join(ext, 'dist')), ext);
    assert.equal(builtinModelDir(path.join(ext, 'dist')), path.join(ext, 'models', 'builtin'));
    // this repository: dist/cli.js and src/cli/index.ts under tsx
    assert.equal(builtinModelDir(path.join(ROOT, 'dist')), path.join(ROOT, 'models', 'builtin'));
    assert.equal(builtinModelDir(path.join(ROOT, 'src', 'cli')), path.join(ROOT, 'models', 'builtin'));
    // what the CLI uses when no folder is given: where this module lives
    assert.equal(builtinModelDir(), path.join(ROOT, 'models', 'builtin'));
  });

  test('modelFolderFor("builtin") returns the shipped folder, with the pinned variants kept', async () => {
    const ext = extensionFolder('with-model', true);
    const r = await modelFolderFor('builtin', { log: noLog, programDir: path.join(ext, 'dist'), variant: 'q4' }, 'usage');
    assert.deepEqual(r, { dir: path.join(ext, 'models', 'builtin'), variant: 'q4' });
    // any case, like the setting
    assert.equal((await modelFolderFor('BuiltIn', { log: noLog, programDir: path.join(ext, 'dist') }, 'usage')).dir, path.join(ext, 'models', 'builtin'));
  });

  test('a package without the folder says so in one sentence (nothing is downloaded)', async () => {
    const ext = extensionFolder('without-model', false);
    let logged = '';
    await assert.rejects(
      modelFolderFor('builtin', { log: (t) => (logged += t), programDir: path.join(ext, 'dist') }, 'usage'),
      (err: Error) => {
        assert.match(err.message, /^--model builtin: this copy of llava does not include the Built-in demo model \(shapes\): /);
        assert.ok(err.message.includes(path.join(ext, 'models', 'builtin')), err.message);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      },
    );
    assert.equal(logged, '', 'no download was started');
  });

  test('a folder named "builtin" in the working directory does not shadow the shipped model; ./builtin names it', async () => {
    const ext = extensionFolder('shadow', true);
    const cwd = process.cwd();
    const work = path.join(tmp, 'work');
    cpSync(tiny, path.join(work, 'builtin'), { recursive: true });
    process.chdir(work);
    try {
      assert.equal((await modelFolderFor('builtin', { log: noLog, programDir: path.join(ext, 'dist') }, 'usage')).dir, path.join(ext, 'models', 'builtin'));
      assert.equal((await modelFolderFor('./builtin', { log: noLog, programDir: path.join(ext, 'dist') }, 'usage')).dir, './builtin');
    } finally {
      process.chdir(cwd);
    }
  });
});

test('llava info --model builtin (the real program, from the repository) reads models/builtin', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'index.ts'), 'info', '--model', 'builtin'], {
    cwd: path.join(ROOT, 'test'), // not the repository root: the folder is found next to the program, not in the working directory
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, LLAVA_DEBUG: '' },
  });
  const dir = path.join(ROOT, 'models', 'builtin');
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { dir: string; modelType: string; chosen: { cpu: Record<string, string> } };
  assert.equal(path.resolve(info.dir), dir);
  assert.equal(info.modelType, 'llava');
  // every part has a file the CPU would load
  assert.deepEqual(Object.keys(info.chosen.cpu).sort(), ['decoder', 'embed', 'vision']);
});
