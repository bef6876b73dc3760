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
export const Resample = { NEAREST: 0, LANCZOS: 1, BILINEAR: 2, BICUBIC: 3, BOX: 4, HAMMING: 5 } as const;
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

/**
 * Per output pixel of [first, first + n): first input index, tap count, and `ksize` fixed-point
 * weights. Only the output window is computed: a full row of weights for a 64,000,000-row output
 * (a 1-pixel-wide strip resized to a 336 short side) would not fit in memory.
 */
interface Coefficients {
  ksize: number;
  /** the output index of entry 0 */
  first: number;
  /** [n] first input index */
  start: Int32Array;
  /** [n] number of taps used */
  count: Int32Array;
  /** [n, ksize] weights, fixed point with PRECISION_BITS fractional bits */
  weights: Int32Array;
}

/**
 * Coefficients for resampling `inSize` samples spanning the input interval [in0, in1) into
 * `outSize` samples (Pillow's precompute_coeffs + normalize_coeffs_8bpc), for output samples
 * [first, first + n) only: each one depends on its own centre alone, so a window is exact.
 */
function precomputeCoefficients(
  inSize: number,
  in0: number,
  in1: number,
  outSize: number,
  kernel: Kernel,
  first = 0,
  n = outSize,
): Coefficients {
  const scale = (in1 - in0) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = kernel.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const invFilterscale = 1 / filterscale;

  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * ksize);
  const k = new Float64Array(ksize);

  for (let xx = first; xx < first + n; xx++) {
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
    const base = (xx - first) * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      // Round half away from zero into fixed point, like Pillow's normalize_coeffs_8bpc.
      weights[base + x] = w < 0 ? Math.trunc(-0.5 + w * FIXED_ONE) : Math.trunc(0.5 + w * FIXED_ONE);
    }
    start[xx - first] = xmin;
    count[xx - first] = xmax;
  }
  return { ksize, first, start, count, weights };
}

function clip8(acc: number): number {
  // acc fits int32 by Pillow's design (2 bits of headroom); >> is the same arithmetic shift.
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * The image as the resize sees it: `src` pasted at (left, top) on a canvas of width x height
 * filled with `color`. This is LLaVA's expand2square without building the square: a padded 4K
 * screenshot would otherwise cost a 44 MB copy, and every padding row filters to the same row.
 */
export interface Canvas {
  width: number;
  height: number;
  left: number;
  top: number;
  color: readonly [number, number, number];
}

/** Canvas rows as (bytes, offset) without materialising the canvas. */
class CanvasRows {
  private readonly src: Buffer;
  private readonly padRow: Buffer; // [canvas.width, 3] u8, all `color`
  private readonly scratch: Buffer[]; // two rows, for rows that have padding left/right
  private readonly srcStride: number;

  constructor(
    src: RgbImage,
    readonly canvas: Canvas,
  ) {
    this.src = Buffer.from(src.data.buffer, src.data.byteOffset, src.data.byteLength);
    this.srcStride = src.width * 3;
    this.padRow = Buffer.alloc(canvas.width * 3);
    for (let i = 0; i < this.padRow.length; i += 3) {
      this.padRow[i] = canvas.color[0];
      this.padRow[i + 1] = canvas.color[1];
      this.padRow[i + 2] = canvas.color[2];
    }
    const hasSidePadding = src.width !== canvas.width;
    this.scratch = hasSidePadding ? [Buffer.from(this.padRow), Buffer.from(this.padRow)] : [];
  }

  /** Row `y` of the canvas; rows of different parity never share a scratch buffer. */
  row(y: number): [Buffer, number] {
    const sy = y - this.canvas.top;
    if (sy < 0 || sy * this.srcStride >= this.src.length) return [this.padRow, 0];
    const from = sy * this.srcStride;
    if (this.scratch.length === 0) return [this.src, from];
    const buf = this.scratch[y & 1];
    this.src.copy(buf, this.canvas.left * 3, from, from + this.srcStride);
    return [buf, 0];
  }

  /** Columns [left, left + width) of canvas row y into out at offset o. */
  copyRow(y: number, left: number, width: number, out: Uint8Array, o: number): void {
    const [buf, off] = this.row(y);
    out.set(buf.subarray(off + left * 3, off + (left + width) * 3), o);
  }
}

/**
 * One or two canvas rows (`a` at `pa`, `b` at `pb` when `pair`) through the horizontal filter
 * into output rows at `o` (and `o + outStride`). Two rows share each weight load and the loop
 * overhead, which is most of the cost of this pass.
 */
function filterRows(
  a: Buffer,
  pa: number,
  b: Buffer,
  pb: number,
  pair: boolean,
  out: Uint8Array,
  o: number,
  outStride: number,
  colFirst: number,
  cols: number,
  c: Coefficients,
): void {
  const { ksize, start, count, weights } = c;
  // Pillow sizes PRECISION_BITS so that these sums never leave int32: |0 and imul are exact.
  for (let xx = colFirst - c.first; xx < colFirst - c.first + cols; xx++) {
    const n = count[xx];
    const kBase = xx * ksize;
    let p = pa + start[xx] * 3;
    let s0 = ONE_HALF;
    let s1 = ONE_HALF;
    let s2 = ONE_HALF;
    if (pair) {
      let q = pb + start[xx] * 3;
      let u0 = ONE_HALF;
      let u1 = ONE_HALF;
      let u2 = ONE_HALF;
      for (let t = 0; t < n; t++) {
        const w = weights[kBase + t];
        s0 = (s0 + Math.imul(a[p], w)) | 0;
        s1 = (s1 + Math.imul(a[p + 1], w)) | 0;
        s2 = (s2 + Math.imul(a[p + 2], w)) | 0;
        u0 = (u0 + Math.imul(b[q], w)) | 0;
        u1 = (u1 + Math.imul(b[q + 1], w)) | 0;
        u2 = (u2 + Math.imul(b[q + 2], w)) | 0;
        p += 3;
        q += 3;
      }
      out[o + outStride] = clip8(u0);
      out[o + outStride + 1] = clip8(u1);
      out[o + outStride + 2] = clip8(u2);
    } else {
      for (let t = 0; t < n; t++) {
        const w = weights[kBase + t];
        s0 = (s0 + Math.imul(a[p], w)) | 0;
        s1 = (s1 + Math.imul(a[p + 1], w)) | 0;
        s2 = (s2 + Math.imul(a[p + 2], w)) | 0;
        p += 3;
      }
    }
    out[o] = clip8(s0);
    out[o + 1] = clip8(s1);
    out[o + 2] = clip8(s2);
    o += 3;
  }
}

/**
 * Horizontal pass over canvas rows [rowFirst, rowFirst + rows) for output columns
 * [colFirst, colFirst + cols). Returns [rows, cols, 3] u8.
 */
function horizontalPass(
  rowsOf: CanvasRows,
  rowFirst: number,
  rows: number,
  colFirst: number,
  cols: number,
  c: Coefficients,
): Uint8Array {
  const out = new Uint8Array(rows * cols * 3);
  const outStride = cols * 3;
  const rowBytes = rowsOf.canvas.width * 3;
  // Flat regions (screenshot backgrounds, padding) repeat whole rows: a row equal to the previous
  // one gives the same output row, found with a native memcmp.
  const same = (x: [Buffer, number], y: [Buffer, number]) => x[0].compare(y[0], y[1], y[1] + rowBytes, x[1], x[1] + rowBytes) === 0;
  let prev: [Buffer, number] | undefined;
  let y = 0;
  while (y < rows) {
    const o = y * outStride;
    const a = rowsOf.row(rowFirst + y);
    if (prev && same(a, prev)) {
      out.copyWithin(o, o - outStride, o);
      prev = a;
      y += 1;
      continue;
    }
    const b = y + 1 < rows ? rowsOf.row(rowFirst + y + 1) : undefined;
    const pair = b !== undefined && !same(a, b);
    filterRows(a[0], a[1], (b ?? a)[0], (b ?? a)[1], pair, out, o, outStride, colFirst, cols, c);
    prev = pair ? b : a;
    y += pair ? 2 : 1;
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
    const yy = rowFirst + y - c.first;
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

function copyWindow(rowsOf: CanvasRows, win: OutputWindow): Uint8Array {
  const out = new Uint8Array(win.width * win.height * 3);
  for (let y = 0; y < win.height; y++) rowsOf.copyRow(win.top + y, win.left, win.width, out, y * win.width * 3);
  return out;
}

/** Pillow's NEAREST resize: an affine scale sampling `int(box0 + (i + 0.5) * scale)`. */
function nearestResize(rowsOf: CanvasRows, outW: number, outH: number, win: OutputWindow): Uint8Array {
  const { width, height } = rowsOf.canvas;
  const ax = width / outW;
  const ay = height / outH;
  // Pillow accumulates the source coordinate by repeated addition; do the same for equal rounding.
  // [win.width] source column per output column of the window (the sum runs from 0 for equal rounding)
  const xIndex = new Int32Array(win.width);
  let xo = ax * 0.5;
  for (let x = 0; x < win.left + win.width; x++) {
    if (x >= win.left) xIndex[x - win.left] = Math.min(Math.trunc(xo), width - 1);
    xo += ax;
  }
  const out = new Uint8Array(win.width * win.height * 3);
  let yo = ay * 0.5;
  for (let y = 0; y < win.top; y++) yo += ay;
  for (let y = 0; y < win.height; y++) {
    const [buf, off] = rowsOf.row(Math.min(Math.trunc(yo), height - 1));
    let o = y * win.width * 3;
    for (let x = 0; x < win.width; x++) {
      const p = off + xIndex[x] * 3;
      out[o++] = buf[p];
      out[o++] = buf[p + 1];
      out[o++] = buf[p + 2];
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
 * With `canvas`, the image resized is `src` pasted on that canvas (see Canvas).
 */
export function pilResize(
  src: RgbImage,
  outWidth: number,
  outHeight: number,
  resample: number = Resample.BICUBIC,
  window?: OutputWindow,
  canvas?: Canvas,
): RgbImage {
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth < 1 || outHeight < 1) {
    throw new RangeError(`pilResize: output size must be positive integers, got ${outWidth}x${outHeight}`);
  }
  if (src.data.length !== src.width * src.height * 3) {
    throw new RangeError(`pilResize: ${src.width}x${src.height} RGB needs ${src.width * src.height * 3} bytes, got ${src.data.length}`);
  }
  const cv = canvas ?? { width: src.width, height: src.height, left: 0, top: 0, color: [0, 0, 0] as const };
  if (cv.left < 0 || cv.top < 0 || cv.left + src.width > cv.width || cv.top + src.height > cv.height) {
    throw new RangeError(`pilResize: a ${src.width}x${src.height} image does not fit canvas ${JSON.stringify(cv)}`);
  }
  const win = window ?? { left: 0, top: 0, width: outWidth, height: outHeight };
  if (
    win.left < 0 || win.top < 0 || win.width < 1 || win.height < 1 ||
    win.left + win.width > outWidth || win.top + win.height > outHeight
  ) {
    throw new RangeError(`pilResize: window ${JSON.stringify(win)} is outside ${outWidth}x${outHeight}`);
  }
  const rowsOf = new CanvasRows(src, cv);
  const out = (data: Uint8Array): RgbImage => ({ data, width: win.width, height: win.height });

  // Same size: Pillow returns a copy (Image.resize short-circuits before any filtering).
  if (outWidth === cv.width && outHeight === cv.height) return out(copyWindow(rowsOf, win));
  if (resample === Resample.NEAREST) return out(nearestResize(rowsOf, outWidth, outHeight, win));
  const kernel = KERNELS[resample];
  if (!kernel) throw new RangeError(`pilResize: unsupported resample filter ${resample}`);

  const needHorizontal = outWidth !== cv.width;
  const needVertical = outHeight !== cv.height;

  const vert = precomputeCoefficients(cv.height, 0, cv.height, outHeight, kernel, win.top, win.height);
  // Canvas rows the vertical pass reads for the requested output rows.
  const last = win.height - 1;
  const r0 = needVertical ? vert.start[0] : win.top;
  const rEnd = needVertical ? vert.start[last] + vert.count[last] : win.top + win.height;

  // [rEnd - r0, win.width, 3] u8: horizontally resampled rows (or the window's columns as they are)
  const stage = needHorizontal
    ? horizontalPass(rowsOf, r0, rEnd - r0, win.left, win.width, precomputeCoefficients(cv.width, 0, cv.width, outWidth, kernel, win.left, win.width))
    : copyWindow(rowsOf, { left: win.left, top: r0, width: win.width, height: rEnd - r0 });
  if (!needVertical) return out(stage);
  return out(verticalPass(stage, win.width, r0, win.top, win.height, vert));
}
