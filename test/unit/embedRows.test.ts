// src/engine/embedRows.ts: embeddings read row by row from the embed_tokens file must equal, bit for bit, what
// ONNX Runtime's session of that file returns (fp32, fp16 + Cast, 8-bit + DequantizeLinear; inline and external
// data); any other graph is left to a session; an id outside the table is an error, not a read past it.
//
//   node --import tsx --test test/unit/embedRows.test.ts

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/engine/index';
import { EmbeddingRows, SessionEmbedder } from '../../src/engine/embedRows';
import { onnx } from '../../src/engine/onnxProto';
import { splitCopy } from '../../src/engine/onnxSplit';
import { sessionOptions } from '../../src/engine/providers';
import { ensureFixtures } from '../fixtures/index';
import { modelBytes } from '../helpers/onnxModel';

const options = sessionOptions('cpu', { threads: 1 });

/** ids covering the first and last rows and a spread between, as a batch of 2 */
function idsFor(rows: number): number[] {
  return [0, 1, rows - 1, 2, 31999 % rows, 17, 5, 29871 % rows, rows - 2, 3, 0, 1234 % rows];
}

async function bySession(file: string, ids: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, options);
  try {
    return await new SessionEmbedder(s, file).embed(ids, 2);
  } finally {
    await s.release();
  }
}

describe('embedding rows read from the file', () => {
  let dirs: Record<string, string>;
  let tmp: string;
  before(async () => {
    const [llava, qwen] = await ensureFixtures(['tiny-llava', 'tiny-qwen']);
    dirs = { 'tiny-llava': llava, 'tiny-qwen': qwen };
    tmp = mkdtempSync(path.join(os.tmpdir(), 'llava-rows-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const fixture of ['tiny-llava', 'tiny-qwen']) {
    for (const name of ['embed_tokens.onnx', 'embed_tokens_fp16.onnx', 'embed_tokens_int8.onnx', 'embed_tokens_quantized.onnx']) {
      test(`${fixture} ${name}: the session's values bit for bit`, async () => {
        const file = path.join(dirs[fixture], 'onnx', name);
        const rows = EmbeddingRows.open(file);
        assert.ok(rows, 'a plain lookup');
        try {
          const ids = idsFor(rows.table.rows);
          const want = await bySession(file, ids);
          const got = await rows.embed(ids, 2);
          assert.equal(got.length, ids.length * rows.hidden);
          assert.deepEqual(Array.from(got), Array.from(want));
        } finally {
          rows.close();
        }
      });
    }
  }

  test('a table in external data (the split copy) reads the same rows', async () => {
    const dir = mkdtempSync(path.join(tmp, 'x-'));
    const file = path.join(dir, 'embed_tokens.onnx');
    copyFileSync(path.join(dirs['tiny-llava'], 'onnx', 'embed_tokens.onnx'), file);
    const copy = splitCopy(file, { minBytes: 0 });
    assert.ok(copy);
    const rows = EmbeddingRows.open(copy)!;
    try {
      assert.equal(rows.table.file, `${copy}_data`);
      const ids = idsFor(rows.table.rows);
      assert.deepEqual(Array.from(await rows.embed(ids, 2)), Array.from(await bySession(file, ids)));
    } finally {
      rows.close();
    }
  });

  test('an id outside the table is refused; a closed table says so', async () => {
    const rows = EmbeddingRows.open(path.join(dirs['tiny-llava'], 'onnx', 'embed_tokens.onnx'))!;
    await assert.rejects(rows.embed([1, rows.table.rows], 1), /token id 32064 is outside the embedding table \(32064 rows\)/);
    await assert.rejects(rows.embed([-1], 1), /outside the embedding table/);
    rows.close();
    await assert.rejects(rows.embed([1], 1), /closed/);
  });

  test('a graph that is more than a lookup (a scaled Gather) or not a protobuf is left to a session', () => {
    const f32 = onnx().TensorProto.DataType.FLOAT;
    const table = new Float32Array(64 * 16).map((_, i) => i);
    const file = path.join(tmp, 'scaled.onnx');
    writeFileSync(file, modelBytes({
      name: 'scaled',
      node: [
        { opType: 'Gather', input: ['w', 'input_ids'], output: ['g'] },
        { opType: 'Mul', input: ['g', 's'], output: ['inputs_embeds'] },
      ],
      initializer: [
        { name: 'w', dataType: f32, dims: [64, 16], rawData: new Uint8Array(table.buffer) },
        { name: 's', dataType: f32, dims: [], floatData: [4] },
      ],
      input: [{ name: 'input_ids', type: { tensorType: { elemType: onnx().TensorProto.DataType.INT64, shape: { dim: [{ dimParam: 'b' }, { dimParam: 't' }] } } } }],
      output: [{ name: 'inputs_embeds', type: { tensorType: { elemType: f32, shape: { dim: [{ dimParam: 'b' }, { dimParam: 't' }, { dimValue: 16 }] } } } }],
    }));
    assert.equal(EmbeddingRows.open(file), undefined);
    const bad = path.join(tmp, 'bad.onnx');
    writeFileSync(bad, Buffer.from([0x3a, 0xff, 0xff, 0x01]));
    assert.equal(EmbeddingRows.open(bad), undefined);
  });

  test('loadModel reads the rows from the file by default and gives the same greedy tokens as with a session', async () => {
    const dir = dirs['tiny-llava'];
    const run = async (embeddingRows: boolean) => {
      const model = await loadModel(dir, { provider: 'cpu', threads: 1, embeddingRows });
      try {
        let tokens: number[] = [];
        const turn = { role: 'user' as const, text: 'What is in the image?', images: [{ path: path.join(__dirname, '../../media/samples/shapes.png') }] };
        for await (const ev of model.generate([turn], { maxNewTokens: 8, temperature: 0 })) {
          if (ev.type === 'done') tokens = ev.stats.tokenIds;
        }
        return { tokens, embeddings: model.info.embeddings };
      } finally {
        await model.dispose();
      }
    };
    const [a, b] = [await run(true), await run(false)];
    assert.equal(a.embeddings, 'rows read from the file');
    assert.equal(b.embeddings, 'session');
    assert.equal(a.tokens.length, 8);
    assert.deepEqual(a.tokens, b.tokens);
  });
});
