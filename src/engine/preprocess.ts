// Image preprocessing: bytes -> upright sRGB u8 (sharp) -> pad / resize / crop exactly as the
// Python processors the models were trained with (PIL arithmetic, see pilResize.ts) -> rescale and
// normalise -> [3, H, W] f32 CHW, plus the geometry that maps model-input pixels back to the image.

import sharp, { type Metadata } from 'sharp';
import { FileRefusedError, ImageDecodeError, ImageTooLargeError } from '../core';
import { readRegularFile } from '../files';
import { pilResize, Resample, type Canvas, type RgbImage } from './pilResize';
import type { ImageGeometry, ImageInput, PreprocessConfig, PreprocessedImage, PreprocessMode } from '../core';

export interface ImageLimits {
  /** largest accepted file / byte buffer (default 64 MiB) */
  maxBytes?: number;
  /** largest accepted width * height after decoding headers (default 64 megapixels) */
  maxPixels?: number;
  /** longest side an SVG is rendered at (default 2048); small SVGs are scaled up towards it */
  svgMaxSide?: number;
  /** longest accepted side of a raster image, from its header (default 32768) */
  maxSide?: number;
  /** largest accepted long side / short side, from the header (default 100): a 1 x 64,000,000 image is refused */
  maxAspect?: number;
}

export const DEFAULT_IMAGE_LIMITS: Required<ImageLimits> = {
  maxBytes: 64 * 1024 * 1024,
  maxPixels: 64_000_000,
  svgMaxSide: 2048,
  maxSide: 32768,
  maxAspect: 100,
};

/** The longest side of the copy an over-limit image is shrunk to when the caller allows `downscale`. */
export const DOWNSCALE_SIDE = 4096;
/**
 * Hard ceilings that hold even with `downscale`: sharp shrinks JPEG/WebP while decoding and PNG row
 * by row, so memory stays near the copy's size, but a decompression bomb (a few KB claiming
 * 100,000 x 100,000) would still take minutes of CPU: refused. The byte limit does not change.
 */
export const DOWNSCALE_MAX_PIXELS = 1_000_000_000;
export const DOWNSCALE_MAX_SIDE = 131_072;

export interface DecodedImage {
  /** [height, width, 3] u8, sRGB, EXIF-oriented, alpha composited over white */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** set when `rgb` is a downscaled copy: the upright size of the original image */
  original?: { width: number; height: number };
}

function sourceName(input: ImageInput): string {
  if ('path' in input) return input.path;
  return input.name ?? 'image';
}

async function readInput(input: ImageInput, name: string, maxBytes: number): Promise<Buffer> {
  if ('preprocessed' in input) {
    throw new ImageDecodeError(name, 'already preprocessed: there is nothing to decode');
  }
  if ('bytes' in input) {
    if (input.bytes.length > maxBytes) {
      throw new ImageTooLargeError(name, `${input.bytes.length} bytes exceeds the limit of ${maxBytes} bytes`);
    }
    return Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength);
  }
  // Regular files only, links kept inside `root`, a bounded read; FIFOs and devices are never opened.
  try {
    return await readRegularFile(input.path, { maxBytes, root: input.root, name });
  } catch (err) {
    if (err instanceof FileRefusedError && err.reason === 'too-large') throw new ImageTooLargeError(name, err.message.slice(name.length + 2));
    throw err;
  }
}

/** The larger of the root <svg> element's width/height attributes when `bytes` is SVG text, else undefined. */
function svgNominalSide(bytes: Buffer): number | undefined {
  const head = bytes.subarray(0, 4096).toString('latin1');
  const tag = /<svg\b[^>]*>/i.exec(head)?.[0];
  if (!tag || !/^\s*(?:\ufeff|\xef\xbb\xbf)?\s*</.test(head)) return undefined;
  const side = (attr: string) => Number(new RegExp(`\\s${attr}\\s*=\\s*["']\\s*([0-9.eE+]+)`).exec(tag)?.[1] ?? NaN);
  const sides = [side('width'), side('height')].filter(Number.isFinite);
  return sides.length ? Math.max(...sides) : undefined;
}

/** sharp/libvips messages that mean "too big to process" rather than "not a valid image". */
function isTooLargeMessage(message: string): boolean {
  return /exceeds pixel limit|out of memory/i.test(message);
}

/**
 * Decode an image file or byte buffer to upright 8-bit sRGB.
 * - EXIF orientation applied (width/height are the upright size);
 * - alpha composited over WHITE: training images had no alpha, and PIL's convert('RGB') (what the
 *   Python processors do) would just drop it, turning a black-on-transparent diagram into black on
 *   black. White is what a viewer shows, so the model sees what the user sees;
 * - greyscale, CMYK, 16-bit and palette images become 8-bit sRGB RGB (sharp's colour conversion);
 * - animated GIF/WebP: first frame only; SVG rendered with its longest side bounded.
 * Throws ImageDecodeError (not an image, unsupported, truncated, corrupt) or ImageTooLargeError.
 */
export async function decodeImage(input: ImageInput, limits?: ImageLimits): Promise<DecodedImage> {
  const lim = { ...DEFAULT_IMAGE_LIMITS, ...limits };
  const name = sourceName(input);
  const bytes = await readInput(input, name, lim.maxBytes);

  // failOn 'truncated': a truncated JPEG or PNG is an error, not an image whose missing rows are
  // silently grey. Like PIL (and browsers) we still accept recoverable corruption warnings such as
  // libjpeg's "extraneous bytes before marker", which many real-world files trigger.
  const base = { failOn: 'truncated' as const, limitInputPixels: lim.maxPixels as number, pages: 1, page: 0 };

  // librsvg takes an SVG's nominal size as a C int: a width of 1e9 is reported on stderr as
  // GLib-CRITICAL noise before failing. Refuse from the text, before sharp sees it, any size that even
  // at the lowest density (1 dpi, 72 units per pixel) would render past the longest-side bound.
  const svgSide = svgNominalSide(bytes);
  if (svgSide !== undefined && svgSide > lim.maxSide * 72) {
    throw new ImageTooLargeError(name, `SVG claims a side of ${svgSide} units, beyond what can be rendered`);
  }

  let meta: Metadata;
  try {
    // Header only, nothing is allocated: no pixel limit here so that an SVG with a huge nominal
    // size can still be rendered scaled down; raster sizes are checked just below.
    meta = await sharp(bytes, { ...base, limitInputPixels: false }).metadata();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (isTooLargeMessage(msg)) throw new ImageTooLargeError(name, msg);
    throw new ImageDecodeError(name, `not a supported image (${msg})`, { cause: err });
  }
  if (!meta.width || !meta.height) throw new ImageDecodeError(name, 'image has no dimensions');

  let density: number | undefined;
  /** the upright size of an original that is decoded as a downscaled copy */
  let original: { width: number; height: number } | undefined;
  if (meta.format === 'svg') {
    // SVGs have no natural pixel size that matters to the model: render the longest side near
    // svgMaxSide (72 dpi is 1 user unit per pixel), never beyond it.
    const side = Math.max(meta.width, meta.height);
    density = Math.max(1, Math.min(100000, (72 * lim.svgMaxSide) / side));
  } else {
    // Header-only checks: refuse before any pixel buffer is allocated. The shape too, not only the
    // pixel count: a 1 x 64,000,000 strip passes the count but resizes to billions of rows.
    const long = Math.max(meta.width, meta.height);
    const short = Math.min(meta.width, meta.height);
    // The shape first: a copy keeps it, so an offer to downscale would not help such an image.
    if (long / short > lim.maxAspect) {
      throw new ImageTooLargeError(name, `${meta.width}x${meta.height}: aspect ratio over ${lim.maxAspect}:1`);
    }
    const over = meta.width * meta.height > lim.maxPixels || long > lim.maxSide;
    if (over && 'downscale' in input && input.downscale) {
      // The caller asked for a downscaled copy: allowed up to the hard ceilings, decoded shrunk below.
      if (meta.width * meta.height > DOWNSCALE_MAX_PIXELS) {
        throw new ImageTooLargeError(
          name,
          `${meta.width}x${meta.height} (${meta.width * meta.height} pixels) exceeds the limit of ${DOWNSCALE_MAX_PIXELS} pixels, even for a downscaled copy`,
        );
      }
      if (long > DOWNSCALE_MAX_SIDE) {
        throw new ImageTooLargeError(name, `${meta.width}x${meta.height}: a side longer than ${DOWNSCALE_MAX_SIDE} pixels, even for a downscaled copy`);
      }
      const turned = (meta.orientation ?? 1) >= 5; // EXIF 5-8 swap the sides
      original = turned ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
      base.limitInputPixels = DOWNSCALE_MAX_PIXELS;
    } else if (meta.width * meta.height > lim.maxPixels) {
      throw new ImageTooLargeError(
        name,
        `${meta.width}x${meta.height} (${meta.width * meta.height} pixels) exceeds the limit of ${lim.maxPixels} pixels`,
      );
    }
    if (long > lim.maxSide && !original) throw new ImageTooLargeError(name, `${meta.width}x${meta.height}: a side longer than ${lim.maxSide} pixels`);
  }

  try {
    let pipeline = sharp(bytes, { ...base, density }).autoOrient();
    if (density !== undefined) {
      // Density cannot go below 1 dpi: a huge nominal SVG size is brought down by a resize.
      pipeline = pipeline.resize({ width: lim.svgMaxSide, height: lim.svgMaxSide, fit: 'inside', withoutEnlargement: true });
    } else if (original) {
      // Longest side to DOWNSCALE_SIDE (and within the pixel and side limits), aspect kept. libvips picks the
      // shrink-on-load path (JPEG DCT scaling, WebP) and reduces with a proper filter, not by dropping pixels.
      const side = Math.max(1, Math.min(DOWNSCALE_SIDE, lim.maxSide, Math.floor(Math.sqrt(lim.maxPixels * Math.max(original.width, original.height) / Math.min(original.width, original.height)))));
      pipeline = pipeline.resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true });
    }
    const { data, info } = await pipeline
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    if (info.width * info.height > lim.maxPixels) {
      throw new ImageTooLargeError(name, `${info.width}x${info.height} exceeds the limit of ${lim.maxPixels} pixels`);
    }
    return {
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      ...(original ? { original } : {}),
    };
  } catch (err) {
    if (err instanceof ImageTooLargeError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    if (isTooLargeMessage(msg)) throw new ImageTooLargeError(name, msg);
    throw new ImageDecodeError(name, `cannot decode (${msg})`, { cause: err });
  }
}

/** transformers' get_resize_output_image_size(default_to_square=False): short side S, long side int(S * long / short). */
export function shortestEdgeSize(width: number, height: number, shortest: number): { width: number; height: number } {
  if (width <= height) return { width: shortest, height: Math.trunc((shortest * height) / width) };
  return { width: Math.trunc((shortest * width) / height), height: shortest };
}

/** LLaVA's expand2square fill: tuple(int(m * 255) for m in image_mean). */
export function defaultPadColor(mean: readonly [number, number, number]): [number, number, number] {
  return [Math.trunc(mean[0] * 255), Math.trunc(mean[1] * 255), Math.trunc(mean[2] * 255)];
}

/**
 * Original LLaVA's expand2square as a canvas: the image centred on a square of side max(w, h)
 * filled with `color`, offsets ((side - w) // 2, (side - h) // 2). pilResize reads it in place.
 */
function squareCanvas(img: RgbImage, color: readonly [number, number, number]): Canvas {
  const side = Math.max(img.width, img.height);
  return { width: side, height: side, left: Math.trunc((side - img.width) / 2), top: Math.trunc((side - img.height) / 2), color };
}

function identityCanvas(img: RgbImage): Canvas {
  return { width: img.width, height: img.height, left: 0, top: 0, color: [0, 0, 0] };
}

/**
 * Resize the shortest edge, then centre-crop to cropW x cropH like transformers' center_crop:
 * top = (h - ch) // 2, left = (w - cw) // 2; a crop larger than the image is zero-padded
 * around it (offset ceil((c - size) / 2)), which our geometry expresses as a negative crop.
 */
function resizeAndCenterCrop(
  img: RgbImage,
  canvas: Canvas,
  shortest: number,
  cropW: number,
  cropH: number,
  resample: number,
): { image: RgbImage; scaleX: number; scaleY: number; cropLeft: number; cropTop: number } {
  const size = shortestEdgeSize(canvas.width, canvas.height, shortest);
  const cropLeft = Math.floor((size.width - cropW) / 2);
  const cropTop = Math.floor((size.height - cropH) / 2);
  const scaleX = size.width / canvas.width;
  const scaleY = size.height / canvas.height;
  if (cropLeft >= 0 && cropTop >= 0) {
    // Only compute the kept window: identical pixels, less work (see pilResize).
    const window = { left: cropLeft, top: cropTop, width: cropW, height: cropH };
    const image = pilResize(img, size.width, size.height, resample, window, canvas);
    return { image, scaleX, scaleY, cropLeft, cropTop };
  }
  // Rare: crop larger than the resized image along some axis. Replicate HF's zero padding.
  const resized = pilResize(img, size.width, size.height, resample, undefined, canvas);
  const padX = cropW > size.width ? Math.ceil((cropW - size.width) / 2) : 0;
  const padY = cropH > size.height ? Math.ceil((cropH - size.height) / 2) : 0;
  const offX = Math.max(0, cropLeft + padX) - padX; // resized x = output x + offX
  const offY = Math.max(0, cropTop + padY) - padY;
  const data = new Uint8Array(cropW * cropH * 3); // zeros outside the image, like np.zeros_like
  for (let y = 0; y < cropH; y++) {
    const sy = y + offY;
    if (sy < 0 || sy >= size.height) continue;
    for (let x = 0; x < cropW; x++) {
      const sx = x + offX;
      if (sx < 0 || sx >= size.width) continue;
      const s = (sy * size.width + sx) * 3;
      const d = (y * cropW + x) * 3;
      data[d] = resized.data[s];
      data[d + 1] = resized.data[s + 1];
      data[d + 2] = resized.data[s + 2];
    }
  }
  return { image: { data, width: cropW, height: cropH }, scaleX, scaleY, cropLeft: offX, cropTop: offY };
}

/** Pad / resize / crop a decoded image to the model's input size; u8 result plus geometry. */
export function geometricPreprocess(img: DecodedImage, cfg: PreprocessConfig): { image: RgbImage; geometry: ImageGeometry } {
  const resample = cfg.resample ?? Resample.BICUBIC;
  const src: RgbImage = { data: img.rgb, width: img.width, height: img.height };
  const canvas = cfg.mode === 'pad' ? squareCanvas(src, cfg.padColor ?? defaultPadColor(cfg.mean)) : identityCanvas(src);
  let image: RgbImage;
  let scaleX: number;
  let scaleY: number;
  let cropLeft = 0;
  let cropTop = 0;
  // 'crop' always, and 'pad' when the processor is a shortest-edge + crop one (CLIP, as LLaVA-1.5).
  if (cfg.mode === 'crop' || (cfg.mode === 'pad' && cfg.shortestEdge !== undefined)) {
    const shortest = cfg.shortestEdge ?? Math.min(cfg.width, cfg.height);
    const r = resizeAndCenterCrop(src, canvas, shortest, cfg.width, cfg.height, resample);
    ({ image, scaleX, scaleY, cropLeft, cropTop } = r);
  } else {
    image = pilResize(src, cfg.width, cfg.height, resample, undefined, canvas);
    scaleX = cfg.width / canvas.width;
    scaleY = cfg.height / canvas.height;
  }
  const geometry: ImageGeometry = {
    mode: cfg.mode,
    originalWidth: img.width,
    originalHeight: img.height,
    inputWidth: image.width,
    inputHeight: image.height,
    padLeft: canvas.left,
    padTop: canvas.top,
    scaleX,
    scaleY,
    cropLeft,
    cropTop,
  };
  return { image, geometry };
}

/**
 * u8 HWC -> f32 CHW, `(x * rescaleFactor - mean) / std`, rounded like transformers does it:
 * rescale in float64 then cast to float32, then (x - mean) / std in float32.
 */
export function normalizeToChw(image: RgbImage, cfg: Pick<PreprocessConfig, 'mean' | 'std' | 'rescaleFactor'>): Float32Array {
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane); // [3, H, W] f32
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(cfg.mean[c]);
    const std = Math.fround(cfg.std[c]);
    // One lookup table per channel: 256 possible inputs.
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(v * cfg.rescaleFactor) - mean) / std;
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = lut[image.data[i * 3 + c]];
  }
  return out;
}

/** Decode (unless already preprocessed), pad/resize/crop like the training-time processor, normalise. */
export async function preprocessImage(
  input: ImageInput,
  cfg: PreprocessConfig,
  limits?: ImageLimits,
): Promise<PreprocessedImage> {
  if ('preprocessed' in input) {
    const expected = 3 * cfg.width * cfg.height;
    if (input.preprocessed.pixelValues.length !== expected) {
      throw new ImageDecodeError(
        sourceName(input),
        `preprocessed pixel values have ${input.preprocessed.pixelValues.length} elements, the model needs 3x${cfg.height}x${cfg.width} = ${expected}`,
      );
    }
    return input.preprocessed;
  }
  const decoded = await decodeImage(input, limits);
  const { image, geometry } = geometricPreprocess(decoded, cfg);
  return { pixelValues: normalizeToChw(image, cfg), geometry: decoded.original ? inOriginalPixels(geometry, decoded.original) : geometry };
}

/**
 * The geometry of a downscaled copy restated for the original image: a copy pixel is an original one
 * times r (r = copy / original per axis), so inputX = (x * r + padLeft) * scaleX - cropLeft
 * = (x + padLeft / r) * (scaleX * r) - cropLeft. Boxes then land on the image the user sees.
 */
export function inOriginalPixels(g: ImageGeometry, original: { width: number; height: number }): ImageGeometry {
  const rx = g.originalWidth / original.width;
  const ry = g.originalHeight / original.height;
  return {
    ...g,
    originalWidth: original.width,
    originalHeight: original.height,
    downscaledTo: { width: g.originalWidth, height: g.originalHeight },
    padLeft: g.padLeft / rx,
    padTop: g.padTop / ry,
    scaleX: g.scaleX * rx,
    scaleY: g.scaleY * ry,
  };
}

// ---------------------------------------------------------------- preprocessor_config.json

function num(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function positiveInt(key: string, v: unknown): number {
  if (!num(v) || !Number.isInteger(v) || v < 1) throw new Error(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function triple(json: Record<string, unknown>, key: string): [number, number, number] {
  const v = json[key];
  if (v === undefined || v === null) throw new Error(`missing "${key}" (needed unless do_normalize is false)`);
  if (num(v)) return [v, v, v]; // transformers broadcasts a single float
  if (Array.isArray(v) && v.length === 3 && v.every(num)) return [v[0], v[1], v[2]];
  throw new Error(`"${key}" must be 3 numbers, got ${JSON.stringify(v)}`);
}

/** A size entry: {shortest_edge} | {height, width} | a plain number (meaning depends on the processor). */
function sizeEntry(json: Record<string, unknown>, key: string): { shortest?: number; hw?: { width: number; height: number }; plain?: number } | undefined {
  const v = json[key];
  if (v === undefined || v === null) return undefined;
  if (num(v)) return { plain: positiveInt(key, v) };
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`"${key}" must be a number or an object, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  if (o.height !== undefined || o.width !== undefined) {
    return { hw: { width: positiveInt(`${key}.width`, o.width), height: positiveInt(`${key}.height`, o.height) } };
  }
  if (o.shortest_edge !== undefined) return { shortest: positiveInt(`${key}.shortest_edge`, o.shortest_edge) };
  throw new Error(`"${key}" has neither shortest_edge nor height/width: ${JSON.stringify(v)}`);
}

/**
 * Map a Hub `preprocessor_config.json` (CLIPImageProcessor, SiglipImageProcessor,
 * LlavaOnevisionImageProcessor, ...) to a PreprocessConfig. Default mode: 'crop' when the
 * processor centre-crops, else 'resize'; `opts.mode` (the catalog, or `image_aspect_ratio: "pad"`
 * of an original LLaVA config) overrides. Throws an Error naming the missing or invalid key.
 */
export function preprocessConfigFromHub(
  json: Record<string, unknown>,
  opts: { mode?: PreprocessMode } = {},
): PreprocessConfig {
  const size = sizeEntry(json, 'size');
  const cropEntry = sizeEntry(json, 'crop_size');
  if (!size && !cropEntry) throw new Error('missing "size" (and no "crop_size")');
  const doCrop = json.do_center_crop === undefined ? cropEntry !== undefined : json.do_center_crop === true;

  // A plain-number size means shortest edge for processors that crop (CLIP's default_to_square=False),
  // a square otherwise (SigLIP's default_to_square=True).
  const shortest = size?.shortest ?? (size?.plain !== undefined && doCrop ? size.plain : undefined);
  const sizeHW = size?.hw ?? (size?.plain !== undefined && !doCrop ? { width: size.plain, height: size.plain } : undefined);
  const crop = cropEntry?.hw ?? (cropEntry?.plain !== undefined ? { width: cropEntry.plain, height: cropEntry.plain } : undefined);
  const square = (s: number | undefined) => (s !== undefined ? { width: s, height: s } : undefined);

  const mode: PreprocessMode = opts.mode ?? (doCrop && shortest !== undefined ? 'crop' : 'resize');
  let out: { width: number; height: number } | undefined;
  let shortestEdge: number | undefined;
  if (mode === 'crop') {
    shortestEdge = shortest ?? (sizeHW ? Math.min(sizeHW.width, sizeHW.height) : undefined);
    out = crop ?? square(shortestEdge);
  } else if (mode === 'pad' && shortest !== undefined) {
    // expand2square then the CLIP path: a square resized to S (and a crop that is then a no-op or smaller).
    shortestEdge = shortest;
    out = (doCrop ? crop : undefined) ?? square(shortest);
  } else {
    out = sizeHW ?? crop ?? square(shortest);
  }
  if (!out) throw new Error(`cannot derive the model input size for mode '${mode}' from "size"/"crop_size"`);
  if (mode !== 'crop' && mode !== 'resize' && mode !== 'pad') throw new Error(`unknown preprocess mode ${JSON.stringify(mode)}`);

  const doRescale = json.do_rescale !== false;
  let rescaleFactor = 1;
  if (doRescale) {
    const r = json.rescale_factor ?? 1 / 255;
    if (!num(r) || r <= 0) throw new Error(`"rescale_factor" must be a positive number, got ${JSON.stringify(r)}`);
    rescaleFactor = r;
  }
  const doNormalize = json.do_normalize !== false;
  // No defaults for mean/std: they differ per processor class (CLIP's vs 0.5), so a missing one is an error.
  const mean = doNormalize ? triple(json, 'image_mean') : ([0, 0, 0] as [number, number, number]);
  const std = doNormalize ? triple(json, 'image_std') : ([1, 1, 1] as [number, number, number]);
  if (std.some((s) => s === 0)) throw new Error(`"image_std" must not contain 0, got ${JSON.stringify(std)}`);
  const resample = json.resample ?? Resample.BICUBIC;
  if (!num(resample) || !Number.isInteger(resample) || resample < 0 || resample > 5) {
    throw new Error(`"resample" must be a Pillow filter number 0..5, got ${JSON.stringify(resample)}`);
  }

  const cfg: PreprocessConfig = { mode, width: out.width, height: out.height, mean, std, rescaleFactor, resample };
  if (shortestEdge !== undefined) cfg.shortestEdge = shortestEdge;
  return cfg;
}
