// src/engine/onnxSplit.ts: a file with inline weights, split into its graph and an aligned data file, must be the
// same model (outputs bit for bit, ONNX Runtime running the original as the reference), must take the
// last-position edit, must be made once and remade when the source changes, and must fall back to the file as
// it is (with a logged reason) wherever it cannot be made.
//
//   node --import tsx --test test/unit/onnxSplit.test.ts

import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { createSession } from '../../src/engine/onnx';
import { onnx } from '../../src/engine/onnxProto';
import { SPLIT_FOLDER, splitCopy } from '../../src/engine/onnxSplit';
import { graphOnly } from '../../src/engine/onnxView';
import { sessionOptions } from '../../src/engine/providers';
import { ensureFixtures } from '../fixtures/index';
import { modelBytes } from '../helpers/onnxModel';

const options = sessionOptions('cpu', { threads: 1 });

/** a prefill of 5 positions from an empty cache with seeded embeddings */
function prefillFeeds(s: ort.InferenceSession): Record<string, ort.Tensor> {
  const T = 5;
  const hidden = s.inputMetadata.find((m) => m.name === 'inputs_embeds') as unknown as { shape: Array<number | string> };
  const H = hidden.shape[2] as number;
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor('float32', Float32Array.from({ length: T * H }, (_, i) => Math.cos(i * 0.29) * 0.5), [1, T, H]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
  };
  if (s.inputNames.includes('position_ids')) feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [1, T]);
  for (const m of s.inputMetadata) {
    if (!m.name.startsWith('past_key_values.') || !m.isTensor) continue;
    const [, heads, , dim] = m.shape as number[];
    feeds[m.name] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, dim]);
  }
  return feeds;
}

describe('a file with inline weights, split into graph + aligned data', () => {
  let fixture: string;
  let tmp: string;
  before(async () => {
    [fixture] = await ensureFixtures(['tiny-llava']);
    tmp = mkdtempSync(path.join(os.tmpdir(), 'llava-split-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** a copy of a fixture decoder in its own folder (the split copy is made beside it) */
  function decoder(name: string): string {
    const dir = mkdtempSync(path.join(tmp, 'm-'));
    copyFileSync(path.join(fixture, 'onnx', name), path.join(dir, name));
    return path.join(dir, name);
  }

  for (const name of ['decoder_model_merged.onnx', 'decoder_model_merged_q4.onnx', 'decoder_model_merged_bnb4.onnx', 'decoder_model_merged_int8.onnx']) {
    test(`${name}: the copy keeps every large weight outside its graph and computes the same outputs bit for bit`, async () => {
      const file = decoder(name);
      const copy = splitCopy(file, { minBytes: 0 });
      assert.ok(copy, 'split');
      assert.equal(path.basename(copy), name);
      assert.equal(path.dirname(path.dirname(copy)), path.join(path.dirname(file), SPLIT_FOLDER));
      assert.ok(graphOnly(copy), 'the copy\'s graph reads without its weights');
      assert.ok(statSync(copy).size < statSync(file).size / 4, 'the graph is a fraction of the file');
      const [a, b] = [await ort.InferenceSession.create(file, options), await ort.InferenceSession.create(copy, options)];
      try {
        const feeds = prefillFeeds(a);
        const [x, y] = [await a.run(feeds), await b.run(feeds)];
        assert.deepEqual(b.outputNames, a.outputNames);
        for (const k of a.outputNames) assert.deepEqual(Array.from(y[k].data as Float32Array), Array.from(x[k].data as Float32Array), `${k} differs`);
      } finally {
        await Promise.all([a.release(), b.release()]);
      }
    });
  }

  test('createSession loads the split copy with the decoder edits: [1, 1, vocab], the last row of the file\'s logits; the new keys and values returned', async () => {
    const file = decoder('decoder_model_merged.onnx');
    const lines: string[] = [];
    const a = await ort.InferenceSession.create(file, options);
    const b = await createSession(file, options, { view: 'decoder', log: (l) => lines.push(l), split: { minBytes: 0 } });
    try {
      const feeds = prefillFeeds(a);
      const [x, y] = [await a.run(feeds), await b.run(feeds)];
      const [, T, V] = x.logits.dims;
      assert.deepEqual(y.logits.dims, [1, 1, V]);
      const want = (x.logits.data as Float32Array).subarray((T - 1) * V, T * V);
      const got = y.logits.data as Float32Array;
      for (let i = 0; i < V; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])), `logit ${i}: ${got[i]} vs ${want[i]}`);
      assert.match(lines.join('\n'), /split into graph \+ \d+ MiB of aligned weights/);
      // the run's own keys and values: the last T positions of present.*
      for (const name of a.outputNames.filter((n) => n.startsWith('present.'))) {
        const fresh = y[name.replace(/^present\./, 'new_key_values.')];
        assert.ok(fresh, `${name}: no new_key_values output`);
        assert.deepEqual(fresh.dims, x[name].dims);
        assert.deepEqual(fresh.data, x[name].data, `${name}: an empty past, so present is the run's own positions`);
      }
    } finally {
      await Promise.all([a.release(), b.release()]);
    }
  });

  test('made once; a changed source makes a new copy and the old one is removed', () => {
    const file = decoder('decoder_model_merged_q4.onnx');
    const first = splitCopy(file, { minBytes: 0 })!;
    const made = statSync(`${first}_data`).mtimeMs;
    const lines: string[] = [];
    assert.equal(splitCopy(file, { minBytes: 0, log: (l) => lines.push(l) }), first);
    assert.equal(statSync(`${first}_data`).mtimeMs, made, 'not rewritten');
    assert.deepEqual(lines, [], 'nothing to say the second time');
    const later = new Date(Date.now() + 60_000);
    utimesSync(file, later, later);
    const second = splitCopy(file, { minBytes: 0 })!;
    assert.notEqual(second, first);
    assert.equal(existsSync(first), false, 'the stale copy is gone');
    assert.deepEqual(readdirSync(path.join(path.dirname(file), SPLIT_FOLDER)), [path.basename(path.dirname(second))], 'no temporary folder left');
  });

  test('not split: a small file, a full disk, an unwritable folder, a large weight that is not an initializer; each says why and leaves nothing', async () => {
    const small = decoder('decoder_model_merged_q4.onnx');
    assert.equal(splitCopy(small), undefined, 'under 128 MiB by default');
    assert.equal(existsSync(path.join(path.dirname(small), SPLIT_FOLDER)), false);

    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    assert.equal(splitCopy(small, { minBytes: 0, freeBytes: () => 1000, log }), undefined);
    assert.match(lines.pop()!, /loaded as it is, not split .*MiB needed beside it, 0 MiB free/);

    const blocked = decoder('decoder_model_merged.onnx');
    writeFileSync(path.join(path.dirname(blocked), SPLIT_FOLDER), 'a file where the folder would go');
    assert.equal(splitCopy(blocked, { minBytes: 0, log }), undefined);
    assert.match(lines.pop()!, /decoder_model_merged\.onnx: loaded as it is, not split into graph \+ weights \(/);
    const s = await createSession(blocked, options, { view: 'decoder', log, split: { minBytes: 0 } });
    assert.equal(s.outputMetadata.find((m) => m.name === 'logits') && s.outputNames.includes('logits'), true, 'the file itself loads');
    await s.release();

    // a 128 KiB weight held by a Constant node stays inline: the copy would not be weightless, so none is made
    const dir = mkdtempSync(path.join(tmp, 'c-'));
    const f32 = onnx().TensorProto.DataType.FLOAT;
    const big = new Float32Array(32 * 1024).fill(0.5);
    const constant = path.join(dir, 'c.onnx');
    writeFileSync(constant, modelBytes({
      name: 'c',
      node: [
        { opType: 'Constant', output: ['k'], attribute: [{ name: 'value', type: onnx().AttributeProto.AttributeType.TENSOR, t: { dataType: f32, dims: [1024, 32], rawData: new Uint8Array(big.buffer) } }] },
        { opType: 'Add', input: ['x', 'k'], output: ['y'] },
      ],
      input: [{ name: 'x', type: { tensorType: { elemType: f32, shape: { dim: [{ dimValue: 1024 }, { dimValue: 32 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: f32, shape: { dim: [{ dimValue: 1024 }, { dimValue: 32 }] } } } }],
    }));
    assert.equal(splitCopy(constant, { minBytes: 0, log }), undefined);
    assert.match(lines.pop()!, /is not an initializer's raw_data/);
    assert.deepEqual(readdirSync(path.join(dir, SPLIT_FOLDER)), [], 'the temporary folder is removed');
  });
});
