// Conversations keep their KV cache (src/engine/prefixCache.ts): a follow-up prefills only its new
// tokens, Regenerate reuses all but the last prompt token, and the answers are exactly those of a model
// that recomputes everything (fp32, greedy and seeded sampling). Two different images behind the same
// token ids never share a cache.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { PrefixCache, truncate } from '../../src/engine/prefixCache';
import type { KvCache } from '../../src/engine/decoder';
import type { ChatTurn, GenerateOptions, GenerationStats } from '../../src/core/types';
import { ensureFixtures } from '../fixtures/index';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const bytesOf = (name: string) => ({ bytes: new Uint8Array(readFileSync(path.join(SAMPLES, name))), name });

/** A batch-1 cache of `length` positions, 2 heads x 3 dims, whose values say where they came from. */
function fakeCache(length: number, tag: number): KvCache {
  const data = new Float32Array(2 * length * 3).map((_, i) => tag * 1000 + i);
  return { length, batch: 1, tensors: { 'past_key_values.0.key': new ort.Tensor('float32', data, [1, 2, length, 3]) } };
}

describe('PrefixCache', () => {
  test('finds the longest common prefix, leaving the last position to run', () => {
    const pc = new PrefixCache(1 << 20);
    pc.store([1, 2, 3, 4, 5], fakeCache(5, 1));
    pc.store([1, 2, 9, 9], fakeCache(4, 2));
    assert.equal(pc.lookup([1, 2, 3, 4, 5, 6, 7])?.length, 5, 'whole entry reused');
    assert.equal(pc.lookup([1, 2, 3, 4, 5])?.length, 4, 'same prompt again (regenerate): all but the last');
    assert.equal(pc.lookup([1, 2, 9, 8])?.length, 3);
    assert.equal(pc.lookup([7, 1, 2]), undefined);
    assert.equal(pc.lookup([1]), undefined, 'a one-token prompt has nothing to reuse');
  });

  test('image rows are told apart by their key, not their token id', () => {
    const pc = new PrefixCache(1 << 20);
    pc.store([1, 'image:a', 'image:a', 5], fakeCache(4, 1));
    assert.equal(pc.lookup([1, 'image:b', 'image:b', 5, 6])?.length, 1);
    assert.equal(pc.lookup([1, 'image:a', 'image:a', 5, 6])?.length, 4);
  });

  test('truncate keeps the first positions of every head', () => {
    const c = fakeCache(4, 3);
    const t = truncate(c, 2).tensors['past_key_values.0.key'];
    assert.deepEqual(t.dims, [1, 2, 2, 3]);
    // head 0: positions 0-1 = values 0..5; head 1 starts at 4*3 = 12 in the source
    assert.deepEqual([...(t.data as Float32Array)], [3000, 3001, 3002, 3003, 3004, 3005, 3012, 3013, 3014, 3015, 3016, 3017]);
    assert.equal(truncate(c, 4), c, 'full length: no copy');
  });

  test('a later turn of the same conversation replaces its earlier entry; the budget evicts least recently used', () => {
    const entryBytes = 2 * 4 * 3 * 4; // fakeCache(4): 24 floats
    const pc = new PrefixCache(entryBytes * 2);
    pc.store([1, 2, 3, 4], fakeCache(4, 1));
    pc.store([1, 2, 3, 4, 5, 6], fakeCache(4, 2)); // extends the first: replaces it
    assert.equal(pc.size, 1);
    pc.store([7, 8, 9, 10], fakeCache(4, 3));
    pc.lookup([1, 2, 3, 4, 5]); // touches the first conversation
    pc.store([11, 12, 13, 14], fakeCache(4, 4)); // over budget: the least recently used ([7 ...]) goes
    assert.equal(pc.size, 2);
    assert.equal(pc.lookup([7, 8, 9, 10, 11]), undefined);
    assert.equal(pc.lookup([1, 2, 3, 4, 5])?.length, 4);
    assert.ok(pc.bytes <= entryBytes * 2);
  });
});

describe('follow-ups on tiny-llava reuse the cache and answer exactly as from scratch', () => {
  let cached: LlavaModel;
  let fresh: LlavaModel;
  before(async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    cached = await loadModel(dir, { provider: 'cpu', variant: 'fp32' });
    fresh = await loadModel(dir, { provider: 'cpu', variant: 'fp32', prefixCacheBytes: 0 });
  });
  after(async () => {
    await cached?.dispose();
    await fresh?.dispose();
  });

  async function answer(model: LlavaModel, turns: ChatTurn[], opts: GenerateOptions = {}): Promise<{ text: string; stats: GenerationStats }> {
    for await (const ev of model.generate(turns, { maxNewTokens: 12, ...opts })) if (ev.type === 'done') return ev;
    throw new Error('no done event');
  }

  test('turn 2 prefills only its new tokens; turn 2 and 3 tokens equal recomputation', async () => {
    const photo = bytesOf('photo.jpg');
    const t1: ChatTurn[] = [{ role: 'user', text: 'What is in this picture?', images: [photo] }];
    const a1 = await answer(cached, t1);
    assert.equal(a1.stats.reusedPromptTokens, 0, 'nothing to reuse on the first question');
    assert.deepEqual(a1.stats.tokenIds, (await answer(fresh, t1)).stats.tokenIds);

    const t2: ChatTurn[] = [...t1, { role: 'assistant', text: a1.text }, { role: 'user', text: 'And the colours?' }];
    const a2 = await answer(cached, t2);
    const r2 = await answer(fresh, t2);
    assert.deepEqual(a2.stats.tokenIds, r2.stats.tokenIds);
    assert.equal(r2.stats.reusedPromptTokens, 0, 'a model without a budget recomputes');
    // at least the system text, the image rows and the first question come from turn 1's cache
    assert.ok(a2.stats.reusedPromptTokens! >= a1.stats.promptTokens - 1, `reused ${a2.stats.reusedPromptTokens} of ${a2.stats.promptTokens}`);
    assert.ok(a2.stats.promptTokens - a2.stats.reusedPromptTokens! < a2.stats.promptTokens / 2);

    const t3: ChatTurn[] = [...t2, { role: 'assistant', text: a2.text }, { role: 'user', text: 'Is there text?' }];
    const a3 = await answer(cached, t3);
    assert.deepEqual(a3.stats.tokenIds, (await answer(fresh, t3)).stats.tokenIds);
    assert.ok(a3.stats.reusedPromptTokens! >= a2.stats.promptTokens - 1);
  });

  test('Regenerate reuses all but the last prompt token; greedy repeats, a new seed samples afresh as from scratch', async () => {
    const turns: ChatTurn[] = [{ role: 'user', text: 'Describe the diagram.', images: [bytesOf('diagram.png')] }];
    const first = await answer(cached, turns);
    const again = await answer(cached, turns);
    assert.equal(again.stats.reusedPromptTokens, again.stats.promptTokens - 1);
    assert.deepEqual(again.stats.tokenIds, first.stats.tokenIds);
    const sampled = { temperature: 1, topK: 20, seed: 7 };
    assert.deepEqual((await answer(cached, turns, sampled)).stats.tokenIds, (await answer(fresh, turns, sampled)).stats.tokenIds);
  });

  test('the same question about another image (same token ids) does not reuse the first image rows', async () => {
    const q = 'What is shown here?';
    await answer(cached, [{ role: 'user', text: q, images: [bytesOf('tall.png')] }]);
    // an image no earlier test asked about, behind exactly the same ids
    const other: ChatTurn[] = [{ role: 'user', text: q, images: [bytesOf('screenshot.png')] }];
    const a = await answer(cached, other);
    assert.deepEqual(a.stats.tokenIds, (await answer(fresh, other)).stats.tokenIds);
    assert.ok(a.stats.reusedPromptTokens! < a.stats.promptTokens - a.stats.imageTokens, 'the image rows were prefilled');
  });
});
