// The converter's input side: the streaming safetensors reader (single and sharded, BF16/F16/F32),
// the two llava-hf name layouts, and errors that name the tensor or file at fault.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EngineError } from '../../src/core';
import { SafetensorsCheckpoint, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, readSafetensorsHeader, transpose2d } from '../../src/convert';
import { CheckpointSource, checkpointName, detectLayout } from '../../src/convert/checkpoint';
import { floatToHalfBits } from '../../src/engine/half';
import { FIXTURES } from '../fixtures/index';
import { plannedWeights, storedSource, writeLlavaCheckpoint } from '../helpers/llavaCheckpoint';

const tiny = FIXTURES.find((f) => f.spec.name === 'tiny-llava')!;
let root: string;

before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'convert-st-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function expectCode(fn: () => unknown, code: string, mentions: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EngineError, `not an EngineError: ${err}`);
    assert.equal(err.code, code);
    assert.ok(err.message.includes(mentions), `"${err.message}" does not mention ${mentions}`);
    return true;
  });
}

describe('float conversions', () => {
  test('f32 -> f16 rounds exactly like the engine (nearest even), over specials and random values', () => {
    const values = Float32Array.from([0, -0, 1, -2.5, 65504, 65520, 1e-8, 6e-5, 3e-7, Infinity, -Infinity, NaN, 0.1, 1 / 3]);
    const random = new Float32Array(20000).map((_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 12) - 6));
    for (const v of [...values, ...random]) assert.equal(f32ToF16(Float32Array.of(v))[0], floatToHalfBits(v), `f16 of ${v}`);
  });

  test('bf16 keeps the top 16 bits, rounding to nearest even; widening is exact', () => {
    const v = Float32Array.of(1, 1 + 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 1 + 3 * 2 ** -8, -3.25);
    assert.deepEqual(Array.from(bf16ToF32(f32ToBf16(v))), [1, 1, 1 + 2 ** -7, 1 + 2 ** -6, -3.25]);
    const h = f32ToF16(Float32Array.of(0.5, -7, 2 ** -20));
    assert.deepEqual(Array.from(f16ToF32(h)), [0.5, -7, 2 ** -20]);
  });

  test('transpose2d on a non-square matrix larger than a tile', () => {
    const rows = 70;
    const cols = 131;
    const m = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const t = transpose2d(m, rows, cols);
    for (const [r, c] of [[0, 0], [69, 130], [3, 100], [64, 65]]) assert.equal(t[c * rows + r], m[r * cols + c]);
  });
});

describe('safetensors checkpoints', () => {
  for (const [layout, dtype, shards] of [
    ['language_model.model', 'F16', 1],
    ['model.language_model', 'BF16', 3],
    ['language_model.model', 'F32', 2],
  ] as const) {
    test(`${layout} layout, ${dtype}, ${shards} shard(s): every planned weight reads back as written`, () => {
      const dir = path.join(root, `${layout}-${dtype}-${shards}`);
      const bytes = writeLlavaCheckpoint(dir, tiny, { layout, dtype, shards });
      const ckpt = new SafetensorsCheckpoint(dir);
      try {
        assert.equal(ckpt.dataBytes, bytes);
        const source = new CheckpointSource(ckpt);
        assert.equal(source.layout, layout);
        const expected = storedSource(tiny, dtype);
        for (const w of plannedWeights(tiny)) {
          if (w.linear) {
            const [N, K] = w.torchShape;
            assert.deepEqual(source.linear(w.name, K, N, w.init, 'KN'), expected.linear(w.name, K, N, w.init, 'KN'), w.name);
            assert.deepEqual(source.linear(w.name, K, N, w.init, 'NK'), expected.linear(w.name, K, N, w.init, 'NK'), w.name);
          } else {
            assert.deepEqual(source.tensor(w.name, w.torchShape, w.init), expected.tensor(w.name, w.torchShape, w.init), w.name);
          }
        }
      } finally {
        ckpt.close();
      }
    });
  }

  test('names map to both layouts as llava-hf writes them', () => {
    const cases: Array<[string, string, string]> = [
      ['model.layers.3.self_attn.q_proj.weight', 'language_model.model.layers.3.self_attn.q_proj.weight', 'model.language_model.layers.3.self_attn.q_proj.weight'],
      ['lm_head.weight', 'language_model.lm_head.weight', 'lm_head.weight'],
      ['model.embed_tokens.weight', 'language_model.model.embed_tokens.weight', 'model.language_model.embed_tokens.weight'],
      ['vision_tower.vision_model.pre_layrnorm.weight', 'vision_tower.vision_model.pre_layrnorm.weight', 'model.vision_tower.vision_model.pre_layrnorm.weight'],
      ['multi_modal_projector.linear_2.bias', 'multi_modal_projector.linear_2.bias', 'model.multi_modal_projector.linear_2.bias'],
    ];
    for (const [hf, older, newer] of cases) {
      assert.equal(checkpointName(hf, 'language_model.model'), older);
      assert.equal(checkpointName(hf, 'model.language_model'), newer);
    }
    expectCode(() => detectLayout(['transformer.h.0.attn.weight', 'lm_head.weight']), 'CONVERT', 'transformer.h.0.attn.weight');
  });

  test('a missing tensor and a misshapen tensor are errors naming the tensor', () => {
    const dir = path.join(root, 'language_model.model-F16-1');
    const ckpt = new SafetensorsCheckpoint(dir);
    try {
      const source = new CheckpointSource(ckpt);
      expectCode(() => source.tensor('model.layers.9.input_layernorm.weight', [64], { std: 1 }), 'CONVERT', 'language_model.model.layers.9.input_layernorm.weight');
      expectCode(() => source.linear('model.layers.0.mlp.up_proj.weight', 64, 999, { std: 1 }, 'KN'), 'CONVERT', 'language_model.model.layers.0.mlp.up_proj.weight: has shape [172, 64]; config.json implies [999, 64]');
    } finally {
      ckpt.close();
    }
  });

  test('corrupt files: truncated data, hostile header length, unsupported dtype, shard outside the folder', () => {
    const dir = path.join(root, 'bad');
    const good = readFileSync(path.join(root, 'language_model.model-F16-1', 'model.safetensors'));
    writeLlavaCheckpoint(dir, tiny, { layout: 'language_model.model', dtype: 'F16', shards: 1 });
    const file = path.join(dir, 'model.safetensors');
    writeFileSync(file, good.subarray(0, good.length - 10));
    expectCode(() => readSafetensorsHeader(file), 'CONVERT', 'do not fit shape');
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(2n ** 60n);
    writeFileSync(file, huge);
    expectCode(() => readSafetensorsHeader(file), 'CONVERT', 'model.safetensors: not a safetensors file');
    const json = JSON.stringify({ 'a.weight': { dtype: 'I8', shape: [2], data_offsets: [0, 2] } });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(file, Buffer.concat([len, Buffer.from(json), Buffer.alloc(2)]));
    expectCode(() => readSafetensorsHeader(file), 'CONVERT', 'a.weight: dtype I8');
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'a.weight': '../elsewhere.safetensors' } }));
    expectCode(() => new SafetensorsCheckpoint(dir), 'CONVERT', 'model.safetensors.index.json');
  });
});
