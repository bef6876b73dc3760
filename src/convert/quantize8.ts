// The other weight formats transformers.js' scripts/quantize.py writes for the Hub, written from the
// ONNX / com.microsoft operator specs, not from the quantizers' code:
// - 8-bit dynamic quantization (onnxruntime's quantize_dynamic; files `_int8`, `_uint8`, `_quantized`):
//   one scale and zero point per weight tensor, activations quantized at run time by DynamicQuantizeLinear.
// - bnb4 (MatMulBnb4): 4-bit NF4 codes in blocks of 64 along K, one f32 absmax per block.

/** 8-bit weight type: `int8` is symmetric (zero point 0, codes -127..127), `uint8` asymmetric (0..255). */
export type Int8Kind = 'int8' | 'uint8';

export interface PerTensor8 {
  /** the codes, same layout as the float weight */
  q: Int8Array | Uint8Array;
  scale: number;
  zeroPoint: number;
}

/** Rounds half to even, like numpy's rint that onnxruntime's quantizer uses. */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Per-tensor 8-bit quantization. int8: scale = max|w| / 127, zero point 0. uint8: the range is widened
 * to include 0, scale = (max - min) / 255, zero point = round(-min / scale), so 0.0 is exact in both.
 */
export function quantizePerTensor8(w: Float32Array, kind: Int8Kind): PerTensor8 {
  let lo = 0;
  let hi = 0;
  for (const v of w) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (kind === 'int8') {
    const absMax = Math.max(-lo, hi);
    const scale = Math.fround(absMax === 0 ? 1 : absMax / 127);
    const q = new Int8Array(w.length);
    for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, rint(w[i] / scale)));
    return { q, scale, zeroPoint: 0 };
  }
  const scale = Math.fround(hi === lo ? 1 : (hi - lo) / 255);
  const zeroPoint = Math.max(0, Math.min(255, rint(-lo / scale)));
  const q = new Uint8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(0, Math.min(255, rint(w[i] / scale) + zeroPoint));
  return { q, scale, zeroPoint };
}

export function dequantizePerTensor8(p: PerTensor8): Float32Array {
  return Float32Array.from(p.q, (c) => (c - p.zeroPoint) * p.scale);
}

/** transformers.js' quantize.py default for bnb4 */
export const BNB4_BLOCK_SIZE = 64;
/** MatMulBnb4's quant_type attribute: 0 = FP4, 1 = NF4 */
export const BNB4_FP4 = 0;
export const BNB4_NF4 = 1;
export type Bnb4Type = typeof BNB4_FP4 | typeof BNB4_NF4;

/** The NF4 code book (bitsandbytes' normal-float levels on [-1, 1]); code i means NF4_LEVELS[i] * absmax. */
export const NF4_LEVELS: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** The FP4 code book (bitsandbytes' 1-sign / 2-exponent / 1-mantissa levels, scaled to [-1, 1]), by code. */
export const FP4_LEVELS: readonly number[] = [
  0, 0.005208333333, 0.6666666667, 1, 0.3333333333, 0.5, 0.1666666667, 0.25,
  -0, -0.005208333333, -0.6666666667, -1, -0.3333333333, -0.5, -0.1666666667, -0.25,
];

const levels = (t: Bnb4Type): readonly number[] => (t === BNB4_NF4 ? NF4_LEVELS : FP4_LEVELS);

export interface BlockwiseBnb4 {
  /** MatMulBnb4 input B: uint8 [ceil(N*K / 2)], the [N, K] weight flattened, two codes a byte, the first in the high nibble */
  packed: Uint8Array;
  /** MatMulBnb4 input absmax: f32 [ceil(N*K / block)] */
  absmax: Float32Array;
}

function nearestCode(table: readonly number[], x: number): number {
  let best = 0;
  for (let i = 1; i < 16; i++) if (Math.abs(table[i] - x) < Math.abs(table[best] - x)) best = i;
  return best;
}

/** NF4 (or FP4) block quantization of `rows` [N, K] (nn.Linear's layout), blocks running over the flattened rows. */
export function quantizeRowsBnb4(rows: Float32Array, N: number, K: number, blockSize = BNB4_BLOCK_SIZE, type: Bnb4Type = BNB4_NF4): BlockwiseBnb4 {
  const table = levels(type);
  if (rows.length !== N * K) throw new Error(`weight has ${rows.length} values, expected N*K = ${N * K}`);
  const total = N * K;
  const packed = new Uint8Array(Math.ceil(total / 2));
  const absmax = new Float32Array(Math.ceil(total / blockSize));
  for (let blk = 0; blk < absmax.length; blk++) {
    const i0 = blk * blockSize;
    const i1 = Math.min(total, i0 + blockSize);
    let m = 0;
    for (let i = i0; i < i1; i++) m = Math.max(m, Math.abs(rows[i]));
    absmax[blk] = m;
    const inv = m === 0 ? 0 : 1 / m;
    for (let i = i0; i < i1; i++) {
      const code = nearestCode(table, rows[i] * inv);
      packed[i >> 1] |= (i & 1) === 0 ? code << 4 : code;
    }
  }
  return { packed, absmax };
}

/** The [N, K] weight MatMulBnb4 computes with. */
export function dequantizeRowsBnb4(q: BlockwiseBnb4, N: number, K: number, blockSize = BNB4_BLOCK_SIZE, type: Bnb4Type = BNB4_NF4): Float32Array {
  const table = levels(type);
  const out = new Float32Array(N * K);
  for (let i = 0; i < out.length; i++) {
    const byte = q.packed[i >> 1];
    const code = (i & 1) === 0 ? byte >> 4 : byte & 0x0f;
    out[i] = table[code] * q.absmax[Math.floor(i / blockSize)];
  }
  return out;
}
