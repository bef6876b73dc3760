// Weight-only 4-bit block quantization for com.microsoft MatMulNBits, as onnxruntime's
// MatMul4BitsQuantizer does when transformers.js' scripts/quantize.py makes the `_q4` files
// (block_size 32, is_symmetric=True, accuracy_level=None). Written from the MatMulNBits contrib-op
// spec, not from the quantizer's code.

import { transpose2d } from './floats';

export const Q4_BITS = 4;
/** transformers.js' quantize.py default for q4 (`block_size or 32`) */
export const Q4_BLOCK_SIZE = 32;

export interface BlockwiseQ4 {
  /** MatMulNBits input B: uint8 [N, nBlocks, blobSize], two 4-bit values a byte, the lower K index in the low nibble */
  packed: Uint8Array;
  /** MatMulNBits input scales: f32 [N * nBlocks], row n's blocks consecutive */
  scales: Float32Array;
  nBlocks: number;
  blobSize: number;
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
 * code 0 (the full -8 step) and every other value is within half a step of its code.
 */
export function quantizeRows4(rows: Float32Array, N: number, K: number, blockSize = Q4_BLOCK_SIZE): BlockwiseQ4 {
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
      const scale = Math.fround(extreme / -8);
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
