// Grounding: parsing boxes out of model text, and mapping them back through the preprocessing
// affine of types.ts (inputX = (x + padLeft) * scaleX - cropLeft). Geometries are built by hand
// from that convention so these tests do not depend on sharp or on preprocess.ts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseBoxes,
  boxToImagePixels,
  imagePixelsToModelFrame,
  isEmptyRect,
  findPrompt,
  describeRegionPrompt,
  formatRegion,
  type Box,
  type PixelRect,
  type ReferringPrompts,
} from '../../src/grounding/boxes';
import type { BoxFrame, ImageGeometry, PreprocessMode } from '../../src/core/types';

// ---------------------------------------------------------------------------------------------
// Hand-built geometries

const base = { padLeft: 0, padTop: 0, cropLeft: 0, cropTop: 0 };

/** original LLaVA expand2square: centre the image in a square of its long side, resize to `size` */
function padGeometry(w: number, h: number, size: number): ImageGeometry {
  const side = Math.max(w, h);
  const s = size / side;
  return { ...base, mode: 'pad', originalWidth: w, originalHeight: h, inputWidth: size, inputHeight: size,
    padLeft: (side - w) / 2, padTop: (side - h) / 2, scaleX: s, scaleY: s };
}

/** CLIP: shortest edge to `size`, centre crop size x size */
function cropGeometry(w: number, h: number, size: number): ImageGeometry {
  const s = size / Math.min(w, h);
  return { ...base, mode: 'crop', originalWidth: w, originalHeight: h, inputWidth: size, inputHeight: size,
    scaleX: s, scaleY: s, cropLeft: (w * s - size) / 2, cropTop: (h * s - size) / 2 };
}

/** SigLIP: straight resize, aspect ratio not kept */
function resizeGeometry(w: number, h: number, size: number): ImageGeometry {
  return { ...base, mode: 'resize', originalWidth: w, originalHeight: h, inputWidth: size, inputHeight: size,
    scaleX: size / w, scaleY: size / h };
}

const SIZES: Record<string, [number, number]> = { wide: [1600, 900], tall: [500, 1400], square: [800, 800] };
const MAKERS: Record<PreprocessMode, (w: number, h: number) => ImageGeometry> = {
  pad: (w, h) => padGeometry(w, h, 336),
  crop: (w, h) => cropGeometry(w, h, 336),
  resize: (w, h) => resizeGeometry(w, h, 384),
};
const FRAMES: BoxFrame[] = ['norm1', 'norm1000', 'input_pixels', 'loc_tokens'];

function closeRect(actual: PixelRect, expected: PixelRect, tol = 1e-6) {
  for (const k of ['x', 'y', 'width', 'height'] as const) {
    assert.ok(Math.abs(actual[k] - expected[k]) <= tol, `${k}: ${actual[k]} vs ${expected[k]} (tol ${tol})`);
  }
}

/** the part of the original image the model sees, in original pixels */
function visibleArea(g: ImageGeometry): PixelRect {
  const x0 = Math.max(0, g.cropLeft / g.scaleX - g.padLeft);
  const y0 = Math.max(0, g.cropTop / g.scaleY - g.padTop);
  const x1 = Math.min(g.originalWidth, (g.cropLeft + g.inputWidth) / g.scaleX - g.padLeft);
  const y1 = Math.min(g.originalHeight, (g.cropTop + g.inputHeight) / g.scaleY - g.padTop);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** seeded PRNG (mulberry32) so failures reproduce */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Parsing

describe('parseBoxes', () => {
  test('norm1: LLaVA-1.5 answer, label before the box, list items, x2<x1 swapped', () => {
    const t = 'The red button: [0.12, 0.30, 0.55, 0.81]\n- cat [0.6, 0.2, 0.4, 0.9]\n1. **Blue sky** is at [0.00, 0.00, 1.00, 0.35].';
    const r = parseBoxes(t, 'norm1');
    assert.deepEqual(r.map((b) => b.phrase), ['The red button', 'cat', 'Blue sky']);
    assert.deepEqual(r[0].box, [0.12, 0.3, 0.55, 0.81]);
    assert.deepEqual(r[1].box, [0.4, 0.2, 0.6, 0.9]);
    assert.equal(t.slice(r[0].start, r[0].end), '[0.12, 0.30, 0.55, 0.81]');
    assert.equal(t.slice(r[2].start, r[2].end), '[0.00, 0.00, 1.00, 0.35]');
  });

  test('labels leave out the words that link them to the box', () => {
    const t =
      'The cat is located in the region [0.10, 0.20, 0.30, 0.40]. A dog can be seen at coordinates [0.50, 0.50, 1.20, 1.10]. ' +
      'The lamp is positioned at [1.05, -0.10, 1.30, 0.20]; the red car = [0.1, 0.1, 0.2, 0.2]. The sign at the top left [0.0, 0.0, 0.1, 0.1]';
    assert.deepEqual(parseBoxes(t, 'norm1').map((b) => b.phrase), ['The cat', 'A dog', 'The lamp', 'the red car', 'The sign at the top left']);
  });

  test('norm1: a bare box (answer to the referring prompt) has an empty phrase', () => {
    const r = parseBoxes('[0.12, 0.30, 0.55, 0.81]', 'norm1');
    assert.equal(r.length, 1);
    assert.equal(r[0].phrase, '');
    assert.deepEqual([r[0].start, r[0].end], [0, 24]);
  });

  test('norm1: skips what cannot be a box', () => {
    const t = 'Counts [1, 2, 3, 4] and [0.1, 0.2, 0.3] and [NaN, 0.1, 0.2, 0.3] and [a link](http://x) and [2020, 5, 6, 7]';
    assert.deepEqual(parseBoxes(t, 'norm1'), []);
  });

  test('norm1000: Qwen2-VL special tokens with object_ref phrase', () => {
    const t = 'Here: <|object_ref_start|>the dog<|object_ref_end|><|box_start|>(123,456),(789,1000)<|box_end|> and more';
    const r = parseBoxes(t, 'norm1000');
    assert.equal(r.length, 1);
    assert.equal(r[0].phrase, 'the dog');
    assert.deepEqual(r[0].box, [123, 456, 789, 1000]);
    assert.equal(t.slice(r[0].start, r[0].end), '<|box_start|>(123,456),(789,1000)<|box_end|>');
  });

  test('norm1000: InternVL <ref>/<box> with nested list, plain lists, and point pairs', () => {
    const t = '<ref>a cup</ref><box>[[10, 20, 300, 400]]</box>\nThe plate: [500, 510, 520, 530]. Lamp (900,100),(850,50)';
    const r = parseBoxes(t, 'norm1000');
    assert.deepEqual(r.map((b) => b.phrase), ['a cup', 'The plate', 'Lamp']);
    assert.deepEqual(r.map((b) => b.box), [[10, 20, 300, 400], [500, 510, 520, 530], [850, 50, 900, 100]]);
    assert.equal(t.slice(r[0].start, r[0].end), '<box>[[10, 20, 300, 400]]</box>');
    assert.equal(t.slice(r[2].start, r[2].end), '(900,100),(850,50)');
  });

  test('norm1000: several boxes in one <box> list each get the ref phrase span of their own', () => {
    const r = parseBoxes('<ref>cats</ref><box>[[1,2,3,4],[5,6,7,8]]</box>', 'norm1000');
    assert.deepEqual(r.map((b) => b.box), [[1, 2, 3, 4], [5, 6, 7, 8]]);
    assert.deepEqual(r.map((b) => b.phrase), ['cats', 'cats']);
  });

  test('input_pixels: Qwen2.5-VL JSON with labels on either side of bbox_2d', () => {
    const t = '```json\n[\n  {"bbox_2d": [10, 20, 110, 220], "label": "cat"},\n  {"label": "dog \\"rex\\"", "bbox_2d": [300, 5, 250, 50]}\n]\n```';
    const r = parseBoxes(t, 'input_pixels');
    assert.deepEqual(r.map((b) => b.phrase), ['cat', 'dog "rex"']);
    assert.deepEqual(r.map((b) => b.box), [[10, 20, 110, 220], [250, 5, 300, 50]]);
  });

  test('loc_tokens: Florence-2 phrases, several boxes for one phrase, partial run skipped', () => {
    const t = '</s><s>car<loc_52><loc_333><loc_932><loc_774>door handle<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8>wheel<loc_9><loc_10></s>';
    const r = parseBoxes(t, 'loc_tokens');
    assert.deepEqual(r.map((b) => b.phrase), ['car', 'door handle', 'door handle']);
    assert.deepEqual(r.map((b) => b.box), [[52, 333, 932, 774], [1, 2, 3, 4], [5, 6, 7, 8]]);
    assert.equal(t.slice(r[0].start, r[0].end), '<loc_52><loc_333><loc_932><loc_774>');
  });

  test('streaming: every prefix yields a prefix of the final boxes and never throws', () => {
    const answers: [string, BoxFrame][] = [
      ['The red button: [0.12, 0.30, 0.55, 0.81], the cat [0.5, 0.5, 0.9, 0.95].', 'norm1'],
      ['<|object_ref_start|>dog<|object_ref_end|><|box_start|>(123,456),(789,1000)<|box_end|><|box_start|>(1,2),(3,4)<|box_end|>', 'norm1000'],
      ['[{"bbox_2d": [10, 20, 110, 220], "label": "cat"}, {"bbox_2d": [1, 2, 3, 4], "label": "x"}]', 'input_pixels'],
      ['car<loc_52><loc_333><loc_932><loc_774>dog<loc_1><loc_2><loc_3><loc_4>', 'loc_tokens'],
    ];
    for (const [full, frame] of answers) {
      const final = parseBoxes(full, frame).map((b) => b.box);
      assert.equal(final.length, 2, full);
      for (let n = 0; n <= full.length; n++) {
        const got = parseBoxes(full.slice(0, n), frame).map((b) => b.box);
        assert.deepEqual(got, final.slice(0, got.length), `prefix ${n} of ${full}`);
      }
    }
  });

  test('garbage never throws', () => {
    const next = rng(7);
    const alphabet = '[](),.0123456789-eE <>|/_{}":loc_boxstartNaN\n';
    for (let i = 0; i < 300; i++) {
      let s = '';
      const n = Math.floor(next() * 80);
      for (let k = 0; k < n; k++) s += alphabet[Math.floor(next() * alphabet.length)];
      for (const f of FRAMES) {
        for (const b of parseBoxes(s, f)) {
          assert.ok(b.box.every(Number.isFinite));
          assert.ok(b.box[0] <= b.box[2] && b.box[1] <= b.box[3]);
          assert.ok(b.start >= 0 && b.end <= s.length && b.start < b.end);
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Mapping

describe('boxToImagePixels', () => {
  test('pad, wide 1600x900: the whole input is the image without the padding bands', () => {
    const g = MAKERS.pad(1600, 900);
    assert.equal(g.padTop, 350);
    closeRect(boxToImagePixels([0, 0, 1, 1], 'norm1', g), { x: 0, y: 0, width: 1600, height: 900 });
    // the top half of the padded square is 800 px of which 350 are padding
    closeRect(boxToImagePixels([0, 0, 1, 0.5], 'norm1', g), { x: 0, y: 0, width: 1600, height: 450 });
    // centre maps to centre (padding is centred)
    closeRect(boxToImagePixels([0.5, 0.5, 0.5, 0.5], 'norm1', g), { x: 800, y: 450, width: 0, height: 0 });
  });

  test('pad, tall 500x1400: padding is on the left and right', () => {
    const g = MAKERS.pad(500, 1400);
    assert.equal(g.padLeft, 450);
    closeRect(boxToImagePixels([0.25, 0, 0.75, 1], 'norm1', g), { x: 0, y: 0, width: 500, height: 1400 });
  });

  test('a box entirely in the padding collapses to zero size', () => {
    const wide = MAKERS.pad(1600, 900);
    const r = boxToImagePixels([0.1, 0.02, 0.9, 0.1], 'norm1', wide); // top band: y < 350/1600
    assert.equal(r.height, 0);
    assert.ok(isEmptyRect(r));
    const tall = MAKERS.pad(500, 1400);
    const r2 = boxToImagePixels([800, 100, 950, 900], 'norm1000', tall); // right band: x > 950/1400
    assert.equal(r2.width, 0);
    assert.equal(r2.x, 500);
    assert.ok(isEmptyRect(r2));
    assert.ok(!isEmptyRect(boxToImagePixels([0.1, 0.3, 0.9, 0.7], 'norm1', wide)));
  });

  test('crop, wide 1600x900: the input is the centre 900x900 square', () => {
    const g = MAKERS.crop(1600, 900);
    assert.ok(g.cropLeft > 0);
    closeRect(boxToImagePixels([0, 0, 1, 1], 'norm1', g), { x: 350, y: 0, width: 900, height: 900 });
  });

  test('crop, tall 500x1400: the input is the centre 500x500 square', () => {
    const g = MAKERS.crop(500, 1400);
    closeRect(boxToImagePixels([0, 0, 1000, 1000], 'norm1000', g), { x: 0, y: 450, width: 500, height: 500 });
  });

  test('resize, wide: scaleX != scaleY and each axis maps on its own', () => {
    const g = MAKERS.resize(1600, 900);
    assert.notEqual(g.scaleX, g.scaleY);
    closeRect(boxToImagePixels([0.25, 0.5, 0.75, 1], 'norm1', g), { x: 400, y: 450, width: 800, height: 450 });
    // input pixels: 96 of 384 is a quarter
    closeRect(boxToImagePixels([96, 96, 288, 192], 'input_pixels', g), { x: 400, y: 225, width: 800, height: 225 });
  });

  test('loc_tokens: bins are dequantised to their centres', () => {
    const g = MAKERS.resize(1000, 1000);
    // 1000 bins over 1000 px: bin k covers [k, k+1), centre k + 0.5
    closeRect(boxToImagePixels([0, 10, 999, 20], 'loc_tokens', g), { x: 0.5, y: 10.5, width: 999, height: 10 });
  });

  test('out-of-range values clamp to the region the model saw (the crop), not to the whole image', () => {
    const wide = MAKERS.crop(1600, 900); // the model saw x 350..1250
    closeRect(boxToImagePixels([-0.3, 0.1, 1.4, 0.5], 'norm1', wide), { x: 350, y: 90, width: 900, height: 360 });
    closeRect(boxToImagePixels([1.1, 0.2, 1.3, 0.4], 'norm1', wide), { x: 1250, y: 180, width: 0, height: 180 });
    assert.ok(isEmptyRect(boxToImagePixels([1.1, 0.2, 1.3, 0.4], 'norm1', wide)), 'a box wholly right of the crop is dropped');
    const tall = MAKERS.crop(500, 1400); // y 450..950
    closeRect(boxToImagePixels([0, -500, 1000, 2000], 'norm1000', tall), { x: 0, y: 450, width: 500, height: 500 });
    for (const g of [wide, tall, MAKERS.pad(1600, 900), MAKERS.resize(1600, 900)]) {
      const seen = visibleArea(g);
      const r = boxToImagePixels([-1, -1, 2, 2], 'norm1', g);
      closeRect(r, seen, 1e-6);
    }
  });

  test('out-of-range values clamp to the image', () => {
    const g = MAKERS.pad(800, 800);
    closeRect(boxToImagePixels([-0.2, 0.5, 1.3, 1.2], 'norm1', g), { x: 0, y: 400, width: 800, height: 400 });
    closeRect(boxToImagePixels([-50, -50, 2000, 100], 'input_pixels', g), { x: 0, y: 0, width: 800, height: 100 / g.scaleY });
  });
});

describe('imagePixelsToModelFrame round trips', () => {
  for (const [sizeName, [w, h]] of Object.entries(SIZES)) {
    for (const mode of ['pad', 'crop', 'resize'] as PreprocessMode[]) {
      for (const frame of FRAMES) {
        test(`${mode} ${sizeName} ${frame}`, () => {
          const g = MAKERS[mode](w, h);
          const vis = visibleArea(g);
          const next = rng(w * 31 + h + FRAMES.indexOf(frame));
          // half of one frame unit, in original pixels, per axis: what rounding may cost
          const unit = (size: number) => (frame === 'norm1' ? size / 100 : frame === 'input_pixels' ? 1 : size / 1000);
          const tolX = unit(g.inputWidth) / 2 / g.scaleX + 1e-9;
          const tolY = unit(g.inputHeight) / 2 / g.scaleY + 1e-9;
          for (let i = 0; i < 25; i++) {
            const x = vis.x + next() * vis.width * 0.8;
            const y = vis.y + next() * vis.height * 0.8;
            const rect = { x, y, width: next() * (vis.x + vis.width - x), height: next() * (vis.y + vis.height - y) };
            const exact = boxToImagePixels(imagePixelsToModelFrame(rect, frame, g, { round: false }), frame, g);
            closeRect(exact, rect, 1e-6);
            const boxed = imagePixelsToModelFrame(rect, frame, g);
            if (frame === 'norm1') assert.ok(boxed.every((v) => Math.abs(v * 100 - Math.round(v * 100)) < 1e-9));
            else assert.ok(boxed.every(Number.isInteger));
            const back = boxToImagePixels(boxed, frame, g);
            assert.ok(Math.abs(back.x - rect.x) <= tolX, `x ${back.x} vs ${rect.x}`);
            assert.ok(Math.abs(back.y - rect.y) <= tolY, `y ${back.y} vs ${rect.y}`);
            assert.ok(Math.abs(back.x + back.width - (rect.x + rect.width)) <= tolX);
            assert.ok(Math.abs(back.y + back.height - (rect.y + rect.height)) <= tolY);
            if (frame === 'norm1000') {
              // 1000 steps over at most ~1.6 original px each for these sizes: within 1 px
              assert.ok(Math.abs(back.x - rect.x) <= 1 && Math.abs(back.y - rect.y) <= 1);
            }
          }
        });
      }
    }
  }

  test('a region outside a centre crop is cut to what the model sees', () => {
    const g = MAKERS.crop(1600, 900);
    assert.deepEqual(imagePixelsToModelFrame({ x: 0, y: 0, width: 200, height: 900 }, 'norm1', g), [0, 0, 0, 1]);
  });
});

// ---------------------------------------------------------------------------------------------
// Referring prompts

describe('referring prompts', () => {
  const llava15: ReferringPrompts = {
    find: 'Please provide the bounding box coordinate of the region this sentence describes: {phrase}',
    describeRegion: 'Please provide a short description for this region: {region}',
    region: '[{x1}, {y1}, {x2}, {y2}]',
  };

  test('find prompt keeps the phrase literally (no $-patterns)', () => {
    assert.equal(
      findPrompt(llava15, ' the $& button '),
      'Please provide the bounding box coordinate of the region this sentence describes: the $& button',
    );
  });

  test('describe-region prompt writes norm1 with 2 decimals, and the parser reads it back', () => {
    const g = MAKERS.pad(1600, 900);
    const box = imagePixelsToModelFrame({ x: 400, y: 0, width: 800, height: 450 }, 'norm1', g);
    const p = describeRegionPrompt(llava15, box, 'norm1');
    // x: 400/1600 and 1200/1600 of the square; y: 350/1600 and 800/1600
    assert.equal(p, 'Please provide a short description for this region: [0.25, 0.22, 0.75, 0.50]');
    assert.deepEqual(parseBoxes(p, 'norm1')[0].box, box);
  });

  test('a Qwen2-VL style region template round-trips through the parser', () => {
    const box: Box = [12, 345, 678, 999];
    const s = formatRegion(box, 'norm1000', '<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>');
    assert.equal(s, '<|box_start|>(12,345),(678,999)<|box_end|>');
    assert.deepEqual(parseBoxes(s, 'norm1000')[0].box, box);
  });
});
