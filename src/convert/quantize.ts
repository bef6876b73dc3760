// Weight-only 4-bit block quantization for com.microsoft MatMulNBits, as onnxruntime's
// MatMul4BitsQuantizer does when transformers.js' scripts/quantize.py makes the `_q4` files
// (block_size 32, is_symmetric=True, accuracy_level=None). Written from the MatMulNBits contrib-op
// spec, not from the quantizer's code.

import { transpose2d } from './floats';

export const Q4_BITS = 4;
/** transformers.js' quantize.py default for q4 (`block_size or 32`) */
export const Q4_BLOCK_SIZE = 32;
/**
 * The block sizes `llava convert --q4-block` offers (MatMulNBits takes powers of two from 16). A smaller block
 * has more scales: with f32 scales, 4 + 32 / block bits a weight (5 at 32, 6 at 16). For rows only a few blocks
 * long (a model of hidden size 32 has one block of 32 a row), 16 halves the span one scale covers.
 */
export const Q4_BLOCK_SIZES = [16, 32, 64, 128] as const;
export type Q4BlockSize = (typeof Q4_BLOCK_SIZES)[number];

/** Bytes of an [N, K] weight as MatMulNBits' 4-bit codes and f32 scales, in blocks of `block` along K. */
export function q4Bytes(N: number, K: number, block: number = Q4_BLOCK_SIZE): number {
  const blocks = Math.ceil(K / block);
  return N * blocks * (block / 2 + 4);
}

export interface BlockwiseQ4 {
  /** MatMulNBits input B: uint8 [N, nBlocks, blobSize], two 4-bit values a byte, the lower K index in the low nibble */
  packed: Uint8Array;
  /** MatMulNBits input scales: f32 [N * nBlocks], row n's blocks consecutive */
  scales: Float32Array;
  nBlocks: number;
  blobSize: number;
}

/**
 * How a block's scale is chosen. `absmax`: the block's value of largest magnitude lands on code -8 (what
 * onnxruntime's quantizer does, so our files match the Hub's). `search`: the scale, among 16 candidates, whose
 * codes leave the least squared error, refitted to those codes by least squares; a few percent lower error per
 * weight, at about 7x the quantizing time (22 against 150 MB/s of f32 in one thread). The file format is the same.
 */
export type Q4Scales = 'absmax' | 'search';

/**
 * The candidates of `search`, as the code the block extreme would get (extreme / scale): beyond -8 the extreme
 * saturates, so the other values get finer steps; near +7 the extreme uses the positive side. Chosen from where
 * the best of 42 candidates (-9 to -7, 6 to 8, steps of 0.1) fell for 4096 x 4096 normal weights: 16 of them
 * give the same error (relative RMS 0.0807 against 0.0858 for absmax).
 */
const SEARCH_CODES = [-9.6, -9.4, -9.2, -9, -8.8, -8.6, -8.4, -8.2, -8, -7.8, -7.6, 6.6, 6.8, 7, 7.2, 7.4];

/**
 * The least-squares scale of the block rows[a..b) over the candidates: each gives codes q = round(w / s)
 * clamped to -8..7; for fixed codes the best scale is sum(w q) / sum(q q), which leaves sum(w w) - sum(w q)^2 / sum(q q).
 * The caller re-rounds with the scale chosen, which can only lower that error.
 */
function searchScale(rows: Float32Array, a: number, b: number, extreme: number): number {
  if (extreme === 0) return 0;
  let sww = 0;
  for (let k = a; k < b; k++) sww += rows[k] * rows[k];
  let best = Math.fround(extreme / -8);
  let bestErr = Infinity;
  for (const code of SEARCH_CODES) {
    const inv = code / extreme;
    let swq = 0;
    let sqq = 0;
    for (let k = a; k < b; k++) {
      let q = Math.round(rows[k] * inv);
      q = q > 7 ? 7 : q < -8 ? -8 : q;
      swq += rows[k] * q;
      sqq += q * q;
    }
    if (sqq === 0) continue;
    const err = sww - (swq * swq) / sqq;
    if (err < bestErr) {
      bestErr = err;
      best = Math.fround(swq / sqq);
    }
  }
  return best;
}

/** Rounds half away from zero (C's roundf), so ties do not depend on the sign. */
function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

/**
 * Symmetric block-wise 4-bit quantization of a linear weight given row by row: `rows` [N, K] f32
 * (PyTorch's nn.Linear layout, N = outputs, K = inputs), i.e. the columns of ONNX's MatMul weight [K, N].
 * Each row is cut into blocks of `blockSize` along K (the last one zero-padded). With no zero_points
 * input MatMulNBits uses zero point 8, so the stored code q in 0..15 means (q - 8) * scale. The scale
 * is the block's value of largest magnitude, sign kept, divided by -8: that value lands exactly on
 * code 0 (the full -8 step) and every other value is within half a step of its code. With `method` search the
 * scale is the one of least squared error (see Q4Scales).
 */
export function quantizeRows4(rows: Float32Array, N: number, K: number, blockSize = Q4_BLOCK_SIZE, method: Q4Scales = 'absmax'): BlockwiseQ4 {
  if (rows.length !== K * N) throw new Error(`weight has ${rows.length} values, expected N*K = ${N * K}`);
  const nBlocks = Math.ceil(K / blockSize);
  const blobSize = (blockSize * Q4_BITS) / 8;
  const packed = new Uint8Array(N * nBlocks * blobSize);
  const scales = new Float32Array(N * nBlocks);
  for (let n = 0; n < N; n++) {
    const row = n * K;
    for (let blk = 0; blk < nBlocks; blk++) {
      const k0 = blk * blockSize;
      const k1 = Math.min(K, k0 + blockSize);
      let extreme = 0;
      for (let k = k0; k < k1; k++) if (Math.abs(rows[row + k]) > Math.abs(extreme)) extreme = rows[row + k];
      const scale = method === 'search' ? searchScale(rows, row + k0, row + k1, extreme) : Math.fround(extreme / -8);
      const inv = scale === 0 ? 0 : 1 / scale;
      scales[n * nBlocks + blk] = scale;
      const blob = (n * nBlocks + blk) * blobSize;
      for (let k = k0; k < k0 + blockSize; k++) {
        // padding columns (k >= K) get code 8, i.e. zero
        const q = k < k1 ? Math.min(15, Math.max(0, roundHalfAway(rows[row + k] * inv) + 8)) : 8;
        const j = k - k0;
        packed[blob + (j >> 1)] |= (j & 1) === 0 ? q : q << 4;
      }
    }
  }
  return { packed, scales, nBlocks, blobSize };
}

/** The same for an ONNX MatMul weight `w` [K, N] (row-major, K = input features). */
export function quantizeBlockwise4(w: Float32Array, K: number, N: number, blockSize = Q4_BLOCK_SIZE): BlockwiseQ4 {
  if (w.length !== K * N) throw new Error(`weight has ${w.length} values, expected K*N = ${K * N}`);
  return quantizeRows4(transpose2d(w, K, N), N, K, blockSize);
}

/** The [K, N] f32 weight MatMulNBits computes with: (code - 8) * scale, per the contrib-op spec. */
export function dequantizeBlockwise4(q: BlockwiseQ4, K: number, N: number, blockSize = Q4_BLOCK_SIZE): Float32Array {
  const w = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const blk = Math.floor(k / blockSize);
      const j = k % blockSize;
      const byte = q.packed[(n * q.nBlocks + blk) * q.blobSize + (j >> 1)];
      const code = (j & 1) === 0 ? byte & 0x0f : byte >> 4;
      w[k * N + n] = (code - 8) * q.scales[n * q.nBlocks + blk];
    }
  }
  return w;
}
