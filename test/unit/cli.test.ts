// The `llava` command line as a user meets it (issue 15, item 10): help and version in every spelling, an unknown
// command or option as one line plus the usage (never a stack trace), errors by their stable code (never a class
// name), and a missing image said before the model loads. Runs the real program: node --import tsx src/cli/index.ts.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { ensureFixtures } from '../fixtures/index';

const ROOT = path.resolve(__dirname, '..', '..');
const TINY = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-llava');
// the tiny model is generated when missing, never skipped over
before(() => ensureFixtures(['tiny-llava']));
const IMAGE = path.join(ROOT, 'media', 'samples', 'diagram.png');
const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

function llava(...args: string[]): { code: number | null; out: string; err: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'index.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, LLAVA_DEBUG: '' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - t0 };
}

/** No stack frames, no class names of errors (minified builds would show "we:" or "j:"). */
function assertNoTrace(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, `a stack trace: ${text}`);
  assert.doesNotMatch(text, /\b\w*Error:|\bllava: [A-Za-z]{1,3}:/, `an error class name: ${text}`);
}

test('help in every spelling lists the commands; exit 0', () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = llava(...args);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.out, /Usage: llava <command>/, args.join(' '));
    for (const c of ['ask', 'info', 'caption']) assert.match(r.out, new RegExp(`^  ${c}\\b`, 'm'), `${args.join(' ')} lacks ${c}`);
    assert.equal(r.err, '');
  }
  // no command at all: the same help, but a non-zero exit (nothing was done)
  const none = llava();
  assert.equal(none.code, 2);
  assert.match(none.out, /Usage: llava <command>/);
  // help for one command
  const one = llava('help', 'ask');
  assert.equal(one.code, 0);
  assert.match(one.out, /^Usage: llava ask --model DIR\|ID\|OWNER\/REPO --image PATH/);
});

test('--version prints the package version', () => {
  for (const flag of ['--version', '-v']) {
    const r = llava(flag);
    assert.equal(r.code, 0);
    assert.equal(r.out.trim(), version);
  }
});

test('an unknown command or option is one line and the usage, exit 2, never a stack trace', () => {
  const cmd = llava('summarise', 'x.png');
  assert.equal(cmd.code, 2);
  assert.match(cmd.err, /^llava: unknown command "summarise"\n\nllava \S+: ask a local LLaVA model/);
  assertNoTrace(cmd.err);

  const opt = llava('ask', '--modle', TINY, '--image', IMAGE, 'q');
  assert.equal(opt.code, 2);
  assert.match(opt.err, /^llava: unknown option '--modle'\n\nUsage: llava ask /);
  assertNoTrace(opt.err);

  const early = llava('--modle', 'x');
  assert.equal(early.code, 2);
  assert.match(early.err, /^llava: unknown option --modle \(options go after the command\)/);

  // `caption --help` is that command's help, not an error
  const captionHelp = llava('caption', '--help');
  assert.equal(captionHelp.code, 0);
  assert.match(captionHelp.out, /^Usage: llava caption/);
  assert.equal(captionHelp.err, '');
});

test('a missing option says which, with the usage', () => {
  const r = llava('ask', '--image', IMAGE, 'q');
  assert.equal(r.code, 2);
  assert.match(r.err, /^llava: --model is required\n\nUsage: llava ask /);
});

test('a missing image is said before the model loads', () => {
  // the model folder does not exist either: the image must be what is reported, and quickly
  const r = llava('ask', '--model', path.join(ROOT, 'no-such-model'), '--image', 'no-such-image.png', 'what is this?');
  assert.equal(r.code, 1);
  assert.equal(r.err, 'llava: no-such-image.png: no such file [FILE_REFUSED]\n');
  assertNoTrace(r.err);
  const dir = llava('ask', '--model', path.join(ROOT, 'no-such-model'), '--image', ROOT, 'what is this?');
  assert.match(dir.err, /: a folder, not a regular file.*\[FILE_REFUSED\]\n$/);
});

test('a model error prints its message and stable code, not a class name', () => {
  const r = llava('info', '--model', path.join(ROOT, 'media'));
  assert.equal(r.code, 1);
  assert.match(r.err, /^llava: .*\[MODEL_FOLDER\]\n$/);
  assertNoTrace(r.err);
});

test('on a CPU-only machine a normal run prints only the answer (the provider fallback only with --verbose)', () => {
  const r = llava('ask', '--model', TINY, '--image', IMAGE, '--max-new-tokens', '4', 'what is this?');
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.trim().length > 0, 'no answer');
  assert.doesNotMatch(r.err, /cuda|fell back|fallback|libonnxruntime/i, `fallback noise without --verbose: ${r.err}`);
});
