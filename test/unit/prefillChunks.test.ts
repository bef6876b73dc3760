// Chunked prefill (decoder.ts runs long inputs in pieces to bound the [B, T, vocab] logits) must give
// the same next-token logits and the same cache as one run over the whole input. Independent reason
// for equality: attention over a KV cache is the same computation as causal attention over the
// concatenated sequence, so only float rounding may differ.
//
//   node --import tsx --test test/unit/prefillChunks.test.ts

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as path from 'node:path';
import { LanguageModel, type KvCache } from '../../src/engine/decoder';
import { createSession, releaseAll, type Session } from '../../src/engine/onnx';
import { sessionOptions } from '../../src/engine/providers';
import { ensureFixtures } from '../fixtures/index';

const TOLERANCE = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function cacheData(cache: KvCache): Float32Array[] {
  return Object.keys(cache.tensors)
    .sort()
    .map((k) => cache.tensors[k].data as Float32Array);
}

for (const fixture of ['tiny-llava', 'tiny-qwen']) {
  describe(`chunked prefill: ${fixture}`, () => {
    let sessions: Session[] = [];
    let whole: LanguageModel;
    let chunked: LanguageModel;

    before(async () => {
      const [dir] = await ensureFixtures([fixture]);
      const files = { embed: path.join(dir, 'onnx', 'embed_tokens.onnx'), decoder: path.join(dir, 'onnx', 'decoder_model_merged.onnx') };
      const options = sessionOptions('cpu', {});
      sessions = [await createSession(files.embed, options), await createSession(files.decoder, options)];
      whole = new LanguageModel(sessions[0], sessions[1], files, {}, { prefillChunkTokens: 1e9 });
      chunked = new LanguageModel(sessions[0], sessions[1], files, {}, { prefillChunkTokens: 7 });
    });
    after(() => releaseAll(sessions));

    test('one sequence, 30 tokens in chunks of 7, then a decode step', async () => {
      const ids = Array.from({ length: 30 }, (_, i) => 100 + ((i * 37) % 500));
      const embeds = await whole.embed(ids);
      const mask = new Array(ids.length).fill(1);
      const a = await whole.forward(embeds, mask, whole.emptyCache(1));
      const b = await chunked.forward(embeds, mask, chunked.emptyCache(1));
      assert.equal(b.cache.length, 30);
      assert.ok(maxAbsDiff(a.logits, b.logits) <= TOLERANCE, `logits differ by ${maxAbsDiff(a.logits, b.logits)}`);
      cacheData(a.cache).forEach((t, i) => assert.ok(maxAbsDiff(t, cacheData(b.cache)[i]) <= TOLERANCE, `cache tensor ${i}`));

      const next = await whole.embed([42]);
      const a2 = await whole.forward(next, new Array(31).fill(1), a.cache);
      const b2 = await chunked.forward(next, new Array(31).fill(1), b.cache);
      assert.ok(maxAbsDiff(a2.logits, b2.logits) <= TOLERANCE);
      // the logits are real numbers, not a constant: the comparison can fail
      assert.ok(a2.logits.reduce((m, v) => Math.max(m, v), -Infinity) - a2.logits.reduce((m, v) => Math.min(m, v), Infinity) > 1e-3);
    });

    test('a left-padded batch of two, with a non-empty cache', async () => {
      // row 0: 4 padding + 16 tokens, row 1: 20 tokens; prefill 12, then the remaining 8 in one call
      const B = 2;
      const T = 20;
      const ids = Array.from({ length: B * T }, (_, i) => 200 + ((i * 53) % 700));
      const mask = Array.from({ length: B * T }, (_, i) => (i < 4 ? 0 : 1));
      const embeds = await whole.embed(ids, B); // [2, 20, hidden]
      const hidden = embeds.length / (B * T);
      const slice = (from: number, to: number) => {
        const out = new Float32Array(B * (to - from) * hidden);
        for (let b = 0; b < B; b++) out.set(embeds.subarray((b * T + from) * hidden, (b * T + to) * hidden), b * (to - from) * hidden);
        return out;
      };
      const maskTo = (cols: number) => Array.from({ length: B * cols }, (_, i) => mask[Math.floor(i / cols) * T + (i % cols)]);
      const first = await whole.forward(slice(0, 12), maskTo(12), whole.emptyCache(B));
      const a = await whole.forward(slice(12, 20), maskTo(20), first.cache);
      const firstChunked = await chunked.forward(slice(0, 12), maskTo(12), chunked.emptyCache(B));
      const b = await chunked.forward(slice(12, 20), maskTo(20), firstChunked.cache);
      assert.equal(a.logits.length, B * a.vocab);
      assert.ok(maxAbsDiff(a.logits, b.logits) <= TOLERANCE, `logits differ by ${maxAbsDiff(a.logits, b.logits)}`);
      // the two rows differ (padding was honoured per row, not shared)
      assert.ok(maxAbsDiff(a.logits.subarray(0, a.vocab), a.logits.subarray(a.vocab)) > 1e-3);
    });
  });
}

