// One weight variant per part (vision encoder, embed tokens, decoder): the rule shared by the hub
// (choosing from a repository listing) and the engine (choosing from a local folder), what users
// type (`vision=fp16,decoder=q4`), and a real load with a mixed map.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { choosePartVariants, declaredVariants, describeVariants, DTYPE_VARIANTS, formatVariantChoice, MODEL_PARTS, onnxPath, parseVariantChoice, VARIANT_WORDS, type ModelPart } from '../../src/core/variants';
import type { DtypeVariant } from '../../src/core/types';
import { loadModel } from '../../src/engine/index';
import { chooseVariants, readModelFolder } from '../../src/engine/modelFolder';
import { ensureFixtures } from '../fixtures/index';

// what the issue reports for onnx-community/nanoLLaVA-1.5
const NANO: Record<ModelPart, DtypeVariant[]> = {
  vision: ['fp16', 'quantized'],
  embed: ['fp32', 'bnb4', 'fp16', 'int8'],
  decoder: ['fp32', 'bnb4', 'fp16', 'int8', 'q4', 'q4f16', 'quantized', 'uint8'],
};

describe('choosePartVariants', () => {
  test('CPU: 4-bit, then 8-bit, bnb4, fp32, fp16 last, per part', () => {
    assert.deepEqual(choosePartVariants(NANO, 'cpu', undefined), { variants: { vision: 'quantized', embed: 'int8', decoder: 'q4' } });
    assert.deepEqual(choosePartVariants({ vision: ['fp16', 'fp32'], embed: ['fp16', 'bnb4'], decoder: ['fp16'] }, 'cpu', undefined), {
      variants: { vision: 'fp32', embed: 'bnb4', decoder: 'fp16' },
    });
  });
  test("the catalog's other repositories, per the listings reported in issue 9", () => {
    const all: DtypeVariant[] = ['fp32', 'bnb4', 'fp16', 'int8', 'q4', 'q4f16', 'quantized', 'uint8'];
    const onevision = { vision: ['q4', 'q4f16', 'int8', 'fp16', 'bnb4'], embed: ['fp32', 'bnb4', 'fp16', 'q4', 'q4f16'], decoder: all } as Record<ModelPart, DtypeVariant[]>;
    const interleave = { vision: ['q4', 'int8', 'fp16', 'bnb4'], embed: ['fp32', 'bnb4', 'fp16', 'int8'], decoder: all } as Record<ModelPart, DtypeVariant[]>;
    assert.deepEqual(choosePartVariants(onevision, 'cpu', undefined), { variants: { vision: 'q4', embed: 'q4', decoder: 'q4' } });
    assert.deepEqual(choosePartVariants(interleave, 'cpu', undefined), { variants: { vision: 'q4', embed: 'int8', decoder: 'q4' } });
    assert.deepEqual(choosePartVariants(interleave, 'gpu', undefined), { variants: { vision: 'fp16', embed: 'fp16', decoder: 'fp16' } });
  });
  test('GPU: fp16, q4f16, fp32', () => {
    assert.deepEqual(choosePartVariants(NANO, 'cuda', undefined), { variants: { vision: 'fp16', embed: 'fp16', decoder: 'fp16' } });
    assert.deepEqual(choosePartVariants({ vision: ['q4f16', 'fp32'], embed: ['fp32'], decoder: ['q4', 'q4f16'] }, 'gpu', undefined), {
      variants: { vision: 'q4f16', embed: 'fp32', decoder: 'q4f16' },
    });
  });
  test('pinned parts must exist; the others are still chosen', () => {
    assert.deepEqual(choosePartVariants(NANO, 'cpu', { vision: 'fp16' }), { variants: { vision: 'fp16', embed: 'int8', decoder: 'q4' } });
    const r = choosePartVariants(NANO, 'cpu', 'q4');
    assert.ok('reason' in r);
    assert.equal(r.part, 'vision');
    assert.match(r.reason, /vision_encoder_q4\.onnx\) does not exist; vision has: fp16, quantized/);
  });
  test('a part with no variant at all is named', () => {
    const r = choosePartVariants({ ...NANO, embed: [] }, 'cpu', undefined);
    assert.ok('reason' in r && r.part === 'embed');
  });
});

describe("a model's own default: config.json's transformers.js_config.dtype", () => {
  const cfg = (js: unknown) => ({ model_type: 'llava', 'transformers.js_config': js });
  test('one dtype for every file, or one per file stem; q8 is the _quantized file', () => {
    assert.deepEqual(declaredVariants(cfg({ dtype: 'fp32' }), 'cpu'), { vision: 'fp32', embed: 'fp32', decoder: 'fp32' });
    assert.deepEqual(declaredVariants(cfg({ dtype: { vision_encoder: 'q8', decoder_model_merged: 'q4' } }), 'cpu'), { vision: 'quantized', decoder: 'q4' });
  });
  test('device_config.<device>.dtype replaces it on that device only', () => {
    const c = cfg({ dtype: 'q4', device_config: { webgpu: { dtype: { decoder_model_merged: 'fp16' } }, cuda: { free_dimension_overrides: {} } } });
    assert.deepEqual(declaredVariants(c, 'webgpu'), { decoder: 'fp16' });
    assert.deepEqual(declaredVariants(c, 'cuda'), { vision: 'q4', embed: 'q4', decoder: 'q4' }, 'a device entry without dtype keeps the top level');
    assert.deepEqual(declaredVariants(c, 'cpu'), { vision: 'q4', embed: 'q4', decoder: 'q4' });
  });
  test('auto, unknown names and malformed configs declare nothing', () => {
    for (const c of [{}, cfg(null), cfg('q4'), cfg({ dtype: 'auto' }), cfg({ dtype: 'q5' }), cfg({ dtype: 7 }), cfg({ dtype: { vision_encoder: ['fp32'] } }), cfg({ device_config: 'x' }), undefined, 'text']) {
      assert.deepEqual(declaredVariants(c, 'cpu'), {}, JSON.stringify(c));
    }
    assert.deepEqual(declaredVariants(cfg({ dtype: 'constructor' }), 'cpu'), {}, 'only own names of the table');
  });
  test('a declared variant that exists beats the provider order; a pin beats both; a missing one falls back', () => {
    assert.deepEqual(choosePartVariants(NANO, 'cpu', undefined, { decoder: 'fp32', vision: 'fp16' }), { variants: { vision: 'fp16', embed: 'int8', decoder: 'fp32' } });
    assert.deepEqual(choosePartVariants(NANO, 'cpu', { decoder: 'int8' }, { decoder: 'fp32' }), { variants: { vision: 'quantized', embed: 'int8', decoder: 'int8' } });
    assert.deepEqual(choosePartVariants(NANO, 'cpu', undefined, { vision: 'q4' }), { variants: { vision: 'quantized', embed: 'int8', decoder: 'q4' } }, 'vision has no q4 file');
  });
  test('the engine picks the files transformers.js loads for the same config (its ModelRegistry, a reference we did not write)', async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const spec = await readModelFolder(dir);
    const { ModelRegistry } = await import('@huggingface/transformers');
    for (const dtype of ['fp32', 'fp16', 'q8', { vision_encoder: 'fp32', embed_tokens: 'fp16', decoder_model_merged: 'q4' }, { vision_encoder: 'q8', embed_tokens: 'int8', decoder_model_merged: 'fp32' }]) {
      const config = { ...spec.config, 'transformers.js_config': { dtype } };
      const ours = chooseVariants({ ...spec, config }, 'cpu');
      const theirs = (await ModelRegistry.get_model_files(dir, { config: config as never, device: 'cpu' })).filter((f: string) => f.endsWith('.onnx')).sort();
      const mine = MODEL_PARTS.map((p) => onnxPath(p, ours[p])).sort();
      assert.deepEqual(mine, theirs, JSON.stringify(dtype));
    }
  });
});

describe('parseVariantChoice / formatVariantChoice', () => {
  test('auto, one variant, a per-part list', () => {
    assert.deepEqual(parseVariantChoice('auto'), { choice: undefined });
    assert.deepEqual(parseVariantChoice(''), { choice: undefined });
    assert.deepEqual(parseVariantChoice('q4'), { choice: 'q4' });
    assert.deepEqual(parseVariantChoice('vision=fp16, decoder=q4'), { choice: { vision: 'fp16', decoder: 'q4' } });
    assert.deepEqual(parseVariantChoice('vision=auto'), { choice: undefined });
  });
  test('mistakes are one line naming what is wrong', () => {
    assert.match((parseVariantChoice('q5') as { error: string }).error, /unknown variant "q5"/);
    assert.match((parseVariantChoice('eyes=q4') as { error: string }).error, /unknown part "eyes"/);
    assert.match((parseVariantChoice('vision=q4,vision=fp16') as { error: string }).error, /named twice/);
    assert.match((parseVariantChoice('vision') as { error: string }).error, /unknown variant/);
    assert.match((parseVariantChoice('vision=') as { error: string }).error, /not PART=VARIANT/);
  });
  test('round trip', () => {
    assert.equal(formatVariantChoice({ vision: 'quantized', embed: 'int8', decoder: 'q4' }), 'vision=quantized,embed=int8,decoder=q4');
    assert.equal(formatVariantChoice({ vision: 'q4', embed: 'q4', decoder: 'q4' }), 'q4');
    assert.equal(formatVariantChoice(undefined), 'auto');
    assert.deepEqual(parseVariantChoice(formatVariantChoice({ embed: 'fp16', decoder: 'q4' })), { choice: { embed: 'fp16', decoder: 'q4' } });
  });
});

describe('the engine takes a per-part map', () => {
  test('chooseVariants reads what the folder holds; a partial map pins only those parts', async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const spec = await readModelFolder(dir);
    assert.deepEqual(chooseVariants(spec, 'cpu'), { vision: 'q4', embed: 'q4', decoder: 'q4' });
    assert.deepEqual(chooseVariants(spec, 'cpu', { vision: 'fp16' }), { vision: 'fp16', embed: 'q4', decoder: 'q4' });
    assert.deepEqual(chooseVariants(spec, 'cpu', { vision: 'quantized', embed: 'int8' }), { vision: 'quantized', embed: 'int8', decoder: 'q4' });
    // the fixtures hold every variant, so a copy without the int8 files stands in for a folder that lacks one
    const lacking = mkdtempSync(path.join(tmpdir(), 'llava-no-int8-'));
    try {
      cpSync(dir, lacking, { recursive: true, filter: (src) => !src.includes('_int8') });
      const partial = await readModelFolder(lacking);
      assert.throws(() => chooseVariants(partial, 'cpu', { decoder: 'int8' }), /decoder_model_merged_int8\.onnx: variant int8 is not in this folder; decoder_model_merged has: fp32, fp16, q4/);
    } finally {
      rmSync(lacking, { recursive: true, force: true });
    }
  });
  test('loadModel with {vision: fp16, embed: fp32, decoder: q4} loads those files and answers', async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const model = await loadModel(dir, { provider: 'cpu', variant: { vision: 'fp16', embed: 'fp32', decoder: 'q4' } });
    try {
      assert.deepEqual(model.info.variants, { vision: 'fp16', embed: 'fp32', decoder: 'q4' });
      let text: string | undefined;
      for await (const ev of model.generate([{ role: 'user', text: 'Hi' }], { maxNewTokens: 3 })) if (ev.type === 'done') text = ev.text;
      assert.equal(typeof text, 'string');
    } finally {
      await model.dispose();
    }
  });
});

describe('variants in words', () => {
  test('the decoder and vision encoder decide the words; the embedding table does not', () => {
    assert.equal(describeVariants({ vision: 'q4', embed: 'fp32', decoder: 'q4' }), '4-bit, smallest, for CPUs');
    assert.equal(describeVariants({ vision: 'fp16', embed: 'fp16', decoder: 'fp16' }), 'half precision, for GPUs');
    assert.equal(describeVariants({ vision: 'fp16', embed: 'fp32', decoder: 'q4' }), '4-bit, smallest, for CPUs (image encoder: half precision)');
  });
  test('every variant has words, and none is jargon', () => {
    for (const v of DTYPE_VARIANTS) {
      assert.ok(VARIANT_WORDS[v], v);
      assert.doesNotMatch(VARIANT_WORDS[v], /MatMulNBits|block|_q4|fp16|fp32/, v);
    }
  });
});
