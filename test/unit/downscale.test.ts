// Asking about a downscaled copy of an image over the pixel limit (issue 15, item 8): without
// `downscale` the engine refuses with a message the host words as "9,000 × 8,000 px (72 MP) is over
// the 64 MP limit"; with it the engine decodes a copy whose longest side is 4096 px, reports the
// copy's size in the geometry (which still maps onto the original), and a decompression bomb is still
// refused. The original bytes are never changed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { ImageTooLargeError } from '../../src/core/errors';
import type { ChatTurn, GenerationEvent, ImageGeometry } from '../../src/core/types';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { DOWNSCALE_SIDE, decodeImage, geometricPreprocess, preprocessImage } from '../../src/engine/preprocess';
import { askFailureGuidance, imageTooLargeInWords } from '../../src/extension/guidance';
import { ensureFixtures } from '../fixtures/index';

/** 9000 x 8000 = 72 MP: left half dark red, right half light blue (flat areas compress to a few KB). */
async function bigPng(): Promise<Uint8Array> {
  const half = await sharp({ create: { width: 4500, height: 8000, channels: 3, background: { r: 30, g: 200, b: 240 } } }).png().toBuffer();
  const png = await sharp({ create: { width: 9000, height: 8000, channels: 3, background: { r: 140, g: 10, b: 20 } }, limitInputPixels: false })
    .composite([{ input: half, left: 4500, top: 0, limitInputPixels: false }])
    .png({ compressionLevel: 9 })
    .toBuffer();
  return new Uint8Array(png);
}

/** A real 1x1 PNG whose header is rewritten to claim width x height (CRC fixed): nothing behind it. */
async function pngClaiming(width: number, height: number): Promise<Uint8Array> {
  const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer());
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
  return new Uint8Array(png);
}

async function rejectsTooLarge(p: Promise<unknown>, pattern: RegExp): Promise<ImageTooLargeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ImageTooLargeError, `expected ImageTooLargeError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail('expected a rejection');
}

const TINY = { mode: 'pad', width: 84, height: 84, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescaleFactor: 1 / 255 } as const;

/** original pixel -> model input pixel (ImageGeometry's documented formula) */
const toInput = (g: ImageGeometry, x: number, y: number) => [(x + g.padLeft) * g.scaleX - g.cropLeft, (y + g.padTop) * g.scaleY - g.cropTop];

describe('downscaled copies of over-limit images', () => {
  let big: Uint8Array;
  let bigCopy: Uint8Array;

  before(async () => {
    big = await bigPng();
    bigCopy = big.slice();
  });

  test('without downscale: refused, and the host words it with formatted numbers', async () => {
    const err = await rejectsTooLarge(decodeImage({ bytes: big, name: 'poster.png' }), /^poster\.png: 9000x8000 \(72000000 pixels\) exceeds the limit of 64000000 pixels$/);
    assert.equal(
      imageTooLargeInWords(err.message),
      '**poster.png is too large:** 9,000 × 8,000 px (72 MP) is over the 64 MP limit. Scale it down and ask again.',
    );
    // the chat (which shows the image) offers a copy; elsewhere the words stay as they were
    assert.deepEqual(askFailureGuidance(err, 'auto').actions, []);
    const g = askFailureGuidance(err, 'auto', true, { offerDownscale: true });
    assert.deepEqual(g.actions.map((a) => a.id), ['askDownscaled']);
    assert.equal(g.actions[0].label, 'Ask About a Downscaled Copy');
    assert.match(g.text, /9,000 × 8,000 px \(72 MP\) is over the 64 MP limit\. The model can look at a smaller copy instead; the file is not changed\.$/);
  });

  test('with downscale: a 4096 x 3641 copy, aspect kept, original untouched', async () => {
    const d = await decodeImage({ bytes: big, name: 'poster.png', downscale: true });
    assert.equal(d.width, DOWNSCALE_SIDE);
    assert.equal(d.height, Math.round((8000 * 4096) / 9000)); // 3641
    assert.deepEqual(d.original, { width: 9000, height: 8000 });
    assert.equal(d.rgb.length, d.width * d.height * 3);
    // the colours survive (left dark red, right light blue), not a black or mixed image
    const px = (x: number, y: number) => Array.from(d.rgb.subarray((y * d.width + x) * 3, (y * d.width + x) * 3 + 3));
    assert.deepEqual(px(100, 100), [140, 10, 20]);
    assert.deepEqual(px(4000, 3000), [30, 200, 240]);
    assert.deepEqual(big, bigCopy, 'the caller\'s bytes are not modified');
  });

  test('an image within the limits is decoded as it is even with downscale', async () => {
    const small = new Uint8Array(await sharp({ create: { width: 300, height: 200, channels: 3, background: '#123456' } }).png().toBuffer());
    const d = await decodeImage({ bytes: small, name: 'small.png', downscale: true });
    assert.equal(d.width, 300);
    assert.equal(d.original, undefined);
    const p = await preprocessImage({ bytes: small, name: 'small.png', downscale: true }, { ...TINY, mean: [...TINY.mean], std: [...TINY.std] });
    assert.equal(p.geometry.downscaledTo, undefined);
  });

  test('a decompression bomb is still refused with downscale; so is a side past the hard ceiling', async () => {
    await rejectsTooLarge(decodeImage({ bytes: await pngClaiming(100_000, 100_000), name: 'bomb.png', downscale: true }), /even for a downscaled copy/);
    await rejectsTooLarge(decodeImage({ bytes: await pngClaiming(200_000, 4_000), name: 'long.png', downscale: true }), /a side longer than 131072 pixels, even for a downscaled copy/);
    // the aspect-ratio bound is about the shape, which a copy keeps: still refused
    await rejectsTooLarge(decodeImage({ bytes: await pngClaiming(40_000, 100), name: 'ribbon.png', downscale: true }), /aspect ratio over 100:1/);
  });

  test('a side over the longest-side limit is downscaled too', async () => {
    const wide = new Uint8Array(await sharp({ create: { width: 2000, height: 500, channels: 3, background: '#808080' } }).png().toBuffer());
    await rejectsTooLarge(decodeImage({ bytes: wide, name: 'wide.png' }, { maxSide: 1000 }), /a side longer than 1000 pixels/);
    const d = await decodeImage({ bytes: wide, name: 'wide.png', downscale: true }, { maxSide: 1000 });
    assert.deepEqual([d.width, d.height], [1000, 250]);
    assert.deepEqual(d.original, { width: 2000, height: 500 });
  });

  test('EXIF orientation: the copy and the original size are upright; within a smaller pixel limit the copy fits it', async () => {
    const jpeg = new Uint8Array(
      await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#a0a0a0' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    );
    const d = await decodeImage({ bytes: jpeg, name: 'turned.jpg', downscale: true }, { maxPixels: 500_000 });
    assert.deepEqual(d.original, { width: 1000, height: 1200 });
    assert.ok(d.width * d.height <= 500_000, `${d.width}x${d.height} fits 500,000 pixels`);
    assert.ok(d.height > d.width, 'upright: taller than wide');
    assert.ok(Math.abs(d.width / d.height - 1000 / 1200) < 0.01, 'aspect kept');
  });

  test('the geometry refers to the original image: boxes land on what the user sees', async () => {
    const cfg = { ...TINY, mean: [...TINY.mean] as [number, number, number], std: [...TINY.std] as [number, number, number] };
    const p = await preprocessImage({ bytes: big, name: 'poster.png', downscale: true }, cfg);
    const g = p.geometry;
    assert.deepEqual([g.originalWidth, g.originalHeight], [9000, 8000]);
    assert.deepEqual(g.downscaledTo, { width: 4096, height: 3641 });
    // the same input pixels as preprocessing the copy itself, whose geometry is in copy pixels
    const copy = await decodeImage({ bytes: big, name: 'poster.png', downscale: true });
    const direct = geometricPreprocess(copy, cfg).geometry;
    for (const [x, y] of [
      [0, 0],
      [9000, 8000],
      [4500, 4000],
    ]) {
      const [cx, cy] = [(x * 4096) / 9000, (y * 3641) / 8000];
      const a = toInput(g, x, y);
      const b = toInput(direct, cx, cy);
      assert.ok(Math.abs(a[0] - b[0]) < 1e-9 && Math.abs(a[1] - b[1]) < 1e-9, `(${x}, ${y}) -> ${a} vs ${b}`);
    }
  });

  describe('on the tiny model', () => {
    let model: LlavaModel;
    before(async () => {
      const [dir] = await ensureFixtures(['tiny-llava']);
      model = await loadModel(dir, { provider: 'cpu', variant: 'fp32' });
    });
    after(async () => model?.dispose());

    async function answer(turns: ChatTurn[]) {
      let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
      for await (const ev of model.generate(turns, { maxNewTokens: 6 })) if (ev.type === 'done') done = ev;
      assert.ok(done);
      return done;
    }

    test('fails without downscale; answers with it, exactly as about the copy itself', async () => {
      await rejectsTooLarge(answer([{ role: 'user', text: 'What is this?', images: [{ bytes: big, name: 'poster.png' }] }]), /72000000 pixels/);
      const done = await answer([{ role: 'user', text: 'What is this?', images: [{ bytes: big, name: 'poster.png', downscale: true }] }]);
      assert.equal(done.stats.newTokens, 6);
      assert.deepEqual(done.images?.[0].downscaledTo, { width: 4096, height: 3641 });
      assert.equal(done.images?.[0].originalWidth, 9000);
      // the copy, saved losslessly and asked about as an ordinary image, gives the same tokens
      const copy = await decodeImage({ bytes: big, name: 'poster.png', downscale: true });
      const copyPng = new Uint8Array(await sharp(Buffer.from(copy.rgb), { raw: { width: copy.width, height: copy.height, channels: 3 } }).png().toBuffer());
      const same = await answer([{ role: 'user', text: 'What is this?', images: [{ bytes: copyPng, name: 'copy.png' }] }]);
      assert.deepEqual(done.stats.tokenIds, same.stats.tokenIds);
    });
  });
});
