// The in-process caption backend (CLI, bench, tests): images are decoded and preprocessed ahead of
// inference by the job's prefetch, then captioned N at a time by LlavaModel.generateBatch. Kept apart from
// caption.ts so the extension host can use the runner without loading onnxruntime-node.

import * as path from 'node:path';
import type { CaptionBackend, CaptionItem, CaptionResult, CaptionSampling } from './jobs';
import type { LlavaModel } from '../engine';
import type { ImageInput } from '../core';

export function modelCaptionBackend(model: LlavaModel, opts: { batched?: boolean } = {}): CaptionBackend {
  const batched = opts.batched ?? true;
  return {
    model: path.basename(model.info.dir),
    variant: model.info.variants.decoder,
    async prepare(imagePath: string, _signal?: AbortSignal, root?: string): Promise<ImageInput> {
      return { preprocessed: await model.preprocess({ path: imagePath, root }), name: imagePath };
    },
    async *captionBatch(items: CaptionItem[], s: CaptionSampling): AsyncIterable<CaptionResult> {
      const started = performance.now();
      const requests = items.map((it) => ({
        turns: [{ role: 'user' as const, text: it.prompt, images: [it.image] }],
        answerPrefix: it.prefix,
      }));
      const options = { maxNewTokens: s.maxNewTokens, temperature: s.temperature || undefined, seed: s.seed, signal: s.signal };
      if (batched) {
        for await (const ev of model.generateBatch(requests, options)) {
          if (ev.type === 'error') yield { index: ev.index, error: ev.error };
          else if (ev.type === 'done') yield doneResult(ev.index, ev.text, ev.stats.stopReason, started);
        }
        return;
      }
      // one by one through generate(): the baseline the benchmark compares against
      for (let i = 0; i < requests.length; i++) {
        const t = performance.now();
        try {
          for await (const ev of model.generate(requests[i].turns, { ...options, answerPrefix: requests[i].answerPrefix })) {
            if (ev.type === 'done') yield doneResult(i, ev.text, ev.stats.stopReason, t);
          }
        } catch (error) {
          yield { index: i, error: error as Error };
        }
      }
    },
  };
}

function doneResult(index: number, text: string, stopReason: string, started: number): CaptionResult {
  if (stopReason === 'aborted') return { index, error: Object.assign(new Error('Cancelled'), { name: 'AbortError' }) };
  return { index, text, seconds: (performance.now() - started) / 1000 };
}
