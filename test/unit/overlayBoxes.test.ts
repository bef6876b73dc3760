// Host-side grounding glue (src/grounding/answerBoxes.ts) and the wire it uses: an answer's text ->
// boxes on the original image, for each box frame and preprocessing mode, while streaming too; the
// prompts Find / Describe region send; the geometry crossing the engine's IPC; the protocol guards.
// Expected rectangles are worked out by hand from each model's published convention (noted per
// test), not taken from the code's output.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_GROUNDING,
  StreamingBoxes,
  answerBoxes,
  boxTarget,
  clampRect,
  describeRegionQuestion,
  findQuestion,
  groundingFromOverride,
} from '../../src/grounding/answerBoxes';
import { formatRegion, imagePixelsToModelFrame } from '../../src/grounding/boxes';
import type { ImageGeometry } from '../../src/core/types';
import { isEngineResponse } from '../../src/engine-process/messages';
import { serveEngine, type EngineModule, type ServerChannel } from '../../src/engine-process/server';
import type { EngineResponse } from '../../src/engine-process/messages';
import { isHostToWebview, isWebviewToHost, type AnswerBox } from '../../src/protocol/index';
import { markBoxes } from '../../webview/chat/messages';

const zero = { padLeft: 0, padTop: 0, cropLeft: 0, cropTop: 0 };
/** LLaVA-1.5 expand2square to the long side, then resize to 336 */
const padWide: ImageGeometry = { ...zero, mode: 'pad', originalWidth: 1600, originalHeight: 900, inputWidth: 336, inputHeight: 336, padTop: 350, scaleX: 0.21, scaleY: 0.21 };
const padTall: ImageGeometry = { ...zero, mode: 'pad', originalWidth: 500, originalHeight: 1400, inputWidth: 336, inputHeight: 336, padLeft: 450, scaleX: 0.24, scaleY: 0.24 };
const padSquare: ImageGeometry = { ...zero, mode: 'pad', originalWidth: 800, originalHeight: 800, inputWidth: 336, inputHeight: 336, scaleX: 0.42, scaleY: 0.42 };
/** CLIP: shortest edge 336 (1600x900 -> 597.33x336), centre crop 336: cropLeft (597.33-336)/2 */
const cropWide: ImageGeometry = { ...zero, mode: 'crop', originalWidth: 1600, originalHeight: 900, inputWidth: 336, inputHeight: 336, scaleX: 336 / 900, scaleY: 336 / 900, cropLeft: (1600 * (336 / 900) - 336) / 2 };
/** Qwen2-VL / Qwen2.5-VL smart_resize of 1600x900: multiples of 28 -> 1596x896, aspect kept approximately */
const qwenWide: ImageGeometry = { ...zero, mode: 'resize', originalWidth: 1600, originalHeight: 900, inputWidth: 1596, inputHeight: 896, scaleX: 1596 / 1600, scaleY: 896 / 900 };

function close(actual: AnswerBox, want: { x: number; y: number; width: number; height: number }, tol = 1e-6): void {
  for (const k of ['x', 'y', 'width', 'height'] as const) assert.ok(Math.abs(actual[k] - want[k]) <= tol, `${k}: ${actual[k]} vs ${want[k]}`);
}

describe('answerBoxes: parse + map onto the original image', () => {
  test('norm1, pad, wide: v*1600 in the square, minus 350 rows of padding; a box in the padding is dropped', () => {
    const text = 'The grid is at [0.75, 0.26, 0.99, 0.47]. Nothing at [0.40, 0.02, 0.60, 0.15].';
    const boxes = answerBoxes(text, 'norm1', padWide);
    assert.equal(boxes.length, 1);
    close(boxes[0], { x: 1200, y: 66, width: 384, height: 336 }, 1e-6);
    assert.equal(boxes[0].phrase, 'The grid');
    assert.equal(text.slice(boxes[0].start, boxes[0].end), '[0.75, 0.26, 0.99, 0.47]');
  });

  test('norm1, pad, tall: 450 columns of padding on the left', () => {
    // square 1400: x 0.5*1400-450 = 250 .. 0.75*1400-450 = 600 -> clamped to 500; y 0.1*1400 = 140 .. 700
    const [b] = answerBoxes('[0.5, 0.1, 0.75, 0.5]', 'norm1', padTall);
    close(b, { x: 250, y: 140, width: 250, height: 560 }, 1e-6);
  });

  test('norm1, pad, square: no padding, plain scaling', () => {
    const [b] = answerBoxes('cat: [0.25, 0.5, 0.5, 1.0]', 'norm1', padSquare);
    close(b, { x: 200, y: 400, width: 200, height: 400 }, 1e-6);
    assert.equal(b.phrase, 'cat');
  });

  test('norm1, crop, wide: the model saw the centre 900x900 (x 350..1250)', () => {
    const [b] = answerBoxes('[0, 0, 1, 1]', 'norm1', cropWide);
    close(b, { x: 350, y: 0, width: 900, height: 900 }, 1e-6);
  });

  test('norm1000 (Qwen2-VL): thousandths of the resized input, which is ~the original here', () => {
    const text = '<|object_ref_start|>button<|object_ref_end|><|box_start|>(100,200),(500,600)<|box_end|>';
    const [b] = answerBoxes(text, 'norm1000', qwenWide);
    // 100/1000 of the width is 160 original px, 200/1000 of the height 180 px, whatever the input size
    close(b, { x: 160, y: 180, width: 640, height: 360 }, 1e-6);
    assert.equal(b.phrase, 'button');
    assert.equal(text.slice(b.start, b.end), '<|box_start|>(100,200),(500,600)<|box_end|>');
  });

  test('input_pixels (Qwen2.5-VL): absolute pixels of the 1596x896 input', () => {
    const [b] = answerBoxes('{"bbox_2d": [399, 224, 798, 448], "label": "tree"}', 'input_pixels', qwenWide);
    close(b, { x: 400, y: 225, width: 400, height: 225 }, 1e-9);
    assert.equal(b.phrase, 'tree');
  });

  test('loc_tokens (Florence-2): bin centres, (v + 0.5)/1000 of the input', () => {
    const [b] = answerBoxes('car<loc_0><loc_0><loc_999><loc_999>', 'loc_tokens', padSquare);
    // 0.5/1000*800 = 0.4 .. 999.5/1000*800 = 799.6
    close(b, { x: 0.4, y: 0.4, width: 799.2, height: 799.2 }, 1e-6);
  });

  test('out-of-range values are clamped to the image; malformed ones are skipped', () => {
    const text = 'a [-0.1, 0.3, 1.2, 0.5], b [0.1, 0.2, nan, 0.4], c [0.1, 0.2, 0.3], d [1e9, 0, 1, 1], e [0.1, 0.4, 0.2, 0.5]';
    const boxes = answerBoxes(text, 'norm1', padWide);
    assert.deepEqual(boxes.map((b) => b.phrase), ['a', 'e']);
    close(boxes[0], { x: 0, y: 130, width: 1600, height: 450 - 130 }, 1e-6);
  });

  test('no boxes, garbage and empty text give an empty list', () => {
    for (const t of ['', 'no boxes here', '[[[', '[0.1, 0.2, 0.3, 0.4', '(1, 2) and (3, 4, 5)']) assert.deepEqual(answerBoxes(t, 'norm1', padWide), []);
  });
});

describe('StreamingBoxes', () => {
  const answer = 'The grid [0.75, 0.26, 0.99, 0.47] sits above the box [0.75, 0.50, 0.99, 0.62].';

  test('boxes appear as they complete, never half-parsed, and end equal to the whole-text result', () => {
    const s = new StreamingBoxes('norm1', padWide);
    const seen: number[] = [];
    let last: AnswerBox[] = [];
    for (const ch of answer) {
      const r = s.push(ch);
      if (r) {
        seen.push(r.length);
        last = r;
      }
    }
    assert.deepEqual(seen, [1, 2]);
    assert.deepEqual(last, answerBoxes(answer, 'norm1', padWide));
  });

  test('without a geometry nothing is reported (the done event maps them)', () => {
    const s = new StreamingBoxes('norm1', undefined);
    for (const ch of answer) assert.equal(s.push(ch), undefined);
  });
});

describe('round trips: a region -> the prompt the model gets -> the box it would answer', () => {
  const rects = [
    { x: 0, y: 0, width: 1600, height: 900 },
    { x: 123.4, y: 56.7, width: 800.2, height: 300.9 },
    { x: 1500, y: 800, width: 99, height: 99 },
  ];
  for (const [frame, g, template] of [
    ['norm1000', padWide, '<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>'],
    ['norm1000', qwenWide, '<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>'],
    ['input_pixels', qwenWide, '[{x1}, {y1}, {x2}, {y2}]'],
  ] as const) {
    test(`${frame} over ${g.mode} ${g.inputWidth}x${g.inputHeight}: within 1 px`, () => {
      for (const r of rects) {
        const text = formatRegion(imagePixelsToModelFrame(r, frame, g), frame, template);
        const [b] = answerBoxes(text, frame, g);
        assert.ok(b, `no box parsed from ${text}`);
        for (const [got, want] of [[b.x, r.x], [b.y, r.y], [b.x + b.width, r.x + r.width], [b.y + b.height, r.y + r.height]]) {
          assert.ok(Math.abs(got - want) <= 1, `${text}: ${got} vs ${want}`);
        }
      }
    });
  }
});

describe('referring prompts and grounding specs', () => {
  test('Find uses the model prompt with the phrase', () => {
    assert.equal(
      findQuestion(DEFAULT_GROUNDING, '  the Save button '),
      'Please provide the bounding box coordinate of the region this sentence describes: the Save button',
    );
  });

  test('Describe region writes the region in the padded square (LLaVA-1.5), 2 decimals', () => {
    // x 400/1600, 1200/1600; y (0+350)/1600 = 0.21875 -> 0.22, (450+350)/1600 = 0.5
    assert.equal(
      describeRegionQuestion(DEFAULT_GROUNDING, { x: 400, y: 0, width: 800, height: 450 }, padWide),
      'Please provide a short description for this region: [0.25, 0.22, 0.75, 0.50]',
    );
  });

  test('Describe region clamps a drag that went past the image edge', () => {
    assert.deepEqual(clampRect({ x: 1500, y: -20, width: 300, height: 100 }, 1600, 900), { x: 1500, y: 0, width: 100, height: 80 });
    assert.equal(
      describeRegionQuestion(DEFAULT_GROUNDING, { x: -100, y: -100, width: 1900, height: 1100 }, padWide),
      'Please provide a short description for this region: [0.00, 0.22, 1.00, 0.78]',
    );
  });

  test('a folder override changes the frame and prompts; bad files are refused with a reason', () => {
    const ok = groundingFromOverride({ boxFrame: 'norm1000', prompts: { find: 'Locate {phrase}' } });
    assert.ok(!('error' in ok));
    assert.equal(ok.frame, 'norm1000');
    assert.equal(ok.prompts.find, 'Locate {phrase}');
    assert.equal(ok.prompts.describeRegion, DEFAULT_GROUNDING.prompts.describeRegion);
    for (const bad of [null, [], 'x', { boxFrame: 'pixels' }, { prompts: { find: 'no placeholder' } }, { prompts: { region: '[{x1}]' } }]) {
      assert.ok('error' in groundingFromOverride(bad), JSON.stringify(bad));
    }
  });

  test('boxes go on the requested image, else the latest one sent', () => {
    assert.equal(boxTarget(['a', 'b'], 'a'), 'a');
    assert.equal(boxTarget(['a', 'b']), 'b');
    assert.equal(boxTarget(['a', 'b'], 'gone'), 'b');
    assert.equal(boxTarget([]), undefined);
  });
});

describe('the answer text marks each box once', () => {
  test('markBoxes replaces exactly the coordinate spans', () => {
    const text = 'A [0.1, 0.1, 0.2, 0.2] and B [0.3, 0.3, 0.4, 0.4].';
    const boxes = answerBoxes(text, 'norm1', padSquare);
    assert.equal(markBoxes(text, boxes), 'A \uE0000\uE001 and B \uE0001\uE001.');
    // stale offsets (beyond the text) leave the text alone
    assert.equal(markBoxes('short', boxes), 'short');
  });
});

describe('the wire', () => {
  test('the engine done event keeps each image geometry across the IPC', async () => {
    const sent: EngineResponse[] = [];
    let onMsg: (m: unknown) => void = () => {};
    const channel: ServerChannel = { send: (m) => sent.push(m), onMessage: (l) => (onMsg = l), onDisconnect: () => {} };
    const engine: EngineModule = {
      async loadModel() {
        return {
          info: { dir: 'x', modelType: 'llava', provider: 'cpu', fallbackReason: '', variants: { vision: 'fp32', embed: 'fp32', decoder: 'fp32' }, imageTokensPerImage: 1, promptFormat: 'vicuna_v1', loadMs: 0 },
          async *generate() {
            yield { type: 'delta' as const, text: 'hi' };
            yield { type: 'done' as const, text: 'hi', stats: { promptTokens: 1, newTokens: 1, imageTokens: 0, timeToFirstTokenMs: 0, decodeTokensPerSecond: 0, totalMs: 0, stopReason: 'eos' as const, tokenIds: [1] }, images: [padWide] };
          },
          async preprocess() {
            return { geometry: padTall };
          },
          async dispose() {},
        };
      },
    };
    const server = serveEngine(channel, async () => engine);
    const model = { modelDir: '/m', provider: 'cpu' as const, threads: 0 };
    onMsg({ type: 'generate', requestId: 1, model, turns: [{ role: 'user', text: 'q' }], options: {} });
    onMsg({ type: 'geometry', requestId: 2, model, image: { bytes: new Uint8Array(1), name: 'x.png' } });
    await server.idle();
    await server.idle();
    const done = sent.find((m) => m.type === 'done');
    assert.ok(done && done.type === 'done');
    assert.deepEqual(done.images, [padWide]);
    assert.ok(isEngineResponse(structuredClone(done)));
    const geo = sent.find((m) => m.type === 'geometry');
    assert.ok(geo && geo.type === 'geometry');
    assert.deepEqual(geo.geometry, padTall);
    assert.ok(!isEngineResponse({ type: 'done', requestId: 1, text: '', stats: {}, images: [1] }));
  });

  test('protocol guards: boxes, find, describeRegion, saveImage', () => {
    const box: AnswerBox = { phrase: 'p', x: 1, y: 2, width: 3, height: 4, start: 0, end: 5 };
    assert.ok(isHostToWebview({ type: 'boxes', messageId: 'm', imageId: 'i', boxes: [box] }));
    assert.ok(!isHostToWebview({ type: 'boxes', messageId: 'm', imageId: 'i', boxes: [{ ...box, x: Number.NaN }] }));
    assert.ok(!isHostToWebview({ type: 'boxes', messageId: 'm', imageId: 'i', boxes: [{ ...box, start: 6 }] }));
    assert.ok(isWebviewToHost({ type: 'find', requestId: 1, imageId: 'i', phrase: 'the dog' }));
    assert.ok(!isWebviewToHost({ type: 'find', requestId: 1, imageId: 'i', phrase: '   ' }));
    assert.ok(isWebviewToHost({ type: 'describeRegion', requestId: 1, imageId: 'i', rect: { x: 0, y: 0, width: 5, height: 5 } }));
    assert.ok(!isWebviewToHost({ type: 'describeRegion', requestId: 1, imageId: 'i', rect: { x: 0, y: 0, width: 0, height: 5 } }));
    assert.ok(!isWebviewToHost({ type: 'describeRegion', requestId: 1, imageId: 'i', rect: { x: 0, y: 0, width: Infinity, height: 5 } }));
    assert.ok(isWebviewToHost({ type: 'saveImage', requestId: 1, name: 'a.png', bytes: new Uint8Array(3) }));
    assert.ok(!isWebviewToHost({ type: 'saveImage', requestId: 1, name: 'a.png', bytes: [1, 2, 3] }));
  });
});
