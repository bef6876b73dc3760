// Proof that the generated fixture folders are what they claim: real tokenizers, folders that
// transformers.js 4.3.1 runs offline, fp16 files computing the same model, a vision encoder whose
// batch dimension really works, a decoder whose KV cache and padding mask are right, and graphs
// that agree with an independent plain-TypeScript forward pass.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import llamaTokenizer from 'llama-tokenizer-js';
import { AutoProcessor, LlavaForConditionalGeneration, RawImage, Tensor, env } from '@huggingface/transformers';
import { DEFAULT_FIXTURES, FIXTURES, MODELS_DIR, ensureFixtures, fixtureDir } from '../fixtures/index';
import { qwenTokenizerSource } from '../fixtures/tokenizers';
import { argmax, embed, f32, maxAbsDiff, openSession, runDecoder, toF32, type Session } from '../fixtures/ortHelpers';
import { readWeights, referenceDecoder, referenceVision } from '../fixtures/reference';
import type { LlavaSpec } from '../../src/convert/spec';

const specOf = (name: string): LlavaSpec => FIXTURES.find((f) => f.spec.name === name)!.spec;
const readJson = (name: string, file: string) => JSON.parse(readFileSync(join(fixtureDir(name), file), 'utf8'));
const onnxPath = (name: string, graph: string, dtype: 'fp32' | 'fp16') => join(fixtureDir(name), 'onnx', `${graph}${dtype === 'fp16' ? '_fp16' : ''}.onnx`);

/** Deterministic, image-like pixel values in the normalised range. */
function pixels(size: number, seed: number, batch = 1): Float32Array {
  const out = new Float32Array(batch * 3 * size * size);
  for (let i = 0; i < out.length; i++) out[i] = Math.sin(i * 0.013 * seed + seed) * 0.8 + Math.cos(i * 0.0007) * 0.2;
  return out;
}

const TEXT_SAMPLES = [
  'Hello world',
  'What is in this image?',
  ' leading space and  double   spaces',
  'tabs\tand\nnew\nlines\n\n',
  'digits 0123456789 and 3.14159, 1e-5',
  '日本語のテキストと中文',
  'emoji 😀👍🏽 and symbols ©®™ ∑∫',
  'über café naïve',
  '        eight leading spaces',
  'A chat between a curious user and an artificial intelligence assistant.',
];

before(async () => {
  await ensureFixtures(DEFAULT_FIXTURES);
});

describe('tiny-llava tokenizer (LLaMA-2 rebuilt from llama-tokenizer-js)', () => {
  let tok: Tokenizer;
  before(() => {
    tok = new Tokenizer(readJson('tiny-llava', 'tokenizer.json'), readJson('tiny-llava', 'tokenizer_config.json'));
  });

  test('has the real sizes and the llava-hf added tokens', () => {
    const json = readJson('tiny-llava', 'tokenizer.json');
    assert.equal(Object.keys(json.model.vocab).length, 32000);
    assert.equal(json.model.merges.length, 61249);
    assert.deepEqual(tok.encode('<image>', { add_special_tokens: false }).ids, [32000]);
    assert.deepEqual(tok.encode('<pad>', { add_special_tokens: false }).ids, [32001]);
  });

  test('encodes like llama-tokenizer-js (both add BOS and one leading ▁)', () => {
    for (const text of TEXT_SAMPLES) {
      assert.deepEqual(tok.encode(text).ids, llamaTokenizer.encode(text, true, true), JSON.stringify(text));
      assert.equal(tok.decode(tok.encode(text).ids, { skip_special_tokens: true }), text);
    }
  });

  test('chat template renders the vicuna_v1 turn layout of llava-1.5', () => {
    const { chat_template } = readJson('tiny-llava', 'chat_template.json');
    assert.equal(readFileSync(join(fixtureDir('tiny-llava'), 'chat_template.jinja'), 'utf8'), chat_template);
    const text = new Template(chat_template).render({
      messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is this?' }] }],
      add_generation_prompt: true,
    });
    assert.equal(text, 'USER: <image>\nWhat is this? ASSISTANT:');
  });
});

describe('tiny-qwen tokenizer (Qwen BPE + <image>)', () => {
  let tok: Tokenizer;
  let original: Tokenizer;
  before(() => {
    tok = new Tokenizer(readJson('tiny-qwen', 'tokenizer.json'), readJson('tiny-qwen', 'tokenizer_config.json'));
    const src = JSON.parse(readFileSync(qwenTokenizerSource(), 'utf8'));
    original = new Tokenizer(src, {});
  });

  test('encodes text like the original Qwen tokenizer.json', () => {
    for (const text of TEXT_SAMPLES) assert.deepEqual(tok.encode(text).ids, original.encode(text).ids, JSON.stringify(text));
  });

  test('<image> is 151646 and the ChatML specials keep their ids; no clash with Qwen3 extras', () => {
    assert.deepEqual(tok.encode('<image>').ids, [151646]);
    assert.deepEqual(tok.encode('<|im_start|><|im_end|><|endoftext|>').ids, [151644, 151645, 151643]);
    // Qwen3's <|object_ref_start|> held 151646 in the source file: here it is plain text again
    assert.ok(tok.encode('<|object_ref_start|>').ids.length > 1);
    const config = readJson('tiny-qwen', 'config.json');
    assert.ok(config.vocab_size >= 151647 && config.vocab_size % 64 === 0);
  });

  test('chat template gives the llava-interleave prompt', () => {
    const text = new Template(readJson('tiny-qwen', 'chat_template.json').chat_template).render({
      messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What are these?' }] }],
      add_generation_prompt: true,
    });
    // the real llava-hf/llava-interleave-qwen-0.5b-hf output, quoted in outlines PR #1052
    assert.equal(text, '<|im_start|>user\n<image>\nWhat are these?<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(readJson('tiny-qwen', 'tokenizer_config.json').chat_template, readJson('tiny-qwen', 'chat_template.json').chat_template);
  });
});

describe('transformers.js 4.3.1 runs the fixtures offline', () => {
  before(() => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = MODELS_DIR + '/';
  });

  for (const name of DEFAULT_FIXTURES) {
    test(`${name}: processor counts image tokens right; fp32 and fp16 generate the same greedy tokens`, async () => {
      const spec = specOf(name);
      const processor = await AutoProcessor.from_pretrained(name);
      const template = readJson(name, 'chat_template.json').chat_template;
      const prompt = processor.tokenizer!.apply_chat_template(
        [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What are these?' }] }] as never,
        { tokenize: false, add_generation_prompt: true, chat_template: template },
      ) as string;

      // the processor resizes a real image and expands <image> to as many tokens as the encoder gives rows
      const rgb = new Uint8ClampedArray(3 * 97 * 71).map((_, i) => (i * 37) % 256);
      const inputs = await processor(new RawImage(rgb, 97, 71, 3), prompt);
      const size = spec.vision.imageSize;
      assert.deepEqual(inputs.pixel_values.dims, [1, 3, size, size]);
      const ids = Array.from(inputs.input_ids.data as BigInt64Array, Number);
      const vision = await openSession(onnxPath(name, 'vision_encoder', 'fp32'));
      const rows = (await vision.run({ pixel_values: inputs.pixel_values as never })).image_features.dims[1];
      assert.equal(ids.filter((id) => id === spec.imageTokenId).length, rows);

      const results: Record<string, { tokens: number[]; logits: Float32Array }> = {};
      for (const dtype of ['fp32', 'fp16'] as const) {
        const model = await LlavaForConditionalGeneration.from_pretrained(name, { dtype });
        const pixel_values = new Tensor('float32', pixels(size, 3), [1, 3, size, size]);
        const forward = (await model({ ...inputs, pixel_values })) as { logits: Tensor };
        const vocab = forward.logits.dims[2];
        const logits = (forward.logits.data as Float32Array).slice(-vocab);
        const out = (await model.generate({ ...inputs, pixel_values, max_new_tokens: 8, do_sample: false } as never)) as Tensor;
        const tokens = Array.from(out.data as BigInt64Array, Number).slice(ids.length);
        results[dtype] = { tokens, logits };
        await model.dispose();
      }
      const { fp32, fp16 } = results;
      assert.equal(fp32.tokens.length, 8);
      assert.ok(new Set(fp32.tokens).size > 1, `greedy tokens all identical: ${fp32.tokens}`);
      assert.equal(fp32.tokens[0], argmax(fp32.logits));
      // fp16 weights are the fp32 weights rounded to the same grid; only the fp16 KV cache rounds
      assert.ok(maxAbsDiff(fp32.logits, fp16.logits) < 1e-4, 'first-step logits fp32 vs fp16');
      assert.deepEqual(fp16.tokens.slice(0, 4), fp32.tokens.slice(0, 4));
    });
  }

  test('the image changes the answer (vision path is wired in)', async () => {
    const name = 'tiny-llava';
    const size = specOf(name).vision.imageSize;
    const processor = await AutoProcessor.from_pretrained(name);
    const model = await LlavaForConditionalGeneration.from_pretrained(name, { dtype: 'fp32' });
    const n = (size / 14) ** 2;
    const inputs = processor.tokenizer!(`USER: ${'<image>'.repeat(n)}\nWhat is this? ASSISTANT:`);
    const last = async (seed: number) => {
      const out = (await model({ ...inputs, pixel_values: new Tensor('float32', pixels(size, seed), [1, 3, size, size]) })) as { logits: Tensor };
      return (out.logits.data as Float32Array).slice(-out.logits.dims[2]);
    };
    assert.ok(maxAbsDiff(await last(1), await last(2)) > 1e-3);
    await model.dispose();
  });
});

for (const name of DEFAULT_FIXTURES) {
  describe(`${name} graphs with onnxruntime-node`, () => {
    const spec = specOf(name);
    const sessions: Record<string, Session> = {};
    before(async () => {
      for (const dtype of ['fp32', 'fp16'] as const) {
        for (const graph of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) sessions[`${graph}/${dtype}`] = await openSession(onnxPath(name, graph, dtype));
      }
    });
    after(async () => {
      for (const s of Object.values(sessions)) await s.release();
    });

    test('decoder declares fixed KV heads/head_dim, fp16 cache only in the fp16 file', () => {
      for (const dtype of ['fp32', 'fp16'] as const) {
        const dec = sessions[`decoder_model_merged/${dtype}`];
        const meta = dec.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
        assert.ok(meta?.isTensor);
        assert.deepEqual(meta.shape, ['batch_size', spec.text.kvHeads, 'past_sequence_length', spec.text.hidden / spec.text.heads]);
        assert.equal(meta.type, dtype === 'fp16' ? 'float16' : 'float32');
        const embedsMeta = dec.inputMetadata.find((m) => m.name === 'inputs_embeds');
        assert.equal(embedsMeta?.isTensor && embedsMeta.type, 'float32');
      }
    });

    for (const dtype of ['fp32', 'fp16'] as const) {
      test(`${dtype} vision encoder: batch 2 equals two batch-1 runs`, async () => {
        const vision = sessions[`vision_encoder/${dtype}`];
        const size = spec.vision.imageSize;
        const a = pixels(size, 1);
        const b = pixels(size, 2);
        const both = new Float32Array(a.length * 2);
        both.set(a);
        both.set(b, a.length);
        const run = async (px: Float32Array, batch: number) => (await vision.run({ pixel_values: f32(px, [batch, 3, size, size]) })).image_features;
        const batched = await run(both, 2);
        const ra = toF32(await run(a, 1));
        const rb = toF32(await run(b, 1));
        assert.deepEqual(batched.dims, [2, ra.length / spec.text.hidden, spec.text.hidden]);
        const data = toF32(batched);
        assert.ok(maxAbsDiff(data.subarray(0, ra.length), ra) < 1e-5);
        assert.ok(maxAbsDiff(data.subarray(ra.length), rb) < 1e-5);
        assert.ok(maxAbsDiff(ra, rb) > 1e-3, 'different images give different features');
      });

      test(`${dtype} decoder: prefill + cached step equals the full sequence`, async () => {
        const dec = sessions[`decoder_model_merged/${dtype}`];
        const ids = [1, 450, 4996, 17354, 1701, 29916];
        const H = spec.text.hidden;
        const x = await embed(sessions[`embed_tokens/${dtype}`], ids, 1);
        const full = await runDecoder(dec, x, [1, 6, H], [1, 1, 1, 1, 1, 1], [0, 1, 2, 3, 4, 5]);
        const pre = await runDecoder(dec, x.slice(0, 5 * H), [1, 5, H], [1, 1, 1, 1, 1], [0, 1, 2, 3, 4]);
        const step = await runDecoder(dec, x.slice(5 * H), [1, 1, H], [1, 1, 1, 1, 1, 1], [5], pre.present);
        assert.deepEqual(step.present['present.0.key'].dims, [1, spec.text.kvHeads, 6, H / spec.text.heads]);
        const V = spec.text.vocab;
        const tol = dtype === 'fp16' ? 2e-3 : 1e-4; // the fp16 cache rounds k/v of the first 5 tokens
        assert.ok(maxAbsDiff(step.logits, full.logits.slice(5 * V)) < tol);
        assert.ok(maxAbsDiff(pre.logits, full.logits.slice(0, 5 * V)) < 1e-4);
      });

      test(`${dtype} decoder: left padding in a batch changes nothing for the padded row`, async () => {
        const dec = sessions[`decoder_model_merged/${dtype}`];
        const H = spec.text.hidden;
        const V = spec.text.vocab;
        const emb = sessions[`embed_tokens/${dtype}`];
        const short = [1, 910, 338, 263]; // 4 tokens, padded by 2 on the left
        const long = [1, 1724, 338, 297, 445, 1967]; // 6 tokens
        const pad = 0;
        const batchEmb = await embed(emb, [pad, pad, ...short, ...long], 2);
        const mask = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        const positions = [1, 1, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]; // cumsum(mask) - 1, pads filled with 1 (as HF)
        const batched = await runDecoder(dec, batchEmb, [2, 6, H], mask, positions);
        const alone = await runDecoder(dec, await embed(emb, short, 1), [1, 4, H], [1, 1, 1, 1], [0, 1, 2, 3]);
        const alone2 = await runDecoder(dec, await embed(emb, long, 1), [1, 6, H], [1, 1, 1, 1, 1, 1], [0, 1, 2, 3, 4, 5]);
        assert.ok(maxAbsDiff(batched.logits.slice(5 * V, 6 * V), alone.logits.slice(3 * V)) < 1e-4);
        assert.ok(maxAbsDiff(batched.logits.slice(11 * V), alone2.logits.slice(5 * V)) < 1e-4);
        // one cached step for both rows
        const next = await embed(emb, [29889, 29889], 2);
        const step = await runDecoder(dec, next, [2, 1, H], [...mask.slice(0, 6), 1, ...mask.slice(6), 1], [4, 6], batched.present);
        const aloneStep = await runDecoder(dec, next.slice(0, H), [1, 1, H], [1, 1, 1, 1, 1], [4], alone.present);
        assert.ok(maxAbsDiff(step.logits.slice(0, V), aloneStep.logits) < 2e-3);
      });
    }

    test('fp32 graphs match an independent plain-TypeScript forward pass', async () => {
      const size = spec.vision.imageSize;
      const px = pixels(size, 5);
      const onnxFeatures = toF32((await sessions['vision_encoder/fp32'].run({ pixel_values: f32(px, [1, 3, size, size]) })).image_features);
      const refFeatures = referenceVision(spec, readWeights(onnxPath(name, 'vision_encoder', 'fp32')), px);
      assert.ok(maxAbsDiff(onnxFeatures, refFeatures) < 1e-4, 'vision features');

      const H = spec.text.hidden;
      const ids = [1, 3148, 1001, 29901, 1724, 338, 445];
      const x = await embed(sessions['embed_tokens/fp32'], ids, 1);
      const onnxLogits = (await runDecoder(sessions['decoder_model_merged/fp32'], x, [1, ids.length, H], ids.map(() => 1), ids.map((_, i) => i))).logits;
      const refLogits = referenceDecoder(spec, readWeights(onnxPath(name, 'decoder_model_merged', 'fp32')), x, ids.length);
      assert.ok(maxAbsDiff(onnxLogits, refLogits) < 1e-4, 'decoder logits');
    });
  });
}
