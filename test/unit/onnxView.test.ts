// src/engine/onnxView.ts: the graph of a file whose weights are external data must load from memory as the same
// model (the same outputs bit for bit); a file with inline weights is left alone; and the last-position edit must
// give the last row of the full logits. The reference is ONNX Runtime running the file as it is.
//
//   node --import tsx --test test/unit/onnxView.test.ts

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { createSession } from '../../src/engine/onnx';
import { onnx } from '../../src/engine/onnxProto';
import { graphOnly, lastPositionLogits } from '../../src/engine/onnxView';
import { sessionOptions } from '../../src/engine/providers';
import { ensureFixtures } from '../fixtures/index';
import { modelBytes } from '../helpers/onnxModel';

const options = sessionOptions('cpu', { threads: 1 });

function fromView(model: Uint8Array, folder: string): Promise<ort.InferenceSession> {
  const extra = options.extra as { session?: Record<string, unknown> };
  return ort.InferenceSession.create(model, { ...options, extra: { ...extra, session: { ...extra.session, model_external_initializers_file_folder_path: folder } } });
}

/** A prefill of T positions from an empty cache, with seeded embeddings: every input the decoder takes. */
function prefillFeeds(s: ort.InferenceSession, T: number): Record<string, ort.Tensor> {
  const hidden = s.inputMetadata.find((m) => m.name === 'inputs_embeds') as unknown as { shape: Array<number | string>; type: string };
  const H = hidden.shape[2] as number;
  const embeds = Float32Array.from({ length: T * H }, (_, i) => Math.sin(i * 0.37) * 0.5);
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: hidden.type === 'float16' ? new ort.Tensor('float16', Uint16Array.from(embeds, () => 0x3800), [1, T, H]) : new ort.Tensor('float32', embeds, [1, T, H]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
  };
  if (s.inputNames.includes('position_ids')) feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [1, T]);
  for (const m of s.inputMetadata) {
    if (!m.name.startsWith('past_key_values.') || !m.isTensor) continue;
    const [, heads, , dim] = m.shape as number[];
    feeds[m.name] = m.type === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), [1, heads, 0, dim]) : new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, dim]);
  }
  return feeds;
}

function lastRow(t: ort.Tensor): number[] {
  const [, rows, vocab] = t.dims;
  const data = t.data as Float32Array | Uint16Array;
  return Array.from(data.subarray((rows - 1) * vocab, rows * vocab));
}

/** y = x W + b with W [16, 32] in `m.onnx_data` and b inline or in the data file too */
function externalModel(dir: string, biasInline: boolean): string {
  const f32 = onnx().TensorProto.DataType.FLOAT;
  const W = Float32Array.from({ length: 512 }, (_, i) => i / 512);
  const B = Float32Array.from({ length: biasInline ? 32 * 1024 : 512 }, (_, i) => 1 - i / 1024); // inline: 128 KB, past the limit
  writeFileSync(path.join(dir, 'm.onnx_data'), Buffer.concat([Buffer.from(W.buffer), Buffer.from(B.buffer)]));
  const ext = (offset: number, length: number) => ({ dataLocation: 1, externalData: [{ key: 'location', value: 'm.onnx_data' }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }] });
  const rows = biasInline ? 1024 : 16;
  const model = modelBytes({
    name: 'g',
    node: [
      { opType: 'MatMul', input: ['x', 'w'], output: ['y0'] },
      { opType: 'Add', input: ['y0', 'b'], output: ['y'] },
    ],
    initializer: [
      { name: 'w', dataType: f32, dims: [16, 32], ...ext(0, 2048) },
      biasInline ? { name: 'b', dataType: f32, dims: [rows, 32], rawData: new Uint8Array(B.buffer) } : { name: 'b', dataType: f32, dims: [rows, 32], ...ext(2048, 2048) },
    ],
    input: [{ name: 'x', type: { tensorType: { elemType: f32, shape: { dim: [{ dimValue: rows }, { dimValue: 16 }] } } } }],
    output: [{ name: 'y', type: { tensorType: { elemType: f32, shape: { dim: [{ dimValue: rows }, { dimValue: 32 }] } } } }],
  });
  const file = path.join(dir, 'm.onnx');
  writeFileSync(file, model);
  return file;
}

describe('the graph of a file whose weights are external data', () => {
  test('read without its weights, it loads from memory and computes the same outputs bit for bit', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'llava-view-'));
    try {
      const file = externalModel(tmp, false);
      const g = graphOnly(file);
      assert.ok(g, 'every weight is external');
      assert.deepEqual(Buffer.from(g.model), readFileSync(file));
      assert.equal(g.folder, tmp);
      const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: 256 }, (_, i) => (i % 5) - 2), [16, 16]) };
      const [a, b] = [await ort.InferenceSession.create(file, options), await fromView(g.model, g.folder)];
      assert.deepEqual(Array.from((await b.run(feeds)).y.data as Float32Array), Array.from((await a.run(feeds)).y.data as Float32Array));
      await Promise.all([a.release(), b.release()]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a file with any weight inline is left alone (undefined), the fixtures\' single-file graphs too', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'llava-view-'));
    try {
      assert.equal(graphOnly(externalModel(tmp, true)), undefined);
      const [dir] = await ensureFixtures(['tiny-llava']);
      for (const name of ['decoder_model_merged.onnx', 'decoder_model_merged_q4.onnx', 'vision_encoder.onnx']) assert.equal(graphOnly(path.join(dir, 'onnx', name)), undefined, name);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a file that is not a protobuf is refused with the byte where it breaks; createSession then reports ONNX Runtime\'s own error', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'llava-view-'));
    try {
      const file = path.join(tmp, 'bad.onnx');
      writeFileSync(file, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])); // field 1, a length far past the end
      assert.throws(() => graphOnly(file), /byte/);
      const lines: string[] = [];
      await assert.rejects(createSession(file, options, { view: 'decoder', log: (l) => lines.push(l) }), /could not load/);
      assert.match(lines.join('\n'), /bad\.onnx: loaded without the decoder edits/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('logits of the last position only', () => {
  for (const fixture of ['tiny-llava', 'tiny-qwen']) {
    let dir: string;
    before(async () => {
      [dir] = await ensureFixtures([fixture]);
    });
    const variants: Array<[string, boolean]> = [
      ['decoder_model_merged.onnx', true],
      ['decoder_model_merged_fp16.onnx', true],
      ['decoder_model_merged_q4.onnx', true],
      ['decoder_model_merged_q4f16.onnx', true],
      ['decoder_model_merged_bnb4.onnx', true],
      // dynamic 8-bit: the head multiplies int8 activations quantized with one scale over every position; not edited
      ['decoder_model_merged_int8.onnx', false],
      ['decoder_model_merged_quantized.onnx', false],
    ];
    for (const [name, edited] of variants) {
      test(`${fixture} ${name}: ${edited ? 'the last row of the full logits, [1, 1, vocab]' : 'left as it is'}`, async () => {
        const file = path.join(dir, 'onnx', name);
        const last = lastPositionLogits(readFileSync(file));
        assert.equal(!!last, edited);
        if (!last) return;
        const a = await ort.InferenceSession.create(file, options);
        const b = await ort.InferenceSession.create(last, options);
        try {
          const meta = b.outputMetadata.find((m) => m.name === 'logits') as unknown as { shape: Array<number | string> };
          assert.equal(meta.shape[1], 1, 'the declared position axis is 1 (the engine reads it as lastLogitsOnly)');
          const feeds = prefillFeeds(a, 7);
          const [x, y] = [await a.run(feeds), await b.run(feeds)];
          assert.deepEqual(y.logits.dims, [1, 1, x.logits.dims[2]]);
          const want = lastRow(x.logits);
          const got = lastRow(y.logits);
          let d = 0;
          let scale = 1;
          for (let i = 0; i < want.length; i++) {
            d = Math.max(d, Math.abs(got[i] - want[i]));
            scale = Math.max(scale, Math.abs(want[i]));
          }
          // one row through a half-precision multiply may round differently from seven (other kernel blocking)
          const tolerance = /f16/.test(name) ? 1e-2 : 1e-5;
          assert.ok(d <= tolerance * scale, `max difference ${d} (largest logit ${scale})`);
          for (const k of a.outputNames.filter((n) => n.startsWith('present.'))) {
            assert.deepEqual(Array.from(y[k].data as Float32Array), Array.from(x[k].data as Float32Array), `${k} differs`);
          }
        } finally {
          await Promise.all([a.release(), b.release()]);
        }
      });
    }
  }

  test('a head in both branches of an If (a merged decoder) is sliced in each', async () => {
    const f32 = onnx().TensorProto.DataType.FLOAT;
    const W = Float32Array.from({ length: 8 * 6 }, (_, i) => Math.sin(i));
    const info = (name: string, dims: Array<number | string>) => ({ name, type: { tensorType: { elemType: f32, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } });
    const branch = (name: string, scale: number) => ({
      name,
      node: [
        { opType: 'Mul', input: ['h', `${name}_s`], output: [`${name}_h`] },
        { opType: 'MatMul', input: [`${name}_h`, 'lm_head'], output: [`${name}_l`] },
        { opType: 'Identity', input: [`${name}_l`], output: [`${name}_out`] },
      ],
      initializer: [{ name: `${name}_s`, dataType: f32, dims: [], floatData: [scale] }],
      output: [info(`${name}_out`, ['b', 't', 6])],
    });
    const model = modelBytes({
      name: 'merged',
      node: [
        { opType: 'If', input: ['use_cache_branch'], output: ['logits'], attribute: [
          { name: 'then_branch', type: onnx().AttributeProto.AttributeType.GRAPH, g: branch('then', 2) },
          { name: 'else_branch', type: onnx().AttributeProto.AttributeType.GRAPH, g: branch('else', 3) },
        ] },
      ],
      initializer: [{ name: 'lm_head', dataType: f32, dims: [8, 6], rawData: new Uint8Array(W.buffer) }],
      input: [info('h', ['b', 't', 8]), { name: 'use_cache_branch', type: { tensorType: { elemType: onnx().TensorProto.DataType.BOOL, shape: { dim: [{ dimValue: 1 }] } } } }],
      output: [info('logits', ['b', 't', 6])],
    });
    const last = lastPositionLogits(model);
    assert.ok(last, 'both branches recognised');
    const [a, b] = [await ort.InferenceSession.create(model, options), await ort.InferenceSession.create(last, options)];
    for (const branchTaken of [true, false]) {
      const feeds = {
        h: new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 8 }, (_, i) => Math.cos(i * 0.7)), [2, 3, 8]),
        use_cache_branch: new ort.Tensor('bool', [branchTaken], [1]),
      };
      const [x, y] = [(await a.run(feeds)).logits, (await b.run(feeds)).logits];
      assert.deepEqual(y.dims, [2, 1, 6]);
      const xs = x.data as Float32Array;
      const want = [...xs.subarray(2 * 6, 3 * 6), ...xs.subarray(5 * 6, 6 * 6)]; // each batch row's last position
      const got = y.data as Float32Array;
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5, `${got[i]} vs ${want[i]}`);
    }
    await Promise.all([a.release(), b.release()]);
  });
});
