// `llava download` and `--model <owner/repo>` through the real CLI against the fake Hub serving the
// generated tiny-llava without q4 vision / q4 embed: the choice per part is printed, the download
// lands in --dir (or $LLAVA_MODELS_DIR), `llava info` names the same choice and the commit.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ensureFixtures } from '../fixtures/index';
import { configBytes, configReads, startFakeHub, type FakeFile, type FakeHub } from '../helpers/fakeHub';

const ROOT = path.join(__dirname, '..', '..');
const REPO = 'onnx-community/tiny-llava';
// (and the variants beyond fp32/fp16/q4 the fixtures also hold, which this listing does not have)
const LEFT_OUT = /onnx\/((vision_encoder(_q4)?|embed_tokens_q4)|\w+_(int8|uint8|quantized|bnb4|q4f16))\.onnx$/;
const run = promisify(execFile);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('llava download against the fake Hub', () => {
  let hub: FakeHub;
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/index.ts'), ...args], { cwd: ROOT, env });

  before(async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const files: FakeFile[] = walk(dir)
      .map((p) => path.relative(dir, p).split(path.sep).join('/'))
      .filter((p) => !p.startsWith('.') && !LEFT_OUT.test(p))
      .map((p) => ({ path: p, data: readFileSync(path.join(dir, p)), lfs: p.endsWith('.onnx') }));
    hub = await startFakeHub({ repo: REPO, files });
    tmp = mkdtempSync(path.join(tmpdir(), 'llava-cli-dl-'));
    env = {
      ...process.env,
      HF_ENDPOINT: hub.endpoint,
      // the fake CDN's certificate (a child process reads extra CAs at start)
      NODE_EXTRA_CA_CERTS: path.join(ROOT, 'test', 'helpers', 'fakeCdn.cert.pem'),
      LLAVA_MODELS_DIR: path.join(tmp, 'models'),
    };
  });
  after(async () => {
    await hub?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('--dry-run prints the choice per part and the commit, downloads nothing', async () => {
    const { stdout } = await cli('download', REPO, '--dry-run');
    assert.match(stdout, new RegExp(`${REPO}@main -> commit ${hub.commit}`));
    assert.match(stdout, /vision\s+fp16\s+onnx\/vision_encoder_fp16\.onnx/);
    assert.match(stdout, /embed\s+fp32\s+onnx\/embed_tokens\.onnx/);
    assert.match(stdout, /decoder\s+q4\s+onnx\/decoder_model_merged_q4\.onnx/);
    assert.equal(hub.bytesSent(), configBytes(hub), 'only config.json, read to choose the variants it declares');
  });

  test('downloads per part into --dir; a pinned part that does not exist is one line with the code', async () => {
    const dir = path.join(tmp, 'explicit');
    const { stdout } = await cli('download', REPO, '--variant', 'embed=fp16', '--dir', dir);
    process.stderr.write(`\n--- llava download ${REPO} --variant embed=fp16 ---\n${stdout}`);
    assert.match(stdout, /embed\s+fp16\s+onnx\/embed_tokens_fp16\.onnx/);
    assert.match(stdout, /ready: /);
    assert.deepEqual(readdirSync(path.join(dir, 'onnx-community--tiny-llava', 'onnx')).sort(), [
      'decoder_model_merged_q4.onnx', 'embed_tokens_fp16.onnx', 'vision_encoder_fp16.onnx',
    ]);
    await assert.rejects(cli('download', REPO, '--variant', 'q4', '--dir', dir), (err: { stderr: string; code: number }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /^llava: .*variant q4 of vision \(onnx\/vision_encoder_q4\.onnx\) does not exist; vision has: fp16 \[DOWNLOAD\]\n$/);
      return true;
    });
  });

  test('info --model owner/repo downloads through the same path, then names the choice and the commit', async () => {
    const { stdout, stderr } = await cli('info', '--model', REPO);
    assert.match(stderr, /not downloaded yet: downloading into/);
    const info = JSON.parse(stdout);
    assert.deepEqual(info.chosen.cpu, { vision: 'fp16', embed: 'fp32', decoder: 'q4' });
    assert.equal(info.download.commit, hub.commit);
    assert.equal(info.contextLength, 4096);
    // the second time: already there, no download
    const before = hub.bytesSent();
    const again = await cli('info', '--model', REPO);
    assert.equal(again.stderr, '');
    assert.equal(hub.bytesSent(), before);
  });

  test('two processes downloading one model: the second waits for the first (lock file), every byte is sent once', async () => {
    const dir = path.join(tmp, 'two-processes');
    hub.switches.chunkBytes = 64 * 1024;
    hub.switches.chunkDelayMs = 5;
    // the first download cannot finish until the second has said it waits: overlap without a race on a busy machine
    let release!: () => void;
    hub.switches.hold = new Promise<void>((r) => (release = r));
    const safety = setTimeout(() => release(), 90_000); // a second that never waits fails below instead of hanging
    const sentBefore = hub.bytesSent();
    const requestsBefore = hub.requests.length;
    const lock = path.join(dir, 'onnx-community--tiny-llava', '.llava-download.lock');
    try {
      const first = cli('download', REPO, '--dir', dir);
      for (let i = 0; i < 600 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(existsSync(lock), 'the first process holds the lock');
      const second = cli('download', REPO, '--dir', dir);
      let seen = '';
      second.child.stdout?.on('data', (d) => {
        seen += String(d);
        if (/waiting:/.test(seen)) release();
      });
      const [a, b] = await Promise.all([first, second]);
      assert.doesNotMatch(a.stdout, /waiting:/);
      assert.match(b.stdout, /waiting: process \d+ on .* is downloading into/);
      assert.ok(!existsSync(lock), 'released');
      const plan = /Downloading .*, ([\d.]+) MB/.exec(a.stdout);
      assert.ok(plan, a.stdout);
      const folder = path.join(dir, 'onnx-community--tiny-llava');
      const total = walk(folder).filter((p) => !p.includes('.llava-download')).reduce((n, p) => n + readFileSync(p).length, 0);
      // each plan reads config.json unless the folder already holds the listed one; every other file comes once
      assert.equal(hub.bytesSent() - sentBefore, total + configBytes(hub) * (configReads(hub, requestsBefore) - 1), 'nothing fetched twice');
    } finally {
      clearTimeout(safety);
      release();
      hub.switches.hold = undefined;
      hub.switches.chunkBytes = 0;
    }
  });
});
