// Issue 14's proof: a generated corpus of hostile files (test/helpers/hostileCorpus.ts: a FIFO, device
// links, links leaving the folder, a dangling link, loops, thin images, bombs, SVG tricks, truncated
// files, EXIF 1-9, CMYK, 16-bit, animated) through the engine, the caption runner (folder walk) and the
// `llava ask` / `llava caption` programs with explicit paths. What must hold: no crash, no hang (each file
// decided within 5 s), nothing outside the folder read (the outside "secret" is a FIFO: one open of it
// would hang the run), every error one line naming the file with a stable code.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { EngineError } from '../../src/core';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { runCaptionJob, scanImagePaths } from '../../src/captioning/jobs';
import { modelCaptionBackend } from '../../src/captioning/modelBackend';
import { sidecarPath } from '../../src/captioning/outputs';
import { ensureFixtures } from '../fixtures/index';
import { makeHostileCorpus, type HostileFile } from '../helpers/hostileCorpus';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'src/cli/index.ts');
const CODES = new Set(['FILE_REFUSED', 'IMAGE_DECODE', 'IMAGE_TOO_LARGE']);

let dir: string;
let ws: string;
let files: HostileFile[];
let model: LlavaModel;
let modelDir: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'llava-hostile-'));
  ({ ws, files } = await makeHostileCorpus(dir));
  [modelDir] = await ensureFixtures(['tiny-llava']);
  model = await loadModel(modelDir, { provider: 'cpu', variant: 'fp32', threads: 1 });
});
after(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`HANG: ${what} undecided after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

const TSX = pathToFileURL(require.resolve('tsx')).href;

/** The CLI run from `cwd` (default: the workspace, so that explicit paths are inside the current folder). */
function run(args: string[], opts: { timeoutMs: number; cwd?: string; onStdout?: (chunk: string, child: ReturnType<typeof spawn>) => void }) {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd: opts.cwd ?? ws, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    opts.onStdout?.(String(d), child);
  });
  child.stderr.on('data', (d) => (stderr += d));
  const started = performance.now();
  return within(
    opts.timeoutMs,
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - started })),
    ),
    `llava ${args.slice(0, 3).join(' ')}`,
  ).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
}

test('the corpus has at least 60 files of every kind', () => {
  assert.ok(files.length >= 60, `${files.length} files`);
  for (const kind of ['FIFO', 'link to /dev/zero', 'dangling link', 'link to /etc/passwd', 'SVG 1e9 wide', 'header claims 1 x 64,000,000', 'CMYK JPEG', '16-bit PNG', 'animated GIF']) {
    assert.ok(files.some((f) => f.kind === kind), kind);
  }
  assert.equal(files.filter((f) => f.kind.startsWith('EXIF orientation')).length, 9);
});

test('engine: every file decided within 5 s, as expected, errors typed and one line', async () => {
  for (const f of files) {
    const file = path.join(ws, f.name);
    const t = performance.now();
    let outcome: 'ok' | EngineError;
    try {
      await within(5000, model.preprocess({ path: file, root: ws }), f.name);
      outcome = 'ok';
    } catch (err) {
      assert.ok(err instanceof EngineError, `${f.name} (${f.kind}): not a typed error: ${String(err)}`);
      outcome = err;
    }
    assert.ok(performance.now() - t < 5000, `${f.name}: ${performance.now() - t} ms`);
    if (f.expect === 'ok') assert.equal(outcome, 'ok', `${f.name} (${f.kind}): ${outcome === 'ok' ? '' : outcome.message}`);
    if (outcome === 'ok') {
      assert.ok(f.expect === 'ok' || f.expect === 'ok-or-error', `${f.name} (${f.kind}) was decoded`);
      continue;
    }
    assert.ok(CODES.has(outcome.code), `${f.name}: code ${outcome.code}`);
    if (f.expect === 'refused') assert.equal(outcome.code, 'FILE_REFUSED', `${f.name} (${f.kind}): ${outcome.message}`);
    assert.ok(outcome.message.startsWith(file), `${f.name}: names the file: ${outcome.message}`);
    assert.doesNotMatch(outcome.message, /[\r\n]/, `${f.name}: one line`);
  }
});

test('caption job over the folder: the good images captioned, the rest skipped or failed with reasons', { timeout: 120_000 }, async () => {
  const scan = await scanImagePaths([ws]);
  const byName = new Map(files.map((f) => [f.name, f]));
  const rel = (p: string) => path.relative(ws, p).split(path.sep).join('/');
  for (const img of scan.images) assert.notEqual(byName.get(rel(img))?.expect, 'refused', `${rel(img)} was taken`);
  for (const f of files.filter((x) => x.expect === 'ok' && /\.(png|jpe?g|webp|gif|tiff?)$/i.test(x.name))) {
    assert.ok(scan.images.includes(path.join(ws, f.name)), `${f.name} (${f.kind}) taken`);
  }
  const skippedNames = scan.skipped.map((s) => rel(s.path));
  for (const n of ['fifo.png', 'zero.png', 'passwd.png', 'escape.png', 'escape-fifo.png', 'dangling.png', 'loop-a.png', 'wide-1e9.svg', 'bitmap.bmp']) {
    assert.ok(skippedNames.includes(n), `${n} skipped, with a reason`);
  }
  const summary = await within(60_000, runCaptionJob(modelCaptionBackend(model), {
    images: scan.images, roots: scan.roots, refused: scan.refused, skippedFiles: scan.skipped, batchSize: 4, maxNewTokens: 3,
    output: 'jsonl', manifest: path.join(dir, 'folder.jsonl'),
  }), 'caption job');
  assert.equal(summary.captioned + summary.failed.length, scan.images.length, 'every image decided');
  assert.ok(summary.captioned >= files.filter((f) => f.expect === 'ok').length - 2, `captioned ${summary.captioned}`);
  assert.equal(summary.ignored['link outside the folder'], 9, JSON.stringify(summary.ignored));
  assert.ok(summary.ignored['not a regular file'] >= 1 && summary.ignored['dangling link'] >= 3 && summary.ignored['not an image'] >= 6, JSON.stringify(summary.ignored));
  for (const fail of summary.failed) assert.doesNotMatch(fail.error, /[\r\n]/, `${fail.path}: one line`);
  assert.ok(!existsSync(sidecarPath(path.join(dir, 'outside', 'secret.png'))), 'nothing written outside');
});

test('llava caption with every file as an explicit path: one job, each file its own line, no stack', { timeout: 180_000 }, async () => {
  const paths = files.map((f) => path.join(ws, f.name));
  const manifest = path.join(dir, 'explicit.jsonl');
  const r = await run(['caption', ...paths, '--model', modelDir, '--provider', 'cpu', '--threads', '1', '--max-new-tokens', '2', '--out', 'jsonl', '--manifest', manifest], { timeoutMs: 150_000 });
  assert.equal(r.code, 1, `some failed: ${r.stderr.slice(-800)}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const images = events.filter((e) => e.event === 'image');
  const summary = events.at(-1);
  assert.equal(summary.event, 'summary');
  // (a folder named folder.png is walked as a folder: it holds nothing)
  const missing = paths.filter((p) => !p.endsWith('folder.png') && !images.some((e) => e.path === p));
  assert.deepEqual(missing, [], 'one outcome per explicit file');
  for (const e of images) {
    const f = files.find((x) => path.join(ws, x.name) === e.path)!;
    if (f.expect === 'ok') assert.equal(e.ok, true, `${f.name}: ${e.error}`);
    if (f.expect === 'refused') assert.equal(e.code, 'FILE_REFUSED', `${f.name}: ${e.code} ${e.error}`);
    if (!e.ok) assert.doesNotMatch(e.error, /[\r\n]/);
  }
});

test('llava ask: hostile files refused in one line before the model loads; a good one answered', { timeout: 180_000 }, async () => {
  for (const name of ['fifo.png', 'zero.png', 'passwd.png', 'escape-fifo.png', 'dangling.png', 'folder.png', 'strip-1x64M.png', 'huge-sparse.png', 'fake.heic']) {
    const r = await run(['ask', '--model', modelDir, '--provider', 'cpu', '--threads', '1', '--image', path.join(ws, name), '--max-new-tokens', '2', 'what is it?'], { timeoutMs: 30_000 });
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${name}: one line: ${r.stderr}`);
    assert.match(lines[0], new RegExp(`^llava: .*${name.replace('.', '\\.')}.*\\[(FILE_REFUSED|IMAGE_DECODE|IMAGE_TOO_LARGE)\\]$`));
  }
  const ok = await run(['ask', '--model', modelDir, '--provider', 'cpu', '--threads', '1', '--image', path.join(ws, 'inside-link.png'), '--max-new-tokens', '2', 'what?'], { timeoutMs: 30_000 });
  assert.equal(ok.code, 0, ok.stderr);
});

test('Ctrl+C stops `llava ask` and SIGTERM stops `llava caption` promptly', { timeout: 120_000 }, async () => {
  let sentAt = 0;
  // a long answer (within tiny-llava's 4096-token window) that is still streaming when the signal arrives
  const ask = await run(['ask', '--model', modelDir, '--provider', 'cpu', '--threads', '1', '--image', path.join(ws, 'good.png'), '--max-new-tokens', '4000', '--temperature', '1', '--seed', '1', 'talk'], {
    timeoutMs: 60_000,
    onStdout: (_, child) => {
      if (!sentAt) {
        sentAt = performance.now();
        child.kill('SIGINT');
      }
    },
  });
  assert.ok(sentAt > 0, `ask wrote nothing: ${ask.stderr}`);
  assert.equal(ask.code, 130, ask.stderr);
  const askStop = performance.now() - sentAt;
  assert.ok(askStop < 3000, `ask stopped ${askStop} ms after SIGINT`);

  sentAt = 0;
  const cap = await run(['caption', ws, '--model', modelDir, '--provider', 'cpu', '--threads', '1', '--max-new-tokens', '4000', '--temperature', '1', '--seed', '1', '--out', 'jsonl', '--manifest', path.join(dir, 'sig.jsonl')], {
    timeoutMs: 60_000,
    onStdout: (chunk, child) => {
      if (!sentAt && chunk.includes('"progress"')) {
        sentAt = performance.now();
        child.kill('SIGTERM');
      }
    },
  });
  assert.ok(sentAt > 0, 'caption started');
  assert.equal(cap.code, 130, cap.stderr);
  assert.ok(performance.now() - sentAt < 3000, `caption stopped ${performance.now() - sentAt} ms after SIGTERM`);
});
