// Our engine against a reference we did not write: transformers.js 4.3.1 runs the same ONNX folders
// offline. Both are fed the same pixel values (our PIL-exact preprocessing; transformers.js resizes
// differently, which preprocess.test.ts covers against PIL itself), then must agree on the prompt ids,
// the greedy tokens and the first-step logits.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as path from 'node:path';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import type { ChatTurn, PreprocessedImage } from '../../src/core/types';
import { ensureFixtures } from '../fixtures/index';
import { loadReference, maxAbsDiff, ourGreedy, referenceGreedy, referenceInputs, referenceNextLogits, type Reference } from '../helpers/transformersReference';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const IMAGES = ['diagram.png', 'photo.jpg', 'tall.png']; // square-ish PNG with alpha, wide JPEG, tall PNG
const QUESTIONS = ['What is in this image?', 'Describe the picture in detail, please. Is there any text?'];
const NEW_TOKENS = 10;
const LOGIT_TOLERANCE = 1e-4;

for (const fixture of ['tiny-llava', 'tiny-qwen']) {
  for (const dtype of ['fp32', 'fp16'] as const) {
    describe(`parity with transformers.js: ${fixture} ${dtype}`, () => {
      let ours: LlavaModel;
      let ref: Reference;

      before(async () => {
        const [dir] = await ensureFixtures([fixture]);
        ours = await loadModel(dir, { provider: 'cpu', variant: dtype });
        ref = await loadReference(fixture, dir, dtype);
      });
      after(async () => {
        await ours?.dispose();
        await ref?.model.dispose();
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
}
