// A Hub-style decoder edited to return its run's own keys and values (onnxView.ts newKeyValueOutputs) runs with a
// preallocated cache fed whole, the positions past its length masked (decoder.ts holedKv). The reference is the
// same file run as it is, the cache grown by the graph's Concat and fetched every step: the same logits (up to
// the order of float sums over the longer, masked key axis) and the same cache, for every decoder variant whose
// cache grows by a Concat, in a left-padded batch that outgrows its room and continues with a multi-token run.
//
//   node --import tsx --test test/unit/holedKv.test.ts

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { holesAgree, LanguageModel, packed, type KvCache } from '../../src/engine/decoder';
import { onnx } from '../../src/engine/onnxProto';
import { newKeyValueOutputs } from '../../src/engine/onnxView';
import { sessionOptions } from '../../src/engine/providers';
import { ensureFixtures } from '../fixtures/index';
import { fromHalf } from '../../src/engine/half';

const options = sessionOptions('cpu', { threads: 1 });

function values(t: ort.Tensor): Float32Array {
  return t.type === 'float16' ? fromHalf(t.data as Uint16Array) : (t.data as Float32Array);
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return d / scale;
}

function argmaxRows(logits: Float32Array, rows: number): number[] {
  const V = logits.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[r * V + i] > logits[r * V + best]) best = i;
    return best;
  });
}

describe('a Hub decoder with its new keys and values returned, its cache preallocated and fed whole', () => {
  for (const fixture of ['tiny-llava', 'tiny-qwen']) {
    let dir: string;
    let config: { text_config: { hidden_size: number; num_attention_heads: number; num_key_value_heads?: number } };
    before(async () => {
      [dir] = await ensureFixtures([fixture]);
      config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    });
    const variants: Array<[string, string, number]> = [
      ['decoder_model_merged.onnx', 'embed_tokens.onnx', 1e-5],
      ['decoder_model_merged_q4.onnx', 'embed_tokens.onnx', 1e-5],
      ['decoder_model_merged_fp16.onnx', 'embed_tokens_fp16.onnx', 1e-2],
      ['decoder_model_merged_q4f16.onnx', 'embed_tokens_fp16.onnx', 1e-2],
      ['decoder_model_merged_int8.onnx', 'embed_tokens.onnx', 1e-5],
    ];
    for (const [decoderFile, embedFile, tolerance] of variants) {
      test(`${fixture} ${decoderFile}: the logits and cache of the growing cache, through a batch that outgrows its room`, async () => {
        const file = path.join(dir, 'onnx', decoderFile);
        const edited = newKeyValueOutputs(readFileSync(file));
        assert.ok(edited, 'every present.* is a Concat of its past and the run\'s own positions');
        const [embed, plain, holed] = await Promise.all([
          ort.InferenceSession.create(path.join(dir, 'onnx', embedFile), options),
          ort.InferenceSession.create(file, options),
          ort.InferenceSession.create(edited, options),
        ]);
        try {
          const t = config.text_config;
          const hints = { numKvHeads: t.num_key_value_heads ?? t.num_attention_heads, headDim: t.hidden_size / t.num_attention_heads };
          const files = { embed: embedFile, decoder: decoderFile };
          const growing = new LanguageModel(embed, plain, files, hints);
          const inPlace = new LanguageModel(embed, holed, files, hints, { inPlaceGrowth: { positions: 8 } });
          assert.equal(growing.holedKv, false);
          assert.equal(inPlace.holedKv, true);
          // two rows, the first left-padded by 2: a 2-token prompt and a step, a 9-token run longer than its past that
          // outgrows the room (fed the exact past), 13 single steps (the room of 8 outgrown again: grown, fed whole),
          // a 5-token run, one more step, a 12-token run that outgrows the room but is shorter than its past (grown,
          // fed whole), one more step
          const B = 2;
          const runs = [2, 1, 9, ...Array(13).fill(1), 5, 1, 12, 1];
          const totalLength = runs.reduce((a, b) => a + b, 0);
          const embeds = await growing.embed(Array.from({ length: B * totalLength }, (_, i) => 3 + ((i * 37) % 90)), B);
          const H = growing.hidden;
          const play = async (lm: LanguageModel) => {
            const logits: Float32Array[] = [];
            let cache: KvCache = lm.emptyCache(B);
            let done = 0;
            for (const T of runs) {
              const part = new Float32Array(B * T * H);
              for (let b = 0; b < B; b++) part.set(embeds.subarray((b * totalLength + done) * H, (b * totalLength + done + T) * H), b * T * H);
              const total = done + T;
              const mask = Array.from({ length: B * total }, (_, i) => (i < total && i < 2 ? 0 : 1));
              const step = await lm.forward(part, mask, cache);
              logits.push(step.logits);
              cache = step.cache;
              done = total;
            }
            return { logits, cache };
          };
          const a = await play(growing);
          const b = await play(inPlace);
          assert.equal(a.cache.capacity, undefined);
          assert.ok(b.cache.capacity !== undefined && b.cache.capacity > b.cache.length, `capacity ${b.cache.capacity} for ${b.cache.length} positions`);
          a.logits.forEach((l, i) => {
            const d = maxRelDiff(b.logits[i], l);
            assert.ok(d <= tolerance, `run ${i} (${runs[i]} tokens): logits differ by ${d} of their largest`);
            assert.deepEqual(argmaxRows(b.logits[i], B), argmaxRows(l, B), `run ${i}: greedy tokens`);
          });
          const kept = packed(b.cache);
          assert.equal(kept.length, a.cache.length);
          for (const [name, tensor] of Object.entries(a.cache.tensors)) {
            assert.deepEqual(kept.tensors[name].dims, tensor.dims, name);
            const d = maxRelDiff(values(kept.tensors[name]), values(tensor));
            assert.ok(d <= tolerance, `${name}: differs by ${d}`);
          }
        } finally {
          await Promise.all([embed.release(), plain.release(), holed.release()]);
        }
      });
    }
  }

  test('the load-time check passes an edited fixture and catches a graph that ignores the mask for its past', async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).text_config;
    const hints = { numKvHeads: config.num_key_value_heads ?? config.num_attention_heads, headDim: config.hidden_size / config.num_attention_heads };
    const file = path.join(dir, 'onnx', 'decoder_model_merged.onnx');
    const edited = newKeyValueOutputs(readFileSync(file))!;
    // the same graph reading an all-ones mask instead of attention_mask: it attends to every cache position
    const proto = onnx().ModelProto.decode(edited);
    const graph = proto.graph!;
    for (const n of graph.node!) n.input = n.input!.map((i) => (i === 'attention_mask' ? 'llava_test/ones' : i));
    const one = { name: 'value', type: onnx().AttributeProto.AttributeType.TENSOR, t: { dataType: onnx().TensorProto.DataType.INT64, dims: [1], int64Data: [1] } };
    graph.node!.unshift(
      onnx().NodeProto.create({ opType: 'Shape', input: ['attention_mask'], output: ['llava_test/shape'] }),
      onnx().NodeProto.create({ opType: 'ConstantOfShape', input: ['llava_test/shape'], output: ['llava_test/ones'], attribute: [one] }),
    );
    const unmasked = onnx().ModelProto.encode(proto).finish();
    const embed = await ort.InferenceSession.create(path.join(dir, 'onnx', 'embed_tokens.onnx'), options);
    const files = { embed: 'embed_tokens.onnx', decoder: 'decoder_model_merged.onnx' };
    for (const [bytes, agree] of [[edited, true], [unmasked, false]] as const) {
      const session = await ort.InferenceSession.create(bytes, options);
      try {
        const holed = new LanguageModel(embed, session, files, hints);
        assert.equal(holed.holedKv, true);
        const check = await holesAgree(holed, new LanguageModel(embed, session, files, hints, { inPlaceKv: false }), 1e-3);
        assert.equal(check.agree, agree, `difference ${check.difference}`);
      } finally {
        await session.release();
      }
    }
    await embed.release();
  });

  test('a graph whose cache does not grow by a Concat of its past is left alone', () => {
    const f32 = onnx().TensorProto.DataType.FLOAT;
    const t = (name: string) => ({ name, type: { tensorType: { elemType: f32, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }, { dimParam: 'p' }, { dimValue: 4 }] } } } });
    const model = (node: object) =>
      onnx()
        .ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'g', node: [node], input: [t('past_key_values.0.key'), t('k')], output: [t('present.0.key')] } })
        .finish();
    const concat = (inputs: string[], axis: number) => ({ opType: 'Concat', input: inputs, output: ['present.0.key'], attribute: [{ name: 'axis', type: 2, i: axis }] });
    assert.ok(newKeyValueOutputs(model(concat(['past_key_values.0.key', 'k'], 2))), 'the Hub pattern');
    assert.ok(newKeyValueOutputs(model(concat(['past_key_values.0.key', 'k'], -2))), 'axis -2');
    assert.equal(newKeyValueOutputs(model(concat(['k', 'past_key_values.0.key'], 2))), undefined, 'the past second');
    assert.equal(newKeyValueOutputs(model(concat(['past_key_values.0.key', 'k'], 1))), undefined, 'another axis');
    assert.equal(newKeyValueOutputs(model({ opType: 'Add', input: ['past_key_values.0.key', 'k'], output: ['present.0.key'] })), undefined, 'not a Concat');
  });
});
