// The 8-bit and bnb4 weight layouts mean to onnxruntime's CPU kernels what our dequantizers say: one
// linear layer per graph, run by onnxruntime-node, against A @ dequantize(W) and against the float W.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import {
  BNB4_BLOCK_SIZE, BNB4_FP4, BNB4_NF4, DT, GraphBuilder, dequantizePerTensor8, dequantizeRowsBnb4, quantizePerTensor8, quantizeRowsBnb4,
  transpose2d, type BuilderOptions, type Bnb4Type,
} from '../../src/convert';
import { prngSource } from '../fixtures/weights';

const { onnx } = onnxProto;
const K = 88; // not a multiple of 64: bnb4's last block runs over the next row
const N = 6;
const ROWS = 5;

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** y = A @ w for A [ROWS, K], w [K, N] */
function matmul(A: Float32Array, w: Float32Array): Float32Array {
  const y = new Float32Array(ROWS * N);
  for (let r = 0; r < ROWS; r++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) y[r * N + n] += A[r * K + k] * w[k * N + n];
  return y;
}

async function runOneLinear(opts: Omit<BuilderOptions, 'source'>, A: Float32Array): Promise<{ y: Float32Array; ops: string[] }> {
  const b = new GraphBuilder('one_linear', { ...opts, source: prngSource('variants-kernels') });
  const a = b.input('A', DT.FLOAT, [ROWS, K]);
  b.op('Identity', [b.matmul(a, 'w', K, N, { std: 0.1 })], {}, 'Y');
  b.output('Y', DT.FLOAT, [ROWS, N]);
  const bytes = b.encode();
  const session = await ort.InferenceSession.create(bytes);
  const y = (await session.run({ A: new ort.Tensor('float32', A, [ROWS, K]) })).Y.data as Float32Array;
  await session.release();
  return { y, ops: onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!) };
}

const weight = () => prngSource('variants-kernels').linear('w', K, N, { std: 0.1 }, 'KN');

describe('bnb4 (MatMulBnb4) packing', () => {
  for (const [label, type] of [['NF4', BNB4_NF4], ['FP4', BNB4_FP4]] as Array<[string, Bnb4Type]>) {
    test(`${label}: the kernel computes A @ dequantize(B), which is near A @ W`, async () => {
      const w = weight();
      const A = randn(ROWS * K, 11);
      const { y, ops } = await runOneLinear({ fp16Weights: false, bnb4: true, bnb4Type: type }, A);
      assert.deepEqual(ops, ['MatMulBnb4', 'Identity']);
      const q = quantizeRowsBnb4(transpose2d(w, K, N), N, K, BNB4_BLOCK_SIZE, type);
      const deq = transpose2d(dequantizeRowsBnb4(q, N, K, BNB4_BLOCK_SIZE, type), N, K); // [K, N]
      const expected = matmul(A, deq);
      const exact = matmul(A, w);
      let kernelVsDeq = 0;
      let quantEffect = 0;
      for (let i = 0; i < y.length; i++) {
        kernelVsDeq = Math.max(kernelVsDeq, Math.abs(y[i] - expected[i]));
        quantEffect = Math.max(quantEffect, Math.abs(exact[i] - expected[i]));
      }
      assert.ok(kernelVsDeq < 1e-4, `MatMulBnb4 differs from A @ dequantized weights by ${kernelVsDeq}`);
      assert.ok(quantEffect > 10 * kernelVsDeq, 'the check must tell quantized from unquantized weights');
      // each dequantized weight within half the code book's widest gap (FP4: 1/3 of absmax) of the original
      const rows = transpose2d(w, K, N);
      const back = dequantizeRowsBnb4(q, N, K, BNB4_BLOCK_SIZE, type);
      for (let i = 0; i < rows.length; i++) {
        assert.ok(Math.abs(back[i] - rows[i]) <= q.absmax[Math.floor(i / BNB4_BLOCK_SIZE)] * (type === BNB4_NF4 ? 0.16 : 0.17) + 1e-7, `w[${i}]`);
      }
    });
  }
});

describe('dynamic 8-bit (DynamicQuantizeLinear + MatMulInteger)', () => {
  for (const kind of ['int8', 'uint8'] as const) {
    test(`${kind}: per-tensor weights round-trip within half a step; the graph is near A @ W`, async () => {
      const w = weight();
      const p = quantizePerTensor8(w, kind);
      if (kind === 'int8') assert.equal(p.zeroPoint, 0);
      const back = dequantizePerTensor8(p);
      for (let i = 0; i < w.length; i++) assert.ok(Math.abs(back[i] - w[i]) <= p.scale / 2 + 1e-7, `w[${i}]`);
      const A = randn(ROWS * K, 5);
      const { y, ops } = await runOneLinear({ fp16Weights: false, int8: kind }, A);
      assert.deepEqual(ops.slice(0, 2), ['DynamicQuantizeLinear', 'MatMulInteger']);
      // the activations are quantized too (uint8, step ~ range / 255), so compare with the float product loosely
      const exact = matmul(A, w);
      const withDeqWeights = matmul(A, back);
      let maxErr = 0;
      let norm = 0;
      for (let i = 0; i < y.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(y[i] - exact[i]));
        norm = Math.max(norm, Math.abs(exact[i]));
      }
      assert.ok(maxErr < 0.03 * norm, `MatMulInteger result is ${maxErr} off the float product (max |y| ${norm})`);
      assert.ok(withDeqWeights.some((v, i) => v !== exact[i]), 'quantization must change something');
    });
  }
});
