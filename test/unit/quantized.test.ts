// The default download is a `_q4` folder (MatMulNBits weights), so the q4 path gets the same proof as
// fp32/fp16: (1) our packing means to onnxruntime's MatMulNBits kernel what our dequantizer says,
// (2) our engine and transformers.js 4.3.1 agree on q4 folders, (3) q4 stays near fp32, (4) the engine
// picks q4 by default on CPU.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import type { ChatTurn, PreprocessedImage } from '../../src/core/types';
import { ensureFixtures } from '../fixtures/index';
import { loadReference, maxAbsDiff, ourGreedy, referenceGreedy, referenceInputs, referenceNextLogits, type Reference } from '../helpers/transformersReference';
import { DT, GraphBuilder, MS_DOMAIN, dequantizeBlockwise4, quantizeBlockwise4, quantizeRows4, transpose2d, Q4_BLOCK_SIZE } from '../../src/convert';
import { prngSource } from '../fixtures/weights';

const { onnx } = onnxProto;

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const IMAGES = ['photo.jpg', 'tall.png'];
const QUESTION = 'What is in this image?';
const NEW_TOKENS = 10;
const LOGIT_TOLERANCE = 1e-4;
/**
 * Bound on ||logits_q4 - logits_fp32|| / ||logits_fp32|| at the first step. Symmetric 4-bit blocks of 32
 * Gaussian weights have a step of about absmax/8 ~ 0.3 sigma, so each quantized MatMul adds ~0.3/sqrt(12)
 * ~ 9% relative noise. The image-to-logits path has about 8 such MatMuls in series (projector 2, per decoder
 * layer q/k/v/o + gate/up/down, lm_head); independent errors add in quadrature: ~0.09 * sqrt(8) ~ 0.25.
 * 0.4 leaves room for the nonlinearities; a wrong layout (nibble order, block order, scale index) gives
 * unrelated weights, i.e. a relative error near sqrt(2) ~ 1.4.
 */
const Q4_RELATIVE_BOUND = 0.4;

function randn(n: number, seed: number): Float32Array {
  // small deterministic Box-Muller over an LCG: the values only need to be varied and reproducible
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

describe('blockwise 4-bit packing', () => {
  test('each dequantized weight is within one scale step of the original; the block extreme is exact', () => {
    const K = 88; // not a multiple of 32: the last block is padded
    const N = 5;
    const w = randn(K * N, 7);
    const q = quantizeBlockwise4(w, K, N);
    assert.equal(q.nBlocks, 3);
    assert.equal(q.packed.length, N * 3 * (Q4_BLOCK_SIZE / 2));
    const back = dequantizeBlockwise4(q, K, N);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const scale = Math.abs(q.scales[n * q.nBlocks + Math.floor(k / Q4_BLOCK_SIZE)]);
        assert.ok(Math.abs(back[k * N + n] - w[k * N + n]) <= scale * (1 + 1e-6), `w[${k},${n}]`);
      }
    }
    // column 0, block 0: its largest-magnitude value maps onto code 0 exactly
    let ext = 0;
    for (let k = 0; k < 32; k++) if (Math.abs(w[k * N]) > Math.abs(ext)) ext = w[k * N];
    const kExt = Array.from({ length: 32 }, (_, k) => k).find((k) => w[k * N] === ext)!;
    assert.ok(Math.abs(back[kExt * N] - ext) < 1e-6);
  });

  test("onnxruntime's MatMulNBits computes A @ dequantize(B) for our packing", async () => {
    const K = 88;
    const N = 6;
    const source = prngSource('q4-test');
    const b = new GraphBuilder('one_matmul', { fp16Weights: false, q4: true, source });
    const a = b.input('A', DT.FLOAT, [2, 3, K]);
    b.op('Identity', [b.matmul(a, 'w', K, N, { std: 0.1 })], {}, 'Y');
    b.output('Y', DT.FLOAT, [2, 3, N]);
    const q4 = b.encode();
    const model = onnx.ModelProto.decode(q4);
    assert.deepEqual(model.graph!.node!.map((n) => `${n.domain}:${n.opType}`), [`${MS_DOMAIN}:MatMulNBits`, ':Identity']);
    assert.ok(model.opsetImport!.some((o) => o.domain === MS_DOMAIN && Number(o.version) === 1));
    assert.ok(!model.graph!.initializer!.some((t) => t.name === 'w'), 'no fp32 copy of the weight is stored');

    const w = source.linear('w', K, N, { std: 0.1 }, 'KN');
    const q = quantizeBlockwise4(w, K, N);
    // quantizing the [N, K] rows (what the converter reads from a checkpoint) packs the very same bytes
    const rows = quantizeRows4(transpose2d(w, K, N), N, K);
    assert.deepEqual(rows.packed, q.packed);
    assert.deepEqual(rows.scales, q.scales);
    const deq = dequantizeBlockwise4(q, K, N);
    const A = randn(2 * 3 * K, 3);
    const session = await ort.InferenceSession.create(q4);
    const y = (await session.run({ A: new ort.Tensor('float32', A, [2, 3, K]) })).Y.data as Float32Array;
    await session.release();
    let maxDiff = 0;
    let quantEffect = 0;
    for (let r = 0; r < 6; r++) {
      for (let n = 0; n < N; n++) {
        let exact = 0;
        let deqSum = 0;
        let stepBound = 0; // each weight is within one step |scale| of its original
        for (let k = 0; k < K; k++) {
          exact += A[r * K + k] * w[k * N + n];
          deqSum += A[r * K + k] * deq[k * N + n];
          stepBound += Math.abs(A[r * K + k]) * Math.abs(q.scales[n * q.nBlocks + Math.floor(k / Q4_BLOCK_SIZE)]);
        }
        maxDiff = Math.max(maxDiff, Math.abs(y[r * N + n] - deqSum));
        // against the unquantized weights too, so a packing bug shared by quantizer and dequantizer shows
        assert.ok(Math.abs(y[r * N + n] - exact) <= stepBound + 1e-4, `Y[${r},${n}] is off the fp32 product by more than the quantization bound`);
        quantEffect = Math.max(quantEffect, Math.abs(exact - deqSum));
      }
    }
    assert.ok(maxDiff < 1e-4, `MatMulNBits differs from A @ dequantized weights by ${maxDiff}`);
    assert.ok(quantEffect > 10 * maxDiff, 'the check must be able to tell quantized from unquantized weights');
  });

  test('search scales: no block has more squared error than absmax, the whole less, and MatMulNBits reads them alike', async () => {
    const K = 88;
    const N = 40;
    const w = randn(N * K, 11);
    const absmax = quantizeRows4(w, N, K);
    const search = quantizeRows4(w, N, K, Q4_BLOCK_SIZE, 'search');
    const blockError = (q: typeof absmax, n: number, blk: number) => {
      const deq = dequantizeBlockwise4(q, K, N);
      let e = 0;
      for (let k = blk * Q4_BLOCK_SIZE; k < Math.min(K, (blk + 1) * Q4_BLOCK_SIZE); k++) e += (deq[k * N + n] - w[n * K + k]) ** 2;
      return e;
    };
    let totalAbsmax = 0;
    let totalSearch = 0;
    let lowerBlocks = 0;
    for (let n = 0; n < N; n++) {
      for (let blk = 0; blk < search.nBlocks; blk++) {
        const a = blockError(absmax, n, blk);
        const s = blockError(search, n, blk);
        assert.ok(s <= a * (1 + 1e-9) + 1e-12, `row ${n} block ${blk}: search ${s} > absmax ${a}`);
        if (s < a * 0.999) lowerBlocks++;
        totalAbsmax += a;
        totalSearch += s;
      }
    }
    // on normal weights the error falls by about a tenth (4096 x 4096: relative RMS 0.0807 against 0.0858)
    assert.ok(totalSearch < 0.95 * totalAbsmax, `search error ${totalSearch} is not clearly below absmax ${totalAbsmax}`);
    assert.ok(lowerBlocks > search.nBlocks * N * 0.5, `only ${lowerBlocks} blocks improved`);

    const b = new GraphBuilder('one_matmul', { fp16Weights: false, q4: true, q4Scales: 'search', source: { tensor: () => w, linear: () => w } });
    b.op('Identity', [b.matmul(b.input('A', DT.FLOAT, [1, K]), 'w', K, N, { std: 1 })], {}, 'Y');
    b.output('Y', DT.FLOAT, [1, N]);
    const session = await ort.InferenceSession.create(b.encode());
    const A = randn(K, 5);
    const y = (await session.run({ A: new ort.Tensor('float32', A, [1, K]) })).Y.data as Float32Array;
    await session.release();
    const deq = dequantizeBlockwise4(search, K, N);
    for (let n = 0; n < N; n++) {
      let expected = 0;
      for (let k = 0; k < K; k++) expected += A[k] * deq[k * N + n];
      assert.ok(Math.abs(y[n] - expected) < 1e-3 * (1 + Math.abs(expected)), `Y[${n}] ${y[n]} against ${expected}`);
    }
  });
});

describe('q4 fixture graphs', () => {
  test('every constant-weight MatMul is a MatMulNBits; embed_tokens_q4 keeps its float Gather', async () => {
    const [dir] = await ensureFixtures(['tiny-qwen']);
    const load = (f: string) => onnx.ModelProto.decode(readFileSync(path.join(dir, 'onnx', f)));
    for (const f of ['decoder_model_merged_q4.onnx', 'vision_encoder_q4.onnx']) {
      const m = load(f);
      const inits = new Set(m.graph!.initializer!.map((t) => t.name));
      const nbits = m.graph!.node!.filter((n) => n.opType === 'MatMulNBits');
      assert.ok(nbits.length > 0, f);
      assert.ok(!m.graph!.node!.some((n) => n.opType === 'MatMul' && inits.has(n.input![1])), `${f}: a float MatMul weight is left`);
      for (const n of nbits) {
        const attr = Object.fromEntries(n.attribute!.map((a) => [a.name, Number(a.i)]));
        assert.equal(attr.bits, 4);
        assert.equal(attr.block_size, 32);
      }
    }
    // 2 layers x 7 projections + lm_head
    assert.equal(load('decoder_model_merged_q4.onnx').graph!.node!.filter((n) => n.opType === 'MatMulNBits').length, 15);
    assert.ok(load('embed_tokens_q4.onnx').graph!.node!.some((n) => n.opType === 'Gather'));
  });
});

for (const fixture of ['tiny-llava', 'tiny-qwen']) {
  describe(`q4: ${fixture}`, () => {
    let dir: string;
    let ours: LlavaModel;
    let fp32: LlavaModel;
    let ref: Reference;

    before(async () => {
      [dir] = await ensureFixtures([fixture]);
      ours = await loadModel(dir, { provider: 'cpu', variant: 'q4' });
      fp32 = await loadModel(dir, { provider: 'cpu', variant: 'fp32' });
      ref = await loadReference(fixture, dir, 'q4');
    });
    after(async () => {
      await ours?.dispose();
      await fp32?.dispose();
      await ref?.model.dispose();
    });

    test('the engine picks q4 for every session by default on CPU', async () => {
      const m = await loadModel(dir, { provider: 'cpu' });
      try {
        assert.deepEqual(m.info.variants, { vision: 'q4', embed: 'q4', decoder: 'q4' });
      } finally {
        await m.dispose();
      }
    });

    for (const image of IMAGES) {
      test(`${image}: same logits and greedy tokens as transformers.js, near fp32`, async () => {
        const imagePath = path.join(SAMPLES, image);
        const pixels: PreprocessedImage = await ours.preprocess({ path: imagePath });
        const turns: ChatTurn[] = [{ role: 'user', text: QUESTION, images: [{ preprocessed: pixels, name: image }] }];
        const { inputs, ids: refIds } = await referenceInputs(ref, imagePath, QUESTION, pixels);
        assert.deepEqual(await ours.promptIds(turns), refIds, 'prompt ids');

        const mine = await ours.nextTokenLogits(turns);
        const vocab = mine.length;
        const maxDiff = maxAbsDiff(mine, await referenceNextLogits(ref, inputs));
        assert.ok(maxDiff <= LOGIT_TOLERANCE, `q4 first-step logits differ from transformers.js by ${maxDiff}`);

        // q4 against the fp32 files of the same model
        const full = await fp32.nextTokenLogits(turns);
        let diff2 = 0;
        let norm2 = 0;
        let maxAbs = 0;
        for (let i = 0; i < vocab; i++) {
          diff2 += (mine[i] - full[i]) ** 2;
          norm2 += full[i] ** 2;
          maxAbs = Math.max(maxAbs, Math.abs(mine[i] - full[i]));
        }
        const rel = Math.sqrt(diff2 / norm2);
        const top = (x: Float32Array) => x.reduce((best, v, i) => (v > x[best] ? i : best), 0);
        const q4Top = top(mine);
        const fp32Top = top(full);
        let rankOfQ4Top = 0; // how many fp32 logits beat the token q4 picks
        for (let i = 0; i < vocab; i++) if (full[i] > full[q4Top]) rankOfQ4Top++;
        console.log(`# ${fixture} ${image}: q4 vs fp32 first-step logits: max |diff| ${maxAbs.toFixed(4)}, relative L2 ${rel.toFixed(4)}, ` +
          `logit RMS ${Math.sqrt(norm2 / vocab).toFixed(4)}, top-1 ${q4Top} vs ${fp32Top} (rank ${rankOfQ4Top} in fp32)`);
        assert.ok(rel > 0, 'q4 must not be the fp32 model (else this test proves nothing)');
        assert.ok(rel < Q4_RELATIVE_BOUND, `q4 logits are ${rel} (relative L2) away from fp32`);
        // The tiny random models have close top logits, so q4 may swap the first two or three (it does in
        // 3 of these 4 cases). The noise above is ~0.25 of the logit RMS, which can only reorder the head of
        // the distribution; a broken layout would pick a token from the bulk (rank ~ vocab / 2).
        assert.ok(rankOfQ4Top < 10, `q4's first token is only number ${rankOfQ4Top + 1} under fp32`);

        const refTokens = await referenceGreedy(ref, inputs, refIds.length, NEW_TOKENS);
        assert.deepEqual(await ourGreedy(ours, turns, NEW_TOKENS, refTokens), refTokens, 'greedy tokens');
        console.log(`# ${fixture} ${image}: q4 greedy tokens ${JSON.stringify(refTokens)}`);
      });
    }
  });
}
