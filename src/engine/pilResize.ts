// Resize of 8-bit RGB pixels that reproduces Pillow's `Image.resize(size, resample)`.
//
// Why: the models were trained with Hugging Face's Python image processors, which resize with PIL
// (bicubic, antialiased when shrinking). libvips/sharp resamples differently (no antialiasing on
// `affine`, other kernels and edge handling), which visibly aliases small text in screenshots
// and moves the model's logits. So the engine resamples the way Pillow does, with the same
// arithmetic, so its output matches PIL's to within rounding (usually exactly).
//
// Facts taken from Pillow's src/libImaging/Resample.c and Geometry.c (our own code, same algorithm):
// - separable, two passes: horizontal first (only over the source rows the vertical pass will read),
//   the intermediate is rounded and clipped to u8, then the vertical pass;
// - a pass is skipped when its size does not change (whole-image box);
// - filter support scales with the reduction factor when shrinking (antialiasing), never below 1x;
// - output pixel `i` is centred at `(i + 0.5) * scale` in input coordinates; taps cover
//   `[int(center - support + 0.5), int(center + support + 0.5))` clamped to the image, each tap
//   weighted by `filter((x - center + 0.5) / filterscale)`, weights normalised to sum 1;
// - weights become fixed point with 22 fractional bits (32 - 8 - 2: two bits of headroom for the
//   negative lobes), rounded half away from zero; accumulators start at 0.5 (1 << 21) and the
//   result is `clip(acc >> 22)` to 0..255;
// - NEAREST is not a filter there but an affine scale: source index `int(box0 + (i + 0.5) * scale)`
//   accumulated by repeated addition.

/** Pillow's `Image.Resampling` numbers, as found in `preprocessor_config.json` `resample`. */
export const Resample = {
  NEAREST: 0,
  LANCZOS: 1,
  BILINEAR: 2,
  BICUBIC: 3,
  BOX: 4,
  HAMMING: 5,
} as const;
export type ResampleFilter = (typeof Resample)[keyof typeof Resample];

/** A u8 RGB image, rows top to bottom, pixels interleaved. */
export interface RgbImage {
  /** [height, width, 3] u8 */
  data: Uint8Array;
  width: number;
  height: number;
}

/** Part of the output to compute: exactly the pixels a full resize would have produced there. */
export interface OutputWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

const PRECISION_BITS = 32 - 8 - 2;
const ONE_HALF = 1 << (PRECISION_BITS - 1);
const FIXED_ONE = 1 << PRECISION_BITS;

interface Kernel {
  fn: (x: number) => number;
  support: number;
}

function bicubic(x: number): number {
  // Keys' cubic convolution with a = -0.5, as in Pillow.
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

function box(x: number): number {
  return x > -0.5 && x <= 0.5 ? 1 : 0;
}

// Pillow writes 0.54f and 0.46f: single-precision literals promoted to double.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);
function hamming(x: number): number {
  if (x < 0) x = -x;
  if (x === 0) return 1;
  if (x >= 1) return 0;
  x *= Math.PI;
  return (Math.sin(x) / x) * (HAMMING_A + HAMMING_B * Math.cos(x));
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x: number): number {
  return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

const KERNELS: Record<number, Kernel> = {
  [Resample.BOX]: { fn: box, support: 0.5 },
  [Resample.BILINEAR]: { fn: bilinear, support: 1 },
  [Resample.HAMMING]: { fn: hamming, support: 1 },
  [Resample.BICUBIC]: { fn: bicubic, support: 2 },
  [Resample.LANCZOS]: { fn: lanczos, support: 3 },
};

/** Per output pixel: first input index, tap count, and `ksize` fixed-point weights. */
interface Coefficients {
  ksize: number;
  /** [outSize] first input index */
  start: Int32Array;
  /** [outSize] number of taps used */
  count: Int32Array;
  /** [outSize, ksize] weights, fixed point with PRECISION_BITS fractional bits */
  weights: Int32Array;
}

/**
 * Coefficients for resampling `inSize` samples spanning the input interval [in0, in1) into
 * `outSize` samples (Pillow's precompute_coeffs + normalize_coeffs_8bpc).
 */
function precomputeCoefficients(
  inSize: number,
  in0: number,
  in1: number,
  outSize: number,
  kernel: Kernel,
): Coefficients {
  const scale = (in1 - in0) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = kernel.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const invFilterscale = 1 / filterscale;

  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);

  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; negative values are clamped to 0 just after.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;

    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = kernel.fn((x + xmin - center + 0.5) * invFilterscale);
      k[x] = w;
      ww += w;
    }
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      // Round half away from zero into fixed point, like Pillow's normalize_coeffs_8bpc.
      weights[base + x] = w < 0 ? Math.trunc(-0.5 + w * FIXED_ONE) : Math.trunc(0.5 + w * FIXED_ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, start, count, weights };
}

function clip8(acc: number): number {
  // acc fits int32 by Pillow's design (2 bits of headroom); >> is the same arithmetic shift.
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Horizontal pass over source rows [rowFirst, rowFirst + rows) for output columns
 * [colFirst, colFirst + cols). Returns [rows, cols, 3] u8.
 */
function horizontalPass(
  src: RgbImage,
  rowFirst: number,
  rows: number,
  colFirst: number,
  cols: number,
  c: Coefficients,
): Uint8Array {
  const out = new Uint8Array(rows * cols * 3);
  const { ksize, start, count } = c;
  // Pillow sizes PRECISION_BITS so that these sums never leave int32: |0 and imul are exact.
  const weights = c.weights;
  const inData = src.data;
  const inStride = src.width * 3;
  const outStride = cols * 3;
  // Flat regions (screenshot backgrounds, the padding of expand2square) repeat whole rows: a row
  // equal to the previous one gives the same output row, found with a native memcmp.
  const bytes = Buffer.from(inData.buffer, inData.byteOffset, inData.byteLength);
  for (let y = 0; y < rows; y++) {
    const rowBase = (rowFirst + y) * inStride;
    let o = y * outStride;
    if (y > 0 && bytes.compare(bytes, rowBase - inStride, rowBase, rowBase, rowBase + inStride) === 0) {
      out.copyWithin(o, o - outStride, o);
      continue;
    }
    for (let xx = colFirst; xx < colFirst + cols; xx++) {
      const n = count[xx];
      const kBase = xx * ksize;
      let p = rowBase + start[xx] * 3;
      let s0 = ONE_HALF;
      let s1 = ONE_HALF;
      let s2 = ONE_HALF;
      for (let t = 0; t < n; t++) {
        const w = weights[kBase + t];
        s0 = (s0 + Math.imul(inData[p], w)) | 0;
        s1 = (s1 + Math.imul(inData[p + 1], w)) | 0;
        s2 = (s2 + Math.imul(inData[p + 2], w)) | 0;
        p += 3;
      }
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
      o += 3;
    }
  }
  return out;
}

/**
 * Vertical pass: `src` is [srcRows, width, 3] u8 whose row 0 is input row `rowOffset`;
 * computes output rows [rowFirst, rowFirst + rows). Returns [rows, width, 3] u8.
 */
function verticalPass(
  src: Uint8Array,
  width: number,
  rowOffset: number,
  rowFirst: number,
  rows: number,
  c: Coefficients,
): Uint8Array {
  const stride = width * 3;
  const out = new Uint8Array(rows * stride);
  const { ksize, start, count, weights } = c;
  // Accumulate whole rows at a time so the inner loop walks memory contiguously.
  const acc = new Float64Array(stride);
  for (let y = 0; y < rows; y++) {
    const yy = rowFirst + y;
    const n = count[yy];
    const kBase = yy * ksize;
    acc.fill(ONE_HALF);
    for (let t = 0; t < n; t++) {
      const w = weights[kBase + t];
      const rowBase = (start[yy] - rowOffset + t) * stride;
      for (let i = 0; i < stride; i++) acc[i] += src[rowBase + i] * w;
    }
    const o = y * stride;
    for (let i = 0; i < stride; i++) out[o + i] = clip8(acc[i]);
  }
  return out;
}

function cropRgb(src: RgbImage, win: OutputWindow): Uint8Array {
  const out = new Uint8Array(win.width * win.height * 3);
  const rowBytes = win.width * 3;
  for (let y = 0; y < win.height; y++) {
    const from = ((win.top + y) * src.width + win.left) * 3;
    out.set(src.data.subarray(from, from + rowBytes), y * rowBytes);
  }
  return out;
}

/** Pillow's NEAREST resize: an affine scale sampling `int(box0 + (i + 0.5) * scale)`. */
function nearestResize(src: RgbImage, outW: number, outH: number, win: OutputWindow): Uint8Array {
  const ax = src.width / outW;
  const ay = src.height / outH;
  // Pillow accumulates the source coordinate by repeated addition; do the same for equal rounding.
  const xIndex = new Int32Array(outW);
  let xo = ax * 0.5;
  for (let x = 0; x < outW; x++) {
    xIndex[x] = Math.min(Math.trunc(xo), src.width - 1);
    xo += ax;
  }
  const out = new Uint8Array(win.width * win.height * 3);
  let yo = ay * 0.5;
  for (let y = 0; y < win.top; y++) yo += ay;
  for (let y = 0; y < win.height; y++) {
    const yi = Math.min(Math.trunc(yo), src.height - 1);
    const rowBase = yi * src.width * 3;
    let o = y * win.width * 3;
    for (let x = win.left; x < win.left + win.width; x++) {
      const p = rowBase + xIndex[x] * 3;
      out[o++] = src.data[p];
      out[o++] = src.data[p + 1];
      out[o++] = src.data[p + 2];
    }
    yo += ay;
  }
  return out;
}

/**
 * Resize `src` to outWidth x outHeight exactly as Pillow's `Image.resize((outWidth, outHeight),
 * resample)` does for an RGB image, returning only the pixels inside `window` (default: all).
 * Computing a window gives the same pixels as resizing fully and cropping (each output pixel
 * depends only on its own coefficients), at a fraction of the cost for centre crops.
 */
export function pilResize(
  src: RgbImage,
  outWidth: number,
  outHeight: number,
  resample: number = Resample.BICUBIC,
  window?: OutputWindow,
): RgbImage {
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth < 1 || outHeight < 1) {
    throw new RangeError(`pilResize: output size must be positive integers, got ${outWidth}x${outHeight}`);
  }
  if (src.data.length !== src.width * src.height * 3) {
    throw new RangeError(`pilResize: ${src.width}x${src.height} RGB needs ${src.width * src.height * 3} bytes, got ${src.data.length}`);
  }
  const win = window ?? { left: 0, top: 0, width: outWidth, height: outHeight };
  if (
    win.left < 0 || win.top < 0 || win.width < 1 || win.height < 1 ||
    win.left + win.width > outWidth || win.top + win.height > outHeight
  ) {
    throw new RangeError(`pilResize: window ${JSON.stringify(win)} is outside ${outWidth}x${outHeight}`);
  }

  // Same size: Pillow returns a copy (Image.resize short-circuits before any filtering).
  if (outWidth === src.width && outHeight === src.height) {
    return { data: cropRgb(src, win), width: win.width, height: win.height };
  }
  if (resample === Resample.NEAREST) {
    return { data: nearestResize(src, outWidth, outHeight, win), width: win.width, height: win.height };
  }
  const kernel = KERNELS[resample];
  if (!kernel) throw new RangeError(`pilResize: unsupported resample filter ${resample}`);

  const needHorizontal = outWidth !== src.width;
  const needVertical = outHeight !== src.height;

  const vert = precomputeCoefficients(src.height, 0, src.height, outHeight, kernel);
  // Source rows the vertical pass reads for the requested output rows.
  const rowFirst = vert.start[win.top];
  const last = win.top + win.height - 1;
  const rowEnd = needVertical ? vert.start[last] + vert.count[last] : win.top + win.height;

  let stage: Uint8Array;
  let stageRowOffset: number;
  if (needHorizontal) {
    const horiz = precomputeCoefficients(src.width, 0, src.width, outWidth, kernel);
    const r0 = needVertical ? rowFirst : win.top;
    stage = horizontalPass(src, r0, rowEnd - r0, win.left, win.width, horiz);
    stageRowOffset = r0;
  } else {
    // Only the vertical pass runs: feed it the window's columns of the source rows it needs.
    const r0 = needVertical ? rowFirst : win.top;
    stage = cropRgb(src, { left: win.left, top: r0, width: win.width, height: rowEnd - r0 });
    stageRowOffset = r0;
  }
  if (!needVertical) {
    return { data: stage, width: win.width, height: win.height };
  }
  const data = verticalPass(stage, win.width, stageRowOffset, win.top, win.height, vert);
  return { data, width: win.width, height: win.height };
}
