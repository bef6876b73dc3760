// Every weight variant transformers.js' quantizer writes for the Hub, and the mixed per-part maps real
// repositories lead to, run in our engine and in transformers.js 4.3.1 (its per-part `dtype` map) on the
// same fixture folder and the same pixel values: same prompt ids, same greedy tokens, first-step logits
// within 1e-4 (1e-2 where a part runs float16 activations: q4f16, fp16). Each variant's first-step
// logits are also compared with the fp32 files' (relative L2, printed, bounded) so a broken
// dequantization fails even though both engines would agree on it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as path from 'node:path';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { AutoProcessor, LlavaForConditionalGeneration, Tensor } from '@huggingface/transformers';
import { fromHalf, toHalf } from '../../src/engine/half';
import onnxProto from 'onnx-proto';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import type { ChatTurn, DtypeVariant } from '../../src/core/types';
import type { VariantMap } from '../../src/core/variants';
import { FIXTURES, MODELS_DIR, ensureFixtures } from '../fixtures/index';
import { buildDecoder, buildEmbedTokens, buildVisionEncoder } from '../../src/convert';
import { prngSource } from '../fixtures/weights';
import { maxAbsDiff, ourGreedy, referenceGreedy, referenceInputs, referenceNextLogits, type Reference } from '../helpers/transformersReference';

const { onnx } = onnxProto;
const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const IMAGE = 'photo.jpg';
const QUESTION = 'What is in this image?';
const NEW_TOKENS = 8;
const LOGIT_TOLERANCE = 1e-4;
/** float16 activations: the two engines may feed onnxruntime the same values yet round differently in between */
const HALF_LOGIT_TOLERANCE = 1e-2;
/**
 * Bound on the relative L2 distance of a variant's first-step logits from fp32's. q4 measures ~0.1-0.25
 * here (quantized.test.ts explains the budget), 8-bit much less, NF4 about q4's; a wrong layout (code
 * order, block order, scale, zero point) gives unrelated weights, i.e. a distance near sqrt(2).
 */
const RELATIVE_BOUND = 0.5;

/** transformers.js names the `_quantized` files' dtype `q8`. */
const TJS_DTYPE: Record<DtypeVariant, string> = {
  fp32: 'fp32', fp16: 'fp16', q4: 'q4', q4f16: 'q4f16', int8: 'int8', uint8: 'uint8', quantized: 'q8', bnb4: 'bnb4',
};

const all = (v: DtypeVariant): VariantMap => ({ vision: v, embed: v, decoder: v });
const CASES: Array<{ label: string; map: VariantMap }> = [
  ...(['quantized', 'int8', 'uint8', 'bnb4', 'q4f16'] as const).map((v) => ({ label: v, map: all(v) })),
  // what onnx-community/nanoLLaVA-1.5 offers a CPU: 8-bit vision and embeddings, no q4 of either
  { label: 'cpu mix', map: { vision: 'quantized', embed: 'int8', decoder: 'q4' } },
  // the GPU choice: half precision parts beside a q4f16 decoder
  { label: 'gpu mix', map: { vision: 'fp16', embed: 'fp16', decoder: 'q4f16' } },
];

const halfActivations = (m: VariantMap) => Object.values(m).some((v) => v === 'fp16' || v === 'q4f16');

function relativeL2(a: Float32Array, ref: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (a[i] - ref[i]) ** 2;
    n += ref[i] ** 2;
  }
  return Math.sqrt(d / n);
}

describe('variant fixture graphs are written the way the Hub has them', () => {
  test('8-bit: DynamicQuantizeLinear + MatMulInteger / ConvInteger, quantized Gather; bnb4: MatMulBnb4 NF4 block 64; q4f16: fp16 MatMulNBits', async () => {
    const [dir] = await ensureFixtures(['tiny-qwen']);
    const load = (f: string) => onnx.ModelProto.decode(readFileSync(path.join(dir, 'onnx', f))).graph!;
    const ops = (f: string) => new Set(load(f).node!.map((n) => n.opType));
    const initType = (f: string, suffix: string) => load(f).initializer!.filter((t) => t.name!.endsWith(suffix)).map((t) => t.dataType);
    for (const [variant, type] of [['int8', onnx.TensorProto.DataType.INT8], ['uint8', onnx.TensorProto.DataType.UINT8]] as const) {
      const dec = ops(`decoder_model_merged_${variant}.onnx`);
      assert.ok(dec.has('DynamicQuantizeLinear') && dec.has('MatMulInteger'), `${variant} decoder ops ${[...dec]}`);
      const g = load(`decoder_model_merged_${variant}.onnx`);
      const inits = new Set(g.initializer!.map((t) => t.name));
      assert.ok(!g.node!.some((n) => n.opType === 'MatMul' && inits.has(n.input![1])), `${variant}: a float MatMul weight is left`);
      assert.ok(ops(`vision_encoder_${variant}.onnx`).has('ConvInteger'), `${variant} vision uses ConvInteger`);
      assert.ok(ops(`embed_tokens_${variant}.onnx`).has('DequantizeLinear'), `${variant} embed dequantizes gathered rows`);
      for (const f of [`decoder_model_merged_${variant}.onnx`, `vision_encoder_${variant}.onnx`, `embed_tokens_${variant}.onnx`]) {
        const types = initType(f, '_quantized');
        assert.ok(types.length > 0 && types.every((t) => t === type), `${f}: weights are ${variant}`);
        assert.ok(load(f).initializer!.filter((t) => t.name!.endsWith('_scale')).every((t) => (t.dims ?? []).length === 0), `${f}: per-tensor scales`);
      }
    }
    // `quantized` (transformers.js' q8): unsigned where there is a Conv, signed elsewhere
    assert.ok(initType('vision_encoder_quantized.onnx', '_quantized').every((t) => t === onnx.TensorProto.DataType.UINT8));
    assert.ok(initType('decoder_model_merged_quantized.onnx', '_quantized').every((t) => t === onnx.TensorProto.DataType.INT8));
    const bnb = load('decoder_model_merged_bnb4.onnx').node!.filter((n) => n.opType === 'MatMulBnb4');
    assert.equal(bnb.length, 15); // 2 layers x 7 projections + lm_head
    for (const n of bnb) {
      const attr = Object.fromEntries(n.attribute!.map((a) => [a.name, Number(a.i)]));
      assert.equal(attr.block_size, 64);
      assert.equal(attr.quant_type, 1); // NF4
    }
    const q4f16 = load('decoder_model_merged_q4f16.onnx');
    assert.ok(q4f16.node!.some((n) => n.opType === 'MatMulNBits'));
    assert.ok(initType('decoder_model_merged_q4f16.onnx', '_scales').every((t) => t === onnx.TensorProto.DataType.FLOAT16), 'q4f16 scales are float16');
    assert.ok(q4f16.input!.filter((i) => i.name!.startsWith('past_key_values')).every((i) => i.type!.tensorType!.elemType === onnx.TensorProto.DataType.FLOAT16), 'q4f16 KV is float16');
  });
});

for (const fixture of ['tiny-llava', 'tiny-qwen']) {
  describe(`every variant against transformers.js: ${fixture}`, () => {
    let dir: string;
    let fp32: LlavaModel;
    let processor: any;
    let chatTemplate: string;

    before(async () => {
      [dir] = await ensureFixtures([fixture]);
      fp32 = await loadModel(dir, { provider: 'cpu', variant: 'fp32' });
      processor = await AutoProcessor.from_pretrained(fixture);
      chatTemplate = JSON.parse(readFileSync(path.join(dir, 'chat_template.json'), 'utf8')).chat_template;
    });
    after(async () => {
      await fp32?.dispose();
    });

    for (const { label, map } of CASES) {
      test(`${label} ${JSON.stringify(map)}: same prompt, logits and greedy tokens; near fp32`, async () => {
        const ours = await loadModel(dir, { provider: 'cpu', variant: map });
        const dtype = { vision_encoder: TJS_DTYPE[map.vision], embed_tokens: TJS_DTYPE[map.embed], decoder_model_merged: TJS_DTYPE[map.decoder] };
        const ref: Reference = { processor, chatTemplate, model: await LlavaForConditionalGeneration.from_pretrained(fixture, { dtype: dtype as any, device: 'cpu' }) };
        try {
          assert.deepEqual(ours.info.variants, map);
          const imagePath = path.join(SAMPLES, IMAGE);
          const pixels = await ours.preprocess({ path: imagePath });
          const turns: ChatTurn[] = [{ role: 'user', text: QUESTION, images: [{ preprocessed: pixels, name: IMAGE }] }];
          const { inputs, ids } = await referenceInputs(ref, imagePath, QUESTION, pixels);
          assert.deepEqual(await ours.promptIds(turns), ids, 'prompt ids');

          const mine = await ours.nextTokenLogits(turns);
          const diff = maxAbsDiff(mine, await referenceNextLogits(ref, inputs));
          const tolerance = halfActivations(map) ? HALF_LOGIT_TOLERANCE : LOGIT_TOLERANCE;
          assert.ok(diff <= tolerance, `first-step logits differ from transformers.js by ${diff} (tolerance ${tolerance})`);

          const rel = relativeL2(mine, await fp32.nextTokenLogits(turns));
          console.log(`# ${fixture} ${label}: max |ours - transformers.js| ${diff.toExponential(2)}, relative L2 vs fp32 ${rel.toFixed(4)}`);
          assert.ok(rel > 0, 'a quantized variant must not be the fp32 model');
          assert.ok(rel < RELATIVE_BOUND, `${label} logits are ${rel} (relative L2) away from fp32`);

          const refTokens = await referenceGreedy(ref, inputs, ids.length, NEW_TOKENS);
          assert.deepEqual(await ourGreedy(ours, turns, NEW_TOKENS, refTokens), refTokens, 'greedy tokens');
        } finally {
          await ours.dispose();
          await ref.model.dispose();
        }
      });
    }
  });
}

describe('q4f16 with float16 graph inputs and outputs (pixel_values, image_features, inputs_embeds, logits)', () => {
  // The fixtures' q4f16 keeps float32 I/O like their fp16; exports made without keep_io_types have float16
  // at every edge. The engine reads each session's types, so such a folder must run as well: built here,
  // beside the fixtures, so transformers.js finds it by name.
  const name = 'tiny-llava-halfio';
  const dir = path.join(MODELS_DIR, name);
  before(async () => {
    const [base] = await ensureFixtures(['tiny-llava']);
    rmSync(dir, { recursive: true, force: true });
    cpSync(base, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}onnx${path.sep}`) });
    mkdirSync(path.join(dir, 'onnx'), { recursive: true });
    const def = FIXTURES.find((f) => f.spec.name === 'tiny-llava')!;
    const opts = { fp16Weights: true, q4: true, halfMatmul: true, halfIO: true, source: prngSource('tiny-llava') };
    writeFileSync(path.join(dir, 'onnx', 'vision_encoder_q4f16.onnx'), buildVisionEncoder(def.spec, opts).encode());
    writeFileSync(path.join(dir, 'onnx', 'embed_tokens_q4f16.onnx'), buildEmbedTokens(def.spec, opts).encode());
    writeFileSync(path.join(dir, 'onnx', 'decoder_model_merged_q4f16.onnx'), buildDecoder(def.spec, opts).encode());
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the graphs have float16 I/O; our engine and transformers.js agree on it, and it stays near the float32-I/O file', async () => {
    const g = (f: string) => onnx.ModelProto.decode(readFileSync(path.join(dir, 'onnx', f))).graph!;
    const type = (vals: any[], n: string) => vals.find((v) => v.name === n).type.tensorType.elemType;
    const F16 = onnx.TensorProto.DataType.FLOAT16;
    assert.equal(type(g('vision_encoder_q4f16.onnx').input!, 'pixel_values'), F16);
    assert.equal(type(g('vision_encoder_q4f16.onnx').output!, 'image_features'), F16);
    assert.equal(type(g('embed_tokens_q4f16.onnx').output!, 'inputs_embeds'), F16);
    assert.equal(type(g('decoder_model_merged_q4f16.onnx').input!, 'inputs_embeds'), F16);
    assert.equal(type(g('decoder_model_merged_q4f16.onnx').output!, 'logits'), F16);

    const ours = await loadModel(dir, { provider: 'cpu', variant: 'q4f16' });
    const [fixtureDir] = await ensureFixtures(['tiny-llava']);
    const f32io = await loadModel(fixtureDir, { provider: 'cpu', variant: 'q4f16' });
    const ref: Reference = {
      processor: await AutoProcessor.from_pretrained(name),
      chatTemplate: JSON.parse(readFileSync(path.join(dir, 'chat_template.json'), 'utf8')).chat_template,
      model: await LlavaForConditionalGeneration.from_pretrained(name, { dtype: 'q4f16', device: 'cpu' }),
    };
    try {
      const imagePath = path.join(SAMPLES, IMAGE);
      const pixels = await ours.preprocess({ path: imagePath });
      const turns: ChatTurn[] = [{ role: 'user', text: QUESTION, images: [{ preprocessed: pixels, name: IMAGE }] }];
      const { inputs, ids } = await referenceInputs(ref, imagePath, QUESTION, pixels);
      // transformers.js hands the pixel values to the session as given: float16, as ours converts them
      inputs.pixel_values = new Tensor('float16', toHalf(pixels.pixelValues), inputs.pixel_values.dims);
      assert.deepEqual(await ours.promptIds(turns), ids, 'prompt ids');
      const mine = await ours.nextTokenLogits(turns);
      // float16 logits come back as their raw 16-bit patterns
      const logits = (await ref.model(inputs)).logits; // [1, T, vocab] f16
      assert.equal(logits.type, 'float16');
      const theirs = fromHalf(logits.data as Uint16Array).slice((logits.dims[1] - 1) * logits.dims[2]);
      const diff = maxAbsDiff(mine, theirs);
      const vsF32io = maxAbsDiff(mine, await f32io.nextTokenLogits(turns));
      console.log(`# tiny-llava q4f16 float16 I/O: max |ours - transformers.js| ${diff.toExponential(2)}, max |float16 I/O - float32 I/O| ${vsF32io.toExponential(2)}`);
      assert.ok(diff <= HALF_LOGIT_TOLERANCE, `first-step logits differ from transformers.js by ${diff}`);
      assert.ok(vsF32io > 0 && vsF32io <= 0.1, `float16 I/O moves the logits by ${vsF32io} from the float32-I/O file`);
      const refTokens = await referenceGreedy(ref, inputs, ids.length, NEW_TOKENS);
      assert.deepEqual(await ourGreedy(ours, turns, NEW_TOKENS, refTokens), refTokens, 'greedy tokens');
    } finally {
      await ours.dispose();
      await f32io.dispose();
      await ref.model.dispose();
    }
  });
});
