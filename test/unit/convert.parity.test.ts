// Converted checkpoints against references: (a) the fixture graphs built from the same weights
// (our engine runs both) and (b) transformers.js 4.3.1 loading the converted folder. Same pixel
// values everywhere; identical greedy tokens and first-step logits within 1e-4.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { buildDecoder, buildEmbedTokens, buildVisionEncoder, convertCheckpoint, type BuilderOptions } from '../../src/convert';
import { readSafetensorsHeader } from '../../src/convert/safetensors';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { IN_PLACE_GROWTH, LanguageModel, packed } from '../../src/engine/decoder';
import type { ChatTurn } from '../../src/core/types';
import { FIXTURES, MODELS_DIR, ensureFixtures } from '../fixtures/index';
import { loadReference, maxAbsDiff, ourGreedy, referenceGreedy, referenceInputs, referenceNextLogits } from '../helpers/transformersReference';
import { storedSource, writeLlavaCheckpoint } from '../helpers/llavaCheckpoint';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const IMAGES = ['photo.jpg', 'tall.png'];
const QUESTION = 'What is in this image?';
const NEW_TOKENS = 10;
const LOGIT_TOLERANCE = 1e-4;
const tiny = FIXTURES.find((f) => f.spec.name === 'tiny-llava')!;
/** under MODELS_DIR so transformers.js (localModelPath) finds the converted folders by name */
const WORK = path.join(MODELS_DIR, 'convert-parity');

async function compare(a: LlavaModel, b: LlavaModel, image: string): Promise<{ diff: number; tokensA: number[]; tokensB: number[] }> {
  const pixels = await a.preprocess({ path: path.join(SAMPLES, image) });
  const turns: ChatTurn[] = [{ role: 'user', text: QUESTION, images: [{ preprocessed: pixels, name: image }] }];
  assert.deepEqual(await a.promptIds(turns), await b.promptIds(turns), 'prompt ids');
  const diff = maxAbsDiff(await a.nextTokenLogits(turns), await b.nextTokenLogits(turns));
  const tokens = async (m: LlavaModel) => {
    let done: any;
    for await (const ev of m.generate(turns, { maxNewTokens: NEW_TOKENS })) if (ev.type === 'done') done = ev;
    return done.stats.tokenIds as number[];
  };
  return { diff, tokensA: await tokens(a), tokensB: await tokens(b) };
}

/** Two model folders run by our engine: the same prompt ids, first-step logits within 1e-4 and greedy tokens, on every image. */
async function assertSameModel(dirA: string, dirB: string, variant: 'fp32' | 'q4' | 'fp16'): Promise<void> {
  const a = await loadModel(dirA, { provider: 'cpu', variant });
  const b = await loadModel(dirB, { provider: 'cpu', variant });
  try {
    for (const image of IMAGES) {
      const { diff, tokensA, tokensB } = await compare(a, b, image);
      assert.ok(diff <= LOGIT_TOLERANCE, `${image}: first-step logits differ by ${diff}`);
      assert.deepEqual(tokensA, tokensB, `${image}: greedy tokens`);
      if (variant === 'fp32') assert.ok(new Set(tokensA).size > 1, 'a useful comparison needs varied tokens');
    }
  } finally {
    await a.dispose();
    await b.dispose();
  }
}

/** (b): transformers.js loads the converted folder `out` (named `name` under MODELS_DIR): our engine on it gives the
 * same prompt ids, first-step logits within 1e-4 and greedy tokens, on every image. */
async function assertSameAsTransformersJs(name: string, out: string, variant: 'fp32' | 'q4' = 'fp32'): Promise<void> {
  const ours = await loadModel(out, { provider: 'cpu', variant });
  const theirs = await loadReference(name, out, variant);
  try {
    for (const image of IMAGES) {
      const imagePath = path.join(SAMPLES, image);
      const pixels = await ours.preprocess({ path: imagePath });
      const turns: ChatTurn[] = [{ role: 'user', text: QUESTION, images: [{ preprocessed: pixels, name: image }] }];
      const { inputs, ids } = await referenceInputs(theirs, imagePath, QUESTION, pixels);
      assert.deepEqual(await ours.promptIds(turns), ids, 'prompt ids');
      const diff = maxAbsDiff(await ours.nextTokenLogits(turns), await referenceNextLogits(theirs, inputs));
      assert.ok(diff <= LOGIT_TOLERANCE, `${image}: first-step logits differ by ${diff}`);
      const refTokens = await referenceGreedy(theirs, inputs, ids.length, NEW_TOKENS);
      assert.deepEqual(await ourGreedy(ours, turns, NEW_TOKENS, refTokens), refTokens, `${image}: greedy tokens`);
    }
  } finally {
    await ours.dispose();
    await theirs.model.dispose();
  }
}

/** A fixture-layout folder whose graphs the fixture code builds, in memory, from `dtype`-rounded weights. */
function referenceFolder(dir: string, fixtureDir: string): void {
  mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  for (const f of readdirSync(fixtureDir)) if (f.endsWith('.json') || f.endsWith('.jinja')) cpSync(path.join(fixtureDir, f), path.join(dir, f));
  const opts: BuilderOptions = { fp16Weights: false, source: storedSource(tiny, 'BF16') };
  writeFileSync(path.join(dir, 'onnx', 'vision_encoder.onnx'), buildVisionEncoder(tiny.spec, opts).encode());
  writeFileSync(path.join(dir, 'onnx', 'embed_tokens.onnx'), buildEmbedTokens(tiny.spec, opts).encode());
  writeFileSync(path.join(dir, 'onnx', 'decoder_model_merged.onnx'), buildDecoder(tiny.spec, opts).encode());
}

before(async () => {
  await ensureFixtures(['tiny-llava']);
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
});
after(() => rmSync(WORK, { recursive: true, force: true }));

describe('F16 checkpoint, older names, one file -> the fixture tiny-llava (same weights, exactly)', () => {
  const out = path.join(WORK, 'f16');
  before(() => {
    const ckpt = path.join(WORK, 'ckpt-f16');
    writeLlavaCheckpoint(ckpt, tiny, { layout: 'language_model.model', dtype: 'F16', shards: 1 });
    const result = convertCheckpoint({ from: ckpt, out, dtypes: ['fp32', 'q4', 'fp16', 'q4f16'] });
    assert.deepEqual(result.external, [], 'tiny graphs are single files');
  });

  test('q4f16 (4-bit linears, fp16 elsewhere, fp16 KV cache) loads and decodes like q4', async () => {
    const q4f16 = await loadModel(out, { provider: 'cpu', variant: 'q4f16' });
    const q4 = await loadModel(out, { provider: 'cpu', variant: 'q4' });
    try {
      const { diff, tokensA, tokensB } = await compare(q4f16, q4, IMAGES[0]);
      assert.ok(diff <= 1e-2, `first-step logits differ by ${diff} (only the fp16 cache and norms differ)`);
      assert.deepEqual(tokensA, tokensB);
    } finally {
      await q4f16.dispose();
      await q4.dispose();
    }
  });

  for (const variant of ['fp32', 'q4', 'fp16'] as const) {
    test(`${variant}: identical prompt, logits and greedy tokens`, () => assertSameModel(out, path.join(MODELS_DIR, 'tiny-llava'), variant));
  }
});

describe('BF16 checkpoint, newer names, 3 shards, external data -> fixture graphs and transformers.js', () => {
  const name = 'convert-parity/bf16';
  const out = path.join(MODELS_DIR, name);
  const ref = path.join(WORK, 'bf16-reference');
  before(() => {
    const ckpt = path.join(WORK, 'ckpt-bf16');
    writeLlavaCheckpoint(ckpt, tiny, { layout: 'model.language_model', dtype: 'BF16', shards: 3 });
    // a 1 MiB limit sends the embedding table and the decoder (4 and 8 MiB) to external data
    const result = convertCheckpoint({ from: ckpt, out, dtypes: ['fp32'], inlineLimitBytes: 2 ** 20 });
    assert.deepEqual(result.external.sort(), ['onnx/decoder_model_merged.onnx', 'onnx/embed_tokens.onnx']);
    assert.ok(existsSync(path.join(out, 'onnx', 'decoder_model_merged.onnx_data')));
    assert.ok(!existsSync(path.join(out, 'onnx', 'vision_encoder.onnx_data')));
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config['transformers.js_config'].use_external_data_format, { 'decoder_model_merged.onnx': 1, 'embed_tokens.onnx': 1 });
    referenceFolder(ref, path.join(MODELS_DIR, 'tiny-llava'));
  });

  test('(a) fixture graphs from the same bf16 weights: identical logits and greedy tokens', () => assertSameModel(out, ref, 'fp32'));

  test('our engine loads the external-data decoder with its LM head fed the last position only (the inline-weight reference as it is)', async () => {
    for (const [dir, want] of [[out, 'last position'], [ref, 'every position']] as const) {
      const m = await loadModel(dir, { provider: 'cpu', variant: 'fp32' });
      try {
        assert.equal(m.info.logits, want, dir);
      } finally {
        await m.dispose();
      }
    }
  });

  test('(b) transformers.js loads the converted folder: same prompt ids, logits within 1e-4, same greedy tokens', () => assertSameAsTransformersJs(name, out));
});

describe('head_dim that is not hidden / heads (8 query heads of 16 and 2 KV heads on hidden 64, as Qwen3 and Gemma configs set it)', () => {
  const name = 'convert-parity/head-dim';
  const out = path.join(MODELS_DIR, name);
  const def = { ...tiny, spec: { ...tiny.spec, name: 'tiny-llava-head-dim', text: { ...tiny.spec.text, heads: 8, kvHeads: 2, headDim: 16 } } };
  before(() => {
    const ckpt = path.join(WORK, 'ckpt-head-dim');
    writeLlavaCheckpoint(ckpt, def, { layout: 'language_model.model', dtype: 'F32', shards: 1 });
    assert.equal(JSON.parse(readFileSync(path.join(ckpt, 'config.json'), 'utf8')).text_config.head_dim, 16);
    convertCheckpoint({ from: ckpt, out, dtypes: ['fp32', 'q4'] });
  });

  test('the decoder projects to heads x head_dim (128), not hidden (64), and caches 2 KV heads of 16', () => {
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(path.join(out, 'onnx', 'decoder_model_merged.onnx')));
    const dims = (n: string) => model.graph!.initializer!.find((t) => t.name === n)?.dims?.map(Number);
    assert.deepEqual(dims('model.layers.0.self_attn.q_proj.weight')?.slice().sort(), [128, 64].sort());
    assert.deepEqual(dims('model.layers.0.self_attn.k_proj.weight')?.slice().sort(), [32, 64].sort());
    const past = model.graph!.input!.find((i) => i.name === 'past_key_values.0.key')!;
    assert.deepEqual(past.type!.tensorType!.shape!.dim!.map((d) => (d.dimValue ? Number(d.dimValue) : d.dimParam)).slice(1).filter((d) => typeof d === 'number'), [2, 16]);
  });

  test('(b) transformers.js loads the converted folder: same prompt ids, logits within 1e-4, same greedy tokens', () => assertSameAsTransformersJs(name, out));
});

describe('vocabulary rows a small model never uses (exact zeros in lm_head and the embedding) are stored sparse', () => {
  const name = 'convert-parity/sparse';
  const out = path.join(MODELS_DIR, name);
  const KEEP = 1000; // rows 0..999 stay; the other 31,064 of 32,064 are zero (as a trained small model leaves them)
  before(() => {
    const ckpt = path.join(WORK, 'ckpt-sparse');
    writeLlavaCheckpoint(ckpt, tiny, { layout: 'language_model.model', dtype: 'F32', shards: 1 });
    const file = path.join(ckpt, 'model.safetensors');
    const fd = openSync(file, 'r+');
    try {
      for (const t of readSafetensorsHeader(file).filter((x) => ['language_model.lm_head.weight', 'language_model.model.embed_tokens.weight'].includes(x.name))) {
        const rowBytes = t.shape[1] * 4;
        writeSync(fd, Buffer.alloc(t.byteLength - KEEP * rowBytes), 0, t.byteLength - KEEP * rowBytes, t.offset + KEEP * rowBytes);
      }
    } finally {
      closeSync(fd);
    }
    convertCheckpoint({ from: ckpt, out, dtypes: ['fp32', 'q4'] });
  });

  test('fp32: both tables are sparse initializers holding only their non-zero rows; the files shrink to match', () => {
    const hidden = tiny.spec.text.hidden;
    for (const [file, weight] of [['embed_tokens.onnx', 'model.embed_tokens.weight'], ['decoder_model_merged.onnx', 'lm_head.weight']]) {
      const bytes = readFileSync(path.join(out, 'onnx', file));
      const model = onnxProto.onnx.ModelProto.decode(bytes);
      const sparse = model.graph!.sparseInitializer!.find((t) => t.values!.name === weight);
      assert.ok(sparse, `${file}: ${weight} is not sparse (sparse: ${model.graph!.sparseInitializer!.map((t) => t.values!.name)})`);
      assert.ok(!model.graph!.initializer!.some((t) => t.name === weight), `${file}: ${weight} is also dense`);
      assert.equal(Number(sparse.values!.dims![0]), KEEP * hidden);
      // 12 bytes per kept value (f32 + int64 index) and the rest of the graph, against 8.2 MB dense
      assert.ok(bytes.length < KEEP * hidden * 12 + 600_000, `${file}: ${bytes.length} bytes`);
    }
  });

  test('(b) transformers.js loads the sparse folder: same prompt ids, logits within 1e-4, same greedy tokens', () => assertSameAsTransformersJs(name, out));

  test('q4: the mostly-zero lm_head stays a sparse f32 MatMul (smaller than 4 bits for every row, and exact); the layers are 4-bit', () => {
    const { hidden, vocab } = tiny.spec.text;
    const bytes = readFileSync(path.join(out, 'onnx', 'decoder_model_merged_q4.onnx'));
    const graph = onnxProto.onnx.ModelProto.decode(bytes).graph!;
    assert.ok(graph.sparseInitializer!.some((t) => t.values!.name === 'lm_head.weight'), 'lm_head.weight is not sparse');
    assert.ok(!graph.initializer!.some((t) => t.name!.startsWith('lm_head.weight')), 'a dense or 4-bit lm_head is left');
    assert.ok(graph.node!.some((n) => n.opType === 'MatMul' && n.input![1] === 'lm_head.weight'));
    assert.ok(graph.node!.filter((n) => n.opType === 'MatMulNBits').length >= 7 * tiny.spec.text.layers, 'the layers are not 4-bit');
    // the dense 4-bit head alone would take vocab x hidden x (1/2 + 4/32) bytes
    assert.ok(bytes.length < KEEP * hidden * 12 + (vocab * hidden * 5) / 8, `${bytes.length} bytes`);
  });

  test('(b) q4: transformers.js loads the folder with the sparse head: same prompt ids, logits within 1e-4, same greedy tokens', () => assertSameAsTransformersJs(name, out, 'q4'));

  test('the sparse embedding gives back the checkpoint rows exactly (kept rows) and zeros (the rest)', async () => {
    const file = path.join(WORK, 'ckpt-sparse', 'model.safetensors');
    const t = readSafetensorsHeader(file).find((x) => x.name === 'language_model.model.embed_tokens.weight')!;
    const hidden = t.shape[1];
    const ids = [0, 5, KEEP - 1, KEEP, 20000];
    const session = await ort.InferenceSession.create(path.join(out, 'onnx', 'embed_tokens.onnx'));
    try {
      const got = (await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) })).inputs_embeds.data as Float32Array;
      const fd = openSync(file, 'r');
      try {
        ids.forEach((id, k) => {
          const row = Buffer.alloc(hidden * 4);
          readSync(fd, row, 0, row.length, t.offset + id * hidden * 4);
          const want = new Float32Array(row.buffer, row.byteOffset, hidden);
          assert.deepEqual(Array.from(got.subarray(k * hidden, (k + 1) * hidden)), Array.from(want), `row ${id}`);
          assert.equal(want.some((v) => v !== 0), id < KEEP, `row ${id} is ${id < KEEP ? 'kept' : 'zero'} in the checkpoint`);
        });
      } finally {
        closeSync(fd);
      }
    } finally {
      await session.release();
    }
  });
});

describe('--graph fast (contrib ops) against the hub-graph fixture, same weights', () => {
  const out = path.join(WORK, 'fast');
  before(() => {
    const ckpt = path.join(WORK, 'ckpt-fast');
    writeLlavaCheckpoint(ckpt, tiny, { layout: 'language_model.model', dtype: 'F16', shards: 1 });
    convertCheckpoint({ from: ckpt, out, dtypes: ['fp32', 'q4'], graph: 'fast' });
    const ops = new Set(onnxProto.onnx.ModelProto.decode(readFileSync(path.join(out, 'onnx', 'decoder_model_merged_q4.onnx'))).graph!.node!.map((n) => n.opType));
    for (const op of ['GroupQueryAttention', 'RotaryEmbedding', 'SimplifiedLayerNormalization', 'MatMulNBits']) assert.ok(ops.has(op), `no ${op} in the fast decoder`);
    assert.ok(!ops.has('Softmax') && !ops.has('Concat'), 'attention and the cache append are inside GroupQueryAttention');
  });

  /** the fast folder and the hub-graph fixture of the same weights, loaded side by side for `fn` */
  async function withFastAndHub(variant: 'fp32' | 'q4', fn: (fast: LlavaModel, hub: LlavaModel) => Promise<void>): Promise<void> {
    const fast = await loadModel(out, { provider: 'cpu', variant });
    const hub = await loadModel(path.join(MODELS_DIR, 'tiny-llava'), { provider: 'cpu', variant });
    try {
      await fn(fast, hub);
    } finally {
      await fast.dispose();
      await hub.dispose();
    }
  }

  test('fp32: one request: logits within 1e-4, same greedy tokens', () => assertSameModel(out, path.join(MODELS_DIR, 'tiny-llava'), 'fp32'));

  test('q4: int8 multiplies (accuracy_level 4) stay within 1 % of the logit range of the hub q4 graph, same first token', async () => {
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(path.join(out, 'onnx', 'decoder_model_merged_q4.onnx')));
    const levels = model.graph!.node!.filter((n) => n.opType === 'MatMulNBits').map((n) => Number(n.attribute!.find((a) => a.name === 'accuracy_level')?.i ?? 0));
    assert.ok(levels.length > 0 && levels.every((l) => l === 4), `accuracy_level of the MatMulNBits nodes: ${[...new Set(levels)].join(', ')}`);
    await withFastAndHub('q4', async (fast, hub) => {
      for (const image of IMAGES) {
        const pixels = await fast.preprocess({ path: path.join(SAMPLES, image) });
        const turns: ChatTurn[] = [{ role: 'user', text: QUESTION, images: [{ preprocessed: pixels, name: image }] }];
        const [a, b] = [await fast.nextTokenLogits(turns), await hub.nextTokenLogits(turns)];
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of b) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
        const diff = maxAbsDiff(a, b);
        assert.ok(diff <= 0.01 * (hi - lo), `${image}: first-step logits differ by ${diff} (range ${hi - lo})`);
        assert.equal(a.indexOf(Math.max(...a)), b.indexOf(Math.max(...b)), `${image}: first token`);
      }
    });
  });

  test('the engine appends the fast graph\'s cache in place (the hub graph\'s grows by a copy)', async () => {
    await withFastAndHub('q4', async (fast, hub) => {
      assert.equal(fast.info.kvCache, 'in-place');
      assert.equal(hub.info.kvCache, 'growing');
    });
  });

  test("fp32, in place: appending the graph's new keys and values here equals fetching present.* bound to the cache, bit for bit", async () => {
    const [embed, decoder] = await Promise.all(['embed_tokens.onnx', 'decoder_model_merged.onnx'].map((f) => ort.InferenceSession.create(path.join(out, 'onnx', f))));
    try {
      const { hidden } = tiny.spec.text;
      const hints = { numKvHeads: tiny.spec.text.kvHeads, headDim: hidden / tiny.spec.text.heads };
      const files = { embed: 'embed_tokens.onnx', decoder: 'decoder_model_merged.onnx' };
      const appending = new LanguageModel(embed, decoder, files, hints);
      const fetching = new LanguageModel(embed, decoder, files, hints, { fetchPresent: true });
      assert.equal(appending.appendsNewKv, true);
      assert.equal(fetching.appendsNewKv, false);
      assert.ok(appending.inPlaceKv && fetching.inPlaceKv);
      // a left-padded batch of two: 7 prompt positions (row 0 padded by 2), then past the first growth
      const B = 2;
      const steps = IN_PLACE_GROWTH + 4;
      const embeds = await appending.embed(Array.from({ length: B * (7 + steps) }, (_, i) => 100 + ((i * 37) % 900)), B);
      const run = async (lm: LanguageModel) => {
        const logits: Float32Array[] = [];
        const rows = (from: number, to: number) => {
          const part = new Float32Array(B * (to - from) * hidden);
          for (let b = 0; b < B; b++) part.set(embeds.subarray((b * (7 + steps) + from) * hidden, (b * (7 + steps) + to) * hidden), b * (to - from) * hidden);
          return part;
        };
        const mask = (total: number) => Array.from({ length: B * total }, (_, i) => (i < total && i % total < 2 ? 0 : 1));
        let step = await lm.forward(rows(0, 7), mask(7), lm.emptyCache(B));
        logits.push(step.logits);
        for (let t = 7; t < 7 + steps; t++) {
          step = await lm.forward(rows(t, t + 1), mask(t + 1), step.cache);
          logits.push(step.logits);
        }
        return { logits, cache: packed(step.cache) };
      };
      const a = await run(appending);
      const b = await run(fetching);
      assert.equal(a.logits.length, b.logits.length);
      a.logits.forEach((l, i) => assert.deepEqual(l, b.logits[i], `logits of run ${i}`));
      for (const [name, t] of Object.entries(a.cache.tensors)) assert.deepEqual(t.data, b.cache.tensors[name].data, name);
    } finally {
      await Promise.all([embed.release(), decoder.release()]);
    }
  });

  test('fp32, in place: a follow-up on the kept cache and a generation past the preallocated room equal the hub graph', async () => {
    const answer = async (m: LlavaModel, turns: ChatTurn[], maxNewTokens: number) => {
      let done: any;
      for await (const ev of m.generate(turns, { maxNewTokens })) if (ev.type === 'done') done = ev;
      return done as { text: string; stats: { tokenIds: number[]; reusedPromptTokens?: number } };
    };
    await withFastAndHub('fp32', async (fast, hub) => {
      const pixels = await fast.preprocess({ path: path.join(SAMPLES, 'photo.jpg') });
      const first: ChatTurn[] = [{ role: 'user', text: QUESTION, images: [{ preprocessed: pixels, name: 'photo.jpg' }] }];
      // many times the room an in-place cache is made with (IN_PLACE_GROWTH past the prompt): it must grow, again and again
      const long = [await answer(fast, first, 300), await answer(hub, first, 300)];
      assert.deepEqual(long[0].stats.tokenIds, long[1].stats.tokenIds, 'a 300-token answer');
      assert.ok(long[0].stats.tokenIds.length > 3 * IN_PLACE_GROWTH, `the answer (${long[0].stats.tokenIds.length} tokens) outgrew the cache at least three times`);
      const a = await answer(fast, first, NEW_TOKENS);
      const follow: ChatTurn[] = [...first, { role: 'assistant', text: a.text }, { role: 'user', text: 'And what colour is it?' }];
      const ours = await answer(fast, follow, NEW_TOKENS);
      assert.ok((ours.stats.reusedPromptTokens ?? 0) > 0, 'the follow-up reused the first turn\'s cache');
      const theirs = await answer(hub, follow, NEW_TOKENS);
      assert.deepEqual(ours.stats.tokenIds, theirs.stats.tokenIds, 'the follow-up');
    });
  });

  test('fp32, a left-padded batch of two prompts: each row equals the hub graph one by one', async () => {
    await withFastAndHub('fp32', async (fast, hub) => {
      const requests = await Promise.all(
        [['photo.jpg', 'What is in this image?'], ['tall.png', 'Describe the picture in detail, please. Is there any text in it at all?']].map(async ([image, text]) => {
          const pixels = await fast.preprocess({ path: path.join(SAMPLES, image) });
          return { turns: [{ role: 'user' as const, text, images: [{ preprocessed: pixels, name: image }] }] };
        }),
      );
      const rows = new Map<number, number[]>();
      for await (const ev of fast.generateBatch(requests, { maxNewTokens: NEW_TOKENS })) if (ev.type === 'done') rows.set(ev.index, ev.stats.tokenIds);
      for (const [i, r] of requests.entries()) {
        let done: any;
        for await (const ev of hub.generate(r.turns, { maxNewTokens: NEW_TOKENS })) if (ev.type === 'done') done = ev;
        assert.deepEqual(rows.get(i), done.stats.tokenIds, `row ${i}`);
      }
    });
  });
});
