// The conversion path the extension takes, end to end without VS Code: a generated llava-hf
// checkpoint (tiny-llava's weights, BF16, 2 shards + index) served by the fake Hub, listed and
// planned as a checkpoint (planCheckpointDownload), downloaded by the hub's downloadPlan, converted
// by runConvert in a child process (dist/cli.js convert --progress json, the host's runner), loaded
// by the engine and asked one question. The answer must equal the one from a folder converted
// in-process from the original checkpoint (so the download and the child changed nothing). Cancel
// kills the child and a rerun resumes; a broken checkpoint fails with the child's own words.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AbortedError, type ChatTurn } from '../../src/core';
import { convertCheckpoint } from '../../src/convert';
import { ConvertProcessError, runConvert, type ConvertProgressLine } from '../../src/convert-process';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { downloadPlan, listRepo, planCheckpointDownload, type ConversionEntry } from '../../src/hub';
import { FIXTURES } from '../fixtures/index';
import { FAKE_CDN_CA, startFakeHub, type FakeHub } from '../helpers/fakeHub';
import { writeLlavaCheckpoint } from '../helpers/llavaCheckpoint';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const REPO = 'llava-hf/tiny-llava-hf';
const IMAGE = path.join(ROOT, 'media', 'samples', 'photo.jpg');
const tiny = FIXTURES.find((f) => f.spec.name === 'tiny-llava')!;

const entry: ConversionEntry = {
  kind: 'convert', id: 'tiny-llava-converted', label: 'tiny LLaVA (converted from llava-hf/tiny-llava-hf)', repo: REPO,
  revision: 'main', pinned: false,
  files: [{ path: 'config.json' }, { path: 'tokenizer.json' }, { path: 'model.safetensors.index.json' }],
  checkpointBytes: 1, contextTokens: 512,
  dtypes: { q4: { diskBytes: 1, runBytes: 2, target: 'cpu' } }, defaultDtype: 'q4',
  promptFormat: 'chat_template', preprocess: 'pad', boxFrame: 'norm1', licence: 'llama2', homepage: 'https://example.invalid/',
};

async function answer(model: LlavaModel): Promise<number[]> {
  const pixels = await model.preprocess({ path: IMAGE });
  const turns: ChatTurn[] = [{ role: 'user', text: 'What is in this image?', images: [{ preprocessed: pixels, name: 'photo.jpg' }] }];
  let tokens: number[] | undefined;
  for await (const ev of model.generate(turns, { maxNewTokens: 8 })) if (ev.type === 'done') tokens = ev.stats.tokenIds;
  assert.ok(tokens && tokens.length > 0, 'the model answered nothing');
  return tokens;
}

describe('checkpoint from the fake Hub -> child-process conversion -> engine', () => {
  let tmp: string;
  let ckpt: string;
  let hub: FakeHub;

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: build it first (node esbuild.mjs; npm test does)`);
    tmp = mkdtempSync(path.join(tmpdir(), 'convert-e2e-'));
    ckpt = path.join(tmp, 'source');
    writeLlavaCheckpoint(ckpt, tiny, { layout: 'model.language_model', dtype: 'BF16', shards: 2 });
    const files = readdirSync(ckpt).map((p) => ({ path: p, data: readFileSync(path.join(ckpt, p)), lfs: p.endsWith('.safetensors') }));
    hub = await startFakeHub({ repo: REPO, files });
  });
  after(async () => {
    await hub?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('download through the hub, convert in a child, answer like the in-process conversion', async () => {
    const listing = await listRepo(REPO, 'main', { endpoint: hub.endpoint });
    const plan = planCheckpointDownload(listing, entry, 'q4');
    assert.deepEqual(plan.files.filter((f) => f.path.endsWith('.safetensors')).map((f) => f.path), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    const models = path.join(tmp, 'models');
    const folder = await downloadPlan(plan, models, { endpoint: hub.endpoint, ca: FAKE_CDN_CA });
    assert.equal(folder, path.join(models, 'tiny-llava-converted.checkpoint'));

    const out = path.join(models, entry.id);
    const seen: ConvertProgressLine[] = [];
    const done = await runConvert({ cliPath: CLI, from: folder, out, dtype: 'q4', onProgress: (p) => seen.push(p) });
    assert.equal(done.written, 3);
    assert.equal(done.skipped, 0);
    assert.ok(seen.length >= 6, `expected start and done lines for 3 parts, got ${seen.length}`);
    assert.deepEqual([...new Set(seen.map((p) => p.part))].sort(), ['onnx/decoder_model_merged_q4.onnx', 'onnx/embed_tokens_q4.onnx', 'onnx/vision_encoder_q4.onnx']);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].bytesRead >= seen[i - 1].bytesRead, 'bytes read never go back');
    const last = seen.at(-1)!;
    assert.equal(last.state, 'done');
    assert.equal(last.bytesRead, last.bytesTotal);

    const reference = path.join(tmp, 'reference');
    convertCheckpoint({ from: ckpt, out: reference, dtypes: ['q4'] });
    const converted = await loadModel(out, { provider: 'cpu', variant: 'q4' });
    const inProcess = await loadModel(reference, { provider: 'cpu', variant: 'q4' });
    try {
      assert.deepEqual(await answer(converted), await answer(inProcess));
    } finally {
      await converted.dispose();
      await inProcess.dispose();
    }
  });

  test('cancel kills the child (AbortedError); the next run keeps finished parts and completes', async () => {
    const out = path.join(tmp, 'cancelled');
    const abort = new AbortController();
    await assert.rejects(
      runConvert({ cliPath: CLI, from: ckpt, out, dtype: 'q4', signal: abort.signal, onProgress: (p) => p.state === 'done' && abort.abort() }),
      (err) => err instanceof AbortedError,
    );
    const again = await runConvert({ cliPath: CLI, from: ckpt, out, dtype: 'q4' });
    assert.ok(again.skipped >= 1, `the part finished before the cancel was redone (skipped ${again.skipped})`);
    assert.ok(again.written >= 1, 'the cancel stopped nothing: every part was already done');
    assert.equal(again.written + again.skipped, 3);
  });

  test('a broken checkpoint: ConvertProcessError with the child\'s words, code and log', async () => {
    const broken = path.join(tmp, 'broken');
    await assert.rejects(runConvert({ cliPath: CLI, from: broken, out: path.join(tmp, 'broken-out'), dtype: 'q4' }), (err) => {
      assert.ok(err instanceof ConvertProcessError, String(err));
      assert.equal(err.code, 'CONVERT');
      assert.match(err.message, /config\.json/);
      assert.match(err.log, /llava: .*config\.json.*\[CONVERT\]/);
      assert.notEqual(err.exitCode, 0);
      return true;
    });
  });
});
