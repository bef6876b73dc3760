// Preprocessing against PIL: reference outputs were made once with Debian's Pillow by
// test/reference/make_reference.py (committed; CI does not run Python). The Python side is the
// independent oracle: it runs the training-time steps (Image.resize BICUBIC, HF's crop rule,
// LLaVA's expand2square) with PIL itself.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { FileRefusedError, ImageDecodeError, ImageTooLargeError } from '../../src/core/errors';
import { pilResize, type RgbImage } from '../../src/engine/pilResize';
import {
  decodeImage,
  defaultPadColor,
  geometricPreprocess,
  normalizeToChw,
  preprocessConfigFromHub,
  preprocessImage,
  shortestEdgeSize,
} from '../../src/engine/preprocess';
import type { PreprocessConfig, PreprocessedImage } from '../../src/core/types';

const ROOT = path.resolve(__dirname, '../..');
const SAMPLES = path.join(ROOT, 'media/samples');
const REF = path.join(ROOT, 'test/reference/data');

interface RefCase {
  image: string;
  mode: 'crop' | 'resize' | 'pad';
  file: string;
  width: number;
  height: number;
  shortestEdge?: number;
  originalWidth: number;
  originalHeight: number;
  resizedWidth?: number;
  resizedHeight?: number;
  cropLeft?: number;
  cropTop?: number;
  padLeft?: number;
  padTop?: number;
  side?: number;
  padColor?: [number, number, number];
}
const reference = JSON.parse(readFileSync(path.join(REF, 'reference.json'), 'utf8')) as {
  clipMean: [number, number, number];
  cases: RefCase[];
  filterSource: { file: string };
  filters: { file: string; resample: number; width: number; height: number }[];
  exifRotated: { image: string; storedWidth: number; storedHeight: number; uprightWidth: number; uprightHeight: number };
};

// llava-hf/llava-1.5-7b-hf's real preprocessor_config.json (CLIPImageProcessor), from test/data/real-configs.
const CLIP_PREPROCESSOR: Record<string, unknown> = JSON.parse(
  readFileSync(path.join(__dirname, '..', 'data', 'real-configs', 'llava-1.5-7b-hf', 'preprocessor_config.json'), 'utf8'),
);

async function readRgb(file: string): Promise<RgbImage> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

function diffStats(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  assert.equal(a.length, b.length, 'same number of samples');
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

function configFor(c: RefCase): PreprocessConfig {
  const base = preprocessConfigFromHub(CLIP_PREPROCESSOR, { mode: c.mode });
  return c.mode === 'resize' ? { ...base, width: c.width, height: c.height } : base;
}

for (const c of reference.cases) {
  test(`${c.image} ${c.mode} ${c.width}x${c.height} matches PIL (mean abs <= 0.5, max <= 4)`, async () => {
    const decoded = await decodeImage({ path: path.join(SAMPLES, c.image) });
    assert.deepEqual([decoded.width, decoded.height], [c.originalWidth, c.originalHeight]);
    const cfg = configFor(c);
    const { image, geometry } = geometricPreprocess(decoded, cfg);
    const ref = await readRgb(path.join(REF, c.file));
    assert.deepEqual([image.width, image.height], [ref.width, ref.height]);
    const d = diffStats(image.data, ref.data);
    console.log(`  ${c.file}: mean abs diff ${d.mean.toFixed(4)}, max ${d.max}`);
    assert.ok(d.mean <= 0.5, `mean abs diff ${d.mean}`);
    assert.ok(d.max <= 4, `max abs diff ${d.max}`);

    // Geometry, from the facts PIL's script recorded.
    assert.deepEqual([geometry.inputWidth, geometry.inputHeight], [c.width, c.height]);
    assert.equal(geometry.padLeft, c.padLeft ?? 0);
    assert.equal(geometry.padTop, c.padTop ?? 0);
    assert.equal(geometry.cropLeft, c.cropLeft ?? 0);
    assert.equal(geometry.cropTop, c.cropTop ?? 0);
    const frameW = c.side ?? c.originalWidth;
    const frameH = c.side ?? c.originalHeight;
    assert.equal(geometry.scaleX, (c.resizedWidth ?? c.width) / frameW);
    assert.equal(geometry.scaleY, (c.resizedHeight ?? c.height) / frameH);

    // The normalised tensor is (u8 * rescale - mean) / std in CHW. Expected values come from the
    // reference u8 in float64; where our u8 differs the tolerance widens by exactly that step.
    const pre = await preprocessImage({ path: path.join(SAMPLES, c.image) }, cfg);
    assert.deepEqual(pre.geometry, geometry);
    const plane = c.width * c.height;
    let worst = 0;
    for (let ch = 0; ch < 3; ch++) {
      for (let i = 0; i < plane; i++) {
        const refU8 = ref.data[i * 3 + ch];
        const expected = (refU8 * cfg.rescaleFactor - cfg.mean[ch]) / cfg.std[ch];
        const slack = (Math.abs(image.data[i * 3 + ch] - refU8) * cfg.rescaleFactor) / cfg.std[ch];
        const err = Math.abs(pre.pixelValues[ch * plane + i] - expected) - slack;
        if (err > worst) worst = err;
      }
    }
    assert.ok(worst <= 1e-6, `normalised value off by ${worst}`);
  });
}

test('geometry: original corners and centre land where the mode puts them', async () => {
  const cfgOf = (mode: 'crop' | 'pad' | 'resize') => configFor({ mode, width: 384, height: 384 } as RefCase);
  for (const [name, w, h] of [['screenshot.png', 1600, 900], ['tall.png', 500, 1400]] as const) {
    const decoded = await decodeImage({ path: path.join(SAMPLES, name) });
    const map = (g: ReturnType<typeof geometricPreprocess>['geometry'], x: number, y: number) => [
      (x + g.padLeft) * g.scaleX - g.cropLeft,
      (y + g.padTop) * g.scaleY - g.cropTop,
    ];
    // pad: the long side spans the whole input, the short side is centred.
    const pad = geometricPreprocess(decoded, cfgOf('pad')).geometry;
    const [x0, y0] = map(pad, 0, 0);
    const [x1, y1] = map(pad, w, h);
    const long = Math.max(w, h);
    const S = 336;
    if (w > h) {
      assert.deepEqual([x0, x1], [0, S]);
      assert.ok(Math.abs(y0 - ((long - h) / 2 / long) * S) <= S / long, `top ${y0}`);
      assert.ok(Math.abs(S - y1 - y0) <= S / long, 'vertically centred');
    } else {
      assert.deepEqual([y0, y1], [0, S]);
      assert.ok(Math.abs(S - x1 - x0) <= S / long, 'horizontally centred');
    }
    // crop: the short side spans the input; the centre of the image is the centre of the input.
    const crop = geometricPreprocess(decoded, cfgOf('crop')).geometry;
    const [cx, cy] = map(crop, w / 2, h / 2);
    assert.ok(Math.abs(cx - S / 2) <= 0.5 && Math.abs(cy - S / 2) <= 0.5, `centre -> ${cx},${cy}`);
    const [sx0, sy0] = map(crop, 0, 0);
    const [sx1, sy1] = map(crop, w, h);
    if (w > h) assert.deepEqual([sy0, sy1], [0, S]);
    else assert.deepEqual([sx0, sx1], [0, S]);
    // resize: corners to corners.
    const rs = geometricPreprocess(decoded, { ...cfgOf('resize'), width: 384, height: 384 }).geometry;
    assert.deepEqual([...map(rs, 0, 0), ...map(rs, w, h)], [0, 0, 384, 384]);
  }
});

test('pad: rows wholly above the image are the CLIP mean colour (122,116,104)', async () => {
  assert.deepEqual(defaultPadColor(reference.clipMean), [122, 116, 104]);
  const decoded = await decodeImage({ path: path.join(SAMPLES, 'screenshot.png') });
  const { image, geometry } = geometricPreprocess(decoded, preprocessConfigFromHub(CLIP_PREPROCESSOR, { mode: 'pad' }));
  const imageTop = geometry.padTop * geometry.scaleY; // 73.5 for 1600x900 -> 336
  // the bicubic support when shrinking by 1600/336 reaches ~2 output rows
  const clearRows = Math.floor(imageTop) - 3;
  assert.ok(clearRows > 60);
  for (let i = 0; i < clearRows * image.width; i++) {
    assert.deepEqual(Array.from(image.data.subarray(i * 3, i * 3 + 3)), [122, 116, 104]);
  }
});

test('filters: every Pillow filter, shrinking and enlarging, is bit-exact', async () => {
  // Same integer arithmetic on the same u8 input: there is no legitimate source of difference.
  const src = await readRgb(path.join(REF, reference.filterSource.file));
  for (const f of reference.filters) {
    const out = pilResize(src, f.width, f.height, f.resample);
    const ref = await readRgb(path.join(REF, f.file));
    assert.deepEqual(diffStats(out.data, ref.data), { mean: 0, max: 0 }, f.file);
  }
});

test('a window of the output equals the same crop of the full resize', () => {
  const src = { data: new Uint8Array(97 * 53 * 3).map((_, i) => (i * 2654435761) >>> 24), width: 97, height: 53 };
  for (const [w, h] of [[40, 20], [150, 90], [97, 31], [22, 53]]) {
    const full = pilResize(src, w, h);
    const win = { left: 3, top: 2, width: w - 5, height: h - 4 };
    const part = pilResize(src, w, h, 3, win);
    for (let y = 0; y < win.height; y++) {
      const a = full.data.subarray(((y + win.top) * w + win.left) * 3, ((y + win.top) * w + win.left + win.width) * 3);
      assert.deepEqual(part.data.subarray(y * win.width * 3, (y + 1) * win.width * 3), a);
    }
  }
});

test('why this exists: sharp affine bicubic (transformers.js in Node) is outside the tolerance', async () => {
  const decoded = await decodeImage({ path: path.join(SAMPLES, 'screenshot.png') });
  const ref = await readRgb(path.join(REF, 'screenshot.resize384.png'));
  const { data, info } = await sharp(decoded.rgb, { raw: { width: decoded.width, height: decoded.height, channels: 3 } })
    .affine([384 / decoded.width, 0, 0, 384 / decoded.height], { interpolator: 'bicubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  // libvips may round the output size; compare the common 383x383 corner at least.
  const n = Math.min(info.width, info.height, 383);
  const a = new Uint8Array(n * n * 3);
  const b = new Uint8Array(n * n * 3);
  for (let y = 0; y < n; y++) {
    a.set(data.subarray(y * info.width * 3, (y * info.width + n) * 3), y * n * 3);
    b.set(ref.data.subarray(y * 384 * 3, (y * 384 + n) * 3), y * n * 3);
  }
  const d = diffStats(a, b);
  console.log(`  sharp affine vs PIL on the screenshot: mean abs diff ${d.mean.toFixed(3)}, max ${d.max}`);
  assert.ok(d.mean > 0.5 || d.max > 4, 'sharp affine would pass the tolerance');
});

test('shortest-edge size truncates like transformers', () => {
  assert.deepEqual(shortestEdgeSize(1600, 900, 336), { width: 597, height: 336 }); // 597.33
  assert.deepEqual(shortestEdgeSize(500, 1400, 336), { width: 336, height: 940 }); // 940.8
  assert.deepEqual(shortestEdgeSize(336, 336, 336), { width: 336, height: 336 });
});

// ---------------------------------------------------------------- decoding

test('EXIF orientation 6: decoded upright, width and height swapped', async () => {
  const e = reference.exifRotated;
  const meta = await sharp(path.join(SAMPLES, e.image)).metadata();
  assert.deepEqual([meta.width, meta.height, meta.orientation], [e.storedWidth, e.storedHeight, 6]);
  const img = await decodeImage({ path: path.join(SAMPLES, e.image) });
  assert.deepEqual([img.width, img.height], [e.uprightWidth, e.uprightHeight]);
  assert.deepEqual([img.width, img.height], [e.storedHeight, e.storedWidth]);
  // The sample has a red block at the upright top-left and a blue band at the bottom (JPEG: approx).
  const px = (x: number, y: number) => Array.from(img.rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
  const [r, g, b] = px(20, 20);
  assert.ok(r > 200 && g < 60 && b < 60, `top-left ${px(20, 20)}`);
  const [r2, g2, b2] = px(img.width / 2, img.height - 10);
  assert.ok(b2 > 200 && r2 < 60 && g2 < 60, `bottom ${px(img.width / 2, img.height - 10)}`);
});

test('alpha is composited over white: transparent -> white, black stays black, partial blends', async () => {
  const file = path.join(SAMPLES, 'diagram.png');
  const { data: rgba, info } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 4);
  const img = await decodeImage({ path: file });
  assert.deepEqual([img.width, img.height], [info.width, info.height]);
  let transparent = 0;
  let opaqueBlack = 0;
  let partial = 0;
  let worst = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    const a = rgba[i * 4 + 3] / 255;
    if (a === 0) transparent++;
    else if (a === 1 && rgba[i * 4] === 0) opaqueBlack++;
    else if (a < 1) partial++;
    for (let c = 0; c < 3; c++) {
      const expected = rgba[i * 4 + c] * a + 255 * (1 - a); // "over" on a white background
      worst = Math.max(worst, Math.abs(img.rgb[i * 3 + c] - expected));
    }
  }
  assert.ok(transparent > 0 && opaqueBlack > 0 && partial > 0, 'the sample has all three kinds of pixel');
  assert.ok(worst <= 1, `composite off by ${worst}`);
  assert.deepEqual(Array.from(img.rgb.subarray(0, 3)), [255, 255, 255]);
});

test('greyscale, grey+alpha, 16-bit, palette, CMYK, animated GIF and SVG become 8-bit RGB', async () => {
  const tall = await readRgb(path.join(SAMPLES, 'tall.png'));
  const raw = { raw: { width: tall.width, height: tall.height, channels: 3 as const } };
  const dec = (bytes: Buffer, name: string) => decodeImage({ bytes, name });

  const grey = await dec(await sharp(Buffer.alloc(40 * 30, 77), { raw: { width: 40, height: 30, channels: 1 } }).png().toBuffer(), 'grey.png');
  assert.equal(grey.rgb.length, 40 * 30 * 3);
  assert.ok(grey.rgb.every((v) => v === 77));

  const ga = Buffer.alloc(10 * 10 * 2);
  for (let i = 0; i < 100; i++) { ga[i * 2] = 0; ga[i * 2 + 1] = i < 50 ? 0 : 255; }
  const greyAlpha = await dec(await sharp(ga, { raw: { width: 10, height: 10, channels: 2 } }).png().toBuffer(), 'ga.png');
  assert.deepEqual(Array.from(greyAlpha.rgb.subarray(0, 3)), [255, 255, 255]); // transparent -> white
  assert.deepEqual(Array.from(greyAlpha.rgb.subarray(297, 300)), [0, 0, 0]); // opaque black

  const png16 = await sharp(tall.data, raw).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(png16).metadata()).depth, 'ushort');
  const d16 = await dec(png16, 'deep.png');
  assert.ok(diffStats(d16.rgb, tall.data).max <= 1, '16-bit -> 8-bit within rounding');

  const pal = await sharp(tall.data, raw).png({ palette: true, colours: 64 }).toBuffer();
  assert.equal((await sharp(pal).metadata()).isPalette, true);
  const dPal = await dec(pal, 'palette.png');
  assert.deepEqual([dPal.width, dPal.height], [tall.width, tall.height]);
  assert.ok(diffStats(dPal.rgb, tall.data).mean < 8, 'palette decode resembles the source');

  const red = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 230, g: 20, b: 20 } } })
    .toColourspace('cmyk').jpeg().toBuffer();
  assert.equal((await sharp(red).metadata()).space, 'cmyk');
  const dCmyk = await dec(red, 'cmyk.jpg');
  const [r, g, b] = dCmyk.rgb;
  assert.ok(r > 180 && g < 90 && b < 90, `CMYK red -> ${r},${g},${b}`);

  const frame = (rgb: { r: number; g: number; b: number }) =>
    sharp({ create: { width: 16, height: 12, channels: 3, background: rgb } }).png().toBuffer();
  const gif = await sharp([await frame({ r: 255, g: 0, b: 0 }), await frame({ r: 0, g: 0, b: 255 })], { join: { animated: true } })
    .gif().toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const dGif = await dec(gif, 'anim.gif');
  assert.deepEqual([dGif.width, dGif.height], [16, 12]); // first frame only, not the strip
  assert.ok(dGif.rgb[0] > 200 && dGif.rgb[2] < 60, 'first frame is the red one');

  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="12"><rect width="12" height="12"/></svg>');
  const dSvg = await decodeImage({ bytes: svg, name: 'icon.svg' }, { svgMaxSide: 512 });
  assert.deepEqual([dSvg.width, dSvg.height], [512, 256]);
  assert.deepEqual(Array.from(dSvg.rgb.subarray((100 * 512 + 50) * 3, (100 * 512 + 50) * 3 + 3)), [0, 0, 0]);
  assert.deepEqual(Array.from(dSvg.rgb.subarray((100 * 512 + 400) * 3, (100 * 512 + 400) * 3 + 3)), [255, 255, 255]);
  const hugeSvg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="200000" height="100000"><rect width="9" height="9"/></svg>');
  const dHuge = await decodeImage({ bytes: hugeSvg, name: 'huge.svg' }, { svgMaxSide: 300 });
  assert.deepEqual([dHuge.width, dHuge.height], [300, 150]);
});

/** A valid PNG signature + IHDR claiming width x height, with a tiny IDAT: no real pixels. */
function pngHeaderClaiming(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('errors are typed and never crash: not an image, truncated, corrupt, too large', async () => {
  const png = readFileSync(path.join(SAMPLES, 'screenshot.png'));
  const jpg = readFileSync(path.join(SAMPLES, 'photo.jpg'));
  const expectError = async (p: Promise<unknown>, type: typeof ImageDecodeError | typeof ImageTooLargeError | typeof FileRefusedError, label: string) => {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof type, `${label}: got ${String(err)}`);
      assert.match((err as Error).message, new RegExp(label.replace('.', '\\.')), 'message names the source');
      return true;
    });
  };
  await expectError(decodeImage({ bytes: Buffer.from('just some text, not pixels\n'), name: 'notes.txt' }), ImageDecodeError, 'notes.txt');
  await expectError(decodeImage({ bytes: new Uint8Array(0), name: 'empty.png' }), ImageDecodeError, 'empty.png');
  await expectError(decodeImage({ path: path.join(ROOT, 'package.json') }), ImageDecodeError, 'package.json');
  await expectError(decodeImage({ path: path.join(SAMPLES, 'no-such-file.png') }), FileRefusedError, 'no-such-file.png');
  // Truncated files must be errors, not images with grey rows.
  await expectError(decodeImage({ bytes: png.subarray(0, png.length >> 1), name: 'half.png' }), ImageDecodeError, 'half.png');
  await expectError(decodeImage({ bytes: png.subarray(0, png.length - 100), name: 'cut.png' }), ImageDecodeError, 'cut.png');
  await expectError(decodeImage({ bytes: jpg.subarray(0, jpg.length >> 1), name: 'half.jpg' }), ImageDecodeError, 'half.jpg');
  await expectError(decodeImage({ bytes: jpg.subarray(0, jpg.length - 100), name: 'cut.jpg' }), ImageDecodeError, 'cut.jpg');
  // Too large: a header claiming 100000x100000, a real image over a lowered pixel limit, a byte limit.
  await expectError(decodeImage({ bytes: pngHeaderClaiming(100000, 100000), name: 'bomb.png' }), ImageTooLargeError, 'bomb.png');
  await expectError(decodeImage({ path: path.join(SAMPLES, 'screenshot.png') }, { maxPixels: 1_000_000 }), ImageTooLargeError, 'screenshot.png');
  await expectError(decodeImage({ path: path.join(SAMPLES, 'photo.jpg') }, { maxBytes: 10_000 }), ImageTooLargeError, 'photo.jpg');
  await expectError(preprocessImage({ bytes: jpg.subarray(0, 500), name: 'stub.jpg' }, preprocessConfigFromHub(CLIP_PREPROCESSOR)), ImageDecodeError, 'stub.jpg');
  // The shape, not only the pixel count, bounded at header time: a 1 x 64,000,000 strip is refused.
  await expectError(decodeImage({ bytes: pngHeaderClaiming(1, 64_000_000), name: 'strip.png' }), ImageTooLargeError, 'strip.png');
  await expectError(decodeImage({ bytes: pngHeaderClaiming(40_000, 10), name: 'wide.png' }), ImageTooLargeError, 'wide.png');
  await expectError(decodeImage({ bytes: pngHeaderClaiming(20_000, 20), name: 'ribbon.png' }), ImageTooLargeError, 'ribbon.png');
  // Still alive and still decoding after all that.
  assert.equal((await decodeImage({ path: path.join(SAMPLES, 'tall.png') })).width, 500);
});

test('preprocessed input is passed through, after a size check', async () => {
  const cfg = preprocessConfigFromHub(CLIP_PREPROCESSOR);
  const pre: PreprocessedImage = {
    pixelValues: new Float32Array(3 * 336 * 336),
    geometry: {
      mode: 'crop', originalWidth: 336, originalHeight: 336, inputWidth: 336, inputHeight: 336,
      padLeft: 0, padTop: 0, scaleX: 1, scaleY: 1, cropLeft: 0, cropTop: 0,
    },
  };
  assert.equal(await preprocessImage({ preprocessed: pre }, cfg), pre);
  await assert.rejects(preprocessImage({ preprocessed: { ...pre, pixelValues: new Float32Array(10) }, name: 'x' }, cfg), ImageDecodeError);
});

// ---------------------------------------------------------------- preprocessor_config.json

test('preprocessConfigFromHub: CLIP (llava-1.5-hf), with the catalog choosing pad', () => {
  const crop = preprocessConfigFromHub(CLIP_PREPROCESSOR);
  assert.deepEqual(crop, {
    mode: 'crop', width: 336, height: 336, shortestEdge: 336,
    mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711],
    rescaleFactor: 0.00392156862745098, resample: 3,
  });
  const pad = preprocessConfigFromHub(CLIP_PREPROCESSOR, { mode: 'pad' });
  assert.deepEqual({ ...pad, mode: 'crop' }, crop);
  assert.equal(pad.mode, 'pad');
  // Old-style plain numbers: CLIP's size means shortest edge.
  const old = preprocessConfigFromHub({ ...CLIP_PREPROCESSOR, size: 224, crop_size: 224 });
  assert.deepEqual([old.mode, old.shortestEdge, old.width, old.height], ['crop', 224, 224, 224]);
});

test('preprocessConfigFromHub: SigLIP / LLaVA-OneVision style size {height, width} means resize', () => {
  const siglip = preprocessConfigFromHub({
    image_processor_type: 'SiglipImageProcessor', do_resize: true, size: { height: 384, width: 384 }, resample: 3,
    do_rescale: true, rescale_factor: 0.00392156862745098, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
  });
  assert.deepEqual(siglip, {
    mode: 'resize', width: 384, height: 384, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5],
    rescaleFactor: 0.00392156862745098, resample: 3,
  });
  const ov = preprocessConfigFromHub({
    image_processor_type: 'LlavaOnevisionImageProcessor', size: { height: 384, width: 384 }, do_pad: true,
    image_grid_pinpoints: [[384, 384]], image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 3,
    rescale_factor: 0.00392156862745098,
  });
  assert.deepEqual([ov.mode, ov.width, ov.height], ['resize', 384, 384]);
  assert.deepEqual(preprocessConfigFromHub({ ...siglip, size: 384, image_mean: 0.5, image_std: 0.5 }).mean, [0.5, 0.5, 0.5]);
  assert.equal(preprocessConfigFromHub({ size: 384, image_mean: 0.5, image_std: 0.5 }).width, 384);
  // pad without a shortest edge: expand2square then resize to size
  const padded = preprocessConfigFromHub({ size: { height: 384, width: 384 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] }, { mode: 'pad' });
  assert.deepEqual([padded.mode, padded.shortestEdge, padded.width, defaultPadColor(padded.mean)], ['pad', undefined, 384, [127, 127, 127]]);
  const noNorm = preprocessConfigFromHub({ size: 8, do_normalize: false, do_rescale: false });
  assert.deepEqual([noNorm.mean, noNorm.std, noNorm.rescaleFactor], [[0, 0, 0], [1, 1, 1], 1]);
});

test('preprocessConfigFromHub: errors name the missing or invalid key', () => {
  const bad = (json: Record<string, unknown>, key: RegExp) => assert.throws(() => preprocessConfigFromHub(json), key);
  const { size: _s, crop_size: _c, ...noSize } = CLIP_PREPROCESSOR;
  bad(noSize, /"size"/);
  bad({ ...CLIP_PREPROCESSOR, image_mean: [0.5, 0.5] }, /"image_mean"/);
  const { image_std: _std, ...noStd } = CLIP_PREPROCESSOR;
  bad(noStd, /"image_std"/);
  bad({ ...CLIP_PREPROCESSOR, resample: 9 }, /"resample"/);
  bad({ ...CLIP_PREPROCESSOR, size: {} }, /"size"/);
  bad({ ...CLIP_PREPROCESSOR, crop_size: { height: 0, width: 336 } }, /"crop_size.width"|"crop_size.height"/);
  bad({ ...CLIP_PREPROCESSOR, rescale_factor: 'x' }, /"rescale_factor"/);
});

test('normalizeToChw: CHW layout and float32 rounding like transformers (rescale f64 -> f32, then f32 ops)', () => {
  const img = { data: Uint8Array.from([0, 128, 255, 10, 20, 30]), width: 2, height: 1 };
  const cfg = { mean: [0.48145466, 0.4578275, 0.40821073] as [number, number, number], std: [0.26862954, 0.26130258, 0.27577711] as [number, number, number], rescaleFactor: 1 / 255 };
  const out = normalizeToChw(img, cfg);
  const f = Math.fround;
  const expect = (v: number, c: number) => f(f(f(v * cfg.rescaleFactor) - f(cfg.mean[c])) / f(cfg.std[c]));
  assert.deepEqual(Array.from(out), [expect(0, 0), expect(10, 0), expect(128, 1), expect(20, 1), expect(255, 2), expect(30, 2)]);
});

test('pilResize computes only the output window: a thin strip resized to billions of rows costs its window', () => {
  // 1 x 4000 strip -> shortest edge 336 gives 336 x 1,344,000 rows; the centre crop is 336 x 336.
  const src: RgbImage = { data: new Uint8Array(1 * 4000 * 3).map((_, i) => (i * 37) % 256), width: 1, height: 4000 };
  const top = Math.floor((1_344_000 - 336) / 2);
  const win = { left: 0, top, width: 336, height: 336 };
  const out = pilResize(src, 336, 1_344_000, 3, win);
  assert.equal(out.data.length, 336 * 336 * 3);
  // the same pixels as a small full resize over the same rows: compare against a resize of a window of a
  // shorter output computed fully (exactness of windows is covered by the reference tests; here: bounded work)
  const huge = pilResize({ data: new Uint8Array(3), width: 1, height: 1 }, 2, 3_000_000_000, 3, { left: 0, top: 1_500_000_000, width: 2, height: 2 });
  assert.equal(huge.data.length, 12);
});
