// The reference side of the parity tests: transformers.js 4.3.1, offline, on a fixture folder, fed our
// pixel values. Kept in one place so every parity test (fp32/fp16, q4) compares the same way.

import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { AutoProcessor, LlavaForConditionalGeneration, RawImage, Tensor, env } from '@huggingface/transformers';
import type { LlavaModel } from '../../src/engine/index';
import type { ChatTurn, PreprocessedImage } from '../../src/core/types';
import { MODELS_DIR } from '../fixtures/index';

env.allowRemoteModels = false;
env.localModelPath = MODELS_DIR + path.sep;

export interface Reference {
  processor: any;
  model: any;
  /** the folder's chat_template.json: like llava-hf's repos, transformers.js does not read that file itself */
  chatTemplate: string;
}

export async function loadReference(fixture: string, dir: string, dtype: 'fp32' | 'fp16' | 'q4'): Promise<Reference> {
  return {
    processor: await AutoProcessor.from_pretrained(fixture),
    model: await LlavaForConditionalGeneration.from_pretrained(fixture, { dtype, device: 'cpu' }),
    chatTemplate: JSON.parse(readFileSync(path.join(dir, 'chat_template.json'), 'utf8')).chat_template,
  };
}

/** transformers.js's own prompt (its chat template rendering, its `<image>` expansion) with our pixel values. */
export async function referenceInputs(ref: Reference, imagePath: string, question: string, pixels: PreprocessedImage): Promise<{ inputs: any; ids: number[] }> {
  const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: question }] }];
  const text = ref.processor.apply_chat_template(messages, { add_generation_prompt: true, chat_template: ref.chatTemplate });
  const inputs = await ref.processor(await RawImage.read(imagePath), text);
  const { inputWidth: w, inputHeight: h } = pixels.geometry;
  inputs.pixel_values = new Tensor('float32', pixels.pixelValues, [1, 3, h, w]);
  return { inputs, ids: Array.from(inputs.input_ids.data as BigInt64Array, Number) };
}

/** The reference's logits [vocab] for the token after the prompt. */
export async function referenceNextLogits(ref: Reference, inputs: any): Promise<Float32Array> {
  const logits = (await ref.model(inputs)).logits; // [1, T, vocab]
  const vocab = logits.dims[2];
  return (logits.data as Float32Array).slice((logits.dims[1] - 1) * vocab);
}

export async function referenceGreedy(ref: Reference, inputs: any, promptLength: number, newTokens: number): Promise<number[]> {
  const out = await ref.model.generate({ ...inputs, max_new_tokens: newTokens, do_sample: false });
  return Array.from(out.data as BigInt64Array, Number).slice(promptLength);
}

/** Our greedy tokens in the reference's convention: transformers.js keeps the EOS token, ours stops before it. */
export async function ourGreedy(ours: LlavaModel, turns: ChatTurn[], newTokens: number, referenceTokens: number[]): Promise<number[]> {
  let done: any;
  for await (const ev of ours.generate(turns, { maxNewTokens: newTokens })) if (ev.type === 'done') done = ev;
  const ids: number[] = done.stats.tokenIds;
  return done.stats.stopReason === 'eos' ? [...ids, referenceTokens[ids.length]] : ids;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
