// The WebGPU execution provider against the CPU on the same model folders: same greedy tokens, first-step
// logits within 1e-3, the KV cache held in GPU memory between decoder runs, and the paths that bring it
// back to the host (a follow-up reusing the conversation's cache, a batch whose rows end at different
// times). Needs a Vulkan adapter: a GPU's driver, or Mesa's software one (lavapipe, from
// mesa-vulkan-drivers >= 24: `.ci/run` installs it from bookworm-backports and sets LLAVA_REQUIRE_WEBGPU=1,
// so there the tests fail rather than skip when no adapter loads).
//
// The copy graphs (deviceCopy.ts) are checked on the CPU provider as well, which needs nothing.

import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, type BatchRequest, type LlavaModel } from '../../src/engine/index';
import { identityModel, lastRowModel } from '../../src/engine/deviceCopy';
import { ProviderError, type ChatTurn, type GenerateOptions } from '../../src/core';
import { ensureFixtures } from '../fixtures/index';

const SAMPLES = path.join(__dirname, '..', '..', 'media', 'samples');
const FLOAT = 1; // onnx.TensorProto.DataType.FLOAT
const LOGIT_TOLERANCE = 1e-3; // the GPU sums in another order; tokens must still be equal

test('device copy graphs: Identity returns the tensor, the last-row Slice returns x[:, -1:, :] (CPU provider)', async () => {
  const x = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => Math.sin(i));
  const id = await ort.InferenceSession.create(identityModel(FLOAT));
  const y = (await id.run({ x: new ort.Tensor('float32', x, [2, 3, 4, 5]) })).y;
  assert.deepEqual(y.dims, [2, 3, 4, 5]);
  assert.deepEqual(Array.from(y.data as Float32Array), Array.from(x));

  const logits = Float32Array.from({ length: 2 * 7 * 11 }, (_, i) => i);
  const last = await ort.InferenceSession.create(lastRowModel(FLOAT));
  const row = (await last.run({ x: new ort.Tensor('float32', logits, [2, 7, 11]) })).y;
  assert.deepEqual(row.dims, [2, 1, 11]);
  const want = [...logits.subarray(6 * 11, 7 * 11), ...logits.subarray(13 * 11, 14 * 11)];
  assert.deepEqual(Array.from(row.data as Float32Array), want);
  await Promise.all([id.release(), last.release()]);
});

/** The WebGPU model, or why there is none here (no Vulkan adapter). */
async function loadWebgpu(dir: string, variant: 'fp32' | 'q4'): Promise<LlavaModel | string> {
  try {
    return await loadModel(dir, { provider: 'webgpu', variant });
  } catch (err) {
    if (err instanceof ProviderError && !process.env.LLAVA_REQUIRE_WEBGPU) return err.message;
    throw err;
  }
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

async function tokens(model: LlavaModel, turns: ChatTurn[], opts: GenerateOptions = {}) {
  for await (const ev of model.generate(turns, { maxNewTokens: 12, ...opts })) if (ev.type === 'done') return ev;
  throw new Error('no done event');
}

async function batchTokens(model: LlavaModel, requests: BatchRequest[]): Promise<number[][]> {
  const out: number[][] = [];
  for await (const ev of model.generateBatch(requests)) {
    if (ev.type === 'done') out[ev.index] = ev.stats.tokenIds;
    if (ev.type === 'error') throw ev.error;
  }
  return out;
}

for (const fixture of ['tiny-llava', 'tiny-qwen']) {
  for (const variant of ['fp32', 'q4'] as const) {
    describe(`WebGPU (needs Vulkan: a GPU driver or Mesa's lavapipe) vs CPU on ${fixture} ${variant}`, () => {
      let cpu: LlavaModel;
      let gpu: LlavaModel | string;
      const ask: ChatTurn = { role: 'user', text: 'What is in this image?', images: [{ path: path.join(SAMPLES, 'shapes.png') }] };

      before(async () => {
        const [dir] = await ensureFixtures([fixture]);
        cpu = await loadModel(dir, { provider: 'cpu', variant });
        gpu = await loadWebgpu(dir, variant);
      });
      after(async () => {
        await cpu?.dispose();
        if (typeof gpu !== 'string') await gpu?.dispose();
      });

      test('loads on WebGPU with the KV cache on the GPU', (t) => {
        if (typeof gpu === 'string') return t.skip(`no Vulkan adapter here: ${gpu}`);
        assert.equal(gpu.info.provider, 'webgpu');
        assert.equal(gpu.info.kvCache, 'on the GPU');
      });

      test('first-step logits within 1e-3 of the CPU, same argmax', async (t) => {
        if (typeof gpu === 'string') return t.skip(`no Vulkan adapter here: ${gpu}`);
        const a = await cpu.nextTokenLogits([ask]);
        const b = await gpu.nextTokenLogits([ask]);
        assert.equal(a.length, b.length);
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        assert.ok(worst <= LOGIT_TOLERANCE, `max |logit difference| ${worst}`);
        assert.equal(argmax(b), argmax(a));
      });

      test('same greedy tokens, a follow-up reusing the cache brought back from the GPU, and a batch whose rows end apart', async (t) => {
        if (typeof gpu === 'string') return t.skip(`no Vulkan adapter here: ${gpu}`);
        const first = [await tokens(cpu, [ask]), await tokens(gpu, [ask])];
        assert.deepEqual(first[1].stats.tokenIds, first[0].stats.tokenIds);
        assert.equal(first[1].stats.tokenIds.length, 12);

        const followUp = (text: string): ChatTurn[] => [ask, { role: 'assistant', text }, { role: 'user', text: 'And the colours?' }];
        const second = [await tokens(cpu, followUp(first[0].text), { maxNewTokens: 8 }), await tokens(gpu, followUp(first[1].text), { maxNewTokens: 8 })];
        assert.ok((second[1].stats.reusedPromptTokens ?? 0) > 0, 'the follow-up prefilled only its new tokens');
        assert.equal(second[1].stats.reusedPromptTokens, second[0].stats.reusedPromptTokens);
        assert.deepEqual(second[1].stats.tokenIds, second[0].stats.tokenIds);

        // row 0 stops after 3 tokens: the cache is cut to the remaining row (on the host) and decoding goes on
        const requests: BatchRequest[] = [
          { turns: [ask], maxNewTokens: 3 },
          { turns: [{ role: 'user', text: 'Describe it.', images: [{ path: path.join(SAMPLES, 'diagram.png') }] }], maxNewTokens: 9 },
        ];
        assert.deepEqual(await batchTokens(gpu, requests), await batchTokens(cpu, requests));
      });
    });
  }
}
