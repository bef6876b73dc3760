// The decoder's context window (max_position_embeddings) on a copy of tiny-llava whose config says
// 100 tokens: one image is 36 rows, so a question fits and a long conversation does not. The engine
// refuses with CONTEXT_OVERFLOW, or, when asked, leaves out the oldest turns (never the last
// question and its image) and says how many.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { ContextOverflowError, EngineError } from '../../src/core/errors';
import type { ChatTurn, GenerationEvent } from '../../src/core/types';
import { turnCuts } from '../../src/engine/context';
import { ensureFixtures } from '../fixtures/index';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const photo = { path: path.join(SAMPLES, 'photo.jpg') };
const diagram = { path: path.join(SAMPLES, 'diagram.png') };
const LIMIT = 100;

async function collect(model: LlavaModel, turns: ChatTurn[], opts: Parameters<LlavaModel['generate']>[1]) {
  let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
  for await (const ev of model.generate(turns, opts)) if (ev.type === 'done') done = ev;
  return done!;
}

describe('context window', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'llava-ctx-'));
  let model: LlavaModel;

  before(async () => {
    const [src] = await ensureFixtures(['tiny-llava']);
    const dir = path.join(tmp, 'small-context');
    cpSync(src, dir, { recursive: true, filter: (p) => !/decoder_model_merged_(fp16|q4)|embed_tokens_(fp16|q4)|vision_encoder_(fp16|q4)/.test(p) });
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    config.text_config.max_position_embeddings = LIMIT;
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    model = await loadModel(dir, { provider: 'cpu' });
  });
  after(async () => {
    await model?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the limit is read from the text config and reported', () => {
    assert.equal(model.info.contextLength, LIMIT);
    assert.equal(model.spec.contextLength, LIMIT);
  });

  test('a question that fits is answered; prompt + max_new_tokens past the limit is CONTEXT_OVERFLOW with the numbers', async () => {
    const turns: ChatTurn[] = [{ role: 'user', text: 'What is this?', images: [photo] }];
    const prompt = (await model.promptIds(turns)).length;
    assert.ok(prompt < LIMIT - 4, `prompt ${prompt} tokens`);
    const done = await collect(model, turns, { maxNewTokens: LIMIT - prompt });
    assert.equal(done.stats.promptTokens + (LIMIT - prompt), LIMIT);
    await assert.rejects(
      collect(model, turns, { maxNewTokens: LIMIT - prompt + 1 }),
      (err: unknown) => {
        assert.ok(err instanceof ContextOverflowError);
        assert.equal((err as EngineError).code, 'CONTEXT_OVERFLOW');
        assert.equal((err as ContextOverflowError).promptTokens, prompt);
        assert.equal((err as ContextOverflowError).contextLength, LIMIT);
        assert.match((err as Error).message, new RegExp(`${prompt} tokens.*context window of ${LIMIT}`));
        return true;
      },
    );
  });

  const conversation: ChatTurn[] = [
    { role: 'user', text: 'What is this?', images: [photo] },
    { role: 'assistant', text: 'A photo of something with several words in the answer.' },
    { role: 'user', text: 'And this one?', images: [diagram] },
  ];

  test('a conversation past the limit is refused by default', async () => {
    await assert.rejects(collect(model, conversation, { maxNewTokens: 8 }), { code: 'CONTEXT_OVERFLOW' });
  });

  test('dropOldestTurns leaves out the first question and answer, keeps the current image, returns every geometry', async () => {
    const done = await collect(model, conversation, { maxNewTokens: 8, fitContext: 'dropOldestTurns' });
    assert.equal(done.stats.droppedTurns, 2);
    assert.equal(done.stats.imageTokens, 36, 'only the current image is in the prompt');
    const alone = (await model.promptIds([conversation[2]])).length;
    assert.equal(done.stats.promptTokens, alone);
    assert.equal(done.images?.length, 2, 'geometry for every image of the turns, in order (the chat indexes them)');
  });

  test('when even the current question does not fit, dropOldestTurns still refuses', async () => {
    await assert.rejects(collect(model, conversation, { maxNewTokens: LIMIT, fitContext: 'dropOldestTurns' }), { code: 'CONTEXT_OVERFLOW' });
  });

  test('cuts fall on user turns and never past the last one', () => {
    assert.deepEqual(turnCuts(conversation), [0, 2]);
    assert.deepEqual(turnCuts([conversation[0]]), [0]);
  });
});
