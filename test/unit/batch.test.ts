// Batched decoding (src/engine/batch.ts) against the one-by-one path (LlavaModel.generate) on the tiny
// fixtures: left padding, per-row stopping and cache compaction must not change a single greedy token.
// The reference is our own generate(), which parity.test.ts ties to transformers.js.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { dropLeadingColumns, selectRows, type BatchEvent, type BatchRequest } from '../../src/engine/batch';
import type { KvCache } from '../../src/engine/decoder';
import type { ChatTurn, GenerateOptions, GenerationStats } from '../../src/core/types';
import { ensureFixtures } from '../fixtures/index';
import { externalDecoderTempCopy } from '../helpers/externalCopy';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const NEW_TOKENS = 12;

/** Prompts of clearly different token lengths, so rows get different amounts of left padding. */
const REQUESTS: { image: string; question: string }[] = [
  { image: 'diagram.png', question: 'What?' },
  { image: 'photo.jpg', question: 'Describe the picture in detail, please. Is there any text, and what colour is the sky in it?' },
  { image: 'tall.png', question: 'Write a short caption.' },
  { image: 'screenshot.png', question: 'List comma-separated tags for this image: objects, style, colours, setting, mood, composition, lighting, camera angle, era and anything else you notice.' },
];

function turnsFor(r: { image: string; question: string }): ChatTurn[] {
  return [{ role: 'user', text: r.question, images: [{ path: path.join(SAMPLES, r.image) }] }];
}

async function single(model: LlavaModel, turns: ChatTurn[], opts: GenerateOptions): Promise<{ text: string; stats: GenerationStats }> {
  let done: { text: string; stats: GenerationStats } | undefined;
  for await (const ev of model.generate(turns, opts)) if (ev.type === 'done') done = ev;
  assert.ok(done, 'generate() ended without done');
  return done;
}

async function batched(model: LlavaModel, requests: BatchRequest[], opts: GenerateOptions) {
  const done = new Map<number, { text: string; stats: GenerationStats; deltas: string }>();
  const errors = new Map<number, Error>();
  const deltas = new Map<number, string>();
  const events: BatchEvent[] = [];
  for await (const ev of model.generateBatch(requests, opts)) {
    events.push(ev);
    if (ev.type === 'delta') deltas.set(ev.index, (deltas.get(ev.index) ?? '') + ev.text);
    else if (ev.type === 'done') {
      assert.ok(!done.has(ev.index) && !errors.has(ev.index), `row ${ev.index} ended twice`);
      done.set(ev.index, { text: ev.text, stats: ev.stats, deltas: deltas.get(ev.index) ?? '' });
    } else {
      assert.ok(!done.has(ev.index) && !errors.has(ev.index), `row ${ev.index} ended twice`);
      errors.set(ev.index, ev.error);
    }
  }
  return { done, errors, events };
}

// tiny-llava's decoder is a small single file, loaded as it is: its cache grows by the graph's Concat. tiny-qwen's
// (a 151k vocabulary) is over 16 MiB, so the engine loads its split copy, edited to keep a preallocated cache
// (holedKv); so is tiny-llava with its decoder in external data
// Each also with the prompts prefilled together (what a GPU gets; on the CPU the engine prefills each row alone).
const CASES = [
  { fixture: 'tiny-llava', external: false, kvCache: 'growing' },
  { fixture: 'tiny-qwen', external: false, kvCache: 'in-place' },
  { fixture: 'tiny-llava', external: true, kvCache: 'in-place' },
].flatMap((c) => (['rows', 'together'] as const).map((prefill) => ({ ...c, prefill })));
for (const { fixture, external, kvCache, prefill } of CASES) {
  describe(`batched decoding equals one-by-one: ${fixture}${external ? ', decoder in external data (preallocated cache)' : ''}, prompts prefilled ${prefill === 'rows' ? 'row by row' : 'together'}`, () => {
    let model: LlavaModel;
    let copy: string | undefined;
    before(async () => {
      const [dir] = await ensureFixtures([fixture]);
      if (external) copy = externalDecoderTempCopy(dir);
      model = await loadModel(copy ?? dir, { provider: 'cpu', variant: 'fp32', threads: 1 });
      assert.equal(model.info.kvCache, kvCache);
      assert.equal(model.batchPrefill, 'rows', 'the CPU default');
      model.batchPrefill = prefill;
    });
    after(async () => {
      await model?.dispose();
      if (copy) rmSync(copy, { recursive: true, force: true });
    });

    test('greedy tokens, prompts of different lengths', async () => {
      const requests = REQUESTS.map((r) => ({ turns: turnsFor(r) }));
      const lengths = await Promise.all(requests.map((r) => model.promptIds(r.turns).then((ids) => ids.length)));
      assert.ok(new Set(lengths).size === lengths.length, `prompt lengths should differ: ${lengths}`);
      const { done, errors } = await batched(model, requests, { maxNewTokens: NEW_TOKENS });
      assert.equal(errors.size, 0);
      assert.equal(done.size, requests.length);
      const allTokens = new Set<number>();
      for (let i = 0; i < requests.length; i++) {
        const ref = await single(model, requests[i].turns, { maxNewTokens: NEW_TOKENS });
        const row = done.get(i)!;
        assert.deepEqual(row.stats.tokenIds, ref.stats.tokenIds, `row ${i} tokens`);
        assert.equal(row.stats.stopReason, ref.stats.stopReason, `row ${i} stop reason`);
        assert.equal(row.stats.promptTokens, lengths[i], 'promptTokens counts the unpadded prompt');
        assert.equal(row.text, ref.text, `row ${i} text`);
        assert.equal(row.deltas, row.text, 'the deltas add up to the final text');
        row.stats.tokenIds.forEach((t) => allTokens.add(t));
      }
      assert.ok(allTokens.size > 3, 'the fixture should not produce one repeated token');
    });

    test('rows that stop early leave the batch; the others keep their tokens', async () => {
      // Different caps make rows finish at steps 2, 5 and 12: the cache is compacted twice and, once the
      // longest prompt has gone, padding columns are dropped.
      const caps = [5, 12, 2, 9];
      const requests = REQUESTS.map((r, i) => ({ turns: turnsFor(r), maxNewTokens: caps[i] }));
      const { done } = await batched(model, requests, { maxNewTokens: NEW_TOKENS });
      for (let i = 0; i < requests.length; i++) {
        const ref = await single(model, requests[i].turns, { maxNewTokens: caps[i] });
        assert.deepEqual(done.get(i)!.stats.tokenIds, ref.stats.tokenIds, `row ${i} (cap ${caps[i]})`);
      }
    });

    test('a forced answer prefix starts each row and is followed by the same tokens', async () => {
      const prefixes = ['A photo of', 'This image shows', 'Tags:', 'It'];
      const requests = REQUESTS.map((r, i) => ({ turns: turnsFor(r), answerPrefix: prefixes[i] }));
      const { done } = await batched(model, requests, { maxNewTokens: 8 });
      for (let i = 0; i < requests.length; i++) {
        const row = done.get(i)!;
        assert.ok(row.text.startsWith(prefixes[i]), `row ${i} text "${row.text}" starts with its prefix`);
        const ref = await single(model, requests[i].turns, { maxNewTokens: 8, answerPrefix: prefixes[i] });
        assert.deepEqual(row.stats.tokenIds, ref.stats.tokenIds, `row ${i} tokens after the prefix`);
        // The generated part decodes as a continuation of the prefix (no glued words from a lost space).
        const full = model.tokenizer.decode([...model.tokenizer.encode(prefixes[i], { addSpecialTokens: false }), ...row.stats.tokenIds], { skipSpecialTokens: true });
        assert.equal(row.text.slice(prefixes[i].length), full.slice(full.indexOf(prefixes[i]) + prefixes[i].length), `row ${i} continuation`);
      }
    });

    test('seeded sampling per row matches generate() with the same seed', async () => {
      // Few tokens: the sampler sorts the whole vocabulary (151k for the Qwen tokenizer) per step.
      const opts = { maxNewTokens: 4, temperature: 1.5, topK: 50 };
      const requests = REQUESTS.slice(0, 2).map((r, i) => ({ turns: turnsFor(r), seed: 100 + i }));
      const { done } = await batched(model, requests, opts);
      for (let i = 0; i < requests.length; i++) {
        const ref = await single(model, requests[i].turns, { ...opts, seed: 100 + i });
        assert.deepEqual(done.get(i)!.stats.tokenIds, ref.stats.tokenIds, `row ${i}`);
      }
    });

    test('a broken image fails only its own row', async () => {
      const requests: BatchRequest[] = [
        { turns: turnsFor(REQUESTS[0]) },
        { turns: [{ role: 'user', text: 'What?', images: [{ bytes: new TextEncoder().encode('not an image'), name: 'bad.jpg' }] }] },
        { turns: turnsFor(REQUESTS[2]) },
      ];
      const { done, errors } = await batched(model, requests, { maxNewTokens: 4 });
      assert.deepEqual([...errors.keys()], [1]);
      assert.equal((errors.get(1) as { code?: string }).code, 'IMAGE_DECODE');
      assert.deepEqual([...done.keys()].sort(), [0, 2]);
      const ref = await single(model, requests[2].turns, { maxNewTokens: 4 });
      assert.deepEqual(done.get(2)!.stats.tokenIds, ref.stats.tokenIds);
    });

    test('abort ends every row with stopReason aborted', async () => {
      const controller = new AbortController();
      const requests = REQUESTS.map((r) => ({ turns: turnsFor(r) }));
      const stops: string[] = [];
      let deltas = 0;
      for await (const ev of model.generateBatch(requests, { maxNewTokens: 200, signal: controller.signal })) {
        if (ev.type === 'delta' && ++deltas === 3) controller.abort();
        if (ev.type === 'done') stops.push(ev.stats.stopReason);
      }
      assert.equal(stops.length, requests.length);
      assert.ok(stops.every((s) => s === 'aborted' || s === 'eos'), stops.join());
      assert.ok(stops.includes('aborted'));
    });
  });
}

describe('KV cache compaction', () => {
  // [B=3, H=2, P=4, D=2] with value = b*1000 + h*100 + p*10 + d, so every element says where it came from.
  const make = (type: 'float32' | 'float16'): KvCache => {
    const [B, H, P, D] = [3, 2, 4, 2];
    const data = new Float32Array(B * H * P * D);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let p = 0; p < P; p++) for (let d = 0; d < D; d++) data[((b * H + h) * P + p) * D + d] = b * 1000 + h * 100 + p * 10 + d;
    const t = type === 'float32' ? new ort.Tensor('float32', data, [B, H, P, D]) : new ort.Tensor('float16', Uint16Array.from(data), [B, H, P, D]);
    return { length: P, batch: B, tensors: { 'past_key_values.0.key': t } };
  };
  for (const type of ['float32', 'float16'] as const) {
    test(`selectRows then dropLeadingColumns (${type})`, () => {
      const picked = selectRows(make(type), [2, 0]);
      assert.deepEqual(picked.tensors['past_key_values.0.key'].dims, [2, 2, 4, 2]);
      const dropped = dropLeadingColumns(picked, 3);
      const t = dropped.tensors['past_key_values.0.key'];
      assert.deepEqual(t.dims, [2, 2, 1, 2]);
      assert.equal(dropped.length, 1);
      assert.equal(dropped.batch, 2);
      // row 0 is old row 2, row 1 is old row 0; only position p = 3 is left
      assert.deepEqual(Array.from(t.data as ArrayLike<number>, Number), [2030, 2031, 2130, 2131, 30, 31, 130, 131]);
    });
  }
});
