// Our engine against a reference we did not write: transformers.js 4.3.1 runs the same ONNX folders
// offline. Both are fed the same pixel values (our PIL-exact preprocessing; transformers.js resizes
// differently, which preprocess.test.ts covers against PIL itself), then must agree on the prompt ids,
// the greedy tokens and the first-step logits.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AutoProcessor, LlavaForConditionalGeneration, RawImage, Tensor, env } from '@huggingface/transformers';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import type { ChatTurn, DtypeVariant, PreprocessedImage } from '../../src/engine/types';
import { ensureFixtures, MODELS_DIR } from '../fixtures/index';

env.allowRemoteModels = false;
env.localModelPath = MODELS_DIR + path.sep;

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const IMAGES = ['diagram.png', 'photo.jpg', 'tall.png']; // square-ish PNG with alpha, wide JPEG, tall PNG
const QUESTIONS = ['What is in this image?', 'Describe the picture in detail, please. Is there any text?'];
const NEW_TOKENS = 10;
const LOGIT_TOLERANCE = 1e-4;

for (const fixture of ['tiny-llava', 'tiny-qwen']) {
  for (const dtype of ['fp32', 'fp16'] as DtypeVariant[]) {
    describe(`parity with transformers.js: ${fixture} ${dtype}`, () => {
      let ours: LlavaModel;
      let processor: any;
      let reference: any;
      let chatTemplate: string;

      before(async () => {
        const [dir] = await ensureFixtures([fixture]);
        // Like llava-hf's repos, the template lives in chat_template.json, which transformers.js does not read.
        chatTemplate = JSON.parse(readFileSync(path.join(dir, 'chat_template.json'), 'utf8')).chat_template;
        ours = await loadModel(dir, { provider: 'cpu', variant: dtype });
        processor = await AutoProcessor.from_pretrained(fixture);
        reference = await LlavaForConditionalGeneration.from_pretrained(fixture, { dtype: dtype as 'fp32' | 'fp16', device: 'cpu' });
      });
      after(async () => {
        await ours?.dispose();
        await reference?.dispose();
      });

      for (const image of IMAGES) {
        for (const question of QUESTIONS) {
          test(`${image}: "${question.slice(0, 24)}..."`, async () => {
            const pixels: PreprocessedImage = await ours.preprocess({ path: path.join(SAMPLES, image) });
            const turns: ChatTurn[] = [{ role: 'user', text: question, images: [{ preprocessed: pixels, name: image }] }];

            // transformers.js renders its own prompt from the folder's chat template and expands <image>.
            const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: question }] }];
            const text = processor.apply_chat_template(messages, { add_generation_prompt: true, chat_template: chatTemplate });
            const inputs = await processor(await RawImage.read(path.join(SAMPLES, image)), text);
            const { inputWidth: w, inputHeight: h } = pixels.geometry;
            inputs.pixel_values = new Tensor('float32', pixels.pixelValues, [1, 3, h, w]);

            const refIds = Array.from(inputs.input_ids.data as BigInt64Array, Number);
            assert.deepEqual(await ours.promptIds(turns), refIds, 'prompt ids');

            if (dtype === 'fp32') {
              const refLogits = (await reference(inputs)).logits; // [1, T, vocab]
              const vocab = refLogits.dims[2];
              const last = (refLogits.data as Float32Array).subarray((refLogits.dims[1] - 1) * vocab);
              const mine = await ours.nextTokenLogits(turns);
              assert.equal(mine.length, vocab);
              let maxDiff = 0;
              for (let i = 0; i < vocab; i++) maxDiff = Math.max(maxDiff, Math.abs(mine[i] - last[i]));
              assert.ok(maxDiff <= LOGIT_TOLERANCE, `first-step logits differ by ${maxDiff}`);
            }

            const refOut = await reference.generate({ ...inputs, max_new_tokens: NEW_TOKENS, do_sample: false });
            const refTokens = Array.from(refOut.data as BigInt64Array, Number).slice(refIds.length);
            let done: any;
            for await (const ev of ours.generate(turns, { maxNewTokens: NEW_TOKENS })) if (ev.type === 'done') done = ev;
            // transformers.js keeps the EOS token in its output; ours stops before it.
            const ourTokens = done.stats.stopReason === 'eos' ? [...done.stats.tokenIds, refTokens[done.stats.tokenIds.length]] : done.stats.tokenIds;
            assert.deepEqual(ourTokens, refTokens, 'greedy tokens');
            assert.ok(new Set(refTokens).size > 1, 'the fixture should not produce one repeated token');
          });
        }
      }
    });
  }
}
