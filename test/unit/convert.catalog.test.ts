// The catalog's "convert" entries (LLaVA-1.5-7B / 13B from llava-hf): validated, and their sizes
// recomputed from the architecture by the converter's own planner, so the numbers users confirm
// before a 14 GB download are the ones the conversion will really need.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { estimateBytes, planSession, specFromLlavaConfig, type ConvertDtype } from '../../src/convert';
import { loadCatalog, parseCatalog } from '../../src/hub/catalog';
import { readLlava15Json } from '../data/real-configs/llava15';

const GIB = 2 ** 30;
const config7b = readLlava15Json('config.json');
/** LLaMA-2-13B's shapes with llava-1.5's vision tower and vocabulary (the 13B config is not stored here) */
const config13b = { ...config7b, text_config: { ...(config7b.text_config as object), hidden_size: 5120, intermediate_size: 13824, num_hidden_layers: 40, num_attention_heads: 40 } };
const SESSIONS = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const;

function expected(config: Record<string, unknown>, dtype: ConvertDtype, contextTokens: number) {
  const spec = specFromLlavaConfig(config);
  const disk = SESSIONS.reduce((n, s) => n + estimateBytes(planSession(spec, s), dtype), 0);
  // the KV cache: key + value per layer, kv heads x head dim each, fp32 (fp16 for the fp16-weight files)
  const kvBytes = dtype === 'fp16' || dtype === 'q4f16' ? 2 : 4;
  const kvPerToken = 2 * spec.text.layers * spec.text.kvHeads * (spec.text.hidden / spec.text.heads) * kvBytes;
  return { disk, run: disk + contextTokens * kvPerToken + GIB };
}

describe('catalog: convert entries', () => {
  const catalog = loadCatalog();

  test('LLaVA-1.5-7B and -13B from llava-hf, q4 by default, with a licence; ready-to-run models unchanged', () => {
    assert.deepEqual(catalog.conversions.map((c) => c.repo), ['llava-hf/llava-1.5-7b-hf', 'llava-hf/llava-1.5-13b-hf']);
    for (const c of catalog.conversions) {
      assert.equal(c.kind, 'convert');
      assert.equal(c.defaultDtype, 'q4');
      assert.equal(c.licence, 'llama2');
      assert.equal(c.preprocess, 'pad', "LLaVA-1.5's own preprocessing pads to a square");
      assert.deepEqual(Object.keys(c.dtypes).sort(), ['fp16', 'fp32', 'q4', 'q4f16']);
    }
    assert.ok(!catalog.models.some((m) => m.repo.startsWith('llava-hf/llava-1.5')), 'conversions are not offered as ready-made downloads');
  });

  test('7B: checkpoint bytes are the real index total; its three shards are listed', () => {
    const c = catalog.conversions[0];
    const index = readLlava15Json('model.safetensors.index.json') as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.equal(c.checkpointBytes, index.metadata.total_size);
    const shards = [...new Set(Object.values(index.weight_map))].sort();
    assert.deepEqual(c.files.map((f) => f.path).filter((p) => p.endsWith('.safetensors')), shards);
  });

  for (const [i, config] of [[0, config7b], [1, config13b]] as const) {
    test(`${['7B', '13B'][i]}: disk per dtype and memory to run, recomputed from the architecture`, () => {
      const c = catalog.conversions[i];
      for (const [dtype, d] of Object.entries(c.dtypes)) {
        const e = expected(config, dtype as ConvertDtype, c.contextTokens);
        assert.equal(d!.diskBytes, e.disk, `${c.id} ${dtype} disk`);
        assert.equal(d!.runBytes, e.run, `${c.id} ${dtype} run`);
        assert.equal(d!.target, dtype === 'q4' || dtype === 'fp32' ? 'cpu' : 'gpu');
      }
    });
  }

  test('13B checkpoint bytes: 2 bytes per parameter of every stored tensor (graphs + unused last CLIP layer + post_layernorm)', () => {
    const spec = specFromLlavaConfig(config13b);
    const planned = SESSIONS.flatMap((s) => planSession(spec, s)).reduce((n, w) => n + w.torchShape.reduce((a, b) => a * b, 1), 0);
    const d = spec.vision.hidden;
    const unused = 4 * (d * d + d) + (d * 4096 + 4096) + (4096 * d + d) + 4 * d + 2 * d;
    assert.equal(catalog.conversions[1].checkpointBytes, 2 * (planned + unused));
  });

  test('the validator names the field: wrong kind, unknown dtype, runBytes below the weights, no weights listed', () => {
    const bundled = () => JSON.parse(readFileSync(join(__dirname, '../../models/catalog.json'), 'utf8'));
    const cases: Array<[(c: any) => void, RegExp]> = [
      [(c) => (c.conversions[0].kind = 'onnx'), /conversions\[0\]\.kind: expected "convert"/],
      [(c) => (c.conversions[0].dtypes.int3 = c.conversions[0].dtypes.q4), /conversions\[0\]\.dtypes\.int3: expected one of/],
      [(c) => (c.conversions[1].dtypes.q4.runBytes = 10), /conversions\[1\]\.dtypes\.q4\.runBytes: is less than the weights/],
      [(c) => (c.conversions[0].files = c.conversions[0].files.filter((f: any) => !f.path.includes('safetensors'))), /conversions\[0\]\.files: must include the \.safetensors/],
      [(c) => (c.conversions[1].id = c.models[0].id), /conversions\[1\]\.id: duplicate id/],
    ];
    for (const [mutate, message] of cases) {
      const json = bundled();
      mutate(json);
      assert.throws(() => parseCatalog(json, 'models/catalog.json'), message);
    }
  });
});
