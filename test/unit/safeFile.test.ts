// src/files: the one safe way a workspace file is read. Every hostile kind from issue 14 is refused by
// lstat/stat alone (never opened), with a one-line error naming the file and a stable code.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { FileRefusedError, type FileRefusal } from '../../src/core';
import { checkRegularFile, isInside, readRegularFile } from '../../src/files';

const dir = mkdtempSync(path.join(tmpdir(), 'llava-safefile-'));
const root = path.join(dir, 'workspace');
const outside = path.join(dir, 'outside');
mkdirSync(path.join(root, 'sub'), { recursive: true });
mkdirSync(outside);
after(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(path.join(root, 'a.png'), 'inside bytes');
writeFileSync(path.join(outside, 'secret.png'), 'outside bytes');
symlinkSync(path.join(root, 'a.png'), path.join(root, 'sub', 'inside-link.png'));
symlinkSync(path.join(outside, 'secret.png'), path.join(root, 'escape.png'));
symlinkSync('/etc/passwd', path.join(root, 'passwd.png'));
symlinkSync('/dev/zero', path.join(root, 'zero.png'));
symlinkSync(path.join(root, 'gone.png'), path.join(root, 'dangling.png'));
symlinkSync(path.join(root, 'loop2.png'), path.join(root, 'loop1.png'));
symlinkSync(path.join(root, 'loop1.png'), path.join(root, 'loop2.png'));
symlinkSync(outside, path.join(root, 'outdir'));
execFileSync('mkfifo', [path.join(root, 'fifo.png')]);

async function refused(file: string, reason: FileRefusal, opts: { root?: string; maxBytes?: number } = { root }) {
  const t = performance.now();
  await assert.rejects(readRegularFile(file, { maxBytes: opts.maxBytes ?? 1 << 20, root: opts.root }), (err: unknown) => {
    assert.ok(err instanceof FileRefusedError, `${file}: got ${String(err)}`);
    assert.equal(err.code, 'FILE_REFUSED');
    assert.equal(err.reason, reason, `${path.basename(file)}: ${err.message}`);
    assert.ok(err.message.startsWith(file), `names the file: ${err.message}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return true;
  });
  // decided at once: nothing blocked on a FIFO or streamed from a device
  assert.ok(performance.now() - t < 5000, `${file} took ${performance.now() - t} ms`);
}

test('regular files inside the folder are read, also through a link that stays inside', async () => {
  assert.equal((await readRegularFile(path.join(root, 'a.png'), { maxBytes: 100, root })).toString(), 'inside bytes');
  assert.equal((await readRegularFile(path.join(root, 'sub', 'inside-link.png'), { maxBytes: 100, root })).toString(), 'inside bytes');
  const c = await checkRegularFile(path.join(root, 'sub', 'inside-link.png'), { maxBytes: 100, root });
  assert.equal(c.viaLink, true);
});

test('a FIFO, a /dev/zero link, a folder: refused without being opened', async () => {
  await refused(path.join(root, 'fifo.png'), 'not-regular');
  await refused(path.join(root, 'zero.png'), 'not-regular', {}); // even with no root to stay in
  await refused(path.join(root, 'sub'), 'not-regular');
  // the check alone (no open at all) already says no
  for (const f of ['fifo.png', 'zero.png']) {
    await assert.rejects(checkRegularFile(path.join(root, f), { maxBytes: 100 }), (e: unknown) => e instanceof FileRefusedError && e.reason === 'not-regular');
  }
});

test('links leaving the folder are refused before anything is opened; dangling links and loops are one-line errors', async () => {
  await refused(path.join(root, 'escape.png'), 'outside');
  await refused(path.join(root, 'passwd.png'), 'outside');
  await refused(path.join(root, 'outdir', 'secret.png'), 'outside'); // a folder link on the way
  await refused(path.join(root, 'dangling.png'), 'dangling-link');
  await refused(path.join(root, 'loop1.png'), 'dangling-link');
  await refused(path.join(root, 'missing.png'), 'missing');
});

test('size is bounded before and while reading', async () => {
  await refused(path.join(root, 'a.png'), 'too-large', { root, maxBytes: 5 });
});

test('isInside: prefixes that are not parents do not count', () => {
  assert.equal(isInside('/a/b', '/a/b/c'), true);
  assert.equal(isInside('/a/b', '/a/b'), true);
  assert.equal(isInside('/a/b', '/a/bc'), false);
  assert.equal(isInside('/a/b', '/a'), false);
  assert.equal(isInside('/a/b', '/a/b/..x'), true);
});
