// Behaviour of the decode loop on a real (tiny) model: streaming, stops, abort, multi-turn,
// forced answer prefix, seeded sampling, and image-token counting from the encoder's real output.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import type { ChatTurn, GenerateOptions, GenerationEvent } from '../../src/core/types';
import { ensureFixtures } from '../fixtures/index';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const photo = { path: path.join(SAMPLES, 'photo.jpg') };
const diagram = { path: path.join(SAMPLES, 'diagram.png') };

async function run(model: LlavaModel, turns: ChatTurn[], opts: GenerateOptions = {}) {
  const deltas: string[] = [];
  let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
  for await (const ev of model.generate(turns, opts)) {
    if (ev.type === 'delta') deltas.push(ev.text);
    else done = ev;
  }
  assert.ok(done, 'a done event ends every stream');
  return { deltas, done };
}

describe('generation on tiny-llava', () => {
  let dir: string;
  let model: LlavaModel;
  const tmp = mkdtempSync(path.join(tmpdir(), 'llava-gen-'));

  before(async () => {
    [dir] = await ensureFixtures(['tiny-llava']);
    model = await loadModel(dir, { provider: 'cpu', variant: 'fp32' });
  });
  after(async () => {
    await model?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('deltas stream and concatenate to the decoded tokens; max_new_tokens is honoured', async () => {
    const { deltas, done } = await run(model, [{ role: 'user', text: 'What is this?', images: [photo] }], { maxNewTokens: 12 });
    assert.equal(done.stats.stopReason, 'max_tokens');
    assert.equal(done.stats.newTokens, 12);
    assert.ok(deltas.length > 1, 'more than one delta');
    assert.equal(deltas.join(''), done.text);
    assert.equal(done.text, model.tokenizer.decode(done.stats.tokenIds, { skipSpecialTokens: true }));
    assert.ok(!done.text.includes('\uFFFD'));
    assert.equal(done.stats.imageTokens, 36, 'tiny-llava: (84/14)^2 rows, CLS dropped by the graph');
  });

  test('an AbortSignal stops generation within one step and keeps the text so far', async () => {
    const controller = new AbortController();
    let seen = 0;
    let done: any;
    for await (const ev of model.generate([{ role: 'user', text: 'Describe.', images: [photo] }], { maxNewTokens: 50, signal: controller.signal })) {
      if (ev.type === 'delta' && ++seen === 2) controller.abort();
      if (ev.type === 'done') done = ev;
    }
    assert.equal(done.stats.stopReason, 'aborted');
    assert.ok(done.stats.newTokens <= 3, `stopped after ${done.stats.newTokens} tokens`);
  });

  test('an answer prefix is forced into the prompt and starts the streamed text', async () => {
    const plain = await run(model, [{ role: 'user', text: 'Caption it.', images: [photo] }], { maxNewTokens: 4 });
    const prefixed = await run(model, [{ role: 'user', text: 'Caption it.', images: [photo] }], { maxNewTokens: 4, answerPrefix: 'A photo of' });
    assert.ok(prefixed.done.text.startsWith('A photo of'));
    assert.equal(prefixed.deltas[0], 'A photo of');
    const ids = await model.promptIds([{ role: 'user', text: 'Caption it.', images: [photo] }], { answerPrefix: 'A photo of' });
    const plainIds = await model.promptIds([{ role: 'user', text: 'Caption it.', images: [photo] }]);
    assert.ok(ids.length > plainIds.length, 'the prefix tokens are part of the prompt');
    assert.notDeepEqual(prefixed.done.stats.tokenIds, plain.done.stats.tokenIds);
    // the answer continues the prefix as the tokenizer would decode prefix + answer (SentencePiece spaces kept)
    const prefixIds = model.tokenizer.encode('A photo of', { addSpecialTokens: false });
    assert.equal(prefixed.done.text, model.tokenizer.decode([...prefixIds, ...prefixed.done.stats.tokenIds], { skipSpecialTokens: true }));
  });

  test('multi-turn: earlier turns and both images are in the prompt', async () => {
    const first = await run(model, [{ role: 'user', text: 'What is this?', images: [photo] }], { maxNewTokens: 5 });
    const turns: ChatTurn[] = [
      { role: 'user', text: 'What is this?', images: [photo] },
      { role: 'assistant', text: first.done.text },
      { role: 'user', text: 'And this one?', images: [diagram] },
    ];
    const ids = await model.promptIds(turns);
    const imageId = model.spec.imageTokenId;
    assert.equal(ids.filter((id) => id === imageId).length, 72, 'two images x 36 rows');
    const second = await run(model, turns, { maxNewTokens: 5 });
    assert.equal(second.done.stats.imageTokens, 72);
    assert.equal(second.done.stats.promptTokens, ids.length);
    // each image's geometry comes back in conversation order, for mapping boxes onto the originals
    assert.deepEqual(second.done.images?.map((g) => [g.originalWidth, g.originalHeight, g.inputWidth]), [[1024, 768, 84], [800, 500, 84]]);
  });

  test('seeded sampling is reproducible; different seeds differ', async () => {
    const turns: ChatTurn[] = [{ role: 'user', text: 'Describe.', images: [photo] }];
    const opts = { maxNewTokens: 12, temperature: 1.2, topK: 50, topP: 0.95 };
    const a = await run(model, turns, { ...opts, seed: 1 });
    const b = await run(model, turns, { ...opts, seed: 1 });
    const c = await run(model, turns, { ...opts, seed: 2 });
    assert.deepEqual(a.done.stats.tokenIds, b.done.stats.tokenIds);
    assert.notDeepEqual(a.done.stats.tokenIds, c.done.stats.tokenIds);
  });

  test('generation stops at an EOS id from generation_config.json', async () => {
    const turns: ChatTurn[] = [{ role: 'user', text: 'What is this?', images: [photo] }];
    const greedy = await run(model, turns, { maxNewTokens: 3 });
    const eosDir = path.join(tmp, 'eos');
    cpSync(dir, eosDir, { recursive: true });
    const gen = JSON.parse(readFileSync(path.join(eosDir, 'generation_config.json'), 'utf8'));
    writeFileSync(path.join(eosDir, 'generation_config.json'), JSON.stringify({ ...gen, eos_token_id: [gen.eos_token_id, greedy.done.stats.tokenIds[1]].flat() }));
    const m = await loadModel(eosDir, { provider: 'cpu', variant: 'fp32' });
    try {
      const r = await run(m, turns, { maxNewTokens: 10 });
      assert.equal(r.done.stats.stopReason, 'eos');
      assert.deepEqual(r.done.stats.tokenIds, greedy.done.stats.tokenIds.slice(0, 1));
    } finally {
      await m.dispose();
    }
  });

  test("the image is expanded to the encoder's real rows, whatever processor_config says", async () => {
    // llava-1.5-7b-hf's real processor_config has num_additional_image_tokens: 1 (the CLS row the graph drops).
    const realDir = path.join(tmp, 'real-processor-config');
    cpSync(dir, realDir, { recursive: true });
    const pc = JSON.parse(readFileSync(path.join(realDir, 'processor_config.json'), 'utf8'));
    writeFileSync(path.join(realDir, 'processor_config.json'), JSON.stringify({ ...pc, num_additional_image_tokens: 1 }));
    const m = await loadModel(realDir, { provider: 'cpu', variant: 'fp32' });
    try {
      const turns: ChatTurn[] = [{ role: 'user', text: 'What is this?', images: [photo] }];
      const r = await run(m, turns, { maxNewTokens: 6 });
      const base = await run(model, turns, { maxNewTokens: 6 });
      assert.equal(r.done.stats.imageTokens, 36);
      assert.deepEqual(r.done.stats.tokenIds, base.done.stats.tokenIds);
    } finally {
      await m.dispose();
    }
  });

  test('concurrent generate() calls are serialised, not interleaved', async () => {
    const turns: ChatTurn[] = [{ role: 'user', text: 'What is this?', images: [photo] }];
    const solo = await run(model, turns, { maxNewTokens: 6 });
    const [x, y] = await Promise.all([run(model, turns, { maxNewTokens: 6 }), run(model, turns, { maxNewTokens: 6 })]);
    assert.deepEqual(x.done.stats.tokenIds, solo.done.stats.tokenIds);
    assert.deepEqual(y.done.stats.tokenIds, solo.done.stats.tokenIds);
  });
});

describe('loading errors', () => {
  test('an unsupported explicit variant names the file and what exists', async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    // the fixtures hold every variant, so a copy without the bnb4 files stands in for a folder that lacks one
    const lacking = mkdtempSync(path.join(tmpdir(), 'llava-no-bnb4-'));
    try {
      cpSync(dir, lacking, { recursive: true, filter: (src) => !src.includes('_bnb4') });
      await assert.rejects(loadModel(lacking, { provider: 'cpu', variant: 'bnb4' }), /vision_encoder_bnb4\.onnx.*not in this folder.*fp32/s);
    } finally {
      rmSync(lacking, { recursive: true, force: true });
    }
  });
  test('a corrupt ONNX file is a ModelLoadError naming it', async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const bad = mkdtempSync(path.join(tmpdir(), 'llava-bad-'));
    try {
      cpSync(dir, bad, { recursive: true });
      writeFileSync(path.join(bad, 'onnx', 'decoder_model_merged.onnx'), 'not a model');
      await assert.rejects(loadModel(bad, { provider: 'cpu', variant: 'fp32' }), (err: any) => err.code === 'MODEL_LOAD' && /decoder_model_merged\.onnx/.test(err.message));
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
