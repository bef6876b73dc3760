// Real model files through the whole hub path: a fake Hub serving the generated tiny-llava whose
// listing differs from what a guess would say (no q4 vision or embed, only fp16 vision, fp32/fp16
// embed), the per-part choice made from that listing, the download, and the engine loading the
// folder with the same choice.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { downloadPlan } from '../../src/hub/download';
import { readManifest } from '../../src/hub/manifest';
import { listRepo, planFromHub } from '../../src/hub/listing';
import { downloadOffer, planDownload } from '../../src/hub/plan';
import { missingModelFiles, listDownloadedModels } from '../../src/hub/modelLocation';
import { loadModel } from '../../src/engine/index';
import { ensureFixtures } from '../fixtures/index';
import { FAKE_CDN_CA, startFakeHub, type FakeFile, type FakeHub } from '../helpers/fakeHub';

const REPO = 'onnx-community/tiny-llava';
/** what this "repository" does not have */
// (and the variants beyond fp32/fp16/q4 the fixtures also hold, which this listing does not have)
const LEFT_OUT = /onnx\/((vision_encoder(_q4)?|embed_tokens_q4)|\w+_(int8|uint8|quantized|bnb4|q4f16))\.onnx$/;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('a listing unlike the catalog: per-part choice, download, load', () => {
  let hub: FakeHub;
  let root: string;
  before(async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const files: FakeFile[] = walk(dir)
      .map((p) => relative(dir, p).split('\\').join('/'))
      .filter((p) => !p.startsWith('.') && !LEFT_OUT.test(p))
      .map((p) => ({ path: p, data: readFileSync(join(dir, p)), lfs: p.endsWith('.onnx') }));
    hub = await startFakeHub({ repo: REPO, files });
    root = mkdtempSync(join(tmpdir(), 'llava-hubmodels-'));
  });
  after(async () => {
    await hub?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('CPU takes fp16 vision (the only one), fp32 embed (no q4), q4 decoder; GPU takes fp16 everywhere', async () => {
    const listing = await listRepo(REPO, 'main', { endpoint: hub.endpoint });
    assert.equal(listing.commit, hub.commit);
    assert.deepEqual(planDownload(listing, { provider: 'cpu' }).variants, { vision: 'fp16', embed: 'fp32', decoder: 'q4' });
    assert.deepEqual(planDownload(listing, { provider: 'gpu' }).variants, { vision: 'fp16', embed: 'fp16', decoder: 'fp16' });
    assert.throws(() => planDownload(listing, { choice: 'q4' }), /variant q4 of vision \(onnx\/vision_encoder_q4\.onnx\) does not exist; vision has: fp16/);
    assert.deepEqual(planDownload(listing, { choice: { embed: 'fp16' } }).variants, { vision: 'fp16', embed: 'fp16', decoder: 'q4' });
  });

  test('the offer names the model, the exact total and the choice; only the chosen files are fetched; the engine loads the same map', async () => {
    const plan = await planFromHub({ repo: REPO, revision: 'main' }, { endpoint: hub.endpoint });
    const onnx = plan.files.filter((f) => f.path.startsWith('onnx/')).map((f) => f.path);
    assert.deepEqual(onnx, ['onnx/vision_encoder_fp16.onnx', 'onnx/embed_tokens.onnx', 'onnx/decoder_model_merged_q4.onnx']);
    const total = plan.files.reduce((n, f) => n + f.size!, 0);
    assert.equal(plan.totalBytes, total);
    const offer = downloadOffer(plan);
    assert.match(offer.question, /^Download onnx-community\/tiny-llava, \d+(\.\d)? MB\?$/);
    // in words first (what a user chooses by), the exact map after it
    assert.match(offer.detail, /4-bit, smallest, for CPUs \(image encoder: half precision\) \(vision=fp16,embed=fp32,decoder=q4\) · commit [0-9a-f]{7}/);

    const folder = await downloadPlan(plan, root, { endpoint: hub.endpoint, ca: FAKE_CDN_CA });
    assert.equal(folder, join(root, 'onnx-community--tiny-llava'));
    assert.deepEqual(readdirSync(join(folder, 'onnx')).sort(), ['decoder_model_merged_q4.onnx', 'embed_tokens.onnx', 'vision_encoder_fp16.onnx']);
    assert.deepEqual(await missingModelFiles(folder), []);
    const [listed] = await listDownloadedModels(root);
    assert.equal(listed.complete, true);
    assert.equal(listed.manifest.commit, hub.commit);
    assert.ok(listed.sizeOnDisk >= total);

    const model = await loadModel(folder, { provider: 'cpu' });
    try {
      assert.deepEqual(model.info.variants, (await readManifest(folder))!.variants);
    } finally {
      await model.dispose();
    }
  });
});
