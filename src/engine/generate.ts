// The decode loop, as a readable state machine:
//   images -> vision_encoder -> features             (once per image)
//   prompt text -> ids (<image> expanded to N rows)  -> embed_tokens -> splice features in
//   prefill: decoder(all prompt embeds, empty past)  -> logits -> sample
//   step:    decoder(one token's embeds, past)       -> logits -> sample ... until EOS / max / abort

import type { KvCache, LanguageModel } from './decoder';
import { Sampler } from './sampler';
import type { GenerateOptions, GenerationEvent, GenerationStats } from '../core';

export interface PreparedPrompt {
  /** [T] prompt token ids, image tokens expanded */
  ids: number[];
  /** [T, hidden] f32: embeddings with image rows already spliced in */
  embeds: Float32Array;
  imageTokens: number;
  /** the decoder's cache for the first `reuse.length` prompt positions (from an earlier run), if any */
  reuse?: KvCache;
}

/** Incremental detokenizer: push ids, get text deltas that never split a character. */
export interface Detokenizer {
  push(id: number): string;
  flush(): string;
}

export interface LoopParts {
  lm: LanguageModel;
  eosTokenIds: ReadonlySet<number>;
  detokenizer: Detokenizer;
  /** ids of the forced answer prefix, already part of the prompt; their text is emitted first */
  prefixText?: string;
  /** called at the end with the final cache (on the host), which holds the first `cache.length` ids of `history` */
  keepCache?: (cache: KvCache, history: readonly number[]) => void;
}

export const DEFAULT_MAX_NEW_TOKENS = 256;

export async function* decodeLoop(
  parts: LoopParts,
  prompt: PreparedPrompt,
  opts: GenerateOptions,
  startedAt: number,
): AsyncGenerator<GenerationEvent> {
  const { lm, eosTokenIds, detokenizer } = parts;
  const maxNewTokens = opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const sampler = new Sampler(opts);
  const history = [...prompt.ids];
  const generated: number[] = [];
  let text = parts.prefixText ?? '';
  if (text) yield { type: 'delta', text };

  // [1, past, ...] reused from an earlier run: only the prompt's remaining positions are prefilled
  let cache = prompt.reuse ?? lm.emptyCache(1);
  let mask: number[] = new Array(prompt.ids.length).fill(1);
  let embeds = cache.length ? prompt.embeds.subarray(cache.length * lm.hidden) : prompt.embeds;
  const reusedTokens = cache.length;
  let firstTokenAt = 0;
  let stopReason: GenerationStats['stopReason'] = 'max_tokens';

  try {
    while (generated.length < maxNewTokens) {
      if (opts.signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
      const step = await lm.forward(embeds, mask, cache);
      cache = step.cache;
      // a Stop that arrived during the step ends the answer now: that step's token is not shown
      if (opts.signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
      const next = sampler.sample(step.logits, history);
      if (!firstTokenAt) firstTokenAt = performance.now();
      if (eosTokenIds.has(next)) {
        stopReason = 'eos';
        break;
      }
      generated.push(next);
      history.push(next);
      const delta = detokenizer.push(next);
      if (delta) {
        text += delta;
        yield { type: 'delta', text: delta };
      }
      if (generated.length >= maxNewTokens) break;
      embeds = await lm.embed([next]);
      mask = new Array(cache.length + 1).fill(1);
    }
    if (parts.keepCache) {
      cache = await lm.toHost(cache);
      parts.keepCache(cache, history);
    }
  } finally {
    lm.release(cache); // a GPU cache nobody keeps (a host one is left alone)
  }
  const tail = detokenizer.flush();
  if (tail) {
    text += tail;
    yield { type: 'delta', text: tail };
  }
  const end = performance.now();
  const decodeMs = firstTokenAt ? end - firstTokenAt : 0;
  const stats: GenerationStats = {
    promptTokens: prompt.ids.length,
    newTokens: generated.length,
    imageTokens: prompt.imageTokens,
    timeToFirstTokenMs: firstTokenAt ? firstTokenAt - startedAt : end - startedAt,
    decodeTokensPerSecond: generated.length > 1 && decodeMs > 0 ? ((generated.length - 1) * 1000) / decodeMs : 0,
    totalMs: end - startedAt,
    stopReason,
    tokenIds: generated,
    reusedPromptTokens: reusedTokens,
  };
  yield { type: 'done', text, stats };
}
