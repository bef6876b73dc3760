// Our engine against a reference we did not write: transformers.js 4.3.1 runs the same ONNX folders
// offline. Both are fed the same pixel values (our PIL-exact preprocessing; transformers.js resizes
// differently, which preprocess.test.ts covers against PIL itself), then must agree on the prompt ids,
// the greedy tokens and the first-step logits.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import type { ChatTurn, PreprocessedImage } from '../../src/core/types';
import { ensureFixtures } from '../fixtures/index';
import { externalDecoderTempCopy } from '../helpers/externalCopy';
import { loadReference, maxAbsDiff, ourGreedy, referenceGreedy, referenceInputs, referenceNextLogits, type Reference } from '../helpers/transformersReference';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const IMAGES = ['diagram.png', 'photo.jpg', 'tall.png']; // square-ish PNG with alpha, wide JPEG, tall PNG
const QUESTIONS = ['What is in this image?', 'Describe the picture in detail, please. Is there any text?'];
const NEW_TOKENS = 10;
const LOGIT_TOLERANCE = 1e-4;

// The last case is tiny-llava with its fp32 decoder in external data, which our engine loads edited to keep a
// preallocated cache (decoder.ts holedKv; tiny-qwen's fp32 decoder, over 16 MiB, gets the same through its split
// copy); transformers.js runs the fixture as it is.
const CASES = [
  ...['tiny-llava', 'tiny-qwen'].flatMap((fixture) => (['fp32', 'fp16'] as const).map((dtype) => ({ fixture, dtype, external: false }))),
  { fixture: 'tiny-llava', dtype: 'fp32' as const, external: true },
];
for (const { fixture, dtype, external } of CASES) {
  describe(`parity with transformers.js: ${fixture} ${dtype}${external ? ', decoder in external data (preallocated cache)' : ''}`, () => {
    let ours: LlavaModel;
    let ref: Reference;
    let copy: string | undefined;

    before(async () => {
      const [dir] = await ensureFixtures([fixture]);
      if (external) copy = externalDecoderTempCopy(dir);
      ours = await loadModel(copy ?? dir, { provider: 'cpu', variant: dtype });
      if (external) assert.equal(ours.info.kvCache, 'in-place');
      ref = await loadReference(fixture, dir, dtype);
    });
    after(async () => {
      await ours?.dispose();
      await ref?.model.dispose();
      if (copy) rmSync(copy, { recursive: true, force: true });
    });

    for (const image of IMAGES) {
      for (const question of QUESTIONS) {
        test(`${image}: "${question.slice(0, 24)}..."`, async () => {
          const imagePath = path.join(SAMPLES, image);
          const pixels: PreprocessedImage = await ours.preprocess({ path: imagePath });
          const turns: ChatTurn[] = [{ role: 'user', text: question, images: [{ preprocessed: pixels, name: image }] }];
          const { inputs, ids } = await referenceInputs(ref, imagePath, question, pixels);
          assert.deepEqual(await ours.promptIds(turns), ids, 'prompt ids');

          if (dtype === 'fp32') {
            const theirs = await referenceNextLogits(ref, inputs);
            const mine = await ours.nextTokenLogits(turns);
            assert.equal(mine.length, theirs.length);
            const diff = maxAbsDiff(mine, theirs);
            assert.ok(diff <= LOGIT_TOLERANCE, `first-step logits differ by ${diff}`);
          }

          const refTokens = await referenceGreedy(ref, inputs, ids.length, NEW_TOKENS);
          assert.deepEqual(await ourGreedy(ours, turns, NEW_TOKENS, refTokens), refTokens, 'greedy tokens');
          assert.ok(new Set(refTokens).size > 1, 'the fixture should not produce one repeated token');
        });
      }
    }
  });
}
